//! PatchRollout: a release of patches moves through ordered stages of PatchGroups, each
//! stage taking the release only when the stage before it installed it and held its gate
//! (docs/rollout.md).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube_derive::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::patch_group::PolicyReference;
use super::ssm::limits;

/// The most stages a rollout has.
pub const MAX_STAGES: usize = 10;
/// The longest soak: 30 days.
pub const MAX_SOAK_SECONDS: u64 = 30 * 86_400;

/// Stages of PatchGroups that receive each release of a PatchPolicy in order, on evidence:
/// a stage's groups get baselines approving patches released up to the release's cutoff
/// only once the stage before installed that release, its gate held and its soak elapsed.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[kube(
    crates(kube_core = ::kube_core),
    group = "patchfleet.io",
    version = "v1alpha1",
    kind = "PatchRollout",
    doc = "Ordered stages of PatchGroups that take each release of a PatchPolicy on evidence from the stage before.",
    namespaced,
    shortname = "prol",
    category = "patchfleet",
    status = "PatchRolloutStatus",
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".spec.policyRef.name"}"#,
    printcolumn = r#"{"name":"Release","type":"string","jsonPath":".status.release.token"}"#,
    printcolumn = r#"{"name":"Cutoff","type":"string","jsonPath":".status.release.cutoff"}"#,
    printcolumn = r#"{"name":"Stages","type":"string","jsonPath":".status.progress","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = kube_core::Rule::new("self.stages.all(a, self.stages.all(b, a.name == b.name || a.patchGroups.all(g, !(g in b.patchGroups))))")
    .message("spec.stages[].patchGroups: a PatchGroup may be in one stage only")
    .field_path(".stages"))]
#[serde(rename_all = "camelCase")]
pub struct PatchRolloutSpec {
    /// The PatchPolicy, in this namespace, whose approval rules say what is eligible.
    /// Every PatchGroup of the stages must follow it.
    pub policy_ref: PolicyReference,
    /// The release: a new `token` starts one.
    pub release: ReleaseSpec,
    /// The stages, in the order a release moves through them (1-10, unique names).
    #[schemars(length(min = 1, max = 10))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub stages: Vec<StageSpec>,
}

/// What a release is: a cutoff on the patches' release date, taken when it starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseSpec {
    /// Names the release (1-64 letters, digits and `_.:-`, such as `2026-12`). A new value
    /// starts a new release at the first stage; a Manual stage is approved by writing it
    /// into the stage's `approvedRelease`.
    #[schemars(length(min = 1, max = 64), pattern(limits::RUN_TOKEN_PATTERN))]
    pub token: String,
    /// The last patch release date the release approves (YYYY-MM-DD, UTC), written into
    /// every approval rule as SSM's `ApproveUntilDate`. Absent: the day (UTC) the
    /// controller starts the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 10, max = 10), pattern(limits::DATE_PATTERN))]
    pub cutoff: Option<String>,
}

/// One stage: its PatchGroups, how long it soaks after installing, and its gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube_core::Rule::new("!has(self.approvedRelease) || self.approval == 'Manual'")
    .message("stages[].approvedRelease: only a stage with approval Manual is approved")
    .field_path(".approvedRelease"))]
// A soak that does not match SOAK_PATTERN is left to the pattern's own error (int() of it
// would fail with a type conversion error next to it).
#[x_kube(validation = kube_core::Rule::new("!self.soak.matches('^[0-9]{1,7}[smhd]$') || int(self.soak.substring(0, self.soak.size() - 1)) * (self.soak.endsWith('d') ? 86400 : self.soak.endsWith('h') ? 3600 : self.soak.endsWith('m') ? 60 : 1) <= 2592000")
    .message("stages[].soak: at most 30 days (30d, 720h, 43200m or 2592000s)")
    .field_path(".soak"))]
pub struct StageSpec {
    /// The stage's name (1-63 lowercase letters, digits and `-`), unique in the rollout.
    #[schemars(length(min = 1, max = 63), pattern(limits::NAMESPACE_PATTERN))]
    pub name: String,
    /// The PatchGroups of this stage, by metadata.name in this namespace (1-50); each
    /// PatchGroup in one stage only.
    #[schemars(
        length(min = 1, max = 50),
        inner(length(min = 1, max = 253), pattern(limits::OBJECT_NAME_PATTERN))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub patch_groups: Vec<String>,
    /// How long the gate must keep holding after the stage installed the release before
    /// the next stage takes it: a number and a unit, `s`, `m`, `h` or `d` (at most 30
    /// days), such as `2d`. Default `0s`.
    #[serde(default = "default_soak")]
    #[schemars(length(min = 2, max = 8), pattern(SOAK_PATTERN))]
    pub soak: String,
    /// What the stage's nodes must show before it passes.
    #[serde(default)]
    pub gate: Gate,
    /// Automatic: the stage takes a release as soon as the stage before passed. Manual:
    /// it also waits until `approvedRelease` names the release.
    #[serde(default)]
    pub approval: Approval,
    /// On a Manual stage, the release a person approved for it (the release's token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), pattern(limits::RUN_TOKEN_PATTERN))]
    pub approved_release: Option<String>,
    /// A person's override: the stage counts as passed for the release with this token
    /// whatever its gate says, so a stage held by failures can let the next one go on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), pattern(limits::RUN_TOKEN_PATTERN))]
    pub override_release: Option<String>,
}

