//! Running patchfleet like a production controller, end to end: replicas with leader
//! election, the metrics and probe endpoints, JSON logs, and the chart's RBAC as the only
//! permissions. Each test has its own control plane and simulator.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use patchfleet_tests::stack::{ALL_KINDS, CONVERGE, LEASE_DURATION, LEASE_RETRY_PERIOD, Stack};

/// A field of the leader Lease (`default/patchfleet`) by JSONPath, if set.
fn lease_field(stack: &Stack, path: &str) -> Option<String> {
    stack
        .kubectl([
            "get",
            "lease",
            "patchfleet",
            "-n",
            "default",
            "-o",
            &format!("jsonpath={{{path}}}"),
        ])
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// The holder of the leader Lease, if any.
fn lease_holder(stack: &Stack) -> Option<String> {
    lease_field(stack, ".spec.holderIdentity")
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

    // The leader dies without a word: the standby takes over once the Lease expires, by
    // its own clock, a lease duration after it saw the last renewal (which it sees at most
    // one retry period late).
    stack.kill_replica("replica-a").expect("SIGKILL");
    let handover = wait_for_holder(&stack, "replica-b", LEASE_DURATION * 3);
    println!("handover after SIGKILL: {handover:?} (lease duration {LEASE_DURATION:?})");
    let bound = LEASE_DURATION + LEASE_RETRY_PERIOD + Duration::from_millis(500);
    assert!(
        handover <= bound,
        "handover took {handover:?}, more than the lease duration and one retry period ({bound:?})"
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
    assert_eq!(
        lease_field(&stack, ".spec.leaseTransitions").as_deref(),
        Some("2"),
        "a -> b, then (released) -> c"
    );
}

/// The samples of an OpenMetrics exposition: (name, labels, value).
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(f64::NAN);
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter_map(|pair| pair.split_once("=\""))
            .map(|(k, v)| (k.to_owned(), v.trim_end_matches('"').to_owned()))
            .collect();
        out.push((name.to_owned(), labels, value));
    }
    out
}

fn sum(
    samples: &[(String, BTreeMap<String, String>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, value)| value)
        .sum()
}

