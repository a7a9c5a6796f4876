//! Run Command for AWS-RunPatchBaseline: SendCommand, ListCommands, ListCommandInvocations.
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html
//!
//! There is no simulated fleet yet: instance ids are taken as existing managed
//! nodes, tag targets resolve against tags set on `mi-` managed instances, and
//! every invocation completes at once with Success.

use std::ops::Bound;

use serde_json::{Map, Value, json};

use super::targets::read_targets;
use super::{Ctx, Obj, max_results};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::state::{Command, Json, RegionState};
use crate::validate::{NEXT_TOKEN, Req, Str, as_object, nested_str};

const INSTANCE_ID: Str = Str::pat(10, 124, r"(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)");
const DOCUMENT: Str = Str::pat(0, 200, r"^[a-zA-Z0-9_\-.:/]{3,128}$");
const DOCUMENT_VERSION: Str = Str::pat(0, 128, r"([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)");
const MAX_CONCURRENCY: Str = Str::pat(1, 7, r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$");
const MAX_ERRORS: Str = Str::pat(1, 7, r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$");
const COMMAND_ID: Str = Str::len(36, 36);
const FILTER_KEYS: &[&str] = &[
    "InvokedAfter",
    "InvokedBefore",
    "Status",
    "ExecutionStage",
    "DocumentName",
];

/// Documents the simulator can run, with their parameters' allowed values.
/// https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-aws-runpatchbaseline.html
fn check_document(name: &str, params: Option<&Map<String, Value>>) -> ApiResult<()> {
    if name != "AWS-RunPatchBaseline" {
        return Err(ApiError::new(
            "InvalidDocument",
            format!("Document with name {name} does not exist."),
        ));
    }
    let empty = Map::new();
    let params = params.unwrap_or(&empty);
    let invalid = |m: String| ApiError::new("InvalidParameters", m);
    let allowed: &[(&str, Option<&[&str]>)] = &[
        ("Operation", Some(&["Scan", "Install"])),
        ("SnapshotId", None),
        ("InstallOverrideList", None),
        ("AssociationId", None),
        ("BaselineOverride", None),
        ("RebootOption", Some(&["RebootIfNeeded", "NoReboot"])),
    ];
    for (key, value) in params {
        let Some((_, choices)) = allowed.iter().find(|(k, _)| k == key) else {
            return Err(invalid(format!(
                "Parameter \"{key}\" is not defined in document {name}."
            )));
        };
        let values: Vec<&str> = value
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(choices) = choices
            && values.iter().any(|v| !choices.contains(v))
        {
            return Err(invalid(format!(
                "Parameter \"{key}\" has an invalid value. Allowed values: {}.",
                choices.join(", ")
            )));
        }
    }
    if !params.contains_key("Operation") {
        return Err(invalid("Parameter \"Operation\" is required.".into()));
    }
    Ok(())
}

/// Instance ids a command reaches: listed ids plus managed instances matching tag targets.
fn resolve(st: &RegionState, instance_ids: &[String], targets: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = instance_ids.to_vec();
    for t in targets.and_then(Value::as_array).into_iter().flatten() {
        let key = t.get("Key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = t
            .get("Values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if key == "InstanceIds" {
            out.extend(values.iter().map(|v| v.to_string()));
        } else if let Some(tag) = key.strip_prefix("tag:") {
            let mut matched: Vec<String> = st
                .instance_tags
                .iter()
                .filter(|(_, tags)| tags.get(tag).is_some_and(|v| values.contains(&v.as_str())))
                .map(|(id, _)| id.clone())
                .collect();
            matched.sort();
            out.extend(matched);
        }
    }
    out.dedup();
    out
}

fn command_json(c: &Command) -> Value {
    let n = c.instance_ids.len();
    Obj::new()
        .set("CommandId", c.id.as_str())
        .set("DocumentName", c.document_name.as_str())
        .set(
            "DocumentVersion",
            c.document_version
                .clone()
                .unwrap_or_else(|| "$DEFAULT".into()),
        )
        .opt("Comment", c.comment.clone())
        .set("ExpiresAfter", c.expires_after)
        .set(
            "Parameters",
            c.parameters.as_ref().map_or_else(|| json!({}), Json::value),
        )
        .set("InstanceIds", c.instance_ids.clone())
        .set(
            "Targets",
            c.targets.as_ref().map_or_else(|| json!([]), Json::value),
        )
        .set("RequestedDateTime", c.requested)
        .set("Status", c.status.as_str())
        .set("StatusDetails", c.status.as_str())
        .opt("OutputS3Region", c.output_s3_region.clone())
        .opt("OutputS3BucketName", c.output_s3_bucket_name.clone())
        .opt("OutputS3KeyPrefix", c.output_s3_key_prefix.clone())
        .set("MaxConcurrency", c.max_concurrency.as_str())
        .set("MaxErrors", c.max_errors.as_str())
        .set("TargetCount", n)
        .set("CompletedCount", n)
        .set("ErrorCount", 0)
        .set("DeliveryTimedOutCount", 0)
        .opt("ServiceRole", c.service_role_arn.clone())
        .opt(
            "NotificationConfig",
            c.notification_config.as_ref().map(Json::value),
        )
        .opt(
            "CloudWatchOutputConfig",
            c.cloud_watch_output_config.as_ref().map(Json::value),
        )
        .opt("TimeoutSeconds", c.timeout_seconds)
        .build()
}

pub fn send(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let instance_ids = req.opt_str_list("InstanceIds", 0, 50, INSTANCE_ID)?;
    let targets = read_targets(&mut req, false)?;
    let document = req.req_str("DocumentName", DOCUMENT)?;
    let version = req.opt_str("DocumentVersion", DOCUMENT_VERSION)?;
    let timeout = req.opt_int("TimeoutSeconds", 30, 2_592_000)?;
    let comment = req.opt_str("Comment", Str::len(0, 100))?;
    let parameters = req.opt_object("Parameters")?;
    let s3_region = req.opt_str("OutputS3Region", Str::len(3, 20))?;
    let s3_bucket = req.opt_str("OutputS3BucketName", Str::len(3, 63))?;
    let s3_prefix = req.opt_str("OutputS3KeyPrefix", Str::len(0, 500))?;
    let max_concurrency = req.opt_str("MaxConcurrency", MAX_CONCURRENCY)?;
    let max_errors = req.opt_str("MaxErrors", MAX_ERRORS)?;
    let role = req.opt_str("ServiceRoleArn", Str::len(0, 2048))?;
    let notification = req.opt_object("NotificationConfig")?.map(Value::Object);
    let cloudwatch = req.opt_object("CloudWatchOutputConfig")?.map(Value::Object);
    req.finish()?;
    let instance_ids = instance_ids.unwrap_or_default();
    let has_targets = targets
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    if instance_ids.is_empty() != has_targets {
        return Err(ApiError::validation(
            "Specify either InstanceIds or Targets, but not both.",
        ));
    }
    check_document(&document, parameters.as_ref())?;
    let reached = resolve(st, &instance_ids, targets.as_ref());
    let command = Command {
        id: clock::uuid(),
        document_name: document,
        document_version: version,
        comment,
        parameters: parameters.map(|p| Json::from(Value::Object(p))),
        instance_ids: reached,
        targets: targets.map(Json::from),
        requested: ctx.now,
        expires_after: ctx.now + timeout.unwrap_or(3600) as f64,
        status: "Success".into(),
        // Defaults from the API reference: MaxConcurrency 50, MaxErrors 0.
        max_concurrency: max_concurrency.unwrap_or_else(|| "50".into()),
        max_errors: max_errors.unwrap_or_else(|| "0".into()),
        timeout_seconds: timeout,
        service_role_arn: role,
        output_s3_bucket_name: s3_bucket,
        output_s3_key_prefix: s3_prefix,
        output_s3_region: s3_region,
        notification_config: notification.map(Json::from),
        cloud_watch_output_config: cloudwatch.map(Json::from),
    };
    let out = command_json(&command);
    st.add_command(command);
    Ok(json!({"Command": out}))
}

/// `CommandFilter` entries: `{"key": ..., "value": ...}` (lowercase members).
fn read_command_filters(req: &mut Req) -> ApiResult<Vec<(String, String)>> {
    let Some(list) = req.opt_list("Filters")? else {
        return Ok(Vec::new());
    };
    req.violations.check_count("filters", list.len(), 1, 5);
    let mut out = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let f = as_object(f, "CommandFilter")?;
        let at = format!("filters.{}.member", i + 1);
        let key = nested_str(f, "key")?.unwrap_or_default().to_string();
        let value = nested_str(f, "value")?.unwrap_or_default().to_string();
        req.violations
            .check_enum(&format!("{at}.key"), &key, FILTER_KEYS);
        req.violations
            .check_str(&format!("{at}.value"), &value, Str::len(1, 256));
        out.push((key, value));
    }
    Ok(out)
}

fn matches(c: &Command, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "DocumentName" => c.document_name == *v,
        "Status" | "ExecutionStage" => v.eq_ignore_ascii_case(&c.status) || v == "Complete",
        // Timestamps compare as ISO 8601 strings, like the filter values.
        "InvokedAfter" => clock::iso8601(c.requested).as_str() >= v.as_str(),
        "InvokedBefore" => clock::iso8601(c.requested).as_str() <= v.as_str(),
        _ => true,
    })
}

