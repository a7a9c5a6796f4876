//! The tenancy model of docs/tenancy.md, sentence by sentence: which `Patch Group` values a
//! namespace may use in an account is the account's decision (spec.patchGroupGrants),
//! never the order in which resources were created or how their names sort.

mod common;

use patchfleet_api::v1alpha1::{OperatingSystem, PatchOperation, RebootOption};
use patchfleet_planner::builders::*;
use patchfleet_planner::model::{Desired, Problem, reasons};
use patchfleet_planner::{Inventory, desired};

use common::*;

const WEB: &str = "web";

/// Two namespaces admitted to one account. `owner` holds the grant of `web`; `intruder`
/// declares its own group `web` with a policy approving everything for every OS, a
/// Scheduled window with an Install task, and an Emergency window: the attack the issue
/// describes. `intruder_first` puts the intruder's resources first in every list (as if
/// created first).
fn contested(owner: &str, intruder: &str, intruder_first: bool) -> Inventory {
    let every_os = || {
        OperatingSystem::ALL
            .iter()
            .map(|os| mk_baseline(*os, 0))
            .collect::<Vec<_>>()
    };
    let mut account = account();
    account.spec.patch_group_grants = vec![grant(owner, &[WEB])];
    let tenant = |ns: &str, baselines| {
        let mut group = mk_group(ns, "web", "policy", &[("managed", "true")]);
        group.spec.group_name = Some(WEB.to_owned());
        let mut install = mk_task("install", PatchOperation::Install);
        install.reboot_option = RebootOption::RebootIfNeeded;
        (
            mk_policy(ns, "policy", baselines),
            group,
            vec![
                mk_window(ns, "nightly", &["web"], vec![install]),
                mk_emergency_window(ns, "now", &["web"], "ticket-1"),
            ],
        )
    };
    let (owner_policy, owner_group, owner_windows) =
        tenant(owner, vec![mk_baseline(OperatingSystem::Windows, 7)]);
    let (intruder_policy, intruder_group, intruder_windows) = tenant(intruder, every_os());
    let (mut policies, mut groups, mut windows) = (
        vec![owner_policy, intruder_policy],
        vec![owner_group, intruder_group],
        [owner_windows, intruder_windows].concat(),
    );
    if intruder_first {
        policies.reverse();
        groups.reverse();
        windows.reverse();
    }
    mk_inventory(vec![account], policies, groups, windows)
}

fn plan(inventory: &Inventory) -> (Desired, Vec<Problem>) {
    desired(inventory, &mk_settings(), &ar())
}

/// Every name order and creation order: the grant alone decides.
fn every_order() -> Vec<(&'static str, &'static str, bool)> {
    let mut cases = Vec::new();
    for (owner, intruder) in [("team-a", "team-b"), ("team-b", "team-a")] {
        for intruder_first in [false, true] {
            cases.push((owner, intruder, intruder_first));
        }
    }
    cases
}

