//! docs/enrollment.md end to end: `patchfleet enroll` over TLS on the real API server,
//! with trust roots the test made (an "AWS region certificate", a Google-like JWKS, an
//! Azure-like CA chain and nonce key, a vCenter signer key), the controller, and the
//! simulator standing in for SSM and for the SSM agent's `-register`. A machine of each
//! source enrolls into the right one of two SystemAccounts, registers, carries its
//! `Patch Group` tag and is patched by that group's Install window; the refusals create
//! nothing in SSM; an unused activation expires and is deleted; a deleted Enrollment
//! deregisters its node; and enrollments per second through the server (small here).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use patchfleet_api::v1alpha1::{Enrollment, EnrollmentPhase};
use patchfleet_enroll::testing;
use patchfleet_tests::e2e::eventually;
use patchfleet_tests::enroll::{AUDIENCE, EnrollProcess, VCENTER};
use patchfleet_tests::fleet::{self, A, B, set_clock};
use patchfleet_tests::stack::{ALL_KINDS, Stack, ssm_client};
use patchfleet_tests::web::get;
use serde_json::{Value, json};
use ssm_sim::fleet::RegisterRequest;

const PASS: Duration = Duration::from_secs(120);
/// The customer's own AWS account, whose EC2 instances enroll into customer-a.
const CUSTOMER_AWS: &str = "333333333333";
const PROJECT: &str = "shop-prod";
const SUBSCRIPTION: &str = "8d1f5c4e-0b9a-4c52-9e2f-1a2b3c4d5e6f";

