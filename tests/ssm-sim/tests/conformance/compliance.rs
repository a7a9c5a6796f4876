//! Patch Manager's verdicts on the simulated fleet: AWS-RunPatchBaseline evaluates the
//! baseline that applies to each node (its patch group's, else its operating system's
//! default), and DescribeInstancePatchStates / DescribeInstancePatches report what the
//! last Scan or Install found.
//! https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-compliance-states.html

use std::collections::HashMap;

use aws_sdk_ssm::types::{
    InstancePatchState, OperatingSystem, PatchComplianceDataState, PatchFilter, PatchFilterGroup,
    PatchFilterKey, PatchOrchestratorFilter, PatchRule, PatchRuleGroup,
};
use serde_json::json;
use ssm_sim::config::DEFAULT_ACCOUNT;
use ssm_sim::{Config, Settings};

use crate::common::{REGION, code, put_instances, ssm, start_with};

const WEB: &str = "i-00000000000000001";
const FAILING: &str = "i-00000000000000002";
const UNGROUPED: &str = "i-00000000000000003";

fn instant() -> Config {
    Config {
        settings: Settings {
            command_seconds: 0.0,
        },
        ..Config::default()
    }
}

/// YYYY-MM-DD `days` ago.
fn days_ago(days: i64) -> String {
    let secs = ssm_sim::clock::wall() as i64 - days * 86_400;
    ssm_sim::clock::iso8601(secs as f64)[..10].to_owned()
}

fn windows_patch(title: &str, classification: &str, severity: &str, age: i64) -> serde_json::Value {
    json!({"title": title, "kbId": title, "classification": classification, "severity": severity,
           "releaseDate": days_ago(age), "cveIds": [format!("CVE-2026-{}", &title[2..])]})
}

async fn fleet(server: &ssm_sim::Server) {
    let patches = json!([
        windows_patch("KB5000001", "SecurityUpdates", "Critical", 30),
        windows_patch("KB5000002", "Updates", "Low", 30),
        windows_patch("KB5000003", "SecurityUpdates", "Critical", 2),
        {"title": "KB5000004", "kbId": "KB5000004", "classification": "SecurityUpdates",
         "severity": "Important", "releaseDate": days_ago(90), "installed": true},
    ]);
    put_instances(
        server,
        json!({"accountId": DEFAULT_ACCOUNT, "region": REGION, "instances": [
            {"instanceId": WEB, "platformType": "Windows", "tags": {"Patch Group": "web"},
             "patches": patches},
            {"instanceId": FAILING, "platformType": "Windows", "tags": {"Patch Group": "web"},
             "patches": patches, "failsInstall": true},
            {"instanceId": UNGROUPED, "missingPatches": 2},
        ]}),
    )
    .await;
}

/// Windows security updates of severity Critical, after 7 days; KB5000004 rejected and
/// blocked.
async fn web_baseline(client: &aws_sdk_ssm::Client) -> String {
    let rule = PatchRule::builder()
        .patch_filter_group(
            PatchFilterGroup::builder()
                .patch_filters(
                    PatchFilter::builder()
                        .key(PatchFilterKey::Classification)
                        .values("SecurityUpdates")
                        .build()
                        .expect("filter"),
                )
                .patch_filters(
                    PatchFilter::builder()
                        .key(PatchFilterKey::MsrcSeverity)
                        .values("Critical")
                        .build()
                        .expect("filter"),
                )
                .build()
                .expect("group"),
        )
        .approve_after_days(7)
        .compliance_level(aws_sdk_ssm::types::PatchComplianceLevel::Critical)
        .build();
    let id = client
        .create_patch_baseline()
        .name("web")
        .operating_system(OperatingSystem::Windows)
        .approval_rules(
            PatchRuleGroup::builder()
                .patch_rules(rule)
                .build()
                .expect("rules"),
        )
        .rejected_patches("KB5000004")
        .rejected_patches_action(aws_sdk_ssm::types::PatchAction::Block)
        .send()
        .await
        .expect("baseline")
        .baseline_id()
        .unwrap_or_default()
        .to_owned();
    client
        .register_patch_baseline_for_patch_group()
        .baseline_id(&id)
        .patch_group("web")
        .send()
        .await
        .expect("registered");
    id
}

