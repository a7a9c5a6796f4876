//! Running patchfleet like a production controller, end to end: replicas with leader
//! election, the metrics and probe endpoints, JSON logs, and the chart's RBAC as the only
//! permissions. Each test has its own control plane and simulator.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use patchfleet_tests::stack::{LEASE_DURATION, Stack};

const ALL_KINDS: [&str; 4] = [
    "systemaccounts",
    "patchpolicies",
    "patchgroups",
    "maintenancewindows",
];
const CONVERGE: Duration = Duration::from_secs(180);

/// The holder of the leader Lease (`default/patchfleet`), if any.
fn lease_holder(stack: &Stack) -> Option<String> {
    stack
        .kubectl([
            "get",
            "lease",
            "patchfleet",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .ok()
        .map(|holder| holder.trim().to_owned())
        .filter(|holder| !holder.is_empty())
}

fn wait_for_holder(stack: &Stack, expected: &str, timeout: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if lease_holder(stack).as_deref() == Some(expected) {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{expected} did not become the leader within {timeout:?} (holder: {:?})\n{}",
        lease_holder(stack),
        stack.controller_log()
    );
}

/// SSM and STS calls per caller ARN (the session name of an assumed role is the replica's
/// identity), excluding the test's own.
fn calls_by_caller(stack: &Stack) -> BTreeMap<String, u64> {
    let mut calls = BTreeMap::new();
    for count in stack.sim.sim().counters.snapshot() {
        *calls.entry(count.key.caller.clone()).or_default() += count.count;
    }
    calls
}

fn replica_of(caller: &str) -> &str {
    caller.rsplit('/').next().unwrap_or(caller)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_replicas_only_the_leader_reconciles_and_a_standby_takes_over() {
    let stack = Stack::start("replicas").await.expect("stack starts");
    stack
        .start_replica("replica-a", &[], &[])
        .expect("replica a");
    wait_for_holder(&stack, "replica-a", Duration::from_secs(60));
    stack
        .start_replica("replica-b", &[], &[])
        .expect("replica b");
    stack.apply("examples").expect("examples apply");
    stack
        .wait_ready(&ALL_KINDS, CONVERGE)
        .expect("examples converge");

    let callers = calls_by_caller(&stack);
    let acting: Vec<&str> = callers
        .keys()
        .filter(|caller| caller.contains(":assumed-role/"))
        .map(|caller| replica_of(caller))
        .collect();
    assert_eq!(
        acting,
        ["replica-a", "replica-a"],
        "only the leader acts, in both accounts: {callers:#?}"
    );
    let leader_metric = |identity: &str| {
        let (_, body) = stack.http_get(identity, "/metrics").expect("metrics");
        body.lines()
            .find_map(|line| line.strip_prefix("patchfleet_leader ").map(str::to_owned))
            .expect("patchfleet_leader series")
    };
    assert_eq!(leader_metric("replica-a"), "1");
    assert_eq!(leader_metric("replica-b"), "0");
    let (standby_ready, _) = stack.http_get("replica-b", "/readyz").expect("readyz");
    assert_eq!(standby_ready, 200, "a standby is ready to take over");

    // The leader dies without a word: the standby takes over once the Lease expires.
    stack.kill_replica("replica-a").expect("SIGKILL");
    let handover = wait_for_holder(&stack, "replica-b", LEASE_DURATION * 3);
    println!("handover after SIGKILL: {handover:?} (lease duration {LEASE_DURATION:?})");
    assert!(
        handover <= LEASE_DURATION + Duration::from_secs(1),
        "handover took {handover:?}, longer than the lease duration {LEASE_DURATION:?}"
    );

    // Convergence continues under the new leader: a change is carried out by replica-b.
    stack
        .kubectl([
            "patch", "ppol", "late", "-n", "patching", "--type", "json", "-p",
            r#"[{"op":"add","path":"/spec/baselines/0/description","value":"changed after the handover"}]"#,
        ])
        .expect("policy edited");
    let deadline = Instant::now() + CONVERGE;
    loop {
        let written_by_b = stack.sim.sim().counters.snapshot().iter().any(|c| {
            c.key.operation == "UpdatePatchBaseline" && replica_of(&c.key.caller) == "replica-b"
        });
        if written_by_b {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica-b never applied the edit\n{}",
            stack.controller_log()
        );
        stack.check_controller().expect("replica-b runs");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stack
        .wait_ready(&ALL_KINDS, CONVERGE)
        .expect("converged under replica-b");

    // A graceful stop releases the Lease: the next replica takes over without waiting.
    let status = stack
        .stop_replica("replica-b", Duration::from_secs(30))
        .expect("replica-b stops on SIGTERM");
    assert!(status.success(), "a SIGTERM stop exits 0: {status}");
    assert_eq!(lease_holder(&stack), None, "the Lease was released");
    stack
        .start_replica("replica-c", &[], &[])
        .expect("replica c");
    let takeover = wait_for_holder(&stack, "replica-c", LEASE_DURATION * 2);
    println!("takeover of a released Lease by a new replica: {takeover:?}");
    assert!(
        takeover < LEASE_DURATION,
        "a released Lease is taken at once: {takeover:?}"
    );
}
