//! Hybrid activations through aws-sdk-rust: CreateActivation's validation and defaults,
//! DescribeActivations' filters and paging, expiry on the simulated clock, DeleteActivation,
//! and account isolation.
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateActivation.html
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeActivations.html
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteActivation.html

use std::collections::BTreeSet;

use aws_sdk_ssm::primitives::DateTime;
use aws_sdk_ssm::types::{
    Activation, DescribeActivationsFilter, DescribeActivationsFilterKeys as Key,
    RegistrationMetadataItem, Tag,
};
use serde_json::json;
use ssm_sim::Config;

use crate::common::{REGION, code, control, creds, ssm, ssm_as, start, start_with};

pub const OTHER_KEY: &str = "AKIAOTHEREXAMPLE0002";
pub const OTHER_ACCOUNT: &str = "222222222222";

pub fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().expect("tag")
}

pub fn now(server: &ssm_sim::Server) -> f64 {
    server.sim().clock.now()
}

pub async fn advance(server: &ssm_sim::Server, seconds: f64) {
    let body = json!({ "seconds": seconds }).to_string();
    let (status, reply) = control(server, "POST", "/_sim/clock/advance", &body).await;
    assert_eq!(status, 200, "{reply}");
}

/// Creates an activation with `IamRole` only; answers (id, code).
pub async fn create(ssm: &aws_sdk_ssm::Client, role: &str) -> (String, String) {
    let out = ssm
        .create_activation()
        .iam_role(role)
        .send()
        .await
        .expect("CreateActivation");
    (
        out.activation_id().expect("id").to_owned(),
        out.activation_code().expect("code").to_owned(),
    )
}

pub async fn describe(ssm: &aws_sdk_ssm::Client, id: &str) -> Option<Activation> {
    ssm.describe_activations()
        .filters(filter(Key::ActivationIds, &[id]))
        .send()
        .await
        .expect("DescribeActivations")
        .activation_list()
        .first()
        .cloned()
}

fn filter(key: Key, values: &[&str]) -> DescribeActivationsFilter {
    let mut f = DescribeActivationsFilter::builder().filter_key(key);
    for v in values {
        f = f.filter_values(*v);
    }
    f.build()
}

#[tokio::test]
async fn create_activation_defaults_to_one_registration_for_24_hours() {
    let server = start().await;
    let ssm = ssm(&server);
    let before = now(&server);
    let (id, code) = create(&ssm, "SSMServiceRole").await;
    assert!(
        ssm_sim::validate::matches(
            r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
            &id
        ),
        "{id}"
    );
    assert_eq!(code.len(), 20, "{code}");

    let a = describe(&ssm, &id).await.expect("described");
    assert_eq!(a.iam_role(), Some("SSMServiceRole"));
    // "The default value is 1."
    assert_eq!(a.registration_limit(), Some(1));
    assert_eq!(a.registrations_count(), Some(0));
    assert!(!a.expired());
    assert_eq!(a.description(), None);
    assert_eq!(a.default_instance_name(), None);
    assert!(a.tags().is_empty());
    // "If you don't provide an expiration date, the activation code expires in 24 hours."
    let created = a.created_date().expect("CreatedDate").as_secs_f64();
    let expires = a.expiration_date().expect("ExpirationDate").as_secs_f64();
    assert!(created >= before.floor() && created <= now(&server) + 1.0);
    assert!(
        (expires - created - 86_400.0).abs() < 1.0,
        "{expires} {created}"
    );
}

#[tokio::test]
async fn create_activation_keeps_what_it_was_given() {
    let server = start().await;
    let ssm = ssm(&server);
    let expires = DateTime::from_secs((now(&server) + 7.0 * 86_400.0) as i64);
    let out = ssm
        .create_activation()
        .iam_role("service-role/HybridRole")
        .description("enrollment of vm-17")
        .default_instance_name("vm-17")
        .registration_limit(5)
        .expiration_date(expires)
        .tags(tag("Patch Group", "early"))
        .tags(tag("cloud", "gcp"))
        .registration_metadata(
            RegistrationMetadataItem::builder()
                .key("enrollment")
                .value("e-1")
                .build()
                .expect("item"),
        )
        .send()
        .await
        .expect("CreateActivation");
    let a = describe(&ssm, out.activation_id().expect("id"))
        .await
        .expect("described");
    assert_eq!(a.description(), Some("enrollment of vm-17"));
    assert_eq!(a.default_instance_name(), Some("vm-17"));
    assert_eq!(a.iam_role(), Some("service-role/HybridRole"));
    assert_eq!(a.registration_limit(), Some(5));
    assert_eq!(a.expiration_date(), Some(&expires));
    let tags: Vec<_> = a.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags, [("Patch Group", "early"), ("cloud", "gcp")]);
}

