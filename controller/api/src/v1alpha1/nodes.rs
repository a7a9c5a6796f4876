//! What the compliance pass reads back from SSM about the managed nodes: counts only, so
//! that a status stays small whatever the fleet (etcd objects are limited to 1.5 MiB).
//! Where each figure comes from, its cost and its caveats: docs/compliance.md.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// At most this many account-regions are listed in a PatchGroup's or MaintenanceWindow's
/// node figures (worst first); the rest are only in the totals.
pub const MAX_LISTED_REGIONS: usize = 20;

/// Managed nodes, counted by what SSM reports of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeCounts {
    /// Managed nodes (DescribeInstanceInformation).
    #[schemars(extend("format" = "int32"))]
    pub instances: u32,
    /// Nodes whose agent is Online (the others are ConnectionLost or Inactive).
    #[schemars(extend("format" = "int32"))]
    pub online: u32,
    /// Nodes by platform type.
    #[serde(default)]
    pub platforms: PlatformCounts,
    /// Nodes by the cloud or hypervisor they run on.
    #[serde(default)]
    pub providers: ProviderCounts,
    /// Nodes with at least one approved patch missing.
    #[schemars(extend("format" = "int32"))]
    pub with_missing: u32,
    /// Nodes with at least one patch whose installation failed.
    #[schemars(extend("format" = "int32"))]
    pub with_failed: u32,
    /// Nodes with patches installed that wait for a reboot.
    #[schemars(extend("format" = "int32"))]
    pub pending_reboot: u32,
    /// Nodes whose SSM Agent is not the latest version (reported for Linux and macOS
    /// only: SSM does not say it for Windows).
    #[schemars(extend("format" = "int32"))]
    pub agent_updates: u32,
    /// Nodes whose last patch operation found nothing missing, failed, rejected or
    /// waiting for a reboot.
    #[schemars(extend("format" = "int32"))]
    pub compliant: u32,
    /// Nodes that reported a patch state and are not compliant.
    #[schemars(extend("format" = "int32"))]
    pub non_compliant: u32,
    /// Non-compliant nodes by the most severe of their non-compliant patches.
    #[serde(default)]
    pub severities: SeverityCounts,
    /// Nodes that have not reported any patch state yet (never scanned).
    #[schemars(extend("format" = "int32"))]
    pub unreported: u32,
}

impl NodeCounts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &NodeCounts) {
        self.instances += other.instances;
        self.online += other.online;
        self.platforms.linux += other.platforms.linux;
        self.platforms.windows += other.platforms.windows;
        self.platforms.macos += other.platforms.macos;
        self.providers.aws += other.providers.aws;
        self.providers.azure += other.providers.azure;
        self.providers.gcp += other.providers.gcp;
        self.providers.vmware += other.providers.vmware;
        self.providers.onprem += other.providers.onprem;
        self.providers.other += other.providers.other;
        self.with_missing += other.with_missing;
        self.with_failed += other.with_failed;
        self.pending_reboot += other.pending_reboot;
        self.agent_updates += other.agent_updates;
        self.compliant += other.compliant;
        self.non_compliant += other.non_compliant;
        self.severities.critical += other.severities.critical;
        self.severities.security += other.severities.security;
        self.severities.other += other.severities.other;
        self.unreported += other.unreported;
    }
}

/// Nodes by SSM's PlatformType.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformCounts {
    #[schemars(extend("format" = "int32"))]
    pub linux: u32,
    #[schemars(extend("format" = "int32"))]
    pub windows: u32,
    #[schemars(extend("format" = "int32"))]
    pub macos: u32,
}

/// Nodes by provider: EC2 instances are `aws`; Azure and Google Cloud VMs are known by
/// SSM's SourceType; other hybrid nodes count under the SystemAccount's `spec.platform`
/// (`onprem` for an `aws` account).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderCounts {
    #[schemars(extend("format" = "int32"))]
    pub aws: u32,
    #[schemars(extend("format" = "int32"))]
    pub azure: u32,
    #[schemars(extend("format" = "int32"))]
    pub gcp: u32,
    #[schemars(extend("format" = "int32"))]
    pub vmware: u32,
    #[schemars(extend("format" = "int32"))]
    pub onprem: u32,
    #[schemars(extend("format" = "int32"))]
    pub other: u32,
}

/// Non-compliant nodes by the most severe class of their non-compliant patches
/// (InstancePatchState CriticalNonCompliantCount, SecurityNonCompliantCount,
/// OtherNonCompliantCount): each node counts once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeverityCounts {
    #[schemars(extend("format" = "int32"))]
    pub critical: u32,
    #[schemars(extend("format" = "int32"))]
    pub security: u32,
    #[schemars(extend("format" = "int32"))]
    pub other: u32,
}

