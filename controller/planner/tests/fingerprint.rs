//! Fingerprints: the same for the same intent in any run or order, different when
//! anything that would be written changes.

mod common;

use patchfleet_api::v1alpha1::{ComplianceLevel, PatchOperation, RebootOption};
use patchfleet_planner::builders::*;
use patchfleet_planner::model::{Desired, TaskAction};
use patchfleet_planner::{baseline_fingerprint, desired, window_fingerprint};

use common::*;

fn world_desired() -> Desired {
    desired(&world(), &mk_settings(), &ar()).0
}

#[test]
fn fingerprints_of_a_fixed_input_never_change() {
    // Changing these values means every object in every account is rewritten once:
    // bump fingerprint::SCHEME when that is intended.
    let desired = world_desired();
    assert_eq!(
        baseline_fingerprint(&desired.baselines[WINDOWS_BASELINE]),
        "45926050f03268ba"
    );
    assert_eq!(
        baseline_fingerprint(&desired.baselines[AL2_BASELINE]),
        "f482a70f59949aaf"
    );
    assert_eq!(
        window_fingerprint(&desired.windows[MONTHLY]),
        "141effd9ffa3091f"
    );
}

#[test]
fn fingerprints_follow_intent_not_input_order() {
    let mut inventory = world();
    let rule = &mut inventory.policies[0].spec.baselines[0].approval_rules[0];
    rule.patch_filters[0].values.reverse();
    inventory.policies[0].spec.baselines.reverse();
    let reordered = desired(&inventory, &mk_settings(), &ar()).0;
    let original = world_desired();
    for name in [WINDOWS_BASELINE, AL2_BASELINE] {
        assert_eq!(
            baseline_fingerprint(&reordered.baselines[name]),
            baseline_fingerprint(&original.baselines[name]),
            "{name}"
        );
    }
}

#[test]
fn a_baseline_fingerprint_covers_its_definition_only() {
    let original = world_desired().baselines[WINDOWS_BASELINE].clone();
    let fp = baseline_fingerprint(&original);

    let mut registered = original.clone();
    registered.patch_groups.insert("another".into());
    assert_eq!(
        baseline_fingerprint(&registered),
        fp,
        "registrations are listed, not hashed"
    );

    type Change = fn(&mut patchfleet_api::v1alpha1::BaselineSpec);
    let changes: [(&str, Change); 7] = [
        ("approval delay", |d| {
            d.approval_rules[0].approve_after_days = Some(1)
        }),
        ("compliance", |d| {
            d.approval_rules[0].compliance_level = ComplianceLevel::High
        }),
        ("filter value", |d| {
            d.approval_rules[0].patch_filters[0].values.push("X".into())
        }),
        ("rule removed", |d| d.approval_rules.clear()),
        ("approved patch", |d| d.approved_patches.push("KB1".into())),
        ("rejected patch", |d| d.rejected_patches.push("KB2".into())),
        ("description", |d| d.description = Some("other".into())),
    ];
    for (what, change) in changes {
        let mut changed = original.clone();
        change(std::sync::Arc::make_mut(&mut changed.definition));
        assert_ne!(baseline_fingerprint(&changed), fp, "{what}");
    }
}

#[test]
fn a_window_fingerprint_covers_definition_targets_and_tasks() {
    let original = world_desired().windows[MONTHLY].clone();
    let fp = window_fingerprint(&original);
    type Change = fn(&mut patchfleet_planner::model::DesiredWindow);
    let changes: [(&str, Change); 11] = [
        ("schedule", |w| w.definition.schedule = "rate(1 day)".into()),
        ("time zone", |w| w.definition.schedule_timezone = None),
        ("duration", |w| w.definition.duration = 5),
        ("cutoff", |w| w.definition.cutoff = 0),
        ("enabled", |w| w.definition.enabled = false),
        ("target tag value", |w| {
            w.targets
                .values_mut()
                .for_each(|t| t.patch_group = "other".into())
        }),
        ("target added", |w| {
            let t = w.targets["pg-early"].clone();
            w.targets.insert("pg-web".into(), t);
        }),
        ("task max errors", |w| {
            w.tasks.values_mut().for_each(|t| t.max_errors = "2".into())
        }),
        ("task reboot", |w| {
            w.tasks.values_mut().for_each(|t| {
                t.action = TaskAction::RunPatchBaseline {
                    operation: PatchOperation::Install,
                    reboot_option: RebootOption::NoReboot,
                }
            })
        }),
        ("task targets", |w| {
            w.tasks.values_mut().for_each(|t| t.targets.clear())
        }),
        ("task removed", |w| {
            w.tasks.remove("scan");
        }),
    ];
    for (what, change) in changes {
        let mut changed = original.clone();
        change(&mut changed);
        assert_ne!(window_fingerprint(&changed), fp, "{what}");
    }
}
