//! Default patch baselines: the account's administrator names a PatchPolicy on the
//! SystemAccount; its baselines become each operating system's default there
//! (RegisterDefaultPatchBaseline), and AWS's predefined ones come back when the field goes
//! or the account is deleted. No tenant resource can set them.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use patchfleet_api::v1alpha1::{DefaultPatchPolicy, OperatingSystem};
use patchfleet_planner::builders::*;
use patchfleet_planner::desired::default_policy;
use patchfleet_planner::model::{Observed, Operation};
use patchfleet_planner::naming::aws_default_baseline;
use patchfleet_planner::{Inventory, desired};

use common::*;

const ADMIN_NS: &str = "fleet-admin";

fn defaults_policy() -> patchfleet_api::v1alpha1::PatchPolicy {
    mk_policy(
        ADMIN_NS,
        "defaults",
        vec![
            mk_baseline(OperatingSystem::Windows, 3),
            mk_baseline(OperatingSystem::Ubuntu, 0),
        ],
    )
}

fn names_defaults(inventory: &mut Inventory, namespace: &str, name: &str) {
    inventory.accounts[0].spec.default_patch_policy = Some(DefaultPatchPolicy {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    });
}

/// The world, plus an administrators' policy no group follows, named by the account.
fn with_defaults() -> Inventory {
    let mut inventory = world();
    inventory.policies.push(defaults_policy());
    names_defaults(&mut inventory, ADMIN_NS, "defaults");
    inventory
}

/// Operating system -> name of this controller's default baseline, as SSM holds it.
fn defaults_in(observed: &Observed) -> BTreeMap<OperatingSystem, String> {
    observed
        .baselines
        .iter()
        .filter(|b| b.default)
        .map(|b| (b.operating_system, b.name.clone()))
        .collect()
}

fn admin_baseline(os: &str) -> String {
    format!("patchfleet-{ADMIN_NS}-defaults-{os}")
}

#[test]
fn the_named_policys_baselines_become_the_defaults_though_no_group_follows_it() {
    let inventory = with_defaults();
    let (want, problems) = desired(&inventory, &mk_settings(), &ar());
    assert_eq!(problems, []);
    assert!(
        want.baselines[&admin_baseline("windows")]
            .patch_groups
            .is_empty()
    );
    let mut ssm = Ssm::new(Observed::default());
    let rounds = converge(&inventory, &mk_settings(), &ar(), &mut ssm, 3);
    assert_eq!(rounds[1..], [0], "converged after one round: {rounds:?}");
    assert_eq!(
        defaults_in(&ssm.state),
        BTreeMap::from([
            (OperatingSystem::Windows, admin_baseline("windows")),
            (OperatingSystem::Ubuntu, admin_baseline("ubuntu")),
        ])
    );
}

#[test]
fn a_policy_followed_by_groups_is_the_same_baseline_registered_and_default() {
    let mut inventory = world();
    names_defaults(&mut inventory, NS, "early");
    let mut ssm = Ssm::new(Observed::default());
    converge(&inventory, &mk_settings(), &ar(), &mut ssm, 3);
    assert_eq!(ssm.state.baselines.len(), 2, "no second copy");
    assert_eq!(
        defaults_in(&ssm.state),
        BTreeMap::from([
            (OperatingSystem::Windows, WINDOWS_BASELINE.to_owned()),
            (OperatingSystem::AmazonLinux2, AL2_BASELINE.to_owned()),
        ])
    );
    assert_eq!(ssm.state.registrations.len(), 2, "still registered");
}

