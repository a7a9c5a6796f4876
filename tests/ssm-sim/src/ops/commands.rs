//! Run Command of AWS-RunPatchBaseline on the simulated fleet: SendCommand,
//! ListCommands, ListCommandInvocations.
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html
//!
//! Targets resolve against the account-region's managed nodes (`crate::fleet`). What
//! each invocation does is decided when the command is sent, in target order, so runs
//! are deterministic; their statuses then follow the clock: Pending/InProgress until
//! `requested + command_seconds` (the `/_sim/settings` value), terminal after.

use std::ops::Bound;

use serde_json::{Value, json};

use super::targets::read_targets;
use super::{Ctx, Obj, max_results};
use crate::clock;
use crate::documents::{self, DocumentType};
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::patching;
use crate::state::{
    Command, Instance, Invocation, Json, Outcome, PatchStateRecord, RegionState, ReportedPatch,
};
use crate::validate::{NEXT_TOKEN, Req, Str, as_object, nested_str};

const INSTANCE_ID: Str = Str::pat(10, 124, r"(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)");
const DOCUMENT: Str = Str::pat(0, 200, r"^[a-zA-Z0-9_\-.:/]{3,128}$");
const DOCUMENT_VERSION: Str = Str::pat(0, 128, r"([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)");
const MAX_CONCURRENCY: Str = Str::pat(1, 7, r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$");
const MAX_ERRORS: Str = Str::pat(1, 7, r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$");
const COMMAND_ID: Str = Str::len(36, 36);
const FILTER_KEYS: &[&str] = &[
    "InvokedAfter",
    "InvokedBefore",
    "Status",
    "ExecutionStage",
    "DocumentName",
];

fn invalid_document(name: &str) -> ApiError {
    ApiError::new(
        "InvalidDocument",
        format!("Document with name {name} does not exist."),
    )
}

/// "Instances [[i-...]] not in a valid state for account ...": what SendCommand answers
/// for ids that are not managed nodes of the account, given as InstanceIds or in a
/// Targets `InstanceIds` key (seen answered by AWS, e.g.
/// https://github.com/aws-samples/eks-security-compromised-cluster-remediation/issues/12).
fn invalid_instances(account: &str, ids: &[&str]) -> ApiError {
    ApiError::new(
        "InvalidInstanceId",
        format!(
            "Instances [[{}]] not in a valid state for account {account}",
            ids.join(", ")
        ),
    )
}

fn string_values(t: &Value) -> Vec<&str> {
    t.get("Values")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The managed nodes a command reaches, in target order.
///
/// `InstanceIds` must all be managed nodes. With `Targets`, each target is a criterion
/// and a node must meet all of them; the values of one target are alternatives:
/// "If you include more than one Key criteria, the system targets instances that meet
/// all of the criteria" and `Key=tag:Department,Values=Sales,Finance` reaches both
/// departments.
/// https://docs.aws.amazon.com/systems-manager/latest/userguide/send-commands-multiple.html#send-commands-targeting
/// Keys: `InstanceIds` (written `instanceids` in the guide's examples), `tag:<key>`
/// (keys may contain spaces: `tag:Patch Group`) and `tag-key` (nodes carrying any of
/// the listed tag keys).
/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Target.html
pub(crate) fn resolve(
    ctx: &Ctx<'_>,
    st: &RegionState,
    instance_ids: &[String],
    targets: Option<&Value>,
) -> ApiResult<Vec<String>> {
    let check_known = |ids: &[&str]| {
        let unknown: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| !st.instances.contains_key(*id))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(invalid_instances(ctx.account, &unknown))
        }
    };
    let mut out: Vec<String> = Vec::new();
    let push = |id: &str, out: &mut Vec<String>| {
        if !out.iter().any(|o| o == id) {
            out.push(id.to_string());
        }
    };
    if !instance_ids.is_empty() {
        let ids: Vec<&str> = instance_ids.iter().map(String::as_str).collect();
        check_known(&ids)?;
        for id in ids {
            push(id, &mut out);
        }
        return Ok(out);
    }
    let targets: Vec<&Value> = targets
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut listed: Option<Vec<&str>> = None;
    for t in &targets {
        let key = t.get("Key").and_then(Value::as_str).unwrap_or_default();
        if key.eq_ignore_ascii_case("InstanceIds") {
            let ids = string_values(t);
            check_known(&ids)?;
            listed.get_or_insert(ids);
        } else if key.starts_with("resource-groups:") {
            return Err(ApiError::validation(format!(
                "Target key {key} is not supported by the simulator (resource groups are not simulated)."
            )));
        } else if !key.starts_with("tag:") && key != "tag-key" {
            // Assumption: the API reference does not name the error for an unknown key.
            return Err(ApiError::validation(format!(
                "Target key {key} is not valid for Run Command. Use InstanceIds, tag:<key> or tag-key."
            )));
        }
    }
    let meets = |id: &str, node: &Instance| {
        targets.iter().all(|t| {
            let key = t.get("Key").and_then(Value::as_str).unwrap_or_default();
            let values = string_values(t);
            if key.eq_ignore_ascii_case("InstanceIds") {
                values.contains(&id)
            } else if let Some(tag) = key.strip_prefix("tag:") {
                node.tags
                    .get(tag)
                    .is_some_and(|v| values.contains(&v.as_str()))
            } else {
                values.iter().any(|k| node.tags.contains_key(*k))
            }
        })
    };
    // Listed ids keep their order; otherwise nodes come in instance id order.
    let candidates: Vec<&str> = match listed {
        Some(ids) => ids,
        None => st.instances.keys().map(String::as_str).collect(),
    };
    for id in candidates {
        if st.instances.get(id).is_some_and(|node| meets(id, node)) {
            push(id, &mut out);
        }
    }
    Ok(out)
}

/// A MaxConcurrency or MaxErrors value as a number of targets: "10" or "10%" of `n`
/// ("If you send a command to 50 instances and set max-errors to 10%, then the system
/// stops sending the command to additional instances when the sixth error is
/// received": 10% of 50 allows 5).
/// https://docs.aws.amazon.com/systems-manager/latest/userguide/send-commands-multiple.html#send-commands-maxerrors
pub(crate) fn rate(value: &str, n: usize) -> usize {
    match value.strip_suffix('%') {
        Some(pct) => pct.parse::<usize>().unwrap_or(0).saturating_mul(n) / 100,
        None => value.parse().unwrap_or(0),
    }
}

/// AWS-RunPatchBaseline on one node, under the baseline that applies to it.
/// https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-aws-runpatchbaseline.html
/// Scan changes nothing. Install installs the patches the baseline approves and the node
/// lacks (on a `failsInstall` node they fail), then with RebootIfNeeded reboots "if it
/// installed any patches, or if any patches are detected with a status of
/// InstalledPendingReboot"; with NoReboot installed patches are left
/// InstalledPendingReboot.
/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstancePatchState.html
/// Either way the node's patch state is recorded as the operation leaves it (each
/// operation overwrites the last), ending when the invocation does.
pub(crate) fn run_on(
    node: &mut Instance,
    instance_id: &str,
    run: &Run<'_>,
    baseline: Option<&crate::state::Baseline>,
) -> Invocation {
    let mut inv = Invocation {
        instance_id: instance_id.to_string(),
        outcome: Outcome::Success,
        installed: 0,
        rebooted: false,
    };
    let Some(baseline) = baseline else {
        // No baseline for the node's operating system: nothing to evaluate against.
        inv.outcome = Outcome::Failed;
        return inv;
    };
    let install = run.operation == "Install";
    let no_reboot = run.reboot_option == "NoReboot";
    if install {
        for np in &mut node.patches {
            let approval = patching::approval(baseline, &np.patch, run.now);
            if np.installed_at.is_some() || !approval.approved {
                continue;
            }
            if node.fails_install {
                np.failed = true;
            } else {
                np.installed_at = Some(run.now);
                np.pending_reboot = no_reboot;
                np.failed = false;
                inv.installed += 1;
            }
        }
        if node.fails_install {
            inv.outcome = Outcome::Failed;
        } else {
            node.installed_patches = node.installed_patches.saturating_add(inv.installed);
            let pending = node.pending_reboot || node.patches.iter().any(|p| p.pending_reboot);
            if run.reboot_option == "RebootIfNeeded" && (inv.installed > 0 || pending) {
                inv.rebooted = true;
                node.reboots = node.reboots.saturating_add(1);
                node.pending_reboot = false;
                node.patches
                    .iter_mut()
                    .for_each(|p| p.pending_reboot = false);
            }
        }
    }
    let previous_no_reboot = node
        .patch_state
        .as_ref()
        .and_then(|s| s.last_no_reboot_install);
    node.patch_state = Some(PatchStateRecord {
        operation: run.operation.to_owned(),
        command_id: run.command_id.to_owned(),
        started: run.now,
        ended: run.now + run.seconds,
        baseline_id: baseline.id.clone(),
        patch_group: node.tags.get(PATCH_GROUP_TAG).cloned().unwrap_or_default(),
        reboot_option: run.reboot_option.to_owned(),
        last_no_reboot_install: if install && no_reboot && !node.fails_install {
            Some(run.now)
        } else {
            previous_no_reboot
        },
        patches: node
            .patches
            .iter()
            .filter_map(|np| {
                let approval = patching::approval(baseline, &np.patch, run.now);
                let state = patching::state(baseline, np, &approval)?;
                Some(ReportedPatch {
                    patch: np.patch.clone(),
                    state,
                    installed_at: np.installed_at,
                    compliance_level: approval.compliance_level,
                })
            })
            .collect(),
    });
    inv
}

/// The tag whose value names a node's patch group.
pub const PATCH_GROUP_TAG: &str = "Patch Group";

/// The baseline that applies to a node: the one registered for its `Patch Group` tag and
/// operating system, else its operating system's default
/// (https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-patch-groups.html).
pub fn baseline_for<'s>(
    st: &'s RegionState,
    node: &Instance,
) -> Option<&'s crate::state::Baseline> {
    let os = node.info.operating_system.as_str();
    let registered = node.tags.get(PATCH_GROUP_TAG).and_then(|group| {
        st.baselines
            .values()
            .find(|b| b.operating_system == os && b.patch_groups.contains(group))
    });
    match registered {
        Some(b) => Some(&**b),
        None => st.default_baseline(os).and_then(|id| st.baseline(&id)),
    }
}

