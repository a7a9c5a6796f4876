//! The `ssm-sim` binary: prints its address and serves SSM and the control endpoint.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use ssm_sim::http1::{Conn, authorization, ssm_headers};

#[tokio::test]
async fn binary_prints_its_address_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ssm-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--default-account",
            "999999999999",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn ssm-sim");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("socket address");
    let mut conn = Conn::connect(addr).await.expect("connect");
    let health = conn
        .send("GET", "/_sim/health", &[], b"")
        .await
        .expect("health");
    assert_eq!(health.status, 200);
    let auth = authorization("AKIAANY", "eu-central-1", "ssm");
    let created = conn
        .send(
            "POST",
            "/",
            &ssm_headers("AmazonSSM.CreatePatchBaseline", &auth),
            br#"{"Name":"from-cli"}"#,
        )
        .await
        .expect("create");
    assert_eq!(created.status, 200, "{}", created.text());
    let counters = conn
        .send(
            "GET",
            "/_sim/counters?account=999999999999&region=eu-central-1",
            &[],
            b"",
        )
        .await
        .expect("counters")
        .json()
        .expect("json");
    assert_eq!(
        counters["total"], 1,
        "--default-account decides the account of unknown keys"
    );
    child.kill().expect("stop ssm-sim");
    let _ = child.wait();
}
