//! Maintenance window targets.
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_RegisterTargetWithMaintenanceWindow.html

use std::ops::Bound;

use serde_json::{Value, json};

use super::windows::window_mut;
use super::{Ctx, Obj, max_results, read_filters};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::state::{Json, RegionState, WindowTarget};
use crate::validate::{
    CLIENT_TOKEN, NEXT_TOKEN, OWNER_INFORMATION, Req, Str, WINDOW_CHILD_ID, WINDOW_DESCRIPTION,
    WINDOW_ID, WINDOW_NAME, as_object, nested_list, nested_str,
};

const RESOURCE_TYPES: &[&str] = &["INSTANCE", "RESOURCE_GROUP"];
const TARGET_KEY: Str = Str::pat(
    1,
    163,
    r"^[\p{L}\p{Z}\p{N}_.:/=\-@]*$|resource-groups:ResourceTypeFilters|resource-groups:Name",
);

/// Reads a `Targets` list (0 to 5 `{Key, Values}` with up to 50 values each).
pub fn read_targets(req: &mut Req, required: bool) -> ApiResult<Option<Value>> {
    let Some(list) = req.opt_list("Targets")? else {
        if required {
            req.violations
                .push(None, "targets", "Member must not be null");
        }
        return Ok(None);
    };
    req.violations.check_count("targets", list.len(), 0, 5);
    for (i, t) in list.iter().enumerate() {
        let t = as_object(t, "Target")?;
        let at = format!("targets.{}.member", i + 1);
        if let Some(k) = nested_str(t, "Key")? {
            req.violations
                .check_str(&format!("{at}.key"), k, TARGET_KEY);
        }
        let values = nested_list(t, "Values")?;
        req.violations
            .check_count(&format!("{at}.values"), values.len(), 0, 50);
        if values.iter().any(|v| !v.is_string()) {
            return Err(ApiError::serialization("Target values must be strings"));
        }
    }
    Ok(Some(Value::Array(list)))
}

/// The window target ids a task's `Targets` refer to (`Key=WindowTargetIds`).
pub fn referenced_target_ids(targets: &Value) -> Vec<String> {
    targets
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t.get("Key").and_then(Value::as_str) == Some("WindowTargetIds"))
        .flat_map(|t| {
            t.get("Values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
        })
        .collect()
}

pub fn not_found(window: &str, target: &str) -> ApiError {
    ApiError::does_not_exist(format!(
        "Maintenance window target {target} does not exist in maintenance window {window}"
    ))
}

fn to_json(window: &str, t: &WindowTarget) -> Obj {
    Obj::new()
        .set("WindowId", window)
        .set("WindowTargetId", t.id.as_str())
        .set("ResourceType", t.resource_type.as_str())
        .set("Targets", t.targets.value())
        .opt("OwnerInformation", t.owner_information.clone())
        .opt("Name", t.name.clone())
        .opt("Description", t.description.clone())
}

pub fn register(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let window_id = req.req_str("WindowId", WINDOW_ID)?;
    let resource_type = req.req_enum("ResourceType", RESOURCE_TYPES)?;
    let targets = read_targets(&mut req, true)?;
    let owner = req.opt_str("OwnerInformation", OWNER_INFORMATION)?;
    let name = req.opt_str("Name", WINDOW_NAME)?;
    let description = req.opt_str("Description", WINDOW_DESCRIPTION)?;
    let token = req.opt_str("ClientToken", CLIENT_TOKEN)?;
    req.finish()?;
    if let Some(id) = st.replayed(
        "RegisterTargetWithMaintenanceWindow",
        token.as_deref(),
        req.raw(),
    )? {
        return Ok(json!({"WindowTargetId": id}));
    }
    let limit = ctx.quotas.targets_per_window;
    let w = window_mut(st, &window_id)?;
    if w.targets.len() >= limit {
        return Err(ApiError::limit(format!(
            "Maximum number of targets ({limit}) for maintenance window {window_id} has been reached."
        )));
    }
    let id = clock::uuid();
    w.targets.insert(
        id.clone(),
        Box::new(WindowTarget {
            id: id.clone(),
            resource_type,
            targets: Json::from(targets.unwrap_or(Value::Array(Vec::new()))),
            owner_information: owner,
            name,
            description,
        }),
    );
    w.modified = ctx.now;
    st.remember(
        "RegisterTargetWithMaintenanceWindow",
        token.as_deref(),
        req.raw(),
        &id,
    );
    Ok(json!({"WindowTargetId": id}))
}

