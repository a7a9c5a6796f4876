//! The Enrollment reconciler: account → what SSM shows (the activation, the node it
//! registered and the node's tags) → the planner's next step (wait, tag, delete the
//! expired activation) → status and Events. On deletion it deregisters the node and
//! deletes the activation, only when the node carries this Enrollment's and this
//! cluster's tags. The decisions are `patchfleet_planner::enrollment`'s.
//!
//! Cost per Enrollment (docs/enrollment.md): while Pending, one DescribeInstanceInformation
//! per poll (every 10 s at first, less often as it ages, at most every 5 min); at
//! registration one ListTagsForResource; once Registered, one ListTagsForResource an hour
//! (plus one AddTagsToResource when the tag drifted); one DeleteActivation at expiry; none
//! once Expired.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use patchfleet_api::conditions::{self, Standing, Status};
use patchfleet_api::v1alpha1::{Enrollment, EnrollmentPhase, EnrollmentStatus};
use patchfleet_planner::enrollment::{
    EnrollmentAction, EnrollmentObserved, ObservedActivation, PATCH_GROUP_TAG, cleanup, next_action,
};
use patchfleet_ssm::activations::{self, NodeLookup};
use patchfleet_ssm::{AccountAccess, EdgeError, SsmClient};
use thiserror::Error;
use tracing::{Instrument, info, info_span, warn};

use super::{Context, FINALIZER, events, finalizer, status};

