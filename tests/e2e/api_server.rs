//! patchfleet's API on a real kube-apiserver (tests/env/control-plane): the CRDs establish,
//! the examples apply, every invalid case is rejected by the server naming the field, the
//! printer columns show, and the status subresource behaves.

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::{Client, ResourceExt};
use patchfleet_api::v1alpha1::PatchGroup;
use patchfleet_tests::cases;
use patchfleet_tests::control_plane::{self, TestNamespace};
use patchfleet_tests::examples::{self, Manifest};
use serde_json::{Value, json};

const MANAGER: &str = "patchfleet-tests";

/// The API for a manifest's kind, in `namespace` when the kind is namespaced.
async fn api_for(client: &Client, object: &Value, namespace: &str) -> Api<DynamicObject> {
    let (group, version) = match object["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .split_once('/')
    {
        Some((group, version)) => (group.to_owned(), version.to_owned()),
        None => (
            String::new(),
            object["apiVersion"].as_str().unwrap_or_default().to_owned(),
        ),
    };
    let kind = object["kind"].as_str().unwrap_or_default();
    let gvk = GroupVersionKind::gvk(&group, &version, kind);
    let resource = ApiResource::from_gvk(&gvk);
    if kind == "SystemAccount" {
        Api::all_with(client.clone(), &resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, &resource)
    }
}

/// The example moved into the test's namespace; cluster-scoped ones get a unique name.
fn localize(manifest: &Manifest, namespace: &str) -> Value {
    let mut value = manifest.value.clone();
    if manifest.kind() == "SystemAccount" {
        value["metadata"]["name"] = json!(format!("{}-{namespace}", manifest.name()));
    } else {
        value["metadata"]["namespace"] = json!(namespace);
    }
    value
}

fn patchfleet_examples() -> Vec<Manifest> {
    examples::load()
        .expect("examples load")
        .into_iter()
        .filter(|m| m.value["apiVersion"] == "patchfleet.io/v1alpha1")
        .collect()
}

#[tokio::test]
async fn every_crd_is_established_with_its_names() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    for expected in patchfleet_api::crds() {
        let name = expected.metadata.name.clone().unwrap_or_default();
        let crd = crds.get(&name).await.expect("CRD exists");
        let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
        for condition in ["Established", "NamesAccepted"] {
            assert!(
                conditions
                    .iter()
                    .any(|c| c.type_ == condition && c.status == "True"),
                "{name}: {condition} is not True: {conditions:?}"
            );
        }
        assert_eq!(crd.spec.names.short_names, expected.spec.names.short_names);
        assert_eq!(
            crd.spec.names.categories,
            Some(vec!["patchfleet".to_owned()])
        );
    }
}

#[tokio::test]
async fn every_example_applies_with_server_side_apply_and_reapplies_unchanged() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "examples")
        .await
        .expect("namespace");
    let params = PatchParams::apply(MANAGER);
    for manifest in patchfleet_examples() {
        let object = localize(&manifest, &namespace.name);
        let api = api_for(&client, &object, &namespace.name).await;
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let applied = api
            .patch(&name, &params, &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("{} {name} from {}: {e}", manifest.kind(), manifest.file));
        let again = api
            .patch(&name, &params, &Patch::Apply(&object))
            .await
            .expect("re-apply");
        assert_eq!(applied.metadata.generation, Some(1), "{name}");
        assert_eq!(
            again.metadata.generation,
            Some(1),
            "{name}: re-applying changed the spec"
        );
        assert_eq!(
            again.resource_version(),
            applied.resource_version(),
            "{name}: re-apply wrote"
        );
    }
    namespace.delete().await;
}

