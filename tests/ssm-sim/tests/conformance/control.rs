//! Faults, counters and the control endpoint, seen by SDK clients and raw HTTP.

use std::time::{Duration, Instant};

use aws_sdk_ssm::config::retry::RetryConfig;
use ssm_sim::http1::{Conn, authorization, ssm_headers};

use crate::common::{KEY, REGION, code, creds, ssm, start};

async fn control(server: &ssm_sim::Server) -> Conn {
    Conn::connect(server.addr()).await.expect("connect")
}

async fn put_faults(server: &ssm_sim::Server, spec: &str) {
    let reply = control(server)
        .await
        .send(
            "PUT",
            "/_sim/faults",
            &[("content-type", "application/json")],
            spec.as_bytes(),
        )
        .await
        .expect("PUT /_sim/faults");
    assert_eq!(reply.status, 200, "{}", reply.text());
}

async fn counters(server: &ssm_sim::Server, query: &str) -> serde_json::Value {
    control(server)
        .await
        .send("GET", &format!("/_sim/counters{query}"), &[], b"")
        .await
        .expect("GET /_sim/counters")
        .json()
        .expect("counters are JSON")
}

#[tokio::test]
async fn throttling_hits_only_the_chosen_operation_and_is_counted() {
    let server = start().await;
    let ssm = ssm(&server);
    put_faults(
        &server,
        r#"{"throttle_rate": 1.0, "operations": ["DescribePatchBaselines"]}"#,
    )
    .await;
    assert_eq!(
        code(ssm.describe_patch_baselines().send().await),
        "ThrottlingException"
    );
    ssm.get_default_patch_baseline()
        .send()
        .await
        .expect("other operations unaffected");

    let throttled = counters(
        &server,
        "?operation=DescribePatchBaselines&outcome=ThrottlingException",
    )
    .await;
    assert_eq!(throttled["total"], 1);
    assert_eq!(throttled["calls"][0]["account"], "123456789012");
    assert_eq!(throttled["calls"][0]["region"], REGION);
    assert_eq!(
        throttled["calls"][0]["caller"], "arn:aws:iam::123456789012:user/ssm-sim",
        "who called"
    );
    let all = counters(&server, "").await;
    assert_eq!(all["total"], 2);

    let spec = control(&server)
        .await
        .send("GET", "/_sim/faults", &[], b"")
        .await
        .expect("GET faults")
        .json()
        .expect("json");
    assert_eq!(spec["throttle_rate"], 1.0);

    let metrics = control(&server)
        .await
        .send("GET", "/_sim/metrics", &[], b"")
        .await
        .expect("metrics")
        .text();
    assert!(
        metrics.contains("ssm_sim_calls_total{account=\"123456789012\",region=\"us-east-1\",caller=\"arn:aws:iam::123456789012:user/ssm-sim\",operation=\"DescribePatchBaselines\",outcome=\"ThrottlingException\"} 1"),
        "{metrics}"
    );

    let reset = control(&server)
        .await
        .send("POST", "/_sim/reset", &[], b"")
        .await
        .expect("reset");
    assert_eq!(reset.status, 204);
    ssm.describe_patch_baselines()
        .send()
        .await
        .expect("faults restored to the configured ones");
    assert_eq!(counters(&server, "").await["total"], 1);
}

#[tokio::test]
async fn sdk_retries_through_throttling_and_counters_show_every_attempt() {
    let server = start().await;
    let retrying = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new(REGION))
            .endpoint_url(server.endpoint_url())
            .credentials_provider(creds(KEY, None))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(10)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .build(),
    );
    put_faults(&server, r#"{"seed": 3, "throttle_rate": 0.5}"#).await;
    for _ in 0..10 {
        retrying
            .get_default_patch_baseline()
            .send()
            .await
            .expect("succeeds after retries");
    }
    let ok = counters(&server, "?outcome=Success").await;
    let throttled = counters(&server, "?outcome=ThrottlingException").await;
    assert_eq!(ok["total"], 10);
    assert!(
        throttled["total"].as_u64().is_some_and(|n| n > 0),
        "some attempts were throttled"
    );
}