/// How often a Pending Enrollment looks for its node at first: a machine registers
/// seconds after it enrolled. The interval grows with the Enrollment's age (a quarter of
/// it) up to [`MAX_REGISTRATION_POLL`], so a machine that never registers costs about 25
/// calls over an hour's activation, not 360.
pub const REGISTRATION_POLL: Duration = Duration::from_secs(10);
pub const MAX_REGISTRATION_POLL: Duration = Duration::from_secs(300);
/// How often a Registered Enrollment checks its node's tag (one ListTagsForResource):
/// drift of a node's tag is rare, and every enrolled node costs this call.
pub const REGISTERED_RESYNC: Duration = Duration::from_secs(3_600);
/// An Enrollment the server created moments ago may not have its activation recorded yet.
const CREATION_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
pub enum EnrollmentError {
    #[error("waiting for the resource caches: {0}")]
    Caches(String),
    #[error("updating the finalizer: {0}")]
    Finalizer(kube::Error),
    #[error("writing the status: {0}")]
    Status(kube::Error),
    #[error("{0}")]
    Ssm(#[from] EdgeError),
}

pub async fn reconcile(
    enrollment: Arc<Enrollment>,
    ctx: Arc<Context>,
) -> Result<Action, EnrollmentError> {
    let span = info_span!("enrollment", name = %enrollment.name_any());
    reconcile_enrollment(enrollment, ctx).instrument(span).await
}

pub fn error_policy(
    _enrollment: Arc<Enrollment>,
    error: &EnrollmentError,
    ctx: Arc<Context>,
) -> Action {
    warn!(%error, "enrollment reconcile failed");
    Action::requeue(ctx.options.retry_transient)
}

async fn reconcile_enrollment(
    enrollment: Arc<Enrollment>,
    ctx: Arc<Context>,
) -> Result<Action, EnrollmentError> {
    ctx.stores
        .wait_ready()
        .await
        .map_err(|e| EnrollmentError::Caches(e.to_string()))?;
    let name = enrollment.name_any();
    let api: Api<Enrollment> = Api::all(ctx.client.clone());
    let deleting = enrollment.meta().deletion_timestamp.is_some();
    let has_finalizer = enrollment.finalizers().iter().any(|f| f == FINALIZER);
    if deleting && !has_finalizer {
        return Ok(Action::await_change());
    }
    // The account as the Enrollment knows it: an account whose id changed since is
    // another AWS account, where this Enrollment's node is not.
    let account = ctx.stores.accounts.find(|a| {
        a.name_any() == enrollment.spec.system_account
            && a.spec.account_id == enrollment.spec.account_id
    });
    let Some(account) = account else {
        if deleting {
            // No credentials to reach SSM with: say what is left there, then let it go.
            warning(
                &ctx,
                &enrollment,
                "AccountGone",
                format!(
                    "SystemAccount {} no longer exists with account id {}, so its SSM cannot be reached: node {} and activation {} in account {} region {} are left as they are; remove them there by hand",
                    enrollment.spec.system_account,
                    enrollment.spec.account_id,
                    node_of(&enrollment).unwrap_or("(none registered)"),
                    activation_of(&enrollment).unwrap_or("(none)"),
                    enrollment.spec.account_id,
                    enrollment.spec.region,
                ),
            )
            .await;
            finalizer::remove(&api, &name)
                .await
                .map_err(EnrollmentError::Finalizer)?;
            return Ok(Action::await_change());
        }
        let message = format!(
            "SystemAccount {} with account id {} does not exist (deleted, or its accountId changed): nothing is read or changed until it does",
            enrollment.spec.system_account, enrollment.spec.account_id
        );
        write_status(
            &api,
            &enrollment,
            stalled(&enrollment, "AccountNotFound", message),
        )
        .await?;
        return Ok(Action::requeue(ctx.options.retry_attention));
    };
    if account.spec.suspend {
        if deleting {
            normal(
                &ctx,
                &enrollment,
                "WaitingForAccount",
                format!(
                    "SystemAccount {} is suspended: the node is deregistered once it is resumed",
                    account.name_any()
                ),
            )
            .await;
        }
        return Ok(Action::requeue(ctx.options.resync));
    }
    if !deleting && !has_finalizer {
        finalizer::add(&api, enrollment.as_ref())
            .await
            .map_err(EnrollmentError::Finalizer)?;
    }
    let client = ctx
        .edge
        .account(&AccountAccess::from_spec(
            &account.name_any(),
            &account.spec,
        ))
        .await
        .client(&enrollment.spec.region);
    let cluster_id = ctx.settings.cluster_id.as_str();

    let previous = enrollment.status.clone().unwrap_or_default();
    let settled = matches!(
        previous.phase,
        Some(EnrollmentPhase::Expired | EnrollmentPhase::Deregistered)
    );
    if !deleting && settled {
        return Ok(Action::await_change());
    }
    let Some(observed) = observe(&client, cluster_id, &enrollment, &name, deleting).await? else {
        // Just created: the server records the activation in a moment.
        return Ok(Action::requeue(REGISTRATION_POLL));
    };
    if !deleting && observed.node.is_none() {
        if previous.managed_node_id.is_some() {
            // Its used activation has nothing left to do either.
            if let Some(activation) = &observed.activation {
                activations::delete_activation(&client, &activation.id).await?;
            }
            return node_gone(&ctx, &api, &enrollment, previous).await;
        }
        if observed.activation.is_none() && previous.activation_id.is_none() {
            // The server stopped between creating the Enrollment and recording an
            // activation, long enough ago that it will not: let the machine try again.
            warning(
                &ctx,
                &enrollment,
                "Abandoned",
                "no activation was created for this Enrollment (the enrollment server stopped mid-way): deleted, so that the machine can enroll again".to_owned(),
            )
            .await;
            api.delete(&name, &kube::api::DeleteParams::default())
                .await
                .map_err(EnrollmentError::Finalizer)?;
            return Ok(Action::await_change());
        }
    }

    if deleting {
        let plan = cleanup(&observed, cluster_id, &name);
        if let Some(node) = &plan.deregister_node {
            activations::deregister_node(&client, node).await?;
        }
        if let Some(activation) = &plan.delete_activation {
            activations::delete_activation(&client, activation).await?;
        }
        let note = match (&plan.deregister_node, &plan.foreign_node) {
            (Some(node), _) => format!("deregistered node {node} and deleted its activation"),
            (None, Some(node)) => format!(
                "node {node} carries another owner's tags and was left registered; the activation was deleted"
            ),
            (None, None) if plan.delete_activation.is_some() => {
                "deleted the unused activation".to_owned()
            }
            (None, None) => "nothing of it was left in SSM".to_owned(),
        };
        info!(%note, "enrollment deleted");
        normal(&ctx, &enrollment, "Deregistered", note).await;
        finalizer::remove(&api, &name)
            .await
            .map_err(EnrollmentError::Finalizer)?;
        return Ok(Action::await_change());
    }

    let allowed = account
        .spec
        .enrollment
        .as_ref()
        .map(|e| e.patch_groups.as_slice());
    let now = Timestamp::now().as_second();
    let poll = registration_poll(&enrollment, now);
    let action = next_action(
        &enrollment.spec,
        &observed,
        allowed,
        cluster_id,
        &name,
        now,
        poll,
    );
    let mut next = previous.clone();
    next.activation_id = observed
        .activation
        .as_ref()
        .map(|a| a.id.clone())
        .or(previous.activation_id.clone());
    next.activation_expires_at = observed
        .activation
        .as_ref()
        .and_then(|a| Timestamp::from_second(a.expires_at).ok())
        .map(Time)
        .or(previous.activation_expires_at.clone());
    if let Some(node) = &observed.node {
        if next.managed_node_id.as_deref() != Some(node.id.as_str()) {
            next.managed_node_id = Some(node.id.clone());
            next.registered_at = Some(status::now());
            normal(
                &ctx,
                &enrollment,
                "Registered",
                format!(
                    "instance {} registered as managed node {} in account {} region {}",
                    enrollment.spec.instance_id,
                    node.id,
                    enrollment.spec.account_id,
                    enrollment.spec.region
                ),
            )
            .await;
        }
        next.tagged_patch_group = node.tags.get(PATCH_GROUP_TAG).cloned();
    }
    let (standing, phase, requeue) = match action {
        EnrollmentAction::AwaitRegistration { recheck_at } => (
            Standing {
                ready: (
                    Status::False,
                    "AwaitingRegistration",
                    "the activation waits for the machine's SSM agent to register".to_owned(),
                ),
                reconciling: Some((
                    "AwaitingRegistration",
                    "the activation waits for the machine's SSM agent to register".to_owned(),
                )),
                stalled: None,
            },
            EnrollmentPhase::Pending,
            Action::requeue(Duration::from_secs((recheck_at - now).max(1) as u64)),
        ),
        EnrollmentAction::DeleteExpiredActivation { activation_id } => {
            activations::delete_activation(&client, &activation_id).await?;
            let message = format!(
                "activation {activation_id} expired before the machine registered and was deleted; delete this Enrollment to let the machine enroll again"
            );
            warning(&ctx, &enrollment, "ActivationExpired", message.clone()).await;
            (
                Standing {
                    ready: (Status::False, "ActivationExpired", message),
                    reconciling: None,
                    stalled: None,
                },
                EnrollmentPhase::Expired,
                Action::await_change(),
            )
        }
        EnrollmentAction::TagNode {
            node_id,
            patch_group,
        } => {
            activations::tag_node(&client, &node_id, PATCH_GROUP_TAG, &patch_group).await?;
            normal(
                &ctx,
                &enrollment,
                "Tagged",
                format!("node {node_id}: Patch Group set to {patch_group}"),
            )
            .await;
            next.tagged_patch_group = Some(patch_group.clone());
            (
                registered_standing(&node_id, &patch_group),
                EnrollmentPhase::Registered,
                // Look once more soon, to confirm the tag.
                Action::requeue(REGISTRATION_POLL),
            )
        }
        EnrollmentAction::NodeNotOurs { node_id } => {
            let message = format!(
                "node {node_id} does not carry this Enrollment's and this cluster's tags (patchfleet.io/enrollment, patchfleet.io/cluster): it is not changed"
            );
            (
                Standing {
                    ready: (Status::False, "NodeNotOwned", message.clone()),
                    reconciling: None,
                    stalled: Some(("NodeNotOwned", message)),
                },
                EnrollmentPhase::Registered,
                Action::requeue(ctx.options.retry_attention),
            )
        }
        EnrollmentAction::GroupNotAllowed { patch_group } => {
            let message = format!(
                "spec.patchGroup {patch_group:?} is not in SystemAccount {}'s spec.enrollment.patchGroups: the node keeps its tag until one of those is chosen",
                account.name_any()
            );
            (
                Standing {
                    ready: (Status::False, "PatchGroupNotAllowed", message.clone()),
                    reconciling: None,
                    stalled: Some(("PatchGroupNotAllowed", message)),
                },
                EnrollmentPhase::Registered,
                Action::requeue(ctx.options.retry_attention),
            )
        }
        EnrollmentAction::Settled {
            phase: EnrollmentPhase::Registered,
        } => (
            registered_standing(
                next.managed_node_id.as_deref().unwrap_or_default(),
                &enrollment.spec.patch_group,
            ),
            EnrollmentPhase::Registered,
            Action::requeue(REGISTERED_RESYNC),
        ),
        EnrollmentAction::Settled { phase } => (
            Standing {
                ready: (
                    Status::False,
                    "ActivationExpired",
                    "the activation expired before the machine registered; delete this Enrollment to let the machine enroll again".to_owned(),
                ),
                reconciling: None,
                stalled: None,
            },
            phase,
            Action::await_change(),
        ),
    };
    next.phase = Some(phase);
    next.observed_generation = enrollment.metadata.generation;
    conditions::set_standing(
        &mut next.conditions,
        standing,
        enrollment.metadata.generation,
        status::now(),
    );
    write_status(&api, &enrollment, next).await?;
    Ok(requeue)
}

fn registered_standing(node: &str, group: &str) -> Standing<'static> {
    Standing {
        ready: (
            Status::True,
            "Registered",
            format!("node {node} is registered with Patch Group {group}"),
        ),
        reconciling: None,
        stalled: None,
    }
}

