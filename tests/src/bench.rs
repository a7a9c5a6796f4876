//! The scale benchmark (`scripts/bench ACCOUNTS [REGIONS]`, and with a small N the suite's
//! `scale` test): a control plane of its own, the SSM/STS simulator in this process serving
//! every account (each with the role its SystemAccount assumes), and `patchfleet run` with
//! the chart's defaults. The workload is the managed-service provider's day one: N
//! SystemAccounts in R regions, the three default policies of examples/defaults (24
//! baselines per account-region), their three PatchGroups, and three Scheduled windows with
//! a Scan and an Install task: 60 SSM objects per account-region.
//!
//! The phases, each measured by the simulator's exact counters, the controller's /metrics
//! and the kube-apiserver's own /metrics (`apiserver_request_total`):
//! 1. converge: every SystemAccount applied at once, until every resource is Ready and the
//!    controller falls quiet;
//! 2. steady: a quiet window of the given length;
//! 3. wake: a label on the defaults' namespace wakes every account (one cheap pass each);
//! 4. edit: one approval rule of one policy changes, until every account-region has the
//!    updated baseline;
//! 5. ceiling: plain aws-sdk-ssm clients hammer the same simulator with a cheap call.
//!
//! [`run`] returns a [`Report`]: the test asserts its counts, the `bench` binary prints
//! it as `key=value` lines and appends it to docs/performance.md.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ssm_sim::config::{AccountConfig, RoleConfig};

use crate::control_plane::{self, ControlPlane};
use crate::stack::{BASE_ACCESS_KEY, http_get};

/// The regions account-regions are spread over, in order (REGIONS takes the first ones).
pub const REGION_NAMES: [&str; 8] = [
    "eu-west-1",
    "us-east-1",
    "eu-central-1",
    "us-west-2",
    "ap-southeast-1",
    "eu-north-1",
    "ca-central-1",
    "ap-northeast-1",
];

/// The namespace of examples/defaults (its policies, groups, and the benchmark's windows).
pub const DEFAULTS_NAMESPACE: &str = "patchfleet-defaults";
/// The patch ages of examples/defaults: one PatchPolicy, PatchGroup and window each.
pub const AGES: [&str; 3] = ["early", "on-time", "late"];
/// The cluster id of the benchmark's controller.
pub const CLUSTER_ID: &str = "bench";

/// The SSM objects one account-region holds once converged, by kind.
pub mod shape {
    /// Operating systems per default policy.
    pub const OPERATING_SYSTEMS: u64 = 8;
    /// Default policies (early, on-time, late), one baseline per operating system each.
    pub const POLICIES: u64 = 3;
    pub const BASELINES: u64 = POLICIES * OPERATING_SYSTEMS;
    /// Each PatchGroup registered to its policy's eight baselines.
    pub const REGISTRATIONS: u64 = POLICIES * OPERATING_SYSTEMS;
    /// One Scheduled window per age, targeting that age's group.
    pub const WINDOWS: u64 = 3;
    pub const TARGETS: u64 = WINDOWS;
    /// Scan and Install in each window.
    pub const TASKS: u64 = 2 * WINDOWS;
    /// Every account names the on-time policy its `defaultPatchPolicy`: its eight
    /// baselines are also each operating system's default (RegisterDefaultPatchBaseline).
    pub const DEFAULTS: u64 = OPERATING_SYSTEMS;
    pub const OBJECTS: u64 = BASELINES + REGISTRATIONS + WINDOWS + TARGETS + TASKS + DEFAULTS;
}

/// The simulator's account for the ceiling clients' long-term key (not a workload account).
const CEILING_ACCOUNT: &str = "999999999999";
const CEILING_ACCESS_KEY: &str = "AKIABENCHCEILING0001";
/// How many plain SDK clients the ceiling runs at once (as ssm-sim's throughput bench).
const CEILING_CLIENTS: usize = 32;

/// N SystemAccounts in R regions each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workload {
    pub accounts: usize,
    pub regions: usize,
}

impl Workload {
    pub fn new(accounts: usize, regions: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            (1..=99_999).contains(&accounts),
            "ACCOUNTS must be 1 to 99999, not {accounts}"
        );
        anyhow::ensure!(
            (1..=REGION_NAMES.len()).contains(&regions),
            "REGIONS must be 1 to {}, not {regions}",
            REGION_NAMES.len()
        );
        Ok(Workload { accounts, regions })
    }

    pub fn account_regions(&self) -> u64 {
        (self.accounts * self.regions) as u64
    }

    pub fn objects(&self) -> u64 {
        self.account_regions() * shape::OBJECTS
    }

    pub fn region_names(&self) -> &'static [&'static str] {
        &REGION_NAMES[..self.regions]
    }

    /// The 12-digit id of account `index`.
    pub fn account_id(index: usize) -> String {
        format!("{:012}", 300_000_000_000_u64 + index as u64)
    }

    pub fn account_name(index: usize) -> String {
        format!("bench-{index:05}")
    }

    pub fn external_id(index: usize) -> String {
        format!("bench-ext-{index:05}")
    }

    pub fn account_ids(&self) -> BTreeSet<String> {
        (0..self.accounts).map(Self::account_id).collect()
    }

    /// The simulator's configuration: every account with the role its SystemAccount assumes
    /// (and that role's external id), and the ceiling clients' key in an account of its own.
    pub fn sim_config(&self) -> ssm_sim::Config {
        let accounts = (0..self.accounts)
            .map(|i| AccountConfig {
                id: Self::account_id(i),
                roles: vec![RoleConfig {
                    name: "patchfleet".into(),
                    external_id: Some(Self::external_id(i)),
                }],
            })
            .collect();
        let mut config = ssm_sim::Config {
            accounts,
            ..ssm_sim::Config::default()
        };
        config
            .access_keys
            .insert(CEILING_ACCESS_KEY.into(), CEILING_ACCOUNT.into());
        config
    }

    /// The SystemAccounts, admitting the defaults' namespace by its label.
    pub fn accounts_yaml(&self) -> String {
        let regions = self.region_names().join(", ");
        let mut out = String::new();
        for i in 0..self.accounts {
            let id = Self::account_id(i);
            let _ = write!(
                out,
                "---\napiVersion: patchfleet.io/v1alpha1\nkind: SystemAccount\nmetadata:\n  \
                 name: {name}\n  labels:\n    patchfleet.io/bench: \"true\"\nspec:\n  \
                 accountId: \"{id}\"\n  roleArn: arn:aws:iam::{id}:role/patchfleet\n  \
                 externalId: {external}\n  regions: [{regions}]\n  platform: aws\n  \
                 namespaceSelector:\n    matchLabels:\n      patchfleet.io/defaults: \"true\"\n  \
                 patchGroupGrants:\n    - namespace: patchfleet-defaults\n      \
                 values: [early, on-time, late]\n  defaultPatchPolicy:\n    \
                 namespace: patchfleet-defaults\n    name: on-time\n",
                name = Self::account_name(i),
                external = Self::external_id(i),
            );
        }
        out
    }
}

