//! What maintenance windows ran: executions, their tasks and the tasks' invocations
//! (recorded by `super::maintenance`).

use serde_json::Value;

use super::{Ctx, Obj, max_results, read_filters};
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::state::{RegionState, RunOutcome, TaskExecution, WindowExecution};
use crate::validate::{NEXT_TOKEN, Req, WINDOW_CHILD_ID, WINDOW_ID};

/// The statuses the STATUS filter takes (MaintenanceWindowExecutionStatus).
const STATUSES: &[&str] = &[
    "PENDING",
    "IN_PROGRESS",
    "SUCCESS",
    "FAILED",
    "TIMED_OUT",
    "CANCELLING",
    "CANCELLED",
    "SKIPPED_OVERLAPPING",
];

fn execution_not_found(id: &str) -> ApiError {
    ApiError::does_not_exist(format!("Maintenance window execution {id} does not exist"))
}

fn task_not_found(execution: &str, task: &str) -> ApiError {
    ApiError::does_not_exist(format!(
        "Maintenance window execution task {task} does not exist in execution {execution}"
    ))
}

/// An execution of any window of the account-region.
fn execution<'a>(st: &'a RegionState, id: &str) -> ApiResult<(&'a str, &'a WindowExecution)> {
    st.windows
        .values()
        .find_map(|w| {
            w.executions
                .iter()
                .find(|e| e.id == id)
                .map(|e| (w.id.as_str(), e))
        })
        .ok_or_else(|| execution_not_found(id))
}

fn task<'a>(e: &'a WindowExecution, id: &str) -> ApiResult<&'a TaskExecution> {
    e.tasks
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| task_not_found(&e.id, id))
}

/// One page of `items` in the order they ran (the token is the position), keeping those
/// whose status at `now` is one of `statuses` (all when none).
fn page_in_order<'a, T>(
    items: &'a [T],
    after: Option<String>,
    statuses: &[String],
    max: usize,
    outcome: impl Fn(&T) -> &RunOutcome,
    now: f64,
) -> (Vec<&'a T>, Option<String>) {
    let kept = items
        .iter()
        .enumerate()
        .map(|(i, item)| (format!("{i:06}"), item))
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k.as_str() > a.as_str()))
        .filter(|(_, item)| {
            let status = outcome(item).status_at(now).0;
            statuses.is_empty() || statuses.iter().any(|s| s == status)
        });
    paging::page(kept, max)
}

/// Status, StatusDetails, StartTime and EndTime (once ended) at `now`.
fn timing(o: Obj, outcome: &RunOutcome, now: f64) -> Obj {
    let (status, details) = outcome.status_at(now);
    let o = o
        .set("Status", status)
        .opt(
            "StatusDetails",
            (!details.is_empty()).then(|| details.to_string()),
        )
        .set("StartTime", outcome.start);
    if now >= outcome.end {
        o.set("EndTime", outcome.end)
    } else {
        o
    }
}

/// The STATUS filter of the task and invocation listings: its values must be statuses.
fn status_filter(req: &mut Req) -> ApiResult<Vec<String>> {
    let filters = read_filters(req, 5, &["STATUS"])?;
    let mut values = Vec::new();
    for (_, v) in filters {
        if let Some(bad) = v.iter().find(|v| !STATUSES.contains(&v.as_str())) {
            return Err(ApiError::validation(format!(
                "The filter value {bad} is not valid for STATUS. Valid values: [{}].",
                STATUSES.join(", ")
            )));
        }
        values.push(v);
    }
    // Assumption: several STATUS filters widen the selection like several values.
    Ok(values.into_iter().flatten().collect())
}

fn instant(value: &str) -> ApiResult<f64> {
    value
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond() as f64 / 1000.0)
        .or_else(|_| {
            crate::occurrence::parse_date(value, &jiff::tz::TimeZone::UTC)
                .ok_or_else(|| ApiError::validation("not a date"))
        })
        .map_err(|_| {
            ApiError::validation(format!(
                "The filter value {value} is not a valid ISO 8601 date/time, such as 2024-11-04T05:00:00Z."
            ))
        })
}

/// Lists a window's executions, newest first (the API reference does not state an
/// order; newest first is what the console shows). Filters ExecutedBefore and
/// ExecutedAfter compare the execution's StartTime with an ISO 8601 time. An unknown
/// WindowId lists nothing: the operation's only documented error is InternalServerError.
/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeMaintenanceWindowExecutions.html
pub fn describe_executions(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let window_id = req.req_str("WindowId", WINDOW_ID)?;
    let filters = read_filters(&mut req, 5, &["ExecutedBefore", "ExecutedAfter"])?;
    let max = max_results(&mut req, 10, 100, 100)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    req.finish()?;
    let after = paging::decode(token.as_deref())?;
    let mut bounds = Vec::new();
    for (key, values) in &filters {
        for v in values {
            bounds.push((key.as_str() == "ExecutedBefore", instant(v)?));
        }
    }
    let Some(w) = st.windows.get(&window_id) else {
        return Ok(Obj::new()
            .set("WindowExecutions", Vec::<Value>::new())
            .build());
    };
    let items = w
        .executions
        .iter()
        .rev()
        .map(|e| (format!("{:020}", u64::MAX - e.seq), e))
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k.as_str() > a.as_str()))
        .filter(|(_, e)| {
            bounds.iter().all(|(before, t)| {
                if *before {
                    e.outcome.start <= *t
                } else {
                    e.outcome.start >= *t
                }
            })
        });
    let (page, next) = paging::page(items, max);
    let list: Vec<Value> = page
        .into_iter()
        .map(|e| {
            let o = Obj::new()
                .set("WindowId", window_id.as_str())
                .set("WindowExecutionId", e.id.as_str());
            timing(o, &e.outcome, ctx.now).build()
        })
        .collect();
    Ok(Obj::new()
        .set("WindowExecutions", list)
        .opt("NextToken", next)
        .build())
}

