//! The writes that take an account-region from what the SSM edge observed to the desired
//! state, in an order that is safe to apply one by one and to stop at any point:
//!
//! 1. create and update baselines
//! 2. register patch groups (a group moving from another owned baseline is deregistered
//!    from it just before: SSM holds one baseline per patch group and operating system)
//!    then make the account's default baselines the defaults, or give back AWS's predefined
//!    default where one of this controller's baselines is the default and is not to be
//!    (before step 10: SSM refuses to delete a baseline that is a default)
//! 3. create and update windows
//! 4. register and update targets
//! 5. register and update tasks
//! 6. deregister tasks
//! 7. deregister targets (no task refers to them any more)
//! 8. deregister stale patch group registrations
//! 9. delete or release windows
//! 10. delete or release baselines (SSM refuses to delete a baseline a patch group is
//!     still registered to)
//!
//! Only owned objects (see `ownership`) are ever written; everything else is only looked
//! at, and a patch group registered to someone else's baseline is reported, not moved.

use std::collections::{BTreeMap, BTreeSet};

use patchfleet_api::v1alpha1::{BaselineSpec, OperatingSystem};

use crate::fingerprint::{
    BASELINE_DESCRIPTION_MAX, PENDING, WINDOW_DESCRIPTION_MAX, baseline_fingerprint,
    fit_description, window_fingerprint,
};
use crate::inventory::{Inventory, Settings};
use crate::model::{
    Desired, DesiredBaseline, DesiredWindow, ObjectRef, Observed, ObservedBaseline,
    ObservedRegistration, ObservedTarget, ObservedTask, ObservedWindow, Operation, Owner,
    OwnerKind, Problem, WindowDefinition, reasons, sort_problems,
};
use crate::normalize::normalize_baseline;
use crate::ownership::{fingerprint_of, is_owned, owner_of};

/// What deletion policy Orphan keeps in place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Orphaned {
    /// Owners being deleted with deletionPolicy Orphan: their objects are released (tags
    /// removed), not deleted.
    pub owners: BTreeSet<Owner>,
    /// The `Patch Group` values of the orphaned PatchGroups: their registrations stay on
    /// baselines that stay. (Registrations carry no tags, so the value is what ties them
    /// to the group.)
    pub patch_groups: BTreeSet<String>,
}

impl Orphaned {
    /// The orphaned owners with the `Patch Group` values of those that are PatchGroups,
    /// read from the inventory (a PatchGroup being deleted is still there: its finalizer
    /// holds it until the plans are applied).
    pub fn from_owners(inventory: &Inventory, owners: &BTreeSet<Owner>) -> Orphaned {
        let patch_groups = owners
            .iter()
            .filter(|o| o.kind == OwnerKind::PatchGroup)
            .filter_map(|o| inventory.group(&o.namespace, &o.name))
            .map(|g| g.group_name().to_owned())
            .collect();
        Orphaned {
            owners: owners.clone(),
            patch_groups,
        }
    }
}

/// The operations of a plan and what had to be left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub operations: Vec<Operation>,
    /// PatchGroupRegisteredElsewhere, owned by the policy (no account-region: the caller
    /// knows it).
    pub problems: Vec<Problem>,
    /// The same cases, structured, so the caller can also tell the PatchGroups.
    pub registered_elsewhere: Vec<RegisteredElsewhere>,
}

/// A registration left out: the patch group is registered, for this operating system, to
/// a baseline patchfleet does not own, and that one is not patchfleet's to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredElsewhere {
    /// The PatchPolicy whose baseline should have the group.
    pub policy: Owner,
    pub baseline: String,
    pub operating_system: OperatingSystem,
    pub patch_group: String,
    /// The id of the baseline the group is registered to.
    pub registered_to: String,
}

impl RegisteredElsewhere {
    pub fn message(&self) -> String {
        format!(
            "patch group {:?} is registered for {} to baseline {}, which patchfleet does \
             not own, so it is not registered to {} (PatchPolicy {}): deregister it there to \
             hand it over",
            self.patch_group,
            self.operating_system.as_str(),
            self.registered_to,
            self.baseline,
            self.policy
        )
    }

