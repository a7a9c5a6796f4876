//! What the last Scan or Install found on each node: DescribeInstancePatchStates
//! (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstancePatchStates.html)
//! and DescribeInstancePatches
//! (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstancePatches.html),
//! and per patch group DescribeInstancePatchStatesForPatchGroup and DescribePatchGroupState.
//! The records are written by AWS-RunPatchBaseline (`commands::run_on`); each operation
//! overwrites the node's previous one.

use serde_json::Value;

use super::{Ctx, Obj, max_results, read_filters};
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::patching::State;
use crate::state::{PatchStateRecord, RegionState, ReportedPatch};
use crate::validate::{NEXT_TOKEN, PATCH_GROUP, Req, Str};

const INSTANCE_ID: Str = Str::pat(10, 124, r"(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)");
/// PatchComplianceMaxResults: 10 to 100 (the reference states no default).
const PAGE: (i64, i64, i64) = (10, 100, 10);

/// Classifications that make a patch a security patch (Windows and Linux).
const SECURITY: &[&str] = &["SecurityUpdates", "CriticalUpdates", "Security"];

/// Whether a patch in this state makes its node non-compliant: "missing, have failed
/// installation, were rejected, or were installed but awaiting a required managed node
/// reboot" (InstancePatchState's non-compliant counts). The compliance summaries
/// (`summaries.rs`) use the same test, so the two views of a node agree.
pub(super) fn non_compliant(state: State) -> bool {
    matches!(
        state,
        State::Missing | State::Failed | State::InstalledRejected | State::InstalledPendingReboot
    )
}

/// A node's last report, counted: by state, and its non-compliant patches ("missing,
/// have failed installation, were rejected, or were installed but awaiting a required
/// managed node reboot", InstancePatchState) as critical (the approving rule's compliance
/// level is CRITICAL), security (classified as a security update) and other (neither).
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    installed: usize,
    installed_other: usize,
    pending_reboot: usize,
    rejected: usize,
    missing: usize,
    failed: usize,
    critical: usize,
    security: usize,
    other: usize,
}

impl Tally {
    fn of(record: &PatchStateRecord) -> Tally {
        let mut t = Tally::default();
        for p in &record.patches {
            match p.state {
                State::Installed => t.installed += 1,
                State::InstalledOther => t.installed_other += 1,
                State::InstalledPendingReboot => t.pending_reboot += 1,
                State::InstalledRejected => t.rejected += 1,
                State::Missing => t.missing += 1,
                State::Failed => t.failed += 1,
            }
            if !non_compliant(p.state) {
                continue;
            }
            let critical = p.compliance_level == "CRITICAL";
            let security = SECURITY.contains(&p.patch.classification.as_str());
            t.critical += usize::from(critical);
            t.security += usize::from(security);
            t.other += usize::from(!critical && !security);
        }
        t
    }

    /// The InstancePatchStateFilter keys, by name.
    fn get(&self, key: &str) -> Option<usize> {
        Some(match key {
            "InstalledCount" => self.installed,
            "InstalledOtherCount" => self.installed_other,
            "InstalledPendingRebootCount" => self.pending_reboot,
            "InstalledRejectedCount" => self.rejected,
            "MissingCount" => self.missing,
            "FailedCount" => self.failed,
            "UnreportedNotApplicableCount" | "NotApplicableCount" => 0,
            _ => return None,
        })
    }
}

/// One InstancePatchState.
fn patch_state(id: &str, record: &PatchStateRecord) -> Value {
    let t = Tally::of(record);
    Obj::new()
        .set("InstanceId", id)
        .set("PatchGroup", record.patch_group.as_str())
        .set("BaselineId", record.baseline_id.as_str())
        .set("InstalledCount", t.installed)
        .set("InstalledOtherCount", t.installed_other)
        .set("InstalledPendingRebootCount", t.pending_reboot)
        .set("InstalledRejectedCount", t.rejected)
        .set("MissingCount", t.missing)
        .set("FailedCount", t.failed)
        .set("UnreportedNotApplicableCount", 0)
        .set("NotApplicableCount", 0)
        .set("OperationStartTime", record.started)
        .set("OperationEndTime", record.ended)
        .set("Operation", record.operation.as_str())
        .opt(
            "LastNoRebootInstallOperationTime",
            record.last_no_reboot_install,
        )
        .set("RebootOption", record.reboot_option.as_str())
        .set("CriticalNonCompliantCount", t.critical)
        .set("SecurityNonCompliantCount", t.security)
        .set("OtherNonCompliantCount", t.other)
        .build()
}

/// One InstancePatchStateFilter: a count compared with one non-negative integer.
struct CountFilter {
    key: String,
    value: usize,
    comparison: String,
}

