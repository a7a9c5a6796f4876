//! Resident memory of the SSM edge per account: builds N accounts (assumed role) with one
//! client in each of 2 regions, verifies each identity and makes one SSM call per
//! account-region, then prints the growth of VmRSS per account and the time to build one
//! SSM client (the edge builds them for each pass).
//!
//! The simulator runs in a child process (this binary with `serve`), so its own state is
//! not counted.
//!
//! ```sh
//! cargo run -p patchfleet-ssm --example edge_memory -- 1000
//! ```

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ssm::config::Credentials;
use patchfleet_ssm::{AccountAccess, EdgeSettings, SsmEdge};

const REGIONS: [&str; 2] = ["eu-west-1", "us-east-1"];

type Error = Box<dyn std::error::Error>;

fn rss_kib() -> Result<u64, Error> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("malformed VmRSS")?
        .parse()?)
}

fn access(n: usize) -> AccountAccess {
    let id = format!("{:012}", 100_000_000_000_u64 + n as u64);
    AccountAccess {
        name: format!("account-{n}"),
        role_arn: Some(format!("arn:aws:iam::{id}:role/patchfleet")),
        account_id: id,
        external_id: None,
    }
}

async fn serve() -> Result<(), Error> {
    let server = ssm_sim::Server::start(ssm_sim::Config::default(), "127.0.0.1:0".parse()?).await?;
    println!("{}", server.endpoint_url());
    // Until the parent closes our stdin.
    tokio::task::spawn_blocking(|| std::io::stdin().lines().count()).await?;
    Ok(())
}

/// Touches accounts `from..to` once: identity, then one call per region.
async fn pass(edge: &SsmEdge, from: usize, to: usize) -> Result<(), Error> {
    for n in from..to {
        let account = edge.account(&access(n)).await;
        account.verify_identity().await?;
        for region in REGIONS {
            account
                .client(region)
                .sdk()
                .describe_maintenance_windows()
                .send()
                .await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let first = args.next();
    if first.as_deref() == Some("serve") {
        return serve().await;
    }
    let accounts: usize = first.as_deref().unwrap_or("300").parse()?;

    let mut child = Command::new(std::env::current_exe()?)
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let mut url = String::new();
    BufReader::new(stdout).read_line(&mut url)?;
    let url = url.trim().to_owned();

    let base = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIAMEMORY", "secret", None, None, "m"))
        .load()
        .await;
    let edge = SsmEdge::with_config(
        EdgeSettings {
            ssm_endpoint: Some(url.clone()),
            sts_endpoint: Some(url),
            calls_per_second: 0.0,
            ..EdgeSettings::default()
        },
        base,
    );
    // Warm up: lazily initialised statics (TLS roots, endpoint rules) are not per account.
    pass(&edge, 0, 10).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib()?;
    pass(&edge, 10, 10 + accounts).await?;
    // A second pass: steady state, nothing new should be built.
    pass(&edge, 10, 10 + accounts).await?;
    let after = rss_kib()?;
    // What a pass pays for building its clients anew (no call made).
    let started = std::time::Instant::now();
    for n in 10..10 + accounts {
        let account = edge.account(&access(n)).await;
        for region in REGIONS {
            drop(account.client(region));
        }
    }
    let build = started.elapsed().as_secs_f64() * 1e6 / (accounts * REGIONS.len()) as f64;
    println!(
        "accounts={accounts} regions={} rss_before={before} KiB rss_after={after} KiB \
         per_account={:.1} KiB client_build={build:.0} us",
        REGIONS.len(),
        after.saturating_sub(before) as f64 / accounts as f64
    );
    drop(child.stdin.take());
    child.wait()?;
    Ok(())
}