#[test]
fn a_namespace_cannot_register_scan_patch_or_reboot_machines_it_was_not_granted() {
    for (owner, intruder, intruder_first) in every_order() {
        let case = format!("owner {owner}, intruder {intruder}, intruder first: {intruder_first}");
        let (desired, problems) = plan(&contested(owner, intruder, intruder_first));

        // Registrations: `web` goes to the owner's baseline alone, for its one OS.
        let registered: Vec<(&str, &str)> = desired
            .baselines
            .values()
            .filter(|b| b.patch_groups.contains(WEB))
            .map(|b| (b.owner.namespace.as_str(), b.name.as_str()))
            .collect();
        assert_eq!(
            registered,
            [(owner, format!("patchfleet-{owner}-policy-windows").as_str())],
            "{case}"
        );
        // Baselines: the intruder's policy plans nothing here (no group of its reaches).
        assert!(
            desired
                .baselines
                .values()
                .all(|b| b.owner.namespace == owner),
            "{case}: {:?}",
            desired.baselines.keys().collect::<Vec<_>>()
        );
        // Windows and their targets: the owner's only.
        assert!(
            desired.windows.values().all(|w| w.owner.namespace == owner),
            "{case}"
        );
        assert_eq!(desired.windows.len(), 1, "{case}");
        // Emergency runs (SendCommand Install/RebootIfNeeded): the owner's only.
        assert!(
            desired.runs.keys().all(|o| o.namespace == owner),
            "{case}: {:?}",
            desired.runs.keys().collect::<Vec<_>>()
        );
        assert_eq!(desired.runs.len(), 1, "{case}");
        assert!(desired.held.is_empty(), "{case}: nothing held");

        // The intruder's group is refused with the rule; the owner's group is not the one
        // reported as conflicting.
        let refused: Vec<&Problem> = problems
            .iter()
            .filter(|p| p.reason == reasons::PATCH_GROUP_NOT_GRANTED)
            .collect();
        assert_eq!(refused.len(), 1, "{case}: {problems:#?}");
        assert_eq!(refused[0].owner.namespace, intruder, "{case}");
        assert!(
            refused[0].message.starts_with("spec.groupName:")
                && refused[0].message.contains("spec.patchGroupGrants")
                && refused[0]
                    .message
                    .contains(&format!("namespace {intruder}")),
            "{case}: {}",
            refused[0].message
        );
        assert!(
            problems
                .iter()
                .all(|p| p.owner.namespace == intruder && p.reason != reasons::PATCH_GROUP_CONFLICT),
            "{case}: {problems:#?}"
        );
    }
}

#[test]
fn an_account_without_grants_plans_no_group_of_any_namespace() {
    let mut inventory = contested("team-a", "team-b", false);
    inventory.accounts[0].spec.patch_group_grants.clear();
    let (desired, problems) = plan(&inventory);
    assert!(desired.baselines.is_empty() && desired.windows.is_empty() && desired.runs.is_empty());
    let refused: Vec<&str> = problems
        .iter()
        .filter(|p| p.reason == reasons::PATCH_GROUP_NOT_GRANTED)
        .map(|p| p.owner.namespace.as_str())
        .collect();
    assert_eq!(refused, ["team-a", "team-b"]);
}

#[test]
fn a_value_granted_to_two_namespaces_is_granted_to_neither() {
    let mut inventory = contested("team-a", "team-b", false);
    inventory.accounts[0].spec.patch_group_grants = vec![
        grant("team-a", &[WEB]),
        patchfleet_api::v1alpha1::PatchGroupGrant {
            namespace: "team-b".into(),
            values: Vec::new(),
            prefixes: vec!["we".into()],
        },
    ];
    let (desired, problems) = plan(&inventory);
    assert!(desired.baselines.is_empty() && desired.runs.is_empty());
    let refused: Vec<&Problem> = problems
        .iter()
        .filter(|p| p.reason == reasons::PATCH_GROUP_NOT_GRANTED)
        .collect();
    assert_eq!(refused.len(), 2, "{problems:#?}");
    for problem in refused {
        assert!(
            problem
                .message
                .contains("team-a (spec.patchGroupGrants[0].values[0])")
                && problem
                    .message
                    .contains("team-b (spec.patchGroupGrants[1].prefixes[0])"),
            "{}",
            problem.message
        );
    }
}

