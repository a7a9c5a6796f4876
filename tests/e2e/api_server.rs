//! patchfleet's API on a real kube-apiserver (tests/env/control-plane): the CRDs establish,
//! the examples apply, every invalid case is rejected by the server naming the field, the
//! printer columns show, and the status subresource behaves.

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::{Client, ResourceExt};
use patchfleet_api::v1alpha1::{Approval, MAX_STAGES, PatchGroup, PatchRollout};
use patchfleet_tests::cases::{self, Case};
use patchfleet_tests::control_plane::{self, TestNamespace};
use patchfleet_tests::examples::{self, Manifest};
use patchfleet_tests::json_patch::Operation;
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

/// Each case's valid variant created (dry run) and its invalid one rejected naming the
/// field, in `namespace`; the cases that did not behave so.
async fn server_verdicts(
    client: &Client,
    namespace: &str,
    all: &[Case],
    manifests: &[Manifest],
) -> Vec<String> {
    let dry_run = PostParams {
        dry_run: true,
        field_manager: Some(MANAGER.to_owned()),
    };
    let mut failures = Vec::new();
    for case in all {
        let variants = case.variants(manifests).expect("variants build");
        let manifest = examples::find(manifests, &case.kind, &case.example).expect("example");
        let mut valid_manifest = manifest.clone();
        valid_manifest.value = variants.valid;
        let valid = localize(&valid_manifest, namespace);
        let api = api_for(client, &valid, namespace).await;
        let valid: DynamicObject = serde_json::from_value(valid).expect("an object");
        if let Err(error) = api.create(&dry_run, &valid).await {
            failures.push(format!("'{}': valid case rejected: {error}", case.rule));
        }
        let mut invalid_manifest = manifest.clone();
        invalid_manifest.value = variants.invalid;
        let invalid: DynamicObject =
            serde_json::from_value(localize(&invalid_manifest, namespace)).expect("an object");
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
    failures
}

#[tokio::test]
async fn every_invalid_case_is_rejected_by_the_server_naming_the_field() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "validation")
        .await
        .expect("namespace");
    let manifests = examples::load().expect("examples load");
    let all = cases::load().expect("cases load");
    let failures = server_verdicts(&client, &namespace.name, &all, &manifests).await;
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

// PatchRollout: no example ships one, so its object and its cases (in the form of
// tests/validation/cases.yaml) are here.

/// A rollout over the examples' PatchGroups: a first stage with every default, a second
/// with every field set.
const ROLLOUT: &str = r#"
apiVersion: patchfleet.io/v1alpha1
kind: PatchRollout
metadata:
  name: staged
spec:
  policyRef: {name: early}
  release: {token: "2026-12", cutoff: "2026-12-01"}
  stages:
    - {name: verify, patchGroups: [early]}
    - name: prod
      patchGroups: [on-time, late]
      soak: 2d
      gate: {maxFailed: "5%", minInstalled: "90%"}
      approval: Manual
"#;

/// One entry per validation rule of PatchRollout, on the object above.
const ROLLOUT_CASES: &str = r#"
- rule: a PatchGroup is in one stage only
  kind: PatchRollout
  example: staged
  valid: [{op: add, path: /spec/stages/0/patchGroups/-, value: canary}]
  invalid: [{op: add, path: /spec/stages/0/patchGroups/-, value: late}]
  field: spec.stages
  message: a PatchGroup may be in one stage only
- rule: a stage's PatchGroups are unique
  kind: PatchRollout
  example: staged
  valid: [{op: replace, path: /spec/stages/1/patchGroups, value: [on-time]}]
  invalid: [{op: replace, path: /spec/stages/1/patchGroups, value: [on-time, on-time]}]
  field: spec.stages[1].patchGroups[1]
- rule: only a Manual stage has an approvedRelease
  kind: PatchRollout
  example: staged
  valid: [{op: add, path: /spec/stages/1/approvedRelease, value: "2026-12"}]
  invalid: [{op: add, path: /spec/stages/0/approvedRelease, value: "2026-12"}]
  field: spec.stages[0].approvedRelease
  message: only a stage with approval Manual is approved
