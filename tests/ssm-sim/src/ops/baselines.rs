//! Patch baselines.
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreatePatchBaseline.html

use std::collections::BTreeSet;
use std::ops::Bound;

use serde_json::{Value, json};

use super::{Ctx, Obj, max_results, read_filters, read_tags};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::state::{Baseline, Json, RegionState};
use crate::validate::{
    BASELINE_ID, BASELINE_NAME, CLIENT_TOKEN, COMPLIANCE_LEVELS, OPERATING_SYSTEMS, Req, Str,
    as_object, nested_list, nested_str,
};

const PATCH_FILTER_KEYS: &[&str] = &[
    "ARCH",
    "ADVISORY_ID",
    "BUGZILLA_ID",
    "PATCH_SET",
    "PRODUCT",
    "PRODUCT_FAMILY",
    "CLASSIFICATION",
    "CVE_ID",
    "EPOCH",
    "MSRC_SEVERITY",
    "NAME",
    "PATCH_ID",
    "SECTION",
    "PRIORITY",
    "REPOSITORY",
    "RELEASE",
    "SEVERITY",
    "SECURITY",
    "VERSION",
];
const REJECTED_ACTIONS: &[&str] = &["ALLOW_AS_DEPENDENCY", "BLOCK"];
const SECURITY_STATUS: &[&str] = &["COMPLIANT", "NON_COMPLIANT"];
const PATCH_ID: Str = Str::len(1, 100);

pub fn not_found(id: &str) -> ApiError {
    ApiError::does_not_exist(format!("Patch Baseline {id} does not exist."))
}

/// The members Create and Update share, each None when absent from the request.
struct Members {
    name: Option<String>,
    description: Option<String>,
    global_filters: Option<Value>,
    approval_rules: Option<Value>,
    approved_patches: Option<Vec<String>>,
    approved_level: Option<String>,
    approved_non_security: Option<bool>,
    rejected_patches: Option<Vec<String>>,
    rejected_action: Option<String>,
    sources: Option<Vec<Value>>,
    security_status: Option<String>,
}

fn read_members(req: &mut Req, name_required: bool) -> ApiResult<Members> {
    let name = if name_required {
        Some(req.req_str("Name", BASELINE_NAME)?)
    } else {
        req.opt_str("Name", BASELINE_NAME)?
    };
    let global_filters = req.opt_object("GlobalFilters")?;
    if let Some(g) = &global_filters {
        check_filter_group(req, "globalFilters", g)?;
    }
    let approval_rules = req.opt_object("ApprovalRules")?;
    if let Some(r) = &approval_rules {
        let rules = nested_list(r, "PatchRules")?;
        req.violations
            .check_count("approvalRules.patchRules", rules.len(), 0, 10);
        for (i, rule) in rules.iter().enumerate() {
            let rule = as_object(rule, "PatchRule")?;
            let at = format!("approvalRules.patchRules.{}.member", i + 1);
            match rule.get("PatchFilterGroup") {
                Some(g) => check_filter_group(
                    req,
                    &format!("{at}.patchFilterGroup"),
                    as_object(g, "PatchFilterGroup")?,
                )?,
                None => req.violations.push(
                    None,
                    &format!("{at}.patchFilterGroup"),
                    "Member must not be null",
                ),
            }
            if let Some(level) = nested_str(rule, "ComplianceLevel")? {
                req.violations.check_enum(
                    &format!("{at}.complianceLevel"),
                    level,
                    COMPLIANCE_LEVELS,
                );
            }
            match rule.get("ApproveAfterDays") {
                None | Some(Value::Null) => {}
                Some(Value::Number(n)) => req.violations.check_range(
                    &format!("{at}.approveAfterDays"),
                    n.as_i64().unwrap_or(-1),
                    0,
                    360,
                ),
                Some(_) => {
                    return Err(ApiError::serialization(
                        "ApproveAfterDays must be an integer",
                    ));
                }
            }
            if let Some(until) = nested_str(rule, "ApproveUntilDate")? {
                req.violations
                    .check_str(&format!("{at}.approveUntilDate"), until, Str::len(1, 30));
            }
        }
    }
    let approved_patches = req.opt_str_list("ApprovedPatches", 0, 50, PATCH_ID)?;
    let approved_level = req.opt_enum("ApprovedPatchesComplianceLevel", COMPLIANCE_LEVELS)?;
    let approved_non_security = req.opt_bool("ApprovedPatchesEnableNonSecurity")?;
    let rejected_patches = req.opt_str_list("RejectedPatches", 0, 50, PATCH_ID)?;
    let rejected_action = req.opt_enum("RejectedPatchesAction", REJECTED_ACTIONS)?;
    let description = req.opt_str("Description", Str::len(1, 1024))?;
    let sources = req.opt_list("Sources")?;
    if let Some(sources) = &sources {
        req.violations.check_count("sources", sources.len(), 0, 20);
        for (i, s) in sources.iter().enumerate() {
            let s = as_object(s, "PatchSource")?;
            let at = format!("sources.{}.member", i + 1);
            match nested_str(s, "Name")? {
                Some(n) => req.violations.check_str(
                    &format!("{at}.name"),
                    n,
                    Str::pat(3, 50, r"^[a-zA-Z0-9_\-.]{3,50}$"),
                ),
                None => req
                    .violations
                    .push(None, &format!("{at}.name"), "Member must not be null"),
            }
            let products = nested_list(s, "Products")?;
            req.violations
                .check_count(&format!("{at}.products"), products.len(), 1, 20);
            match nested_str(s, "Configuration")? {
                Some(c) => {
                    req.violations
                        .check_str(&format!("{at}.configuration"), c, Str::len(1, 1024))
                }
                None => req.violations.push(
                    None,
                    &format!("{at}.configuration"),
                    "Member must not be null",
                ),
            }
        }
    }
    let security_status =
        req.opt_enum("AvailableSecurityUpdatesComplianceStatus", SECURITY_STATUS)?;
    Ok(Members {
        name,
        description,
        global_filters: global_filters.map(Value::Object),
        approval_rules: approval_rules.map(with_rule_defaults),
        approved_patches,
        approved_level,
        approved_non_security,
        rejected_patches,
        rejected_action,
        sources,
        security_status,
    })
}

