//! docs/rollout.md end to end: a PatchRollout over three stages (verify, prod-early, and
//! prod-late approved by hand) on the real API server, with the simulator's fleet and
//! clock: one Install window targets every stage's group and runs on the simulated
//! schedule; each stage's baselines approve what the release's cutoff allows only once
//! the stage before installed it. Checked node by node against the simulator, with the
//! simulator's call counters for what must not happen.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ssm::types::{OperatingSystem as SdkOs, PatchComplianceDataState};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use patchfleet_api::v1alpha1::{PatchRollout, StageState, StageStatus};
use patchfleet_tests::e2e::eventually;
use patchfleet_tests::fleet::{A, node, put_fleet, set_clock};
use patchfleet_tests::stack::{CONVERGE, Stack, ssm_client};
use ssm_sim::fleet::{InstanceSpec, PatchSpec};

const STEP: Duration = Duration::from_secs(90);
const DAY: f64 = 86_400.0;
const NAMESPACE: &str = "rollout";
const RELEASE: &str = "2026-11";

/// The nodes of each stage's group (two each).
const STAGES: [(&str, [&str; 2]); 3] = [
    ("verify", ["i-0c000000000000001", "i-0c000000000000002"]),
    ("prod-early", ["i-0c000000000000003", "i-0c000000000000004"]),
    ("prod-late", ["i-0c000000000000005", "i-0c000000000000006"]),
];

/// YYYY-MM-DD of `days` before the simulated `now`.
fn day(now: f64, days: f64) -> String {
    ssm_sim::clock::iso8601(now - days * DAY)[..10].to_owned()
}

/// Three security patches on every node: two released before the release's cutoff (ten
/// days ago), one after it.
fn patches(now: f64) -> Vec<PatchSpec> {
    [("openssl", 30.0), ("kernel", 15.0), ("curl", 3.0)]
        .into_iter()
        .map(|(title, age)| PatchSpec {
            title: title.to_owned(),
            classification: "Security".to_owned(),
            severity: "Critical".to_owned(),
            release_date: day(now, age),
            ..PatchSpec::default()
        })
        .collect()
}

fn fleet(now: f64, failing: &[&str]) -> Vec<InstanceSpec> {
    STAGES
        .iter()
        .flat_map(|(group, ids)| ids.iter().map(move |id| (*group, *id)))
        .map(|(group, id)| InstanceSpec {
            patches: patches(now),
            fails_install: failing.contains(&id),
            ..node(id, Some(group))
        })
        .collect()
}