#[test]
fn the_account_names_its_overlapping_grants_for_its_administrator() {
    use patchfleet_api::v1alpha1::PatchGroupGrant;
    use patchfleet_planner::selection::grant_overlaps;
    let grant_of = |namespace: &str, values: &[&str], prefixes: &[&str]| PatchGroupGrant {
        namespace: namespace.into(),
        values: strings(values),
        prefixes: strings(prefixes),
    };
    let mut account = account();
    let cases: [(&str, Vec<PatchGroupGrant>, Vec<&str>); 5] = [
        (
            "disjoint",
            vec![
                grant_of("a", &["web"], &["web-"]),
                grant_of("b", &["db"], &["db-"]),
            ],
            vec![],
        ),
        (
            "one namespace twice is no overlap",
            vec![grant_of("a", &["web"], &[]), grant_of("a", &[], &["w"])],
            vec![],
        ),
        (
            "a value under the other's prefix",
            vec![grant_of("a", &["web"], &[]), grant_of("b", &[], &["we"])],
            vec![
                r#"spec.patchGroupGrants[0] (namespace a) and spec.patchGroupGrants[1] (namespace b) both cover "web": granted to neither"#,
            ],
        ),
        (
            "nested prefixes",
            vec![
                grant_of("a", &[], &["web-"]),
                grant_of("b", &[], &["web-eu-"]),
            ],
            vec![
                r#"spec.patchGroupGrants[0] (namespace a) and spec.patchGroupGrants[1] (namespace b) both cover every value beginning "web-eu-": granted to neither"#,
            ],
        ),
        (
            "the same value",
            vec![
                grant_of("a", &["db"], &[]),
                grant_of("b", &["web"], &[]),
                grant_of("c", &["db"], &[]),
            ],
            vec![
                r#"spec.patchGroupGrants[0] (namespace a) and spec.patchGroupGrants[2] (namespace c) both cover "db": granted to neither"#,
            ],
        ),
    ];
    for (case, grants, want) in cases {
        account.spec.patch_group_grants = grants;
        assert_eq!(grant_overlaps(&account), want, "{case}");
    }
}

#[test]
fn prefixes_grant_every_value_they_begin() {
    let mut inventory = contested("team-a", "team-b", false);
    inventory.accounts[0].spec.patch_group_grants =
        vec![patchfleet_api::v1alpha1::PatchGroupGrant {
            namespace: "team-b".into(),
            values: Vec::new(),
            prefixes: vec!["w".into()],
        }];
    let (desired, _) = plan(&inventory);
    assert!(
        desired
            .baselines
            .values()
            .all(|b| b.owner.namespace == "team-b")
    );
    assert_eq!(
        desired
            .runs
            .keys()
            .map(|o| o.namespace.as_str())
            .collect::<Vec<_>>(),
        ["team-b"]
    );
}

/// A namespace the account does not admit keeps nothing there, not even a window held
/// because one of its groups is missing.
#[test]
fn a_window_is_held_only_where_its_namespace_is_admitted() {
    let mut inventory = world();
    inventory.windows[0]
        .spec
        .targets
        .patch_groups
        .push("missing".into());
    let (desired, problems) = plan(&inventory);
    assert!(
        desired.held.contains(&window_owner_of(&inventory)),
        "admitted: held"
    );
    assert_eq!(problems[0].reason, reasons::PATCH_GROUP_NOT_FOUND);

    inventory.accounts[0].spec.namespace_selector = Some(match_labels(&[("tenant", "other")]));
    let (desired, _) = plan(&inventory);
    assert!(
        desired.held.is_empty(),
        "no longer admitted: not held, so removed"
    );
    assert!(desired.windows.is_empty());
}

fn window_owner_of(inventory: &Inventory) -> patchfleet_planner::model::Owner {
    patchfleet_planner::inventory::window_owner(&inventory.windows[0])
}

#[test]
fn a_task_role_must_be_allowed_by_the_account() {
    let mut inventory = world();
    inventory.windows[0].spec.tasks[1].service_role_name = Some("admin".into());
    inventory.accounts[0].spec.task_roles = vec!["patchfleet-patching".into()];
    let (desired, problems) = plan(&inventory);
    let window = &desired.windows[MONTHLY];
    assert!(window.tasks.contains_key("scan"));
    assert!(
        !window.tasks.contains_key("install"),
        "the task is not registered"
    );
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].reason, reasons::TASK_ROLE_NOT_ALLOWED);
    assert!(
        problems[0]
            .message
            .starts_with("spec.tasks[install].serviceRoleName")
            && problems[0].message.contains("spec.taskRoles"),
        "{}",
        problems[0].message
    );

    inventory.accounts[0].spec.task_roles.push("admin".into());
    let (desired, problems) = plan(&inventory);
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(
        desired.windows[MONTHLY].tasks["install"]
            .service_role_arn
            .as_deref(),
        Some("arn:aws:iam::111111111111:role/admin")
    );
}