/// A quarter of the Enrollment's age, from 10 s to 5 min.
fn registration_poll(enrollment: &Enrollment, now: i64) -> i64 {
    let age = enrollment
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(0, |created| now - created.0.as_second());
    (age / 4).clamp(
        REGISTRATION_POLL.as_secs() as i64,
        MAX_REGISTRATION_POLL.as_secs() as i64,
    )
}

/// The activation (from the status, or found by the Enrollment's name and tags when the
/// server's record of it is missing) and the node it registered. None: no activation is
/// recorded or found yet and the Enrollment is young, so the server may still be
/// creating it. On deletion the recorded activation counts whatever the phase: deleting
/// it again is harmless, forgetting it is not.
async fn observe(
    client: &SsmClient,
    cluster_id: &str,
    enrollment: &Enrollment,
    name: &str,
    deleting: bool,
) -> Result<Option<EnrollmentObserved>, EdgeError> {
    let status = enrollment.status.clone().unwrap_or_default();
    let recorded = match (&status.activation_id, &status.activation_expires_at) {
        (Some(id), Some(expires)) => Some(ObservedActivation {
            id: id.clone(),
            expires_at: expires.0.as_second(),
        }),
        _ => None,
    };
    let deleted_at_expiry = status.phase == Some(EnrollmentPhase::Expired) && !deleting;
    let activation = match recorded {
        Some(_) if deleted_at_expiry => None,
        Some(activation) => Some(activation),
        None => activations::find_activation(client, cluster_id, name)
            .await?
            .map(|(id, expires_at)| ObservedActivation { id, expires_at }),
    };
    if activation.is_none() && status.managed_node_id.is_none() && !deleting && is_young(enrollment)
    {
        return Ok(None);
    }
    let node = match (&status.managed_node_id, &activation) {
        (Some(node), _) => activations::find_node(client, NodeLookup::Node(node)).await?,
        (None, Some(a)) => activations::find_node(client, NodeLookup::Activation(&a.id)).await?,
        (None, None) => None,
    };
    Ok(Some(EnrollmentObserved { activation, node }))
}

