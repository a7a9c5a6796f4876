//! STS: AssumeRole and GetCallerIdentity.
//! https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html

use std::collections::HashMap;

use crate::Sim;
use crate::auth::{Caller, Session};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::protocol::query::escape;
use crate::validate::{Str, Violations};

/// Runs one STS action; returns the inner XML of `<{Action}Result>`.
pub fn dispatch(
    sim: &Sim,
    caller: &Caller,
    action: &str,
    params: &HashMap<String, String>,
) -> ApiResult<String> {
    match action {
        "GetCallerIdentity" => Ok(format!(
            "    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n",
            escape(&caller.arn),
            escape(&caller.user_id),
            escape(&caller.account)
        )),
        "AssumeRole" => assume_role(sim, caller, params),
        other => Err(ApiError::new(
            "InvalidAction",
            format!("Could not find operation {other} for version 2011-06-15"),
        )),
    }
}

fn validation_error(e: ApiError) -> ApiError {
    // The query protocol names it ValidationError, not ValidationException.
    ApiError::new("ValidationError", e.message)
}

fn assume_role(sim: &Sim, caller: &Caller, p: &HashMap<String, String>) -> ApiResult<String> {
    let mut v = Violations::default();
    let role_arn = p.get("RoleArn").cloned();
    let session_name = p.get("RoleSessionName").cloned();
    match &role_arn {
        Some(a) => v.check_str("roleArn", a, Str::len(20, 2048)),
        None => v.push(None, "roleArn", "Member must not be null"),
    }
    match &session_name {
        Some(s) => v.check_str("roleSessionName", s, Str::pat(2, 64, r"^[\w+=,.@-]*$")),
        None => v.push(None, "roleSessionName", "Member must not be null"),
    }
    let external_id = p.get("ExternalId").cloned();
    if let Some(e) = &external_id {
        v.check_str("externalId", e, Str::pat(2, 1224, r"^[\w+=,.@:/\-]*$"));
    }
    let duration = match p.get("DurationSeconds") {
        Some(d) => {
            let n: i64 = d.parse().map_err(|_| {
                ApiError::new("ValidationError", format!("Invalid DurationSeconds: {d}"))
            })?;
            v.check_range("durationSeconds", n, 900, 43200);
            n
        }
        None => 3600,
    };
    v.into_result().map_err(validation_error)?;
    let role_arn = role_arn.unwrap_or_default();
    let session_name = session_name.unwrap_or_default();

    let denied = || {
        ApiError::new(
            "AccessDenied",
            format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                caller.arn
            ),
        )
        .with_status(403)
    };
    let (account, role_path) = parse_role_arn(&role_arn)
        .ok_or_else(|| ApiError::new("ValidationError", format!("{role_arn} is invalid")))?;
    if sim.faults.is_unreachable(&account) {
        return Err(denied());
    }
    if sim.config.enforces_roles() {
        let role = sim.config.role(&account, &role_path).ok_or_else(denied)?;
        if role.external_id.is_some() && role.external_id != external_id {
            return Err(denied());
        }
    }
    let role_name = role_path
        .rsplit('/')
        .next()
        .unwrap_or(&role_path)
        .to_string();
    let role_id = format!("AROA{}", clock::token(17).to_uppercase());
    let arn = format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}");
    let user_id = format!("{role_id}:{session_name}");
    let access_key = sim.sessions.issue(
        &account,
        Session {
            account: account.clone(),
            arn: arn.clone(),
            user_id: user_id.clone(),
        },
    );
    // Clients judge expiry by their own (wall) clock, and the simulator's sessions never
    // expire, so the simulated clock does not apply here.
    let expiration = clock::iso8601(clock::wall() + duration as f64);
    Ok(format!(
        "    <Credentials>\n      <AccessKeyId>{access_key}</AccessKeyId>\n      \
         <SecretAccessKey>{}</SecretAccessKey>\n      <SessionToken>{}</SessionToken>\n      \
         <Expiration>{expiration}</Expiration>\n    </Credentials>\n    <AssumedRoleUser>\n      \
         <AssumedRoleId>{}</AssumedRoleId>\n      <Arn>{}</Arn>\n    </AssumedRoleUser>\n    \
         <PackedPolicySize>0</PackedPolicySize>\n",
        clock::token(40),
        clock::token(120),
        escape(&user_id),
        escape(&arn)
    ))
}

/// `arn:aws:iam::ACCOUNT:role/PATH/NAME` → (ACCOUNT, "PATH/NAME").
fn parse_role_arn(arn: &str) -> Option<(String, String)> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let _partition = parts.next()?;
    let service = parts.next()?;
    let _region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    let role = resource.strip_prefix("role/")?;
    (service == "iam"
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !role.is_empty())
    .then(|| (account.to_string(), role.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_role_arns() {
        assert_eq!(
            parse_role_arn("arn:aws:iam::111111111111:role/ops/patchfleet"),
            Some(("111111111111".into(), "ops/patchfleet".into()))
        );
        assert_eq!(parse_role_arn("arn:aws:iam::1111:role/x"), None);
        assert_eq!(parse_role_arn("arn:aws:s3:::bucket"), None);
    }
}