- rule: approval is Automatic or Manual
  kind: PatchRollout
  example: staged
  valid: [{op: replace, path: /spec/stages/1/approval, value: Automatic}]
  invalid: [{op: replace, path: /spec/stages/1/approval, value: manual}]
  field: spec.stages[1].approval
- rule: soak is at most 30 days (in days)
  kind: PatchRollout
  example: staged
  valid: [{op: replace, path: /spec/stages/1/soak, value: 30d}]
  invalid: [{op: replace, path: /spec/stages/1/soak, value: 31d}]
  field: spec.stages[1].soak
  message: at most 30 days
- rule: soak is at most 30 days (in hours)
  kind: PatchRollout
  example: staged
  valid: [{op: replace, path: /spec/stages/1/soak, value: 720h}]
  invalid: [{op: replace, path: /spec/stages/1/soak, value: 721h}]
  field: spec.stages[1].soak
  message: at most 30 days
- rule: soak is at most 30 days (in minutes)
  kind: PatchRollout
  example: staged
  valid: [{op: replace, path: /spec/stages/1/soak, value: 43200m}]
  invalid: [{op: replace, path: /spec/stages/1/soak, value: 43201m}]
  field: spec.stages[1].soak
  message: at most 30 days
- rule: soak is at most 30 days (in seconds)
  kind: PatchRollout
  example: staged
  valid: [{op: replace, path: /spec/stages/1/soak, value: 2592000s}]
  invalid: [{op: replace, path: /spec/stages/1/soak, value: 2592001s}]
  field: spec.stages[1].soak
  message: at most 30 days
- rule: soak is digits and one unit of s, m, h, d
  kind: PatchRollout
  example: staged
  valid: [{op: replace, path: /spec/stages/1/soak, value: 0000030d}]
  invalid: [{op: replace, path: /spec/stages/1/soak, value: 5w}]
  field: spec.stages[1].soak
  message: should match
- rule: gate maxFailed is N or N% up to 100%
  kind: PatchRollout
  example: staged
  valid: [{op: replace, path: /spec/stages/1/gate/maxFailed, value: 100%}]
  invalid: [{op: replace, path: /spec/stages/1/gate/maxFailed, value: 101%}]
  field: spec.stages[1].gate.maxFailed
- rule: gate minInstalled is N or N% up to 100%
  kind: PatchRollout
  example: staged
  valid: [{op: replace, path: /spec/stages/1/gate/minInstalled, value: "0"}]
  invalid: [{op: replace, path: /spec/stages/1/gate/minInstalled, value: 50.5%}]
  field: spec.stages[1].gate.minInstalled
- rule: at least one stage
  kind: PatchRollout
  example: staged
  valid: [{op: remove, path: /spec/stages/1}]
  invalid: [{op: replace, path: /spec/stages, value: []}]
  field: spec.stages
  message: at least 1 items
- rule: stage names are unique
  kind: PatchRollout
  example: staged
  valid: [{op: replace, path: /spec/stages/1/name, value: verify-2}]
  invalid: [{op: replace, path: /spec/stages/1/name, value: verify}]
  field: spec.stages[1]
  message: Duplicate value
- rule: a stage name is a DNS label
  kind: PatchRollout
  example: staged
  valid: [{op: replace, path: /spec/stages/1/name, value: prod-2}]
  invalid: [{op: replace, path: /spec/stages/1/name, value: Prod}]
  field: spec.stages[1].name
- rule: the release token is letters, digits and _.:-
  kind: PatchRollout
  example: staged
  valid: [{op: replace, path: /spec/release/token, value: "CHG-2026_12.rc:1"}]
  invalid: [{op: replace, path: /spec/release/token, value: "2026 12"}]
  field: spec.release.token
- rule: the release cutoff is a date
  kind: PatchRollout
  example: staged
  valid: [{op: replace, path: /spec/release/cutoff, value: "2026-12-31"}]
  invalid: [{op: replace, path: /spec/release/cutoff, value: "2026-13-01"}]
  field: spec.release.cutoff