/// The node was deregistered outside patchfleet (and the activation is gone): the
/// Enrollment says so and waits for a person.
async fn node_gone(
    ctx: &Context,
    api: &Api<Enrollment>,
    enrollment: &Enrollment,
    previous: EnrollmentStatus,
) -> Result<Action, EnrollmentError> {
    let node = previous.managed_node_id.clone().unwrap_or_default();
    let message = format!(
        "node {node} is no longer registered in SSM (deregistered outside patchfleet): delete this Enrollment to let the machine enroll again"
    );
    warning(ctx, enrollment, "NodeDeregistered", message.clone()).await;
    let mut next = previous;
    next.phase = Some(EnrollmentPhase::Deregistered);
    next.managed_node_id = None;
    next.registered_at = None;
    next.tagged_patch_group = None;
    next.observed_generation = enrollment.metadata.generation;
    conditions::set_standing(
        &mut next.conditions,
        Standing {
            ready: (Status::False, "NodeDeregistered", message),
            reconciling: None,
            stalled: None,
        },
        enrollment.metadata.generation,
        status::now(),
    );
    write_status(api, enrollment, next).await?;
    Ok(Action::await_change())
}

fn is_young(enrollment: &Enrollment) -> bool {
    enrollment
        .metadata
        .creation_timestamp
        .as_ref()
        .is_some_and(|created| {
            Timestamp::now().as_second() - created.0.as_second() < CREATION_GRACE.as_secs() as i64
        })
}

fn node_of(enrollment: &Enrollment) -> Option<&str> {
    enrollment.status.as_ref()?.managed_node_id.as_deref()
}

fn activation_of(enrollment: &Enrollment) -> Option<&str> {
    enrollment.status.as_ref()?.activation_id.as_deref()
}

fn stalled(enrollment: &Enrollment, reason: &'static str, message: String) -> EnrollmentStatus {
    let mut next = enrollment.status.clone().unwrap_or_default();
    next.observed_generation = enrollment.metadata.generation;
    conditions::set_standing(
        &mut next.conditions,
        Standing {
            ready: (Status::False, reason, message.clone()),
            reconciling: None,
            stalled: Some((reason, message)),
        },
        enrollment.metadata.generation,
        status::now(),
    );
    next
}

/// Writes the status when it changed.
async fn write_status(
    api: &Api<Enrollment>,
    enrollment: &Enrollment,
    next: EnrollmentStatus,
) -> Result<(), EnrollmentError> {
    if enrollment.status.as_ref() == Some(&next) {
        return Ok(());
    }
    status::apply(api, enrollment, &next)
        .await
        .map_err(EnrollmentError::Status)
}

async fn normal(ctx: &Context, enrollment: &Enrollment, reason: &str, note: String) {
    events::publish(
        ctx,
        &enrollment.object_ref(&()),
        EventType::Normal,
        reason,
        reason,
        note,
    )
    .await;
}

async fn warning(ctx: &Context, enrollment: &Enrollment, reason: &str, note: String) {
    events::publish(
        ctx,
        &enrollment.object_ref(&()),
        EventType::Warning,
        reason,
        reason,
        note,
    )
    .await;
}
