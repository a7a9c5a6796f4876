//! Throttling and server errors are retried within each account-region's own budget.

use std::time::Duration;

use ssm_sim::FaultSpec;

use patchfleet_ssm::{EdgeSettings, ErrorKind, apply, observe};

use crate::common::*;

#[tokio::test]
async fn thirty_percent_throttling_still_converges() {
    let server = start(sim_config()).await;
    let edge = edge_with(EdgeSettings {
        max_attempts: 10,
        ..settings(&server)
    })
    .await;
    let client = edge.account(&access_a()).await.client(REGION);
    // Credentials first, so STS is not part of the experiment.
    edge.account(&access_a())
        .await
        .verify_identity()
        .await
        .expect("identity");
    server.sim().faults.set(FaultSpec {
        seed: 42,
        throttle_rate: 0.3,
        server_error_rate: 0.05,
        accounts: vec![ACCOUNT_A.into()],
        ..FaultSpec::default()
    });
    let (baselines, windows) = examples_state();
    let ops = create_all(&baselines[..6], &windows);
    let report = apply(&client, CLUSTER, &ops).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    let fps = fingerprints(&baselines[..6], &windows, 1);
    let seen = observe(&client, CLUSTER, &fps, true)
        .await
        .expect("observe despite throttling");
    assert_eq!(seen.observed.baselines.len(), 6);
    assert_eq!(seen.observed.windows.len(), 3);

    let throttled: u64 = server
        .sim()
        .counters
        .snapshot()
        .iter()
        .filter(|c| c.key.outcome == "ThrottlingException")
        .map(|c| c.count)
        .sum();
    let calls = report.calls + seen.calls;
    println!("30% throttling: {calls} calls, {throttled} throttled answers, all retried");
    assert!(throttled > 0);
}

#[tokio::test]
async fn throttling_beyond_the_retries_is_classified() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    server.sim().faults.set(FaultSpec {
        throttle_rate: 1.0,
        operations: vec!["DescribePatchBaselines".into()],
        ..FaultSpec::default()
    });
    let err = observe(&client, CLUSTER, &Default::default(), false)
        .await
        .expect_err("always throttled");
    assert_eq!(err.kind(), ErrorKind::Throttled, "{err}");
    assert_eq!(err.operation, "DescribePatchBaselines");
}

/// Calls the simulator answered with a throttling error in one account.
fn throttled_in(server: &ssm_sim::Server, account: &str) -> u64 {
    server
        .sim()
        .counters
        .snapshot()
        .iter()
        .filter(|c| c.key.account == account && c.key.outcome == "ThrottlingException")
        .map(|c| c.count)
        .sum()
}

/// Account A is throttled on every call and keeps retrying (10 attempts, backoff from
/// 200 ms): account B's pass, started after A's, is answered in full while A is still
/// retrying. Nothing is timed: if B waited on anything of A's (a shared rate limit, retry
/// budget, lock or connection), A would be finished, or B never would.
#[tokio::test]
async fn one_throttled_account_does_not_slow_another() {
    let server = start(sim_config()).await;
    let edge = edge_with(EdgeSettings {
        max_attempts: 10,
        initial_backoff: Duration::from_millis(200),
        ..settings(&server)
    })
    .await;
    let a = edge.account(&access_a()).await.client(REGION);
    let b = edge
        .account(&patchfleet_ssm::AccountAccess {
            name: "customer-b-vmware".into(),
            account_id: ACCOUNT_B.into(),
            role_arn: Some(format!("arn:aws:iam::{ACCOUNT_B}:role/patchfleet")),
            external_id: None,
        })
        .await
        .client(REGION);
    // Warm both accounts' credentials before throttling account A's SSM.
    for c in [&a, &b] {
        observe(c, CLUSTER, &Default::default(), false)
            .await
            .expect("warm");
    }
    server.sim().faults.set(FaultSpec {
        throttle_rate: 1.0,
        accounts: vec![ACCOUNT_A.into()],
        ..FaultSpec::default()
    });
    let throttled_before = throttled_in(&server, ACCOUNT_A);
    let a_pass = tokio::spawn(async move {
        observe(&a, CLUSTER, &patchfleet_ssm::Fingerprints::default(), false).await
    });
    // A is under way: its first attempt has been throttled.
    while throttled_in(&server, ACCOUNT_A) == throttled_before {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let observed = observe(&b, CLUSTER, &patchfleet_ssm::Fingerprints::default(), false)
        .await
        .expect("B unaffected");
    assert_eq!(observed.calls, 3, "one list per kind, no retry");
    assert!(
        !a_pass.is_finished(),
        "B was answered only once A had given up: it waited on A"
    );
    assert_eq!(throttled_in(&server, ACCOUNT_B), 0);
    a_pass.abort();
}