/// What a command does on each node.
pub(crate) struct Run<'a> {
    /// The command's id, recorded with the node's patch state.
    pub command_id: &'a str,
    pub operation: &'a str,
    pub reboot_option: &'a str,
    pub now: f64,
    /// How long each invocation runs.
    pub seconds: f64,
}

/// Runs a command on its targets with AWS's rate controls, deterministically.
///
/// Concurrency: "The queueing system delivers the command to a single instance and
/// waits until the initial invocation completes before sending the command to two more
/// instances. The system exponentially sends commands to more instances until the value
/// of max-concurrency is met": waves of 1, 2, 4, ... targets, at most MaxConcurrency.
/// Errors: "If you specify 3, for example, the system stops sending the command when
/// the fourth error is received"; invocations already running finish. Once the failures
/// exceed MaxErrors, the targets of later waves are not sent the command (Terminated:
/// "The parent command exceeded its max-errors limit and subsequent command
/// invocations were canceled by the system").
/// https://docs.aws.amazon.com/systems-manager/latest/userguide/send-commands-multiple.html#send-commands-velocity
/// https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html
fn execute(
    st: &mut RegionState,
    command_id: &str,
    targets: &[String],
    run: &Run<'_>,
    max_concurrency: &str,
    max_errors: &str,
) -> Vec<Invocation> {
    // Each node's baseline, resolved before any node changes.
    let baselines: std::collections::HashMap<&String, Option<crate::state::Baseline>> = targets
        .iter()
        .map(|id| {
            let baseline = st
                .instances
                .get(id)
                .and_then(|node| baseline_for(st, node))
                .cloned();
            (id, baseline)
        })
        .collect();
    let n = targets.len();
    let concurrency = rate(max_concurrency, n).max(1);
    let allowed_errors = rate(max_errors, n);
    let mut out = Vec::with_capacity(n);
    let mut failed = 0;
    let mut wave = 1usize;
    let mut next = 0;
    while next < n {
        let size = wave.min(concurrency).min(n - next);
        let stopped = failed > allowed_errors;
        for id in &targets[next..next + size] {
            let Some(node) = st.instances.get_mut(id) else {
                continue;
            };
            node.runs.push(command_id.to_string());
            let inv = if stopped {
                Invocation {
                    instance_id: id.clone(),
                    outcome: Outcome::Terminated,
                    installed: 0,
                    rebooted: false,
                }
            } else {
                run_on(node, id, run, baselines.get(id).and_then(Option::as_ref))
            };
            if inv.outcome == Outcome::Failed {
                failed += 1;
            }
            out.push(inv);
        }
        next += size;
        wave = wave.saturating_mul(2);
    }
    out
}

