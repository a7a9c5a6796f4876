//! Credentials and identity across many accounts, counted by the simulator: one
//! AssumeRole and one GetCallerIdentity per account and credential lifetime, whatever the
//! number of accounts, regions, passes and concurrent callers; failures not remembered.

use std::collections::{BTreeMap, HashMap};
use std::error::Error as StdError;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ssm::config::Credentials;
use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use patchfleet_ssm::{AccountAccess, EdgeSettings, ErrorKind, SsmEdge};
use ssm_sim::config::{AccountConfig, RoleConfig};
use ssm_sim::{Config, FaultSpec, Server};
use tokio::task::JoinSet;

/// More than the 64 partitions of the SDK's lazy identity cache.
const ACCOUNTS: usize = 100;
const REGIONS: [&str; 2] = ["eu-west-1", "us-east-1"];
const PASSES: usize = 3;

fn account_id(n: usize) -> String {
    format!("{:012}", 300_000_000_000_u64 + n as u64)
}

fn access(n: usize) -> AccountAccess {
    AccountAccess {
        name: format!("account-{n}"),
        account_id: account_id(n),
        role_arn: Some(format!("arn:aws:iam::{}:role/patchfleet", account_id(n))),
        external_id: None,
    }
}

async fn start() -> Server {
    let config = Config {
        default_account: "999999999999".into(),
        accounts: (0..ACCOUNTS)
            .map(|n| AccountConfig {
                id: account_id(n),
                roles: vec![RoleConfig {
                    name: "patchfleet".into(),
                    external_id: None,
                }],
            })
            .collect(),
        ..Config::default()
    };
    Server::start(config, "127.0.0.1:0".parse().expect("loopback address"))
        .await
        .expect("simulator starts")
}

async fn edge(server: &Server, settings: EdgeSettings) -> SsmEdge {
    let base = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIABASE", "secret", None, None, "test"))
        .load()
        .await;
    SsmEdge::with_config(
        EdgeSettings {
            ssm_endpoint: Some(server.endpoint_url()),
            sts_endpoint: Some(server.endpoint_url()),
            calls_per_second: 0.0,
            max_attempts: 1,
            ..settings
        },
        base,
    )
}

/// AssumeRole calls, all made with the base credentials (the simulator counts a call
/// under the caller's account); that each account got its own credentials shows in its
/// SSM and GetCallerIdentity calls, counted under it.
fn assume_role_calls(server: &Server) -> u64 {
    calls(server, "AssumeRole").values().sum()
}

/// Calls the simulator answered for `operation`, by account.
fn calls(server: &Server, operation: &str) -> BTreeMap<String, u64> {
    let mut by_account = BTreeMap::new();
    for c in server.sim().counters.snapshot() {
        if c.key.operation == operation {
            *by_account.entry(c.key.account.clone()).or_default() += c.count;
        }
    }
    by_account
}

fn each_account(count: u64) -> BTreeMap<String, u64> {
    (0..ACCOUNTS).map(|n| (account_id(n), count)).collect()
}

/// One pass over every account as the account reconciler makes it: identity, then two
/// SSM reads in each region.
async fn pass(edge: &SsmEdge) {
    for n in 0..ACCOUNTS {
        let account = edge.account(&access(n)).await;
        let caller = account.caller_identity().await.expect("identity");
        assert_eq!(caller.account_id, account_id(n));
        for region in REGIONS {
            let client = account.client(region);
            for _ in 0..2 {
                client
                    .sdk()
                    .describe_maintenance_windows()
                    .send()
                    .await
                    .expect("SSM call");
            }
        }
    }
}

#[tokio::test]
async fn one_assume_role_and_one_identity_check_per_account() {
    let server = start().await;
    let edge = edge(&server, EdgeSettings::default()).await;
    for _ in 0..PASSES {
        pass(&edge).await;
    }
    assert_eq!(assume_role_calls(&server), ACCOUNTS as u64);
    assert_eq!(calls(&server, "GetCallerIdentity"), each_account(1));
    assert_eq!(
        calls(&server, "DescribeMaintenanceWindows"),
        each_account((PASSES * REGIONS.len() * 2) as u64)
    );
}

#[tokio::test]
async fn expiring_credentials_are_renewed_once_each_time() {
    let server = start().await;
    // Renewing credentials 2 hours before they expire, when they last 15 minutes (STS's
    // minimum DurationSeconds), means every use finds them expiring: each use renews
    // them exactly once, never twice, and the renewed ones work.
    let settings = EdgeSettings {
        session_duration: Some(Duration::from_secs(900)),
        credentials_refresh_before: Duration::from_secs(7200),
        identity_reverify: Duration::ZERO,
        ..EdgeSettings::default()
    };
    let edge = edge(&server, settings).await;
    let account = edge.account(&access(0)).await;
    account.caller_identity().await.expect("identity");
    let client = account.client(REGIONS[0]);
    for _ in 0..3 {
        client
            .sdk()
            .describe_maintenance_windows()
            .send()
            .await
            .expect("SSM call");
    }
    let id = account_id(0);
    assert_eq!(assume_role_calls(&server), 4);
    assert_eq!(
        calls(&server, "DescribeMaintenanceWindows"),
        BTreeMap::from([(id, 3)])
    );
}

