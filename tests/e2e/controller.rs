//! The controller end to end: a real kube-apiserver, the SSM/STS simulator, and the
//! `patchfleet` binary. Each test has its own control plane and simulator, so they run in
//! parallel without seeing each other.

use std::time::Duration;

use patchfleet_planner::model::tags;
use patchfleet_tests::e2e::{
    ALL_REGIONS, CUSTOMER_A_EU, CUSTOMER_A_US, CUSTOMER_B_EU, converged_examples, eventually, look,
};
use patchfleet_tests::inspect::{self, Snapshot};
use patchfleet_tests::stack::{ALL_KINDS, CONVERGE, Stack, ssm_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_converge_exactly_and_then_cost_no_writes() {
    let stack = converged_examples("converge", &[]).await;

    // customer-a eu-west-1: three age policies x 8 systems + the frozen policy's 2.
    let eu = look(&stack, CUSTOMER_A_EU).await;
    let (baselines, windows) = eu.owned_by(&stack.cluster_id);
    assert_eq!(baselines.len(), 26, "{:#?}", eu.baselines);
    let early_windows = eu
        .baseline_named("patchfleet-patching-early-windows")
        .expect("early WINDOWS baseline");
    assert_eq!(early_windows.operating_system, "WINDOWS");
    assert_eq!(
        early_windows.tags.get(tags::OWNER).map(String::as_str),
        Some("PatchPolicy/patching/early")
    );
    assert_eq!(eu.groups_of(&early_windows.id), ["early".to_owned()].into());
    let client = ssm_client(&stack, CUSTOMER_A_EU.0, CUSTOMER_A_EU.1, CUSTOMER_A_EU.2)
        .await
        .expect("client");
    let late_rhel = eu
        .baseline_named("patchfleet-patching-late-redhat-enterprise-linux")
        .expect("late RHEL baseline");
    assert_eq!(
        inspect::approve_after_days(&client, &late_rhel.id)
            .await
            .expect("rules"),
        vec![Some(14), Some(14)]
    );
    let frozen = eu
        .baseline_named("patchfleet-patching-frozen-amazon-linux-2")
        .expect("frozen AL2 baseline");
    assert_eq!(
        inspect::approve_after_days(&client, &frozen.id)
            .await
            .expect("rules"),
        Vec::<Option<i32>>::new(),
        "a Frozen policy approves nothing by rule"
    );
    assert_eq!(
        eu.groups_of(&frozen.id),
        ["frozen-after-go-live".to_owned()].into()
    );
    assert_eq!(eu.registrations.len(), 26);
    let names: Vec<&str> = windows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names.len(),
        3,
        "monthly, opportunistic and frozen-scan: {names:?}"
    );
    let monthly = eu
        .window_named("patchfleet-patching-monthly")
        .expect("monthly window");
    assert_eq!(monthly.targets.len(), 3);
    assert_eq!(monthly.tasks.len(), 2);
    assert_eq!(monthly.duration, 4);

    // customer-a us-east-1: the frozen group is limited to eu-west-1.
    let us = look(&stack, CUSTOMER_A_US).await;
    let (baselines, windows) = us.owned_by(&stack.cluster_id);
    assert_eq!(baselines.len(), 24);
    assert_eq!(
        windows.len(),
        2,
        "no frozen-scan window where no frozen group exists"
    );

    // customer-b: only its own account, and nothing of customer-a's frozen group.
    let b = look(&stack, CUSTOMER_B_EU).await;
    assert_eq!(b.owned_by(&stack.cluster_id).0.len(), 24);

    // Status tells where things stand.
    let account = stack
        .kubectl([
            "get",
            "sysacct",
            "customer-a-aws",
            "-o",
            "jsonpath={.status.callerArn} {.status.summary.ready}/{.status.summary.selected}",
        ])
        .expect("kubectl get");
    assert!(
        account.starts_with("arn:aws:sts::111111111111:assumed-role/patchfleet/"),
        "{account}"
    );
    assert!(account.ends_with(" 2/2"), "{account}");
    let group = stack
        .kubectl(["get", "pgrp", "early", "-n", "patching", "-o", "jsonpath={.status.groupName} {.status.summary.ready}/{.status.summary.selected} {.status.observedGeneration}"])
        .expect("kubectl get");
    assert_eq!(group, "early 3/3 1");

    // Converged: further passes read but never write.
    let writes = stack.writes();
    let counts_before = stack.sim.sim().counters.snapshot();
    let reads_before = stack.calls("");
    tokio::time::sleep(Duration::from_secs(10)).await;
    if stack.writes() != writes {
        let after = stack.sim.sim().counters.snapshot();
        let grew: Vec<String> = after
            .iter()
            .filter(|c| {
                counts_before
                    .iter()
                    .find(|b| b.key == c.key)
                    .map(|b| b.count)
                    != Some(c.count)
            })
            .map(|c| format!("{:?} {}", c.key, c.count))
            .collect();
        panic!(
            "a converged fleet was written to:\n{}\n{}",
            grew.join("\n"),
            stack.controller_log()
        );
    }
    let reads = stack.calls("") - reads_before;
    println!("converged: {reads} SSM reads in 10 s over 3 account-regions (resync every 3 s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_update_baselines_and_windows_in_place() {
    let stack = converged_examples("edits", &[]).await;
    let before: Vec<Snapshot> = futures_all(&stack).await;

    stack
        .kubectl([
            "patch", "ppol", "early", "-n", "patching", "--type", "json", "-p",
            r#"[{"op":"replace","path":"/spec/baselines/0/approvalRules/0/approveAfterDays","value":3}]"#,
        ])
        .expect("policy patched");
    stack
        .kubectl([
            "patch",
            "mw",
            "monthly",
            "-n",
            "patching",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"duration":5}}"#,
        ])
        .expect("window patched");
    eventually(
        "the edits reach every account-region",
        &stack,
        CONVERGE,
        || async {
            let mut all = true;
            for (index, region) in ALL_REGIONS.iter().enumerate() {
                let now = look(&stack, *region).await;
                let client = ssm_client(&stack, region.0, region.1, region.2)
                    .await
                    .expect("client");
                let Some(baseline) = now.baseline_named("patchfleet-patching-early-windows") else {
                    return false;
                };
                let days = inspect::approve_after_days(&client, &baseline.id)
                    .await
                    .unwrap_or_default();
                let window = now.window_named("patchfleet-patching-monthly");
                all &= days == vec![Some(3)] && window.is_some_and(|w| w.duration == 5);
                // In place: the ids did not change.
                let old = &before[index];
                assert_eq!(
                    old.baseline_named("patchfleet-patching-early-windows")
                        .map(|b| &b.id),
                    Some(&baseline.id)
                );
                assert_eq!(
                    old.window_named("patchfleet-patching-monthly")
                        .map(|w| &w.id),
                    window.map(|w| &w.id)
                );
            }
            all
        },
    )
    .await;
    stack.wait_ready(&ALL_KINDS, CONVERGE).expect("Ready again");
    let events = stack
        .kubectl([
            "get",
            "events",
            "-n",
            "patching",
            "--field-selector",
            "involvedObject.name=early,reason=Updated",
            "-o",
            "jsonpath={.items[*].message}",
        ])
        .expect("events");
    assert!(
        events.contains("patchfleet-patching-early-windows"),
        "no Updated event: {events}"
    );
}

