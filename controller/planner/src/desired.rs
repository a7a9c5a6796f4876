//! What one account-region should hold, computed from the resources alone: the baselines
//! of the policies its patch groups follow, the groups' registrations, and the windows
//! that target those groups. Anything that cannot be planned is reported as a Problem and
//! left out, never guessed.

use std::collections::{BTreeMap, BTreeSet};

use patchfleet_api::v1alpha1::{
    BaselineSpec, MaintenanceWindow, OperatingSystem, PatchGroup, PatchOperation, PatchPolicy,
    PolicyMode, Strategy, SystemAccount, WindowTask,
};

use crate::definitions::Approvals;
use crate::inventory::{
    Inventory, Settings, group_owner, is_being_deleted, name_of, namespace_of, policy_owner,
    window_owner,
};
use crate::model::{
    AccountRegion, Desired, DesiredBaseline, DesiredRun, DesiredWindow, Owner, OwnerKind, Problem,
    Revision, TargetDefinition, TaskAction, TaskDefinition, WindowDefinition, reasons,
    sort_problems,
};
use crate::naming::{baseline_name, target_name, task_name, window_name};
use crate::normalize::normalize_baseline;
use crate::rollout::release_spec;
use crate::selection::{Reach, admits, is_active_in, reach, validate_selector};

/// The Automation runbook a task with `snapshotBeforePatch` runs: it snapshots the
/// instance's root volume, installs missing patches (AWS-RunPatchBaseline), and restores
/// the snapshot when the instance is not compliant afterwards
/// (<https://docs.aws.amazon.com/systems-manager-automation-runbooks/latest/userguide/automation-aws-patchinstancewithrollback.html>).
/// Its parameters: InstanceId (required), AutomationAssumeRole, LambdaAssumeRole,
/// ReportS3Bucket; it has no RebootOption (the API refuses NoReboot with it).
pub const SNAPSHOT_RUNBOOK: &str = "AWS-PatchInstanceWithRollback";

/// The maintenance-window pseudo parameter that becomes each target instance's id
/// (<https://docs.aws.amazon.com/systems-manager/latest/userguide/maintenance-window-tasks-pseudo-parameters.html>).
pub const RESOURCE_ID: &str = "{{RESOURCE_ID}}";

/// The most values one Run Command target takes
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Target.html>).
pub const MAX_TARGET_VALUES: usize = 50;

/// The desired state of `account_region`, and what kept parts of it from being planned.
/// Empty when the account is unknown, suspended or being deleted, or the region is not
/// one of its regions. Output is deterministic: maps are ordered and problems sorted.
pub fn desired(
    inventory: &Inventory,
    settings: &Settings,
    account_region: &AccountRegion,
) -> (Desired, Vec<Problem>) {
    let mut planner = Planner {
        settings,
        account_region,
        desired: Desired::default(),
        problems: Vec::new(),
    };
    let active = find_account(inventory, account_region)
        .filter(|account| is_active_in(account, &account_region.region));
    if let Some(account) = active {
        let groups = planner.planned_groups(inventory, account);
        planner.add_baselines(inventory, &groups);
        planner.add_windows(inventory, account, &groups);
        planner.add_defaults(inventory, account);
    }
    let Planner {
        desired,
        mut problems,
        ..
    } = planner;
    sort_problems(&mut problems);
    (desired, problems)
}

/// A policy's baselines, the first per operating system: the API keeps one entry per
/// operating system (a list map); stay safe anyway.
fn baselines_of(policy: &PatchPolicy) -> impl Iterator<Item = &BaselineSpec> {
    let mut seen = BTreeSet::new();
    policy
        .spec
        .baselines
        .iter()
        .filter(move |b| seen.insert(b.operating_system))
}