fn invalid_command(id: &str) -> ApiError {
    ApiError::new("InvalidCommandId", format!("Command {id} does not exist."))
}

struct ListArgs {
    command_id: Option<String>,
    instance_id: Option<String>,
    filters: Vec<(String, String)>,
    max: usize,
    after: Option<String>,
}

fn list_args(req: &mut Req) -> ApiResult<ListArgs> {
    let command_id = req.opt_str("CommandId", COMMAND_ID)?;
    let instance_id = req.opt_str("InstanceId", INSTANCE_ID)?;
    let filters = read_command_filters(req)?;
    let max = max_results(req, 1, 50, 50)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    Ok(ListArgs {
        command_id,
        instance_id,
        filters,
        max,
        after: paging::decode(token.as_deref())?,
    })
}

/// Commands in listing order (newest first) that pass the id, instance and filters.
fn selected<'a>(
    st: &'a RegionState,
    args: &'a ListArgs,
) -> ApiResult<impl Iterator<Item = (&'a String, &'a Box<Command>)> + 'a> {
    if let Some(id) = &args.command_id
        && !st.command_keys.contains_key(id)
    {
        return Err(invalid_command(id));
    }
    // A ListCommands token names a command; a ListCommandInvocations token names
    // "command instance", whose command may still have instances to list.
    let start = match args.after.as_deref().map(|k| k.split_once(' ')) {
        None => Bound::Unbounded,
        Some(Some((command, _))) => Bound::Included(command.to_string()),
        Some(None) => Bound::Excluded(args.after.clone().unwrap_or_default()),
    };
    Ok(st
        .commands
        .range::<String, _>((start, Bound::Unbounded))
        .filter(move |(_, c)| args.command_id.as_ref().is_none_or(|id| *id == c.id))
        .filter(move |(_, c)| {
            args.instance_id
                .as_ref()
                .is_none_or(|i| c.instance_ids.contains(i))
        })
        .filter(move |(_, c)| matches(c, &args.filters)))
}

