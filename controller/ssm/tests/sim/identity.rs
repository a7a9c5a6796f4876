//! Credentials per account and the identity check.

use patchfleet_ssm::{AccountAccess, ErrorKind, Fingerprints, observe};
use ssm_sim::FaultSpec;

use crate::common::{
    ACCOUNT_A, ACCOUNT_B, BASE_ACCOUNT, CLUSTER, REGION, access_a, edge, sim_config, start,
};

#[tokio::test]
async fn assumed_role_with_external_id_is_verified() {
    let server = start(sim_config()).await;
    let edge = edge(&server).await;
    let caller = edge
        .account(&access_a())
        .await
        .verify_identity()
        .await
        .expect("identity verified");
    assert_eq!(caller.account_id, ACCOUNT_A);
    assert_eq!(
        caller.arn,
        format!("arn:aws:sts::{ACCOUNT_A}:assumed-role/patchfleet/patchfleet")
    );
}

#[tokio::test]
async fn assumed_credentials_are_cached_across_calls_and_regions() {
    let server = start(sim_config()).await;
    let edge = edge(&server).await;
    let account = edge.account(&access_a()).await;
    account.verify_identity().await.expect("identity");
    for region in ["eu-west-1", "us-east-1"] {
        observe(
            &account.client(region),
            CLUSTER,
            &Fingerprints::default(),
            false,
        )
        .await
        .expect("observe");
    }
    let assumed: u64 = server
        .sim()
        .counters
        .snapshot()
        .iter()
        .filter(|c| c.key.operation == "AssumeRole")
        .map(|c| c.count)
        .sum();
    assert_eq!(
        assumed, 1,
        "one AssumeRole for the account, whatever the region"
    );
}

#[tokio::test]
async fn wrong_external_id_is_access_denied() {
    let server = start(sim_config()).await;
    let edge = edge(&server).await;
    let access = AccountAccess {
        external_id: Some("not-the-right-one".into()),
        ..access_a()
    };
    let account = edge.account(&access).await;
    let err = account.verify_identity().await.expect_err("denied");
    assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");
    assert!(err.kind().is_account_unreachable());
    assert_eq!(err.reason(), "AccessDenied");
    // SSM calls through the same credentials fail the same way.
    let err = observe(
        &account.client(REGION),
        CLUSTER,
        &Fingerprints::default(),
        false,
    )
    .await
    .expect_err("denied");
    assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");
    assert!(err.to_string().contains("customer-a-aws"), "{err}");
}

#[tokio::test]
async fn unreachable_account_is_access_denied() {
    let mut config = sim_config();
    config.faults = FaultSpec {
        unreachable_accounts: vec![ACCOUNT_A.into()],
        ..FaultSpec::default()
    };
    let server = start(config).await;
    let err = edge(&server)
        .await
        .account(&access_a())
        .await
        .verify_identity()
        .await
        .expect_err("denied");
    assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");
}

#[tokio::test]
async fn role_in_another_account_is_a_mismatch() {
    let server = start(sim_config()).await;
    let edge = edge(&server).await;
    // The API server refuses such a spec (CEL); the edge still checks what STS says.
    let access = AccountAccess {
        name: "customer-a-aws".into(),
        account_id: ACCOUNT_A.into(),
        role_arn: Some(format!("arn:aws:iam::{ACCOUNT_B}:role/patchfleet")),
        external_id: None,
    };
    let err = edge
        .account(&access)
        .await
        .verify_identity()
        .await
        .expect_err("mismatch");
    assert_eq!(err.kind(), ErrorKind::IdentityMismatch, "{err}");
    assert!(err.message.contains(ACCOUNT_B), "{err}");
    assert!(err.message.contains(ACCOUNT_A), "{err}");
}

#[tokio::test]
async fn base_credentials_are_used_without_a_role() {
    let server = start(sim_config()).await;
    let edge = edge(&server).await;
    let own = AccountAccess {
        name: "hub".into(),
        account_id: BASE_ACCOUNT.into(),
        role_arn: None,
        external_id: None,
    };
    let caller = edge
        .account(&own)
        .await
        .verify_identity()
        .await
        .expect("base credentials");
    assert_eq!(caller.account_id, BASE_ACCOUNT);
    let other = AccountAccess {
        account_id: ACCOUNT_B.into(),
        ..own
    };
    let err = edge
        .account(&other)
        .await
        .verify_identity()
        .await
        .expect_err("the base key is not in account B");
    assert_eq!(err.kind(), ErrorKind::IdentityMismatch, "{err}");
}

#[tokio::test]
async fn a_changed_external_id_rebuilds_the_account() {
    let server = start(sim_config()).await;
    let edge = edge(&server).await;
    let wrong = AccountAccess {
        external_id: Some("old-secret".into()),
        ..access_a()
    };
    assert!(edge.account(&wrong).await.verify_identity().await.is_err());
    edge.account(&access_a())
        .await
        .verify_identity()
        .await
        .expect("the fixed spec works at once");
}
