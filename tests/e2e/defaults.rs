//! The defaults (examples/defaults/, the chart's `defaults` value): three PatchPolicies by
//! patch age with eight baselines each, and three PatchGroups. Offline, the three ages
//! differ only in their approval delay; end to end (control plane + simulator + the
//! controller), they converge in two accounts exactly as declared, and then cost no writes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use patchfleet_planner::model::tags;
use patchfleet_tests::examples::{self, Manifest};
use patchfleet_tests::inspect;
use patchfleet_tests::repo_root;
use patchfleet_tests::stack::{CONVERGE, Stack, ssm_client};
use serde_json::Value;

const NAMESPACE: &str = "patchfleet-defaults";
/// (age, approveAfterDays)
const AGES: [(&str, i64); 3] = [("early", 0), ("on-time", 7), ("late", 14)];
/// Operating systems on which SSM supports no approval delay.
const NO_DELAY: [&str; 2] = ["UBUNTU", "DEBIAN"];
const SYSTEMS: [&str; 8] = [
    "WINDOWS",
    "AMAZON_LINUX",
    "AMAZON_LINUX_2",
    "REDHAT_ENTERPRISE_LINUX",
    "ORACLE_LINUX",
    "CENTOS",
    "UBUNTU",
    "DEBIAN",
];

/// (account id, external id, region): the simulator's two example accounts, customer-a in
/// two regions.
const ACCOUNT_REGIONS: [(&str, &str, &str); 3] = [
    ("111111111111", "customer-a-7f3c", "eu-west-1"),
    ("111111111111", "customer-a-7f3c", "us-east-1"),
    ("222222222222", "customer-b-91d2", "eu-central-1"),
];

/// Two SystemAccounts that admit the defaults' namespace by its label, as
/// examples/defaults/README.md shows.
const ACCOUNTS: &str = r#"
apiVersion: patchfleet.io/v1alpha1
kind: SystemAccount
metadata:
  name: customer-a-aws
spec:
  accountId: "111111111111"
  roleArn: arn:aws:iam::111111111111:role/patchfleet
  externalId: customer-a-7f3c
  regions: [eu-west-1, us-east-1]
  namespaceSelector:
    matchLabels:
      patchfleet.io/defaults: "true"
  patchGroupGrants:
    - namespace: patchfleet-defaults
      values: [early, on-time, late]
---
apiVersion: patchfleet.io/v1alpha1
kind: SystemAccount
metadata:
  name: customer-b-vmware
spec:
  accountId: "222222222222"
  roleArn: arn:aws:iam::222222222222:role/patchfleet
  externalId: customer-b-91d2
  regions: [eu-central-1]
  platform: vmware
  namespaceSelector:
    matchLabels:
      patchfleet.io/defaults: "true"
  patchGroupGrants:
    - namespace: patchfleet-defaults
      values: [early, on-time, late]
"#;

fn defaults() -> Vec<Manifest> {
    examples::load_dir(&repo_root().join("examples/defaults")).expect("examples/defaults loads")
}

fn policy<'a>(manifests: &'a [Manifest], age: &str) -> &'a Value {
    &examples::find(manifests, "PatchPolicy", age)
        .expect("the age's policy")
        .value
}

/// A policy's spec with every approveAfterDays and description removed.
fn without_delays(spec: &Value) -> Value {
    let mut spec = spec.clone();
    if let Some(baselines) = spec["baselines"].as_array_mut() {
        for baseline in baselines {
            if let Some(b) = baseline.as_object_mut() {
                b.remove("description");
            }
            if let Some(rules) = baseline["approvalRules"].as_array_mut() {
                for rule in rules {
                    if let Some(r) = rule.as_object_mut() {
                        r.remove("approveAfterDays");
                    }
                }
            }
        }
    }
    spec
}

