//! Apply operations, observe them back.

use patchfleet_api::v1alpha1::{ComplianceLevel, OperatingSystem, PatchOperation};
use patchfleet_planner::model::{ObjectRef, Observed, ObservedWindow, Operation, TaskAction, tags};
use patchfleet_ssm::{ErrorKind, Fingerprints, Outcome, SsmClient, apply, observe};

use crate::common::*;

async fn observe_deep(client: &SsmClient, fps: &Fingerprints) -> Observed {
    observe(client, CLUSTER, fps, true)
        .await
        .expect("observe")
        .observed
}

fn window<'a>(observed: &'a Observed, name: &str) -> &'a ObservedWindow {
    observed
        .windows
        .iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("window {name} observed"))
}

#[tokio::test]
async fn an_empty_account_observes_empty() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let seen = observe(&client, CLUSTER, &Fingerprints::default(), true)
        .await
        .expect("observe");
    assert_eq!(seen.observed, Observed::default());
    // DescribePatchBaselines, DescribePatchGroups, DescribeMaintenanceWindows.
    assert_eq!(seen.calls, 3);
}

fn small_state() -> (
    Vec<patchfleet_planner::model::DesiredBaseline>,
    Vec<patchfleet_planner::model::DesiredWindow>,
) {
    let baselines = vec![
        desired_baseline(
            "early",
            baseline_spec(OperatingSystem::Windows, 0),
            &["early"],
        ),
        desired_baseline(
            "early",
            baseline_spec(OperatingSystem::AmazonLinux2, 0),
            &["early", "canary"],
        ),
    ];
    let windows = vec![desired_window(
        "monthly",
        window_definition("cron(0 2 ? * SUN#2 *)", 4, 1),
        &["early", "canary"],
        vec![
            (
                "scan",
                run_patch_baseline(PatchOperation::Scan, &["early", "canary"], 1),
            ),
            ("install", snapshot_then_patch(&["early"], 2)),
        ],
    )];
    (baselines, windows)
}

#[tokio::test]
async fn applied_state_observes_back_equal() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let (baselines, windows) = small_state();
    let ops = create_all(&baselines, &windows);
    let report = apply(&client, CLUSTER, &ops).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(report.applied.len(), ops.len());
    assert!(matches!(report.applied[0].outcome, Outcome::Created { .. }));

    let fps = fingerprints(&baselines, &windows, 1);
    let seen = observe_deep(&client, &fps).await;
    assert_eq!(seen.baselines.len(), 2);
    for want in &baselines {
        let got = seen
            .baselines
            .iter()
            .find(|b| b.name == want.name)
            .expect("baseline observed");
        assert_eq!(got.operating_system, want.operating_system());
        assert_eq!(
            got.definition.as_ref(),
            Some(&*want.definition),
            "{}",
            want.name
        );
        assert_eq!(
            got.tags.get(tags::CLUSTER).map(String::as_str),
            Some(CLUSTER)
        );
        assert_eq!(got.tags.get(tags::OWNER), Some(&want.owner.to_string()));
        assert_eq!(
            got.tags.get(tags::FINGERPRINT),
            fps.baselines.get(&want.name)
        );
        for group in &want.patch_groups {
            assert!(
                seen.registrations.iter().any(|r| r.patch_group == *group
                    && r.baseline_id == got.id
                    && r.operating_system == want.operating_system()),
                "{group} registered to {}",
                want.name
            );
        }
    }
    assert_eq!(seen.registrations.len(), 3);

    let want = &windows[0];
    let got = window(&seen, &want.name);
    assert_eq!(got.definition.as_ref(), Some(&want.definition));
    assert_eq!(got.tags.get(tags::FINGERPRINT), fps.windows.get(&want.name));
    let targets = got.targets.as_ref().expect("targets read");
    assert_eq!(targets.len(), want.targets.len());
    for t in targets {
        let name = t.name.as_ref().expect("target name");
        assert_eq!(Some(&t.definition), want.targets.get(name));
    }
    let tasks = got.tasks.as_ref().expect("tasks read");
    assert_eq!(tasks.len(), want.tasks.len());
    for t in tasks {
        let name = t.name.as_ref().expect("task name");
        assert_eq!(Some(&t.definition), want.tasks.get(name), "task {name}");
    }
}

