//! Quotas: every object in the account-region counts, ours or not, and the additions
//! that would exceed one are left out of the plan while updates and deletes go on.

mod common;

use patchfleet_api::v1alpha1::OperatingSystem;
use patchfleet_planner::builders::*;
use patchfleet_planner::model::{
    Observed, ObservedTarget, Operation, Owner, OwnerKind, Problem, reasons,
};
use patchfleet_planner::{Inventory, Plan, Settings, plan};

use common::*;

fn plan_with(inventory: &Inventory, settings: &Settings, observed: &Observed) -> Plan {
    let orphaned = patchfleet_planner::orphaned_owners(inventory);
    plan(inventory, settings, &ar(), observed, &orphaned)
}

fn foreign_baselines(n: usize) -> Vec<patchfleet_planner::model::ObservedBaseline> {
    (0..n)
        .map(|i| {
            mk_foreign_baseline(
                &format!("pb-customer{i:03}"),
                "mine",
                OperatingSystem::Windows,
            )
        })
        .collect()
}

fn creates_baseline_or_registers(op: &Operation) -> bool {
    matches!(
        op,
        Operation::CreateBaseline { .. } | Operation::RegisterPatchGroup { .. }
    )
}

/// The plan's operations, without their owners.
fn operations(plan: &Plan) -> impl Iterator<Item = &Operation> {
    plan.operations.iter().map(|step| &step.operation)
}

fn creates_baseline(op: &Operation) -> bool {
    matches!(op, Operation::CreateBaseline { .. })
}

fn quota_problem(kind: OwnerKind, name: &str, message: &str) -> Problem {
    Problem {
        owner: Owner::new(kind, NS, name),
        account_region: Some(ar()),
        reason: reasons::QUOTA_EXCEEDED,
        message: message.to_owned(),
    }
}

#[test]
fn baselines_not_ours_count_toward_the_quota() {
    let settings = mk_settings();
    let over = Observed {
        baselines: foreign_baselines(49),
        ..Observed::default()
    };
    let plan = plan_with(&world(), &settings, &over);
    assert!(
        !operations(&plan).any(creates_baseline),
        "no baseline created: {:?}",
        plan.operations
    );
    assert!(
        operations(&plan).any(|op| matches!(op, Operation::CreateWindow { .. })),
        "the window is not held back by the baselines' quota"
    );
    assert_eq!(
        plan.problems,
        [quota_problem(
            OwnerKind::PatchPolicy,
            "early",
            "51 patch baselines would exist in customer-a (111111111111) eu-west-1 (49 not \
             owned by patchfleet), over the quota of 50 patch baselines per account and region: \
             the 2 new ones are not created",
        )]
    );
    assert!(
        plan.desired.baselines.is_empty(),
        "the plan shows what it does"
    );

    let at_limit = Observed {
        baselines: foreign_baselines(48),
        ..Observed::default()
    };
    let plan = plan_with(&world(), &settings, &at_limit);
    assert_eq!(plan.problems, []);
    assert_eq!(plan.operations.len(), 8, "everything created");
}

#[test]
fn aws_predefined_baselines_do_not_count() {
    let settings = mk_settings();
    let observed = Observed {
        baselines: (0..60)
            .map(|i| {
                let id = format!("arn:aws:ssm:eu-west-1:075727635805:patchbaseline/pb-{i:017}");
                mk_foreign_baseline(&id, "AWS-DefaultPatchBaseline", OperatingSystem::Windows)
            })
            .collect(),
        ..Observed::default()
    };
    assert_eq!(plan_with(&world(), &settings, &observed).problems, []);
}

#[test]
fn windows_not_ours_count_toward_the_quota() {
    let settings = mk_settings();
    let observed = Observed {
        windows: (0..50)
            .map(|i| mk_foreign_window(&format!("mw-customer{i:03}"), "theirs"))
            .collect(),
        ..Observed::default()
    };
    let plan = plan_with(&world(), &settings, &observed);
    assert!(
        operations(&plan).all(creates_baseline_or_registers),
        "the baselines are created, the window is not: {:?}",
        plan.operations
    );
    assert_eq!(
        operations(&plan).filter(|op| creates_baseline(op)).count(),
        2
    );
    assert_eq!(
        plan.problems,
        [quota_problem(
            OwnerKind::MaintenanceWindow,
            "monthly",
            "51 maintenance windows would exist in customer-a (111111111111) eu-west-1 (50 not \
             owned by patchfleet), over the quota of 50 maintenance windows per account and \
             region: the 1 new ones are not created",
        )]
    );
}