async fn run(client: &aws_sdk_ssm::Client, ids: &[&str], operation: &str, reboot: &str) {
    let mut send = client
        .send_command()
        .document_name("AWS-RunPatchBaseline")
        .parameters("Operation", vec![operation.to_owned()])
        .parameters("RebootOption", vec![reboot.to_owned()])
        .max_errors("100%");
    for id in ids {
        send = send.instance_ids(*id);
    }
    send.send().await.expect("sent");
}

async fn states(client: &aws_sdk_ssm::Client, ids: &[&str]) -> HashMap<String, InstancePatchState> {
    let mut req = client.describe_instance_patch_states();
    for id in ids {
        req = req.instance_ids(*id);
    }
    req.send()
        .await
        .expect("states")
        .instance_patch_states()
        .iter()
        .map(|s| (s.instance_id().to_owned(), s.clone()))
        .collect()
}

fn counts(s: &InstancePatchState) -> [i32; 6] {
    [
        s.installed_count(),
        s.installed_other_count(),
        s.installed_pending_reboot_count().unwrap_or_default(),
        s.installed_rejected_count().unwrap_or_default(),
        s.missing_count(),
        s.failed_count(),
    ]
}

#[tokio::test]
async fn scans_and_installs_report_what_the_nodes_baseline_approves() {
    let server = start_with(instant()).await;
    let client = ssm(&server);
    fleet(&server).await;
    let web = web_baseline(&client).await;
    assert!(
        states(&client, &[WEB]).await.is_empty(),
        "no state before a scan"
    );

    run(
        &client,
        &[WEB, FAILING, UNGROUPED],
        "Scan",
        "RebootIfNeeded",
    )
    .await;
    let scanned = states(&client, &[WEB, FAILING, UNGROUPED]).await;
    let w = &scanned[WEB];
    assert_eq!(w.baseline_id(), web, "its patch group's baseline");
    assert_eq!(w.patch_group(), "web");
    assert_eq!(w.operation().as_str(), "Scan");
    // [installed, other, pending reboot, rejected, missing, failed]: KB1 approved and
    // missing; KB2 and KB3 (too young) not approved, not reported; KB4 rejected, blocked.
    assert_eq!(counts(w), [0, 0, 0, 1, 1, 0]);
    assert_eq!(w.critical_non_compliant_count(), Some(1));
    assert_eq!(w.security_non_compliant_count(), Some(2));
    // The ungrouped Linux node: AWS's default baseline for its OS.
    let u = &scanned[UNGROUPED];
    assert!(
        u.baseline_id().contains(":patchbaseline/"),
        "{}",
        u.baseline_id()
    );
    assert_eq!(u.patch_group(), "");
    assert_eq!(u.missing_count(), 2);

    run(&client, &[WEB, FAILING], "Install", "NoReboot").await;
    let installed = states(&client, &[WEB, FAILING]).await;
    assert_eq!(counts(&installed[WEB]), [0, 0, 1, 1, 0, 0]);
    assert!(
        installed[WEB]
            .last_no_reboot_install_operation_time()
            .is_some()
    );
    assert_eq!(counts(&installed[FAILING]), [0, 0, 0, 1, 0, 1]);

    run(&client, &[WEB], "Install", "RebootIfNeeded").await;
    assert_eq!(
        counts(&states(&client, &[WEB]).await[WEB]),
        [1, 0, 0, 1, 0, 0]
    );

    let patches = client
        .describe_instance_patches()
        .instance_id(FAILING)
        .send()
        .await
        .expect("patches");
    let by_title: HashMap<&str, _> = patches.patches().iter().map(|p| (p.title(), p)).collect();
    assert_eq!(by_title.len(), 2, "{by_title:?}");
    let failed = by_title["KB5000001"];
    assert_eq!(failed.state(), &PatchComplianceDataState::Failed);
    assert_eq!(failed.cve_ids(), Some("CVE-2026-5000001"));
    let rejected = by_title["KB5000004"];
    assert_eq!(
        rejected.state(),
        &PatchComplianceDataState::InstalledRejected
    );
    assert_eq!(rejected.cve_ids(), None, "CVEs only for Missing or Failed");
    let only_failed = client
        .describe_instance_patches()
        .instance_id(FAILING)
        .filters(
            PatchOrchestratorFilter::builder()
                .key("State")
                .values("Failed")
                .build(),
        )
        .send()
        .await
        .expect("filtered");
    assert_eq!(only_failed.patches().len(), 1);
}