/// The baseline `name` of `policy` for one of its specs, its definition shared through the
/// inventory's cache.
fn policy_baseline(
    inventory: &Inventory,
    policy: &PatchPolicy,
    spec: &BaselineSpec,
    approvals: &Approvals,
    name: &str,
    patch_groups: BTreeSet<String>,
) -> DesiredBaseline {
    let owner = policy_owner(policy);
    let mode = policy.spec.mode;
    DesiredBaseline {
        name: name.to_owned(),
        definition: inventory
            .definitions
            .get_or_compute(&owner, approvals, mode, spec, || match approvals {
                Approvals::Policy => baseline_definition(&owner, mode, spec),
                Approvals::Release(cutoff) => {
                    baseline_definition(&owner, mode, &release_spec(spec, cutoff.as_deref()))
                }
            }),
        owner,
        patch_groups,
        revision: Revision::of(&policy.metadata),
    }
}

/// The PatchPolicy an account names as its `defaultPatchPolicy`: None when it names none,
/// an error (the message for its status) when the policy does not exist or is being
/// deleted. The account's administrator chose it, so no namespace admission applies.
pub fn default_policy<'i>(
    inventory: &'i Inventory,
    account: &SystemAccount,
) -> Result<Option<&'i PatchPolicy>, String> {
    let Some(reference) = &account.spec.default_patch_policy else {
        return Ok(None);
    };
    let (namespace, name) = (&reference.namespace, &reference.name);
    match inventory.policy(namespace, name) {
        Some(policy) if !is_being_deleted(&policy.metadata) => Ok(Some(policy)),
        Some(_) => Err(format!(
            "spec.defaultPatchPolicy: PatchPolicy {namespace}/{name} is being deleted; \
             AWS's predefined baselines are the defaults until it is replaced"
        )),
        None => Err(format!(
            "spec.defaultPatchPolicy: PatchPolicy {namespace}/{name} not found; AWS's \
             predefined baselines are the defaults until it exists"
        )),
    }
}

/// The SystemAccount an account-region names, when its account id still matches.
pub fn find_account<'a>(
    inventory: &'a Inventory,
    account_region: &AccountRegion,
) -> Option<&'a SystemAccount> {
    inventory
        .account(&account_region.account)
        .filter(|a| a.spec.account_id == account_region.account_id)
}

/// A PatchGroup planned in this account-region, with the policy it follows.
struct PlannedGroup<'a> {
    group: &'a PatchGroup,
    owner: Owner,
    policy: &'a PatchPolicy,
}

struct Planner<'a> {
    settings: &'a Settings,
    account_region: &'a AccountRegion,
    desired: Desired,
    problems: Vec<Problem>,
}

impl<'a> Planner<'a> {
    /// A window the API should have refused: reported, and held, so that what it already
    /// has in SSM (say, a window stored before an upgrade made it invalid) stays as it is
    /// rather than being deleted.
    fn refuse(&mut self, owner: &Owner, message: String) {
        self.problem(owner, reasons::INVALID_SPEC, message);
        self.desired.held.insert(owner.clone());
    }

    fn problem(&mut self, owner: &Owner, reason: &'static str, message: String) {
        self.problems.push(Problem {
            owner: owner.clone(),
            account_region: Some(self.account_region.clone()),
            reason,
            message,
        });
    }

