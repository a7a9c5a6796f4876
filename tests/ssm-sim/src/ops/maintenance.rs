//! Maintenance windows running on the simulated clock.
//!
//! Before every SSM call of an account-region, and for every account-region when
//! `/_sim/clock` moves, the occurrences that came due (see `crate::occurrence`) run in
//! time order. Each occurrence opens the window for `Duration` hours and runs its tasks
//! in Priority order, lower first, tasks of one priority together
//! (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_RegisterTaskWithMaintenanceWindow.html>);
//! "No maintenance window tasks are permitted to start after the resulting endtime minus
//! the number of hours you specify for Cutoff"
//! (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateMaintenanceWindow.html>).
//!
//! A RUN_COMMAND task with AWS-RunPatchBaseline runs on each target node as SendCommand
//! does (the same `run_on`, baseline and patch state), one command per node ("If the task
//! type is RUN_COMMAND, this value is the command ID":
//! <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_MaintenanceWindowExecutionTaskInvocationIdentity.html>),
//! in waves as SendCommand's MaxConcurrency and MaxErrors allow, each wave
//! `command_seconds` after the previous one. Like SendCommand, what a run does is decided
//! when the occurrence is handled; times are those of the occurrence. Other task types
//! and documents succeed on their targets without touching them.
//!
//! Bounds: at most [`CATCH_UP`] occurrences per window run at once (the latest; earlier
//! ones are skipped without a record), and each window keeps its latest
//! [`EXECUTIONS_PER_WINDOW`] executions.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::Ctx;
use super::commands::{Run, baseline_for, rate, resolve, run_on};
use super::tasks::{service_role, task_params};
use super::windows::spec;
use crate::clock;
use crate::documents::{self, DocumentType};
use crate::error::ApiResult;
use crate::occurrence;
use crate::state::{
    Command, Json, Outcome, RegionState, RunOutcome, TaskExecution, TaskInvocation, Window,
    WindowExecution, WindowTarget, WindowTask,
};

/// Occurrences of one window run in one catch-up (the latest ones).
pub const CATCH_UP: usize = 100;
/// Executions kept per window (the latest ones).
pub const EXECUTIONS_PER_WINDOW: usize = 100;

/// Runs every occurrence due by `ctx.now`, oldest first across the account-region's windows.
pub fn run_due(ctx: &Ctx<'_>, st: &mut RegionState) {
    let now = ctx.now;
    if !st
        .windows
        .values()
        .any(|w| w.next_due.is_some_and(|t| t <= now))
    {
        return;
    }
    let mut due: Vec<(f64, String)> = Vec::new();
    for w in st.windows.values_mut() {
        let times = due_occurrences(w, now);
        if let Some(&last) = times.last() {
            w.handled_until = last;
            w.next_due = occurrence::next_after(&spec(w), last);
        }
        due.extend(times.into_iter().map(|t| (t, w.id.clone())));
    }
    due.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    for (at, window_id) in due {
        run_occurrence(ctx, st, &window_id, at);
    }
}

/// The window's occurrences in (handled_until, now], at most the latest [`CATCH_UP`].
/// Looks back over a span doubling from an hour, so that a long-idle window with a
/// frequent schedule does not enumerate every skipped occurrence.
fn due_occurrences(w: &Window, now: f64) -> Vec<f64> {
    let Some(first) = w.next_due.filter(|t| *t <= now) else {
        return Vec::new();
    };
    let spec = spec(w);
    let mut span = 3600.0;
    loop {
        let from = (now - span).max(w.handled_until);
        let whole = from <= w.handled_until;
        let mut times = VecDeque::new();
        let mut next = if whole {
            Some(first)
        } else {
            occurrence::next_after(&spec, from)
        };
        while let Some(t) = next.filter(|t| *t <= now) {
            if times.len() == CATCH_UP {
                times.pop_front();
            }
            times.push_back(t);
            next = occurrence::next_after(&spec, t);
        }
        if whole || times.len() >= CATCH_UP {
            if !whole {
                tracing::debug!(window = %w.id, "catch-up capped at the latest {CATCH_UP} occurrences");
            }
            return times.into();
        }
        span *= 2.0;
    }
}

fn outcome(status: &'static str, details: impl Into<String>, start: f64, end: f64) -> RunOutcome {
    RunOutcome {
        status,
        details: details.into(),
        start,
        end,
    }
}

