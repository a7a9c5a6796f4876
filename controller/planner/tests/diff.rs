//! From desired and observed state to operations: ownership, drift, registrations,
//! windows' parts, deletion and orphaning, and the order of it all.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use patchfleet_api::v1alpha1::{ComplianceLevel, OperatingSystem};
use patchfleet_planner::builders::*;
use patchfleet_planner::diff::{Orphaned, RegisteredElsewhere};
use patchfleet_planner::fingerprint::PENDING;
use patchfleet_planner::model::{
    Desired, ObjectRef, Observed, ObservedTarget, ObservedTask, Operation, Owner, OwnerKind, tags,
};
use patchfleet_planner::{Settings, baseline_fingerprint, desired, diff, window_fingerprint};

use common::*;

struct Case {
    settings: Settings,
    desired: Desired,
    observed: Observed,
    orphaned: Orphaned,
}

/// The world, converged: every desired object observed, read deeply.
fn converged() -> Case {
    let settings = mk_settings();
    let (desired, problems) = desired(&world(), &settings, &ar());
    assert_eq!(problems, []);
    let observed = mk_observed(&settings, &desired);
    Case {
        settings,
        desired,
        observed,
        orphaned: Orphaned::default(),
    }
}

impl Case {
    fn operations(&self) -> Vec<Operation> {
        self.diff().operations
    }

    fn diff(&self) -> patchfleet_planner::Diff {
        diff(
            &self.settings,
            &self.desired,
            &self.observed,
            &self.orphaned,
        )
    }

    fn baseline_fp(&self, name: &str) -> String {
        baseline_fingerprint(&self.desired.baselines[name])
    }

    fn window_fp(&self) -> String {
        window_fingerprint(&self.desired.windows[MONTHLY])
    }

    fn update_baseline(&self, id: &str, name: &str) -> Operation {
        Operation::UpdateBaseline {
            id: id.into(),
            baseline: self.desired.baselines[name].clone(),
            fingerprint: self.baseline_fp(name),
        }
    }

    fn update_window(&self, fingerprint: &str) -> Operation {
        Operation::UpdateWindow {
            id: window_id(0),
            window: self.desired.windows[MONTHLY].clone(),
            fingerprint: fingerprint.into(),
        }
    }
}

// In name order: Amazon Linux 2 first.
fn al2_id() -> String {
    baseline_id(0)
}

fn windows_id() -> String {
    baseline_id(1)
}

fn policy(name: &str) -> Owner {
    Owner::new(OwnerKind::PatchPolicy, NS, name)
}

fn register(baseline: ObjectRef, group: &str) -> Operation {
    Operation::RegisterPatchGroup {
        baseline,
        patch_group: group.into(),
    }
}

fn deregister(baseline_id: &str, group: &str) -> Operation {
    Operation::DeregisterPatchGroup {
        baseline_id: baseline_id.into(),
        patch_group: group.into(),
    }
}

#[test]
fn an_empty_account_region_gets_everything_created_in_order() {
    let mut case = converged();
    case.observed = Observed::default();
    let created = |name: &str| ObjectRef::Created(name.into());
    let window = &case.desired.windows[MONTHLY];
    let want = vec![
        Operation::CreateBaseline {
            baseline: case.desired.baselines[AL2_BASELINE].clone(),
            fingerprint: case.baseline_fp(AL2_BASELINE),
        },
        Operation::CreateBaseline {
            baseline: case.desired.baselines[WINDOWS_BASELINE].clone(),
            fingerprint: case.baseline_fp(WINDOWS_BASELINE),
        },
        register(created(AL2_BASELINE), "early"),
        register(created(WINDOWS_BASELINE), "early"),
        // The real fingerprint: the edge creates the window PENDING and stamps this
        // once its targets and tasks below are registered.
        Operation::CreateWindow {
            window: window.clone(),
            fingerprint: case.window_fp(),
        },
        Operation::RegisterTarget {
            window: created(MONTHLY),
            name: "pg-early".into(),
            target: window.targets["pg-early"].clone(),
        },
        Operation::RegisterTask {
            window: created(MONTHLY),
            name: "install".into(),
            task: window.tasks["install"].clone(),
        },
        Operation::RegisterTask {
            window: created(MONTHLY),
            name: "scan".into(),
            task: window.tasks["scan"].clone(),
        },
    ];
    assert_eq!(case.operations(), want);
}

