//! Injected faults: throttling, server errors, latency and unreachable accounts.
//!
//! Decisions are deterministic for a seed: the n-th call since the spec was set
//! draws the n-th number of a seeded sequence, so the same call order gets the
//! same faults.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::splitmix64;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    pub seed: u64,
    /// Fraction (0..=1) of calls answered with a throttling error.
    pub throttle_rate: f64,
    /// Fraction (0..=1) of calls answered with a 500 InternalServerError.
    pub server_error_rate: f64,
    /// Added latency in milliseconds per operation name; "*" applies to all.
    pub latency_ms: HashMap<String, u64>,
    /// When non-empty, throttling and server errors only hit these operations.
    pub operations: Vec<String>,
    /// When non-empty, throttling and server errors only hit these accounts.
    pub accounts: Vec<String>,
    /// Accounts that cannot be reached: AssumeRole into them is denied.
    pub unreachable_accounts: Vec<String>,
}

impl FaultSpec {
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("throttle_rate", self.throttle_rate),
            ("server_error_rate", self.server_error_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be within 0 and 1, got {rate}"));
            }
        }
        if self.throttle_rate + self.server_error_rate > 1.0 {
            return Err("throttle_rate + server_error_rate must not exceed 1".into());
        }
        Ok(())
    }
}

/// What to do to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    Throttle,
    ServerError,
}

#[derive(Debug, Default)]
pub struct Faults {
    spec: RwLock<FaultSpec>,
    seq: AtomicU64,
}

impl Faults {
    pub fn new(spec: FaultSpec) -> Self {
        Self {
            spec: RwLock::new(spec),
            seq: AtomicU64::new(0),
        }
    }

    pub fn spec(&self) -> FaultSpec {
        self.spec
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn set(&self, spec: FaultSpec) {
        *self
            .spec
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = spec;
        self.seq.store(0, Ordering::SeqCst);
    }

    /// The latency to add and the error (if any) to answer instead of the call.
    pub fn decide(&self, op: &str, account: &str) -> (Duration, Option<Injected>) {
        let spec = self
            .spec
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let latency = spec
            .latency_ms
            .get(op)
            .or_else(|| spec.latency_ms.get("*"))
            .map_or(Duration::ZERO, |ms| Duration::from_millis(*ms));
        let rates = spec.throttle_rate + spec.server_error_rate;
        if rates <= 0.0
            || (!spec.operations.is_empty() && !spec.operations.iter().any(|o| o == op))
            || (!spec.accounts.is_empty() && !spec.accounts.iter().any(|a| a == account))
        {
            return (latency, None);
        }
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let draw = (splitmix64(spec.seed ^ splitmix64(n)) >> 11) as f64 / (1u64 << 53) as f64;
        let injected = if draw < spec.throttle_rate {
            Some(Injected::Throttle)
        } else if draw < rates {
            Some(Injected::ServerError)
        } else {
            None
        };
        (latency, injected)
    }

    pub fn is_unreachable(&self, account: &str) -> bool {
        self.spec
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .unreachable_accounts
            .iter()
            .any(|a| a == account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64) -> Vec<Option<Injected>> {
        let faults = Faults::new(FaultSpec {
            seed,
            throttle_rate: 0.3,
            server_error_rate: 0.1,
            ..FaultSpec::default()
        });
        (0..1000)
            .map(|_| faults.decide("GetPatchBaseline", "1").1)
            .collect()
    }

    #[test]
    fn same_seed_same_faults_and_rates_hold() {
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        let throttled = a.iter().filter(|d| **d == Some(Injected::Throttle)).count();
        let errors = a
            .iter()
            .filter(|d| **d == Some(Injected::ServerError))
            .count();
        assert!((240..360).contains(&throttled), "throttled {throttled}");
        assert!((60..140).contains(&errors), "errors {errors}");
    }

    #[test]
    fn scoping_to_operations_spares_others() {
        let faults = Faults::new(FaultSpec {
            throttle_rate: 1.0,
            operations: vec!["CreatePatchBaseline".into()],
            ..FaultSpec::default()
        });
        assert_eq!(faults.decide("GetPatchBaseline", "1").1, None);
        assert_eq!(
            faults.decide("CreatePatchBaseline", "1").1,
            Some(Injected::Throttle)
        );
    }
}