/// AWS answers rules with their defaults filled in (`"ComplianceLevel": "UNSPECIFIED"`,
/// `"EnableNonSecurity": false`), as in the example output of
/// https://docs.aws.amazon.com/cli/latest/reference/ssm/get-patch-baseline.html
fn with_rule_defaults(mut rules: serde_json::Map<String, Value>) -> Value {
    if let Some(Value::Array(list)) = rules.get_mut("PatchRules") {
        for rule in list.iter_mut().filter_map(Value::as_object_mut) {
            rule.entry("ComplianceLevel")
                .or_insert_with(|| json!("UNSPECIFIED"));
            rule.entry("EnableNonSecurity").or_insert(json!(false));
        }
    }
    Value::Object(rules)
}

fn check_filter_group(
    req: &mut Req,
    path: &str,
    group: &serde_json::Map<String, Value>,
) -> ApiResult<()> {
    let filters = nested_list(group, "PatchFilters")?;
    req.violations
        .check_count(&format!("{path}.patchFilters"), filters.len(), 0, 5);
    for (i, f) in filters.iter().enumerate() {
        let f = as_object(f, "PatchFilter")?;
        let at = format!("{path}.patchFilters.{}.member", i + 1);
        match nested_str(f, "Key")? {
            Some(k) => req
                .violations
                .check_enum(&format!("{at}.key"), k, PATCH_FILTER_KEYS),
            None => req
                .violations
                .push(None, &format!("{at}.key"), "Member must not be null"),
        }
        let values = nested_list(f, "Values")?;
        req.violations
            .check_count(&format!("{at}.values"), values.len(), 1, 20);
        for v in values {
            let v = v
                .as_str()
                .ok_or_else(|| ApiError::serialization("PatchFilter values must be strings"))?;
            req.violations
                .check_str(&format!("{at}.values"), v, Str::len(1, 64));
        }
    }
    Ok(())
}

fn full(b: &Baseline) -> Obj {
    Obj::new()
        .set("BaselineId", b.id.as_str())
        .set("Name", b.name.as_str())
        .set("OperatingSystem", b.operating_system.as_str())
        .set(
            "GlobalFilters",
            b.global_filters
                .as_ref()
                .map_or_else(|| json!({"PatchFilters": []}), Json::value),
        )
        .set(
            "ApprovalRules",
            b.approval_rules
                .as_ref()
                .map_or_else(|| json!({"PatchRules": []}), Json::value),
        )
        .set("ApprovedPatches", b.approved_patches.clone())
        .set(
            "ApprovedPatchesComplianceLevel",
            b.approved_patches_compliance_level.as_str(),
        )
        .set(
            "ApprovedPatchesEnableNonSecurity",
            b.approved_patches_enable_non_security,
        )
        .set("RejectedPatches", b.rejected_patches.clone())
        .set("RejectedPatchesAction", b.rejected_patches_action.as_str())
        .set("CreatedDate", b.created)
        .set("ModifiedDate", b.modified)
        .opt("Description", b.description.clone())
        .set(
            "Sources",
            b.sources.as_ref().map_or_else(|| json!([]), Json::value),
        )
        .opt(
            "AvailableSecurityUpdatesComplianceStatus",
            b.available_security_updates_compliance_status.clone(),
        )
}

