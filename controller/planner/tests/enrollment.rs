//! Enrollment, pure (docs/enrollment.md): which account and region a verified machine
//! enrolls into or why not, the Enrollment's name, the activation's tags, and what the
//! controller does next for an Enrollment.

use std::collections::BTreeMap;

use patchfleet_api::v1alpha1::{
    AccountEnrollment, EnrollmentPhase, EnrollmentSourceRef, EnrollmentSpec, SourceKind,
    SystemAccount,
};
use patchfleet_planner::builders::mk_account;
use patchfleet_planner::enrollment::{
    EnrollmentAction, EnrollmentObserved, MappingReason, ObservedActivation, ObservedNode,
    VerifiedSource, activation_tags, cleanup, enrollment_name, next_action, place,
};
use serde_json::json;

const CLUSTER: &str = "prod-eu";
const SUB: &str = "8d1f5c4e-0b9a-4c52-9e2f-1a2b3c4d5e6f";

fn enrolling(
    name: &str,
    account_id: &str,
    regions: &[&str],
    enrollment: serde_json::Value,
) -> SystemAccount {
    let mut account = mk_account(name, account_id, regions, &[]);
    let enrollment: AccountEnrollment =
        serde_json::from_value(enrollment).expect("an enrollment spec");
    account.spec.enrollment = Some(enrollment);
    account
}

/// customer-a takes AWS account 111…, GCP project shop-prod and vCenter vc01 (into
/// eu-central-1); customer-b takes an Azure subscription and AWS account 222….
fn accounts() -> Vec<SystemAccount> {
    vec![
        enrolling(
            "customer-a",
            "100000000001",
            &["eu-west-1", "eu-central-1"],
            json!({
                "sources": [
                    {"aws": {"accountIds": ["111111111111"]}},
                    {"gcp": {"projectIds": ["shop-prod"]}, "region": "eu-west-1"},
                    {"vmware": {"vcenters": ["vc01.example.com"]}, "region": "eu-central-1"},
                ],
                "iamRole": "service-role/ssm-hybrid",
                "patchGroups": ["web", "db"],
            }),
        ),
        enrolling(
            "customer-b",
            "200000000002",
            &["us-east-1"],
            json!({
                "sources": [
                    {"azure": {"subscriptionIds": [SUB]}, "region": "us-east-1"},
                    {"aws": {"accountIds": ["222222222222"]}},
                ],
                "iamRole": "ssm-hybrid-b",
                "patchGroups": ["b-web"],
                "activationExpiry": "15m",
            }),
        ),
        // An account taking no enrollments is never a match.
        mk_account("customer-c", "300000000003", &["eu-west-1"], &[]),
    ]
}

fn source<'a>(kind: SourceKind, id: &'a str, region: Option<&'a str>) -> VerifiedSource<'a> {
    VerifiedSource { kind, id, region }
}