#[tokio::test]
async fn create_activation_is_validated_like_aws() {
    let server = start().await;
    let ssm = ssm(&server);
    let t = now(&server);
    let at = |secs: f64| DateTime::from_secs(secs as i64);
    let base = || ssm.create_activation().iam_role("SSMServiceRole");

    // Member constraints: ValidationException with AWS's message format.
    let missing_role = ssm.create_activation().send().await;
    assert_eq!(code(missing_role), "ValidationException");
    for limit in [0, 1001] {
        assert_eq!(
            code(base().registration_limit(limit).send().await),
            "ValidationException",
            "RegistrationLimit {limit} (1 to 1000)"
        );
    }
    assert_eq!(
        code(
            ssm.create_activation()
                .iam_role("r".repeat(65))
                .send()
                .await
        ),
        "ValidationException"
    );
    assert_eq!(
        code(base().description("d".repeat(257)).send().await),
        "ValidationException"
    );
    let bad_name = base().default_instance_name("vm#1").send().await;
    let err = bad_name.expect_err("pattern");
    assert!(
        format!("{err:?}").contains("at 'defaultInstanceName' failed to satisfy constraint"),
        "{err:?}"
    );
    assert_eq!(
        code(base().tags(tag("bad{key}", "v")).send().await),
        "ValidationException"
    );
    let many: Vec<Tag> = (0..1001).map(|i| tag(&format!("k{i}"), "v")).collect();
    assert_eq!(
        code(base().set_tags(Some(many)).send().await),
        "ValidationException",
        "TagList: at most 1000"
    );
    let blank = RegistrationMetadataItem::builder()
        .key("   ")
        .value("v")
        .build()
        .expect("item");
    assert_eq!(
        code(base().registration_metadata(blank).send().await),
        "ValidationException"
    );

    // "You can specify a date up to 30 days in advance": the past and beyond are
    // InvalidParameters, CreateActivation's documented error.
    assert_eq!(
        code(base().expiration_date(at(t - 60.0)).send().await),
        "InvalidParameters"
    );
    assert_eq!(
        code(base().expiration_date(at(t + 31.0 * 86_400.0)).send().await),
        "InvalidParameters"
    );
    base()
        .expiration_date(at(t + 30.0 * 86_400.0 - 60.0))
        .send()
        .await
        .expect("just under 30 days ahead");
    let listed = ssm.describe_activations().send().await.expect("describe");
    assert_eq!(
        listed.activation_list().len(),
        1,
        "refused calls created nothing"
    );
}

#[tokio::test]
async fn describe_activations_pages_and_filters() {
    let server = start().await;
    let ssm = ssm(&server);
    let mut ids = BTreeSet::new();
    for (name, role) in [
        ("web", "RoleA"),
        ("web", "RoleB"),
        ("db", "RoleA"),
        ("db", "RoleB"),
        ("batch", "RoleA"),
    ] {
        let out = ssm
            .create_activation()
            .iam_role(role)
            .default_instance_name(name)
            .send()
            .await
            .expect("create");
        ids.insert(out.activation_id().expect("id").to_owned());
    }

    // MaxResults 1-50 with NextToken until the list is done.
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let out = ssm
            .describe_activations()
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .expect("page");
        pages += 1;
        assert!(out.activation_list().len() <= 2);
        seen.extend(
            out.activation_list()
                .iter()
                .filter_map(|a| a.activation_id().map(str::to_owned)),
        );
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 5, "no activation twice");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), ids);
    for max in [0, 51] {
        assert_eq!(
            code(ssm.describe_activations().max_results(max).send().await),
            "ValidationException"
        );
    }
    assert_eq!(
        code(
            ssm.describe_activations()
                .next_token("not-a-token")
                .send()
                .await
        ),
        "InvalidNextToken"
    );

    let count = |filters: Vec<DescribeActivationsFilter>| {
        let req = ssm.describe_activations().set_filters(Some(filters));
        async move { req.send().await.expect("filtered").activation_list().len() }
    };
    let two: Vec<&str> = ids.iter().take(2).map(String::as_str).collect();
    assert_eq!(count(vec![filter(Key::ActivationIds, &two)]).await, 2);
    assert_eq!(
        count(vec![filter(Key::DefaultInstanceName, &["web"])]).await,
        2
    );
    assert_eq!(count(vec![filter(Key::IamRole, &["RoleA"])]).await, 3);
    // Filters are ANDed, values ORed.
    assert_eq!(
        count(vec![
            filter(Key::IamRole, &["RoleA"]),
            filter(Key::DefaultInstanceName, &["web", "batch"]),
        ])
        .await,
        2
    );
    assert_eq!(
        count(vec![filter(
            Key::ActivationIds,
            &["00000000-0000-4000-8000-000000000000"]
        )])
        .await,
        0
    );
    // FilterKey is an enum (ValidationException); a filter without one is InvalidFilter.
    let unknown = ssm
        .describe_activations()
        .filters(filter(Key::from("Name"), &["web"]))
        .send()
        .await;
    assert_eq!(code(unknown), "ValidationException");
    let keyless = ssm
        .describe_activations()
        .filters(
            DescribeActivationsFilter::builder()
                .filter_values("web")
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(keyless), "InvalidFilter");
}

