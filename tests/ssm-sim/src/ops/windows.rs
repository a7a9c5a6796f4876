//! Maintenance windows.
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateMaintenanceWindow.html

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use serde_json::{Value, json};

use super::{Ctx, Obj, max_results, read_filters, read_tags};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::occurrence;
use crate::paging;
use crate::schedule;
use crate::state::{RegionState, Window};
use crate::validate::{
    CLIENT_TOKEN, NEXT_TOKEN, Req, Str, WINDOW_DESCRIPTION, WINDOW_ID, WINDOW_NAME,
};

const SCHEDULE: Str = Str::len(1, 256);
const DATE: Str = Str::len(1, 256);

pub fn not_found(id: &str) -> ApiError {
    ApiError::does_not_exist(format!("Maintenance window {id} does not exist"))
}

pub fn window_mut<'a>(st: &'a mut RegionState, id: &str) -> ApiResult<&'a mut Window> {
    st.windows
        .get_mut(id)
        .map(|w| &mut **w)
        .ok_or_else(|| not_found(id))
}

/// Checks the rules AWS applies across members: schedule syntax, offset only
/// with cron, and a cutoff shorter than the duration ("No maintenance window
/// tasks are permitted to start after the resulting endtime minus ... Cutoff").
fn check_schedule(
    schedule: &str,
    offset: Option<i64>,
    duration: i64,
    cutoff: i64,
) -> ApiResult<()> {
    let kind = schedule::parse(schedule)
        .ok_or_else(|| ApiError::validation(format!("Invalid schedule expression: {schedule}")))?;
    if offset.is_some() && kind != schedule::Kind::Cron {
        return Err(ApiError::validation(
            "ScheduleOffset can only be specified with a cron expression.",
        ));
    }
    if cutoff >= duration {
        return Err(ApiError::validation(format!(
            "The cutoff ({cutoff}) must be less than the duration ({duration})."
        )));
    }
    Ok(())
}

/// ScheduleTimezone must be an IANA zone: "For example: "America/Los_Angeles", "UTC",
/// or "Asia/Seoul"" (API_CreateMaintenanceWindow). Assumption: AWS answers an unknown
/// zone with a ValidationException.
fn check_timezone(value: &Option<String>) -> ApiResult<()> {
    match value {
        Some(tz) if occurrence::time_zone(Some(tz)).is_none() => {
            Err(ApiError::validation(format!(
                "Invalid ScheduleTimezone: {tz}. Specify an IANA time zone such as America/Los_Angeles."
            )))
        }
        _ => Ok(()),
    }
}

/// Occurrences up to `from` will not run (the window was just created or changed, and
/// those due before were run first); finds the next one.
pub fn reschedule(w: &mut Window, from: f64) {
    w.handled_until = from;
    w.next_due = occurrence::next_after(&spec(w), from);
}

pub fn spec(w: &Window) -> occurrence::Spec<'_> {
    occurrence::Spec {
        schedule: &w.schedule,
        timezone: w.schedule_timezone.as_deref(),
        offset_days: w.schedule_offset,
        start_date: w.start_date.as_deref(),
        end_date: w.end_date.as_deref(),
        created: w.created,
        enabled: w.enabled,
    }
}

fn check_date(member: &str, value: &Option<String>) -> ApiResult<()> {
    // ISO-8601, e.g. 2021-04-07T14:29:00-08:00:
    // https://docs.aws.amazon.com/systems-manager/latest/userguide/maintenance-windows-schedule-options.html
    let pattern = r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$";
    match value {
        Some(v) if !crate::validate::matches(pattern, v) => Err(ApiError::validation(format!(
            "Invalid {member}: {v}. Specify an ISO-8601 timestamp."
        ))),
        _ => Ok(()),
    }
}