    fn problem(&self) -> Problem {
        Problem {
            owner: self.policy.clone(),
            account_region: None,
            reason: reasons::PATCH_GROUP_REGISTERED_ELSEWHERE,
            message: self.message(),
        }
    }
}

/// The operations that converge `observed` on `desired`, in the order of this module's
/// doc. Problems: PatchGroupRegisteredElsewhere, owned by the policy whose baseline
/// should have had the group.
pub fn diff(
    settings: &Settings,
    desired: &Desired,
    observed: &Observed,
    orphaned: &Orphaned,
) -> Diff {
    let mut differ = Differ {
        settings,
        desired,
        observed,
        orphaned,
        steps: Steps::default(),
        registered_elsewhere: Vec::new(),
    };
    let baselines = differ.baselines();
    differ.registrations(&baselines);
    differ.defaults(&baselines);
    differ.windows();
    let mut problems: Vec<Problem> = differ
        .registered_elsewhere
        .iter()
        .map(RegisteredElsewhere::problem)
        .collect();
    sort_problems(&mut problems);
    Diff {
        operations: differ.steps.into_operations(),
        problems,
        registered_elsewhere: differ.registered_elsewhere,
    }
}

/// Operations by step; concatenated in this order.
#[derive(Default)]
struct Steps {
    baselines: Vec<Operation>,
    registrations: Vec<Operation>,
    defaults: Vec<Operation>,
    windows: Vec<Operation>,
    targets: Vec<Operation>,
    tasks: Vec<Operation>,
    stale_tasks: Vec<Operation>,
    stale_targets: Vec<Operation>,
    stale_registrations: Vec<Operation>,
    removed_windows: Vec<Operation>,
    removed_baselines: Vec<Operation>,
}

impl Steps {
    fn into_operations(self) -> Vec<Operation> {
        [
            self.baselines,
            self.registrations,
            self.defaults,
            self.windows,
            self.targets,
            self.tasks,
            self.stale_tasks,
            self.stale_targets,
            self.stale_registrations,
            self.removed_windows,
            self.removed_baselines,
        ]
        .concat()
    }
}

/// What step 1 decided about baselines, for the registrations.
struct BaselinePlan<'o> {
    /// Desired baseline name -> the baseline it is (existing or created in this plan).
    refs: BTreeMap<String, ObjectRef>,
    /// Owned baseline id -> the owned observed baseline.
    owned: BTreeMap<&'o str, &'o ObservedBaseline>,
    /// Owned baselines deleted by this plan.
    deleted: BTreeSet<&'o str>,
}

struct Differ<'a> {
    settings: &'a Settings,
    desired: &'a Desired,
    observed: &'a Observed,
    orphaned: &'a Orphaned,
    steps: Steps,
    registered_elsewhere: Vec<RegisteredElsewhere>,
}

impl<'a> Differ<'a> {
    fn is_held(&self, tags: &BTreeMap<String, String>) -> bool {
        owner_of(tags).is_some_and(|o| self.desired.held.contains(&o))
    }

    fn is_orphaned(&self, tags: &BTreeMap<String, String>) -> bool {
        owner_of(tags).is_some_and(|o| self.orphaned.owners.contains(&o))
    }

    /// Steps 1 and 10. An owned baseline matches a desired one by name and operating
    /// system; of two owned look-alikes the lowest id is kept and the other removed.
    fn baselines(&mut self) -> BaselinePlan<'a> {
        let mut owned_by_key: BTreeMap<(&str, OperatingSystem), Vec<&ObservedBaseline>> =
            BTreeMap::new();
        let mut owned = BTreeMap::new();
        for baseline in &self.observed.baselines {
            if is_owned(self.settings, &baseline.tags) {
                owned_by_key
                    .entry((baseline.name.as_str(), baseline.operating_system))
                    .or_default()
                    .push(baseline);
                owned.insert(baseline.id.as_str(), baseline);
            }
        }
        for same in owned_by_key.values_mut() {
            same.sort_by(|a, b| a.id.cmp(&b.id));
        }

