//! Maintenance windows, their targets and tasks through aws-sdk-ssm.

use aws_sdk_ssm::types::{
    MaintenanceWindowAutomationParameters, MaintenanceWindowFilter, MaintenanceWindowResourceType,
    MaintenanceWindowRunCommandParameters, MaintenanceWindowTaskInvocationParameters,
    MaintenanceWindowTaskType, Target,
};
use ssm_sim::{Config, Quotas};

use crate::common::{code, message, ssm, start, start_with};

async fn window(ssm: &aws_sdk_ssm::Client, name: &str) -> String {
    ssm.create_maintenance_window()
        .name(name)
        .schedule("cron(0 2 ? * SUN *)")
        .duration(4)
        .cutoff(1)
        .allow_unassociated_targets(false)
        .send()
        .await
        .expect("CreateMaintenanceWindow")
        .window_id()
        .expect("WindowId")
        .to_string()
}

/// Registers a target on the `Patch Group: prod` instances; returns its id.
async fn prod_target(ssm: &aws_sdk_ssm::Client, window_id: &str) -> String {
    ssm.register_target_with_maintenance_window()
        .window_id(window_id)
        .resource_type(MaintenanceWindowResourceType::Instance)
        .targets(tag_target("prod"))
        .send()
        .await
        .expect("target")
        .window_target_id()
        .expect("id")
        .to_string()
}

fn tag_target(group: &str) -> Target {
    Target::builder()
        .key("tag:Patch Group")
        .values(group)
        .build()
}

fn window_targets(id: &str) -> Target {
    Target::builder().key("WindowTargetIds").values(id).build()
}

