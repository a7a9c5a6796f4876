//! Maintenance windows running on the simulated clock: executions, their tasks and
//! invocations, through aws-sdk-rust.

use aws_sdk_ssm::types::{
    MaintenanceWindowExecutionStatus as Status, MaintenanceWindowFilter,
    MaintenanceWindowResourceType, MaintenanceWindowRunCommandParameters,
    MaintenanceWindowTaskInvocationParameters, MaintenanceWindowTaskType, Target,
};
use serde_json::json;
use ssm_sim::{Config, Settings};

use crate::common::{REGION, code, control, creds, put_instances, ssm, ssm_as, start_with};

fn install() -> MaintenanceWindowTaskInvocationParameters {
    MaintenanceWindowTaskInvocationParameters::builder()
        .run_command(
            MaintenanceWindowRunCommandParameters::builder()
                .parameters("Operation", vec!["Install".to_string()])
                .parameters("RebootOption", vec!["NoReboot".to_string()])
                .build(),
        )
        .build()
}

fn secs(iso: &str) -> f64 {
    iso.parse::<jiff::Timestamp>()
        .expect("ISO 8601 time")
        .as_millisecond() as f64
        / 1000.0
}

async fn set_clock(server: &ssm_sim::Server, at: f64) {
    let (status, body) = control(
        server,
        "PUT",
        "/_sim/clock",
        &json!({"now": at}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

const OTHER_KEY: &str = "AKIAOTHEREXAMPLE0001";

async fn start(command_seconds: f64) -> ssm_sim::Server {
    start_with(Config {
        settings: Settings { command_seconds },
        access_keys: [(OTHER_KEY.to_string(), "222222222222".to_string())].into(),
        ..Config::default()
    })
    .await
}

/// A weekly window with a Patch Group target and an AWS-RunPatchBaseline Install task.
async fn weekly_window(ssm: &aws_sdk_ssm::Client, tasks: &[i32]) -> (String, String, Vec<String>) {
    let mw = ssm
        .create_maintenance_window()
        .name("sunday-patching")
        .schedule("cron(0 2 ? * SUN *)")
        .schedule_timezone("Europe/Berlin")
        .duration(4)
        .cutoff(1)
        .allow_unassociated_targets(false)
        .send()
        .await
        .expect("create window")
        .window_id()
        .expect("window id")
        .to_string();
    let target = ssm
        .register_target_with_maintenance_window()
        .window_id(&mw)
        .resource_type(MaintenanceWindowResourceType::Instance)
        .targets(
            Target::builder()
                .key("tag:Patch Group")
                .values("web")
                .build(),
        )
        .owner_information("team-web")
        .send()
        .await
        .expect("register target")
        .window_target_id()
        .expect("target id")
        .to_string();
    let mut task_ids = Vec::new();
    for priority in tasks {
        let id = ssm
            .register_task_with_maintenance_window()
            .window_id(&mw)
            .task_type(MaintenanceWindowTaskType::RunCommand)
            .task_arn("AWS-RunPatchBaseline")
            .task_invocation_parameters(install())
            .targets(
                Target::builder()
                    .key("WindowTargetIds")
                    .values(&target)
                    .build(),
            )
            .priority(*priority)
            .max_concurrency("100%")
            .max_errors("1")
            .send()
            .await
            .expect("register task")
            .window_task_id()
            .expect("task id")
            .to_string();
        task_ids.push(id);
    }
    (mw, target, task_ids)
}

fn fleet(web: usize) -> serde_json::Value {
    let mut instances: Vec<serde_json::Value> = (0..web)
        .map(|i| json!({"instanceId": format!("i-{i:017x}"), "tags": {"Patch Group": "web"}, "missingPatches": 2}))
        .collect();
    instances.push(json!({"instanceId": "i-0fffffffffffffff0", "tags": {"Patch Group": "db"}, "missingPatches": 2}));
    json!({"accountId": "123456789012", "region": REGION, "instances": instances})
}

#[tokio::test]
async fn a_window_runs_its_install_when_the_clock_passes_its_time() {
    let server = start(60.0).await;
    let ssm = ssm(&server);
    put_instances(&server, fleet(12)).await;
    let (mw, target, _) = weekly_window(&ssm, &[1]).await;

    let window = ssm
        .get_maintenance_window()
        .window_id(&mw)
        .send()
        .await
        .expect("get");
    let first = secs(window.next_execution_time().expect("NextExecutionTime"));
    let listed = ssm
        .describe_maintenance_windows()
        .send()
        .await
        .expect("describe");
    assert_eq!(
        listed.window_identities()[0].next_execution_time(),
        window.next_execution_time()
    );
    let none = ssm
        .describe_maintenance_window_executions()
        .window_id(&mw)
        .send()
        .await
        .expect("no executions yet");
    assert!(none.window_executions().is_empty());

    // Ten minutes past the occurrence: 12 nodes in waves of 1, 2, 4, 5 take 4 minutes.
    set_clock(&server, first + 600.0).await;
    let executions = ssm
        .describe_maintenance_window_executions()
        .window_id(&mw)
        .send()
        .await
        .expect("executions");
    let [execution] = executions.window_executions() else {
        panic!("one execution: {executions:?}");
    };
    assert_eq!(execution.status(), Some(&Status::Success));
    assert_eq!(execution.window_id(), Some(mw.as_str()));
    let started = execution.start_time().expect("StartTime").as_secs_f64();
    assert_eq!(started, first);
    assert_eq!(
        execution.end_time().expect("EndTime").as_secs_f64(),
        first + 240.0
    );
    let execution_id = execution.window_execution_id().expect("id").to_string();

    let tasks = ssm
        .describe_maintenance_window_execution_tasks()
        .window_execution_id(&execution_id)
        .send()
        .await
        .expect("tasks");
    let [task] = tasks.window_execution_task_identities() else {
        panic!("one task: {tasks:?}");
    };
    assert_eq!(task.status(), Some(&Status::Success));
    assert_eq!(task.task_arn(), Some("AWS-RunPatchBaseline"));
    assert_eq!(
        task.task_type(),
        Some(&MaintenanceWindowTaskType::RunCommand)
    );
    let task_execution_id = task
        .task_execution_id()
        .expect("task execution id")
        .to_string();
    let got = ssm
        .get_maintenance_window_execution_task()
        .window_execution_id(&execution_id)
        .task_id(&task_execution_id)
        .send()
        .await
        .expect("get task");
    assert_eq!(got.priority(), 1);
    assert_eq!(got.max_concurrency(), Some("100%"));
    assert!(
        got.service_role()
            .is_some_and(|r| r.contains("AWSServiceRoleForAmazonSSM"))
    );
    let got = ssm
        .get_maintenance_window_execution()
        .window_execution_id(&execution_id)
        .send()
        .await
        .expect("get execution");
    assert_eq!(got.task_ids(), std::slice::from_ref(&task_execution_id));

    // One invocation per web node, paged 10 at a time.
    let page = ssm
        .describe_maintenance_window_execution_task_invocations()
        .window_execution_id(&execution_id)
        .task_id(&task_execution_id)
        .max_results(10)
        .send()
        .await
        .expect("invocations");
    assert_eq!(page.window_execution_task_invocation_identities().len(), 10);
    let rest = ssm
        .describe_maintenance_window_execution_task_invocations()
        .window_execution_id(&execution_id)
        .task_id(&task_execution_id)
        .max_results(10)
        .next_token(page.next_token().expect("a second page"))
        .send()
        .await
        .expect("second page");
    assert_eq!(rest.window_execution_task_invocation_identities().len(), 2);
    assert!(rest.next_token().is_none());
    let invocations: Vec<_> = page
        .window_execution_task_invocation_identities()
        .iter()
        .chain(rest.window_execution_task_invocation_identities())
        .collect();
    for inv in &invocations {
        assert_eq!(inv.status(), Some(&Status::Success));
        assert_eq!(inv.window_target_id(), Some(target.as_str()));
        assert_eq!(inv.owner_information(), Some("team-web"));
        assert!(inv.parameters().is_some_and(|p| p.contains("Install")));
    }
    // Each invocation is a Run Command command on its node.
    let command_id = invocations[0].execution_id().expect("command id");
    let commands = ssm
        .list_command_invocations()
        .command_id(command_id)
        .send()
        .await
        .expect("the command");
    let node = commands.command_invocations()[0]
        .instance_id()
        .expect("node")
        .to_string();
    assert_eq!(node, "i-00000000000000000");

    // The patch state shows the Install at the simulated time of the run.
    let states = ssm
        .describe_instance_patch_states()
        .instance_ids(&node)
        .instance_ids("i-0fffffffffffffff0")
        .send()
        .await
        .expect("patch states");
    let state = |id: &str| {
        states
            .instance_patch_states()
            .iter()
            .find(|s| s.instance_id() == id)
            .cloned()
    };
    let installed = state(&node).expect("the web node ran");
    assert_eq!(installed.operation().as_str(), "Install");
    assert_eq!(installed.installed_pending_reboot_count(), Some(2));
    assert_eq!(installed.operation_start_time().as_secs_f64(), first);
    assert!(
        state("i-0fffffffffffffff0").is_none(),
        "the db node is not a target"
    );

    // The next run is a week later; a week on, it has run again, newest listed first.
    let window = ssm
        .get_maintenance_window()
        .window_id(&mw)
        .send()
        .await
        .expect("get");
    let second = secs(window.next_execution_time().expect("NextExecutionTime"));
    assert_eq!(second, first + 7.0 * 86_400.0);
    set_clock(&server, second + 600.0).await;
    let both = ssm
        .describe_maintenance_window_executions()
        .window_id(&mw)
        .send()
        .await
        .expect("executions");
    let starts: Vec<f64> = both
        .window_executions()
        .iter()
        .filter_map(|e| e.start_time().map(|t| t.as_secs_f64()))
        .collect();
    assert_eq!(starts, [second, first]);
    let before = ssm
        .describe_maintenance_window_executions()
        .window_id(&mw)
        .filters(
            MaintenanceWindowFilter::builder()
                .key("ExecutedBefore")
                .values(ssm_sim::clock::iso8601(first + 60.0))
                .build(),
        )
        .send()
        .await
        .expect("filtered");
    assert_eq!(before.window_executions().len(), 1);
    assert_eq!(
        before.window_executions()[0].window_execution_id(),
        Some(execution_id.as_str())
    );

    // Deleting the window deletes its executions.
    ssm.delete_maintenance_window()
        .window_id(&mw)
        .send()
        .await
        .expect("delete");
    let gone = ssm
        .describe_maintenance_window_execution_tasks()
        .window_execution_id(&execution_id)
        .send()
        .await;
    assert_eq!(code(gone), "DoesNotExistException");
}

#[tokio::test]
async fn validation_unknown_ids_and_accounts() {
    let server = start(0.0).await;
    let ssm = ssm(&server);
    put_instances(&server, fleet(1)).await;
    let (mw, _, _) = weekly_window(&ssm, &[1]).await;
    let first = ssm
        .get_maintenance_window()
        .window_id(&mw)
        .send()
        .await
        .expect("get");
    set_clock(
        &server,
        secs(first.next_execution_time().expect("next")) + 1.0,
    )
    .await;
    let execution_id = ssm
        .describe_maintenance_window_executions()
        .window_id(&mw)
        .send()
        .await
        .expect("executions")
        .window_executions()[0]
        .window_execution_id()
        .expect("id")
        .to_string();

    let few = ssm
        .describe_maintenance_window_executions()
        .window_id(&mw)
        .max_results(5)
        .send()
        .await;
    assert_eq!(code(few), "ValidationException");
    let many = ssm
        .describe_maintenance_window_execution_tasks()
        .window_execution_id(&execution_id)
        .max_results(101)
        .send()
        .await;
    assert_eq!(code(many), "ValidationException");
    let bad_key = ssm
        .describe_maintenance_window_execution_tasks()
        .window_execution_id(&execution_id)
        .filters(
            MaintenanceWindowFilter::builder()
                .key("Status")
                .values("SUCCESS")
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(bad_key), "ValidationException");
    let bad_date = ssm
        .describe_maintenance_window_executions()
        .window_id(&mw)
        .filters(
            MaintenanceWindowFilter::builder()
                .key("ExecutedAfter")
                .values("last week")
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(bad_date), "ValidationException");
    let bad_token = ssm
        .describe_maintenance_window_executions()
        .window_id(&mw)
        .next_token("zz")
        .send()
        .await;
    assert_eq!(code(bad_token), "InvalidNextToken");
    let failed_only = ssm
        .describe_maintenance_window_execution_tasks()
        .window_execution_id(&execution_id)
        .filters(
            MaintenanceWindowFilter::builder()
                .key("STATUS")
                .values("FAILED")
                .build(),
        )
        .send()
        .await
        .expect("filter by status");
    assert!(failed_only.window_execution_task_identities().is_empty());

    let unknown = "00000000-0000-4000-8000-000000000000";
    assert_eq!(
        code(
            ssm.describe_maintenance_window_execution_tasks()
                .window_execution_id(unknown)
                .send()
                .await
        ),
        "DoesNotExistException"
    );
    assert_eq!(
        code(
            ssm.describe_maintenance_window_execution_task_invocations()
                .window_execution_id(&execution_id)
                .task_id(unknown)
                .send()
                .await
        ),
        "DoesNotExistException"
    );
    assert_eq!(
        code(
            ssm.get_maintenance_window_execution()
                .window_execution_id("not-a-uuid")
                .send()
                .await
        ),
        "ValidationException"
    );
    // An unknown window lists no executions (the operation documents no DoesNotExist).
    let empty = ssm
        .describe_maintenance_window_executions()
        .window_id("mw-0123456789abcdef0")
        .send()
        .await
        .expect("unknown window");
    assert!(empty.window_executions().is_empty());

    // Another account (another access key mapped to it) sees none of these executions.
    let other = ssm_as(&server, creds(OTHER_KEY, None), REGION);
    assert_eq!(
        code(
            other
                .get_maintenance_window_execution()
                .window_execution_id(&execution_id)
                .send()
                .await
        ),
        "DoesNotExistException"
    );
    let theirs = other
        .describe_maintenance_window_executions()
        .window_id(&mw)
        .send()
        .await
        .expect("another account's view");
    assert!(theirs.window_executions().is_empty());
}

#[tokio::test]
async fn priorities_run_in_order_and_nothing_starts_after_the_cutoff() {
    // Each task takes an hour per wave; the window lasts 4 hours with a 1 hour cutoff, so
    // tasks may start until 3 hours in: priorities 1 to 4 start, 5 does not.
    let server = start(3600.0).await;
    let ssm = ssm(&server);
    put_instances(&server, fleet(1)).await;
    let (mw, _, _) = weekly_window(&ssm, &[3, 1, 2, 5, 4]).await;
    let first = ssm
        .get_maintenance_window()
        .window_id(&mw)
        .send()
        .await
        .expect("get");
    let at = secs(first.next_execution_time().expect("next"));
    set_clock(&server, at + 6.0 * 3600.0).await;
    let execution = ssm
        .describe_maintenance_window_executions()
        .window_id(&mw)
        .send()
        .await
        .expect("executions")
        .window_executions()[0]
        .clone();
    assert_eq!(execution.status(), Some(&Status::TimedOut));
    let tasks = ssm
        .describe_maintenance_window_execution_tasks()
        .window_execution_id(execution.window_execution_id().expect("id"))
        .send()
        .await
        .expect("tasks");
    let starts: Vec<f64> = tasks
        .window_execution_task_identities()
        .iter()
        .filter_map(|t| t.start_time().map(|s| s.as_secs_f64() - at))
        .collect();
    assert_eq!(starts, [0.0, 3600.0, 7200.0, 10_800.0]);
}
