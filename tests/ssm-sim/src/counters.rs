//! Calls counted per account, region, caller, operation and outcome.
//!
//! The outcome is "Success" or the error code answered (e.g. "ThrottlingException").

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CallKey {
    pub account: String,
    pub region: String,
    /// The caller's ARN (for an assumed role, with its session name: who acted).
    pub caller: String,
    pub operation: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallCount {
    #[serde(flatten)]
    pub key: CallKey,
    pub count: u64,
}

#[derive(Debug, Default)]
pub struct Counters {
    calls: RwLock<HashMap<CallKey, AtomicU64>>,
}

impl Counters {
    pub fn record(
        &self,
        account: &str,
        region: &str,
        caller: &str,
        operation: &str,
        outcome: &str,
    ) {
        let key = CallKey {
            account: account.to_string(),
            region: region.to_string(),
            caller: caller.to_string(),
            operation: operation.to_string(),
            outcome: outcome.to_string(),
        };
        {
            let calls = self
                .calls
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(c) = calls.get(&key) {
                c.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.calls
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    /// All counts, sorted for stable output.
    pub fn snapshot(&self) -> Vec<CallCount> {
        let calls = self
            .calls
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<CallCount> = calls
            .iter()
            .map(|(k, v)| CallCount {
                key: k.clone(),
                count: v.load(Ordering::Relaxed),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    pub fn reset(&self) {
        self.calls
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        let mut out = String::from(
            "# HELP ssm_sim_calls_total Calls answered by the simulator.\n\
             # TYPE ssm_sim_calls_total counter\n",
        );
        for c in self.snapshot() {
            let _ = writeln!(
                out,
                "ssm_sim_calls_total{{account=\"{}\",region=\"{}\",caller=\"{}\",operation=\"{}\",outcome=\"{}\"}} {}",
                escape(&c.key.account),
                escape(&c.key.region),
                escape(&c.key.caller),
                escape(&c.key.operation),
                escape(&c.key.outcome),
                c.count
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_key_and_renders_prometheus() {
        let c = Counters::default();
        c.record("1", "us-east-1", "arn:x", "GetPatchBaseline", "Success");
        c.record("1", "us-east-1", "arn:x", "GetPatchBaseline", "Success");
        c.record(
            "1",
            "us-east-1",
            "arn:x",
            "GetPatchBaseline",
            "DoesNotExistException",
        );
        let snap = c.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(snap.iter().map(|c| c.count).sum::<u64>(), 3);
        let text = c.prometheus();
        assert!(text.contains("ssm_sim_calls_total{account=\"1\",region=\"us-east-1\",caller=\"arn:x\",operation=\"GetPatchBaseline\",outcome=\"Success\"} 2"));
    }
}
