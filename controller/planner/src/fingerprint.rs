//! Fingerprints of what patchfleet writes, and where SSM keeps them: a marker at the end of
//! the object's Description, which the list calls return (DescribePatchBaselines'
//! `BaselineIdentity.BaselineDescription`, DescribeMaintenanceWindows'
//! `MaintenanceWindowIdentity.Description`). When it equals the desired fingerprint the
//! SSM edge may skip the deep reads (GetPatchBaseline, the window's targets and tasks): a
//! converged account costs one list call per kind. The SSM edge reports the marker's value
//! under the `patchfleet.io/fingerprint` key of an observed object's tags, and the
//! description without it. Ownership stays on real tags.
//!
//! The fingerprint is FNV-1a 64 over a canonical JSON text (object keys sorted, no
//! spaces), written as 16 hex digits. It depends on nothing but the input, so it is the
//! same in every run, on every platform, and whichever serde_json features another crate
//! turns on. [`SCHEME`] is hashed first: changing what a definition maps to in SSM means
//! bumping it, which makes every object look changed once.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use patchfleet_api::v1alpha1::{BaselineSpec, PatchOperation, RebootOption};
use serde_json::{Map, Value, json};

use crate::model::{
    DesiredBaseline, DesiredWindow, TargetDefinition, TaskAction, TaskDefinition, WindowDefinition,
};

/// The version of the mapping from resources to SSM objects.
pub const SCHEME: &str = "patchfleet/v1";

/// Written instead of a fingerprint while a window's targets or tasks are being changed:
/// a new window carries it from CreateMaintenanceWindow until the SSM edge has registered
/// all its targets and tasks (then, in the same batch, it writes the real fingerprint), and
/// a plan that changes an existing window's parts writes it so that a deep read checks the
/// result (see `diff`). A batch interrupted halfway leaves it, so the window is read
/// deeply, and finished, next time.
pub const PENDING: &str = "pending";

/// AWS's longest Description of a patch baseline
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PatchBaselineIdentity.html>,
/// <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreatePatchBaseline.html>).
pub const BASELINE_DESCRIPTION_MAX: usize = 1024;
/// AWS's longest Description of a maintenance window
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_MaintenanceWindowIdentity.html>,
/// <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateMaintenanceWindow.html>).
pub const WINDOW_DESCRIPTION_MAX: usize = 128;

const MARKER_OPEN: &str = "[patchfleet:";
const MARKER_CLOSE: char = ']';
/// Characters the marker of a fingerprint takes, with the space before it:
/// ` [patchfleet:0123456789abcdef]`.
pub const MARKER_LEN: usize = 1 + MARKER_OPEN.len() + 16 + 1;

/// The part of a user's description that fits beside the marker in `max` characters
/// (AWS counts characters): the first `max - MARKER_LEN`. An empty description is none.
/// The planner compares observed descriptions with this, so that a description clipped
/// to fit is not drift.
pub fn fit_description(description: Option<&str>, max: usize) -> Option<String> {
    let text = description.filter(|d| !d.is_empty())?;
    Some(clip(text, max.saturating_sub(MARKER_LEN)))
}

/// The Description to write: the user's description (fitted) followed by the marker of
/// `fingerprint`, at most `max` characters.
pub fn mark_description(description: Option<&str>, fingerprint: &str, max: usize) -> String {
    let marker = format!("{MARKER_OPEN}{fingerprint}{MARKER_CLOSE}");
    match fit_description(description, max) {
        None => marker,
        Some(text) => {
            // A fingerprint longer than 16 characters (not the planner's) clips further.
            let room = max.saturating_sub(marker.chars().count() + 1);
            format!("{} {marker}", clip(&text, room))
        }
    }
}

/// A Description as SSM returns it, split into the user's description and the marker's
/// fingerprint (None without a marker: written by hand or by an older patchfleet).
pub fn read_description(text: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(text) = text else {
        return (None, None);
    };
    let marked = text.strip_suffix(MARKER_CLOSE).and_then(|rest| {
        let start = rest.rfind(MARKER_OPEN)?;
        let fingerprint = &rest[start + MARKER_OPEN.len()..];
        let valid = !fingerprint.is_empty()
            && !fingerprint.contains(|c: char| c.is_whitespace() || c == '[' || c == ']');
        valid.then(|| (&rest[..start], fingerprint))
    });
    match marked {
        Some((user, fingerprint)) => {
            let user = user.strip_suffix(' ').unwrap_or(user);
            (
                (!user.is_empty()).then(|| user.to_owned()),
                Some(fingerprint.to_owned()),
            )
        }
        None => ((!text.is_empty()).then(|| text.to_owned()), None),
    }
}