/// Runs one occurrence of a window and records its execution.
fn run_occurrence(ctx: &Ctx<'_>, st: &mut RegionState, window_id: &str, at: f64) {
    let Some(w) = st.windows.get(window_id) else {
        return;
    };
    let execution_id = clock::uuid();
    // Assumption: an occurrence while the previous execution still runs is skipped
    // (SKIPPED_OVERLAPPING, API_MaintenanceWindowExecution's statuses).
    let overlapping = w.executions.back().is_some_and(|e| e.outcome.end > at);
    let mut tasks: Vec<WindowTask> = w.tasks.values().map(|t| (**t).clone()).collect();
    tasks.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
    let targets: Vec<WindowTarget> = w.targets.values().map(|t| (**t).clone()).collect();
    let last_start = at + (w.duration - w.cutoff) as f64 * 3600.0;
    let window_end = at + w.duration as f64 * 3600.0;
    let mut executed = Vec::new();
    let mut cursor = at;
    let mut not_started = 0;
    if !overlapping {
        let mut i = 0;
        while i < tasks.len() {
            let priority = tasks[i].priority;
            let group: Vec<&WindowTask> = tasks[i..]
                .iter()
                .take_while(|t| t.priority == priority)
                .collect();
            i += group.len();
            if cursor > last_start {
                not_started += group.len();
                continue;
            }
            let start = cursor;
            for task in group {
                let cutoff =
                    (task.cutoff_behavior.as_deref() == Some("CANCEL_TASK")).then_some(window_end);
                let ex = run_task(
                    ctx,
                    st,
                    &RunContext {
                        window_id,
                        execution_id: &execution_id,
                        targets: &targets,
                        start,
                        cancel_after: cutoff,
                    },
                    task,
                );
                cursor = cursor.max(ex.outcome.end);
                executed.push(ex);
            }
        }
    }
    let failed = executed.iter().any(|t| t.outcome.status == "FAILED");
    let timed_out = not_started > 0 || executed.iter().any(|t| t.outcome.status == "TIMED_OUT");
    // Assumption: the details' wording (AWS documents the statuses, not these texts).
    let result = if overlapping {
        outcome(
            "SKIPPED_OVERLAPPING",
            "The previous execution of the maintenance window was still running.",
            at,
            at,
        )
    } else if failed {
        outcome(
            "FAILED",
            "One or more tasks in the orchestration failed.",
            at,
            cursor,
        )
    } else if timed_out {
        outcome(
            "TIMED_OUT",
            format!("{not_started} task(s) were not started before the cutoff."),
            at,
            cursor,
        )
    } else if executed.is_empty() {
        outcome("SUCCESS", "No tasks to execute.", at, at)
    } else {
        outcome("SUCCESS", "", at, cursor)
    };
    let Some(w) = st.windows.get_mut(window_id) else {
        return;
    };
    w.execution_seq += 1;
    w.executions.push_back(WindowExecution {
        id: execution_id,
        seq: w.execution_seq,
        outcome: result,
        tasks: executed,
    });
    while w.executions.len() > EXECUTIONS_PER_WINDOW {
        w.executions.pop_front();
    }
}

struct RunContext<'a> {
    window_id: &'a str,
    execution_id: &'a str,
    targets: &'a [WindowTarget],
    start: f64,
    /// CutoffBehavior CANCEL_TASK: invocations not started by then are cancelled.
    cancel_after: Option<f64>,
}

/// A node a task reaches, and through which window target.
struct Reached {
    instance_id: String,
    window_target_id: Option<String>,
    owner_information: Option<String>,
}

/// The nodes of a task's Targets: `WindowTargetIds` through the window targets' own
/// targets, other keys (windows that allow unassociated targets) directly, resolved as
/// SendCommand resolves them.
fn reach(
    ctx: &Ctx<'_>,
    st: &RegionState,
    rc: &RunContext<'_>,
    task: &WindowTask,
) -> ApiResult<Vec<Reached>> {
    let mut out: Vec<Reached> = Vec::new();
    let mut add = |ids: Vec<String>, target: Option<&WindowTarget>| {
        for id in ids {
            if !out.iter().any(|r| r.instance_id == id) {
                out.push(Reached {
                    instance_id: id,
                    window_target_id: target.map(|t| t.id.clone()),
                    owner_information: target.and_then(|t| t.owner_information.clone()),
                });
            }
        }
    };
    let task_targets = task
        .targets
        .as_ref()
        .map(Json::value)
        .unwrap_or(Value::Null);
    for t in task_targets.as_array().into_iter().flatten() {
        if t.get("Key").and_then(Value::as_str) == Some("WindowTargetIds") {
            let ids = t.get("Values").and_then(Value::as_array);
            for id in ids.into_iter().flatten().filter_map(Value::as_str) {
                // A target deregistered without Safe no longer reaches anything.
                let Some(target) = rc.targets.iter().find(|wt| wt.id == id) else {
                    continue;
                };
                if target.resource_type == "RESOURCE_GROUP" {
                    return Err(crate::error::ApiError::validation(
                        "Resource group targets are not simulated.",
                    ));
                }
                add(
                    resolve(ctx, st, &[], Some(&target.targets.value()))?,
                    Some(target),
                );
            }
        } else {
            add(resolve(ctx, st, &[], Some(&json!([t])))?, None);
        }
    }
    Ok(out)
}

