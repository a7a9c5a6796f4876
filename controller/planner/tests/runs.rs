//! Emergency runs (once per run token) and where snapshots apply: pure decisions.

mod common;

use std::collections::BTreeSet;

use patchfleet_api::v1alpha1::{EmergencyRun, Platform};
use patchfleet_planner::builders::*;
use patchfleet_planner::model::{DesiredRun, ObservedCommand};
use patchfleet_planner::runs::{RunStep, emergency_run, find_command, run_step};
use patchfleet_planner::snapshots::snapshot_notice;

use common::*;

fn desired_run(token: &str) -> DesiredRun {
    let mut inventory = world();
    inventory.windows = vec![mk_emergency_window(NS, "urgent", &["early"], token)];
    let (desired, _) = patchfleet_planner::desired(&inventory, &mk_settings(), &ar());
    desired.runs.into_values().next().expect("one run")
}

fn command(id: &str, status: &str, comment: Option<&str>) -> ObservedCommand {
    ObservedCommand {
        command_id: id.into(),
        comment: comment.map(str::to_owned),
        status: status.into(),
        status_details: None,
        target_count: 2,
        completed_count: 1,
        error_count: 0,
        requested_at: None,
    }
}

fn known(token: &str, id: &str, status: &str) -> EmergencyRun {
    emergency_run(&ar(), token, &command(id, status, None))
}

/// The step expected: None to find or send, else (settled, the command id of the record
/// it rests on).
type Step = Option<(bool, &'static str)>;

#[test]
fn a_run_is_sent_once_per_token_and_followed_until_finished() {
    let run = desired_run("CHG-2");
    let cases: Vec<(&str, Vec<EmergencyRun>, Step)> = vec![
        ("nothing known", vec![], None),
        (
            "only an older token known",
            vec![known("CHG-1", "c-1", "Success")],
            None,
        ),
        (
            "this token sent, running",
            vec![known("CHG-2", "c-2", "InProgress")],
            Some((false, "c-2")),
        ),
        (
            "this token sent, pending",
            vec![known("CHG-2", "c-2", "Pending")],
            Some((false, "c-2")),
        ),
        (
            "this token finished",
            vec![known("CHG-2", "c-2", "Success")],
            Some((true, "c-2")),
        ),
        (
            "this token failed: not retried (a new token runs again)",
            vec![known("CHG-2", "c-2", "Failed")],
            Some((true, "c-2")),
        ),
        (
            "timed out is final too",
            vec![known("CHG-2", "c-2", "TimedOut")],
            Some((true, "c-2")),
        ),
        (
            "memory comes first: it is newer than the status",
            vec![
                known("CHG-1", "c-1", "Success"),
                known("CHG-2", "c-3", "Success"),
                known("CHG-2", "c-2", "InProgress"),
            ],
            Some((true, "c-3")),
        ),
        (
            "a command SSM forgot is not polled for ever",
            vec![known("CHG-2", "c-2", "Unknown")],
            Some((true, "c-2")),
        ),
    ];
    for (case, records, want) in cases {
        let got = match run_step(&run, &records) {
            RunStep::FindOrSend => None,
            RunStep::Settled(entry) => Some((true, entry.command_id.as_str())),
            RunStep::Refresh(entry) => Some((false, entry.command_id.as_str())),
        };
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn a_sent_command_is_found_by_its_marker_only() {
    let run = desired_run("CHG-2");
    let marker = DesiredRun::marker(&mk_settings().cluster_id, &run.owner, "CHG-2");
    let other_token = DesiredRun::marker(&mk_settings().cluster_id, &run.owner, "CHG-1");
    let other_cluster = DesiredRun::marker("another-cluster", &run.owner, "CHG-2");
    let commands = [
        command("c-0", "Success", None),
        command(
            "c-1",
            "Success",
            Some(&format!("{other_token}: patching/urgent")),
        ),
        command(
            "c-9",
            "Success",
            Some(&format!("{other_cluster}: patching/urgent")),
        ),
        command("c-2", "InProgress", Some(&run.comment)),
    ];
    assert_eq!(
        find_command(&marker, &commands).map(|c| c.command_id.as_str()),
        Some("c-2")
    );
    assert_eq!(find_command(&marker, &commands[..3]), None);
}

#[test]
fn snapshots_apply_only_where_instances_run_on_aws() {
    let mut inventory = world();
    let regions: BTreeSet<_> = [ar()].into();
    let window = inventory.windows[0].clone();
    assert_eq!(
        snapshot_notice(&inventory, &window, &regions),
        None,
        "no task asks for a snapshot"
    );

    let mut window = window;
    window.spec.tasks[1].snapshot_before_patch = true;
    let notice = snapshot_notice(&inventory, &window, &regions).expect("a notice");
    assert!(notice.applies);
    assert_eq!(notice.reason, "Applies");

    inventory.accounts[0].spec.platform = Platform::Onprem;
    let notice = snapshot_notice(&inventory, &window, &regions).expect("a notice");
    assert!(!notice.applies);
    assert_eq!(notice.reason, "NotApplicable");
    assert_eq!(
        notice.message,
        "snapshots do not apply to hybrid and on-premises instances: task install patches \
         them with AWS-RunPatchBaseline, without a snapshot, in customer-a (111111111111, \
         platform onprem)"
    );
}

#[test]
fn an_emergency_run_status_names_its_account_region_and_token() {
    let run = emergency_run(&ar(), "CHG-2", &command("c-2", "Success", None));
    assert_eq!(run.account_id, ACCOUNT_ID);
    assert_eq!(run.region, REGION);
    assert_eq!(run.run_token, "CHG-2");
    assert_eq!(run.command_id, "c-2");
    assert!(run.is_finished());
}
