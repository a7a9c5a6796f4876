//! Shared fixtures: a small world of resources, the examples/ manifests, and an
//! in-memory SSM that applies operations with the checks SSM makes (so a plan in the
//! wrong order fails here as it would there).

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::path::Path;

use patchfleet_api::v1alpha1::{
    MaintenanceWindow, OperatingSystem, PatchGroup, PatchOperation, PatchPolicy, SystemAccount,
};
use patchfleet_planner::builders::*;
use patchfleet_planner::fingerprint::PENDING;
use patchfleet_planner::model::{
    AccountRegion, ObjectRef, Observed, ObservedBaseline, ObservedRegistration, ObservedTarget,
    ObservedTask, ObservedWindow, Operation, tags,
};
use patchfleet_planner::{Inventory, Settings, baseline_needs_deep_read, window_needs_deep_read};

/// The plan of the usual account-region, with the inventory's orphaned owners.
pub fn plan_of(inventory: &Inventory, observed: &Observed) -> patchfleet_planner::Plan {
    patchfleet_planner::plan(
        inventory,
        &mk_settings(),
        &ar(),
        observed,
        &patchfleet_planner::orphaned_owners(inventory),
    )
}

/// A change to the world, for tables of cases.
pub type Change = fn(&mut Inventory);

pub const NS: &str = "patching";
pub const ACCOUNT: &str = "customer-a";
pub const ACCOUNT_ID: &str = "111111111111";
pub const REGION: &str = "eu-west-1";

pub const WINDOWS_BASELINE: &str = "patchfleet-patching-early-windows";
pub const AL2_BASELINE: &str = "patchfleet-patching-early-amazon-linux-2";
pub const MONTHLY: &str = "patchfleet-patching-monthly";

pub fn ar() -> AccountRegion {
    mk_account_region(ACCOUNT, ACCOUNT_ID, REGION)
}

pub fn account() -> SystemAccount {
    mk_account(
        ACCOUNT,
        ACCOUNT_ID,
        &["eu-west-1", "us-east-1"],
        &[("managed", "true")],
    )
}

pub fn early_policy() -> PatchPolicy {
    mk_policy(
        NS,
        "early",
        vec![
            mk_baseline(OperatingSystem::Windows, 0),
            mk_baseline(OperatingSystem::AmazonLinux2, 0),
        ],
    )
}

pub fn early_group() -> PatchGroup {
    mk_group(NS, "early", "early", &[("managed", "true")])
}

pub fn monthly_window() -> MaintenanceWindow {
    mk_window(
        NS,
        "monthly",
        &["early"],
        vec![
            mk_task("scan", PatchOperation::Scan),
            mk_task("install", PatchOperation::Install),
        ],
    )
}

/// One account, the `early` policy (Windows and Amazon Linux 2), the `early` group on
/// it, and the `monthly` window on the group.
pub fn world() -> Inventory {
    mk_inventory(
        vec![account()],
        vec![early_policy()],
        vec![early_group()],
        vec![monthly_window()],
    )
}

/// Every manifest directly in examples/ (not examples/defaults/), as the runtime's stores
/// would hold them.
pub fn examples() -> Inventory {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut inventory = Inventory::default();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/ is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("example is readable");
        for document in text.split("\n---\n") {
            let value: serde_norway::Value =
                serde_norway::from_str(document).expect("example is YAML");
            let kind = value["kind"]
                .as_str()
                .expect("example has a kind")
                .to_owned();
            match kind.as_str() {
                "Namespace" => {
                    let name = value["metadata"]["name"].as_str().expect("named");
                    let labels: BTreeMap<String, String> =
                        serde_norway::from_value(value["metadata"]["labels"].clone())
                            .expect("labels");
                    inventory.namespaces.insert(name.to_owned(), labels);
                }
                "SystemAccount" => inventory.accounts.push(
                    serde_norway::from_value::<SystemAccount>(value)
                        .expect("SystemAccount")
                        .into(),
                ),
                "PatchPolicy" => inventory
                    .policies
                    .push(serde_norway::from_value(value).expect("PatchPolicy")),
                "PatchGroup" => inventory
                    .groups
                    .push(serde_norway::from_value(value).expect("PatchGroup")),
                "MaintenanceWindow" => inventory
                    .windows
                    .push(serde_norway::from_value(value).expect("MaintenanceWindow")),
                other => panic!("unexpected kind {other} in {}", file.display()),
            }
        }
    }
    inventory
}

