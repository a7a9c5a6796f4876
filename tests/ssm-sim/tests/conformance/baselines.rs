//! Patch baselines, patch groups and default baselines through aws-sdk-ssm.

use aws_sdk_ssm::types::{
    OperatingSystem, PatchAction, PatchFilter, PatchFilterGroup, PatchFilterKey,
    PatchOrchestratorFilter, PatchRule, PatchRuleGroup,
};
use ssm_sim::{Config, Quotas};

use crate::common::{code, message, ssm, start, start_with};

fn rules(days: i32) -> PatchRuleGroup {
    PatchRuleGroup::builder()
        .patch_rules(
            PatchRule::builder()
                .patch_filter_group(
                    PatchFilterGroup::builder()
                        .patch_filters(
                            PatchFilter::builder()
                                .key(PatchFilterKey::Classification)
                                .values("Security")
                                .build()
                                .expect("filter"),
                        )
                        .build()
                        .expect("filter group"),
                )
                .approve_after_days(days)
                .build(),
        )
        .build()
        .expect("rule group")
}

fn filter(key: &str, values: &[&str]) -> PatchOrchestratorFilter {
    PatchOrchestratorFilter::builder()
        .key(key)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

async fn create(client: &aws_sdk_ssm::Client, name: &str, os: OperatingSystem) -> String {
    client
        .create_patch_baseline()
        .name(name)
        .operating_system(os)
        .send()
        .await
        .expect("CreatePatchBaseline")
        .baseline_id()
        .expect("BaselineId")
        .to_string()
}

#[tokio::test]
async fn baseline_lifecycle() {
    let server = start().await;
    let ssm = ssm(&server);
    let created = ssm
        .create_patch_baseline()
        .name("web-al2")
        .operating_system(OperatingSystem::AmazonLinux2)
        .description("web servers")
        .approval_rules(rules(7))
        .approved_patches("kernel-5.10.1")
        .rejected_patches_action(PatchAction::Block)
        .tags(
            aws_sdk_ssm::types::Tag::builder()
                .key("team")
                .value("web")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("CreatePatchBaseline");
    let id = created.baseline_id().expect("id").to_string();
    assert!(id.starts_with("pb-") && id.len() == 20, "{id}");

    let got = ssm
        .get_patch_baseline()
        .baseline_id(&id)
        .send()
        .await
        .expect("GetPatchBaseline");
    assert_eq!(got.name(), Some("web-al2"));
    assert_eq!(got.operating_system(), Some(&OperatingSystem::AmazonLinux2));
    assert_eq!(got.description(), Some("web servers"));
    assert_eq!(got.approved_patches(), ["kernel-5.10.1"]);
    assert_eq!(got.rejected_patches_action(), Some(&PatchAction::Block));
    let rule = &got.approval_rules().expect("rules").patch_rules()[0];
    assert_eq!(rule.approve_after_days(), Some(7));
    assert_eq!(
        rule.compliance_level(),
        Some(&aws_sdk_ssm::types::PatchComplianceLevel::Unspecified),
        "rules come back with their defaults"
    );
    assert_eq!(rule.enable_non_security(), Some(false));
    assert!(got.created_date().is_some());

    // A partial update keeps what it does not name.
    let updated = ssm
        .update_patch_baseline()
        .baseline_id(&id)
        .approval_rules(rules(3))
        .send()
        .await
        .expect("UpdatePatchBaseline");
    assert_eq!(updated.description(), Some("web servers"));
    assert_eq!(
        updated.approval_rules().expect("rules").patch_rules()[0].approve_after_days(),
        Some(3)
    );
    // Replace resets what it does not name.
    let replaced = ssm
        .update_patch_baseline()
        .baseline_id(&id)
        .name("web-al2-v2")
        .replace(true)
        .send()
        .await
        .expect("UpdatePatchBaseline Replace");
    assert_eq!(replaced.name(), Some("web-al2-v2"));
    assert_eq!(replaced.description(), None);
    assert!(replaced.approved_patches().is_empty());
    assert_eq!(
        replaced.rejected_patches_action(),
        Some(&PatchAction::AllowAsDependency)
    );

    let deleted = ssm
        .delete_patch_baseline()
        .baseline_id(&id)
        .send()
        .await
        .expect("DeletePatchBaseline");
    assert_eq!(deleted.baseline_id(), Some(id.as_str()));
    assert_eq!(
        code(ssm.get_patch_baseline().baseline_id(&id).send().await),
        "DoesNotExistException"
    );
    assert_eq!(
        code(
            ssm.update_patch_baseline()
                .baseline_id(&id)
                .name("x-y-z")
                .send()
                .await
        ),
        "DoesNotExistException"
    );
}

#[tokio::test]
async fn baseline_inputs_are_validated_like_aws() {
    let server = start().await;
    let ssm = ssm(&server);
    let bad_name = ssm
        .create_patch_baseline()
        .name("no spaces allowed")
        .send()
        .await;
    let msg = message(bad_name);
    assert!(
        msg.starts_with("1 validation error detected: Value 'no spaces allowed' at 'name'"),
        "{msg}"
    );
    assert_eq!(
        code(ssm.create_patch_baseline().name("ab").send().await),
        "ValidationException"
    );
    assert_eq!(
        code(ssm.create_patch_baseline().send().await),
        "ValidationException"
    );
    assert_eq!(
        code(
            ssm.create_patch_baseline()
                .name("days")
                .approval_rules(rules(361))
                .send()
                .await
        ),
        "ValidationException"
    );
    assert_eq!(
        code(
            ssm.create_patch_baseline()
                .name("bad-os")
                .operating_system(OperatingSystem::from("BEOS"))
                .send()
                .await
        ),
        "ValidationException"
    );
    assert_eq!(
        code(
            ssm.get_patch_baseline()
                .baseline_id("pb-short")
                .send()
                .await
        ),
        "ValidationException"
    );
    let two = ssm
        .create_patch_baseline()
        .name("x")
        .description("")
        .send()
        .await;
    assert!(message(two).starts_with("2 validation errors detected:"));
}

#[tokio::test]
async fn describe_filters_by_owner_name_and_os_and_pages() {
    let server = start().await;
    let ssm = ssm(&server);
    for i in 0..5 {
        create(&ssm, &format!("fleet-{i}"), OperatingSystem::Ubuntu).await;
    }
    create(&ssm, "other-win", OperatingSystem::Windows).await;

    let aws_owned = ssm
        .describe_patch_baselines()
        .filters(filter("OWNER", &["AWS"]))
        .max_results(100)
        .send()
        .await
        .expect("describe AWS");
    let ids = aws_owned.baseline_identities();
    assert!(
        ids.len() >= 15,
        "predefined baselines listed: {}",
        ids.len()
    );
    assert!(
        ids.iter()
            .all(|b| b.baseline_name().is_some_and(|n| n.starts_with("AWS-")))
    );
    let default_al2 = ids
        .iter()
        .find(|b| b.baseline_name() == Some("AWS-AmazonLinux2DefaultPatchBaseline"))
        .expect("AL2 default listed");
    assert!(default_al2.default_baseline());
    assert!(
        default_al2
            .baseline_id()
            .is_some_and(|id| id.starts_with("arn:aws:ssm:us-east-1:"))
    );

    let mine = ssm
        .describe_patch_baselines()
        .filters(filter("OWNER", &["Self"]))
        .send()
        .await
        .expect("describe Self");
    assert_eq!(mine.baseline_identities().len(), 6);

    let ubuntu_fleet = ssm
        .describe_patch_baselines()
        .filters(filter("OWNER", &["Self"]))
        .filters(filter("OPERATING_SYSTEM", &["UBUNTU"]))
        .filters(filter("NAME_PREFIX", &["fleet-"]))
        .send()
        .await
        .expect("describe filtered");
    assert_eq!(ubuntu_fleet.baseline_identities().len(), 5);

    // Paging with MaxResults 2 visits every own baseline exactly once.
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = ssm
            .describe_patch_baselines()
            .filters(filter("OWNER", &["Self"]))
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .expect("page");
        assert!(page.baseline_identities().len() <= 2);
        names.extend(
            page.baseline_identities()
                .iter()
                .filter_map(|b| b.baseline_name().map(str::to_string)),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "fleet-0",
            "fleet-1",
            "fleet-2",
            "fleet-3",
            "fleet-4",
            "other-win"
        ]
    );

    // The paginator of the SDK follows the tokens too.
    let all: Vec<_> = ssm
        .describe_patch_baselines()
        .max_results(7)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginate");
    assert_eq!(all.len(), ids.len() + 6);

    assert_eq!(
        code(ssm.describe_patch_baselines().max_results(0).send().await),
        "ValidationException"
    );
    assert_eq!(
        code(ssm.describe_patch_baselines().max_results(101).send().await),
        "ValidationException"
    );
    assert_eq!(
        code(
            ssm.describe_patch_baselines()
                .next_token("garbage!")
                .send()
                .await
        ),
        "InvalidNextToken"
    );
}

#[tokio::test]
async fn quota_and_client_token() {
    let config = Config {
        quotas: Quotas {
            patch_baselines: 2,
            ..Quotas::default()
        },
        ..Config::default()
    };
    let server = start_with(config).await;
    let ssm = ssm(&server);
    let first = ssm
        .create_patch_baseline()
        .name("idem")
        .client_token("token-1")
        .send()
        .await
        .expect("create");
    let again = ssm
        .create_patch_baseline()
        .name("idem")
        .client_token("token-1")
        .send()
        .await
        .expect("retry with the same token");
    assert_eq!(
        first.baseline_id(),
        again.baseline_id(),
        "a retry creates nothing new"
    );
    assert_eq!(
        code(
            ssm.create_patch_baseline()
                .name("other")
                .client_token("token-1")
                .send()
                .await
        ),
        "IdempotentParameterMismatch"
    );
    create(&ssm, "second", OperatingSystem::Windows).await;
    assert_eq!(
        code(ssm.create_patch_baseline().name("third").send().await),
        "ResourceLimitExceededException"
    );
}

#[tokio::test]
async fn patch_groups_hold_one_baseline_per_os() {
    let server = start().await;
    let ssm = ssm(&server);
    let win = create(&ssm, "win", OperatingSystem::Windows).await;
    let al2 = create(&ssm, "al2", OperatingSystem::AmazonLinux2).await;
    let al2b = create(&ssm, "al2b", OperatingSystem::AmazonLinux2).await;
    for id in [&win, &al2] {
        let out = ssm
            .register_patch_baseline_for_patch_group()
            .baseline_id(id)
            .patch_group("prod")
            .send()
            .await
            .expect("register");
        assert_eq!(out.patch_group(), Some("prod"));
    }
    assert_eq!(
        code(
            ssm.register_patch_baseline_for_patch_group()
                .baseline_id(&al2b)
                .patch_group("prod")
                .send()
                .await
        ),
        "AlreadyExistsException"
    );
    assert_eq!(
        code(
            ssm.register_patch_baseline_for_patch_group()
                .baseline_id("pb-0123456789abcdef0")
                .patch_group("prod")
                .send()
                .await
        ),
        "DoesNotExistException"
    );
    let got = ssm
        .get_patch_baseline_for_patch_group()
        .patch_group("prod")
        .operating_system(OperatingSystem::AmazonLinux2)
        .send()
        .await
        .expect("get for group");
    assert_eq!(got.baseline_id(), Some(al2.as_str()));
    let win_got = ssm
        .get_patch_baseline_for_patch_group()
        .patch_group("prod")
        .send()
        .await
        .expect("WINDOWS is the default OS");
    assert_eq!(win_got.baseline_id(), Some(win.as_str()));

    let b = ssm
        .get_patch_baseline()
        .baseline_id(&al2)
        .send()
        .await
        .expect("get");
    assert_eq!(b.patch_groups(), ["prod"]);
    assert_eq!(
        code(ssm.delete_patch_baseline().baseline_id(&al2).send().await),
        "ResourceInUseException"
    );

    let groups = ssm
        .describe_patch_groups()
        .send()
        .await
        .expect("describe groups");
    assert_eq!(groups.mappings().len(), 2);
    let linux_only = ssm
        .describe_patch_groups()
        .filters(filter("OPERATING_SYSTEM", &["AMAZON_LINUX_2"]))
        .send()
        .await
        .expect("describe groups by OS");
    assert_eq!(linux_only.mappings().len(), 1);

    ssm.deregister_patch_baseline_for_patch_group()
        .baseline_id(&al2)
        .patch_group("prod")
        .send()
        .await
        .expect("deregister");
    assert_eq!(
        code(
            ssm.deregister_patch_baseline_for_patch_group()
                .baseline_id(&al2)
                .patch_group("prod")
                .send()
                .await
        ),
        "InvalidResourceId"
    );
    let fallback = ssm
        .get_patch_baseline_for_patch_group()
        .patch_group("prod")
        .operating_system(OperatingSystem::AmazonLinux2)
        .send()
        .await
        .expect("falls back");
    let default = ssm
        .get_default_patch_baseline()
        .operating_system(OperatingSystem::AmazonLinux2)
        .send()
        .await
        .expect("default");
    assert_eq!(fallback.baseline_id(), default.baseline_id());
    ssm.delete_patch_baseline()
        .baseline_id(&al2)
        .send()
        .await
        .expect("delete once free");
}

#[tokio::test]
async fn patch_groups_per_baseline_quota() {
    let config = Config {
        quotas: Quotas {
            patch_groups_per_baseline: 2,
            ..Quotas::default()
        },
        ..Config::default()
    };
    let server = start_with(config).await;
    let ssm = ssm(&server);
    let id = create(&ssm, "busy", OperatingSystem::Ubuntu).await;
    for g in ["a", "b"] {
        ssm.register_patch_baseline_for_patch_group()
            .baseline_id(&id)
            .patch_group(g)
            .send()
            .await
            .expect("register");
    }
    assert_eq!(
        code(
            ssm.register_patch_baseline_for_patch_group()
                .baseline_id(&id)
                .patch_group("c")
                .send()
                .await
        ),
        "ResourceLimitExceededException"
    );
}

#[tokio::test]
async fn default_baseline_can_be_replaced_and_is_protected() {
    let server = start().await;
    let ssm = ssm(&server);
    let before = ssm
        .get_default_patch_baseline()
        .send()
        .await
        .expect("default WINDOWS");
    assert_eq!(before.operating_system(), Some(&OperatingSystem::Windows));
    let aws_default = before.baseline_id().expect("id").to_string();
    assert!(aws_default.contains(":patchbaseline/pb-"), "{aws_default}");
    let predefined = ssm
        .get_patch_baseline()
        .baseline_id(&aws_default)
        .send()
        .await
        .expect("get predefined");
    assert_eq!(predefined.name(), Some("AWS-DefaultPatchBaseline"));

    let mine = create(&ssm, "my-default", OperatingSystem::Windows).await;
    ssm.register_default_patch_baseline()
        .baseline_id(&mine)
        .send()
        .await
        .expect("register default");
    let after = ssm
        .get_default_patch_baseline()
        .send()
        .await
        .expect("default");
    assert_eq!(after.baseline_id(), Some(mine.as_str()));
    assert_eq!(
        code(ssm.delete_patch_baseline().baseline_id(&mine).send().await),
        "ResourceInUseException"
    );
    let listed = ssm
        .describe_patch_baselines()
        .filters(filter("NAME_PREFIX", &["my-default"]))
        .send()
        .await
        .expect("describe");
    assert!(listed.baseline_identities()[0].default_baseline());
    ssm.register_default_patch_baseline()
        .baseline_id(&aws_default)
        .send()
        .await
        .expect("restore");
    ssm.delete_patch_baseline()
        .baseline_id(&mine)
        .send()
        .await
        .expect("delete");
    assert_eq!(
        code(
            ssm.register_default_patch_baseline()
                .baseline_id(&mine)
                .send()
                .await
        ),
        "DoesNotExistException"
    );
}
