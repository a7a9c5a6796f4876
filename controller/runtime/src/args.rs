//! Command-line flags. Every flag of `run` also reads an environment variable, so the Helm
//! chart can set them either way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use patchfleet_planner::compliance::NodeQuotas;
use patchfleet_planner::{Quotas, Settings};
use patchfleet_ssm::EdgeSettings;

use crate::controller::{ComplianceOptions, Options, RunConfig};
use crate::leader::LeaseSettings;

#[derive(Args)]
pub struct CrdgenArgs {
    /// Directory for the CRD YAML files.
    #[arg(long, default_value = "crds")]
    pub crds_dir: PathBuf,
    /// Path of the generated API reference.
    #[arg(long, default_value = "docs/api.md")]
    pub api_doc: PathBuf,
    /// Write nothing; exit 1 and name the files that are out of date.
    #[arg(long)]
    pub check: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
pub struct RunArgs {
    /// This cluster's identity, recorded on every SSM object patchfleet creates. Objects
    /// with another identity are never touched, so two clusters can share an account.
    #[arg(long, env = "PATCHFLEET_CLUSTER_ID", value_parser = parse_cluster_id)]
    pub cluster_id: String,
    /// SSM endpoint override (else AWS_ENDPOINT_URL_SSM / AWS_ENDPOINT_URL, else AWS's).
    #[arg(long, env = "PATCHFLEET_SSM_ENDPOINT")]
    pub ssm_endpoint: Option<String>,
    /// STS endpoint override (else AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL, else AWS's).
    #[arg(long, env = "PATCHFLEET_STS_ENDPOINT")]
    pub sts_endpoint: Option<String>,
    /// SystemAccounts reconciled at the same time. With --rate-limit it sets the fleet's
    /// call budget: 64 accounts at 10 calls/s each is 640 SSM calls/s.
    #[arg(long, env = "PATCHFLEET_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// SSM calls per second per account (each account its own budget).
    #[arg(long, env = "PATCHFLEET_RATE_LIMIT", default_value_t = 10.0)]
    pub rate_limit: f64,
    /// Attempts per SSM call, with AWS's standard backoff; each account-region has its own
    /// retry partition, so throttling in one never drains another's retries.
    #[arg(long, env = "PATCHFLEET_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
    /// Cheap pass over a converged account-region this often (lists and fingerprints).
    #[arg(long, env = "PATCHFLEET_RESYNC", default_value = "5m", value_parser = parse_duration)]
    pub resync: Duration,
    /// Full read of every owned object this often, to correct drift made by hand.
    #[arg(long, env = "PATCHFLEET_DEEP_INTERVAL", default_value = "3h", value_parser = parse_duration)]
    pub deep_interval: Duration,
    /// Retry after a failure that time may fix (throttling, network).
    #[arg(long, env = "PATCHFLEET_RETRY", default_value = "10s", value_parser = parse_duration)]
    pub retry: Duration,
    /// Retry after a failure a person must fix (access denied, quota).
    #[arg(long, env = "PATCHFLEET_RETRY_ATTENTION", default_value = "2m", value_parser = parse_duration)]
    pub retry_attention: Duration,
    /// While an Emergency run's command is not finished, its status is read this often.
    #[arg(long, env = "PATCHFLEET_RUN_POLL_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub run_poll_interval: Duration,
    /// PatchPolicy, PatchGroup and MaintenanceWindow status is rolled up from the account
    /// passes at most this often per resource.
    #[arg(long, env = "PATCHFLEET_STATUS_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub status_interval: Duration,
    /// SSM quotas per account and region (AWS's defaults; raise them with AWS first).
    #[arg(long, env = "PATCHFLEET_QUOTA_BASELINES", default_value_t = Quotas::default().baselines)]
    pub quota_baselines: usize,
    #[arg(long, env = "PATCHFLEET_QUOTA_WINDOWS", default_value_t = Quotas::default().windows)]
    pub quota_windows: usize,
    #[arg(long, env = "PATCHFLEET_QUOTA_TARGETS_PER_WINDOW", default_value_t = Quotas::default().targets_per_window)]
    pub quota_targets_per_window: usize,
    #[arg(long, env = "PATCHFLEET_QUOTA_TASKS_PER_WINDOW", default_value_t = Quotas::default().tasks_per_window)]
    pub quota_tasks_per_window: usize,
    #[arg(long, env = "PATCHFLEET_QUOTA_PATCH_GROUPS_PER_BASELINE", default_value_t = Quotas::default().patch_groups_per_baseline)]
    pub quota_patch_groups_per_baseline: usize,
    /// The compliance pass (nodes, patch states and window runs read back from SSM) starts
    /// this often; `0` turns it off (docs/compliance.md gives its cost).
    #[arg(long, env = "PATCHFLEET_COMPLIANCE_INTERVAL", default_value = "15m", value_parser = parse_duration)]
    pub compliance_interval: Duration,
    /// SystemAccounts the compliance pass reads at the same time.
    #[arg(long, env = "PATCHFLEET_COMPLIANCE_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub compliance_concurrency: u16,
    /// Managed nodes per account and region (AWS's default quota), for `nodeHeadroom`.
    #[arg(long, env = "PATCHFLEET_QUOTA_MANAGED_NODES", default_value_t = NodeQuotas::default().managed_nodes)]
    pub quota_managed_nodes: u32,
    /// Hybrid nodes per account and region on the standard tier, for `hybridNodeHeadroom`.
    #[arg(long, env = "PATCHFLEET_QUOTA_HYBRID_NODES", default_value_t = NodeQuotas::default().hybrid_nodes)]
    pub quota_hybrid_nodes: u32,
    /// Log format: `json` puts the account, region and resource of a reconcile on every line.
    #[arg(
        long,
        env = "PATCHFLEET_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Address of /metrics (Prometheus), /healthz and /readyz.
    #[arg(long, env = "PATCHFLEET_HTTP_ADDRESS", default_value = "0.0.0.0:8080")]
    pub http_address: SocketAddr,
    /// Elect a leader among replicas on a Lease: only the leader reconciles.
    #[arg(long, env = "PATCHFLEET_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader Lease.
    #[arg(long, env = "PATCHFLEET_LEASE_NAME", default_value = "patchfleet")]
    pub lease_name: String,
    /// Namespace of the leader Lease [default: $POD_NAMESPACE, else `default`].
    #[arg(long, env = "PATCHFLEET_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's name: Lease holder, Event reporter and AssumeRole session name
    /// [default: $POD_NAME, else the host name and process id].
    #[arg(long, env = "PATCHFLEET_IDENTITY")]
    pub identity: Option<String>,
    /// How long the Lease stays valid after its last renewal: a standby takes over at most
    /// this long after the leader died.
    #[arg(long, env = "PATCHFLEET_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// The leader steps down (and exits) when it could not renew the Lease for this long;
    /// must be shorter than --lease-duration.
    #[arg(long, env = "PATCHFLEET_LEASE_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub lease_renew_deadline: Duration,
    /// How often the leader renews and a standby retries.
    #[arg(long, env = "PATCHFLEET_LEASE_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
    pub lease_retry_period: Duration,
}

impl RunArgs {
    pub fn into_config(self) -> anyhow::Result<RunConfig> {
        let identity = self.identity.clone().unwrap_or_else(default_identity);
        let lease = self.leader_election.then(|| LeaseSettings {
            name: self.lease_name.clone(),
            namespace: self.lease_namespace.clone().unwrap_or_else(|| {
                std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".to_owned())
            }),
            identity: identity.clone(),
            duration: self.lease_duration,
            renew_deadline: self.lease_renew_deadline,
            retry_period: self.lease_retry_period,
        });
        if let Some(lease) = &lease {
            anyhow::ensure!(
                lease.renew_deadline < lease.duration,
                "--lease-renew-deadline ({:?}) must be shorter than --lease-duration ({:?}), \
                 or a standby could take over while the leader still acts",
                lease.renew_deadline,
                lease.duration
            );
            anyhow::ensure!(
                lease.retry_period >= Duration::from_secs(1),
                "--lease-retry-period must be at least 1s (it paces every Lease read)"
            );
            anyhow::ensure!(
                lease.retry_period < lease.renew_deadline,
                "--lease-retry-period ({:?}) must be shorter than --lease-renew-deadline ({:?})",
                lease.retry_period,
                lease.renew_deadline
            );
        }
        Ok(RunConfig {
            http_address: self.http_address,
            identity: identity.clone(),
            lease,
            options: Options {
                resync: self.resync,
                settle: Duration::from_secs(1),
                deep_interval: self.deep_interval,
                retry_transient: self.retry,
                retry_attention: self.retry_attention,
                run_poll: self.run_poll_interval,
                status_interval: self.status_interval,
                compliance: ComplianceOptions {
                    interval: self.compliance_interval,
                    concurrency: usize::from(self.compliance_concurrency),
                    quotas: NodeQuotas {
                        managed_nodes: self.quota_managed_nodes,
                        hybrid_nodes: self.quota_hybrid_nodes,
                    },
                },
            },
            settings: Settings {
                cluster_id: self.cluster_id,
                quotas: Quotas {
                    baselines: self.quota_baselines,
                    windows: self.quota_windows,
                    targets_per_window: self.quota_targets_per_window,
                    tasks_per_window: self.quota_tasks_per_window,
                    patch_groups_per_baseline: self.quota_patch_groups_per_baseline,
                },
            },
            edge: EdgeSettings {
                ssm_endpoint: self.ssm_endpoint,
                sts_endpoint: self.sts_endpoint,
                max_attempts: self.max_attempts,
                calls_per_second: self.rate_limit,
                session_name: session_name(&identity),
                ..EdgeSettings::default()
            },
            concurrency: self.concurrency,
        })
    }
}

#[derive(Args)]
pub struct PlanArgs {
    /// A directory of manifests (or a single file), as kubectl apply -f takes them.
    #[arg(short = 'f', long = "filename")]
    pub path: PathBuf,
    /// Also read SSM at this endpoint and print the changes the controller would apply.
    #[arg(long)]
    pub against: Option<String>,
    /// The cluster identity whose objects count as patchfleet's (with --against).
    #[arg(long, env = "PATCHFLEET_CLUSTER_ID", default_value = "plan", value_parser = parse_cluster_id)]
    pub cluster_id: String,
    /// STS endpoint for --against (default: the same as --against).
    #[arg(long)]
    pub sts_endpoint: Option<String>,
    /// `text` for people; `json` for programs: per account-region the problems and the
    /// operations, each as the controller's JSON log writes it (`write`).
    #[arg(long, value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
}

/// `patchfleet dashboard`: a read-only web server over the statuses, with per-instance
/// detail read from SSM on demand (docs/dashboard.md).
#[derive(Args)]
pub struct DashboardArgs {
    /// Address of the pages, `/api/...`, /healthz and /readyz (plain HTTP: TLS belongs to
    /// the Ingress or `kubectl port-forward` in front of it).
    #[arg(
        long,
        env = "PATCHFLEET_DASHBOARD_HTTP_ADDRESS",
        default_value = "0.0.0.0:8080"
    )]
    pub http_address: SocketAddr,
    /// SSM endpoint override, as for `patchfleet run`.
    #[arg(long, env = "PATCHFLEET_SSM_ENDPOINT")]
    pub ssm_endpoint: Option<String>,
    /// STS endpoint override, as for `patchfleet run`.
    #[arg(long, env = "PATCHFLEET_STS_ENDPOINT")]
    pub sts_endpoint: Option<String>,
    /// SSM calls per second per account for per-instance detail (its own budget, beside
    /// the controller's `--rate-limit`: keep the two together under SSM's quota).
    #[arg(long, env = "PATCHFLEET_DASHBOARD_RATE_LIMIT", default_value_t = 2.0)]
    pub rate_limit: f64,
    /// Attempts per SSM or STS call, first one included.
    #[arg(long, env = "PATCHFLEET_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
    /// The controller's `--compliance-interval`: figures older than two of them are
    /// marked stale.
    #[arg(long, env = "PATCHFLEET_COMPLIANCE_INTERVAL", default_value = "15m", value_parser = parse_duration)]
    pub compliance_interval: Duration,
    /// How often an open page asks whether what it shows changed (0: never).
    #[arg(long, env = "PATCHFLEET_DASHBOARD_REFRESH_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub refresh_interval: Duration,
    /// How long per-instance detail read from SSM is served again without a call.
    #[arg(long, env = "PATCHFLEET_DASHBOARD_CACHE_TTL", default_value = "30s", value_parser = parse_duration)]
    pub cache_ttl: Duration,
    /// How long a TokenReview or SubjectAccessReview answer is reused.
    #[arg(long, env = "PATCHFLEET_DASHBOARD_AUTH_CACHE_TTL", default_value = "10s", value_parser = parse_duration)]
    pub auth_cache_ttl: Duration,
    /// Log format: `json` for a log collector.
    #[arg(
        long,
        env = "PATCHFLEET_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

