//! docs/tenancy.md end to end: two namespaces admitted to one account, where the account
//! grants the `Patch Group` values `web` and `db` to `tenant-m` alone. Intruders declare
//! groups with those values, a policy approving everything, a Scheduled window with an
//! Install task and an Emergency run: `tenant-a` (its name sorts first) before the owner
//! for `web`, `tenant-z` (sorts last) after the owner for `db`. In both orders, nothing of
//! the intruders reaches SSM or the machines, and their groups say why.

use std::time::Duration;

use patchfleet_tests::e2e::{CUSTOMER_A_EU, eventually, look, sim_nodes};
use patchfleet_tests::stack::{CONVERGE, Stack};
use serde_json::Value;
use ssm_sim::fleet::{FleetSpec, InstanceSpec, tags};

const OWNER: &str = "tenant-m";

fn node(id: &str, group: &str) -> InstanceSpec {
    InstanceSpec {
        instance_id: id.into(),
        tags: tags([("Patch Group", group)]),
        missing_patches: 2,
        fails_install: false,
        pending_reboot: false,
        ..InstanceSpec::default()
    }
}

const ACCOUNT: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: tenant-a, labels: {patchfleet.io/tenant: platform}}
---
apiVersion: v1
kind: Namespace
metadata: {name: tenant-m, labels: {patchfleet.io/tenant: platform}}
---
apiVersion: v1
kind: Namespace
metadata: {name: tenant-z, labels: {patchfleet.io/tenant: platform}}
---
apiVersion: patchfleet.io/v1alpha1
kind: SystemAccount
metadata: {name: shared, labels: {patchfleet.io/managed: "true"}}
spec:
  accountId: "111111111111"
  roleArn: arn:aws:iam::111111111111:role/patchfleet
  externalId: customer-a-7f3c
  regions: [eu-west-1]
  namespaceSelector: {matchLabels: {patchfleet.io/tenant: platform}}
  patchGroupGrants:
    - namespace: tenant-m
      values: [web, db]
"#;

/// A tenant's claim on `value`: a policy approving everything on Windows and Amazon Linux
/// 2, the group, a Scheduled window installing on it, and (for intruders) an Emergency run.
fn claim(namespace: &str, value: &str, emergency: bool) -> String {
    let mut yaml = format!(
        r#"
apiVersion: patchfleet.io/v1alpha1
kind: PatchPolicy
metadata: {{name: everything-{value}, namespace: {namespace}}}
spec:
  baselines:
    - operatingSystem: WINDOWS
      approvalRules:
        - approveAfterDays: 0
          complianceLevel: CRITICAL
          patchFilters: [{{key: CLASSIFICATION, values: [CriticalUpdates, SecurityUpdates, Updates]}}]
    - operatingSystem: AMAZON_LINUX_2
      approvalRules:
        - approveAfterDays: 0
          complianceLevel: CRITICAL
          patchFilters: [{{key: CLASSIFICATION, values: [Security, Bugfix]}}]
---
apiVersion: patchfleet.io/v1alpha1
kind: PatchGroup
metadata: {{name: {value}, namespace: {namespace}}}
spec:
  groupName: {value}
  policyRef: {{name: everything-{value}}}
  accountSelector: {{}}
---
apiVersion: patchfleet.io/v1alpha1
kind: MaintenanceWindow
metadata: {{name: nightly-{value}, namespace: {namespace}}}
spec:
  schedule: "cron(0 2 ? * * *)"
  duration: 3
  cutoff: 1
  targets: {{patchGroups: [{value}]}}
  tasks:
    - {{name: install, operation: Install, rebootOption: RebootIfNeeded}}
"#
    );
    if emergency {
        yaml.push_str(&format!(
            r#"---
apiVersion: patchfleet.io/v1alpha1
kind: MaintenanceWindow
metadata: {{name: now-{value}, namespace: {namespace}}}
spec:
  strategy: Emergency
  runToken: take-over
  targets: {{patchGroups: [{value}]}}
  tasks:
    - {{name: install, operation: Install, rebootOption: RebootIfNeeded}}
"#
        ));
    }
    yaml
}

fn apply(stack: &Stack, name: &str, yaml: &str) {
    stack
        .apply_text(name, yaml)
        .unwrap_or_else(|e| panic!("{name} applied: {e:#}"));
}

/// `status.failures[*].reason` and the Ready condition's status of a PatchGroup.
fn group_standing(stack: &Stack, namespace: &str, name: &str) -> (String, String) {
    let out = stack
        .kubectl([
            "get",
            "pgrp",
            name,
            "-n",
            namespace,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}|{.status.failures[*].reason}|{.status.failures[*].message}",
        ])
        .unwrap_or_default();
    let mut parts = out.splitn(3, '|');
    let ready = parts.next().unwrap_or_default().to_owned();
    let reasons = parts.next().unwrap_or_default().to_owned();
    let message = parts.next().unwrap_or_default().to_owned();
    (ready, format!("{reasons}|{message}"))
}

