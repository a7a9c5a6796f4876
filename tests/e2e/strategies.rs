//! The four strategies end to end: the SSM objects each one makes, the Emergency run sent
//! once per run token in every account with its outcome in status, the snapshot task and
//! its role, and the Frozen refusal. The simulator's fleet gives commands real outcomes.

use std::collections::BTreeMap;

use patchfleet_tests::e2e::{
    CUSTOMER_A_EU, CUSTOMER_A_US, CUSTOMER_B_EU, converged_examples, eventually, look, sim_nodes,
};
use patchfleet_tests::inspect::{TaskDetail, window_tasks};
use patchfleet_tests::stack::{ALL_KINDS, CONVERGE, Stack, ssm_client};
use serde_json::Value;
use ssm_sim::fleet::{FleetSpec, InstanceSpec, tags};

const NS: &str = "patching";
const A: &str = CUSTOMER_A_EU.0;
const B: &str = CUSTOMER_B_EU.0;
const FIRST_TOKEN: &str = "CHG-2026-1123";
const SECOND_TOKEN: &str = "CHG-2026-1124";
const THIRD_TOKEN: &str = "CHG-2026-1125";

fn instance(id: &str, group: &str, missing: u64, fails: bool) -> InstanceSpec {
    InstanceSpec {
        instance_id: id.into(),
        tags: tags([("Patch Group", group)]),
        missing_patches: missing,
        fails_install: fails,
        pending_reboot: false,
        ..InstanceSpec::default()
    }
}

/// customer-a eu-west-1: one early node missing 3 patches, one on-time node missing none,
/// one node of another group; customer-b: one late node whose installs fail;
/// customer-a us-east-1: no node at all.
fn seed_fleet(stack: &Stack) {
    let fleets = [
        FleetSpec {
            account_id: CUSTOMER_A_EU.0.into(),
            region: CUSTOMER_A_EU.2.into(),
            instances: vec![
                instance("i-0000000000000000a", "early", 3, false),
                instance("i-0000000000000000b", "on-time", 0, false),
                instance("i-0000000000000000c", "not-patchfleets", 5, false),
            ],
        },
        FleetSpec {
            account_id: CUSTOMER_B_EU.0.into(),
            region: CUSTOMER_B_EU.2.into(),
            instances: vec![instance("i-0000000000000000d", "late", 2, true)],
        },
    ];
    for fleet in &fleets {
        ssm_sim::fleet::apply(stack.sim.sim(), fleet);
    }
}

/// Calls of one operation the simulator answered in one account-region.
fn calls_in(stack: &Stack, operation: &str, (account, _, region): (&str, &str, &str)) -> u64 {
    stack
        .sim
        .sim()
        .counters
        .snapshot()
        .iter()
        .filter(|c| c.key.operation == operation)
        .filter(|c| c.key.account == account && c.key.region == region)
        .map(|c| c.count)
        .sum()
}

fn sends(stack: &Stack, region: (&str, &str, &str)) -> u64 {
    calls_in(stack, "SendCommand", region)
}

/// One DescribePatchBaselines per pass of the controller over the account-region.
fn passes(stack: &Stack, region: (&str, &str, &str)) -> u64 {
    calls_in(stack, "DescribePatchBaselines", region)
}

fn window_json(stack: &Stack, name: &str) -> Value {
    let text = stack
        .kubectl(["get", "mw", name, "-n", NS, "-o", "json"])
        .expect("kubectl get mw");
    serde_json::from_str(&text).expect("MaintenanceWindow JSON")
}

/// `kubectl patch` of a MaintenanceWindow in NS (`--type=merge` or `--type=json`).
fn patch_window(
    stack: &Stack,
    name: &str,
    patch_type: &str,
    patch: &str,
) -> anyhow::Result<String> {
    stack.kubectl([
        "patch",
        "mw",
        name,
        "-n",
        NS,
        &format!("--type={patch_type}"),
        "-p",
        patch,
    ])
}

/// The reasons of the Events about a MaintenanceWindow in NS, one per line.
fn event_reasons(stack: &Stack, name: &str) -> String {
    stack
        .kubectl([
            "get",
            "events",
            "-n",
            NS,
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}",
        ])
        .expect("events")
}