#[test]
fn a_description_clipped_to_fit_the_fingerprint_marker_is_not_drift() {
    use patchfleet_planner::fingerprint::{
        BASELINE_DESCRIPTION_MAX, WINDOW_DESCRIPTION_MAX, fit_description,
    };
    let mut case = converged();
    let long = "x".repeat(WINDOW_DESCRIPTION_MAX);
    let baseline_text = "y".repeat(BASELINE_DESCRIPTION_MAX);
    case.desired
        .windows
        .get_mut(MONTHLY)
        .expect("monthly")
        .definition
        .description = Some(long.clone());
    case.desired
        .baselines
        .get_mut(AL2_BASELINE)
        .map(|b| Arc::make_mut(&mut b.definition))
        .expect("al2")
        .description = Some(baseline_text.clone());
    // SSM holds what fits beside the marker; the fingerprints are of the full intent.
    case.observed = mk_observed(&case.settings, &case.desired);
    for w in &mut case.observed.windows {
        if let Some(d) = &mut w.definition {
            d.description = fit_description(Some(&long), WINDOW_DESCRIPTION_MAX);
        }
    }
    for b in &mut case.observed.baselines {
        if b.name == AL2_BASELINE
            && let Some(d) = &mut b.definition
        {
            d.description = fit_description(Some(&baseline_text), BASELINE_DESCRIPTION_MAX);
        }
    }
    assert_eq!(case.operations(), [], "read deeply");
    // Another description is drift, clipped or not.
    for w in &mut case.observed.windows {
        if let Some(d) = &mut w.definition {
            d.description = Some("changed by hand".into());
        }
    }
    assert_eq!(case.operations(), [case.update_window(&case.window_fp())]);
}

#[test]
fn a_converged_account_region_needs_no_operation() {
    let case = converged();
    assert_eq!(case.operations(), [], "read deeply");
    let case = Case {
        observed: shallow(case.observed),
        ..case
    };
    assert_eq!(
        case.operations(),
        [],
        "fingerprints matched, not read deeply"
    );
}

#[test]
fn baseline_drift_updates_the_same_baseline() {
    type Drift = fn(&mut patchfleet_api::v1alpha1::BaselineSpec);
    let cases: [(&str, Drift); 4] = [
        ("approval delay", |d| {
            d.approval_rules[0].approve_after_days = Some(30)
        }),
        ("compliance level", |d| {
            d.approval_rules[0].compliance_level = ComplianceLevel::Low
        }),
        ("approved patch added", |d| {
            d.approved_patches.push("KB1".into())
        }),
        ("description", |d| {
            d.description = Some("edited in the console".into())
        }),
    ];
    for (what, drift) in cases {
        let mut case = converged();
        let observed = &mut case.observed.baselines[1];
        drift(observed.definition.as_mut().expect("read deeply"));
        assert_eq!(
            case.operations(),
            [case.update_baseline(&windows_id(), WINDOWS_BASELINE)],
            "{what}"
        );
    }
}

#[test]
fn an_observed_definition_in_another_order_is_not_drift() {
    let mut case = converged();
    case.desired
        .baselines
        .get_mut(WINDOWS_BASELINE)
        .map(|b| Arc::make_mut(&mut b.definition))
        .expect("desired")
        .approval_rules[0]
        .patch_filters[0]
        .values
        .sort();
    case.observed = mk_observed(&case.settings, &case.desired);
    let observed = case.observed.baselines[1]
        .definition
        .as_mut()
        .expect("deep");
    observed.approval_rules[0].patch_filters[0].values.reverse();
    assert_eq!(case.operations(), []);
}

#[test]
fn a_stale_fingerprint_tag_rewrites_the_baseline() {
    for deep in [true, false] {
        let mut case = converged();
        if !deep {
            case.observed = shallow(case.observed);
        }
        case.observed.baselines[0]
            .tags
            .insert(tags::FINGERPRINT.into(), "0000000000000000".into());
        assert_eq!(
            case.operations(),
            [case.update_baseline(&al2_id(), AL2_BASELINE)],
            "deep: {deep}"
        );
    }
}

#[test]
fn a_deleted_task_is_registered_again_and_the_tag_left_pending() {
    let mut case = converged();
    let window = &mut case.observed.windows[0];
    window
        .tasks
        .as_mut()
        .expect("deep")
        .retain(|t| t.name.as_deref() != Some("scan"));
    assert_eq!(
        case.operations(),
        [
            case.update_window(PENDING),
            Operation::RegisterTask {
                window: ObjectRef::Id(window_id(0)),
                name: "scan".into(),
                task: case.desired.windows[MONTHLY].tasks["scan"].clone(),
            },
        ]
    );
}

