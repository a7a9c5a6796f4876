//! Builders for tests, here and in the other crates (`mk_*`, in the style of linkerd's
//! policy controller): each makes a valid object in one line, with the fields a test
//! usually varies as arguments, so the test shows only what matters to it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, Time,
};
use k8s_openapi::jiff::Timestamp;
use patchfleet_api::v1alpha1::{
    ApprovalRule, BaselineSpec, ComplianceLevel, DeletionPolicy, MaintenanceWindow,
    MaintenanceWindowSpec, OperatingSystem, PatchFilter, PatchFilterKey, PatchGroup,
    PatchGroupGrant, PatchGroupSpec, PatchOperation, PatchPolicy, PatchPolicySpec, PatchRollout,
    PatchRolloutSpec, Platform, PolicyMode, PolicyReference, RebootOption, ReleaseSpec, StageSpec,
    Strategy, SystemAccount, SystemAccountSpec, WindowTargets, WindowTask,
};

use crate::fingerprint::{baseline_fingerprint, window_fingerprint};
use crate::inventory::{Inventory, NAMESPACE_NAME_LABEL, Settings, Shared, namespace_of};
use crate::model::{
    AccountRegion, Desired, DesiredBaseline, DesiredWindow, Observed, ObservedBaseline,
    ObservedRegistration, ObservedTarget, ObservedTask, ObservedWindow, Owner, tags,
};

/// The cluster id of [`mk_settings`].
pub const CLUSTER: &str = "test-cluster";

pub fn mk_settings() -> Settings {
    Settings::new(CLUSTER)
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn match_labels(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels(pairs)),
        match_expressions: None,
    }
}

pub fn match_expression(key: &str, operator: &str, values: &[&str]) -> LabelSelector {
    LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: (!values.is_empty()).then(|| strings(values)),
        }]),
    }
}

/// The namespaceSelector that admits every namespace, as SystemAccountSpec documents it.
pub fn all_namespaces() -> LabelSelector {
    match_expression(NAMESPACE_NAME_LABEL, "Exists", &[])
}

/// As the API server would set it: a uid unique to the object, generation 1.
fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        uid: Some(format!("uid-{}-{name}", namespace.unwrap_or_default())),
        generation: Some(1),
        ..ObjectMeta::default()
    }
}

/// Marks a resource as being deleted (its metadata.deletionTimestamp set).
pub fn deleting(meta: &mut ObjectMeta) {
    meta.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
}

/// An AWS-platform account that admits every namespace (`all_namespaces`).
pub fn mk_account(
    name: &str,
    account_id: &str,
    regions: &[&str],
    account_labels: &[(&str, &str)],
) -> SystemAccount {
    let mut metadata = meta(None, name);
    metadata.labels = Some(labels(account_labels));
    SystemAccount {
        metadata,
        spec: SystemAccountSpec {
            account_id: account_id.to_owned(),
            role_arn: Some(format!("arn:aws:iam::{account_id}:role/patchfleet")),
            external_id: None,
            regions: strings(regions),
            platform: Platform::Aws,
            namespace_selector: Some(all_namespaces()),
            patch_group_grants: Vec::new(),
            task_roles: Vec::new(),
            default_patch_policy: None,
            enrollment: None,
            suspend: false,
        },
        status: None,
    }
}

/// A grant of every `Patch Group` value (the empty prefix) to `namespace`.
pub fn grant_all(namespace: &str) -> PatchGroupGrant {
    PatchGroupGrant {
        namespace: namespace.to_owned(),
        values: Vec::new(),
        prefixes: vec![String::new()],
    }
}

/// A grant of exactly these `Patch Group` values to `namespace`.
pub fn grant(namespace: &str, values: &[&str]) -> PatchGroupGrant {
    PatchGroupGrant {
        namespace: namespace.to_owned(),
        values: strings(values),
        prefixes: Vec::new(),
    }
}

/// A namespace entry for [`Inventory::namespaces`].
pub fn mk_namespace(name: &str, ns_labels: &[(&str, &str)]) -> (String, BTreeMap<String, String>) {
    (name.to_owned(), labels(ns_labels))
}

pub fn mk_policy(namespace: &str, name: &str, baselines: Vec<BaselineSpec>) -> PatchPolicy {
    PatchPolicy {
        metadata: meta(Some(namespace), name),
        spec: PatchPolicySpec {
            mode: PolicyMode::Active,
            baselines,
        },
        status: None,
    }
}

/// A baseline approving security patches `days` after release, like AWS's predefined
/// ones (for Ubuntu and Debian, which take no delay, as released).
pub fn mk_baseline(os: OperatingSystem, days: i32) -> BaselineSpec {
    let filter = if os.supports_approval_delay()
        && os.filter_keys().contains(&PatchFilterKey::Classification)
    {
        PatchFilter {
            key: PatchFilterKey::Classification,
            values: strings(&["Security", "Bugfix"]),
        }
    } else {
        PatchFilter {
            key: PatchFilterKey::Product,
            values: strings(&["*"]),
        }
    };
    let mut spec = BaselineSpec::new(os);
    spec.approval_rules = vec![ApprovalRule {
        patch_filters: vec![filter],
        approve_after_days: os.supports_approval_delay().then_some(days),
        approve_until_date: None,
        compliance_level: ComplianceLevel::Critical,
        enable_non_security: false,
    }];
    spec
}