/// The last execution of a maintenance window in one account-region.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowRun {
    /// The window's SSM execution id.
    pub execution_id: String,
    /// PENDING, IN_PROGRESS, SUCCESS, FAILED, TIMED_OUT, CANCELLING, CANCELLED,
    /// SKIPPED_OVERLAPPING, as SSM reports it.
    pub status: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339; absent while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Task invocations (one per node and task) that succeeded.
    #[schemars(extend("format" = "int32"))]
    pub succeeded: u32,
    /// Task invocations that failed, timed out or were cancelled.
    #[schemars(extend("format" = "int32"))]
    pub failed: u32,
}

impl WindowRun {
    /// Whether the run ended badly.
    pub fn is_failure(&self) -> bool {
        matches!(self.status.as_str(), "FAILED" | "TIMED_OUT" | "CANCELLED") || self.failed > 0
    }

    /// Whether SSM will not change the run any more.
    pub fn is_finished(&self) -> bool {
        !matches!(
            self.status.as_str(),
            "PENDING" | "IN_PROGRESS" | "CANCELLING"
        )
    }

    /// When it started, read from `start_time` (None when absent or unreadable).
    pub fn started(&self) -> Option<k8s_openapi::jiff::Timestamp> {
        self.start_time.as_deref()?.parse().ok()
    }
}

/// A SystemAccount's nodes: per region and in total.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountNodes {
    /// Every region's figures added up.
    pub total: NodeCounts,
    /// Per region of the account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionNodes>,
}

/// One region of a SystemAccount.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegionNodes {
    /// The region, such as eu-west-1.
    pub region: String,
    /// When these figures were read (the end of the region's last compliance pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<Time>,
    #[serde(flatten)]
    pub counts: NodeCounts,
    /// Managed nodes that can still be added before the account-region's managed-node
    /// quota (the controller's `--quota-managed-nodes`).
    #[schemars(extend("format" = "int32"))]
    pub node_headroom: i32,
    /// Hybrid (`mi-`) nodes that can still be registered before the hybrid-node quota
    /// (`--quota-hybrid-nodes`: the standard tier's limit).
    #[schemars(extend("format" = "int32"))]
    pub hybrid_node_headroom: i32,
    /// Nodes whose last patch operation used a baseline that is not the one patchfleet
    /// registered for their patch group: another tool's scan overwrote patchfleet's
    /// data (each scan replaces the previous one).
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(extend("format" = "int32"))]
    pub overwritten: u32,
    /// The latest Install run of a patchfleet maintenance window here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_install: Option<NamedWindowRun>,
    /// Why the figures could not be read in the last compliance pass (the figures shown
    /// are from the pass before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A window run and the MaintenanceWindow it belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamedWindowRun {
    /// `namespace/name` of the MaintenanceWindow.
    pub window: String,
    #[serde(flatten)]
    pub run: WindowRun,
}

/// A PatchGroup's nodes (those that reported a patch state under its tag): in total and
/// per account-region.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupNodes {
    pub total: NodeCounts,
    /// The account-regions with the most non-compliant nodes first (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub regions: Vec<AccountRegionNodes>,
    /// Account-regions beyond the 20 listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(extend("format" = "int32"))]
    pub omitted_regions: u32,
    /// Nodes whose last patch operation used another baseline than the one patchfleet
    /// registered for the group (see the `ScanOverwritten` condition).
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(extend("format" = "int32"))]
    pub overwritten: u32,
}

/// One account-region of a PatchGroup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountRegionNodes {
    /// The 12-digit AWS account id.
    pub account_id: String,
    pub region: String,
    #[serde(flatten)]
    pub counts: NodeCounts,
}

/// A MaintenanceWindow's last runs: how many account-regions' last run succeeded or
/// failed, and the runs themselves, failed and latest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowRuns {
    /// Account-regions whose last run finished and succeeded.
    #[schemars(extend("format" = "int32"))]
    pub succeeded: u32,
    /// Account-regions whose last run failed (see `WindowRun`), finished or not.
    #[schemars(extend("format" = "int32"))]
    pub failed: u32,
    /// Account-regions where the window has not run yet.
    #[schemars(extend("format" = "int32"))]
    pub never_run: u32,
    /// Account-regions whose last run has not finished (PENDING, IN_PROGRESS, CANCELLING).
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub in_progress: u32,
    /// At most 20, failed first, then the latest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub last_runs: Vec<AccountRegionRun>,
}

/// A window's last run in one account-region.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountRegionRun {
    /// The 12-digit AWS account id.
    pub account_id: String,
    pub region: String,
    #[serde(flatten)]
    pub run: WindowRun,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
