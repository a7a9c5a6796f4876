//! SSM Compliance's summaries of patch compliance: ListResourceComplianceSummaries and
//! ListComplianceSummaries read what AWS-RunPatchBaseline recorded on each node.
//! https://docs.aws.amazon.com/systems-manager/latest/userguide/systems-manager-compliance.html

use std::collections::HashMap;

use aws_sdk_ssm::types::{
    ComplianceQueryOperatorType, ComplianceStatus, ComplianceStringFilter, OperatingSystem,
    PatchComplianceLevel, PatchFilter, PatchFilterGroup, PatchFilterKey, PatchRule, PatchRuleGroup,
    ResourceComplianceSummaryItem, SeveritySummary,
};
use serde_json::json;
use ssm_sim::config::DEFAULT_ACCOUNT;
use ssm_sim::{Config, Settings};

use crate::common::{REGION, code, creds, instance, instances, put_instances, ssm, ssm_as};

const OTHER_KEY: &str = "AKIAOTHEREXAMPLE0001";
const OTHER_ACCOUNT: &str = "222222222222";

/// Missing three critical security updates.
const MISSING: &str = "i-00000000000000011";
/// Everything its baseline approves is installed.
const COMPLIANT: &str = "i-00000000000000012";
/// Never scanned: no compliance.
const NEVER: &str = "i-00000000000000013";
/// A hybrid node missing one bug fix (approved at LOW) with one critical update installed.
const HYBRID: &str = "mi-00000000000000014";

fn config() -> Config {
    Config {
        settings: Settings {
            command_seconds: 0.0,
        },
        access_keys: [(OTHER_KEY.to_string(), OTHER_ACCOUNT.to_string())].into(),
        ..Config::default()
    }
}

fn linux_patch(title: &str, classification: &str, installed: bool) -> serde_json::Value {
    json!({"title": title, "classification": classification, "severity": "Important",
           "releaseDate": "2024-01-15", "installed": installed})
}

async fn fleet(server: &ssm_sim::Server, account: &str) {
    let app = json!({"Patch Group": "app"});
    put_instances(
        server,
        json!({"accountId": account, "region": REGION, "instances": [
            {"instanceId": MISSING, "tags": app, "missingPatches": 3},
            {"instanceId": COMPLIANT, "tags": app,
             "patches": [linux_patch("openssl", "Security", true)]},
            {"instanceId": NEVER, "tags": app, "missingPatches": 1},
            {"instanceId": HYBRID, "tags": app, "patches": [
                linux_patch("kernel", "Security", true),
                linux_patch("tzdata", "Bugfix", false),
            ]},
        ]}),
    )
    .await;
}

fn rule(classification: &str, level: PatchComplianceLevel) -> PatchRule {
    PatchRule::builder()
        .patch_filter_group(
            PatchFilterGroup::builder()
                .patch_filters(
                    PatchFilter::builder()
                        .key(PatchFilterKey::Classification)
                        .values(classification)
                        .build()
                        .expect("filter"),
                )
                .build()
                .expect("group"),
        )
        .approve_after_days(7)
        .compliance_level(level)
        .build()
}

/// Security updates approved at CRITICAL, bug fixes at LOW, for patch group `app`; then a
/// Scan of every node but NEVER.
async fn scan(client: &aws_sdk_ssm::Client) -> String {
    let id = client
        .create_patch_baseline()
        .name("app")
        .operating_system(OperatingSystem::AmazonLinux2)
        .approval_rules(
            PatchRuleGroup::builder()
                .patch_rules(rule("Security", PatchComplianceLevel::Critical))
                .patch_rules(rule("Bugfix", PatchComplianceLevel::Low))
                .build()
                .expect("rules"),
        )
        .send()
        .await
        .expect("baseline")
        .baseline_id()
        .unwrap_or_default()
        .to_owned();
    client
        .register_patch_baseline_for_patch_group()
        .baseline_id(&id)
        .patch_group("app")
        .send()
        .await
        .expect("registered");
    client
        .send_command()
        .document_name("AWS-RunPatchBaseline")
        .parameters("Operation", vec!["Scan".to_owned()])
        .instance_ids(MISSING)
        .instance_ids(COMPLIANT)
        .instance_ids(HYBRID)
        .send()
        .await
        .expect("scan sent")
        .command()
        .and_then(|c| c.command_id())
        .unwrap_or_default()
        .to_owned()
}

