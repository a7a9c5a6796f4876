//! Enrollment: a machine outside the controller's reach proved who it is (its cloud's signed
//! instance identity) and was given an SSM hybrid activation in its SystemAccount
//! (docs/enrollment.md). The enrollment server creates one per accepted machine; the
//! controller follows it until the machine's agent registered, keeps the managed node's
//! `Patch Group` tag, deletes the activation when it expires unused, and deregisters the
//! node when the Enrollment is deleted.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube_derive::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ssm::limits;

/// What a SystemAccount accepts from machines that enroll into it (`spec.enrollment`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube_core::Rule::new("!self.activationExpiry.matches('^[0-9]{1,5}[mhd]$') || int(self.activationExpiry.substring(0, self.activationExpiry.size() - 1)) * (self.activationExpiry.endsWith('d') ? 1440 : self.activationExpiry.endsWith('h') ? 60 : 1) <= 43200")
    .message("enrollment.activationExpiry: at most 30 days (30d, 720h or 43200m), SSM's longest activation")
    .field_path(".activationExpiry"))]
#[x_kube(validation = kube_core::Rule::new("!self.activationExpiry.matches('^[0-9]{1,5}[mhd]$') || int(self.activationExpiry.substring(0, self.activationExpiry.size() - 1)) > 0")
    .message("enrollment.activationExpiry: at least one minute")
    .field_path(".activationExpiry"))]
pub struct AccountEnrollment {
    /// The clouds' accounts, projects, subscriptions and vCenters whose machines enroll
    /// into this SystemAccount (1-50). A source may map to one SystemAccount only: one
    /// listed by two accounts is refused for both (reason AmbiguousSource).
    #[schemars(length(min = 1, max = 50))]
    pub sources: Vec<EnrollmentSource>,
    /// The IAM role SSM gives the registered nodes (CreateActivation `IamRole`: a role
    /// name with its optional path, such as
    /// `service-role/AmazonEC2RunCommandRoleForManagedInstances`; at most 64 characters).
    /// Its trust policy must allow `ssm.amazonaws.com`.
    #[schemars(length(min = 1, max = 64), pattern(limits::ROLE_NAME_PATTERN))]
    pub iam_role: String,
    /// The `Patch Group` values a machine may ask for (1-100): the allow-list. A request
    /// for any other value is refused (reason PatchGroupNotAllowed) before anything is
    /// created.
    #[schemars(
        length(min = 1, max = 100),
        inner(length(min = 1, max = 256), pattern(limits::PATCH_GROUP_PATTERN))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub patch_groups: Vec<String>,
    /// How long an activation stays usable: a number and a unit, `m`, `h` or `d`, from
    /// one minute to 30 days (SSM's longest). A machine registers within seconds of
    /// enrolling, so keep it short; the controller deletes the activation when it
    /// expired unused. Default `1h`.
    #[serde(default = "default_activation_expiry")]
    #[schemars(length(min = 2, max = 6), pattern(ACTIVATION_EXPIRY_PATTERN))]
    pub activation_expiry: String,
}

/// An activation expiry: digits and one unit.
pub const ACTIVATION_EXPIRY_PATTERN: &str = r"^[0-9]{1,5}[mhd]$";

fn default_activation_expiry() -> String {
    "1h".to_owned()
}

impl AccountEnrollment {
    /// The activation expiry in seconds (None when it does not parse: the schema refuses it).
    pub fn activation_expiry_seconds(&self) -> Option<u64> {
        parse_minutes_hours_days(&self.activation_expiry)
    }
}

/// `90m`, `12h`, `7d` as seconds.
pub fn parse_minutes_hours_days(text: &str) -> Option<u64> {
    let unit = match text.chars().last()? {
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    };
    let number: u64 = text.get(..text.len() - 1)?.parse().ok()?;
    number.checked_mul(unit)
}

/// Where machines come from: exactly one of `aws`, `gcp`, `azure` and `vmware`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube_core::Rule::new("(has(self.aws) ? 1 : 0) + (has(self.gcp) ? 1 : 0) + (has(self.azure) ? 1 : 0) + (has(self.vmware) ? 1 : 0) == 1")
    .message("enrollment.sources[]: set exactly one of aws, gcp, azure and vmware"))]
