//! What the Google Cloud and VMware tokens share: JWT decoding and signature checks
//! (by jsonwebtoken), and the audience and time checks against the `now` passed in
//! (jsonwebtoken's own time checks read the system clock, so they are off).

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::refusal::shown;
use crate::{CLOCK_LEEWAY_SECS, Reason, Refusal, utc};

/// Which token a check is about, for messages.
pub(crate) struct TokenKind {
    /// "the Google Cloud instance identity token"
    pub what: &'static str,
    /// How a machine gets a fresh, good token: "fetch a new token from the metadata server".
    pub fetch: &'static str,
}

/// jsonwebtoken picks its crypto provider from its features; if feature unification
/// ever turns on a second one, it has none by default and would panic: install ours.
fn ensure_provider() {
    if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
        // Err only when another thread installed one meanwhile: fine.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    }
}

/// The token's header, unverified (to pick the key).
pub(crate) fn header(token: &str, kind: &TokenKind) -> Result<Header, Refusal> {
    jsonwebtoken::decode_header(token).map_err(|e| malformed(kind, &e))
}

/// The token's claims, unverified (to pick the key by issuer).
pub(crate) fn unverified_claims<T: DeserializeOwned>(
    token: &str,
    kind: &TokenKind,
) -> Result<T, Refusal> {
    jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(|e| malformed(kind, &e))
}

/// The token's claims once its signature checks out with `key` and `alg`.
pub(crate) fn verified_claims<T: DeserializeOwned>(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
    kind: &TokenKind,
) -> Result<T, Refusal> {
    ensure_provider();
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<T>(token, key, &validation).map(|data| data.claims).map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidKeyFormat => Refusal::new(
            Reason::BadSignature,
            format!(
                "{}'s signature does not match its content (altered, or signed with another key): {}",
                kind.what, kind.fetch
            ),
        ),
        _ => malformed(kind, &e),
    })
}

fn malformed(kind: &TokenKind, e: &jsonwebtoken::errors::Error) -> Refusal {
    Refusal::new(
        Reason::Malformed,
        format!(
            "{} is not a well-formed JWT ({e}): send it exactly as it was issued, three base64url parts separated by dots; {}",
            kind.what, kind.fetch
        ),
    )
}

/// `aud`: one string, or an array of them (RFC 7519 allows both).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The token must name `audience` in `aud`.
pub(crate) fn check_audience(
    aud: Option<&Audience>,
    audience: &str,
    kind: &TokenKind,
    fix: &str,
) -> Result<(), Refusal> {
    let found = match aud {
        Some(Audience::One(one)) if one == audience => return Ok(()),
        Some(Audience::Many(many)) if many.iter().any(|a| a == audience) => return Ok(()),
        Some(Audience::One(one)) => format!("is {}", shown(one)),
        Some(Audience::Many(many)) => format!("is {}", shown(&many.join(", "))),
        None => "is missing".to_string(),
    };
    Err(Refusal::new(
        Reason::WrongAudience,
        format!(
            "{}'s audience {found}; this server accepts only {}: {fix}",
            kind.what,
            shown(audience)
        ),
    ))
}

/// `exp` (required), `iat` (required) and `nbf` (if present) against `now`, with
/// [`CLOCK_LEEWAY_SECS`] either way.
pub(crate) fn check_times(
    iat: Option<i64>,
    exp: Option<i64>,
    nbf: Option<i64>,
    now: i64,
    kind: &TokenKind,
) -> Result<(i64, i64), Refusal> {
    let (Some(iat), Some(exp)) = (iat, exp) else {
        return Err(Refusal::new(
            Reason::Malformed,
            format!(
                "{} has no {} claim: {}",
                kind.what,
                if iat.is_none() { "iat" } else { "exp" },
                kind.fetch
            ),
        ));
    };
    if now > exp.saturating_add(CLOCK_LEEWAY_SECS) {
        return Err(Refusal::new(
            Reason::Expired,
            format!(
                "{} expired at {} ({} s before this server's time {}): {}; if it was just issued, \
                 check the clocks of the machine and of the enrollment server",
                kind.what,
                utc(exp),
                now.saturating_sub(exp),
                utc(now),
                kind.fetch
            ),
        ));
    }
    for (claim, start) in [("issued", Some(iat)), ("valid from", nbf)] {
        if let Some(start) = start
            && start > now.saturating_add(CLOCK_LEEWAY_SECS)
        {
            return Err(Refusal::new(
                Reason::NotYetValid,
                format!(
                    "{} is {claim} {}, {} s after this server's time {}: check the clock of the \
                     machine or signer that made it, and of the enrollment server",
                    kind.what,
                    utc(start),
                    start.saturating_sub(now),
                    utc(now)
                ),
            ));
        }
    }
    Ok((iat, exp))
}