/// An invocation's Status and StatusDetails at `now`.
/// https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html
/// Assumption: a Terminated invocation reports Status Cancelled (the Status enum has
/// no Terminated; StatusDetails carries it).
pub(crate) fn invocation_status(
    c: &Command,
    inv: &Invocation,
    now: f64,
) -> (&'static str, &'static str) {
    if now < c.completes {
        return match inv.outcome {
            Outcome::Terminated => ("Pending", "Pending"),
            _ => ("InProgress", "InProgress"),
        };
    }
    match inv.outcome {
        Outcome::Success => ("Success", "Success"),
        Outcome::Failed => ("Failed", "Failed"),
        Outcome::Terminated => ("Cancelled", "Terminated"),
    }
}

/// A command's aggregate status and counts at `now`.
struct Progress {
    status: &'static str,
    details: &'static str,
    completed: usize,
    errors: usize,
    terminal: bool,
}

/// The aggregate status of a command, per "Understanding command statuses":
/// Success when every invocation succeeded; Failed when "the value of max-errors or
/// more command invocations shows a status of Failed"; Incomplete when "one or more
/// of the invocations doesn't have a value of Success. However, not enough invocations
/// failed for the status to be Failed"; No Instances In Tag when "the tag key-pair
/// value or resource group targeted by the command doesn't match any managed nodes".
/// https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html
/// The API spells details without spaces: a command whose tags matched nothing ends
/// Status Success, StatusDetails NoInstancesInTag, TargetCount 0 (observed, e.g. in
/// https://github.com/stevemac007/aws-ssm-cli-invoke's README output).
/// Assumptions: Incomplete reports Status Failed (the Status enum has no Incomplete),
/// and a MaxErrors of 0 makes the first failure Failed.
fn progress(c: &Command, now: f64) -> Progress {
    let n = c.invocations.len();
    if now < c.completes {
        let (status, details) = if n == 0 {
            ("Pending", "Pending")
        } else {
            ("InProgress", "InProgress")
        };
        return Progress {
            status,
            details,
            completed: 0,
            errors: 0,
            terminal: false,
        };
    }
    let errors = c
        .invocations
        .iter()
        .filter(|i| i.outcome == Outcome::Failed)
        .count();
    let (status, details) = if n == 0 {
        ("Success", "NoInstancesInTag")
    } else if errors > 0 && errors >= rate(&c.max_errors, n) {
        ("Failed", "Failed")
    } else if c.invocations.iter().all(|i| i.outcome == Outcome::Success) {
        ("Success", "Success")
    } else {
        ("Failed", "Incomplete")
    };
    Progress {
        status,
        details,
        // "Terminal states include the following: Success, Failed, Execution Timed
        // Out, Delivery Timed Out, Cancelled, Terminated, or Undeliverable."
        completed: n,
        // "The number of targets for which the status is Failed or Execution Timed Out."
        errors,
        terminal: true,
    }
}

