//! SystemAccount: an AWS account that holds SSM state for patchfleet.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube_derive::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ssm::limits;
use super::status::{AccountFailure, Summary};

/// An AWS account that holds SSM state: the "system account" of a cloud account or
/// customer. patchfleet verifies its identity (sts GetCallerIdentity through the role) and
/// keeps its share of every PatchPolicy, PatchGroup and MaintenanceWindow that selects it
/// converged in each of its regions.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[kube(
    crates(kube_core = ::kube_core),
    group = "patchfleet.io",
    version = "v1alpha1",
    kind = "SystemAccount",
    doc = "An AWS account that holds SSM state for patchfleet, and the regions it manages there.",
    shortname = "sysacct",
    category = "patchfleet",
    status = "SystemAccountStatus",
    printcolumn = r#"{"name":"Account","type":"string","jsonPath":".spec.accountId"}"#,
    printcolumn = r#"{"name":"Platform","type":"string","jsonPath":".spec.platform"}"#,
    printcolumn = r#"{"name":"Regions","type":"string","jsonPath":".spec.regions"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Caller","type":"string","priority":1,"jsonPath":".status.callerArn"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.roleArn) || self.roleArn.split(':')[4] == self.accountId")
    .message("spec.roleArn must be a role in spec.accountId: use arn:aws:iam::<accountId>:role/<name>, or fix accountId")
    .field_path(".roleArn"))]
#[x_kube(validation = Rule::new("!has(self.externalId) || has(self.roleArn)")
    .message("spec.externalId is only sent when assuming spec.roleArn: set roleArn or remove externalId")
    .field_path(".externalId"))]
pub struct SystemAccountSpec {
    /// The 12-digit AWS account id.
    #[schemars(length(min = 12, max = 12), pattern(limits::ACCOUNT_ID_PATTERN))]
    pub account_id: String,

    /// The IAM role patchfleet assumes in this account (it must belong to `accountId`).
    /// Absent: the controller's own credentials are used, and they must belong to
    /// `accountId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 20, max = 2048), pattern(limits::ROLE_ARN_PATTERN))]
    pub role_arn: Option<String>,

    /// The external id the role's trust policy requires (STS AssumeRole ExternalId).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224), pattern(limits::EXTERNAL_ID_PATTERN))]
    pub external_id: Option<String>,

    /// The regions whose SSM state patchfleet manages in this account, such as eu-west-1.
    #[schemars(
        length(min = 1, max = 40),
        inner(length(max = 32), pattern(limits::REGION_PATTERN))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub regions: Vec<String>,

    /// Where this account's managed instances run: aws, gcp, azure, vmware, onprem or other.
    /// Instances outside AWS are hybrid managed nodes (no EC2 snapshots).
    #[serde(default)]
    pub platform: Platform,

    /// Which namespaces' PatchGroups and MaintenanceWindows may reach this account: the
    /// tenancy boundary. Absent or empty selects no namespace; to admit every namespace,
    /// use `matchExpressions: [{key: kubernetes.io/metadata.name, operator: Exists}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Stop reconciling this account: nothing is created, changed or deleted in it until
    /// suspend is false again. Status keeps the last state seen.
    #[serde(default)]
    pub suspend: bool,
}

/// Where an account's managed instances run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    #[default]
    Aws,
    Gcp,
    Azure,
    Vmware,
    Onprem,
    Other,
}

impl Platform {
    /// EC2 snapshots exist only for instances that run on AWS.
    pub fn supports_snapshots(self) -> bool {
        self == Platform::Aws
    }

    /// As spelled in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Aws => "aws",
            Platform::Gcp => "gcp",
            Platform::Azure => "azure",
            Platform::Vmware => "vmware",
            Platform::Onprem => "onprem",
            Platform::Other => "other",
        }
    }
}

/// What patchfleet verified and applied in this account, written by the account reconciler.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
pub struct SystemAccountStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Stalled, as kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The identity patchfleet acts as in this account (sts GetCallerIdentity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_arn: Option<String>,
    /// Regions selected, converged and failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// Per region, what patchfleet has applied there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["region".into()]))]
    pub regions: Vec<RegionStatus>,
    /// The regions that are failing, with the reason (at most 20 listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub failures: Vec<AccountFailure>,
}

/// What patchfleet owns in one region of the account, as last applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegionStatus {
    /// The region, such as eu-west-1.
    pub region: String,
    /// Whether the region holds exactly the desired state.
    pub ready: bool,
    /// Patch baselines owned by patchfleet.
    #[schemars(extend("format" = "int32"))]
    pub patch_baselines: u32,
    /// Patch groups registered to those baselines.
    #[schemars(extend("format" = "int32"))]
    pub patch_group_registrations: u32,
    /// Maintenance windows owned by patchfleet.
    #[schemars(extend("format" = "int32"))]
    pub maintenance_windows: u32,
    /// Targets registered with those windows.
    #[schemars(extend("format" = "int32"))]
    pub window_targets: u32,
    /// Tasks registered with those windows.
    #[schemars(extend("format" = "int32"))]
    pub window_tasks: u32,
}