#[test]
fn removing_the_field_or_the_account_gives_back_aws_defaults_before_deleting() {
    type Change = fn(&mut Inventory);
    let cases: [(&str, Change); 3] = [
        ("field removed", |inv| {
            inv.accounts[0].spec.default_patch_policy = None
        }),
        ("account being deleted", |inv| {
            deleting(&mut inv.accounts[0].metadata)
        }),
        ("policy being deleted", |inv| {
            deleting(&mut inv.policies[1].metadata)
        }),
    ];
    for (case, change) in cases {
        let mut inventory = with_defaults();
        let mut ssm = Ssm::new(Observed::default());
        converge(&inventory, &mk_settings(), &ar(), &mut ssm, 3);
        change(&mut inventory);
        let (want, _) = desired(&inventory, &mk_settings(), &ar());
        let observed = ssm.observe(&mk_settings(), &want);
        let plan = patchfleet_planner::plan(
            &inventory,
            &mk_settings(),
            &ar(),
            &observed,
            &Default::default(),
        );
        let restored: BTreeSet<OperatingSystem> = plan
            .operations
            .iter()
            .filter_map(|s| match s.operation {
                Operation::RestoreDefaultBaseline {
                    operating_system, ..
                } => Some(operating_system),
                _ => None,
            })
            .collect();
        assert_eq!(
            restored,
            BTreeSet::from([OperatingSystem::Windows, OperatingSystem::Ubuntu]),
            "{case}"
        );
        // The Events go to the policy whose baselines they were.
        assert!(
            plan.operations
                .iter()
                .filter(|s| s.verb == "Restored")
                .all(|s| s.owner.as_ref().map(|o| o.namespace.as_str()) == Some(ADMIN_NS)),
            "{case}"
        );
        converge(&inventory, &mk_settings(), &ar(), &mut ssm, 3);
        assert_eq!(defaults_in(&ssm.state), BTreeMap::new(), "{case}");
        assert!(
            !ssm.state
                .baselines
                .iter()
                .any(|b| b.name.contains(ADMIN_NS)),
            "{case}: the administrators' baselines are deleted once not default"
        );
    }
}

#[test]
fn a_missing_policy_sets_no_default_and_says_which_field() {
    let mut inventory = world();
    names_defaults(&mut inventory, ADMIN_NS, "typo");
    let account = inventory.accounts[0].clone();
    let message = default_policy(&inventory, &account).expect_err("missing");
    assert!(
        message.starts_with("spec.defaultPatchPolicy: PatchPolicy fleet-admin/typo not found"),
        "{message}"
    );
    let (want, _) = desired(&inventory, &mk_settings(), &ar());
    assert_eq!(want.defaults, BTreeMap::new());

    inventory.accounts[0].spec.default_patch_policy = None;
    let account = inventory.accounts[0].clone();
    assert!(matches!(default_policy(&inventory, &account), Ok(None)));
}

#[test]
fn the_policys_namespace_needs_no_admission_and_tenants_cannot_set_defaults() {
    let mut inventory = with_defaults();
    // The account admits only the tenant namespace, not the administrators'.
    inventory.accounts[0].spec.namespace_selector =
        Some(match_labels(&[("kubernetes.io/metadata.name", NS)]));
    let (want, problems) = desired(&inventory, &mk_settings(), &ar());
    assert_eq!(problems, []);
    assert_eq!(
        want.defaults,
        BTreeMap::from([
            (OperatingSystem::Windows, admin_baseline("windows")),
            (OperatingSystem::Ubuntu, admin_baseline("ubuntu")),
        ]),
        "only the policy the account names: the tenant's own baselines are not defaults"
    );
}

#[test]
fn a_customers_own_default_is_replaced_only_when_a_policy_is_named() {
    let mut customer = mk_foreign_baseline("pb-customer", "customer", OperatingSystem::Windows);
    customer.default = true;
    let observed = Observed {
        baselines: vec![customer],
        ..Observed::default()
    };
    // No field: the customer's default is left alone.
    let mut ssm = Ssm::new(observed.clone());
    converge(&world(), &mk_settings(), &ar(), &mut ssm, 3);
    assert!(
        ssm.state
            .baselines
            .iter()
            .any(|b| b.id == "pb-customer" && b.default)
    );

    let mut ssm = Ssm::new(observed);
    converge(&with_defaults(), &mk_settings(), &ar(), &mut ssm, 3);
    assert!(
        ssm.state
            .baselines
            .iter()
            .any(|b| b.id == "pb-customer" && !b.default)
    );
    assert_eq!(
        defaults_in(&ssm.state).get(&OperatingSystem::Windows),
        Some(&admin_baseline("windows"))
    );
}

#[test]
fn a_suspended_account_changes_no_default() {
    let mut inventory = with_defaults();
    inventory.accounts[0].spec.suspend = true;
    let mut ssm = Ssm::new(Observed::default());
    assert_eq!(
        converge(&inventory, &mk_settings(), &ar(), &mut ssm, 2),
        [0]
    );
}

#[test]
fn every_operating_system_has_an_aws_default_to_give_back() {
    for os in OperatingSystem::ALL {
        let name = aws_default_baseline(os);
        assert!(
            name.starts_with("AWS-") && name.ends_with("PatchBaseline"),
            "{os:?}"
        );
    }
}
