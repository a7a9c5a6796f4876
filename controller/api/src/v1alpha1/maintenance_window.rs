//! MaintenanceWindow: WHEN and HOW the instances of some PatchGroups are patched.

use kube_derive::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::nodes::WindowRuns;
use super::ssm::{DeletionPolicy, limits};
use super::status::FleetStatus;

/// An SSM maintenance window with one target per patch group and its patching tasks. It
/// exists in every account and region where one of its target PatchGroups exists.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[kube(
    crates(kube_core = ::kube_core),
    group = "patchfleet.io",
    version = "v1alpha1",
    kind = "MaintenanceWindow",
    doc = "When and how patch groups are patched: an SSM maintenance window with its targets and tasks.",
    namespaced,
    shortname = "mw",
    category = "patchfleet",
    status = "MaintenanceWindowStatus",
    printcolumn = r#"{"name":"Strategy","type":"string","jsonPath":".spec.strategy"}"#,
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Enabled","type":"boolean","jsonPath":".spec.enabled","priority":1}"#,
    printcolumn = r#"{"name":"Accounts","type":"integer","jsonPath":".status.summary.selected"}"#,
    printcolumn = r#"{"name":"Failing","type":"integer","jsonPath":".status.summary.failing"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"RunsFailed","type":"integer","jsonPath":".status.runs.failed"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.cutoff) || !has(self.duration) || self.cutoff < self.duration")
    .message("spec.cutoff must be less than spec.duration (hours): SSM stops starting tasks cutoff hours before the window ends")
    .field_path(".cutoff"))]
#[x_kube(validation = Rule::new("!has(self.scheduleOffset) || !has(self.schedule) || self.schedule.startsWith('cron(')")
    .message("spec.scheduleOffset only applies to cron schedules: remove it or use cron(...)")
    .field_path(".scheduleOffset"))]
#[x_kube(validation = Rule::new("!has(self.startDate) || !has(self.endDate) || self.endDate > self.startDate")
    .message("spec.endDate must be after spec.startDate")
    .field_path(".endDate"))]
#[x_kube(validation = Rule::new("self.strategy != 'Frozen' || self.tasks.all(t, t.operation == 'Scan')")
    .message("spec.tasks[].operation: a Frozen window only scans; use operation Scan or another strategy")
    .field_path(".tasks"))]
#[x_kube(validation = Rule::new("self.strategy == 'Emergency' || (has(self.schedule) && has(self.duration) && has(self.cutoff))")
    .message("spec.schedule, spec.duration and spec.cutoff are required: only an Emergency window runs without a schedule")
    .field_path(".schedule"))]
#[x_kube(validation = Rule::new("self.strategy != 'Emergency' || !(has(self.schedule) || has(self.scheduleTimezone) || has(self.scheduleOffset) || has(self.startDate) || has(self.endDate) || has(self.duration) || has(self.cutoff))")
    .message("spec.schedule: an Emergency window runs at once, each time spec.runToken changes; remove schedule, scheduleTimezone, scheduleOffset, startDate, endDate, duration and cutoff")
    .field_path(".schedule"))]
#[x_kube(validation = Rule::new("self.strategy != 'Emergency' || has(self.runToken)")
    .message("spec.runToken is required for an Emergency window: it runs once per run token (such as a change ticket); set a new one to run again")
    .field_path(".runToken"))]
#[x_kube(validation = Rule::new("self.strategy == 'Emergency' || !has(self.runToken)")
    .message("spec.runToken only applies to strategy Emergency: remove it")
    .field_path(".runToken"))]
#[x_kube(validation = Rule::new("self.strategy != 'Emergency' || self.tasks.size() == 1")
    .message("spec.tasks: an Emergency window sends one command, so it has exactly one task")
    .field_path(".tasks"))]
#[x_kube(validation = Rule::new("self.strategy != 'Emergency' || self.tasks.all(t, !t.snapshotBeforePatch)")
    .message("spec.tasks[].snapshotBeforePatch: an Emergency run is a Run Command, which takes no snapshot; use a Scheduled window for snapshot-protected patching")
    .field_path(".tasks"))]
#[x_kube(validation = Rule::new("self.strategy != 'Emergency' || self.tasks.all(t, !has(t.serviceRoleName))")
    .message("spec.tasks[].serviceRoleName: an Emergency run is a Run Command sent with the controller's own role; remove it")
    .field_path(".tasks"))]
#[x_kube(validation = Rule::new("self.strategy != 'Emergency' || self.targets.patchGroups.size() <= 50")
    .message("spec.targets.patchGroups: an Emergency run targets at most 50 patch groups (the values of one Run Command target)")
    .field_path(".targets.patchGroups"))]