#[test]
fn each_source_is_placed_in_its_account_and_region() {
    let accounts = accounts();
    let upper = SUB.to_uppercase();
    let cases: &[(VerifiedSource<'_>, &str, &str, &str, &str, u64)] = &[
        (
            source(SourceKind::Aws, "111111111111", Some("eu-central-1")),
            "web",
            "customer-a",
            "eu-central-1",
            "service-role/ssm-hybrid",
            3_600,
        ),
        (
            source(SourceKind::Gcp, "shop-prod", None),
            "db",
            "customer-a",
            "eu-west-1",
            "service-role/ssm-hybrid",
            3_600,
        ),
        (
            source(SourceKind::Vmware, "VC01.example.com", None),
            "web",
            "customer-a",
            "eu-central-1",
            "service-role/ssm-hybrid",
            3_600,
        ),
        // IMDS may spell a subscription in capitals.
        (
            source(SourceKind::Azure, &upper, None),
            "b-web",
            "customer-b",
            "us-east-1",
            "ssm-hybrid-b",
            900,
        ),
        (
            source(SourceKind::Aws, "222222222222", Some("us-east-1")),
            "b-web",
            "customer-b",
            "us-east-1",
            "ssm-hybrid-b",
            900,
        ),
    ];
    for (source, group, account, region, role, expiry) in cases {
        let placement = place(&accounts, source, group)
            .unwrap_or_else(|r| panic!("{source:?} refused: {}", r.message));
        assert_eq!(placement.system_account, *account, "{source:?}");
        assert_eq!(placement.region, *region, "{source:?}");
        assert_eq!(placement.iam_role, *role, "{source:?}");
        assert_eq!(placement.activation_expiry_seconds, *expiry, "{source:?}");
    }
}

#[test]
fn refusals_name_what_to_change() {
    let mut accounts = accounts();
    accounts.push(enrolling(
        "customer-d",
        "400000000004",
        &["eu-west-1"],
        json!({"sources": [{"gcp": {"projectIds": ["shared-proj"]}, "region": "eu-west-1"}],
               "iamRole": "r", "patchGroups": ["web"]}),
    ));
    accounts.push(enrolling(
        "customer-e",
        "500000000005",
        &["eu-west-1"],
        json!({"sources": [{"gcp": {"projectIds": ["shared-proj"]}, "region": "eu-west-1"}],
               "iamRole": "r", "patchGroups": ["web"]}),
    ));
    let cases: &[(VerifiedSource<'_>, &str, MappingReason, &[&str])] = &[
        (
            source(SourceKind::Aws, "999999999999", Some("eu-west-1")),
            "web",
            MappingReason::UnknownSource,
            &["AWS account 999999999999", "spec.enrollment.sources"],
        ),
        // The same id under another kind is another source.
        (
            source(SourceKind::Gcp, "111111111111", None),
            "web",
            MappingReason::UnknownSource,
            &["Google Cloud project"],
        ),
        (
            source(SourceKind::Gcp, "shared-proj", None),
            "web",
            MappingReason::AmbiguousSource,
            &["customer-d, customer-e"],
        ),
        (
            source(SourceKind::Aws, "111111111111", Some("us-west-2")),
            "web",
            MappingReason::RegionNotManaged,
            &["us-west-2", "eu-west-1, eu-central-1"],
        ),
        (
            source(SourceKind::Aws, "111111111111", Some("eu-west-1")),
            "b-web",
            MappingReason::PatchGroupNotAllowed,
            &["\"b-web\"", "web, db"],
        ),
    ];
    for (source, group, reason, words) in cases {
        let refusal = place(&accounts, source, group).expect_err("refused");
        assert_eq!(refusal.reason, *reason, "{source:?}: {}", refusal.message);
        for word in *words {
            assert!(
                refusal.message.contains(word),
                "{:?} lacks {word}",
                refusal.message
            );
        }
    }
}

#[test]
fn a_suspended_or_deleted_account_takes_no_machine() {
    let mut accounts = accounts();
    accounts[0].spec.suspend = true;
    let refusal = place(
        &accounts,
        &source(SourceKind::Gcp, "shop-prod", None),
        "web",
    )
    .expect_err("refused");
    assert_eq!(refusal.reason, MappingReason::AccountUnavailable);
    assert_eq!(refusal.reason.as_str(), "AccountUnavailable");
}

#[test]
fn one_machine_has_one_name_and_sources_keep_equal_ids_apart() {
    let a = enrollment_name(SourceKind::Aws, "111111111111", "i-0123456789abcdef0");
    assert_eq!(
        a,
        enrollment_name(SourceKind::Aws, "111111111111", "i-0123456789abcdef0")
    );
    assert!(a.starts_with("aws-i-0123456789abcdef0-"), "{a}");
    assert_ne!(
        a,
        enrollment_name(SourceKind::Aws, "222222222222", "i-0123456789abcdef0")
    );
    assert_eq!(
        enrollment_name(
            SourceKind::Azure,
            "8D1F5C4E-0B9A-4C52-9E2F-1A2B3C4D5E6F",
            "4215F0A1-63B8-4C0D-9E5D-2B1A0C9D8E7F"
        ),
        enrollment_name(
            SourceKind::Azure,
            "8d1f5c4e-0b9a-4c52-9e2f-1a2b3c4d5e6f",
            "4215f0a1-63b8-4c0d-9e5d-2b1a0c9d8e7f"
        ),
        "ids in capitals are the same machine"
    );
    assert_ne!(
        enrollment_name(SourceKind::Gcp, "p", "42"),
        enrollment_name(SourceKind::Vmware, "p", "42")
    );
    // Any instance id gives a DNS-1123 subdomain of at most 63 characters.
    for id in [
        "4215F0A1-63B8-4C0D-9E5D-2B1A0C9D8E7F",
        "___",
        "",
        "x".repeat(300).as_str(),
        "a.b/c",
    ] {
        let name = enrollment_name(SourceKind::Vmware, "vc01", id);
        assert!(name.len() <= 63, "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}"
        );
        assert!(!name.ends_with('-') && !name.contains("--"), "{name}");
    }
}

#[test]
fn activations_carry_the_group_the_cluster_and_the_enrollment() {
    let tags = activation_tags(CLUSTER, "aws-i-1-00000000", "web");
    assert_eq!(tags.get("Patch Group").map(String::as_str), Some("web"));
    assert_eq!(
        tags.get("patchfleet.io/cluster").map(String::as_str),
        Some(CLUSTER)
    );
    assert_eq!(
        tags.get("patchfleet.io/enrollment").map(String::as_str),
        Some("aws-i-1-00000000")
    );
}

fn spec(group: &str) -> EnrollmentSpec {
    EnrollmentSpec {
        source: EnrollmentSourceRef {
            kind: SourceKind::Aws,
            id: "111111111111".into(),
            location: None,
        },
        instance_id: "i-1".into(),
        instance_name: None,
        system_account: "customer-a".into(),
        account_id: "100000000001".into(),
        region: "eu-west-1".into(),
        patch_group: group.into(),
        document_digest: "0".repeat(64),
    }
}

const NAME: &str = "aws-i-1-00000000";

fn node(group: &str, cluster: &str, enrollment: &str) -> ObservedNode {
    let mut tags: BTreeMap<String, String> = activation_tags(cluster, enrollment, group);
    tags.insert("Owner".into(), "someone".into());
    ObservedNode {
        id: "mi-0123456789abcdef0".into(),
        tags,
    }
}

fn activation(expires_at: i64) -> ObservedActivation {
    ObservedActivation {
        id: "a1b2".into(),
        expires_at,
    }
}

/// What the case is, the spec, what SSM shows, the account's allow-list, the step.
type Case<'a> = (
    &'a str,
    EnrollmentSpec,
    EnrollmentObserved,
    Option<&'a [String]>,
    EnrollmentAction,
);

#[test]
fn the_controller_waits_tags_expires_and_never_touches_a_foreign_node() {
    let allowed = vec!["web".to_owned(), "db".to_owned()];
    let now = 1_000;
    let cases: Vec<Case<'_>> = vec![
        (
            "registration pending: look again at the poll or the expiry, whichever is first",
            spec("web"),
            EnrollmentObserved {
                activation: Some(activation(now + 600)),
                node: None,
            },
            Some(&allowed),
            EnrollmentAction::AwaitRegistration {
                recheck_at: now + 30,
            },
        ),
        (
            "pending close to expiry",
            spec("web"),
            EnrollmentObserved {
                activation: Some(activation(now + 10)),
                node: None,
            },
            Some(&allowed),
            EnrollmentAction::AwaitRegistration {
                recheck_at: now + 10,
            },
        ),
        (
            "expired unused",
            spec("web"),
            EnrollmentObserved {
                activation: Some(activation(now)),
                node: None,
            },
            Some(&allowed),
            EnrollmentAction::DeleteExpiredActivation {
                activation_id: "a1b2".into(),
            },
        ),
        (
            "gone: expired earlier",
            spec("web"),
            EnrollmentObserved::default(),
            Some(&allowed),
            EnrollmentAction::Settled {
                phase: EnrollmentPhase::Expired,
            },
        ),
        (
            "registered and tagged as declared",
            spec("web"),
            EnrollmentObserved {
                activation: Some(activation(now - 5)),
                node: Some(node("web", CLUSTER, NAME)),
            },
            Some(&allowed),
            EnrollmentAction::Settled {
                phase: EnrollmentPhase::Registered,
            },
        ),
        (
            "someone changed the tag",
            spec("web"),
            EnrollmentObserved {
                activation: None,
                node: Some(node("other", CLUSTER, NAME)),
            },
            Some(&allowed),
            EnrollmentAction::TagNode {
                node_id: "mi-0123456789abcdef0".into(),
                patch_group: "web".into(),
            },
        ),
        (
            "the spec moved the node to db",
            spec("db"),
            EnrollmentObserved {
                activation: None,
                node: Some(node("web", CLUSTER, NAME)),
            },
            Some(&allowed),
            EnrollmentAction::TagNode {
                node_id: "mi-0123456789abcdef0".into(),
                patch_group: "db".into(),
            },
        ),
        (
            "the spec names a group off the allow-list",
            spec("finance"),
            EnrollmentObserved {
                activation: None,
                node: Some(node("web", CLUSTER, NAME)),
            },
            Some(&allowed),
            EnrollmentAction::GroupNotAllowed {
                patch_group: "finance".into(),
            },
        ),
        (
            "the account takes no enrollments any more",
            spec("db"),
            EnrollmentObserved {
                activation: None,
                node: Some(node("web", CLUSTER, NAME)),
            },
            None,
            EnrollmentAction::GroupNotAllowed {
                patch_group: "db".into(),
            },
        ),
        (
            "another cluster's node",
            spec("web"),
            EnrollmentObserved {
                activation: None,
                node: Some(node("other", "another-cluster", NAME)),
            },
            Some(&allowed),
            EnrollmentAction::NodeNotOurs {
                node_id: "mi-0123456789abcdef0".into(),
            },
        ),
        (
            "another enrollment's node",
            spec("web"),
            EnrollmentObserved {
                activation: None,
                node: Some(node("other", CLUSTER, "gcp-x-1")),
            },
            Some(&allowed),
            EnrollmentAction::NodeNotOurs {
                node_id: "mi-0123456789abcdef0".into(),
            },
        ),
    ];
    for (what, spec, observed, allowed, expected) in cases {
        assert_eq!(
            next_action(&spec, &observed, allowed, CLUSTER, NAME, now, 30),
            expected,
            "{what}"
        );
    }
}

#[test]
fn deletion_deregisters_only_the_enrollments_node() {
    let ours = EnrollmentObserved {
        activation: Some(activation(5)),
        node: Some(node("web", CLUSTER, NAME)),
    };
    let c = cleanup(&ours, CLUSTER, NAME);
    assert_eq!(c.deregister_node.as_deref(), Some("mi-0123456789abcdef0"));
    assert_eq!(c.delete_activation.as_deref(), Some("a1b2"));
    assert_eq!(c.foreign_node, None);

    let foreign = EnrollmentObserved {
        activation: None,
        node: Some(node("web", "another-cluster", NAME)),
    };
    let c = cleanup(&foreign, CLUSTER, NAME);
    assert_eq!(c.deregister_node, None);
    assert_eq!(c.foreign_node.as_deref(), Some("mi-0123456789abcdef0"));

    assert_eq!(
        cleanup(&EnrollmentObserved::default(), CLUSTER, NAME),
        Default::default()
    );
    // An empty cluster id owns nothing.
    assert_eq!(cleanup(&ours, "", NAME).deregister_node, None);
}
