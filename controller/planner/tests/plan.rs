//! Whole plans: accounts that must not be written, deletion and orphaning through the
//! resources, problems on every owner concerned, and convergence against an in-memory
//! SSM that checks what SSM checks, including after a plan stopped halfway.

mod common;

use std::collections::BTreeSet;

use patchfleet_api::v1alpha1::{DeletionPolicy, OperatingSystem, PatchOperation};
use patchfleet_planner::builders::*;
use patchfleet_planner::fingerprint::PENDING;
use patchfleet_planner::model::{
    AccountRegion, Observed, Operation, Owner, OwnerKind, reasons, tags,
};
use patchfleet_planner::{
    Inventory, Plan, Settings, baseline_needs_deep_read, desired, orphaned_owners, plan,
    window_needs_deep_read,
};

use common::*;

/// SSM holding the world, converged.
fn converged_ssm() -> Ssm {
    let (desired, _) = desired(&world(), &mk_settings(), &ar());
    Ssm::new(mk_observed(&mk_settings(), &desired))
}

#[test]
fn accounts_not_to_be_written_get_no_operation() {
    let observed = converged_ssm().state;
    let cases: [(&str, Change, AccountRegion); 3] = [
        ("suspended", |inv| inv.accounts[0].spec.suspend = true, ar()),
        ("unknown", |inv| inv.accounts.clear(), ar()),
        (
            "account id changed",
            |_| {},
            mk_account_region(ACCOUNT, "999999999999", REGION),
        ),
    ];
    for (case, change, account_region) in cases {
        let mut inventory = world();
        change(&mut inventory);
        let got = plan(
            &inventory,
            &mk_settings(),
            &account_region,
            &observed,
            &BTreeSet::new(),
        );
        assert_eq!(got, Plan::default(), "{case}");
    }
}

#[test]
fn an_account_going_away_or_a_region_dropped_is_cleaned_up() {
    let cases: [(&str, Change); 2] = [
        ("account being deleted", |inv| {
            deleting(&mut inv.accounts[0].metadata)
        }),
        ("region dropped", |inv| {
            inv.accounts[0].spec.regions = strings(&["us-east-1"])
        }),
    ];
    for (case, change) in cases {
        let mut inventory = world();
        change(&mut inventory);
        let mut ssm = converged_ssm();
        let rounds = converge(&inventory, &mk_settings(), &ar(), &mut ssm, 3);
        assert_eq!(rounds, [5, 0], "{case}: 2 deregistrations, 3 deletions");
        assert_eq!(ssm.state, Observed::default(), "{case}");
    }
}

#[test]
fn a_group_registered_elsewhere_is_reported_on_the_policy_and_the_group() {
    let mut inventory = world();
    inventory
        .groups
        .push(mk_group(NS, "early-twin", "early", &[("managed", "true")]));
    inventory.groups[1].spec.group_name = Some("early".into());
    inventory.groups.push(mk_group(
        NS,
        "elsewhere",
        "early",
        &[("nothing", "matches")],
    ));
    inventory.groups[2].spec.group_name = Some("early".into());
    let mut observed = converged_ssm().state;
    observed
        .registrations
        .retain(|r| r.operating_system != OperatingSystem::Windows);
    observed.baselines.push(mk_foreign_baseline(
        "pb-customer",
        "customer",
        OperatingSystem::Windows,
    ));
    observed.registrations.push(mk_registration(
        "early",
        OperatingSystem::Windows,
        "pb-customer",
    ));

    let plan = plan_of(&inventory, &observed);
    assert_eq!(plan.operations, []);
    let owners: Vec<(String, &str, Option<&AccountRegion>)> = plan
        .problems
        .iter()
        .map(|p| (p.owner.to_string(), p.reason, p.account_region.as_ref()))
        .collect();
    let here = ar();
    assert_eq!(
        owners,
        [
            (
                "PatchPolicy/patching/early".into(),
                reasons::PATCH_GROUP_REGISTERED_ELSEWHERE,
                Some(&here)
            ),
            // Both groups that give the value here; not the one that reaches elsewhere.
            (
                "PatchGroup/patching/early".into(),
                reasons::PATCH_GROUP_REGISTERED_ELSEWHERE,
                Some(&here)
            ),
            (
                "PatchGroup/patching/early-twin".into(),
                reasons::PATCH_GROUP_REGISTERED_ELSEWHERE,
                Some(&here)
            ),
        ]
    );
}