#[tokio::test]
async fn requests_are_validated_like_aws() {
    let server = start_with(instant()).await;
    let client = ssm(&server);
    fleet(&server).await;
    let too_many: Vec<String> = (0..51).map(|i| format!("i-{i:017x}")).collect();
    let out = client
        .describe_instance_patch_states()
        .set_instance_ids(Some(too_many))
        .send()
        .await;
    assert_eq!(code(out), "ValidationException");
    let out = client
        .describe_instance_patch_states()
        .instance_ids(WEB)
        .max_results(9)
        .send()
        .await;
    assert_eq!(code(out), "ValidationException");
    let out = client
        .describe_instance_patches()
        .instance_id("i-0000000000000000f")
        .send()
        .await;
    assert_eq!(code(out), "InvalidInstanceId");
    let out = client
        .describe_instance_patches()
        .instance_id(WEB)
        .filters(
            PatchOrchestratorFilter::builder()
                .key("Color")
                .values("red")
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(out), "InvalidFilter");
}

#[tokio::test]
async fn a_patch_groups_nodes_are_counted_and_listed_by_their_counts() {
    let server = start_with(instant()).await;
    let client = ssm(&server);
    fleet(&server).await;
    web_baseline(&client).await;
    run(
        &client,
        &[WEB, FAILING, UNGROUPED],
        "Install",
        "RebootIfNeeded",
    )
    .await;

    let web = client
        .describe_patch_group_state()
        .patch_group("web")
        .send()
        .await
        .expect("group state");
    // WEB installed KB1 (and keeps the blocked KB4); FAILING failed KB1.
    assert_eq!(web.instances(), 2);
    assert_eq!(web.instances_with_installed_patches(), 1);
    assert_eq!(web.instances_with_failed_patches(), 1);
    assert_eq!(web.instances_with_installed_rejected_patches(), Some(2));
    assert_eq!(web.instances_with_missing_patches(), 0);
    assert_eq!(web.instances_with_critical_non_compliant_patches(), Some(1));
    let nobody = client
        .describe_patch_group_state()
        .patch_group("db")
        .send()
        .await
        .expect("empty group");
    assert_eq!(nobody.instances(), 0);

    let failing = client
        .describe_instance_patch_states_for_patch_group()
        .patch_group("web")
        .filters(
            aws_sdk_ssm::types::InstancePatchStateFilter::builder()
                .key("FailedCount")
                .values("0")
                .r#type(aws_sdk_ssm::types::InstancePatchStateOperatorType::GreaterThan)
                .build()
                .expect("filter"),
        )
        .send()
        .await
        .expect("filtered");
    let ids: Vec<&str> = failing
        .instance_patch_states()
        .iter()
        .map(|s| s.instance_id())
        .collect();
    assert_eq!(ids, [FAILING]);
    let all = client
        .describe_instance_patch_states_for_patch_group()
        .patch_group("web")
        .send()
        .await
        .expect("all");
    assert_eq!(all.instance_patch_states().len(), 2);
    let bad = client
        .describe_instance_patch_states_for_patch_group()
        .patch_group("web")
        .filters(
            aws_sdk_ssm::types::InstancePatchStateFilter::builder()
                .key("ColorCount")
                .values("1")
                .r#type(aws_sdk_ssm::types::InstancePatchStateOperatorType::Equal)
                .build()
                .expect("filter"),
        )
        .send()
        .await;
    assert_eq!(code(bad), "InvalidFilter");
}