impl CountFilter {
    fn holds(&self, t: &Tally) -> bool {
        let Some(n) = t.get(&self.key) else {
            return false;
        };
        match self.comparison.as_str() {
            "Equal" => n == self.value,
            "NotEqual" => n != self.value,
            "LessThan" => n < self.value,
            _ => n > self.value,
        }
    }
}

/// Filters of DescribeInstancePatchStatesForPatchGroup: 0 to 4, each a known key, exactly
/// one value ("Must be an integer greater than or equal to 0") and a Type.
fn read_count_filters(req: &mut Req) -> ApiResult<Vec<CountFilter>> {
    let Some(list) = req.opt_list("Filters")? else {
        return Ok(Vec::new());
    };
    req.violations.check_count("filters", list.len(), 0, 4);
    let mut out = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let f = crate::validate::as_object(f, "InstancePatchStateFilter")?;
        let at = format!("filters.{}.member", i + 1);
        let key = crate::validate::nested_str(f, "Key")?
            .unwrap_or_default()
            .to_owned();
        let comparison = crate::validate::nested_str(f, "Type")?
            .unwrap_or_default()
            .to_owned();
        let values = crate::validate::nested_list(f, "Values")?;
        req.violations
            .check_str(&format!("{at}.key"), &key, Str::len(1, 200));
        req.violations.check_enum(
            &format!("{at}.type"),
            &comparison,
            &["Equal", "NotEqual", "LessThan", "GreaterThan"],
        );
        req.violations
            .check_count(&format!("{at}.values"), values.len(), 1, 1);
        let value = values
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        out.push((key, value, comparison));
    }
    req.finish()?;
    out.into_iter()
        .map(|(key, value, comparison)| {
            if Tally::default().get(&key).is_none() {
                return Err(ApiError::new(
                    "InvalidFilter",
                    format!("The filter name isn't valid: {key}"),
                ));
            }
            let value = value.parse::<usize>().map_err(|_| {
                ApiError::new(
                    "InvalidFilter",
                    format!(
                        "The filter value {value:?} must be an integer greater than or equal to 0"
                    ),
                )
            })?;
            Ok(CountFilter {
                key,
                value,
                comparison,
            })
        })
        .collect()
}

/// The nodes whose last report was made as members of `group`.
fn members<'s>(
    st: &'s RegionState,
    group: &'s str,
) -> impl Iterator<Item = (&'s String, &'s PatchStateRecord)> {
    st.instances.iter().filter_map(move |(id, node)| {
        let record = node.patch_state.as_ref()?;
        (record.patch_group == group).then_some((id, record))
    })
}

pub fn describe_patch_states_for_group(
    _ctx: &Ctx<'_>,
    st: &mut RegionState,
    mut req: Req,
) -> ApiResult<Value> {
    let group = req.req_str("PatchGroup", PATCH_GROUP)?;
    let (min, max, default) = PAGE;
    let max = max_results(&mut req, min, max, default)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    let filters = read_count_filters(&mut req)?;
    req.finish()?;
    let after = paging::decode(token.as_deref())?;
    let selected = members(st, &group)
        .filter(|(id, _)| after.as_ref().is_none_or(|a| *id > a))
        .filter(|(_, record)| {
            let t = Tally::of(record);
            filters.iter().all(|f| f.holds(&t))
        })
        .map(|(id, record)| (id.clone(), patch_state(id, record)));
    let (items, next) = paging::page(selected, max);
    Ok(Obj::new()
        .set("InstancePatchStates", items)
        .opt("NextToken", next)
        .build())
}

/// DescribePatchGroupState: how many of the group's nodes have at least one patch in each
/// state ("The number of managed nodes with ...").
pub fn describe_group_state(
    _ctx: &Ctx<'_>,
    st: &mut RegionState,
    mut req: Req,
) -> ApiResult<Value> {
    let group = req.req_str("PatchGroup", PATCH_GROUP)?;
    req.finish()?;
    let tallies: Vec<Tally> = members(st, &group).map(|(_, r)| Tally::of(r)).collect();
    let with = |f: fn(&Tally) -> usize| tallies.iter().filter(|t| f(t) > 0).count();
    Ok(Obj::new()
        .set("Instances", tallies.len())
        .set("InstancesWithInstalledPatches", with(|t| t.installed))
        .set(
            "InstancesWithInstalledOtherPatches",
            with(|t| t.installed_other),
        )
        .set(
            "InstancesWithInstalledPendingRebootPatches",
            with(|t| t.pending_reboot),
        )
        .set(
            "InstancesWithInstalledRejectedPatches",
            with(|t| t.rejected),
        )
        .set("InstancesWithMissingPatches", with(|t| t.missing))
        .set("InstancesWithFailedPatches", with(|t| t.failed))
        .set("InstancesWithNotApplicablePatches", 0)
        .set("InstancesWithUnreportedNotApplicablePatches", 0)
        .set(
            "InstancesWithCriticalNonCompliantPatches",
            with(|t| t.critical),
        )
        .set(
            "InstancesWithSecurityNonCompliantPatches",
            with(|t| t.security),
        )
        .set("InstancesWithOtherNonCompliantPatches", with(|t| t.other))
        .set("InstancesWithAvailableSecurityUpdates", 0)
        .build())
}