fn filter(key: &str, op: ComplianceQueryOperatorType, values: &[&str]) -> ComplianceStringFilter {
    let mut f = ComplianceStringFilter::builder().key(key).r#type(op);
    for v in values {
        f = f.values(*v);
    }
    f.build()
}

async fn resources(
    client: &aws_sdk_ssm::Client,
    filters: Vec<ComplianceStringFilter>,
) -> HashMap<String, ResourceComplianceSummaryItem> {
    client
        .list_resource_compliance_summaries()
        .set_filters(Some(filters))
        .send()
        .await
        .expect("resource summaries")
        .resource_compliance_summary_items()
        .iter()
        .map(|i| (i.resource_id().unwrap_or_default().to_owned(), i.clone()))
        .collect()
}

/// [critical, high, medium, low, informational, unspecified]
fn severities(s: Option<&SeveritySummary>) -> [i32; 6] {
    let s = s.expect("a severity summary");
    [
        s.critical_count(),
        s.high_count(),
        s.medium_count(),
        s.low_count(),
        s.informational_count(),
        s.unspecified_count(),
    ]
}

#[tokio::test]
async fn resource_summaries_follow_each_nodes_last_scan() {
    let server = crate::common::start_with(config()).await;
    let client = ssm(&server);
    fleet(&server, DEFAULT_ACCOUNT).await;
    let empty = client
        .list_resource_compliance_summaries()
        .send()
        .await
        .expect("before any scan");
    assert!(empty.resource_compliance_summary_items().is_empty());
    let command = scan(&client).await;

    let all = resources(&client, Vec::new()).await;
    let mut ids: Vec<&str> = all.keys().map(String::as_str).collect();
    ids.sort();
    assert_eq!(
        ids,
        [MISSING, COMPLIANT, HYBRID],
        "never-scanned nodes absent"
    );

    let m = &all[MISSING];
    assert_eq!(m.compliance_type(), Some("Patch"));
    assert_eq!(m.resource_type(), Some("ManagedInstance"));
    assert_eq!(m.status(), Some(&ComplianceStatus::NonCompliant));
    assert_eq!(m.overall_severity().map(|s| s.as_str()), Some("CRITICAL"));
    let nc = m.non_compliant_summary().expect("non-compliant summary");
    assert_eq!(nc.non_compliant_count(), 3);
    assert_eq!(severities(nc.severity_summary()), [3, 0, 0, 0, 0, 0]);
    assert_eq!(m.compliant_summary().map(|c| c.compliant_count()), Some(0));
    let exec = m.execution_summary().expect("execution summary");
    assert_eq!(exec.execution_id(), Some(command.as_str()));
    assert_eq!(exec.execution_type(), Some("Command"));

    let c = &all[COMPLIANT];
    assert_eq!(c.status(), Some(&ComplianceStatus::Compliant));
    assert_eq!(
        c.overall_severity().map(|s| s.as_str()),
        Some("UNSPECIFIED")
    );
    let cs = c.compliant_summary().expect("compliant summary");
    assert_eq!(cs.compliant_count(), 1);
    assert_eq!(severities(cs.severity_summary()), [1, 0, 0, 0, 0, 0]);

    let h = &all[HYBRID];
    assert_eq!(h.resource_type(), Some("ManagedInstance"));
    assert_eq!(h.overall_severity().map(|s| s.as_str()), Some("LOW"));
    assert_eq!(
        severities(h.non_compliant_summary().and_then(|n| n.severity_summary())),
        [0, 0, 0, 1, 0, 0]
    );
    assert_eq!(
        severities(h.compliant_summary().and_then(|n| n.severity_summary())),
        [1, 0, 0, 0, 0, 0]
    );

    // The figures agree with DescribeInstancePatchStates.
    let states = client
        .describe_instance_patch_states()
        .instance_ids(MISSING)
        .instance_ids(HYBRID)
        .send()
        .await
        .expect("states");
    for s in states.instance_patch_states() {
        let open = s.missing_count()
            + s.failed_count()
            + s.installed_pending_reboot_count().unwrap_or_default()
            + s.installed_rejected_count().unwrap_or_default();
        let summary = &all[s.instance_id()];
        assert_eq!(
            summary
                .non_compliant_summary()
                .map(|n| n.non_compliant_count()),
            Some(open)
        );
    }
    // And with the node's runs.
    let nodes = instances(&server, DEFAULT_ACCOUNT, REGION).await;
    assert_eq!(instance(&nodes, MISSING)["runs"][0]["commandId"], command);

    use ComplianceQueryOperatorType as Op;
    let only = |m: HashMap<String, ResourceComplianceSummaryItem>| {
        let mut ids: Vec<String> = m.into_keys().collect();
        ids.sort();
        ids
    };
    assert_eq!(
        only(
            resources(
                &client,
                vec![filter("Status", Op::Equal, &["NON_COMPLIANT"])]
            )
            .await
        ),
        [MISSING, HYBRID]
    );
    assert_eq!(
        only(
            resources(
                &client,
                vec![filter("OverallSeverity", Op::Equal, &["CRITICAL"])]
            )
            .await
        ),
        [MISSING]
    );
    assert_eq!(
        only(
            resources(
                &client,
                vec![filter("OverallSeverity", Op::NotEqual, &["CRITICAL"])]
            )
            .await
        ),
        [COMPLIANT, HYBRID]
    );
    assert_eq!(
        only(resources(&client, vec![filter("ResourceId", Op::BeginWith, &["mi-"])]).await),
        [HYBRID]
    );
    assert_eq!(
        only(
            resources(
                &client,
                vec![
                    filter("ComplianceType", Op::Equal, &["Patch"]),
                    filter("ResourceType", Op::Equal, &["ManagedInstance"]),
                    filter("Status", Op::Equal, &["COMPLIANT"]),
                ]
            )
            .await
        ),
        [COMPLIANT]
    );
    assert!(
        resources(
            &client,
            vec![filter("ComplianceType", Op::Equal, &["Association"])]
        )
        .await
        .is_empty()
    );

    // Paging one node at a time, with the SDK's paginator.
    let pages: Vec<_> = client
        .list_resource_compliance_summaries()
        .max_results(1)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("pages");
    let paged: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.resource_compliance_summary_items())
        .filter_map(|i| i.resource_id())
        .collect();
    assert_eq!(paged, [MISSING, COMPLIANT, HYBRID]);
    assert!(
        pages
            .iter()
            .all(|p| p.resource_compliance_summary_items().len() == 1)
    );
}