- rule: a policyRef names a PatchPolicy
  kind: PatchRollout
  example: staged
  valid: [{op: replace, path: /spec/policyRef/name, value: on-time}]
  invalid: [{op: replace, path: /spec/policyRef/name, value: On_Time}]
  field: spec.policyRef.name
"#;

fn rollout_manifest() -> Manifest {
    Manifest {
        file: "tests/e2e/api_server.rs".to_owned(),
        value: serde_norway::from_str(ROLLOUT).expect("ROLLOUT parses"),
    }
}

/// `count` stages, each with a PatchGroup of its own.
fn stages(count: usize) -> Value {
    (0..count)
        .map(|i| json!({"name": format!("stage-{i}"), "patchGroups": [format!("group-{i}")]}))
        .collect()
}

fn rollout_cases() -> Vec<Case> {
    let mut all: Vec<Case> = serde_norway::from_str(ROLLOUT_CASES).expect("ROLLOUT_CASES parse");
    all.push(Case {
        rule: format!("at most {MAX_STAGES} stages"),
        kind: "PatchRollout".to_owned(),
        example: "staged".to_owned(),
        valid: vec![Operation::Replace {
            path: "/spec/stages".to_owned(),
            value: stages(MAX_STAGES),
        }],
        invalid: vec![Operation::Replace {
            path: "/spec/stages".to_owned(),
            value: stages(MAX_STAGES + 1),
        }],
        field: "spec.stages".to_owned(),
        message: Some(format!("must have at most {MAX_STAGES} items")),
        server_only: None,
    });
    all
}

#[tokio::test]
async fn every_invalid_rollout_is_rejected_by_the_server_naming_the_field() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "rollout-validation")
        .await
        .expect("namespace");
    let all = rollout_cases();
    let failures = server_verdicts(&client, &namespace.name, &all, &[rollout_manifest()]).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A soak that is no number is named once, by its pattern: the 30-day rule leaves it
    // alone instead of failing on int() next to it.
    let mut object = localize(&rollout_manifest(), &namespace.name);
    object["spec"]["stages"][1]["soak"] = json!("1.5d");
    let object: DynamicObject = serde_json::from_value(object).expect("an object");
    let api = api_for(&client, &rollout_manifest().value, &namespace.name).await;
    let dry_run = PostParams {
        dry_run: true,
        field_manager: Some(MANAGER.to_owned()),
    };
    match api.create(&dry_run, &object).await {
        Err(kube::Error::Api(status)) if status.code == 422 => {
            assert!(
                status.message.contains("spec.stages[1].soak")
                    && status.message.contains("should match")
                    && !status.message.contains("evaluating rule"),
                "{}",
                status.message
            );
        }
        other => panic!("soak 1.5d: {other:?}"),
    }
    namespace.delete().await;
}

#[tokio::test]
async fn a_rollout_is_accepted_with_its_defaults_filled_in() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "rollout-defaults")
        .await
        .expect("namespace");
    let rollouts: Api<PatchRollout> = Api::namespaced(client, &namespace.name);
    let mut object = localize(&rollout_manifest(), &namespace.name);
    // A gate with one of its two fields gets the other's default.
    object["spec"]["stages"][1]["gate"] = json!({"maxFailed": "1"});
    let created = rollouts
        .patch(
            "staged",
            &PatchParams::apply(MANAGER),
            &Patch::Apply(&object),
        )
        .await
        .expect("a valid rollout applies");
    let stages = &created.spec.stages;
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0].soak, "0s");
    assert_eq!(stages[0].gate.max_failed, "0");
    assert_eq!(stages[0].gate.min_installed, "100%");
    assert_eq!(stages[0].approval, Approval::Automatic);
    assert_eq!(stages[0].approved_release, None);
    assert_eq!(stages[0].override_release, None);
    assert_eq!(stages[1].soak, "2d");
    assert_eq!(stages[1].gate.max_failed, "1");
    assert_eq!(stages[1].gate.min_installed, "100%");
    assert_eq!(stages[1].approval, Approval::Manual);
    assert_eq!(created.spec.release.cutoff.as_deref(), Some("2026-12-01"));
    // Without a cutoff the release has none in spec: the controller takes the day.
    let mut without = object.clone();
    without["spec"]["release"]
        .as_object_mut()
        .expect("release")
        .remove("cutoff");
    let updated = rollouts
        .patch(
            "staged",
            &PatchParams::apply(MANAGER),
            &Patch::Apply(&without),
        )
        .await
        .expect("a rollout without a cutoff applies");
    assert_eq!(updated.spec.release.cutoff, None);
    namespace.delete().await;
}