/// An in-memory account-region: what SSM holds, always complete.
#[derive(Clone, Debug, Default)]
pub struct Ssm {
    pub state: Observed,
    next_id: usize,
}

impl Ssm {
    pub fn new(state: Observed) -> Ssm {
        Ssm { state, next_id: 0 }
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-new{:04}", self.next_id)
    }

    /// What the edge would observe: deep reads only where the planner asks for them.
    pub fn observe(&self, settings: &Settings, desired: &patchfleet_planner::Desired) -> Observed {
        let mut observed = self.state.clone();
        for baseline in &mut observed.baselines {
            if is_ours(settings, &baseline.tags)
                && !baseline_needs_deep_read(settings, desired, baseline)
            {
                baseline.definition = None;
            }
        }
        for window in &mut observed.windows {
            if is_ours(settings, &window.tags) && !window_needs_deep_read(settings, desired, window)
            {
                window.definition = None;
                window.targets = None;
                window.tasks = None;
            }
        }
        observed
    }

    fn baseline(&mut self, id: &str) -> Result<&mut ObservedBaseline, String> {
        self.state
            .baselines
            .iter_mut()
            .find(|b| b.id == id)
            .ok_or(format!("DoesNotExistException: baseline {id}"))
    }

    fn window(&mut self, id: &str) -> Result<&mut ObservedWindow, String> {
        self.state
            .windows
            .iter_mut()
            .find(|w| w.id == id)
            .ok_or(format!("DoesNotExistException: window {id}"))
    }

    fn resolve(
        &self,
        object: &ObjectRef,
        created: &BTreeMap<String, String>,
    ) -> Result<String, String> {
        match object {
            ObjectRef::Id(id) => Ok(id.clone()),
            ObjectRef::Created(name) => created
                .get(name)
                .cloned()
                .ok_or(format!("{name} was not created earlier in the plan")),
        }
    }

    /// Applies `operations` in order with SSM's checks; stops at the first failure.
    pub fn apply<O: AsRef<Operation>>(
        &mut self,
        settings: &Settings,
        operations: &[O],
    ) -> Result<(), String> {
        self.apply_until(settings, operations, operations.len())
    }

    /// Applies the first `stop` of `operations`, as the SSM edge does when the batch
    /// stops there: a new window is created PENDING and gets its real fingerprint only
    /// once the last of its targets and tasks in the whole batch is registered.
    pub fn apply_until<O: AsRef<Operation>>(
        &mut self,
        settings: &Settings,
        operations: &[O],
        stop: usize,
    ) -> Result<(), String> {
        let mut last: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        for (i, op) in operations.iter().map(AsRef::as_ref).enumerate() {
            match op {
                Operation::CreateWindow {
                    window,
                    fingerprint,
                } => {
                    last.insert(&window.name, (i, fingerprint));
                }
                Operation::RegisterTarget {
                    window: ObjectRef::Created(name),
                    ..
                }
                | Operation::RegisterTask {
                    window: ObjectRef::Created(name),
                    ..
                } => {
                    if let Some((at, _)) = last.get_mut(name.as_str()) {
                        *at = i;
                    }
                }
                _ => {}
            }
        }
        let mut created: BTreeMap<String, String> = BTreeMap::new();
        for (i, op) in operations.iter().map(AsRef::as_ref).enumerate().take(stop) {
            self.apply_one(settings, op, &mut created)
                .map_err(|e| format!("{e} (applying {op:?})"))?;
            for (name, (at, fingerprint)) in &last {
                if *at == i {
                    let id = created.get(*name).cloned().unwrap_or_default();
                    self.window(&id)?
                        .tags
                        .insert(tags::FINGERPRINT.into(), (*fingerprint).to_owned());
                }
            }
        }
        Ok(())
    }