/// A soak: digits and one unit.
pub const SOAK_PATTERN: &str = r"^[0-9]{1,7}[smhd]$";

fn default_soak() -> String {
    "0s".to_owned()
}

/// The evidence a stage needs, in SSM's count-or-percent notation (as MaxErrors).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// The most nodes that may have failed to install the release (`N` or `N%` of the
    /// stage's nodes); one more fails the stage. Default `0`.
    #[serde(default = "default_max_failed")]
    #[schemars(length(min = 1, max = 7), pattern(limits::MAX_ERRORS_PATTERN))]
    pub max_failed: String,
    /// The least nodes that must have installed the release (`N` or `N%` of the stage's
    /// nodes; a percentage above 0 needs at least one node). Default `100%`.
    #[serde(default = "default_min_installed")]
    #[schemars(length(min = 1, max = 7), pattern(limits::MAX_ERRORS_PATTERN))]
    pub min_installed: String,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate {
            max_failed: default_max_failed(),
            min_installed: default_min_installed(),
        }
    }
}

fn default_max_failed() -> String {
    "0".to_owned()
}

fn default_min_installed() -> String {
    "100%".to_owned()
}

/// Whether a stage takes a release on evidence alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Approval {
    #[default]
    Automatic,
    Manual,
}

/// What the controller decided, and on what evidence.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
pub struct PatchRolloutStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready (the release passed every stage), Reconciling (a stage is installing,
    /// soaking or waiting for the one before), Stalled (the spec has problems, or a failed
    /// gate holds the later stages), and AllSystemsStaged (False when the policy has
    /// operating systems no stage can hold back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The current release, as it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseStatus>,
    /// One entry per stage, in the spec's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageStatus>,
    /// Every stage's state in one line, `name=State,...` in order (the Stages column: a
    /// table column shows one value of a list, so the list is written out here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
}

/// A release as it started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseStatus {
    pub token: String,
    /// YYYY-MM-DD: the last patch release date it approves.
    pub cutoff: String,
    pub started_at: Time,
}

/// Where one stage stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageStatus {
    pub name: String,
    /// The release the stage's baselines approve (its token); absent: none yet, so they
    /// approve only the policy's explicitly approved patches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// That release's cutoff (YYYY-MM-DD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutoff: Option<String>,
    pub state: StageState,
    /// When the stage entered its state.
    pub since: Time,
    /// What the stage's nodes showed at the last evaluation, for its release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<StageEvidence>,
    /// Why the stage is where it is, for a person.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The stage's states (docs/rollout.md draws them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StageState {
    /// The stage before has not passed the current release.
    Waiting,
    /// A Manual stage the current release may reach, waiting for a person.
    AwaitingApproval,
    /// The stage's baselines approve the release; its nodes have not shown the gate yet.
    Installing,
    /// The gate holds; the soak time runs.
    Soaking,
    /// The gate held for the soak time (or a person overrode it).
    Passed,
    /// More nodes failed than the gate allows: every later stage is held.
    Failed,
}

/// The stage's nodes, as the compliance pass read them from SSM, for the stage's release.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageEvidence {
    /// Nodes that reported a patch state in the stage's groups.
    #[schemars(extend("format" = "int32"))]
    pub nodes: u32,
    /// Nodes whose last report, under the release's baseline, lacks nothing and failed
    /// nothing.
    #[schemars(extend("format" = "int32"))]
    pub installed: u32,
    /// Nodes whose last report under the release's baseline has failed patches.
    #[schemars(extend("format" = "int32"))]
    pub failed: u32,
    /// Installed nodes still waiting for a reboot.
    #[schemars(extend("format" = "int32"))]
    pub pending_reboot: u32,
    /// Account-regions whose reading counted.
    #[schemars(extend("format" = "int32"))]
    pub account_regions: u32,
    /// The groups with failed nodes, and how many (worst first, at most 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_groups: Vec<GroupFailures>,
    /// The latest Install window execution that reported in the stage's groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_execution: Option<String>,
}

/// Failed nodes in one PatchGroup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupFailures {
    pub patch_group: String,
    #[schemars(extend("format" = "int32"))]
    pub failed: u32,
}
