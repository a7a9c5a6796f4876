//! Label selectors and which account-regions a resource reaches.

mod common;

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use patchfleet_planner::builders::*;
use patchfleet_planner::model::{Owner, OwnerKind};
use patchfleet_planner::selection::{Reach, reach, selector_matches};
use patchfleet_planner::{account_regions, reached_by};

use common::*;

fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.to_owned(),
        operator: operator.to_owned(),
        values: Some(strings(values)),
    }
}

#[test]
fn selectors_follow_kubernetes_semantics() {
    let empty = LabelSelector::default();
    let both = LabelSelector {
        match_labels: Some(labels(&[("tier", "web")])),
        match_expressions: Some(vec![requirement("env", "In", &["prod"])]),
    };
    type Labels<'a> = &'a [(&'a str, &'a str)];
    let cases: Vec<(&str, LabelSelector, Labels, bool)> = vec![
        ("empty selects everything", empty.clone(), &[], true),
        ("empty selects labelled", empty, &[("a", "1")], true),
        (
            "matchLabels hit",
            match_labels(&[("a", "1")]),
            &[("a", "1"), ("b", "2")],
            true,
        ),
        (
            "matchLabels other value",
            match_labels(&[("a", "1")]),
            &[("a", "2")],
            false,
        ),
        (
            "matchLabels absent",
            match_labels(&[("a", "1")]),
            &[],
            false,
        ),
        (
            "In hit",
            match_expression("a", "In", &["1", "2"]),
            &[("a", "2")],
            true,
        ),
        (
            "In miss",
            match_expression("a", "In", &["1", "2"]),
            &[("a", "3")],
            false,
        ),
        ("In absent", match_expression("a", "In", &["1"]), &[], false),
        (
            "NotIn other",
            match_expression("a", "NotIn", &["1"]),
            &[("a", "2")],
            true,
        ),
        (
            "NotIn absent",
            match_expression("a", "NotIn", &["1"]),
            &[],
            true,
        ),
        (
            "NotIn hit",
            match_expression("a", "NotIn", &["1"]),
            &[("a", "1")],
            false,
        ),
        (
            "Exists",
            match_expression("a", "Exists", &[]),
            &[("a", "")],
            true,
        ),
        (
            "Exists absent",
            match_expression("a", "Exists", &[]),
            &[],
            false,
        ),
        (
            "DoesNotExist",
            match_expression("a", "DoesNotExist", &[]),
            &[],
            true,
        ),
        (
            "DoesNotExist present",
            match_expression("a", "DoesNotExist", &[]),
            &[("a", "x")],
            false,
        ),
        (
            "both hold",
            both.clone(),
            &[("tier", "web"), ("env", "prod")],
            true,
        ),
        (
            "labels hold, expression not",
            both.clone(),
            &[("tier", "web"), ("env", "dev")],
            false,
        ),
        (
            "expression holds, labels not",
            both,
            &[("tier", "db"), ("env", "prod")],
            false,
        ),
    ];
    for (case, selector, pairs, want) in cases {
        assert_eq!(
            selector_matches(&selector, &labels(pairs)),
            Ok(want),
            "{case}"
        );
    }
}

#[test]
fn invalid_selectors_are_errors_naming_the_field() {
    let cases = [
        (
            match_expression("a", "Gt", &["1"]),
            "matchExpressions[0].operator",
        ),
        (
            match_expression("a", "In", &[]),
            "matchExpressions[0].values: must be non-empty",
        ),
        (
            match_expression("a", "NotIn", &[]),
            "matchExpressions[0].values: must be non-empty",
        ),
        (
            LabelSelector {
                match_labels: None,
                match_expressions: Some(vec![requirement("a", "Exists", &["x"])]),
            },
            "matchExpressions[0].values: must be empty",
        ),
        (
            match_expression("", "Exists", &[]),
            "matchExpressions[0].key",
        ),
    ];
    for (selector, want) in cases {
        let got = selector_matches(&selector, &labels(&[("a", "1")]));
        let err = got.expect_err("invalid selector");
        assert!(err.starts_with(want), "{err:?} should start with {want:?}");
    }
}

