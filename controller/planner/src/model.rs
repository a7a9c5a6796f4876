//! The planner's vocabulary: what one account-region should hold (desired), what it holds
//! (observed, as the SSM edge reads it) and the writes that take one to the other
//! (operations). These types are the contract between the pure planner and
//! `patchfleet-ssm`, which fills `Observed` and carries out `Operation`s.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use patchfleet_api::v1alpha1::{BaselineSpec, OperatingSystem, PatchOperation, RebootOption};

/// The unit of reconciliation: one system account in one region.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountRegion {
    /// metadata.name of the SystemAccount.
    pub account: String,
    /// Its 12-digit AWS account id.
    pub account_id: String,
    pub region: String,
}

impl fmt::Display for AccountRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}) {}", self.account, self.account_id, self.region)
    }
}

/// The kinds that own SSM objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OwnerKind {
    PatchPolicy,
    PatchGroup,
    MaintenanceWindow,
}

impl OwnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::PatchPolicy => "PatchPolicy",
            OwnerKind::PatchGroup => "PatchGroup",
            OwnerKind::MaintenanceWindow => "MaintenanceWindow",
        }
    }

    /// The inverse of [`OwnerKind::as_str`].
    pub fn parse(kind: &str) -> Option<OwnerKind> {
        match kind {
            "PatchPolicy" => Some(OwnerKind::PatchPolicy),
            "PatchGroup" => Some(OwnerKind::PatchGroup),
            "MaintenanceWindow" => Some(OwnerKind::MaintenanceWindow),
            _ => None,
        }
    }
}

/// The Kubernetes resource an SSM object belongs to; recorded in the owner tag as
/// `Kind/namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    pub kind: OwnerKind,
    pub namespace: String,
    pub name: String,
}

impl Owner {
    pub fn new(kind: OwnerKind, namespace: &str, name: &str) -> Owner {
        Owner {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// Reads the owner tag (`Kind/namespace/name`, as `Display` writes it). None for
    /// anything else: such an object has no known owner, so no deletion policy applies.
    pub fn parse(tag: &str) -> Option<Owner> {
        let mut parts = tag.splitn(3, '/');
        let kind = OwnerKind::parse(parts.next()?)?;
        let namespace = parts.next().filter(|s| !s.is_empty())?;
        let name = parts.next().filter(|s| !s.is_empty() && !s.contains('/'))?;
        Some(Owner::new(kind, namespace, name))
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind.as_str(), self.namespace, self.name)
    }
}

/// Tag keys patchfleet writes on what it creates. An object is patchfleet's exactly when
/// its `CLUSTER` tag equals this controller's cluster identity: a look-alike name is not
/// enough, and objects of another cluster's patchfleet are not this one's either.
pub mod tags {
    /// The cluster identity of the controller that owns the object.
    pub const CLUSTER: &str = "patchfleet.io/cluster";
    /// The owning resource, `Kind/namespace/name`.
    pub const OWNER: &str = "patchfleet.io/owner";
    /// Fingerprint of the desired definition last applied (see `fingerprint`). Not a tag
    /// in SSM any more: the fingerprint is a marker at the end of the object's
    /// description, which the list calls return; the SSM edge reports it under this key of
    /// an observed object's `tags`. Release still removes a tag of this name (written by
    /// older versions).
    pub const FINGERPRINT: &str = "patchfleet.io/fingerprint";
}

/// What a maintenance window is, as CreateMaintenanceWindow takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowDefinition {
    pub description: Option<String>,
    pub schedule: String,
    pub schedule_timezone: Option<String>,
    pub schedule_offset: Option<i32>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub duration: i32,
    pub cutoff: i32,
    pub enabled: bool,
}

/// One window target: the instances tagged `Patch Group: <patch_group>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetDefinition {
    /// The `Patch Group` tag value.
    pub patch_group: String,
    /// Recorded as the target's OwnerInformation (`Kind/namespace/name` of the PatchGroup).
    pub owner_information: String,
}

/// What a window task runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskAction {
    /// RUN_COMMAND AWS-RunPatchBaseline with Operation and RebootOption.
    RunPatchBaseline {
        operation: PatchOperation,
        reboot_option: RebootOption,
    },
    /// AUTOMATION with a runbook and its parameters (snapshot before patching).
    Automation {
        document: String,
        parameters: BTreeMap<String, Vec<String>>,
    },
}

