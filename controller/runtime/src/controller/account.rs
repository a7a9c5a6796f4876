//! The account reconciler: one pass over one SystemAccount converges each of its regions,
//! as a pipeline of small steps (Stackable style), each with its own error:
//! finalizer → identity → per region: plan → observe → diff → apply → record → status.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::future::join_all;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use patchfleet_api::v1alpha1::SystemAccount;
use patchfleet_planner::model::{AccountRegion, Desired, Owner, OwnerKind};
use patchfleet_planner::{Inventory, Plan};
use patchfleet_ssm::{AccountAccess, EdgeError, Fingerprints, SsmClient};
use thiserror::Error;
use tracing::{Instrument, debug, info, info_span, warn};

use super::{Context, FINALIZER, events, finalizer, runs, status};
use crate::fleet::{Counts, PassError, RegionOutcome};

#[derive(Debug, Error)]
pub enum AccountError {
    #[error("waiting for the resource caches: {0}")]
    Caches(String),
    #[error("updating the finalizer of SystemAccount {name}: {source}")]
    Finalizer { name: String, source: kube::Error },
    #[error("writing the status of SystemAccount {name}: {source}")]
    Status { name: String, source: kube::Error },
}

pub async fn reconcile(
    account: Arc<SystemAccount>,
    ctx: Arc<Context>,
) -> Result<Action, AccountError> {
    let name = account.name_any();
    let span = info_span!("account", account = %name, account_id = %account.spec.account_id);
    reconcile_account(account, ctx).instrument(span).await
}

pub fn error_policy(
    _account: Arc<SystemAccount>,
    error: &AccountError,
    ctx: Arc<Context>,
) -> Action {
    warn!(%error, "account reconcile failed");
    Action::requeue(ctx.options.retry_transient)
}

async fn reconcile_account(
    account: Arc<SystemAccount>,
    ctx: Arc<Context>,
) -> Result<Action, AccountError> {
    ctx.stores
        .wait_ready()
        .await
        .map_err(|e| AccountError::Caches(e.to_string()))?;
    let name = account.name_any();
    let deleting = account.meta().deletion_timestamp.is_some();
    let has_finalizer = account.finalizers().iter().any(|f| f == FINALIZER);
    if !deleting && !has_finalizer {
        // The pass goes on: the watch filters out metadata-only changes such as this one.
        add_finalizer(&ctx, &account).await?;
    }
    if deleting && !has_finalizer {
        ctx.forget_account(&name);
        return Ok(Action::await_change());
    }

    if account.spec.suspend && !deleting {
        status::write_account(&ctx, &account, status::AccountPass::Suspended).await?;
        return Ok(Action::await_change());
    }

    // The account's regions, and those dropped from spec.regions that still hold
    // something of patchfleet's: the planner plans to empty those.
    let mut regions: BTreeSet<AccountRegion> = account
        .spec
        .regions
        .iter()
        .map(|r| patchfleet_planner::selection::account_region(&account, r))
        .collect();
    regions.extend(
        ctx.fleet
            .regions_of(&name)
            .into_iter()
            .filter(|(region, outcome)| {
                region.account_id == account.spec.account_id && !outcome.owners_present.is_empty()
            })
            .map(|(region, _)| region),
    );
    let regions: Vec<AccountRegion> = regions.into_iter().collect();
    // What the last passes left, to wake only the owners of what this pass changes.
    let before = ctx.fleet.regions_of(&name);
    ctx.fleet.retain_of(&name, |r, _| regions.contains(r));

    let access = AccountAccess::from_spec(&name, &account.spec);
    let edge_account = ctx.edge.account(&access).await;
    // Verified once per credential lifetime, not every pass (the edge keeps it).
    let caller = match edge_account.caller_identity().await {
        Ok(identity) => identity.arn,
        Err(error) => {
            warn!(%error, "identity not verified");
            let pass_error = pass_error(&error);
            for region in &regions {
                let mut outcome = ctx.fleet.get(region).unwrap_or_default();
                outcome.error = Some(pass_error.clone());
                outcome.converged = false;
                ctx.fleet.record(region.clone(), outcome);
            }
            wake_owners_of(&ctx, &regions, &before);
            status::write_account(
                &ctx,
                &account,
                status::AccountPass::Failed(pass_error.clone()),
            )
            .await?;
            return Ok(Action::requeue(retry_for(&ctx, &pass_error)));
        }
    };

    // The planner plans an account being deleted to hold nothing of patchfleet's.
    let inventory = ctx.inventory();
    let passes = regions.iter().map(|region| {
        let ctx = ctx.clone();
        let inventory = &inventory;
        let client = edge_account.client(&region.region);
        async move {
            let span = info_span!("region", region = %region.region);
            pass_region(&ctx, &client, region, inventory)
                .instrument(span)
                .await
        }
    });
    let passed: Vec<(RegionOutcome, Vec<events::Written>)> = join_all(passes).await;
    let mut outcomes = Vec::with_capacity(passed.len());
    let mut written = Vec::new();
    for (region, (outcome, writes)) in regions.iter().zip(passed) {
        outcomes.push(outcome);
        if !writes.is_empty() {
            written.push((region.clone(), writes));
        }
    }
    events::writes(&ctx, &written).await;

    wake_owners_of(&ctx, &regions, &before);
    // A dropped region is forgotten once it is empty.
    ctx.fleet.retain_of(&name, |r, outcome| {
        account.spec.regions.contains(&r.region)
            || !outcome.owners_present.is_empty()
            || outcome.error.is_some()
    });
    let first_error = outcomes.iter().find_map(|o| o.error.clone());
    let refused = refused_spec(&ctx, &account, &inventory).await;
    let overlaps = patchfleet_planner::selection::grant_overlaps(&account);
    let written = status::write_account(
        &ctx,
        &account,
        status::AccountPass::Done {
            caller_arn: caller,
            refused,
            overlaps,
        },
    )
    .await;
    // A pass over an account whose finalizer an earlier pass removed, started from a store
    // that had not seen it yet: the account is gone, and so must be what this pass kept.
    if deleting && is_gone(&written) {
        ctx.forget_account(&name);
        return Ok(Action::await_change());
    }
    written?;

    if deleting {
        let empty = outcomes
            .iter()
            .all(|o| o.error.is_none() && o.observed_empty_after_pass());
        if empty {
            remove_finalizer(&ctx, &name).await?;
            ctx.forget_account(&name);
            info!("every region is clean: finalizer removed");
            return Ok(Action::await_change());
        }
    }
    Ok(Action::requeue(next_pass(
        &ctx,
        &regions,
        &outcomes,
        first_error,
    )))
}

