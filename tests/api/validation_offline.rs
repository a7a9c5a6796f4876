//! Every validation rule of the API, checked against the generated schema without a
//! server: its valid variant passes, its invalid variant is rejected naming the field. The
//! same cases run on the real API server in tests/e2e/api_server.rs.

use patchfleet_tests::{cases, examples, offline::OfflineValidator};

#[test]
fn every_example_passes_the_generated_schema() {
    let validator = OfflineValidator::from_generated_crds().expect("schemas compile");
    for manifest in examples::load().expect("examples load") {
        if manifest.value["apiVersion"] != "patchfleet.io/v1alpha1" {
            continue;
        }
        let errors = validator
            .validate(&manifest.value)
            .expect("a patchfleet kind");
        assert!(
            errors.is_empty(),
            "{} {}/{} in {}: {errors:#?}",
            manifest.kind(),
            manifest.namespace().unwrap_or_default(),
            manifest.name(),
            manifest.file
        );
    }
}

#[test]
fn every_rule_accepts_its_valid_case_and_rejects_its_invalid_case() {
    let validator = OfflineValidator::from_generated_crds().expect("schemas compile");
    let manifests = examples::load().expect("examples load");
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases::load().expect("cases load") {
        let variants = case.variants(&manifests).expect("variants build");
        let valid_errors = validator.validate(&variants.valid).expect("validates");
        if !valid_errors.is_empty() {
            failures.push(format!(
                "'{}': valid case rejected: {valid_errors:?}",
                case.rule
            ));
        }
        if case.server_only.is_some() {
            continue;
        }
        checked += 1;
        let errors = validator.validate(&variants.invalid).expect("validates");
        if !errors.iter().any(|e| case.matches(e)) {
            failures.push(format!(
                "'{}': expected a rejection naming {} {:?}, got {errors:?}",
                case.rule, case.field, case.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 40, "only {checked} cases checked offline");
}

#[test]
fn examples_parse_into_the_api_types() {
    use patchfleet_api::v1alpha1::*;
    let mut counts = std::collections::BTreeMap::new();
    for manifest in examples::load().expect("examples load") {
        let value = manifest.value.clone();
        let parsed = match manifest.kind() {
            "SystemAccount" => serde_json::from_value::<SystemAccount>(value).map(|_| ()),
            "PatchPolicy" => serde_json::from_value::<PatchPolicy>(value).map(|_| ()),
            "PatchGroup" => serde_json::from_value::<PatchGroup>(value).map(|_| ()),
            "MaintenanceWindow" => serde_json::from_value::<MaintenanceWindow>(value).map(|_| ()),
            _ => continue,
        };
        if let Err(error) = parsed {
            panic!(
                "{} {} in {}: {error}",
                manifest.kind(),
                manifest.name(),
                manifest.file
            );
        }
        *counts.entry(manifest.kind().to_owned()).or_insert(0) += 1;
    }
    // What the issue asks the examples to hold.
    assert_eq!(counts.get("SystemAccount"), Some(&2));
    assert!(counts.get("PatchPolicy").is_some_and(|n| *n >= 3));
    assert!(counts.get("PatchGroup").is_some_and(|n| *n >= 3));
    assert!(counts.get("MaintenanceWindow").is_some_and(|n| *n >= 3));
}

#[test]
fn the_age_policies_cover_eight_operating_systems_at_0_7_and_14_days() {
    use patchfleet_api::v1alpha1::{OperatingSystem::*, PatchPolicy};
    let manifests = examples::load().expect("examples load");
    for (name, days) in [("early", 0), ("on-time", 7), ("late", 14)] {
        let manifest = examples::find(&manifests, "PatchPolicy", name).expect("policy exists");
        let policy: PatchPolicy = serde_json::from_value(manifest.value.clone()).expect("parses");
        let systems: Vec<_> = policy
            .spec
            .baselines
            .iter()
            .map(|b| b.operating_system)
            .collect();
        for os in [
            Windows,
            Ubuntu,
            Debian,
            Centos,
            RedhatEnterpriseLinux,
            OracleLinux,
            AmazonLinux,
            AmazonLinux2,
        ] {
            assert!(systems.contains(&os), "{name} lacks {os:?}");
        }
        for baseline in &policy.spec.baselines {
            for rule in &baseline.approval_rules {
                let expected = baseline
                    .operating_system
                    .supports_approval_delay()
                    .then_some(days);
                assert_eq!(
                    rule.approve_after_days, expected,
                    "{name} {:?}",
                    baseline.operating_system
                );
            }
        }
    }
}