/// A group following `policy` in the accounts whose labels include `selector_labels`.
pub fn mk_group(
    namespace: &str,
    name: &str,
    policy: &str,
    selector_labels: &[(&str, &str)],
) -> PatchGroup {
    PatchGroup {
        metadata: meta(Some(namespace), name),
        spec: PatchGroupSpec {
            group_name: None,
            policy_ref: PolicyReference {
                name: policy.to_owned(),
            },
            account_selector: match_labels(selector_labels),
            regions: None,
            deletion_policy: DeletionPolicy::Delete,
        },
        status: None,
    }
}

/// A rollout of `policy`'s release `token` (cutoff `2026-11-20`) through `stages` (name,
/// PatchGroups), each Automatic, without soak, with the default gate (none failed, all
/// installed).
pub fn mk_rollout(
    namespace: &str,
    name: &str,
    policy: &str,
    token: &str,
    stages: &[(&str, &[&str])],
) -> PatchRollout {
    PatchRollout {
        metadata: meta(Some(namespace), name),
        spec: PatchRolloutSpec {
            policy_ref: PolicyReference {
                name: policy.to_owned(),
            },
            release: ReleaseSpec {
                token: token.to_owned(),
                cutoff: Some("2026-11-20".to_owned()),
            },
            stages: stages
                .iter()
                .map(|(stage, groups)| StageSpec {
                    name: (*stage).to_owned(),
                    patch_groups: strings(groups),
                    soak: "0s".to_owned(),
                    gate: Default::default(),
                    approval: Default::default(),
                    approved_release: None,
                    override_release: None,
                })
                .collect(),
        },
        status: None,
    }
}

/// A monthly window on the named PatchGroups.
pub fn mk_window(
    namespace: &str,
    name: &str,
    groups: &[&str],
    tasks: Vec<WindowTask>,
) -> MaintenanceWindow {
    MaintenanceWindow {
        metadata: meta(Some(namespace), name),
        spec: MaintenanceWindowSpec {
            schedule: Some("cron(0 2 ? * SUN#2 *)".to_owned()),
            schedule_timezone: Some("Europe/Paris".to_owned()),
            schedule_offset: None,
            start_date: None,
            end_date: None,
            duration: Some(4),
            cutoff: Some(1),
            enabled: true,
            strategy: Strategy::Scheduled,
            run_token: None,
            description: None,
            targets: WindowTargets {
                patch_groups: strings(groups),
            },
            tasks,
            deletion_policy: DeletionPolicy::Delete,
        },
        status: None,
    }
}

/// A task with the API's defaults.
pub fn mk_task(name: &str, operation: PatchOperation) -> WindowTask {
    WindowTask {
        name: name.to_owned(),
        description: None,
        operation,
        reboot_option: RebootOption::RebootIfNeeded,
        max_concurrency: "10%".to_owned(),
        max_errors: "1".to_owned(),
        priority: 1,
        snapshot_before_patch: false,
        service_role_name: None,
    }
}

/// An Emergency window on the named PatchGroups: one Install task, sent once per token.
pub fn mk_emergency_window(
    namespace: &str,
    name: &str,
    groups: &[&str],
    run_token: &str,
) -> MaintenanceWindow {
    let mut window = mk_window(
        namespace,
        name,
        groups,
        vec![mk_task("install-now", PatchOperation::Install)],
    );
    let spec = &mut window.spec;
    spec.strategy = Strategy::Emergency;
    spec.run_token = Some(run_token.to_owned());
    spec.schedule = None;
    spec.schedule_timezone = None;
    spec.duration = None;
    spec.cutoff = None;
    window
}

/// An inventory of these resources, with every namespace they use present (labelled
/// only with its name, as the API server does).
pub fn mk_inventory(
    mut accounts: Vec<SystemAccount>,
    policies: Vec<PatchPolicy>,
    groups: Vec<PatchGroup>,
    windows: Vec<MaintenanceWindow>,
) -> Inventory {
    let used = policies
        .iter()
        .map(|p| namespace_of(&p.metadata))
        .chain(groups.iter().map(|g| namespace_of(&g.metadata)))
        .chain(windows.iter().map(|w| namespace_of(&w.metadata)));
    let namespaces: BTreeMap<String, BTreeMap<String, String>> =
        used.map(|ns| mk_namespace(ns, &[])).collect();
    // Accounts written without grants grant every value to each namespace used, so that
    // tests of anything but grants need not spell them out.
    for account in &mut accounts {
        if account.spec.patch_group_grants.is_empty() {
            account.spec.patch_group_grants = namespaces.keys().map(|ns| grant_all(ns)).collect();
        }
        if account.spec.task_roles.is_empty() {
            let roles = windows
                .iter()
                .flat_map(|w| &w.spec.tasks)
                .filter_map(|t| t.service_role_name.clone());
            account.spec.task_roles = roles.collect::<BTreeSet<_>>().into_iter().collect();
        }
    }
    Inventory {
        accounts: accounts.into_iter().map(Shared::new).collect(),
        policies,
        groups,
        windows,
        rollouts: Vec::new(),
        namespaces,
        definitions: Default::default(),
        staging: Default::default(),
    }
}