#[tokio::test]
async fn updates_keep_ids_and_deletes_are_idempotent() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let (baselines, windows) = small_state();
    let report = apply(&client, CLUSTER, &create_all(&baselines, &windows)).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    let before = observe_deep(&client, &fingerprints(&baselines, &windows, 1)).await;

    // Change everything in place.
    let mut baseline = baselines[1].clone();
    let definition = std::sync::Arc::make_mut(&mut baseline.definition);
    definition.approval_rules[0].approve_after_days = Some(3);
    definition.approved_patches = vec!["openssl-1.0.2k".into()];
    definition.approved_patches_compliance_level = ComplianceLevel::Low;
    definition.description = Some("changed".into());
    let baseline_id = before
        .baselines
        .iter()
        .find(|b| b.name == baseline.name)
        .expect("observed")
        .id
        .clone();
    let mut desired_window = windows[0].clone();
    desired_window.definition.duration = 5;
    desired_window.definition.description = None;
    desired_window.definition.enabled = false;
    let observed_window = window(&before, &desired_window.name);
    let target = observed_window
        .targets
        .as_ref()
        .expect("targets")
        .iter()
        .find(|t| t.name.as_deref() == Some("canary"))
        .expect("canary target")
        .clone();
    let task = observed_window
        .tasks
        .as_ref()
        .expect("tasks")
        .iter()
        .find(|t| t.name.as_deref() == Some("scan"))
        .expect("scan task")
        .clone();
    let mut new_target = target.definition.clone();
    new_target.owner_information = "PatchGroup/patching/canary-2".into();
    let mut new_task = task.definition.clone();
    new_task.action = TaskAction::RunPatchBaseline {
        operation: PatchOperation::Install,
        reboot_option: patchfleet_api::v1alpha1::RebootOption::NoReboot,
    };
    new_task.targets = ["canary".to_owned()].into();
    new_task.max_errors = "0".into();
    let ops = vec![
        Operation::UpdateBaseline {
            id: baseline_id.clone(),
            baseline: baseline.clone(),
            fingerprint: fingerprint_of(&baseline.name, 2),
        },
        Operation::UpdateWindow {
            id: observed_window.id.clone(),
            window: desired_window.clone(),
            fingerprint: fingerprint_of(&desired_window.name, 2),
        },
        Operation::UpdateTarget {
            window_id: observed_window.id.clone(),
            target_id: target.id.clone(),
            name: "canary".into(),
            target: new_target.clone(),
        },
        Operation::UpdateTask {
            window_id: observed_window.id.clone(),
            task_id: task.id.clone(),
            name: "scan".into(),
            task: new_task.clone(),
        },
    ];
    let report = apply(&client, CLUSTER, &ops).await;
    assert!(report.error.is_none(), "{:?}", report.error);

    let after = observe_deep(&client, &fingerprints(&baselines, &windows, 2)).await;
    let b = after
        .baselines
        .iter()
        .find(|b| b.id == baseline_id)
        .expect("same id");
    assert_eq!(b.definition.as_ref(), Some(&*baseline.definition));
    assert_eq!(
        b.tags.get(tags::FINGERPRINT),
        Some(&fingerprint_of(&baseline.name, 2))
    );
    let w = window(&after, &desired_window.name);
    assert_eq!(w.id, observed_window.id);
    assert_eq!(w.definition.as_ref(), Some(&desired_window.definition));
    let t = w
        .targets
        .as_ref()
        .expect("targets")
        .iter()
        .find(|t| t.id == target.id)
        .expect("same target id");
    assert_eq!(t.definition, new_target);
    let k = w
        .tasks
        .as_ref()
        .expect("tasks")
        .iter()
        .find(|t| t.id == task.id)
        .expect("same task id");
    assert_eq!(k.definition, new_task);

    // Tear down in plan order, twice: the second time everything is already gone.
    let mut teardown = Vec::new();
    for t in w.tasks.as_ref().expect("tasks") {
        teardown.push(Operation::DeregisterTask {
            window_id: w.id.clone(),
            task_id: t.id.clone(),
        });
    }
    for t in w.targets.as_ref().expect("targets") {
        teardown.push(Operation::DeregisterTarget {
            window_id: w.id.clone(),
            target_id: t.id.clone(),
        });
    }
    teardown.push(Operation::DeleteWindow {
        id: w.id.clone(),
        name: w.name.clone(),
    });
    for r in &after.registrations {
        teardown.push(Operation::DeregisterPatchGroup {
            baseline_id: r.baseline_id.clone(),
            patch_group: r.patch_group.clone(),
        });
    }
    for b in &after.baselines {
        teardown.push(Operation::DeleteBaseline {
            id: b.id.clone(),
            name: b.name.clone(),
        });
    }
    let report = apply(&client, CLUSTER, &teardown).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    assert!(report.applied.iter().all(|a| a.outcome == Outcome::Done));
    assert_eq!(
        observe_deep(&client, &Fingerprints::default()).await,
        Observed::default()
    );

    let again = apply(&client, CLUSTER, &teardown).await;
    assert!(again.error.is_none(), "{:?}", again.error);
    let gone = again
        .applied
        .iter()
        .filter(|a| a.outcome == Outcome::AlreadyGone)
        .count();
    // DeletePatchBaseline and DeleteMaintenanceWindow succeed on absent ids (their API
    // reference lists no DoesNotExistException); the deregistrations answer it.
    assert!(gone >= teardown.len() - 3, "{:?}", again.applied);
}