/// status.emergencyRuns by (account id, region).
fn emergency_runs(stack: &Stack) -> BTreeMap<(String, String), Value> {
    window_json(stack, "emergency")["status"]["emergencyRuns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let key = (
                r["accountId"].as_str().unwrap_or_default().to_owned(),
                r["region"].as_str().unwrap_or_default().to_owned(),
            );
            (key, r.clone())
        })
        .collect()
}

fn run_of<'r>(
    runs: &'r BTreeMap<(String, String), Value>,
    (account, _, region): (&str, &str, &str),
) -> &'r Value {
    runs.get(&(account.to_owned(), region.to_owned()))
        .unwrap_or_else(|| panic!("no emergency run for {account} {region}: {runs:#?}"))
}

/// Every selected account-region has a finished run of `token`.
fn all_finished(runs: &BTreeMap<(String, String), Value>, token: &str) -> bool {
    runs.len() == 3
        && runs.values().all(|r| {
            r["runToken"] == token
                && matches!(
                    r["status"].as_str(),
                    Some("Success" | "Failed" | "TimedOut" | "Cancelled")
                )
        })
}

fn command_ids(runs: &BTreeMap<(String, String), Value>) -> Vec<String> {
    runs.values()
        .map(|r| r["commandId"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_run_happens_once_per_run_token_with_each_accounts_outcome() {
    let mut stack = Stack::start("emergency").await.expect("stack starts");
    seed_fleet(&stack);
    stack.start_controller().expect("controller starts");
    stack.apply("examples").expect("examples apply");
    stack
        .wait_ready(&ALL_KINDS, CONVERGE)
        .expect("examples converge");

    eventually(
        "the first run finishes everywhere",
        &stack,
        CONVERGE,
        || async { all_finished(&emergency_runs(&stack), FIRST_TOKEN) },
    )
    .await;
    let runs = emergency_runs(&stack);
    let a_eu = run_of(&runs, CUSTOMER_A_EU);
    assert_eq!(a_eu["status"], "Success", "{a_eu}");
    assert_eq!(
        a_eu["targetCount"], 2,
        "early and on-time, not the other group: {a_eu}"
    );
    assert_eq!(a_eu["completedCount"], 2, "{a_eu}");
    assert_eq!(a_eu["errorCount"], 0, "{a_eu}");
    let a_us = run_of(&runs, CUSTOMER_A_US);
    assert_eq!(a_us["status"], "Success", "{a_us}");
    assert_eq!(a_us["statusDetails"], "NoInstancesInTag", "{a_us}");
    assert_eq!(a_us["targetCount"], 0, "{a_us}");
    let b_eu = run_of(&runs, CUSTOMER_B_EU);
    assert_eq!(
        b_eu["status"], "Failed",
        "the failing node fails its account: {b_eu}"
    );
    assert_eq!(b_eu["errorCount"], 1, "{b_eu}");
    for region in [CUSTOMER_A_EU, CUSTOMER_A_US, CUSTOMER_B_EU] {
        assert_eq!(sends(&stack, region), 1, "one command in {region:?}");
    }
    // What the command did: installed what was missing, rebooted only that node.
    let fleet = sim_nodes(&stack, CUSTOMER_A_EU);
    let early = &fleet["i-0000000000000000a"];
    assert_eq!(early["installedPatches"], 3, "{early}");
    assert_eq!(early["reboots"], 1, "{early}");
    let on_time = &fleet["i-0000000000000000b"];
    assert_eq!(on_time["installedPatches"], 0, "{on_time}");
    assert_eq!(
        on_time["reboots"], 0,
        "nothing installed, no reboot: {on_time}"
    );
    assert_eq!(
        fleet["i-0000000000000000c"]["runs"],
        Value::Array(vec![]),
        "another group's node is not touched"
    );
    let events = event_reasons(&stack, "emergency");
    for reason in [
        "EmergencyRunSent",
        "EmergencyRunSucceeded",
        "EmergencyRunFailed",
    ] {
        assert!(events.contains(reason), "{reason} in {events}");
    }

    // Re-applying the manifest runs nothing; neither does a restarted controller that has
    // lost the status as well (the command's marker in SSM tells it was sent).
    let first_ids = command_ids(&runs);
    stack.apply("examples").expect("examples re-apply");
    stack.kill_controller().expect("controller killed");
    stack
        .kubectl([
            "patch",
            "mw",
            "emergency",
            "-n",
            NS,
            "--subresource=status",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/status/emergencyRuns"}]"#,
        ])
        .expect("status cleared");
    assert!(emergency_runs(&stack).is_empty());
    let before = passes(&stack, CUSTOMER_B_EU);
    stack.start_controller().expect("controller restarts");
    eventually(
        "the runs are found again, and two more passes made",
        &stack,
        CONVERGE,
        || async {
            let runs = emergency_runs(&stack);
            all_finished(&runs, FIRST_TOKEN) && passes(&stack, CUSTOMER_B_EU) >= before + 2
        },
    )
    .await;
    assert_eq!(
        command_ids(&emergency_runs(&stack)),
        first_ids,
        "the same commands"
    );
    // Finished runs cost no call: two more passes read no command.
    let listed = calls_in(&stack, "ListCommands", CUSTOMER_B_EU);
    let now = passes(&stack, CUSTOMER_B_EU);
    eventually("two more passes", &stack, CONVERGE, || async {
        passes(&stack, CUSTOMER_B_EU) >= now + 2
    })
    .await;
    assert_eq!(calls_in(&stack, "ListCommands", CUSTOMER_B_EU), listed);
    for region in [CUSTOMER_A_EU, CUSTOMER_A_US, CUSTOMER_B_EU] {
        assert_eq!(sends(&stack, region), 1, "still one command in {region:?}");
    }

    // A new token runs again, once per account-region. Nothing is missing any more on
    // the early node: the Install installs nothing and does not reboot.
    patch_window(
        &stack,
        "emergency",
        "merge",
        &format!(r#"{{"spec":{{"runToken":"{SECOND_TOKEN}"}}}}"#),
    )
    .expect("new run token");
    eventually(
        "the second run finishes everywhere",
        &stack,
        CONVERGE,
        || async { all_finished(&emergency_runs(&stack), SECOND_TOKEN) },
    )
    .await;
    let second_ids = command_ids(&emergency_runs(&stack));
    assert!(
        second_ids.iter().all(|id| !first_ids.contains(id)),
        "{second_ids:?} vs {first_ids:?}"
    );
    for region in [CUSTOMER_A_EU, CUSTOMER_A_US, CUSTOMER_B_EU] {
        assert_eq!(sends(&stack, region), 2, "a second command in {region:?}");
    }
    let early = &sim_nodes(&stack, CUSTOMER_A_EU)["i-0000000000000000a"];
    let second = &early["runs"][1];
    assert_eq!(second["installed"], 0, "{early}");
    assert_eq!(second["rebooted"], false, "{early}");
    assert_eq!(early["reboots"], 1, "{early}");

    // A run disabled while its commands still run is followed to its end all the same,
    // and nothing more is sent.
    stack.sim.sim().settings.set(ssm_sim::Settings {
        command_seconds: 10.0,
    });
    patch_window(
        &stack,
        "emergency",
        "merge",
        &format!(r#"{{"spec":{{"runToken":"{THIRD_TOKEN}"}}}}"#),
    )
    .expect("third run token");
    eventually(
        "the third run is sent everywhere",
        &stack,
        CONVERGE,
        || async {
            let runs = emergency_runs(&stack);
            runs.len() == 3 && runs.values().all(|r| r["runToken"] == THIRD_TOKEN)
        },
    )
    .await;
    patch_window(
        &stack,
        "emergency",
        "merge",
        r#"{"spec":{"enabled":false}}"#,
    )
    .expect("disabled");
    assert!(
        !all_finished(&emergency_runs(&stack), THIRD_TOKEN),
        "still running when disabled (10 s commands)"
    );
    eventually(
        "the disabled run still finishes in status",
        &stack,
        CONVERGE,
        || async { all_finished(&emergency_runs(&stack), THIRD_TOKEN) },
    )
    .await;
    for region in [CUSTOMER_A_EU, CUSTOMER_A_US, CUSTOMER_B_EU] {
        assert_eq!(sends(&stack, region), 3, "a third command in {region:?}");
    }
}

/// What `look` reads plus each window's tasks in full.
async fn tasks_of(
    stack: &Stack,
    (account, external_id, region): (&str, &str, &str),
    window: &str,
) -> BTreeMap<String, TaskDetail> {
    let client = ssm_client(stack, account, external_id, region)
        .await
        .expect("SSM client");
    let snapshot = look(stack, (account, external_id, region)).await;
    let window = snapshot
        .window_named(window)
        .unwrap_or_else(|| panic!("{window} in {account} {region}"));
    window_tasks(&client, &window.id).await.expect("tasks")
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
        .collect()
}

/// A task registered without a role, as SSM reads it back: run by the account's
/// service-linked role.
fn run_patch_baseline(
    account: &str,
    operation: &str,
    concurrency: &str,
    errors: &str,
    priority: i32,
) -> TaskDetail {
    TaskDetail {
        task_type: "RUN_COMMAND".into(),
        document: "AWS-RunPatchBaseline".into(),
        parameters: params(&[("Operation", operation), ("RebootOption", "RebootIfNeeded")]),
        service_role_arn: Some(format!(
            "arn:aws:iam::{account}:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM"
        )),
        max_concurrency: concurrency.into(),
        max_errors: errors.into(),
        priority,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_strategy_makes_exactly_its_ssm_objects() {
    let stack = converged_examples("strategies", &[]).await;

    // Emergency makes no window: it is a Run Command (see the test above).
    for region in [CUSTOMER_A_EU, CUSTOMER_A_US, CUSTOMER_B_EU] {
        let snapshot = look(&stack, region).await;
        let (_, windows) = snapshot.owned_by(&stack.cluster_id);
        let mut names: Vec<&str> = windows.iter().map(|w| w.name.as_str()).collect();
        names.sort();
        let mut want = vec![
            "patchfleet-patching-monthly",
            "patchfleet-patching-opportunistic",
        ];
        if region == CUSTOMER_A_EU {
            want.push("patchfleet-patching-frozen-scan");
            want.sort();
        }
        assert_eq!(names, want, "{region:?}");
    }

    // Scheduled, on AWS: scan, then the snapshot runbook as the task role.
    let role_a = "arn:aws:iam::111111111111:role/patchfleet-patching";
    let monthly = tasks_of(&stack, CUSTOMER_A_EU, "patchfleet-patching-monthly").await;
    let snapshot_task = TaskDetail {
        task_type: "AUTOMATION".into(),
        document: "AWS-PatchInstanceWithRollback".into(),
        parameters: params(&[
            ("InstanceId", "{{RESOURCE_ID}}"),
            ("AutomationAssumeRole", role_a),
        ]),
        service_role_arn: Some(role_a.into()),
        max_concurrency: "10%".into(),
        max_errors: "5%".into(),
        priority: 2,
    };
    assert_eq!(
        monthly,
        BTreeMap::from([
            (
                "scan".to_owned(),
                run_patch_baseline(A, "Scan", "10%", "1", 1)
            ),
            ("install".to_owned(), snapshot_task),
        ])
    );
    // Scheduled, on VMware (hybrid nodes, no snapshots): patched directly, as the role.
    let monthly_b = tasks_of(&stack, CUSTOMER_B_EU, "patchfleet-patching-monthly").await;
    let mut direct = run_patch_baseline(B, "Install", "10%", "5%", 2);
    direct.service_role_arn = Some("arn:aws:iam::222222222222:role/patchfleet-patching".into());
    assert_eq!(monthly_b["install"], direct);
    let condition = window_json(&stack, "monthly")["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "SnapshotBeforePatch")
        .cloned()
        .expect("SnapshotBeforePatch condition");
    assert_eq!(condition["status"], "False", "{condition}");
    assert_eq!(condition["reason"], "NotApplicable", "{condition}");
    let message = condition["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("snapshots do not apply to hybrid and on-premises instances")
            && message.contains("customer-b-vmware (222222222222, platform vmware)")
            && !message.contains("customer-a"),
        "{message}"
    );

    // Opportunistic: Install with the policies' approvals (no override), reboot if needed.
    let opportunistic = tasks_of(&stack, CUSTOMER_A_EU, "patchfleet-patching-opportunistic").await;
    assert_eq!(
        opportunistic,
        BTreeMap::from([(
            "install-if-missing".to_owned(),
            run_patch_baseline(A, "Install", "25%", "1", 1)
        )])
    );

    // Frozen: scan only, and an Install task is refused at admission, naming the field.
    let frozen = tasks_of(&stack, CUSTOMER_A_EU, "patchfleet-patching-frozen-scan").await;
    assert_eq!(
        frozen,
        BTreeMap::from([(
            "scan".to_owned(),
            run_patch_baseline(A, "Scan", "10%", "1", 1)
        )])
    );
    let refused = patch_window(
        &stack,
        "frozen-scan",
        "json",
        r#"[{"op":"replace","path":"/spec/tasks/0/operation","value":"Install"}]"#,
    )
    .expect_err("an Install task in a Frozen window is refused");
    let refused = format!("{refused:#}");
    assert!(
        refused.contains("spec.tasks") && refused.contains("a Frozen window only scans"),
        "{refused}"
    );
}

/// The CEL rule keeps an Install task out of a Frozen window at admission; a window stored
/// before the rule existed gets past it. To store one, the test lifts the rule from the
/// CRD for a moment, as an older patchfleet's CRD would have lacked it. The controller
/// then refuses the task itself: Stalled with reason InstallInFrozenWindow, an Event, and
/// in SSM the window keeps its Scan task and gets no Install task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_task_stored_in_a_frozen_window_is_refused_by_the_controller() {
    let stack = converged_examples("frozen", &[]).await;
    let before = tasks_of(&stack, CUSTOMER_A_EU, "patchfleet-patching-frozen-scan").await;
    assert_eq!(before.keys().collect::<Vec<_>>(), ["scan"]);

    let crd = "crd/maintenancewindows.patchfleet.io";
    let text = stack.kubectl(["get", crd, "-o", "json"]).expect("the CRD");
    let json: Value = serde_json::from_str(&text).expect("CRD JSON");
    let rules = &json["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"];
    let index = rules
        .as_array()
        .and_then(|rules| {
            rules.iter().position(|r| {
                r["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("a Frozen window only scans"))
            })
        })
        .expect("the Frozen rule in the CRD");
    stack
        .kubectl([
            "patch",
            crd,
            "--type=json",
            "-p",
            &format!(
                r#"[{{"op":"remove","path":"/spec/versions/0/schema/openAPIV3Schema/properties/spec/x-kubernetes-validations/{index}"}}]"#
            ),
        ])
        .expect("rule lifted");
    let install = r#"[{"op":"add","path":"/spec/tasks/-","value":{"name":"install","operation":"Install","priority":2}}]"#;
    eventually(
        "the API server takes the Install task",
        &stack,
        CONVERGE,
        || async { patch_window(&stack, "frozen-scan", "json", install).is_ok() },
    )
    .await;
    stack
        .kubectl([
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            patchfleet_tests::repo_root()
                .join("crds/maintenancewindows.patchfleet.io.yaml")
                .to_str()
                .unwrap_or_default(),
        ])
        .expect("rule restored");

    eventually(
        "the window stalls with InstallInFrozenWindow",
        &stack,
        CONVERGE,
        || async {
            let status = &window_json(&stack, "frozen-scan")["status"];
            let stalled = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Stalled" && c["status"] == "True");
            let refused_here = status["failures"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| {
                    f["accountId"] == A
                        && f["region"] == CUSTOMER_A_EU.2
                        && f["reason"] == "InstallInFrozenWindow"
                        && f["message"]
                            .as_str()
                            .is_some_and(|m| m.starts_with("spec.tasks[install].operation"))
                });
            stalled && refused_here
        },
    )
    .await;
    let events = event_reasons(&stack, "frozen-scan");
    assert!(events.contains("InstallInFrozenWindow"), "{events}");
    let after = tasks_of(&stack, CUSTOMER_A_EU, "patchfleet-patching-frozen-scan").await;
    assert_eq!(
        after, before,
        "the Scan task stays, no Install task is registered"
    );
    assert_eq!(
        calls_in(&stack, "RegisterTaskWithMaintenanceWindow", CUSTOMER_A_EU),
        // monthly 2 + opportunistic 1 + frozen-scan 1, from the first convergence
        4
    );
}