    /// The groups that reach this account-region and follow a policy that exists, by
    /// owner (so in a stable order).
    fn planned_groups<'i>(
        &mut self,
        inventory: &'i Inventory,
        account: &SystemAccount,
    ) -> BTreeMap<Owner, PlannedGroup<'i>> {
        let mut planned = BTreeMap::new();
        let region = self.account_region.region.as_str();
        for group in inventory
            .groups
            .iter()
            .filter(|g| !is_being_deleted(&g.metadata))
        {
            let owner = group_owner(group);
            match reach(inventory, group, account, region) {
                Reach::NotSelected => {}
                Reach::Reached => match resolve_policy(inventory, group) {
                    Ok(policy) => {
                        planned.insert(
                            owner.clone(),
                            PlannedGroup {
                                group,
                                owner,
                                policy,
                            },
                        );
                    }
                    Err(message) => self.problem(&owner, reasons::POLICY_NOT_FOUND, message),
                },
                Reach::NotPermitted => {
                    let message = format!(
                        "spec.accountSelector: SystemAccount {} matches, but its \
                         spec.namespaceSelector does not admit namespace {}",
                        name_of(&account.metadata),
                        owner.namespace
                    );
                    self.problem(&owner, reasons::NAMESPACE_NOT_PERMITTED, message);
                }
                Reach::NotGranted(message) => {
                    self.problem(&owner, reasons::PATCH_GROUP_NOT_GRANTED, message);
                }
                Reach::InvalidAccountSelector(e) => {
                    let message = format!("spec.accountSelector: {e}; it selects no account");
                    self.problem(&owner, reasons::INVALID_SELECTOR, message);
                }
                Reach::InvalidNamespaceSelector(e) => {
                    let message = format!(
                        "SystemAccount {} spec.namespaceSelector: {e}; it admits no namespace",
                        name_of(&account.metadata)
                    );
                    self.problem(&owner, reasons::INVALID_SELECTOR, message);
                }
            }
        }
        planned
    }

    /// One baseline per operating system of each policy followed here, with the groups
    /// following it registered.
    fn add_baselines(&mut self, inventory: &Inventory, groups: &BTreeMap<Owner, PlannedGroup<'_>>) {
        let mut by_policy: BTreeMap<Owner, Vec<&PlannedGroup<'_>>> = BTreeMap::new();
        for planned in groups.values() {
            by_policy
                .entry(policy_owner(planned.policy))
                .or_default()
                .push(planned);
        }
        // Patch group value -> the groups giving it, per baseline: to report conflicts.
        let mut givers: BTreeMap<(String, String), Vec<Owner>> = BTreeMap::new();
        let staging = inventory.staging();
        for (policy_owner, followers) in by_policy {
            let policy = followers[0].policy;
            let (namespace, policy_name) = (&policy_owner.namespace, &policy_owner.name);
            for spec in baselines_of(policy) {
                let os = spec.operating_system;
                // The policy's own baseline for the groups in no rollout stage, and one per
                // stage for those in one (Ubuntu and Debian are never staged: see rollout).
                let mut baselines: BTreeMap<String, (Approvals, Vec<&PlannedGroup<'_>>)> =
                    BTreeMap::new();
                for planned in &followers {
                    let stage = staging
                        .assignment(namespace, &planned.owner.name)
                        .filter(|_| os.supports_approval_delay());
                    let (name, approvals) = match stage {
                        None => (baseline_name(namespace, policy_name, os), Approvals::Policy),
                        Some(stage) => (
                            stage.baseline_name(namespace, policy_name, os),
                            Approvals::Release(stage.release.as_ref().map(|r| r.cutoff.clone())),
                        ),
                    };
                    baselines
                        .entry(name)
                        .or_insert_with(|| (approvals, Vec::new()))
                        .1
                        .push(planned);
                }
                for (name, (approvals, followers)) in baselines {
                    self.add_baseline(
                        inventory,
                        policy,
                        spec,
                        &approvals,
                        name,
                        &followers,
                        &mut givers,
                    );
                }
            }
        }
        self.resolve_patch_group_conflicts(&givers);
    }

    /// One baseline of `policy`, with `followers` registered.
    #[allow(clippy::too_many_arguments)]
    fn add_baseline(
        &mut self,
        inventory: &Inventory,
        policy: &PatchPolicy,
        spec: &BaselineSpec,
        approvals: &Approvals,
        name: String,
        followers: &[&PlannedGroup<'_>],
        givers: &mut BTreeMap<(String, String), Vec<Owner>>,
    ) {
        let policy_owner = policy_owner(policy);
        if let Some(taken) = self.desired.baselines.get(&name) {
            let message = format!(
                "metadata.name: the {} baseline would be named {name}, which {} \
                 already uses; rename one of them",
                spec.operating_system.as_str(),
                taken.owner
            );
            self.problem(&policy_owner, reasons::NAME_CONFLICT, message);
            return;
        }
        let mut patch_groups = BTreeSet::new();
        for planned in followers {
            let value = planned.group.group_name().to_owned();
            givers
                .entry((name.clone(), value.clone()))
                .or_default()
                .push(planned.owner.clone());
            patch_groups.insert(value);
        }
        let baseline = policy_baseline(inventory, policy, spec, approvals, &name, patch_groups);
        self.desired.baselines.insert(name, baseline);
    }

    /// The account's default patch baselines: each baseline of its `defaultPatchPolicy`,
    /// planned here even when no group follows the policy (SSM's default for an operating
    /// system must be a baseline of the account-region). A policy that cannot be used
    /// gives no defaults ([`default_policy`] says why, for the account's status).
    fn add_defaults(&mut self, inventory: &Inventory, account: &SystemAccount) {
        let Ok(Some(policy)) = default_policy(inventory, account) else {
            return;
        };
        let owner = policy_owner(policy);
        for spec in baselines_of(policy) {
            let name = baseline_name(&owner.namespace, &owner.name, spec.operating_system);
            match self.desired.baselines.get(&name) {
                // The policy's own baseline, already planned for the groups following it.
                Some(planned) if planned.owner == owner => {}
                // The name conflict is reported on the policy by `add_baselines`.
                Some(_) => continue,
                None => {
                    let baseline = policy_baseline(
                        inventory,
                        policy,
                        spec,
                        &Approvals::Policy,
                        &name,
                        BTreeSet::new(),
                    );
                    self.desired.baselines.insert(name.clone(), baseline);
                }
            }
            self.desired.defaults.insert(spec.operating_system, name);
        }
    }

    /// SSM registers a patch group to one baseline per operating system
    /// (<https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-patch-groups.html>).
    /// When groups with one `Patch Group` value follow different policies, the baseline
    /// first by name keeps the value and the other groups are reported.
    fn resolve_patch_group_conflicts(&mut self, givers: &BTreeMap<(String, String), Vec<Owner>>) {
        let mut claims: BTreeMap<(String, OperatingSystem), Vec<String>> = BTreeMap::new();
        for baseline in self.desired.baselines.values() {
            for value in &baseline.patch_groups {
                claims
                    .entry((value.clone(), baseline.operating_system()))
                    .or_default()
                    .push(baseline.name.clone());
            }
        }
        for ((value, os), names) in claims {
            let Some((kept, others)) = names.split_first() else {
                continue;
            };
            for other in others {
                if let Some(baseline) = self.desired.baselines.get_mut(other) {
                    baseline.patch_groups.remove(&value);
                }
                let owners = givers
                    .get(&(other.clone(), value.clone()))
                    .cloned()
                    .unwrap_or_default();
                for owner in owners {
                    let message = format!(
                        "spec.groupName: patch group {value:?} already goes to baseline \
                         {kept} for {}; SSM registers a patch group to one baseline per \
                         operating system, so it is not registered to {other}",
                        os.as_str()
                    );
                    self.problem(&owner, reasons::PATCH_GROUP_CONFLICT, message);
                }
            }
        }
    }

    /// A window per MaintenanceWindow with a planned target group here. A window naming
    /// a PatchGroup that does not exist is held: neither created, changed nor deleted.
    fn add_windows(
        &mut self,
        inventory: &Inventory,
        account: &SystemAccount,
        groups: &BTreeMap<Owner, PlannedGroup<'_>>,
    ) {
        let mut windows: Vec<&MaintenanceWindow> = inventory
            .windows
            .iter()
            .filter(|w| !is_being_deleted(&w.metadata))
            .collect();
        windows.sort_by_key(|w| window_owner(w));
        for window in windows {
            let owner = window_owner(window);
            // A namespace the account does not admit has nothing here: not even a window
            // held for a missing group (that would keep it running after admission ends).
            if admits(inventory, account, &owner.namespace) != Ok(true) {
                continue;
            }
            let missing = missing_groups(inventory, window);
            let targets = window_targets(window, groups);
            if !missing.is_empty() {
                self.desired.held.insert(owner.clone());
                // Reported where the window would be planned; `reference_problems`
                // reports it once for a window that reaches nothing.
                if !targets.is_empty() {
                    for name in &missing {
                        let message = missing_group_message(&owner.namespace, name);
                        self.problem(&owner, reasons::PATCH_GROUP_NOT_FOUND, message);
                    }
                }
                continue;
            }
            if targets.is_empty() {
                continue;
            }
            if window.spec.strategy == Strategy::Emergency {
                self.add_run(window, owner, &targets);
                continue;
            }
            let Some(definition) = window_definition(window) else {
                let message = "spec.schedule, spec.duration and spec.cutoff are required: \
                               only an Emergency window runs without a schedule"
                    .to_owned();
                self.refuse(&owner, message);
                continue;
            };
            let name = window_name(&owner.namespace, &owner.name);
            if let Some(taken) = self.desired.windows.get(&name) {
                let message = format!(
                    "metadata.name: the window would be named {name}, which {} already \
                     uses; rename one of them",
                    taken.owner
                );
                self.problem(&owner, reasons::NAME_CONFLICT, message);
                continue;
            }
            let target_names: BTreeSet<String> = targets.keys().cloned().collect();
            // A refused task is not registered (and one registered before is removed);
            // the window and its other tasks are.
            let mut tasks = BTreeMap::new();
            for task in &window.spec.tasks {
                let planned =
                    task_definition(window, task, account, self.account_region, &target_names);
                match planned {
                    Ok(definition) => {
                        tasks.insert(task_name(&task.name), definition);
                    }
                    Err((reason, message)) => self.problem(&owner, reason, message),
                }
            }
            let desired_window = DesiredWindow {
                name: name.clone(),
                owner,
                definition,
                targets,
                tasks,
                revision: Revision::of(&window.metadata),
            };
            self.desired.windows.insert(name, desired_window);
        }
    }
}

impl Planner<'_> {
    /// An Emergency window's run here: its one task, sent with Run Command to the
    /// instances of its target groups (unless the window is disabled).
    fn add_run(
        &mut self,
        window: &MaintenanceWindow,
        owner: Owner,
        targets: &BTreeMap<String, TargetDefinition>,
    ) {
        let spec = &window.spec;
        let (Some(run_token), [task]) = (&spec.run_token, spec.tasks.as_slice()) else {
            let message = "spec.runToken and exactly one task are required for an Emergency \
                           window"
                .to_owned();
            self.refuse(&owner, message);
            return;
        };
        let patch_groups: BTreeSet<String> =
            targets.values().map(|t| t.patch_group.clone()).collect();
        if patch_groups.len() > MAX_TARGET_VALUES {
            let message = format!(
                "spec.targets.patchGroups: an Emergency run targets at most \
                 {MAX_TARGET_VALUES} patch groups (one Run Command target); it has {}",
                patch_groups.len()
            );
            self.refuse(&owner, message);
            return;
        }
        let marker = DesiredRun::marker(&self.settings.cluster_id, &owner, run_token);
        let comment = truncate(
            &format!(
                "{marker}: {}/{} token {run_token}",
                owner.namespace, owner.name
            ),
            MAX_COMMENT,
        );
        let run = DesiredRun {
            owner: owner.clone(),
            run_token: run_token.clone(),
            comment,
            operation: task.operation,
            reboot_option: task.reboot_option,
            max_concurrency: task.max_concurrency.clone(),
            max_errors: task.max_errors.clone(),
            patch_groups,
            enabled: spec.enabled,
        };
        self.desired.runs.insert(owner, run);
    }
}

