//! The PatchRollout reconciler: finalizer → references → evidence → evaluate → status →
//! Events → wake the accounts whose baselines change. It makes no SSM call: the evidence
//! is what the compliance pass read (`Context::nodes`), and the account passes write the
//! baselines the new status implies. The decisions are `patchfleet_planner::rollout`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use patchfleet_api::conditions::{self, READY, RECONCILING, STALLED, Status};
use patchfleet_api::v1alpha1::{PatchRollout, PatchRolloutStatus, StageEvidence, StageState};
use patchfleet_planner::Inventory;
use patchfleet_planner::inventory::group_owner;
use patchfleet_planner::model::AccountRegion;
use patchfleet_planner::rollout::{Evaluation, StageRelease, evaluate, parse_soak, stage_evidence};
use patchfleet_planner::selection::group_reach;
use thiserror::Error;
use tracing::{Instrument, info, info_span, warn};

use super::{Context, FINALIZER, events, finalizer, status};

/// The condition that says whether every operating system of the policy is staged.
pub const STAGED: &str = "AllSystemsStaged";

#[derive(Debug, Error)]
pub enum RolloutError {
    #[error("waiting for the resource caches: {0}")]
    Caches(String),
    #[error("updating the finalizer: {0}")]
    Finalizer(kube::Error),
    #[error("writing the status: {0}")]
    Status(kube::Error),
}

pub async fn reconcile(
    rollout: Arc<PatchRollout>,
    ctx: Arc<Context>,
) -> Result<Action, RolloutError> {
    let span = info_span!(
        "rollout",
        namespace = %rollout.namespace().unwrap_or_default(),
        name = %rollout.name_any()
    );
    reconcile_rollout(rollout, ctx).instrument(span).await
}

pub fn error_policy(
    _rollout: Arc<PatchRollout>,
    error: &RolloutError,
    ctx: Arc<Context>,
) -> Action {
    warn!(%error, "rollout reconcile failed");
    Action::requeue(ctx.options.retry_transient)
}

async fn reconcile_rollout(
    rollout: Arc<PatchRollout>,
    ctx: Arc<Context>,
) -> Result<Action, RolloutError> {
    ctx.stores
        .wait_ready()
        .await
        .map_err(|e| RolloutError::Caches(e.to_string()))?;
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    let api: Api<PatchRollout> = Api::namespaced(ctx.client.clone(), &namespace);
    let has_finalizer = rollout.finalizers().iter().any(|f| f == FINALIZER);
    let inventory = ctx.inventory();
    if rollout.meta().deletion_timestamp.is_some() {
        // Its groups go back to their policy's own baselines: the account passes, which no
        // longer see the rollout (it is being deleted), plan that.
        wake_accounts(&ctx, &inventory, &rollout);
        ctx.forget_rollout(&namespace, &name);
        if has_finalizer {
            finalizer::remove(&api, &name)
                .await
                .map_err(RolloutError::Finalizer)?;
        }
        return Ok(Action::await_change());
    }
    if !has_finalizer {
        finalizer::add(&api, rollout.as_ref())
            .await
            .map_err(RolloutError::Finalizer)?;
    }

    // The inventory may predate the last status write: read the stage releases from the
    // object this reconcile was given, which the store holds at its newest.
    let staging = inventory.staging();
    let problems = staging.problems(&namespace, &name).to_vec();
    let unstaged = staging.unstaged(&namespace, &name).to_vec();
    let evidence = evidence(&ctx, &inventory, &rollout);
    // Whole seconds, as the API server stores times: a status compares equal to what was
    // written, so an unchanged evaluation writes nothing.
    let now =
        Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now());
    let evaluation = evaluate(&rollout, &evidence, &problems, now);
    let status = status_of(&rollout, &evaluation, &problems, &unstaged);
    // What the account passes plan from this object changed since they were last woken
    // for it (or this process never woke them): the watch event that brought it has
    // already made the planner's next inventory a new one. When this evaluation moves a
    // stage, the status write brings another event, and the reconcile it starts wakes
    // them for the new releases instead (waking now would plan the old ones first).
    if evaluation.moved.is_empty() && ctx.note_rollout(&namespace, &name, plan_inputs(&rollout)) {
        wake_accounts(&ctx, &inventory, &rollout);
    }
    if rollout.status.as_ref() != Some(&status) {
        match status::apply_unchanged(&api, rollout.as_ref(), &status).await {
            Ok(()) => {}
            // The object changed since this reconcile read it (a status write the store
            // has not seen yet, say): its evaluation is not written, nor its Events sent;
            // the watch event brings the reconcile that sees the newer object.
            Err(kube::Error::Api(response)) if response.code == 409 => {
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
            Err(error) => return Err(RolloutError::Status(error)),
        }
        if !evaluation.moved.is_empty() {
            info!(stages = ?evaluation.moved, release = %token_of(&evaluation), "stages take the release");
        }
        publish(&ctx, &rollout, &evaluation).await;
    }
    Ok(Action::requeue(next_look(&ctx, &rollout, &evaluation, now)))
}

