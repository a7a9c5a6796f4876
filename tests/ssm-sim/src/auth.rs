//! Who is calling: access key → account, and region from the SigV4 credential scope.
//!
//! Signatures are not verified: the simulator trusts the `Authorization` header's
//! `Credential=AKID/DATE/REGION/SERVICE/aws4_request` scope. Temporary keys issued
//! by AssumeRole carry their account (`ASIA` + 12-digit account + serial), so they
//! keep working across `/_sim/reset`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderMap;

use crate::config::Config;
use crate::error::ApiError;

/// The SigV4 credential scope of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub access_key: String,
    pub region: String,
    pub service: String,
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ssm/aws4_request, ...`.
pub fn scope(headers: &HeaderMap) -> Option<Scope> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let cred = auth
        .split([',', ' '])
        .find_map(|part| part.trim().strip_prefix("Credential="))?;
    let mut parts = cred.split('/');
    let access_key = parts.next()?.to_string();
    let _date = parts.next()?;
    let region = parts.next()?.to_string();
    let service = parts.next()?.to_string();
    if access_key.is_empty() || region.is_empty() {
        return None;
    }
    Some(Scope {
        access_key,
        region,
        service,
    })
}

pub fn missing_auth() -> ApiError {
    ApiError::new(
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )
}

/// The resolved identity of a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key: String,
    pub account: String,
    pub region: String,
    pub arn: String,
    pub user_id: String,
}

/// A session issued by AssumeRole.
#[derive(Debug, Clone)]
pub struct Session {
    pub account: String,
    pub arn: String,
    pub user_id: String,
}

#[derive(Debug, Default)]
pub struct Sessions {
    issued: RwLock<HashMap<String, Session>>,
    serial: AtomicU64,
}

impl Sessions {
    /// A new temporary access key id bound to `account`.
    pub fn issue(&self, account: &str, session: Session) -> String {
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        let key = format!("ASIA{account}{:08X}", crate::clock::splitmix64(n) as u32);
        self.issued
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.clone(), session);
        key
    }

    pub fn resolve(&self, config: &Config, scope: &Scope) -> Caller {
        let key = &scope.access_key;
        if let Some(s) = self
            .issued
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
        {
            return Caller {
                access_key: key.clone(),
                account: s.account.clone(),
                region: scope.region.clone(),
                arn: s.arn.clone(),
                user_id: s.user_id.clone(),
            };
        }
        let account = temporary_key_account(key)
            .or_else(|| config.access_keys.get(key).cloned())
            .unwrap_or_else(|| config.default_account.clone());
        Caller {
            access_key: key.clone(),
            arn: format!("arn:aws:iam::{account}:user/ssm-sim"),
            user_id: format!(
                "AIDA{}",
                &key.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(16)
                    .collect::<String>()
            ),
            account,
            region: scope.region.clone(),
        }
    }
}

fn temporary_key_account(key: &str) -> Option<String> {
    let rest = key.strip_prefix("ASIA")?;
    let account = rest.get(..12)?;
    (rest.len() == 20 && account.bytes().all(|b| b.is_ascii_digit())).then(|| account.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", auth.parse().expect("header value"));
        h
    }

    #[test]
    fn reads_the_credential_scope() {
        let h = headers(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240309/eu-west-1/ssm/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
        );
        let s = scope(&h).expect("scope");
        assert_eq!(s.access_key, "AKIDEXAMPLE");
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.service, "ssm");
        assert_eq!(scope(&headers("Bearer x")), None);
    }

    #[test]
    fn keys_map_to_accounts() {
        let mut config = Config::default();
        config
            .access_keys
            .insert("AKIAHUB".into(), "111111111111".into());
        let sessions = Sessions::default();
        let scope_of = |k: &str| Scope {
            access_key: k.into(),
            region: "us-east-1".into(),
            service: "ssm".into(),
        };
        assert_eq!(
            sessions.resolve(&config, &scope_of("AKIAHUB")).account,
            "111111111111"
        );
        assert_eq!(
            sessions.resolve(&config, &scope_of("AKIAOTHER")).account,
            "123456789012"
        );
        let key = sessions.issue(
            "222222222222",
            Session {
                account: "222222222222".into(),
                arn: "arn:aws:sts::222222222222:assumed-role/r/s".into(),
                user_id: "AROAX:s".into(),
            },
        );
        assert_eq!(
            sessions.resolve(&config, &scope_of(&key)).account,
            "222222222222"
        );
        // A temporary key survives a restart of the session table.
        let fresh = Sessions::default();
        assert_eq!(
            fresh.resolve(&config, &scope_of(&key)).account,
            "222222222222"
        );
    }
}