/// A command as listed at `now`, or as SendCommand answers it (`now` None): Pending,
/// with a Targets command's nodes not yet counted (SendCommand answers TargetCount 0
/// for Targets, as in the AWS CLI's send-command output).
fn command_json(c: &Command, now: Option<f64>) -> Value {
    let (p, target_count) = match now {
        Some(now) => (progress(c, now), c.invocations.len()),
        None => (
            Progress {
                status: "Pending",
                details: "Pending",
                completed: 0,
                errors: 0,
                terminal: false,
            },
            if c.instance_ids.is_empty() {
                0
            } else {
                c.invocations.len()
            },
        ),
    };
    Obj::new()
        .set("CommandId", c.id.as_str())
        .set("DocumentName", c.document_name.as_str())
        .set(
            "DocumentVersion",
            c.document_version
                .clone()
                .unwrap_or_else(|| "$DEFAULT".into()),
        )
        .opt("Comment", c.comment.clone())
        .set("ExpiresAfter", c.expires_after)
        .set(
            "Parameters",
            c.parameters.as_ref().map_or_else(|| json!({}), Json::value),
        )
        .set("InstanceIds", c.instance_ids.clone())
        .set(
            "Targets",
            c.targets.as_ref().map_or_else(|| json!([]), Json::value),
        )
        .set("RequestedDateTime", c.requested)
        .set("Status", p.status)
        .set("StatusDetails", p.details)
        .opt("OutputS3Region", c.output_s3_region.clone())
        .opt("OutputS3BucketName", c.output_s3_bucket_name.clone())
        .opt("OutputS3KeyPrefix", c.output_s3_key_prefix.clone())
        .set("MaxConcurrency", c.max_concurrency.as_str())
        .set("MaxErrors", c.max_errors.as_str())
        .set("TargetCount", target_count)
        .set("CompletedCount", p.completed)
        .set("ErrorCount", p.errors)
        .set("DeliveryTimedOutCount", 0)
        .opt("ServiceRole", c.service_role_arn.clone())
        .opt(
            "NotificationConfig",
            c.notification_config.as_ref().map(Json::value),
        )
        .opt(
            "CloudWatchOutputConfig",
            c.cloud_watch_output_config.as_ref().map(Json::value),
        )
        .opt("TimeoutSeconds", c.timeout_seconds)
        .build()
}