impl DashboardArgs {
    /// The SSM edge's settings: the controller's, with the dashboard's own rate limit.
    pub fn edge_settings(&self) -> EdgeSettings {
        EdgeSettings {
            ssm_endpoint: self.ssm_endpoint.clone(),
            sts_endpoint: self.sts_endpoint.clone(),
            max_attempts: self.max_attempts,
            calls_per_second: self.rate_limit,
            session_name: session_name(&format!("dashboard-{}", default_identity())),
            ..EdgeSettings::default()
        }
    }
}

/// `patchfleet enroll`: the enrollment server (docs/enrollment.md).
#[derive(Args, Clone, Debug)]
pub struct EnrollArgs {
    /// Address of `POST /v1/enroll` and `GET /v1/nonce`, served over TLS.
    #[arg(
        long,
        env = "PATCHFLEET_ENROLL_HTTPS_ADDRESS",
        default_value = "0.0.0.0:8443"
    )]
    pub https_address: SocketAddr,
    /// The server's certificate chain (PEM), such as a Secret's `tls.crt`; read again when
    /// the file changes (cert-manager renewals need no restart).
    #[arg(long, env = "PATCHFLEET_ENROLL_TLS_CERT")]
    pub tls_cert: PathBuf,
    /// The certificate's private key (PEM), such as a Secret's `tls.key`.
    #[arg(long, env = "PATCHFLEET_ENROLL_TLS_KEY")]
    pub tls_key: PathBuf,
    /// Address of /metrics, /healthz and /readyz (plain HTTP, for the kubelet and
    /// Prometheus).
    #[arg(
        long,
        env = "PATCHFLEET_ENROLL_HTTP_ADDRESS",
        default_value = "0.0.0.0:8080"
    )]
    pub http_address: SocketAddr,
    /// The audience Google Cloud and VMware tokens must be issued for: this server's URL
    /// as machines call it, such as `https://enroll.example.com`.
    #[arg(long, env = "PATCHFLEET_ENROLL_AUDIENCE")]
    pub audience: String,
    /// This controller's cluster identity, as `patchfleet run --cluster-id`: written on
    /// every activation (and so on its node), which the controller only then manages.
    #[arg(long, env = "PATCHFLEET_CLUSTER_ID", value_parser = parse_cluster_id)]
    pub cluster_id: String,
    /// More AWS public certificates (PEM) that sign EC2 instance identity documents, beside
    /// the ones built in: a region added after this release, say. Repeatable.
    #[arg(
        long = "aws-certificates",
        env = "PATCHFLEET_ENROLL_AWS_CERTIFICATES",
        value_delimiter = ','
    )]
    pub aws_certificates: Vec<PathBuf>,
    /// Trust only `--aws-certificates`, not the built-in ones (tests, air-gapped partitions).
    #[arg(long, env = "PATCHFLEET_ENROLL_NO_BUILTIN_AWS_CERTIFICATES")]
    pub no_builtin_aws_certificates: bool,
    /// Where Google publishes the keys of its instance identity tokens (JWKS); `file://`
    /// reads a file instead.
    #[arg(
        long,
        env = "PATCHFLEET_ENROLL_GCP_JWKS_URL",
        default_value = "https://www.googleapis.com/oauth2/v3/certs"
    )]
    pub gcp_jwks_url: String,
    /// How long fetched Google keys are used before they are fetched again (a token signed
    /// by a key not yet seen fetches them at once, at most once a minute).
    #[arg(long, env = "PATCHFLEET_ENROLL_GCP_JWKS_REFRESH", default_value = "1h", value_parser = parse_duration)]
    pub gcp_jwks_refresh: Duration,
    /// Root certificates (PEM) an Azure attested document's signer must chain to:
    /// Microsoft's roots for the Azure cloud in use. Without it, Azure machines are refused.
    #[arg(long, env = "PATCHFLEET_ENROLL_AZURE_ROOTS")]
    pub azure_roots: Option<PathBuf>,
    /// Intermediate certificates (PEM) for that chain, when the document does not carry them.
    #[arg(long, env = "PATCHFLEET_ENROLL_AZURE_INTERMEDIATES")]
    pub azure_intermediates: Option<PathBuf>,
    /// The names an Azure attested document's signing certificate may have (`*.` allows
    /// any subdomain, as Azure's regional signers are).
    #[arg(
        long,
        env = "PATCHFLEET_ENROLL_AZURE_SIGNER_NAMES",
        value_delimiter = ',',
        default_value = "metadata.azure.com,*.metadata.azure.com"
    )]
    pub azure_signer_names: Vec<String>,
    /// A vCenter's signer public key (PEM): `VCENTER=FILE`, repeatable.
    #[arg(long = "vmware-key", env = "PATCHFLEET_ENROLL_VMWARE_KEYS", value_delimiter = ',', value_parser = parse_vmware_key)]
    pub vmware_keys: Vec<(String, PathBuf)>,
    /// The secret (at least 32 bytes) every replica signs and checks Azure nonces with,
    /// such as a mounted Secret's key. Without it, Azure machines are refused.
    #[arg(long, env = "PATCHFLEET_ENROLL_NONCE_KEY_FILE")]
    pub nonce_key_file: Option<PathBuf>,
    /// The namespace the server's Events are written in (the Pod's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// The Pod the refusal Events are about (the downward API's metadata.name).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// SSM endpoint override, as for `patchfleet run`.
    #[arg(long, env = "PATCHFLEET_SSM_ENDPOINT")]
    pub ssm_endpoint: Option<String>,
    /// STS endpoint override, as for `patchfleet run`.
    #[arg(long, env = "PATCHFLEET_STS_ENDPOINT")]
    pub sts_endpoint: Option<String>,
    /// SSM calls per second per account (CreateActivation), the server's own budget.
    #[arg(long, env = "PATCHFLEET_ENROLL_RATE_LIMIT", default_value_t = 5.0)]
    pub rate_limit: f64,
    /// Attempts per SSM or STS call, first one included.
    #[arg(long, env = "PATCHFLEET_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
    /// Log format: `json` for a log collector.
    #[arg(
        long,
        env = "PATCHFLEET_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

