//! The desired state of one account-region, and the problems that keep parts out of it.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use patchfleet_api::v1alpha1::{
    OperatingSystem, PatchOperation, Platform, PolicyMode, RebootOption, Strategy,
};
use patchfleet_planner::builders::*;
use patchfleet_planner::desired::SNAPSHOT_RUNBOOK;
use patchfleet_planner::model::{
    AccountRegion, Desired, DesiredRun, DesiredWindow, Owner, OwnerKind, Problem, Revision,
    TargetDefinition, TaskAction, TaskDefinition, WindowDefinition, reasons,
};
use patchfleet_planner::{Inventory, desired, reference_problems};

use common::*;

fn plan_desired(inventory: &Inventory) -> (Desired, Vec<Problem>) {
    desired(inventory, &mk_settings(), &ar())
}

fn baseline_names(desired: &Desired) -> Vec<&str> {
    desired.baselines.keys().map(String::as_str).collect()
}

fn groups_of<'d>(desired: &'d Desired, baseline: &str) -> Vec<&'d str> {
    desired.baselines[baseline]
        .patch_groups
        .iter()
        .map(String::as_str)
        .collect()
}

fn owner(kind: OwnerKind, name: &str) -> Owner {
    Owner::new(kind, NS, name)
}

fn problem(kind: OwnerKind, name: &str, reason: &'static str, message: &str) -> Problem {
    Problem {
        owner: owner(kind, name),
        account_region: Some(ar()),
        reason,
        message: message.to_owned(),
    }
}

#[test]
fn a_group_brings_one_baseline_per_operating_system_of_its_policy() {
    let (desired, problems) = plan_desired(&world());
    assert_eq!(problems, []);
    assert_eq!(baseline_names(&desired), [AL2_BASELINE, WINDOWS_BASELINE]);
    let windows = &desired.baselines[WINDOWS_BASELINE];
    assert_eq!(windows.owner, owner(OwnerKind::PatchPolicy, "early"));
    assert_eq!(windows.operating_system(), OperatingSystem::Windows);
    assert_eq!(groups_of(&desired, WINDOWS_BASELINE), ["early"]);
    assert_eq!(groups_of(&desired, AL2_BASELINE), ["early"]);
    assert_eq!(
        windows.definition.description.as_deref(),
        Some("Managed by patchfleet: patching/early"),
        "description defaulted"
    );
}

#[test]
fn the_window_targets_each_reaching_group_and_runs_every_task_on_all_targets() {
    let (desired, _) = plan_desired(&world());
    let targets = BTreeSet::from(["pg-early".to_owned()]);
    let run = |operation| TaskAction::RunPatchBaseline {
        operation,
        reboot_option: RebootOption::RebootIfNeeded,
    };
    let task = |operation| TaskDefinition {
        description: None,
        action: run(operation),
        max_concurrency: "10%".into(),
        max_errors: "1".into(),
        priority: 1,
        targets: targets.clone(),
        service_role_arn: None,
    };
    let want = DesiredWindow {
        name: MONTHLY.into(),
        owner: owner(OwnerKind::MaintenanceWindow, "monthly"),
        definition: WindowDefinition {
            description: None,
            schedule: "cron(0 2 ? * SUN#2 *)".into(),
            schedule_timezone: Some("Europe/Paris".into()),
            schedule_offset: None,
            start_date: None,
            end_date: None,
            duration: 4,
            cutoff: 1,
            enabled: true,
        },
        targets: BTreeMap::from([(
            "pg-early".into(),
            TargetDefinition {
                patch_group: "early".into(),
                owner_information: "PatchGroup/patching/early".into(),
            },
        )]),
        tasks: BTreeMap::from([
            ("install".into(), task(PatchOperation::Install)),
            ("scan".into(), task(PatchOperation::Scan)),
        ]),
        revision: Revision {
            uid: "uid-patching-monthly".into(),
            generation: 1,
        },
    };
    assert_eq!(desired.windows.values().collect::<Vec<_>>(), [&want]);
    assert!(desired.held.is_empty());
}