#[x_kube(validation = kube_core::Rule::new("has(self.aws) || has(self.region)")
    .message("enrollment.sources[].region: machines outside AWS carry no SSM region; name the region (one of spec.regions) their activations are created in")
    .field_path(".region"))]
pub struct EnrollmentSource {
    /// EC2 instances of these AWS accounts, proven by the instance identity document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsSource>,
    /// Compute Engine VMs of these Google Cloud projects, proven by the instance identity
    /// token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpSource>,
    /// Azure VMs of these subscriptions, proven by the instance metadata service's attested
    /// document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureSource>,
    /// VMs of these vCenters, proven by a token of the vCenter's signer (docs/enrollment.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmware: Option<VmwareSource>,
    /// The region (one of `spec.regions`) the activations are created in. Required for
    /// sources outside AWS; for AWS, absent means the instance's own region, which must
    /// then be one of `spec.regions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), pattern(limits::REGION_PATTERN))]
    pub region: Option<String>,
}

/// AWS accounts whose EC2 instances enroll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
pub struct AwsSource {
    /// 12-digit account ids (1-100).
    #[schemars(
        length(min = 1, max = 100),
        inner(length(min = 12, max = 12), pattern(limits::ACCOUNT_ID_PATTERN))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub account_ids: Vec<String>,
}

/// Google Cloud projects whose VMs enroll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
pub struct GcpSource {
    /// Project ids (not numbers), such as `shop-prod-1234` (1-100).
    #[schemars(
        length(min = 1, max = 100),
        inner(length(min = 6, max = 30), pattern(GCP_PROJECT_ID_PATTERN))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub project_ids: Vec<String>,
}

/// A Google Cloud project id: 6-30 lowercase letters, digits and hyphens, starting with a
/// letter and not ending with a hyphen
/// (<https://cloud.google.com/resource-manager/docs/creating-managing-projects>).
pub const GCP_PROJECT_ID_PATTERN: &str = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$";

/// Azure subscriptions whose VMs enroll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
pub struct AzureSource {
    /// Subscription ids (GUIDs, lowercase; 1-100). The attested document names the
    /// subscription, not the tenant, so a tenant is admitted by listing its subscriptions.
    #[schemars(
        length(min = 1, max = 100),
        inner(length(min = 36, max = 36), pattern(GUID_PATTERN))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub subscription_ids: Vec<String>,
}

/// A lowercase GUID.
pub const GUID_PATTERN: &str = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// vCenters whose VMs enroll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
pub struct VmwareSource {
    /// vCenter names as their signer writes them into `iss`, such as `vc01.example.com`
    /// (1-100). The enrollment server holds each one's public key.
    #[schemars(
        length(min = 1, max = 100),
        inner(length(min = 1, max = 253), pattern(limits::OBJECT_NAME_PATTERN))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub vcenters: Vec<String>,
}

/// A machine that enrolled: which source proved it, the SystemAccount and region its
/// activation was created in, and its patch group. Created by the enrollment server;
/// never holds the activation code.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[kube(
    crates(kube_core = ::kube_core),
    group = "patchfleet.io",
    version = "v1alpha1",
    kind = "Enrollment",
    doc = "A machine that proved its identity and was given an SSM hybrid activation in its SystemAccount.",
    shortname = "enr",
    category = "patchfleet",
    status = "EnrollmentStatus",
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".spec.source.id"}"#,
    printcolumn = r#"{"name":"Instance","type":"string","jsonPath":".spec.instanceId"}"#,
    printcolumn = r#"{"name":"Account","type":"string","jsonPath":".spec.systemAccount"}"#,
    printcolumn = r#"{"name":"Region","type":"string","jsonPath":".spec.region"}"#,
    printcolumn = r#"{"name":"Group","type":"string","jsonPath":".spec.patchGroup"}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".status.managedNodeId"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube_core::Rule::new("self.source == oldSelf.source && self.instanceId == oldSelf.instanceId && self.systemAccount == oldSelf.systemAccount && self.accountId == oldSelf.accountId && self.region == oldSelf.region && self.documentDigest == oldSelf.documentDigest")
    .message("an Enrollment's source, instance, account, region and document are what was verified and cannot change; only spec.patchGroup (and the informational spec.instanceName) may be edited"))]
