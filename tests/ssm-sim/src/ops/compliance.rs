//! What the last Scan or Install found on each node: DescribeInstancePatchStates
//! (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstancePatchStates.html)
//! and DescribeInstancePatches
//! (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstancePatches.html).
//! The records are written by AWS-RunPatchBaseline (`commands::run_on`); each operation
//! overwrites the node's previous one.

use serde_json::Value;

use super::{Ctx, Obj, max_results, read_filters};
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::patching::State;
use crate::state::{PatchStateRecord, RegionState, ReportedPatch};
use crate::validate::{NEXT_TOKEN, Req, Str};

const INSTANCE_ID: Str = Str::pat(10, 124, r"(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)");
/// PatchComplianceMaxResults: 10 to 100 (the reference states no default).
const PAGE: (i64, i64, i64) = (10, 100, 10);

/// Classifications that make a patch a security patch (Windows and Linux).
const SECURITY: &[&str] = &["SecurityUpdates", "CriticalUpdates", "Security"];

fn count(record: &PatchStateRecord, state: State) -> usize {
    record.patches.iter().filter(|p| p.state == state).count()
}

/// Not compliant: "missing, have failed installation, were rejected, or were installed
/// but awaiting a required managed node reboot" (InstancePatchState).
fn non_compliant(p: &ReportedPatch) -> bool {
    matches!(
        p.state,
        State::Missing | State::Failed | State::InstalledRejected | State::InstalledPendingReboot
    )
}

/// One InstancePatchState. Critical: the approving rule's compliance level is CRITICAL;
/// security: classified as a security update; other: non-compliant and neither.
fn patch_state(id: &str, record: &PatchStateRecord) -> Value {
    let open: Vec<&ReportedPatch> = record.patches.iter().filter(|p| non_compliant(p)).collect();
    let critical = open
        .iter()
        .filter(|p| p.compliance_level == "CRITICAL")
        .count();
    let security = open
        .iter()
        .filter(|p| SECURITY.contains(&p.patch.classification.as_str()))
        .count();
    let other = open
        .iter()
        .filter(|p| {
            p.compliance_level != "CRITICAL" && !SECURITY.contains(&p.patch.classification.as_str())
        })
        .count();
    Obj::new()
        .set("InstanceId", id)
        .set("PatchGroup", record.patch_group.as_str())
        .set("BaselineId", record.baseline_id.as_str())
        .set("InstalledCount", count(record, State::Installed))
        .set("InstalledOtherCount", count(record, State::InstalledOther))
        .set(
            "InstalledPendingRebootCount",
            count(record, State::InstalledPendingReboot),
        )
        .set(
            "InstalledRejectedCount",
            count(record, State::InstalledRejected),
        )
        .set("MissingCount", count(record, State::Missing))
        .set("FailedCount", count(record, State::Failed))
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
        .set("CriticalNonCompliantCount", critical)
        .set("SecurityNonCompliantCount", security)
        .set("OtherNonCompliantCount", other)
        .build()
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