/// Three Scheduled windows, one per age, each targeting its age's group with a Scan and an
/// Install task.
pub fn windows_yaml() -> String {
    let mut out = String::new();
    for (day, age) in AGES.iter().enumerate() {
        let _ = write!(
            out,
            r#"---
apiVersion: patchfleet.io/v1alpha1
kind: MaintenanceWindow
metadata:
  name: {age}
  namespace: {DEFAULTS_NAMESPACE}
spec:
  strategy: Scheduled
  schedule: cron(0 2 ? * SUN#{week} *)
  scheduleTimezone: Etc/UTC
  duration: 4
  cutoff: 1
  targets:
    patchGroups: [{age}]
  tasks:
    - name: scan
      operation: Scan
      priority: 1
    - name: install
      operation: Install
      rebootOption: RebootIfNeeded
      maxConcurrency: "10%"
      maxErrors: "5%"
      priority: 2
"#,
            week = day + 1,
        );
    }
    out
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// A short name for temporary files and the control plane's state directory.
    pub name: String,
    pub workload: Workload,
    /// The `patchfleet` binary (release for the benchmark, debug for the suite).
    pub patchfleet: PathBuf,
    /// Flags added to `patchfleet run` (none for the benchmark: the chart's defaults).
    pub controller_args: Vec<String>,
    /// How long the steady-state window lasts.
    pub steady: Duration,
    /// How long the plain clients hammer the simulator (zero: skipped).
    pub ceiling: Duration,
    /// No SSM call and no reconcile for this long: the controller is quiet.
    pub quiet: Duration,
    /// The longest any phase may take.
    pub timeout: Duration,
    /// Progress lines on stderr.
    pub progress: bool,
    /// At the end, delete every SystemAccount and read what the controller still keeps
    /// of them (the suite; the benchmark leaves them).
    pub delete_accounts: bool,
}

/// Counts of one phase.
#[derive(Clone, Debug, Default)]
pub struct Phase {
    /// Wall time of the phase.
    pub seconds: f64,
    /// Simulator calls by operation (SSM and STS, the workload's accounts and the
    /// controller's own identity; the ceiling clients are not counted).
    pub calls: BTreeMap<String, u64>,
    /// Calls answered with an error, as `Operation/Code`.
    pub failed: BTreeMap<String, u64>,
    /// The controller's finished reconciles by kind.
    pub reconciles: BTreeMap<String, u64>,
    /// kube-apiserver requests of this phase.
    pub kube: KubeRequests,
    /// The controller's CPU time in the phase.
    pub cpu_seconds: f64,
}

/// kube-apiserver requests (its `apiserver_request_total`), resource requests only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeRequests {
    /// Writes of a `status` subresource, by resource (`systemaccounts`, ...).
    pub status_writes: BTreeMap<String, u64>,
    /// Writes of Events (core or events.k8s.io).
    pub event_writes: u64,
    /// Every write (POST, PUT, PATCH, APPLY, DELETE), by resource.
    pub writes: BTreeMap<String, u64>,
    /// GET and LIST requests (watches not counted).
    pub reads: u64,
}

impl Phase {
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// SSM calls only (STS's AssumeRole and GetCallerIdentity left out).
    pub fn ssm_calls(&self) -> u64 {
        self.calls
            .iter()
            .filter(|(op, _)| !is_sts(op))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn ssm_writes(&self) -> u64 {
        self.calls
            .iter()
            .filter(|(op, _)| !is_read(op))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn ssm_reads(&self) -> u64 {
        self.calls
            .iter()
            .filter(|(op, _)| is_read(op) && !is_sts(op))
            .map(|(_, n)| n)
            .sum()
    }

    /// The phase's calls (in total and by operation), failures and reconciles, as
    /// `key=value` pairs named after `phase`.
    fn count_lines(&self, phase: &str, put: &mut impl FnMut(String, String)) {
        put(format!("{phase}_calls"), self.total_calls().to_string());
        for (op, n) in &self.calls {
            put(format!("{phase}_calls.{op}"), n.to_string());
        }
        for (what, n) in &self.failed {
            put(format!("{phase}_failed.{what}"), n.to_string());
        }
        for (kind, n) in &self.reconciles {
            put(format!("{phase}_reconciles.{kind}"), n.to_string());
        }
    }

    pub fn calls_of(&self, operation: &str) -> u64 {
        self.calls.get(operation).copied().unwrap_or(0)
    }

    pub fn reconciles_of(&self, kind: &str) -> u64 {
        self.reconciles.get(kind).copied().unwrap_or(0)
    }
}

/// The machine the run took place on.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    pub cpus: usize,
    pub memory_gib: f64,
    pub cpu_model: String,
    pub date: String,
    pub commit: String,
}

impl Machine {
    pub fn probe() -> Self {
        let cpus = std::thread::available_parallelism().map_or(0, usize::from);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let command_line = |program: &str, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .current_dir(crate::repo_root())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default()
        };
        let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
        let mut commit = command_line("git", &["rev-parse", "--short", "HEAD"]);
        if !command_line("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty() {
            commit.push_str(" (with uncommitted changes)");
        }
        Machine {
            cpus,
            memory_gib: memory_kib / (1024.0 * 1024.0),
            cpu_model,
            date,
            commit,
        }
    }
}

/// Everything one run measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub workload: Option<Workload>,
    pub machine: Machine,
    pub controller: String,
    pub controller_args: Vec<String>,
    pub converge: Phase,
    /// Seconds from applying the SystemAccounts to the last SSM write of convergence.
    pub converge_last_write_seconds: f64,
    /// Seconds from applying the SystemAccounts until every resource was Ready.
    pub converge_ready_seconds: f64,
    pub steady: Phase,
    pub wake: Phase,
    pub edit: Phase,
    /// Seconds from the edit until each account-region had its UpdatePatchBaseline, sorted.
    pub edit_latencies: Vec<f64>,
    /// Successful UpdatePatchBaseline calls of the edit, per (account id, region).
    pub edit_updates: BTreeMap<(String, String), u64>,
    /// AssumeRole calls over the whole run.
    pub assume_role_calls: u64,
    /// GetCallerIdentity calls over the whole run.
    pub caller_identity_calls: u64,
    pub rss_converged_bytes: u64,
    pub rss_steady_bytes: u64,
    pub rss_peak_bytes: u64,
    pub cpu_total_seconds: f64,
    /// Calls per second the plain clients achieved (None when skipped).
    pub ceiling_calls_per_second: Option<f64>,
    /// With `delete_accounts`: the deletion's calls, and what the controller's gauges
    /// say it keeps afterwards.
    pub delete: Option<Deletion>,
    /// One compliance pass over every account-region (after a restart with it on).
    pub compliance: Option<CompliancePhase>,
    /// A PatchRollout's first and second release reaching every account-region.
    pub rollout: Option<RolloutPhase>,
}

/// A one-stage PatchRollout over the on-time group: its first release, then a second.
#[derive(Clone, Debug, Default)]
pub struct RolloutPhase {
    /// From applying the rollout until the controller fell quiet.
    pub first: Phase,
    /// From a new release token until the controller fell quiet.
    pub next: Phase,
    /// Seconds until every account-region had the first release's baselines.
    pub first_seconds: f64,
    /// Seconds until every account-region had the next release's baselines.
    pub next_seconds: f64,
    /// The controller's resident memory afterwards.
    pub rss_bytes: u64,
}

/// The operating systems of the on-time policy a stage holds back (its Ubuntu and Debian
/// baselines approve as released: docs/rollout.md).
pub const STAGED_OPERATING_SYSTEMS: u64 = shape::OPERATING_SYSTEMS - 2;