#[test]
fn reach_of_a_group_in_one_account_region() {
    let cases: Vec<(&str, Change, &str, Reach)> = vec![
        ("selected", |_| {}, "eu-west-1", Reach::Reached),
        ("other region of the account", |_| {}, "us-east-1", Reach::Reached),
        ("region not the account's", |_| {}, "ap-south-1", Reach::NotSelected),
        ("suspended account", |inv| inv.accounts[0].spec.suspend = true, "eu-west-1", Reach::NotSelected),
        ("account being deleted", |inv| deleting(&mut inv.accounts[0].metadata), "eu-west-1", Reach::NotSelected),
        (
            "labels do not match",
            |inv| inv.groups[0].spec.account_selector = match_labels(&[("managed", "false")]),
            "eu-west-1",
            Reach::NotSelected,
        ),
        (
            "group limited to another region",
            |inv| inv.groups[0].spec.regions = Some(strings(&["us-east-1"])),
            "eu-west-1",
            Reach::NotSelected,
        ),
        (
            "group limited to this region",
            |inv| inv.groups[0].spec.regions = Some(strings(&["eu-west-1"])),
            "eu-west-1",
            Reach::Reached,
        ),
        (
            "absent namespaceSelector admits nothing",
            |inv| inv.accounts[0].spec.namespace_selector = None,
            "eu-west-1",
            Reach::NotPermitted,
        ),
        (
            "empty namespaceSelector admits nothing (unlike Kubernetes' usual convention)",
            |inv| inv.accounts[0].spec.namespace_selector = Some(LabelSelector::default()),
            "eu-west-1",
            Reach::NotPermitted,
        ),
        (
            "namespaceSelector on a label the namespace lacks",
            |inv| inv.accounts[0].spec.namespace_selector = Some(match_labels(&[("tenant", "platform")])),
            "eu-west-1",
            Reach::NotPermitted,
        ),
        (
            "namespaceSelector on a label the namespace has",
            |inv| {
                inv.accounts[0].spec.namespace_selector = Some(match_labels(&[("tenant", "platform")]));
                inv.namespaces.insert(NS.into(), labels(&[("tenant", "platform")]));
            },
            "eu-west-1",
            Reach::Reached,
        ),
        (
            "namespaceSelector by name: the API server's name label is always there",
            |inv| {
                inv.accounts[0].spec.namespace_selector =
                    Some(match_expression("kubernetes.io/metadata.name", "In", &[NS]));
            },
            "eu-west-1",
            Reach::Reached,
        ),
        (
            "unknown namespace is not admitted",
            |inv| inv.namespaces.clear(),
            "eu-west-1",
            Reach::NotPermitted,
        ),
        (
            "accountSelector {} selects only accounts that admit the namespace",
            |inv| {
                inv.groups[0].spec.account_selector = LabelSelector::default();
                inv.accounts[0].spec.namespace_selector = None;
            },
            "eu-west-1",
            Reach::NotSelected,
        ),
        (
            "accountSelector {} on an admitting account",
            |inv| inv.groups[0].spec.account_selector = LabelSelector::default(),
            "eu-west-1",
            Reach::Reached,
        ),
        (
            "invalid accountSelector",
            |inv| inv.groups[0].spec.account_selector = match_expression("managed", "Gt", &["1"]),
            "eu-west-1",
            Reach::InvalidAccountSelector(
                "matchExpressions[0].operator: \"Gt\" is not one of In, NotIn, Exists, DoesNotExist".into(),
            ),
        ),
        (
            "invalid namespaceSelector",
            |inv| inv.accounts[0].spec.namespace_selector = Some(match_expression("x", "In", &[])),
            "eu-west-1",
            Reach::InvalidNamespaceSelector("matchExpressions[0].values: must be non-empty for operator In".into()),
        ),
    ];
    for (case, change, region, want) in cases {
        let mut inventory = world();
        change(&mut inventory);
        let got = reach(
            &inventory,
            &inventory.groups[0],
            &inventory.accounts[0],
            region,
        );
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn account_regions_are_every_region_of_every_active_account() {
    let mut inventory = world();
    inventory
        .accounts
        .push(mk_account("b", "222222222222", &["eu-central-1"], &[]).into());
    let mut suspended = mk_account("c", "333333333333", &["eu-west-1"], &[]);
    suspended.spec.suspend = true;
    inventory.accounts.push(suspended.into());
    let mut leaving = mk_account("d", "444444444444", &["eu-west-1"], &[]);
    deleting(&mut leaving.metadata);
    inventory.accounts.push(leaving.into());

    let got = account_regions(&inventory);
    let want = vec![
        mk_account_region("b", "222222222222", "eu-central-1"),
        mk_account_region(ACCOUNT, ACCOUNT_ID, "eu-west-1"),
        mk_account_region(ACCOUNT, ACCOUNT_ID, "us-east-1"),
        // Being deleted: listed, so its plan can clean up.
        mk_account_region("d", "444444444444", "eu-west-1"),
    ];
    assert_eq!(got, want);
}

#[test]
fn reached_by_rolls_up_groups_for_policies_and_windows() {
    let mut inventory = world();
    let mut gold = mk_account("b", "222222222222", &["eu-central-1"], &[("tier", "gold")]);
    gold.spec.patch_group_grants = vec![grant_all(NS)];
    // Account b's defaults come from a policy no group follows.
    gold.spec.default_patch_policy = Some(patchfleet_api::v1alpha1::DefaultPatchPolicy {
        namespace: NS.into(),
        name: "defaults".into(),
    });
    inventory.accounts.push(gold.into());
    // A second group of the same policy on account b only.
    inventory
        .groups
        .push(mk_group(NS, "gold", "early", &[("tier", "gold")]));
    // A window on the gold group and a missing one.
    inventory
        .windows
        .push(mk_window(NS, "gold-nightly", &["gold", "missing"], vec![]));

    let a = |region: &str| mk_account_region(ACCOUNT, ACCOUNT_ID, region);
    let b = mk_account_region("b", "222222222222", "eu-central-1");
    let owner = |kind, name: &str| Owner::new(kind, NS, name);
    let cases = [
        (
            owner(OwnerKind::PatchGroup, "early"),
            BTreeSet::from([a("eu-west-1"), a("us-east-1")]),
        ),
        (
            owner(OwnerKind::PatchGroup, "gold"),
            BTreeSet::from([b.clone()]),
        ),
        (
            owner(OwnerKind::PatchPolicy, "early"),
            BTreeSet::from([a("eu-west-1"), a("us-east-1"), b.clone()]),
        ),
        (
            owner(OwnerKind::MaintenanceWindow, "monthly"),
            BTreeSet::from([a("eu-west-1"), a("us-east-1")]),
        ),
        (
            owner(OwnerKind::MaintenanceWindow, "gold-nightly"),
            BTreeSet::from([b]),
        ),
        (
            owner(OwnerKind::PatchPolicy, "nobody-follows"),
            BTreeSet::new(),
        ),
        (
            owner(OwnerKind::PatchPolicy, "defaults"),
            BTreeSet::from([mk_account_region("b", "222222222222", "eu-central-1")]),
        ),
        (owner(OwnerKind::PatchGroup, "missing"), BTreeSet::new()),
        (
            Owner::new(OwnerKind::PatchGroup, "elsewhere", "early"),
            BTreeSet::new(),
        ),
    ];
    for (owner, want) in cases {
        assert_eq!(reached_by(&inventory, &owner), want, "{owner}");
    }
}

#[test]
fn reached_by_ignores_deletion_so_deleted_owners_still_wake_their_accounts() {
    let mut inventory = world();
    deleting(&mut inventory.groups[0].metadata);
    deleting(&mut inventory.policies[0].metadata);
    let want = BTreeSet::from([
        mk_account_region(ACCOUNT, ACCOUNT_ID, "eu-west-1"),
        mk_account_region(ACCOUNT, ACCOUNT_ID, "us-east-1"),
    ]);
    for kind in [OwnerKind::PatchGroup, OwnerKind::PatchPolicy] {
        let owner = Owner::new(kind, NS, "early");
        assert_eq!(reached_by(&inventory, &owner), want, "{owner}");
    }
}