fn clip(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// FNV-1a, 64 bits (<http://www.isthe.com/chongo/tech/comp/fnv/>): tiny, stable, and
/// good enough to notice a change (this is not a defence against an adversary).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

/// The fingerprint of a baseline: its (normalized) definition. Registrations are not in
/// it: the edge always lists them.
pub fn baseline_fingerprint(baseline: &DesiredBaseline) -> String {
    fingerprint(&json!({ "baseline": baseline_value(&baseline.definition) }))
}

/// The fingerprint of a window: its definition, targets and tasks.
pub fn window_fingerprint(window: &DesiredWindow) -> String {
    let targets: Map<String, Value> = window
        .targets
        .iter()
        .map(|(name, t)| (name.clone(), target_value(t)))
        .collect();
    let tasks: Map<String, Value> = window
        .tasks
        .iter()
        .map(|(name, t)| (name.clone(), task_value(t)))
        .collect();
    fingerprint(&json!({
        "window": window_value(&window.definition),
        "targets": targets,
        "tasks": tasks,
    }))
}

fn fingerprint(value: &Value) -> String {
    let mut text = String::from(SCHEME);
    text.push('\n');
    write_canonical(value, &mut text);
    format!("{:016x}", fnv1a64(text.as_bytes()))
}

/// BaselineSpec through its own serde form, so a field added to the API is fingerprinted
/// without touching this file.
fn baseline_value(spec: &BaselineSpec) -> Value {
    match serde_json::to_value(spec) {
        Ok(value) => value,
        // Unreachable (plain structs, string keys); stay total rather than panic.
        Err(_) => Value::String(format!("{spec:?}")),
    }
}

fn window_value(def: &WindowDefinition) -> Value {
    json!({
        "description": def.description,
        "schedule": def.schedule,
        "scheduleTimezone": def.schedule_timezone,
        "scheduleOffset": def.schedule_offset,
        "startDate": def.start_date,
        "endDate": def.end_date,
        "duration": def.duration,
        "cutoff": def.cutoff,
        "enabled": def.enabled,
    })
}

fn target_value(target: &TargetDefinition) -> Value {
    json!({
        "patchGroup": target.patch_group,
        "ownerInformation": target.owner_information,
    })
}

fn task_value(task: &TaskDefinition) -> Value {
    let action = match &task.action {
        TaskAction::RunPatchBaseline {
            operation,
            reboot_option,
        } => json!({
            "runPatchBaseline": {
                "operation": operation_str(*operation),
                "rebootOption": reboot_str(*reboot_option),
            }
        }),
        TaskAction::Automation {
            document,
            parameters,
        } => {
            let parameters: BTreeMap<&String, &Vec<String>> = parameters.iter().collect();
            json!({ "automation": { "document": document, "parameters": parameters } })
        }
    };
    let mut value = json!({
        "description": task.description,
        "action": action,
        "maxConcurrency": task.max_concurrency,
        "maxErrors": task.max_errors,
        "priority": task.priority,
        "targets": task.targets,
    });
    // Only when set, so that tasks without a role keep the fingerprints they had.
    if let (Some(role), Some(object)) = (&task.service_role_arn, value.as_object_mut()) {
        object.insert("serviceRoleArn".to_owned(), json!(role));
    }
    value
}

fn operation_str(operation: PatchOperation) -> &'static str {
    match operation {
        PatchOperation::Scan => "Scan",
        PatchOperation::Install => "Install",
    }
}

fn reboot_str(reboot: RebootOption) -> &'static str {
    match reboot {
        RebootOption::RebootIfNeeded => "RebootIfNeeded",
        RebootOption::NoReboot => "NoReboot",
    }
}

/// JSON with object keys sorted at every level and no whitespace.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
    }
}

/// A JSON string literal, escaping only what JSON requires.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn descriptions_carry_the_marker_and_read_back() {
        let fp = "0123456789abcdef";
        for user in [None, Some("monthly patching"), Some("ends in a space ")] {
            let text = mark_description(user, fp, WINDOW_DESCRIPTION_MAX);
            assert!(text.chars().count() <= WINDOW_DESCRIPTION_MAX, "{text}");
            assert_eq!(
                read_description(Some(&text)),
                (user.map(str::to_owned), Some(fp.to_owned()))
            );
        }
        assert_eq!(
            mark_description(Some("x"), fp, 128),
            "x [patchfleet:0123456789abcdef]"
        );
        assert_eq!(
            mark_description(Some(""), PENDING, 128),
            "[patchfleet:pending]"
        );
        // A user's text that looks like a marker stays the user's.
        let tricky = "see [patchfleet:abc]";
        let text = mark_description(Some(tricky), fp, 1024);
        assert_eq!(
            read_description(Some(&text)),
            (Some(tricky.to_owned()), Some(fp.to_owned()))
        );
        // Without a marker: all of it is the user's.
        assert_eq!(
            read_description(Some("by hand [x y]")),
            (Some("by hand [x y]".to_owned()), None)
        );
        assert_eq!(read_description(None), (None, None));
    }

    #[test]
    fn long_descriptions_are_clipped_to_fit_and_read_back_clipped() {
        let fp = "0123456789abcdef";
        let long = "é".repeat(200);
        let text = mark_description(Some(&long), fp, WINDOW_DESCRIPTION_MAX);
        assert_eq!(text.chars().count(), WINDOW_DESCRIPTION_MAX);
        let (user, got) = read_description(Some(&text));
        assert_eq!(got.as_deref(), Some(fp));
        assert_eq!(user, fit_description(Some(&long), WINDOW_DESCRIPTION_MAX));
        assert_eq!(
            user.map(|u| u.chars().count()),
            Some(WINDOW_DESCRIPTION_MAX - MARKER_LEN)
        );
        assert_eq!(MARKER_LEN, 30);
    }

    #[test]
    fn canonical_text_sorts_keys_at_every_level() {
        let value = json!({"b": {"z": 1, "a": [true, null]}, "a": "x\"y"});
        let mut out = String::new();
        write_canonical(&value, &mut out);
        assert_eq!(out, r#"{"a":"x\"y","b":{"a":[true,null],"z":1}}"#);
    }
}