/// The compliance phase: the controller's own figures for its first pass.
#[derive(Clone, Debug, Default)]
pub struct CompliancePhase {
    /// `patchfleet_compliance_pass_seconds`: the pass over every account-region.
    pub seconds: f64,
    /// `patchfleet_compliance_pass_calls`.
    pub calls: u64,
    /// What docs/compliance.md's formula gives for the workload.
    pub formula_calls: u64,
    /// `patchfleet_nodes{figure="instances"}`: the nodes the pass counted.
    pub instances: u64,
    /// The controller's resident memory after the pass.
    pub rss_bytes: u64,
}

/// Every SystemAccount deleted, and what the controller kept of them afterwards.
#[derive(Clone, Debug, Default)]
pub struct Deletion {
    pub phase: Phase,
    /// `patchfleet_cached_accounts` before the deletion.
    pub cached_accounts_before: f64,
    /// `patchfleet_cached_accounts`: accounts whose credentials and clients are kept.
    pub cached_accounts: f64,
    /// Sum of `patchfleet_account_regions`: account-regions whose last pass is kept.
    pub account_regions: f64,
    pub rss_bytes: u64,
}

/// Runs the benchmark.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let workload = options.workload;
    let say = |what: &str| {
        if options.progress {
            eprintln!("bench: {what}");
        }
    };
    say(&format!(
        "starting a control plane, the simulator with {} accounts, and {}",
        workload.accounts,
        options.patchfleet.display()
    ));
    let stack = BenchStack::start(options).await?;
    let result = measure(options, &stack, &say).await;
    if result.is_err() {
        eprintln!(
            "bench: the controller's log ({}) ends with:\n{}",
            stack.log.display(),
            read_tail(&stack.log, 40)
        );
    }
    result
}

