//! Starting a simulator and building SDK clients pointed at it.

use std::fmt::Debug;

use aws_sdk_ssm::config::retry::RetryConfig;
use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use ssm_sim::{Config, Server};

pub const REGION: &str = "us-east-1";
pub const KEY: &str = "AKIAIOSFODNN7EXAMPLE";

pub async fn start() -> Server {
    start_with(Config::default()).await
}

pub async fn start_with(config: Config) -> Server {
    Server::start(config, "127.0.0.1:0".parse().expect("loopback address"))
        .await
        .expect("simulator starts")
}

pub fn creds(key: &str, session_token: Option<String>) -> Credentials {
    Credentials::new(
        key,
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        session_token,
        None,
        "test",
    )
}

pub fn ssm_as(server: &Server, credentials: Credentials, region: &str) -> aws_sdk_ssm::Client {
    let conf = aws_sdk_ssm::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(server.endpoint_url())
        .credentials_provider(credentials)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_ssm::Client::from_conf(conf)
}

pub fn ssm(server: &Server) -> aws_sdk_ssm::Client {
    ssm_as(server, creds(KEY, None), REGION)
}

pub fn sts_as(server: &Server, credentials: Credentials) -> aws_sdk_sts::Client {
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(REGION))
        .endpoint_url(server.endpoint_url())
        .credentials_provider(credentials)
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

/// The AWS error code of a failed call; panics when the call succeeded.
pub fn code<T: Debug, E: ProvideErrorMetadata + Debug, R: Debug>(
    result: Result<T, SdkError<E, R>>,
) -> String {
    let err = result.expect_err("the call should fail");
    err.code()
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no error code in {err:?}"))
}

/// The AWS error message of a failed call.
pub fn message<T: Debug, E: ProvideErrorMetadata + Debug, R: Debug>(
    result: Result<T, SdkError<E, R>>,
) -> String {
    let err = result.expect_err("the call should fail");
    err.message().unwrap_or_default().to_string()
}

/// A control endpoint request; returns the status and the body.
pub async fn control(server: &Server, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut conn = ssm_sim::http1::Conn::connect(server.addr())
        .await
        .expect("connect to the control endpoint");
    let reply = conn
        .send(
            method,
            path,
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await
        .expect("control request");
    (reply.status, reply.text())
}

/// `PUT /_sim/instances`; panics unless it is accepted.
pub async fn put_instances(server: &Server, fleet: serde_json::Value) -> serde_json::Value {
    let (status, body) = control(server, "PUT", "/_sim/instances", &fleet.to_string()).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("fleet JSON")
}

/// `GET /_sim/instances` of an account-region.
pub async fn instances(server: &Server, account: &str, region: &str) -> serde_json::Value {
    let (status, body) = control(
        server,
        "GET",
        &format!("/_sim/instances?accountId={account}&region={region}"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("fleet JSON")
}

/// The state of one instance in a `GET /_sim/instances` reply.
pub fn instance<'a>(fleet: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    fleet["instances"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["instanceId"] == id))
        .unwrap_or_else(|| panic!("{id} not in {fleet}"))
}
