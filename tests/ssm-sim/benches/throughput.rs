//! Prints the simulator's throughput and memory figures (no assertions):
//! - calls/s of simple calls from concurrent keep-alive clients (raw HTTP and aws-sdk-rust),
//! - DescribePatchBaselines paging over 10,000 baselines in one account,
//! - memory per 10,000 stored objects and for 10,000 account-regions of 30 objects.
//!
//! Run: `cargo bench -p ssm-sim` (BENCH_SECS sets each throughput run's length).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use ssm_sim::http1::{Conn, authorization, ssm_headers};
use ssm_sim::{Config, Quotas, Server};

const REGION: &str = "us-east-1";

fn rss_bytes() -> u64 {
    // Second field of /proc/self/statm: resident pages.
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

async fn call(conn: &mut Conn, auth: &str, op: &str, body: &Value) -> Value {
    let target = format!("AmazonSSM.{op}");
    let reply = conn
        .send(
            "POST",
            "/",
            &ssm_headers(&target, auth),
            body.to_string().as_bytes(),
        )
        .await
        .expect("request");
    let v = reply.json().expect("json reply");
    assert!(reply.status == 200, "{op} failed: {v}");
    v
}

/// Calls/s of `op` from `clients` connections for `secs`.
async fn throughput(
    addr: SocketAddr,
    clients: usize,
    secs: f64,
    op: &'static str,
    body: Value,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let done = Arc::clone(&done);
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await.expect("connect");
            let auth = authorization("AKIABENCHMARK", REGION, "ssm");
            while Instant::now() < deadline {
                call(&mut conn, &auth, op, &body).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn sdk_throughput(server: &Server, clients: usize, secs: f64) -> f64 {
    let conf = aws_sdk_ssm::Config::builder()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new(REGION))
        .endpoint_url(server.endpoint_url())
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "AKIABENCHMARK",
            "secret",
            None,
            None,
            "bench",
        ))
        .build();
    let client = aws_sdk_ssm::Client::from_conf(conf);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let client = client.clone();
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                client
                    .get_default_patch_baseline()
                    .send()
                    .await
                    .expect("call");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Runs `jobs` (account, region) fills over `clients` connections.
async fn fill_scopes(addr: SocketAddr, scopes: Vec<(String, String)>, clients: usize) {
    let scopes = Arc::new(std::sync::Mutex::new(scopes));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let scopes = Arc::clone(&scopes);
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await.expect("connect");
            loop {
                let next = scopes.lock().expect("queue").pop();
                let Some((account, region)) = next else { break };
                // Temporary keys carry their account: ASIA + 12 digits + 8 characters.
                let auth = authorization(&format!("ASIA{account}BENCH000"), &region, "ssm");
                fill_thirty(&mut conn, &auth).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("fill task");
    }
}

/// 30 objects: 10 baselines, 10 windows, 5 window targets, 5 window tasks.
async fn fill_thirty(conn: &mut Conn, auth: &str) {
    for i in 0..10 {
        call(conn, auth, "CreatePatchBaseline", &json!({"Name": format!("baseline-{i}"), "OperatingSystem": "AMAZON_LINUX_2",
            "ApprovalRules": {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Security"]}]}, "ApproveAfterDays": 7}]}})).await;
    }
    let mut windows = Vec::new();
    for i in 0..10 {
        let v = call(
            conn,
            auth,
            "CreateMaintenanceWindow",
            &json!({"Name": format!("window-{i}"), "Schedule": "cron(0 2 ? * SUN *)",
            "Duration": 4, "Cutoff": 1, "AllowUnassociatedTargets": false}),
        )
        .await;
        windows.push(v["WindowId"].as_str().unwrap_or_default().to_string());
    }
    for w in windows.iter().take(5) {
        let t = call(
            conn,
            auth,
            "RegisterTargetWithMaintenanceWindow",
            &json!({"WindowId": w, "ResourceType": "INSTANCE",
            "Targets": [{"Key": "tag:Patch Group", "Values": ["web"]}]}),
        )
        .await;
        let target = t["WindowTargetId"].as_str().unwrap_or_default();
        call(conn, auth, "RegisterTaskWithMaintenanceWindow", &json!({"WindowId": w, "TaskType": "RUN_COMMAND",
            "TaskArn": "AWS-RunPatchBaseline", "Targets": [{"Key": "WindowTargetIds", "Values": [target]}],
            "MaxConcurrency": "10%", "MaxErrors": "1",
            "TaskInvocationParameters": {"RunCommand": {"Parameters": {"Operation": ["Install"]}}}})).await;
    }
}

#[tokio::main]
async fn main() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let config = Config {
        quotas: Quotas {
            patch_baselines: 20_000,
            maintenance_windows: 20_000,
            ..Quotas::default()
        },
        ..Config::default()
    };
    let server = Server::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start");
    let addr = server.addr();
    println!(
        "ssm-sim benchmark on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // Throughput of simple calls.
    let mut conn = Conn::connect(addr).await.expect("connect");
    let auth = authorization("AKIABENCHMARK", REGION, "ssm");
    let created = call(
        &mut conn,
        &auth,
        "CreatePatchBaseline",
        &json!({"Name": "bench"}),
    )
    .await;
    let id = created["BaselineId"].clone();
    for clients in [16, 64] {
        let rate = throughput(addr, clients, secs, "GetDefaultPatchBaseline", json!({})).await;
        println!("GetDefaultPatchBaseline, raw HTTP, {clients:>3} clients: {rate:>9.0} calls/s");
        let rate = throughput(
            addr,
            clients,
            secs,
            "GetPatchBaseline",
            json!({"BaselineId": id}),
        )
        .await;
        println!("GetPatchBaseline,        raw HTTP, {clients:>3} clients: {rate:>9.0} calls/s");
    }
    let rate = sdk_throughput(&server, 32, secs).await;
    println!(
        "GetDefaultPatchBaseline, aws-sdk-rust, 32 tasks: {rate:>9.0} calls/s (client signing shares the 2 cores)"
    );

    // 10,000 baselines in one account: memory and paging.
    let before = rss_bytes();
    let started = Instant::now();
    for i in 0..10_000 {
        call(&mut conn, &auth, "CreatePatchBaseline", &json!({"Name": format!("fleet-{i:05}"), "OperatingSystem": "UBUNTU",
            "Description": "benchmark baseline",
            "ApprovalRules": {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [{"Key": "PRIORITY", "Values": ["Required", "Important"]}]}, "ApproveAfterDays": 7}]}})).await;
    }
    let fill = started.elapsed();
    let grown = rss_bytes().saturating_sub(before);
    println!(
        "10,000 baselines created sequentially in {:.2}s; RSS grew {:.1} MiB ({:.0} bytes per baseline)",
        fill.as_secs_f64(),
        mib(grown),
        grown as f64 / 10_000.0
    );

    let started = Instant::now();
    let (mut pages, mut seen, mut token) = (0, 0, None::<String>);
    loop {
        let mut body =
            json!({"MaxResults": 100, "Filters": [{"Key": "OWNER", "Values": ["Self"]}]});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page = call(&mut conn, &auth, "DescribePatchBaselines", &body).await;
        pages += 1;
        seen += page["BaselineIdentities"].as_array().map_or(0, Vec::len);
        token = page["NextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let took = started.elapsed();
    println!(
        "DescribePatchBaselines over {seen} baselines: {pages} pages of 100 in {:.1} ms ({:.2} ms per page)",
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e3 / f64::from(pages)
    );
    let started = Instant::now();
    let n = 200;
    for _ in 0..n {
        call(&mut conn, &auth, "DescribePatchBaselines", &json!({"MaxResults": 10, "Filters": [{"Key": "NAME_PREFIX", "Values": ["fleet-099"]}]})).await;
    }
    println!(
        "DescribePatchBaselines NAME_PREFIX over 10,000 baselines: {:.2} ms per call",
        started.elapsed().as_secs_f64() * 1e3 / f64::from(n)
    );

    // 10,000 account-regions of 30 objects each.
    let scopes: Vec<(String, String)> = (0..1000)
        .flat_map(|a| {
            [
                "us-east-1",
                "us-east-2",
                "us-west-1",
                "us-west-2",
                "eu-west-1",
                "eu-west-2",
                "eu-central-1",
                "ap-southeast-1",
                "ap-southeast-2",
                "ap-northeast-1",
            ]
            .into_iter()
            .map(move |r| (format!("{:012}", 100_000_000_000u64 + a), r.to_string()))
        })
        .collect();
    let count = scopes.len();
    let before = rss_bytes();
    let started = Instant::now();
    fill_scopes(addr, scopes, 32).await;
    let took = started.elapsed();
    let grown = rss_bytes().saturating_sub(before);
    let calls = count * 30;
    println!(
        "{count} account-regions x 30 objects ({calls} create calls, 32 clients) in {:.1}s = {:.0} calls/s",
        took.as_secs_f64(),
        calls as f64 / took.as_secs_f64()
    );
    println!(
        "  RSS grew {:.1} MiB: {:.1} KiB per account-region, {:.0} bytes per object; total RSS {:.1} MiB",
        mib(grown),
        grown as f64 / 1024.0 / count as f64,
        grown as f64 / calls as f64,
        mib(rss_bytes())
    );
    println!("  account-regions held: {}", server.sim().store.scopes());
}