#[test]
fn the_window_definition_copies_the_spec() {
    let mut inventory = world();
    let spec = &mut inventory.windows[0].spec;
    spec.description = Some("second Sunday".into());
    spec.schedule_offset = Some(2);
    spec.start_date = Some("2026-01-01T00:00:00Z".into());
    spec.end_date = Some("2027-01-01T00:00:00Z".into());
    spec.duration = Some(6);
    spec.cutoff = Some(2);
    spec.enabled = false;
    spec.schedule_timezone = None;
    let (desired, _) = plan_desired(&inventory);
    let want = WindowDefinition {
        description: Some("second Sunday".into()),
        schedule: "cron(0 2 ? * SUN#2 *)".into(),
        schedule_timezone: None,
        schedule_offset: Some(2),
        start_date: Some("2026-01-01T00:00:00Z".into()),
        end_date: Some("2027-01-01T00:00:00Z".into()),
        duration: 6,
        cutoff: 2,
        enabled: false,
    };
    assert_eq!(desired.windows[MONTHLY].definition, want);
}

#[test]
fn two_groups_sharing_a_policy_share_its_baselines() {
    let mut inventory = world();
    let mut named = mk_group(NS, "web", "early", &[("managed", "true")]);
    named.spec.group_name = Some("Web Servers".into());
    inventory.groups.push(named);
    inventory.windows[0]
        .spec
        .targets
        .patch_groups
        .push("web".into());

    let (desired, problems) = plan_desired(&inventory);
    assert_eq!(problems, []);
    assert_eq!(
        desired.baselines.len(),
        2,
        "one baseline per operating system"
    );
    assert_eq!(
        groups_of(&desired, WINDOWS_BASELINE),
        ["Web Servers", "early"]
    );
    assert_eq!(groups_of(&desired, AL2_BASELINE), ["Web Servers", "early"]);
    let window = &desired.windows[MONTHLY];
    assert_eq!(
        window.targets["pg-web"],
        TargetDefinition {
            patch_group: "Web Servers".into(),
            owner_information: "PatchGroup/patching/web".into(),
        },
        "target named after the resource, on the groupName tag value"
    );
    for task in window.tasks.values() {
        assert_eq!(
            task.targets,
            BTreeSet::from(["pg-early".into(), "pg-web".into()])
        );
    }
}

#[test]
fn a_frozen_policy_keeps_only_its_approved_patches() {
    let mut inventory = world();
    inventory.policies[0].spec.mode = PolicyMode::Frozen;
    inventory.policies[0].spec.baselines[0].approved_patches = strings(&["KB2", "KB1"]);
    let (desired, _) = plan_desired(&inventory);
    let windows = &desired.baselines[WINDOWS_BASELINE].definition;
    assert_eq!(windows.approval_rules, []);
    assert_eq!(windows.approved_patches, ["KB1", "KB2"], "kept, normalized");
    assert_eq!(
        desired.baselines[AL2_BASELINE].definition.approval_rules,
        []
    );
}

#[test]
fn an_active_policy_keeps_its_rules_and_its_own_description() {
    let mut inventory = world();
    inventory.policies[0].spec.baselines[0].description = Some("Windows, early".into());
    let (desired, _) = plan_desired(&inventory);
    let windows = &desired.baselines[WINDOWS_BASELINE].definition;
    assert_eq!(windows.approval_rules.len(), 1);
    assert_eq!(windows.description.as_deref(), Some("Windows, early"));
}

#[test]
fn a_missing_policy_plans_nothing_for_its_group() {
    let cases: [(&str, Change, &str); 2] = [
        (
            "not found",
            |inv| inv.policies.clear(),
            "spec.policyRef.name: PatchPolicy patching/early not found",
        ),
        (
            "being deleted",
            |inv| deleting(&mut inv.policies[0].metadata),
            "spec.policyRef.name: PatchPolicy patching/early is being deleted",
        ),
    ];
    for (case, change, message) in cases {
        let mut inventory = world();
        change(&mut inventory);
        let (desired, problems) = plan_desired(&inventory);
        assert_eq!(
            desired,
            Desired::default(),
            "{case}: nothing, window included"
        );
        assert_eq!(
            problems,
            [problem(
                OwnerKind::PatchGroup,
                "early",
                reasons::POLICY_NOT_FOUND,
                message
            )],
            "{case}"
        );
    }
}