/// A resource deleted and applied again gets a new uid from the API server: each of ten
/// incarnations of the same spec creates its baseline and window afresh, in one call each,
/// where tokens made of the spec alone ran out after three replays of deleted ids.
#[tokio::test]
async fn a_resource_recreated_ten_times_creates_afresh_each_time() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let (baselines, windows) = small_state();
    let mut seen_ids = std::collections::BTreeSet::new();
    for incarnation in 1..=10 {
        let mut baseline = baselines[0].clone();
        baseline.revision.uid = format!("uid-policy-{incarnation}");
        let mut window = windows[0].clone();
        window.revision.uid = format!("uid-window-{incarnation}");
        let create = vec![
            Operation::CreateBaseline {
                baseline: baseline.clone(),
                fingerprint: fingerprint_of(&baseline.name, 1),
            },
            Operation::CreateWindow {
                window: window.clone(),
                fingerprint: fingerprint_of(&window.name, 1),
            },
        ];
        let made = apply(&client, CLUSTER, &create).await;
        assert!(
            made.error.is_none(),
            "incarnation {incarnation}: {:?}",
            made.error
        );
        let ids: Vec<String> = made
            .applied
            .iter()
            .filter_map(|a| match &a.outcome {
                Outcome::Created { id } => Some(id.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            ids.len(),
            2,
            "incarnation {incarnation}: {:?}",
            made.applied
        );
        let seen = observe_deep(&client, &fingerprints(&baselines, &windows, 1)).await;
        assert_eq!(
            (seen.baselines.len(), seen.windows.len()),
            (1, 1),
            "incarnation {incarnation}: both listed"
        );
        assert!(
            ids.iter().all(|id| seen_ids.insert(id.clone())),
            "incarnation {incarnation}: a new object, not a replayed id: {ids:?}"
        );
        let delete = vec![
            Operation::DeleteBaseline {
                id: ids[0].clone(),
                name: baseline.name.clone(),
            },
            Operation::DeleteWindow {
                id: ids[1].clone(),
                name: window.name.clone(),
            },
        ];
        let deleted = apply(&client, CLUSTER, &delete).await;
        assert!(deleted.error.is_none(), "{:?}", deleted.error);
    }
}

#[tokio::test]
async fn the_same_create_twice_makes_one_object() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let (baselines, windows) = small_state();
    let create = vec![
        Operation::CreateBaseline {
            baseline: baselines[0].clone(),
            fingerprint: fingerprint_of(&baselines[0].name, 1),
        },
        Operation::CreateWindow {
            window: windows[0].clone(),
            fingerprint: fingerprint_of(&windows[0].name, 1),
        },
    ];
    let first = apply(&client, CLUSTER, &create).await;
    // A crash before the ids were recorded: the next pass sends the same creates.
    let second = apply(&client, CLUSTER, &create).await;
    assert!(first.error.is_none() && second.error.is_none());
    assert_eq!(first.applied, second.applied, "same ids");
    let seen = observe_deep(&client, &fingerprints(&baselines, &windows, 1)).await;
    assert_eq!(seen.baselines.len(), 1);
    assert_eq!(seen.windows.len(), 1);

    // Deleted, then wanted again identically: SSM replays the token with the deleted
    // object's id. Nothing reads it back: the next list does not show it, so the next
    // create moves on to a fresh token.
    let Outcome::Created { id: old } = &first.applied[0].outcome else {
        panic!("created: {:?}", first.applied[0]);
    };
    let delete = vec![Operation::DeleteBaseline {
        id: old.clone(),
        name: baselines[0].name.clone(),
    }];
    assert!(apply(&client, CLUSTER, &delete).await.error.is_none());
    let third = apply(&client, CLUSTER, &create[..1]).await;
    assert!(third.error.is_none(), "{:?}", third.error);
    assert_eq!(third.calls, 1, "no read after a create");
    assert_eq!(
        third.applied[0].outcome,
        Outcome::Created { id: old.clone() },
        "the replayed id"
    );
    let seen = observe_deep(&client, &fingerprints(&baselines, &windows, 1)).await;
    assert!(seen.baselines.is_empty(), "not listed");
    let fourth = apply(&client, CLUSTER, &create[..1]).await;
    assert!(fourth.error.is_none(), "{:?}", fourth.error);
    let Outcome::Created { id: new } = &fourth.applied[0].outcome else {
        panic!("created: {:?}", fourth.applied[0]);
    };
    assert_ne!(new, old);
    let seen = observe_deep(&client, &fingerprints(&baselines, &windows, 1)).await;
    assert_eq!(
        seen.baselines.iter().map(|b| &b.id).collect::<Vec<_>>(),
        vec![new]
    );

    // Released, then wanted again identically: the token answers an object the lists
    // show as not ours, so the same create moves on to the next token at once.
    let other = vec![Operation::CreateBaseline {
        baseline: baselines[1].clone(),
        fingerprint: fingerprint_of(&baselines[1].name, 1),
    }];
    let made = apply(&client, CLUSTER, &other).await;
    let Outcome::Created { id: released } = &made.applied[0].outcome else {
        panic!("created: {:?}", made.applied);
    };
    let release = vec![Operation::ReleaseBaseline {
        id: released.clone(),
    }];
    assert!(apply(&client, CLUSTER, &release).await.error.is_none());
    let seen = observe_deep(&client, &fingerprints(&baselines, &windows, 1)).await;
    assert!(
        seen.baselines
            .iter()
            .any(|b| b.id == *released && b.tags.is_empty())
    );
    let again = apply(&client, CLUSTER, &other).await;
    assert!(again.error.is_none(), "{:?}", again.error);
    assert_eq!(again.calls, 2, "the replay, then the next token");
    let Outcome::Created { id: fresh } = &again.applied[0].outcome else {
        panic!("created: {:?}", again.applied);
    };
    assert_ne!(fresh, released, "the released baseline is not claimed");
    let seen = observe_deep(&client, &fingerprints(&baselines, &windows, 1)).await;
    let owned: Vec<&String> = seen
        .baselines
        .iter()
        .filter(|b| !b.tags.is_empty())
        .map(|b| &b.id)
        .collect();
    assert_eq!(owned.len(), 2);
    assert!(owned.contains(&fresh) && owned.contains(&new));
}