#[x_kube(validation = Rule::new("self.strategy != 'Opportunistic' || self.tasks.all(t, t.operation == 'Scan' || t.rebootOption == 'RebootIfNeeded')")
    .message("spec.tasks[].rebootOption: an Opportunistic window reboots only when a patch needs it; use RebootIfNeeded")
    .field_path(".tasks"))]
pub struct MaintenanceWindowSpec {
    /// When the window opens: `cron(...)` (six fields, as SSM maintenance windows take
    /// them), `rate(N minutes|hours|days)` or a one-time `at(YYYY-MM-DDThh:mm:ss)`.
    /// Required, except for an Emergency window, which has no schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), pattern(limits::SCHEDULE_PATTERN))]
    pub schedule: Option<String>,

    /// The IANA time zone the schedule is in, such as `Europe/Paris`. Absent: UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), pattern(limits::TIME_ZONE_PATTERN))]
    pub schedule_timezone: Option<String>,

    /// Days (1-6) to wait after the date a cron schedule names, such as the second
    /// Tuesday of the month plus 2 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 6))]
    pub schedule_offset: Option<i32>,

    /// The window is not active before this date and time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), extend("format" = "date-time"))]
    pub start_date: Option<String>,

    /// The window is not active after this date and time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), extend("format" = "date-time"))]
    pub end_date: Option<String>,

    /// How long the window stays open, in hours (1-24). Required with a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 24))]
    pub duration: Option<i32>,

    /// Hours before the window closes after which no new task starts (0-23, less than
    /// `duration`). Required with a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 23))]
    pub cutoff: Option<i32>,

    /// A disabled window exists in SSM but does not run; a disabled Emergency window
    /// sends nothing, whatever its run token.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,

    /// Which enterprise patch policy the window carries out: Scheduled (the regular
    /// window, latest approved patches), Emergency (urgent patches applied at once, not
    /// waiting for the window), Opportunistic (low-impact patches in the window, nothing
    /// done when none are missing) or Frozen (no patching after go-live; scan only).
    #[serde(default)]
    pub strategy: Strategy,

    /// Emergency windows only: the task is sent with Run Command to the instances of the
    /// target patch groups once per value of this token in each selected account and
    /// region (an account-region selected later gets the current token's run; instances
    /// tagged after the run do not). Re-applying the same token runs nothing; a new value
    /// (such as a change ticket id) runs again. See docs/policies.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), pattern(limits::RUN_TOKEN_PATTERN))]
    pub run_token: Option<String>,

    /// A description for the SSM window (up to 98 characters: SSM allows 128, and
    /// patchfleet appends its 30-character fingerprint marker, ` [patchfleet:<hash>]`,
    /// which lets a pass see from the window list alone that nothing changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 98))]
    pub description: Option<String>,

    /// The instances the window patches.
    pub targets: WindowTargets,

    /// What runs in the window, in priority order (1-20 tasks, unique by name).
    #[schemars(length(min = 1, max = 20))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub tasks: Vec<WindowTask>,

    /// Delete removes the window from every account when this resource is deleted;
    /// Orphan leaves it there.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn enabled_by_default() -> bool {
    true
}

/// Status of a MaintenanceWindow: the rollup every namespaced kind has, and the runs of
/// an Emergency window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindowStatus {
    #[serde(flatten)]
    pub fleet: FleetStatus,
    /// Emergency windows: the run of the current (or last) run token in each account and
    /// region, with its Run Command id and outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["accountId".into(), "region".into()]))]
    pub emergency_runs: Vec<EmergencyRun>,
    /// Scheduled windows: the last execution in each account-region, read from SSM by
    /// the compliance pass (docs/compliance.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<WindowRuns>,
}

/// One Emergency run in one account and region: the command sent and how it went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmergencyRun {
    /// The 12-digit AWS account id.
    pub account_id: String,
    /// The region, such as eu-west-1.
    pub region: String,
    /// The spec.runToken the command was sent for.
    pub run_token: String,
    /// The Run Command id (SendCommand's CommandId).
    pub command_id: String,
    /// The command's status as Run Command reports it: Pending, InProgress, Success,
    /// Failed, TimedOut, Cancelling or Cancelled; Unknown when SSM no longer lists the
    /// command (it keeps them for 30 days) before patchfleet saw it finish.
    pub status: String,
    /// Run Command's StatusDetails, such as `No Instances In Tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_details: Option<String>,
    /// Instances the command reached.
    #[serde(default)]
    pub target_count: i32,
    /// Instances where it finished (whatever the result).
    #[serde(default)]
    pub completed_count: i32,
    /// Instances where it failed.
    #[serde(default)]
    pub error_count: i32,
    /// When SSM received the command (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
}

