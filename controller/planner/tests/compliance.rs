//! The compliance pass, pure: which groups and windows patchfleet reads back in an
//! account-region, how nodes are counted from what SSM reports, and how many calls a
//! pass makes (the formula docs/compliance.md gives, counted exactly against the
//! simulator in controller/ssm/tests/sim/compliance.rs).

mod common;

use std::collections::BTreeMap;

use patchfleet_api::v1alpha1::{OperatingSystem, PatchOperation, Platform, WindowRun};
use patchfleet_planner::builders::*;
use patchfleet_planner::compliance::{
    NodeQuotas, NodeReading, PassShape, PatchStateReading, RegionIntent, RegionReading, calls,
    intent, provider, tally,
};
use patchfleet_planner::model::{Owner, OwnerKind};

use common::*;

fn linux(id: &str) -> NodeReading {
    NodeReading {
        id: id.to_owned(),
        ping_status: "Online".to_owned(),
        platform_type: "Linux".to_owned(),
        source_type: None,
        latest_agent: Some(true),
    }
}

fn state(node: &str, group: &str, baseline: &str) -> PatchStateReading {
    PatchStateReading {
        node_id: node.to_owned(),
        patch_group: group.to_owned(),
        baseline_id: baseline.to_owned(),
        ..PatchStateReading::default()
    }
}

fn group_owner() -> Owner {
    Owner::new(OwnerKind::PatchGroup, NS, "early")
}

fn window_owner() -> Owner {
    Owner::new(OwnerKind::MaintenanceWindow, NS, "monthly")
}

fn run(id: &str, status: &str, start: &str, succeeded: u32, failed: u32) -> WindowRun {
    WindowRun {
        execution_id: id.to_owned(),
        status: status.to_owned(),
        start_time: Some(start.to_owned()),
        end_time: None,
        succeeded,
        failed,
    }
}

/// The world's intent in the usual account-region: group "early", window "monthly".
fn world_intent() -> RegionIntent {
    intent(&world(), &mk_settings(), &ar())
}

#[test]
fn intent_names_the_groups_and_windows_planned_in_the_account_region() {
    let planned = world_intent();
    assert_eq!(
        planned.groups,
        BTreeMap::from([("early".to_owned(), group_owner())])
    );
    let window = planned.windows.get(MONTHLY).expect("the monthly window");
    assert_eq!(window.owner, window_owner());
    assert!(window.installs, "monthly has an Install task");
    assert_eq!(planned.platform, Platform::Aws);

    // A Scan-only window does not count for the last install.
    let mut inventory = world();
    inventory.windows[0].spec.tasks = vec![mk_task("scan", PatchOperation::Scan)];
    let scan_only = intent(&inventory, &mk_settings(), &ar());
    assert!(!scan_only.windows[MONTHLY].installs);

    // A region the account does not manage: nothing to read there.
    let elsewhere = mk_account_region(ACCOUNT, ACCOUNT_ID, "ap-south-1");
    assert_eq!(
        intent(&world(), &mk_settings(), &elsewhere),
        RegionIntent::default()
    );
}

#[test]
fn each_node_counts_once_by_what_ssm_reports() {
    let mut offline = linux("i-0000000000000002");
    offline.ping_status = "ConnectionLost".to_owned();
    let mut old_agent = linux("i-0000000000000003");
    old_agent.latest_agent = Some(false);
    let windows = NodeReading {
        platform_type: "Windows".to_owned(),
        // SSM does not say for Windows: never counted as needing an update.
        latest_agent: Some(false),
        ..linux("i-0000000000000004")
    };
    let never_scanned = linux("i-0000000000000005");
    let reading = RegionReading {
        nodes: vec![
            linux("i-0000000000000001"),
            offline,
            old_agent,
            windows,
            never_scanned,
        ],
        states: vec![
            state("i-0000000000000001", "early", "pb-1"),
            PatchStateReading {
                missing: 3,
                security_non_compliant: 3,
                ..state("i-0000000000000002", "early", "pb-1")
            },
            PatchStateReading {
                failed: 1,
                missing: 1,
                critical_non_compliant: 1,
                ..state("i-0000000000000003", "early", "pb-1")
            },
            PatchStateReading {
                installed_pending_reboot: 2,
                other_non_compliant: 2,
                ..state("i-0000000000000004", "early", "pb-2")
            },
        ],
        registrations: vec![
            mk_registration("early", OperatingSystem::AmazonLinux2, "pb-1"),
            mk_registration("early", OperatingSystem::Windows, "pb-2"),
        ],
        windows: BTreeMap::new(),
    };
    let figures = tally(&reading, &world_intent(), NodeQuotas::default());
    let c = &figures.region.counts;
    assert_eq!((c.instances, c.online), (5, 4));
    assert_eq!(
        (c.platforms.linux, c.platforms.windows, c.platforms.macos),
        (4, 1, 0)
    );
    assert_eq!(c.providers.aws, 5);
    assert_eq!(c.agent_updates, 1, "the Linux node with an old agent only");
    assert_eq!((c.with_missing, c.with_failed, c.pending_reboot), (2, 1, 1));
    assert_eq!((c.compliant, c.non_compliant, c.unreported), (1, 3, 1));
    assert_eq!(
        (
            c.severities.critical,
            c.severities.security,
            c.severities.other
        ),
        (1, 1, 1),
        "each non-compliant node once, by its most severe class"
    );
    assert_eq!(figures.region.overwritten, 0);
    // The four that reported under "early" are the group's; the unscanned one is not.
    let group = &figures.groups[&group_owner()];
    assert_eq!(
        (group.instances, group.non_compliant, group.unreported),
        (4, 3, 0)
    );
    assert_eq!(figures.region.node_headroom, 2_395);
    assert_eq!(figures.region.hybrid_node_headroom, 1_000);
}

