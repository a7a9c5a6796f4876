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

#[tokio::test]
async fn one_throttled_account_does_not_slow_another() {
    let server = start(sim_config()).await;
    let edge = edge_with(EdgeSettings {
        max_attempts: 4,
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
    let none = patchfleet_ssm::Fingerprints::default();
    let started = tokio::time::Instant::now();
    let (ra, rb) = tokio::join!(
        observe(&a, CLUSTER, &none, false),
        observe(&b, CLUSTER, &none, false)
    );
    assert_eq!(ra.expect_err("A throttled").kind(), ErrorKind::Throttled);
    rb.expect("B unaffected");
    println!("A gave up after {:?}", started.elapsed());
}