impl EnrollArgs {
    /// The SSM edge's settings, with the server's own rate limit and session name.
    pub fn edge_settings(&self) -> EdgeSettings {
        EdgeSettings {
            ssm_endpoint: self.ssm_endpoint.clone(),
            sts_endpoint: self.sts_endpoint.clone(),
            max_attempts: self.max_attempts,
            calls_per_second: self.rate_limit,
            session_name: session_name(&format!("enroll-{}", default_identity())),
            ..EdgeSettings::default()
        }
    }
}

fn parse_vmware_key(value: &str) -> Result<(String, PathBuf), String> {
    match value.split_once('=') {
        Some((vcenter, file)) if !vcenter.is_empty() && !file.is_empty() => {
            Ok((vcenter.to_ascii_lowercase(), PathBuf::from(file)))
        }
        _ => Err(format!("expected VCENTER=FILE, got {value:?}")),
    }
}

/// `patchfleet report --instances` and `--node`: where the dashboard answers.
#[derive(Args, Clone, Debug)]
pub struct DashboardClientArgs {
    /// The dashboard's base URL (`kubectl -n patchfleet port-forward
    /// svc/patchfleet-dashboard 8080:80` makes the default one answer).
    #[arg(
        long,
        env = "PATCHFLEET_DASHBOARD_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub dashboard_url: String,
    /// The bearer token to present; default: the kubeconfig's user token.
    #[arg(long, env = "PATCHFLEET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Args)]
pub struct ReportArgs {
    /// Only the PatchGroups and MaintenanceWindows of this namespace (SystemAccounts are
    /// cluster-scoped: all of them are listed).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// `text` tables for people; `json` for programs.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportOutput::Text)]
    pub output: ReportOutput,
    /// One group's nodes in one account-region, read from SSM through the dashboard:
    /// `SYSTEMACCOUNT/REGION/PATCHGROUP` (the PatchGroup of `--namespace`).
    #[arg(
        long,
        value_name = "ACCOUNT/REGION/GROUP",
        conflicts_with = "node",
        requires = "namespace"
    )]
    pub instances: Option<String>,
    /// One node's patches, read from SSM through the dashboard:
    /// `SYSTEMACCOUNT/REGION/INSTANCE-ID` (an id names a node only within an account-region).
    #[arg(long, value_name = "ACCOUNT/REGION/ID")]
    pub node: Option<String>,
    #[command(flatten)]
    pub dashboard: DashboardClientArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportOutput {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanOutput {
    Text,
    Json,
}

/// The cluster id becomes a tag value: AWS allows 1-256 of letters, digits, spaces and
/// `_.:/=+-@` (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Tag.html>).
fn parse_cluster_id(value: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_alphanumeric() || " _.:/=+-@".contains(c);
    if value.is_empty() || value.chars().count() > 256 || !value.chars().all(allowed) {
        return Err("1-256 letters, digits, spaces or _.:/=+-@".to_owned());
    }
    Ok(value.to_owned())
}

/// $POD_NAME in a cluster; elsewhere the host name and process id, so that two processes
/// on one machine are two candidates.
fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME") {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "patchfleet".to_owned());
    format!("{host}-{}", std::process::id())
}