#[tokio::test]
async fn server_errors_and_latency() {
    let server = start().await;
    let ssm = ssm(&server);
    put_faults(&server, r#"{"server_error_rate": 1.0}"#).await;
    assert_eq!(
        code(ssm.get_default_patch_baseline().send().await),
        "InternalServerError"
    );
    let auth = authorization(KEY, REGION, "ssm");
    let raw = control(&server)
        .await
        .send(
            "POST",
            "/",
            &ssm_headers("AmazonSSM.GetDefaultPatchBaseline", &auth),
            b"{}",
        )
        .await
        .expect("raw call");
    assert_eq!(raw.status, 500);

    put_faults(
        &server,
        r#"{"latency_ms": {"GetDefaultPatchBaseline": 150}}"#,
    )
    .await;
    let started = Instant::now();
    ssm.get_default_patch_baseline()
        .send()
        .await
        .expect("slow but fine");
    assert!(started.elapsed() >= Duration::from_millis(150));

    let invalid = control(&server)
        .await
        .send("PUT", "/_sim/faults", &[], br#"{"throttle_rate": 2}"#)
        .await
        .expect("PUT");
    assert_eq!(invalid.status, 400);
}

#[tokio::test]
async fn faults_are_deterministic_for_a_seed() {
    async fn outcomes(seed: u64) -> Vec<String> {
        let server = start().await;
        put_faults(
            &server,
            &format!(r#"{{"seed": {seed}, "throttle_rate": 0.3, "server_error_rate": 0.2}}"#),
        )
        .await;
        let ssm = ssm(&server);
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(match ssm.get_default_patch_baseline().send().await {
                Ok(_) => "ok".to_string(),
                Err(e) => aws_sdk_ssm::error::ProvideErrorMetadata::code(&e)
                    .unwrap_or("?")
                    .to_string(),
            });
        }
        out
    }
    let a = outcomes(42).await;
    assert_eq!(a, outcomes(42).await);
    assert_ne!(a, outcomes(43).await);
    assert!(a.iter().any(|o| o == "ThrottlingException"));
    assert!(a.iter().any(|o| o == "InternalServerError"));
}

#[tokio::test]
async fn raw_protocol_errors_have_aws_shapes() {
    let server = start().await;
    let mut conn = control(&server).await;
    let auth = authorization(KEY, REGION, "ssm");

    let ok = conn
        .send(
            "POST",
            "/",
            &ssm_headers("AmazonSSM.GetDefaultPatchBaseline", &auth),
            b"{}",
        )
        .await
        .expect("call");
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("content-type"),
        Some("application/x-amz-json-1.1")
    );
    assert!(ok.header("x-amzn-requestid").is_some());

    let unknown = conn
        .send(
            "POST",
            "/",
            &ssm_headers("AmazonSSM.MakeCoffee", &auth),
            b"{}",
        )
        .await
        .expect("call");
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.json().expect("json")["__type"],
        "UnknownOperationException"
    );

    let garbage = conn
        .send(
            "POST",
            "/",
            &ssm_headers("AmazonSSM.GetPatchBaseline", &auth),
            b"{not json",
        )
        .await
        .expect("call");
    assert_eq!(
        garbage.json().expect("json")["__type"],
        "SerializationException"
    );

    let wrong_type = conn
        .send(
            "POST",
            "/",
            &ssm_headers("AmazonSSM.GetPatchBaseline", &auth),
            br#"{"BaselineId": 7}"#,
        )
        .await
        .expect("call");
    assert_eq!(
        wrong_type.json().expect("json")["__type"],
        "SerializationException"
    );

    let unsigned = conn
        .send(
            "POST",
            "/",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "AmazonSSM.GetDefaultPatchBaseline"),
            ],
            b"{}",
        )
        .await
        .expect("call");
    assert_eq!(unsigned.status, 400);
    let body = unsigned.json().expect("json");
    assert_eq!(body["__type"], "MissingAuthenticationTokenException");
    assert!(body["message"].is_string());

    let sts_auth = authorization(KEY, REGION, "sts");
    let sts = conn
        .send(
            "POST",
            "/",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &sts_auth),
            ],
            b"Action=GetCallerIdentity&Version=2011-06-15",
        )
        .await
        .expect("sts call");
    assert_eq!(sts.status, 200);
    assert!(sts.text().contains("<Account>123456789012</Account>"));
}