#[tokio::test]
async fn compliance_summaries_count_nodes_by_overall_severity() {
    let server = crate::common::start_with(config()).await;
    let client = ssm(&server);
    fleet(&server, DEFAULT_ACCOUNT).await;
    let none = client
        .list_compliance_summaries()
        .send()
        .await
        .expect("before any scan");
    assert!(none.compliance_summary_items().is_empty());
    scan(&client).await;

    let out = client
        .list_compliance_summaries()
        .max_results(1)
        .send()
        .await
        .expect("summaries");
    assert_eq!(out.next_token(), None, "only the Patch type");
    let [patch] = out.compliance_summary_items() else {
        panic!("one compliance type: {out:?}");
    };
    assert_eq!(patch.compliance_type(), Some("Patch"));
    let c = patch.compliant_summary().expect("compliant");
    assert_eq!(c.compliant_count(), 1);
    assert_eq!(severities(c.severity_summary()), [0, 0, 0, 0, 0, 1]);
    let n = patch.non_compliant_summary().expect("non-compliant");
    assert_eq!(n.non_compliant_count(), 2);
    assert_eq!(severities(n.severity_summary()), [1, 0, 0, 1, 0, 0]);

    let filtered = client
        .list_compliance_summaries()
        .filters(filter(
            "ResourceId",
            ComplianceQueryOperatorType::BeginWith,
            &["i-"],
        ))
        .send()
        .await
        .expect("filtered");
    let n = filtered.compliance_summary_items()[0]
        .non_compliant_summary()
        .expect("non-compliant");
    assert_eq!(severities(n.severity_summary()), [1, 0, 0, 0, 0, 0]);
    let other_type = client
        .list_compliance_summaries()
        .filters(filter(
            "ComplianceType",
            ComplianceQueryOperatorType::Equal,
            &["Association"],
        ))
        .send()
        .await
        .expect("other type");
    assert!(other_type.compliance_summary_items().is_empty());

    let paged: Vec<_> = client
        .list_compliance_summaries()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginator");
    assert_eq!(paged.len(), 1);
}