pub fn identity(b: &Baseline, default: bool) -> Value {
    Obj::new()
        .set("BaselineId", b.id.as_str())
        .set("BaselineName", b.name.as_str())
        .set("OperatingSystem", b.operating_system.as_str())
        .opt("BaselineDescription", b.description.clone())
        .set("DefaultBaseline", default)
        .build()
}

pub fn create(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let m = read_members(&mut req, true)?;
    let os = req
        .opt_enum("OperatingSystem", OPERATING_SYSTEMS)?
        .unwrap_or_else(|| "WINDOWS".to_string());
    let token = req.opt_str("ClientToken", CLIENT_TOKEN)?;
    let tags = read_tags(&mut req, "Tags")?.unwrap_or_default();
    req.finish()?;
    if let Some(id) = st.replayed("CreatePatchBaseline", token.as_deref(), req.raw())? {
        return Ok(json!({"BaselineId": id}));
    }
    if st.baselines.len() >= ctx.quotas.patch_baselines {
        return Err(ApiError::limit(format!(
            "Maximum number of patch baselines ({}) has been reached.",
            ctx.quotas.patch_baselines
        )));
    }
    if tags.len() > ctx.quotas.tags_per_resource {
        return Err(super::tags::too_many());
    }
    let id = clock::short_id("pb");
    let b = Baseline {
        id: id.clone(),
        name: m.name.unwrap_or_default(),
        operating_system: os,
        description: m.description,
        global_filters: m.global_filters.map(Json::from),
        approval_rules: m.approval_rules.map(Json::from),
        approved_patches: m.approved_patches.unwrap_or_default(),
        approved_patches_compliance_level: m.approved_level.unwrap_or_else(|| "UNSPECIFIED".into()),
        approved_patches_enable_non_security: m.approved_non_security.unwrap_or(false),
        rejected_patches: m.rejected_patches.unwrap_or_default(),
        rejected_patches_action: m
            .rejected_action
            .unwrap_or_else(|| "ALLOW_AS_DEPENDENCY".into()),
        sources: m.sources.map(|s| Json::from(Value::Array(s))),
        available_security_updates_compliance_status: m.security_status,
        created: ctx.now,
        modified: ctx.now,
        tags,
        patch_groups: BTreeSet::new(),
    };
    st.baselines.insert(id.clone(), Box::new(b));
    st.remember("CreatePatchBaseline", token.as_deref(), req.raw(), &id);
    Ok(json!({"BaselineId": id}))
}

pub fn get(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("BaselineId", BASELINE_ID)?;
    req.finish()?;
    let b = st.baseline(&id).ok_or_else(|| not_found(&id))?;
    Ok(full(b)
        .set(
            "PatchGroups",
            b.patch_groups.iter().cloned().collect::<Vec<_>>(),
        )
        .build())
}

