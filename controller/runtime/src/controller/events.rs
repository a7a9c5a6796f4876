//! Kubernetes Events: one for every SSM write and every failure, on the resource that
//! caused it. Publishing is best effort: a lost event never fails a reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};
use patchfleet_planner::model::Owner;
use tracing::warn;

use super::Context;

/// The reference of an owner, for events about it.
pub fn owner_reference(owner: &Owner) -> ObjectReference {
    ObjectReference {
        api_version: Some("patchfleet.io/v1alpha1".into()),
        kind: Some(owner.kind.as_str().into()),
        namespace: Some(owner.namespace.clone()),
        name: Some(owner.name.clone()),
        ..ObjectReference::default()
    }
}

pub async fn publish(
    ctx: &Context,
    reference: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        // Events carry at most 1 kB of note.
        note: Some(truncate(note, 1000)),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, reference).await {
        warn!(%error, reason, "publishing an event");
    }
}

pub async fn normal(ctx: &Context, owner: &Owner, reason: &str, note: String) {
    publish(
        ctx,
        &owner_reference(owner),
        EventType::Normal,
        reason,
        reason,
        note,
    )
    .await;
}

pub async fn warning(ctx: &Context, owner: &Owner, reason: &str, note: String) {
    publish(
        ctx,
        &owner_reference(owner),
        EventType::Warning,
        reason,
        reason,
        note,
    )
    .await;
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
