//! docs/compliance.md end to end: a fleet of several platforms and providers in two
//! accounts; the simulator's clock passes a Scan window and then the Install windows;
//! the SystemAccount, PatchGroup and MaintenanceWindow statuses, the metrics and
//! `patchfleet report` show exactly the counts the fleet implies: a node that fails, one
//! left pending reboot, one offline, one with an old agent, one whose data another
//! scanner overwrote, one never scanned.

use std::time::Duration;

use aws_sdk_ssm::types::{OperatingSystem as SdkOs, Target};
use kube::Api;
use patchfleet_api::v1alpha1::{
    MaintenanceWindow, NodeCounts, PatchGroup, PlatformCounts, ProviderCounts, SeverityCounts,
    SystemAccount,
};
use patchfleet_tests::e2e::eventually;
use patchfleet_tests::stack::{ALL_KINDS, Stack, ssm_client};
use serde_json::Value;

const PASS: Duration = Duration::from_secs(120);
use patchfleet_tests::fleet::{A, OVERWRITTEN, account_total, set_clock};

/// Another tool registers its own Windows baseline for "db", scans one node with it, and
/// patchfleet's registration comes back (the controller restores it on its next pass,
/// should this test's restore lose the race).
async fn another_tool_scans(stack: &Stack) {
    let ssm = ssm_client(stack, A.0, A.1, A.2).await.expect("SSM client");
    let ours = ssm
        .get_patch_baseline_for_patch_group()
        .patch_group("db")
        .operating_system(SdkOs::Windows)
        .send()
        .await
        .expect("db's Windows baseline")
        .baseline_id
        .expect("an id");
    let theirs = ssm
        .create_patch_baseline()
        .name("another-tools-baseline")
        .operating_system(SdkOs::Windows)
        .send()
        .await
        .expect("their baseline")
        .baseline_id
        .expect("an id");
    let _ = ssm
        .deregister_patch_baseline_for_patch_group()
        .baseline_id(&ours)
        .patch_group("db")
        .send()
        .await;
    let _ = ssm
        .register_patch_baseline_for_patch_group()
        .baseline_id(&theirs)
        .patch_group("db")
        .send()
        .await;
    ssm.send_command()
        .document_name("AWS-RunPatchBaseline")
        .targets(
            Target::builder()
                .key("InstanceIds")
                .values(OVERWRITTEN)
                .build(),
        )
        .parameters("Operation", vec!["Scan".to_owned()])
        .send()
        .await
        .expect("their scan");
    let _ = ssm
        .deregister_patch_baseline_for_patch_group()
        .baseline_id(&theirs)
        .patch_group("db")
        .send()
        .await;
    let _ = ssm
        .register_patch_baseline_for_patch_group()
        .baseline_id(&ours)
        .patch_group("db")
        .send()
        .await;
}