#[test]
fn the_three_ages_differ_only_in_their_delay() {
    let manifests = defaults();
    let kinds: Vec<(&str, &str)> = manifests.iter().map(|m| (m.kind(), m.name())).collect();
    assert_eq!(
        kinds,
        [
            ("Namespace", NAMESPACE),
            ("PatchPolicy", "early"),
            ("PatchGroup", "early"),
            ("PatchPolicy", "on-time"),
            ("PatchGroup", "on-time"),
            ("PatchPolicy", "late"),
            ("PatchGroup", "late"),
        ]
    );
    let early = without_delays(&policy(&manifests, "early")["spec"]);
    for (age, days) in AGES {
        let policy = policy(&manifests, age);
        assert_eq!(policy["metadata"]["namespace"], NAMESPACE);
        assert_eq!(
            without_delays(&policy["spec"]),
            early,
            "{age}: the ages must differ only in approveAfterDays and descriptions"
        );
        let baselines = policy["spec"]["baselines"].as_array().expect("baselines");
        let systems: Vec<&str> = baselines
            .iter()
            .filter_map(|b| b["operatingSystem"].as_str())
            .collect();
        assert_eq!(systems, SYSTEMS, "{age}");
        for baseline in baselines {
            let os = baseline["operatingSystem"].as_str().unwrap_or_default();
            let rules = baseline["approvalRules"].as_array().expect("rules");
            assert!(!rules.is_empty(), "{age} {os}: no approval rule");
            for rule in rules {
                let expected = if NO_DELAY.contains(&os) {
                    Value::Null
                } else {
                    Value::from(days)
                };
                assert_eq!(rule["approveAfterDays"], expected, "{age} {os}");
            }
            let description = baseline["description"].as_str().unwrap_or_default();
            assert!(
                description.starts_with(&format!("patchfleet default, {age}: AWS-")),
                "{age} {os}: {description}"
            );
        }
        let group = examples::find(&manifests, "PatchGroup", age).expect("the age's group");
        assert_eq!(group.value["spec"]["policyRef"]["name"], age);
        assert_eq!(
            group.value["spec"]["accountSelector"],
            serde_json::json!({})
        );
        assert!(group.value["spec"].get("groupName").is_none());
    }
}

/// One approval rule, comparable between the manifest and GetPatchBaseline: (filters as
/// key -> values, approveAfterDays, complianceLevel, enableNonSecurity).
type Rule = (
    BTreeMap<String, BTreeSet<String>>,
    Option<i64>,
    String,
    bool,
);