/// What of the account's own spec the planner could not use, with an Event on the account:
/// a `defaultPatchPolicy` that does not exist (the planner set no defaults for it).
async fn refused_spec(
    ctx: &Context,
    account: &SystemAccount,
    inventory: &Inventory,
) -> Option<(&'static str, String)> {
    if account.meta().deletion_timestamp.is_some() {
        return None;
    }
    let message = patchfleet_planner::desired::default_policy(inventory, account).err()?;
    let reason = patchfleet_planner::model::reasons::DEFAULT_PATCH_POLICY_NOT_FOUND;
    let reference = account.object_ref(&());
    events::publish(
        ctx,
        &reference,
        kube::runtime::events::EventType::Warning,
        reason,
        reason,
        message.clone(),
    )
    .await;
    Some((reason, message))
}

/// When to pass over the account again: soon after a write (to confirm it: a pass that
/// finds nothing to change is what marks the account-region converged), after a failure
/// by its kind, else at the resync or when a region is due its deep read, whichever comes
/// first; and no later than the run poll while an Emergency command is still running.
fn next_pass(
    ctx: &Context,
    regions: &[AccountRegion],
    outcomes: &[RegionOutcome],
    first_error: Option<PassError>,
) -> std::time::Duration {
    let next = match first_error {
        Some(error) => retry_for(ctx, &error),
        None if outcomes.iter().any(|o| o.wrote) => ctx.options.settle,
        None => {
            let deep_due = ctx.deep_read_due_in(regions).unwrap_or(ctx.options.resync);
            // At least the settle delay: a deep read just missed is not chased in a loop.
            ctx.options.resync.min(deep_due.max(ctx.options.settle))
        }
    };
    if outcomes.iter().any(RegionOutcome::runs_in_progress) {
        next.min(ctx.options.run_poll)
    } else {
        next
    }
}

