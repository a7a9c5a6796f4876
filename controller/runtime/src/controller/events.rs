//! Kubernetes Events on the resource that caused them. Publishing is best effort: a lost
//! event never fails a reconcile.
//!
//! SSM writes: one Event per owner and account pass, listing every write (region, verb,
//! object), so each write can be found with its detail while a 1,000-account convergence
//! costs one Event per owner and account instead of one per SSM write. These are created
//! directly rather than through kube's `Recorder`, which folds every later event of the
//! same reason into a count on the first one's note (and so loses what was written).
//! Failures go through the `Recorder`: a failure repeated every pass becomes a count.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType};
use patchfleet_planner::model::{AccountRegion, Owner};
use tracing::warn;

use super::Context;

/// Events carry at most 1 kB of note.
const NOTE_LIMIT: usize = 1000;

/// One SSM write of a pass, as an Event tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub owner: Owner,
    /// Created, Updated, Deleted, Registered, Deregistered, Orphaned.
    pub verb: &'static str,
    /// The object, such as `patch baseline patchfleet-patching-early-windows`.
    pub what: String,
}

/// One Event per owner for the writes of one account pass, in every region.
pub async fn writes(ctx: &Context, by_region: &[(AccountRegion, Vec<Written>)]) {
    let mut by_owner: BTreeMap<&Owner, Vec<(&AccountRegion, &Written)>> = BTreeMap::new();
    for (region, written) in by_region {
        for write in written {
            by_owner
                .entry(&write.owner)
                .or_default()
                .push((region, write));
        }
    }
    for (owner, written) in by_owner {
        let (reason, note) = writes_note(&written);
        create(ctx, owner, reason, note).await;
    }
}

/// The reason (the verb when every write shares it, else `Applied`) and the note: the
/// account once, then per region each write, `+N more` past the note limit.
fn writes_note(written: &[(&AccountRegion, &Written)]) -> (&'static str, String) {
    let reason = match written.first() {
        Some((_, first)) if written.iter().all(|(_, w)| w.verb == first.verb) => first.verb,
        _ => "Applied",
    };
    let mut note = String::new();
    let mut region: Option<&str> = None;
    for (index, (at, write)) in written.iter().enumerate() {
        let entry = if region == Some(at.region.as_str()) {
            format!("; {} {}", write.verb, write.what)
        } else if region.is_none() {
            format!(
                "{} ({}) {}: {} {}",
                at.account, at.account_id, at.region, write.verb, write.what
            )
        } else {
            format!(" | {}: {} {}", at.region, write.verb, write.what)
        };
        let more = format!(" (+{} more)", written.len() - index);
        if note.len() + entry.len() + more.len() > NOTE_LIMIT {
            note.push_str(&more);
            break;
        }
        note.push_str(&entry);
        region = Some(at.region.as_str());
    }
    (reason, note)
}

/// A new Event object (never merged into an earlier one).
async fn create(ctx: &Context, owner: &Owner, reason: &str, note: String) {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let now = k8s_openapi::jiff::Timestamp::now();
    // Unique per process: the time, and a sequence for events created in the same instant.
    let name = format!(
        "{}.{:x}{:x}",
        owner.name,
        now.as_nanosecond(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    );
    let event = K8sEvent {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(owner.namespace.clone()),
            ..ObjectMeta::default()
        },
        action: Some(reason.to_owned()),
        reason: Some(reason.to_owned()),
        event_time: Some(MicroTime(now)),
        regarding: Some(owner_reference(owner)),
        note: Some(truncate(note, NOTE_LIMIT)),
        reporting_controller: Some(super::MANAGER.to_owned()),
        reporting_instance: Some(ctx.identity.clone()),
        type_: Some("Normal".to_owned()),
        ..K8sEvent::default()
    };
    let api: Api<K8sEvent> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    if let Err(error) = api.create(&PostParams::default(), &event).await {
        warn!(%error, reason, "publishing an event");
    }
}

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
        note: Some(truncate(note, NOTE_LIMIT)),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, reference).await {
        warn!(%error, reason, "publishing an event");
    }
}

/// A Normal Event of its own (never folded into an earlier one of the same reason).
pub async fn normal(ctx: &Context, owner: &Owner, reason: &str, note: String) {
    create(ctx, owner, reason, note).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use patchfleet_planner::model::OwnerKind;

    fn region(name: &str) -> AccountRegion {
        AccountRegion {
            account: "customer-a".into(),
            account_id: "111111111111".into(),
            region: name.into(),
        }
    }

    fn write(verb: &'static str, what: &str) -> Written {
        Written {
            owner: Owner {
                kind: OwnerKind::PatchPolicy,
                namespace: "patching".into(),
                name: "early".into(),
            },
            verb,
            what: what.into(),
        }
    }

    #[test]
    fn a_note_names_the_account_then_each_write_by_region() {
        let (eu, us) = (region("eu-west-1"), region("us-east-1"));
        let (a, b, c) = (
            write("Created", "patch baseline a"),
            write("Created", "patch baseline b"),
            write("Created", "patch baseline a"),
        );
        let (reason, note) = writes_note(&[(&eu, &a), (&eu, &b), (&us, &c)]);
        assert_eq!(reason, "Created");
        assert_eq!(
            note,
            "customer-a (111111111111) eu-west-1: Created patch baseline a; Created patch baseline b \
             | us-east-1: Created patch baseline a"
        );
    }

    #[test]
    fn mixed_verbs_are_applied_and_a_long_note_says_how_many_it_left_out() {
        let eu = region("eu-west-1");
        let long = "x".repeat(300);
        let created = write("Created", &long);
        let registered = write("Registered", &long);
        let written: Vec<_> = [&created, &registered, &created, &registered, &created]
            .into_iter()
            .map(|w| (&eu, w))
            .collect();
        let (reason, note) = writes_note(&written);
        assert_eq!(reason, "Applied");
        assert!(note.len() <= NOTE_LIMIT, "{}", note.len());
        assert!(note.ends_with("(+2 more)"), "{note}");
    }
}