fn identity(w: &Window) -> Obj {
    Obj::new()
        .set("WindowId", w.id.as_str())
        .set("Name", w.name.as_str())
        .opt("Description", w.description.clone())
        .opt("StartDate", w.start_date.clone())
        .opt("EndDate", w.end_date.clone())
        .set("Schedule", w.schedule.as_str())
        .opt("ScheduleTimezone", w.schedule_timezone.clone())
        .opt("ScheduleOffset", w.schedule_offset)
        .set("Duration", w.duration)
        .set("Cutoff", w.cutoff)
        .set("AllowUnassociatedTargets", w.allow_unassociated_targets)
        .set("Enabled", w.enabled)
        // The next run (none when disabled or none is left), in ISO 8601 UTC as in the AWS
        // CLI's get-maintenance-window example ("2020-02-25T00:08:15.099Z").
        // https://awscli.amazonaws.com/v2/documentation/api/latest/reference/ssm/get-maintenance-window.html
        .opt("NextExecutionTime", w.next_due.map(clock::iso8601))
}

pub fn create(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let name = req.req_str("Name", WINDOW_NAME)?;
    let description = req.opt_str("Description", WINDOW_DESCRIPTION)?;
    let start_date = req.opt_str("StartDate", DATE)?;
    let end_date = req.opt_str("EndDate", DATE)?;
    let schedule = req.req_str("Schedule", SCHEDULE)?;
    let timezone = req.opt_str("ScheduleTimezone", DATE)?;
    let offset = req.opt_int("ScheduleOffset", 1, 6)?;
    let duration = req.req_int("Duration", 1, 24)?;
    let cutoff = req.req_int("Cutoff", 0, 23)?;
    let allow = req.req_bool("AllowUnassociatedTargets")?;
    let token = req.opt_str("ClientToken", CLIENT_TOKEN)?;
    let tags = read_tags(&mut req, "Tags")?.unwrap_or_default();
    req.finish()?;
    check_schedule(&schedule, offset, duration, cutoff)?;
    check_date("StartDate", &start_date)?;
    check_date("EndDate", &end_date)?;
    check_timezone(&timezone)?;
    if let Some(id) = st.replayed("CreateMaintenanceWindow", token.as_deref(), req.raw())? {
        return Ok(json!({"WindowId": id}));
    }
    if st.windows.len() >= ctx.quotas.maintenance_windows {
        return Err(ApiError::limit(format!(
            "Maximum number of maintenance windows ({}) has been reached.",
            ctx.quotas.maintenance_windows
        )));
    }
    if tags.len() > ctx.quotas.tags_per_resource {
        return Err(super::tags::too_many());
    }
    let id = clock::short_id("mw");
    st.windows.insert(
        id.clone(),
        Box::new(Window {
            id: id.clone(),
            name,
            description,
            start_date,
            end_date,
            schedule,
            schedule_timezone: timezone,
            schedule_offset: offset,
            duration,
            cutoff,
            allow_unassociated_targets: allow,
            enabled: true,
            created: ctx.now,
            modified: ctx.now,
            tags,
            targets: BTreeMap::new(),
            tasks: BTreeMap::new(),
            handled_until: ctx.now,
            next_due: None,
            executions: VecDeque::new(),
            execution_seq: 0,
        }),
    );
    if let Some(w) = st.windows.get_mut(&id) {
        reschedule(w, ctx.now);
    }
    st.remember("CreateMaintenanceWindow", token.as_deref(), req.raw(), &id);
    Ok(json!({"WindowId": id}))
}

pub fn get(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("WindowId", WINDOW_ID)?;
    req.finish()?;
    let w = window_mut(st, &id)?;
    Ok(identity(w)
        .set("CreatedDate", w.created)
        .set("ModifiedDate", w.modified)
        .build())
}

