//! Maintenance window tasks.
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_RegisterTaskWithMaintenanceWindow.html

use std::ops::Bound;

use serde_json::{Map, Value, json};

use super::targets::{read_targets, referenced_target_ids};
use super::windows::window_mut;
use super::{Ctx, Obj, max_results, read_filters};
use crate::clock;
use crate::documents::{self, DocumentType};
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::state::{Json, RegionState, Window, WindowTask};
use crate::validate::{
    CLIENT_TOKEN, NEXT_TOKEN, Req, Str, WINDOW_CHILD_ID, WINDOW_DESCRIPTION, WINDOW_ID,
    WINDOW_NAME, as_object, nested_str,
};

const TASK_TYPES: &[&str] = &["RUN_COMMAND", "AUTOMATION", "STEP_FUNCTIONS", "LAMBDA"];
const CUTOFF_BEHAVIORS: &[&str] = &["CONTINUE_TASK", "CANCEL_TASK"];
const TASK_ARN: Str = Str::len(1, 1600);
const MAX_CONCURRENCY: Str = Str::pat(1, 7, r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$");
const MAX_ERRORS: Str = Str::pat(1, 7, r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$");
const ROLE_ARN: Str = Str::len(1, 2048);

/// The member of TaskInvocationParameters each task type may carry.
fn invocation_member(task_type: &str) -> &'static str {
    match task_type {
        "RUN_COMMAND" => "RunCommand",
        "AUTOMATION" => "Automation",
        "STEP_FUNCTIONS" => "StepFunctions",
        _ => "Lambda",
    }
}

fn check_invocation(req: &mut Req, params: &Map<String, Value>) -> ApiResult<()> {
    if let Some(rc) = params.get("RunCommand") {
        let rc = as_object(rc, "RunCommand")?;
        let at = "taskInvocationParameters.runCommand";
        if let Some(c) = nested_str(rc, "Comment")? {
            req.violations
                .check_str(&format!("{at}.comment"), c, Str::len(0, 100));
        }
        match rc.get("TimeoutSeconds") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => req.violations.check_range(
                &format!("{at}.timeoutSeconds"),
                n.as_i64().unwrap_or(0),
                30,
                2_592_000,
            ),
            Some(_) => return Err(ApiError::serialization("TimeoutSeconds must be an integer")),
        }
        if let Some(role) = nested_str(rc, "ServiceRoleArn")? {
            req.violations
                .check_str(&format!("{at}.serviceRoleArn"), role, ROLE_ARN);
        }
    }
    if let Some(a) = params.get("Automation") {
        let a = as_object(a, "Automation")?;
        if let Some(v) = nested_str(a, "DocumentVersion")? {
            req.violations.check_str(
                "taskInvocationParameters.automation.documentVersion",
                v,
                Str::pat(1, 128, r"([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)"),
            );
        }
    }
    Ok(())
}

struct Members {
    targets: Option<Value>,
    task_arn: Option<String>,
    service_role_arn: Option<String>,
    task_parameters: Option<Value>,
    invocation: Option<Map<String, Value>>,
    priority: Option<i64>,
    max_concurrency: Option<String>,
    max_errors: Option<String>,
    logging_info: Option<Value>,
    name: Option<String>,
    description: Option<String>,
    cutoff_behavior: Option<String>,
    alarm_configuration: Option<Value>,
}

fn read_members(req: &mut Req, task_arn_required: bool) -> ApiResult<Members> {
    let targets = read_targets(req, false)?;
    let task_arn = if task_arn_required {
        Some(req.req_str("TaskArn", TASK_ARN)?)
    } else {
        req.opt_str("TaskArn", TASK_ARN)?
    };
    let service_role_arn = req.opt_str("ServiceRoleArn", ROLE_ARN)?;
    let task_parameters = req.opt_object("TaskParameters")?.map(Value::Object);
    let invocation = req.opt_object("TaskInvocationParameters")?;
    if let Some(p) = &invocation {
        check_invocation(req, p)?;
    }
    let priority = req.opt_int("Priority", 0, i64::from(i32::MAX))?;
    let max_concurrency = req.opt_str("MaxConcurrency", MAX_CONCURRENCY)?;
    let max_errors = req.opt_str("MaxErrors", MAX_ERRORS)?;
    let logging_info = req.opt_object("LoggingInfo")?.map(Value::Object);
    let name = req.opt_str("Name", WINDOW_NAME)?;
    let description = req.opt_str("Description", WINDOW_DESCRIPTION)?;
    let cutoff_behavior = req.opt_enum("CutoffBehavior", CUTOFF_BEHAVIORS)?;
    let alarm_configuration = req.opt_object("AlarmConfiguration")?.map(Value::Object);
    Ok(Members {
        targets,
        task_arn,
        service_role_arn,
        task_parameters,
        invocation,
        priority,
        max_concurrency,
        max_errors,
        logging_info,
        name,
        description,
        cutoff_behavior,
        alarm_configuration,
    })
}

