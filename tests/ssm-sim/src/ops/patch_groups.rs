//! Patch groups and default baselines. A patch group holds at most one baseline
//! per operating system; without one, the OS's default baseline applies.
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_RegisterPatchBaselineForPatchGroup.html
//! https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-patch-groups.html

use serde_json::{Value, json};

use super::baselines::{identity, not_found};
use super::{Ctx, Obj, max_results, read_filters};
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::state::RegionState;
use crate::validate::{BASELINE_ID, NEXT_TOKEN, OPERATING_SYSTEMS, PATCH_GROUP, Req};

pub fn register(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("BaselineId", BASELINE_ID)?;
    let group = req.req_str("PatchGroup", PATCH_GROUP)?;
    req.finish()?;
    let baseline = st.baseline(&id).ok_or_else(|| not_found(&id))?;
    let os = baseline.operating_system.clone();
    let groups_of_baseline = baseline.patch_groups.len();
    if let Some(existing) = st.patch_groups.get(&group).and_then(|m| m.get(&os)) {
        return Err(ApiError::new(
            "AlreadyExistsException",
            format!(
                "Patch Group baseline already has a baseline registered for OperatingSystem {os}: {existing}."
            ),
        ));
    }
    if groups_of_baseline >= ctx.quotas.patch_groups_per_baseline {
        return Err(ApiError::limit(format!(
            "Maximum number of patch groups ({}) for patch baseline {id} has been reached.",
            ctx.quotas.patch_groups_per_baseline
        )));
    }
    st.patch_groups
        .entry(group.clone())
        .or_default()
        .insert(os, id.clone());
    if let Some(b) = st.baselines.get_mut(&id) {
        b.patch_groups.insert(group.clone());
    }
    Ok(json!({"BaselineId": id, "PatchGroup": group}))
}

pub fn deregister(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("BaselineId", BASELINE_ID)?;
    let group = req.req_str("PatchGroup", PATCH_GROUP)?;
    req.finish()?;
    let registered = st
        .patch_groups
        .get(&group)
        .and_then(|m| m.iter().find(|(_, b)| **b == id))
        .map(|(os, _)| os.clone());
    // Errors listed: InvalidResourceId.
    // https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeregisterPatchBaselineForPatchGroup.html
    let Some(os) = registered else {
        return Err(ApiError::new(
            "InvalidResourceId",
            format!("Patch Group {group} is not registered with Patch Baseline {id}."),
        ));
    };
    if let Some(m) = st.patch_groups.get_mut(&group) {
        m.remove(&os);
        if m.is_empty() {
            st.patch_groups.remove(&group);
        }
    }
    if let Some(b) = st.baselines.get_mut(&id) {
        b.patch_groups.remove(&group);
    }
    Ok(json!({"BaselineId": id, "PatchGroup": group}))
}

pub fn get(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let group = req.req_str("PatchGroup", PATCH_GROUP)?;
    let os = req
        .opt_enum("OperatingSystem", OPERATING_SYSTEMS)?
        .unwrap_or_else(|| "WINDOWS".into());
    req.finish()?;
    let id = st
        .patch_groups
        .get(&group)
        .and_then(|m| m.get(&os))
        .cloned()
        .or_else(|| st.default_baseline(&os))
        .ok_or_else(ApiError::internal)?;
    Ok(json!({"BaselineId": id, "PatchGroup": group, "OperatingSystem": os}))
}

pub fn describe(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let filters = read_filters(&mut req, 5, &["NAME_PREFIX", "OPERATING_SYSTEM"])?;
    let max = max_results(&mut req, 1, 100, 100)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    req.finish()?;
    let after = paging::decode(token.as_deref())?;
    let mappings = st.patch_groups.iter().flat_map(|(group, by_os)| {
        by_os
            .iter()
            .map(move |(os, id)| (format!("{group}\u{0}{os}"), (group, os, id)))
    });
    let selected = mappings
        .filter(|(key, _)| after.as_ref().is_none_or(|a| key > a))
        .filter(|(_, (group, os, _))| {
            filters.iter().all(|(k, values)| match k.as_str() {
                "NAME_PREFIX" => values.iter().any(|p| group.starts_with(p.as_str())),
                "OPERATING_SYSTEM" => values.iter().any(|v| v == *os),
                _ => true,
            })
        });
    let (items, next) = paging::page(selected, max);
    let items: Vec<Value> = items
        .into_iter()
        .filter_map(|(group, os, id)| {
            let b = st.baseline(id)?;
            let default = st.default_baseline(os).as_deref() == Some(id.as_str());
            Some(json!({"PatchGroup": group, "BaselineIdentity": identity(b, default)}))
        })
        .collect();
    Ok(Obj::new()
        .set("Mappings", items)
        .opt("NextToken", next)
        .build())
}

pub fn register_default(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("BaselineId", BASELINE_ID)?;
    req.finish()?;
    let os = st
        .baseline(&id)
        .ok_or_else(|| not_found(&id))?
        .operating_system
        .clone();
    st.default_baselines.insert(os, id.clone());
    Ok(json!({"BaselineId": id}))
}

pub fn get_default(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let os = req
        .opt_enum("OperatingSystem", OPERATING_SYSTEMS)?
        .unwrap_or_else(|| "WINDOWS".into());
    req.finish()?;
    let id = st.default_baseline(&os).ok_or_else(ApiError::internal)?;
    Ok(json!({"BaselineId": id, "OperatingSystem": os}))
}
