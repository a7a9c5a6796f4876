//! SSM operations: each reads its request with AWS's constraints and acts on one
//! account-region's state under that state's lock.

pub(crate) mod activations;
mod baselines;
pub(crate) mod commands;
mod compliance;
mod executions;
mod instances;
pub(crate) mod maintenance;
mod patch_groups;
mod summaries;
mod tags;
mod targets;
mod tasks;
mod windows;

use serde_json::{Map, Value};

use crate::Sim;
use crate::config::Quotas;
use crate::error::{ApiError, ApiResult};
use crate::state::{self, RegionState};
use crate::validate::Req;

/// Who the call is for and when it happens.
pub struct Ctx<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub quotas: Quotas,
    pub now: f64,
    /// How long commands sent now run (the `command_seconds` setting).
    pub command_seconds: f64,
}

type Handler = fn(&Ctx<'_>, &mut RegionState, Req) -> ApiResult<Value>;

/// Every SSM operation the simulator answers.
pub const OPERATIONS: &[(&str, Handler)] = &[
    ("CreatePatchBaseline", baselines::create),
    ("GetPatchBaseline", baselines::get),
    ("UpdatePatchBaseline", baselines::update),
    ("DeletePatchBaseline", baselines::delete),
    ("DescribePatchBaselines", baselines::describe),
    ("RegisterPatchBaselineForPatchGroup", patch_groups::register),
    (
        "DeregisterPatchBaselineForPatchGroup",
        patch_groups::deregister,
    ),
    ("GetPatchBaselineForPatchGroup", patch_groups::get),
    ("DescribePatchGroups", patch_groups::describe),
    (
        "RegisterDefaultPatchBaseline",
        patch_groups::register_default,
    ),
    ("GetDefaultPatchBaseline", patch_groups::get_default),
    ("CreateMaintenanceWindow", windows::create),
    ("GetMaintenanceWindow", windows::get),
    ("UpdateMaintenanceWindow", windows::update),
    ("DeleteMaintenanceWindow", windows::delete),
    ("DescribeMaintenanceWindows", windows::describe),
    (
        "DescribeMaintenanceWindowExecutions",
        executions::describe_executions,
    ),
    ("GetMaintenanceWindowExecution", executions::get_execution),
    (
        "DescribeMaintenanceWindowExecutionTasks",
        executions::describe_tasks,
    ),
    ("GetMaintenanceWindowExecutionTask", executions::get_task),
    (
        "DescribeMaintenanceWindowExecutionTaskInvocations",
        executions::describe_invocations,
    ),
    ("RegisterTargetWithMaintenanceWindow", targets::register),
    ("UpdateMaintenanceWindowTarget", targets::update),
    ("DeregisterTargetFromMaintenanceWindow", targets::deregister),
    ("DescribeMaintenanceWindowTargets", targets::describe),
    ("RegisterTaskWithMaintenanceWindow", tasks::register),
    ("GetMaintenanceWindowTask", tasks::get),
    ("UpdateMaintenanceWindowTask", tasks::update),
    ("DeregisterTaskFromMaintenanceWindow", tasks::deregister),
    ("DescribeMaintenanceWindowTasks", tasks::describe),
    ("AddTagsToResource", tags::add),
    ("RemoveTagsFromResource", tags::remove),
    ("ListTagsForResource", tags::list),
    ("SendCommand", commands::send),
    ("ListCommands", commands::list),
    ("ListCommandInvocations", commands::list_invocations),
    (
        "DescribeInstanceInformation",
        instances::describe_information,
    ),
    (
        "DescribeInstancePatchStates",
        compliance::describe_patch_states,
    ),
    ("DescribeInstancePatches", compliance::describe_patches),
    (
        "DescribeInstancePatchStatesForPatchGroup",
        compliance::describe_patch_states_for_group,
    ),
    ("DescribePatchGroupState", compliance::describe_group_state),
    ("DescribeInstanceProperties", instances::describe_properties),
    ("CreateActivation", activations::create),
    ("DescribeActivations", activations::describe),
    ("DeleteActivation", activations::delete),
    ("DeregisterManagedInstance", activations::deregister),
    ("ListComplianceSummaries", summaries::list_summaries),
    (
        "ListResourceComplianceSummaries",
        summaries::list_resource_summaries,
    ),
];

pub fn handler(op: &str) -> Option<Handler> {
    OPERATIONS
        .iter()
        .find(|(name, _)| *name == op)
        .map(|(_, h)| *h)
}

pub fn unknown_operation(op: &str) -> ApiError {
    ApiError::new(
        "UnknownOperationException",
        format!("The operation {op} is not supported by the simulator."),
    )
}

/// Runs one SSM operation for a caller's account and region.
pub fn dispatch(sim: &Sim, account: &str, region: &str, op: &str, body: &[u8]) -> ApiResult<Value> {
    let handler = handler(op).ok_or_else(|| unknown_operation(op))?;
    let req = Req::parse(body)?;
    let ctx = Ctx {
        account,
        region,
        quotas: sim.config.quotas,
        now: sim.clock.now(),
        command_seconds: sim.settings.get().command_seconds,
    };
    let shard = sim.store.region(account, region);
    let mut st = state::lock(&shard);
    // Windows whose time came (wall time passing included) run before the call sees the state.
    maintenance::run_due(&ctx, &mut st);
    handler(&ctx, &mut st, req)
}

/// Runs the maintenance windows that came due in every account-region (after the
/// simulated clock moved).
pub fn run_due_everywhere(sim: &Sim) {
    let now = sim.clock.now();
    let command_seconds = sim.settings.get().command_seconds;
    for (account, region, shard) in sim.store.regions() {
        let ctx = Ctx {
            account: &account,
            region: &region,
            quotas: sim.config.quotas,
            now,
            command_seconds,
        };
        maintenance::run_due(&ctx, &mut state::lock(&shard));
    }
}

/// Builds a JSON reply, leaving out absent members as AWS does.
#[derive(Debug, Default)]
pub struct Obj(Map<String, Value>);

impl Obj {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_string(), value.into());
        self
    }

    pub fn opt<T: Into<Value>>(mut self, key: &str, value: Option<T>) -> Self {
        if let Some(v) = value {
            self.0.insert(key.to_string(), v.into());
        }
        self
    }

    pub fn build(self) -> Value {
        Value::Object(self.0)
    }
}