#[test]
fn a_scan_with_another_baseline_is_counted_as_overwritten() {
    let reading = RegionReading {
        nodes: vec![
            linux("i-0000000000000001"),
            linux("i-0000000000000002"),
            linux("i-0000000000000003"),
        ],
        states: vec![
            state("i-0000000000000001", "early", "pb-1"),
            // Another tool scanned with its own baseline.
            state("i-0000000000000002", "early", "pb-other"),
            // Not one of patchfleet's groups: not patchfleet's to judge.
            state("i-0000000000000003", "someone-else", "pb-other"),
        ],
        registrations: vec![mk_registration(
            "early",
            OperatingSystem::AmazonLinux2,
            "pb-1",
        )],
        windows: BTreeMap::new(),
    };
    let figures = tally(&reading, &world_intent(), NodeQuotas::default());
    assert_eq!(figures.region.overwritten, 1);

    // Before patchfleet registered the group, nothing is judged overwritten.
    let unregistered = RegionReading {
        registrations: Vec::new(),
        ..reading
    };
    let figures = tally(&unregistered, &world_intent(), NodeQuotas::default());
    assert_eq!(figures.region.overwritten, 0);
}

#[test]
fn providers_come_from_the_source_type_else_the_account_platform() {
    let hybrid = |source: Option<&str>| NodeReading {
        source_type: source.map(str::to_owned),
        ..linux("mi-00000000000000001")
    };
    let cases = [
        (linux("i-0000000000000001"), Platform::Gcp, Platform::Aws),
        (
            hybrid(Some("Microsoft.Compute/virtualMachines")),
            Platform::Aws,
            Platform::Azure,
        ),
        (
            hybrid(Some("compute.googleapis.com/Instance")),
            Platform::Vmware,
            Platform::Gcp,
        ),
        (
            hybrid(Some("AWS::SSM::ManagedInstance")),
            Platform::Vmware,
            Platform::Vmware,
        ),
        (
            hybrid(Some("AWS::SSM::ManagedInstance")),
            Platform::Aws,
            Platform::Onprem,
        ),
        (hybrid(None), Platform::Other, Platform::Other),
    ];
    for (node, account_platform, want) in cases {
        assert_eq!(
            provider(&node, account_platform),
            want,
            "{node:?} in a {account_platform:?} account"
        );
    }
}

#[test]
fn hybrid_nodes_use_both_quotas() {
    let reading = RegionReading {
        nodes: vec![
            linux("i-0000000000000001"),
            linux("mi-00000000000000001"),
            linux("mi-00000000000000002"),
        ],
        ..RegionReading::default()
    };
    let quotas = NodeQuotas {
        managed_nodes: 2,
        hybrid_nodes: 5,
    };
    let figures = tally(&reading, &world_intent(), quotas);
    assert_eq!(
        figures.region.node_headroom, -1,
        "over quota shows negative"
    );
    assert_eq!(figures.region.hybrid_node_headroom, 3);
}

#[test]
fn the_last_install_is_the_latest_run_of_an_installing_window() {
    let mut inventory = world();
    let mut scan = monthly_window();
    scan.metadata.name = Some("nightly-scan".to_owned());
    scan.spec.tasks = vec![mk_task("scan", PatchOperation::Scan)];
    inventory.windows.push(scan);
    let planned = intent(&inventory, &mk_settings(), &ar());
    let scan_name = "patchfleet-patching-nightly-scan";
    assert!(planned.windows.contains_key(scan_name), "{planned:?}");

    let reading = RegionReading {
        windows: BTreeMap::from([
            (
                MONTHLY.to_owned(),
                Some(run("e-1", "FAILED", "2026-11-01T02:00:00Z", 3, 1)),
            ),
            // Later, but it only scans.
            (
                scan_name.to_owned(),
                Some(run("e-2", "SUCCESS", "2026-11-02T02:00:00Z", 4, 0)),
            ),
        ]),
        ..RegionReading::default()
    };
    let figures = tally(&reading, &planned, NodeQuotas::default());
    let last = figures.region.last_install.expect("an install ran");
    assert_eq!(last.window, "patching/monthly");
    assert_eq!(last.run.execution_id, "e-1");
    assert!(last.run.is_failure());
    assert_eq!(figures.windows.len(), 2);

    // A window that has not run yet is listed without a run.
    let figures = tally(&RegionReading::default(), &planned, NodeQuotas::default());
    assert_eq!(figures.windows.get(&window_owner()), Some(&None));
    assert_eq!(figures.region.last_install, None);
}

