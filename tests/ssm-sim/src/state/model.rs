//! The stored objects. Nested AWS structures whose content the simulator does not
//! act on (approval rules, invocation parameters, ...) are kept as JSON.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

pub type Tags = BTreeMap<String, String>;

/// Nested JSON kept as compact text: a `Value` tree costs a B-tree node per
/// object, which made stored objects several times larger (see the benchmark).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Json(Box<str>);

impl Json {
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

impl From<Value> for Json {
    fn from(v: Value) -> Self {
        Self(v.to_string().into_boxed_str())
    }
}

impl From<&Json> for Value {
    fn from(j: &Json) -> Self {
        j.value()
    }
}

#[derive(Debug, Clone)]
pub struct Baseline {
    pub id: String,
    pub name: String,
    pub operating_system: String,
    pub description: Option<String>,
    pub global_filters: Option<Json>,
    pub approval_rules: Option<Json>,
    pub approved_patches: Vec<String>,
    pub approved_patches_compliance_level: String,
    pub approved_patches_enable_non_security: bool,
    pub rejected_patches: Vec<String>,
    pub rejected_patches_action: String,
    pub sources: Option<Json>,
    pub available_security_updates_compliance_status: Option<String>,
    pub created: f64,
    pub modified: f64,
    pub tags: Tags,
    pub patch_groups: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct Window {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub schedule: String,
    pub schedule_timezone: Option<String>,
    pub schedule_offset: Option<i64>,
    pub duration: i64,
    pub cutoff: i64,
    pub allow_unassociated_targets: bool,
    pub enabled: bool,
    pub created: f64,
    pub modified: f64,
    pub tags: Tags,
    pub targets: BTreeMap<String, Box<WindowTarget>>,
    pub tasks: BTreeMap<String, Box<WindowTask>>,
    /// Occurrences up to this time (epoch seconds) have run or will never run: the
    /// window's creation, its last update, or its last occurrence handled.
    pub handled_until: f64,
    /// The first occurrence after `handled_until` (None: disabled or none left), kept so
    /// that every call can check for due windows without evaluating schedules.
    pub next_due: Option<f64>,
    /// The latest executions, oldest first (at most `EXECUTIONS_PER_WINDOW`).
    pub executions: std::collections::VecDeque<WindowExecution>,
    /// Numbers the executions, for newest-first paging.
    pub execution_seq: u64,
}

/// How a window execution, task execution or task invocation ended, and when; its status
/// is PENDING before `start` and IN_PROGRESS until `end`.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: &'static str,
    pub details: String,
    pub start: f64,
    pub end: f64,
}

impl RunOutcome {
    /// The status at `now`
    /// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_MaintenanceWindowExecution.html).
    pub fn status_at(&self, now: f64) -> (&'static str, &str) {
        if now < self.start {
            ("PENDING", "Pending")
        } else if now < self.end {
            ("IN_PROGRESS", "In progress")
        } else {
            (self.status, &self.details)
        }
    }
}

/// One occurrence of a maintenance window.
#[derive(Debug, Clone)]
pub struct WindowExecution {
    pub id: String,
    pub seq: u64,
    pub outcome: RunOutcome,
    pub tasks: Vec<TaskExecution>,
}

/// One task of a window execution.
#[derive(Debug, Clone)]
pub struct TaskExecution {
    pub id: String,
    pub window_task_id: String,
    pub task_arn: String,
    pub task_type: String,
    pub priority: i64,
    pub max_concurrency: Option<String>,
    pub max_errors: Option<String>,
    pub service_role: String,
    /// The legacy TaskParameters as registered.
    pub task_parameters: Option<Json>,
    pub alarm_configuration: Option<Json>,
    pub outcome: RunOutcome,
    pub invocations: Vec<TaskInvocation>,
}

/// A task on one target.
#[derive(Debug, Clone)]
pub struct TaskInvocation {
    pub id: String,
    /// The Run Command command id (RUN_COMMAND tasks that reached the node).
    pub execution_id: Option<String>,
    pub parameters: String,
    pub outcome: RunOutcome,
    pub owner_information: Option<String>,
    pub window_target_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct WindowTarget {
    pub id: String,
    pub resource_type: String,
    pub targets: Json,
    pub owner_information: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct WindowTask {
    pub id: String,
    pub task_arn: String,
    pub task_type: String,
    pub targets: Option<Json>,
    pub service_role_arn: Option<String>,
    pub task_parameters: Option<Json>,
    pub task_invocation_parameters: Option<Json>,
    pub priority: i64,
    pub max_concurrency: Option<String>,
    pub max_errors: Option<String>,
    pub logging_info: Option<Json>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub cutoff_behavior: Option<String>,
    pub alarm_configuration: Option<Json>,
}

/// What SSM knows of a managed node itself, as DescribeInstanceInformation reports it
/// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformation.html).
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    /// Windows, Linux or MacOS.
    pub platform_type: String,
    pub platform_name: String,
    pub platform_version: String,
    /// The Patch Manager operating system (WINDOWS, AMAZON_LINUX_2, ...): which baseline
    /// applies to the node.
    pub operating_system: String,
    /// Online or ConnectionLost.
    pub ping_status: String,
    pub agent_version: String,
    /// Whether the agent is the latest version (reported for Linux and macOS only).
    pub latest_agent: bool,
    /// AWS::EC2::Instance, AWS::SSM::ManagedInstance, Microsoft.Compute/virtualMachines,
    /// compute.googleapis.com/Instance: where the node runs.
    pub source_type: String,
    /// Epoch seconds.
    pub registered: f64,
    pub last_ping: f64,
    /// Hybrid nodes only.
    pub activation_id: Option<String>,
    pub iam_role: Option<String>,
    /// Hybrid nodes: their activation's DefaultInstanceName, InstanceInformation's `Name`.
    pub name: Option<String>,
    pub computer_name: String,
    pub ip_address: String,
}

/// A hybrid activation
/// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Activation.html).
#[derive(Debug, Clone)]
pub struct Activation {
    pub id: String,
    /// What an agent presents with the id to register; no API returns it again.
    pub code: String,
    pub description: Option<String>,
    pub default_instance_name: Option<String>,
    pub iam_role: String,
    pub registration_limit: i64,
    pub registrations_count: i64,
    pub expiration: f64,
    pub created: f64,
    /// Applied to every node that registers with the activation.
    pub tags: Tags,
    /// RegistrationMetadata, "Reserved for internal use": kept, never read.
    pub registration_metadata: Vec<(String, String)>,
}

impl Activation {
    /// ExpirationDate: "The date when this activation can no longer be used to register
    /// managed nodes."
    pub fn expired(&self, now: f64) -> bool {
        now >= self.expiration
    }
}

/// A simulated managed node: an EC2 instance (`i-`) or a hybrid node (`mi-`).
#[derive(Debug, Clone, Default)]
pub struct Instance {
    pub info: NodeInfo,
    pub tags: Tags,
    /// Every patch available to the node, installed or not: an Install installs those the
    /// node's baseline approves (see `crate::patching`).
    pub patches: Vec<crate::patching::NodePatch>,
    /// Every Install on this node fails.
    pub fails_install: bool,
    /// Patches installed before the fleet was put wait for a reboot.
    pub pending_reboot: bool,
    /// The node's patch state after its last Scan or Install, as
    /// DescribeInstancePatchStates reports it.
    pub patch_state: Option<PatchStateRecord>,
    /// Patches installed so far, over all runs.
    pub installed_patches: u64,
    pub reboots: u64,
    /// Ids of the commands sent to this node, oldest first.
    pub runs: Vec<String>,
}

/// A node's last patching operation and what it found, by state
/// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstancePatchState.html).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatchStateRecord {
    /// Scan or Install.
    pub operation: String,
    /// The Run Command command that ran the operation on the node (the compliance
    /// summaries' ExecutionId).
    pub command_id: String,
    pub started: f64,
    pub ended: f64,
    pub baseline_id: String,
    /// The node's `Patch Group` tag ("" without one).
    pub patch_group: String,
    pub reboot_option: String,
    /// The last Install with NoReboot.
    pub last_no_reboot_install: Option<f64>,
    /// Each reported patch with its state then: "each scan overwrites the previous one".
    pub patches: Vec<ReportedPatch>,
}

/// A patch as the last operation reported it (DescribeInstancePatches).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedPatch {
    pub patch: crate::patching::Patch,
    pub state: crate::patching::State,
    pub installed_at: Option<f64>,
    /// The approving rule's compliance level.
    pub compliance_level: String,
}

