//! The simulated fleet: `/_sim/instances`, Run Command of AWS-RunPatchBaseline with
//! per-node outcomes, target resolution, rate controls and the status lifecycle.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_ssm::types::{
    Command, CommandFilter, CommandFilterKey, CommandInvocationStatus, CommandStatus,
    ResourceTypeForTagging, Tag, Target,
};
use serde_json::{Value, json};
use ssm_sim::config::DEFAULT_ACCOUNT;
use ssm_sim::{Config, Settings};

use crate::common::{
    REGION, code, control, creds, instance, instances, message, put_instances, ssm, ssm_as, start,
    start_with,
};

const A: &str = "i-0000000000000000a";
const B: &str = "i-0000000000000000b";
const C: &str = "i-0000000000000000c";
const D: &str = "mi-0000000000000000d";
const OTHER_ACCOUNT: &str = "111111111111";
const OTHER_KEY: &str = "AKIAOTHERACCOUNTKEY1";

/// Commands complete as soon as they are sent.
fn instant() -> Config {
    Config {
        settings: Settings {
            command_seconds: 0.0,
        },
        access_keys: HashMap::from([(OTHER_KEY.to_string(), OTHER_ACCOUNT.to_string())]),
        ..Config::default()
    }
}

fn node(id: &str, tags: &[(&str, &str)], missing: u64, fails: bool) -> Value {
    let tags: serde_json::Map<String, Value> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({"instanceId": id, "tags": tags, "missingPatches": missing, "failsInstall": fails})
}

async fn fleet(server: &ssm_sim::Server, account: &str, region: &str, nodes: Vec<Value>) {
    put_instances(
        server,
        json!({"accountId": account, "region": region, "instances": nodes}),
    )
    .await;
}

fn tag(key: &str, values: &[&str]) -> Target {
    let mut t = Target::builder().key(format!("tag:{key}"));
    for v in values {
        t = t.values(*v);
    }
    t.build()
}

/// The SendCommand builder for AWS-RunPatchBaseline with an Operation.
fn run(
    ssm: &aws_sdk_ssm::Client,
    operation: &str,
) -> aws_sdk_ssm::operation::send_command::builders::SendCommandFluentBuilder {
    ssm.send_command()
        .document_name("AWS-RunPatchBaseline")
        .parameters("Operation", vec![operation.to_string()])
}

async fn sent(
    builder: aws_sdk_ssm::operation::send_command::builders::SendCommandFluentBuilder,
) -> Command {
    builder
        .send()
        .await
        .expect("SendCommand")
        .command()
        .expect("command")
        .clone()
}

fn id_of(c: &Command) -> String {
    c.command_id().expect("command id").to_string()
}

async fn listed(ssm: &aws_sdk_ssm::Client, command: &Command) -> Command {
    ssm.list_commands()
        .command_id(id_of(command))
        .send()
        .await
        .expect("ListCommands")
        .commands()
        .first()
        .expect("the command")
        .clone()
}

