//! The controller's Prometheus metrics (served at /metrics by [`crate::http`]). Every series
//! is documented in docs/operations.md.

use std::time::Duration;

use patchfleet_ssm::CallObserver;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use patchfleet_api::v1alpha1::NodeCounts;

use crate::fleet::Health;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FigureLabels {
    figure: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlatformLabels {
    platform: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_duration: Family<KindLabels, Histogram>,
    ssm_calls: Family<CallLabels, Counter>,
    ssm_throttles: Family<OperationLabels, Counter>,
    ssm_retries: Family<OperationLabels, Counter>,
    account_regions: Family<StateLabels, Gauge>,
    accounts: Family<StateLabels, Gauge>,
    queue_depth: Family<KindLabels, Gauge>,
    leader: Gauge,
    cached_accounts: Gauge,
    nodes: Family<FigureLabels, Gauge>,
    nodes_by_provider: Family<ProviderLabels, Gauge>,
    nodes_by_platform: Family<PlatformLabels, Gauge>,
    compliance_pass_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    compliance_pass_calls: Gauge,
    compliance_passes: Counter,
    compliance_failures: Counter,
}

/// States of an account or account-region in the gauges.
const STATES: [&str; 3] = ["ready", "failing", "pending"];
// (Accounts also have "suspended"; an account-region of a suspended account counts nowhere.)

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("patchfleet");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles finished, by kind and outcome (success or error)",
            reconciles.clone(),
        );
        // 5 ms to about 82 s: a converged pass is a few calls, one from empty a few hundred.
        let reconcile_duration =
            Family::<KindLabels, Histogram>::new_with_constructor(|| -> Histogram {
                Histogram::new(exponential_buckets(0.005, 2.0, 15))
            });
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles take, by kind",
            reconcile_duration.clone(),
        );
        let ssm_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "ssm_calls",
            "SSM calls finished (after the SDK's retries), by operation and outcome (success or the AWS error code)",
            ssm_calls.clone(),
        );
        let ssm_throttles = Family::<OperationLabels, Counter>::default();
        registry.register(
            "ssm_throttles",
            "SSM attempts answered with a throttling error, by operation",
            ssm_throttles.clone(),
        );
        let ssm_retries = Family::<OperationLabels, Counter>::default();
        registry.register(
            "ssm_retries",
            "SSM attempts that were retries of a call, by operation",
            ssm_retries.clone(),
        );
        let account_regions = Family::<StateLabels, Gauge>::default();
        registry.register(
            "account_regions",
            "Account-regions by state of their last pass: ready (converged), failing, pending (not yet converged)",
            account_regions.clone(),
        );
        let accounts = Family::<StateLabels, Gauge>::default();
        registry.register(
            "accounts",
            "SystemAccounts by state: ready (every region ready), failing (one region or more failing), pending, suspended (spec.suspend)",
            accounts.clone(),
        );
        let queue_depth = Family::<KindLabels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Objects with a change or wake-up waiting for a reconcile to start, by kind (timed requeues not counted)",
            queue_depth.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease and reconciles, else 0",
            leader.clone(),
        );
        let cached_accounts = Gauge::default();
        registry.register(
            "cached_accounts",
            "SystemAccounts whose credentials, rate limit and SSM memory the controller keeps (dropped once a SystemAccount is deleted)",
            cached_accounts.clone(),
        );
        let nodes = Family::<FigureLabels, Gauge>::default();
        registry.register(
            "nodes",
            "Managed nodes over every account-region, by figure (instances, online, with_missing, with_failed, pending_reboot, agent_updates, compliant, non_compliant, unreported, overwritten), as the last compliance pass read them",
            nodes.clone(),
        );
        let nodes_by_provider = Family::<ProviderLabels, Gauge>::default();
        registry.register(
            "nodes_by_provider",
            "Managed nodes by provider (aws, azure, gcp, vmware, onprem, other)",
            nodes_by_provider.clone(),
        );
        let nodes_by_platform = Family::<PlatformLabels, Gauge>::default();
        registry.register(
            "nodes_by_platform",
            "Managed nodes by platform type (linux, windows, macos)",
            nodes_by_platform.clone(),
        );
        let compliance_pass_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "compliance_pass_seconds",
            "How long the last compliance pass over every account-region took",
            compliance_pass_seconds.clone(),
        );
        let compliance_pass_calls = Gauge::default();
        registry.register(
            "compliance_pass_calls",
            "SSM calls the last compliance pass made (docs/compliance.md has the formula)",
            compliance_pass_calls.clone(),
        );
        let compliance_passes = Counter::default();
        registry.register(
            "compliance_passes",
            "Compliance passes finished",
            compliance_passes.clone(),
        );
        let compliance_failures = Counter::default();
        registry.register(
            "compliance_failures",
            "Account-region reads of the compliance pass that failed (their figures are from an earlier pass)",
            compliance_failures.clone(),
        );
        for state in STATES {
            accounts.get_or_create(&StateLabels { state }).set(0);
            account_regions.get_or_create(&StateLabels { state }).set(0);
        }
        accounts
            .get_or_create(&StateLabels { state: "suspended" })
            .set(0);
        Metrics {
            registry,
            reconciles,
            reconcile_duration,
            ssm_calls,
            ssm_throttles,
            ssm_retries,
            account_regions,
            accounts,
            queue_depth,
            leader,
            cached_accounts,
            nodes,
            nodes_by_provider,
            nodes_by_platform,
            compliance_pass_seconds,
            compliance_pass_calls,
            compliance_passes,
            compliance_failures,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition (Prometheus scrapes it).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    pub fn reconciled(&self, kind: &'static str, success: bool, took: Duration) {
        let outcome = if success { "success" } else { "error" };
        self.reconciles
            .get_or_create(&ReconcileLabels { kind, outcome })
            .inc();
        self.reconcile_duration
            .get_or_create(&KindLabels { kind })
            .observe(took.as_secs_f64());
    }

    pub fn set_queue_depth(&self, kind: &'static str, depth: usize) {
        self.queue_depth
            .get_or_create(&KindLabels { kind })
            .set(gauge_value(depth));
    }

    pub fn set_cached_accounts(&self, count: usize) {
        self.cached_accounts.set(gauge_value(count));
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// A compliance pass ended: how long, how many calls, and the figures it left.
    pub fn compliance_pass(
        &self,
        took: Duration,
        calls: u64,
        total: &NodeCounts,
        overwritten: u32,
    ) {
        self.compliance_passes.inc();
        self.compliance_pass_seconds.set(took.as_secs_f64());
        self.compliance_pass_calls
            .set(i64::try_from(calls).unwrap_or(i64::MAX));
        let figures = [
            ("instances", total.instances),
            ("online", total.online),
            ("with_missing", total.with_missing),
            ("with_failed", total.with_failed),
            ("pending_reboot", total.pending_reboot),
            ("agent_updates", total.agent_updates),
            ("compliant", total.compliant),
            ("non_compliant", total.non_compliant),
            ("unreported", total.unreported),
            ("overwritten", overwritten),
        ];
        for (figure, value) in figures {
            self.nodes
                .get_or_create(&FigureLabels { figure })
                .set(i64::from(value));
        }
        let p = &total.providers;
        for (provider, value) in [
            ("aws", p.aws),
            ("azure", p.azure),
            ("gcp", p.gcp),
            ("vmware", p.vmware),
            ("onprem", p.onprem),
            ("other", p.other),
        ] {
            self.nodes_by_provider
                .get_or_create(&ProviderLabels { provider })
                .set(i64::from(value));
        }
        let p = &total.platforms;
        for (platform, value) in [
            ("linux", p.linux),
            ("windows", p.windows),
            ("macos", p.macos),
        ] {
            self.nodes_by_platform
                .get_or_create(&PlatformLabels { platform })
                .set(i64::from(value));
        }
    }

    pub fn compliance_failed(&self) {
        self.compliance_failures.inc();
    }

    pub fn set_health(&self, health: &Health, suspended_accounts: usize) {
        self.accounts
            .get_or_create(&StateLabels { state: "suspended" })
            .set(gauge_value(suspended_accounts));
        let pairs = [
            ("ready", health.accounts.ready, health.regions.ready),
            ("failing", health.accounts.failing, health.regions.failing),
            ("pending", health.accounts.pending, health.regions.pending),
        ];
        for (state, accounts, regions) in pairs {
            self.accounts
                .get_or_create(&StateLabels { state })
                .set(gauge_value(accounts));
            self.account_regions
                .get_or_create(&StateLabels { state })
                .set(gauge_value(regions));
        }
    }
}

/// A count as a gauge value (gauges are i64).
fn gauge_value(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

impl CallObserver for Metrics {
    fn attempt(&self, operation: &str, retry: bool, throttled: bool) {
        let labels = OperationLabels {
            operation: operation.to_owned(),
        };
        if retry {
            self.ssm_retries.get_or_create(&labels).inc();
        }
        if throttled {
            self.ssm_throttles.get_or_create(&labels).inc();
        }
    }

    fn call(&self, operation: &str, outcome: &str) {
        self.ssm_calls
            .get_or_create(&CallLabels {
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::StateCounts;

    #[test]
    fn series_render_with_their_labels() {
        let metrics = Metrics::default();
        metrics.reconciled("SystemAccount", true, Duration::from_millis(30));
        metrics.reconciled("SystemAccount", false, Duration::from_millis(30));
        metrics.call("DescribePatchBaselines", "success");
        metrics.attempt("DescribePatchBaselines", true, true);
        metrics.set_health(
            &Health {
                accounts: StateCounts {
                    ready: 2,
                    failing: 1,
                    pending: 0,
                },
                regions: StateCounts {
                    ready: 3,
                    failing: 1,
                    pending: 2,
                },
            },
            1,
        );
        metrics.set_leader(true);
        let text = metrics.encode().expect("encodes");
        for line in [
            r#"patchfleet_reconciles_total{kind="SystemAccount",outcome="success"} 1"#,
            r#"patchfleet_reconciles_total{kind="SystemAccount",outcome="error"} 1"#,
            r#"patchfleet_reconcile_duration_seconds_count{kind="SystemAccount"} 2"#,
            r#"patchfleet_ssm_calls_total{operation="DescribePatchBaselines",outcome="success"} 1"#,
            r#"patchfleet_ssm_throttles_total{operation="DescribePatchBaselines"} 1"#,
            r#"patchfleet_ssm_retries_total{operation="DescribePatchBaselines"} 1"#,
            r#"patchfleet_accounts{state="failing"} 1"#,
            r#"patchfleet_accounts{state="suspended"} 1"#,
            r#"patchfleet_account_regions{state="pending"} 2"#,
            "patchfleet_leader 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