        let mut refs = BTreeMap::new();
        let mut kept = BTreeSet::new();
        for (name, want) in &self.desired.baselines {
            let fingerprint = baseline_fingerprint(want);
            let existing = owned_by_key
                .get(&(name.as_str(), want.operating_system()))
                .and_then(|same| same.first());
            match existing {
                None => {
                    refs.insert(name.clone(), ObjectRef::Created(name.clone()));
                    self.steps.baselines.push(Operation::CreateBaseline {
                        baseline: want.clone(),
                        fingerprint,
                    });
                }
                Some(have) => {
                    refs.insert(name.clone(), ObjectRef::Id(have.id.clone()));
                    kept.insert(have.id.as_str());
                    if baseline_differs(have, want, &fingerprint) {
                        self.steps.baselines.push(Operation::UpdateBaseline {
                            id: have.id.clone(),
                            baseline: want.clone(),
                            fingerprint,
                        });
                    }
                }
            }
        }

        let mut deleted = BTreeSet::new();
        for (id, baseline) in &owned {
            if kept.contains(id) || self.is_held(&baseline.tags) {
                continue;
            }
            if self.is_orphaned(&baseline.tags) {
                let id = id.to_string();
                self.steps
                    .removed_baselines
                    .push(Operation::ReleaseBaseline { id });
            } else {
                deleted.insert(*id);
                self.steps
                    .removed_baselines
                    .push(Operation::DeleteBaseline {
                        id: id.to_string(),
                        name: baseline.name.clone(),
                    });
            }
        }
        BaselinePlan {
            refs,
            owned,
            deleted,
        }
    }

    /// Step 2, defaults: each operating system's default as `desired.defaults` says. An
    /// owned default no longer wanted gives way to AWS's predefined one, unless another
    /// baseline is registered in its place anyway, or its owner is held or orphaned (left
    /// exactly as it is).
    fn defaults(&mut self, plan: &BaselinePlan<'a>) {
        for (os, name) in &self.desired.defaults {
            let Some(target) = plan.refs.get(name) else {
                continue;
            };
            let already = match target {
                ObjectRef::Id(id) => plan.owned.get(id.as_str()).is_some_and(|b| b.default),
                ObjectRef::Created(_) => false,
            };
            if !already {
                self.steps
                    .defaults
                    .push(Operation::RegisterDefaultBaseline {
                        baseline: target.clone(),
                        operating_system: *os,
                    });
            }
        }
        for (id, baseline) in &plan.owned {
            let os = baseline.operating_system;
            if !baseline.default
                || self.desired.defaults.contains_key(&os)
                || self.is_held(&baseline.tags)
                || self.is_orphaned(&baseline.tags)
            {
                continue;
            }
            self.steps.defaults.push(Operation::RestoreDefaultBaseline {
                operating_system: os,
                replacing: id.to_string(),
            });
        }
    }

    /// Steps 2 and 8.
    fn registrations(&mut self, plan: &BaselinePlan<'a>) {
        let mut registered: BTreeMap<(&str, OperatingSystem), &str> = BTreeMap::new();
        for reg in &self.observed.registrations {
            registered.insert(
                (reg.patch_group.as_str(), reg.operating_system),
                reg.baseline_id.as_str(),
            );
        }
        let mut moved: BTreeSet<(&str, &str)> = BTreeSet::new();
        for (name, want) in &self.desired.baselines {
            let Some(target) = plan.refs.get(name) else {
                continue;
            };
            for group in &want.patch_groups {
                match registered.get(&(group.as_str(), want.operating_system())) {
                    None => {}
                    Some(id) if *target == ObjectRef::Id(id.to_string()) => continue,
                    Some(id) if plan.owned.contains_key(id) => {
                        moved.insert((id, group.as_str()));
                        self.steps
                            .registrations
                            .push(Operation::DeregisterPatchGroup {
                                baseline_id: id.to_string(),
                                patch_group: group.clone(),
                            });
                    }
                    Some(id) => {
                        self.registered_elsewhere.push(RegisteredElsewhere {
                            policy: want.owner.clone(),
                            baseline: want.name.clone(),
                            operating_system: want.operating_system(),
                            patch_group: group.clone(),
                            registered_to: id.to_string(),
                        });
                        continue;
                    }
                }
                self.steps
                    .registrations
                    .push(Operation::RegisterPatchGroup {
                        baseline: target.clone(),
                        patch_group: group.clone(),
                    });
            }
        }

        let desired_by_id: BTreeMap<&str, &DesiredBaseline> = self
            .desired
            .baselines
            .iter()
            .filter_map(|(name, want)| match plan.refs.get(name) {
                Some(ObjectRef::Id(id)) => Some((id.as_str(), want)),
                _ => None,
            })
            .collect();
        let mut stale: Vec<&ObservedRegistration> = self
            .observed
            .registrations
            .iter()
            .filter(|reg| !moved.contains(&(reg.baseline_id.as_str(), reg.patch_group.as_str())))
            .collect();
        stale.sort_by(|a, b| {
            (&a.baseline_id, &a.patch_group).cmp(&(&b.baseline_id, &b.patch_group))
        });
        for reg in stale {
            let id = reg.baseline_id.as_str();
            let Some(baseline) = plan.owned.get(id) else {
                continue; // not ours
            };
            let deregister = if plan.deleted.contains(id) {
                // Even an orphaned group's: the baseline cannot go while it has groups.
                true
            } else if let Some(want) = desired_by_id.get(id) {
                !want.patch_groups.contains(&reg.patch_group)
                    && !self.orphaned.patch_groups.contains(&reg.patch_group)
            } else {
                false // released or held: left as it is, groups included
            };
            if deregister && !self.is_held(&baseline.tags) {
                self.steps
                    .stale_registrations
                    .push(Operation::DeregisterPatchGroup {
                        baseline_id: id.to_owned(),
                        patch_group: reg.patch_group.clone(),
                    });
            }
        }
    }

    /// Steps 3 to 7 and 9.
    fn windows(&mut self) {
        let mut owned_by_name: BTreeMap<&str, Vec<&ObservedWindow>> = BTreeMap::new();
        for window in &self.observed.windows {
            if is_owned(self.settings, &window.tags) {
                owned_by_name
                    .entry(window.name.as_str())
                    .or_default()
                    .push(window);
            }
        }
        for same in owned_by_name.values_mut() {
            same.sort_by(|a, b| a.id.cmp(&b.id));
        }

        let mut kept = BTreeSet::new();
        for (name, want) in &self.desired.windows {
            match owned_by_name
                .get(name.as_str())
                .and_then(|same| same.first())
            {
                None => self.create_window(want),
                Some(have) => {
                    kept.insert(have.id.as_str());
                    self.update_window(have, want);
                }
            }
        }

        let mut removed: Vec<&ObservedWindow> = owned_by_name
            .values()
            .flatten()
            .filter(|w| !kept.contains(w.id.as_str()) && !self.is_held(&w.tags))
            .copied()
            .collect();
        removed.sort_by(|a, b| a.id.cmp(&b.id));
        for window in removed {
            let id = window.id.clone();
            // Deleting a window removes its targets and tasks with it.
            let operation = if self.is_orphaned(&window.tags) {
                Operation::ReleaseWindow { id }
            } else {
                Operation::DeleteWindow {
                    id,
                    name: window.name.clone(),
                }
            };
            self.steps.removed_windows.push(operation);
        }
    }

    /// A new window: created marked PENDING, its targets and tasks registered after it;
    /// the SSM edge writes the real fingerprint (carried here) in the same batch once they
    /// all are, so the next pass needs no deep read. A batch stopped halfway leaves it
    /// PENDING, and the next pass reads it deeply and finishes it.
    fn create_window(&mut self, want: &DesiredWindow) {
        let window = ObjectRef::Created(want.name.clone());
        self.steps.windows.push(Operation::CreateWindow {
            window: want.clone(),
            fingerprint: window_fingerprint(want),
        });
        for (name, target) in &want.targets {
            self.steps.targets.push(Operation::RegisterTarget {
                window: window.clone(),
                name: name.clone(),
                target: target.clone(),
            });
        }
        for (name, task) in &want.tasks {
            self.steps.tasks.push(Operation::RegisterTask {
                window: window.clone(),
                name: name.clone(),
                task: task.clone(),
            });
        }
    }

    /// An existing window. Not read deeply (definition, targets and tasks all None): the
    /// edge found the fingerprint equal, so it is converged. Read deeply: definition,
    /// targets and tasks are compared, and the fingerprint is stamped only when this read
    /// saw targets and tasks as desired; a plan that changes them leaves the tag unequal
    /// (PENDING) so that the next pass reads deeply again and checks the result.
    fn update_window(&mut self, have: &ObservedWindow, want: &DesiredWindow) {
        let fingerprint = window_fingerprint(want);
        let tagged_as_desired = fingerprint_of(&have.tags) == Some(fingerprint.as_str())
            && owner_of(&have.tags).as_ref() == Some(&want.owner);
        let shallow = have.definition.is_none() && have.targets.is_none() && have.tasks.is_none();
        if shallow {
            if !tagged_as_desired {
                // Not expected from the edge (it reads deeply on a mismatch): rewrite the
                // definition and make the next pass read deeply.
                self.push_update_window(have, want, PENDING);
            }
            return;
        }
        let mut parts_settled = true;
        match &have.targets {
            Some(targets) => parts_settled &= self.diff_targets(&have.id, targets, want),
            None => parts_settled = false,
        }
        match &have.tasks {
            Some(tasks) => parts_settled &= self.diff_tasks(&have.id, tasks, want),
            None => parts_settled = false,
        }
        let definition_differs = have
            .definition
            .as_ref()
            .is_some_and(|d| *d != fitted_window(&want.definition));
        if parts_settled && have.definition.is_some() {
            if definition_differs || !tagged_as_desired {
                self.push_update_window(have, want, &fingerprint);
            }
        } else if definition_differs || tagged_as_desired {
            self.push_update_window(have, want, PENDING);
        }
    }

    fn push_update_window(&mut self, have: &ObservedWindow, want: &DesiredWindow, fp: &str) {
        self.steps.windows.push(Operation::UpdateWindow {
            id: have.id.clone(),
            window: want.clone(),
            fingerprint: fp.to_owned(),
        });
    }

    /// Steps 4 and 7 for one window; true when its targets are already as desired.
    fn diff_targets(
        &mut self,
        window_id: &str,
        have: &[ObservedTarget],
        want: &DesiredWindow,
    ) -> bool {
        let (by_name, extra) = match_by_name(have, |t| t.name.as_deref(), |t| t.id.as_str());
        let mut settled = extra.is_empty();
        for (name, target) in &want.targets {
            match by_name.get(name.as_str()) {
                None => {
                    settled = false;
                    self.steps.targets.push(Operation::RegisterTarget {
                        window: ObjectRef::Id(window_id.to_owned()),
                        name: name.clone(),
                        target: target.clone(),
                    });
                }
                Some(found) if found.definition != *target => {
                    settled = false;
                    self.steps.targets.push(Operation::UpdateTarget {
                        window_id: window_id.to_owned(),
                        target_id: found.id.clone(),
                        name: name.clone(),
                        target: target.clone(),
                    });
                }
                Some(_) => {}
            }
        }
        let unwanted = by_name
            .iter()
            .filter(|(name, _)| !want.targets.contains_key(**name))
            .map(|(_, t)| *t);
        for target in sorted_by_id(extra.into_iter().chain(unwanted), |t| t.id.as_str()) {
            settled = false;
            self.steps.stale_targets.push(Operation::DeregisterTarget {
                window_id: window_id.to_owned(),
                target_id: target.id.clone(),
            });
        }
        settled
    }

    /// Steps 5 and 6 for one window; true when its tasks are already as desired.
    fn diff_tasks(&mut self, window_id: &str, have: &[ObservedTask], want: &DesiredWindow) -> bool {
        let (by_name, extra) = match_by_name(have, |t| t.name.as_deref(), |t| t.id.as_str());
        let mut settled = extra.is_empty();
        for (name, task) in &want.tasks {
            match by_name.get(name.as_str()) {
                None => {
                    settled = false;
                    self.steps.tasks.push(Operation::RegisterTask {
                        window: ObjectRef::Id(window_id.to_owned()),
                        name: name.clone(),
                        task: task.clone(),
                    });
                }
                Some(found) if found.definition != *task => {
                    settled = false;
                    self.steps.tasks.push(Operation::UpdateTask {
                        window_id: window_id.to_owned(),
                        task_id: found.id.clone(),
                        name: name.clone(),
                        task: task.clone(),
                    });
                }
                Some(_) => {}
            }
        }
        let unwanted = by_name
            .iter()
            .filter(|(name, _)| !want.tasks.contains_key(**name))
            .map(|(_, t)| *t);
        for task in sorted_by_id(extra.into_iter().chain(unwanted), |t| t.id.as_str()) {
            settled = false;
            self.steps.stale_tasks.push(Operation::DeregisterTask {
                window_id: window_id.to_owned(),
                task_id: task.id.clone(),
            });
        }
        settled
    }
}