#[tokio::test]
async fn a_failure_stops_the_batch() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let (baselines, mut windows) = small_state();
    // Cutoff must be below duration: SSM refuses it, and says so.
    windows[0].definition.cutoff = 4;
    let ops = create_all(&baselines, &windows);
    let report = apply(&client, CLUSTER, &ops).await;
    let err = report.error.as_ref().expect("refused");
    assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
    assert_eq!(err.operation, "CreateMaintenanceWindow");
    assert!(err.message.to_lowercase().contains("cutoff"), "{err}");
    let done = ops
        .iter()
        .position(|o| matches!(o, Operation::CreateWindow { .. }))
        .expect("a window create");
    assert_eq!(report.applied.len(), done, "nothing after the failure ran");

    // A registration against an id that does not exist.
    let ops = vec![Operation::RegisterPatchGroup {
        baseline: ObjectRef::Id("pb-0123456789abcdef0".into()),
        patch_group: "early".into(),
    }];
    let err = apply(&client, CLUSTER, &ops).await.error.expect("fails");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn quota_exceeded_is_classified() {
    let mut config = sim_config();
    config.quotas.patch_baselines = 1;
    let server = start(config).await;
    let (_edge, client) = client_a(&server).await;
    let (baselines, _) = small_state();
    let report = apply(&client, CLUSTER, &create_all(&baselines, &[])).await;
    let err = report.error.expect("second baseline over quota");
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    assert_eq!(err.reason(), "QuotaExceeded");
    assert_eq!(report.applied.len(), 1);
}

