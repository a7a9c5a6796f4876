//! SSM Agents registering with activations (`POST /_sim/register` and
//! `ssm_sim::fleet::register`), the `mi-` nodes they become as SSM describes, tags and
//! patches them, and DeregisterManagedInstance.
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateActivation.html (Tags)
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeregisterManagedInstance.html

use aws_sdk_ssm::types::{
    InstanceInformationStringFilter, MaintenanceWindowResourceType,
    MaintenanceWindowRunCommandParameters, MaintenanceWindowTaskInvocationParameters,
    MaintenanceWindowTaskType, ResourceType, ResourceTypeForTagging, Target,
};
use serde_json::{Value, json};
use ssm_sim::config::DEFAULT_ACCOUNT;
use ssm_sim::fleet::{RegisterError, RegisterRequest};
use ssm_sim::{Config, Settings};

use crate::activations::{OTHER_ACCOUNT, OTHER_KEY, advance, describe, tag};
use crate::common::{
    REGION, code, control, creds, instance, instances, put_instances, ssm, ssm_as, start,
    start_with,
};

/// `POST /_sim/register`; answers the status and the JSON body.
async fn register(server: &ssm_sim::Server, body: Value) -> (u16, Value) {
    let (status, reply) = control(server, "POST", "/_sim/register", &body.to_string()).await;
    let reply = serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply}"));
    (status, reply)
}

async fn registered(server: &ssm_sim::Server, body: Value) -> String {
    let (status, reply) = register(server, body).await;
    assert_eq!(status, 200, "{reply}");
    reply["instanceId"].as_str().expect("instanceId").to_owned()
}

async fn refused(server: &ssm_sim::Server, body: Value) -> String {
    let (status, reply) = register(server, body).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply["message"].is_string(), "{reply}");
    reply["error"].as_str().expect("error code").to_owned()
}