#[test]
fn calls_follow_the_documented_formula() {
    let cases = [
        // An empty account-region: one node list, one registration list.
        (PassShape::default(), 2),
        // 5,000 nodes in 10 groups of 500, every node reported under its group,
        // 3 windows, each listing its last known run again, of which one is new
        // (2 tasks on 500 nodes each).
        (
            PassShape {
                nodes: 5_000,
                registrations: 20,
                group_states: vec![500; 10],
                other_nodes: 0,
                planned_windows: 3,
                windows_listed: 3,
                executions_listed: vec![1, 1, 1],
                executions_read: vec![vec![500, 500]],
            },
            100 + 1 + 50 + 1 + 3 + (1 + 10),
        ),
        // 120 nodes, 70 of them outside patchfleet's groups: read 50 at a time.
        (
            PassShape {
                nodes: 120,
                registrations: 1,
                group_states: vec![50],
                other_nodes: 70,
                ..PassShape::default()
            },
            3 + 1 + 1 + 2,
        ),
        // A window planned but not in SSM yet: the window list is still read.
        (
            PassShape {
                nodes: 10,
                registrations: 2,
                group_states: vec![10],
                planned_windows: 1,
                windows_listed: 0,
                ..PassShape::default()
            },
            1 + 1 + 1 + 1,
        ),
        // A group no node reported under still costs its one call.
        (
            PassShape {
                nodes: 10,
                registrations: 2,
                group_states: vec![10, 0],
                ..PassShape::default()
            },
            1 + 1 + 2,
        ),
    ];
    for (shape, want) in cases {
        assert_eq!(calls(&shape), want, "{shape:?}");
    }
}

#[test]
fn a_group_lists_its_worst_account_regions_first_and_at_most_twenty() {
    let regions: Vec<_> = (0..25)
        .map(|i| mk_account_region("a", &format!("{:012}", i), "eu-west-1"))
        .collect();
    let counts: Vec<_> = (0..25u32)
        .map(|i| patchfleet_api::v1alpha1::NodeCounts {
            instances: 10,
            non_compliant: i % 7,
            ..Default::default()
        })
        .collect();
    let nodes = patchfleet_planner::compliance::group_nodes(
        regions
            .iter()
            .zip(&counts)
            .map(|(r, c)| (r, c, u32::from(r.account_id.ends_with('3')))),
    );
    assert_eq!(nodes.total.instances, 250);
    assert_eq!(nodes.regions.len(), 20);
    assert_eq!(nodes.omitted_regions, 5);
    assert_eq!(nodes.overwritten, 3, "accounts ...03, ...13 and ...23");
    let worst: Vec<u32> = nodes
        .regions
        .iter()
        .map(|r| r.counts.non_compliant)
        .collect();
    assert!(worst.windows(2).all(|w| w[0] >= w[1]), "{worst:?}");
    assert_eq!(worst[0], 6);
}

#[test]
fn a_window_counts_its_last_runs_and_lists_failures_first() {
    let a = mk_account_region("a", "111111111111", "eu-west-1");
    let b = mk_account_region("b", "222222222222", "eu-west-1");
    let c = mk_account_region("c", "333333333333", "eu-west-1");
    let ok = run("e-ok", "SUCCESS", "2026-11-02T02:00:00Z", 5, 0);
    // SSM says SUCCESS when the task ran, even if a node's invocation failed.
    let node_failed = run("e-node", "SUCCESS", "2026-11-01T02:00:00Z", 4, 1);
    let runs = patchfleet_planner::compliance::window_runs([
        (&a, Some(&ok)),
        (&b, Some(&node_failed)),
        (&c, None),
    ]);
    assert_eq!((runs.succeeded, runs.failed, runs.never_run), (1, 1, 1));
    assert_eq!(runs.in_progress, 0);
    // A run still going counts neither as succeeded nor, until it fails, as failed.
    let going = WindowRun {
        end_time: None,
        ..run("e-going", "IN_PROGRESS", "2026-11-03T02:00:00Z", 2, 0)
    };
    let later = patchfleet_planner::compliance::window_runs([(&a, Some(&going))]);
    assert_eq!(
        (later.succeeded, later.failed, later.in_progress),
        (0, 0, 1)
    );
    // Start times compare as instants, whatever their fraction digits.
    let early = run("e-early", "SUCCESS", "2026-11-03T02:00:00Z", 1, 0);
    let late = run("e-late", "SUCCESS", "2026-11-03T02:00:00.5Z", 1, 0);
    let both = patchfleet_planner::compliance::window_runs([(&a, Some(&early)), (&b, Some(&late))]);
    assert_eq!(both.last_runs[0].run.execution_id, "e-late");
    let order: Vec<&str> = runs
        .last_runs
        .iter()
        .map(|r| r.run.execution_id.as_str())
        .collect();
    assert_eq!(order, ["e-node", "e-ok"]);
}