pub fn update(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let window_id = req.req_str("WindowId", WINDOW_ID)?;
    let target_id = req.req_str("WindowTargetId", WINDOW_CHILD_ID)?;
    let targets = read_targets(&mut req, false)?;
    let owner = req.opt_str("OwnerInformation", OWNER_INFORMATION)?;
    let name = req.opt_str("Name", WINDOW_NAME)?;
    let description = req.opt_str("Description", WINDOW_DESCRIPTION)?;
    let replace = req.opt_bool("Replace")?.unwrap_or(false);
    if replace && targets.is_none() {
        // With Replace, the members RegisterTargetWithMaintenanceWindow requires are required.
        req.violations
            .push(None, "targets", "Member must not be null");
    }
    req.finish()?;
    let w = window_mut(st, &window_id)?;
    let t = w
        .targets
        .get_mut(&target_id)
        .ok_or_else(|| not_found(&window_id, &target_id))?;
    if let Some(v) = targets {
        t.targets = v.into();
    }
    for (slot, new) in [
        (&mut t.owner_information, owner),
        (&mut t.name, name),
        (&mut t.description, description),
    ] {
        match new {
            Some(v) => *slot = Some(v),
            None if replace => *slot = None,
            None => {}
        }
    }
    let out = to_json(&window_id, t).build();
    w.modified = ctx.now;
    Ok(out)
}

pub fn deregister(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let window_id = req.req_str("WindowId", WINDOW_ID)?;
    let target_id = req.req_str("WindowTargetId", WINDOW_CHILD_ID)?;
    let safe = req.opt_bool("Safe")?.unwrap_or(false);
    req.finish()?;
    let w = window_mut(st, &window_id)?;
    if !w.targets.contains_key(&target_id) {
        return Err(not_found(&window_id, &target_id));
    }
    // Safe refuses while a task still refers to the target (TargetInUseException).
    // https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeregisterTargetFromMaintenanceWindow.html
    if safe
        && let Some(task) = w.tasks.values().find(|task| {
            task.targets
                .as_ref()
                .is_some_and(|t| referenced_target_ids(&t.value()).contains(&target_id))
        })
    {
        return Err(ApiError::new(
            "TargetInUseException",
            format!(
                "Target {target_id} is in use by task {} and can't be deregistered with Safe set.",
                task.id
            ),
        ));
    }
    w.targets.remove(&target_id);
    w.modified = ctx.now;
    Ok(json!({"WindowId": window_id, "WindowTargetId": target_id}))
}

pub fn describe(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let window_id = req.req_str("WindowId", WINDOW_ID)?;
    let filters = read_filters(&mut req, 5, &["Type", "WindowTargetId", "OwnerInformation"])?;
    let max = max_results(&mut req, 10, 100, 100)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    req.finish()?;
    let after = paging::decode(token.as_deref())?;
    let w = window_mut(st, &window_id)?;
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let selected = w
        .targets
        .range::<String, _>((start, Bound::Unbounded))
        .filter(|(_, t)| {
            filters.iter().all(|(k, values)| match k.as_str() {
                "Type" => values.contains(&t.resource_type),
                "WindowTargetId" => values.contains(&t.id),
                "OwnerInformation" => t
                    .owner_information
                    .as_ref()
                    .is_some_and(|o| values.contains(o)),
                _ => true,
            })
        })
        .map(|(id, t)| (id.clone(), t));
    let (items, next) = paging::page(selected, max);
    let items: Vec<Value> = items
        .into_iter()
        .map(|t| to_json(&window_id, t).build())
        .collect();
    Ok(Obj::new()
        .set("Targets", items)
        .opt("NextToken", next)
        .build())
}