/// The parameters of the documents patchfleet registers (RUN_COMMAND
/// AWS-RunPatchBaseline, AUTOMATION AWS-PatchInstanceWithRollback), checked against
/// the definitions SendCommand uses, from TaskInvocationParameters and the legacy
/// TaskParameters (`{"Name": {"Values": [...]}}`). Values may be maintenance window
/// pseudo parameters such as `{{RESOURCE_ID}}`, which are replaced when the task runs.
/// https://docs.aws.amazon.com/systems-manager/latest/userguide/maintenance-window-tasks-pseudo-parameters.html
///
/// Stricter than AWS as far as we can tell: the API reference documents no
/// parameter error for RegisterTaskWithMaintenanceWindow, and users report that
/// invalid RebootOption values are accepted at registration and fail when the window
/// runs (https://github.com/hashicorp/terraform-provider-aws/issues/37473). The
/// simulator rejects them at once, with the code it uses for other semantic
/// problems, ValidationException, so that a bad registration shows in tests.
/// Other documents are stored unchecked.
fn check_document_parameters(task: &WindowTask) -> ApiResult<()> {
    let (member, kind) = match task.task_type.as_str() {
        "RUN_COMMAND" => ("RunCommand", DocumentType::Command),
        "AUTOMATION" => ("Automation", DocumentType::Automation),
        _ => return Ok(()),
    };
    let Some(doc) = documents::find(&task.task_arn).filter(|d| d.kind == kind) else {
        return Ok(());
    };
    let params = task_params(task, member)?;
    doc.check(&params, true).map_err(ApiError::validation)
}

/// A task's document parameters: TaskInvocationParameters.<member>.Parameters, then the
/// legacy TaskParameters (`{"Name": {"Values": [...]}}`).
pub(crate) fn task_params(
    task: &WindowTask,
    member: &str,
) -> ApiResult<Vec<(String, Vec<String>)>> {
    let mut params = Vec::new();
    let invocation = task.task_invocation_parameters.as_ref().map(Json::value);
    if let Some(p) = invocation
        .as_ref()
        .and_then(|i| i.get(member))
        .and_then(|m| m.get("Parameters"))
        .filter(|p| !p.is_null())
    {
        let map = p
            .as_object()
            .ok_or_else(|| ApiError::serialization("Parameters must be a map"))?;
        params.extend(documents::string_lists(map)?);
    }
    let legacy = task.task_parameters.as_ref().map(Json::value);
    for (name, expr) in legacy.iter().filter_map(Value::as_object).flatten() {
        let values = expr
            .get("Values")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|v| {
                        v.as_str().map(str::to_string).ok_or_else(|| {
                            ApiError::serialization("TaskParameters values must be strings")
                        })
                    })
                    .collect::<ApiResult<Vec<String>>>()
            })
            .transpose()?
            .unwrap_or_default();
        params.push((name.clone(), values));
    }
    Ok(params)
}

/// Rules across members and against the window's registered targets.
fn check_task(w: &Window, task: &WindowTask) -> ApiResult<()> {
    let params = task.task_invocation_parameters.as_ref().map(Json::value);
    if let Some(obj) = params.as_ref().and_then(Value::as_object) {
        let allowed = invocation_member(&task.task_type);
        if let Some(other) = obj.keys().find(|k| k.as_str() != allowed) {
            return Err(ApiError::validation(format!(
                "TaskInvocationParameters.{other} can't be used with TaskType {}.",
                task.task_type
            )));
        }
    }
    let targets = task.targets.as_ref().map(Json::value);
    let has_targets = targets
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    // "a value can be omitted only when you are registering or updating a targetless task"
    if has_targets && (task.max_concurrency.is_none() || task.max_errors.is_none()) {
        return Err(ApiError::validation(
            "MaxConcurrency and MaxErrors are required for a task with targets.",
        ));
    }
    // "If you don't enable this option, then you must specify previously-registered
    // targets when you register a task with the maintenance window."
    // https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateMaintenanceWindow.html
    let unregistered = targets
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("Key").and_then(Value::as_str))
        .find(|k| *k != "WindowTargetIds");
    if let Some(key) = unregistered
        && !w.allow_unassociated_targets
    {
        return Err(ApiError::validation(format!(
            "Maintenance window {} does not allow unassociated targets: target tasks with WindowTargetIds, not {key}.",
            w.id
        )));
    }
    if let Some(targets) = &targets {
        for id in referenced_target_ids(targets) {
            if !w.targets.contains_key(&id) {
                return Err(super::targets::not_found(&w.id, &id));
            }
        }
    }
    check_document_parameters(task)
}

