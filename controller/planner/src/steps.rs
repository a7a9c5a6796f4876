//! Who each planned write is for, and which owners hold something in an account-region:
//! decided here, once, so that the controller (Events, status, finalizers) and
//! `patchfleet plan` read them from the plan instead of working them out again.

use std::collections::BTreeSet;

use crate::inventory::{Inventory, is_being_deleted, name_of, namespace_of};
use crate::model::{Desired, ObjectRef, Observed, Operation, Owner, OwnerKind, tags};

/// One planned write with the resource it is done for and how an Event tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub operation: Operation,
    /// The resource the write is for; None only for an owned object whose owner tag is
    /// unreadable (written by hand), which no resource can be told about.
    pub owner: Option<Owner>,
    /// Created, Updated, Deleted, Registered, Deregistered or Orphaned.
    pub verb: &'static str,
    /// The object written, such as `patch baseline patchfleet-team-a-web-windows`.
    pub what: String,
}

impl AsRef<Operation> for Step {
    fn as_ref(&self) -> &Operation {
        &self.operation
    }
}

impl AsRef<Operation> for Operation {
    fn as_ref(&self) -> &Operation {
        self
    }
}

/// What an account-region's objects belong to, as the plan sees it.
pub(crate) struct Attribution<'a> {
    pub inventory: &'a Inventory,
    pub desired: &'a Desired,
    pub observed: &'a Observed,
}

impl Attribution<'_> {
    /// Each operation with its owner and description, in plan order.
    pub fn steps(&self, operations: Vec<Operation>) -> Vec<Step> {
        operations
            .into_iter()
            .map(|operation| {
                let (owner, verb, what) = self.describe(&operation);
                Step {
                    operation,
                    owner,
                    verb,
                    what,
                }
            })
            .collect()
    }

    /// Every owner with objects in the desired state: policies (baselines), windows, held
    /// owners (left as they are), and groups (registrations and window targets).
    pub fn owners_desired(&self) -> BTreeSet<Owner> {
        let desired = self.desired;
        let mut owners: BTreeSet<Owner> = desired.held.clone();
        for baseline in desired.baselines.values() {
            owners.insert(baseline.owner.clone());
            for value in &baseline.patch_groups {
                owners.extend(group_giving(
                    self.inventory,
                    &baseline.owner.namespace,
                    value,
                ));
            }
        }
        for window in desired.windows.values() {
            owners.insert(window.owner.clone());
            owners.extend(
                window
                    .targets
                    .values()
                    .filter_map(|t| Owner::parse(&t.owner_information)),
            );
        }
        owners
    }

    fn baseline_owner(&self, id: &str) -> Option<Owner> {
        self.observed
            .baselines
            .iter()
            .find(|b| b.id == id)
            .and_then(|b| b.tags.get(tags::OWNER))
            .and_then(|o| Owner::parse(o))
    }

    fn window_owner(&self, id: &str) -> Option<Owner> {
        self.observed
            .windows
            .iter()
            .find(|w| w.id == id)
            .and_then(|w| w.tags.get(tags::OWNER))
            .and_then(|o| Owner::parse(o))
    }

    /// The owner of a baseline an operation names: a desired one by its name, an observed
    /// one by its owner tag.
    fn baseline_ref_owner(&self, baseline: &ObjectRef) -> Option<Owner> {
        match baseline {
            ObjectRef::Id(id) => self.baseline_owner(id),
            ObjectRef::Created(name) => self.desired.baselines.get(name).map(|b| b.owner.clone()),
        }
    }

    fn window_ref_owner(&self, window: &ObjectRef) -> Option<Owner> {
        match window {
            ObjectRef::Id(id) => self.window_owner(id),
            ObjectRef::Created(name) => self.desired.windows.get(name).map(|w| w.owner.clone()),
        }
    }

    fn describe(&self, operation: &Operation) -> (Option<Owner>, &'static str, String) {
        match operation {
            Operation::CreateBaseline { baseline, .. } => (
                Some(baseline.owner.clone()),
                "Created",
                format!("patch baseline {}", baseline.name),
            ),
            Operation::UpdateBaseline { id, baseline, .. } => (
                Some(baseline.owner.clone()),
                "Updated",
                format!("patch baseline {} ({id})", baseline.name),
            ),
            Operation::DeleteBaseline { id, name } => (
                self.baseline_owner(id),
                "Deleted",
                format!("patch baseline {name} ({id})"),
            ),
            Operation::ReleaseBaseline { id } => (
                self.baseline_owner(id),
                "Orphaned",
                format!("patch baseline {id} left in place"),
            ),
            Operation::RegisterPatchGroup {
                baseline,
                patch_group,
            } => {
                // The registration is the group's: the PatchGroup giving this value in the
                // baseline's namespace.
                let owner = self
                    .baseline_ref_owner(baseline)
                    .and_then(|b| group_giving(self.inventory, &b.namespace, patch_group));
                (owner, "Registered", format!("patch group {patch_group}"))
            }
            Operation::RegisterDefaultBaseline {
                baseline,
                operating_system,
            } => (
                self.baseline_ref_owner(baseline),
                "Registered",
                format!("default patch baseline for {}", operating_system.as_str()),
            ),
            Operation::RestoreDefaultBaseline {
                operating_system,
                replacing,
            } => (
                self.baseline_owner(replacing),
                "Restored",
                format!(
                    "AWS's default patch baseline for {} in place of {replacing}",
                    operating_system.as_str()
                ),
            ),
            Operation::DeregisterPatchGroup {
                baseline_id,
                patch_group,
            } => (
                self.baseline_owner(baseline_id),
                "Deregistered",
                format!("patch group {patch_group} from {baseline_id}"),
            ),
            Operation::CreateWindow { window, .. } => (
                Some(window.owner.clone()),
                "Created",
                format!("maintenance window {}", window.name),
            ),
            Operation::UpdateWindow { id, window, .. } => (
                Some(window.owner.clone()),
                "Updated",
                format!("maintenance window {} ({id})", window.name),
            ),
            Operation::DeleteWindow { id, name } => (
                self.window_owner(id),
                "Deleted",
                format!("maintenance window {name} ({id})"),
            ),
            Operation::ReleaseWindow { id } => (
                self.window_owner(id),
                "Orphaned",
                format!("maintenance window {id} left in place"),
            ),
            Operation::RegisterTarget { name, target, .. } => (
                Owner::parse(&target.owner_information),
                "Registered",
                format!("window target {name}"),
            ),
            Operation::UpdateTarget {
                window_id, name, ..
            } => (
                self.window_owner(window_id),
                "Updated",
                format!("window target {name}"),
            ),
            Operation::DeregisterTarget {
                window_id,
                target_id,
            } => (
                self.window_owner(window_id),
                "Deregistered",
                format!("window target {target_id}"),
            ),
            Operation::RegisterTask { window, name, .. } => (
                self.window_ref_owner(window),
                "Registered",
                format!("window task {name}"),
            ),
            Operation::UpdateTask {
                window_id, name, ..
            } => (
                self.window_owner(window_id),
                "Updated",
                format!("window task {name}"),
            ),
            Operation::DeregisterTask { window_id, task_id } => (
                self.window_owner(window_id),
                "Deregistered",
                format!("window task {task_id}"),
            ),
        }
    }
}