/// One window task, as RegisterTaskWithMaintenanceWindow takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskDefinition {
    pub description: Option<String>,
    pub action: TaskAction,
    /// The role the task runs as (`ServiceRoleArn`); None: SSM's service-linked role.
    pub service_role_arn: Option<String>,
    pub max_concurrency: String,
    pub max_errors: String,
    pub priority: i32,
    /// Names of the window's targets the task runs on (resolved to target ids on apply).
    pub targets: BTreeSet<String>,
}

/// A patch baseline that should exist, with the patch groups registered to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredBaseline {
    /// The SSM baseline name (deterministic; see `naming`).
    pub name: String,
    pub owner: Owner,
    /// Normalized: lists in a canonical order, so that equal intent compares equal.
    /// Shared by every account-region that follows the policy (see `definitions`).
    pub definition: Arc<BaselineSpec>,
    /// `Patch Group` values registered to this baseline.
    pub patch_groups: BTreeSet<String>,
    /// The incarnation of the policy it was planned for (create tokens).
    pub revision: Revision,
}

/// Which incarnation of its owner an object was planned for: the owner's metadata.uid
/// and generation. Create tokens are made from it (with the fingerprint), so a resource
/// deleted and applied again, however many times, gets tokens SSM has never seen: SSM
/// answers a token it remembers with the id of the object it once created, deleted or not
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreatePatchBaseline.html>).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Revision {
    pub uid: String,
    pub generation: i64,
}

impl Revision {
    pub fn of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Revision {
        Revision {
            uid: meta.uid.clone().unwrap_or_default(),
            generation: meta.generation.unwrap_or_default(),
        }
    }
}

impl DesiredBaseline {
    pub fn operating_system(&self) -> OperatingSystem {
        self.definition.operating_system
    }
}

/// A maintenance window that should exist, with its targets and tasks by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredWindow {
    pub name: String,
    pub owner: Owner,
    pub definition: WindowDefinition,
    pub targets: BTreeMap<String, TargetDefinition>,
    pub tasks: BTreeMap<String, TaskDefinition>,
    /// The incarnation of the MaintenanceWindow it was planned for (create tokens).
    pub revision: Revision,
}

/// An Emergency run that should have happened in this account-region: AWS-RunPatchBaseline
/// sent once with Run Command (SendCommand) to the instances of the target patch groups.
/// Commands carry no tags and SendCommand no idempotency token, so the command is known
/// by its Comment, which starts with [`DesiredRun::marker`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredRun {
    pub owner: Owner,
    pub run_token: String,
    /// The SendCommand Comment (at most 100 characters), starting with the marker.
    pub comment: String,
    pub operation: PatchOperation,
    pub reboot_option: RebootOption,
    pub max_concurrency: String,
    pub max_errors: String,
    /// `Patch Group` tag values: the command targets `tag:Patch Group` with these.
    pub patch_groups: BTreeSet<String>,
    /// False for a disabled window: nothing is sent; a command already running is
    /// followed to its end.
    pub enabled: bool,
}

impl DesiredRun {
    /// What identifies this run's command in SSM: the cluster, the owner and the token
    /// hashed, so that no other cluster, window or token matches.
    pub fn marker(cluster_id: &str, owner: &Owner, run_token: &str) -> String {
        let text = format!("{cluster_id}\n{owner}\n{run_token}");
        format!(
            "patchfleet run {:016x}",
            crate::fingerprint::fnv1a64(text.as_bytes())
        )
    }
}

/// A Run Command command as ListCommands or SendCommand report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedCommand {
    pub command_id: String,
    pub comment: Option<String>,
    pub status: String,
    pub status_details: Option<String>,
    pub target_count: i32,
    pub completed_count: i32,
    pub error_count: i32,
    /// RFC 3339.
    pub requested_at: Option<String>,
}

/// Everything patchfleet should own in one account-region, keyed by SSM name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    pub baselines: BTreeMap<String, DesiredBaseline>,
    pub windows: BTreeMap<String, DesiredWindow>,
    /// Emergency runs by their MaintenanceWindow: sent once per run token.
    pub runs: BTreeMap<Owner, DesiredRun>,
    /// The baseline (by name, one of `baselines`) each operating system's default patch
    /// baseline should be: the account's `defaultPatchPolicy`. An operating system not
    /// listed should have AWS's predefined default, wherever a baseline of this
    /// controller is the default now.
    pub defaults: BTreeMap<OperatingSystem, String>,
    /// Owners whose part of this account-region was refused (such as a MaintenanceWindow
    /// naming a PatchGroup that does not exist): they have nothing in `baselines` or
    /// `windows`, yet what they already own here is left exactly as it is, neither
    /// updated nor deleted, so that nothing is half-applied while the problem stands.
    pub held: BTreeSet<Owner>,
}