#[test]
fn resources_being_deleted_contribute_nothing() {
    let mut inventory = world();
    deleting(&mut inventory.groups[0].metadata);
    assert_eq!(
        plan_desired(&inventory),
        (Desired::default(), vec![]),
        "group"
    );

    let mut inventory = world();
    deleting(&mut inventory.windows[0].metadata);
    let (desired, problems) = plan_desired(&inventory);
    assert_eq!(
        (desired.windows.len(), desired.baselines.len()),
        (0, 2),
        "window"
    );
    assert!(desired.held.is_empty() && problems.is_empty());
}

#[test]
fn nothing_is_desired_in_an_account_that_is_not_active() {
    let cases: [(&str, Change, AccountRegion); 5] = [
        ("suspended", |inv| inv.accounts[0].spec.suspend = true, ar()),
        (
            "being deleted",
            |inv| deleting(&mut inv.accounts[0].metadata),
            ar(),
        ),
        (
            "unknown account",
            |_| {},
            mk_account_region("other", ACCOUNT_ID, REGION),
        ),
        (
            "account id changed",
            |_| {},
            mk_account_region(ACCOUNT, "999999999999", REGION),
        ),
        (
            "region not listed",
            |_| {},
            mk_account_region(ACCOUNT, ACCOUNT_ID, "ap-south-1"),
        ),
    ];
    for (case, change, account_region) in cases {
        let mut inventory = world();
        // A window naming a missing group, which an active account would hold.
        inventory
            .windows
            .push(mk_window(NS, "dangling", &["early", "gone"], vec![]));
        change(&mut inventory);
        let got = desired(&inventory, &mk_settings(), &account_region);
        assert_eq!(got, (Desired::default(), vec![]), "{case}");
    }
}

#[test]
fn a_namespace_the_account_does_not_admit_is_reported_per_account_region() {
    let message = "spec.accountSelector: SystemAccount customer-a matches, but its \
                   spec.namespaceSelector does not admit namespace patching";
    let cases: [(&str, Change); 3] = [
        ("absent", |inv| {
            inv.accounts[0].spec.namespace_selector = None
        }),
        ("empty", |inv| {
            inv.accounts[0].spec.namespace_selector = Some(Default::default())
        }),
        ("another tenant", |inv| {
            inv.accounts[0].spec.namespace_selector = Some(match_labels(&[("tenant", "other")]))
        }),
    ];
    for (case, change) in cases {
        let mut inventory = world();
        change(&mut inventory);
        let (desired, problems) = plan_desired(&inventory);
        assert_eq!(desired, Desired::default(), "{case}");
        assert_eq!(
            problems,
            [problem(
                OwnerKind::PatchGroup,
                "early",
                reasons::NAMESPACE_NOT_PERMITTED,
                message
            )],
            "{case}"
        );
    }
}

#[test]
fn a_group_limited_to_some_regions_is_planned_only_there() {
    let mut inventory = world();
    inventory.groups[0].spec.regions = Some(strings(&["us-east-1"]));
    let (here, _) = plan_desired(&inventory);
    let (there, _) = desired(
        &inventory,
        &mk_settings(),
        &mk_account_region(ACCOUNT, ACCOUNT_ID, "us-east-1"),
    );
    assert_eq!(here, Desired::default());
    assert_eq!(baseline_names(&there), [AL2_BASELINE, WINDOWS_BASELINE]);
    assert_eq!(there.windows.len(), 1);
}