pub fn describe_patch_states(
    _ctx: &Ctx<'_>,
    st: &mut RegionState,
    mut req: Req,
) -> ApiResult<Value> {
    let ids = req
        .opt_str_list("InstanceIds", 0, 50, INSTANCE_ID)?
        .unwrap_or_default();
    if !req.has("InstanceIds") {
        req.violations
            .push(None, "instanceIds", "Member must not be null");
    }
    let (min, max, default) = PAGE;
    let max = max_results(&mut req, min, max, default)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    req.finish()?;
    let after = paging::decode(token.as_deref())?;
    let mut ids = ids;
    ids.sort();
    ids.dedup();
    let selected = ids
        .into_iter()
        .filter(|id| after.as_ref().is_none_or(|a| id > a))
        .filter_map(|id| {
            let record = st.instances.get(&id)?.patch_state.as_ref()?;
            let value = patch_state(&id, record);
            Some((id, value))
        });
    let (items, next) = paging::page(selected, max);
    Ok(Obj::new()
        .set("InstancePatchStates", items)
        .opt("NextToken", next)
        .build())
}

/// The State filter's values as the reference spells them (`Installed`, ...).
fn state_filter_value(state: State) -> &'static str {
    match state {
        State::Installed => "Installed",
        State::InstalledOther => "InstalledOther",
        State::InstalledPendingReboot => "InstalledPendingReboot",
        State::InstalledRejected => "InstalledRejected",
        State::Missing => "Missing",
        State::Failed => "Failed",
    }
}

fn patch_data(p: &ReportedPatch) -> Value {
    // "Currently, CVE ID values are reported only for patches with a status of Missing or
    // Failed."
    let cves = matches!(p.state, State::Missing | State::Failed)
        .then(|| p.patch.cve_ids.join(","))
        .filter(|c| !c.is_empty());
    Obj::new()
        .set("Title", p.patch.title.as_str())
        .set(
            "KBId",
            p.patch.kb_id.as_deref().unwrap_or(p.patch.title.as_str()),
        )
        .set("Classification", p.patch.classification.as_str())
        .set("Severity", p.patch.severity.as_str())
        .set("State", p.state.as_str())
        .set("InstalledTime", p.installed_at.unwrap_or(0.0))
        .opt("CVEIds", cves)
        .build()
}

pub fn describe_patches(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("InstanceId", INSTANCE_ID)?;
    // The reference names InvalidFilter for a key it does not support.
    let filters = read_filters(
        &mut req,
        5,
        &["Classification", "KBId", "Severity", "State"],
    )
    .map_err(|e| {
        if e.message.starts_with("The filter key") {
            ApiError::new("InvalidFilter", e.message)
        } else {
            e
        }
    })?;
    let (min, max, default) = PAGE;
    let max = max_results(&mut req, min, max, default)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    req.finish()?;
    let after = paging::decode(token.as_deref())?;
    let node = st.instances.get(&id).ok_or_else(|| {
        ApiError::new(
            "InvalidInstanceId",
            format!("Instance Id {id} is not valid or does not belong to this account"),
        )
    })?;
    let wanted = |p: &ReportedPatch| {
        filters.iter().all(|(key, values)| {
            let value = match key.as_str() {
                "Classification" => p.patch.classification.as_str(),
                "KBId" => p.patch.kb_id.as_deref().unwrap_or(p.patch.title.as_str()),
                "Severity" => p.patch.severity.as_str(),
                _ => state_filter_value(p.state),
            };
            values.iter().any(|v| v == value)
        })
    };
    let reported = node
        .patch_state
        .as_ref()
        .map(|r| r.patches.as_slice())
        .unwrap_or_default();
    let selected = reported
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("{i:08}"), p))
        .filter(|(key, _)| after.as_ref().is_none_or(|a| key > a))
        .filter(|(_, p)| wanted(p))
        .map(|(key, p)| (key, patch_data(p)));
    let (items, next) = paging::page(selected, max);
    Ok(Obj::new()
        .set("Patches", items)
        .opt("NextToken", next)
        .build())
}
