//! What a pass costs on a converged account-region of the examples' size, counted by the
//! simulator, and paging past AWS's largest page.

use aws_sdk_ssm::types::OperatingSystem as SdkOs;
use patchfleet_ssm::{Fingerprints, apply, observe};

use crate::common::*;

#[tokio::test]
async fn a_converged_pass_costs_list_and_tag_reads_only() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let (baselines, windows) = examples_state();
    let report = apply(&client, CLUSTER, &create_all(&baselines, &windows)).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    let fps = fingerprints(&baselines, &windows, 1);

    server.sim().counters.reset();
    let cheap = observe(&client, CLUSTER, &fps, false)
        .await
        .expect("cheap observe");
    let cheap_calls = sim_calls(&server, ACCOUNT_A, REGION);
    server.sim().counters.reset();
    let deep = observe(&client, CLUSTER, &fps, true)
        .await
        .expect("deep observe");
    let deep_calls = sim_calls(&server, ACCOUNT_A, REGION);

    println!(
        "examples-sized state: {} baselines, {} registrations, {} windows; apply took {} calls",
        baselines.len(),
        cheap.observed.registrations.len(),
        windows.len(),
        report.calls
    );
    println!("cheap pass: {} calls {cheap_calls:?}", cheap.calls);
    println!("deep pass: {} calls {deep_calls:?}", deep.calls);

    let windows_read = windows.len() as u64;
    let tasks: u64 = windows.iter().map(|w| w.tasks.len() as u64).sum();
    let expected_cheap = 3 + baselines.len() as u64 + windows_read;
    assert_eq!(u64::from(cheap.calls), expected_cheap);
    assert_eq!(cheap_calls.values().sum::<u64>(), expected_cheap);
    for never in [
        "GetPatchBaseline",
        "GetMaintenanceWindow",
        "GetMaintenanceWindowTask",
    ] {
        assert!(!cheap_calls.contains_key(never), "{never} in a cheap pass");
    }
    assert_eq!(
        u64::from(deep.calls),
        expected_cheap + baselines.len() as u64 + 2 * windows_read + tasks
    );
    assert!(
        cheap
            .observed
            .baselines
            .iter()
            .all(|b| b.definition.is_none())
    );
    assert!(
        deep.observed
            .baselines
            .iter()
            .all(|b| b.definition.is_some())
    );

    // One drifted fingerprint costs exactly that object's deep read.
    let mut drifted = fps.clone();
    drifted
        .baselines
        .insert(baselines[0].name.clone(), "newer".into());
    let one = observe(&client, CLUSTER, &drifted, false)
        .await
        .expect("observe");
    assert_eq!(u64::from(one.calls), expected_cheap + 1);
}

#[tokio::test]
async fn lists_follow_every_page() {
    let mut config = sim_config();
    config.quotas.patch_baselines = 250;
    let server = start(config).await;
    let (_edge, client) = client_a(&server).await;
    for i in 0..230 {
        client
            .sdk()
            .create_patch_baseline()
            .name(format!("team-{i:03}"))
            .operating_system(SdkOs::AmazonLinux2023)
            .send()
            .await
            .expect("create");
    }
    let seen = observe(&client, CLUSTER, &Fingerprints::default(), false)
        .await
        .expect("observe");
    assert_eq!(seen.observed.baselines.len(), 230);
    // Three pages of baselines (100 each), one of groups, one of windows.
    assert_eq!(seen.calls, 5);
}