#[test]
fn a_window_naming_a_missing_group_is_held_whole() {
    let mut inventory = world();
    inventory.windows[0]
        .spec
        .targets
        .patch_groups
        .push("typo".into());
    inventory.windows.push(mk_window(
        NS,
        "weekly",
        &["early"],
        vec![mk_task("scan", PatchOperation::Scan)],
    ));

    let (desired, problems) = plan_desired(&inventory);
    assert!(!desired.windows.contains_key(MONTHLY), "not half-applied");
    assert!(
        desired.windows.contains_key("patchfleet-patching-weekly"),
        "others unaffected"
    );
    assert_eq!(
        desired.baselines.len(),
        2,
        "the groups are still registered"
    );
    assert_eq!(
        desired.held,
        BTreeSet::from([owner(OwnerKind::MaintenanceWindow, "monthly")])
    );
    assert_eq!(
        problems,
        [problem(
            OwnerKind::MaintenanceWindow,
            "monthly",
            reasons::PATCH_GROUP_NOT_FOUND,
            "spec.targets.patchGroups: PatchGroup patching/typo not found; the window is left \
             as it is until the group exists or is removed from the list",
        )]
    );
}

#[test]
fn a_window_loses_the_target_of_a_group_being_deleted() {
    let mut inventory = world();
    inventory
        .groups
        .push(mk_group(NS, "late", "early", &[("managed", "true")]));
    inventory.windows[0]
        .spec
        .targets
        .patch_groups
        .push("late".into());
    deleting(&mut inventory.groups[0].metadata);
    let (desired, problems) = plan_desired(&inventory);
    let window = &desired.windows[MONTHLY];
    assert_eq!(window.targets.keys().collect::<Vec<_>>(), ["pg-late"]);
    assert!(desired.held.is_empty());
    assert_eq!(problems, []);
}

#[test]
fn a_window_whose_groups_reach_elsewhere_is_not_here() {
    let mut inventory = world();
    inventory.groups[0].spec.regions = Some(strings(&["us-east-1"]));
    inventory
        .groups
        .push(mk_group(NS, "here", "early", &[("managed", "true")]));
    let (desired, _) = plan_desired(&inventory);
    assert_eq!(
        desired.windows.len(),
        0,
        "its only group is not planned here"
    );
    assert!(desired.held.is_empty());
}

#[test]
fn a_frozen_window_keeps_its_scan_and_refuses_its_install_task() {
    let mut inventory = world();
    inventory.windows[0].spec.strategy = Strategy::Frozen;
    let (desired, problems) = plan_desired(&inventory);
    let window = &desired.windows[MONTHLY];
    assert_eq!(
        window.tasks.keys().collect::<Vec<_>>(),
        ["scan"],
        "no Install task exists"
    );
    assert_eq!(
        problems,
        [problem(
            OwnerKind::MaintenanceWindow,
            "monthly",
            reasons::INSTALL_IN_FROZEN_WINDOW,
            "spec.tasks[install].operation: a Frozen window only scans, so its Install task \
             is not registered; use operation Scan or another strategy",
        )]
    );
    // The other strategies install.
    for strategy in [Strategy::Scheduled, Strategy::Opportunistic] {
        inventory.windows[0].spec.strategy = strategy;
        let (desired, problems) = plan_desired(&inventory);
        assert_eq!(desired.windows[MONTHLY].tasks.len(), 2, "{strategy:?}");
        assert_eq!(problems, [], "{strategy:?}");
    }
}

