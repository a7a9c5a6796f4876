//! Tags on patch baselines, maintenance windows and managed instances.
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AddTagsToResource.html

use serde_json::{Value, json};

use super::{Ctx, read_tags};
use crate::error::{ApiError, ApiResult};
use crate::state::{RegionState, Tags};
use crate::validate::{Req, Str, TAG_KEY};

const RESOURCE_TYPES: &[&str] = &[
    "Document",
    "ManagedInstance",
    "MaintenanceWindow",
    "Parameter",
    "PatchBaseline",
    "OpsItem",
    "OpsMetadata",
    "Automation",
    "Association",
];

pub fn too_many() -> ApiError {
    ApiError::new(
        "TooManyTagsError",
        "The Targets parameter includes too many tags. Remove one or more tags and try the command again.",
    )
}

fn invalid_id(id: &str) -> ApiError {
    ApiError::new(
        "InvalidResourceId",
        format!(
            "The resource ID {id} isn't valid. Verify that you entered the correct ID and try again."
        ),
    )
}

/// The tags of a resource, or the error AWS answers for an unknown one.
fn tags_mut<'a>(st: &'a mut RegionState, kind: &str, id: &str) -> ApiResult<&'a mut Tags> {
    match kind {
        "PatchBaseline" => st
            .baselines
            .get_mut(id)
            .map(|b| &mut b.tags)
            .ok_or_else(|| invalid_id(id)),
        "MaintenanceWindow" => st
            .windows
            .get_mut(id)
            .map(|w| &mut w.tags)
            .ok_or_else(|| invalid_id(id)),
        // "The ManagedInstance type for this API operation is only for on-premises
        // managed nodes ... in the format mi-ID_number": the hybrid nodes of the
        // simulated fleet (`/_sim/instances`), whose tags Run Command targets match.
        "ManagedInstance" if id.starts_with("mi-") => st
            .instances
            .get_mut(id)
            .map(|i| &mut i.tags)
            .ok_or_else(|| invalid_id(id)),
        "ManagedInstance" => Err(invalid_id(id)),
        other => Err(ApiError::new(
            "InvalidResourceType",
            format!("The resource type {other} isn't supported by the simulator."),
        )),
    }
}

fn target(req: &mut Req) -> ApiResult<(String, String)> {
    let kind = req.req_enum("ResourceType", RESOURCE_TYPES)?;
    let id = req.req_str("ResourceId", Str::len(1, 1024))?;
    Ok((kind, id))
}

pub fn add(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let (kind, id) = target(&mut req)?;
    let tags = read_tags(&mut req, "Tags")?;
    if tags.is_none() {
        req.violations.push(None, "tags", "Member must not be null");
    }
    req.finish()?;
    let limit = ctx.quotas.tags_per_resource;
    let existing = tags_mut(st, &kind, &id)?;
    let mut merged = existing.clone();
    merged.extend(tags.unwrap_or_default());
    if merged.len() > limit {
        return Err(too_many());
    }
    *existing = merged;
    Ok(json!({}))
}

pub fn remove(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let (kind, id) = target(&mut req)?;
    let keys = req.opt_str_list("TagKeys", 0, 1000, TAG_KEY)?;
    if keys.is_none() {
        req.violations
            .push(None, "tagKeys", "Member must not be null");
    }
    req.finish()?;
    let existing = tags_mut(st, &kind, &id)?;
    for k in keys.unwrap_or_default() {
        existing.remove(&k);
    }
    Ok(json!({}))
}

pub fn list(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let (kind, id) = target(&mut req)?;
    req.finish()?;
    let tags = tags_mut(st, &kind, &id)?;
    let list: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({"TagList": list}))
}
