//! Staged rollouts, pure (docs/rollout.md): which groups a rollout stages, the baselines
//! they get, how their nodes' reports count as evidence, and how the stages move.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{AL2_BASELINE, NS, WINDOWS_BASELINE, account, ar, early_policy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use patchfleet_api::v1alpha1::{
    Approval, OperatingSystem, PatchRollout, PatchRolloutStatus, StageEvidence, StageState,
};
use patchfleet_planner::builders::*;
use patchfleet_planner::compliance::PatchStateReading;
use patchfleet_planner::rollout::{
    GroupEvidence, GroupTotals, MAX_FAILED_GROUPS, evaluate, group_evidence, least_installed,
    most_failed, parse_soak, release_spec, stage_evidence,
};
use patchfleet_planner::{Inventory, desired};

const RELEASE: &str = "2026-11";
const CUTOFF: &str = "2026-11-20";

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_790_000_000 + seconds).expect("a valid time")
}

/// The `early` policy's world with three groups following it and a rollout over them.
fn staged_world(stages: &[(&str, &[&str])]) -> Inventory {
    let groups = ["verify", "canary", "prod", "outside"]
        .map(|name| mk_group(NS, name, "early", &[("managed", "true")]));
    let mut inventory = mk_inventory(
        vec![account()],
        vec![early_policy()],
        groups.to_vec(),
        vec![],
    );
    let mut rollout = mk_rollout(NS, "monthly", "early", RELEASE, stages);
    // As the controller's first evaluation leaves it.
    step(&mut rollout, &[], at(0));
    inventory.rollouts.push(rollout);
    inventory
}

const THREE_STAGES: &[(&str, &[&str])] = &[
    ("verify", &["verify"]),
    ("canary", &["canary"]),
    ("prod", &["prod"]),
];

fn three_stages() -> PatchRollout {
    mk_rollout(NS, "monthly", "early", RELEASE, THREE_STAGES)
}

fn evidence(nodes: u32, installed: u32, failed: u32) -> StageEvidence {
    StageEvidence {
        nodes,
        installed,
        failed,
        account_regions: 1,
        ..StageEvidence::default()
    }
}

/// Evaluates and writes the outcome back into the rollout's status, as the runtime does.
fn step(
    rollout: &mut PatchRollout,
    evidence: &[(&str, StageEvidence)],
    now: Timestamp,
) -> patchfleet_planner::rollout::Evaluation {
    let evidence: BTreeMap<String, StageEvidence> = evidence
        .iter()
        .map(|(stage, e)| ((*stage).to_owned(), e.clone()))
        .collect();
    let evaluation = evaluate(rollout, &evidence, &[], now);
    rollout.status = Some(PatchRolloutStatus {
        release: evaluation.release.clone(),
        stages: evaluation.stages.clone(),
        ..PatchRolloutStatus::default()
    });
    evaluation
}