/// One account-region: observe, plan, apply, record; and what it wrote, for the Events.
async fn pass_region(
    ctx: &Context,
    client: &SsmClient,
    region: &AccountRegion,
    inventory: &Inventory,
) -> (RegionOutcome, Vec<events::Written>) {
    let previous = ctx.fleet.get(region).unwrap_or_default();
    // Computed once: for the fingerprints and the Emergency runs, then planned from.
    let (desired, desired_problems) = patchfleet_planner::desired(inventory, &ctx.settings, region);
    let fingerprints = fingerprints(&desired);
    let deep = ctx.take_deep_read(region);

    // Emergency runs first, whatever becomes of the rest of the pass: an urgent patch
    // waits neither for a read nor for a baseline that cannot be written.
    let (runs, run_error) =
        runs::pass_runs(ctx, client, region, &desired, inventory, &previous.runs).await;
    // Memory keeps the runs whatever follows: a command sent must not be sent again.
    let previous = RegionOutcome { runs, ..previous };

    let observation = match patchfleet_ssm::observe(
        client,
        &ctx.settings.cluster_id,
        &fingerprints,
        deep,
    )
    .await
    {
        Ok(observation) => observation,
        Err(error) => return (failed(ctx, region, previous, &error), Vec::new()),
    };
    let observed = observation.observed;
    let orphaned = patchfleet_planner::orphaned_owners(inventory);
    let plan = patchfleet_planner::plan_from(
        inventory,
        &ctx.settings,
        region,
        (desired, desired_problems),
        &observed,
        &orphaned,
    );
    for problem in &plan.problems {
        events::warning(
            ctx,
            &problem.owner,
            problem.reason,
            format!("{region}: {}", problem.message),
        )
        .await;
    }

    let report = patchfleet_ssm::apply(client, &ctx.settings.cluster_id, &plan.operations).await;
    for applied in &report.applied {
        info!(write = %applied.summary, outcome = ?applied.outcome, "ssm");
    }
    // The report lists the operations carried out, in plan order.
    let written: Vec<events::Written> = plan
        .operations
        .iter()
        .take(report.applied.len())
        .filter_map(|step| {
            let owner = step.owner.clone()?;
            Some(events::Written {
                owner,
                verb: step.verb,
                what: step.what.clone(),
            })
        })
        .collect();
    debug!(
        reads = observation.calls,
        writes = report.calls,
        deep,
        "pass"
    );
    let planned_generations = planned_generations(inventory, &plan);
    let present = plan.owners_after(report.applied.len(), || {
        patchfleet_planner::owners_observed(inventory, &observed, &ctx.settings.cluster_id)
    });
    let counts = counts(&plan.desired);
    if let Some(error) = &report.error {
        if let Some(owner) = plan
            .operations
            .get(report.applied.len())
            .and_then(|step| step.owner.clone())
        {
            events::warning(ctx, &owner, error.reason(), format!("{region}: {error}")).await;
        }
        let mut outcome = failed(ctx, region, previous, error);
        outcome.planned_generations = planned_generations;
        outcome.owners_present = present;
        outcome.observed = true;
        outcome.problems = plan.problems;
        return (outcome, written);
    }
    if !plan.operations.is_empty() {
        info!(writes = plan.operations.len(), "applied");
    }
    // A quota left some creates out: the account-region is not as declared until the
    // account's quota or the resources change.
    let refused = plan
        .problems
        .iter()
        .find(|p| p.reason == patchfleet_planner::model::reasons::QUOTA_EXCEEDED)
        .map(|p| PassError {
            reason: p.reason.to_owned(),
            message: p.message.clone(),
            needs_attention: true,
        });
    let error = match run_error {
        Some(error) => {
            warn!(%error, "emergency run failed");
            Some(pass_error(&error))
        }
        None => refused,
    };
    let outcome = RegionOutcome {
        planned_generations,
        owners_present: present,
        observed: true,
        problems: plan.problems,
        error,
        // Converged means this pass found nothing to change: writes are confirmed by the
        // next pass (settle), which reads what they left.
        converged: plan.operations.is_empty(),
        wrote: !plan.operations.is_empty(),
        counts,
        runs: previous.runs,
    };
    ctx.fleet.record(region.clone(), outcome.clone());
    (outcome, written)
}

fn failed(
    ctx: &Context,
    region: &AccountRegion,
    mut previous: RegionOutcome,
    error: &EdgeError,
) -> RegionOutcome {
    warn!(%error, "pass failed");
    previous.error = Some(pass_error(error));
    previous.converged = false;
    ctx.fleet.record(region.clone(), previous.clone());
    previous
}

fn pass_error(error: &EdgeError) -> PassError {
    let kind = error.kind();
    PassError {
        reason: error.reason().to_owned(),
        message: error.to_string(),
        needs_attention: !kind.is_transient(),
    }
}