pub fn update(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("BaselineId", BASELINE_ID)?;
    let m = read_members(&mut req, false)?;
    let replace = req.opt_bool("Replace")?.unwrap_or(false);
    req.finish()?;
    if st.is_predefined(&id) {
        return Err(predefined_is_read_only(&id));
    }
    let b = st.baselines.get_mut(&id).ok_or_else(|| not_found(&id))?;
    // Replace=true resets every optional member that the request leaves out.
    // https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdatePatchBaseline.html
    fn apply<T>(slot: &mut T, new: Option<T>, replace: bool, reset: impl FnOnce() -> T) {
        match new {
            Some(v) => *slot = v,
            None if replace => *slot = reset(),
            None => {}
        }
    }
    if let Some(name) = m.name {
        b.name = name;
    }
    apply(&mut b.description, m.description.map(Some), replace, || {
        None
    });
    apply(
        &mut b.global_filters,
        m.global_filters.map(|v| Some(v.into())),
        replace,
        || None,
    );
    apply(
        &mut b.approval_rules,
        m.approval_rules.map(|v| Some(v.into())),
        replace,
        || None,
    );
    apply(
        &mut b.approved_patches,
        m.approved_patches,
        replace,
        Vec::new,
    );
    apply(
        &mut b.approved_patches_compliance_level,
        m.approved_level,
        replace,
        || "UNSPECIFIED".into(),
    );
    apply(
        &mut b.approved_patches_enable_non_security,
        m.approved_non_security,
        replace,
        || false,
    );
    apply(
        &mut b.rejected_patches,
        m.rejected_patches,
        replace,
        Vec::new,
    );
    apply(
        &mut b.rejected_patches_action,
        m.rejected_action,
        replace,
        || "ALLOW_AS_DEPENDENCY".into(),
    );
    let sources = m.sources.map(|s| Some(Json::from(Value::Array(s))));
    apply(&mut b.sources, sources, replace, || None);
    apply(
        &mut b.available_security_updates_compliance_status,
        m.security_status.map(Some),
        replace,
        || None,
    );
    b.modified = ctx.now;
    Ok(full(b).build())
}

fn predefined_is_read_only(id: &str) -> ApiError {
    ApiError::new(
        "InvalidResourceId",
        format!("The patch baseline {id} is provided by AWS and can't be modified or deleted."),
    )
}

pub fn delete(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("BaselineId", BASELINE_ID)?;
    req.finish()?;
    if st.is_predefined(&id) {
        return Err(predefined_is_read_only(&id));
    }
    if let Some(b) = st.baselines.get(&id) {
        // ResourceInUseException: "registered for a patch group"; a default baseline is in use too.
        // https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeletePatchBaseline.html
        if !b.patch_groups.is_empty() {
            return Err(ApiError::new(
                "ResourceInUseException",
                format!(
                    "Patch Baseline {id} is registered with patch groups and can't be deleted."
                ),
            ));
        }
        if st.default_baselines.get(&b.operating_system) == Some(&id) {
            return Err(ApiError::new(
                "ResourceInUseException",
                format!("Patch Baseline {id} is the default patch baseline and can't be deleted."),
            ));
        }
    }
    // The API reference lists no DoesNotExistException here: deleting an absent
    // baseline succeeds and echoes the id.
    st.baselines.remove(&id);
    Ok(json!({"BaselineId": id}))
}

pub fn describe(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let filters = read_filters(&mut req, 5, &["NAME_PREFIX", "OWNER", "OPERATING_SYSTEM"])?;
    let max = max_results(&mut req, 1, 100, 100)?;
    let token = req.opt_str("NextToken", crate::validate::NEXT_TOKEN)?;
    req.finish()?;
    let after = paging::decode(token.as_deref())?;
    let wants = |b: &Baseline, owner: &str| {
        filters.iter().all(|(key, values)| match key.as_str() {
            "NAME_PREFIX" => values.iter().any(|p| b.name.starts_with(p.as_str())),
            "OWNER" => values.iter().any(|v| v == owner || v == "All"),
            "OPERATING_SYSTEM" => values.contains(&b.operating_system),
            _ => true,
        })
    };
    // Predefined baselines first ("0:" keys), then the account's own ("1:" keys) in id order.
    let after_custom = match after.as_deref() {
        Some(k) if k.starts_with("1:") => Bound::Excluded(k[2..].to_string()),
        _ => Bound::Unbounded,
    };
    let predefined = st
        .predefined
        .iter()
        .enumerate()
        .filter(|(i, _)| match after.as_deref() {
            Some(k) if k.starts_with("0:") => k[2..].parse::<usize>().is_ok_and(|a| *i > a),
            Some(_) => false,
            None => true,
        })
        .filter(|(_, b)| wants(b, "AWS"))
        .map(|(i, b)| (format!("0:{i}"), b));
    let custom = st
        .baselines
        .range::<String, _>((after_custom, Bound::Unbounded))
        .map(|(_, b)| b)
        .filter(|b| wants(b, "Self"))
        .map(|b| (format!("1:{}", b.id), &**b));
    let (items, next) = paging::page(predefined.chain(custom), max);
    let items: Vec<Value> = items
        .into_iter()
        .map(|b| {
            let default =
                st.default_baseline(&b.operating_system).as_deref() == Some(b.id.as_str());
            identity(b, default)
        })
        .collect();
    Ok(Obj::new()
        .set("BaselineIdentities", items)
        .opt("NextToken", next)
        .build())
}