    fn apply_one(
        &mut self,
        settings: &Settings,
        op: &Operation,
        created: &mut BTreeMap<String, String>,
    ) -> Result<(), String> {
        match op {
            Operation::CreateBaseline {
                baseline,
                fingerprint,
            } => {
                let id = self.new_id("pb");
                created.insert(baseline.name.clone(), id.clone());
                self.state.baselines.push(ObservedBaseline {
                    id,
                    name: baseline.name.clone(),
                    operating_system: baseline.operating_system(),
                    tags: owned_tags(settings, &baseline.owner, fingerprint),
                    definition: Some((*baseline.definition).clone()),
                    default: false,
                });
            }
            Operation::UpdateBaseline {
                id,
                baseline,
                fingerprint,
            } => {
                let have = self.baseline(id)?;
                have.definition = Some((*baseline.definition).clone());
                have.tags = owned_tags(settings, &baseline.owner, fingerprint);
            }
            Operation::DeleteBaseline { id, .. } => {
                if self
                    .state
                    .registrations
                    .iter()
                    .any(|r| r.baseline_id == *id)
                {
                    return Err(format!(
                        "ResourceInUseException: baseline {id} has patch groups"
                    ));
                }
                if self.baseline(id)?.default {
                    return Err(format!(
                        "ResourceInUseException: baseline {id} is the default"
                    ));
                }
                self.state.baselines.retain(|b| b.id != *id);
            }
            Operation::RegisterPatchGroup {
                baseline,
                patch_group,
            } => {
                let id = self.resolve(baseline, created)?;
                let (os, name) = {
                    let baseline = self.baseline(&id)?;
                    (baseline.operating_system, baseline.name.clone())
                };
                if self
                    .state
                    .registrations
                    .iter()
                    .any(|r| r.patch_group == *patch_group && r.operating_system == os)
                {
                    return Err(format!("AlreadyExistsException: {patch_group} for {os:?}"));
                }
                self.state.registrations.push(ObservedRegistration {
                    patch_group: patch_group.clone(),
                    operating_system: os,
                    baseline_name: Some(name),
                    baseline_id: id,
                });
            }
            Operation::RegisterDefaultBaseline {
                baseline,
                operating_system,
            } => {
                let id = self.resolve(baseline, created)?;
                if self.baseline(&id)?.operating_system != *operating_system {
                    return Err(format!("baseline {id} is not for {operating_system:?}"));
                }
                for b in &mut self.state.baselines {
                    b.default = b.operating_system == *operating_system && b.id == id
                        || b.default && b.operating_system != *operating_system;
                }
            }
            Operation::RestoreDefaultBaseline {
                operating_system,
                replacing,
            } => {
                // AWS's own baseline (not listed with OWNER=Self) becomes the default.
                if !self.baseline(replacing)?.default {
                    return Err(format!("{replacing} is not the default any more"));
                }
                for b in &mut self.state.baselines {
                    if b.operating_system == *operating_system {
                        b.default = false;
                    }
                }
            }
            Operation::DeregisterPatchGroup {
                baseline_id,
                patch_group,
            } => {
                let before = self.state.registrations.len();
                self.state
                    .registrations
                    .retain(|r| !(r.baseline_id == *baseline_id && r.patch_group == *patch_group));
                if before == self.state.registrations.len() {
                    return Err(format!(
                        "DoesNotExistException: {patch_group} on {baseline_id}"
                    ));
                }
            }
            Operation::CreateWindow {
                window,
                fingerprint,
            } => {
                let id = self.new_id("mw");
                created.insert(window.name.clone(), id.clone());
                // Created PENDING; `apply_until` stamps `fingerprint` once complete.
                let _ = fingerprint;
                self.state.windows.push(ObservedWindow {
                    id,
                    name: window.name.clone(),
                    tags: owned_tags(settings, &window.owner, PENDING),
                    definition: Some(window.definition.clone()),
                    targets: Some(vec![]),
                    tasks: Some(vec![]),
                });
            }
            Operation::UpdateWindow {
                id,
                window,
                fingerprint,
            } => {
                let have = self.window(id)?;
                have.definition = Some(window.definition.clone());
                have.tags = owned_tags(settings, &window.owner, fingerprint);
            }
            Operation::DeleteWindow { id, .. } => {
                self.window(id)?;
                self.state.windows.retain(|w| w.id != *id);
            }
            Operation::RegisterTarget {
                window,
                name,
                target,
            } => {
                let id = self.resolve(window, created)?;
                let target_id = self.new_id("wt");
                let have = self.window(&id)?;
                have.targets.get_or_insert_default().push(ObservedTarget {
                    id: target_id,
                    name: Some(name.clone()),
                    definition: target.clone(),
                });
            }
            Operation::UpdateTarget {
                window_id,
                target_id,
                name,
                target,
            } => {
                let have = self.window(window_id)?;
                let found = have
                    .targets
                    .get_or_insert_default()
                    .iter_mut()
                    .find(|t| t.id == *target_id)
                    .ok_or("DoesNotExistException: target")?;
                found.name = Some(name.clone());
                found.definition = target.clone();
            }
            Operation::DeregisterTarget {
                window_id,
                target_id,
            } => {
                let have = self.window(window_id)?;
                let targets = have.targets.get_or_insert_default();
                let name = targets
                    .iter()
                    .find(|t| t.id == *target_id)
                    .ok_or("DoesNotExistException: target")?
                    .name
                    .clone()
                    .unwrap_or_default();
                let in_use = have
                    .tasks
                    .iter()
                    .flatten()
                    .any(|t| t.definition.targets.contains(&name));
                if in_use {
                    return Err(format!("TargetInUseException: {target_id}"));
                }
                have.targets
                    .get_or_insert_default()
                    .retain(|t| t.id != *target_id);
            }
            Operation::RegisterTask { window, name, task } => {
                let id = self.resolve(window, created)?;
                let task_id = self.new_id("wtk");
                let have = self.window(&id)?;
                check_task_targets(have, &task.targets)?;
                have.tasks.get_or_insert_default().push(ObservedTask {
                    id: task_id,
                    name: Some(name.clone()),
                    definition: task.clone(),
                });
            }
            Operation::UpdateTask {
                window_id,
                task_id,
                name,
                task,
            } => {
                let have = self.window(window_id)?;
                check_task_targets(have, &task.targets)?;
                let found = have
                    .tasks
                    .get_or_insert_default()
                    .iter_mut()
                    .find(|t| t.id == *task_id)
                    .ok_or("DoesNotExistException: task")?;
                found.name = Some(name.clone());
                found.definition = task.clone();
            }
            Operation::DeregisterTask { window_id, task_id } => {
                let have = self.window(window_id)?;
                let tasks = have.tasks.get_or_insert_default();
                let before = tasks.len();
                tasks.retain(|t| t.id != *task_id);
                if before == tasks.len() {
                    return Err("DoesNotExistException: task".to_owned());
                }
            }
            Operation::ReleaseBaseline { id } => {
                let have = self.baseline(id)?;
                have.tags.retain(|k, _| !k.starts_with("patchfleet.io/"));
            }
            Operation::ReleaseWindow { id } => {
                let have = self.window(id)?;
                have.tags.retain(|k, _| !k.starts_with("patchfleet.io/"));
            }
        }
        Ok(())
    }
}

