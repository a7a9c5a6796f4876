//! STS through aws-sdk-sts and account isolation through assumed roles.

use ssm_sim::config::{AccountConfig, RoleConfig};
use ssm_sim::{Config, FaultSpec};

use crate::common::{KEY, REGION, code, creds, message, ssm, ssm_as, start, start_with, sts_as};

async fn assume(
    server: &ssm_sim::Server,
    role_arn: &str,
    external_id: Option<&str>,
) -> Result<
    aws_sdk_sts::operation::assume_role::AssumeRoleOutput,
    aws_sdk_sts::error::SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError>,
> {
    sts_as(server, creds(KEY, None))
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("patchfleet")
        .set_external_id(external_id.map(str::to_string))
        .send()
        .await
}

fn creds_of(
    out: &aws_sdk_sts::operation::assume_role::AssumeRoleOutput,
) -> aws_sdk_ssm::config::Credentials {
    let c = out.credentials().expect("credentials in AssumeRole reply");
    creds(c.access_key_id(), Some(c.session_token().to_string()))
}

#[tokio::test]
async fn caller_identity_of_a_long_term_key_is_the_default_account() {
    let server = start().await;
    let who = sts_as(&server, creds(KEY, None))
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity");
    assert_eq!(who.account(), Some("123456789012"));
}

#[tokio::test]
async fn assumed_role_works_in_its_own_account_only() {
    let server = start().await;
    let out = assume(&server, "arn:aws:iam::222222222222:role/patchfleet", None)
        .await
        .expect("AssumeRole");
    let user = out.assumed_role_user().expect("assumed role user");
    assert_eq!(
        user.arn(),
        "arn:aws:sts::222222222222:assumed-role/patchfleet/patchfleet"
    );
    let role_creds = creds_of(&out);
    let who = sts_as(&server, role_creds.clone())
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity with role credentials");
    assert_eq!(who.account(), Some("222222222222"));

    let in_role = ssm_as(&server, role_creds, REGION);
    let created = in_role
        .create_patch_baseline()
        .name("only-in-222")
        .send()
        .await
        .expect("create in the role's account");
    let id = created.baseline_id().expect("id").to_string();
    in_role
        .get_patch_baseline()
        .baseline_id(&id)
        .send()
        .await
        .expect("visible in 222");
    // The base account and another region of the role's account do not see it.
    assert_eq!(
        code(
            ssm(&server)
                .get_patch_baseline()
                .baseline_id(&id)
                .send()
                .await
        ),
        "DoesNotExistException"
    );
    let other_region = ssm_as(&server, creds_of(&out), "eu-west-1");
    assert_eq!(
        code(
            other_region
                .get_patch_baseline()
                .baseline_id(&id)
                .send()
                .await
        ),
        "DoesNotExistException"
    );
}

fn declared() -> Config {
    Config {
        accounts: vec![AccountConfig {
            id: "333333333333".into(),
            roles: vec![RoleConfig {
                name: "patchfleet".into(),
                external_id: Some("fleet-ext-1".into()),
            }],
        }],
        ..Config::default()
    }
}

#[tokio::test]
async fn declared_roles_require_the_role_and_its_external_id() {
    let server = start_with(declared()).await;
    let arn = "arn:aws:iam::333333333333:role/patchfleet";
    assume(&server, arn, Some("fleet-ext-1"))
        .await
        .expect("matching external id");
    assert_eq!(
        code(assume(&server, arn, Some("wrong-id")).await),
        "AccessDenied"
    );
    assert_eq!(code(assume(&server, arn, None).await), "AccessDenied");
    let denied = assume(
        &server,
        "arn:aws:iam::333333333333:role/other",
        Some("fleet-ext-1"),
    )
    .await;
    assert!(message(denied).contains("is not authorized to perform: sts:AssumeRole"));
    assert_eq!(
        code(assume(&server, "arn:aws:iam::444444444444:role/patchfleet", None).await),
        "AccessDenied"
    );
}

#[tokio::test]
async fn unreachable_account_denies_assume_role() {
    let config = Config {
        faults: FaultSpec {
            unreachable_accounts: vec!["555555555555".into()],
            ..FaultSpec::default()
        },
        ..Config::default()
    };
    let server = start_with(config).await;
    assert_eq!(
        code(assume(&server, "arn:aws:iam::555555555555:role/patchfleet", None).await),
        "AccessDenied"
    );
    assume(&server, "arn:aws:iam::666666666666:role/patchfleet", None)
        .await
        .expect("other accounts stay reachable");
}

#[tokio::test]
async fn assume_role_validates_its_inputs() {
    let server = start().await;
    let sts = sts_as(&server, creds(KEY, None));
    let short = sts
        .assume_role()
        .role_arn("arn:aws:iam::222222222222:role/x")
        .role_session_name("a")
        .send()
        .await;
    assert_eq!(code(short), "ValidationError");
    let long = sts
        .assume_role()
        .role_arn("arn:aws:iam::222222222222:role/x")
        .role_session_name("ok-session")
        .duration_seconds(60)
        .send()
        .await;
    assert_eq!(code(long), "ValidationError");
}