/// Reads the standard Tags member: up to 1000 on create, each key and value checked.
pub fn read_tags(req: &mut Req, name: &str) -> ApiResult<Option<crate::state::Tags>> {
    let Some(list) = req.opt_list(name)? else {
        return Ok(None);
    };
    let path = format!("{}{}", name[..1].to_lowercase(), &name[1..]);
    req.violations.check_count(&path, list.len(), 0, 1000);
    let mut tags = crate::state::Tags::new();
    for (i, t) in list.iter().enumerate() {
        let t = crate::validate::as_object(t, "Tag")?;
        let key = crate::validate::nested_str(t, "Key")?;
        let value = crate::validate::nested_str(t, "Value")?;
        let at = format!("{path}.{}.member", i + 1);
        match key {
            Some(k) => req
                .violations
                .check_str(&format!("{at}.key"), k, crate::validate::TAG_KEY),
            None => req
                .violations
                .push(None, &format!("{at}.key"), "Member must not be null"),
        }
        match value {
            Some(v) => {
                req.violations
                    .check_str(&format!("{at}.value"), v, crate::validate::TAG_VALUE)
            }
            None => req
                .violations
                .push(None, &format!("{at}.value"), "Member must not be null"),
        }
        tags.insert(
            key.unwrap_or_default().to_string(),
            value.unwrap_or_default().to_string(),
        );
    }
    Ok(Some(tags))
}

/// The documented MaxResults range check and the page size to use when absent.
pub fn max_results(req: &mut Req, min: i64, max: i64, default: i64) -> ApiResult<usize> {
    let n = req.opt_int("MaxResults", min, max)?.unwrap_or(default);
    Ok(usize::try_from(n.clamp(min, max)).unwrap_or(1))
}

/// A generic PatchOrchestratorFilter / MaintenanceWindowFilter list: (key, values).
pub fn read_filters(
    req: &mut Req,
    max_filters: usize,
    allowed_keys: &[&str],
) -> ApiResult<Vec<(String, Vec<String>)>> {
    let Some(list) = req.opt_list("Filters")? else {
        return Ok(Vec::new());
    };
    req.violations
        .check_count("filters", list.len(), 0, max_filters);
    let mut out = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let f = crate::validate::as_object(f, "Filter")?;
        let at = format!("filters.{}.member", i + 1);
        let key = crate::validate::nested_str(f, "Key")?
            .unwrap_or_default()
            .to_string();
        req.violations.check_str(
            &format!("{at}.key"),
            &key,
            crate::validate::Str::len(1, 128),
        );
        let mut values = Vec::new();
        for v in crate::validate::nested_list(f, "Values")? {
            let v = v
                .as_str()
                .ok_or_else(|| ApiError::serialization("Filter values must be strings"))?;
            req.violations.check_str(
                &format!("{at}.values"),
                v,
                crate::validate::Str::len(1, 256),
            );
            values.push(v.to_string());
        }
        req.violations
            .check_count(&format!("{at}.values"), values.len(), 0, 20);
        if !key.is_empty() && !allowed_keys.contains(&key.as_str()) {
            // The API reference lists the supported keys per operation; any other
            // key is rejected rather than ignored so a typo cannot silently widen a listing.
            return Err(ApiError::validation(format!(
                "The filter key {key} is not valid. Valid filter keys include: [{}].",
                allowed_keys.join(", ")
            )));
        }
        out.push((key, values));
    }
    Ok(out)
}
