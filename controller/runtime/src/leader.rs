//! Leader election on a coordination.k8s.io/v1 Lease, so that of several replicas exactly
//! one reconciles.
//!
//! Our own, ~200 lines, because no maintained crate supports kube 5 yet (kube-leader-election
//! 0.44 needs kube 4, kubert 0.25 kube 1.1). The algorithm is client-go's
//! (k8s.io/client-go/tools/leaderelection): a candidate takes the Lease when it is free or
//! expired, the holder renews it every retry period and steps down when it could not renew
//! for the renew deadline, and every write is a replace carrying the resourceVersion read,
//! so two candidates can never both win (the API server answers the second with 409).
//!
//! Expiry is judged by the candidate's own monotonic clock from the moment it saw the last
//! renewal (client-go's rule), a record seen for the first time included: wall clocks of
//! two machines are never compared. The holder's renew deadline is counted from before its last good renewal's
//! request, so it steps down leaseDuration - renewDeadline before anyone may take over.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Why a round failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("the API server: {0}")]
    Kube(#[from] kube::Error),
    #[error("another process renews the Lease as {0}: every replica needs its own --identity")]
    IdentityTaken(String),
}

impl LeaseError {
    /// Whether holding on is unsafe (the process must stop) rather than worth a retry.
    pub fn is_fatal(&self) -> bool {
        matches!(self, LeaseError::IdentityTaken(_))
    }
}

#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This replica's name in holderIdentity (the pod name in a cluster).
    pub identity: String,
    /// How long a Lease stays valid after its last renewal.
    pub duration: Duration,
    /// The holder steps down when it could not renew for this long.
    pub renew_deadline: Duration,
    /// How often the holder renews and a candidate retries.
    pub retry_period: Duration,
}

/// What a candidate does about the Lease it read.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Decision {
    /// Free, released or expired: take it.
    Take,
    /// Ours: renew it.
    Renew,
    /// Someone else's and valid for this long.
    Wait(Duration),
}

/// Pure: `remaining` is how long the current holder's claim still runs.
fn decide(spec: &LeaseSpec, identity: &str, remaining: Duration) -> Decision {
    match spec.holder_identity.as_deref() {
        None | Some("") => Decision::Take,
        Some(holder) if holder == identity => Decision::Renew,
        Some(_) if remaining.is_zero() => Decision::Take,
        Some(_) => Decision::Wait(remaining),
    }
}

/// The outcome of one round.
#[derive(Debug)]
enum Round {
    /// This replica holds the Lease, renewed at the instant given (taken before the read,
    /// so that the leader's own deadline never runs later than the Lease it wrote).
    Held(Instant),
    /// Another replica holds it for this much longer.
    HeldElsewhere(Duration),
    /// Someone wrote the Lease between our read and our write: read again.
    Conflict,
}

/// A record as first seen: the holder and renewTime, and when this replica saw them.
#[derive(Clone, Debug)]
struct Seen {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    at: Instant,
}

pub struct Elector {
    api: Api<Lease>,
    settings: LeaseSettings,
    observer: Observer,
    /// The resourceVersion of our own last write: a Lease that names us but changed since
    /// was written by another process with our identity.
    written: Option<String>,
}