#[test]
fn window_parts_converge_by_name() {
    let mut case = converged();
    let desired_window = case.desired.windows[MONTHLY].clone();
    let window = &mut case.observed.windows[0];
    window.tags.insert(tags::FINGERPRINT.into(), "stale".into());
    let targets = window.targets.as_mut().expect("deep");
    targets.push(ObservedTarget {
        id: "wt-extra".into(),
        name: Some("pg-gone".into()),
        definition: targets[0].definition.clone(),
    });
    targets.push(ObservedTarget {
        id: "wt-unnamed".into(),
        name: None,
        definition: targets[0].definition.clone(),
    });
    targets[0].definition.owner_information = "edited".into();
    let tasks = window.tasks.as_mut().expect("deep");
    tasks[0].definition.max_errors = "50%".into();
    tasks.push(ObservedTask {
        id: "wtk-extra".into(),
        name: Some("added-by-hand".into()),
        definition: tasks[1].definition.clone(),
    });
    assert_eq!(
        case.operations(),
        [
            // The tag was already stale: no UpdateWindow needed to keep it so.
            Operation::UpdateTarget {
                window_id: window_id(0),
                target_id: target_id(0, 0),
                name: "pg-early".into(),
                target: desired_window.targets["pg-early"].clone(),
            },
            Operation::UpdateTask {
                window_id: window_id(0),
                task_id: task_id(0, 0),
                name: "install".into(),
                task: desired_window.tasks["install"].clone(),
            },
            Operation::DeregisterTask {
                window_id: window_id(0),
                task_id: "wtk-extra".into(),
            },
            Operation::DeregisterTarget {
                window_id: window_id(0),
                target_id: "wt-extra".into(),
            },
            Operation::DeregisterTarget {
                window_id: window_id(0),
                target_id: "wt-unnamed".into(),
            },
        ]
    );
}

#[test]
fn the_window_fingerprint_is_stamped_only_once_its_parts_are_seen_in_place() {
    type Arrange = fn(&mut Case);
    type Expect = fn(&Case) -> Vec<Operation>;
    let cases: [(&str, Arrange, Expect); 4] = [
        (
            "definition drift alone: rewrite and stamp",
            |c| {
                c.observed.windows[0]
                    .definition
                    .as_mut()
                    .expect("deep")
                    .duration = 8
            },
            |c| vec![c.update_window(&c.window_fp())],
        ),
        (
            "pending tag, all in place: stamp",
            |c| {
                c.observed.windows[0]
                    .tags
                    .insert(tags::FINGERPRINT.into(), PENDING.into());
            },
            |c| vec![c.update_window(&c.window_fp())],
        ),
        (
            "definition drift and a missing target: rewrite, tag pending",
            |c| {
                let w = &mut c.observed.windows[0];
                w.definition.as_mut().expect("deep").enabled = false;
                w.targets = Some(vec![]);
            },
            |c| {
                let w = &c.desired.windows[MONTHLY];
                vec![
                    c.update_window(PENDING),
                    Operation::RegisterTarget {
                        window: ObjectRef::Id(window_id(0)),
                        name: "pg-early".into(),
                        target: w.targets["pg-early"].clone(),
                    },
                ]
            },
        ),
        (
            "shallow with a stale tag (not expected from the edge): rewrite, tag pending",
            |c| {
                c.observed = shallow(c.observed.clone());
                c.observed.windows[0]
                    .tags
                    .insert(tags::FINGERPRINT.into(), "stale".into());
            },
            |c| vec![c.update_window(PENDING)],
        ),
    ];
    for (case_name, change, want) in cases {
        let mut case = converged();
        change(&mut case);
        assert_eq!(case.operations(), want(&case), "{case_name}");
    }
}

