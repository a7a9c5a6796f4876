//! A simulator with two customer accounts, an edge pointed at it, and desired objects.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ssm::config::Credentials;
use aws_sdk_ssm::types::Target;
use patchfleet_api::v1alpha1::{
    ApprovalRule, BaselineSpec, ComplianceLevel, OperatingSystem, PatchFilter, PatchFilterKey,
    PatchOperation, RebootOption,
};
use patchfleet_planner::model::{
    Desired, DesiredBaseline, DesiredWindow, ObjectRef, Operation, Owner, OwnerKind, Revision,
    TargetDefinition, TaskAction, TaskDefinition, WindowDefinition,
};
use patchfleet_planner::normalize::normalize_baseline;
use patchfleet_planner::{baseline_fingerprint, window_fingerprint};
use patchfleet_ssm::{AccountAccess, EdgeSettings, Fingerprints, SsmClient, SsmEdge};
use ssm_sim::config::{AccountConfig, RoleConfig};
use ssm_sim::{Config, Server};

pub const CLUSTER: &str = "cluster-under-test";
pub const BASE_ACCOUNT: &str = "999999999999";
pub const ACCOUNT_A: &str = "111111111111";
pub const ACCOUNT_B: &str = "222222222222";
pub const EXTERNAL_ID_A: &str = "customer-a-7f3c";
pub const REGION: &str = "eu-west-1";

/// Customer A's role needs an ExternalId, customer B's does not; the controller's own key
/// belongs to a third account.
pub fn sim_config() -> Config {
    Config {
        default_account: BASE_ACCOUNT.into(),
        accounts: vec![
            AccountConfig {
                id: ACCOUNT_A.into(),
                roles: vec![RoleConfig {
                    name: "patchfleet".into(),
                    external_id: Some(EXTERNAL_ID_A.into()),
                }],
            },
            AccountConfig {
                id: ACCOUNT_B.into(),
                roles: vec![RoleConfig {
                    name: "patchfleet".into(),
                    external_id: None,
                }],
            },
        ],
        ..Config::default()
    }
}

pub async fn start(config: Config) -> Server {
    Server::start(config, "127.0.0.1:0".parse().expect("loopback address"))
        .await
        .expect("simulator starts")
}

pub fn settings(server: &Server) -> EdgeSettings {
    EdgeSettings {
        ssm_endpoint: Some(server.endpoint_url()),
        sts_endpoint: Some(server.endpoint_url()),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        calls_per_second: 0.0,
        ..EdgeSettings::default()
    }
}

pub async fn edge_with(settings: EdgeSettings) -> SsmEdge {
    let base = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIAPATCHFLEETBASE01",
            "base-secret",
            None,
            None,
            "test",
        ))
        .load()
        .await;
    SsmEdge::with_config(settings, base)
}

pub async fn edge(server: &Server) -> SsmEdge {
    edge_with(settings(server)).await
}

pub fn access_a() -> AccountAccess {
    AccountAccess {
        name: "customer-a-aws".into(),
        account_id: ACCOUNT_A.into(),
        role_arn: Some(format!("arn:aws:iam::{ACCOUNT_A}:role/patchfleet")),
        external_id: Some(EXTERNAL_ID_A.into()),
    }
}

pub async fn client_a(server: &Server) -> (SsmEdge, SsmClient) {
    let edge = edge(server).await;
    let client = edge.account(&access_a()).await.client(REGION);
    (edge, client)
}

pub fn owner(kind: OwnerKind, name: &str) -> Owner {
    Owner {
        kind,
        namespace: "patching".into(),
        name: name.into(),
    }
}

fn rule(filters: Vec<PatchFilter>, days: Option<i32>, level: ComplianceLevel) -> ApprovalRule {
    ApprovalRule {
        patch_filters: filters,
        approve_after_days: days,
        approve_until_date: None,
        compliance_level: level,
        enable_non_security: false,
    }
}

fn filter(key: PatchFilterKey, values: &[&str]) -> PatchFilter {
    PatchFilter {
        key,
        values: values.iter().map(|v| (*v).to_owned()).collect(),
    }
}

