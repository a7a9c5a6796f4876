//! SSM quotas, checked before anything is written: what would run into one is left out of
//! the plan, rather than stopped halfway by ResourceLimitExceededException.
//!
//! Only additions are refused: new baselines, new windows, new targets and tasks of a
//! window, new patch groups of a baseline. Updates and deletes go on (a delete is what
//! makes room), so one tenant's overrun never freezes the rest of the account-region.
//! Additions of one kind are refused together (all the new baselines, say), so that no
//! order of names decides which tenant gets the last free place.
//!
//! AWS counts every object in the account-region, patchfleet's or not, so objects it does
//! not own count too. And since a plan creates before it deletes (see `diff`), what counts
//! is the most that exists at once: everything there now plus what the plan adds.

use std::collections::BTreeSet;

use crate::inventory::Settings;
use crate::model::{
    AccountRegion, Desired, DesiredBaseline, Observed, ObservedBaseline, ObservedWindow, Owner,
    Problem, reasons,
};
use crate::ownership::{is_aws_managed_baseline, is_owned};

/// Leaves out of `desired` what would exceed a quota in `account_region`, given what is
/// there, and says why (QuotaExceeded problems on the owners refused).
pub fn fit_quotas(
    settings: &Settings,
    account_region: &AccountRegion,
    desired: &mut Desired,
    observed: &Observed,
) -> Vec<Problem> {
    let refusals = [
        new_baselines(settings, account_region, desired, observed),
        new_windows(settings, account_region, desired, observed),
        window_parts(settings, desired, observed),
        patch_groups(settings, desired, observed),
    ];
    let mut problems = Vec::new();
    for (owners, message) in refusals.into_iter().flatten() {
        for owner in owners {
            problems.push(Problem {
                owner,
                account_region: Some(account_region.clone()),
                reason: reasons::QUOTA_EXCEEDED,
                message: message.clone(),
            });
        }
    }
    problems
}

/// Who was refused, and why.
type Refusal = Vec<(BTreeSet<Owner>, String)>;

/// The owned baseline in SSM that `want` is (the first by id when there are duplicates).
fn existing_baseline<'o>(
    settings: &Settings,
    observed: &'o Observed,
    want: &DesiredBaseline,
) -> Option<&'o ObservedBaseline> {
    observed
        .baselines
        .iter()
        .filter(|b| {
            is_owned(settings, &b.tags)
                && b.name == want.name
                && b.operating_system == want.operating_system()
        })
        .min_by(|a, b| a.id.cmp(&b.id))
}

fn existing_window<'o>(
    settings: &Settings,
    observed: &'o Observed,
    name: &str,
) -> Option<&'o ObservedWindow> {
    observed
        .windows
        .iter()
        .filter(|w| is_owned(settings, &w.tags) && w.name == name)
        .min_by(|a, b| a.id.cmp(&b.id))
}

/// Patch baselines per account-region (AWS's predefined baselines do not count).
fn new_baselines(
    settings: &Settings,
    account_region: &AccountRegion,
    desired: &mut Desired,
    observed: &Observed,
) -> Refusal {
    let custom = observed
        .baselines
        .iter()
        .filter(|b| !is_aws_managed_baseline(&b.id));
    let existing = custom.clone().count();
    let foreign = custom.filter(|b| !is_owned(settings, &b.tags)).count();
    let new: Vec<String> = desired
        .baselines
        .values()
        .filter(|want| existing_baseline(settings, observed, want).is_none())
        .map(|want| want.name.clone())
        .collect();
    let most = existing + new.len();
    let quota = settings.quotas.baselines;
    if new.is_empty() || most <= quota {
        return Vec::new();
    }
    let owners = new
        .iter()
        .filter_map(|name| desired.baselines.remove(name))
        .map(|b| b.owner)
        .collect();
    let message = format!(
        "{most} patch baselines would exist in {account_region} ({foreign} not owned by \
         patchfleet), over the quota of {quota} patch baselines per account and region: the \
         {} new ones are not created",
        new.len()
    );
    vec![(owners, message)]
}