/// How an invocation ends; decided when the command is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failed,
    /// Not sent: the command exceeded MaxErrors before reaching this node.
    Terminated,
}

/// One command invocation: the command on one managed node.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub instance_id: String,
    pub outcome: Outcome,
    /// Patches installed by this invocation.
    pub installed: u64,
    pub rebooted: bool,
}

#[derive(Debug, Clone)]
pub struct Command {
    pub id: String,
    pub document_name: String,
    pub document_version: Option<String>,
    pub comment: Option<String>,
    pub parameters: Option<Json>,
    /// Operation and RebootOption as run (the document's default filled in).
    pub operation: String,
    pub reboot_option: String,
    /// The InstanceIds of the request (empty when the command used Targets).
    pub instance_ids: Vec<String>,
    pub targets: Option<Json>,
    /// One per targeted node, ordered by instance id.
    pub invocations: Vec<Invocation>,
    pub requested: f64,
    /// When the invocations reach their terminal status.
    pub completes: f64,
    pub expires_after: f64,
    pub max_concurrency: String,
    pub max_errors: String,
    pub timeout_seconds: Option<i64>,
    pub service_role_arn: Option<String>,
    pub output_s3_bucket_name: Option<String>,
    pub output_s3_key_prefix: Option<String>,
    pub output_s3_region: Option<String>,
    pub notification_config: Option<Json>,
    pub cloud_watch_output_config: Option<Json>,
}