pub fn update(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("WindowId", WINDOW_ID)?;
    let replace = req.opt_bool("Replace")?.unwrap_or(false);
    // With Replace, CreateMaintenanceWindow's required members are required here too.
    // https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdateMaintenanceWindow.html
    let (name, schedule, duration, cutoff, allow) = if replace {
        (
            Some(req.req_str("Name", WINDOW_NAME)?),
            Some(req.req_str("Schedule", SCHEDULE)?),
            Some(req.req_int("Duration", 1, 24)?),
            Some(req.req_int("Cutoff", 0, 23)?),
            Some(req.req_bool("AllowUnassociatedTargets")?),
        )
    } else {
        (
            req.opt_str("Name", WINDOW_NAME)?,
            req.opt_str("Schedule", SCHEDULE)?,
            req.opt_int("Duration", 1, 24)?,
            req.opt_int("Cutoff", 0, 23)?,
            req.opt_bool("AllowUnassociatedTargets")?,
        )
    };
    let description = req.opt_str("Description", WINDOW_DESCRIPTION)?;
    let start_date = req.opt_str("StartDate", DATE)?;
    let end_date = req.opt_str("EndDate", DATE)?;
    let timezone = req.opt_str("ScheduleTimezone", DATE)?;
    let offset = req.opt_int("ScheduleOffset", 1, 6)?;
    let enabled = req.opt_bool("Enabled")?;
    req.finish()?;
    check_date("StartDate", &start_date)?;
    check_date("EndDate", &end_date)?;
    check_timezone(&timezone)?;
    let w = window_mut(st, &id)?;
    let keep = |new: Option<String>, old: &Option<String>| match new {
        Some(v) => Some(v),
        None if replace => None,
        None => old.clone(),
    };
    let description = keep(description, &w.description);
    let start_date = keep(start_date, &w.start_date);
    let end_date = keep(end_date, &w.end_date);
    let timezone = keep(timezone, &w.schedule_timezone);
    let offset = match offset {
        Some(o) => Some(o),
        None if replace => None,
        None => w.schedule_offset,
    };
    let schedule = schedule.unwrap_or_else(|| w.schedule.clone());
    let duration = duration.unwrap_or(w.duration);
    let cutoff = cutoff.unwrap_or(w.cutoff);
    check_schedule(&schedule, offset, duration, cutoff)?;
    if let Some(n) = name {
        w.name = n;
    }
    w.description = description;
    w.start_date = start_date;
    w.end_date = end_date;
    w.schedule_timezone = timezone;
    w.schedule_offset = offset;
    w.schedule = schedule;
    w.duration = duration;
    w.cutoff = cutoff;
    if let Some(a) = allow {
        w.allow_unassociated_targets = a;
    }
    if let Some(e) = enabled {
        w.enabled = e;
    }
    w.modified = ctx.now;
    reschedule(w, ctx.now);
    // UpdateMaintenanceWindowResult has no NextExecutionTime.
    let mut out = identity(w).build();
    if let Some(o) = out.as_object_mut() {
        o.remove("NextExecutionTime");
    }
    Ok(out)
}

pub fn delete(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("WindowId", WINDOW_ID)?;
    req.finish()?;
    // The API reference lists no DoesNotExistException for DeleteMaintenanceWindow:
    // deleting an absent window succeeds.
    // https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteMaintenanceWindow.html
    st.windows.remove(&id);
    Ok(json!({"WindowId": id}))
}

pub fn describe(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let filters = read_filters(&mut req, 5, &["Name", "Enabled"])?;
    let max = max_results(&mut req, 10, 100, 100)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    req.finish()?;
    let after = paging::decode(token.as_deref())?;
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let selected = st
        .windows
        .range::<String, _>((start, Bound::Unbounded))
        .filter(|(_, w)| {
            filters.iter().all(|(k, values)| match k.as_str() {
                "Name" => values.contains(&w.name),
                "Enabled" => values
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(&w.enabled.to_string())),
                _ => true,
            })
        })
        .map(|(id, w)| (id.clone(), w));
    let (items, next) = paging::page(selected, max);
    let items: Vec<Value> = items.into_iter().map(|w| identity(w).build()).collect();
    Ok(Obj::new()
        .set("WindowIdentities", items)
        .opt("NextToken", next)
        .build())
}