/// A baseline as the examples' policies describe them, for `days` of patch age.
pub fn baseline_spec(os: OperatingSystem, days: i32) -> BaselineSpec {
    let mut spec = BaselineSpec::new(os);
    spec.approval_rules = match os {
        OperatingSystem::Windows => vec![rule(
            vec![
                filter(
                    PatchFilterKey::Classification,
                    &["CriticalUpdates", "SecurityUpdates"],
                ),
                filter(PatchFilterKey::MsrcSeverity, &["Critical", "Important"]),
            ],
            Some(days),
            ComplianceLevel::Critical,
        )],
        OperatingSystem::Ubuntu | OperatingSystem::Debian => vec![rule(
            vec![filter(
                PatchFilterKey::Priority,
                &["Required", "Important", "Standard", "Optional", "Extra"],
            )],
            None,
            ComplianceLevel::High,
        )],
        OperatingSystem::Centos => {
            let mut r = rule(
                vec![filter(PatchFilterKey::Product, &["*"])],
                Some(days),
                ComplianceLevel::Medium,
            );
            r.enable_non_security = true;
            vec![r]
        }
        _ => vec![
            rule(
                vec![
                    filter(PatchFilterKey::Classification, &["Security"]),
                    filter(PatchFilterKey::Severity, &["Critical", "Important"]),
                ],
                Some(days),
                ComplianceLevel::Critical,
            ),
            rule(
                vec![filter(PatchFilterKey::Classification, &["Bugfix"])],
                Some(days),
                ComplianceLevel::Medium,
            ),
        ],
    };
    spec
}

pub fn baseline_name(policy: &str, os: OperatingSystem) -> String {
    format!(
        "patchfleet-{policy}-{}",
        os.as_str().to_ascii_lowercase().replace('_', "-")
    )
}

pub fn desired_baseline(policy: &str, spec: BaselineSpec, groups: &[&str]) -> DesiredBaseline {
    DesiredBaseline {
        name: baseline_name(policy, spec.operating_system),
        owner: owner(OwnerKind::PatchPolicy, policy),
        definition: spec.into(),
        patch_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        revision: revision(policy),
    }
}

pub fn window_definition(schedule: &str, duration: i32, cutoff: i32) -> WindowDefinition {
    WindowDefinition {
        description: Some(format!("patchfleet window {schedule}")),
        schedule: schedule.into(),
        schedule_timezone: Some("Europe/Paris".into()),
        schedule_offset: None,
        start_date: None,
        end_date: None,
        duration,
        cutoff,
        enabled: true,
    }
}

pub fn target(group: &str) -> TargetDefinition {
    TargetDefinition {
        patch_group: group.into(),
        owner_information: format!("PatchGroup/patching/{group}"),
    }
}

pub fn run_patch_baseline(
    operation: PatchOperation,
    targets: &[&str],
    priority: i32,
) -> TaskDefinition {
    TaskDefinition {
        description: None,
        action: TaskAction::RunPatchBaseline {
            operation,
            reboot_option: RebootOption::RebootIfNeeded,
        },
        max_concurrency: "10%".into(),
        max_errors: "1".into(),
        priority,
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        service_role_arn: None,
    }
}

/// The role the snapshot task runs as (and the runbook assumes).
pub const SNAPSHOT_ROLE: &str = "arn:aws:iam::111111111111:role/patching";

pub fn snapshot_then_patch(targets: &[&str], priority: i32) -> TaskDefinition {
    TaskDefinition {
        description: Some("snapshot, then install".into()),
        action: TaskAction::Automation {
            document: "AWS-PatchInstanceWithRollback".into(),
            parameters: BTreeMap::from([
                ("AutomationAssumeRole".into(), vec![SNAPSHOT_ROLE.into()]),
                ("InstanceId".into(), vec!["{{RESOURCE_ID}}".into()]),
            ]),
        },
        service_role_arn: Some(SNAPSHOT_ROLE.into()),
        max_concurrency: "10%".into(),
        max_errors: "5%".into(),
        priority,
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
    }
}