/// AWS-PatchInstanceWithRollback takes InstanceId (required) and AutomationAssumeRole
/// (<https://docs.aws.amazon.com/systems-manager-automation-runbooks/latest/userguide/automation-aws-patchinstancewithrollback.html>);
/// {{RESOURCE_ID}} is each target instance in a maintenance window
/// (<https://docs.aws.amazon.com/systems-manager/latest/userguide/maintenance-window-tasks-pseudo-parameters.html>).
#[test]
fn snapshot_before_patch_runs_the_rollback_runbook_as_the_service_role_where_snapshots_exist() {
    let role = "arn:aws:iam::111111111111:role/service-role/patching";
    let automation = TaskAction::Automation {
        document: SNAPSHOT_RUNBOOK.into(),
        parameters: BTreeMap::from([
            ("AutomationAssumeRole".into(), strings(&[role])),
            ("InstanceId".into(), strings(&["{{RESOURCE_ID}}"])),
        ]),
    };
    let direct = TaskAction::RunPatchBaseline {
        operation: PatchOperation::Install,
        reboot_option: RebootOption::RebootIfNeeded,
    };
    for (platform, want) in [
        (Platform::Aws, automation),
        (Platform::Vmware, direct.clone()),
        (Platform::Onprem, direct),
    ] {
        let mut inventory = world();
        inventory.accounts[0].spec.platform = platform;
        inventory.accounts[0].spec.task_roles = vec!["service-role/patching".into()];
        let task = &mut inventory.windows[0].spec.tasks[1];
        task.snapshot_before_patch = true;
        task.service_role_name = Some("service-role/patching".into());
        let (desired, problems) = plan_desired(&inventory);
        assert_eq!(problems, [], "{platform:?}");
        let window = &desired.windows[MONTHLY];
        let install = &window.tasks["install"];
        assert_eq!(install.action, want, "{platform:?}");
        assert_eq!(
            install.service_role_arn.as_deref(),
            Some(role),
            "{platform:?}: the task runs as the role"
        );
        assert!(
            matches!(
                window.tasks["scan"].action,
                TaskAction::RunPatchBaseline { .. }
            ),
            "{platform:?}: other tasks unchanged"
        );
        assert_eq!(window.tasks["scan"].service_role_arn, None);
    }
}

#[test]
fn role_arns_are_in_the_partition_of_the_region() {
    for (region, want) in [
        ("eu-west-1", "arn:aws:iam::111111111111:role/patching"),
        ("cn-north-1", "arn:aws-cn:iam::111111111111:role/patching"),
        (
            "us-gov-west-1",
            "arn:aws-us-gov:iam::111111111111:role/patching",
        ),
    ] {
        let account_region = AccountRegion {
            region: region.into(),
            ..ar()
        };
        assert_eq!(
            patchfleet_planner::desired::role_arn(&account_region, "patching"),
            want
        );
    }
}

#[test]
fn a_snapshot_without_a_role_is_refused_not_run_unprotected() {
    let mut inventory = world();
    inventory.windows[0].spec.tasks[1].snapshot_before_patch = true;
    let (desired, problems) = plan_desired(&inventory);
    assert_eq!(
        desired.windows[MONTHLY].tasks.keys().collect::<Vec<_>>(),
        ["scan"]
    );
    assert_eq!(
        problems,
        [problem(
            OwnerKind::MaintenanceWindow,
            "monthly",
            reasons::INVALID_SPEC,
            "spec.tasks[install].serviceRoleName is required with snapshotBeforePatch: the \
             snapshot runbook assumes that role; the task is not registered",
        )]
    );
}

#[test]
fn an_emergency_window_is_a_run_not_a_window() {
    let mut inventory = world();
    inventory.windows = vec![mk_emergency_window(NS, "urgent", &["early"], "CHG-1")];
    let (desired, problems) = plan_desired(&inventory);
    assert_eq!(problems, []);
    assert!(desired.windows.is_empty(), "no SSM maintenance window");
    let owner = owner(OwnerKind::MaintenanceWindow, "urgent");
    let marker = DesiredRun::marker(&mk_settings().cluster_id, &owner, "CHG-1");
    let want = DesiredRun {
        owner: owner.clone(),
        run_token: "CHG-1".into(),
        comment: format!("{marker}: patching/urgent token CHG-1"),
        operation: PatchOperation::Install,
        reboot_option: RebootOption::RebootIfNeeded,
        max_concurrency: "10%".into(),
        max_errors: "1".into(),
        patch_groups: BTreeSet::from(["early".to_owned()]),
        enabled: true,
    };
    assert_eq!(desired.runs.values().collect::<Vec<_>>(), [&want]);
    assert!(want.comment.len() <= 100);

    // Disabled: planned (so that a running command is followed), not to be sent.
    inventory.windows[0].spec.enabled = false;
    let runs = plan_desired(&inventory).0.runs;
    assert_eq!(
        runs.values().map(|r| r.enabled).collect::<Vec<_>>(),
        [false]
    );
    // A target group missing: held, not sent to the groups that exist.
    inventory.windows[0].spec.enabled = true;
    inventory.windows[0]
        .spec
        .targets
        .patch_groups
        .push("missing".into());
    let (desired, problems) = plan_desired(&inventory);
    assert!(desired.runs.is_empty());
    assert!(desired.held.contains(&owner));
    assert_eq!(problems[0].reason, reasons::PATCH_GROUP_NOT_FOUND);
}