/// SendCommand's Comment holds at most 100 characters
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html>).
const MAX_COMMENT: usize = 100;

/// The first `max` characters of `text`.
fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The IAM partition of a region, for the ARNs patchfleet builds
/// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html>).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// The ARN of the role named `name` (with its path) in the account.
pub fn role_arn(account_region: &AccountRegion, name: &str) -> String {
    format!(
        "arn:{}:iam::{}:role/{name}",
        partition(&account_region.region),
        account_region.account_id
    )
}

/// The policy a group follows, if it exists and is not being deleted.
fn resolve_policy<'i>(
    inventory: &'i Inventory,
    group: &PatchGroup,
) -> Result<&'i PatchPolicy, String> {
    let namespace = namespace_of(&group.metadata);
    let name = &group.spec.policy_ref.name;
    match inventory.policy(namespace, name) {
        Some(policy) if !is_being_deleted(&policy.metadata) => Ok(policy),
        Some(_) => Err(format!(
            "spec.policyRef.name: PatchPolicy {namespace}/{name} is being deleted"
        )),
        None => Err(format!(
            "spec.policyRef.name: PatchPolicy {namespace}/{name} not found"
        )),
    }
}

/// Target group names of a window that name no PatchGroup in its namespace. A group being
/// deleted is not missing: its target is dropped as its registrations are.
fn missing_groups(inventory: &Inventory, window: &MaintenanceWindow) -> BTreeSet<String> {
    let namespace = namespace_of(&window.metadata);
    window
        .spec
        .targets
        .patch_groups
        .iter()
        .filter(|name| inventory.group(namespace, name).is_none())
        .cloned()
        .collect()
}