fn run_patch_baseline(operation: &str) -> MaintenanceWindowTaskInvocationParameters {
    MaintenanceWindowTaskInvocationParameters::builder()
        .run_command(
            MaintenanceWindowRunCommandParameters::builder()
                .parameters("Operation", vec![operation.to_string()])
                .timeout_seconds(600)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn window_lifecycle() {
    let server = start().await;
    let ssm = ssm(&server);
    let created = ssm
        .create_maintenance_window()
        .name("patch-sundays")
        .description("weekly")
        .schedule("cron(30 23 ? * TUE#3 *)")
        .schedule_offset(2)
        .schedule_timezone("Europe/Berlin")
        .duration(4)
        .cutoff(1)
        .allow_unassociated_targets(true)
        .send()
        .await
        .expect("create");
    let id = created.window_id().expect("id").to_string();
    assert!(id.starts_with("mw-") && id.len() == 20, "{id}");
    let got = ssm
        .get_maintenance_window()
        .window_id(&id)
        .send()
        .await
        .expect("get");
    assert_eq!(got.name(), Some("patch-sundays"));
    assert_eq!(got.schedule_offset(), Some(2));
    assert_eq!(got.schedule_timezone(), Some("Europe/Berlin"));
    assert_eq!(got.duration(), Some(4));
    assert_eq!(got.cutoff(), 1);
    assert!(got.enabled());
    assert!(got.allow_unassociated_targets());

    let updated = ssm
        .update_maintenance_window()
        .window_id(&id)
        .enabled(false)
        .duration(6)
        .send()
        .await
        .expect("update");
    assert!(!updated.enabled());
    assert_eq!(updated.duration(), Some(6));
    assert_eq!(
        updated.description(),
        Some("weekly"),
        "partial update keeps the rest"
    );

    // Replace needs Create's required members and clears the optional ones.
    assert_eq!(
        code(
            ssm.update_maintenance_window()
                .window_id(&id)
                .replace(true)
                .send()
                .await
        ),
        "ValidationException"
    );
    let replaced = ssm
        .update_maintenance_window()
        .window_id(&id)
        .replace(true)
        .name("patch-daily")
        .schedule("rate(1 day)")
        .duration(2)
        .cutoff(0)
        .allow_unassociated_targets(false)
        .send()
        .await
        .expect("replace");
    assert_eq!(replaced.description(), None);
    assert_eq!(replaced.schedule_offset(), None);
    assert_eq!(replaced.schedule(), Some("rate(1 day)"));

    let disabled = ssm
        .describe_maintenance_windows()
        .filters(
            MaintenanceWindowFilter::builder()
                .key("Enabled")
                .values("false")
                .build(),
        )
        .send()
        .await
        .expect("describe");
    assert_eq!(disabled.window_identities().len(), 1);

    ssm.delete_maintenance_window()
        .window_id(&id)
        .send()
        .await
        .expect("delete");
    assert_eq!(
        code(ssm.get_maintenance_window().window_id(&id).send().await),
        "DoesNotExistException"
    );
}

#[tokio::test]
async fn window_schedule_and_ranges_are_validated() {
    let server = start().await;
    let ssm = ssm(&server);
    let attempt = |schedule: &'static str, duration: i32, cutoff: i32| {
        ssm.create_maintenance_window()
            .name("checked")
            .schedule(schedule)
            .duration(duration)
            .cutoff(cutoff)
            .allow_unassociated_targets(false)
            .send()
    };
    assert_eq!(
        code(attempt("cron(0 2 * * SUN *)", 4, 1).await),
        "ValidationException"
    );
    assert_eq!(
        code(attempt("cron(0 2 ? * SUN)", 4, 1).await),
        "ValidationException"
    );
    assert_eq!(
        code(attempt("rate(1 days)", 4, 1).await),
        "ValidationException"
    );
    assert_eq!(code(attempt("whenever", 4, 1).await), "ValidationException");
    let cutoff = message(attempt("rate(2 hours)", 3, 3).await);
    assert!(cutoff.contains("cutoff"), "{cutoff}");
    assert_eq!(
        code(attempt("rate(2 hours)", 25, 1).await),
        "ValidationException"
    );
    assert_eq!(
        code(attempt("rate(2 hours)", 4, -1).await),
        "ValidationException"
    );
    attempt("at(2030-07-07T15:55:00)", 2, 0)
        .await
        .expect("one-off schedule");
    let offset_with_rate = ssm
        .create_maintenance_window()
        .name("offset")
        .schedule("rate(2 days)")
        .schedule_offset(1)
        .duration(2)
        .cutoff(0)
        .allow_unassociated_targets(false)
        .send()
        .await;
    assert_eq!(code(offset_with_rate), "ValidationException");
    let missing = ssm.create_maintenance_window().name("x-y").send().await;
    assert!(message(missing).starts_with("4 validation errors detected"));
}

#[tokio::test]
async fn describe_windows_pages_and_filters_by_name() {
    let config = Config {
        quotas: Quotas {
            maintenance_windows: 12,
            ..Quotas::default()
        },
        ..Config::default()
    };
    let server = start_with(config).await;
    let ssm = ssm(&server);
    for i in 0..12 {
        window(&ssm, &format!("mw-{i:02}")).await;
    }
    assert_eq!(
        code(
            ssm.create_maintenance_window()
                .name("one-too-many")
                .schedule("rate(2 days)")
                .duration(2)
                .cutoff(0)
                .allow_unassociated_targets(false)
                .send()
                .await
        ),
        "ResourceLimitExceededException"
    );
    let first = ssm
        .describe_maintenance_windows()
        .max_results(10)
        .send()
        .await
        .expect("page 1");
    assert_eq!(first.window_identities().len(), 10);
    let token = first.next_token().expect("more pages").to_string();
    let second = ssm
        .describe_maintenance_windows()
        .max_results(10)
        .next_token(token)
        .send()
        .await
        .expect("page 2");
    assert_eq!(second.window_identities().len(), 2);
    assert_eq!(second.next_token(), None);
    assert_eq!(
        code(
            ssm.describe_maintenance_windows()
                .max_results(9)
                .send()
                .await
        ),
        "ValidationException"
    );
    let named = ssm
        .describe_maintenance_windows()
        .filters(
            MaintenanceWindowFilter::builder()
                .key("Name")
                .values("mw-03")
                .build(),
        )
        .send()
        .await
        .expect("by name");
    assert_eq!(named.window_identities().len(), 1);
    assert_eq!(
        code(
            ssm.describe_maintenance_windows()
                .filters(
                    MaintenanceWindowFilter::builder()
                        .key("Color")
                        .values("red")
                        .build()
                )
                .send()
                .await
        ),
        "ValidationException"
    );
}

#[tokio::test]
async fn targets_lifecycle_and_safe_deregistration() {
    let server = start().await;
    let ssm = ssm(&server);
    let mw = window(&ssm, "targets").await;
    let target_id = ssm
        .register_target_with_maintenance_window()
        .window_id(&mw)
        .resource_type(MaintenanceWindowResourceType::Instance)
        .targets(tag_target("prod"))
        .owner_information("team-a")
        .name("prod-nodes")
        .send()
        .await
        .expect("register target")
        .window_target_id()
        .expect("id")
        .to_string();
    assert_eq!(target_id.len(), 36);
    let updated = ssm
        .update_maintenance_window_target()
        .window_id(&mw)
        .window_target_id(&target_id)
        .targets(tag_target("staging"))
        .send()
        .await
        .expect("update target");
    assert_eq!(updated.targets()[0].values(), ["staging"]);
    assert_eq!(updated.owner_information(), Some("team-a"));

    let listed = ssm
        .describe_maintenance_window_targets()
        .window_id(&mw)
        .send()
        .await
        .expect("describe targets");
    assert_eq!(listed.targets().len(), 1);
    assert_eq!(listed.targets()[0].name(), Some("prod-nodes"));
    assert_eq!(
        listed.targets()[0].resource_type(),
        Some(&MaintenanceWindowResourceType::Instance)
    );

    let task = ssm
        .register_task_with_maintenance_window()
        .window_id(&mw)
        .task_type(MaintenanceWindowTaskType::RunCommand)
        .task_arn("AWS-RunPatchBaseline")
        .task_invocation_parameters(run_patch_baseline("Scan"))
        .targets(window_targets(&target_id))
        .max_concurrency("10%")
        .max_errors("1")
        .send()
        .await
        .expect("register task");
    let safe = ssm
        .deregister_target_from_maintenance_window()
        .window_id(&mw)
        .window_target_id(&target_id)
        .safe(true)
        .send()
        .await;
    assert_eq!(code(safe), "TargetInUseException");
    ssm.deregister_task_from_maintenance_window()
        .window_id(&mw)
        .window_task_id(task.window_task_id().expect("task id"))
        .send()
        .await
        .expect("deregister task");
    ssm.deregister_target_from_maintenance_window()
        .window_id(&mw)
        .window_target_id(&target_id)
        .safe(true)
        .send()
        .await
        .expect("safe once unused");
    assert_eq!(
        code(
            ssm.deregister_target_from_maintenance_window()
                .window_id(&mw)
                .window_target_id(&target_id)
                .send()
                .await
        ),
        "DoesNotExistException"
    );
    assert_eq!(
        code(
            ssm.register_target_with_maintenance_window()
                .window_id("mw-0123456789abcdef0")
                .resource_type(MaintenanceWindowResourceType::Instance)
                .targets(tag_target("prod"))
                .send()
                .await
        ),
        "DoesNotExistException"
    );
    let too_many_targets = ssm
        .register_target_with_maintenance_window()
        .window_id(&mw)
        .resource_type(MaintenanceWindowResourceType::Instance)
        .set_targets(Some((0..6).map(|i| tag_target(&format!("g{i}"))).collect()))
        .send()
        .await;
    assert_eq!(code(too_many_targets), "ValidationException");
}

#[tokio::test]
async fn targets_and_tasks_per_window_quotas() {
    let config = Config {
        quotas: Quotas {
            targets_per_window: 2,
            tasks_per_window: 1,
            ..Quotas::default()
        },
        ..Config::default()
    };
    let server = start_with(config).await;
    let ssm = ssm(&server);
    let mw = window(&ssm, "small").await;
    let register = || {
        ssm.register_target_with_maintenance_window()
            .window_id(&mw)
            .resource_type(MaintenanceWindowResourceType::Instance)
            .targets(tag_target("prod"))
            .send()
    };
    register().await.expect("first");
    register().await.expect("second");
    assert_eq!(code(register().await), "ResourceLimitExceededException");
    let task = || {
        ssm.register_task_with_maintenance_window()
            .window_id(&mw)
            .task_type(MaintenanceWindowTaskType::RunCommand)
            .task_arn("AWS-RunPatchBaseline")
            .task_invocation_parameters(run_patch_baseline("Scan"))
            .send()
    };
    task().await.expect("targetless task");
    assert_eq!(code(task().await), "ResourceLimitExceededException");
}

#[tokio::test]
async fn task_lifecycle_run_command_and_automation() {
    let server = start().await;
    let ssm = ssm(&server);
    let mw = window(&ssm, "tasks").await;
    let target_id = prod_target(&ssm, &mw).await;
    let task_id = ssm
        .register_task_with_maintenance_window()
        .window_id(&mw)
        .task_type(MaintenanceWindowTaskType::RunCommand)
        .task_arn("AWS-RunPatchBaseline")
        .targets(window_targets(&target_id))
        .task_invocation_parameters(run_patch_baseline("Install"))
        .priority(2)
        .max_concurrency("10%")
        .max_errors("1")
        .name("install")
        .client_token("task-token")
        .send()
        .await
        .expect("register task")
        .window_task_id()
        .expect("id")
        .to_string();
    let got = ssm
        .get_maintenance_window_task()
        .window_id(&mw)
        .window_task_id(&task_id)
        .send()
        .await
        .expect("get task");
    assert_eq!(
        got.task_type(),
        Some(&MaintenanceWindowTaskType::RunCommand)
    );
    assert_eq!(got.priority(), 2);
    let rc = got
        .task_invocation_parameters()
        .and_then(|p| p.run_command())
        .expect("run command parameters");
    assert_eq!(rc.timeout_seconds(), Some(600));
    assert_eq!(
        rc.parameters()
            .and_then(|p| p.get("Operation"))
            .map(Vec::as_slice),
        Some(&["Install".to_string()][..])
    );

    let updated = ssm
        .update_maintenance_window_task()
        .window_id(&mw)
        .window_task_id(&task_id)
        .task_invocation_parameters(run_patch_baseline("Scan"))
        .send()
        .await
        .expect("update task");
    assert_eq!(updated.priority(), 2, "partial update keeps Priority");
    assert_eq!(updated.name(), Some("install"));

    let automation = ssm
        .register_task_with_maintenance_window()
        .window_id(&mw)
        .task_type(MaintenanceWindowTaskType::Automation)
        .task_arn("AWS-RestartEC2Instance")
        .task_invocation_parameters(
            MaintenanceWindowTaskInvocationParameters::builder()
                .automation(
                    MaintenanceWindowAutomationParameters::builder()
                        .document_version("$LATEST")
                        .parameters("InstanceId", vec!["{{RESOURCE_ID}}".to_string()])
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("automation task");
    assert!(automation.window_task_id().is_some());

    let listed = ssm
        .describe_maintenance_window_tasks()
        .window_id(&mw)
        .filters(
            MaintenanceWindowFilter::builder()
                .key("TaskType")
                .values("RUN_COMMAND")
                .build(),
        )
        .send()
        .await
        .expect("describe tasks");
    assert_eq!(listed.tasks().len(), 1);
    assert_eq!(
        listed.tasks()[0].r#type(),
        Some(&MaintenanceWindowTaskType::RunCommand)
    );
    assert_eq!(listed.tasks()[0].task_arn(), Some("AWS-RunPatchBaseline"));

    // Errors: mismatched invocation parameters, unknown target ids, missing rates, bad rates.
    let mismatched = ssm
        .register_task_with_maintenance_window()
        .window_id(&mw)
        .task_type(MaintenanceWindowTaskType::Automation)
        .task_arn("AWS-RunPatchBaseline")
        .task_invocation_parameters(run_patch_baseline("Scan"))
        .send()
        .await;
    assert_eq!(code(mismatched), "ValidationException");
    let dangling = ssm
        .register_task_with_maintenance_window()
        .window_id(&mw)
        .task_type(MaintenanceWindowTaskType::RunCommand)
        .task_arn("AWS-RunPatchBaseline")
        .task_invocation_parameters(run_patch_baseline("Scan"))
        .targets(window_targets("00000000-0000-4000-8000-000000000000"))
        .max_concurrency("1")
        .max_errors("0")
        .send()
        .await;
    assert_eq!(code(dangling), "DoesNotExistException");
    // The window does not allow unassociated targets: instance ids directly are refused.
    let unassociated = ssm
        .register_task_with_maintenance_window()
        .window_id(&mw)
        .task_type(MaintenanceWindowTaskType::RunCommand)
        .task_arn("AWS-RunPatchBaseline")
        .task_invocation_parameters(run_patch_baseline("Scan"))
        .targets(
            Target::builder()
                .key("InstanceIds")
                .values("i-0123456789abcdef0")
                .build(),
        )
        .max_concurrency("1")
        .max_errors("0")
        .send()
        .await;
    assert_eq!(code(unassociated), "ValidationException");
    let no_rates = ssm
        .register_task_with_maintenance_window()
        .window_id(&mw)
        .task_type(MaintenanceWindowTaskType::RunCommand)
        .task_arn("AWS-RunPatchBaseline")
        .task_invocation_parameters(run_patch_baseline("Scan"))
        .targets(window_targets(&target_id))
        .send()
        .await;
    assert_eq!(code(no_rates), "ValidationException");
    let bad_rate = ssm
        .register_task_with_maintenance_window()
        .window_id(&mw)
        .task_type(MaintenanceWindowTaskType::RunCommand)
        .task_arn("AWS-RunPatchBaseline")
        .task_invocation_parameters(run_patch_baseline("Scan"))
        .targets(window_targets(&target_id))
        .max_concurrency("0")
        .max_errors("101%")
        .send()
        .await;
    assert!(message(bad_rate).starts_with("2 validation errors detected"));

    ssm.deregister_task_from_maintenance_window()
        .window_id(&mw)
        .window_task_id(&task_id)
        .send()
        .await
        .expect("deregister");
    assert_eq!(
        code(
            ssm.get_maintenance_window_task()
                .window_id(&mw)
                .window_task_id(&task_id)
                .send()
                .await
        ),
        "DoesNotExistException"
    );
}

fn run_command_with(params: &[(&str, &str)]) -> MaintenanceWindowTaskInvocationParameters {
    let mut rc = MaintenanceWindowRunCommandParameters::builder();
    for (k, v) in params {
        rc = rc.parameters(*k, vec![v.to_string()]);
    }
    MaintenanceWindowTaskInvocationParameters::builder()
        .run_command(rc.build())
        .build()
}

fn automation_with(params: &[(&str, &str)]) -> MaintenanceWindowTaskInvocationParameters {
    let mut a = MaintenanceWindowAutomationParameters::builder();
    for (k, v) in params {
        a = a.parameters(*k, vec![v.to_string()]);
    }
    MaintenanceWindowTaskInvocationParameters::builder()
        .automation(a.build())
        .build()
}

// The parameters of the two documents patchfleet registers, defined once for SendCommand
// and task registration:
// https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-aws-runpatchbaseline.html
// https://docs.aws.amazon.com/systems-manager-automation-runbooks/latest/userguide/automation-aws-patchinstancewithrollback.html
// Pseudo parameters stand for values known when the task runs:
// https://docs.aws.amazon.com/systems-manager/latest/userguide/maintenance-window-tasks-pseudo-parameters.html
#[tokio::test]
async fn task_parameters_of_run_patch_baseline_and_patch_instance_with_rollback_are_checked() {
    let server = start().await;
    let ssm = ssm(&server);
    let mw = window(&ssm, "checked").await;
    let target_id = prod_target(&ssm, &mw).await;
    let role = "arn:aws:iam::123456789012:role/patchfleet-mw";
    let run_command = |params: MaintenanceWindowTaskInvocationParameters| {
        ssm.register_task_with_maintenance_window()
            .window_id(&mw)
            .task_type(MaintenanceWindowTaskType::RunCommand)
            .task_arn("AWS-RunPatchBaseline")
            .targets(window_targets(&target_id))
            .max_concurrency("10%")
            .max_errors("1")
            .service_role_arn(role)
            .task_invocation_parameters(params)
            .send()
    };
    let task_id = run_command(run_command_with(&[
        ("Operation", "Install"),
        ("RebootOption", "NoReboot"),
        ("SnapshotId", "{{WINDOW_EXECUTION_ID}}"),
    ]))
    .await
    .expect("valid RUN_COMMAND task")
    .window_task_id()
    .expect("id")
    .to_string();
    let got = ssm
        .get_maintenance_window_task()
        .window_id(&mw)
        .window_task_id(&task_id)
        .send()
        .await
        .expect("get");
    assert_eq!(got.service_role_arn(), Some(role));
    for (params, why) in [
        (
            vec![("Operation", "Install"), ("RebootOption", "Reboot")],
            "invalid value",
        ),
        (
            vec![("RebootOption", "NoReboot")],
            "\"Operation\" is required",
        ),
        (
            vec![("Operation", "Install"), ("Reboot", "true")],
            "\"Reboot\" is not defined",
        ),
        (
            vec![("Operation", "{{NOT_A_PSEUDO_PARAMETER}}")],
            "invalid value",
        ),
    ] {
        let refused = run_command(run_command_with(&params)).await;
        let err = refused.expect_err("refused");
        assert_eq!(
            aws_sdk_ssm::error::ProvideErrorMetadata::code(&err),
            Some("ValidationException"),
            "{params:?}"
        );
        let text = aws_sdk_ssm::error::ProvideErrorMetadata::message(&err).unwrap_or_default();
        assert!(text.contains(why), "{params:?}: {text}");
    }
    // The legacy TaskParameters are checked too.
    let legacy = ssm
        .register_task_with_maintenance_window()
        .window_id(&mw)
        .task_type(MaintenanceWindowTaskType::RunCommand)
        .task_arn("AWS-RunPatchBaseline")
        .targets(window_targets(&target_id))
        .max_concurrency("1")
        .max_errors("0")
        .task_parameters(
            "Operation",
            aws_sdk_ssm::types::MaintenanceWindowTaskParameterValueExpression::builder()
                .values("Patch")
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(legacy), "ValidationException");

    let update = |params: MaintenanceWindowTaskInvocationParameters| {
        ssm.update_maintenance_window_task()
            .window_id(&mw)
            .window_task_id(&task_id)
            .task_invocation_parameters(params)
            .send()
    };
    assert_eq!(
        code(
            update(run_command_with(&[
                ("Operation", "Install"),
                ("RebootOption", "Always")
            ]))
            .await
        ),
        "ValidationException"
    );
    let updated = update(run_command_with(&[("Operation", "Scan")]))
        .await
        .expect("valid update");
    assert_eq!(
        updated.service_role_arn(),
        Some(role),
        "ServiceRoleArn kept"
    );

    let automation = |params: MaintenanceWindowTaskInvocationParameters| {
        ssm.register_task_with_maintenance_window()
            .window_id(&mw)
            .task_type(MaintenanceWindowTaskType::Automation)
            .task_arn("AWS-PatchInstanceWithRollback")
            .targets(window_targets(&target_id))
            .max_concurrency("1")
            .max_errors("0")
            .service_role_arn(role)
            .task_invocation_parameters(params)
            .send()
    };
    automation(automation_with(&[
        ("InstanceId", "{{RESOURCE_ID}}"),
        ("AutomationAssumeRole", role),
        ("ReportS3Bucket", "patch-reports"),
    ]))
    .await
    .expect("valid AUTOMATION task");
    automation(automation_with(&[("InstanceId", "{{TARGET_ID}}")]))
        .await
        .expect("TARGET_ID works too");
    for params in [
        vec![("AutomationAssumeRole", role)],
        vec![("InstanceId", "{{RESOURCE_ID}}"), ("Operation", "Install")],
    ] {
        assert_eq!(
            code(automation(automation_with(&params)).await),
            "ValidationException",
            "{params:?}"
        );
    }
}