/// The account, the policy (every security patch at once: approveAfterDays 0), the three
/// groups, one daily Install window over them, and the rollout.
fn manifests(now: f64) -> String {
    let groups: String = STAGES
        .iter()
        .map(|(name, _)| {
            format!(
                "apiVersion: patchfleet.io/v1alpha1
kind: PatchGroup
metadata: {{name: {name}, namespace: {NAMESPACE}}}
spec:
  policyRef: {{name: monthly}}
  accountSelector: {{matchLabels: {{patchfleet.io/managed: \"true\"}}}}
---
"
            )
        })
        .collect();
    let first_run = (now / 3_600.0).floor() * 3_600.0 + 3_600.0;
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {NAMESPACE}, labels: {{patchfleet.io/tenant: rollout}}}}
---
apiVersion: patchfleet.io/v1alpha1
kind: SystemAccount
metadata:
  name: customer-a
  labels: {{patchfleet.io/managed: "true"}}
spec:
  accountId: "{account}"
  roleArn: arn:aws:iam::{account}:role/patchfleet
  externalId: {external}
  regions: [{region}]
  namespaceSelector: {{matchLabels: {{patchfleet.io/tenant: rollout}}}}
  patchGroupGrants:
    - namespace: {NAMESPACE}
      values: [verify, prod-early, prod-late]
---
apiVersion: patchfleet.io/v1alpha1
kind: PatchPolicy
metadata: {{name: monthly, namespace: {NAMESPACE}}}
spec:
  baselines:
    - operatingSystem: AMAZON_LINUX_2
      approvalRules:
      - patchFilters:
          - {{key: CLASSIFICATION, values: [Security]}}
        approveAfterDays: 0
        complianceLevel: CRITICAL
---
{groups}apiVersion: patchfleet.io/v1alpha1
kind: MaintenanceWindow
metadata: {{name: nightly-install, namespace: {NAMESPACE}}}
spec:
  strategy: Scheduled
  schedule: cron(0 {hour} * * ? *)
  scheduleTimezone: Etc/UTC
  duration: 2
  cutoff: 1
  targets: {{patchGroups: [verify, prod-early, prod-late]}}
  tasks:
    - {{name: install, operation: Install, rebootOption: RebootIfNeeded, priority: 1, maxErrors: "100%"}}
---
apiVersion: patchfleet.io/v1alpha1
kind: PatchRollout
metadata: {{name: monthly, namespace: {NAMESPACE}}}
spec:
  policyRef: {{name: monthly}}
  release: {{token: "{RELEASE}", cutoff: "{cutoff}"}}
  stages:
    - name: verify
      patchGroups: [verify]
      soak: 3s
      gate: {{maxFailed: "0", minInstalled: "100%"}}
    - name: prod-early
      patchGroups: [prod-early]
    - name: prod-late
      patchGroups: [prod-late]
      approval: Manual
"#,
        account = A.0,
        external = A.1,
        region = A.2,
        hour = &ssm_sim::clock::iso8601(first_run)[11..13],
        cutoff = day(now, 10.0),
    )
}

/// The stack: the controller (compliance pass every 2 s), the fleet, the manifests, and
/// the time the window first runs (the next full hour, then daily).
async fn start(test: &str, failing: &[&str]) -> (Stack, f64) {
    let mut stack = Stack::start(test).await.expect("stack starts");
    stack
        .start_controller_with(&["--compliance-interval", "2s"])
        .expect("controller starts");
    let now = stack.sim.sim().clock.now();
    put_fleet(&stack, A, fleet(now, failing));
    stack
        .apply_text(test, &manifests(now))
        .expect("manifests apply");
    stack
        .wait_ready(
            &[
                "systemaccounts",
                "patchpolicies",
                "patchgroups",
                "maintenancewindows",
            ],
            CONVERGE,
        )
        .expect("the resources converge");
    let first_run = (now / 3_600.0).floor() * 3_600.0 + 3_600.0;
    (stack, first_run)
}

async fn rollout(stack: &Stack) -> Option<PatchRollout> {
    let api: Api<PatchRollout> = Api::namespaced(stack.client().await.ok()?, NAMESPACE);
    api.get("monthly").await.ok()
}

fn stage<'a>(rollout: &'a PatchRollout, name: &str) -> Option<&'a StageStatus> {
    rollout
        .status
        .as_ref()?
        .stages
        .iter()
        .find(|s| s.name == name)
}

/// Waits until the stages are in these states (and returns the rollout).
async fn wait_states(stack: &Stack, what: &str, states: [StageState; 3]) -> PatchRollout {
    let in_states = |r: &PatchRollout| {
        STAGES
            .iter()
            .map(|(name, _)| stage(r, name).map(|s| s.state))
            .eq(states.map(Some))
    };
    eventually(what, stack, STEP, || async {
        rollout(stack).await.is_some_and(|r| in_states(&r))
    })
    .await;
    // The stages do not move on without the test's next step (a window run, an edit).
    rollout(stack).await.expect("the rollout")
}

/// The approval rules' ApproveUntilDate of the baseline registered for `group`; None
/// when it has no rule.
async fn cutoff_of(ssm: &aws_sdk_ssm::Client, group: &str) -> (String, Option<String>) {
    let id = ssm
        .get_patch_baseline_for_patch_group()
        .patch_group(group)
        .operating_system(SdkOs::AmazonLinux2)
        .send()
        .await
        .expect("the group's baseline")
        .baseline_id
        .expect("an id");
    let baseline = ssm
        .get_patch_baseline()
        .baseline_id(&id)
        .send()
        .await
        .expect("the baseline");
    let rules = baseline
        .approval_rules()
        .map(|r| r.patch_rules().to_vec())
        .unwrap_or_default();
    for rule in &rules {
        assert_eq!(
            rule.approve_after_days(),
            None,
            "{group}: no approval by age"
        );
    }
    let until: BTreeSet<Option<String>> = rules
        .iter()
        .map(|r| r.approve_until_date().map(str::to_owned))
        .collect();
    assert!(
        until.len() <= 1,
        "{group}: one cutoff for every rule: {until:?}"
    );
    (
        baseline.name().unwrap_or_default().to_owned(),
        until.into_iter().next().flatten(),
    )
}

