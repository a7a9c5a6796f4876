//! Per-instance detail, pure: what the dashboard shows of one group's nodes in an
//! account-region and of one node's patches, read from SSM on demand (the SSM edge's
//! `patchfleet_ssm::instances`), ordered worst first, and what each read costs.

use std::cmp::Reverse;
use std::collections::HashMap;

use patchfleet_api::v1alpha1::Platform;
use serde::{Deserialize, Serialize};

use crate::compliance::{NodeReading, provider};

/// A managed node with its last patch operation's counts, if it reported one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSummary {
    pub id: String,
    /// ComputerName, as the agent reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computer_name: Option<String>,
    /// Linux, Windows or MacOS.
    pub platform_type: String,
    /// PlatformName and PlatformVersion (`Amazon Linux 2023`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_name: Option<String>,
    /// Online, ConnectionLost or Inactive.
    pub ping_status: String,
    /// Where it runs: aws, azure, gcp, vmware, onprem, other.
    pub provider: Platform,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// False: an agent update is pending (SSM reports it for Linux and macOS only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_agent: Option<bool>,
    /// None: the node has not reported a patch operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<PatchCounts>,
}

/// A node's last patch operation, as DescribeInstancePatchStates(ForPatchGroup) reports it
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstancePatchState.html>).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchCounts {
    /// The node's `Patch Group` tag when it ran the operation.
    pub patch_group: String,
    /// The baseline the operation used.
    pub baseline_id: String,
    /// Scan or Install.
    pub operation: String,
    /// When the operation ended, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_end: Option<String>,
    pub installed: u32,
    pub installed_other: u32,
    pub installed_pending_reboot: u32,
    pub installed_rejected: u32,
    pub missing: u32,
    pub failed: u32,
    pub not_applicable: u32,
    pub critical_non_compliant: u32,
    pub security_non_compliant: u32,
    pub other_non_compliant: u32,
}

impl PatchCounts {
    /// Compliant as Patch Manager judges it: nothing missing, failed or left for a reboot
    /// (<https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-compliance-states.html>).
    pub fn compliant(&self) -> bool {
        self.missing == 0 && self.failed == 0 && self.installed_pending_reboot == 0
    }
}

/// One patch on one node, as DescribeInstancePatches reports it
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PatchComplianceData.html>).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstancePatch {
    pub title: String,
    pub kb_id: String,
    pub classification: String,
    pub severity: String,
    /// As SSM spells it: INSTALLED, INSTALLED_OTHER, INSTALLED_PENDING_REBOOT,
    /// INSTALLED_REJECTED, MISSING, NOT_APPLICABLE, FAILED, AVAILABLE_SECURITY_UPDATE.
    pub state: String,
    /// RFC 3339; None when SSM reports none (a missing patch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_time: Option<String>,
    /// SSM reports CVE ids only for Missing and Failed patches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cve_ids: Vec<String>,
}

/// One node's page: the node and each of its patches, worst first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDetail {
    pub instance: InstanceSummary,
    pub patches: Vec<InstancePatch>,
}

/// The node as the dashboard lists it, from DescribeInstanceInformation's fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeInformation {
    pub reading: NodeReading,
    pub computer_name: Option<String>,
    pub platform_name: Option<String>,
    pub agent_version: Option<String>,
}

/// A group's nodes in an account-region: every node that carries the group's tag now,
/// with its last operation's counts where it reported one (a state of a node no longer
/// registered, or no longer in the group, is left out: SSM keeps it for a while), worst
/// first.
pub fn group_instances(
    nodes: Vec<NodeInformation>,
    states: Vec<(String, PatchCounts)>,
    account_platform: Platform,
) -> Vec<InstanceSummary> {
    let mut states: HashMap<String, PatchCounts> = states.into_iter().collect();
    let mut rows: Vec<InstanceSummary> = nodes
        .into_iter()
        .map(|node| {
            let patches = states.remove(&node.reading.id);
            summary(node, patches, account_platform)
        })
        .collect();
    rows.sort_by(|a, b| worst_first(a).cmp(&worst_first(b)).then(a.id.cmp(&b.id)));
    rows
}