/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetMaintenanceWindowExecution.html
pub fn get_execution(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("WindowExecutionId", WINDOW_CHILD_ID)?;
    req.finish()?;
    let (_, e) = execution(st, &id)?;
    let task_ids: Vec<&str> = e.tasks.iter().map(|t| t.id.as_str()).collect();
    let o = Obj::new()
        .set("WindowExecutionId", e.id.as_str())
        .set("TaskIds", task_ids);
    Ok(timing(o, &e.outcome, ctx.now).build())
}

fn task_identity(e: &WindowExecution, t: &TaskExecution, now: f64) -> Obj {
    let o = Obj::new()
        .set("WindowExecutionId", e.id.as_str())
        .set("TaskExecutionId", t.id.as_str())
        .set("TaskArn", t.task_arn.as_str())
        .set("TaskType", t.task_type.as_str())
        .opt(
            "AlarmConfiguration",
            t.alarm_configuration.as_ref().map(|a| a.value()),
        );
    timing(o, &t.outcome, now)
}

/// Lists the tasks an execution ran, in the order they ran (Priority order). Filter
/// STATUS ("PENDING, IN_PROGRESS, SUCCESS, FAILED, TIMED_OUT, CANCELLING, and CANCELLED").
/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeMaintenanceWindowExecutionTasks.html
pub fn describe_tasks(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("WindowExecutionId", WINDOW_CHILD_ID)?;
    let statuses = status_filter(&mut req)?;
    let max = max_results(&mut req, 10, 100, 100)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    req.finish()?;
    let after = paging::decode(token.as_deref())?;
    let (_, e) = execution(st, &id)?;
    let now = ctx.now;
    let (page, next) = page_in_order(&e.tasks, after, &statuses, max, |t| &t.outcome, now);
    let list: Vec<Value> = page
        .into_iter()
        .map(|t| task_identity(e, t, now).build())
        .collect();
    Ok(Obj::new()
        .set("WindowExecutionTaskIdentities", list)
        .opt("NextToken", next)
        .build())
}

/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetMaintenanceWindowExecutionTask.html
pub fn get_task(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("WindowExecutionId", WINDOW_CHILD_ID)?;
    let task_id = req.req_str("TaskId", WINDOW_CHILD_ID)?;
    req.finish()?;
    let (_, e) = execution(st, &id)?;
    let t = task(e, &task_id)?;
    let o = task_identity(e, t, ctx.now)
        .set("ServiceRole", t.service_role.as_str())
        .set("Type", t.task_type.as_str())
        .opt(
            "TaskParameters",
            t.task_parameters
                .as_ref()
                .map(|p| Value::Array(vec![p.value()])),
        )
        .set("Priority", t.priority)
        .opt("MaxConcurrency", t.max_concurrency.clone())
        .opt("MaxErrors", t.max_errors.clone());
    let mut out = o.build();
    // GetMaintenanceWindowExecutionTaskResult names the type `Type`, not `TaskType`.
    if let Some(m) = out.as_object_mut() {
        m.remove("TaskType");
    }
    Ok(out)
}

/// Lists a task's invocations, one per target node, in the order they ran. Filter STATUS.
/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeMaintenanceWindowExecutionTaskInvocations.html
pub fn describe_invocations(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("WindowExecutionId", WINDOW_CHILD_ID)?;
    let task_id = req.req_str("TaskId", WINDOW_CHILD_ID)?;
    let statuses = status_filter(&mut req)?;
    let max = max_results(&mut req, 10, 100, 100)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    req.finish()?;
    let after = paging::decode(token.as_deref())?;
    let (_, e) = execution(st, &id)?;
    let t = task(e, &task_id)?;
    let now = ctx.now;
    let (page, next) = page_in_order(&t.invocations, after, &statuses, max, |i| &i.outcome, now);
    let list: Vec<Value> = page
        .into_iter()
        .map(|inv| {
            let o = Obj::new()
                .set("WindowExecutionId", e.id.as_str())
                .set("TaskExecutionId", t.id.as_str())
                .set("InvocationId", inv.id.as_str())
                .opt("ExecutionId", inv.execution_id.clone())
                .set("TaskType", t.task_type.as_str())
                .opt(
                    "Parameters",
                    (!inv.parameters.is_empty()).then(|| inv.parameters.clone()),
                )
                .opt("OwnerInformation", inv.owner_information.clone())
                .opt("WindowTargetId", inv.window_target_id.clone());
            timing(o, &inv.outcome, now).build()
        })
        .collect();
    Ok(Obj::new()
        .set("WindowExecutionTaskInvocationIdentities", list)
        .opt("NextToken", next)
        .build())
}