#[test]
fn run_markers_differ_by_cluster_window_and_token_and_comments_stay_short() {
    let a = Owner::new(OwnerKind::MaintenanceWindow, NS, "urgent");
    let b = Owner::new(OwnerKind::MaintenanceWindow, NS, "urgent-2");
    let base = DesiredRun::marker("cluster-1", &a, "T1");
    assert_eq!(base, DesiredRun::marker("cluster-1", &a, "T1"), "stable");
    for other in [
        DesiredRun::marker("cluster-2", &a, "T1"),
        DesiredRun::marker("cluster-1", &b, "T1"),
        DesiredRun::marker("cluster-1", &a, "T2"),
    ] {
        assert_ne!(base, other);
    }
    let mut inventory = world();
    let long = "a".repeat(253);
    inventory.windows = vec![mk_emergency_window(NS, &long, &["early"], &"9".repeat(64))];
    let (desired, _) = plan_desired(&inventory);
    let run = desired.runs.values().next().expect("a run");
    assert_eq!(
        run.comment.chars().count(),
        100,
        "SendCommand Comment limit"
    );
    assert!(run.comment.starts_with(&DesiredRun::marker(
        &mk_settings().cluster_id,
        &run.owner,
        &run.run_token
    )));
}

#[test]
fn a_window_without_a_schedule_is_refused_unless_emergency() {
    let mut inventory = world();
    inventory.windows[0].spec.schedule = None;
    let (desired, problems) = plan_desired(&inventory);
    assert!(desired.windows.is_empty());
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].reason, reasons::INVALID_SPEC);
    assert!(problems[0].message.starts_with("spec.schedule"));
}

#[test]
fn names_that_meet_are_a_conflict_not_an_overwrite() {
    let mut inventory = world();
    // Policies a-b/c and a/b-c both give patchfleet-a-b-c-windows.
    inventory.policies = vec![
        mk_policy("a-b", "c", vec![mk_baseline(OperatingSystem::Windows, 0)]),
        mk_policy("a", "b-c", vec![mk_baseline(OperatingSystem::Windows, 7)]),
    ];
    inventory.groups = vec![
        mk_group("a-b", "g1", "c", &[("managed", "true")]),
        mk_group("a", "g2", "b-c", &[("managed", "true")]),
    ];
    inventory.windows.clear();
    inventory.namespaces.insert("a".into(), labels(&[]));
    inventory.namespaces.insert("a-b".into(), labels(&[]));
    inventory.accounts[0].spec.patch_group_grants =
        vec![grant("a", &["g2"]), grant("a-b", &["g1"])];
    let (desired, problems) = plan_desired(&inventory);
    let name = "patchfleet-a-b-c-windows";
    assert_eq!(baseline_names(&desired), [name]);
    assert_eq!(
        desired.baselines[name].owner,
        Owner::new(OwnerKind::PatchPolicy, "a", "b-c")
    );
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].owner,
        Owner::new(OwnerKind::PatchPolicy, "a-b", "c")
    );
    assert_eq!(problems[0].reason, reasons::NAME_CONFLICT);
    assert!(
        problems[0].message.contains(name),
        "{}",
        problems[0].message
    );
}

#[test]
fn one_patch_group_value_on_two_policies_keeps_one_registration_per_os() {
    let mut inventory = world();
    inventory.policies.push(mk_policy(
        NS,
        "late",
        vec![mk_baseline(OperatingSystem::Windows, 14)],
    ));
    let mut late = mk_group(NS, "late", "late", &[("managed", "true")]);
    late.spec.group_name = Some("early".into());
    inventory.groups.push(late);

    let (desired, problems) = plan_desired(&inventory);
    let late_windows = "patchfleet-patching-late-windows";
    assert_eq!(
        groups_of(&desired, WINDOWS_BASELINE),
        ["early"],
        "first by name keeps it"
    );
    assert_eq!(groups_of(&desired, late_windows), Vec::<&str>::new());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].owner, owner(OwnerKind::PatchGroup, "late"));
    assert_eq!(problems[0].reason, reasons::PATCH_GROUP_CONFLICT);
    assert!(
        problems[0].message.contains(late_windows),
        "{}",
        problems[0].message
    );
}

