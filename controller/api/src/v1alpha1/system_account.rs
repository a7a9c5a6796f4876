//! SystemAccount: an AWS account that holds SSM state for patchfleet.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube_derive::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::enrollment::AccountEnrollment;
use super::nodes::AccountNodes;
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
    printcolumn = r#"{"name":"Instances","type":"integer","jsonPath":".status.nodes.total.instances"}"#,
    printcolumn = r#"{"name":"Online","type":"integer","jsonPath":".status.nodes.total.online"}"#,
    printcolumn = r#"{"name":"NonCompliant","type":"integer","jsonPath":".status.nodes.total.nonCompliant"}"#,
    printcolumn = r#"{"name":"Caller","type":"string","priority":1,"jsonPath":".status.callerArn"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.roleArn) || self.roleArn.split(':')[4] == self.accountId")
    .message("spec.roleArn must be a role in spec.accountId: use arn:aws:iam::<accountId>:role/<name>, or fix accountId")
    .field_path(".roleArn"))]
#[x_kube(validation = Rule::new("!has(self.enrollment) || self.enrollment.sources.all(s, !has(s.region) || s.region in self.regions)")
    .message("spec.enrollment.sources[].region must be one of spec.regions")
    .field_path(".enrollment.sources"))]
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

    /// Which `Patch Group` tag values each namespace may use in this account: the
    /// instances its PatchGroups register to its baselines, its windows target and its
    /// Emergency runs reach. A PatchGroup whose value is not granted to its namespace here
    /// is refused (reason PatchGroupNotGranted) before anything is planned, and costs no
    /// SSM write. A value granted to two namespaces (by value or prefix) is granted to
    /// neither. Absent or empty: no value is granted, so no namespace's groups reach the
    /// account. See docs/tenancy.md.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["namespace".into()]))]
    pub patch_group_grants: Vec<PatchGroupGrant>,

    /// The IAM roles (names with their path, as `tasks[].serviceRoleName` gives them)
    /// that maintenance window tasks may run as in this account. A task naming any other
    /// role is not registered (reason TaskRoleNotAllowed). Absent or empty: none, so tasks
    /// run with SSM's service-linked role and snapshotBeforePatch is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 50),
        inner(length(min = 1, max = 512), pattern(limits::ROLE_NAME_PATTERN))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub task_roles: Vec<String>,

    /// The PatchPolicy whose baselines become this account's default patch baselines in
    /// each of its regions (RegisterDefaultPatchBaseline, one per operating system the
    /// policy covers): they patch every instance in no patch group. Set by whoever
    /// administers the account, not by a tenant: name a policy in a namespace only the
    /// administrators can write, since whoever edits that policy edits the defaults. Its
    /// namespace needs no admission by `namespaceSelector`. Removing the field, or
    /// deleting the account, makes AWS's predefined baselines the defaults again; a
    /// policy that does not exist (or is being deleted) sets none and stalls the account
    /// (reason DefaultPatchPolicyNotFound). Absent: the defaults are left as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_patch_policy: Option<DefaultPatchPolicy>,

    /// Which machines may enroll into this account through `patchfleet enroll`: their
    /// sources (AWS accounts, Google Cloud projects, Azure subscriptions, vCenters), the
    /// IAM role their activations give them, the patch groups they may ask for and how
    /// long an activation lasts (docs/enrollment.md). Absent: no machine enrolls here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment: Option<AccountEnrollment>,

    /// Stop reconciling this account: nothing is created, changed or deleted in it until
    /// suspend is false again. Status keeps the last state seen.
    #[serde(default)]
    pub suspend: bool,
}

/// A PatchPolicy named from a cluster-scoped SystemAccount: by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefaultPatchPolicy {
    #[schemars(length(min = 1, max = 63), pattern(limits::NAMESPACE_PATTERN))]
    pub namespace: String,
    #[schemars(length(min = 1, max = 253), pattern(limits::OBJECT_NAME_PATTERN))]
    pub name: String,
}

/// The `Patch Group` values one namespace may use in an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.values) ? size(self.values) : 0) + (has(self.prefixes) ? size(self.prefixes) : 0) > 0")
    .message("a grant needs values or prefixes")
    .field_path(".values"))]
pub struct PatchGroupGrant {
    /// The namespace granted.
    #[schemars(length(min = 1, max = 63), pattern(limits::NAMESPACE_PATTERN))]
    pub namespace: String,
    /// `Patch Group` values it may use, exactly.
    #[serde(default)]
    #[schemars(
        length(max = 100),
        inner(length(min = 1, max = 256), pattern(limits::PATCH_GROUP_PATTERN))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub values: Vec<String>,
    /// Every value that starts with one of these, such as `team-a-`. The empty prefix
    /// grants every value: for an account that serves one namespace alone.
    #[serde(default)]
    #[schemars(
        length(max = 20),
        inner(length(max = 256), pattern(limits::PATCH_GROUP_PATTERN))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub prefixes: Vec<String>,
}

impl PatchGroupGrant {
    /// Whether this grant covers `value`, and by which entry (for messages).
    pub fn covers(&self, value: &str) -> Option<GrantEntry> {
        if let Some(i) = self.values.iter().position(|v| v == value) {
            return Some(GrantEntry::Value(i));
        }
        self.prefixes
            .iter()
            .position(|p| value.starts_with(p.as_str()))
            .map(GrantEntry::Prefix)
    }
}

/// The entry of a [`PatchGroupGrant`] that covers a value; displayed as its field path
/// below the grant (`values[0]`, `prefixes[1]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantEntry {
    Value(usize),
    Prefix(usize),
}

impl std::fmt::Display for GrantEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrantEntry::Value(i) => write!(f, "values[{i}]"),
            GrantEntry::Prefix(i) => write!(f, "prefixes[{i}]"),
        }
    }
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
    /// The account's managed nodes and their patch compliance, read from SSM by the
    /// compliance pass (docs/compliance.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<AccountNodes>,
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
