//! The contract with the planner: observe -> plan -> apply, repeated, converges, and the
//! converged pass costs cheap reads and no writes.

use patchfleet_planner::model::Desired;
use patchfleet_planner::normalize::normalize_baseline;
use patchfleet_planner::{Orphaned, Settings, baseline_fingerprint, diff, window_fingerprint};
use patchfleet_ssm::{Fingerprints, apply, observe};

use crate::common::*;

fn desired() -> Desired {
    let (baselines, windows) = examples_state();
    Desired {
        baselines: baselines
            .into_iter()
            .map(|mut b| {
                b.definition = normalize_baseline(&b.definition);
                (b.name.clone(), b)
            })
            .collect(),
        windows: windows.into_iter().map(|w| (w.name.clone(), w)).collect(),
        ..Desired::default()
    }
}

fn expected(desired: &Desired) -> Fingerprints {
    Fingerprints {
        baselines: desired
            .baselines
            .values()
            .map(|b| (b.name.clone(), baseline_fingerprint(b)))
            .collect(),
        windows: desired
            .windows
            .values()
            .map(|w| (w.name.clone(), window_fingerprint(w)))
            .collect(),
    }
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
            assert!(pass <= 3, "converged in {pass} passes: {writes:?}");
            // Converged: list calls and one tag read per object, no deep reads.
            let objects = desired.baselines.len() + desired.windows.len();
            assert_eq!(seen.calls as usize, 3 + objects);
            return;
        }
        let report = apply(&client, CLUSTER, &plan.operations).await;
        assert!(report.error.is_none(), "pass {pass}: {:?}", report.error);
        writes.push(report.applied.len());
    }
    panic!("no convergence after 4 passes: {writes:?}");
}