#[tokio::test]
async fn kubectl_get_shows_a_rollouts_printer_columns() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "rollout-columns")
        .await
        .expect("namespace");
    let ns = namespace.name.as_str();
    let rollouts: Api<PatchRollout> = Api::namespaced(client, ns);
    let object = localize(&rollout_manifest(), ns);
    rollouts
        .patch(
            "staged",
            &PatchParams::apply(MANAGER),
            &Patch::Apply(&object),
        )
        .await
        .expect("applies");
    let header = |output: &str| -> Vec<String> {
        output
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let output = plane
        .kubectl(["get", "prol", "-n", ns])
        .expect("kubectl get");
    assert_eq!(
        header(&output),
        ["NAME", "POLICY", "RELEASE", "CUTOFF", "READY", "AGE"],
        "{output}"
    );
    // Before the controller writes status only NAME, POLICY and AGE show.
    let output = plane
        .kubectl(["get", "prol", "staged", "-n", ns, "--no-headers"])
        .expect("kubectl get");
    let columns: Vec<&str> = output.split_whitespace().collect();
    assert_eq!(columns.len(), 3, "{output}");
    assert_eq!(&columns[..2], ["staged", "early"], "{output}");

    let status = json!({
        "apiVersion": "patchfleet.io/v1alpha1",
        "kind": "PatchRollout",
        "status": {
            "observedGeneration": 1,
            "conditions": [{
                "type": "Ready", "status": "False", "reason": "Reconciling",
                "message": "stage prod awaits approval", "lastTransitionTime": "2026-12-02T00:00:00Z"
            }],
            "release": {"token": "2026-12", "cutoff": "2026-12-01", "startedAt": "2026-12-02T00:00:00Z"},
            "stages": [
                {"name": "verify", "release": "2026-12", "cutoff": "2026-12-01", "state": "Passed",
                 "since": "2026-12-03T00:00:00Z"},
                {"name": "prod", "state": "AwaitingApproval", "since": "2026-12-03T00:00:00Z"}
            ],
            "progress": "verify=Passed,prod=AwaitingApproval"
        }
    });
    let updated = rollouts
        .patch_status(
            "staged",
            &PatchParams::apply("patchfleet").force(),
            &Patch::Apply(&status),
        )
        .await
        .expect("status applies");
    assert_eq!(updated.metadata.generation, Some(1));
    let output = plane
        .kubectl(["get", "prol", "staged", "-n", ns, "--no-headers"])
        .expect("kubectl get");
    let columns: Vec<&str> = output.split_whitespace().collect();
    assert_eq!(
        &columns[..5],
        ["staged", "early", "2026-12", "2026-12-01", "False"],
        "{output}"
    );
    // STAGES has priority 1: `-o wide` only. It shows `status.progress`, every stage's
    // state (a JSONPath over the stages list would show only the first one's).
    let output = plane
        .kubectl(["get", "prol", "-n", ns, "-o", "wide"])
        .expect("kubectl get -o wide");
    assert_eq!(
        header(&output),
        [
            "NAME", "POLICY", "RELEASE", "CUTOFF", "STAGES", "READY", "AGE"
        ],
        "{output}"
    );
    let row: Vec<&str> = output
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..6],
        [
            "staged",
            "early",
            "2026-12",
            "2026-12-01",
            "verify=Passed,prod=AwaitingApproval",
            "False"
        ],
        "{output}"
    );

    // The category and the short name reach it.
    let all = plane
        .kubectl(["get", "patchfleet", "-n", ns, "-o", "name"])
        .expect("kubectl get patchfleet");
    assert!(
        all.lines()
            .any(|l| l == "patchrollout.patchfleet.io/staged"),
        "kubectl get patchfleet: {all}"
    );
    namespace.delete().await;
}
