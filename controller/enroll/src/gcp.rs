//! Google Cloud: the instance identity token.
//!
//! <https://cloud.google.com/compute/docs/instances/verifying-instance-identity>: a VM
//! asks its metadata server for
//! `/computeMetadata/v1/instance/service-accounts/default/identity?audience=AUD&format=full`
//! and gets a JWT signed by Google with RS256, which expires within an hour. Its claims:
//! `iss` `https://accounts.google.com` (we also accept `accounts.google.com`), `aud`
//! the requested audience, `iat`, `exp`, `sub`, `azp`, and with `format=full`
//! `google.compute_engine.{project_id, project_number, zone, instance_id,
//! instance_name, instance_creation_timestamp}`. The key is the one with the token's
//! `kid` among Google's public keys (JWKS at
//! <https://www.googleapis.com/oauth2/v3/certs>, fetched by the server).

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::jwt::{self, Audience, TokenKind};
use crate::refusal::shown;
use crate::{Identity, Reason, Refusal, Source, TrustError, digest_hex};

/// The issuers Google documents for instance identity tokens.
pub const ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

const KIND: TokenKind = TokenKind {
    what: "the Google Cloud instance identity token",
    fetch: "fetch a new one from the metadata server \
            (instance/service-accounts/default/identity?audience=<this server's audience>&format=full)",
};

/// Google's public keys for instance identity tokens, by key id (`kid`).
#[derive(Clone)]
pub struct GcpKeys {
    keys: Vec<(String, DecodingKey)>,
}

impl std::fmt::Debug for GcpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpKeys")
            .field("kids", &self.kids())
            .finish()
    }
}

impl GcpKeys {
    /// From the JWKS document (JSON) Google publishes at
    /// <https://www.googleapis.com/oauth2/v3/certs>.
    pub fn from_json(jwks: &[u8]) -> Result<GcpKeys, TrustError> {
        let set: JwkSet = serde_json::from_slice(jwks)
            .map_err(|e| TrustError(format!("Google's JWKS is not a JSON Web Key Set ({e})")))?;
        GcpKeys::from_jwk_set(&set)
    }

    /// From a parsed key set: its RSA keys with a `kid` (others are skipped).
    pub fn from_jwk_set(set: &JwkSet) -> Result<GcpKeys, TrustError> {
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let (Some(kid), AlgorithmParameters::RSA(_)) = (&jwk.common.key_id, &jwk.algorithm)
            else {
                continue;
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| {
                TrustError(format!(
                    "Google's key {} is not a usable RSA key ({e})",
                    shown(kid)
                ))
            })?;
            keys.push((kid.clone(), key));
        }
        if keys.is_empty() {
            return Err(TrustError(
                "Google's JWKS has no RSA key with a kid: fetch https://www.googleapis.com/oauth2/v3/certs again".into(),
            ));
        }
        Ok(GcpKeys { keys })
    }

    /// The key ids held.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|(kid, _)| kid.as_str()).collect()
    }

    fn find(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    }
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    aud: Option<Audience>,
    iat: Option<i64>,
    exp: Option<i64>,
    nbf: Option<i64>,
    google: Option<Google>,
}

#[derive(Deserialize)]
struct Google {
    compute_engine: Option<ComputeEngine>,
}

#[derive(Deserialize)]
struct ComputeEngine {
    project_id: String,
    project_number: StringOrNumber,
    zone: Option<String>,
    instance_id: StringOrNumber,
    instance_name: Option<String>,
}

/// Google writes some ids as JSON numbers (`project_number`), some as strings
/// (`instance_id`); take either.
#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    String(String),
    Number(u64),
}

impl StringOrNumber {
    fn into_string(self) -> String {
        match self {
            StringOrNumber::String(s) => s,
            StringOrNumber::Number(n) => n.to_string(),
        }
    }
}

/// The key id (`kid`) in a token's header, unverified: lets the server fetch Google's
/// keys again when a token names one it does not hold. `None` without a readable header
/// or a kid.
pub fn key_id(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token.trim()).ok()?.kid
}