/// The role a task runs as: "If you do not specify a service role ARN, Systems Manager uses
/// your account's service-linked role"
/// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_RegisterTaskWithMaintenanceWindow.html),
/// so that is the role reads name for a task registered without one.
pub(crate) fn service_role(account: &str, t: &WindowTask) -> String {
    t.service_role_arn.clone().unwrap_or_else(|| {
        format!("arn:aws:iam::{account}:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM")
    })
}

fn task_json(account: &str, window: &str, t: &WindowTask) -> Obj {
    Obj::new()
        .set("WindowId", window)
        .set("WindowTaskId", t.id.as_str())
        .opt("Targets", t.targets.as_ref().map(Json::value))
        .set("TaskArn", t.task_arn.as_str())
        .set("ServiceRoleArn", service_role(account, t))
        .opt(
            "TaskParameters",
            t.task_parameters.as_ref().map(Json::value),
        )
        .opt(
            "TaskInvocationParameters",
            t.task_invocation_parameters.as_ref().map(Json::value),
        )
        .set("Priority", t.priority)
        .opt("MaxConcurrency", t.max_concurrency.clone())
        .opt("MaxErrors", t.max_errors.clone())
        .opt("LoggingInfo", t.logging_info.as_ref().map(Json::value))
        .opt("Name", t.name.clone())
        .opt("Description", t.description.clone())
        .opt("CutoffBehavior", t.cutoff_behavior.clone())
        .opt(
            "AlarmConfiguration",
            t.alarm_configuration.as_ref().map(Json::value),
        )
}

pub fn not_found(window: &str, task: &str) -> ApiError {
    ApiError::does_not_exist(format!(
        "Maintenance window task {task} does not exist in maintenance window {window}"
    ))
}

pub fn register(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let window_id = req.req_str("WindowId", WINDOW_ID)?;
    let task_type = req.req_enum("TaskType", TASK_TYPES)?;
    let m = read_members(&mut req, true)?;
    let token = req.opt_str("ClientToken", CLIENT_TOKEN)?;
    req.finish()?;
    if let Some(id) = st.replayed(
        "RegisterTaskWithMaintenanceWindow",
        token.as_deref(),
        req.raw(),
    )? {
        return Ok(json!({"WindowTaskId": id}));
    }
    let limit = ctx.quotas.tasks_per_window;
    let w = window_mut(st, &window_id)?;
    let task = WindowTask {
        id: clock::uuid(),
        task_arn: m.task_arn.unwrap_or_default(),
        task_type,
        targets: m.targets.map(Json::from),
        service_role_arn: m.service_role_arn,
        task_parameters: m.task_parameters.map(Json::from),
        task_invocation_parameters: m.invocation.map(|p| Json::from(Value::Object(p))),
        // The SSM API model gives Priority a default of 0.
        priority: m.priority.unwrap_or(0),
        max_concurrency: m.max_concurrency,
        max_errors: m.max_errors,
        logging_info: m.logging_info.map(Json::from),
        name: m.name,
        description: m.description,
        cutoff_behavior: m.cutoff_behavior,
        alarm_configuration: m.alarm_configuration.map(Json::from),
    };
    check_task(w, &task)?;
    if w.tasks.len() >= limit {
        return Err(ApiError::limit(format!(
            "Maximum number of tasks ({limit}) for maintenance window {window_id} has been reached."
        )));
    }
    let id = task.id.clone();
    w.tasks.insert(id.clone(), Box::new(task));
    w.modified = ctx.now;
    st.remember(
        "RegisterTaskWithMaintenanceWindow",
        token.as_deref(),
        req.raw(),
        &id,
    );
    Ok(json!({"WindowTaskId": id}))
}