#[tokio::test]
async fn every_invalid_case_is_rejected_by_the_server_naming_the_field() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "validation")
        .await
        .expect("namespace");
    let manifests = examples::load().expect("examples load");
    let dry_run = PostParams {
        dry_run: true,
        field_manager: Some(MANAGER.to_owned()),
    };
    let mut failures = Vec::new();
    let all = cases::load().expect("cases load");
    for case in &all {
        let variants = case.variants(&manifests).expect("variants build");
        let manifest = examples::find(&manifests, &case.kind, &case.example).expect("example");
        let mut valid_manifest = manifest.clone();
        valid_manifest.value = variants.valid;
        let valid = localize(&valid_manifest, &namespace.name);
        let api = api_for(&client, &valid, &namespace.name).await;
        let valid: DynamicObject = serde_json::from_value(valid).expect("an object");
        if let Err(error) = api.create(&dry_run, &valid).await {
            failures.push(format!("'{}': valid case rejected: {error}", case.rule));
        }
        let mut invalid_manifest = manifest.clone();
        invalid_manifest.value = variants.invalid;
        let invalid: DynamicObject =
            serde_json::from_value(localize(&invalid_manifest, &namespace.name))
                .expect("an object");
        match api.create(&dry_run, &invalid).await {
            Ok(_) => failures.push(format!("'{}': invalid case accepted", case.rule)),
            Err(kube::Error::Api(status)) if status.code == 422 => {
                if !case.matches(&status.message) {
                    failures.push(format!(
                        "'{}': expected {} {:?} in: {}",
                        case.rule, case.field, case.message, status.message
                    ));
                }
            }
            Err(other) => failures.push(format!("'{}': unexpected error {other}", case.rule)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(all.len() > 40);
    namespace.delete().await;
}

#[tokio::test]
async fn kubectl_get_shows_the_printer_columns_short_names_and_category() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "columns")
        .await
        .expect("namespace");
    let params = PatchParams::apply(MANAGER);
    for manifest in patchfleet_examples() {
        let object = localize(&manifest, &namespace.name);
        let api = api_for(&client, &object, &namespace.name).await;
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        api.patch(&name, &params, &Patch::Apply(&object))
            .await
            .expect("applies");
    }
    let expected_headers = [
        (
            "sysacct",
            vec![
                "NAME",
                "ACCOUNT",
                "PLATFORM",
                "REGIONS",
                "READY",
                "INSTANCES",
                "ONLINE",
                "NONCOMPLIANT",
                "AGE",
            ],
        ),
        (
            "ppol",
            vec!["NAME", "MODE", "ACCOUNTS", "FAILING", "READY", "AGE"],
        ),
        (
            "pgrp",
            vec![
                "NAME",
                "GROUP",
                "POLICY",
                "ACCOUNTS",
                "FAILING",
                "READY",
                "INSTANCES",
                "NONCOMPLIANT",
                "AGE",
            ],
        ),
        (
            "mw",
            vec![
                "NAME",
                "STRATEGY",
                "SCHEDULE",
                "ACCOUNTS",
                "FAILING",
                "READY",
                "RUNSFAILED",
                "AGE",
            ],
        ),
    ];
    for (short_name, headers) in expected_headers {
        let output = plane
            .kubectl(["get", short_name, "-n", &namespace.name])
            .expect("kubectl get");
        let header: Vec<&str> = output
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(header, headers, "kubectl get {short_name}:\n{output}");
    }
    let frozen = plane
        .kubectl([
            "get",
            "pgrp",
            "frozen",
            "-n",
            &namespace.name,
            "--no-headers",
        ])
        .expect("kubectl get pgrp frozen");
    let columns: Vec<&str> = frozen.split_whitespace().collect();
    // NAME, POLICY and AGE: GROUP, ACCOUNTS, FAILING and READY come from status, which
    // only the controller writes, so they are blank here.
    assert_eq!(columns.len(), 3, "{frozen}");
    assert_eq!(&columns[..2], ["frozen", "frozen"], "{frozen}");

    // The category lists every namespaced kind at once.
    let all = plane
        .kubectl(["get", "patchfleet", "-n", &namespace.name, "-o", "name"])
        .expect("kubectl get patchfleet");
    let kinds: BTreeSet<&str> = all.lines().filter_map(|l| l.split('/').next()).collect();
    let expected: BTreeSet<&str> = [
        "maintenancewindow.patchfleet.io",
        "patchgroup.patchfleet.io",
        "patchpolicy.patchfleet.io",
    ]
    .into();
    assert!(expected.is_subset(&kinds), "kubectl get patchfleet: {all}");
    namespace.delete().await;
}

#[tokio::test]
async fn a_status_write_does_not_bump_generation_and_ignores_spec() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "status")
        .await
        .expect("namespace");
    let groups: Api<PatchGroup> = Api::namespaced(client.clone(), &namespace.name);
    let manifests = examples::load().expect("examples load");
    let example = examples::find(&manifests, "PatchGroup", "early").expect("example");
    let object = localize(example, &namespace.name);
    let created = groups
        .patch(
            "early",
            &PatchParams::apply(MANAGER),
            &Patch::Apply(&object),
        )
        .await
        .expect("applies");
    assert_eq!(created.metadata.generation, Some(1));

    let status = json!({
        "apiVersion": "patchfleet.io/v1alpha1",
        "kind": "PatchGroup",
        "spec": {"policyRef": {"name": "written-through-status"}},
        "status": {
            "observedGeneration": 1,
            "conditions": [{
                "type": "Ready", "status": "False", "reason": "Pending",
                "message": "waiting", "lastTransitionTime": "2026-01-01T00:00:00Z"
            }],
            "summary": {"selected": 3, "ready": 1, "failing": 2},
            "groupName": "early"
        }
    });
    let updated = groups
        .patch_status(
            "early",
            &PatchParams::apply("patchfleet").force(),
            &Patch::Apply(&status),
        )
        .await
        .expect("status applies");
    assert_eq!(
        updated.metadata.generation,
        Some(1),
        "a status write bumped generation"
    );
    assert_eq!(
        updated.spec.policy_ref.name, "early",
        "the status endpoint changed spec"
    );
    let status = updated.status.expect("status stored");
    assert_eq!(
        status
            .fleet
            .summary
            .map(|s| (s.selected, s.ready, s.failing)),
        Some((3, 1, 2))
    );
    assert_eq!(status.fleet.conditions[0].reason, "Pending");

    let output = plane
        .kubectl([
            "get",
            "pgrp",
            "early",
            "-n",
            &namespace.name,
            "--no-headers",
        ])
        .expect("kubectl get");
    let columns: Vec<&str> = output.split_whitespace().collect();
    // NAME GROUP POLICY ACCOUNTS FAILING READY AGE
    assert_eq!(
        &columns[..6],
        ["early", "early", "early", "3", "2", "False"],
        "{output}"
    );
    namespace.delete().await;
}