/// Replaces the maintenance window pseudo parameters in a value.
/// https://docs.aws.amazon.com/systems-manager/latest/userguide/maintenance-window-tasks-pseudo-parameters.html
fn substitute(value: &str, vars: &[(&str, &str)]) -> String {
    vars.iter()
        .fold(value.to_string(), |v, (name, with)| v.replace(name, with))
}

fn run_task(
    ctx: &Ctx<'_>,
    st: &mut RegionState,
    rc: &RunContext<'_>,
    task: &WindowTask,
) -> TaskExecution {
    let task_execution_id = clock::uuid();
    let mut ex = TaskExecution {
        id: task_execution_id.clone(),
        window_task_id: task.id.clone(),
        task_arn: task.task_arn.clone(),
        task_type: task.task_type.clone(),
        priority: task.priority,
        max_concurrency: task.max_concurrency.clone(),
        max_errors: task.max_errors.clone(),
        service_role: service_role(ctx.account, task),
        task_parameters: task.task_parameters.clone(),
        alarm_configuration: task.alarm_configuration.clone(),
        outcome: outcome("SUCCESS", "", rc.start, rc.start),
        invocations: Vec::new(),
    };
    let reached = match reach(ctx, st, rc, task) {
        Ok(r) => r,
        Err(e) => {
            ex.outcome = outcome("FAILED", truncate(&e.message), rc.start, rc.start);
            return ex;
        }
    };
    let run_command = task.task_type == "RUN_COMMAND";
    let doc =
        documents::find(&task.task_arn).filter(|d| run_command && d.kind == DocumentType::Command);
    let Some(doc) = doc else {
        // Not simulated: succeeds on every target at once, touching nothing.
        for r in reached {
            ex.invocations.push(TaskInvocation {
                id: clock::uuid(),
                execution_id: None,
                parameters: String::new(),
                outcome: outcome("SUCCESS", "Success", rc.start, rc.start),
                owner_information: r.owner_information,
                window_target_id: r.window_target_id,
            });
        }
        return ex;
    };
    let params = match task_params(task, "RunCommand") {
        Ok(p) => p,
        Err(e) => {
            ex.outcome = outcome("FAILED", truncate(&e.message), rc.start, rc.start);
            return ex;
        }
    };
    let run_command_params = task
        .task_invocation_parameters
        .as_ref()
        .map(Json::value)
        .and_then(|v| v.get("RunCommand").cloned())
        .unwrap_or(Value::Null);
    let comment = run_command_params
        .get("Comment")
        .and_then(Value::as_str)
        .map(str::to_string);
    let document_version = run_command_params
        .get("DocumentVersion")
        .and_then(Value::as_str)
        .map(str::to_string);
    let timeout = run_command_params
        .get("TimeoutSeconds")
        .and_then(Value::as_i64);
    let role = run_command_params
        .get("ServiceRoleArn")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| task.service_role_arn.clone());
    // Defaults as SendCommand's: a targetless task has neither.
    let max_concurrency = task.max_concurrency.clone().unwrap_or_else(|| "50".into());
    let max_errors = task.max_errors.clone().unwrap_or_else(|| "0".into());
    let n = reached.len();
    let concurrency = rate(&max_concurrency, n).max(1);
    let allowed_errors = rate(&max_errors, n);
    let seconds = ctx.command_seconds;
    let mut failed = 0;
    let mut cancelled_at_cutoff = false;
    let mut wave = 1usize;
    let mut next = 0;
    let mut wave_start = rc.start;
    let mut end = rc.start;
    while next < n {
        let size = wave.min(concurrency).min(n - next);
        let stopped = failed > allowed_errors;
        let past_cutoff = rc.cancel_after.is_some_and(|c| wave_start >= c);
        for r in &reached[next..next + size] {
            let invocation_id = clock::uuid();
            let vars = [
                ("{{WINDOW_ID}}", rc.window_id),
                ("{{WINDOW_EXECUTION_ID}}", rc.execution_id),
                ("{{TASK_EXECUTION_ID}}", task_execution_id.as_str()),
                ("{{INVOCATION_ID}}", invocation_id.as_str()),
                ("{{WINDOW_TASK_ID}}", task.id.as_str()),
                (
                    "{{WINDOW_TARGET_ID}}",
                    r.window_target_id.as_deref().unwrap_or(""),
                ),
                ("{{TARGET_ID}}", r.instance_id.as_str()),
                ("{{RESOURCE_ID}}", r.instance_id.as_str()),
            ];
            let node_params: Vec<(String, Vec<String>)> = params
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().map(|x| substitute(x, &vars)).collect()))
                .collect();
            let parameters_json: serde_json::Map<String, Value> = node_params
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let mut invocation = TaskInvocation {
                id: invocation_id,
                execution_id: None,
                parameters: json!({
                    "comment": comment.clone().unwrap_or_default(),
                    "documentName": task.task_arn,
                    "instanceIds": [r.instance_id],
                    "maxConcurrency": max_concurrency,
                    "maxErrors": max_errors,
                    "parameters": parameters_json,
                    "timeoutSeconds": timeout.unwrap_or(3600),
                })
                .to_string(),
                outcome: outcome("CANCELLED", "Cancelled", wave_start, wave_start),
                owner_information: r.owner_information.clone(),
                window_target_id: r.window_target_id.clone(),
            };
            if past_cutoff {
                cancelled_at_cutoff = true;
                invocation.outcome.details =
                    "Cancelled at the window's cutoff (CANCEL_TASK).".into();
            } else if stopped {
                invocation.outcome.details =
                    "The task exceeded its MaxErrors; later invocations were cancelled.".into();
            } else if let Err(problem) = doc.check(&node_params, false) {
                failed += 1;
                invocation.outcome = outcome("FAILED", truncate(&problem), wave_start, wave_start);
            } else {
                let command_id = clock::uuid();
                let operation = doc
                    .value(&node_params, "Operation")
                    .unwrap_or("Scan")
                    .to_string();
                let reboot_option = doc
                    .value(&node_params, "RebootOption")
                    .unwrap_or("RebootIfNeeded")
                    .to_string();
                let run = Run {
                    command_id: &command_id,
                    operation: &operation,
                    reboot_option: &reboot_option,
                    now: wave_start,
                    seconds,
                };
                let baseline = st
                    .instances
                    .get(&r.instance_id)
                    .and_then(|node| baseline_for(st, node))
                    .cloned();
                let Some(node) = st.instances.get_mut(&r.instance_id) else {
                    continue;
                };
                node.runs.push(command_id.clone());
                let inv = run_on(node, &r.instance_id, &run, baseline.as_ref());
                let (status, details) = match inv.outcome {
                    Outcome::Success => ("SUCCESS", "Success"),
                    _ => {
                        failed += 1;
                        ("FAILED", "Failed")
                    }
                };
                invocation.outcome = outcome(status, details, wave_start, wave_start + seconds);
                invocation.execution_id = Some(command_id.clone());
                end = end.max(wave_start + seconds);
                st.add_command(Command {
                    id: command_id,
                    document_name: task.task_arn.clone(),
                    document_version: document_version.clone(),
                    comment: comment.clone(),
                    parameters: Some(Json::from(Value::Object(parameters_json))),
                    operation,
                    reboot_option,
                    instance_ids: vec![r.instance_id.clone()],
                    targets: None,
                    invocations: vec![inv],
                    requested: wave_start,
                    completes: wave_start + seconds,
                    expires_after: wave_start + timeout.unwrap_or(3600) as f64,
                    max_concurrency: "50".into(),
                    max_errors: "0".into(),
                    timeout_seconds: timeout,
                    service_role_arn: role.clone(),
                    output_s3_bucket_name: None,
                    output_s3_key_prefix: None,
                    output_s3_region: None,
                    notification_config: None,
                    cloud_watch_output_config: None,
                });
            }
            ex.invocations.push(invocation);
        }
        next += size;
        wave = wave.saturating_mul(2);
        if !stopped && !past_cutoff {
            wave_start += seconds;
        }
    }
    let cancelled = ex
        .invocations
        .iter()
        .any(|i| i.outcome.status == "CANCELLED");
    ex.outcome = if failed > 0 || (cancelled && !cancelled_at_cutoff) {
        outcome("FAILED", "One or more invocations failed.", rc.start, end)
    } else if cancelled_at_cutoff {
        outcome(
            "TIMED_OUT",
            "Invocations not started by the window's end were cancelled (CANCEL_TASK).",
            rc.start,
            end,
        )
    } else {
        outcome("SUCCESS", "Success", rc.start, end)
    };
    ex
}

/// StatusDetails hold at most 250 characters.
fn truncate(s: &str) -> String {
    s.chars().take(250).collect()
}
