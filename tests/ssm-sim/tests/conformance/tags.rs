//! Tags on baselines, windows and managed instances through aws-sdk-ssm.

use aws_sdk_ssm::types::{ResourceTypeForTagging, Tag};
use ssm_sim::{Config, Quotas};

use crate::common::{code, put_instances, ssm, start, start_with};

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().expect("tag")
}

async fn tags_of(
    ssm: &aws_sdk_ssm::Client,
    kind: ResourceTypeForTagging,
    id: &str,
) -> Vec<(String, String)> {
    ssm.list_tags_for_resource()
        .resource_type(kind)
        .resource_id(id)
        .send()
        .await
        .expect("ListTagsForResource")
        .tag_list()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

#[tokio::test]
async fn tags_on_every_supported_resource_type() {
    let server = start().await;
    let ssm = ssm(&server);
    let pb = ssm
        .create_patch_baseline()
        .name("tagged")
        .tags(tag("owner", "fleet"))
        .send()
        .await
        .expect("baseline")
        .baseline_id()
        .expect("id")
        .to_string();
    let mw = ssm
        .create_maintenance_window()
        .name("tagged")
        .schedule("rate(7 days)")
        .duration(2)
        .cutoff(1)
        .allow_unassociated_targets(false)
        .tags(tag("owner", "fleet"))
        .send()
        .await
        .expect("window")
        .window_id()
        .expect("id")
        .to_string();
    let mi = "mi-0123456789abcdef0";
    // Managed instances are the simulated fleet's hybrid nodes.
    put_instances(
        &server,
        serde_json::json!({"accountId": "123456789012", "region": "us-east-1",
            "instances": [{"instanceId": mi, "tags": {"owner": "fleet"}}]}),
    )
    .await;
    for (kind, id) in [
        (ResourceTypeForTagging::PatchBaseline, pb.as_str()),
        (ResourceTypeForTagging::MaintenanceWindow, mw.as_str()),
        (ResourceTypeForTagging::ManagedInstance, mi),
    ] {
        ssm.add_tags_to_resource()
            .resource_type(kind.clone())
            .resource_id(id)
            .tags(tag("env", "prod"))
            .tags(tag("Patch Group", "web"))
            .send()
            .await
            .expect("AddTagsToResource");
        // Adding an existing key overwrites its value.
        ssm.add_tags_to_resource()
            .resource_type(kind.clone())
            .resource_id(id)
            .tags(tag("env", "staging"))
            .send()
            .await
            .expect("overwrite");
        ssm.remove_tags_from_resource()
            .resource_type(kind.clone())
            .resource_id(id)
            .tag_keys("Patch Group")
            .send()
            .await
            .expect("RemoveTagsFromResource");
        let tags = tags_of(&ssm, kind, id).await;
        assert!(
            tags.contains(&("env".to_string(), "staging".to_string())),
            "{tags:?}"
        );
        assert!(!tags.iter().any(|(k, _)| k == "Patch Group"));
    }
    assert_eq!(
        tags_of(&ssm, ResourceTypeForTagging::PatchBaseline, &pb).await,
        [
            ("env".to_string(), "staging".to_string()),
            ("owner".to_string(), "fleet".to_string())
        ]
    );
}

#[tokio::test]
async fn tag_errors() {
    let config = Config {
        quotas: Quotas {
            tags_per_resource: 2,
            ..Quotas::default()
        },
        ..Config::default()
    };
    let server = start_with(config).await;
    let ssm = ssm(&server);
    let missing = ssm
        .add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::PatchBaseline)
        .resource_id("pb-0123456789abcdef0")
        .tags(tag("a", "b"))
        .send()
        .await;
    assert_eq!(code(missing), "InvalidResourceId");
    let bad_instance = ssm
        .list_tags_for_resource()
        .resource_type(ResourceTypeForTagging::ManagedInstance)
        .resource_id("i-0123456789abcdef0")
        .send()
        .await;
    assert_eq!(code(bad_instance), "InvalidResourceId");
    let pb = ssm
        .create_patch_baseline()
        .name("few-tags")
        .send()
        .await
        .expect("baseline")
        .baseline_id()
        .expect("id")
        .to_string();
    let three = ssm
        .add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::PatchBaseline)
        .resource_id(&pb)
        .tags(tag("a", "1"))
        .tags(tag("b", "2"))
        .tags(tag("c", "3"))
        .send()
        .await;
    assert_eq!(code(three), "TooManyTagsError");
    let bad_key = ssm
        .add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::PatchBaseline)
        .resource_id(&pb)
        .tags(tag("bad*key", "1"))
        .send()
        .await;
    assert_eq!(code(bad_key), "ValidationException");
}