fn counts(
    (instances, online): (u32, u32),
    platforms: PlatformCounts,
    providers: ProviderCounts,
    (with_missing, with_failed, pending_reboot, agent_updates): (u32, u32, u32, u32),
    (compliant, non_compliant, unreported): (u32, u32, u32),
    severities: SeverityCounts,
) -> NodeCounts {
    NodeCounts {
        instances,
        online,
        platforms,
        providers,
        with_missing,
        with_failed,
        pending_reboot,
        agent_updates,
        compliant,
        non_compliant,
        severities,
        unreported,
    }
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_is_counted_as_it_is() {
    let (stack, scan_at, install_at) =
        patchfleet_tests::fleet::start("compliance", &ALL_KINDS).await;

    // Before any window: every node listed, none reported.
    eventually("customer A's nodes, none scanned", &stack, PASS, || async {
        account_total(&stack, "customer-a")
            .await
            .is_some_and(|t| (t.instances, t.unreported) == (7, 7))
    })
    .await;

    // The Scan window: three nodes lack approved patches.
    set_clock(&stack, scan_at + 1_800.0);
    eventually("the scan's figures", &stack, PASS, || async {
        account_total(&stack, "customer-a")
            .await
            .is_some_and(|t| (t.with_missing, t.non_compliant, t.unreported) == (3, 3, 0))
    })
    .await;

    // The Install windows, then another tool's scan of one db node.
    set_clock(&stack, install_at + 1_800.0);
    another_tool_scans(&stack).await;

    let want_a = counts(
        (7, 6),
        PlatformCounts {
            linux: 5,
            windows: 2,
            macos: 0,
        },
        ProviderCounts {
            aws: 6,
            azure: 1,
            ..ProviderCounts::default()
        },
        (0, 1, 1, 1),
        (5, 2, 0),
        SeverityCounts {
            critical: 2,
            security: 0,
            other: 0,
        },
    );
    let want_b = counts(
        (3, 3),
        PlatformCounts {
            linux: 3,
            windows: 0,
            macos: 0,
        },
        ProviderCounts {
            aws: 1,
            vmware: 2,
            ..ProviderCounts::default()
        },
        (0, 0, 1, 0),
        (1, 1, 1),
        SeverityCounts {
            critical: 1,
            security: 0,
            other: 0,
        },
    );
    eventually("customer A's final figures", &stack, PASS, || async {
        account_total(&stack, "customer-a").await.as_ref() == Some(&want_a)
    })
    .await;
    eventually("customer B's final figures", &stack, PASS, || async {
        account_total(&stack, "customer-b").await.as_ref() == Some(&want_b)
    })
    .await;

    let client = stack.client().await.expect("client");
    let account: SystemAccount = Api::all(client.clone())
        .get("customer-a")
        .await
        .expect("customer-a");
    let nodes = account.status.and_then(|s| s.nodes).expect("status.nodes");
    let region = &nodes.regions[0];
    assert_eq!(region.region, A.2);
    assert_eq!(region.overwritten, 1, "{region:?}");
    assert_eq!(region.node_headroom, 2_400 - 7);
    assert_eq!(region.hybrid_node_headroom, 1_000 - 1);
    let last = region.last_install.as_ref().expect("an install ran");
    assert!(
        ["fleet/install-web", "fleet/install-db"].contains(&last.window.as_str()),
        "{last:?}"
    );
    assert!(region.observed_at.is_some());
    // status.nodes belongs to the compliance pass's field manager alone: the account
    // pass's apply neither owns nor rewrites it.
    let managers: Vec<(String, String)> = account
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref() == Some("status"))
        .map(|m| {
            let fields = m
                .fields_v1
                .as_ref()
                .map(|f| f.0.to_string())
                .unwrap_or_default();
            (m.manager.clone().unwrap_or_default(), fields)
        })
        .collect();
    let owning_nodes: Vec<&str> = managers
        .iter()
        .filter(|(_, fields)| fields.contains("\"f:nodes\""))
        .map(|(manager, _)| manager.as_str())
        .collect();
    assert_eq!(owning_nodes, ["patchfleet-compliance"], "{managers:?}");

    // PatchGroups: their nodes over both accounts (rolled up once woken by the pass).
    let groups: Api<PatchGroup> = Api::namespaced(client.clone(), "fleet");
    eventually("the groups' final figures", &stack, PASS, || async {
        let nodes = |name: &'static str| {
            let groups = groups.clone();
            async move { groups.get(name).await.ok().and_then(|g| g.status?.nodes) }
        };
        let web = nodes("web").await;
        let db = nodes("db").await;
        web.is_some_and(|n| n.total.with_failed == 1) && db.is_some_and(|n| n.overwritten == 1)
    })
    .await;
    let web = groups.get("web").await.expect("web");
    let web_nodes = web
        .status
        .as_ref()
        .and_then(|s| s.nodes.clone())
        .expect("web nodes");
    assert_eq!(
        (
            web_nodes.total.instances,
            web_nodes.total.with_failed,
            web_nodes.total.non_compliant
        ),
        (6, 1, 1)
    );
    assert_eq!(web_nodes.regions.len(), 2);
    let db = groups.get("db").await.expect("db");
    let db_status = db.status.expect("db status");
    let db_nodes = db_status.nodes.expect("db nodes");
    assert_eq!(
        (
            db_nodes.total.instances,
            db_nodes.total.pending_reboot,
            db_nodes.overwritten
        ),
        (3, 2, 1)
    );
    let overwritten = db_status
        .fleet
        .conditions
        .iter()
        .find(|c| c.type_ == "ScanOverwritten")
        .expect("the ScanOverwritten condition");
    assert_eq!(overwritten.status, "True");
    assert!(
        overwritten.message.starts_with(
            "1 node(s) of patch group \"db\" last reported a scan or install with a \
             baseline patchfleet did not register for the group"
        ),
        "{}",
        overwritten.message
    );
    assert!(
        !overwritten.message.contains("  "),
        "{}",
        overwritten.message
    );

    // MaintenanceWindows: the last run in each account-region.
    let windows: Api<MaintenanceWindow> = Api::namespaced(client, "fleet");
    eventually("the windows' last runs", &stack, PASS, || async {
        let mut all = true;
        for name in ["nightly-scan", "install-web", "install-db"] {
            let runs = windows.get(name).await.ok().and_then(|w| w.status?.runs);
            all &= runs.is_some_and(|r| r.never_run == 0);
        }
        all
    })
    .await;
    let runs = |name: &'static str| {
        let windows = windows.clone();
        async move {
            windows
                .get(name)
                .await
                .expect("window")
                .status
                .and_then(|s| s.runs)
                .map(|r| (r.succeeded, r.failed, r.never_run))
        }
    };
    assert_eq!(runs("nightly-scan").await, Some((2, 0, 0)));
    // The whole fleet ran: nothing in progress.
    let scan_runs = windows
        .get("nightly-scan")
        .await
        .expect("window")
        .status
        .and_then(|s| s.runs)
        .expect("runs");
    assert_eq!(scan_runs.in_progress, 0);
    assert_eq!(
        runs("install-web").await,
        Some((1, 1, 0)),
        "customer A's failed node"
    );
    assert_eq!(runs("install-db").await, Some((2, 0, 0)));

    // Metrics: the fleet's totals, and a steady pass's exact calls: per account-region
    // 1 node list + 1 registration list + 2 group state lists + 1 window list + 3
    // execution lists, and customer B's never-scanned node read by id (docs/compliance.md).
    let identity = stack.main_identity();
    eventually("the metrics", &stack, PASS, || async {
        let Ok((_, text)) = stack.http_get(&identity, "/metrics") else {
            return false;
        };
        metric(&text, r#"patchfleet_nodes{figure="instances"}"#) == Some(10.0)
            && metric(&text, r#"patchfleet_nodes{figure="overwritten"}"#) == Some(1.0)
            && metric(&text, r#"patchfleet_nodes_by_provider{provider="vmware"}"#) == Some(2.0)
            && metric(&text, "patchfleet_compliance_pass_calls") == Some(17.0)
    })
    .await;

    // `patchfleet report -o json`, with the kubeconfig only.
    let output =
        std::process::Command::new(patchfleet_tests::stack::patchfleet_binary().expect("binary"))
            .args(["report", "-o", "json"])
            .env_clear()
            .env("KUBECONFIG", &stack.plane.kubeconfig)
            .output()
            .expect("patchfleet report runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let rows = report["accounts"].as_array().expect("account rows");
    assert_eq!(rows.len(), 2);
    let a = &rows[0];
    assert_eq!(
        (
            a["provider"].as_str(),
            a["instances"].as_u64(),
            a["online"].as_u64(),
            a["failed"].as_u64(),
            a["pendingReboot"].as_u64(),
            a["agentUpdates"].as_u64(),
            a["overwritten"].as_u64(),
        ),
        (
            Some("aws"),
            Some(7),
            Some(6),
            Some(1),
            Some(1),
            Some(1),
            Some(1)
        ),
        "{a}"
    );
    assert_eq!(rows[1]["provider"].as_str(), Some("vmware"));
    assert_eq!(report["groups"].as_array().map(Vec::len), Some(2));
    let text =
        std::process::Command::new(patchfleet_tests::stack::patchfleet_binary().expect("binary"))
            .arg("report")
            .env_clear()
            .env("KUBECONFIG", &stack.plane.kubeconfig)
            .output()
            .expect("patchfleet report runs");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("aws") && l.contains("customer-a (111111111111)")),
        "{text}"
    );
}