pub fn mk_account_region(account: &str, account_id: &str, region: &str) -> AccountRegion {
    AccountRegion {
        account: account.to_owned(),
        account_id: account_id.to_owned(),
        region: region.to_owned(),
    }
}

/// The tags patchfleet writes on an object it owns.
pub fn owned_tags(
    settings: &Settings,
    owner: &Owner,
    fingerprint: &str,
) -> BTreeMap<String, String> {
    labels(&[
        (tags::CLUSTER, &settings.cluster_id),
        (tags::OWNER, &owner.to_string()),
        (tags::FINGERPRINT, fingerprint),
    ])
}

/// A baseline patchfleet does not own (no tags), such as a customer's own.
pub fn mk_foreign_baseline(id: &str, name: &str, os: OperatingSystem) -> ObservedBaseline {
    ObservedBaseline {
        id: id.to_owned(),
        name: name.to_owned(),
        operating_system: os,
        tags: BTreeMap::new(),
        definition: Some(BaselineSpec::new(os)),
        default: false,
    }
}

/// A window patchfleet does not own.
pub fn mk_foreign_window(id: &str, name: &str) -> ObservedWindow {
    ObservedWindow {
        id: id.to_owned(),
        name: name.to_owned(),
        tags: BTreeMap::new(),
        definition: None,
        targets: None,
        tasks: None,
    }
}

pub fn mk_registration(
    patch_group: &str,
    os: OperatingSystem,
    baseline_id: &str,
) -> ObservedRegistration {
    ObservedRegistration {
        patch_group: patch_group.to_owned(),
        operating_system: os,
        baseline_id: baseline_id.to_owned(),
        baseline_name: None,
    }
}

/// Ids in the order [`mk_observed`] gives them.
pub fn baseline_id(n: usize) -> String {
    format!("pb-{n:017}")
}

pub fn window_id(n: usize) -> String {
    format!("mw-{n:017}")
}

pub fn target_id(window: usize, n: usize) -> String {
    format!("wt-{window}-{n}")
}

pub fn task_id(window: usize, n: usize) -> String {
    format!("wtk-{window}-{n}")
}

/// An owned baseline exactly as `desired` has it, read deeply.
pub fn mk_observed_baseline(
    settings: &Settings,
    id: &str,
    want: &DesiredBaseline,
) -> ObservedBaseline {
    ObservedBaseline {
        id: id.to_owned(),
        name: want.name.clone(),
        operating_system: want.operating_system(),
        tags: owned_tags(settings, &want.owner, &baseline_fingerprint(want)),
        definition: Some((*want.definition).clone()),
        default: false,
    }
}

/// An owned window exactly as `desired` has it, read deeply.
pub fn mk_observed_window(settings: &Settings, n: usize, want: &DesiredWindow) -> ObservedWindow {
    let targets = want
        .targets
        .iter()
        .enumerate()
        .map(|(i, (name, target))| ObservedTarget {
            id: target_id(n, i),
            name: Some(name.clone()),
            definition: target.clone(),
        })
        .collect();
    let tasks = want
        .tasks
        .iter()
        .enumerate()
        .map(|(i, (name, task))| ObservedTask {
            id: task_id(n, i),
            name: Some(name.clone()),
            definition: task.clone(),
        })
        .collect();
    ObservedWindow {
        id: window_id(n),
        name: want.name.clone(),
        tags: owned_tags(settings, &want.owner, &window_fingerprint(want)),
        definition: Some(want.definition.clone()),
        targets: Some(targets),
        tasks: Some(tasks),
    }
}

/// What a converged account-region looks like to a deep read: every desired object
/// owned, tagged with its fingerprint, and every patch group registered. Baselines and
/// windows are numbered in name order (see [`baseline_id`], [`window_id`]).
pub fn mk_observed(settings: &Settings, desired: &Desired) -> Observed {
    let mut observed = Observed::default();
    for (n, want) in desired.baselines.values().enumerate() {
        let id = baseline_id(n);
        for group in &want.patch_groups {
            observed
                .registrations
                .push(mk_registration(group, want.operating_system(), &id));
        }
        let mut baseline = mk_observed_baseline(settings, &id, want);
        baseline.default = desired.defaults.get(&want.operating_system()) == Some(&want.name);
        observed.baselines.push(baseline);
    }
    for (n, want) in desired.windows.values().enumerate() {
        observed.windows.push(mk_observed_window(settings, n, want));
    }
    observed
}

/// The same, as the usual pass sees it: no deep reads (the fingerprints matched).
pub fn shallow(mut observed: Observed) -> Observed {
    for baseline in &mut observed.baselines {
        baseline.definition = None;
    }
    for window in &mut observed.windows {
        window.definition = None;
        window.targets = None;
        window.tasks = None;
    }
    observed
}