fn states(rollout: &PatchRollout) -> Vec<(StageState, Option<String>)> {
    rollout
        .status
        .as_ref()
        .map(|s| {
            s.stages
                .iter()
                .map(|st| (st.state, st.release.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn has(release: &str) -> Option<String> {
    Some(release.to_owned())
}

use StageState::*;

#[test]
fn a_new_release_reaches_the_first_stage_only() {
    let mut rollout = three_stages();
    let evaluation = step(&mut rollout, &[], at(0));
    assert_eq!(
        states(&rollout),
        vec![(Installing, has(RELEASE)), (Waiting, None), (Waiting, None)]
    );
    assert_eq!(evaluation.moved, vec!["verify".to_owned()]);
    assert_eq!(
        evaluation.release.as_ref().expect("a release").cutoff,
        CUTOFF
    );
    let verify = &rollout.status.as_ref().expect("status").stages[0];
    assert_eq!(verify.cutoff.as_deref(), Some(CUTOFF));
    assert_eq!(verify.since, Time(at(0)));
}

#[test]
fn without_a_cutoff_the_release_takes_the_day_it_starts_in_utc() {
    let mut rollout = three_stages();
    rollout.spec.release.cutoff = None;
    let evaluation = step(
        &mut rollout,
        &[],
        "2026-12-01T23:30:00Z".parse().expect("time"),
    );
    assert_eq!(
        evaluation.release.as_ref().expect("a release").cutoff,
        "2026-12-01"
    );
}

#[test]
fn a_stage_passes_when_its_gate_holds_and_the_next_takes_the_same_release_at_once() {
    let mut rollout = three_stages();
    step(&mut rollout, &[], at(0));
    // No reading yet: nothing moves.
    let nothing = step(&mut rollout, &[], at(10));
    assert!(nothing.transitions.is_empty(), "{nothing:?}");
    // One of two installed: still installing.
    step(&mut rollout, &[("verify", evidence(2, 1, 0))], at(20));
    assert_eq!(states(&rollout)[0].0, Installing);
    // Both installed, no soak: passed, and canary takes the release in the same evaluation.
    let evaluation = step(&mut rollout, &[("verify", evidence(2, 2, 0))], at(30));
    assert_eq!(
        states(&rollout),
        vec![
            (Passed, has(RELEASE)),
            (Installing, has(RELEASE)),
            (Waiting, None)
        ]
    );
    assert_eq!(evaluation.moved, vec!["canary".to_owned()]);
    let canary = &rollout.status.as_ref().expect("status").stages[1];
    assert_eq!(
        canary.cutoff.as_deref(),
        Some(CUTOFF),
        "exactly the same cutoff"
    );
}

#[test]
fn a_stage_soaks_for_its_soak_time_before_the_next_moves() {
    let mut rollout = three_stages();
    rollout.spec.stages[0].soak = "2h".into();
    step(&mut rollout, &[], at(0));
    let good = [("verify", evidence(3, 3, 0))];
    step(&mut rollout, &good, at(100));
    assert_eq!(states(&rollout)[0].0, Soaking);
    step(&mut rollout, &good, at(100 + 3_599));
    assert_eq!(states(&rollout)[0].0, Soaking, "one hour in");
    assert_eq!(states(&rollout)[1], (Waiting, None));
    step(&mut rollout, &good, at(100 + 7_200));
    assert_eq!(states(&rollout)[0].0, Passed);
    assert_eq!(states(&rollout)[1], (Installing, has(RELEASE)));
}

#[test]
fn a_new_node_that_has_not_installed_sends_a_soaking_stage_back_to_installing() {
    let mut rollout = three_stages();
    rollout.spec.stages[0].soak = "1d".into();
    step(&mut rollout, &[], at(0));
    step(&mut rollout, &[("verify", evidence(2, 2, 0))], at(10));
    step(&mut rollout, &[("verify", evidence(3, 2, 0))], at(20));
    assert_eq!(states(&rollout)[0].0, Installing);
}

#[test]
fn failures_beyond_the_gate_fail_the_stage_and_hold_every_later_one() {
    let mut rollout = three_stages();
    step(&mut rollout, &[], at(0));
    let mut failing = evidence(4, 3, 1);
    failing.failed_groups = vec![patchfleet_api::v1alpha1::GroupFailures {
        patch_group: "verify".into(),
        failed: 1,
    }];
    let evaluation = step(&mut rollout, &[("verify", failing.clone())], at(10));
    assert_eq!(
        states(&rollout),
        vec![(Failed, has(RELEASE)), (Waiting, None), (Waiting, None)]
    );
    let failed = evaluation.failed().expect("a failed stage");
    assert!(
        failed.message.contains("1 of 4 nodes failed")
            && failed.message.contains("1 in PatchGroup verify"),
        "{}",
        failed.message
    );
    assert!(evaluation.moved.is_empty());
    // Later good evidence does not move it on its own.
    let again = step(&mut rollout, &[("verify", evidence(4, 4, 0))], at(20));
    assert_eq!(states(&rollout)[0].0, Failed);
    assert!(again.transitions.is_empty(), "{again:?}");
}

#[test]
fn a_percentage_gate_allows_that_share_of_failures() {
    let mut rollout = three_stages();
    rollout.spec.stages[0].gate.max_failed = "25%".into();
    rollout.spec.stages[0].gate.min_installed = "75%".into();
    step(&mut rollout, &[], at(0));
    step(&mut rollout, &[("verify", evidence(8, 6, 2))], at(10));
    assert_eq!(states(&rollout)[0].0, Passed, "2 of 8 is 25%");
    let mut rollout = three_stages();
    rollout.spec.stages[0].gate.max_failed = "25%".into();
    step(&mut rollout, &[], at(0));
    step(&mut rollout, &[("verify", evidence(7, 4, 2))], at(10));
    assert_eq!(states(&rollout)[0].0, Failed, "25% of 7 rounds down to 1");
}

#[test]
fn an_override_passes_a_failed_stage_and_the_release_goes_on() {
    let mut rollout = three_stages();
    step(&mut rollout, &[], at(0));
    step(&mut rollout, &[("verify", evidence(2, 1, 1))], at(10));
    rollout.spec.stages[0].override_release = Some("an-older-release".into());
    step(&mut rollout, &[], at(20));
    assert_eq!(
        states(&rollout)[0].0,
        Failed,
        "an override names the release"
    );
    rollout.spec.stages[0].override_release = Some(RELEASE.into());
    let evaluation = step(&mut rollout, &[], at(30));
    assert_eq!(states(&rollout)[0].0, Passed);
    assert_eq!(states(&rollout)[1], (Installing, has(RELEASE)));
    assert_eq!(evaluation.moved, vec!["canary".to_owned()]);
}

#[test]
fn a_manual_stage_waits_for_a_person_to_approve_the_release() {
    let mut rollout = three_stages();
    rollout.spec.stages[1].approval = Approval::Manual;
    rollout.spec.stages[1].approved_release = Some("2026-10".into());
    step(&mut rollout, &[], at(0));
    step(&mut rollout, &[("verify", evidence(1, 1, 0))], at(10));
    assert_eq!(states(&rollout)[1], (AwaitingApproval, None));
    let message = &rollout.status.as_ref().expect("status").stages[1].message;
    assert!(
        message.contains("spec.stages[1].approvedRelease"),
        "{message}"
    );
    rollout.spec.stages[1].approved_release = Some(RELEASE.into());
    step(&mut rollout, &[], at(20));
    assert_eq!(states(&rollout)[1], (Installing, has(RELEASE)));
}

#[test]
fn a_pre_approved_manual_stage_still_waits_for_the_stage_before() {
    let mut rollout = three_stages();
    rollout.spec.stages[1].approval = Approval::Manual;
    rollout.spec.stages[1].approved_release = Some(RELEASE.into());
    step(&mut rollout, &[], at(0));
    assert_eq!(states(&rollout)[1], (Waiting, None));
}

#[test]
fn a_new_release_restarts_at_the_first_stage_and_later_stages_keep_theirs() {
    let mut rollout = three_stages();
    step(&mut rollout, &[], at(0));
    step(&mut rollout, &[("verify", evidence(1, 1, 0))], at(10));
    step(&mut rollout, &[("canary", evidence(1, 0, 1))], at(20));
    assert_eq!(
        states(&rollout),
        vec![
            (Passed, has(RELEASE)),
            (Failed, has(RELEASE)),
            (Waiting, None)
        ]
    );
    rollout.spec.release.token = "2026-12".into();
    rollout.spec.release.cutoff = Some("2026-12-18".into());
    let evaluation = step(&mut rollout, &[], at(30));
    assert_eq!(
        states(&rollout),
        vec![
            (Installing, has("2026-12")),
            (Waiting, has(RELEASE)),
            (Waiting, None)
        ]
    );
    assert_eq!(
        evaluation.release.as_ref().expect("a release").cutoff,
        "2026-12-18"
    );
    let canary = &rollout.status.as_ref().expect("status").stages[1];
    assert_eq!(
        canary.cutoff.as_deref(),
        Some(CUTOFF),
        "canary keeps what it has"
    );
}

#[test]
fn an_edited_cutoff_without_a_new_token_changes_nothing() {
    let mut rollout = three_stages();
    step(&mut rollout, &[], at(0));
    rollout.spec.release.cutoff = Some("2026-11-29".into());
    let evaluation = step(&mut rollout, &[], at(10));
    assert_eq!(
        evaluation.release.as_ref().expect("a release").cutoff,
        CUTOFF
    );
    assert!(evaluation.transitions.is_empty());
}

#[test]
fn nothing_moves_while_the_spec_has_problems() {
    let mut rollout = three_stages();
    let problems = vec!["spec.stages[1].patchGroups[0]: PatchGroup x not found".to_owned()];
    let evaluation = evaluate(&rollout, &BTreeMap::new(), &problems, at(0));
    assert!(evaluation.moved.is_empty());
    assert!(evaluation.stages.iter().all(|s| s.release.is_none()));
    step(&mut rollout, &[], at(0));
    let held = evaluate(
        &rollout,
        &BTreeMap::from([("verify".to_owned(), evidence(1, 1, 0))]),
        &problems,
        at(10),
    );
    assert_eq!(held.stages[0].state, Installing);
    assert!(held.transitions.is_empty());
}

#[test]
fn evaluating_again_on_the_same_evidence_changes_nothing() {
    let mut rollout = three_stages();
    rollout.spec.stages[0].soak = "1h".into();
    step(&mut rollout, &[], at(0));
    step(&mut rollout, &[("verify", evidence(2, 2, 0))], at(10));
    let before = rollout.status.clone();
    let again = step(&mut rollout, &[("verify", evidence(2, 2, 0))], at(20));
    assert!(again.transitions.is_empty() && again.moved.is_empty());
    let since = |s: &Option<PatchRolloutStatus>| {
        s.as_ref().map(|s| {
            s.stages
                .iter()
                .map(|st| st.since.clone())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(since(&rollout.status), since(&before));
}

#[test]
fn stages_follow_the_spec_when_one_is_added_or_removed() {
    let mut rollout = three_stages();
    step(&mut rollout, &[], at(0));
    rollout.spec.stages.remove(1);
    step(&mut rollout, &[], at(10));
    let names: Vec<String> = rollout
        .status
        .as_ref()
        .map(|s| s.stages.iter().map(|st| st.name.clone()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["verify".to_owned(), "prod".to_owned()]);
}

#[test]
fn gates_count_like_ssm_reads_max_errors() {
    let cases = [
        ("0", 10, 0),
        ("2", 10, 2),
        ("10%", 10, 1),
        ("10%", 9, 0),
        ("100%", 7, 7),
        ("0%", 7, 0),
    ];
    for (spec, total, want) in cases {
        assert_eq!(
            most_failed(spec, total),
            want,
            "most failed {spec} of {total}"
        );
    }
    let cases = [
        ("100%", 10, 10),
        ("90%", 10, 9),
        ("90%", 11, 10),
        ("100%", 0, 1),
        ("1%", 0, 1),
        ("0%", 0, 0),
        ("3", 10, 3),
        ("0", 0, 0),
    ];
    for (spec, total, want) in cases {
        assert_eq!(
            least_installed(spec, total),
            want,
            "least installed {spec} of {total}"
        );
    }
}

#[test]
fn soaks_read_as_durations() {
    let cases = [
        ("0s", Some(0)),
        ("30s", Some(30)),
        ("15m", Some(900)),
        ("12h", Some(43_200)),
        ("7d", Some(604_800)),
        ("7w", None),
        ("d", None),
        ("", None),
    ];
    for (soak, want) in cases {
        assert_eq!(
            parse_soak(soak),
            want.map(SignedDuration::from_secs),
            "{soak:?}"
        );
    }
}

#[test]
fn a_release_cuts_every_rule_off_at_its_date() {
    let mut spec = mk_baseline(OperatingSystem::AmazonLinux2, 7);
    let mut second = spec.approval_rules[0].clone();
    second.approve_after_days = None;
    second.approve_until_date = Some("2026-10-01".into());
    let mut third = second.clone();
    third.approve_until_date = Some("2026-12-31".into());
    spec.approval_rules.extend([second, third]);
    spec.approved_patches = vec!["kernel".into()];

    let staged = release_spec(&spec, Some(CUTOFF));
    let until: Vec<(Option<i32>, Option<&str>)> = staged
        .approval_rules
        .iter()
        .map(|r| (r.approve_after_days, r.approve_until_date.as_deref()))
        .collect();
    assert_eq!(
        until,
        vec![
            (None, Some(CUTOFF)),
            (None, Some("2026-10-01")),
            (None, Some(CUTOFF))
        ],
        "approval by age becomes the cutoff; an earlier date of the policy's own stays"
    );
    assert_eq!(staged.approved_patches, spec.approved_patches);

    let none = release_spec(&spec, None);
    assert!(
        none.approval_rules.is_empty(),
        "no release: no rule approves"
    );
    assert_eq!(none.approved_patches, spec.approved_patches);
}

fn reading(
    node: &str,
    group: &str,
    baseline: &str,
    missing: u32,
    failed: u32,
) -> PatchStateReading {
    PatchStateReading {
        node_id: node.into(),
        patch_group: group.into(),
        baseline_id: baseline.into(),
        install: true,
        missing,
        failed,
        ..PatchStateReading::default()
    }
}

#[test]
fn a_node_counts_for_a_release_only_when_judged_against_its_baseline() {
    let mut registration = mk_registration("verify", OperatingSystem::AmazonLinux2, "pb-release");
    registration.baseline_name = Some("release-baseline".into());
    let mut old = mk_registration("other", OperatingSystem::AmazonLinux2, "pb-old");
    old.baseline_name = Some("old-baseline".into());
    let mut ubuntu = mk_registration("verify", OperatingSystem::Ubuntu, "pb-ubuntu");
    ubuntu.baseline_name = Some("policy-ubuntu".into());
    let registrations = vec![registration, old, ubuntu];
    let mut pending = reading("i-4", "verify", "pb-release", 0, 0);
    pending.installed_pending_reboot = 2;
    let states = vec![
        reading("i-1", "verify", "pb-release", 0, 0),
        reading("i-2", "verify", "pb-release", 0, 3),
        reading("i-3", "verify", "pb-release", 2, 0),
        pending,
        reading("i-5", "verify", "pb-old", 0, 0),
        reading("i-6", "verify", "pb-gone", 0, 0),
        reading("i-7", "other", "pb-release", 0, 0),
        // Not the stage's: judged by the policy's own Ubuntu baseline.
        reading("i-8", "verify", "pb-ubuntu", 0, 0),
        // A Scan that finds the release in place is not an Install.
        PatchStateReading {
            install: false,
            ..reading("i-9", "verify", "pb-release", 0, 0)
        },
    ];
    let release = BTreeSet::from(["release-baseline".to_owned()]);
    let unstaged = BTreeSet::from(["policy-ubuntu".to_owned()]);
    let evidence = group_evidence(&states, &registrations, "verify", &release, &unstaged);
    assert_eq!(
        evidence,
        GroupEvidence {
            nodes: 7,
            installed: 2,
            failed: 1,
            pending_reboot: 1,
            last_install: None,
        }
    );
}

#[test]
fn a_stage_sums_its_groups_and_names_the_worst_failing_ones() {
    assert_eq!(stage_evidence(&[]), None, "nothing read yet");
    let totals: Vec<GroupTotals> = (0..12)
        .map(|i| GroupTotals {
            group: format!("g{i:02}"),
            evidence: GroupEvidence {
                nodes: 10,
                installed: 9,
                failed: i % 4,
                pending_reboot: 1,
                last_install: None,
            },
            account_regions: 2,
        })
        .collect();
    let stage = stage_evidence(&totals).expect("evidence");
    assert_eq!(
        (
            stage.nodes,
            stage.installed,
            stage.failed,
            stage.pending_reboot,
            stage.account_regions
        ),
        (120, 108, 18, 12, 24)
    );
    assert!(stage.failed_groups.len() <= MAX_FAILED_GROUPS);
    let named: Vec<(&str, u32)> = stage
        .failed_groups
        .iter()
        .map(|g| (g.patch_group.as_str(), g.failed))
        .collect();
    assert_eq!(&named[..3], &[("g03", 3), ("g07", 3), ("g11", 3)]);
}

#[test]
fn staged_groups_get_their_stages_baselines_and_the_others_the_policys() {
    let mut inventory = staged_world(THREE_STAGES);
    let mut rollout = inventory.rollouts[0].clone();
    step(&mut rollout, &[], at(0));
    inventory.rollouts[0] = rollout;
    let (desired, problems) = desired(&inventory, &mk_settings(), &ar());
    assert!(problems.is_empty(), "{problems:?}");
    let registered: BTreeMap<String, Vec<String>> = desired
        .baselines
        .values()
        .map(|b| (b.name.clone(), b.patch_groups.iter().cloned().collect()))
        .collect();
    // The policy's own baselines, for the group in no stage.
    assert_eq!(registered[AL2_BASELINE], vec!["outside".to_owned()]);
    assert_eq!(registered[WINDOWS_BASELINE], vec!["outside".to_owned()]);
    // One per stage and operating system.
    assert_eq!(registered.len(), 2 + 3 * 2, "{registered:?}");
    for baseline in desired.baselines.values() {
        let rules = &baseline.definition.approval_rules;
        match baseline.patch_groups.iter().next().map(String::as_str) {
            Some("outside") => assert!(rules.iter().all(|r| r.approve_after_days == Some(0))),
            Some("verify") => {
                assert!(!rules.is_empty());
                assert!(
                    rules
                        .iter()
                        .all(|r| r.approve_until_date.as_deref() == Some(CUTOFF)
                            && r.approve_after_days.is_none())
                );
            }
            Some("canary" | "prod") => {
                assert!(rules.is_empty(), "{}: no release yet", baseline.name)
            }
            other => panic!("unexpected baseline {} for {other:?}", baseline.name),
        }
    }
}

#[test]
fn a_release_gets_a_baseline_of_its_own() {
    let mut inventory = staged_world(THREE_STAGES);
    let mut rollout = inventory.rollouts[0].clone();
    step(&mut rollout, &[], at(0));
    inventory.rollouts[0] = rollout.clone();
    let names = |inventory: &Inventory| -> BTreeSet<String> {
        desired(inventory, &mk_settings(), &ar())
            .0
            .baselines
            .keys()
            .cloned()
            .collect()
    };
    let first = names(&inventory);
    rollout.spec.release.token = "2026-12".into();
    step(&mut rollout, &[], at(10));
    let mut next = staged_world(THREE_STAGES);
    next.rollouts[0] = rollout;
    let second = names(&next);
    let changed: Vec<&String> = first.symmetric_difference(&second).collect();
    assert_eq!(
        changed.len(),
        4,
        "verify's two baselines are replaced: {changed:?}"
    );
    assert!(
        changed.iter().all(|n| n.contains("-verify-")),
        "{changed:?}"
    );
}

#[test]
fn a_rollout_being_deleted_gives_the_groups_back_to_their_policy() {
    let mut inventory = staged_world(THREE_STAGES);
    deleting(&mut inventory.rollouts[0].metadata);
    let (desired, _) = desired(&inventory, &mk_settings(), &ar());
    let names: Vec<&String> = desired.baselines.keys().collect();
    assert_eq!(names, vec![AL2_BASELINE, WINDOWS_BASELINE]);
    assert_eq!(desired.baselines[AL2_BASELINE].patch_groups.len(), 4);
}

#[test]
fn ubuntu_and_debian_keep_the_policys_baseline_and_the_rollout_says_so() {
    let mut inventory = staged_world(THREE_STAGES);
    inventory.policies[0]
        .spec
        .baselines
        .push(mk_baseline(OperatingSystem::Ubuntu, 0));
    let staging = inventory.staging();
    let unstaged = staging.unstaged(NS, "monthly");
    assert_eq!(unstaged.len(), 1);
    assert!(
        unstaged[0].contains("UBUNTU") && unstaged[0].contains("API_PatchRule"),
        "{unstaged:?}"
    );
    assert!(
        staging.problems(NS, "monthly").is_empty(),
        "not a problem that holds the rollout"
    );
    let (desired, _) = desired(&inventory, &mk_settings(), &ar());
    let ubuntu = desired
        .baselines
        .values()
        .find(|b| b.operating_system() == OperatingSystem::Ubuntu)
        .expect("an Ubuntu baseline");
    assert_eq!(ubuntu.name, "patchfleet-patching-early-ubuntu");
    assert_eq!(ubuntu.patch_groups.len(), 4, "every group, staged or not");
}

#[test]
fn references_a_rollout_cannot_use_are_reported_by_field_and_left_out() {
    let mut inventory = staged_world(&[
        ("verify", &["verify", "missing"]),
        ("prod", &["prod", "elsewhere"]),
    ]);
    inventory.groups.push(mk_group(
        NS,
        "elsewhere",
        "other-policy",
        &[("managed", "true")],
    ));
    // A second rollout, created later, claiming a group the first has.
    let mut later = mk_rollout(
        NS,
        "later",
        "early",
        RELEASE,
        &[("only", &["prod", "canary"])],
    );
    later.metadata.creation_timestamp = Some(Time(at(100)));
    step(&mut later, &[], at(100));
    inventory.rollouts[0].metadata.creation_timestamp = Some(Time(at(0)));
    inventory.rollouts.push(later);
    let staging = inventory.staging();
    assert_eq!(
        staging.problems(NS, "monthly"),
        &[
            "spec.stages[0].patchGroups[1]: PatchGroup patching/missing not found".to_owned(),
            "spec.stages[1].patchGroups[1]: PatchGroup elsewhere follows PatchPolicy \
             other-policy, not the rollout's early"
                .to_owned(),
        ]
    );
    assert_eq!(
        staging.problems(NS, "later"),
        &[
            "spec.stages[0].patchGroups[0]: PatchGroup prod is already in stage prod of \
           PatchRollout monthly"
                .to_owned()
        ]
    );
    assert_eq!(
        staging.assignment(NS, "prod").map(|a| a.rollout.as_str()),
        Some("monthly")
    );
    assert_eq!(
        staging.assignment(NS, "canary").map(|a| a.rollout.as_str()),
        Some("later")
    );
    // Reported, and still held in its stage rather than released to its own policy.
    assert_eq!(
        staging
            .assignment(NS, "elsewhere")
            .map(|a| a.stage.as_str()),
        Some("prod")
    );
    assert!(staging.assignment(NS, "missing").is_none());
}

#[test]
fn a_rollout_of_a_missing_policy_holds_its_groups_and_reports_the_policy() {
    let mut inventory = staged_world(THREE_STAGES);
    inventory.rollouts[0].spec.policy_ref.name = "absent".into();
    let staging = inventory.staging();
    let problems = staging.problems(NS, "monthly");
    assert!(problems[0].starts_with("spec.policyRef: PatchPolicy patching/absent not found"));
    // verify follows early, not absent: reported, and held at its stage's cutoff.
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("spec.stages[0].patchGroups[0]")),
        "{problems:?}"
    );
    assert_eq!(
        staging
            .assignment(NS, "verify")
            .and_then(|a| a.release.as_ref())
            .map(|r| r.cutoff.as_str()),
        Some(CUTOFF)
    );
}

#[test]
fn a_staged_node_still_reporting_under_its_previous_release_is_not_overwritten() {
    use patchfleet_planner::compliance::{
        NodeQuotas, NodeReading, RegionIntent, RegionReading, StagedGroup, tally,
    };
    use patchfleet_planner::model::{Owner, OwnerKind};
    use patchfleet_planner::rollout::StageRelease;
    let owner = |name: &str| Owner::new(OwnerKind::PatchGroup, NS, name);
    let node = |id: &str| NodeReading {
        id: id.into(),
        ping_status: "Online".into(),
        platform_type: "Linux".into(),
        ..NodeReading::default()
    };
    let mut verify = mk_registration("verify", OperatingSystem::AmazonLinux2, "pb-new");
    verify.baseline_name = Some("release".into());
    let outside = mk_registration("outside", OperatingSystem::AmazonLinux2, "pb-own");
    let reading = RegionReading {
        nodes: vec![node("i-1"), node("i-2")],
        // Both report under a baseline registered nowhere (deleted when verify moved on,
        // or another tool's).
        states: vec![
            reading("i-1", "verify", "pb-deleted", 1, 0),
            reading("i-2", "outside", "pb-deleted", 1, 0),
        ],
        registrations: vec![verify, outside],
        windows: BTreeMap::new(),
    };
    let intent = RegionIntent {
        groups: BTreeMap::from([
            ("verify".to_owned(), owner("verify")),
            ("outside".to_owned(), owner("outside")),
        ]),
        staged: BTreeMap::from([(
            "verify".to_owned(),
            StagedGroup {
                owner: owner("verify"),
                release: StageRelease {
                    token: RELEASE.into(),
                    cutoff: CUTOFF.into(),
                },
                baselines: BTreeSet::from(["release".to_owned()]),
                unstaged: BTreeSet::new(),
            },
        )]),
        ..RegionIntent::default()
    };
    let figures = tally(&reading, &intent, NodeQuotas::default());
    assert_eq!(figures.overwritten.get(&owner("verify")), None);
    assert_eq!(figures.overwritten.get(&owner("outside")), Some(&1));
    let (release, evidence) = &figures.stages[&owner("verify")];
    assert_eq!(release.token, RELEASE);
    assert_eq!(
        (evidence.nodes, evidence.installed),
        (1, 0),
        "not yet installed"
    );
}

#[test]
fn a_rollout_not_evaluated_yet_stages_nothing_but_its_problems_are_known() {
    let mut inventory = staged_world(&[("verify", &["verify", "missing"])]);
    inventory.rollouts[0].status = None;
    let staging = inventory.staging();
    assert!(staging.assignment(NS, "verify").is_none());
    assert_eq!(staging.problems(NS, "monthly").len(), 1);
    let (desired, _) = desired(&inventory, &mk_settings(), &ar());
    let names: Vec<&String> = desired.baselines.keys().collect();
    assert_eq!(
        names,
        vec![AL2_BASELINE, WINDOWS_BASELINE],
        "the policy's own, for now"
    );
}

#[test]
fn a_token_that_comes_back_is_taken_again_stage_by_stage() {
    let mut rollout = three_stages();
    step(&mut rollout, &[], at(0));
    step(&mut rollout, &[("verify", evidence(1, 1, 0))], at(10));
    step(&mut rollout, &[("canary", evidence(1, 1, 0))], at(20));
    step(&mut rollout, &[("prod", evidence(1, 1, 0))], at(30));
    assert!(states(&rollout).iter().all(|(s, _)| *s == Passed));
    // B starts, then A comes back before B got anywhere.
    rollout.spec.release.token = "2026-12".into();
    step(&mut rollout, &[], at(40));
    rollout.spec.release.token = RELEASE.into();
    step(&mut rollout, &[], at(50));
    assert_eq!(
        states(&rollout),
        vec![
            (Installing, has(RELEASE)),
            (Waiting, has(RELEASE)),
            (Waiting, has(RELEASE))
        ],
        "the later stages wait to take A again rather than stay stuck"
    );
    step(&mut rollout, &[("verify", evidence(1, 1, 0))], at(60));
    assert_eq!(states(&rollout)[1], (Installing, has(RELEASE)));
    step(&mut rollout, &[("canary", evidence(1, 1, 0))], at(70));
    step(&mut rollout, &[("prod", evidence(1, 1, 0))], at(80));
    assert!(
        states(&rollout).iter().all(|(s, _)| *s == Passed),
        "{:?}",
        states(&rollout)
    );
}

#[test]
fn a_stage_that_takes_a_new_release_while_installing_starts_its_clock_again() {
    let mut rollout = three_stages();
    step(&mut rollout, &[], at(0));
    rollout.spec.release.token = "2026-12".into();
    step(&mut rollout, &[], at(500));
    let verify = &rollout.status.as_ref().expect("status").stages[0];
    assert_eq!(
        (verify.state, verify.since.clone()),
        (Installing, Time(at(500)))
    );
    assert_eq!(verify.release.as_deref(), Some("2026-12"));
}

#[test]
fn a_new_token_starts_no_release_while_the_spec_has_problems() {
    let rollout = three_stages();
    let problems = vec!["spec.policyRef: PatchPolicy patching/x not found".to_owned()];
    let evaluation = evaluate(&rollout, &BTreeMap::new(), &problems, at(0));
    assert_eq!(
        evaluation.release, None,
        "no cutoff taken while the spec is wrong"
    );
    let mut rollout = three_stages();
    step(&mut rollout, &[], at(0));
    rollout.spec.release.token = "2026-12".into();
    let held = evaluate(&rollout, &BTreeMap::new(), &problems, at(10));
    assert_eq!(held.release.map(|r| r.token), Some(RELEASE.to_owned()));
}