fn refused(stack: &Stack, namespace: &str, value: &str) -> bool {
    let (ready, failures) = group_standing(stack, namespace, value);
    ready == "False"
        && failures.starts_with("PatchGroupNotGranted|")
        && failures.contains("spec.patchGroupGrants")
        && failures.contains(&format!("namespace {namespace}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_cannot_reach_machines_whose_values_it_was_not_granted_in_either_order() {
    let mut stack = Stack::start("tenancy").await.expect("stack");
    let (account, _, region) = CUSTOMER_A_EU;
    ssm_sim::fleet::apply(
        stack.sim.sim(),
        &FleetSpec {
            account_id: account.into(),
            region: region.into(),
            instances: vec![
                node("i-0000000000000000a", "web"),
                node("i-0000000000000000b", "db"),
            ],
        },
    );
    stack.start_controller().expect("controller");
    apply(&stack, "account", ACCOUNT);

    // web: the intruder (sorting first) claims it before the owner.
    apply(&stack, "a-web", &claim("tenant-a", "web", true));
    eventually("tenant-a's web is refused", &stack, CONVERGE, || async {
        refused(&stack, "tenant-a", "web")
    })
    .await;
    apply(&stack, "m-web", &claim(OWNER, "web", false));
    // db: the owner first, then the intruder (sorting last).
    apply(&stack, "m-db", &claim(OWNER, "db", false));
    eventually("the owner's groups are Ready", &stack, CONVERGE, || async {
        group_standing(&stack, OWNER, "web").0 == "True"
            && group_standing(&stack, OWNER, "db").0 == "True"
    })
    .await;
    apply(&stack, "z-db", &claim("tenant-z", "db", true));
    eventually("tenant-z's db is refused", &stack, CONVERGE, || async {
        refused(&stack, "tenant-z", "db")
    })
    .await;
    // Time for any pass the intruders' resources woke to finish.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let ssm = look(&stack, CUSTOMER_A_EU).await;
    let (baselines, windows) = ssm.owned_by(&stack.cluster_id);
    let names: Vec<&str> = baselines
        .iter()
        .map(|b| b.name.as_str())
        .chain(windows.iter().map(|w| w.name.as_str()))
        .collect();
    assert_eq!(
        names.len(),
        6,
        "the owner's 4 baselines and 2 windows: {names:?}"
    );
    assert!(
        names.iter().all(|n| n.starts_with("patchfleet-tenant-m-")),
        "nothing of the intruders in SSM: {names:?}"
    );
    for (group, _, baseline) in &ssm.registrations {
        let name = ssm
            .baselines
            .iter()
            .find(|b| &b.id == baseline)
            .map(|b| b.name.as_str())
            .unwrap_or_default();
        assert!(
            name.starts_with(&format!("patchfleet-{OWNER}-everything-{group}-")),
            "{group} registered to {name}"
        );
    }
    assert_eq!(ssm.registrations.len(), 4, "{:?}", ssm.registrations);
    // No command reached the machines: no Emergency run of the intruders (the owner has
    // none), so nothing scanned, installed or rebooted.
    assert_eq!(stack.calls("SendCommand"), 0);
    for (id, node) in sim_nodes(&stack, CUSTOMER_A_EU) {
        assert_eq!(node["runs"], Value::Array(vec![]), "{id}: {node}");
        assert_eq!(node["reboots"], 0, "{id}: {node}");
    }
    // The refusal is an Event on the refused group, naming the rule.
    for namespace in ["tenant-a", "tenant-z"] {
        let events = stack
            .kubectl([
                "get",
                "events",
                "-n",
                namespace,
                "--field-selector",
                "reason=PatchGroupNotGranted",
                "-o",
                "jsonpath={.items[*].message}",
            ])
            .expect("events");
        assert!(
            events.contains("spec.patchGroupGrants"),
            "{namespace}: {events:?}"
        );
    }
    // The intruders' windows are not Ready either: they reach no account-region.
    let windows = stack
        .kubectl(["get", "mw", "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.status.summary.selected}{\"\\n\"}{end}"])
        .expect("windows");
    for line in windows.lines() {
        if line.starts_with("tenant-a/") || line.starts_with("tenant-z/") {
            assert!(line.ends_with("=0") || line.ends_with('='), "{line}");
        }
    }
}

/// The default baseline of `os` in the account-region, by name (AWS's or ours).
async fn default_baseline(stack: &Stack, os: &str) -> String {
    let (account, external_id, region) = CUSTOMER_A_EU;
    let client = patchfleet_tests::stack::ssm_client(stack, account, external_id, region)
        .await
        .expect("SSM client");
    let id = client
        .get_default_patch_baseline()
        .operating_system(os.into())
        .send()
        .await
        .expect("GetDefaultPatchBaseline")
        .baseline_id()
        .unwrap_or_default()
        .to_owned();
    client
        .get_patch_baseline()
        .baseline_id(&id)
        .send()
        .await
        .expect("GetPatchBaseline")
        .name()
        .unwrap_or_default()
        .to_owned()
}

/// `kubectl patch` of the SystemAccount `shared`, as its administrator would.
fn patch_account(stack: &Stack, patch_type: &str, patch: &str) {
    stack
        .kubectl([
            "patch",
            "sysacct",
            "shared",
            &format!("--type={patch_type}"),
            "-p",
            patch,
        ])
        .unwrap_or_else(|e| panic!("patch {patch}: {e:#}"));
}

/// `status|<field>` of one condition of the SystemAccount `shared`.
fn account_condition(stack: &Stack, type_: &str, field: &str) -> String {
    let at = format!("{{.status.conditions[?(@.type==\"{type_}\")]");
    stack
        .kubectl([
            "get",
            "sysacct",
            "shared",
            "-o",
            &format!("jsonpath={at}.status}}|{at}.{field}}}"),
        ])
        .unwrap_or_default()
}

fn account_standing(stack: &Stack) -> String {
    account_condition(stack, "Stalled", "reason")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_administrator_sets_the_default_baselines_and_removing_them_gives_back_aws() {
    let mut stack = Stack::start("defaults-admin").await.expect("stack");
    stack.start_controller().expect("controller");
    apply(&stack, "account", ACCOUNT);
    // The administrators' namespace is not admitted to the account: it needs not be.
    apply(
        &stack,
        "admin",
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: fleet-admin}}\n---\n{}",
            claim("fleet-admin", "defaults", false)
                .split("---")
                .next()
                .unwrap_or_default()
        ),
    );
    assert_eq!(
        default_baseline(&stack, "WINDOWS").await,
        "AWS-DefaultPatchBaseline"
    );

    // A typo: no default changes, the account says which field.
    let patch = |policy: &str| {
        format!(
            r#"{{"spec":{{"defaultPatchPolicy":{{"namespace":"fleet-admin","name":"{policy}"}}}}}}"#
        )
    };
    patch_account(&stack, "merge", &patch("typo"));
    eventually("the account is stalled", &stack, CONVERGE, || async {
        account_standing(&stack) == "True|DefaultPatchPolicyNotFound"
    })
    .await;
    assert_eq!(
        default_baseline(&stack, "WINDOWS").await,
        "AWS-DefaultPatchBaseline"
    );

    patch_account(&stack, "merge", &patch("everything-defaults"));
    let ours = "patchfleet-fleet-admin-everything-defaults-windows";
    eventually("ours is the Windows default", &stack, CONVERGE, || async {
        default_baseline(&stack, "WINDOWS").await == ours
    })
    .await;
    assert_eq!(
        default_baseline(&stack, "AMAZON_LINUX_2").await,
        "patchfleet-fleet-admin-everything-defaults-amazon-linux-2"
    );
    assert_eq!(account_standing(&stack), "False|AsExpected");

    // The field removed: AWS's defaults come back and the baselines go.
    patch_account(
        &stack,
        "json",
        r#"[{"op":"remove","path":"/spec/defaultPatchPolicy"}]"#,
    );
    eventually("AWS's default is back", &stack, CONVERGE, || async {
        default_baseline(&stack, "WINDOWS").await == "AWS-DefaultPatchBaseline"
            && default_baseline(&stack, "AMAZON_LINUX_2").await
                == "AWS-AmazonLinux2DefaultPatchBaseline"
    })
    .await;
    eventually("the baselines are deleted", &stack, CONVERGE, || async {
        let ssm = look(&stack, CUSTOMER_A_EU).await;
        ssm.owned_by(&stack.cluster_id).0.is_empty()
    })
    .await;

    // Grants that overlap are the administrator's to see, on the account itself.
    patch_account(
        &stack,
        "json",
        r#"[{"op":"add","path":"/spec/patchGroupGrants/-","value":{"namespace":"tenant-a","prefixes":["we"]}}]"#,
    );
    let overlap = || account_condition(&stack, "GrantsOverlap", "message");
    eventually(
        "the account shows the overlap",
        &stack,
        CONVERGE,
        || async {
            overlap().starts_with(
                "True|spec.patchGroupGrants[0] (namespace tenant-m) and spec.patchGroupGrants[1] \
             (namespace tenant-a) both cover \"web\"",
            )
        },
    )
    .await;
    stack.check_controller().expect("controller still running");
}
