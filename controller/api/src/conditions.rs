//! kstatus conditions: the types every patchfleet resource reports and the one way to set them.
//!
//! kstatus (used by `kubectl wait`, Flux and Argo CD) reads three condition types:
//! `Ready` is always present; `Reconciling` and `Stalled` are True only while something is
//! abnormal. Setting a condition never moves `lastTransitionTime` unless its status really
//! changed, so a status written twice with the same content is byte-identical and a status
//! write never re-triggers a reconcile.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The resource is converged: what it declares exists, as declared, everywhere it selects.
pub const READY: &str = "Ready";
/// The controller is working towards the declared state (kstatus "abnormal-true").
pub const RECONCILING: &str = "Reconciling";
/// The controller cannot make progress without a change by a person (kstatus "abnormal-true").
pub const STALLED: &str = "Stalled";

/// Condition status values, as metav1.Condition spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

/// What a reconciler wants a condition to say; `set` turns it into a metav1.Condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired<'a> {
    pub type_: &'a str,
    pub status: Status,
    /// CamelCase, machine readable (metav1.Condition requires one).
    pub reason: &'a str,
    pub message: String,
}

/// How a resource stands, as its three kstatus conditions say it: `Ready` as given;
/// `Reconciling` and `Stalled` True with their reason and message while abnormal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing<'a> {
    pub ready: (Status, &'a str, String),
    pub reconciling: Option<(&'a str, String)>,
    pub stalled: Option<(&'a str, String)>,
}

/// Sets the three conditions of `standing`; `Reconciling` and `Stalled` say False
/// (`AsExpected`, no message) when not abnormal, so that all three are always present.
pub fn set_standing(
    conditions: &mut Vec<Condition>,
    standing: Standing<'_>,
    observed_generation: Option<i64>,
    now: Time,
) {
    let (status, reason, message) = standing.ready;
    let ready = Desired {
        type_: READY,
        status,
        reason,
        message,
    };
    set(conditions, ready, observed_generation, now.clone());
    for (type_, abnormal) in [
        (RECONCILING, standing.reconciling),
        (STALLED, standing.stalled),
    ] {
        let desired = match abnormal {
            Some((reason, message)) => Desired {
                type_,
                status: Status::True,
                reason,
                message,
            },
            None => Desired {
                type_,
                status: Status::False,
                reason: "AsExpected",
                message: String::new(),
            },
        };
        set(conditions, desired, observed_generation, now.clone());
    }
}

/// Sets one condition in `conditions`, keeping `lastTransitionTime` when the status is
/// unchanged. Returns true when anything visible changed.
pub fn set(
    conditions: &mut Vec<Condition>,
    desired: Desired<'_>,
    observed_generation: Option<i64>,
    now: Time,
) -> bool {
    let next = |last_transition_time| Condition {
        type_: desired.type_.to_owned(),
        status: desired.status.as_str().to_owned(),
        reason: desired.reason.to_owned(),
        message: desired.message.clone(),
        observed_generation,
        last_transition_time,
    };
    match conditions.iter_mut().find(|c| c.type_ == desired.type_) {
        Some(existing) => {
            let transition_time = if existing.status == desired.status.as_str() {
                existing.last_transition_time.clone()
            } else {
                now
            };
            let updated = next(transition_time);
            if *existing == updated {
                return false;
            }
            *existing = updated;
            true
        }
        None => {
            conditions.push(next(now));
            true
        }
    }
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True when the condition of that type exists with status True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == Status::True.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).expect("valid timestamp"))
    }

    fn ready(status: Status, reason: &'static str, message: &str) -> Desired<'static> {
        Desired {
            type_: READY,
            status,
            reason,
            message: message.to_owned(),
        }
    }

    #[test]
    fn a_new_condition_is_added_with_the_current_time() {
        let mut conditions = vec![];
        assert!(set(
            &mut conditions,
            ready(Status::False, "Pending", "waiting"),
            Some(1),
            at(10)
        ));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].status, "False");
        assert_eq!(conditions[0].observed_generation, Some(1));
        assert_eq!(conditions[0].last_transition_time, at(10));
    }

    #[test]
    fn the_same_condition_again_changes_nothing() {
        let mut conditions = vec![];
        set(
            &mut conditions,
            ready(Status::True, "Converged", "ok"),
            Some(1),
            at(10),
        );
        let before = conditions.clone();
        assert!(!set(
            &mut conditions,
            ready(Status::True, "Converged", "ok"),
            Some(1),
            at(99)
        ));
        assert_eq!(conditions, before);
    }

    #[test]
    fn a_new_message_with_the_same_status_keeps_the_transition_time() {
        let mut conditions = vec![];
        set(
            &mut conditions,
            ready(Status::False, "Pending", "a"),
            Some(1),
            at(10),
        );
        assert!(set(
            &mut conditions,
            ready(Status::False, "Failing", "b"),
            Some(2),
            at(20)
        ));
        assert_eq!(conditions[0].message, "b");
        assert_eq!(conditions[0].reason, "Failing");
        assert_eq!(conditions[0].observed_generation, Some(2));
        assert_eq!(conditions[0].last_transition_time, at(10));
    }

    #[test]
    fn a_status_change_moves_the_transition_time() {
        let mut conditions = vec![];
        set(
            &mut conditions,
            ready(Status::False, "Pending", "a"),
            Some(1),
            at(10),
        );
        set(
            &mut conditions,
            ready(Status::True, "Converged", "ok"),
            Some(1),
            at(30),
        );
        assert_eq!(conditions[0].last_transition_time, at(30));
        assert!(is_true(&conditions, READY));
        assert!(!is_true(&conditions, STALLED));
    }

    #[test]
    fn other_conditions_are_left_alone() {
        let mut conditions = vec![];
        set(
            &mut conditions,
            ready(Status::False, "Pending", "a"),
            Some(1),
            at(10),
        );
        let stalled = Desired {
            type_: STALLED,
            status: Status::True,
            reason: "InvalidSpec",
            message: "spec.x: bad".to_owned(),
        };
        set(&mut conditions, stalled, Some(1), at(20));
        assert_eq!(conditions.len(), 2);
        assert_eq!(
            find(&conditions, READY).map(|c| c.last_transition_time.clone()),
            Some(at(10))
        );
    }
}