#[tokio::test]
async fn a_failed_identity_check_is_not_remembered() {
    let server = start().await;
    let edge = edge(&server, EdgeSettings::default()).await;
    let account = edge.account(&access(1)).await;
    server.sim().faults.set(FaultSpec {
        unreachable_accounts: vec![account_id(1)],
        ..FaultSpec::default()
    });
    let err = account.caller_identity().await.expect_err("denied");
    assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");
    let err = account.caller_identity().await.expect_err("still denied");
    assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");
    server.sim().faults.set(FaultSpec::default());
    for _ in 0..3 {
        account
            .caller_identity()
            .await
            .expect("verified once reachable");
    }
    // Two refused AssumeRoles (no credentials, no GetCallerIdentity), then one of each.
    let id = account_id(1);
    assert_eq!(assume_role_calls(&server), 3);
    assert_eq!(
        calls(&server, "GetCallerIdentity"),
        BTreeMap::from([(id, 1)])
    );
}

/// Every caller of a fresh account at once: SSM in both regions and the identity check.
/// They wait for the one AssumeRole in flight (slowed down so they all overlap) and
/// share its outcome.
async fn callers_at_once(edge: &SsmEdge, n: usize) -> Vec<Result<(), ErrorKind>> {
    let account = edge.account(&access(n)).await;
    let mut calls = JoinSet::new();
    for region in REGIONS {
        for _ in 0..4 {
            let client = account.client(region);
            calls.spawn(async move {
                client
                    .sdk()
                    .describe_maintenance_windows()
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| assume_role_refusal(&e))
            });
        }
    }
    for _ in 0..2 {
        let account = account.clone();
        calls.spawn(async move {
            account
                .verify_identity()
                .await
                .map(drop)
                .map_err(|e| e.kind())
        });
    }
    calls.join_all().await
}

/// What an SSM call failed with when its credentials could not be assumed: the STS
/// error in the SDK error's source chain, classified as the edge classifies it.
fn assume_role_refusal(err: &(dyn StdError + 'static)) -> ErrorKind {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(refusal) = e.downcast_ref::<AssumeRoleError>() {
            return match refusal.code() {
                Some("AccessDenied") => ErrorKind::AccessDenied,
                _ => ErrorKind::Other,
            };
        }
        source = e.source();
    }
    ErrorKind::Credentials
}

fn slow_assume_role() -> FaultSpec {
    FaultSpec {
        latency_ms: HashMap::from([("AssumeRole".to_owned(), 300)]),
        ..FaultSpec::default()
    }
}

#[tokio::test]
async fn concurrent_callers_wait_for_one_assume_role() {
    let server = start().await;
    server.sim().faults.set(slow_assume_role());
    let edge = edge(&server, EdgeSettings::default()).await;
    let outcomes = callers_at_once(&edge, 2).await;
    assert_eq!(outcomes, vec![Ok(()); 10]);
    assert_eq!(assume_role_calls(&server), 1);
    assert_eq!(
        calls(&server, "DescribeMaintenanceWindows"),
        BTreeMap::from([(account_id(2), 8)])
    );
}

#[tokio::test]
async fn a_refused_assume_role_is_shared_by_waiting_callers_only() {
    let server = start().await;
    server.sim().faults.set(FaultSpec {
        unreachable_accounts: vec![account_id(3)],
        ..slow_assume_role()
    });
    let edge = edge(&server, EdgeSettings::default()).await;
    let outcomes = callers_at_once(&edge, 3).await;
    assert_eq!(outcomes, vec![Err(ErrorKind::AccessDenied); 10]);
    assert_eq!(assume_role_calls(&server), 1, "one refusal for all waiting");
    // Not remembered: the next caller asks STS again, and works once STS agrees.
    let account = edge.account(&access(3)).await;
    let err = account.verify_identity().await.expect_err("still denied");
    assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");
    assert_eq!(err.operation, "GetCallerIdentity");
    assert_eq!(err.code.as_deref(), Some("AccessDenied"), "{err}");
    assert_eq!(assume_role_calls(&server), 2);
    server.sim().faults.set(FaultSpec::default());
    account.verify_identity().await.expect("reachable again");
    account
        .client(REGIONS[0])
        .sdk()
        .describe_maintenance_windows()
        .send()
        .await
        .expect("SSM call");
    assert_eq!(assume_role_calls(&server), 3);
}

#[tokio::test]
async fn a_throttled_assume_role_is_throttled() {
    let server = start().await;
    let edge = edge(&server, EdgeSettings::default()).await;
    server.sim().faults.set(FaultSpec {
        throttle_rate: 1.0,
        operations: vec!["AssumeRole".into()],
        ..FaultSpec::default()
    });
    let account = edge.account(&access(4)).await;
    let err = account.verify_identity().await.expect_err("throttled");
    assert_eq!(err.kind(), ErrorKind::Throttled, "{err}");
    assert!(!err.kind().is_account_unreachable());
    server.sim().faults.set(FaultSpec::default());
    account.verify_identity().await.expect("not cached");
    // max_attempts 1 applies to STS too: no retry of the throttled AssumeRole.
    assert_eq!(assume_role_calls(&server), 2);
}

#[tokio::test]
async fn accounts_without_a_role_use_the_base_credentials() {
    let server = start().await;
    let edge = edge(&server, EdgeSettings::default()).await;
    let own = AccountAccess {
        name: "hub".into(),
        account_id: "999999999999".into(),
        role_arn: None,
        external_id: None,
    };
    let account = edge.account(&own).await;
    for _ in 0..PASSES {
        account.verify_identity().await.expect("base identity");
        for region in REGIONS {
            account
                .client(region)
                .sdk()
                .describe_maintenance_windows()
                .send()
                .await
                .expect("SSM call");
        }
    }
    assert_eq!(assume_role_calls(&server), 0);
    assert_eq!(
        calls(&server, "GetCallerIdentity"),
        BTreeMap::from([("999999999999".to_owned(), PASSES as u64)])
    );
}