#[tokio::test]
async fn validation_and_filter_errors() {
    let server = crate::common::start_with(config()).await;
    let client = ssm(&server);
    for n in [0, 51] {
        assert_eq!(
            code(
                client
                    .list_resource_compliance_summaries()
                    .max_results(n)
                    .send()
                    .await
            ),
            "ValidationException",
            "MaxResults {n}"
        );
        assert_eq!(
            code(
                client
                    .list_compliance_summaries()
                    .max_results(n)
                    .send()
                    .await
            ),
            "ValidationException",
            "MaxResults {n}"
        );
    }
    let bad_type = ComplianceStringFilter::builder()
        .key("Status")
        .values("COMPLIANT")
        .r#type(ComplianceQueryOperatorType::from("Equal"))
        .build();
    assert_eq!(
        code(
            client
                .list_resource_compliance_summaries()
                .filters(bad_type.clone())
                .send()
                .await
        ),
        "ValidationException"
    );
    assert_eq!(
        code(
            client
                .list_compliance_summaries()
                .filters(bad_type)
                .send()
                .await
        ),
        "ValidationException"
    );
    let unknown = filter(
        "PatchSeverity",
        ComplianceQueryOperatorType::Equal,
        &["Critical"],
    );
    assert_eq!(
        code(
            client
                .list_resource_compliance_summaries()
                .filters(unknown.clone())
                .send()
                .await
        ),
        "InvalidFilter"
    );
    assert_eq!(
        code(
            client
                .list_compliance_summaries()
                .filters(unknown)
                .send()
                .await
        ),
        "InvalidFilter"
    );
    assert_eq!(
        code(
            client
                .list_resource_compliance_summaries()
                .next_token("not-a-token")
                .send()
                .await
        ),
        "InvalidNextToken"
    );
}

#[tokio::test]
async fn each_account_sees_its_own_compliance() {
    let server = crate::common::start_with(config()).await;
    let client = ssm(&server);
    let other = ssm_as(&server, creds(OTHER_KEY, None), REGION);
    fleet(&server, DEFAULT_ACCOUNT).await;
    fleet(&server, OTHER_ACCOUNT).await;
    scan(&client).await;
    assert_eq!(resources(&client, Vec::new()).await.len(), 3);
    assert!(
        resources(&other, Vec::new()).await.is_empty(),
        "the other account scanned nothing"
    );
    assert!(
        other
            .list_compliance_summaries()
            .send()
            .await
            .expect("other summaries")
            .compliance_summary_items()
            .is_empty()
    );
    // Another region of the same account is separate too.
    let west = ssm_as(&server, creds(crate::common::KEY, None), "eu-west-1");
    assert!(resources(&west, Vec::new()).await.is_empty());
    scan(&other).await;
    assert_eq!(resources(&other, Vec::new()).await.len(), 3);
}