impl EmergencyRun {
    /// Whether Run Command is done with it: no status change will follow
    /// (<https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html>).
    pub fn is_finished(&self) -> bool {
        matches!(
            self.status.as_str(),
            "Success" | "Failed" | "TimedOut" | "Cancelled" | "Unknown"
        )
    }
}

/// The four patch policies of enterprise patch operations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Strategy {
    #[default]
    Scheduled,
    Emergency,
    Opportunistic,
    Frozen,
}

/// The window's targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowTargets {
    /// PatchGroup names in this namespace (1-100): each becomes a window target on the
    /// tag `Patch Group` with that group's `groupName`.
    #[schemars(
        length(min = 1, max = 100),
        inner(length(min = 1, max = 253), pattern(limits::OBJECT_NAME_PATTERN))
    )]
    pub patch_groups: Vec<String>,
}

/// One patching task: AWS-RunPatchBaseline (or, with `snapshotBeforePatch`, an Automation
/// runbook that snapshots first) run against the window's targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.snapshotBeforePatch || self.operation == 'Install'")
    .message("tasks[].snapshotBeforePatch needs operation Install: a scan changes nothing to roll back")
    .field_path(".snapshotBeforePatch"))]
#[x_kube(validation = Rule::new("!self.snapshotBeforePatch || has(self.serviceRoleName)")
    .message("tasks[].serviceRoleName is required with snapshotBeforePatch: the snapshot runbook assumes that role to snapshot, patch and roll back")
    .field_path(".serviceRoleName"))]
#[x_kube(validation = Rule::new("!has(self.serviceRoleName) || !self.serviceRoleName.startsWith('aws-service-role/')")
    .message("tasks[].serviceRoleName: a service-linked role is what SSM uses without a role; leave the field out or name a role of your own")
    .field_path(".serviceRoleName"))]
#[x_kube(validation = Rule::new("!self.snapshotBeforePatch || self.rebootOption == 'RebootIfNeeded'")
    .message("tasks[].rebootOption: the snapshot runbook (AWS-PatchInstanceWithRollback) takes no reboot option and reboots when a patch needs it; use RebootIfNeeded")
    .field_path(".rebootOption"))]
pub struct WindowTask {
    /// The task's name in SSM (3-128 letters, digits, `_`, `-`, `.`).
    #[schemars(length(min = 3, max = 128), pattern(limits::SSM_NAME_PATTERN))]
    pub name: String,

    /// A description for the SSM task (up to 128 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub description: Option<String>,

    /// Scan reports missing patches; Install installs them.
    pub operation: PatchOperation,

    /// After Install: RebootIfNeeded or NoReboot.
    #[serde(default)]
    pub reboot_option: RebootOption,

    /// How many instances are patched at once: a count (`10`) or a percentage (`10%`).
    #[serde(default = "default_max_concurrency")]
    #[schemars(length(min = 1, max = 7), pattern(limits::MAX_CONCURRENCY_PATTERN))]
    pub max_concurrency: String,

    /// How many errors stop the task: a count (`0` allowed) or a percentage.
    #[serde(default = "default_max_errors")]
    #[schemars(length(min = 1, max = 7), pattern(limits::MAX_ERRORS_PATTERN))]
    pub max_errors: String,

    /// Lower runs first; tasks of equal priority run in parallel (0 or more).
    #[serde(default = "default_priority")]
    #[schemars(range(min = 0, max = 1000))]
    pub priority: i32,

    /// Take an EBS snapshot of the root volume before installing, so a failed patch is
    /// rolled back: the task runs the AWS-PatchInstanceWithRollback runbook instead of
    /// AWS-RunPatchBaseline (EC2 instances only; in accounts whose platform is not aws
    /// the instances are hybrid nodes without snapshots, are patched directly, and the
    /// status says so). Needs `serviceRoleName` and rebootOption RebootIfNeeded.
    #[serde(default)]
    pub snapshot_before_patch: bool,

    /// The IAM role, by name (with its path, if any, such as `service-role/patching`),
    /// that the task runs as in each target account: patchfleet writes
    /// `arn:<partition>:iam::<account id>:role/<name>` as the task's service role and,
    /// with `snapshotBeforePatch`, as the runbook's AutomationAssumeRole. See
    /// docs/policies.md for the permissions it needs. Absent: SSM's service-linked role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), pattern(limits::ROLE_NAME_PATTERN))]
    pub service_role_name: Option<String>,
}

fn default_max_concurrency() -> String {
    "10%".to_owned()
}

fn default_max_errors() -> String {
    "1".to_owned()
}

fn default_priority() -> i32 {
    1
}

/// AWS-RunPatchBaseline's Operation parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PatchOperation {
    Scan,
    Install,
}

/// AWS-RunPatchBaseline's RebootOption parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RebootOption {
    #[default]
    RebootIfNeeded,
    NoReboot,
}