async fn futures_all(stack: &Stack) -> Vec<Snapshot> {
    let mut snapshots = Vec::new();
    for region in ALL_REGIONS {
        snapshots.push(look(stack, region).await);
    }
    snapshots
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_made_by_hand_is_corrected_by_the_deep_pass() {
    // The resync is an hour away: the deep read schedules its own pass, so drift made
    // by hand is corrected within --deep-interval whatever the resync.
    let stack = converged_examples("drift", &["--deep-interval", "4s", "--resync", "1h"]).await;
    let (account, external_id, region) = CUSTOMER_A_EU;
    let client = ssm_client(&stack, account, external_id, region)
        .await
        .expect("client");
    let eu = look(&stack, CUSTOMER_A_EU).await;
    let baseline = eu
        .baseline_named("patchfleet-patching-late-windows")
        .expect("baseline")
        .clone();
    let monthly = eu
        .window_named("patchfleet-patching-monthly")
        .expect("window")
        .clone();

    // A changed rule, a deleted task, an extra target: made in the console, behind
    // patchfleet's back.
    let rule = aws_sdk_ssm::types::PatchRule::builder()
        .patch_filter_group(
            aws_sdk_ssm::types::PatchFilterGroup::builder()
                .patch_filters(
                    aws_sdk_ssm::types::PatchFilter::builder()
                        .key(aws_sdk_ssm::types::PatchFilterKey::Classification)
                        .values("SecurityUpdates")
                        .build()
                        .expect("filter"),
                )
                .build()
                .expect("group"),
        )
        .approve_after_days(99)
        .build();
    client
        .update_patch_baseline()
        .baseline_id(&baseline.id)
        .approval_rules(
            aws_sdk_ssm::types::PatchRuleGroup::builder()
                .patch_rules(rule)
                .build()
                .expect("rules"),
        )
        .send()
        .await
        .expect("rule changed by hand");
    let tasks = client
        .describe_maintenance_window_tasks()
        .window_id(&monthly.id)
        .send()
        .await
        .expect("tasks");
    let install = tasks
        .tasks()
        .iter()
        .find(|t| t.name() == Some("install"))
        .and_then(|t| t.window_task_id())
        .expect("install task")
        .to_owned();
    client
        .deregister_task_from_maintenance_window()
        .window_id(&monthly.id)
        .window_task_id(&install)
        .send()
        .await
        .expect("task deleted by hand");
    client
        .register_target_with_maintenance_window()
        .window_id(&monthly.id)
        .name("added-by-hand")
        .resource_type(aws_sdk_ssm::types::MaintenanceWindowResourceType::Instance)
        .targets(
            aws_sdk_ssm::types::Target::builder()
                .key("tag:Patch Group")
                .values("everything")
                .build(),
        )
        .send()
        .await
        .expect("target added by hand");

    eventually(
        "the deep pass restores the declared state",
        &stack,
        Duration::from_secs(90),
        || async {
            let now = look(&stack, CUSTOMER_A_EU).await;
            let days = inspect::approve_after_days(&client, &baseline.id)
                .await
                .unwrap_or_default();
            let window = now.window_named("patchfleet-patching-monthly");
            days == vec![Some(14)]
                && window.is_some_and(|w| {
                    w.tasks.contains_key("install") && !w.targets.contains_key("added-by-hand")
                })
        },
    )
    .await;
    let now = look(&stack, CUSTOMER_A_EU).await;
    assert_eq!(
        now.baseline_named("patchfleet-patching-late-windows")
            .map(|b| &b.id),
        Some(&baseline.id)
    );
    assert_eq!(
        now.window_named("patchfleet-patching-monthly")
            .map(|w| &w.id),
        Some(&monthly.id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_resources_removes_their_ssm_state_and_orphan_leaves_it() {
    let stack = converged_examples("delete", &[]).await;
    let eu_before = look(&stack, CUSTOMER_A_EU).await;
    let frozen_scan = eu_before
        .window_named("patchfleet-patching-frozen-scan")
        .expect("window")
        .clone();

    stack
        .kubectl([
            "patch",
            "mw",
            "frozen-scan",
            "-n",
            "patching",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"deletionPolicy":"Orphan"}}"#,
        ])
        .expect("orphan policy set");
    stack
        .wait_ready(&["maintenancewindows"], CONVERGE)
        .expect("Ready after the change");
    stack
        .kubectl([
            "delete",
            "mw",
            "opportunistic",
            "frozen-scan",
            "-n",
            "patching",
            "--timeout=120s",
        ])
        .expect("windows deleted (finalizers released)");
    // Another controller's finalizer on the group outlives ours: patchfleet cleans up and
    // removes its own entry alone.
    stack
        .kubectl([
            "patch",
            "pgrp",
            "late",
            "-n",
            "patching",
            "--type",
            "json",
            "-p",
            r#"[{"op":"add","path":"/metadata/finalizers/-","value":"example.com/keep"}]"#,
        ])
        .expect("foreign finalizer added");
    stack
        .kubectl(["delete", "pgrp", "late", "-n", "patching", "--wait=false"])
        .expect("group deletion requested");
    eventually(
        "patchfleet removes its finalizer and leaves the other one",
        &stack,
        CONVERGE,
        || async {
            stack
                .kubectl([
                    "get",
                    "pgrp",
                    "late",
                    "-n",
                    "patching",
                    "-o",
                    "jsonpath={.metadata.finalizers}",
                ])
                .is_ok_and(|f| f == r#"["example.com/keep"]"#)
        },
    )
    .await;
    stack
        .kubectl([
            "patch",
            "pgrp",
            "late",
            "-n",
            "patching",
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers/0"}]"#,
        ])
        .expect("foreign finalizer removed");
    stack
        .kubectl([
            "wait",
            "--for=delete",
            "pgrp/late",
            "-n",
            "patching",
            "--timeout=60s",
        ])
        .expect("group deleted");
    stack
        .kubectl(["delete", "ppol", "late", "-n", "patching", "--timeout=120s"])
        .expect("policy deleted");

    for region in ALL_REGIONS {
        let now = look(&stack, region).await;
        assert!(
            now.window_named("patchfleet-patching-opportunistic")
                .is_none(),
            "{region:?}"
        );
        assert!(
            now.baselines
                .iter()
                .all(|b| !b.name.starts_with("patchfleet-patching-late-")),
            "{region:?}: late baselines left"
        );
        assert!(
            now.registrations
                .iter()
                .all(|(group, _, _)| group != "late"),
            "{region:?}"
        );
    }
    // Orphan: the window stays, no longer marked as patchfleet's.
    let eu = look(&stack, CUSTOMER_A_EU).await;
    let orphan = eu
        .window_named("patchfleet-patching-frozen-scan")
        .expect("orphaned window stays");
    assert_eq!(orphan.id, frozen_scan.id);
    assert!(
        !orphan.tags.contains_key(tags::CLUSTER),
        "{:?}",
        orphan.tags
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_account_keeps_the_finalizer_and_says_why_until_reachable() {
    let stack = converged_examples("unreachable", &[]).await;
    assert!(
        look(&stack, CUSTOMER_B_EU)
            .await
            .window_named("patchfleet-patching-opportunistic")
            .is_some()
    );
    let mut faults = stack.sim.sim().faults.spec();
    faults.unreachable_accounts = vec!["222222222222".into()];
    stack.sim.sim().faults.set(faults.clone());

    stack
        .kubectl([
            "delete",
            "mw",
            "opportunistic",
            "-n",
            "patching",
            "--wait=false",
        ])
        .expect("delete requested");
    eventually(
        "customer-a is cleaned while customer-b cannot be",
        &stack,
        CONVERGE,
        || async {
            look(&stack, CUSTOMER_A_EU)
                .await
                .window_named("patchfleet-patching-opportunistic")
                .is_none()
                && look(&stack, CUSTOMER_A_US)
                    .await
                    .window_named("patchfleet-patching-opportunistic")
                    .is_none()
        },
    )
    .await;
    eventually(
        "the window says which account holds it up",
        &stack,
        Duration::from_secs(60),
        || async {
            let message = stack
                .kubectl([
                    "get",
                    "mw",
                    "opportunistic",
                    "-n",
                    "patching",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}",
                ])
                .unwrap_or_default();
            message.contains("222222222222")
        },
    )
    .await;
    let held = stack
        .kubectl([
            "get",
            "mw",
            "opportunistic",
            "-n",
            "patching",
            "-o",
            "jsonpath={.metadata.finalizers}",
        ])
        .expect("the window still exists");
    assert!(held.contains("patchfleet.io/cleanup"), "{held}");

    faults.unreachable_accounts.clear();
    stack.sim.sim().faults.set(faults);
    eventually(
        "the deletion completes once the account is reachable",
        &stack,
        CONVERGE,
        || async {
            stack
                .kubectl(["get", "mw", "opportunistic", "-n", "patching"])
                .is_err()
        },
    )
    .await;
    assert!(
        look(&stack, CUSTOMER_B_EU)
            .await
            .window_named("patchfleet-patching-opportunistic")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_account_is_filled_and_relabelling_it_empties_it() {
    let stack = converged_examples("new-account", &[]).await;
    // The controller's own account (no role): the simulator's default account.
    let manifest = r#"{"apiVersion":"patchfleet.io/v1alpha1","kind":"SystemAccount",
        "metadata":{"name":"own","labels":{"patchfleet.io/managed":"true"},
                    "finalizers":["example.com/keep"]},
        "spec":{"accountId":"123456789012","regions":["ap-southeast-2"],
                "namespaceSelector":{"matchLabels":{"patchfleet.io/tenant":"platform"}},
                "patchGroupGrants":[{"namespace":"patching","prefixes":[""]}],
                "taskRoles":["patchfleet-patching"]}}"#;
    stack
        .apply_text("own-account", manifest)
        .expect("account applied");
    stack.wait_ready(&ALL_KINDS, CONVERGE).expect("filled");
    let own = ("123456789012", "", "ap-southeast-2");
    let client = own_client(&stack, own.2).await;
    let filled = inspect::snapshot(&client).await.expect("snapshot");
    assert_eq!(filled.owned_by(&stack.cluster_id).0.len(), 24);
    assert_eq!(filled.owned_by(&stack.cluster_id).1.len(), 2);
    // patchfleet added its finalizer beside another controller's, never in its place.
    assert_eq!(
        stack
            .kubectl([
                "get",
                "sysacct",
                "own",
                "-o",
                "jsonpath={.metadata.finalizers}"
            ])
            .expect("finalizers"),
        r#"["example.com/keep","patchfleet.io/cleanup"]"#
    );

    // A region dropped from the account is emptied; the new one is filled.
    stack
        .kubectl([
            "patch",
            "sysacct",
            "own",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"regions":["ap-northeast-1"]}}"#,
        ])
        .expect("regions changed");
    eventually(
        "the dropped region is emptied and the new one filled",
        &stack,
        CONVERGE,
        || async {
            let old = inspect::snapshot(&client).await.expect("snapshot");
            let new = inspect::snapshot(&own_client(&stack, "ap-northeast-1").await)
                .await
                .expect("snapshot");
            old.owned_by(&stack.cluster_id).0.is_empty()
                && old.registrations.is_empty()
                && new.owned_by(&stack.cluster_id).0.len() == 24
        },
    )
    .await;
    let client = own_client(&stack, "ap-northeast-1").await;

    stack
        .kubectl([
            "label",
            "sysacct",
            "own",
            "patchfleet.io/managed=false",
            "--overwrite",
        ])
        .expect("relabelled");
    eventually(
        "the account is emptied of patchfleet's objects",
        &stack,
        CONVERGE,
        || async {
            let now = inspect::snapshot(&client).await.expect("snapshot");
            let (baselines, windows) = now.owned_by(&stack.cluster_id);
            baselines.is_empty() && windows.is_empty() && now.registrations.is_empty()
        },
    )
    .await;
}

/// A client with the controller's own credentials (the simulator's default account).
async fn own_client(stack: &Stack, region: &str) -> aws_sdk_ssm::Client {
    use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(stack.sim.endpoint_url())
        .credentials_provider(Credentials::new(
            patchfleet_tests::stack::BASE_ACCESS_KEY,
            "patchfleet-test-secret",
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_ssm::Client::from_conf(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_of_others_are_never_changed_or_deleted() {
    let mut stack = Stack::start("others").await.expect("stack");
    let (account, external_id, region) = CUSTOMER_A_EU;
    let client = ssm_client(&stack, account, external_id, region)
        .await
        .expect("client");
    // A look-alike with patchfleet's exact name, and one owned by another cluster.
    let lookalike = client
        .create_patch_baseline()
        .name("patchfleet-patching-early-windows")
        .operating_system(aws_sdk_ssm::types::OperatingSystem::Windows)
        .approved_patches("KB123")
        .send()
        .await
        .expect("look-alike created")
        .baseline_id
        .expect("id");
    let other_cluster = client
        .create_patch_baseline()
        .name("patchfleet-patching-early-ubuntu")
        .operating_system(aws_sdk_ssm::types::OperatingSystem::Ubuntu)
        .tags(
            aws_sdk_ssm::types::Tag::builder()
                .key(tags::CLUSTER)
                .value("someone-else")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("other cluster's baseline created")
        .baseline_id
        .expect("id");
    let window = client
        .create_maintenance_window()
        .name("patchfleet-patching-monthly")
        .schedule("rate(7 days)")
        .duration(2)
        .cutoff(1)
        .allow_unassociated_targets(true)
        .send()
        .await
        .expect("look-alike window")
        .window_id
        .expect("id");

    stack.start_controller().expect("controller");
    stack.apply("examples").expect("examples");
    stack.wait_ready(&ALL_KINDS, CONVERGE).expect("converged");
    for name in ["ppol", "pgrp", "mw"] {
        stack
            .kubectl(["delete", name, "--all", "-n", "patching", "--timeout=120s"])
            .expect("deleted");
    }
    let now = look(&stack, CUSTOMER_A_EU).await;
    for id in [&lookalike, &other_cluster] {
        let baseline = now
            .baselines
            .iter()
            .find(|b| &b.id == id)
            .expect("still there");
        assert!(!baseline.tags.contains_key(tags::OWNER), "{baseline:?}");
    }
    assert!(
        now.windows.iter().any(|w| w.id == window),
        "look-alike window deleted"
    );
    let days = inspect::approve_after_days(&client, &lookalike)
        .await
        .expect("rules");
    assert!(days.is_empty(), "look-alike changed: {days:?}");
    assert_eq!(now.owned_by(&stack.cluster_id).0.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_an_account_does_not_admit_gets_nothing_there() {
    let stack = converged_examples("tenancy", &[]).await;
    stack
        .kubectl(["create", "namespace", "intruder"])
        .expect("namespace");
    let manifest = r#"
apiVersion: patchfleet.io/v1alpha1
kind: PatchPolicy
metadata: {name: sneaky, namespace: intruder}
spec:
  baselines:
    - operatingSystem: WINDOWS
      approvedPatches: [KB1]
---
apiVersion: patchfleet.io/v1alpha1
kind: PatchGroup
metadata: {name: sneaky, namespace: intruder}
spec:
  policyRef: {name: sneaky}
  accountSelector: {matchLabels: {patchfleet.io/managed: "true"}}
"#;
    stack.apply_text("intruder", manifest).expect("applied");
    eventually(
        "the group says the accounts do not admit its namespace",
        &stack,
        CONVERGE,
        || async {
            let reason = stack
                .kubectl([
                    "get",
                    "pgrp",
                    "sneaky",
                    "-n",
                    "intruder",
                    "-o",
                    "jsonpath={.status.failures[*].reason}",
                ])
                .unwrap_or_default();
            reason.contains("NamespaceNotPermitted")
        },
    )
    .await;
    for region in ALL_REGIONS {
        let now = look(&stack, region).await;
        assert!(
            now.baselines.iter().all(|b| !b.name.contains("intruder")),
            "{region:?}"
        );
        assert!(
            now.registrations
                .iter()
                .all(|(group, _, _)| group != "sneaky"),
            "{region:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_through_throttling_and_one_denied_account_blocks_no_other() {
    let mut stack = Stack::start("faults").await.expect("stack");
    let mut faults = stack.sim.sim().faults.spec();
    faults.seed = 7;
    faults.throttle_rate = 0.3;
    faults.unreachable_accounts = vec!["222222222222".into()];
    stack.sim.sim().faults.set(faults);
    stack.start_controller().expect("controller");
    stack.apply("examples").expect("examples");

    // Ready alone is not enough: the account may be Ready on what it was given before the
    // policies and groups of examples/ reached it (seen once: Ready with 2 of 26
    // baselines), so wait for its eu-west-1 status to count all 26 as well.
    eventually(
        "customer-a converges despite 30% throttling",
        &stack,
        CONVERGE,
        || async {
            stack
                .kubectl([
                    "get",
                    "sysacct",
                    "customer-a-aws",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.status.regions[?(@.region==\"eu-west-1\")].patchBaselines}",
                ])
                .is_ok_and(|s| s == "True 26")
        },
    )
    .await;
    // The test looks without faults; the controller's work is done.
    stack.sim.sim().faults.set(Default::default());
    let denied = stack
        .kubectl(["get", "sysacct", "customer-b-vmware", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].message}"])
        .expect("status");
    assert!(denied.starts_with("False"), "{denied}");
    assert!(stack.calls("") > 0);
    let eu = look(&stack, CUSTOMER_A_EU).await;
    assert_eq!(eu.owned_by(&stack.cluster_id).0.len(), 26);
    let throttled: u64 = stack
        .sim
        .sim()
        .counters
        .snapshot()
        .iter()
        .filter(|c| c.key.outcome == "ThrottlingException")
        .map(|c| c.count)
        .sum();
    assert!(
        throttled > 0,
        "no call was throttled: the test proves nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_mid_convergence_leaves_no_duplicate_and_nothing_orphaned() {
    let mut stack = Stack::start("sigkill").await.expect("stack");
    let mut faults = stack.sim.sim().faults.spec();
    faults.latency_ms.insert("CreatePatchBaseline".into(), 150);
    stack.sim.sim().faults.set(faults);
    stack.start_controller().expect("controller");
    stack.apply("examples").expect("examples");
    eventually("some baselines exist", &stack, CONVERGE, || async {
        stack.calls("CreatePatchBaseline") >= 5
    })
    .await;
    stack.kill_controller().expect("SIGKILL");
    let mut faults = stack.sim.sim().faults.spec();
    faults.latency_ms.clear();
    stack.sim.sim().faults.set(faults);
    stack.start_controller().expect("restarted");
    stack
        .wait_ready(&ALL_KINDS, CONVERGE)
        .expect("converged after restart");

    for (region, expected) in [
        (CUSTOMER_A_EU, 26),
        (CUSTOMER_A_US, 24),
        (CUSTOMER_B_EU, 24),
    ] {
        let now = look(&stack, region).await;
        let names: Vec<&str> = now.baselines.iter().map(|b| b.name.as_str()).collect();
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(
            names.len(),
            unique.len(),
            "{region:?}: duplicate baselines {names:?}"
        );
        assert_eq!(
            now.owned_by(&stack.cluster_id).0.len(),
            expected,
            "{region:?}"
        );
        let windows: Vec<&str> = now.windows.iter().map(|w| w.name.as_str()).collect();
        let unique: std::collections::BTreeSet<&str> = windows.iter().copied().collect();
        assert_eq!(
            windows.len(),
            unique.len(),
            "{region:?}: duplicate windows {windows:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_that_would_be_exceeded_refuses_the_creates_over_it_and_nothing_else() {
    // customer-a eu-west-1 needs 26 baselines; the other account-regions need 24.
    let mut stack = Stack::start("quota").await.expect("stack");
    stack
        .start_controller_with(&["--quota-baselines", "25"])
        .expect("controller");
    stack.apply("examples").expect("examples");
    // examples/ reaches the controller resource by resource, so what fits the quota may
    // be created before the rest arrives; from the moment the new baselines would exceed
    // it, they are refused (and nothing more is written for them), while the windows and
    // everything else in the account-region are written as declared.
    eventually(
        "the account names the refused region",
        &stack,
        CONVERGE,
        || async {
            stack
                .kubectl([
                    "get",
                    "sysacct",
                    "customer-a-aws",
                    "-o",
                    "jsonpath={.status.failures[*].region} {.status.failures[*].reason}",
                ])
                .is_ok_and(|s| s == "eu-west-1 QuotaExceeded")
        },
    )
    .await;
    // The windows may reach the controller after the baselines were refused (under
    // load, examples/ arrives slowly): the quiet period starts once they are written.
    eventually("the windows are written", &stack, CONVERGE, || async {
        let eu = look(&stack, CUSTOMER_A_EU).await;
        let (_, windows) = eu.owned_by(&stack.cluster_id);
        windows.len() == 3
            && windows
                .iter()
                .all(|w| !w.targets.is_empty() && !w.tasks.is_empty())
    })
    .await;
    let writes_in_eu = || stack.writes_in("111111111111", "eu-west-1");
    let before = writes_in_eu();
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        writes_in_eu(),
        before,
        "a refused account-region was written to"
    );
    let eu = look(&stack, CUSTOMER_A_EU).await;
    assert!(
        eu.owned_by(&stack.cluster_id).0.len() <= 25,
        "the quota was exceeded"
    );
    let (_, windows) = eu.owned_by(&stack.cluster_id);
    let mut window_names: Vec<&str> = windows.iter().map(|w| w.name.as_str()).collect();
    window_names.sort();
    assert_eq!(
        window_names,
        [
            "patchfleet-patching-frozen-scan",
            "patchfleet-patching-monthly",
            "patchfleet-patching-opportunistic"
        ],
        "the windows are not held back by the baselines' quota"
    );
    let reasons = stack
        .kubectl([
            "get",
            "ppol",
            "-n",
            "patching",
            "-o",
            "jsonpath={.items[*].status.failures[*].reason}",
        ])
        .expect("status");
    assert!(reasons.contains("QuotaExceeded"), "{reasons}");
    // The other account-regions are not held back.
    eventually("customer-b converges", &stack, CONVERGE, || async {
        look(&stack, CUSTOMER_B_EU)
            .await
            .owned_by(&stack.cluster_id)
            .0
            .len()
            == 24
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_policy_stalls_the_group_with_an_event_and_writes_nothing_for_it() {
    let mut stack = Stack::start("references").await.expect("stack");
    stack.start_controller().expect("controller");
    stack.apply("examples").expect("examples");
    stack
        .kubectl([
            "patch",
            "pgrp",
            "late",
            "-n",
            "patching",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"policyRef":{"name":"missing"}}}"#,
        ])
        .expect("patched");
    eventually("the group is Stalled naming the field", &stack, CONVERGE, || async {
        let stalled = stack
            .kubectl(["get", "pgrp", "late", "-n", "patching", "-o", "jsonpath={.status.conditions[?(@.type==\"Stalled\")].status} {.status.conditions[?(@.type==\"Stalled\")].message}"])
            .unwrap_or_default();
        stalled.starts_with("True") && stalled.contains("spec.policyRef.name")
    })
    .await;
    let events = stack
        .kubectl([
            "get",
            "events",
            "-n",
            "patching",
            "--field-selector",
            "involvedObject.name=late,reason=PolicyNotFound",
            "-o",
            "name",
        ])
        .expect("events");
    assert!(!events.trim().is_empty(), "no PolicyNotFound event");
    // What the group had registered before its reference broke is withdrawn, and
    // nothing is registered for it anywhere.
    eventually(
        "no account-region registers the group",
        &stack,
        CONVERGE,
        || async {
            let mut clean = true;
            for region in ALL_REGIONS {
                let now = look(&stack, region).await;
                clean &= now
                    .registrations
                    .iter()
                    .all(|(group, _, _)| group != "late");
            }
            clean
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_prints_the_desired_state_and_the_changes_against_ssm() {
    let stack = Stack::start("plan").await.expect("stack");
    let examples = patchfleet_tests::repo_root().join("examples");
    let output = stack
        .plan(&examples, &["--cluster-id", "review"])
        .expect("patchfleet plan runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("# customer-a-aws (111111111111) eu-west-1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("patch baseline patchfleet-patching-early-windows (WINDOWS"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+ create patch baseline patchfleet-patching-late-debian"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+ create maintenance window patchfleet-patching-monthly"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "emergency run MaintenanceWindow/patching/emergency token CHG-2026-1123: \
             SendCommand AWS-RunPatchBaseline Install (RebootIfNeeded) to tag:Patch Group = \
             early, late, on-time (once per token)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(", as arn:aws:iam::111111111111:role/patchfleet-patching)"),
        "the snapshot task's role: {stdout}"
    );
    // Planning writes nothing (and sends no command).
    assert_eq!(stack.writes(), 0);
}