#[test]
fn objects_of_others_are_never_touched() {
    let mut case = converged();
    case.observed = Observed::default();
    // A look-alike with our exact name but no tags, and the same for another cluster.
    let mut other_cluster =
        mk_foreign_baseline("pb-other", WINDOWS_BASELINE, OperatingSystem::Windows);
    other_cluster.tags = owned_tags(&Settings::new("other-cluster"), &policy("early"), "x");
    let mut other_window = mk_foreign_window("mw-other", MONTHLY);
    other_window.tags = other_cluster.tags.clone();
    case.observed.baselines = vec![
        mk_foreign_baseline("pb-lookalike", WINDOWS_BASELINE, OperatingSystem::Windows),
        other_cluster,
    ];
    case.observed.windows = vec![mk_foreign_window("mw-lookalike", MONTHLY), other_window];
    // Their registrations are theirs too (of other groups).
    case.observed.registrations = vec![
        mk_registration("theirs", OperatingSystem::Windows, "pb-lookalike"),
        mk_registration("other", OperatingSystem::Windows, "pb-other"),
    ];

    let operations = case.operations();
    let text = format!("{operations:?}");
    for id in ["pb-lookalike", "pb-other", "mw-lookalike", "mw-other"] {
        assert!(!text.contains(id), "{id} touched: {text}");
    }
    let creates = operations
        .iter()
        .filter(|op| {
            matches!(
                op,
                Operation::CreateBaseline { .. } | Operation::CreateWindow { .. }
            )
        })
        .count();
    assert_eq!(creates, 3, "ours are created beside them");
}

#[test]
fn an_empty_cluster_id_owns_nothing() {
    let mut case = converged();
    for b in &mut case.observed.baselines {
        b.tags.insert(tags::CLUSTER.into(), String::new());
    }
    case.settings = Settings::default();
    case.desired = Desired::default();
    assert_eq!(case.operations(), [], "nothing deleted");
}

#[test]
fn a_group_registered_to_a_baseline_not_ours_is_left_and_reported() {
    let mut case = converged();
    case.observed
        .registrations
        .retain(|r| r.operating_system != OperatingSystem::Windows);
    case.observed.baselines.push(mk_foreign_baseline(
        "pb-customer",
        "customer-windows",
        OperatingSystem::Windows,
    ));
    case.observed.registrations.push(mk_registration(
        "early",
        OperatingSystem::Windows,
        "pb-customer",
    ));

    let diff = case.diff();
    assert_eq!(diff.operations, [], "neither moved nor registered twice");
    assert_eq!(
        diff.registered_elsewhere,
        [RegisteredElsewhere {
            policy: policy("early"),
            baseline: WINDOWS_BASELINE.into(),
            operating_system: OperatingSystem::Windows,
            patch_group: "early".into(),
            registered_to: "pb-customer".into(),
        }]
    );
    assert_eq!(diff.problems.len(), 1);
    assert_eq!(diff.problems[0].reason, "PatchGroupRegisteredElsewhere");
    assert_eq!(
        diff.problems[0].message,
        "patch group \"early\" is registered for WINDOWS to baseline pb-customer, which \
         patchfleet does not own, so it is not registered to \
         patchfleet-patching-early-windows (PatchPolicy PatchPolicy/patching/early): \
         deregister it there to hand it over"
    );
}

#[test]
fn a_group_moving_between_owned_baselines_is_deregistered_first() {
    // The group followed policy `late` before; its baselines are still there.
    let mut case = converged();
    let late = policy("late");
    let mut old = case.observed.baselines[1].clone();
    old.id = "pb-late-windows".into();
    old.name = "patchfleet-patching-late-windows".into();
    old.tags = owned_tags(&case.settings, &late, "f");
    case.observed.baselines.push(old);
    case.observed
        .registrations
        .retain(|r| r.operating_system != OperatingSystem::Windows);
    case.observed.registrations.push(mk_registration(
        "early",
        OperatingSystem::Windows,
        "pb-late-windows",
    ));

    assert_eq!(
        case.operations(),
        [
            deregister("pb-late-windows", "early"),
            register(ObjectRef::Id(windows_id()), "early"),
            Operation::DeleteBaseline {
                id: "pb-late-windows".into(),
                name: "patchfleet-patching-late-windows".into(),
            },
        ]
    );
}

#[test]
fn stale_registrations_on_owned_baselines_are_removed_unless_orphaned() {
    let mut case = converged();
    case.observed.registrations.push(mk_registration(
        "left-over",
        OperatingSystem::Windows,
        &windows_id(),
    ));
    case.observed.registrations.push(mk_registration(
        "kept-by-orphan",
        OperatingSystem::Windows,
        &windows_id(),
    ));
    case.orphaned.patch_groups.insert("kept-by-orphan".into());
    assert_eq!(case.operations(), [deregister(&windows_id(), "left-over")]);
}