/// The fingerprints the planner expects, for the edge to decide what to read in full.
pub fn fingerprints(desired: &Desired) -> Fingerprints {
    Fingerprints {
        baselines: desired
            .baselines
            .iter()
            .map(|(name, b)| (name.clone(), patchfleet_planner::baseline_fingerprint(b)))
            .collect(),
        windows: desired
            .windows
            .iter()
            .map(|(name, w)| (name.clone(), patchfleet_planner::window_fingerprint(w)))
            .collect(),
    }
}

fn retry_for(ctx: &Context, error: &PassError) -> std::time::Duration {
    if error.needs_attention {
        ctx.options.retry_attention
    } else {
        ctx.options.retry_transient
    }
}

/// Each owner the pass planned for, with the generation it planned at.
fn planned_generations(inventory: &Inventory, plan: &Plan) -> BTreeMap<Owner, i64> {
    plan.planned_owners()
        .into_iter()
        .filter_map(|owner| generation_of(inventory, &owner).map(|g| (owner, g)))
        .collect()
}

fn generation_of(inventory: &Inventory, owner: &Owner) -> Option<i64> {
    let matches = |meta: &kube::core::ObjectMeta| {
        meta.name.as_deref() == Some(&owner.name)
            && meta.namespace.as_deref() == Some(&owner.namespace)
    };
    match owner.kind {
        OwnerKind::PatchPolicy => inventory
            .policies
            .iter()
            .find(|p| matches(&p.metadata))
            .and_then(|p| p.metadata.generation),
        OwnerKind::PatchGroup => inventory
            .groups
            .iter()
            .find(|g| matches(&g.metadata))
            .and_then(|g| g.metadata.generation),
        OwnerKind::MaintenanceWindow => inventory
            .windows
            .iter()
            .find(|w| matches(&w.metadata))
            .and_then(|w| w.metadata.generation),
    }
}

fn counts(desired: &Desired) -> Counts {
    Counts {
        patch_baselines: desired.baselines.len() as u32,
        patch_group_registrations: desired
            .baselines
            .values()
            .map(|b| b.patch_groups.len() as u32)
            .sum(),
        maintenance_windows: desired.windows.len() as u32,
        window_targets: desired
            .windows
            .values()
            .map(|w| w.targets.len() as u32)
            .sum(),
        window_tasks: desired.windows.values().map(|w| w.tasks.len() as u32).sum(),
    }
}

/// After a pass, the owners it touched roll their status up again.
/// After a pass, the owners concerned by an account-region whose outcome changed roll
/// their status up again (those it concerned before and those it concerns now). A pass
/// that changed nothing, such as the cheap pass of a converged account, wakes no one: a
/// steady fleet costs no rollups.
fn wake_owners_of(
    ctx: &Context,
    regions: &[AccountRegion],
    before: &BTreeMap<AccountRegion, RegionOutcome>,
) {
    let mut owners = BTreeSet::new();
    let forgotten = before.keys().filter(|r| !regions.contains(r));
    for region in regions.iter().chain(forgotten) {
        let now = ctx.fleet.get(region);
        let was = before.get(region);
        if now.as_ref() == was {
            continue;
        }
        for outcome in now.iter().chain(was) {
            owners.extend(outcome.planned_generations.keys().cloned());
            owners.extend(outcome.owners_present.iter().cloned());
            owners.extend(outcome.runs.keys().cloned());
        }
    }
    for owner in owners {
        ctx.wake_owner(&owner);
    }
}

async fn add_finalizer(ctx: &Context, account: &SystemAccount) -> Result<(), AccountError> {
    let api: Api<SystemAccount> = Api::all(ctx.client.clone());
    finalizer::add(&api, account)
        .await
        .map_err(|source| AccountError::Finalizer {
            name: account.name_any(),
            source,
        })
}

async fn remove_finalizer(ctx: &Context, name: &str) -> Result<(), AccountError> {
    let api: Api<SystemAccount> = Api::all(ctx.client.clone());
    finalizer::remove(&api, name)
        .await
        .map_err(|source| AccountError::Finalizer {
            name: name.to_owned(),
            source,
        })
}

/// The status write found no SystemAccount: it was deleted meanwhile.
fn is_gone(written: &Result<(), AccountError>) -> bool {
    matches!(
        written,
        Err(AccountError::Status {
            source: kube::Error::Api(response),
            ..
        }) if response.code == 404
    )
}

impl RegionOutcome {
    /// Nothing of patchfleet's is left in the account-region.
    fn observed_empty_after_pass(&self) -> bool {
        self.observed && self.owners_present.is_empty()
    }
}
