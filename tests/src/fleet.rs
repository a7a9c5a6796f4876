//! The fleet of tests/e2e/compliance.rs and tests/e2e/dashboard.rs: two accounts (AWS and
//! VMware) with nodes of several platforms and providers in two patch groups, a Scan window
//! and two Install windows at given simulated times.

use kube::Api;
use patchfleet_api::v1alpha1::{NodeCounts, SystemAccount};
use ssm_sim::fleet::{FleetSpec, InstanceSpec};
use ssm_sim::state::Tags;

use crate::stack::Stack;

pub const A: (&str, &str, &str) = ("111111111111", "customer-a-7f3c", "eu-west-1");
pub const B: (&str, &str, &str) = ("222222222222", "customer-b-91d2", "eu-central-1");

/// `at(...)` of an epoch time, in UTC.
pub fn at(epoch: f64) -> String {
    format!("at({})", &ssm_sim::clock::iso8601(epoch)[..19])
}

pub fn manifests(scan_at: f64, install_at: f64) -> String {
    let account = |name: &str, id: &str, external: &str, region: &str, platform: &str| {
        format!(
            r#"apiVersion: patchfleet.io/v1alpha1
kind: SystemAccount
metadata:
  name: {name}
  labels: {{patchfleet.io/managed: "true"}}
spec:
  accountId: "{id}"
  roleArn: arn:aws:iam::{id}:role/patchfleet
  externalId: {external}
  regions: [{region}]
  platform: {platform}
  namespaceSelector: {{matchLabels: {{patchfleet.io/tenant: fleet}}}}
  patchGroupGrants:
    - namespace: fleet
      values: [web, db]
---
"#
        )
    };
    let group = |name: &str| {
        format!(
            r#"apiVersion: patchfleet.io/v1alpha1
kind: PatchGroup
metadata: {{name: {name}, namespace: fleet}}
spec:
  policyRef: {{name: critical}}
  accountSelector: {{matchLabels: {{patchfleet.io/managed: "true"}}}}
---
"#
        )
    };
    let window = |name: &str, schedule: &str, groups: &str, task: &str| {
        format!(
            r#"apiVersion: patchfleet.io/v1alpha1
kind: MaintenanceWindow
metadata: {{name: {name}, namespace: fleet}}
spec:
  strategy: Scheduled
  schedule: {schedule}
  scheduleTimezone: Etc/UTC
  duration: 2
  cutoff: 1
  targets: {{patchGroups: [{groups}]}}
  tasks:
{task}---
"#
        )
    };
    let rule = |os: &str, classification: &str, severity_key: &str| {
        format!(
            r#"    - operatingSystem: {os}
      approvalRules:
      - patchFilters:
          - {{key: CLASSIFICATION, values: [{classification}]}}
          - {{key: {severity_key}, values: [Critical, Important]}}
        approveAfterDays: 0
        complianceLevel: CRITICAL
"#
        )
    };
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: fleet, labels: {{patchfleet.io/tenant: fleet}}}}
---
{a}{b}apiVersion: patchfleet.io/v1alpha1
kind: PatchPolicy
metadata: {{name: critical, namespace: fleet}}
spec:
  baselines:
{linux}{windows}---
{web}{db}{scan}{install_web}{install_db}"#,
        a = account("customer-a", A.0, A.1, A.2, "aws"),
        b = account("customer-b", B.0, B.1, B.2, "vmware"),
        linux = rule("AMAZON_LINUX_2", "Security", "SEVERITY"),
        windows = rule(
            "WINDOWS",
            "CriticalUpdates, SecurityUpdates",
            "MSRC_SEVERITY"
        ),
        web = group("web"),
        db = group("db"),
        scan = window(
            "nightly-scan",
            &at(scan_at),
            "web, db",
            "    - {name: scan, operation: Scan, priority: 1}\n"
        ),
        install_web = window(
            "install-web",
            &at(install_at),
            "web",
            "    - {name: install, operation: Install, rebootOption: RebootIfNeeded, priority: 1}\n"
        ),
        install_db = window(
            "install-db",
            &at(install_at),
            "db",
            "    - {name: install, operation: Install, rebootOption: NoReboot, priority: 1}\n"
        ),
    )
}