/// customer-a (A, eu-west-1) takes the customer's AWS account and Google Cloud project;
/// customer-b (B, eu-central-1) takes the Azure subscription and the vCenter.
fn enrollment_specs(expiry: &str) -> [(&'static str, Value); 2] {
    [
        (
            "customer-a",
            json!({"spec": {"enrollment": {
                "sources": [
                    {"aws": {"accountIds": [CUSTOMER_AWS]}},
                    {"gcp": {"projectIds": [PROJECT]}, "region": A.2},
                ],
                "iamRole": "service-role/AmazonEC2RunCommandRoleForManagedInstances",
                "patchGroups": ["web", "db"],
                "activationExpiry": expiry,
            }}}),
        ),
        (
            "customer-b",
            json!({"spec": {"enrollment": {
                "sources": [
                    {"azure": {"subscriptionIds": [SUBSCRIPTION]}, "region": B.2},
                    {"vmware": {"vcenters": [VCENTER]}, "region": B.2},
                ],
                "iamRole": "ssm-hybrid",
                "patchGroups": ["web"],
                "activationExpiry": expiry,
            }}}),
        ),
    ]
}

/// The stack of tests/src/fleet.rs with enrollment on both accounts, and the server
/// trusting the test's roots.
async fn start(test: &str, expiry: &str) -> (Stack, EnrollProcess, f64) {
    let (stack, _scan_at, install_at) = fleet::start(test, &ALL_KINDS).await;
    let client = stack.client().await.expect("client");
    let accounts: Api<patchfleet_api::v1alpha1::SystemAccount> = Api::all(client);
    for (name, patch) in enrollment_specs(expiry) {
        accounts
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("the enrollment spec applies");
    }
    let dir = std::env::temp_dir().join(format!("patchfleet-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for the trust files");
    let write = |name: &str, contents: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("a trust file");
        path.display().to_string()
    };
    let aws = write("aws.pem", testing::aws().cert_pem().as_bytes());
    let jwks = write("jwks.json", testing::gcp().jwks_json().as_bytes());
    let roots = write("azure-roots.pem", testing::azure().roots_pem().as_bytes());
    let intermediates = write(
        "azure-intermediates.pem",
        testing::azure().intermediates_pem().as_bytes(),
    );
    let nonce = write("nonce.key", testing::NONCE_SECRET);
    let vmware = write("vc01.pem", testing::vmware().public_pem().as_bytes());
    let args: Vec<String> = [
        "--no-builtin-aws-certificates",
        "--aws-certificates",
        &aws,
        "--gcp-jwks-url",
        &format!("file://{jwks}"),
        "--azure-roots",
        &roots,
        "--azure-intermediates",
        &intermediates,
        "--nonce-key-file",
        &nonce,
        "--vmware-key",
        &format!("{VCENTER}={vmware}"),
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let server = EnrollProcess::start(&stack, &dir, &args).expect("patchfleet enroll starts");
    (stack, server, install_at)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn aws_request(account: &str, instance: &str, group: &str) -> Value {
    let (document, pkcs7) = testing::aws_document(account, A.2, instance);
    json!({"patchGroup": group, "aws": {"document": document, "pkcs7": pkcs7}})
}

fn gcp_request(instance: &str, group: &str, audience: &str, exp: i64) -> Value {
    let token = testing::gcp_token(PROJECT, instance, audience, now() - 10, exp);
    json!({"patchGroup": group, "gcp": {"token": token}})
}

fn vmware_request(uuid: &str, group: &str) -> Value {
    let token = testing::vmware_token(VCENTER, uuid, AUDIENCE, now() - 10, now() + 600);
    json!({"patchGroup": group, "vmware": {"token": token}})
}

async fn azure_request(server: &EnrollProcess, vm_id: &str, group: &str) -> Value {
    let (status, body) = server
        .client()
        .expect("client")
        .request("GET", "/v1/nonce", "")
        .await
        .expect("GET /v1/nonce");
    assert_eq!(status, 200, "{body}");
    let nonce: Value = serde_json::from_str(&body).expect("JSON");
    let nonce = nonce["nonce"].as_str().expect("a nonce");
    let attested = testing::azure_attested(SUBSCRIPTION, vm_id, nonce, now() - 5, now() + 300);
    json!({"patchGroup": group, "azure": attested})
}

async fn post(server: &EnrollProcess, request: &Value) -> (u16, Value) {
    let (status, body) = server
        .client()
        .expect("client")
        .request("POST", "/v1/enroll", &request.to_string())
        .await
        .expect("POST /v1/enroll");
    let body: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {body}"));
    (status, body)
}

/// The SSM agent's `-register` with what the server answered; the node lacks two
/// critical security updates that the account's Install window installs.
fn register(stack: &Stack, answer: &Value) -> String {
    let request = RegisterRequest {
        activation_id: answer["activationId"].as_str().expect("an id").to_owned(),
        activation_code: answer["activationCode"]
            .as_str()
            .expect("a code")
            .to_owned(),
        region: answer["region"].as_str().expect("a region").to_owned(),
        missing_patches: 2,
        ..RegisterRequest::default()
    };
    ssm_sim::fleet::register(stack.sim.sim(), request)
        .unwrap_or_else(|e| panic!("registration refused: {e}"))
        .instance_id
}

async fn node_tags(
    stack: &Stack,
    (account, external, region): (&str, &str, &str),
    node: &str,
) -> BTreeMap<String, String> {
    let ssm = ssm_client(stack, account, external, region)
        .await
        .expect("ssm");
    ssm.list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::ManagedInstance)
        .resource_id(node)
        .send()
        .await
        .map(|out| {
            out.tag_list()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

async fn registered(stack: &Stack, name: &str) -> Option<Enrollment> {
    let api: Api<Enrollment> = Api::all(stack.client().await.ok()?);
    let enrollment = api.get(name).await.ok()?;
    let status = enrollment.status.as_ref()?;
    let ready = patchfleet_api::conditions::is_true(&status.conditions, "Ready");
    (status.phase == Some(EnrollmentPhase::Registered) && ready).then_some(enrollment)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_of_each_source_enrolls_registers_and_is_patched_by_its_groups_window() {
    let (stack, server, install_at) = start("enrollment", "1h").await;
    let azure = azure_request(&server, "4215f0a1-63b8-4c0d-9e5d-2b1a0c9d8e7f", "web").await;
    let machines = [
        (
            "aws",
            aws_request(CUSTOMER_AWS, "i-0a1b2c3d4e5f60718", "web"),
            A,
            "web",
        ),
        (
            "gcp",
            gcp_request("4817264018253046917", "db", AUDIENCE, now() + 600),
            A,
            "db",
        ),
        ("azure", azure, B, "web"),
        (
            "vmware",
            vmware_request("564d6c8e-1f2a-3b4c-5d6e-7f8091a2b3c4", "web"),
            B,
            "web",
        ),
    ];
    let api: Api<Enrollment> = Api::all(stack.client().await.expect("client"));
    let mut nodes = Vec::new();
    for (source, request, account, group) in &machines {
        let (status, answer) = post(&server, request).await;
        assert_eq!(status, 201, "{source}: {answer}\n{}", server.log_text());
        assert_eq!(answer["accountId"], account.0, "{source}");
        assert_eq!(answer["region"], account.2, "{source}");
        assert_eq!(answer["patchGroup"], *group, "{source}");
        let name = answer["enrollment"].as_str().expect("a name").to_owned();
        assert!(name.starts_with(source), "{name}");
        // The Enrollment records the machine, never the activation code.
        let enrollment = api.get(&name).await.expect("the Enrollment exists");
        assert_eq!(enrollment.spec.account_id, account.0);
        assert_eq!(enrollment.spec.patch_group, *group);
        let stored = serde_json::to_string(&enrollment).expect("JSON");
        let code = answer["activationCode"].as_str().expect("a code");
        assert!(
            !stored.contains(code),
            "{source}: the code is stored: {stored}"
        );
        assert!(
            !server.log_text().contains(code),
            "{source}: the code is logged"
        );
        let node = register(&stack, &answer);
        nodes.push((name, node, *account, *group));
    }
    assert_eq!(stack.calls("CreateActivation"), 4);
    for (name, node, account, group) in &nodes {
        eventually(&format!("{name} registered"), &stack, PASS, || async {
            registered(&stack, name)
                .await
                .is_some_and(|e| e.status.and_then(|s| s.managed_node_id).as_deref() == Some(node))
        })
        .await;
        let tags = node_tags(&stack, *account, node).await;
        assert_eq!(
            tags.get("Patch Group").map(String::as_str),
            Some(*group),
            "{tags:?}"
        );
        assert_eq!(tags.get("patchfleet.io/enrollment"), Some(name), "{tags:?}");
    }

    // The groups' Install windows reach the enrolled nodes.
    set_clock(&stack, install_at + 120.0);
    for (name, node, (account, external, region), _) in &nodes {
        let ssm = ssm_client(&stack, account, external, region)
            .await
            .expect("ssm");
        let states = ssm
            .describe_instance_patch_states()
            .instance_ids(node)
            .send()
            .await
            .expect("patch states");
        let state = states.instance_patch_states().first();
        // The db window installs without rebooting: its patches wait for a reboot.
        assert!(
            state.is_some_and(|s| s.operation().as_str() == "Install"
                && s.installed_count() + s.installed_pending_reboot_count().unwrap_or(0) == 2
                && s.missing_count() == 0
                && s.failed_count() == 0),
            "{name}: {state:?}"
        );
    }

    // Moving a machine to another group retags its node.
    let (gcp_name, gcp_node, _, _) = &nodes[1];
    api.patch(
        gcp_name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"patchGroup": "web"}})),
    )
    .await
    .expect("spec.patchGroup edits");
    eventually("the GCP node retagged", &stack, PASS, || async {
        node_tags(&stack, A, gcp_node)
            .await
            .get("Patch Group")
            .map(String::as_str)
            == Some("web")
    })
    .await;

    // Deleting an Enrollment deregisters its node, and only its node.
    let (vm_name, vm_node, _, _) = &nodes[3];
    api.delete(vm_name, &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the VMware Enrollment gone", &stack, PASS, || async {
        api.get_opt(vm_name).await.ok().flatten().is_none()
    })
    .await;
    let ssm = ssm_client(&stack, B.0, B.1, B.2).await.expect("ssm");
    let listed = ssm
        .describe_instance_information()
        .send()
        .await
        .expect("nodes");
    let ids: Vec<&str> = listed
        .instance_information_list()
        .iter()
        .filter_map(|i| i.instance_id())
        .collect();
    assert!(!ids.contains(&vm_node.as_str()), "{ids:?}");
    assert!(
        ids.contains(&nodes[2].1.as_str()),
        "the Azure node stays: {ids:?}"
    );
    assert_eq!(stack.calls("DeregisterManagedInstance"), 1);
    stack
        .check_controller()
        .expect("the controller ran throughout");
}

async fn events(stack: &Stack, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(stack.client().await.expect("client"), "default");
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

async fn api_list_len(stack: &Stack) -> usize {
    let api: Api<Enrollment> = Api::all(stack.client().await.expect("client"));
    api.list(&ListParams::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(usize::MAX)
}

async fn api_delete(stack: &Stack, name: &str) {
    let api: Api<Enrollment> = Api::all(stack.client().await.expect("client"));
    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_create_nothing_and_an_unused_activation_expires() {
    let (stack, server, _) = start("enrollment-refusals", "1m").await;
    let vm = vmware_request("564d6c8e-0000-3b4c-5d6e-7f8091a2b3c4", "web");
    let (status, answer) = post(&server, &vm).await;
    assert_eq!(status, 201, "{answer}");
    let first = answer["enrollment"].as_str().expect("a name").to_owned();
    assert_eq!(stack.calls("CreateActivation"), 1);

    let mut tampered = aws_request(CUSTOMER_AWS, "i-0a1b2c3d4e5f60719", "web");
    let document = tampered["aws"]["document"]
        .as_str()
        .expect("doc")
        .replace("i-0a1b2c3d4e5f60719", "i-0a1b2c3d4e5f6071a");
    tampered["aws"]["document"] = json!(document);
    let (foreign_document, _) = testing::aws_document(CUSTOMER_AWS, A.2, "i-0a1b2c3d4e5f6071b");
    let foreign = json!({"patchGroup": "web", "aws": {
        "document": foreign_document,
        "pkcs7": testing::AwsSigner::generate().sign(&foreign_document),
    }});
    let other_chain = testing::AzureSigner::generate("metadata.azure.com");
    let nonce = testing::nonce_key().issue(now());
    let untrusted_azure = json!({"patchGroup": "web", "azure": other_chain.sign(
        &testing::azure_content(SUBSCRIPTION, "4215f0a1-0000-4c0d-9e5d-2b1a0c9d8e7f", &nonce, now() - 5, now() + 300))});
    // Another token (another iat) for the machine already enrolled.
    let new_token_same_vm = json!({"patchGroup": "web", "vmware": {"token": testing::vmware_token(
        VCENTER, "564d6c8e-0000-3b4c-5d6e-7f8091a2b3c4", AUDIENCE, now() - 30, now() + 600)}});
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "a document changed after signing",
            tampered,
            401,
            "BadSignature",
        ),
        (
            "a document signed by a key AWS does not hold",
            foreign,
            401,
            "UntrustedCertificate",
        ),
        (
            "an Azure document not chaining to the trusted root",
            untrusted_azure,
            401,
            "UntrustedCertificate",
        ),
        (
            "an expired token",
            gcp_request("1001", "web", AUDIENCE, now() - 120),
            401,
            "Expired",
        ),
        (
            "a token for another audience",
            gcp_request("1002", "web", "https://elsewhere.example", now() + 600),
            401,
            "WrongAudience",
        ),
        ("the same token again", vm.clone(), 409, "Replayed"),
        (
            "the same machine with a new token",
            new_token_same_vm,
            409,
            "AlreadyEnrolled",
        ),
        (
            "an AWS account no SystemAccount lists",
            aws_request("999999999999", "i-0a1b2c3d4e5f6071c", "web"),
            403,
            "UnknownSource",
        ),
        (
            "a patch group off the allow-list",
            gcp_request("1003", "finance", AUDIENCE, now() + 600),
            403,
            "PatchGroupNotAllowed",
        ),
        ("not JSON", json!("hello"), 400, "Malformed"),
    ];
    for (what, request, code, reason) in &cases {
        let (status, answer) = post(&server, request).await;
        assert_eq!(status, *code, "{what}: {answer}");
        assert_eq!(answer["reason"], *reason, "{what}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(':') && message.len() > 30,
            "{what}: {message:?} says what to do"
        );
        assert!(answer.get("activationCode").is_none(), "{what}");
    }
    assert_eq!(stack.calls("CreateActivation"), 1, "no refusal reached SSM");
    for (what, _, _, reason) in &cases {
        eventually(&format!("an Event for {what}"), &stack, PASS, || async {
            !events(&stack, reason).await.is_empty()
        })
        .await;
    }
    let (status, metrics) = match get(server.http, "/metrics", None) {
        Ok(answer) => (answer.status, answer.body),
        Err(e) => panic!("/metrics: {e}"),
    };
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"patchfleet_enroll_requests_total{outcome="Enrolled"} 1"#),
        "{metrics}"
    );
    for (what, _, _, reason) in &cases {
        let counted = format!(r#"patchfleet_enroll_requests_total{{outcome="{reason}"}}"#);
        assert!(metrics.contains(&counted), "{what}: {counted} in {metrics}");
    }

    // SSM failing CreateActivation leaves nothing behind: no activation, no Enrollment
    // (the controller lets it go once it found nothing to clean), and the machine enrolls
    // when SSM is back.
    stack.sim.sim().faults.set(ssm_sim::FaultSpec {
        server_error_rate: 1.0,
        operations: vec!["CreateActivation".to_owned()],
        ..ssm_sim::FaultSpec::default()
    });
    let later = vmware_request("564d6c8e-1111-3b4c-5d6e-7f8091a2b3c4", "web");
    let (status, answer) = post(&server, &later).await;
    assert!(status == 502 || status == 503, "{status}: {answer}");
    assert_eq!(answer["reason"], "ActivationFailed", "{answer}");
    assert!(
        !answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("InternalServerError"),
        "SSM's words stay with the administrators: {answer}"
    );
    stack.sim.sim().faults.set(ssm_sim::FaultSpec::default());
    eventually("the failed Enrollment gone", &stack, PASS, || async {
        api_list_len(&stack).await == 1
    })
    .await;
    let (status, answer) = post(&server, &later).await;
    assert_eq!(status, 201, "{answer}");
    let retried = answer["enrollment"].as_str().expect("a name").to_owned();
    api_delete(&stack, &retried).await;
    eventually("the retried Enrollment gone", &stack, PASS, || async {
        api_list_len(&stack).await == 1
    })
    .await;
    assert!(!events(&stack, "ActivationFailed").await.is_empty());
    let api: Api<Enrollment> = Api::all(stack.client().await.expect("client"));
    assert_eq!(
        api.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );

    // The one machine never registers: a minute later its activation is deleted.
    eventually(
        "the unused activation expired",
        &stack,
        Duration::from_secs(150),
        || async {
            api.get(&first).await.ok().and_then(|e| e.status?.phase)
                == Some(EnrollmentPhase::Expired)
        },
    )
    .await;
    // The expired one's, and the retried one's when its Enrollment was deleted.
    assert_eq!(stack.calls("DeleteActivation"), 2);
    let ssm = ssm_client(&stack, B.0, B.1, B.2).await.expect("ssm");
    let left = ssm
        .describe_activations()
        .send()
        .await
        .expect("activations");
    assert!(
        left.activation_list().is_empty(),
        "{:?}",
        left.activation_list()
    );
    assert!(!events(&stack, "ActivationExpired").await.is_empty());

    // Enrollments per second through the server (docs/performance.md has the full run).
    let n: usize = std::env::var("PATCHFLEET_ENROLL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let requests: Vec<Value> = (0..n)
        .map(|i| vmware_request(&format!("{i:08x}-0000-4000-8000-000000000000"), "web"))
        .collect();
    let client = server.client().expect("client");
    let before = stack.calls("CreateActivation");
    let started = Instant::now();
    let answers = futures::future::join_all(requests.chunks(n.div_ceil(8)).map(|chunk| {
        let client = client.clone();
        async move {
            let mut codes = Vec::new();
            for request in chunk {
                let (status, _) = client
                    .request("POST", "/v1/enroll", &request.to_string())
                    .await
                    .expect("POST");
                codes.push(status);
            }
            codes
        }
    }))
    .await;
    let elapsed = started.elapsed();
    let created = answers.iter().flatten().filter(|s| **s == 201).count();
    assert_eq!(created, n, "{answers:?}");
    assert_eq!(stack.calls("CreateActivation") - before, n as u64);
    println!(
        "enrollments: {n} in {:.2} s = {:.1} per second (8 clients, TLS, one CreateActivation each)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
}