#[test]
fn an_owned_baseline_no_longer_desired_is_emptied_then_deleted() {
    let mut case = converged();
    case.desired.baselines.remove(WINDOWS_BASELINE);
    // Even the registration of an orphaned group goes: SSM keeps no baseline with groups.
    case.observed.registrations.push(mk_registration(
        "orphaned-group",
        OperatingSystem::Windows,
        &windows_id(),
    ));
    case.orphaned.patch_groups.insert("orphaned-group".into());
    assert_eq!(
        case.operations(),
        [
            deregister(&windows_id(), "early"),
            deregister(&windows_id(), "orphaned-group"),
            Operation::DeleteBaseline {
                id: windows_id(),
                name: WINDOWS_BASELINE.into(),
            },
        ]
    );
}

#[test]
fn orphaned_owners_are_released_not_deleted() {
    let mut case = converged();
    case.desired = Desired::default();
    case.orphaned.owners = BTreeSet::from([
        policy("early"),
        Owner::new(OwnerKind::MaintenanceWindow, NS, "monthly"),
    ]);
    assert_eq!(
        case.operations(),
        [
            Operation::ReleaseWindow { id: window_id(0) },
            Operation::ReleaseBaseline { id: al2_id() },
            Operation::ReleaseBaseline { id: windows_id() },
        ],
        "released with their registrations"
    );

    case.orphaned = Orphaned::default();
    assert_eq!(
        case.operations(),
        [
            deregister(&al2_id(), "early"),
            deregister(&windows_id(), "early"),
            Operation::DeleteWindow {
                id: window_id(0),
                name: MONTHLY.into(),
            },
            Operation::DeleteBaseline {
                id: al2_id(),
                name: AL2_BASELINE.into(),
            },
            Operation::DeleteBaseline {
                id: windows_id(),
                name: WINDOWS_BASELINE.into(),
            },
        ],
        "without Orphan: deleted"
    );
}

#[test]
fn held_windows_are_left_exactly_as_they_are() {
    let mut case = converged();
    case.desired.windows.clear();
    case.desired
        .held
        .insert(Owner::new(OwnerKind::MaintenanceWindow, NS, "monthly"));
    case.observed.windows[0].targets = Some(vec![]);
    assert_eq!(case.operations(), []);
}

#[test]
fn of_two_owned_namesakes_the_lowest_id_is_kept() {
    let mut case = converged();
    let mut twin = case.observed.baselines[1].clone();
    twin.id = "pb-zzz".into();
    case.observed.baselines.push(twin);
    case.observed
        .registrations
        .push(mk_registration("stray", OperatingSystem::Windows, "pb-zzz"));
    let mut twin_window = case.observed.windows[0].clone();
    twin_window.id = "mw-zzz".into();
    case.observed.windows.push(twin_window);
    assert_eq!(
        case.operations(),
        [
            deregister("pb-zzz", "stray"),
            Operation::DeleteWindow {
                id: "mw-zzz".into(),
                name: MONTHLY.into(),
            },
            Operation::DeleteBaseline {
                id: "pb-zzz".into(),
                name: WINDOWS_BASELINE.into(),
            },
        ]
    );
}

#[test]
fn an_owned_baseline_of_another_operating_system_is_replaced() {
    let mut case = converged();
    case.observed.baselines[1].operating_system = OperatingSystem::Ubuntu;
    case.observed
        .registrations
        .retain(|r| r.baseline_id != windows_id());
    case.observed.registrations.push(mk_registration(
        "early",
        OperatingSystem::Ubuntu,
        &windows_id(),
    ));
    assert_eq!(
        case.operations(),
        [
            Operation::CreateBaseline {
                baseline: case.desired.baselines[WINDOWS_BASELINE].clone(),
                fingerprint: case.baseline_fp(WINDOWS_BASELINE),
            },
            register(ObjectRef::Created(WINDOWS_BASELINE.into()), "early"),
            deregister(&windows_id(), "early"),
            Operation::DeleteBaseline {
                id: windows_id(),
                name: WINDOWS_BASELINE.into(),
            },
        ]
    );
}

