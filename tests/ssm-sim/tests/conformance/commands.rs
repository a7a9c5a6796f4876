//! SendCommand, ListCommands and ListCommandInvocations for AWS-RunPatchBaseline.

use aws_sdk_ssm::types::{CommandFilter, CommandFilterKey, ResourceTypeForTagging, Tag, Target};

use serde_json::json;
use ssm_sim::{Config, Settings};

use crate::common::{code, put_instances, ssm, start, start_with};

#[tokio::test]
async fn run_patch_baseline_commands_are_listed() {
    let server = start_with(Config {
        settings: Settings {
            command_seconds: 0.0,
        },
        ..Config::default()
    })
    .await;
    let ssm = ssm(&server);
    put_instances(
        &server,
        json!({"accountId": "123456789012", "region": "us-east-1", "instances": [
            {"instanceId": "i-0123456789abcdef0"},
            {"instanceId": "i-0123456789abcdef1"},
            {"instanceId": "mi-0123456789abcdef0"},
        ]}),
    )
    .await;
    let sent = ssm
        .send_command()
        .document_name("AWS-RunPatchBaseline")
        .instance_ids("i-0123456789abcdef0")
        .instance_ids("i-0123456789abcdef1")
        .parameters("Operation", vec!["Scan".to_string()])
        .comment("scan")
        .send()
        .await
        .expect("SendCommand");
    let command = sent.command().expect("command");
    let id = command.command_id().expect("id").to_string();
    assert_eq!(command.target_count(), 2);
    assert_eq!(command.max_concurrency(), Some("50"));

    // Tag targets reach managed instances carrying the tag.
    ssm.add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::ManagedInstance)
        .resource_id("mi-0123456789abcdef0")
        .tags(
            Tag::builder()
                .key("Patch Group")
                .value("web")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("tag instance");
    let by_tag = ssm
        .send_command()
        .document_name("AWS-RunPatchBaseline")
        .targets(
            Target::builder()
                .key("tag:Patch Group")
                .values("web")
                .build(),
        )
        .parameters("Operation", vec!["Install".to_string()])
        .send()
        .await
        .expect("SendCommand by tag");
    let by_tag_id = by_tag
        .command()
        .and_then(|c| c.command_id())
        .expect("id")
        .to_string();
    // A Targets command lists no InstanceIds; its invocations are the nodes reached.
    assert!(by_tag.command().expect("command").instance_ids().is_empty());
    let reached = ssm
        .list_command_invocations()
        .command_id(&by_tag_id)
        .send()
        .await
        .expect("invocations by tag");
    assert_eq!(
        reached
            .command_invocations()
            .iter()
            .filter_map(|i| i.instance_id())
            .collect::<Vec<_>>(),
        ["mi-0123456789abcdef0"]
    );

    let listed = ssm.list_commands().send().await.expect("ListCommands");
    let ids: Vec<_> = listed
        .commands()
        .iter()
        .filter_map(|c| c.command_id())
        .collect();
    assert_eq!(ids, [by_tag_id.as_str(), id.as_str()], "newest first");
    let one = ssm
        .list_commands()
        .command_id(&id)
        .send()
        .await
        .expect("by id");
    assert_eq!(one.commands().len(), 1);
    let by_instance = ssm
        .list_commands()
        .instance_id("mi-0123456789abcdef0")
        .send()
        .await
        .expect("by instance");
    assert_eq!(by_instance.commands().len(), 1);
    let by_doc = ssm
        .list_commands()
        .filters(
            CommandFilter::builder()
                .key(CommandFilterKey::DocumentName)
                .value("AWS-RunPatchBaseline")
                .build()
                .expect("filter"),
        )
        .send()
        .await
        .expect("by document");
    assert_eq!(by_doc.commands().len(), 2);

    // Paging over invocations of one command with MaxResults 1.
    let first = ssm
        .list_command_invocations()
        .command_id(&id)
        .max_results(1)
        .details(true)
        .send()
        .await
        .expect("page 1");
    assert_eq!(first.command_invocations().len(), 1);
    let inv = &first.command_invocations()[0];
    assert_eq!(inv.status().map(|s| s.as_str()), Some("Success"));
    assert_eq!(inv.command_plugins().len(), 1);
    let second = ssm
        .list_command_invocations()
        .command_id(&id)
        .max_results(1)
        .next_token(first.next_token().expect("more"))
        .send()
        .await
        .expect("page 2");
    assert_ne!(
        second.command_invocations()[0].instance_id(),
        inv.instance_id(),
        "the second page continues within the same command"
    );
    assert_eq!(second.next_token(), None);
}

#[tokio::test]
async fn send_command_errors() {
    let server = start().await;
    let ssm = ssm(&server);
    let unknown_doc = ssm
        .send_command()
        .document_name("AWS-Nope")
        .instance_ids("i-0123456789abcdef0")
        .send()
        .await;
    assert_eq!(code(unknown_doc), "InvalidDocument");
    let bad_operation = ssm
        .send_command()
        .document_name("AWS-RunPatchBaseline")
        .instance_ids("i-0123456789abcdef0")
        .parameters("Operation", vec!["Reboot".to_string()])
        .send()
        .await;
    assert_eq!(code(bad_operation), "InvalidParameters");
    let unknown_node = ssm
        .send_command()
        .document_name("AWS-RunPatchBaseline")
        .instance_ids("i-0123456789abcdef0")
        .parameters("Operation", vec!["Scan".to_string()])
        .send()
        .await;
    assert_eq!(code(unknown_node), "InvalidInstanceId");
    let automation_runbook = ssm
        .send_command()
        .document_name("AWS-PatchInstanceWithRollback")
        .instance_ids("i-0123456789abcdef0")
        .parameters("InstanceId", vec!["i-0123456789abcdef0".to_string()])
        .send()
        .await;
    assert_eq!(code(automation_runbook), "InvalidDocument");
    let nothing_targeted = ssm
        .send_command()
        .document_name("AWS-RunPatchBaseline")
        .parameters("Operation", vec!["Scan".to_string()])
        .send()
        .await;
    assert_eq!(code(nothing_targeted), "ValidationException");
    let bad_instance = ssm
        .send_command()
        .document_name("AWS-RunPatchBaseline")
        .instance_ids("server-1")
        .parameters("Operation", vec!["Scan".to_string()])
        .send()
        .await;
    assert_eq!(code(bad_instance), "ValidationException");
    let unknown_command = ssm
        .list_commands()
        .command_id("00000000-0000-4000-8000-000000000000")
        .send()
        .await;
    assert_eq!(code(unknown_command), "InvalidCommandId");
    assert_eq!(
        code(ssm.list_commands().max_results(51).send().await),
        "ValidationException"
    );
}