#[tokio::test]
async fn an_activation_expires_on_the_simulated_clock() {
    let server = start().await;
    let ssm = ssm(&server);
    let in_an_hour = DateTime::from_secs((now(&server) + 3600.0) as i64);
    let id = ssm
        .create_activation()
        .iam_role("SSMServiceRole")
        .expiration_date(in_an_hour)
        .send()
        .await
        .expect("create")
        .activation_id()
        .expect("id")
        .to_owned();
    let (default, _) = create(&ssm, "SSMServiceRole").await;
    assert!(!describe(&ssm, &id).await.expect("listed").expired());

    advance(&server, 2.0 * 3600.0).await;
    let a = describe(&ssm, &id).await.expect("still listed");
    assert!(a.expired(), "Expired once the expiration date passed");
    assert!(!describe(&ssm, &default).await.expect("listed").expired());
    advance(&server, 23.0 * 3600.0).await;
    assert!(
        describe(&ssm, &default).await.expect("listed").expired(),
        "the default expiry is 24 hours"
    );
}

#[tokio::test]
async fn delete_activation_answers_documented_errors() {
    let server = start().await;
    let ssm = ssm(&server);
    let (id, _) = create(&ssm, "SSMServiceRole").await;
    ssm.delete_activation()
        .activation_id(&id)
        .send()
        .await
        .expect("DeleteActivation");
    assert!(describe(&ssm, &id).await.is_none(), "gone from the list");
    // "The activation might have been deleted."
    let again = ssm.delete_activation().activation_id(&id).send().await;
    assert_eq!(code(again), "InvalidActivation");
    let never = ssm
        .delete_activation()
        .activation_id("00000000-0000-4000-8000-000000000000")
        .send()
        .await;
    assert_eq!(code(never), "InvalidActivation");
    // The documented pattern (lowercase UUID) is checked first, like every member.
    for malformed in ["act-1", "5743558D-563B-4457-8682-D16C3EXAMPLE"] {
        let r = ssm
            .delete_activation()
            .activation_id(malformed)
            .send()
            .await;
        assert_eq!(code(r), "ValidationException", "{malformed}");
    }
    assert_eq!(
        code(ssm.delete_activation().send().await),
        "ValidationException"
    );
}

#[tokio::test]
async fn activations_belong_to_one_account_and_region() {
    let server = start_with(Config {
        access_keys: [(OTHER_KEY.to_string(), OTHER_ACCOUNT.to_string())].into(),
        ..Config::default()
    })
    .await;
    let mine = ssm(&server);
    let (id, _) = create(&mine, "SSMServiceRole").await;
    let other = ssm_as(&server, creds(OTHER_KEY, None), REGION);
    assert!(describe(&other, &id).await.is_none());
    let all = other.describe_activations().send().await.expect("describe");
    assert!(all.activation_list().is_empty());
    let r = other.delete_activation().activation_id(&id).send().await;
    assert_eq!(code(r), "InvalidActivation");
    let elsewhere = ssm_as(&server, creds(crate::common::KEY, None), "eu-west-1");
    assert!(describe(&elsewhere, &id).await.is_none());
    assert!(describe(&mine, &id).await.is_some(), "untouched");
}
