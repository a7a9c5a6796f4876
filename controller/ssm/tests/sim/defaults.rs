//! Default patch baselines through the real SDK: registered, seen in the list at no extra
//! call, and given back to AWS's predefined baseline (by its ARN, as the API requires)
//! before the baseline can be deleted.

use patchfleet_api::v1alpha1::OperatingSystem;
use patchfleet_planner::model::{ObjectRef, Operation};
use patchfleet_ssm::{Fingerprints, SsmClient, apply, observe};

use crate::common::*;

async fn default_for(client: &SsmClient, os: OperatingSystem) -> String {
    client
        .sdk()
        .get_default_patch_baseline()
        .operating_system(patchfleet_ssm::convert::os_to_sdk(os))
        .send()
        .await
        .expect("GetDefaultPatchBaseline")
        .baseline_id()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_baseline_made_default_is_seen_as_such_then_aws_default_comes_back() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let os = OperatingSystem::Windows;
    let aws_default = default_for(&client, os).await;
    assert!(
        aws_default.starts_with("arn:aws:ssm:eu-west-1:"),
        "AWS's default is known by its ARN: {aws_default}"
    );

    let baseline = desired_baseline("defaults", baseline_spec(os, 3), &[]);
    let ops = [
        Operation::CreateBaseline {
            baseline: baseline.clone(),
            fingerprint: fingerprint_of(&baseline.name, 1),
        },
        Operation::RegisterDefaultBaseline {
            baseline: ObjectRef::Created(baseline.name.clone()),
            operating_system: os,
        },
    ];
    let report = apply(&client, CLUSTER, &ops).await;
    assert!(report.is_complete(), "{:?}", report.error);
    let seen = observe(&client, CLUSTER, &Fingerprints::default(), false)
        .await
        .expect("observe");
    assert_eq!(seen.calls, 3, "the default flag comes with the list");
    let ours = &seen.observed.baselines[0];
    assert!(ours.default);
    assert_eq!(default_for(&client, os).await, ours.id);

    // A default cannot be deleted: AWS's is registered first.
    let delete = Operation::DeleteBaseline {
        id: ours.id.clone(),
        name: ours.name.clone(),
    };
    let refused = apply(&client, CLUSTER, std::slice::from_ref(&delete)).await;
    assert!(refused.error.is_some(), "SSM refuses to delete a default");

    let restore = [
        Operation::RestoreDefaultBaseline {
            operating_system: os,
            replacing: ours.id.clone(),
        },
        delete,
    ];
    let report = apply(&client, CLUSTER, &restore).await;
    assert!(report.is_complete(), "{:?}", report.error);
    // DescribePatchBaselines (OWNER=AWS), RegisterDefaultPatchBaseline, DeletePatchBaseline.
    assert_eq!(report.calls, 3);
    assert_eq!(default_for(&client, os).await, aws_default);
}

#[tokio::test]
async fn restoring_several_defaults_lists_aws_baselines_once() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let systems = [OperatingSystem::Windows, OperatingSystem::AmazonLinux2];
    let mut ops = Vec::new();
    for os in systems {
        let baseline = desired_baseline("defaults", baseline_spec(os, 3), &[]);
        ops.push(Operation::CreateBaseline {
            baseline: baseline.clone(),
            fingerprint: fingerprint_of(&baseline.name, 1),
        });
        ops.push(Operation::RegisterDefaultBaseline {
            baseline: ObjectRef::Created(baseline.name.clone()),
            operating_system: os,
        });
    }
    assert!(apply(&client, CLUSTER, &ops).await.is_complete());
    let restore: Vec<Operation> = systems
        .iter()
        .map(|os| Operation::RestoreDefaultBaseline {
            operating_system: *os,
            replacing: String::new(),
        })
        .collect();
    let report = apply(&client, CLUSTER, &restore).await;
    assert!(report.is_complete(), "{:?}", report.error);
    assert_eq!(
        report.calls, 3,
        "one list, one register per operating system"
    );
    assert!(
        default_for(&client, systems[1])
            .await
            .contains(":patchbaseline/")
    );
}