/// Maintenance windows per account-region.
fn new_windows(
    settings: &Settings,
    account_region: &AccountRegion,
    desired: &mut Desired,
    observed: &Observed,
) -> Refusal {
    let foreign = observed
        .windows
        .iter()
        .filter(|w| !is_owned(settings, &w.tags))
        .count();
    let new: Vec<String> = desired
        .windows
        .keys()
        .filter(|name| existing_window(settings, observed, name).is_none())
        .cloned()
        .collect();
    let most = observed.windows.len() + new.len();
    let quota = settings.quotas.windows;
    if new.is_empty() || most <= quota {
        return Vec::new();
    }
    let owners = new
        .iter()
        .filter_map(|name| desired.windows.remove(name))
        .map(|w| w.owner)
        .collect();
    let message = format!(
        "{most} maintenance windows would exist in {account_region} ({foreign} not owned by \
         patchfleet), over the quota of {quota} maintenance windows per account and region: \
         the {} new ones are not created",
        new.len()
    );
    vec![(owners, message)]
}

/// Targets and tasks per window: a window that would exceed one keeps what it has (updated
/// as declared) without the additions; a new window that would is not created. A window
/// not read deeply is converged: nothing is added to it.
fn window_parts(settings: &Settings, desired: &mut Desired, observed: &Observed) -> Refusal {
    let quotas = settings.quotas;
    let mut refused = Vec::new();
    let mut dropped = Vec::new();
    for want in desired.windows.values_mut() {
        let have = existing_window(settings, observed, &want.name);
        let have_targets = have.and_then(|w| w.targets.as_ref());
        let have_tasks = have.and_then(|w| w.tasks.as_ref());
        if have.is_some() && have_targets.is_none() && have_tasks.is_none() {
            continue;
        }
        let target_names: BTreeSet<String> = have_targets
            .into_iter()
            .flatten()
            .filter_map(|t| t.name.clone())
            .collect();
        let task_names: BTreeSet<String> = have_tasks
            .into_iter()
            .flatten()
            .filter_map(|t| t.name.clone())
            .collect();
        let parts = [
            (
                "targets",
                have_targets.map_or(0, Vec::len),
                want.targets
                    .keys()
                    .filter(|n| !target_names.contains(*n))
                    .count(),
                quotas.targets_per_window,
            ),
            (
                "tasks",
                have_tasks.map_or(0, Vec::len),
                want.tasks
                    .keys()
                    .filter(|n| !task_names.contains(*n))
                    .count(),
                quotas.tasks_per_window,
            ),
        ];
        for (kind, there, added, quota) in parts {
            let most = there + added;
            if added == 0 || most <= quota {
                continue;
            }
            let outcome = if have.is_none() {
                dropped.push(want.name.clone());
                "it is not created"
            } else {
                if kind == "targets" {
                    want.targets.retain(|n, _| target_names.contains(n));
                    // Tasks run on registered targets only.
                    for task in want.tasks.values_mut() {
                        task.targets.retain(|n| target_names.contains(n));
                    }
                } else {
                    want.tasks.retain(|n, _| task_names.contains(n));
                }
                "the new ones are not registered"
            };
            let message = format!(
                "window {} would have {most} {kind}, over the quota of {quota} {kind} per \
                 maintenance window: {outcome}",
                want.name
            );
            refused.push((BTreeSet::from([want.owner.clone()]), message));
        }
    }
    for name in dropped {
        desired.windows.remove(&name);
    }
    refused
}

/// Patch groups per baseline: those registered to it now plus those added. The new ones
/// are not registered; a new baseline that would exceed the quota is not created.
fn patch_groups(settings: &Settings, desired: &mut Desired, observed: &Observed) -> Refusal {
    let quota = settings.quotas.patch_groups_per_baseline;
    let mut refused = Vec::new();
    let mut dropped = Vec::new();
    for want in desired.baselines.values_mut() {
        let have = existing_baseline(settings, observed, want);
        let registered: BTreeSet<String> = observed
            .registrations
            .iter()
            .filter(|r| have.is_some_and(|b| b.id == r.baseline_id))
            .map(|r| r.patch_group.clone())
            .collect();
        let added = want
            .patch_groups
            .iter()
            .filter(|g| !registered.contains(*g))
            .count();
        let most = registered.len() + added;
        if added == 0 || most <= quota {
            continue;
        }
        let outcome = if have.is_none() {
            dropped.push(want.name.clone());
            "it is not created"
        } else {
            want.patch_groups.retain(|g| registered.contains(g));
            "the new ones are not registered"
        };
        let message = format!(
            "baseline {} would have {most} patch groups registered, over the quota of {quota} \
             patch groups per patch baseline: {outcome}",
            want.name
        );
        refused.push((BTreeSet::from([want.owner.clone()]), message));
    }
    for name in dropped {
        desired.baselines.remove(&name);
    }
    refused
}