pub fn send(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let instance_ids = req.opt_str_list("InstanceIds", 0, 50, INSTANCE_ID)?;
    let targets = read_targets(&mut req, false)?;
    let document = req.req_str("DocumentName", DOCUMENT)?;
    let version = req.opt_str("DocumentVersion", DOCUMENT_VERSION)?;
    let timeout = req.opt_int("TimeoutSeconds", 30, 2_592_000)?;
    let comment = req.opt_str("Comment", Str::len(0, 100))?;
    let parameters = req.opt_object("Parameters")?;
    let s3_region = req.opt_str("OutputS3Region", Str::len(3, 20))?;
    let s3_bucket = req.opt_str("OutputS3BucketName", Str::len(3, 63))?;
    let s3_prefix = req.opt_str("OutputS3KeyPrefix", Str::len(0, 500))?;
    let max_concurrency = req.opt_str("MaxConcurrency", MAX_CONCURRENCY)?;
    let max_errors = req.opt_str("MaxErrors", MAX_ERRORS)?;
    let role = req.opt_str("ServiceRoleArn", Str::len(0, 2048))?;
    let notification = req.opt_object("NotificationConfig")?.map(Value::Object);
    let cloudwatch = req.opt_object("CloudWatchOutputConfig")?.map(Value::Object);
    req.finish()?;
    let instance_ids = instance_ids.unwrap_or_default();
    let has_targets = targets
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    if instance_ids.is_empty() != has_targets {
        return Err(ApiError::validation(
            "Specify either InstanceIds or Targets, but not both.",
        ));
    }
    // Only AWS-RunPatchBaseline is simulated; Automation runbooks are not Command documents.
    let doc = documents::find(&document)
        .filter(|d| d.kind == DocumentType::Command)
        .ok_or_else(|| invalid_document(&document))?;
    let params = match &parameters {
        Some(p) => documents::string_lists(p)?,
        None => Vec::new(),
    };
    doc.check(&params, false)
        .map_err(|m| ApiError::new("InvalidParameters", m))?;
    let operation = doc
        .value(&params, "Operation")
        .unwrap_or("Scan")
        .to_string();
    let reboot_option = doc
        .value(&params, "RebootOption")
        .unwrap_or("RebootIfNeeded")
        .to_string();
    let reached = resolve(ctx, st, &instance_ids, targets.as_ref())?;
    // Defaults from the API reference: MaxConcurrency 50, MaxErrors 0.
    let max_concurrency = max_concurrency.unwrap_or_else(|| "50".into());
    let max_errors = max_errors.unwrap_or_else(|| "0".into());
    let id = clock::uuid();
    let run = Run {
        command_id: &id,
        operation: &operation,
        reboot_option: &reboot_option,
        now: ctx.now,
        seconds: ctx.command_seconds,
    };
    let mut invocations = execute(st, &id, &reached, &run, &max_concurrency, &max_errors);
    invocations.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    let command = Command {
        id,
        document_name: document,
        document_version: version,
        comment,
        parameters: parameters.map(|p| Json::from(Value::Object(p))),
        operation,
        reboot_option,
        instance_ids,
        targets: targets.map(Json::from),
        invocations,
        requested: ctx.now,
        completes: ctx.now + ctx.command_seconds,
        expires_after: ctx.now + timeout.unwrap_or(3600) as f64,
        max_concurrency,
        max_errors,
        timeout_seconds: timeout,
        service_role_arn: role,
        output_s3_bucket_name: s3_bucket,
        output_s3_key_prefix: s3_prefix,
        output_s3_region: s3_region,
        notification_config: notification.map(Json::from),
        cloud_watch_output_config: cloudwatch.map(Json::from),
    };
    let out = command_json(&command, None);
    st.add_command(command);
    Ok(json!({"Command": out}))
}

