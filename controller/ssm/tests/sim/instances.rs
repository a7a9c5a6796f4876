//! The dashboard's on-demand reads against the simulator's fleet: a group's nodes worst
//! first, a node's patches with SSM's states, classifications, severities and CVE ids, and
//! exactly the calls `patchfleet_planner::instances::{group_calls, instance_calls}` give,
//! across pages.

use patchfleet_api::v1alpha1::Platform;
use patchfleet_planner::instances::{group_calls, instance_calls};
use patchfleet_ssm::instances::{read_group_instances, read_instance};
use ssm_sim::Server;
use ssm_sim::fleet::{FleetSpec, InstanceSpec, PatchSpec};
use ssm_sim::state::Tags;

use crate::common::*;

fn web(n: usize) -> InstanceSpec {
    InstanceSpec {
        instance_id: format!("i-{n:017x}"),
        tags: Tags::from([("Patch Group".to_owned(), "web".to_owned())]),
        ..InstanceSpec::default()
    }
}

fn patch(title: &str, severity: &str, cves: &[&str], installed: bool) -> PatchSpec {
    PatchSpec {
        title: title.to_owned(),
        kb_id: None,
        classification: "Security".to_owned(),
        severity: severity.to_owned(),
        release_date: "2026-01-05".to_owned(),
        cve_ids: cves.iter().map(|c| (*c).to_owned()).collect(),
        installed,
    }
}

/// 120 nodes in web (two pages of states, three of node information): node 7 lacks two
/// patches, node 9 one; node 0 has 130 patches (two pages of DescribeInstancePatches).
fn fleet() -> Vec<InstanceSpec> {
    (0..120)
        .map(|n| match n {
            7 => InstanceSpec {
                missing_patches: 2,
                ..web(n)
            },
            9 => InstanceSpec {
                missing_patches: 1,
                ..web(n)
            },
            0 => InstanceSpec {
                patches: (0..128)
                    .map(|i| patch(&format!("pkg-{i:03}"), "Low", &[], true))
                    .chain([
                        patch(
                            "openssl",
                            "Critical",
                            &["CVE-2026-1001", "CVE-2026-1002"],
                            false,
                        ),
                        patch("zlib", "Important", &["CVE-2026-2001"], false),
                    ])
                    .collect(),
                ..web(n)
            },
            _ => web(n),
        })
        .collect()
}

fn put(server: &Server) {
    let spec = FleetSpec {
        account_id: ACCOUNT_A.to_owned(),
        region: REGION.to_owned(),
        instances: fleet(),
    };
    spec.validate(&server.sim().config.quotas)
        .expect("a valid fleet");
    ssm_sim::fleet::apply(server.sim(), &spec);
}

fn total_calls(server: &Server) -> u64 {
    sim_calls(server, ACCOUNT_A, REGION).values().sum()
}

#[tokio::test]
async fn a_groups_nodes_come_worst_first_at_the_documented_cost() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    put(&server);

    // Before any scan: every node listed, none reported (one empty page of states).
    let before = total_calls(&server);
    let read = read_group_instances(&client, "web", Platform::Aws).await;
    let nodes = read.reading.expect("read");
    assert_eq!(nodes.len(), 120);
    assert!(nodes.iter().all(|n| n.patches.is_none()));
    assert_eq!(read.calls, group_calls(120, 0));
    assert_eq!(total_calls(&server) - before, u64::from(read.calls));

    scan(&client, &["web"]).await;
    let read = read_group_instances(&client, "web", Platform::Aws).await;
    let nodes = read.reading.expect("read");
    assert_eq!(read.calls, group_calls(120, 120));
    assert_eq!(
        read.calls,
        3 + 2,
        "three pages of 50 nodes, two of 100 states"
    );
    let worst: Vec<&str> = nodes.iter().take(3).map(|n| n.id.as_str()).collect();
    // Nodes 0 and 7 lack two patches each (by id when equal), node 9 one.
    assert_eq!(
        worst,
        [
            format!("i-{:017x}", 0),
            format!("i-{:017x}", 7),
            format!("i-{:017x}", 9)
        ]
    );
    assert_eq!(nodes[0].patches.as_ref().map(|p| p.missing), Some(2));
    assert!(
        nodes[3..]
            .iter()
            .all(|n| n.patches.as_ref().is_some_and(|p| p.compliant()))
    );
    assert!(nodes.iter().all(|n| n.provider == Platform::Aws));

    // Another group's value lists nothing, in one call each.
    let read = read_group_instances(&client, "db", Platform::Aws).await;
    assert_eq!(read.reading.expect("read").len(), 0);
    assert_eq!(read.calls, group_calls(0, 0));
}

#[tokio::test]
async fn a_nodes_patches_come_with_their_cves_worst_first() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    put(&server);
    scan(&client, &["web"]).await;

    let id = format!("i-{:017x}", 0);
    let before = total_calls(&server);
    let read = read_instance(&client, &id, Platform::Aws).await;
    let detail = read.reading.expect("read").expect("the node exists");
    assert_eq!(detail.patches.len(), 130);
    assert_eq!(read.calls, instance_calls(130));
    assert_eq!(read.calls, 2 + 2, "two pages of patches");
    assert_eq!(total_calls(&server) - before, u64::from(read.calls));
    // Missing first, Critical before Important; SSM reports CVE ids of missing patches.
    let first: Vec<(&str, &str, Vec<String>)> = detail.patches[..2]
        .iter()
        .map(|p| (p.title.as_str(), p.state.as_str(), p.cve_ids.clone()))
        .collect();
    assert_eq!(
        first,
        [
            (
                "openssl",
                "MISSING",
                vec!["CVE-2026-1001".to_owned(), "CVE-2026-1002".to_owned()]
            ),
            ("zlib", "MISSING", vec!["CVE-2026-2001".to_owned()]),
        ]
    );
    // The rest are installed (INSTALLED_OTHER: on the node, not approved by the baseline
    // that applies), with no CVE ids.
    let rest: std::collections::BTreeSet<&str> = detail.patches[2..]
        .iter()
        .map(|p| p.state.as_str())
        .collect();
    assert!(rest.iter().all(|s| s.starts_with("INSTALLED")), "{rest:?}");
    assert!(detail.patches[2..].iter().all(|p| p.cve_ids.is_empty()));
    assert!(detail.patches[2].installed_time.is_some());
    assert_eq!(detail.instance.patches.as_ref().map(|p| p.missing), Some(2));

    // A node the account-region does not have: None, after one call.
    let read = read_instance(&client, "i-0fffffffffffffff0", Platform::Aws).await;
    assert_eq!(read.reading.expect("read"), None);
    assert_eq!(read.calls, 1);
}