fn missing_group_message(namespace: &str, name: &str) -> String {
    format!(
        "spec.targets.patchGroups: PatchGroup {namespace}/{name} not found; the window is \
         left as it is until the group exists or is removed from the list"
    )
}

/// One target per target group planned here, named after the PatchGroup.
fn window_targets(
    window: &MaintenanceWindow,
    groups: &BTreeMap<Owner, PlannedGroup<'_>>,
) -> BTreeMap<String, TargetDefinition> {
    let namespace = namespace_of(&window.metadata);
    window
        .spec
        .targets
        .patch_groups
        .iter()
        .filter_map(|name| {
            let owner = Owner::new(OwnerKind::PatchGroup, namespace, name);
            let planned = groups.get(&owner)?;
            let target = TargetDefinition {
                patch_group: planned.group.group_name().to_owned(),
                owner_information: owner.to_string(),
            };
            Some((target_name(name), target))
        })
        .collect()
}

/// The policy's baseline as it should be written: normalized, described, and without
/// approval rules when the policy is Frozen (only `approvedPatches` stay approved).
pub fn baseline_definition(policy: &Owner, mode: PolicyMode, spec: &BaselineSpec) -> BaselineSpec {
    let mut definition = normalize_baseline(spec);
    if definition.description.is_none() {
        definition.description = Some(format!(
            "Managed by patchfleet: {}/{}",
            policy.namespace, policy.name
        ));
    }
    if mode == PolicyMode::Frozen {
        definition.approval_rules.clear();
    }
    definition
}