#[test]
fn parts_of_windows_and_baselines_have_quotas_too() {
    let mut inventory = world();
    inventory
        .groups
        .push(mk_group(NS, "web", "early", &[("managed", "true")]));
    inventory.windows[0]
        .spec
        .targets
        .patch_groups
        .push("web".into());
    type Lower = fn(&mut Settings);
    let cases: [(&str, Lower, OwnerKind, &str, &str); 3] = [
        (
            "targets",
            |s| s.quotas.targets_per_window = 1,
            OwnerKind::MaintenanceWindow,
            "monthly",
            "window patchfleet-patching-monthly would have 2 targets, over the quota of 1 \
             targets per maintenance window: it is not created",
        ),
        (
            "tasks",
            |s| s.quotas.tasks_per_window = 1,
            OwnerKind::MaintenanceWindow,
            "monthly",
            "window patchfleet-patching-monthly would have 2 tasks, over the quota of 1 tasks \
             per maintenance window: it is not created",
        ),
        (
            "patch groups",
            |s| s.quotas.patch_groups_per_baseline = 1,
            OwnerKind::PatchPolicy,
            "early",
            // One per baseline: both operating systems.
            "",
        ),
    ];
    for (case, lower, kind, name, message) in cases {
        let mut settings = mk_settings();
        lower(&mut settings);
        let plan = plan_with(&inventory, &settings, &Observed::default());
        let refused_window = kind == OwnerKind::MaintenanceWindow;
        assert_eq!(plan.desired.windows.is_empty(), refused_window, "{case}");
        assert_eq!(plan.desired.baselines.is_empty(), !refused_window, "{case}");
        assert!(!plan.operations.is_empty(), "the rest is created: {case}");
        if message.is_empty() {
            let messages: Vec<&str> = plan.problems.iter().map(|p| p.message.as_str()).collect();
            assert_eq!(
                messages,
                [
                    "baseline patchfleet-patching-early-amazon-linux-2 would have 2 patch groups \
                     registered, over the quota of 1 patch groups per patch baseline: it is not \
                     created",
                    "baseline patchfleet-patching-early-windows would have 2 patch groups \
                     registered, over the quota of 1 patch groups per patch baseline: it is not \
                     created",
                ],
                "{case}"
            );
            assert!(
                plan.problems
                    .iter()
                    .all(|p| p.owner == Owner::new(kind, NS, name))
            );
        } else {
            assert_eq!(
                plan.problems,
                [quota_problem(kind, name, message)],
                "{case}"
            );
        }
    }
}

#[test]
fn a_target_on_its_way_out_still_counts_while_the_new_one_is_added() {
    // Targets are registered before stale ones are deregistered: both exist at once.
    let settings = Settings {
        quotas: patchfleet_planner::Quotas {
            targets_per_window: 2,
            ..Default::default()
        },
        ..mk_settings()
    };
    let mut inventory = world();
    inventory
        .groups
        .push(mk_group(NS, "web", "early", &[("managed", "true")]));
    inventory.windows[0]
        .spec
        .targets
        .patch_groups
        .push("web".into());
    // Converged on the world before `web` was added, plus a target left by hand.
    let (before, _) = patchfleet_planner::desired(&world(), &settings, &ar());
    let mut observed = mk_observed(&settings, &before);
    let targets = observed.windows[0].targets.as_mut().expect("deep");
    targets.push(ObservedTarget {
        id: "wt-old".into(),
        name: Some("pg-old".into()),
        definition: targets[0].definition.clone(),
    });
    let plan = plan_with(&inventory, &settings, &observed);
    // The new target is not registered (nor named by the tasks); the stale one is still
    // deregistered (a delete is never refused: it is what makes room), and the group is
    // registered to its baselines (a quota of its own).
    let deregister = Operation::DeregisterTarget {
        window_id: observed.windows[0].id.clone(),
        target_id: "wt-old".into(),
    };
    assert!(
        operations(&plan).any(|op| op == &deregister),
        "{:?}",
        plan.operations
    );
    for op in operations(&plan) {
        match op {
            Operation::RegisterTarget { .. } => panic!("a target registered: {op:?}"),
            Operation::UpdateTask { task, .. } | Operation::RegisterTask { task, .. } => {
                assert!(!task.targets.contains("pg-web"), "{op:?}")
            }
            _ => {}
        }
    }
    assert_eq!(
        plan.problems,
        [quota_problem(
            OwnerKind::MaintenanceWindow,
            "monthly",
            "window patchfleet-patching-monthly would have 3 targets, over the quota of 2 \
             targets per maintenance window: the new ones are not registered",
        )]
    );
}