/// `CommandFilter` entries: `{"key": ..., "value": ...}` (lowercase members).
fn read_command_filters(req: &mut Req) -> ApiResult<Vec<(String, String)>> {
    let Some(list) = req.opt_list("Filters")? else {
        return Ok(Vec::new());
    };
    req.violations.check_count("filters", list.len(), 1, 5);
    let mut out = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let f = as_object(f, "CommandFilter")?;
        let at = format!("filters.{}.member", i + 1);
        let key = nested_str(f, "key")?.unwrap_or_default().to_string();
        let value = nested_str(f, "value")?.unwrap_or_default().to_string();
        req.violations
            .check_enum(&format!("{at}.key"), &key, FILTER_KEYS);
        req.violations
            .check_str(&format!("{at}.value"), &value, Str::len(1, 256));
        out.push((key, value));
    }
    Ok(out)
}

fn stage(v: &str, terminal: bool) -> bool {
    match v {
        "Executing" => !terminal,
        "Complete" => terminal,
        _ => false,
    }
}

/// Whether a command passes the filters. `Status` and `ExecutionStage` apply to the
/// command in ListCommands and to each invocation in ListCommandInvocations.
fn matches(c: &Command, filters: &[(String, String)], now: f64, per_invocation: bool) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "DocumentName" => c.document_name == *v,
        "Status" | "ExecutionStage" if per_invocation => true,
        "Status" => {
            let p = progress(c, now);
            *v == p.status || *v == p.details
        }
        "ExecutionStage" => stage(v, progress(c, now).terminal),
        // Timestamps compare as ISO 8601 strings, like the filter values.
        "InvokedAfter" => clock::iso8601(c.requested).as_str() >= v.as_str(),
        "InvokedBefore" => clock::iso8601(c.requested).as_str() <= v.as_str(),
        _ => true,
    })
}

fn invocation_matches(
    c: &Command,
    inv: &Invocation,
    filters: &[(String, String)],
    now: f64,
) -> bool {
    let (status, details) = invocation_status(c, inv, now);
    filters.iter().all(|(k, v)| match k.as_str() {
        "Status" => v == status || v == details,
        "ExecutionStage" => stage(v, now >= c.completes),
        _ => true,
    })
}

fn invalid_command(id: &str) -> ApiError {
    ApiError::new("InvalidCommandId", format!("Command {id} does not exist."))
}

struct ListArgs {
    command_id: Option<String>,
    instance_id: Option<String>,
    filters: Vec<(String, String)>,
    max: usize,
    after: Option<String>,
}

fn list_args(req: &mut Req) -> ApiResult<ListArgs> {
    let command_id = req.opt_str("CommandId", COMMAND_ID)?;
    let instance_id = req.opt_str("InstanceId", INSTANCE_ID)?;
    let filters = read_command_filters(req)?;
    let max = max_results(req, 1, 50, 50)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    Ok(ListArgs {
        command_id,
        instance_id,
        filters,
        max,
        after: paging::decode(token.as_deref())?,
    })
}

/// Commands in listing order (newest first) that pass the id, instance and filters.
fn selected<'a>(
    st: &'a RegionState,
    args: &'a ListArgs,
    now: f64,
    per_invocation: bool,
) -> ApiResult<impl Iterator<Item = (&'a String, &'a Box<Command>)> + 'a> {
    if let Some(id) = &args.command_id
        && !st.command_keys.contains_key(id)
    {
        return Err(invalid_command(id));
    }
    // A ListCommands token names a command; a ListCommandInvocations token names
    // "command instance", whose command may still have instances to list.
    let start = match args.after.as_deref().map(|k| k.split_once(' ')) {
        None => Bound::Unbounded,
        Some(Some((command, _))) => Bound::Included(command.to_string()),
        Some(None) => Bound::Excluded(args.after.clone().unwrap_or_default()),
    };
    Ok(st
        .commands
        .range::<String, _>((start, Bound::Unbounded))
        .filter(move |(_, c)| args.command_id.as_ref().is_none_or(|id| *id == c.id))
        .filter(move |(_, c)| {
            args.instance_id
                .as_ref()
                .is_none_or(|i| c.invocations.iter().any(|inv| inv.instance_id == *i))
        })
        .filter(move |(_, c)| matches(c, &args.filters, now, per_invocation)))
}