pub fn node(id: &str, group: Option<&str>) -> InstanceSpec {
    InstanceSpec {
        instance_id: id.to_owned(),
        tags: group
            .map(|g| Tags::from([("Patch Group".to_owned(), g.to_owned())]))
            .unwrap_or_default(),
        ..InstanceSpec::default()
    }
}

pub const OVERWRITTEN: &str = "i-0a000000000000006";

/// Customer A (AWS): four Linux EC2 nodes in web (one lacking two patches, one failing
/// its install, one offline, one with an old agent), a Linux Azure VM in web, two Windows
/// EC2 nodes in db (one lacking a patch: its NoReboot install leaves it pending reboot;
/// one another tool scans last).
pub fn fleet_a() -> Vec<InstanceSpec> {
    vec![
        InstanceSpec {
            missing_patches: 2,
            ..node("i-0a000000000000001", Some("web"))
        },
        InstanceSpec {
            missing_patches: 2,
            fails_install: true,
            ..node("i-0a000000000000002", Some("web"))
        },
        InstanceSpec {
            ping_status: Some("ConnectionLost".to_owned()),
            ..node("i-0a000000000000003", Some("web"))
        },
        InstanceSpec {
            agent_version: Some("3.1.0.0".to_owned()),
            ..node("i-0a000000000000004", Some("web"))
        },
        InstanceSpec {
            missing_patches: 1,
            platform_type: Some("Windows".to_owned()),
            ..node("i-0a000000000000005", Some("db"))
        },
        InstanceSpec {
            platform_type: Some("Windows".to_owned()),
            ..node(OVERWRITTEN, Some("db"))
        },
        InstanceSpec {
            source_type: Some("Microsoft.Compute/virtualMachines".to_owned()),
            ..node("mi-0a000000000000007", Some("web"))
        },
    ]
}

/// Customer B (VMware): a hybrid Linux node in db lacking a patch, a hybrid node in no
/// group (never scanned), and an EC2 node in web.
pub fn fleet_b() -> Vec<InstanceSpec> {
    vec![
        InstanceSpec {
            missing_patches: 1,
            ..node("mi-0b000000000000001", Some("db"))
        },
        node("mi-0b000000000000002", None),
        node("i-0b000000000000003", Some("web")),
    ]
}

pub fn put_fleet(
    stack: &Stack,
    (account, _, region): (&str, &str, &str),
    instances: Vec<InstanceSpec>,
) {
    let spec = FleetSpec {
        account_id: account.to_owned(),
        region: region.to_owned(),
        instances,
    };
    spec.validate(&stack.sim.sim().config.quotas)
        .expect("a valid fleet");
    ssm_sim::fleet::apply(stack.sim.sim(), &spec);
}

pub fn set_clock(stack: &Stack, to: f64) {
    stack.sim.sim().clock.set(to).expect("the clock moves on");
    ssm_sim::ops::run_due_everywhere(stack.sim.sim());
}

/// A SystemAccount's node totals as the compliance pass wrote them.
pub async fn account_total(stack: &Stack, name: &str) -> Option<NodeCounts> {
    let api: Api<SystemAccount> = Api::all(stack.client().await.ok()?);
    let account = api.get(name).await.ok()?;
    account.status?.nodes.map(|n| n.total)
}

/// The stack with this fleet: the controller (compliance pass every 2 s), the manifests
/// applied with the Scan window an hour ahead on the simulated clock and the Install
/// windows an hour after it, `ready` kinds Ready, both accounts' nodes in place. Returns
/// the stack and the Scan and Install times.
pub async fn start(test: &str, ready: &[&str]) -> (Stack, f64, f64) {
    let mut stack = Stack::start(test).await.expect("stack starts");
    stack
        .start_controller_with(&["--compliance-interval", "2s"])
        .expect("controller starts");
    let now = stack.sim.sim().clock.now();
    let scan_at = (now / 60.0).floor() * 60.0 + 3_600.0;
    let install_at = scan_at + 3_600.0;
    stack
        .apply_text(test, &manifests(scan_at, install_at))
        .expect("manifests apply");
    stack
        .wait_ready(ready, crate::stack::CONVERGE)
        .expect("the resources converge");
    put_fleet(&stack, A, fleet_a());
    put_fleet(&stack, B, fleet_b());
    (stack, scan_at, install_at)
}