/// Whether an owned baseline must be rewritten: its definition (when read) differs from
/// the desired one once both are normalized, or its tags are not those of `want`.
fn baseline_differs(have: &ObservedBaseline, want: &DesiredBaseline, fingerprint: &str) -> bool {
    let tagged_as_desired = fingerprint_of(&have.tags) == Some(fingerprint)
        && owner_of(&have.tags).as_ref() == Some(&want.owner);
    let definition_differs = have
        .definition
        .as_ref()
        .is_some_and(|d| normalize_baseline(d) != fitted_baseline(&want.definition));
    definition_differs || !tagged_as_desired
}

/// The definition as SSM can hold it: the description clipped to leave room for the
/// fingerprint marker (see `fingerprint::fit_description`), so a long one is not drift.
fn fitted_baseline(want: &BaselineSpec) -> BaselineSpec {
    let mut fitted = want.clone();
    fitted.description = fit_description(want.description.as_deref(), BASELINE_DESCRIPTION_MAX);
    fitted
}

fn fitted_window(want: &WindowDefinition) -> WindowDefinition {
    let mut fitted = want.clone();
    fitted.description = fit_description(want.description.as_deref(), WINDOW_DESCRIPTION_MAX);
    fitted
}

/// Items by name, the lowest id first among namesakes; the rest (unnamed items and later
/// namesakes) are extra.
fn match_by_name<T>(
    items: &[T],
    name: impl Fn(&T) -> Option<&str>,
    id: impl Fn(&T) -> &str,
) -> (BTreeMap<&str, &T>, Vec<&T>) {
    let mut by_name: BTreeMap<&str, &T> = BTreeMap::new();
    let mut extra = Vec::new();
    for item in sorted_by_id(items.iter(), &id) {
        match name(item) {
            Some(n) if !by_name.contains_key(n) => {
                by_name.insert(n, item);
            }
            _ => extra.push(item),
        }
    }
    (by_name, extra)
}

fn sorted_by_id<'t, T: 't>(
    items: impl Iterator<Item = &'t T>,
    id: impl Fn(&T) -> &str,
) -> Vec<&'t T> {
    let mut items: Vec<&T> = items.collect();
    items.sort_by(|a, b| id(a).cmp(id(b)));
    items
}