/// One node and its last operation's counts.
pub fn summary(
    node: NodeInformation,
    patches: Option<PatchCounts>,
    account_platform: Platform,
) -> InstanceSummary {
    let provider = provider(&node.reading, account_platform);
    InstanceSummary {
        provider,
        id: node.reading.id,
        computer_name: node.computer_name,
        platform_type: node.reading.platform_type,
        platform_name: node.platform_name,
        ping_status: node.reading.ping_status,
        agent_version: node.agent_version,
        latest_agent: node.reading.latest_agent,
        patches,
    }
}

/// Failed first, then missing (critical before others), waiting for a reboot, never
/// reported, offline; compliant online nodes last.
fn worst_first(row: &InstanceSummary) -> impl Ord {
    let p = row.patches.as_ref();
    (
        Reverse(p.map_or(0, |p| p.failed)),
        Reverse(p.map_or(0, |p| p.critical_non_compliant)),
        Reverse(p.map_or(0, |p| p.missing)),
        Reverse(p.map_or(0, |p| p.installed_pending_reboot)),
        p.is_some(),
        row.ping_status == "Online",
    )
}

/// A node's patches, the ones that need attention first: by state (failed, missing,
/// waiting for a reboot, rejected, installed, not applicable), then severity, then title.
pub fn order_patches(patches: &mut [InstancePatch]) {
    patches.sort_by(|a, b| {
        (state_rank(&a.state), severity_rank(&a.severity), &a.title).cmp(&(
            state_rank(&b.state),
            severity_rank(&b.severity),
            &b.title,
        ))
    });
}

/// SSM's states (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PatchComplianceData.html>).
fn state_rank(state: &str) -> u8 {
    match state {
        "FAILED" => 0,
        "MISSING" => 1,
        "AVAILABLE_SECURITY_UPDATE" => 2,
        "INSTALLED_PENDING_REBOOT" => 3,
        "INSTALLED_REJECTED" => 4,
        "INSTALLED_OTHER" => 5,
        "INSTALLED" => 6,
        "NOT_APPLICABLE" => 7,
        _ => 8,
    }
}

/// The severities of the operating systems Patch Manager supports, most severe first
/// (<https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-predefined-and-custom-patch-baselines.html>).
fn severity_rank(severity: &str) -> u8 {
    match severity {
        "Critical" => 0,
        "Important" | "High" => 1,
        "Moderate" | "Medium" => 2,
        "Low" => 3,
        "Informational" => 4,
        _ => 5,
    }
}

/// Page sizes of the on-demand reads.
pub mod pages {
    /// DescribeInstanceInformation: MaxResults 5-50.
    pub const INSTANCE_INFORMATION: usize = 50;
    /// DescribeInstancePatchStatesForPatchGroup: MaxResults 10-100.
    pub const STATES_FOR_GROUP: usize = 100;
    /// DescribeInstancePatches: MaxResults 10-100.
    pub const PATCHES: usize = 100;
}

/// SSM calls to list a group's nodes in an account-region: DescribeInstanceInformation
/// filtered by the `Patch Group` tag, then DescribeInstancePatchStatesForPatchGroup.
pub fn group_calls(tagged_nodes: usize, reported_states: usize) -> u32 {
    pages_of(tagged_nodes, pages::INSTANCE_INFORMATION)
        + pages_of(reported_states, pages::STATES_FOR_GROUP)
}

/// SSM calls for one node's page: DescribeInstanceInformation by id,
/// DescribeInstancePatchStates by id, then DescribeInstancePatches.
pub fn instance_calls(patches: usize) -> u32 {
    2 + pages_of(patches, pages::PATCHES)
}

/// An empty list still takes one call.
fn pages_of(items: usize, page: usize) -> u32 {
    u32::try_from(items.div_ceil(page).max(1)).unwrap_or(u32::MAX)
}