fn is_sts(operation: &str) -> bool {
    matches!(operation, "AssumeRole" | "GetCallerIdentity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exactly_what_ssm_answered_and_json_logs_name_account_and_region() {
    let stack = Stack::start("metrics").await.expect("stack starts");
    let mut faults = stack.sim.sim().faults.spec();
    faults.seed = 11;
    faults.throttle_rate = 0.2;
    stack.sim.sim().faults.set(faults);
    let identity = stack.main_identity();
    stack
        .start_replica(&identity, &["--log-format", "json"], &[])
        .expect("controller");
    stack.apply("examples").expect("examples apply");
    stack
        .wait_ready(&ALL_KINDS, CONVERGE)
        .expect("examples converge through throttling");
    stack.sim.sim().faults.set(Default::default());

    let (health, _) = stack.http_get(&identity, "/healthz").expect("healthz");
    let (ready, _) = stack.http_get(&identity, "/readyz").expect("readyz");
    assert_eq!((health, ready), (200, 200));

    // What the simulator answered this replica (each attempt counts there), against what
    // the controller reports: calls + retries = attempts, exactly, once no call is in
    // flight (between two passes).
    let suffix = format!("/{identity}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (metrics, answered, throttled) = loop {
        let (status, body) = stack.http_get(&identity, "/metrics").expect("metrics");
        assert_eq!(status, 200);
        let metrics = samples(&body);
        let counts = stack.sim.sim().counters.snapshot();
        let ours = counts
            .iter()
            .filter(|c| c.key.caller.ends_with(&suffix) && !is_sts(&c.key.operation));
        let answered: u64 = ours.clone().map(|c| c.count).sum();
        let throttled: u64 = ours
            .filter(|c| c.key.outcome == "ThrottlingException")
            .map(|c| c.count)
            .sum();
        let reported = sum(&metrics, "patchfleet_ssm_calls_total", &[])
            + sum(&metrics, "patchfleet_ssm_retries_total", &[]);
        if reported == answered as f64 {
            break (metrics, answered, throttled);
        }
        assert!(
            Instant::now() < deadline,
            "the metrics never matched the simulator: {reported} reported, {answered} answered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("{answered} SSM attempts answered, {throttled} throttled");
    assert!(
        throttled > 0,
        "no call was throttled: the test proves nothing"
    );
    assert_eq!(
        sum(&metrics, "patchfleet_ssm_throttles_total", &[]),
        throttled as f64,
        "every throttled attempt is counted"
    );
    let created_in_sim: u64 = stack
        .sim
        .sim()
        .counters
        .snapshot()
        .iter()
        .filter(|c| c.key.operation == "CreatePatchBaseline" && c.key.outcome == "Success")
        .map(|c| c.count)
        .sum();
    assert_eq!(
        sum(
            &metrics,
            "patchfleet_ssm_calls_total",
            &[("operation", "CreatePatchBaseline"), ("outcome", "success")]
        ),
        created_in_sim as f64
    );
    for kind in [
        "SystemAccount",
        "PatchPolicy",
        "PatchGroup",
        "MaintenanceWindow",
    ] {
        assert!(
            sum(
                &metrics,
                "patchfleet_reconciles_total",
                &[("kind", kind), ("outcome", "success")]
            ) > 0.0,
            "{kind} reconciles counted"
        );
        assert!(
            sum(
                &metrics,
                "patchfleet_reconcile_duration_seconds_count",
                &[("kind", kind)]
            ) > 0.0,
            "{kind} durations observed"
        );
    }
    // The gauges are refreshed every 2 s: wait (bounded) for a refresh after convergence.
    let gauges_current = |metrics: &_| {
        sum(metrics, "patchfleet_accounts", &[("state", "ready")]) == 2.0
            && sum(metrics, "patchfleet_account_regions", &[("state", "ready")]) == 3.0
    };
    let mut metrics = samples(&stack.http_get(&identity, "/metrics").expect("metrics").1);
    for _ in 0..40 {
        if gauges_current(&metrics) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        metrics = samples(&stack.http_get(&identity, "/metrics").expect("metrics").1);
    }
    assert_eq!(
        sum(&metrics, "patchfleet_accounts", &[("state", "ready")]),
        2.0
    );
    assert_eq!(
        sum(&metrics, "patchfleet_accounts", &[("state", "failing")]),
        0.0
    );
    assert_eq!(
        sum(
            &metrics,
            "patchfleet_account_regions",
            &[("state", "ready")]
        ),
        3.0
    );
    assert_eq!(sum(&metrics, "patchfleet_leader", &[]), 1.0);
    // The last passes' owner rollups wait up to --status-interval (2 s) to be sent, then
    // run: the queue drains to at most the one reconcile the gauge may catch starting.
    let mut depth = f64::MAX;
    for _ in 0..20 {
        let (_, body) = stack.http_get(&identity, "/metrics").expect("metrics");
        depth = sum(&samples(&body), "patchfleet_queue_depth", &[]);
        if depth <= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, body) = stack.http_get(&identity, "/metrics").expect("metrics");
    let by_kind: Vec<String> = body
        .lines()
        .filter(|line| line.starts_with("patchfleet_queue_depth"))
        .map(str::to_owned)
        .collect();
    assert!(
        depth <= 1.0,
        "nothing piles up: queue depth {depth}: {by_kind:?}"
    );

    // JSON logs: every line is a JSON object; every line logged inside an account-region
    // pass names the account, its id and the region.
    let log = stack.replica_log(&identity).expect("log");
    let mut in_region = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        let spans = entry["spans"].as_array().cloned().unwrap_or_default();
        let span = |name: &str| spans.iter().find(|s| s["name"] == name).cloned();
        if let Some(region) = span("region") {
            in_region += 1;
            let account = span("account").expect("a region pass runs inside its account's");
            assert!(
                account["account"].is_string() && account["account_id"].is_string(),
                "{line}"
            );
            assert!(region["region"].is_string(), "{line}");
        }
        if let Some(owner) = span("owner") {
            assert!(
                owner["kind"].is_string()
                    && owner["name"].is_string()
                    && owner["namespace"].is_string(),
                "{line}"
            );
        }
    }
    assert!(
        in_region > 0,
        "no line was logged inside an account-region pass:\n{log}"
    );
}

/// A kubeconfig for the same API server that authenticates with `token` only.
fn kubeconfig_with_token(stack: &Stack, token: &str, path: &std::path::Path) {
    let admin = stack
        .kubectl([
            "config",
            "view",
            "--raw",
            "--minify",
            "--flatten",
            "-o",
            "json",
        ])
        .expect("kubeconfig");
    let mut config: serde_json::Value = serde_json::from_str(&admin).expect("kubeconfig JSON");
    let users = config["users"].as_array_mut().expect("users");
    assert_eq!(users.len(), 1, "a minified kubeconfig has one user");
    users[0]["user"] = serde_json::json!({ "token": token });
    std::fs::write(path, serde_json::to_string(&config).expect("JSON")).expect("written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_does_its_whole_job_with_only_the_charts_rbac() {
    use patchfleet_tests::helm::Scratch;

    let stack = Stack::start("rbac").await.expect("stack starts");
    let namespace = "patchfleet-system";
    stack
        .kubectl(["create", "namespace", namespace])
        .expect("namespace");

    // The chart's ServiceAccount and RBAC, exactly as helm renders them.
    let scratch = Scratch::new("rbac");
    let values = scratch.values("values", "clusterId: e2e-rbac\n");
    let rendered = scratch.render(
        "patchfleet",
        namespace,
        &values,
        &[
            "--show-only",
            "templates/serviceaccount.yaml",
            "--show-only",
            "templates/clusterrole.yaml",
            "--show-only",
            "templates/role.yaml",
        ],
    );
    let manifest = scratch.path("rbac.yaml");
    std::fs::write(&manifest, rendered).expect("written");
    stack
        .kubectl(["apply".as_ref(), "-f".as_ref(), manifest.as_os_str()])
        .expect("the chart's RBAC applies");

    // The ServiceAccount's own token (TokenRequest), as a pod would mount it.
    let token = stack
        .kubectl([
            "create",
            "token",
            "patchfleet",
            "-n",
            namespace,
            "--duration",
            "1h",
        ])
        .expect("token");
    let kubeconfig = scratch.path("service-account.kubeconfig");
    kubeconfig_with_token(&stack, token.trim(), &kubeconfig);
    let as_controller = |args: &[&str]| {
        stack
            .plane
            .kubectl_command(args)
            // The last --kubeconfig wins over the admin one kubectl_command passes.
            .args(["--kubeconfig", &kubeconfig.to_string_lossy()])
            .output()
            .expect("kubectl runs")
    };
    for denied in [
        &["get", "secrets", "-A"][..],
        &["get", "secrets", "-n", namespace],
        &["get", "configmaps", "-n", "default"],
        &["get", "pods", "-A"],
        &["delete", "systemaccount", "customer-a-aws"],
        &["create", "namespace", "not-allowed"],
    ] {
        let output = as_controller(denied);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains("Forbidden"),
            "the controller's identity may not `kubectl {}`: {stderr}",
            denied.join(" ")
        );
    }

    // The whole job with that identity: converge, emit Events, delete and clean up.
    let identity = "rbac-replica";
    stack
        .start_replica(
            identity,
            &["--lease-namespace", namespace, "--lease-name", "patchfleet"],
            &[("KUBECONFIG", &kubeconfig.to_string_lossy())],
        )
        .expect("controller");
    stack.apply("examples").expect("examples apply");
    stack
        .wait_ready(&ALL_KINDS, CONVERGE)
        .expect("examples converge with the chart's RBAC");
    let events = stack
        .kubectl([
            "get",
            "events.events.k8s.io",
            "-n",
            "patching",
            "-o",
            "jsonpath={.items[*].reportingController}",
        ])
        .expect("events");
    assert!(
        events.contains("patchfleet"),
        "Events were recorded: {events}"
    );
    stack
        .kubectl([
            "delete",
            "patchgroup",
            "late",
            "-n",
            "patching",
            "--timeout=120s",
        ])
        .expect("a deletion completes: the finalizer was released");
    stack
        .kubectl([
            "delete",
            "systemaccount",
            "customer-b-vmware",
            "--timeout=120s",
        ])
        .expect("an account's deletion completes");
    let log = stack.replica_log(identity).expect("log");
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the controller was refused something:\n{log}"
    );
}
