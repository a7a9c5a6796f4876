//! What the controller's end-to-end tests share: the account-regions the examples
//! select, a converged stack, a look into one account-region, and polling.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::inspect::{self, Snapshot};
use crate::stack::{ALL_KINDS, CONVERGE, Stack, http_get, ssm_client};

/// (account id, external id, region): the account-regions examples/ selects.
pub const CUSTOMER_A_EU: (&str, &str, &str) = ("111111111111", "customer-a-7f3c", "eu-west-1");
pub const CUSTOMER_A_US: (&str, &str, &str) = ("111111111111", "customer-a-7f3c", "us-east-1");
pub const CUSTOMER_B_EU: (&str, &str, &str) = ("222222222222", "customer-b-91d2", "eu-central-1");
pub const ALL_REGIONS: [(&str, &str, &str); 3] = [CUSTOMER_A_EU, CUSTOMER_A_US, CUSTOMER_B_EU];

/// The simulated nodes of one account-region, by id, as `/_sim/instances` reports them.
pub fn sim_nodes(
    stack: &Stack,
    (account, _, region): (&str, &str, &str),
) -> BTreeMap<String, Value> {
    let path = format!("/_sim/instances?accountId={account}&region={region}");
    let (code, body) = http_get(stack.sim.addr(), &path).expect("GET /_sim/instances");
    assert_eq!(code, 200, "{body}");
    let fleet: Value = serde_json::from_str(&body).expect("fleet JSON");
    fleet["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            (
                i["instanceId"].as_str().unwrap_or_default().to_owned(),
                i.clone(),
            )
        })
        .collect()
}

pub async fn look(stack: &Stack, (account, external_id, region): (&str, &str, &str)) -> Snapshot {
    let client = ssm_client(stack, account, external_id, region)
        .await
        .expect("SSM client");
    inspect::snapshot(&client).await.expect("snapshot")
}

pub async fn converged_examples(test: &str, controller_args: &[&str]) -> Stack {
    let mut stack = Stack::start(test).await.expect("stack starts");
    stack
        .start_controller_with(controller_args)
        .expect("controller starts");
    stack.apply("examples").expect("examples apply");
    stack
        .wait_ready(&ALL_KINDS, CONVERGE)
        .expect("examples converge");
    stack
}

/// Polls `check` until it holds or the time is up.
pub async fn eventually<F, Fut>(what: &str, stack: &Stack, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Err(error) = stack.check_controller() {
            panic!("while waiting for {what}: {error:#}");
        }
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!(
        "timed out waiting for: {what}\n--- controller log ---\n{}",
        stack.controller_log()
    );
}