/// Verifies a Google Cloud instance identity token made for `audience`, at `now`
/// (unix seconds).
pub fn verify(token: &str, keys: &GcpKeys, audience: &str, now: i64) -> Result<Identity, Refusal> {
    let token = token.trim();
    let header = jwt::header(token, &KIND)?;
    if header.alg != Algorithm::RS256 {
        return Err(Refusal::new(
            Reason::BadSignature,
            format!(
                "{} is signed with {:?}; Google signs instance identity tokens with RS256: \
                 send the token the metadata server returned, unchanged",
                KIND.what, header.alg
            ),
        ));
    }
    let Some(kid) = header.kid else {
        return Err(Refusal::new(
            Reason::Malformed,
            format!(
                "{} has no key id (kid) in its header: {}",
                KIND.what, KIND.fetch
            ),
        ));
    };
    let Some(key) = keys.find(&kid) else {
        return Err(Refusal::new(
            Reason::UntrustedCertificate,
            format!(
                "{} is signed with key {}, which is not among the {} Google keys this server holds: \
                 if Google rotated its keys, make the enrollment server fetch \
                 https://www.googleapis.com/oauth2/v3/certs again; otherwise the token is not from Google",
                KIND.what,
                shown(&kid),
                keys.keys.len()
            ),
        ));
    };
    let claims: Claims = jwt::verified_claims(token, key, Algorithm::RS256, &KIND)?;

    let iss = claims.iss.as_deref().unwrap_or_default();
    if !ISSUERS.contains(&iss) {
        return Err(Refusal::new(
            Reason::WrongIssuer,
            format!(
                "{}'s issuer is {}; Google's instance identity tokens are issued by \
                 https://accounts.google.com: {}",
                KIND.what,
                shown(iss),
                KIND.fetch
            ),
        ));
    }
    jwt::check_audience(
        claims.aud.as_ref(),
        audience,
        &KIND,
        &format!("request the token with audience={audience}"),
    )?;
    let (_, exp) = jwt::check_times(claims.iat, claims.exp, claims.nbf, now, &KIND)?;

    let Some(gce) = claims.google.and_then(|g| g.compute_engine) else {
        return Err(Refusal::new(
            Reason::Malformed,
            format!(
                "{} has no google.compute_engine claims (it was requested without format=full, \
                 or not on a Compute Engine VM): request it with format=full",
                KIND.what
            ),
        ));
    };
    Ok(Identity {
        source: Source::Gcp {
            project_id: gce.project_id,
            project_number: gce.project_number.into_string(),
        },
        instance_id: gce.instance_id.into_string(),
        region: None,
        location: gce.zone,
        name: gce.instance_name,
        document_digest: digest_hex(token.as_bytes()),
        valid_until: Some(exp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{
        AUDIENCE, GCP_PROJECT_NUMBER, GCP_ZONE, GcpSigner, NOW, assert_refused, gcp, gcp_claims,
        gcp_token, tamper_jwt,
    };
    use serde_json::{Value, json};

    const PROJECT: &str = "my-proj";
    const INSTANCE: &str = "4567890123456789012";

    fn claims() -> Value {
        gcp_claims(PROJECT, INSTANCE, AUDIENCE, NOW - 10, NOW + 3590)
    }

    fn with(change: impl FnOnce(&mut Value)) -> String {
        let mut claims = claims();
        change(&mut claims);
        gcp().sign(&claims)
    }

    fn without(claim: &str) -> String {
        with(|c| {
            c.as_object_mut()
                .expect("claims are an object")
                .remove(claim);
        })
    }

    #[test]
    fn a_token_verifies_to_its_identity() {
        let token = gcp_token(PROJECT, INSTANCE, AUDIENCE, NOW - 10, NOW + 3590);
        let identity = verify(&token, &gcp().keys(), AUDIENCE, NOW).expect("valid");
        assert_eq!(
            identity,
            Identity {
                source: Source::Gcp {
                    project_id: PROJECT.into(),
                    project_number: GCP_PROJECT_NUMBER.to_string()
                },
                instance_id: INSTANCE.into(),
                region: None,
                location: Some(GCP_ZONE.into()),
                name: Some(format!("vm-{INSTANCE}")),
                document_digest: digest_hex(token.as_bytes()),
                valid_until: Some(NOW + 3590),
            }
        );
        assert_eq!(identity.source.to_string(), "Google Cloud project my-proj");

        let cases = [
            ("with a trailing newline", format!("{token}\n"), NOW),
            (
                "the short issuer",
                with(|c| c["iss"] = json!("accounts.google.com")),
                NOW,
            ),
            (
                "audience in an array",
                with(|c| c["aud"] = json!(["other", AUDIENCE])),
                NOW,
            ),
            (
                "numbers as strings",
                with(|c| c["google"]["compute_engine"]["project_number"] = json!("123456789012")),
                NOW,
            ),
            ("expired within the leeway", token.clone(), NOW + 3590 + 60),
            ("issued within the leeway", token.clone(), NOW - 70),
        ];
        for (name, token, now) in cases {
            let got = verify(&token, &gcp().keys(), AUDIENCE, now).expect(name);
            assert_eq!(got.source, identity.source, "{name}");
            assert_eq!(got.instance_id, INSTANCE, "{name}");
        }
    }

    #[test]
    fn refusals() {
        let keys = gcp().keys();
        let token = gcp().sign(&claims());
        let impostor = GcpSigner::generate(&gcp().kid);
        let rotated = GcpSigner::generate("a-newer-google-key");
        let hs256 = {
            let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
            header.kid = Some(gcp().kid.clone());
            let key = jsonwebtoken::EncodingKey::from_secret(b"a shared secret").expect("HMAC key");
            jsonwebtoken::encode(&header, &claims(), &key).expect("HS256")
        };
        let cases: Vec<(&str, String, Reason, &str)> = vec![
            (
                "another project written into a signed token",
                tamper_jwt(&token, |c| {
                    c["google"]["compute_engine"]["project_id"] = json!("their-proj")
                }),
                Reason::BadSignature,
                "does not match its content",
            ),
            (
                "signed by another key under Google's kid",
                impostor.sign(&claims()),
                Reason::BadSignature,
                "another key",
            ),
            (
                "HS256 with Google's kid",
                hs256,
                Reason::BadSignature,
                "Google signs instance identity tokens with RS256",
            ),
            (
                "a kid this server does not hold",
                rotated.sign(&claims()),
                Reason::UntrustedCertificate,
                "oauth2/v3/certs",
            ),
            (
                "no kid",
                gcp().sign_with_kid(None, &claims()),
                Reason::Malformed,
                "no key id",
            ),
            (
                "expired",
                with(|c| c["exp"] = json!(NOW - 61)),
                Reason::Expired,
                "expired at 2025-12-31T23:58:59Z",
            ),
            (
                "issued in the future",
                with(|c| c["iat"] = json!(NOW + 61)),
                Reason::NotYetValid,
                "check the clock",
            ),
            (
                "not valid before later",
                with(|c| c["nbf"] = json!(NOW + 600)),
                Reason::NotYetValid,
                "valid from",
            ),
            (
                "another audience",
                with(|c| c["aud"] = json!("https://other.example")),
                Reason::WrongAudience,
                "audience is \"https://other.example\"; this server accepts only \"https://enroll.patchfleet.example\": \
                 request the token with audience=https://enroll.patchfleet.example",
            ),
            (
                "no audience",
                without("aud"),
                Reason::WrongAudience,
                "audience is missing",
            ),
            (
                "another issuer",
                with(|c| c["iss"] = json!("https://evil.example")),
                Reason::WrongIssuer,
                "\"https://evil.example\"",
            ),
            (
                "standard format",
                without("google"),
                Reason::Malformed,
                "format=full",
            ),
            ("no exp", without("exp"), Reason::Malformed, "no exp claim"),
            (
                "not a JWT",
                "not-a-jwt".into(),
                Reason::Malformed,
                "not a well-formed JWT",
            ),
            (
                "three parts of garbage",
                "a.b.c".into(),
                Reason::Malformed,
                "not a well-formed JWT",
            ),
            (
                "empty",
                String::new(),
                Reason::Malformed,
                "not a well-formed JWT",
            ),
        ];
        for (name, token, reason, text) in cases {
            assert_refused(name, verify(&token, &keys, AUDIENCE, NOW), reason, text);
        }
    }

    #[test]
    fn key_id_reads_the_header() {
        let token = gcp_token(PROJECT, INSTANCE, AUDIENCE, NOW, NOW + 60);
        assert_eq!(key_id(&token).as_deref(), Some(gcp().kid.as_str()));
        assert_eq!(key_id(&gcp().sign_with_kid(None, &claims())), None);
        assert_eq!(key_id("garbage"), None);
    }

    #[test]
    fn keys_from_jwks() {
        let keys = GcpKeys::from_json(gcp().jwks_json().as_bytes()).expect("JWKS");
        assert_eq!(keys.kids(), vec![gcp().kid.as_str()]);
        for (name, jwks) in [
            ("not JSON", "<html>"),
            ("no keys", r#"{"keys":[]}"#),
            (
                "no RSA key",
                r#"{"keys":[{"kty":"oct","kid":"k","k":"c2VjcmV0"}]}"#,
            ),
        ] {
            assert!(GcpKeys::from_json(jwks.as_bytes()).is_err(), "{name}");
        }
    }

    #[test]
    fn document_digest_is_stable_and_tells_tokens_apart() {
        let keys = gcp().keys();
        let a = gcp_token(PROJECT, INSTANCE, AUDIENCE, NOW, NOW + 600);
        let b = gcp_token(PROJECT, "1", AUDIENCE, NOW, NOW + 600);
        let digest = |t: &str| {
            verify(t, &keys, AUDIENCE, NOW)
                .expect("valid")
                .document_digest
        };
        assert_eq!(digest(&a), digest(&a));
        assert_ne!(digest(&a), digest(&b));
    }
}