impl Elector {
    pub fn new(client: kube::Client, settings: LeaseSettings) -> Self {
        Elector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observer: Observer::default(),
            written: None,
        }
    }

    /// Returns once this replica holds the Lease: the instant of the winning attempt.
    pub async fn acquire(&mut self) -> Instant {
        info!(
            lease = %self.settings.name,
            namespace = %self.settings.namespace,
            identity = %self.settings.identity,
            "waiting to become the leader"
        );
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Round::Held(at)) => {
                    info!(identity = %self.settings.identity, "became the leader");
                    return at;
                }
                Ok(Round::HeldElsewhere(wait)) => {
                    tokio::time::sleep(wait.min(self.settings.retry_period)).await;
                }
                Ok(Round::Conflict) => tokio::time::sleep(self.settings.retry_period).await,
                Err(error) => {
                    warn!(%error, "reading or writing the leader Lease");
                    tokio::time::sleep(self.settings.retry_period).await;
                }
            }
        }
    }

    /// Renews the Lease every retry period from `renewed` (the last successful renewal);
    /// returns (with why) when leadership is lost: another replica holds the Lease, or no
    /// renewal succeeded within the renew deadline. The deadline is fixed before each
    /// attempt, so a slow or failing API server never stretches it.
    pub async fn hold(&mut self, mut renewed: Instant) -> String {
        loop {
            let deadline = renewed + self.settings.renew_deadline;
            let next = (Instant::now() + self.settings.retry_period).min(deadline);
            tokio::time::sleep_until(next).await;
            if Instant::now() >= deadline {
                return format!(
                    "the Lease could not be renewed for {:?} (renew deadline)",
                    self.settings.renew_deadline
                );
            }
            match tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await {
                Ok(Ok(Round::Held(at))) => renewed = at,
                Ok(Ok(Round::HeldElsewhere(_))) => {
                    return "another replica holds the Lease".to_owned();
                }
                Ok(Ok(Round::Conflict)) => debug!("the Lease changed under a renewal; again"),
                Ok(Err(error)) if error.is_fatal() => return error.to_string(),
                Ok(Err(error)) => warn!(%error, "renewing the leader Lease"),
                Err(_elapsed) => warn!("renewing the leader Lease timed out"),
            }
        }
    }

    /// Gives the Lease up, so that a standby takes over at once instead of waiting for it
    /// to expire (client-go's ReleaseOnCancel).
    pub async fn release(&mut self) {
        let result = async {
            let mut lease = self.api.get(&self.settings.name).await?;
            let Some(spec) = lease.spec.as_mut() else {
                return Ok(());
            };
            if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            self.api
                .replace(&self.settings.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
        .await;
        match result {
            Ok(()) => info!("leader Lease released"),
            Err(error) => warn!(%error, "releasing the leader Lease (it will expire instead)"),
        }
    }

    /// One round: read the Lease, and take or renew it when this replica may.
    async fn try_acquire_or_renew(&mut self) -> Result<Round, LeaseError> {
        let started = Instant::now();
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.claim(None, now)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.written = created.metadata.resource_version;
                    Ok(Round::Held(started))
                }
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(Round::Conflict),
                Err(error) => Err(error.into()),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let remaining = self.remaining(&spec);
        match decide(&spec, &self.settings.identity, remaining) {
            Decision::Wait(wait) => {
                debug!(holder = ?spec.holder_identity, ?wait, "the Lease is held");
                return Ok(Round::HeldElsewhere(wait));
            }
            Decision::Renew
                if self.written.is_some() && self.written != lease.metadata.resource_version =>
            {
                return Err(LeaseError::IdentityTaken(self.settings.identity.clone()));
            }
            Decision::Take | Decision::Renew => {}
        }
        lease.spec = Some(self.claim(Some(&spec), now));
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(replaced) => {
                self.written = replaced.metadata.resource_version;
                Ok(Round::Held(started))
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Round::Conflict),
            Err(error) => Err(error.into()),
        }
    }

    /// The spec that makes (or keeps) this replica the holder.
    fn claim(&self, current: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
        let duration = i32::try_from(self.settings.duration.as_secs()).unwrap_or(i32::MAX);
        let ours = current.and_then(|c| c.holder_identity.as_deref())
            == Some(self.settings.identity.as_str());
        let transitions = current.and_then(|c| c.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.settings.identity.clone()),
            lease_duration_seconds: Some(duration),
            acquire_time: match current {
                Some(c) if ours => c.acquire_time.clone(),
                _ => Some(MicroTime(now)),
            },
            renew_time: Some(MicroTime(now)),
            // Every change of holder counts, a released Lease taken over included
            // (client-go's leaderTransitions).
            lease_transitions: Some(match current {
                Some(_) if !ours => transitions.saturating_add(1),
                _ => transitions,
            }),
            ..LeaseSpec::default()
        }
    }

    /// How long the holder's claim still runs, by this replica's clock.
    fn remaining(&mut self, spec: &LeaseSpec) -> Duration {
        self.observer.remaining(spec, self.settings.duration)
    }
}