pub fn list(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let args = list_args(&mut req)?;
    req.finish()?;
    let items = selected(st, &args, ctx.now, false)?.map(|(k, c)| (k.clone(), c));
    let (page, next) = paging::page(items, args.max);
    let commands: Vec<Value> = page
        .into_iter()
        .map(|c| command_json(c, Some(ctx.now)))
        .collect();
    Ok(Obj::new()
        .set("Commands", commands)
        .opt("NextToken", next)
        .build())
}

/// What the PatchLinux plugin reports for an invocation.
fn plugin_output(c: &Command, inv: &Invocation) -> String {
    match inv.outcome {
        Outcome::Terminated => String::new(),
        Outcome::Failed => format!("{} failed: patches could not be installed.", c.operation),
        Outcome::Success if c.operation == "Install" => format!(
            "Installed {} patches{}.",
            inv.installed,
            if inv.rebooted { "; rebooted" } else { "" }
        ),
        Outcome::Success => "Scan completed.".to_string(),
    }
}

pub fn list_invocations(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let args = list_args(&mut req)?;
    let details = req.opt_bool("Details")?.unwrap_or(false);
    req.finish()?;
    let now = ctx.now;
    // One entry per (command, instance); the key orders commands newest first, then
    // instance ids (invocations are stored in instance id order).
    let items = selected(st, &args, now, true)?.flat_map(|(k, c)| {
        c.invocations
            .iter()
            .filter(|inv| {
                args.instance_id
                    .as_ref()
                    .is_none_or(|want| *want == inv.instance_id)
            })
            .filter(|inv| invocation_matches(c, inv, &args.filters, now))
            .map(move |inv| (format!("{k} {}", inv.instance_id), (c, inv)))
    });
    let items = items.filter(|(key, _)| {
        args.after
            .as_ref()
            .is_none_or(|a| key.as_str() > a.as_str())
    });
    let (page, next) = paging::page(items, args.max);
    let invocations: Vec<Value> = page
        .into_iter()
        .map(|(c, inv)| {
            let (status, status_details) = invocation_status(c, inv, now);
            let mut o = Obj::new()
                .set("CommandId", c.id.as_str())
                .set("InstanceId", inv.instance_id.as_str())
                .set("InstanceName", "")
                .opt("Comment", c.comment.clone())
                .set("DocumentName", c.document_name.as_str())
                .set(
                    "DocumentVersion",
                    c.document_version
                        .clone()
                        .unwrap_or_else(|| "$DEFAULT".into()),
                )
                .set("RequestedDateTime", c.requested)
                .set("Status", status)
                .set("StatusDetails", status_details)
                .set("TraceOutput", "")
                .set("StandardOutputUrl", "")
                .set("StandardErrorUrl", "")
                .opt("ServiceRole", c.service_role_arn.clone())
                .opt(
                    "NotificationConfig",
                    c.notification_config.as_ref().map(Json::value),
                )
                .opt(
                    "CloudWatchOutputConfig",
                    c.cloud_watch_output_config.as_ref().map(Json::value),
                );
            if details {
                let terminal = now >= c.completes;
                let code = match (terminal, inv.outcome) {
                    (true, Outcome::Success) => 0,
                    (true, Outcome::Failed) => 1,
                    _ => -1,
                };
                let mut plugin = Obj::new()
                    // The platform is not simulated; Linux nodes run the PatchLinux plugin.
                    .set("Name", "PatchLinux")
                    .set("Status", status)
                    .set("StatusDetails", status_details)
                    .set("ResponseCode", code)
                    .set(
                        "Output",
                        if terminal {
                            plugin_output(c, inv)
                        } else {
                            String::new()
                        },
                    );
                if inv.outcome != Outcome::Terminated {
                    plugin = plugin.set("ResponseStartDateTime", c.requested);
                    if terminal {
                        plugin = plugin.set("ResponseFinishDateTime", c.completes);
                    }
                }
                o = o.set("CommandPlugins", json!([plugin.build()]));
            }
            o.build()
        })
        .collect();
    Ok(Obj::new()
        .set("CommandInvocations", invocations)
        .opt("NextToken", next)
        .build())
}