pub fn list(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let args = list_args(&mut req)?;
    req.finish()?;
    let items = selected(st, &args)?.map(|(k, c)| (k.clone(), c));
    let (page, next) = paging::page(items, args.max);
    let commands: Vec<Value> = page.into_iter().map(|c| command_json(c)).collect();
    Ok(Obj::new()
        .set("Commands", commands)
        .opt("NextToken", next)
        .build())
}

pub fn list_invocations(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let args = list_args(&mut req)?;
    let details = req.opt_bool("Details")?.unwrap_or(false);
    req.finish()?;
    // One entry per (command, instance); the key orders commands newest first.
    let items = selected(st, &args)?.flat_map(|(k, c)| {
        c.instance_ids
            .iter()
            .filter(|i| args.instance_id.as_ref().is_none_or(|want| want == *i))
            .map(move |i| (format!("{k} {i}"), (c, i)))
    });
    let items = items.filter(|(key, _)| {
        args.after
            .as_ref()
            .is_none_or(|a| key.as_str() > a.as_str())
    });
    let (page, next) = paging::page(items, args.max);
    let invocations: Vec<Value> = page
        .into_iter()
        .map(|(c, instance)| {
            let mut o = Obj::new()
                .set("CommandId", c.id.as_str())
                .set("InstanceId", instance.as_str())
                .set("InstanceName", "")
                .opt("Comment", c.comment.clone())
                .set("DocumentName", c.document_name.as_str())
                .set(
                    "DocumentVersion",
                    c.document_version
                        .clone()
                        .unwrap_or_else(|| "$DEFAULT".into()),
                )
                .set("RequestedDateTime", c.requested)
                .set("Status", c.status.as_str())
                .set("StatusDetails", c.status.as_str())
                .set("TraceOutput", "")
                .set("StandardOutputUrl", "")
                .set("StandardErrorUrl", "")
                .opt("ServiceRole", c.service_role_arn.clone())
                .opt(
                    "NotificationConfig",
                    c.notification_config.as_ref().map(Json::value),
                )
                .opt(
                    "CloudWatchOutputConfig",
                    c.cloud_watch_output_config.as_ref().map(Json::value),
                );
            if details {
                o = o.set(
                    "CommandPlugins",
                    json!([{
                        // The platform is not simulated; Linux nodes run the PatchLinux plugin.
                        "Name": "PatchLinux",
                        "Status": c.status,
                        "StatusDetails": c.status,
                        "ResponseCode": 0,
                        "ResponseStartDateTime": c.requested,
                        "ResponseFinishDateTime": c.requested,
                        "Output": "",
                    }]),
                );
            }
            o.build()
        })
        .collect();
    Ok(Obj::new()
        .set("CommandInvocations", invocations)
        .opt("NextToken", next)
        .build())
}
