//! PatchGroup: WHICH instances, in which accounts and regions, follow which PatchPolicy.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube_derive::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::nodes::GroupNodes;
use super::ssm::{DeletionPolicy, limits};
use super::status::FleetStatus;

/// The instances tagged `Patch Group: <groupName>` in the selected accounts and regions.
/// In each of them, the group is registered to the baselines of its PatchPolicy, one per
/// operating system.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[kube(
    crates(kube_core = ::kube_core),
    group = "patchfleet.io",
    version = "v1alpha1",
    kind = "PatchGroup",
    doc = "Which instances (the Patch Group tag), in which accounts and regions, follow which PatchPolicy.",
    namespaced,
    shortname = "pgrp",
    category = "patchfleet",
    status = "PatchGroupStatus",
    printcolumn = r#"{"name":"Group","type":"string","jsonPath":".status.groupName"}"#,
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".spec.policyRef.name"}"#,
    printcolumn = r#"{"name":"Accounts","type":"integer","jsonPath":".status.summary.selected"}"#,
    printcolumn = r#"{"name":"Failing","type":"integer","jsonPath":".status.summary.failing"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Instances","type":"integer","jsonPath":".status.nodes.total.instances"}"#,
    printcolumn = r#"{"name":"NonCompliant","type":"integer","jsonPath":".status.nodes.total.nonCompliant"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PatchGroupSpec {
    /// The `Patch Group` tag value of the instances (1-256 letters, digits, spaces and
    /// `_.:/=+-@`). Absent: metadata.name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), pattern(limits::PATCH_GROUP_PATTERN))]
    pub group_name: Option<String>,

    /// The PatchPolicy, in this namespace, whose baselines the group follows.
    pub policy_ref: PolicyReference,

    /// Which SystemAccounts the group spans, by their labels. `{}` selects every account
    /// that admits this namespace (SystemAccount `namespaceSelector`).
    pub account_selector: LabelSelector,

    /// Limit the group to these regions of the selected accounts. Absent: every region
    /// of each account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 40),
        inner(length(max = 32), pattern(limits::REGION_PATTERN))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub regions: Option<Vec<String>>,

    /// Delete deregisters the group in every account when this resource is deleted;
    /// Orphan leaves the registrations in place.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Status of a PatchGroup: the rollup every namespaced kind has, and the tag value in effect.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchGroupStatus {
    #[serde(flatten)]
    pub fleet: FleetStatus,
    /// The `Patch Group` tag value in effect: `spec.groupName`, else metadata.name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// The group's managed nodes (those that reported a patch state under its tag) and
    /// their patch compliance, read from SSM by the compliance pass (docs/compliance.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<GroupNodes>,
}

/// A reference to a PatchPolicy in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReference {
    /// The PatchPolicy's metadata.name.
    #[schemars(length(min = 1, max = 253), pattern(limits::OBJECT_NAME_PATTERN))]
    pub name: String,
}

impl PatchGroup {
    /// The `Patch Group` tag value: `spec.groupName`, else metadata.name.
    pub fn group_name(&self) -> &str {
        self.spec
            .group_name
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }
}