/// Every owner with objects this controller owns in what was observed: the owner tags of
/// baselines and windows, and the groups registered to owned baselines (a registration
/// carries no tag). What is still there when a batch stops half-way: computed only then
/// (see [`crate::Plan::owners_after`]), not on every pass.
pub fn owners_observed(
    inventory: &Inventory,
    observed: &Observed,
    cluster_id: &str,
) -> BTreeSet<Owner> {
    let owned_by = |tags_: &std::collections::BTreeMap<String, String>| {
        (tags_.get(tags::CLUSTER).map(String::as_str) == Some(cluster_id))
            .then(|| tags_.get(tags::OWNER).and_then(|o| Owner::parse(o)))
            .flatten()
    };
    let mut owners: BTreeSet<Owner> = observed
        .baselines
        .iter()
        .map(|b| &b.tags)
        .chain(observed.windows.iter().map(|w| &w.tags))
        .filter_map(owned_by)
        .collect();
    for registration in &observed.registrations {
        let namespace = observed
            .baselines
            .iter()
            .find(|b| b.id == registration.baseline_id)
            .and_then(|b| owned_by(&b.tags))
            .map(|o| o.namespace);
        if let Some(namespace) = namespace {
            owners.extend(group_giving(
                inventory,
                &namespace,
                &registration.patch_group,
            ));
        }
    }
    owners
}

/// The PatchGroup in `namespace` giving the `Patch Group` value `value`: one not being
/// deleted if there is one, else one being deleted (whose registrations its finalizer
/// waits for).
pub fn group_giving(inventory: &Inventory, namespace: &str, value: &str) -> Option<Owner> {
    let giving = || {
        inventory
            .groups
            .iter()
            .filter(move |g| namespace_of(&g.metadata) == namespace && g.group_name() == value)
    };
    giving()
        .find(|g| !is_being_deleted(&g.metadata))
        .or_else(|| giving().next())
        .map(|g| Owner::new(OwnerKind::PatchGroup, namespace, name_of(&g.metadata)))
}