/// A patch baseline as read from SSM. `definition` is None when the pass skipped the deep
/// read (GetPatchBaseline) because the fingerprint matched. Its description is the user's,
/// without the fingerprint marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedBaseline {
    pub id: String,
    pub name: String,
    pub operating_system: OperatingSystem,
    /// For an object this controller owns: `tags::CLUSTER` and `tags::OWNER` (read once
    /// with ListTagsForResource and remembered by id), and `tags::FINGERPRINT`, read from
    /// the description marker on every list. Empty for anything else.
    pub tags: BTreeMap<String, String>,
    pub definition: Option<BaselineSpec>,
    /// Whether it is its operating system's default patch baseline (DescribePatchBaselines
    /// reports it in each baseline's identity, so knowing it costs no call).
    pub default: bool,
}

/// A patch group registered to a baseline for one operating system.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObservedRegistration {
    pub patch_group: String,
    pub operating_system: OperatingSystem,
    pub baseline_id: String,
    /// The baseline's name, as DescribePatchGroups reports it with the id (None where it
    /// is not known, as in plans built by hand).
    pub baseline_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedTarget {
    pub id: String,
    pub name: Option<String>,
    pub definition: TargetDefinition,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedTask {
    pub id: String,
    pub name: Option<String>,
    /// `targets` holds target names, resolved from the task's WindowTargetIds.
    pub definition: TaskDefinition,
}

/// A maintenance window as read from SSM; targets and tasks are None when not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedWindow {
    pub id: String,
    pub name: String,
    /// As [`ObservedBaseline::tags`].
    pub tags: BTreeMap<String, String>,
    pub definition: Option<WindowDefinition>,
    pub targets: Option<Vec<ObservedTarget>>,
    pub tasks: Option<Vec<ObservedTask>>,
}

/// What the SSM edge read in one account-region: every baseline and window (owned or
/// not: quotas count them all), and every patch group registration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub baselines: Vec<ObservedBaseline>,
    pub registrations: Vec<ObservedRegistration>,
    pub windows: Vec<ObservedWindow>,
}

/// A baseline or window an operation acts on: known by id, or created earlier in the same
/// plan and known by its name until the SSM edge learns its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectRef {
    Id(String),
    Created(String),
}

/// One SSM write. A plan lists them in an order that is safe to apply one by one:
/// creates before registrations, deregistrations before deletes.
///
/// `fingerprint` is the fingerprint to record with the object: the SSM edge writes it as a
/// marker at the end of the description, in the same call as the definition (so that a
/// failed update leaves the old one, and the next pass reads deeply).
/// CreateWindow's is the real fingerprint: the window is created marked
/// `fingerprint::PENDING` and the edge writes the real one once every target and task
/// the batch registers for it is in place, so a batch stopped halfway leaves it pending.
/// UpdateWindow's may be `fingerprint::PENDING`: the plan also changes the window's
/// targets or tasks, and only a later deep read that finds them in place stamps the real
/// fingerprint (one more UpdateWindow, on the next pass).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    CreateBaseline {
        baseline: DesiredBaseline,
        fingerprint: String,
    },
    UpdateBaseline {
        id: String,
        baseline: DesiredBaseline,
        fingerprint: String,
    },
    DeleteBaseline {
        id: String,
        name: String,
    },
    RegisterPatchGroup {
        baseline: ObjectRef,
        patch_group: String,
    },
    DeregisterPatchGroup {
        baseline_id: String,
        patch_group: String,
    },
    CreateWindow {
        window: DesiredWindow,
        fingerprint: String,
    },
    UpdateWindow {
        id: String,
        window: DesiredWindow,
        fingerprint: String,
    },
    DeleteWindow {
        id: String,
        name: String,
    },
    RegisterTarget {
        window: ObjectRef,
        name: String,
        target: TargetDefinition,
    },
    UpdateTarget {
        window_id: String,
        target_id: String,
        name: String,
        target: TargetDefinition,
    },
    DeregisterTarget {
        window_id: String,
        target_id: String,
    },
    RegisterTask {
        window: ObjectRef,
        name: String,
        task: TaskDefinition,
    },
    UpdateTask {
        window_id: String,
        task_id: String,
        name: String,
        task: TaskDefinition,
    },
    DeregisterTask {
        window_id: String,
        task_id: String,
    },
    /// RegisterDefaultPatchBaseline: the baseline becomes its operating system's default.
    RegisterDefaultBaseline {
        baseline: ObjectRef,
        operating_system: OperatingSystem,
    },
    /// RegisterDefaultPatchBaseline with AWS's predefined default for the operating system
    /// (by its full ARN, as the API requires for AWS's baselines), in place of `replacing`,
    /// a baseline of this controller's that is the default now and is not to be.
    RestoreDefaultBaseline {
        operating_system: OperatingSystem,
        replacing: String,
    },
    /// Deletion policy Orphan: leave the object, remove patchfleet's tags from it.
    ReleaseBaseline {
        id: String,
    },
    ReleaseWindow {
        id: String,
    },
}

