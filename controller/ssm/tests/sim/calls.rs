//! What passes cost, counted exactly by the simulator, on the workload (24
//! baselines, 24 registrations, 3 windows with 1 target and 2 tasks each: 60 objects):
//! converging from empty, a cheap pass, a deep pass and a restart; and paging past
//! AWS's largest page.

use std::collections::BTreeMap;

use aws_sdk_ssm::types::OperatingSystem as SdkOs;
use patchfleet_planner::model::{Desired, Observed};
use patchfleet_planner::{Orphaned, Settings, diff};
use patchfleet_ssm::{Fingerprints, SsmClient, apply, observe};
use ssm_sim::Server;

use crate::common::*;

/// Observe, plan, apply: what the runtime's pass does. The planned operation count.
async fn pass(client: &SsmClient, desired: &Desired, deep: bool) -> (Observed, usize) {
    let seen = observe(client, CLUSTER, &expected(desired), deep)
        .await
        .expect("observe");
    let plan = diff(
        &Settings::new(CLUSTER),
        desired,
        &seen.observed,
        &Orphaned::default(),
    );
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    if !plan.operations.is_empty() {
        let report = apply(client, CLUSTER, &plan.operations).await;
        assert!(report.error.is_none(), "{:?}", report.error);
    }
    (seen.observed, plan.operations.len())
}

/// The simulator's count since the last reset, by operation, then reset.
fn take_calls(server: &Server) -> BTreeMap<String, u64> {
    let calls = sim_calls(server, ACCOUNT_A, REGION);
    server.sim().counters.reset();
    calls
}

fn total(calls: &BTreeMap<String, u64>) -> u64 {
    calls.values().sum()
}

const LISTS: [&str; 3] = [
    "DescribeMaintenanceWindows",
    "DescribePatchBaselines",
    "DescribePatchGroups",
];

fn lists_only() -> BTreeMap<String, u64> {
    LISTS.iter().map(|l| ((*l).to_owned(), 1)).collect()
}

/// Converged from empty in one writing pass and one confirming pass.
async fn converged(server: &Server, client: &SsmClient, desired: &Desired) {
    let (_, planned) = pass(client, desired, false).await;
    assert!(planned > 0);
    let (_, planned) = pass(client, desired, false).await;
    assert_eq!(planned, 0, "the confirming pass writes nothing");
    server.sim().counters.reset();
}

#[tokio::test]
async fn converging_from_empty_costs_one_call_per_object_written_plus_two_passes_of_lists() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let (baselines, windows) = workload();
    let objects = object_count(&baselines, &windows) as u64;
    assert_eq!(objects, 60);
    let desired = desired_of(baselines, windows);

    let mut passes = Vec::new();
    loop {
        let (_, planned) = pass(&client, &desired, false).await;
        passes.push(planned);
        if planned == 0 {
            break;
        }
        assert!(passes.len() < 4, "no convergence: {passes:?}");
    }
    let calls = take_calls(&server);
    println!(
        "converge from empty: {passes:?} operations; {} SSM calls for {objects} objects: {calls:?}",
        total(&calls)
    );
    assert_eq!(passes, [60, 0], "one writing pass, one confirming pass");
    let want: BTreeMap<String, u64> = [
        ("DescribePatchBaselines", 2),
        ("DescribePatchGroups", 2),
        ("DescribeMaintenanceWindows", 2),
        ("CreatePatchBaseline", 24),
        ("RegisterPatchBaselineForPatchGroup", 24),
        ("CreateMaintenanceWindow", 3),
        ("RegisterTargetWithMaintenanceWindow", 3),
        ("RegisterTaskWithMaintenanceWindow", 6),
        // Each new window's real fingerprint, once its target and tasks are in.
        ("UpdateMaintenanceWindow", 3),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(calls, want);
    assert_eq!(total(&calls), 69);
    assert!(
        total(&calls) * 10 <= objects * 12,
        "at most 1.2 calls per object"
    );
}