#[test]
fn orphaned_owners_are_the_resources_being_deleted_with_orphan() {
    let mut inventory = world();
    let mut orphan_group = mk_group(NS, "frozen", "early", &[]);
    orphan_group.spec.deletion_policy = DeletionPolicy::Orphan;
    deleting(&mut orphan_group.metadata);
    let mut kept_group = orphan_group.clone();
    kept_group.metadata.name = Some("kept".into());
    kept_group.metadata.deletion_timestamp = None;
    let mut deleted_group = mk_group(NS, "gone", "early", &[]);
    deleting(&mut deleted_group.metadata);
    inventory
        .groups
        .extend([orphan_group, kept_group, deleted_group]);
    let mut orphan_window = mk_window(NS, "old", &["early"], vec![]);
    orphan_window.spec.deletion_policy = DeletionPolicy::Orphan;
    deleting(&mut orphan_window.metadata);
    inventory.windows.push(orphan_window);

    assert_eq!(
        orphaned_owners(&inventory),
        BTreeSet::from([
            Owner::new(OwnerKind::PatchGroup, NS, "frozen"),
            Owner::new(OwnerKind::MaintenanceWindow, NS, "old"),
        ])
    );
}

#[test]
fn an_orphaned_group_keeps_its_registrations_while_the_baseline_stays() {
    // Two groups follow `early`; `frozen` goes with deletionPolicy Orphan.
    let mut inventory = world();
    let mut frozen = mk_group(NS, "frozen", "early", &[("managed", "true")]);
    frozen.spec.deletion_policy = DeletionPolicy::Orphan;
    inventory.groups.push(frozen);
    let (before, _) = desired(&inventory, &mk_settings(), &ar());
    let mut ssm = Ssm::new(mk_observed(&mk_settings(), &before));
    deleting(&mut inventory.groups[1].metadata);

    let rounds = converge(&inventory, &mk_settings(), &ar(), &mut ssm, 3);
    assert_eq!(rounds, [0], "nothing to do: its registrations stay");
    let frozen_registrations = ssm
        .state
        .registrations
        .iter()
        .filter(|r| r.patch_group == "frozen")
        .count();
    assert_eq!(frozen_registrations, 2);

    // Once `early` goes too, the baselines go, and with them every registration.
    deleting(&mut inventory.groups[0].metadata);
    let plan = plan_of(&inventory, &ssm.state);
    let deregistered: BTreeSet<&str> = plan
        .operations
        .iter()
        .filter_map(|step| match &step.operation {
            Operation::DeregisterPatchGroup { patch_group, .. } => Some(patch_group.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deregistered, BTreeSet::from(["early", "frozen"]));
}

#[test]
fn deep_reads_are_asked_for_exactly_where_fingerprints_differ() {
    let settings = mk_settings();
    let (desired, _) = desired(&world(), &settings, &ar());
    let observed = mk_observed(&settings, &desired);
    let (baseline, window) = (&observed.baselines[0], &observed.windows[0]);
    assert!(
        !baseline_needs_deep_read(&settings, &desired, baseline),
        "converged"
    );
    assert!(
        !window_needs_deep_read(&settings, &desired, window),
        "converged"
    );

    let mut stale_baseline = baseline.clone();
    stale_baseline
        .tags
        .insert(tags::FINGERPRINT.into(), "old".into());
    let mut pending_window = window.clone();
    pending_window
        .tags
        .insert(tags::FINGERPRINT.into(), PENDING.into());
    assert!(baseline_needs_deep_read(
        &settings,
        &desired,
        &stale_baseline
    ));
    assert!(window_needs_deep_read(&settings, &desired, &pending_window));

    // Not ours, or not desired (about to be deleted): nothing to compare.
    let foreign = mk_foreign_baseline("pb-x", &baseline.name, baseline.operating_system);
    assert!(!baseline_needs_deep_read(&settings, &desired, &foreign));
    let other = Settings::new("other");
    assert!(!window_needs_deep_read(&other, &desired, &pending_window));
    let mut unwanted = stale_baseline.clone();
    unwanted.name = "patchfleet-patching-gone-windows".into();
    assert!(!baseline_needs_deep_read(&settings, &desired, &unwanted));
}

#[test]
fn the_world_converges_in_two_passes() {
    let mut ssm = Ssm::default();
    let rounds = converge(&world(), &mk_settings(), &ar(), &mut ssm, 5);
    // Create everything (the window's fingerprint stamped in the same batch once its
    // targets and tasks are registered); the confirming pass is quiet.
    assert_eq!(rounds, [8, 0]);
    assert_all_in_place(&world(), &ssm);
}

#[test]
fn the_examples_converge_in_every_account_region() {
    let inventory = examples();
    let settings = mk_settings();
    for account_region in patchfleet_planner::account_regions(&inventory) {
        let mut ssm = Ssm::default();
        let rounds = converge(&inventory, &settings, &account_region, &mut ssm, 5);
        // Everything in one batch (new windows stamped in it), then a quiet pass.
        assert_eq!(rounds.len(), 2, "{account_region}: {rounds:?}");
        let deep = plan(
            &inventory,
            &settings,
            &account_region,
            &ssm.state,
            &BTreeSet::new(),
        );
        assert_eq!(
            deep.operations,
            [],
            "{account_region}: a deep read finds it converged"
        );
    }
}

#[test]
fn a_plan_stopped_at_any_point_is_finished_by_the_next_passes() {
    let settings = mk_settings();
    let inventory = world();
    let first = plan_of(&inventory, &Observed::default());
    for stop in 0..=first.operations.len() {
        let mut ssm = Ssm::default();
        ssm.apply_until(&settings, &first.operations, stop)
            .expect("a prefix of a plan applies");
        converge(&inventory, &settings, &ar(), &mut ssm, 5);
        assert_all_in_place(&inventory, &ssm);
    }
}

#[test]
fn changes_to_the_resources_converge() {
    let cases: [(&str, Change); 7] = [
        ("approval delay", |inv| {
            inv.policies[0].spec.baselines[0].approval_rules[0].approve_after_days = Some(7)
        }),
        ("operating system added", |inv| {
            inv.policies[0]
                .spec
                .baselines
                .push(mk_baseline(OperatingSystem::Ubuntu, 0))
        }),
        ("group added to the window", |inv| {
            inv.groups
                .push(mk_group(NS, "web", "early", &[("managed", "true")]));
            inv.windows[0].spec.targets.patch_groups.push("web".into());
        }),
        ("group moved to another policy", |inv| {
            inv.policies.push(mk_policy(
                NS,
                "late",
                vec![mk_baseline(OperatingSystem::Windows, 14)],
            ));
            inv.groups[0].spec.policy_ref.name = "late".into();
        }),
        ("task removed", |inv| {
            inv.windows[0].spec.tasks.pop();
        }),
        ("task changed", |inv| {
            inv.windows[0].spec.tasks[0] = mk_task("scan", PatchOperation::Install)
        }),
        ("window deleted", |inv| {
            deleting(&mut inv.windows[0].metadata)
        }),
    ];
    for (case, change) in cases {
        let mut inventory = world();
        let mut ssm = converged_ssm();
        change(&mut inventory);
        let rounds = converge(&inventory, &mk_settings(), &ar(), &mut ssm, 5);
        assert!(rounds[0] > 0, "{case}: the change needs writes");
        assert_all_in_place(&inventory, &ssm);
    }
}

/// A deep read of `ssm` finds nothing to do, and the desired objects are all there.
fn assert_all_in_place(inventory: &Inventory, ssm: &Ssm) {
    let settings = mk_settings();
    let deep = plan(
        inventory,
        &settings,
        &ar(),
        &ssm.state,
        &orphaned_owners(inventory),
    );
    assert_eq!(deep.operations, [], "a deep read finds it converged");
    let names: BTreeSet<&str> = ssm
        .state
        .baselines
        .iter()
        .map(|b| b.name.as_str())
        .chain(ssm.state.windows.iter().map(|w| w.name.as_str()))
        .collect();
    let want: BTreeSet<&str> = deep
        .desired
        .baselines
        .keys()
        .chain(deep.desired.windows.keys())
        .map(String::as_str)
        .collect();
    assert_eq!(names, want);
}

/// A window stored before an upgrade made it invalid (an Emergency window with a
/// schedule and no run token, as the old examples had) is reported and held: its SSM
/// window is neither deleted nor changed, and no command is sent.
#[test]
fn a_window_made_invalid_by_an_upgrade_keeps_its_ssm_window() {
    let observed = converged_ssm().state;
    let cases: [(&str, Change); 2] = [
        ("old-style Emergency window", |inv| {
            inv.windows[0].spec.strategy = patchfleet_api::v1alpha1::Strategy::Emergency;
        }),
        ("no schedule", |inv| inv.windows[0].spec.schedule = None),
    ];
    for (case, change) in cases {
        let mut inventory = world();
        change(&mut inventory);
        let got = plan_of(&inventory, &observed);
        assert_eq!(got.operations, [], "{case}");
        assert!(got.desired.runs.is_empty(), "{case}");
        assert_eq!(
            got.problems
                .iter()
                .map(|p| (p.owner.name.as_str(), p.reason))
                .collect::<Vec<_>>(),
            [("monthly", reasons::INVALID_SPEC)],
            "{case}"
        );
    }
}