/// The window's definition, copied from its spec; None without a schedule (the API
/// requires one for every strategy but Emergency).
pub fn window_definition(window: &MaintenanceWindow) -> Option<WindowDefinition> {
    let spec = &window.spec;
    Some(WindowDefinition {
        description: spec.description.clone(),
        schedule: spec.schedule.clone()?,
        schedule_timezone: spec.schedule_timezone.clone(),
        schedule_offset: spec.schedule_offset,
        start_date: spec.start_date.clone(),
        end_date: spec.end_date.clone(),
        duration: spec.duration?,
        cutoff: spec.cutoff?,
        enabled: spec.enabled,
    })
}

/// A task, run on every target of the window. `snapshotBeforePatch` becomes the
/// snapshot-and-rollback runbook where snapshots exist (instances on AWS), run once per
/// target instance and assuming the task's service role; elsewhere the instances are
/// hybrid nodes without EBS volumes and are patched directly (the status says so).
///
/// Refused (reason and message), so that the task is not registered: an Install task in
/// a Frozen window, and a snapshot with no role to run as (never patched unprotected).
/// The CRD's CEL rules refuse both at admission; a window stored before the rules
/// existed, or written around them, gets here.
pub fn task_definition(
    window: &MaintenanceWindow,
    task: &WindowTask,
    account: &SystemAccount,
    account_region: &AccountRegion,
    targets: &BTreeSet<String>,
) -> Result<TaskDefinition, (&'static str, String)> {
    if window.spec.strategy == Strategy::Frozen && task.operation == PatchOperation::Install {
        let message = format!(
            "spec.tasks[{}].operation: a Frozen window only scans, so its Install task is not \
             registered; use operation Scan or another strategy",
            task.name
        );
        return Err((reasons::INSTALL_IN_FROZEN_WINDOW, message));
    }
    if let Some(role) = &task.service_role_name
        && !account.spec.task_roles.contains(role)
    {
        let message = format!(
            "spec.tasks[{}].serviceRoleName: SystemAccount {} does not allow the role {role:?} \
             (spec.taskRoles); the task is not registered there",
            task.name,
            name_of(&account.metadata)
        );
        return Err((reasons::TASK_ROLE_NOT_ALLOWED, message));
    }
    let service_role_arn = task
        .service_role_name
        .as_deref()
        .map(|name| role_arn(account_region, name));
    let snapshots = task.snapshot_before_patch && account.spec.platform.supports_snapshots();
    let action = match (snapshots, &service_role_arn) {
        (true, Some(role)) => TaskAction::Automation {
            document: SNAPSHOT_RUNBOOK.to_owned(),
            parameters: BTreeMap::from([
                ("InstanceId".to_owned(), vec![RESOURCE_ID.to_owned()]),
                ("AutomationAssumeRole".to_owned(), vec![role.clone()]),
            ]),
        },
        (true, None) => {
            let message = format!(
                "spec.tasks[{}].serviceRoleName is required with snapshotBeforePatch: the \
                 snapshot runbook assumes that role; the task is not registered",
                task.name
            );
            return Err((reasons::INVALID_SPEC, message));
        }
        (false, _) => TaskAction::RunPatchBaseline {
            operation: task.operation,
            reboot_option: task.reboot_option,
        },
    };
    Ok(TaskDefinition {
        description: task.description.clone(),
        action,
        service_role_arn,
        max_concurrency: task.max_concurrency.clone(),
        max_errors: task.max_errors.clone(),
        priority: task.priority,
        targets: targets.clone(),
    })
}