/// The `reason` of every [`Problem`] the planner reports.
pub mod reasons {
    /// A PatchGroup's `spec.policyRef` names no PatchPolicy (or one being deleted).
    pub const POLICY_NOT_FOUND: &str = "PolicyNotFound";
    /// A MaintenanceWindow's `spec.targets.patchGroups` names no PatchGroup.
    pub const PATCH_GROUP_NOT_FOUND: &str = "PatchGroupNotFound";
    /// A SystemAccount selected by a PatchGroup does not admit the group's namespace.
    pub const NAMESPACE_NOT_PERMITTED: &str = "NamespaceNotPermitted";
    /// A SystemAccount admits the group's namespace but does not grant it the group's
    /// `Patch Group` value (or grants it to several namespaces): nothing is planned for
    /// the group there.
    pub const PATCH_GROUP_NOT_GRANTED: &str = "PatchGroupNotGranted";
    /// A window task names a service role its SystemAccount does not list in
    /// `spec.taskRoles`: the task is not registered there.
    pub const TASK_ROLE_NOT_ALLOWED: &str = "TaskRoleNotAllowed";
    /// A SystemAccount's `spec.defaultPatchPolicy` names no PatchPolicy (or one being
    /// deleted): AWS's predefined baselines are the defaults there. Reported on the
    /// SystemAccount.
    pub const DEFAULT_PATCH_POLICY_NOT_FOUND: &str = "DefaultPatchPolicyNotFound";
    /// A label selector that Kubernetes would refuse (unknown operator, missing values).
    pub const INVALID_SELECTOR: &str = "InvalidSelector";
    /// Two resources map to the same SSM name (see `naming`).
    pub const NAME_CONFLICT: &str = "NameConflict";
    /// Two PatchGroups with the same `Patch Group` value follow different policies that
    /// both have a baseline for one operating system.
    pub const PATCH_GROUP_CONFLICT: &str = "PatchGroupConflict";
    /// The patch group is registered, for this operating system, to a baseline patchfleet
    /// does not own: it is left alone.
    pub const PATCH_GROUP_REGISTERED_ELSEWHERE: &str = "PatchGroupRegisteredElsewhere";
    /// Applying the plan would exceed an SSM quota: nothing is written.
    pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";
    /// A Frozen MaintenanceWindow has an Install task: the task is not registered (the
    /// window and its Scan tasks are).
    pub const INSTALL_IN_FROZEN_WINDOW: &str = "InstallInFrozenWindow";
    /// A field the schema requires is missing (an object stored before the rule
    /// existed, or written around it): the part it concerns is not planned.
    pub const INVALID_SPEC: &str = "InvalidSpec";
}

/// Why (part of) an account-region cannot be planned. Reported on the owner as a Stalled
/// condition and an Event; nothing of the refused part is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub owner: Owner,
    pub account_region: Option<AccountRegion>,
    /// CamelCase, such as PolicyNotFound or QuotaExceeded (see [`reasons`]).
    pub reason: &'static str,
    pub message: String,
}

impl Problem {
    /// The order problems are reported in: by owner, account-region, reason, message.
    pub fn sort_key(&self) -> (&Owner, &Option<AccountRegion>, &'static str, &str) {
        (
            &self.owner,
            &self.account_region,
            self.reason,
            &self.message,
        )
    }
}

/// Sorts problems and drops repeats, so that equal inputs report equal lists.
pub fn sort_problems(problems: &mut Vec<Problem>) {
    problems.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    problems.dedup();
}