#[tokio::test]
async fn a_cheap_pass_of_a_converged_account_region_is_three_list_calls() {
    let server = start(sim_config()).await;
    let (edge, client) = client_a(&server).await;
    let (baselines, windows) = workload();
    let desired = desired_of(baselines, windows);
    converged(&server, &client, &desired).await;

    for _ in 0..2 {
        // A client per pass, as the runtime builds them: the memory is the account's.
        let client = edge.account(&access_a()).await.client(REGION);
        let (observed, planned) = pass(&client, &desired, false).await;
        assert_eq!(planned, 0);
        assert_eq!(take_calls(&server), lists_only(), "no tag read, no Get*");
        assert!(observed.baselines.iter().all(|b| b.definition.is_none()));
        assert!(observed.windows.iter().all(|w| w.targets.is_none()));
    }
}

#[tokio::test]
async fn a_deep_pass_reads_each_owned_object_once() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let (baselines, windows) = workload();
    let desired = desired_of(baselines, windows);
    converged(&server, &client, &desired).await;

    let (observed, planned) = pass(&client, &desired, true).await;
    assert_eq!(planned, 0, "a deep read finds it converged");
    assert!(observed.baselines.iter().all(|b| b.definition.is_some()));
    let calls = take_calls(&server);
    println!("deep pass: {} calls {calls:?}", total(&calls));
    let mut want = lists_only();
    want.extend(
        [
            ("GetPatchBaseline", 24),
            ("DescribeMaintenanceWindowTargets", 3),
            ("DescribeMaintenanceWindowTasks", 3),
            ("GetMaintenanceWindowTask", 6),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    assert_eq!(
        calls, want,
        "no ListTagsForResource: ownership is remembered"
    );
    // 3 lists + 24 baselines + per window its targets list (window and target), its
    // tasks list and one read per task.
    assert_eq!(total(&calls), 39);
}

#[tokio::test]
async fn a_restart_reads_each_patchfleet_named_objects_tags_once() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let (baselines, windows) = workload();
    let desired = desired_of(baselines, windows);
    converged(&server, &client, &desired).await;

    // A new process: a fresh edge, nothing remembered.
    let (_edge, client) = client_a(&server).await;
    let (observed, planned) = pass(&client, &desired, false).await;
    assert_eq!(planned, 0, "ownership proven again by the tags");
    let calls = take_calls(&server);
    println!(
        "first pass after a restart: {} calls {calls:?}",
        total(&calls)
    );
    let mut want = lists_only();
    want.insert("ListTagsForResource".into(), 27);
    assert_eq!(calls, want, "one tag read per baseline and window, no Get*");
    assert_eq!(
        observed.baselines.len() + observed.windows.len(),
        27,
        "each object read once"
    );

    let (_, planned) = pass(&client, &desired, false).await;
    assert_eq!(planned, 0);
    assert_eq!(take_calls(&server), lists_only(), "then cheap again");
    // A deep pass after the restart reads no tags either.
    pass(&client, &desired, true).await;
    assert!(!take_calls(&server).contains_key("ListTagsForResource"));
}

#[tokio::test]
async fn a_changed_fingerprint_costs_that_objects_deep_read_and_one_write() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let (mut baselines, windows) = workload();
    let desired = desired_of(baselines.clone(), windows.clone());
    converged(&server, &client, &desired).await;

    std::sync::Arc::make_mut(&mut baselines[0].definition).approved_patches =
        vec!["KB5034439".into()];
    let changed = desired_of(baselines, windows);
    let (_, planned) = pass(&client, &changed, false).await;
    assert_eq!(planned, 1);
    let mut want = lists_only();
    want.insert("GetPatchBaseline".into(), 1);
    // The fingerprint travels in the description: no AddTagsToResource.
    want.insert("UpdatePatchBaseline".into(), 1);
    assert_eq!(take_calls(&server), want);
    let (_, planned) = pass(&client, &changed, false).await;
    assert_eq!(planned, 0);
    assert_eq!(take_calls(&server), lists_only());
}

#[tokio::test]
async fn lists_follow_every_page() {
    let mut config = sim_config();
    config.quotas.patch_baselines = 250;
    let server = start(config).await;
    let (_edge, client) = client_a(&server).await;
    for i in 0..230 {
        client
            .sdk()
            .create_patch_baseline()
            .name(format!("team-{i:03}"))
            .operating_system(SdkOs::AmazonLinux2023)
            .send()
            .await
            .expect("create");
    }
    let seen = observe(&client, CLUSTER, &Fingerprints::default(), false)
        .await
        .expect("observe");
    assert_eq!(seen.observed.baselines.len(), 230);
    // Three pages of baselines (100 each), one of groups, one of windows.
    assert_eq!(seen.calls, 5);
}