/// The AssumeRole session name, so that CloudTrail tells which replica acted: the identity
/// reduced to what AWS allows (2-64 of letters, digits and `=,.@_-`,
/// <https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html>).
fn session_name(identity: &str) -> String {
    let cleaned: String = identity
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "=,.@_-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if cleaned.len() < 2 {
        "patchfleet".to_owned()
    } else {
        cleaned
    }
}

/// Plain seconds (`30`), or a duration as humantime reads it: `90s`, `5m`, `3h`, `1d`,
/// `1h30m`. Clap names the flag in front of the error.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse()
            .map(Duration::from_secs)
            .map_err(|e| format!("'{value}': {e}"));
    }
    humantime::parse_duration(value).map_err(|e| {
        format!("'{value}': {e} (expected plain seconds or a number with a unit: 90s, 5m, 3h, 1d)")
    })
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_runtime=warn,aws=warn"));
    // Colours only for a person at a terminal, never into a file or a log collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("3h"), Ok(Duration::from_secs(10_800)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 15s "), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("5 minutes"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("99999999999999999999").is_err());
        let error = parse_duration("5x").expect_err("unknown unit");
        assert!(error.contains("'5x'") && error.contains("5m"), "{error}");
    }

    /// Clap names the flag and the value when a duration does not parse.
    #[test]
    fn a_bad_duration_names_the_flag_and_the_value() {
        #[derive(clap::Parser)]
        struct Run {
            #[command(flatten)]
            args: RunArgs,
        }
        let error = <Run as clap::Parser>::try_parse_from([
            "patchfleet",
            "--cluster-id",
            "test",
            "--resync",
            "5x",
        ])
        .err()
        .expect("rejected")
        .to_string();
        assert!(
            error.contains("--resync") && error.contains("5x"),
            "{error}"
        );
    }

    #[test]
    fn session_names_are_what_sts_accepts() {
        assert_eq!(
            session_name("patchfleet-7d9f-abcde"),
            "patchfleet-7d9f-abcde"
        );
        assert_eq!(session_name("host name/1"), "host-name-1");
        assert_eq!(session_name("x"), "patchfleet");
        assert_eq!(session_name(&"a".repeat(80)).len(), 64);
    }

    #[test]
    fn cluster_ids_are_tag_values() {
        assert!(parse_cluster_id("prod-eu-1").is_ok());
        assert!(parse_cluster_id("").is_err());
        assert!(parse_cluster_id("a#b").is_err());
    }
}
