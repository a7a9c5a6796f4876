//! The contract with the planner: observe -> plan -> apply, repeated, converges, and the
//! converged pass costs the list calls and no writes; an interrupted batch is finished.

use patchfleet_planner::model::Desired;
use patchfleet_planner::{Orphaned, Settings, diff};
use patchfleet_ssm::{apply, observe};

use crate::common::*;

fn desired() -> Desired {
    let (baselines, windows) = examples_state();
    desired_of(baselines, windows)
}

#[tokio::test]
async fn observe_plan_apply_converges() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let settings = Settings::new(CLUSTER);
    let desired = desired();
    let fingerprints = expected(&desired);
    let mut writes = Vec::new();
    for pass in 1..=4 {
        let seen = observe(&client, CLUSTER, &fingerprints, false)
            .await
            .expect("observe");
        let plan = diff(&settings, &desired, &seen.observed, &Orphaned::default());
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        println!(
            "pass {pass}: {} reads, {} writes planned",
            seen.calls,
            plan.operations.len()
        );
        if plan.operations.is_empty() {
            assert_eq!(pass, 2, "converged in {pass} passes: {writes:?}");
            // Converged: the three list calls, nothing else.
            assert_eq!(seen.calls, 3);
            return;
        }
        let report = apply(&client, CLUSTER, &plan.operations).await;
        assert!(report.error.is_none(), "pass {pass}: {:?}", report.error);
        writes.push(report.applied.len());
    }
    panic!("no convergence after 4 passes: {writes:?}");
}

#[tokio::test]
async fn a_batch_stopped_before_a_new_windows_tasks_leaves_it_pending_then_finishes() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let settings = Settings::new(CLUSTER);
    let desired = desired();
    let fingerprints = expected(&desired);
    server.sim().faults.set(ssm_sim::FaultSpec {
        server_error_rate: 1.0,
        operations: vec!["RegisterTaskWithMaintenanceWindow".into()],
        ..ssm_sim::FaultSpec::default()
    });
    let seen = observe(&client, CLUSTER, &fingerprints, false)
        .await
        .expect("observe");
    let plan = diff(&settings, &desired, &seen.observed, &Orphaned::default());
    let report = apply(&client, CLUSTER, &plan.operations).await;
    assert!(report.error.is_some(), "the first task fails");
    server.sim().faults.set(ssm_sim::FaultSpec::default());

    // The window stayed PENDING: a cheap pass reads it deeply and completes it.
    let seen = observe(&client, CLUSTER, &fingerprints, false)
        .await
        .expect("observe");
    let window = seen
        .observed
        .windows
        .iter()
        .find(|w| w.targets.is_some())
        .expect("the stopped window is read deeply");
    assert_eq!(
        window
            .tags
            .get(patchfleet_planner::model::tags::FINGERPRINT)
            .map(String::as_str),
        Some(patchfleet_planner::fingerprint::PENDING)
    );
    for pass in 1..=3 {
        let seen = observe(&client, CLUSTER, &fingerprints, false)
            .await
            .expect("observe");
        let plan = diff(&settings, &desired, &seen.observed, &Orphaned::default());
        if plan.operations.is_empty() {
            assert_eq!(seen.calls, 3, "converged after {pass} passes");
            let deep = observe(&client, CLUSTER, &fingerprints, true)
                .await
                .expect("observe");
            let check = diff(&settings, &desired, &deep.observed, &Orphaned::default());
            assert_eq!(check.operations, [], "a deep read agrees");
            return;
        }
        let report = apply(&client, CLUSTER, &plan.operations).await;
        assert!(report.error.is_none(), "{:?}", report.error);
    }
    panic!("not finished");
}
