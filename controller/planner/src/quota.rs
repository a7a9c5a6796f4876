//! SSM quotas, checked before anything is written: a plan that would run into one is
//! refused whole, rather than stopped halfway by ResourceLimitExceededException.
//!
//! AWS counts every object in the account-region, patchfleet's or not, so objects it does
//! not own count too. And since a plan creates before it deletes (see `diff`), what counts
//! is the most that exists at once: everything there now plus what the plan adds. A plan
//! that adds nothing of a kind is not checked for it: it cannot make the count grow.

use std::collections::BTreeSet;

use crate::inventory::Settings;
use crate::model::{AccountRegion, Desired, Observed, ObservedWindow, Owner, Problem, reasons};
use crate::ownership::{is_aws_managed_baseline, is_owned};

/// QuotaExceeded problems for `desired` in `account_region`, given what is there.
pub fn check_quotas(
    settings: &Settings,
    account_region: &AccountRegion,
    desired: &Desired,
    observed: &Observed,
) -> Vec<Problem> {
    let quotas = &settings.quotas;
    let mut problems = Vec::new();
    let mut exceeded = |owners: BTreeSet<&Owner>, message: String| {
        for owner in owners {
            problems.push(Problem {
                owner: owner.clone(),
                account_region: Some(account_region.clone()),
                reason: reasons::QUOTA_EXCEEDED,
                message: message.clone(),
            });
        }
    };

    // Patch baselines per account-region (AWS's predefined baselines do not count).
    let custom: Vec<_> = observed
        .baselines
        .iter()
        .filter(|b| !is_aws_managed_baseline(&b.id))
        .collect();
    let foreign = custom
        .iter()
        .filter(|b| !is_owned(settings, &b.tags))
        .count();
    let new_baselines: Vec<_> = desired
        .baselines
        .values()
        .filter(|want| {
            !custom.iter().any(|b| {
                is_owned(settings, &b.tags)
                    && b.name == want.name
                    && b.operating_system == want.operating_system()
            })
        })
        .collect();
    let most = custom.len() + new_baselines.len();
    if !new_baselines.is_empty() && most > quotas.baselines {
        exceeded(
            new_baselines.iter().map(|b| &b.owner).collect(),
            format!(
                "{most} patch baselines would exist in {account_region} ({foreign} not \
                 owned by patchfleet), over the quota of {} patch baselines per account \
                 and region",
                quotas.baselines
            ),
        );
    }

    // Maintenance windows per account-region.
    let foreign = observed
        .windows
        .iter()
        .filter(|w| !is_owned(settings, &w.tags))
        .count();
    let existing_window = |name: &str| -> Option<&ObservedWindow> {
        observed
            .windows
            .iter()
            .filter(|w| is_owned(settings, &w.tags) && w.name == name)
            .min_by(|a, b| a.id.cmp(&b.id))
    };
    let new_windows: Vec<_> = desired
        .windows
        .values()
        .filter(|want| existing_window(&want.name).is_none())
        .collect();
    let most = observed.windows.len() + new_windows.len();
    if !new_windows.is_empty() && most > quotas.windows {
        exceeded(
            new_windows.iter().map(|w| &w.owner).collect(),
            format!(
                "{most} maintenance windows would exist in {account_region} ({foreign} not \
                 owned by patchfleet), over the quota of {} maintenance windows per account \
                 and region",
                quotas.windows
            ),
        );
    }

    // Targets and tasks per window. A window not read deeply is converged: nothing added.
    for want in desired.windows.values() {
        let have = existing_window(&want.name);
        let have_targets = have.and_then(|w| w.targets.as_ref());
        let have_tasks = have.and_then(|w| w.tasks.as_ref());
        if have.is_some() && have_targets.is_none() && have_tasks.is_none() {
            continue;
        }
        let target_names: BTreeSet<&str> = have_targets
            .iter()
            .flat_map(|ts| ts.iter().filter_map(|t| t.name.as_deref()))
            .collect();
        let added = want
            .targets
            .keys()
            .filter(|n| !target_names.contains(n.as_str()))
            .count();
        let most = have_targets.map_or(0, Vec::len) + added;
        if added > 0 && most > quotas.targets_per_window {
            exceeded(
                BTreeSet::from([&want.owner]),
                format!(
                    "window {} would have {most} targets, over the quota of {} targets per \
                     maintenance window",
                    want.name, quotas.targets_per_window
                ),
            );
        }
        let task_names: BTreeSet<&str> = have_tasks
            .iter()
            .flat_map(|ts| ts.iter().filter_map(|t| t.name.as_deref()))
            .collect();
        let added = want
            .tasks
            .keys()
            .filter(|n| !task_names.contains(n.as_str()))
            .count();
        let most = have_tasks.map_or(0, Vec::len) + added;
        if added > 0 && most > quotas.tasks_per_window {
            exceeded(
                BTreeSet::from([&want.owner]),
                format!(
                    "window {} would have {most} tasks, over the quota of {} tasks per \
                     maintenance window",
                    want.name, quotas.tasks_per_window
                ),
            );
        }
    }

    // Patch groups per baseline: those registered to it now plus those added.
    for want in desired.baselines.values() {
        let have = observed
            .baselines
            .iter()
            .filter(|b| {
                is_owned(settings, &b.tags)
                    && b.name == want.name
                    && b.operating_system == want.operating_system()
            })
            .min_by(|a, b| a.id.cmp(&b.id));
        let registered: BTreeSet<&str> = observed
            .registrations
            .iter()
            .filter(|r| have.is_some_and(|b| b.id == r.baseline_id))
            .map(|r| r.patch_group.as_str())
            .collect();
        let added = want
            .patch_groups
            .iter()
            .filter(|g| !registered.contains(g.as_str()))
            .count();
        let most = registered.len() + added;
        if added > 0 && most > quotas.patch_groups_per_baseline {
            exceeded(
                BTreeSet::from([&want.owner]),
                format!(
                    "baseline {} would have {most} patch groups registered, over the quota \
                     of {} patch groups per patch baseline",
                    want.name, quotas.patch_groups_per_baseline
                ),
            );
        }
    }
    problems
}