#[tokio::test]
async fn release_removes_only_patchfleets_tags() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let (baselines, windows) = small_state();
    let report = apply(&client, CLUSTER, &create_all(&baselines[..1], &windows)).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    let fps = fingerprints(&baselines, &windows, 1);
    let seen = observe_deep(&client, &fps).await;
    let ops = vec![
        Operation::ReleaseBaseline {
            id: seen.baselines[0].id.clone(),
        },
        Operation::ReleaseWindow {
            id: seen.windows[0].id.clone(),
        },
    ];
    let report = apply(&client, CLUSTER, &ops).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    let seen = observe_deep(&client, &fps).await;
    assert!(seen.baselines[0].tags.is_empty());
    assert!(seen.windows[0].tags.is_empty());
    // No longer ours: not deep-read even though a definition is expected under that name.
    assert_eq!(seen.baselines[0].definition, None);
    assert_eq!(seen.windows[0].targets, None);
}

#[tokio::test]
async fn a_task_changing_type_is_replaced() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let (baselines, windows) = small_state();
    let report = apply(&client, CLUSTER, &create_all(&[], &windows)).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    let fps = fingerprints(&baselines, &windows, 1);
    let before = observe_deep(&client, &fps).await;
    let w = window(&before, &windows[0].name);
    let install = w
        .tasks
        .as_ref()
        .expect("tasks")
        .iter()
        .find(|t| t.name.as_deref() == Some("install"))
        .expect("install task")
        .clone();
    // snapshotBeforePatch turned off: Automation -> RunPatchBaseline.
    let plain = run_patch_baseline(PatchOperation::Install, &["early"], 2);
    let ops = vec![Operation::UpdateTask {
        window_id: w.id.clone(),
        task_id: install.id.clone(),
        name: "install".into(),
        task: plain.clone(),
    }];
    let report = apply(&client, CLUSTER, &ops).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    assert!(
        matches!(&report.applied[0].outcome, Outcome::Replaced { id } if *id != install.id),
        "{:?}",
        report.applied
    );
    let after = observe_deep(&client, &fps).await;
    let tasks = window(&after, &windows[0].name)
        .tasks
        .clone()
        .expect("tasks");
    assert_eq!(tasks.len(), 2);
    let replaced = tasks
        .iter()
        .find(|t| t.name.as_deref() == Some("install"))
        .expect("install task");
    assert_eq!(replaced.definition, plain);
}