#[test]
fn an_invalid_account_selector_is_reported() {
    let mut inventory = world();
    inventory.groups[0].spec.account_selector = match_expression("managed", "In", &[]);
    let (desired, problems) = plan_desired(&inventory);
    assert_eq!(desired, Desired::default());
    assert_eq!(
        problems,
        [problem(
            OwnerKind::PatchGroup,
            "early",
            reasons::INVALID_SELECTOR,
            "spec.accountSelector: matchExpressions[0].values: must be non-empty for operator \
             In; it selects no account",
        )]
    );
}

#[test]
fn the_output_does_not_depend_on_the_order_of_the_stores() {
    let mut inventory = world();
    inventory
        .groups
        .push(mk_group(NS, "b-late", "nope", &[("managed", "true")]));
    inventory
        .groups
        .push(mk_group(NS, "a-web", "early", &[("managed", "true")]));
    inventory
        .groups
        .push(mk_group(NS, "c-bad", "nope", &[("managed", "true")]));
    inventory
        .windows
        .push(mk_window(NS, "adhoc", &["a-web", "gone"], vec![]));
    let forward = plan_desired(&inventory);
    inventory.groups.reverse();
    inventory.windows.reverse();
    inventory.policies.reverse();
    assert_eq!(plan_desired(&inventory), forward);
    assert_eq!(forward.1.len(), 3, "{:?}", forward.1);
}

#[test]
fn reference_problems_are_reported_once_without_an_account_region() {
    let mut inventory = world();
    inventory
        .groups
        .push(mk_group(NS, "orphan", "nope", &[("nothing", "matches")]));
    inventory
        .windows
        .push(mk_window(NS, "empty", &["gone"], vec![]));
    let got = reference_problems(&inventory);
    let global = |kind, name: &str, reason, message: &str| Problem {
        owner: owner(kind, name),
        account_region: None,
        reason,
        message: message.to_owned(),
    };
    assert_eq!(
        got,
        [
            global(
                OwnerKind::PatchGroup,
                "orphan",
                reasons::POLICY_NOT_FOUND,
                "spec.policyRef.name: PatchPolicy patching/nope not found",
            ),
            global(
                OwnerKind::MaintenanceWindow,
                "empty",
                reasons::PATCH_GROUP_NOT_FOUND,
                "spec.targets.patchGroups: PatchGroup patching/gone not found; the window is \
                 left as it is until the group exists or is removed from the list",
            ),
        ]
    );
}

#[test]
fn the_examples_plan_without_problems() {
    let inventory = examples();
    let region = |account: &str, id: &str, region: &str| mk_account_region(account, id, region);
    let cases = [
        // early, on-time and late: 8 systems each; frozen (eu-west-1 only): 2.
        (region("customer-a-aws", "111111111111", "eu-west-1"), 26, 3),
        (region("customer-a-aws", "111111111111", "us-east-1"), 24, 2),
        (
            region("customer-b-vmware", "222222222222", "eu-central-1"),
            24,
            2,
        ),
    ];
    for (account_region, baselines, windows) in &cases {
        let (desired, problems) = desired(&inventory, &mk_settings(), account_region);
        assert_eq!(problems, [], "{account_region}");
        assert_eq!(desired.baselines.len(), *baselines, "{account_region}");
        assert_eq!(desired.windows.len(), *windows, "{account_region}");
    }
    let (desired, _) = desired(&inventory, &mk_settings(), &cases[0].0);
    let frozen = &desired.baselines["patchfleet-patching-frozen-windows"];
    assert_eq!(
        frozen.patch_groups,
        BTreeSet::from(["frozen-after-go-live".into()])
    );
    assert_eq!(frozen.definition.approval_rules, []);
}