fn check_task_targets(
    window: &ObservedWindow,
    targets: &std::collections::BTreeSet<String>,
) -> Result<(), String> {
    for name in targets {
        let exists = window
            .targets
            .iter()
            .flatten()
            .any(|t| t.name.as_deref() == Some(name.as_str()));
        if !exists {
            return Err(format!("DoesNotExistException: task target {name}"));
        }
    }
    Ok(())
}

fn is_ours(settings: &Settings, object_tags: &BTreeMap<String, String>) -> bool {
    object_tags.get(tags::CLUSTER) == Some(&settings.cluster_id)
}

/// Plans and applies until a plan has no operations; returns the operation count of each
/// round. Panics when a plan fails to apply or it does not settle in `max_rounds`.
pub fn converge(
    inventory: &Inventory,
    settings: &Settings,
    account_region: &AccountRegion,
    ssm: &mut Ssm,
    max_rounds: usize,
) -> Vec<usize> {
    let orphaned = patchfleet_planner::orphaned_owners(inventory);
    let mut rounds = Vec::new();
    for _ in 0..max_rounds {
        let (desired, _) = patchfleet_planner::desired(inventory, settings, account_region);
        let observed = ssm.observe(settings, &desired);
        let plan =
            patchfleet_planner::plan(inventory, settings, account_region, &observed, &orphaned);
        rounds.push(plan.operations.len());
        if plan.operations.is_empty() {
            return rounds;
        }
        if let Err(e) = ssm.apply(settings, &plan.operations) {
            panic!("round {}: {e}", rounds.len());
        }
    }
    panic!("no convergence in {max_rounds} rounds: {rounds:?}");
}