#[tokio::test]
async fn the_simulated_clock_moves_forward_and_commands_follow_it() {
    use crate::common::{control, put_instances};
    let server = start().await;
    let (status, body) = control(&server, "GET", "/_sim/clock", "").await;
    assert_eq!(status, 200, "{body}");
    let clock: serde_json::Value = serde_json::from_str(&body).expect("clock JSON");
    let start = clock["now"].as_f64().expect("now");
    assert!(clock["iso"].as_str().is_some_and(|s| s.ends_with('Z')));

    for (method, path, body) in [
        ("PUT", "/_sim/clock", r#"{"now": 0}"#),
        ("PUT", "/_sim/clock", r#"{"now": "2001-01-01T00:00:00Z"}"#),
        ("PUT", "/_sim/clock", r#"{"now": "yesterday"}"#),
        ("PUT", "/_sim/clock", r#"{"then": 1}"#),
        ("POST", "/_sim/clock/advance", r#"{"seconds": -1}"#),
        ("POST", "/_sim/clock/advance", r#"{"seconds": 40000000}"#),
    ] {
        let (status, reply) = control(&server, method, path, body).await;
        assert_eq!(status, 400, "{method} {path} {body}: {reply}");
    }

    // A command sent now completes an hour later on the simulated clock.
    server.sim().settings.set(ssm_sim::Settings {
        command_seconds: 3600.0,
    });
    put_instances(
        &server,
        serde_json::json!({"accountId": "123456789012", "region": REGION,
            "instances": [{"instanceId": "i-0123456789abcdef0", "missingPatches": 1}]}),
    )
    .await;
    let ssm = ssm(&server);
    let sent = ssm
        .send_command()
        .document_name("AWS-RunPatchBaseline")
        .instance_ids("i-0123456789abcdef0")
        .parameters("Operation", vec!["Install".to_string()])
        .send()
        .await
        .expect("SendCommand");
    let id = sent
        .command()
        .and_then(|c| c.command_id())
        .expect("command id")
        .to_string();
    let status_of = |id: String| {
        let ssm = ssm.clone();
        async move {
            ssm.list_commands()
                .command_id(id)
                .send()
                .await
                .expect("ListCommands")
                .commands()[0]
                .status()
                .map(|s| s.as_str().to_string())
        }
    };
    assert_eq!(status_of(id.clone()).await.as_deref(), Some("InProgress"));
    let (status, body) = control(
        &server,
        "POST",
        "/_sim/clock/advance",
        r#"{"seconds": 691200}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let advanced: serde_json::Value = serde_json::from_str(&body).expect("clock JSON");
    assert!(advanced["now"].as_f64().expect("now") >= start + 691_200.0);
    assert_eq!(status_of(id).await.as_deref(), Some("Success"));

    // Setting an ISO time in the future works; the reset goes back to wall time.
    let (status, body) = control(
        &server,
        "PUT",
        "/_sim/clock",
        r#"{"now": "2199-01-01T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("2199-01-01T00:00:0"));
    let (status, _) = control(&server, "POST", "/_sim/reset", "").await;
    assert_eq!(status, 204);
    let (_, body) = control(&server, "GET", "/_sim/clock", "").await;
    let now: serde_json::Value = serde_json::from_str(&body).expect("clock JSON");
    assert!(now["now"].as_f64().expect("now") < start + 600.0);
}