/// A hash of what the account passes plan from a rollout: its spec, whether it is being
/// deleted, and each stage's release. The rollout watch wakes its reconciler when it
/// changes (so a status write that moves a stage is seen), and evidence alone does not.
pub fn plan_inputs(rollout: &PatchRollout) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    rollout.metadata.generation.hash(&mut hasher);
    rollout
        .metadata
        .deletion_timestamp
        .is_some()
        .hash(&mut hasher);
    if let Some(status) = &rollout.status {
        for stage in &status.stages {
            (&stage.name, &stage.release, &stage.cutoff).hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// [`plan_inputs`] as a watch predicate.
pub fn plan_inputs_predicate(rollout: &PatchRollout) -> Option<u64> {
    Some(plan_inputs(rollout))
}

/// Each stage's evidence for the release it has (as the status says), from the groups the
/// stage holds.
fn evidence(
    ctx: &Context,
    inventory: &Inventory,
    rollout: &PatchRollout,
) -> BTreeMap<String, StageEvidence> {
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    let staging = inventory.staging();
    let mut found = BTreeMap::new();
    let Some(status) = &rollout.status else {
        return found;
    };
    for stage in &status.stages {
        let (Some(token), Some(cutoff)) = (&stage.release, &stage.cutoff) else {
            continue;
        };
        let release = StageRelease {
            token: token.clone(),
            cutoff: cutoff.clone(),
        };
        let Some(spec) = rollout.spec.stages.iter().find(|s| s.name == stage.name) else {
            continue;
        };
        let totals: Vec<_> = spec
            .patch_groups
            .iter()
            .filter(|group| {
                staging
                    .assignment(&namespace, group)
                    .is_some_and(|a| a.rollout == name && a.stage == stage.name)
            })
            .filter_map(|group| inventory.group(&namespace, group))
            .map(|group| ctx.nodes.group_evidence(&group_owner(group), &release))
            .collect();
        let reaches_nothing = spec
            .patch_groups
            .iter()
            .filter_map(|group| inventory.group(&namespace, group))
            .all(|group| group_reach(inventory, group).is_empty());
        if let Some(evidence) = stage_evidence(&totals) {
            found.insert(stage.name.clone(), evidence);
        } else if reaches_nothing {
            // No account-region to read: the evidence is that there are no nodes (a gate
            // with minInstalled 0 passes; one that needs nodes waits, and says so).
            found.insert(stage.name.clone(), StageEvidence::default());
        }
    }
    found
}

/// The status: the evaluation, with kstatus conditions over it.
fn status_of(
    rollout: &PatchRollout,
    evaluation: &Evaluation,
    problems: &[String],
    unstaged: &[String],
) -> PatchRolloutStatus {
    let generation = rollout.metadata.generation;
    let previous = rollout.status.clone().unwrap_or_default();
    let mut conditions = previous.conditions;
    let now = status::now();
    let release = token_of(evaluation);
    let (ready, stalled) = if !problems.is_empty() {
        let message = problems.join("; ");
        (
            conditions::Desired {
                type_: READY,
                status: Status::False,
                reason: "InvalidSpec",
                message: message.clone(),
            },
            Some(("InvalidSpec", message)),
        )
    } else if let Some(failed) = evaluation.failed() {
        (
            conditions::Desired {
                type_: READY,
                status: Status::False,
                reason: "GateFailed",
                message: format!("stage {}: {}", failed.name, failed.message),
            },
            Some((
                "GateFailed",
                format!("stage {}: {}", failed.name, failed.message),
            )),
        )
    } else if evaluation.complete() {
        (
            conditions::Desired {
                type_: READY,
                status: Status::True,
                reason: "ReleasePassed",
                message: format!("release {release} passed every stage"),
            },
            None,
        )
    } else {
        let current = evaluation
            .stages
            .iter()
            .find(|s| s.state != StageState::Passed);
        let at = current
            .map(|s| format!("stage {} is {:?}: {}", s.name, s.state, s.message))
            .unwrap_or_default();
        let reason = match current.map(|s| s.state) {
            Some(StageState::AwaitingApproval) => "AwaitingApproval",
            _ => "RollingOut",
        };
        (
            conditions::Desired {
                type_: READY,
                status: Status::False,
                reason,
                message: format!("release {release}: {at}"),
            },
            None,
        )
    };
    // Reconciling: the controller is moving the release on. Not while it waits for a
    // person (a Manual stage's approval), a failure or a spec fix.
    let rolling =
        ready.status == Status::False && stalled.is_none() && ready.reason == "RollingOut";
    let reconciling_message = ready.message.clone();
    conditions::set(&mut conditions, ready, generation, now.clone());
    conditions::set(
        &mut conditions,
        conditions::Desired {
            type_: RECONCILING,
            status: if rolling { Status::True } else { Status::False },
            reason: if rolling { "RollingOut" } else { "Settled" },
            message: if rolling {
                reconciling_message
            } else {
                String::new()
            },
        },
        generation,
        now.clone(),
    );
    let (stalled_status, stalled_reason, stalled_message) = match stalled {
        Some((reason, message)) => (Status::True, reason, message),
        None => (Status::False, "AsExpected", String::new()),
    };
    conditions::set(
        &mut conditions,
        conditions::Desired {
            type_: STALLED,
            status: stalled_status,
            reason: stalled_reason,
            message: stalled_message,
        },
        generation,
        now.clone(),
    );
    conditions::set(
        &mut conditions,
        if unstaged.is_empty() {
            conditions::Desired {
                type_: STAGED,
                status: Status::True,
                reason: "AllStaged",
                message: String::new(),
            }
        } else {
            conditions::Desired {
                type_: STAGED,
                status: Status::False,
                reason: "OperatingSystemNotStaged",
                message: unstaged.join("; "),
            }
        },
        generation,
        now,
    );
    let progress: Vec<String> = evaluation
        .stages
        .iter()
        .map(|s| format!("{}={:?}", s.name, s.state))
        .collect();
    PatchRolloutStatus {
        observed_generation: generation,
        conditions,
        release: evaluation.release.clone(),
        stages: evaluation.stages.clone(),
        progress: Some(progress.join(",")),
    }
}

/// The current release's token ("" before one started).
fn token_of(evaluation: &Evaluation) -> &str {
    evaluation.release.as_ref().map_or("", |r| r.token.as_str())
}

/// One Event per stage that moved: a Warning when it failed.
async fn publish(ctx: &Context, rollout: &PatchRollout, evaluation: &Evaluation) {
    let reference = rollout.object_ref(&());
    for transition in &evaluation.transitions {
        let (type_, reason) = match transition.to {
            StageState::Failed => (EventType::Warning, "StageFailed"),
            StageState::Waiting => (EventType::Normal, "StageWaiting"),
            StageState::AwaitingApproval => (EventType::Normal, "StageAwaitingApproval"),
            StageState::Installing => (EventType::Normal, "StageInstalling"),
            StageState::Soaking => (EventType::Normal, "StageSoaking"),
            StageState::Passed => (EventType::Normal, "StagePassed"),
        };
        let note = format!(
            "stage {} (release {}): {}",
            transition.stage,
            token_of(evaluation),
            transition.message
        );
        events::publish(ctx, &reference, type_, reason, "Rollout", note).await;
    }
}

/// Wakes every account-region a group following the rollout's policy reaches: a superset
/// of the staged groups' (a group just removed from a stage goes back to the policy's own
/// baseline there too).
fn wake_accounts(ctx: &Context, inventory: &Inventory, rollout: &PatchRollout) {
    let namespace = rollout.namespace().unwrap_or_default();
    let accounts: BTreeSet<String> = inventory
        .groups_following(&namespace, &rollout.spec.policy_ref.name)
        .flat_map(|group| group_reach(inventory, group))
        .map(|region: AccountRegion| region.account)
        .collect();
    for account in accounts {
        ctx.wake_account(&account);
    }
}

/// When to look again: at the end of a soak when one is running, else after the
/// compliance pass's interval (every pass also wakes the rollouts).
fn next_look(
    ctx: &Context,
    rollout: &PatchRollout,
    evaluation: &Evaluation,
    now: Timestamp,
) -> Duration {
    let interval = ctx.options.compliance.interval;
    let interval = if interval.is_zero() {
        Duration::from_secs(300)
    } else {
        interval
    };
    let soak_ends = evaluation
        .stages
        .iter()
        .filter(|s| s.state == StageState::Soaking)
        .filter_map(|s| {
            let spec = rollout.spec.stages.iter().find(|st| st.name == s.name)?;
            let soak = parse_soak(&spec.soak)?;
            let left = s.since.0.checked_add(soak).ok()?.duration_since(now);
            Some(Duration::try_from(left).unwrap_or(Duration::ZERO) + Duration::from_secs(1))
        })
        .min();
    soak_ends.map_or(interval, |ends| ends.min(interval))
}