/// What this replica has seen of the Lease record, timed by its own monotonic clock.
///
/// client-go's rule (leaderelection.go, `observedTime`): a record is as old as the time
/// since this replica first saw it in its current form, whatever its renewTime says. A
/// record seen for the first time (at start-up) is therefore waited for a full lease
/// duration: aging it by renewTime would compare two machines' wall clocks, and a standby
/// whose clock runs ahead would take a Lease its live holder is still renewing.
#[derive(Debug, Default)]
struct Observer {
    seen: Option<Seen>,
}

impl Observer {
    fn remaining(&mut self, spec: &LeaseSpec, default_duration: Duration) -> Duration {
        let changed = self.seen.as_ref().is_none_or(|seen| {
            seen.holder != spec.holder_identity || seen.renew_time != spec.renew_time
        });
        if changed {
            self.seen = Some(Seen {
                holder: spec.holder_identity.clone(),
                renew_time: spec.renew_time.clone(),
                at: Instant::now(),
            });
        }
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(default_duration, Duration::from_secs);
        match &self.seen {
            Some(seen) => duration.saturating_sub(seen.at.elapsed()),
            None => duration,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: Option<&str>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_candidate_takes_only_a_free_or_expired_lease() {
        let valid = Duration::from_secs(7);
        let cases = [
            (held_by(None), valid, Decision::Take),
            (held_by(Some("")), valid, Decision::Take),
            (held_by(Some("me")), valid, Decision::Renew),
            (held_by(Some("me")), Duration::ZERO, Decision::Renew),
            (held_by(Some("other")), valid, Decision::Wait(valid)),
            (held_by(Some("other")), Duration::ZERO, Decision::Take),
        ];
        for (spec, remaining, expected) in cases {
            assert_eq!(
                decide(&spec, "me", remaining),
                expected,
                "{spec:?} {remaining:?}"
            );
        }
    }

    fn renewed(holder: &str, renew_time: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            renew_time: Some(MicroTime(renew_time)),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }
    }

    /// A standby whose wall clock runs an hour ahead of the holder's sees a renewTime an
    /// hour old: it still waits a full lease duration by its own clock before taking over.
    #[tokio::test(start_paused = true)]
    async fn a_lease_seen_first_is_waited_for_a_full_duration_whatever_the_clocks_say() {
        let default = Duration::from_secs(30);
        let an_hour_ago = Timestamp::now() - jiff_hours(1);
        let spec = renewed("leader", an_hour_ago);
        let mut observer = Observer::default();
        assert_eq!(observer.remaining(&spec, default), Duration::from_secs(15));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(observer.remaining(&spec, default), Duration::from_secs(5));
        assert_eq!(
            decide(&spec, "standby", Duration::from_secs(5)),
            Decision::Wait(Duration::from_secs(5))
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        let remaining = observer.remaining(&spec, default);
        assert_eq!(remaining, Duration::ZERO);
        assert_eq!(decide(&spec, "standby", remaining), Decision::Take);
    }

    /// Every renewal seen starts the term again, by the standby's clock.
    #[tokio::test(start_paused = true)]
    async fn a_renewal_seen_restarts_the_term() {
        let default = Duration::from_secs(30);
        let start = Timestamp::now();
        let mut observer = Observer::default();
        observer.remaining(&renewed("leader", start), default);
        tokio::time::advance(Duration::from_secs(14)).await;
        let renewal = renewed("leader", start + jiff_seconds(2));
        assert_eq!(
            observer.remaining(&renewal, default),
            Duration::from_secs(15)
        );
        tokio::time::advance(Duration::from_secs(14)).await;
        assert_eq!(
            observer.remaining(&renewal, default),
            Duration::from_secs(1)
        );
    }

    fn jiff_hours(hours: i64) -> k8s_openapi::jiff::SignedDuration {
        k8s_openapi::jiff::SignedDuration::from_hours(hours)
    }

    fn jiff_seconds(seconds: i64) -> k8s_openapi::jiff::SignedDuration {
        k8s_openapi::jiff::SignedDuration::from_secs(seconds)
    }
}