#[test]
fn a_plan_that_adds_nothing_is_not_refused() {
    // Over a quota set lower than what is there already (say, a raised AWS quota not
    // passed on): updates and deletes still go through.
    let mut settings = mk_settings();
    settings.quotas.baselines = 1;
    settings.quotas.windows = 0;
    let (desired, _) = patchfleet_planner::desired(&world(), &settings, &ar());
    let mut observed = mk_observed(&settings, &desired);
    observed.baselines.extend(foreign_baselines(10));
    let drifted = observed.baselines[0].definition.as_mut().expect("deep");
    drifted.approved_patches.push("drift".into());
    let plan = plan_with(&world(), &settings, &observed);
    assert_eq!(plan.problems, []);
    assert_eq!(plan.operations.len(), 1, "{:?}", plan.operations);
}

/// One tenant's new baselines over the quota: refused, while another tenant's drifted
/// baseline is corrected and a removed one deleted in the same pass.
#[test]
fn an_overrun_refuses_only_the_creates() {
    let settings = mk_settings();
    let (converged, _) = patchfleet_planner::desired(&world(), &settings, &ar());
    let mut observed = mk_observed(&settings, &converged);
    assert!(observed.baselines[1].name.ends_with("-windows"));
    let drifted = observed.baselines[1].definition.as_mut().expect("deep");
    drifted.approved_patches.push("drift".into());
    observed.baselines.extend(foreign_baselines(48));

    let mut inventory = world();
    // The early policy drops Amazon Linux 2 (a delete) ...
    inventory.policies[0]
        .spec
        .baselines
        .retain(|b| b.operating_system != OperatingSystem::AmazonLinux2);
    // ... and another tenant's group brings a policy of two new baselines: 48 + 2 + 2 > 50.
    inventory.policies.push(mk_policy(
        "tenant-b",
        "greedy",
        vec![
            mk_baseline(OperatingSystem::Ubuntu, 0),
            mk_baseline(OperatingSystem::Debian, 0),
        ],
    ));
    inventory.groups.push(mk_group(
        "tenant-b",
        "greedy",
        "greedy",
        &[("managed", "true")],
    ));
    inventory.namespaces.insert("tenant-b".into(), labels(&[]));
    inventory.accounts[0].spec.patch_group_grants =
        vec![grant(NS, &["early"]), grant("tenant-b", &["greedy"])];

    let plan = plan_with(&inventory, &settings, &observed);
    assert!(
        !operations(&plan).any(creates_baseline),
        "{:?}",
        plan.operations
    );
    assert!(
        operations(&plan).any(|op| matches!(op, Operation::UpdateBaseline { .. })),
        "the drift is corrected: {:?}",
        plan.operations
    );
    assert!(
        operations(&plan).any(|op| matches!(op, Operation::DeleteBaseline { .. })),
        "the dropped baseline is deleted: {:?}",
        plan.operations
    );
    let refused: Vec<&Owner> = plan.problems.iter().map(|p| &p.owner).collect();
    assert_eq!(
        refused,
        [&Owner::new(OwnerKind::PatchPolicy, "tenant-b", "greedy")]
    );
}