/// Problems of references and selectors that hold whatever the account-region, with no
/// account-region: for the status of a resource that reaches nothing because of them.
pub fn reference_problems(inventory: &Inventory) -> Vec<Problem> {
    let groups = inventory.groups.iter().map(group_owner);
    let windows = inventory.windows.iter().map(window_owner);
    let mut problems: Vec<Problem> = groups
        .chain(windows)
        .flat_map(|owner| reference_problems_of(inventory, &owner))
        .collect();
    sort_problems(&mut problems);
    problems
}

/// [`reference_problems`] of one owner (none for an owner being deleted or unknown): the
/// owner reconciler reports the planner's own verdict, never one of its own making.
pub fn reference_problems_of(inventory: &Inventory, owner: &Owner) -> Vec<Problem> {
    let mut problems = Vec::new();
    match owner.kind {
        OwnerKind::PatchPolicy => {}
        OwnerKind::PatchGroup => {
            let Some(group) = inventory
                .group(&owner.namespace, &owner.name)
                .filter(|g| !is_being_deleted(&g.metadata))
            else {
                return problems;
            };
            if let Err(message) = resolve_policy(inventory, group) {
                problems.push(global_problem(owner, reasons::POLICY_NOT_FOUND, message));
            }
            if let Err(e) = validate_selector(&group.spec.account_selector) {
                let message = format!("spec.accountSelector: {e}; it selects no account");
                problems.push(global_problem(owner, reasons::INVALID_SELECTOR, message));
            }
        }
        OwnerKind::MaintenanceWindow => {
            let Some(window) = inventory
                .window(&owner.namespace, &owner.name)
                .filter(|w| !is_being_deleted(&w.metadata))
            else {
                return problems;
            };
            for name in missing_groups(inventory, window) {
                let message = missing_group_message(&owner.namespace, &name);
                problems.push(global_problem(
                    owner,
                    reasons::PATCH_GROUP_NOT_FOUND,
                    message,
                ));
            }
        }
    }
    sort_problems(&mut problems);
    problems
}

fn global_problem(owner: &Owner, reason: &'static str, message: String) -> Problem {
    Problem {
        owner: owner.clone(),
        account_region: None,
        reason,
        message,
    }
}