/// (instance id, Status, StatusDetails) of each invocation of a command.
async fn invocations(
    ssm: &aws_sdk_ssm::Client,
    command: &Command,
) -> Vec<(String, CommandInvocationStatus, String)> {
    ssm.list_command_invocations()
        .command_id(id_of(command))
        .send()
        .await
        .expect("ListCommandInvocations")
        .command_invocations()
        .iter()
        .map(|i| {
            (
                i.instance_id().unwrap_or_default().to_string(),
                i.status().cloned().expect("status"),
                i.status_details().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn reached(ssm: &aws_sdk_ssm::Client, command: &Command) -> Vec<String> {
    invocations(ssm, command)
        .await
        .into_iter()
        .map(|(id, _, _)| id)
        .collect()
}

/// The last command run an instance received, from `GET /_sim/instances`.
fn last_run(node: &Value) -> &Value {
    node["runs"]
        .as_array()
        .and_then(|r| r.last())
        .unwrap_or_else(|| panic!("no runs in {node}"))
}

// https://docs.aws.amazon.com/systems-manager/latest/userguide/send-commands-multiple.html#send-commands-targeting
// "If you include more than one Key criteria, the system targets instances that meet all of the criteria."
#[tokio::test]
async fn targets_and_patch_group_with_another_tag_and_or_values_within_one() {
    let server = start_with(instant()).await;
    let ssm = ssm(&server);
    fleet(
        &server,
        DEFAULT_ACCOUNT,
        REGION,
        vec![
            node(A, &[("Patch Group", "early"), ("env", "prod")], 1, false),
            node(B, &[("Patch Group", "early"), ("env", "dev")], 1, false),
            node(C, &[("Patch Group", "late"), ("env", "prod")], 1, false),
            node(D, &[("Patch Group", "early")], 1, false),
        ],
    )
    .await;
    // Tags set through AddTagsToResource on a hybrid node are the fleet node's tags.
    ssm.add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::ManagedInstance)
        .resource_id(D)
        .tags(
            Tag::builder()
                .key("env")
                .value("prod")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("tag the hybrid node");
    let state = instances(&server, DEFAULT_ACCOUNT, REGION).await;
    assert_eq!(instance(&state, D)["tags"]["env"], "prod");

    let both = sent(
        run(&ssm, "Scan")
            .targets(tag("Patch Group", &["early"]))
            .targets(tag("env", &["prod"])),
    )
    .await;
    // SendCommand answers before Targets are resolved (as AWS: TargetCount 0, no InstanceIds).
    assert_eq!(both.status(), Some(&CommandStatus::Pending));
    assert_eq!(both.target_count(), 0);
    assert!(both.instance_ids().is_empty());
    assert_eq!(both.targets().len(), 2);
    assert_eq!(reached(&ssm, &both).await, [A, D]);
    let done = listed(&ssm, &both).await;
    assert_eq!(done.target_count(), 2);
    assert_eq!(done.completed_count(), 2);
    assert_eq!(done.status(), Some(&CommandStatus::Success));
    assert_eq!(done.status_details(), Some("Success"));

    let either_group = sent(
        run(&ssm, "Scan")
            .targets(tag("Patch Group", &["early", "late"]))
            .targets(tag("env", &["prod"])),
    )
    .await;
    assert_eq!(reached(&ssm, &either_group).await, [A, C, D]);

    let listed_and_tagged = sent(
        run(&ssm, "Scan")
            .targets(
                Target::builder()
                    .key("InstanceIds")
                    .values(A)
                    .values(B)
                    .build(),
            )
            .targets(tag("env", &["prod"])),
    )
    .await;
    assert_eq!(reached(&ssm, &listed_and_tagged).await, [A]);

    let by_key =
        sent(run(&ssm, "Scan").targets(Target::builder().key("tag-key").values("env").build()))
            .await;
    assert_eq!(reached(&ssm, &by_key).await, [A, B, C, D]);

    let by_instance = ssm
        .list_commands()
        .instance_id(C)
        .send()
        .await
        .expect("ListCommands by instance");
    assert_eq!(by_instance.commands().len(), 2);
}

#[tokio::test]
async fn instances_are_kept_apart_per_account_and_region() {
    let server = start_with(instant()).await;
    let ssm = ssm(&server);
    let other = ssm_as(&server, creds(OTHER_KEY, None), REGION);
    let group = [("Patch Group", "early")];
    fleet(
        &server,
        DEFAULT_ACCOUNT,
        REGION,
        vec![node(A, &group, 2, false)],
    )
    .await;
    fleet(
        &server,
        OTHER_ACCOUNT,
        REGION,
        vec![node(B, &group, 5, false)],
    )
    .await;
    fleet(
        &server,
        DEFAULT_ACCOUNT,
        "eu-west-1",
        vec![node(A, &group, 7, false)],
    )
    .await;

    let foreign = run(&ssm, "Install").instance_ids(B).send().await;
    assert_eq!(code(foreign), "InvalidInstanceId");
    let by_tag = sent(run(&ssm, "Install").targets(tag("Patch Group", &["early"]))).await;
    assert_eq!(reached(&ssm, &by_tag).await, [A]);
    assert_eq!(
        code(run(&other, "Install").instance_ids(A).send().await),
        "InvalidInstanceId"
    );

    let mine = instances(&server, DEFAULT_ACCOUNT, REGION).await;
    assert_eq!(instance(&mine, A)["installedPatches"], 2);
    let theirs = instances(&server, OTHER_ACCOUNT, REGION).await;
    assert_eq!(instance(&theirs, B)["missingPatches"], 5);
    assert_eq!(instance(&theirs, B)["runs"], json!([]));
    let other_region = instances(&server, DEFAULT_ACCOUNT, "eu-west-1").await;
    assert_eq!(instance(&other_region, A)["missingPatches"], 7);
    assert!(
        other
            .list_commands()
            .send()
            .await
            .expect("ListCommands")
            .commands()
            .is_empty()
    );
}

// https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-aws-runpatchbaseline.html
// RebootIfNeeded reboots "if it installed any patches, or if any patches are detected with a
// status of InstalledPendingReboot"; NoReboot leaves installed patches InstalledPendingReboot.
#[tokio::test]
async fn install_installs_missing_patches_and_reboots_only_when_needed() {
    let server = start_with(instant()).await;
    let ssm = ssm(&server);
    fleet(
        &server,
        DEFAULT_ACCOUNT,
        REGION,
        vec![
            node(A, &[], 3, false),
            node(B, &[], 0, false),
            node(C, &[], 2, false),
        ],
    )
    .await;
    let state = || instances(&server, DEFAULT_ACCOUNT, REGION);

    sent(run(&ssm, "Scan").instance_ids(A).instance_ids(B)).await;
    let s = state().await;
    assert_eq!(instance(&s, A)["missingPatches"], 3, "Scan changes nothing");
    assert_eq!(
        last_run(instance(&s, A)),
        &json!({"commandId": last_run(instance(&s, A))["commandId"], "operation": "Scan",
            "rebootOption": "RebootIfNeeded", "status": "Success", "installed": 0, "rebooted": false})
    );

    let install = sent(run(&ssm, "Install").instance_ids(A).instance_ids(B)).await;
    let s = state().await;
    let a = instance(&s, A);
    assert_eq!(
        (&a["missingPatches"], &a["installedPatches"], &a["reboots"]),
        (&json!(0), &json!(3), &json!(1))
    );
    assert_eq!(last_run(a)["commandId"], id_of(&install));
    assert_eq!(last_run(a)["installed"], 3);
    assert_eq!(last_run(a)["rebooted"], true);
    let b = instance(&s, B);
    assert_eq!(b["reboots"], 0, "nothing installed, no reboot");
    assert_eq!(last_run(b)["rebooted"], false);
    assert_eq!(last_run(b)["status"], "Success");
    let details = ssm
        .list_command_invocations()
        .command_id(id_of(&install))
        .instance_id(A)
        .details(true)
        .send()
        .await
        .expect("details");
    let plugin = &details.command_invocations()[0].command_plugins()[0];
    assert_eq!(plugin.response_code(), 0);
    assert_eq!(plugin.output(), Some("Installed 3 patches; rebooted."));

    let again = sent(run(&ssm, "Install").instance_ids(A).instance_ids(B)).await;
    assert_eq!(
        listed(&ssm, &again).await.status(),
        Some(&CommandStatus::Success)
    );
    let s = state().await;
    for id in [A, B] {
        let n = instance(&s, id);
        assert_eq!(last_run(n)["installed"], 0, "{id}: nothing left to install");
        assert_eq!(last_run(n)["rebooted"], false, "{id}: no reboot");
    }
    assert_eq!(instance(&s, A)["installedPatches"], 3);
    assert_eq!(instance(&s, A)["reboots"], 1);

    sent(
        run(&ssm, "Install")
            .instance_ids(C)
            .parameters("RebootOption", vec!["NoReboot".to_string()]),
    )
    .await;
    let s = state().await;
    let c = instance(&s, C);
    assert_eq!(
        (&c["installedPatches"], &c["reboots"]),
        (&json!(2), &json!(0))
    );
    assert_eq!(c["pendingReboot"], true);
    assert_eq!(last_run(c)["rebootOption"], "NoReboot");
    sent(run(&ssm, "Install").instance_ids(C)).await;
    let s = state().await;
    let c = instance(&s, C);
    assert_eq!(last_run(c)["installed"], 0);
    assert_eq!(last_run(c)["rebooted"], true, "a patch was pending reboot");
    assert_eq!(
        (&c["reboots"], &c["pendingReboot"]),
        (&json!(1), &json!(false))
    );
}

// https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html
// https://docs.aws.amazon.com/systems-manager/latest/userguide/send-commands-multiple.html#send-commands-maxerrors
#[tokio::test]
async fn failed_install_fails_its_invocation_and_the_command_per_max_errors() {
    let server = start_with(instant()).await;
    let ssm = ssm(&server);
    fleet(
        &server,
        DEFAULT_ACCOUNT,
        REGION,
        vec![
            node(A, &[], 1, false),
            node(B, &[], 4, true),
            node(C, &[], 1, false),
            node(D, &[], 1, false),
        ],
    )
    .await;
    let status_of = |inv: &[(String, CommandInvocationStatus, String)], id: &str| {
        inv.iter()
            .find(|(i, _, _)| i == id)
            .map(|(_, s, d)| (s.clone(), d.clone()))
            .unwrap_or_else(|| panic!("{id} not in {inv:?}"))
    };

    // Default rate controls (MaxConcurrency 50, MaxErrors 0): one node first, then two
    // at once; B fails while C is already running, so C completes.
    let cmd = sent(
        run(&ssm, "Install")
            .instance_ids(A)
            .instance_ids(B)
            .instance_ids(C),
    )
    .await;
    let inv = invocations(&ssm, &cmd).await;
    assert_eq!(status_of(&inv, A).0, CommandInvocationStatus::Success);
    assert_eq!(
        status_of(&inv, B),
        (CommandInvocationStatus::Failed, "Failed".to_string())
    );
    assert_eq!(status_of(&inv, C).0, CommandInvocationStatus::Success);
    let done = listed(&ssm, &cmd).await;
    assert_eq!(done.status(), Some(&CommandStatus::Failed));
    assert_eq!(done.status_details(), Some("Failed"));
    assert_eq!(
        (
            done.target_count(),
            done.completed_count(),
            done.error_count()
        ),
        (3, 3, 1)
    );
    let s = instances(&server, DEFAULT_ACCOUNT, REGION).await;
    let b = instance(&s, B);
    assert_eq!(
        (&b["missingPatches"], &b["installedPatches"]),
        (&json!(4), &json!(0))
    );
    assert_eq!(last_run(b)["status"], "Failed");
    assert_eq!(last_run(b)["rebooted"], false);

    // One at a time with MaxErrors 0: after B fails, D is never sent the command.
    let stopped = sent(
        run(&ssm, "Install")
            .instance_ids(B)
            .instance_ids(D)
            .max_concurrency("1")
            .max_errors("0"),
    )
    .await;
    let inv = invocations(&ssm, &stopped).await;
    assert_eq!(
        status_of(&inv, D),
        (CommandInvocationStatus::Cancelled, "Terminated".to_string())
    );
    let done = listed(&ssm, &stopped).await;
    assert_eq!(done.status(), Some(&CommandStatus::Failed));
    assert_eq!((done.completed_count(), done.error_count()), (2, 1));
    let s = instances(&server, DEFAULT_ACCOUNT, REGION).await;
    assert_eq!(instance(&s, D)["missingPatches"], 1, "D was not patched");
    assert_eq!(last_run(instance(&s, D))["status"], "Terminated");

    // MaxErrors 2: one failure is not enough to fail the command: Incomplete.
    let tolerated = sent(
        run(&ssm, "Install")
            .instance_ids(B)
            .instance_ids(D)
            .max_concurrency("1")
            .max_errors("2"),
    )
    .await;
    let inv = invocations(&ssm, &tolerated).await;
    assert_eq!(status_of(&inv, D).0, CommandInvocationStatus::Success);
    let done = listed(&ssm, &tolerated).await;
    assert_eq!(done.status_details(), Some("Incomplete"));
    assert_eq!(done.error_count(), 1);

    // MaxErrors 1: the command goes on after the first failure (only exceeding MaxErrors
    // stops it) but "the value of max-errors or more" failures make it Failed.
    let reached_limit = sent(
        run(&ssm, "Install")
            .instance_ids(B)
            .instance_ids(A)
            .max_concurrency("1")
            .max_errors("1"),
    )
    .await;
    let inv = invocations(&ssm, &reached_limit).await;
    assert_eq!(status_of(&inv, A).0, CommandInvocationStatus::Success);
    assert_eq!(
        listed(&ssm, &reached_limit).await.status_details(),
        Some("Failed")
    );

    let failed_only = ssm
        .list_command_invocations()
        .command_id(id_of(&cmd))
        .filters(
            CommandFilter::builder()
                .key(CommandFilterKey::Status)
                .value("Failed")
                .build()
                .expect("filter"),
        )
        .send()
        .await
        .expect("filtered invocations");
    assert_eq!(failed_only.command_invocations().len(), 1);
}

#[tokio::test]
async fn statuses_move_from_in_progress_to_terminal_with_the_clock() {
    let server = start().await;
    let ssm = ssm(&server);
    let (status, body) = control(&server, "GET", "/_sim/settings", "").await;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).expect("json")),
        (200, json!({"command_seconds": 2.0}))
    );
    let (status, _) = control(
        &server,
        "PUT",
        "/_sim/settings",
        r#"{"command_seconds": -1}"#,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = control(&server, "PUT", "/_sim/settings", r#"{"commandSeconds": 1}"#).await;
    assert_eq!(status, 200);
    fleet(
        &server,
        DEFAULT_ACCOUNT,
        REGION,
        vec![node(A, &[], 1, false)],
    )
    .await;

    let cmd = sent(run(&ssm, "Install").instance_ids(A)).await;
    assert_eq!(
        (cmd.status(), cmd.status_details()),
        (Some(&CommandStatus::Pending), Some("Pending"))
    );
    assert_eq!(cmd.target_count(), 1);
    let running = listed(&ssm, &cmd).await;
    assert_eq!(running.status(), Some(&CommandStatus::InProgress));
    assert_eq!(running.status_details(), Some("InProgress"));
    assert_eq!((running.completed_count(), running.error_count()), (0, 0));
    assert_eq!(
        invocations(&ssm, &cmd).await[0].1,
        CommandInvocationStatus::InProgress
    );
    let s = instances(&server, DEFAULT_ACCOUNT, REGION).await;
    assert_eq!(last_run(instance(&s, A))["status"], "InProgress");
    let stage = |v: &str| {
        ssm.list_commands()
            .filters(
                CommandFilter::builder()
                    .key(CommandFilterKey::ExecutionStage)
                    .value(v)
                    .build()
                    .expect("filter"),
            )
            .send()
    };
    assert_eq!(
        stage("Executing").await.expect("filter").commands().len(),
        1
    );
    assert!(
        stage("Complete")
            .await
            .expect("filter")
            .commands()
            .is_empty()
    );

    // The command takes 1 s of the simulator's clock: wait for it (bounded), never a
    // sleep that races it.
    let mut done = listed(&ssm, &cmd).await;
    for _ in 0..100 {
        if done.status() != Some(&CommandStatus::InProgress) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        done = listed(&ssm, &cmd).await;
    }
    assert_eq!(done.status(), Some(&CommandStatus::Success));
    assert_eq!(done.completed_count(), 1);
    assert_eq!(
        invocations(&ssm, &cmd).await[0].1,
        CommandInvocationStatus::Success
    );
    let s = instances(&server, DEFAULT_ACCOUNT, REGION).await;
    assert_eq!(last_run(instance(&s, A))["status"], "Success");
    assert_eq!(stage("Complete").await.expect("filter").commands().len(), 1);

    let (status, _) = control(&server, "POST", "/_sim/reset", "").await;
    assert_eq!(status, 204);
    let (_, body) = control(&server, "GET", "/_sim/settings", "").await;
    assert!(
        body.contains("2.0"),
        "reset restores the configured settings: {body}"
    );
}

// https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html
// "No Instances In Tag: The tag key-pair value or resource group targeted by the command
// doesn't match any managed nodes. This is a terminal state."
#[tokio::test]
async fn tags_matching_no_node_end_with_no_instances_in_tag() {
    let server = start_with(instant()).await;
    let ssm = ssm(&server);
    fleet(
        &server,
        DEFAULT_ACCOUNT,
        REGION,
        vec![node(A, &[("Patch Group", "early")], 1, false)],
    )
    .await;
    let cmd = sent(run(&ssm, "Install").targets(tag("Patch Group", &["nobody"]))).await;
    assert_eq!(cmd.status(), Some(&CommandStatus::Pending));
    assert_eq!(cmd.target_count(), 0);
    let done = listed(&ssm, &cmd).await;
    assert_eq!(done.status(), Some(&CommandStatus::Success));
    assert_eq!(done.status_details(), Some("NoInstancesInTag"));
    assert_eq!(
        (
            done.target_count(),
            done.completed_count(),
            done.error_count()
        ),
        (0, 0, 0)
    );
    assert!(invocations(&ssm, &cmd).await.is_empty());
    let s = instances(&server, DEFAULT_ACCOUNT, REGION).await;
    assert_eq!(instance(&s, A)["runs"], json!([]));
}

#[tokio::test]
async fn control_endpoint_rejects_bad_fleets_and_commands_unknown_nodes() {
    let server = start_with(instant()).await;
    let ssm = ssm(&server);
    let body = |instances: Value| {
        json!({"accountId": DEFAULT_ACCOUNT, "region": REGION, "instances": instances}).to_string()
    };
    for (bad, why) in [
        (body(json!([{"instanceId": "i-123"}])), "instanceId"),
        (
            body(json!([{"instanceId": "i-0123456789ABCDEF0"}])),
            "instanceId",
        ),
        (body(json!([{"instanceId": A}, {"instanceId": A}])), "twice"),
        (
            body(json!([{"instanceId": A, "missing": 1}])),
            "unknown field",
        ),
        (
            body(json!([{"instanceId": A, "missingPatches": -1}])),
            "invalid instances",
        ),
        (
            body(json!([{"instanceId": A, "tags": {"a": "b\u{7}"}}])),
            "tag",
        ),
        (
            json!({"accountId": "12", "region": REGION, "instances": []}).to_string(),
            "accountId",
        ),
        (
            json!({"accountId": DEFAULT_ACCOUNT, "region": REGION}).to_string(),
            "instances",
        ),
        ("not json".to_string(), "invalid instances"),
    ] {
        let (status, text) = control(&server, "PUT", "/_sim/instances", &bad).await;
        assert_eq!(status, 400, "{bad}: {text}");
        assert!(text.contains(why), "{bad}: {text}");
    }
    let (status, _) = control(&server, "GET", "/_sim/instances?accountId=123456789012", "").await;
    assert_eq!(status, 400);

    // PUT replaces the whole fleet of the account-region.
    fleet(
        &server,
        DEFAULT_ACCOUNT,
        REGION,
        vec![node(A, &[], 0, false)],
    )
    .await;
    fleet(
        &server,
        DEFAULT_ACCOUNT,
        REGION,
        vec![node(D, &[], 0, false)],
    )
    .await;
    let s = instances(&server, DEFAULT_ACCOUNT, REGION).await;
    assert_eq!(s["instances"].as_array().map(Vec::len), Some(1));
    assert_eq!(s["instances"][0]["instanceId"], D);

    let unknown = run(&ssm, "Scan").instance_ids(A).send().await;
    assert!(message(unknown).contains(&format!(
        "not in a valid state for account {DEFAULT_ACCOUNT}"
    )));
    assert_eq!(
        code(
            run(&ssm, "Scan")
                .targets(Target::builder().key("InstanceIds").values(A).build())
                .send()
                .await
        ),
        "InvalidInstanceId"
    );
    assert_eq!(
        code(
            run(&ssm, "Scan")
                .targets(Target::builder().key("Name").values("web").build())
                .send()
                .await
        ),
        "ValidationException"
    );
    let untracked = ssm
        .add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::ManagedInstance)
        .resource_id("mi-0123456789abcdef0")
        .tags(
            Tag::builder()
                .key("env")
                .value("prod")
                .build()
                .expect("tag"),
        )
        .send()
        .await;
    assert_eq!(code(untracked), "InvalidResourceId");
}