/// Waits until the baseline registered for `group` approves up to `cutoff`.
async fn wait_cutoff(stack: &Stack, ssm: &aws_sdk_ssm::Client, group: &str, cutoff: &str) {
    let what = format!("{group}'s baseline cut off at the release");
    eventually(&what, stack, STEP, || async {
        cutoff_of(ssm, group).await.1.as_deref() == Some(cutoff)
    })
    .await;
}

/// Each node's installed patches, as SSM reports them (DescribeInstancePatches).
async fn installed(ssm: &aws_sdk_ssm::Client) -> BTreeMap<String, BTreeSet<String>> {
    let mut found = BTreeMap::new();
    for (_, ids) in STAGES {
        for id in ids {
            let patches = ssm
                .describe_instance_patches()
                .instance_id(id)
                .send()
                .await
                .map(|out| out.patches().to_vec())
                .unwrap_or_default();
            let titles = patches
                .iter()
                .filter(|p| {
                    matches!(
                        p.state(),
                        PatchComplianceDataState::Installed
                            | PatchComplianceDataState::InstalledPendingReboot
                    )
                })
                .map(|p| p.title().to_owned())
                .collect();
            found.insert(id.to_string(), titles);
        }
    }
    found
}

fn set(titles: &[&str]) -> BTreeSet<String> {
    titles.iter().map(|t| t.to_string()).collect()
}

/// Baseline writes (create, update, delete, register, deregister) so far.
fn baseline_writes(stack: &Stack) -> u64 {
    [
        "CreatePatchBaseline",
        "UpdatePatchBaseline",
        "DeletePatchBaseline",
        "RegisterPatchBaselineForPatchGroup",
        "DeregisterPatchBaselineForPatchGroup",
    ]
    .into_iter()
    .map(|op| stack.calls(op))
    .sum()
}

/// The rollout's Events by reason.
async fn events(stack: &Stack) -> BTreeMap<String, usize> {
    let client = stack.client().await.expect("client");
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client, NAMESPACE);
    let list = api.list(&ListParams::default()).await.expect("events");
    let mut by_reason = BTreeMap::new();
    for event in list.items {
        if event.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("PatchRollout") {
            *by_reason
                .entry(event.reason.unwrap_or_default())
                .or_default() += event
                .series
                .as_ref()
                .map_or(1, |s| usize::try_from(s.count).unwrap_or(1));
        }
    }
    by_reason
}