fn ids(req: &mut Req) -> ApiResult<(String, String)> {
    Ok((
        req.req_str("WindowId", WINDOW_ID)?,
        req.req_str("WindowTaskId", WINDOW_CHILD_ID)?,
    ))
}

pub fn get(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let (window_id, task_id) = ids(&mut req)?;
    req.finish()?;
    let w = window_mut(st, &window_id)?;
    let t = w
        .tasks
        .get(&task_id)
        .ok_or_else(|| not_found(&window_id, &task_id))?;
    Ok(task_json(ctx.account, &window_id, t)
        .set("TaskType", t.task_type.as_str())
        .build())
}

pub fn update(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let (window_id, task_id) = ids(&mut req)?;
    let replace = req.opt_bool("Replace")?.unwrap_or(false);
    let m = read_members(&mut req, replace)?;
    req.finish()?;
    let w = window_mut(st, &window_id)?;
    let old = w
        .tasks
        .get(&task_id)
        .ok_or_else(|| not_found(&window_id, &task_id))?;
    // Replace clears optional members the request leaves out.
    // https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdateMaintenanceWindowTask.html
    fn pick<T: Clone>(new: Option<T>, old: &Option<T>, replace: bool) -> Option<T> {
        match new {
            Some(v) => Some(v),
            None if replace => None,
            None => old.clone(),
        }
    }
    let task = WindowTask {
        id: task_id.clone(),
        task_arn: m.task_arn.unwrap_or_else(|| old.task_arn.clone()),
        task_type: old.task_type.clone(),
        targets: pick(m.targets.map(Json::from), &old.targets, replace),
        service_role_arn: pick(m.service_role_arn, &old.service_role_arn, replace),
        task_parameters: pick(
            m.task_parameters.map(Json::from),
            &old.task_parameters,
            replace,
        ),
        task_invocation_parameters: pick(
            m.invocation.map(|p| Json::from(Value::Object(p))),
            &old.task_invocation_parameters,
            replace,
        ),
        priority: m.priority.unwrap_or(if replace { 0 } else { old.priority }),
        max_concurrency: pick(m.max_concurrency, &old.max_concurrency, replace),
        max_errors: pick(m.max_errors, &old.max_errors, replace),
        logging_info: pick(m.logging_info.map(Json::from), &old.logging_info, replace),
        name: pick(m.name, &old.name, replace),
        description: pick(m.description, &old.description, replace),
        cutoff_behavior: pick(m.cutoff_behavior, &old.cutoff_behavior, replace),
        alarm_configuration: pick(
            m.alarm_configuration.map(Json::from),
            &old.alarm_configuration,
            replace,
        ),
    };
    check_task(w, &task)?;
    let out = task_json(ctx.account, &window_id, &task).build();
    w.tasks.insert(task_id, Box::new(task));
    w.modified = ctx.now;
    Ok(out)
}

pub fn deregister(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let (window_id, task_id) = ids(&mut req)?;
    req.finish()?;
    let w = window_mut(st, &window_id)?;
    w.tasks
        .remove(&task_id)
        .ok_or_else(|| not_found(&window_id, &task_id))?;
    w.modified = ctx.now;
    Ok(json!({"WindowId": window_id, "WindowTaskId": task_id}))
}

pub fn describe(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let window_id = req.req_str("WindowId", WINDOW_ID)?;
    let filters = read_filters(
        &mut req,
        5,
        &["WindowTaskId", "TaskArn", "Priority", "TaskType"],
    )?;
    let max = max_results(&mut req, 10, 100, 100)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    req.finish()?;
    let after = paging::decode(token.as_deref())?;
    let w = window_mut(st, &window_id)?;
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let selected = w
        .tasks
        .range::<String, _>((start, Bound::Unbounded))
        .filter(|(_, t)| {
            filters.iter().all(|(k, values)| match k.as_str() {
                "WindowTaskId" => values.contains(&t.id),
                "TaskArn" => values.contains(&t.task_arn),
                "Priority" => values.contains(&t.priority.to_string()),
                "TaskType" => values.contains(&t.task_type),
                _ => true,
            })
        })
        .map(|(id, t)| (id.clone(), t));
    let (items, next) = paging::page(selected, max);
    let items: Vec<Value> = items
        .into_iter()
        .map(|t| {
            task_json(ctx.account, &window_id, t)
                .set("Type", t.task_type.as_str())
                .build()
        })
        .collect();
    Ok(Obj::new()
        .set("Tasks", items)
        .opt("NextToken", next)
        .build())
}
