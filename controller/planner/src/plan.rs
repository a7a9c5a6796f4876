//! The planner's entry point for one account-region: desired state, quota check, then the
//! diff against what the SSM edge observed. The edge applies `operations` in order and
//! the runtime reports `problems` on their owners.

use std::collections::BTreeSet;

use crate::desired::{desired, find_account};
use crate::diff::{Orphaned, RegisteredElsewhere, diff};
use crate::fingerprint::{baseline_fingerprint, window_fingerprint};
use crate::inventory::{Inventory, Settings, group_owner, is_being_deleted};
use crate::model::{
    AccountRegion, Desired, Observed, ObservedBaseline, ObservedWindow, Owner, Problem, reasons,
    sort_problems,
};
use crate::ownership::{fingerprint_of, is_owned};
use crate::quota::fit_quotas;
use crate::selection::{Reach, reach};
use crate::steps::{Attribution, Step};

pub use crate::inventory::orphaned_owners;

/// What to do in one account-region, and everything the runtime reports from it: it only
/// observes, applies the steps and records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub desired: Desired,
    /// Safe to apply one by one, in this order (see `diff`), each with its owner.
    pub operations: Vec<Step>,
    /// Sorted; each names its owner and this account-region.
    pub problems: Vec<Problem>,
    /// The owners with objects here once every step is applied.
    pub owners: BTreeSet<Owner>,
}

impl Plan {
    /// Every owner this plan was made for: those with objects here once applied, those
    /// with an Emergency run here, those with a problem here.
    pub fn planned_owners(&self) -> BTreeSet<Owner> {
        let mut owners = self.owners.clone();
        owners.extend(self.desired.runs.keys().cloned());
        owners.extend(self.problems.iter().map(|p| p.owner.clone()));
        owners
    }

    /// The owners with objects here after applying the first `applied` steps: all of
    /// `owners` when every step was applied, else those and whatever was there before
    /// (`before`, usually [`owners_observed`](crate::steps::owners_observed) of the
    /// observation planned from: called only for a batch that stopped half-way).
    pub fn owners_after(
        &self,
        applied: usize,
        before: impl FnOnce() -> BTreeSet<Owner>,
    ) -> BTreeSet<Owner> {
        let mut owners = self.owners.clone();
        if applied < self.operations.len() {
            owners.extend(before());
        }
        owners
    }
}

/// The plan for `account_region`. `orphaned` are the owners being deleted with
/// deletionPolicy Orphan (usually [`orphaned_owners`] of the same inventory).
///
/// No operations at all when the account is unknown (or its account id changed) or
/// suspended ("nothing is created, changed or deleted"). What would exceed a quota is left
/// out of `desired` (see `quota`). An account being deleted, or a region no longer
/// listed, has an empty desired state: its plan removes (or releases) what patchfleet
/// owns there.
pub fn plan(
    inventory: &Inventory,
    settings: &Settings,
    account_region: &AccountRegion,
    observed: &Observed,
    orphaned: &BTreeSet<Owner>,
) -> Plan {
    let planned = desired(inventory, settings, account_region);
    plan_from(
        inventory,
        settings,
        account_region,
        planned,
        observed,
        orphaned,
    )
}

/// [`plan`], from the desired state [`desired`] computed for the same inventory and
/// account-region: a pass that needs the desired state before it observes (fingerprints,
/// Emergency runs) computes it once.
pub fn plan_from(
    inventory: &Inventory,
    settings: &Settings,
    account_region: &AccountRegion,
    (mut desired, mut problems): (Desired, Vec<Problem>),
    observed: &Observed,
    orphaned: &BTreeSet<Owner>,
) -> Plan {
    match find_account(inventory, account_region) {
        Some(account) if !account.spec.suspend => {}
        _ => return Plan::default(),
    }
    // What would exceed a quota is left out; everything else (updates, deletes) goes on.
    problems.extend(fit_quotas(settings, account_region, &mut desired, observed));

    let orphaned = Orphaned::from_owners(inventory, orphaned);
    let diff = diff(settings, &desired, observed, &orphaned);
    for problem in diff.problems {
        problems.push(Problem {
            account_region: Some(account_region.clone()),
            ..problem
        });
    }
    for case in &diff.registered_elsewhere {
        problems.extend(group_problems(inventory, account_region, case));
    }
    sort_problems(&mut problems);
    let attribution = Attribution {
        inventory,
        desired: &desired,
        observed,
    };
    let operations = attribution.steps(diff.operations);
    let owners = attribution.owners_desired();
    Plan {
        desired,
        operations,
        problems,
        owners,
    }
}

/// PatchGroups (not being deleted) in the policy's namespace that follow it, give this
/// `Patch Group` value and reach the account-region: they show the problem too.
fn group_problems(
    inventory: &Inventory,
    account_region: &AccountRegion,
    case: &RegisteredElsewhere,
) -> Vec<Problem> {
    let Some(account) = find_account(inventory, account_region) else {
        return Vec::new();
    };
    inventory
        .groups_following(&case.policy.namespace, &case.policy.name)
        .filter(|g| !is_being_deleted(&g.metadata) && g.group_name() == case.patch_group)
        .filter(|g| reach(inventory, g, account, &account_region.region) == Reach::Reached)
        .map(|g| Problem {
            owner: group_owner(g),
            account_region: Some(account_region.clone()),
            reason: reasons::PATCH_GROUP_REGISTERED_ELSEWHERE,
            message: case.message(),
        })
        .collect()
}

/// Whether the edge must read an observed baseline deeply (GetPatchBaseline): only an
/// owned baseline that is desired and whose fingerprint tag differs from the desired one.
pub fn baseline_needs_deep_read(
    settings: &Settings,
    desired: &Desired,
    observed: &ObservedBaseline,
) -> bool {
    if !is_owned(settings, &observed.tags) {
        return false;
    }
    desired
        .baselines
        .get(&observed.name)
        .filter(|want| want.operating_system() == observed.operating_system)
        .is_some_and(|want| fingerprint_of(&observed.tags) != Some(&baseline_fingerprint(want)))
}

/// Whether the edge must read an observed window deeply (its definition, targets and
/// tasks): only an owned window that is desired and whose fingerprint tag differs.
pub fn window_needs_deep_read(
    settings: &Settings,
    desired: &Desired,
    observed: &ObservedWindow,
) -> bool {
    if !is_owned(settings, &observed.tags) {
        return false;
    }
    desired
        .windows
        .get(&observed.name)
        .is_some_and(|want| fingerprint_of(&observed.tags) != Some(&window_fingerprint(want)))
}