pub fn desired_window(
    name: &str,
    definition: WindowDefinition,
    groups: &[&str],
    tasks: Vec<(&str, TaskDefinition)>,
) -> DesiredWindow {
    DesiredWindow {
        name: format!("patchfleet-{name}"),
        owner: owner(OwnerKind::MaintenanceWindow, name),
        definition,
        targets: groups
            .iter()
            .map(|g| ((*g).to_owned(), target(g)))
            .collect(),
        tasks: tasks.into_iter().map(|(n, t)| (n.to_owned(), t)).collect(),
        revision: revision(name),
    }
}

/// The owner's first incarnation, as the API server would number it.
pub fn revision(owner_name: &str) -> Revision {
    Revision {
        uid: format!("uid-{owner_name}"),
        generation: 1,
    }
}

pub fn fingerprint_of(name: &str, version: u32) -> String {
    format!("{name}-v{version}")
}

/// The operations that create `baselines` and `windows` from nothing, in plan order.
pub fn create_all(baselines: &[DesiredBaseline], windows: &[DesiredWindow]) -> Vec<Operation> {
    let mut ops = Vec::new();
    for b in baselines {
        ops.push(Operation::CreateBaseline {
            baseline: b.clone(),
            fingerprint: fingerprint_of(&b.name, 1),
        });
    }
    for b in baselines {
        for g in &b.patch_groups {
            ops.push(Operation::RegisterPatchGroup {
                baseline: ObjectRef::Created(b.name.clone()),
                patch_group: g.clone(),
            });
        }
    }
    for w in windows {
        ops.push(Operation::CreateWindow {
            window: w.clone(),
            fingerprint: fingerprint_of(&w.name, 1),
        });
        for (name, t) in &w.targets {
            ops.push(Operation::RegisterTarget {
                window: ObjectRef::Created(w.name.clone()),
                name: name.clone(),
                target: t.clone(),
            });
        }
        for (name, t) in &w.tasks {
            ops.push(Operation::RegisterTask {
                window: ObjectRef::Created(w.name.clone()),
                name: name.clone(),
                task: t.clone(),
            });
        }
    }
    ops
}

pub fn fingerprints(
    baselines: &[DesiredBaseline],
    windows: &[DesiredWindow],
    version: u32,
) -> Fingerprints {
    Fingerprints {
        baselines: baselines
            .iter()
            .map(|b| (b.name.clone(), fingerprint_of(&b.name, version)))
            .collect(),
        windows: windows
            .iter()
            .map(|w| (w.name.clone(), fingerprint_of(&w.name, version)))
            .collect(),
    }
}

/// The eight operating systems examples/defaults gives a baseline each.
pub const DEFAULT_SYSTEMS: [OperatingSystem; 8] = [
    OperatingSystem::Windows,
    OperatingSystem::AmazonLinux,
    OperatingSystem::AmazonLinux2,
    OperatingSystem::RedhatEnterpriseLinux,
    OperatingSystem::OracleLinux,
    OperatingSystem::Centos,
    OperatingSystem::Ubuntu,
    OperatingSystem::Debian,
];

/// The examples' state in customer A's primary region: early, on-time and late policies
/// for eight operating systems plus the frozen policy's two, and three windows.
pub fn examples_state() -> (Vec<DesiredBaseline>, Vec<DesiredWindow>) {
    let systems = DEFAULT_SYSTEMS;
    let mut baselines = Vec::new();
    for (policy, days) in [("early", 0), ("on-time", 7), ("late", 14)] {
        for os in systems {
            baselines.push(desired_baseline(policy, baseline_spec(os, days), &[policy]));
        }
    }
    for os in [OperatingSystem::Windows, OperatingSystem::AmazonLinux2] {
        let mut spec = BaselineSpec::new(os);
        spec.approved_patches = vec!["KB5034439".into()];
        spec.approved_patches_compliance_level = ComplianceLevel::High;
        baselines.push(desired_baseline("frozen", spec, &["frozen-after-go-live"]));
    }
    let all = ["early", "on-time", "late"];
    let windows = vec![
        desired_window(
            "monthly",
            window_definition("cron(0 2 ? * SUN#2 *)", 4, 1),
            &all,
            vec![
                ("scan", run_patch_baseline(PatchOperation::Scan, &all, 1)),
                ("install", snapshot_then_patch(&all, 2)),
            ],
        ),
        desired_window(
            "emergency",
            window_definition("rate(1 day)", 2, 0),
            &all,
            vec![(
                "install-now",
                run_patch_baseline(PatchOperation::Install, &all, 1),
            )],
        ),
        desired_window(
            "frozen-scan",
            window_definition("cron(0 4 ? * MON *)", 2, 1),
            &["frozen-after-go-live"],
            vec![(
                "scan",
                run_patch_baseline(PatchOperation::Scan, &["frozen-after-go-live"], 1),
            )],
        ),
    ];
    (baselines, windows)
}