async fn patch_stage(stack: &Stack, index: usize, field: &str, value: &str) {
    let api: Api<PatchRollout> = Api::namespaced(stack.client().await.expect("client"), NAMESPACE);
    let current = api.get("monthly").await.expect("the rollout");
    let mut stages = serde_json::to_value(&current.spec.stages).expect("stages");
    stages[index][field] = serde_json::Value::String(value.to_owned());
    api.patch(
        "monthly",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"stages": stages}})),
    )
    .await
    .expect("patched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_moves_stage_by_stage_on_what_the_stage_before_installed() {
    use StageState::*;
    let (mut stack, first_run) = start("rollout", &[]).await;
    let ssm = ssm_client(&stack, A.0, A.1, A.2).await.expect("SSM client");
    let cutoff = day(stack.sim.sim().clock.now(), 10.0);

    // The release reaches the first stage only.
    let r = wait_states(&stack, "verify installing", [Installing, Waiting, Waiting]).await;
    let release = r
        .status
        .as_ref()
        .and_then(|s| s.release.clone())
        .expect("a release");
    assert_eq!(
        (release.token.as_str(), release.cutoff.as_str()),
        (RELEASE, cutoff.as_str())
    );
    wait_cutoff(&stack, &ssm, "verify", &cutoff).await;
    let (early_before, early_cutoff) = cutoff_of(&ssm, "prod-early").await;
    assert_eq!(early_cutoff, None, "prod-early approves nothing yet");
    let (late_before, _) = cutoff_of(&ssm, "prod-late").await;

    // The window runs: verify installs what the cutoff allows; the others install nothing.
    set_clock(&stack, first_run + 60.0);
    let before_cutoff = set(&["openssl", "kernel"]);
    eventually("verify installed the release", &stack, STEP, || async {
        let nodes = installed(&ssm).await;
        STAGES[0].1.iter().all(|id| nodes[*id] == before_cutoff)
    })
    .await;
    let nodes = installed(&ssm).await;
    for id in STAGES[1].1.iter().chain(&STAGES[2].1) {
        assert_eq!(nodes[*id], BTreeSet::new(), "{id} installed nothing yet");
    }

    // After the soak, prod-early takes exactly the same cutoff; prod-late waits for a person.
    let r = wait_states(
        &stack,
        "prod-early installing",
        [Passed, Installing, Waiting],
    )
    .await;
    let verify = stage(&r, "verify").expect("verify");
    let evidence = verify.evidence.clone().expect("verify's evidence");
    assert_eq!(
        (evidence.nodes, evidence.installed, evidence.failed),
        (2, 2, 0)
    );
    assert!(evidence.window_execution.is_some(), "{evidence:?}");
    assert_eq!(
        stage(&r, "prod-early").and_then(|s| s.cutoff.clone()),
        Some(cutoff.clone())
    );
    wait_cutoff(&stack, &ssm, "prod-early", &cutoff).await;
    assert_ne!(
        cutoff_of(&ssm, "prod-early").await.0,
        early_before,
        "a new baseline"
    );
    assert_eq!(
        cutoff_of(&ssm, "prod-late").await,
        (late_before.clone(), None)
    );

    // The next run: prod-early installs exactly what verify installed, node by node.
    set_clock(&stack, first_run + DAY + 60.0);
    eventually("prod-early installed the release", &stack, STEP, || async {
        let nodes = installed(&ssm).await;
        STAGES[1]
            .1
            .iter()
            .all(|id| nodes[*id] == nodes[STAGES[0].1[0]])
    })
    .await;
    let r = wait_states(
        &stack,
        "prod-late awaits approval",
        [Passed, Passed, AwaitingApproval],
    )
    .await;
    assert!(
        stage(&r, "prod-late").is_some_and(|s| s.message.contains("approvedRelease")),
        "{r:?}"
    );
    assert_eq!(
        r.status.as_ref().and_then(|s| s.progress.as_deref()),
        Some("verify=Passed,prod-early=Passed,prod-late=AwaitingApproval")
    );
    assert_eq!(
        cutoff_of(&ssm, "prod-late").await,
        (late_before.clone(), None)
    );

    // A restart mid-rollout changes nothing and sends nothing twice.
    let writes = baseline_writes(&stack);
    let sent = events(&stack).await;
    let status = r.status.clone();
    stack.kill_controller().expect("controller stops");
    stack
        .start_controller_with(&["--compliance-interval", "2s"])
        .expect("controller restarts");
    let restarted = stack
        .controller_log()
        .matches("compliance pass done")
        .count();
    eventually(
        "two compliance passes after the restart",
        &stack,
        STEP,
        || async {
            stack
                .controller_log()
                .matches("compliance pass done")
                .count()
                >= restarted + 2
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        baseline_writes(&stack),
        writes,
        "no baseline written after the restart"
    );
    assert_eq!(events(&stack).await, sent, "no Event sent twice");
    let after = rollout(&stack).await.expect("the rollout");
    let states = |s: &Option<patchfleet_api::v1alpha1::PatchRolloutStatus>| {
        s.as_ref().map(|s| {
            s.stages
                .iter()
                .map(|st| {
                    (
                        st.name.clone(),
                        st.release.clone(),
                        st.state,
                        st.since.clone(),
                    )
                })
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(
        states(&after.status),
        states(&status),
        "the stages are where they were"
    );

    // A person approves: prod-late takes the release and installs it at the next run.
    patch_stage(&stack, 2, "approvedRelease", RELEASE).await;
    wait_states(&stack, "prod-late installing", [Passed, Passed, Installing]).await;
    set_clock(&stack, first_run + 2.0 * DAY + 60.0);
    let r = wait_states(&stack, "every stage passed", [Passed, Passed, Passed]).await;
    let ready = r
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready").cloned())
        .expect("Ready");
    assert_eq!(ready.status, "True", "{ready:?}");

    // The patch released after the cutoff was approved nowhere.
    let nodes = installed(&ssm).await;
    for (id, titles) in &nodes {
        assert_eq!(
            titles, &before_cutoff,
            "{id}: exactly the release, never curl"
        );
    }
    let sent = events(&stack).await;
    assert_eq!(sent.get("StagePassed"), Some(&3), "{sent:?}");
    assert_eq!(sent.get("StageFailed"), None, "{sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_gate_holds_every_later_stage_until_a_person_overrides_it() {
    use StageState::*;
    let failing = STAGES[0].1[1];
    let (stack, first_run) = start("rollout-gate", &[failing]).await;
    let ssm = ssm_client(&stack, A.0, A.1, A.2).await.expect("SSM client");
    let cutoff = day(stack.sim.sim().clock.now(), 10.0);
    wait_states(&stack, "verify installing", [Installing, Waiting, Waiting]).await;
    wait_cutoff(&stack, &ssm, "verify", &cutoff).await;
    let early = cutoff_of(&ssm, "prod-early").await;
    let late = cutoff_of(&ssm, "prod-late").await;

    // One verify node fails its install: beyond the gate (maxFailed 0).
    set_clock(&stack, first_run + 60.0);
    let r = wait_states(&stack, "verify failed", [Failed, Waiting, Waiting]).await;
    let verify = stage(&r, "verify").expect("verify");
    assert!(
        verify.message.contains("1 of 2 nodes failed")
            && verify.message.contains("1 in PatchGroup verify"),
        "{verify:?}"
    );
    let stalled = r
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Stalled").cloned())
        .expect("Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "GateFailed")
    );
    eventually(
        "a Warning Event names the failures",
        &stack,
        STEP,
        || async { events(&stack).await.get("StageFailed") == Some(&1) },
    )
    .await;

    // Held: more runs and passes change no baseline of the later stages.
    let writes = baseline_writes(&stack);
    let updates = stack.calls("UpdatePatchBaseline");
    set_clock(&stack, first_run + DAY + 60.0);
    let passes = stack
        .controller_log()
        .matches("compliance pass done")
        .count();
    eventually("three more compliance passes", &stack, STEP, || async {
        stack
            .controller_log()
            .matches("compliance pass done")
            .count()
            >= passes + 3
    })
    .await;
    assert_eq!(
        stack.calls("UpdatePatchBaseline"),
        updates,
        "no UpdatePatchBaseline"
    );
    assert_eq!(
        baseline_writes(&stack),
        writes,
        "no baseline written while held"
    );
    assert_eq!(cutoff_of(&ssm, "prod-early").await, early);
    assert_eq!(cutoff_of(&ssm, "prod-late").await, late);
    let nodes = installed(&ssm).await;
    for id in STAGES[1].1.iter().chain(&STAGES[2].1) {
        assert_eq!(nodes[*id], BTreeSet::new(), "{id} installed nothing");
    }
    let r = rollout(&stack).await.expect("the rollout");
    assert_eq!(
        stage(&r, "verify").map(|s| s.state),
        Some(Failed),
        "never moves on its own"
    );

    // A person's override lets the release go on.
    patch_stage(&stack, 0, "overrideRelease", RELEASE).await;
    wait_states(
        &stack,
        "prod-early installing",
        [Passed, Installing, Waiting],
    )
    .await;
    wait_cutoff(&stack, &ssm, "prod-early", &cutoff).await;
}