#[test]
fn a_new_policy_and_a_removed_window_follow_the_safe_order() {
    // Every step at once: a new baseline with its group that becomes a default, a changed
    // window (targets and tasks), a stale registration, a window and a baseline (a
    // default) to delete.
    let mut case = converged();
    let mut extra = case.desired.baselines[AL2_BASELINE].clone();
    extra.name = "patchfleet-patching-early-ubuntu".into();
    Arc::make_mut(&mut extra.definition).operating_system = OperatingSystem::Ubuntu;
    case.desired
        .defaults
        .insert(OperatingSystem::Ubuntu, extra.name.clone());
    case.desired.baselines.insert(extra.name.clone(), extra);
    case.desired.baselines.remove(WINDOWS_BASELINE);
    // The Windows baseline going away is the default for Windows: AWS's comes back first.
    let windows = case
        .observed
        .baselines
        .iter_mut()
        .find(|b| b.name == WINDOWS_BASELINE)
        .expect("observed");
    windows.default = true;
    let window = case.desired.windows.get_mut(MONTHLY).expect("desired");
    window
        .targets
        .insert("pg-new".into(), window.targets["pg-early"].clone());
    window.tasks.remove("scan");
    for task in window.tasks.values_mut() {
        task.targets = BTreeSet::from(["pg-new".into()]);
    }
    window.targets.remove("pg-early");
    window.definition.duration = 5;
    let mut gone = case.observed.windows[0].clone();
    gone.id = "mw-gone".into();
    gone.name = "patchfleet-patching-gone".into();
    gone.tags = owned_tags(
        &case.settings,
        &Owner::new(OwnerKind::MaintenanceWindow, NS, "gone"),
        "f",
    );
    case.observed.windows.push(gone);

    let kinds: Vec<&str> = case.operations().iter().map(kind).collect();
    assert_eq!(
        kinds,
        [
            "CreateBaseline",
            "RegisterPatchGroup",
            "RegisterDefaultBaseline",
            "RestoreDefaultBaseline",
            "UpdateWindow",
            "RegisterTarget",
            "UpdateTask",
            "DeregisterTask",
            "DeregisterTarget",
            "DeregisterPatchGroup",
            "DeleteWindow",
            "DeleteBaseline",
        ]
    );
}

fn kind(op: &Operation) -> &'static str {
    match op {
        Operation::CreateBaseline { .. } => "CreateBaseline",
        Operation::UpdateBaseline { .. } => "UpdateBaseline",
        Operation::DeleteBaseline { .. } => "DeleteBaseline",
        Operation::RegisterPatchGroup { .. } => "RegisterPatchGroup",
        Operation::DeregisterPatchGroup { .. } => "DeregisterPatchGroup",
        Operation::CreateWindow { .. } => "CreateWindow",
        Operation::UpdateWindow { .. } => "UpdateWindow",
        Operation::DeleteWindow { .. } => "DeleteWindow",
        Operation::RegisterTarget { .. } => "RegisterTarget",
        Operation::UpdateTarget { .. } => "UpdateTarget",
        Operation::DeregisterTarget { .. } => "DeregisterTarget",
        Operation::RegisterTask { .. } => "RegisterTask",
        Operation::UpdateTask { .. } => "UpdateTask",
        Operation::DeregisterTask { .. } => "DeregisterTask",
        Operation::ReleaseBaseline { .. } => "ReleaseBaseline",
        Operation::ReleaseWindow { .. } => "ReleaseWindow",
        Operation::RegisterDefaultBaseline { .. } => "RegisterDefaultBaseline",
        Operation::RestoreDefaultBaseline { .. } => "RestoreDefaultBaseline",
    }
}

#[test]
fn unknown_owner_tags_are_deleted_not_released() {
    let mut case = converged();
    case.desired.windows.clear();
    case.observed.windows[0]
        .tags
        .insert(tags::OWNER.into(), "garbage".into());
    case.orphaned
        .owners
        .insert(Owner::new(OwnerKind::MaintenanceWindow, NS, "monthly"));
    assert_eq!(
        case.operations(),
        [Operation::DeleteWindow {
            id: window_id(0),
            name: MONTHLY.into(),
        }]
    );
}

#[test]
fn owner_tags_read_back() {
    let cases: [(&str, Option<Owner>); 6] = [
        (
            "PatchGroup/patching/early",
            Some(Owner::new(OwnerKind::PatchGroup, NS, "early")),
        ),
        (
            "MaintenanceWindow/a/b.c",
            Some(Owner::new(OwnerKind::MaintenanceWindow, "a", "b.c")),
        ),
        ("Secret/a/b", None),
        ("PatchPolicy/a", None),
        ("PatchPolicy//b", None),
        ("PatchPolicy/a/b/c", None),
    ];
    for (tag, want) in cases {
        assert_eq!(Owner::parse(tag), want, "{tag}");
        if let Some(owner) = want {
            assert_eq!(owner.to_string(), tag, "round trip");
        }
    }
}
