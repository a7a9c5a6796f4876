//! Objects patchfleet does not own are observed (quotas count them) but never read deeply
//! or claimed, however they are named.

use aws_sdk_ssm::types::{OperatingSystem as SdkOs, Tag};
use patchfleet_planner::model::tags;
use patchfleet_ssm::{Fingerprints, NAME_PREFIX, observe};

use crate::common::{CLUSTER, client_a, sim_config, start};

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().expect("tag")
}

#[tokio::test]
async fn look_alikes_and_other_clusters_are_not_ours() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let ssm = client.sdk();
    let untagged = format!("{NAME_PREFIX}hand-made");
    let other_cluster = format!("{NAME_PREFIX}other-cluster");
    ssm.create_patch_baseline()
        .name(&untagged)
        .operating_system(SdkOs::AmazonLinux2)
        .send()
        .await
        .expect("create by hand");
    ssm.create_patch_baseline()
        .name(&other_cluster)
        .operating_system(SdkOs::Windows)
        .tags(tag(tags::CLUSTER, "another-cluster"))
        .tags(tag(tags::FINGERPRINT, "whatever"))
        .send()
        .await
        .expect("create by another cluster");
    ssm.create_patch_baseline()
        .name("team-baseline")
        .operating_system(SdkOs::Ubuntu)
        .tags(tag(tags::CLUSTER, CLUSTER))
        .send()
        .await
        .expect("create without the prefix");
    ssm.create_maintenance_window()
        .name(format!("{NAME_PREFIX}hand-made"))
        .schedule("rate(7 days)")
        .duration(2)
        .cutoff(0)
        .allow_unassociated_targets(true)
        .send()
        .await
        .expect("window by hand");

    // Expected under those names and asked for a deep read: still not read.
    let expected = Fingerprints {
        baselines: [
            (untagged.clone(), "fp".to_owned()),
            (other_cluster.clone(), "fp".to_owned()),
            ("team-baseline".to_owned(), "fp".to_owned()),
        ]
        .into(),
        windows: [(format!("{NAME_PREFIX}hand-made"), "fp".to_owned())].into(),
    };
    let seen = observe(&client, CLUSTER, &expected, true)
        .await
        .expect("observe");
    let observed = &seen.observed;
    assert_eq!(observed.baselines.len(), 3, "all counted");
    let by_name = |n: &str| {
        observed
            .baselines
            .iter()
            .find(|b| b.name == n)
            .unwrap_or_else(|| panic!("{n} observed"))
    };
    // Not ours: reported without tags.
    assert!(by_name(&untagged).tags.is_empty());
    assert!(by_name(&other_cluster).tags.is_empty());
    // Without the prefix, tags are not even listed.
    assert!(by_name("team-baseline").tags.is_empty());
    assert!(observed.baselines.iter().all(|b| b.definition.is_none()));
    assert_eq!(observed.windows.len(), 1);
    assert!(observed.windows[0].tags.is_empty());
    assert_eq!(observed.windows[0].targets, None);
    // 3 lists + 2 baseline tag reads + 1 window tag read; no Get*.
    assert_eq!(seen.calls, 6);

    // Remembered as not ours: a cheap pass reads no tags.
    let cheap = observe(&client, CLUSTER, &expected, false)
        .await
        .expect("observe");
    assert_eq!(cheap.calls, 3);

    // Adopted by hand: tagged with this cluster's tags. The periodic deep pass reads the
    // tags again of objects not ours whose name the planner expects, and claims it.
    let id = by_name(&untagged).id.clone();
    ssm.add_tags_to_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::PatchBaseline)
        .resource_id(&id)
        .tags(tag(tags::CLUSTER, CLUSTER))
        .tags(tag(tags::OWNER, "PatchPolicy/patching/early"))
        .send()
        .await
        .expect("tag by hand");
    let deep = observe(&client, CLUSTER, &expected, true)
        .await
        .expect("observe");
    let adopted = deep
        .observed
        .baselines
        .iter()
        .find(|b| b.id == id)
        .expect("listed");
    assert_eq!(
        adopted.tags.get(tags::CLUSTER).map(String::as_str),
        Some(CLUSTER)
    );
    assert!(adopted.definition.is_some(), "ours now: read deeply");
    // 3 lists + the 3 expected names not ours re-read + GetPatchBaseline.
    assert_eq!(deep.calls, 7);
}