async fn tags_of(ssm: &aws_sdk_ssm::Client, id: &str) -> Vec<(String, String)> {
    ssm.list_tags_for_resource()
        .resource_type(ResourceTypeForTagging::ManagedInstance)
        .resource_id(id)
        .send()
        .await
        .expect("ListTagsForResource")
        .tag_list()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

fn activation_filter(id: &str) -> InstanceInformationStringFilter {
    InstanceInformationStringFilter::builder()
        .key("ActivationIds")
        .values(id)
        .build()
        .expect("filter")
}

/// An activation for `limit` nodes tagged `Patch Group` = `group`, named `vm`.
async fn activation(ssm: &aws_sdk_ssm::Client, limit: i32, group: &str) -> (String, String) {
    let out = ssm
        .create_activation()
        .iam_role("service-role/HybridRole")
        .default_instance_name("vm")
        .registration_limit(limit)
        .tags(tag("Patch Group", group))
        .tags(tag("cloud", "azure"))
        .send()
        .await
        .expect("CreateActivation");
    (
        out.activation_id().expect("id").to_owned(),
        out.activation_code().expect("code").to_owned(),
    )
}

#[tokio::test]
async fn a_registered_node_carries_its_activations_tags_role_and_name() {
    let server = start().await;
    let ssm = ssm(&server);
    let (id, secret) = activation(&ssm, 1, "early").await;
    let (status, reply) = register(
        &server,
        json!({"activationId": id, "activationCode": secret, "region": REGION,
               "platformName": "Ubuntu", "platformVersion": "22.04", "operatingSystem": "UBUNTU",
               "sourceType": "Microsoft.Compute/virtualMachines", "computerName": "vm-17"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["accountId"], DEFAULT_ACCOUNT);
    assert_eq!(reply["region"], REGION);
    let mi = reply["instanceId"].as_str().expect("instanceId");
    assert!(ssm_sim::validate::matches(r"^mi-[0-9a-f]{17}$", mi), "{mi}");

    // "tags assigned to the activation are automatically applied to the on-premises
    // servers or VMs"
    assert_eq!(
        tags_of(&ssm, mi).await,
        [
            ("Patch Group".to_owned(), "early".to_owned()),
            ("cloud".to_owned(), "azure".to_owned())
        ]
    );
    let out = ssm
        .describe_instance_information()
        .filters(activation_filter(&id))
        .send()
        .await
        .expect("DescribeInstanceInformation");
    let [node] = out.instance_information_list() else {
        panic!("one node: {out:?}");
    };
    assert_eq!(node.instance_id(), Some(mi));
    assert_eq!(node.activation_id(), Some(id.as_str()));
    assert_eq!(node.iam_role(), Some("service-role/HybridRole"));
    assert_eq!(node.name(), Some("vm"), "DefaultInstanceName");
    assert_eq!(node.computer_name(), Some("vm-17"));
    assert_eq!(node.platform_name(), Some("Ubuntu"));
    assert_eq!(node.resource_type(), Some(&ResourceType::ManagedInstance));
    assert_eq!(
        node.source_type().map(|s| s.as_str()),
        Some("Microsoft.Compute/virtualMachines")
    );
    let registered_at = node.registration_date().expect("RegistrationDate");
    assert!((registered_at.as_secs_f64() - server.sim().clock.now()).abs() < 5.0);

    let a = describe(&ssm, &id).await.expect("activation");
    assert_eq!(a.registrations_count(), Some(1));

    // The node's Patch Group tag is its own from now on.
    ssm.add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::ManagedInstance)
        .resource_id(mi)
        .tags(tag("Patch Group", "late"))
        .send()
        .await
        .expect("AddTagsToResource");
    assert_eq!(tags_of(&ssm, mi).await[0].1, "late");
    let a = describe(&ssm, &id).await.expect("activation");
    assert_eq!(
        a.tags()[0].value(),
        "early",
        "the activation keeps its tags"
    );
}

#[tokio::test]
async fn registration_is_refused_without_a_usable_activation() {
    let server = start().await;
    let ssm = ssm(&server);
    let (id, secret) = activation(&ssm, 1, "early").await;
    let body = |id: &str, code: &str, region: &str| json!({"activationId": id, "activationCode": code, "region": region});
    let wrong_code = refused(&server, body(&id, "AAAAAAAAAAAAAAAAAAAA", REGION)).await;
    assert_eq!(wrong_code, "InvalidActivation");
    let elsewhere = refused(&server, body(&id, &secret, "eu-west-1")).await;
    assert_eq!(elsewhere, "InvalidActivation", "activations are regional");
    let unknown = body("00000000-0000-4000-8000-000000000000", &secret, REGION);
    assert_eq!(refused(&server, unknown).await, "InvalidActivation");
    assert_eq!(
        refused(&server, body("act-1", &secret, REGION)).await,
        "InvalidActivationId"
    );
    assert_eq!(
        refused(&server, body(&id, &secret, "Europe")).await,
        "InvalidRequest"
    );
    let mut extra = body(&id, &secret, REGION);
    extra["instanceId"] = json!("mi-0123456789abcdef0");
    assert_eq!(
        refused(&server, extra).await,
        "InvalidRequest",
        "the id is the registration's"
    );
    let mut bad_platform = body(&id, &secret, REGION);
    bad_platform["platformType"] = json!("Solaris");
    assert_eq!(refused(&server, bad_platform).await, "InvalidRequest");
    let (status, _) = control(&server, "POST", "/_sim/register", "{").await;
    assert_eq!(status, 400);
    let a = describe(&ssm, &id).await.expect("activation");
    assert_eq!(
        a.registrations_count(),
        Some(0),
        "refusals register nothing"
    );
    assert!(
        instances(&server, DEFAULT_ACCOUNT, REGION).await["instances"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    // RegistrationLimit 1: the first registration uses it up.
    registered(&server, body(&id, &secret, REGION)).await;
    assert_eq!(
        refused(&server, body(&id, &secret, REGION)).await,
        "ActivationLimitExceeded"
    );
    let a = describe(&ssm, &id).await.expect("activation");
    assert_eq!(a.registrations_count(), Some(1));

    // Expired on the simulated clock (the default expiry is 24 hours).
    let (fresh, fresh_code) = activation(&ssm, 5, "early").await;
    advance(&server, 86_401.0).await;
    assert_eq!(
        refused(&server, body(&fresh, &fresh_code, REGION)).await,
        "ActivationExpired"
    );

    // A deleted activation registers nothing more; its nodes stay ("Deleting an
    // activation doesn't de-register managed nodes").
    ssm.delete_activation()
        .activation_id(&id)
        .send()
        .await
        .expect("DeleteActivation");
    assert_eq!(
        refused(&server, body(&id, &secret, REGION)).await,
        "InvalidActivation"
    );
    let out = ssm
        .describe_instance_information()
        .filters(activation_filter(&id))
        .send()
        .await
        .expect("described");
    assert_eq!(out.instance_information_list().len(), 1);
}

#[tokio::test]
async fn registration_adds_to_the_fleet_of_the_activations_account() {
    let server = start_with(Config {
        access_keys: [(OTHER_KEY.to_string(), OTHER_ACCOUNT.to_string())].into(),
        ..Config::default()
    })
    .await;
    let other = ssm_as(&server, creds(OTHER_KEY, None), REGION);
    put_instances(
        &server,
        json!({"accountId": OTHER_ACCOUNT, "region": REGION,
               "instances": [{"instanceId": "i-0123456789abcdef0"}]}),
    )
    .await;
    let (id, secret) = activation(&other, 2, "web").await;

    // The in-process API, as Rust tests use it.
    let request = RegisterRequest {
        activation_id: id.clone(),
        activation_code: secret.clone(),
        region: REGION.into(),
        missing_patches: 2,
        ..RegisterRequest::default()
    };
    let first = ssm_sim::fleet::register(server.sim(), request.clone()).expect("registered");
    assert_eq!(first.account_id, OTHER_ACCOUNT);
    assert_eq!(first.region, REGION);
    let second = ssm_sim::fleet::register(server.sim(), request.clone()).expect("registered");
    assert_ne!(first.instance_id, second.instance_id);
    let third = ssm_sim::fleet::register(server.sim(), request).expect_err("limit 2");
    assert!(matches!(
        third,
        RegisterError::LimitReached { limit: 2, .. }
    ));
    assert_eq!(third.code(), "ActivationLimitExceeded");

    let fleet = instances(&server, OTHER_ACCOUNT, REGION).await;
    assert_eq!(
        fleet["instances"].as_array().map(Vec::len),
        Some(3),
        "{fleet}"
    );
    instance(&fleet, "i-0123456789abcdef0");
    let node = instance(&fleet, &first.instance_id);
    assert_eq!(node["missingPatches"], 2);
    assert_eq!(node["sourceType"], "AWS::SSM::ManagedInstance");
    assert_eq!(node["activationId"], id.as_str());

    // Nothing of it in the default account, which cannot deregister the node.
    let mine = ssm(&server);
    let listed = mine
        .describe_instance_information()
        .send()
        .await
        .expect("described");
    assert!(listed.instance_information_list().is_empty());
    let r = mine
        .deregister_managed_instance()
        .instance_id(&first.instance_id)
        .send()
        .await;
    assert_eq!(code(r), "InvalidInstanceId");
}

#[tokio::test]
async fn deregistering_removes_the_node_and_its_reports() {
    let server = start_with(Config {
        settings: Settings {
            command_seconds: 0.0,
        },
        ..Config::default()
    })
    .await;
    let ssm = ssm(&server);
    let (id, secret) = activation(&ssm, 1, "early").await;
    let mi = registered(
        &server,
        json!({"activationId": id, "activationCode": secret, "region": REGION, "missingPatches": 1}),
    )
    .await;
    ssm.send_command()
        .document_name("AWS-RunPatchBaseline")
        .instance_ids(&mi)
        .parameters("Operation", vec!["Scan".into()])
        .send()
        .await
        .expect("scan");
    let states = ssm
        .describe_instance_patch_states()
        .instance_ids(&mi)
        .send()
        .await
        .expect("states");
    assert_eq!(states.instance_patch_states().len(), 1);

    ssm.deregister_managed_instance()
        .instance_id(&mi)
        .send()
        .await
        .expect("DeregisterManagedInstance");
    let listed = ssm
        .describe_instance_information()
        .send()
        .await
        .expect("described");
    assert!(listed.instance_information_list().is_empty());
    let states = ssm
        .describe_instance_patch_states()
        .instance_ids(&mi)
        .send()
        .await
        .expect("states");
    assert!(states.instance_patch_states().is_empty());
    let summaries = ssm
        .list_resource_compliance_summaries()
        .send()
        .await
        .expect("compliance");
    assert!(summaries.resource_compliance_summary_items().is_empty());
    let tags = ssm
        .list_tags_for_resource()
        .resource_type(ResourceTypeForTagging::ManagedInstance)
        .resource_id(&mi)
        .send()
        .await;
    assert_eq!(code(tags), "InvalidResourceId");

    let again = ssm
        .deregister_managed_instance()
        .instance_id(&mi)
        .send()
        .await;
    assert_eq!(code(again), "InvalidInstanceId");
    // The documented pattern: mi- and 17 hex digits (or an EKS hybrid node id).
    for malformed in ["i-0123456789abcdef0", "mi-123"] {
        let r = ssm
            .deregister_managed_instance()
            .instance_id(malformed)
            .send()
            .await;
        assert_eq!(code(r), "ValidationException", "{malformed}");
    }
    // The registration stays counted: re-registering needs another activation.
    let a = describe(&ssm, &id).await.expect("activation");
    assert_eq!(a.registrations_count(), Some(1));
}

#[tokio::test]
async fn an_install_window_patches_registered_nodes_of_its_patch_group() {
    let server = start_with(Config {
        settings: Settings {
            command_seconds: 60.0,
        },
        ..Config::default()
    })
    .await;
    let ssm = ssm(&server);
    let (id, secret) = activation(&ssm, 2, "web").await;
    let web = registered(
        &server,
        json!({"activationId": id, "activationCode": secret, "region": REGION, "missingPatches": 3}),
    )
    .await;
    let (other_id, other_code) = activation(&ssm, 1, "db").await;
    let db = registered(
        &server,
        json!({"activationId": other_id, "activationCode": other_code, "region": REGION,
               "missingPatches": 3}),
    )
    .await;

    let mw = ssm
        .create_maintenance_window()
        .name("hybrid-patching")
        .schedule("rate(1 day)")
        .duration(2)
        .cutoff(1)
        .allow_unassociated_targets(false)
        .send()
        .await
        .expect("window")
        .window_id()
        .expect("id")
        .to_owned();
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
        .send()
        .await
        .expect("target")
        .window_target_id()
        .expect("id")
        .to_owned();
    let install = MaintenanceWindowTaskInvocationParameters::builder()
        .run_command(
            MaintenanceWindowRunCommandParameters::builder()
                .parameters("Operation", vec!["Install".to_string()])
                .build(),
        )
        .build();
    ssm.register_task_with_maintenance_window()
        .window_id(&mw)
        .task_type(MaintenanceWindowTaskType::RunCommand)
        .task_arn("AWS-RunPatchBaseline")
        .task_invocation_parameters(install)
        .targets(
            Target::builder()
                .key("WindowTargetIds")
                .values(&target)
                .build(),
        )
        .max_concurrency("100%")
        .max_errors("1")
        .send()
        .await
        .expect("task");

    advance(&server, 86_400.0 + 3600.0).await;
    let fleet = instances(&server, DEFAULT_ACCOUNT, REGION).await;
    let patched = instance(&fleet, &web);
    assert_eq!(patched["installedPatches"], 3, "{patched}");
    assert_eq!(patched["missingPatches"], 0);
    assert_eq!(patched["runs"][0]["operation"], "Install");
    assert_eq!(patched["runs"][0]["status"], "Success");
    let untouched = instance(&fleet, &db);
    assert_eq!(untouched["installedPatches"], 0, "another patch group");
    assert!(untouched["runs"].as_array().is_some_and(Vec::is_empty));

    // A node moved into the group by its tag is patched by the next occurrence.
    ssm.add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::ManagedInstance)
        .resource_id(&db)
        .tags(tag("Patch Group", "web"))
        .send()
        .await
        .expect("retag");
    advance(&server, 86_400.0).await;
    let fleet = instances(&server, DEFAULT_ACCOUNT, REGION).await;
    assert_eq!(instance(&fleet, &db)["installedPatches"], 3);
}