/// The workload for one account-region: 24 baselines (early, on-time and late
/// policies for eight operating systems, each with its group registered: 24
/// registrations) and 3 windows, one per group, each with 1 target and 2 tasks (Scan,
/// Install): 60 SSM objects.
pub fn workload() -> (Vec<DesiredBaseline>, Vec<DesiredWindow>) {
    let systems = DEFAULT_SYSTEMS;
    let policies = [("early", 0), ("on-time", 7), ("late", 14)];
    let mut baselines = Vec::new();
    for (policy, days) in policies {
        for os in systems {
            let mut spec = baseline_spec(os, days);
            spec.description = Some(format!("Managed by patchfleet: patching/{policy}"));
            baselines.push(desired_baseline(policy, spec, &[policy]));
        }
    }
    let windows = policies
        .iter()
        .map(|(group, _)| {
            desired_window(
                &format!("{group}-monthly"),
                window_definition("cron(0 2 ? * SUN#2 *)", 4, 1),
                &[group],
                vec![
                    (
                        "scan",
                        run_patch_baseline(PatchOperation::Scan, &[group], 1),
                    ),
                    (
                        "install",
                        run_patch_baseline(PatchOperation::Install, &[group], 2),
                    ),
                ],
            )
        })
        .collect();
    (baselines, windows)
}

/// SSM objects of a state: baselines, registrations, windows, targets, tasks.
pub fn object_count(baselines: &[DesiredBaseline], windows: &[DesiredWindow]) -> usize {
    baselines.len()
        + baselines
            .iter()
            .map(|b| b.patch_groups.len())
            .sum::<usize>()
        + windows
            .iter()
            .map(|w| 1 + w.targets.len() + w.tasks.len())
            .sum::<usize>()
}

/// Calls the simulator answered, by operation, for one account-region.
pub fn sim_calls(server: &Server, account: &str, region: &str) -> BTreeMap<String, u64> {
    let mut calls = BTreeMap::new();
    for c in server.sim().counters.snapshot() {
        if c.key.account == account && c.key.region == region {
            *calls.entry(c.key.operation.clone()).or_default() += c.count;
        }
    }
    calls
}

/// The desired state of one account-region from its baselines (normalized, as the planner
/// hands them over) and windows.
pub fn desired_of(baselines: Vec<DesiredBaseline>, windows: Vec<DesiredWindow>) -> Desired {
    Desired {
        baselines: baselines
            .into_iter()
            .map(|mut b| {
                b.definition = normalize_baseline(&b.definition).into();
                (b.name.clone(), b)
            })
            .collect(),
        windows: windows.into_iter().map(|w| (w.name.clone(), w)).collect(),
        ..Desired::default()
    }
}

/// The fingerprints the planner expects for `desired`, as the runtime hands them to observe.
pub fn expected(desired: &Desired) -> Fingerprints {
    Fingerprints {
        baselines: desired
            .baselines
            .values()
            .map(|b| (b.name.clone(), baseline_fingerprint(b)))
            .collect(),
        windows: desired
            .windows
            .values()
            .map(|w| (w.name.clone(), window_fingerprint(w)))
            .collect(),
    }
}

/// AWS-RunPatchBaseline Scan on every node of `groups`, as a window or another tool would.
pub async fn scan(client: &SsmClient, groups: &[&str]) {
    client
        .sdk()
        .send_command()
        .document_name("AWS-RunPatchBaseline")
        .targets(
            Target::builder()
                .key("tag:Patch Group")
                .set_values(Some(groups.iter().map(|g| (*g).to_owned()).collect()))
                .build(),
        )
        .parameters("Operation", vec!["Scan".to_owned()])
        .send()
        .await
        .expect("scan sent");
}
