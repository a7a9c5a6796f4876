//! The dashboard's per-instance detail, pure: a group's nodes worst first, a node's patches
//! in the order that needs attention, and the cost of each read.

use patchfleet_api::v1alpha1::Platform;
use patchfleet_planner::compliance::NodeReading;
use patchfleet_planner::instances::{
    InstancePatch, NodeInformation, PatchCounts, group_calls, group_instances, instance_calls,
    order_patches,
};

fn node(id: &str, ping: &str, source: Option<&str>) -> NodeInformation {
    NodeInformation {
        reading: NodeReading {
            id: id.to_owned(),
            ping_status: ping.to_owned(),
            platform_type: "Linux".to_owned(),
            source_type: source.map(str::to_owned),
            latest_agent: Some(true),
        },
        ..NodeInformation::default()
    }
}

fn counts(missing: u32, failed: u32, critical: u32, reboot: u32) -> PatchCounts {
    PatchCounts {
        patch_group: "web".to_owned(),
        baseline_id: "pb-1".to_owned(),
        operation: "Scan".to_owned(),
        missing,
        failed,
        critical_non_compliant: critical,
        installed_pending_reboot: reboot,
        ..PatchCounts::default()
    }
}

#[test]
fn a_groups_nodes_come_worst_first() {
    let nodes = vec![
        node("i-ok", "Online", None),
        node("i-offline", "ConnectionLost", None),
        node(
            "mi-never",
            "Online",
            Some("Microsoft.Compute/virtualMachines"),
        ),
        node("i-missing", "Online", None),
        node("i-critical", "Online", None),
        node("i-failed", "Online", None),
        node("i-reboot", "Online", None),
    ];
    let states = vec![
        ("i-ok".to_owned(), counts(0, 0, 0, 0)),
        ("i-offline".to_owned(), counts(0, 0, 0, 0)),
        ("i-missing".to_owned(), counts(3, 0, 0, 0)),
        ("i-critical".to_owned(), counts(1, 0, 1, 0)),
        ("i-failed".to_owned(), counts(0, 1, 0, 0)),
        ("i-reboot".to_owned(), counts(0, 0, 0, 1)),
        // A node deregistered since: SSM keeps its state, the page does not show it.
        ("i-gone".to_owned(), counts(9, 9, 9, 9)),
    ];
    let rows = group_instances(nodes, states, Platform::Aws);
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "i-failed",
            "i-critical",
            "i-missing",
            "i-reboot",
            "mi-never",
            "i-offline",
            "i-ok"
        ]
    );
    assert_eq!(rows[4].provider, Platform::Azure);
    assert!(rows[4].patches.is_none());
    assert!(rows[6].patches.as_ref().is_some_and(PatchCounts::compliant));
    assert!(!rows[3].patches.as_ref().is_some_and(PatchCounts::compliant));
}

fn patch(title: &str, state: &str, severity: &str) -> InstancePatch {
    InstancePatch {
        title: title.to_owned(),
        state: state.to_owned(),
        severity: severity.to_owned(),
        ..InstancePatch::default()
    }
}

#[test]
fn a_nodes_patches_come_in_the_order_that_needs_attention() {
    let mut patches = vec![
        patch("a", "INSTALLED", "Critical"),
        patch("b", "MISSING", "Low"),
        patch("c", "NOT_APPLICABLE", "Critical"),
        patch("d", "MISSING", "Critical"),
        patch("e", "FAILED", "Moderate"),
        patch("f", "INSTALLED_PENDING_REBOOT", "Important"),
        patch("g", "MISSING", "Important"),
        patch("h", "INSTALLED_OTHER", "Low"),
    ];
    order_patches(&mut patches);
    let titles: Vec<&str> = patches.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles, ["e", "d", "g", "b", "f", "h", "a", "c"]);
}

#[test]
fn each_read_costs_its_pages_and_an_empty_list_one_call() {
    // (tagged nodes, reported states) -> calls: pages of 50 nodes, then of 100 states.
    for (nodes, states, calls) in [
        (0, 0, 2),
        (1, 1, 2),
        (50, 50, 2),
        (51, 50, 3),
        (120, 120, 5),
        (1000, 1000, 30),
    ] {
        assert_eq!(
            group_calls(nodes, states),
            calls,
            "{nodes} nodes, {states} states"
        );
    }
    // Information by id, the patch state, then pages of 100 patches.
    for (patches, calls) in [(0, 3), (100, 3), (101, 4), (130, 4)] {
        assert_eq!(instance_calls(patches), calls, "{patches} patches");
    }
}