async fn measure(
    options: &Options,
    stack: &BenchStack,
    say: &impl Fn(&str),
) -> anyhow::Result<Report> {
    let workload = options.workload;
    let mut report = Report {
        workload: Some(workload),
        machine: Machine::probe(),
        controller: options.patchfleet.display().to_string(),
        controller_args: options.controller_args.clone(),
        ..Report::default()
    };

    // The intent first, then the accounts at once: each account's first pass sees it all.
    let dir = std::env::temp_dir().join(format!(
        "patchfleet-{}-{}",
        options.name,
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).context("creating the manifest directory")?;
    let windows = dir.join("windows.yaml");
    let accounts = dir.join("accounts.yaml");
    std::fs::write(&windows, windows_yaml()).context("writing the windows")?;
    std::fs::write(&accounts, workload.accounts_yaml()).context("writing the accounts")?;
    say("applying examples/defaults and three Scheduled windows");
    stack
        .kubectl(&[
            "apply".into(),
            "--server-side".into(),
            "-f".into(),
            crate::repo_root().join("examples/defaults").into(),
        ])
        .await?;
    stack
        .kubectl(&[
            "apply".into(),
            "--server-side".into(),
            "-f".into(),
            windows.clone().into(),
        ])
        .await?;

    say(&format!(
        "applying {} SystemAccounts ({} account-regions, {} SSM objects to create)",
        workload.accounts,
        workload.account_regions(),
        workload.objects()
    ));
    let before = stack.sample().await?;
    let started = Instant::now();
    stack
        .kubectl(&[
            "apply".into(),
            "--server-side".into(),
            "-f".into(),
            accounts.clone().into(),
        ])
        .await?;
    let _ = std::fs::remove_dir_all(&dir);
    let last_write = stack
        .wait_converged(workload, started, options.timeout)
        .await?;
    report.converge_last_write_seconds = last_write.duration_since(started).as_secs_f64();
    report.converge_ready_seconds = started.elapsed().as_secs_f64();
    say(&format!(
        "every resource Ready after {:.1} s; waiting until the controller is quiet",
        report.converge_ready_seconds
    ));
    stack.wait_quiet(options.quiet, options.timeout).await?;
    let converged = stack.sample().await?;
    report.converge = converged.since(&before, report.converge_ready_seconds);
    report.rss_converged_bytes = converged.process.rss_bytes;

    say(&format!(
        "steady state for {} s",
        options.steady.as_secs_f64()
    ));
    let steady_from = Instant::now();
    let deadline = steady_from + options.steady;
    while Instant::now() < deadline {
        stack.check_controller()?;
        tokio::time::sleep(
            deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1)),
        )
        .await;
    }
    let steady = stack.sample().await?;
    report.steady = steady.since(&converged, steady_from.elapsed().as_secs_f64());
    report.rss_steady_bytes = steady.process.rss_bytes;

    say("waking every account (a label on the defaults' namespace): one cheap pass each");
    let wake_from = Instant::now();
    stack
        .kubectl(&[
            "label".into(),
            "namespace".into(),
            DEFAULTS_NAMESPACE.into(),
            "--overwrite".into(),
            "patchfleet.io/bench-wake=1".into(),
        ])
        .await?;
    let accounts_before = steady.reconciles.get("SystemAccount").copied().unwrap_or(0);
    let target = accounts_before + workload.accounts as u64;
    stack
        .wait_until(
            "every account passed once after the wake",
            options.timeout,
            |s| s.reconciles.get("SystemAccount").copied().unwrap_or(0) >= target,
        )
        .await?;
    stack.wait_quiet(options.quiet, options.timeout).await?;
    let woken = stack.sample().await?;
    report.wake = woken.since(&steady, wake_from.elapsed().as_secs_f64());

    say("editing one approval rule of PatchPolicy early");
    let updates_before = stack.updates_by_account_region();
    let edit_from = Instant::now();
    stack
        .kubectl(&[
            "patch".into(),
            "patchpolicy".into(),
            "early".into(),
            "-n".into(),
            DEFAULTS_NAMESPACE.into(),
            "--type".into(),
            "json".into(),
            "-p".into(),
            r#"[{"op":"replace","path":"/spec/baselines/0/approvalRules/0/approveAfterDays","value":1}]"#
                .into(),
        ])
        .await?;
    let mut reached: BTreeMap<(String, String), f64> = BTreeMap::new();
    let edit_deadline = edit_from + options.timeout;
    while (reached.len() as u64) < workload.account_regions() {
        if Instant::now() > edit_deadline {
            bail!(
                "the edit reached {} of {} account-regions within {:?}",
                reached.len(),
                workload.account_regions(),
                options.timeout
            );
        }
        stack.check_controller()?;
        let now = edit_from.elapsed().as_secs_f64();
        for (key, count) in stack.updates_by_account_region() {
            if count > updates_before.get(&key).copied().unwrap_or(0) {
                reached.entry(key).or_insert(now);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut latencies: Vec<f64> = reached.into_values().collect();
    latencies.sort_by(f64::total_cmp);
    report.edit_latencies = latencies;
    stack.wait_quiet(options.quiet, options.timeout).await?;
    let edited = stack.sample().await?;
    report.edit = edited.since(&woken, edit_from.elapsed().as_secs_f64());
    report.edit_updates = stack
        .updates_by_account_region()
        .into_iter()
        .map(|(key, count)| {
            let delta = count - updates_before.get(&key).copied().unwrap_or(0);
            (key, delta)
        })
        .filter(|(_, delta)| *delta > 0)
        .collect();

    report.assume_role_calls = edited.calls.get("AssumeRole").copied().unwrap_or(0);
    report.caller_identity_calls = edited.calls.get("GetCallerIdentity").copied().unwrap_or(0);
    report.rss_peak_bytes = edited.process.peak_rss_bytes;
    report.cpu_total_seconds = edited.process.cpu_seconds;

    say(&format!(
        "restarting the controller with its compliance pass on: one pass over {} account-regions of {COMPLIANCE_NODES} nodes each",
        workload.account_regions()
    ));
    report.compliance = Some(measure_compliance(options, stack).await?);

    say(&format!(
        "a PatchRollout over the on-time group: a release, then the next, into {} account-regions",
        workload.account_regions()
    ));
    report.rollout = Some(measure_rollout(options, stack).await?);

    if options.delete_accounts {
        say("deleting every SystemAccount: each is emptied, then forgotten");
        let before_delete = stack.sample().await?;
        let before = stack.controller_metrics().await?;
        let cached_accounts_before = prometheus_sum(&before, "patchfleet_cached_accounts", &[]);
        let from = Instant::now();
        stack
            .kubectl(&[
                "delete".into(),
                "systemaccounts".into(),
                "--all".into(),
                "--wait=false".into(),
            ])
            .await?;
        let deadline = from + options.timeout;
        loop {
            stack.check_controller()?;
            let left = stack
                .kubectl(&[
                    "get".into(),
                    "systemaccounts".into(),
                    "-o".into(),
                    "name".into(),
                ])
                .await?;
            if left.trim().is_empty() {
                break;
            }
            if Instant::now() > deadline {
                bail!("SystemAccounts left after {:?}: {left}", options.timeout);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        stack.wait_quiet(options.quiet, options.timeout).await?;
        // The gauges refresh every 2 s.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let deleted = stack.sample().await?;
        let metrics = stack.controller_metrics().await?;
        report.delete = Some(Deletion {
            phase: deleted.since(&before_delete, from.elapsed().as_secs_f64()),
            cached_accounts_before,
            cached_accounts: prometheus_sum(&metrics, "patchfleet_cached_accounts", &[]),
            account_regions: prometheus_sum(&metrics, "patchfleet_account_regions", &[]),
            rss_bytes: deleted.process.rss_bytes,
        });
    }

    if !options.ceiling.is_zero() {
        say(&format!(
            "the simulator's ceiling: {CEILING_CLIENTS} plain aws-sdk-ssm clients, GetDefaultPatchBaseline, {} s",
            options.ceiling.as_secs_f64()
        ));
        report.ceiling_calls_per_second =
            Some(ceiling(&stack.sim.endpoint_url(), options.ceiling).await?);
    }
    stack.check_controller()?;
    Ok(report)
}

/// Managed nodes put in each account-region for the compliance phase (tagged with the
/// workload's three groups, never scanned).
pub const COMPLIANCE_NODES: usize = 10;

/// One compliance pass over every account-region, after a restart with the pass on
/// (a long interval: exactly one pass in the phase). Its calls and seconds are the
/// controller's own metrics; the calls must equal the documented formula.
async fn measure_compliance(
    options: &Options,
    stack: &BenchStack,
) -> anyhow::Result<CompliancePhase> {
    let workload = options.workload;
    for account in 0..workload.accounts {
        for (r, region) in workload.region_names().iter().enumerate() {
            let instances = (0..COMPLIANCE_NODES)
                .map(|n| ssm_sim::fleet::InstanceSpec {
                    instance_id: format!("i-{account:08x}{r:02x}{n:07x}"),
                    tags: [(
                        "Patch Group".to_owned(),
                        ["early", "on-time", "late"][n % 3].to_owned(),
                    )]
                    .into(),
                    ..ssm_sim::fleet::InstanceSpec::default()
                })
                .collect();
            let spec = ssm_sim::fleet::FleetSpec {
                account_id: Workload::account_id(account),
                region: (*region).to_owned(),
                instances,
            };
            spec.validate(&stack.sim.sim().config.quotas)
                .map_err(|e| anyhow::anyhow!("the bench fleet: {e}"))?;
            ssm_sim::fleet::apply(stack.sim.sim(), &spec);
        }
    }
    stack
        .restart_controller(options, &["--compliance-interval", "1h"])
        .await?;
    let from = Instant::now();
    let deadline = from + options.timeout;
    let metrics = loop {
        stack.check_controller()?;
        let text = stack.controller_metrics().await?;
        if prometheus_sum(&text, "patchfleet_compliance_passes_total", &[]) >= 1.0 {
            break text;
        }
        if Instant::now() > deadline {
            bail!("no compliance pass within {:?}", options.timeout);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Per account-region: N nodes in none of the groups' states (never scanned), 24
    // registrations, 3 groups, 3 windows that never ran (docs/compliance.md).
    let shape = patchfleet_planner::compliance::PassShape {
        nodes: COMPLIANCE_NODES,
        registrations: 24,
        group_states: vec![0; 3],
        other_nodes: COMPLIANCE_NODES,
        planned_windows: 3,
        windows_listed: 3,
        executions_listed: vec![0; 3],
        executions_read: Vec::new(),
    };
    let per_account_region = patchfleet_planner::compliance::calls(&shape) as u64;
    Ok(CompliancePhase {
        seconds: prometheus_sum(&metrics, "patchfleet_compliance_pass_seconds", &[]),
        calls: prometheus_sum(&metrics, "patchfleet_compliance_pass_calls", &[]) as u64,
        formula_calls: per_account_region * workload.account_regions(),
        instances: prometheus_sum(&metrics, "patchfleet_nodes", &[("figure", "instances")]) as u64,
        rss_bytes: stack.process().rss_bytes,
    })
}

/// A one-stage rollout of the on-time policy over its group: the first release gives the
/// group a stage baseline per staged operating system in every account-region (created,
/// the group moved onto it); a new release token replaces them (created, moved, the old
/// ones deleted). Each waits until the simulator counted every CreatePatchBaseline, then
/// until the controller fell quiet.
async fn measure_rollout(options: &Options, stack: &BenchStack) -> anyhow::Result<RolloutPhase> {
    let workload = options.workload;
    let rollout = |token: &str| {
        format!(
            "apiVersion: patchfleet.io/v1alpha1\nkind: PatchRollout\nmetadata:\n  name: on-time\n  \
             namespace: {DEFAULTS_NAMESPACE}\nspec:\n  policyRef: {{name: on-time}}\n  \
             release: {{token: \"{token}\", cutoff: \"2026-11-20\"}}\n  stages:\n    \
             - {{name: all, patchGroups: [on-time]}}\n"
        )
    };
    let file = std::env::temp_dir().join(format!("patchfleet-rollout-{}.yaml", std::process::id()));
    let mut phases = Vec::new();
    for token in ["r1", "r2"] {
        let before = stack.sample().await?;
        let creates = before
            .calls
            .get("CreatePatchBaseline")
            .copied()
            .unwrap_or(0);
        let want = creates + STAGED_OPERATING_SYSTEMS * workload.account_regions();
        std::fs::write(&file, rollout(token)).context("writing the rollout")?;
        let from = Instant::now();
        stack
            .kubectl(&[
                "apply".into(),
                "--server-side".into(),
                "-f".into(),
                file.clone().into(),
            ])
            .await?;
        let deadline = from + options.timeout;
        loop {
            stack.check_controller()?;
            let created = stack
                .calls()
                .0
                .get("CreatePatchBaseline")
                .copied()
                .unwrap_or(0);
            if created >= want {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "release {token}: {created} of {want} CreatePatchBaseline within {:?}",
                    options.timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let reached = from.elapsed().as_secs_f64();
        stack.wait_quiet(options.quiet, options.timeout).await?;
        let after = stack.sample().await?;
        phases.push((after.since(&before, from.elapsed().as_secs_f64()), reached));
    }
    std::fs::remove_file(&file).ok();
    let (next, next_seconds) = phases.pop().context("the next release")?;
    let (first, first_seconds) = phases.pop().context("the first release")?;
    Ok(RolloutPhase {
        first,
        next,
        first_seconds,
        next_seconds,
        rss_bytes: stack.process().rss_bytes,
    })
}

/// Calls per second of plain aws-sdk-ssm clients calling GetDefaultPatchBaseline.
pub async fn ceiling(endpoint: &str, length: Duration) -> anyhow::Result<f64> {
    use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            CEILING_ACCESS_KEY,
            "bench",
            None,
            None,
            "bench",
        ))
        .build();
    let client = aws_sdk_ssm::Client::from_conf(config);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + length;
    let mut tasks = Vec::new();
    for _ in 0..CEILING_CLIENTS {
        let client = client.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                client
                    .get_default_patch_baseline()
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "GetDefaultPatchBaseline: {}",
                            aws_sdk_ssm::error::DisplayErrorContext(&e)
                        )
                    })?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("a ceiling client panicked")??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// The control plane, the simulator and one `patchfleet run`.
struct BenchStack {
    plane: ControlPlane,
    sim: ssm_sim::Server,
    controller: std::sync::Mutex<Child>,
    pid: std::sync::atomic::AtomicU32,
    http: SocketAddr,
    log: PathBuf,
    /// The workload's accounts and the controller's own (it calls AssumeRole there).
    counted: BTreeSet<String>,
    clock_ticks: f64,
}

/// Everything counted at one moment.
#[derive(Clone, Debug, Default)]
struct Sample {
    calls: BTreeMap<String, u64>,
    failed: BTreeMap<String, u64>,
    reconciles: BTreeMap<String, u64>,
    kube: KubeRequests,
    process: ProcessStats,
}

impl Sample {
    fn since(&self, before: &Sample, seconds: f64) -> Phase {
        Phase {
            seconds,
            calls: diff(&self.calls, &before.calls),
            failed: diff(&self.failed, &before.failed),
            reconciles: diff(&self.reconciles, &before.reconciles),
            kube: KubeRequests {
                status_writes: diff(&self.kube.status_writes, &before.kube.status_writes),
                event_writes: self
                    .kube
                    .event_writes
                    .saturating_sub(before.kube.event_writes),
                writes: diff(&self.kube.writes, &before.kube.writes),
                reads: self.kube.reads.saturating_sub(before.kube.reads),
            },
            cpu_seconds: self.process.cpu_seconds - before.process.cpu_seconds,
        }
    }
}

fn diff(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(before.get(k).copied().unwrap_or(0)),
            )
        })
        .filter(|(_, v)| *v > 0)
        .collect()
}

#[derive(Clone, Copy, Debug, Default)]
struct ProcessStats {
    rss_bytes: u64,
    peak_rss_bytes: u64,
    cpu_seconds: f64,
}

impl BenchStack {
    async fn start(options: &Options) -> anyhow::Result<Self> {
        let workload = options.workload;
        let plane = tokio::task::spawn_blocking({
            let name = options.name.clone();
            move || control_plane::dedicated(&name)
        })
        .await??;
        let sim = ssm_sim::Server::start(workload.sim_config(), "127.0.0.1:0".parse()?).await?;
        let endpoint = sim.endpoint_url();
        let log = std::env::temp_dir().join(format!(
            "patchfleet-{}-controller-{}.log",
            options.name,
            std::process::id()
        ));
        let log_file = std::fs::File::create(&log).context("creating the controller log")?;
        let http = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            listener.local_addr()?
        };
        let child = spawn_controller(options, &endpoint, http, &plane.kubeconfig, &log_file, &[])?;
        let pid = child.id();
        let mut counted = workload.account_ids();
        counted.insert(workload.sim_config().default_account);
        let stack = BenchStack {
            plane,
            sim,
            controller: std::sync::Mutex::new(child),
            pid: std::sync::atomic::AtomicU32::new(pid),
            http,
            log,
            counted,
            clock_ticks: clock_ticks(),
        };
        stack.wait_leading().await?;
        Ok(stack)
    }

    /// Ready to measure once it leads (the Lease is free: it takes it at once).
    async fn wait_leading(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.check_controller()?;
            if let Ok(text) = self.controller_metrics().await
                && prometheus_sum(&text, "patchfleet_leader", &[]) >= 1.0
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the controller did not lead within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the controller as Kubernetes does (SIGTERM: it releases the Lease) and starts
    /// it again with `extra` flags after the others, on the same address and log.
    async fn restart_controller(&self, options: &Options, extra: &[&str]) -> anyhow::Result<()> {
        let pid = self.pid.load(std::sync::atomic::Ordering::Relaxed);
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .context("running kill")?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let exited = self
                .controller
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .try_wait()?
                .is_some();
            if exited {
                break;
            }
            if Instant::now() > deadline {
                bail!("the controller did not stop within 60 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log_file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .context("opening the controller log")?;
        let child = spawn_controller(
            options,
            &self.sim.endpoint_url(),
            self.http,
            &self.plane.kubeconfig,
            &log_file,
            extra,
        )?;
        self.pid
            .store(child.id(), std::sync::atomic::Ordering::Relaxed);
        *self
            .controller
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = child;
        self.wait_leading().await
    }

    fn check_controller(&self) -> anyhow::Result<()> {
        let mut child = self
            .controller
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(status) = child.try_wait()? {
            bail!(
                "the controller exited ({status}); its log ends with:\n{}",
                read_tail(&self.log, 40)
            );
        }
        Ok(())
    }

    async fn kubectl(&self, args: &[std::ffi::OsString]) -> anyhow::Result<String> {
        let command = self.plane.kubectl_command(args);
        let output = tokio::process::Command::from(command)
            .output()
            .await
            .context("running kubectl")?;
        if !output.status.success() {
            bail!(
                "kubectl {}: {}",
                args.first()
                    .map(|a| a.to_string_lossy())
                    .unwrap_or_default(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    async fn controller_metrics(&self) -> anyhow::Result<String> {
        let address = self.http;
        let (status, body) =
            tokio::task::spawn_blocking(move || http_get(address, "/metrics")).await??;
        anyhow::ensure!(status == 200, "controller /metrics answered {status}");
        Ok(body)
    }

    /// Calls by operation (and failures) of the counted accounts, from the simulator.
    fn calls(&self) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
        let mut calls = BTreeMap::new();
        let mut failed = BTreeMap::new();
        for count in self.sim.sim().counters.snapshot() {
            if !self.counted.contains(&count.key.account) {
                continue;
            }
            *calls.entry(count.key.operation.clone()).or_insert(0) += count.count;
            if count.key.outcome != "Success" {
                *failed
                    .entry(format!("{}/{}", count.key.operation, count.key.outcome))
                    .or_insert(0) += count.count;
            }
        }
        (calls, failed)
    }

    /// Successful UpdatePatchBaseline calls per (account id, region).
    fn updates_by_account_region(&self) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        for count in self.sim.sim().counters.snapshot() {
            if count.key.operation == "UpdatePatchBaseline" && count.key.outcome == "Success" {
                *out.entry((count.key.account, count.key.region))
                    .or_insert(0) += count.count;
            }
        }
        out
    }

    fn process(&self) -> ProcessStats {
        process_stats(
            self.pid.load(std::sync::atomic::Ordering::Relaxed),
            self.clock_ticks,
        )
    }

    async fn sample(&self) -> anyhow::Result<Sample> {
        let (calls, failed) = self.calls();
        let metrics = self.controller_metrics().await?;
        let apiserver = self
            .kubectl(&["get".into(), "--raw".into(), "/metrics".into()])
            .await?;
        Ok(Sample {
            calls,
            failed,
            reconciles: reconciles_by_kind(&metrics),
            kube: kube_requests(&apiserver),
            process: self.process(),
        })
    }

    /// Waits until every account-region is ready (the controller's gauges) and every
    /// resource is Ready; returns the moment of the last SSM write seen.
    async fn wait_converged(
        &self,
        workload: Workload,
        started: Instant,
        timeout: Duration,
    ) -> anyhow::Result<Instant> {
        let deadline = started + timeout;
        let mut writes = 0;
        let mut last_write = started;
        let mut next_gauges = Instant::now();
        loop {
            self.check_controller()?;
            let now_writes: u64 = self
                .calls()
                .0
                .iter()
                .filter(|(op, _)| !is_read(op))
                .map(|(_, n)| n)
                .sum();
            if now_writes != writes {
                writes = now_writes;
                last_write = Instant::now();
            }
            if Instant::now() >= next_gauges {
                next_gauges = Instant::now() + Duration::from_secs(1);
                let metrics = self.controller_metrics().await?;
                let regions = prometheus_sum(
                    &metrics,
                    "patchfleet_account_regions",
                    &[("state", "ready")],
                );
                let accounts =
                    prometheus_sum(&metrics, "patchfleet_accounts", &[("state", "ready")]);
                if regions as u64 == workload.account_regions()
                    && accounts as u64 == workload.accounts as u64
                {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("not converged within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // One list per kind, not `kubectl wait --all`: that reads the objects one by one
        // under kubectl's client-side rate limit (102 s for 1,000 SystemAccounts that were
        // all Ready already), which would be measured as the controller's time.
        for kind in [
            "systemaccounts",
            "patchpolicies",
            "patchgroups",
            "maintenancewindows",
        ] {
            loop {
                let listed = self
                    .kubectl(&[
                        "get".into(),
                        kind.into(),
                        "--all-namespaces".into(),
                        "-o".into(),
                        "json".into(),
                    ])
                    .await
                    .with_context(|| format!("listing {kind}"))?;
                let listed: serde_json::Value =
                    serde_json::from_str(&listed).with_context(|| format!("{kind} list"))?;
                let items = listed["items"].as_array().cloned().unwrap_or_default();
                let ready = items.iter().all(|item| {
                    item["status"]["conditions"]
                        .as_array()
                        .is_some_and(|conditions| {
                            conditions.iter().any(|c| {
                                c["type"] == "Ready"
                                    && c["status"] == "True"
                                    && c["observedGeneration"] == item["metadata"]["generation"]
                            })
                        })
                });
                if ready {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("not every {kind} Ready within {timeout:?}");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Ok(last_write)
    }

    /// Waits until neither the simulator's counts nor the controller's reconciles have
    /// moved for `quiet`.
    async fn wait_quiet(&self, quiet: Duration, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = (u64::MAX, u64::MAX);
        let mut since = Instant::now();
        loop {
            self.check_controller()?;
            let calls: u64 = self.calls().0.values().sum();
            let reconciles: u64 = reconciles_by_kind(&self.controller_metrics().await?)
                .values()
                .sum();
            if (calls, reconciles) != last {
                last = (calls, reconciles);
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the controller did not fall quiet within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Sample) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_controller()?;
            let metrics = self.controller_metrics().await?;
            let sample = Sample {
                reconciles: reconciles_by_kind(&metrics),
                ..Sample::default()
            };
            if done(&sample) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out waiting until {what}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for BenchStack {
    fn drop(&mut self) {
        let mut child = self
            .controller
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = child.kill();
        let _ = child.wait();
        self.plane.stop();
    }
}

/// `patchfleet run` as the chart runs it (logFormat json, leader election on a Lease, the
/// pod's name as identity; everything else the binary's default, as with the chart's
/// values), but without the compliance pass: the write path is measured alone, and the
/// compliance phase restarts the controller with it (`extra` comes after, and a flag given
/// twice takes its last value).
fn spawn_controller(
    options: &Options,
    endpoint: &str,
    http: SocketAddr,
    kubeconfig: &Path,
    log_file: &std::fs::File,
    extra: &[&str],
) -> anyhow::Result<Child> {
    std::process::Command::new(&options.patchfleet)
        .arg("run")
        .args(["--cluster-id", CLUSTER_ID])
        .args(["--ssm-endpoint", endpoint, "--sts-endpoint", endpoint])
        .args(["--http-address", &http.to_string()])
        .args(["--log-format", "json", "--identity", "bench-0"])
        .args(["--lease-name", "patchfleet", "--lease-namespace", "default"])
        .args(["--compliance-interval", "0"])
        .args(&options.controller_args)
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KUBECONFIG", kubeconfig)
        .env("AWS_ACCESS_KEY_ID", BASE_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", "patchfleet-bench-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // The binary's own log filter unless one is asked for (to look into a run).
        .envs(std::env::var_os("PATCHFLEET_BENCH_RUST_LOG").map(|filter| ("RUST_LOG", filter)))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file.try_clone()?)
        .spawn()
        .with_context(|| format!("starting {} run", options.patchfleet.display()))
}

fn read_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// RSS, peak RSS and CPU time (user + system) of a process, from /proc.
fn process_stats(pid: u32, clock_ticks: f64) -> ProcessStats {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14,
    // stime 15 (1-based), so 11 and 12 after the state.
    let ticks: f64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0);
    ProcessStats {
        rss_bytes: kib("VmRSS:") * 1024,
        peak_rss_bytes: kib("VmHWM:") * 1024,
        cpu_seconds: ticks / clock_ticks,
    }
}

fn is_sts(operation: &str) -> bool {
    matches!(operation, "AssumeRole" | "GetCallerIdentity")
}

/// Reads: Describe*, Get*, List* (STS's included).
pub fn is_read(operation: &str) -> bool {
    ["Describe", "Get", "List"]
        .iter()
        .any(|p| operation.starts_with(p))
        || is_sts(operation)
}

/// One sample of the Prometheus text format: (name, labels, value).
fn prometheus_samples(text: &str) -> impl Iterator<Item = (&str, Vec<(&str, &str)>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.trim().parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)),
                None => (series, Vec::new()),
            };
            Some((name, labels, value))
        })
}

/// `a="x",b="y"` (values without commas or escaped quotes, as in the series read here).
fn parse_labels(text: &str) -> Vec<(&str, &str)> {
    let mut labels = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let Some(end) = after.find('"') else { break };
        labels.push((key.trim_start_matches(',').trim(), &after[..end]));
        rest = &after[end + 1..];
    }
    labels
}

/// The sum of a metric's samples whose labels match every `(key, value)`.
pub fn prometheus_sum(text: &str, metric: &str, matching: &[(&str, &str)]) -> f64 {
    prometheus_samples(text)
        .filter(|(name, labels, _)| {
            *name == metric
                && matching
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, value)| value)
        .sum()
}

/// `patchfleet_reconciles_total` by kind (both outcomes).
fn reconciles_by_kind(metrics: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (name, labels, value) in prometheus_samples(metrics) {
        if name != "patchfleet_reconciles_total" {
            continue;
        }
        if let Some((_, kind)) = labels.iter().find(|(k, _)| *k == "kind") {
            *out.entry((*kind).to_owned()).or_insert(0) += value as u64;
        }
    }
    out
}

const WRITE_VERBS: [&str; 6] = [
    "POST",
    "PUT",
    "PATCH",
    "APPLY",
    "DELETE",
    "DELETECOLLECTION",
];

/// The kube-apiserver's `apiserver_request_total`, resource requests only.
fn kube_requests(metrics: &str) -> KubeRequests {
    let mut out = KubeRequests::default();
    for (name, labels, value) in prometheus_samples(metrics) {
        if name != "apiserver_request_total" {
            continue;
        }
        let label = |key: &str| {
            labels
                .iter()
                .find(|(k, _)| *k == key)
                .map_or("", |(_, v)| *v)
        };
        let (resource, subresource, verb) =
            (label("resource"), label("subresource"), label("verb"));
        if resource.is_empty() {
            continue;
        }
        let value = value as u64;
        if WRITE_VERBS.contains(&verb) {
            *out.writes.entry(resource.to_owned()).or_insert(0) += value;
            if subresource == "status" {
                *out.status_writes.entry(resource.to_owned()).or_insert(0) += value;
            }
            if resource == "events" {
                out.event_writes += value;
            }
        } else if matches!(verb, "GET" | "LIST") {
            out.reads += value;
        }
    }
    out
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn per_minute(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 * 60.0 / seconds
    } else {
        0.0
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Report {
    /// Only counts (no times, rates or memory): what the suite's test prints.
    pub fn count_lines(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut put = |key: String, value: String| out.push((key, value));
        if let Some(w) = self.workload {
            put("accounts".into(), w.accounts.to_string());
            put("regions".into(), w.regions.to_string());
            put("account_regions".into(), w.account_regions().to_string());
            put("ssm_objects".into(), w.objects().to_string());
        }
        for (phase, p) in [
            ("converge", &self.converge),
            ("steady", &self.steady),
            ("wake", &self.wake),
            ("edit", &self.edit),
        ] {
            p.count_lines(phase, &mut put);
            for (resource, n) in &p.kube.status_writes {
                put(format!("{phase}_status_writes.{resource}"), n.to_string());
            }
            put(
                format!("{phase}_event_writes"),
                p.kube.event_writes.to_string(),
            );
        }
        put(
            "edit_account_regions_updated".into(),
            self.edit_updates.len().to_string(),
        );
        put(
            "assume_role_calls".into(),
            self.assume_role_calls.to_string(),
        );
        put(
            "get_caller_identity_calls".into(),
            self.caller_identity_calls.to_string(),
        );
        if let Some(r) = &self.rollout {
            r.first.count_lines("rollout_first", &mut put);
            r.next.count_lines("rollout_next", &mut put);
        }
        if let Some(c) = &self.compliance {
            put("compliance_calls".into(), c.calls.to_string());
            put(
                "compliance_formula_calls".into(),
                c.formula_calls.to_string(),
            );
            put("compliance_instances".into(), c.instances.to_string());
        }
        out
    }

    /// Every figure, as `key=value` pairs.
    pub fn lines(&self) -> Vec<(String, String)> {
        let m = &self.machine;
        let mut out = vec![
            ("date".to_owned(), m.date.clone()),
            ("commit".to_owned(), m.commit.clone()),
            ("machine_cpus".to_owned(), m.cpus.to_string()),
            (
                "machine_memory_gib".to_owned(),
                format!("{:.1}", m.memory_gib),
            ),
            ("machine_cpu_model".to_owned(), m.cpu_model.clone()),
            ("controller".to_owned(), self.controller.clone()),
            (
                "controller_flags".to_owned(),
                if self.controller_args.is_empty() {
                    "none (the chart's defaults)".to_owned()
                } else {
                    self.controller_args.join(" ")
                },
            ),
        ];
        let objects = self.workload.map_or(0, |w| w.objects());
        let c = &self.converge;
        let ceiling = self.ceiling_calls_per_second;
        let rate = if c.seconds > 0.0 {
            c.total_calls() as f64 / c.seconds
        } else {
            0.0
        };
        let mut figures = vec![
            ("converge_seconds", format!("{:.1}", c.seconds)),
            (
                "converge_last_write_seconds",
                format!("{:.1}", self.converge_last_write_seconds),
            ),
            ("converge_calls_per_second", format!("{rate:.1}")),
            (
                "converge_ssm_calls_per_object",
                format!(
                    "{:.3}",
                    if objects > 0 {
                        c.ssm_calls() as f64 / objects as f64
                    } else {
                        0.0
                    }
                ),
            ),
            (
                "converge_calls_per_object",
                format!(
                    "{:.3}",
                    if objects > 0 {
                        c.total_calls() as f64 / objects as f64
                    } else {
                        0.0
                    }
                ),
            ),
            ("converge_cpu_seconds", format!("{:.1}", c.cpu_seconds)),
            ("steady_seconds", format!("{:.0}", self.steady.seconds)),
            (
                "steady_ssm_reads_per_minute",
                format!(
                    "{:.1}",
                    per_minute(self.steady.ssm_reads(), self.steady.seconds)
                ),
            ),
            (
                "steady_ssm_writes_per_minute",
                format!(
                    "{:.1}",
                    per_minute(self.steady.ssm_writes(), self.steady.seconds)
                ),
            ),
            (
                "steady_kube_reads_per_minute",
                format!(
                    "{:.1}",
                    per_minute(self.steady.kube.reads, self.steady.seconds)
                ),
            ),
            (
                "steady_kube_writes_per_minute",
                format!(
                    "{:.1}",
                    per_minute(self.steady.kube.writes.values().sum(), self.steady.seconds)
                ),
            ),
            (
                "steady_cpu_percent_of_a_core",
                format!(
                    "{:.2}",
                    if self.steady.seconds > 0.0 {
                        100.0 * self.steady.cpu_seconds / self.steady.seconds
                    } else {
                        0.0
                    }
                ),
            ),
            ("wake_seconds", format!("{:.1}", self.wake.seconds)),
            (
                "edit_p50_seconds",
                format!("{:.2}", percentile(&self.edit_latencies, 50.0)),
            ),
            (
                "edit_max_seconds",
                format!("{:.2}", percentile(&self.edit_latencies, 100.0)),
            ),
            (
                "rss_converged_mib",
                format!("{:.1}", mib(self.rss_converged_bytes)),
            ),
            (
                "rss_steady_mib",
                format!("{:.1}", mib(self.rss_steady_bytes)),
            ),
            ("rss_peak_mib", format!("{:.1}", mib(self.rss_peak_bytes))),
            (
                "cpu_total_seconds",
                format!("{:.1}", self.cpu_total_seconds),
            ),
        ];
        if let Some(ceiling) = ceiling {
            figures.push(("ceiling_calls_per_second", format!("{ceiling:.0}")));
            figures.push((
                "converge_to_ceiling_ratio",
                format!("{:.4}", if ceiling > 0.0 { rate / ceiling } else { 0.0 }),
            ));
        }
        if let Some(c) = &self.compliance {
            figures.push(("compliance_seconds", format!("{:.1}", c.seconds)));
            figures.push(("compliance_rss_mib", format!("{:.1}", mib(c.rss_bytes))));
        }
        if let (Some(r), Some(w)) = (&self.rollout, self.workload) {
            let per = |p: &Phase| p.total_calls() as f64 / w.account_regions().max(1) as f64;
            figures.push(("rollout_first_seconds", format!("{:.1}", r.first_seconds)));
            figures.push(("rollout_next_seconds", format!("{:.1}", r.next_seconds)));
            figures.push((
                "rollout_first_calls_per_account_region",
                format!("{:.2}", per(&r.first)),
            ));
            figures.push((
                "rollout_next_calls_per_account_region",
                format!("{:.2}", per(&r.next)),
            ));
            figures.push(("rollout_rss_mib", format!("{:.1}", mib(r.rss_bytes))));
        }
        out.extend(self.count_lines());
        out.extend(figures.into_iter().map(|(k, v)| (k.to_owned(), v)));
        for (resource, n) in &self.steady.kube.writes {
            out.push((format!("steady_kube_writes.{resource}"), n.to_string()));
        }
        out
    }

    /// The section docs/performance.md gets for this run.
    pub fn markdown(&self) -> String {
        let lines: BTreeMap<String, String> = self.lines().into_iter().collect();
        let get = |key: &str| lines.get(key).cloned().unwrap_or_else(|| "-".to_owned());
        let (accounts, regions) = self.workload.map_or((0, 0), |w| (w.accounts, w.regions));
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### {}: {accounts} accounts × {regions} regions\n",
            m.date
        );
        let _ = writeln!(
            out,
            "Machine: {} CPUs ({}), {:.1} GiB memory. Commit {}. Controller `{}`, flags: {}.\n",
            m.cpus,
            m.cpu_model,
            m.memory_gib,
            m.commit,
            self.controller,
            get("controller_flags")
        );
        let table = [
            (
                "account-regions / SSM objects",
                format!("{} / {}", get("account_regions"), get("ssm_objects")),
            ),
            (
                "time to converge (every resource Ready)",
                format!("{} s", get("converge_seconds")),
            ),
            (
                "last SSM write of convergence",
                format!("{} s", get("converge_last_write_seconds")),
            ),
            (
                "calls during convergence (SSM + STS)",
                get("converge_calls"),
            ),
            (
                "SSM calls per SSM object created",
                get("converge_ssm_calls_per_object"),
            ),
            (
                "calls per SSM object created (SSM + STS)",
                get("converge_calls_per_object"),
            ),
            (
                "convergence rate",
                format!("{} calls/s", get("converge_calls_per_second")),
            ),
            (
                "simulator ceiling, plain aws-sdk-ssm clients",
                format!("{} calls/s", get("ceiling_calls_per_second")),
            ),
            (
                "convergence rate / ceiling",
                get("converge_to_ceiling_ratio"),
            ),
            (
                "AssumeRole / GetCallerIdentity (whole run)",
                format!(
                    "{} / {}",
                    get("assume_role_calls"),
                    get("get_caller_identity_calls")
                ),
            ),
            (
                "one rule edit reaches every account-region: p50 / max",
                format!(
                    "{} s / {} s",
                    get("edit_p50_seconds"),
                    get("edit_max_seconds")
                ),
            ),
            ("calls during the edit", get("edit_calls")),
            (
                "cheap pass over every account (namespace wake): calls / seconds until quiet (5 s of it the quiet wait)",
                format!("{} / {} s", get("wake_calls"), get("wake_seconds")),
            ),
            (
                "steady state: window",
                format!("{} s", get("steady_seconds")),
            ),
            (
                "steady state: SSM reads / writes per minute",
                format!(
                    "{} / {}",
                    get("steady_ssm_reads_per_minute"),
                    get("steady_ssm_writes_per_minute")
                ),
            ),
            (
                "steady state: kube-apiserver reads / writes per minute",
                format!(
                    "{} / {}",
                    get("steady_kube_reads_per_minute"),
                    get("steady_kube_writes_per_minute")
                ),
            ),
            (
                "steady state: controller CPU",
                format!("{} % of a core", get("steady_cpu_percent_of_a_core")),
            ),
            (
                "controller RSS: converged / steady / peak",
                format!(
                    "{} / {} / {} MiB",
                    get("rss_converged_mib"),
                    get("rss_steady_mib"),
                    get("rss_peak_mib")
                ),
            ),
            (
                "controller CPU: convergence / whole run",
                format!(
                    "{} s / {} s",
                    get("converge_cpu_seconds"),
                    get("cpu_total_seconds")
                ),
            ),
            (
                "compliance pass over every account-region (10 nodes each, after a restart): calls (formula) / seconds / RSS after",
                format!(
                    "{} ({}) / {} s / {} MiB",
                    get("compliance_calls"),
                    get("compliance_formula_calls"),
                    get("compliance_seconds"),
                    get("compliance_rss_mib")
                ),
            ),
            (
                "PatchRollout, one stage over on-time (6 staged operating systems): first release to every account-region / calls per account-region; next release / calls per account-region; RSS after",
                format!(
                    "{} s / {}; {} s / {}; {} MiB",
                    get("rollout_first_seconds"),
                    get("rollout_first_calls_per_account_region"),
                    get("rollout_next_seconds"),
                    get("rollout_next_calls_per_account_region"),
                    get("rollout_rss_mib")
                ),
            ),
        ];
        out.push_str("| figure | value |\n|---|---|\n");
        for (what, value) in table {
            let _ = writeln!(out, "| {what} | {value} |");
        }
        out.push_str("\nEvery figure as printed (`key=value`):\n\n```\n");
        for (key, value) in self.lines() {
            let _ = writeln!(out, "{key}={value}");
        }
        out.push_str("```\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_text() {
        let text = "# HELP x\n\
            patchfleet_reconciles_total{kind=\"SystemAccount\",outcome=\"success\"} 3\n\
            patchfleet_reconciles_total{kind=\"SystemAccount\",outcome=\"error\"} 1\n\
            patchfleet_leader 1\n\
            apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"patchfleet.io\",resource=\"systemaccounts\",scope=\"resource\",subresource=\"status\",verb=\"PATCH\",version=\"v1alpha1\"} 7\n\
            apiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"\",group=\"events.k8s.io\",resource=\"events\",scope=\"namespace\",subresource=\"\",verb=\"POST\",version=\"v1\"} 2\n\
            apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"\",scope=\"\",subresource=\"/metrics\",verb=\"GET\",version=\"\"} 9\n\
            apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"namespaces\",scope=\"cluster\",subresource=\"\",verb=\"LIST\",version=\"v1\"} 4\n";
        assert_eq!(prometheus_sum(text, "patchfleet_leader", &[]), 1.0);
        assert_eq!(
            reconciles_by_kind(text).get("SystemAccount").copied(),
            Some(4)
        );
        let kube = kube_requests(text);
        assert_eq!(kube.status_writes.get("systemaccounts").copied(), Some(7));
        assert_eq!(kube.event_writes, 2);
        assert_eq!(kube.reads, 4);
        assert_eq!(kube.writes.values().sum::<u64>(), 9);
    }

    #[test]
    fn the_workload_holds_sixty_eight_objects_per_account_region() {
        assert_eq!(shape::OBJECTS, 68);
        let w = Workload::new(3, 2).expect("workload");
        assert_eq!(w.objects(), 408);
        assert_eq!(w.accounts_yaml().matches("defaultPatchPolicy").count(), 3);
        assert_eq!(Workload::account_id(7), "300000000007");
        assert_eq!(w.accounts_yaml().matches("kind: SystemAccount").count(), 3);
        assert_eq!(windows_yaml().matches("kind: MaintenanceWindow").count(), 3);
        assert!(Workload::new(1, 9).is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&values, 50.0), 2.0);
        assert_eq!(percentile(&values, 100.0), 4.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