fn declared_rules(baseline: &Value) -> Vec<Rule> {
    baseline["approvalRules"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|rule| {
            let filters = rule["patchFilters"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|f| {
                    let values = f["values"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    (f["key"].as_str().unwrap_or_default().to_owned(), values)
                })
                .collect();
            (
                filters,
                rule["approveAfterDays"].as_i64(),
                rule["complianceLevel"]
                    .as_str()
                    .unwrap_or("UNSPECIFIED")
                    .to_owned(),
                rule["enableNonSecurity"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn observed_rules(
    baseline: &aws_sdk_ssm::operation::get_patch_baseline::GetPatchBaselineOutput,
) -> Vec<Rule> {
    baseline
        .approval_rules()
        .map(|group| group.patch_rules())
        .unwrap_or_default()
        .iter()
        .map(|rule| {
            let filters = rule
                .patch_filter_group()
                .map(|g| g.patch_filters())
                .unwrap_or_default()
                .iter()
                .map(|f| {
                    (
                        f.key().as_str().to_owned(),
                        f.values().iter().cloned().collect(),
                    )
                })
                .collect();
            (
                filters,
                rule.approve_after_days().map(i64::from),
                rule.compliance_level()
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_else(|| "UNSPECIFIED".to_owned()),
                rule.enable_non_security().unwrap_or(false),
            )
        })
        .collect()
}

/// `patchfleet-<namespace>-<policy>-<os>`, as the planner names baselines.
fn baseline_name(age: &str, os: &str) -> String {
    format!(
        "patchfleet-{NAMESPACE}-{age}-{}",
        os.to_ascii_lowercase().replace('_', "-")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_defaults_converge_in_two_accounts_and_then_cost_no_writes() {
    let started = std::time::Instant::now();
    let mut stack = Stack::start("defaults").await.expect("stack starts");
    stack.start_controller().expect("controller starts");
    stack
        .apply_text("accounts", ACCOUNTS)
        .expect("accounts apply");
    stack.apply("examples/defaults").expect("defaults apply");
    stack
        .wait_ready(
            &["systemaccounts", "patchpolicies", "patchgroups"],
            CONVERGE,
        )
        .expect("the defaults converge");
    println!("converged in {:.1?}", started.elapsed());

    let manifests = defaults();
    for (account, external_id, region) in ACCOUNT_REGIONS {
        let at = format!("{account} {region}");
        let client = ssm_client(&stack, account, external_id, region)
            .await
            .expect("SSM client");
        let snapshot = inspect::snapshot(&client).await.expect("snapshot");
        let (owned, windows) = snapshot.owned_by(&stack.cluster_id);
        assert_eq!(owned.len(), 24, "{at}: {:#?}", snapshot.baselines);
        assert_eq!(snapshot.baselines.len(), 24, "{at}: nothing else exists");
        assert!(windows.is_empty(), "{at}: the defaults have no windows");
        assert_eq!(snapshot.registrations.len(), 24, "{at}");
        for (age, _) in AGES {
            let policy = policy(&manifests, age);
            for declared in policy["spec"]["baselines"].as_array().expect("baselines") {
                let os = declared["operatingSystem"].as_str().unwrap_or_default();
                let name = baseline_name(age, os);
                let baseline = snapshot
                    .baseline_named(&name)
                    .unwrap_or_else(|| panic!("{at}: no baseline {name}"));
                assert_eq!(baseline.operating_system, os, "{at} {name}");
                assert_eq!(
                    baseline.tags.get(tags::OWNER).map(String::as_str),
                    Some(format!("PatchPolicy/{NAMESPACE}/{age}").as_str()),
                    "{at} {name}"
                );
                // Each group is registered to its own age's baselines, and only there.
                assert_eq!(
                    snapshot.groups_of(&baseline.id),
                    [age.to_owned()].into(),
                    "{at} {name}"
                );
                assert!(
                    snapshot.registrations.contains(&(
                        age.to_owned(),
                        os.to_owned(),
                        baseline.id.clone()
                    )),
                    "{at}: {age} not registered to {name} for {os}"
                );
                let observed = client
                    .get_patch_baseline()
                    .baseline_id(&baseline.id)
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "{at}: GetPatchBaseline {name}: {}",
                            aws_sdk_ssm::error::DisplayErrorContext(&e)
                        )
                    });
                assert_eq!(
                    observed.operating_system().map(|o| o.as_str()),
                    Some(os),
                    "{at} {name}"
                );
                // SSM holds the declared description followed by the fingerprint marker.
                let (description, fingerprint) =
                    patchfleet_planner::fingerprint::read_description(observed.description());
                assert_eq!(
                    description.as_deref(),
                    declared["description"].as_str(),
                    "{at} {name}"
                );
                assert!(fingerprint.is_some(), "{at} {name}: no fingerprint marker");
                assert_eq!(
                    observed_rules(&observed),
                    declared_rules(declared),
                    "{at} {name}: approval rules"
                );
                assert!(observed.approved_patches().is_empty(), "{at} {name}");
                assert!(observed.rejected_patches().is_empty(), "{at} {name}");
            }
        }
    }

    // Status: every group reaches the three account-regions.
    for (age, _) in AGES {
        let summary = stack
            .kubectl([
                "get",
                "pgrp",
                age,
                "-n",
                NAMESPACE,
                "-o",
                "jsonpath={.status.groupName} {.status.summary.ready}/{.status.summary.selected}",
            ])
            .expect("kubectl get");
        assert_eq!(summary, format!("{age} 3/3"));
    }

    // Converged: later passes (resync every 3 s) read but never write.
    let before = stack.sim.sim().counters.snapshot();
    let writes = stack.writes();
    tokio::time::sleep(Duration::from_secs(10)).await;
    stack.check_controller().expect("the controller runs");
    if stack.writes() != writes {
        let grew: Vec<String> = stack
            .sim
            .sim()
            .counters
            .snapshot()
            .iter()
            .filter(|c| {
                before.iter().find(|b| b.key == c.key).map(|b| b.count) != Some(c.count)
                    && !c.key.operation.starts_with("Describe")
                    && !c.key.operation.starts_with("Get")
                    && !c.key.operation.starts_with("List")
            })
            .map(|c| format!("{:?} {}", c.key, c.count))
            .collect();
        panic!(
            "the converged defaults were written to:\n{}\n{}",
            grew.join("\n"),
            stack.controller_log()
        );
    }
    for (account, _, region) in ACCOUNT_REGIONS {
        assert!(
            stack.writes_in(account, region) > 0,
            "{account} {region}: the counters saw no writes at all"
        );
    }
    println!("done in {:.1?}", started.elapsed());
}