pub struct EnrollmentSpec {
    /// The source that proved the machine's identity.
    pub source: EnrollmentSourceRef,
    /// The machine's id in its cloud: an EC2 instance id, a Compute Engine instance id,
    /// an Azure vmId, a VMware instance UUID.
    #[schemars(length(min = 1, max = 128))]
    pub instance_id: String,
    /// The machine's name, when its proof carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub instance_name: Option<String>,
    /// The SystemAccount (metadata.name) the machine enrolled into.
    #[schemars(length(min = 1, max = 253), pattern(limits::OBJECT_NAME_PATTERN))]
    pub system_account: String,
    /// That SystemAccount's AWS account id.
    #[schemars(length(min = 12, max = 12), pattern(limits::ACCOUNT_ID_PATTERN))]
    pub account_id: String,
    /// The region the activation was created in, where the managed node lives.
    #[schemars(length(max = 32), pattern(limits::REGION_PATTERN))]
    pub region: String,
    /// The node's `Patch Group` tag. Editable: the controller keeps the node's tag equal
    /// to it, as long as the SystemAccount's `enrollment.patchGroups` allows it.
    #[schemars(length(min = 1, max = 256), pattern(limits::PATCH_GROUP_PATTERN))]
    pub patch_group: String,
    /// SHA-256 (hex) of the identity document the machine presented: the same document
    /// presented again is a replay.
    #[schemars(length(min = 64, max = 64), pattern(r"^[0-9a-f]{64}$"))]
    pub document_digest: String,
}

/// A source as an Enrollment records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentSourceRef {
    /// aws, gcp, azure or vmware.
    pub kind: SourceKind,
    /// The AWS account id, Google Cloud project id, Azure subscription id or vCenter name.
    #[schemars(length(min = 1, max = 253))]
    pub id: String,
    /// Where the machine runs, when its proof says: the AWS region, the Google Cloud zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub location: Option<String>,
}

/// The clouds a machine enrolls from.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Aws,
    Gcp,
    Azure,
    Vmware,
}

impl SourceKind {
    pub const ALL: [SourceKind; 4] = [Self::Aws, Self::Gcp, Self::Azure, Self::Vmware];

    /// As spelled in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::Gcp => "gcp",
            Self::Azure => "azure",
            Self::Vmware => "vmware",
        }
    }

    /// What the source's id names, for messages.
    pub fn id_noun(self) -> &'static str {
        match self {
            Self::Aws => "AWS account",
            Self::Gcp => "Google Cloud project",
            Self::Azure => "Azure subscription",
            Self::Vmware => "vCenter",
        }
    }
}

/// Where an enrollment is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum EnrollmentPhase {
    /// The activation exists; the machine has not registered its agent yet.
    #[default]
    Pending,
    /// The machine registered: `managedNodeId` names its managed node.
    Registered,
    /// The activation expired unused and was deleted. Delete the Enrollment to let the
    /// machine enroll again.
    Expired,
    /// The node was deregistered outside patchfleet. Delete the Enrollment to let the
    /// machine enroll again.
    Deregistered,
}

/// What the controller found of the enrollment in SSM.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready (the node is registered and tagged), Reconciling and Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Pending, Registered, Expired or Deregistered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<EnrollmentPhase>,
    /// The SSM activation created for the machine (never its code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_id: Option<String>,
    /// When the activation stops accepting a registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_expires_at: Option<Time>,
    /// The managed node (`mi-...`) the machine's agent registered as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_node_id: Option<String>,
    /// When the controller first found the node registered (within a poll of the
    /// registration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<Time>,
    /// The `Patch Group` tag the controller last set on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tagged_patch_group: Option<String>,
}
