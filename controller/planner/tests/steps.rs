//! Each planned write names the resource it is for (the Event goes there), and the plan
//! says which owners hold something in the account-region before and after: the runtime
//! reads these from the plan and works out nothing of its own.

mod common;

use std::collections::BTreeSet;

use patchfleet_api::v1alpha1::DeletionPolicy;
use patchfleet_planner::builders::*;
use patchfleet_planner::model::{Observed, Operation, Owner, OwnerKind, reasons};
use patchfleet_planner::{
    Plan, desired, owners_observed, reference_problems, reference_problems_of,
};

use common::*;

fn owner(kind: OwnerKind, name: &str) -> Owner {
    Owner::new(kind, NS, name)
}

/// (verb, what, owner) of every step, in plan order.
fn described(plan: &Plan) -> Vec<(&'static str, String, Option<String>)> {
    plan.operations
        .iter()
        .map(|s| {
            (
                s.verb,
                s.what.clone(),
                s.owner.as_ref().map(Owner::to_string),
            )
        })
        .collect()
}

#[test]
fn every_write_of_a_first_plan_names_the_resource_it_is_for() {
    let plan = plan_of(&world(), &Observed::default());
    let policy = Some("PatchPolicy/patching/early".to_owned());
    let group = Some("PatchGroup/patching/early".to_owned());
    let window = Some("MaintenanceWindow/patching/monthly".to_owned());
    let want = vec![
        (
            "Created",
            format!("patch baseline {AL2_BASELINE}"),
            policy.clone(),
        ),
        (
            "Created",
            format!("patch baseline {WINDOWS_BASELINE}"),
            policy,
        ),
        ("Registered", "patch group early".to_owned(), group.clone()),
        ("Registered", "patch group early".to_owned(), group.clone()),
        (
            "Created",
            format!("maintenance window {MONTHLY}"),
            window.clone(),
        ),
        ("Registered", "window target pg-early".to_owned(), group),
        (
            "Registered",
            "window task install".to_owned(),
            window.clone(),
        ),
        ("Registered", "window task scan".to_owned(), window),
    ];
    assert_eq!(described(&plan), want);
    let all = BTreeSet::from([
        owner(OwnerKind::PatchPolicy, "early"),
        owner(OwnerKind::PatchGroup, "early"),
        owner(OwnerKind::MaintenanceWindow, "monthly"),
    ]);
    assert_eq!(plan.owners, all, "everything is there once applied");
    let before = || owners_observed(&world(), &Observed::default(), CLUSTER);
    assert_eq!(before(), BTreeSet::new(), "nothing was there");
    assert_eq!(plan.owners_after(plan.operations.len(), before), all);
    assert_eq!(plan.planned_owners(), all);
}

#[test]
fn deletes_name_the_owner_their_tags_record_and_a_stopped_pass_keeps_it_present() {
    let (converged, _) = desired(&world(), &mk_settings(), &ar());
    let observed = mk_observed(&mk_settings(), &converged);
    // The window goes (Delete policy): its targets and tasks go with it.
    let mut inventory = world();
    deleting(&mut inventory.windows[0].metadata);
    let plan = plan_of(&inventory, &observed);
    let window = Some("MaintenanceWindow/patching/monthly".to_owned());
    assert_eq!(
        described(&plan),
        vec![(
            "Deleted",
            format!("maintenance window {MONTHLY} ({})", window_id(0)),
            window
        )]
    );
    let gone = owner(OwnerKind::MaintenanceWindow, "monthly");
    assert!(!plan.owners.contains(&gone), "absent once applied");
    let before = || owners_observed(&inventory, &observed, CLUSTER);
    assert!(before().contains(&gone), "present before");
    assert!(
        plan.owners_after(0, before).contains(&gone),
        "a pass that stopped before the delete leaves it present: its finalizer waits"
    );
    assert!(
        !plan
            .owners_after(1, || panic!("a complete batch reads no observation"))
            .contains(&gone)
    );

    // With Orphan, the window is released, and told so.
    inventory.windows[0].spec.deletion_policy = DeletionPolicy::Orphan;
    let plan = plan_of(&inventory, &observed);
    assert_eq!(
        described(&plan)
            .into_iter()
            .map(|(verb, _, owner)| (verb, owner))
            .collect::<Vec<_>>(),
        vec![(
            "Orphaned",
            Some("MaintenanceWindow/patching/monthly".to_owned())
        )]
    );
}

#[test]
fn a_group_leaving_is_told_its_deregistrations_through_the_policy_owning_the_baseline() {
    let (converged, _) = desired(&world(), &mk_settings(), &ar());
    let observed = mk_observed(&mk_settings(), &converged);
    let mut inventory = world();
    deleting(&mut inventory.groups[0].metadata);
    let plan = plan_of(&inventory, &observed);
    let deregistrations: Vec<_> = plan
        .operations
        .iter()
        .filter(|s| matches!(s.operation, Operation::DeregisterPatchGroup { .. }))
        .map(|s| s.owner.clone())
        .collect();
    assert_eq!(
        deregistrations,
        vec![Some(owner(OwnerKind::PatchPolicy, "early")); 2]
    );
    // The group being deleted is present until its registrations are gone.
    let group = owner(OwnerKind::PatchGroup, "early");
    assert!(owners_observed(&inventory, &observed, CLUSTER).contains(&group));
    assert!(!plan.owners.contains(&group));
}

#[test]
fn a_window_targeting_a_group_being_deleted_is_not_stalled_for_a_missing_group() {
    let mut inventory = world();
    deleting(&mut inventory.groups[0].metadata);
    let window = owner(OwnerKind::MaintenanceWindow, "monthly");
    assert_eq!(reference_problems_of(&inventory, &window), []);

    inventory.groups.clear();
    let problems = reference_problems_of(&inventory, &window);
    assert_eq!(
        problems.iter().map(|p| p.reason).collect::<Vec<_>>(),
        [reasons::PATCH_GROUP_NOT_FOUND]
    );
    assert!(problems[0].message.contains("spec.targets.patchGroups"));
}

#[test]
fn reference_problems_of_one_owner_are_those_of_the_whole_inventory_for_it() {
    let mut inventory = world();
    inventory.groups.push(mk_group(NS, "lost", "gone", &[]));
    inventory.groups.push(mk_group(
        NS,
        "bad-selector",
        "early",
        &[("managed", "true")],
    ));
    inventory.groups[2].spec.account_selector = match_expression("managed", "Sometimes", &["true"]);
    inventory
        .windows
        .push(mk_window(NS, "dangling", &["nope"], vec![]));
    let all = reference_problems(&inventory);
    assert_eq!(all.len(), 3, "{all:?}");
    let owners: BTreeSet<Owner> = inventory
        .groups
        .iter()
        .map(patchfleet_planner::inventory::group_owner)
        .chain(
            inventory
                .windows
                .iter()
                .map(patchfleet_planner::inventory::window_owner),
        )
        .collect();
    let one_by_one: Vec<_> = owners
        .iter()
        .flat_map(|o| reference_problems_of(&inventory, o))
        .collect();
    assert_eq!(one_by_one, all);
}
