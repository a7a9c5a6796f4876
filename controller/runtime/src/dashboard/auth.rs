//! Who is asking and what they may see, as the Kubernetes API server decides it: the bearer
//! token goes to a TokenReview, each view to a SubjectAccessReview for the user it names.
//! Answers are kept for `--auth-cache-ttl` (as the API server's own webhook authorizers
//! cache theirs), so a page that refreshes itself costs no review while nothing changed.
//! A token is never logged nor kept: the cache is keyed by its SHA-256.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};
use sha2::{Digest, Sha256};
use tracing::warn;

use super::cache::TtlCache;

/// The API group of the four kinds.
const GROUP: &str = "patchfleet.io";

/// The user a token belongs to, as TokenReview says.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// `get` on one of the four kinds: all of them (no name), one object, or the fleet
/// permission (`systemaccounts/fleet`, a subresource name only SubjectAccessReview knows).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    pub group: &'static str,
    pub verb: &'static str,
    pub resource: &'static str,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<&'static str>,
}

impl Access {
    pub fn get(resource: &'static str, namespace: Option<&str>, name: Option<&str>) -> Access {
        Access {
            group: GROUP,
            verb: "get",
            resource,
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: None,
        }
    }

    /// Reading a SystemAccount's nodes from SSM.
    pub fn fleet(account: &str) -> Access {
        Access {
            group: GROUP,
            verb: "get",
            resource: "systemaccounts",
            namespace: None,
            name: Some(account.to_owned()),
            subresource: Some("fleet"),
        }
    }

    /// Listing Events (core API group) in a namespace, or in all of them: an object's
    /// Events are shown only to who may list them, as `kubectl describe` would.
    pub fn list_events(namespace: Option<&str>) -> Access {
        Access {
            group: "",
            verb: "list",
            resource: "events",
            namespace: namespace.map(str::to_owned),
            name: None,
            subresource: None,
        }
    }

    /// As a person would ask for it: `get systemaccounts/fleet.patchfleet.io prod-a`.
    pub fn describe(&self) -> String {
        let resource = match self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.to_owned(),
        };
        let mut text = if self.group.is_empty() {
            format!("{} {resource}", self.verb)
        } else {
            format!("{} {resource}.{}", self.verb, self.group)
        };
        if let Some(name) = &self.name {
            text.push(' ');
            text.push_str(name);
        }
        if let Some(ns) = &self.namespace {
            text.push_str(" in namespace ");
            text.push_str(ns);
        }
        text
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token, or one the API server does not accept.
    #[error("{0}")]
    Unauthenticated(String),
    /// The API server could not be asked.
    #[error("{0}")]
    Unavailable(String),
}

/// Enough for every user of a large cluster times the views they open in one TTL.
const CACHE_ENTRIES: usize = 50_000;

/// The longest bearer token accepted (service account JWTs are about 1 KiB; OIDC ID
/// tokens a few): anything longer is refused before a TokenReview.
const MAX_TOKEN: usize = 16 * 1024;

pub struct Authorizer {
    client: Client,
    /// By the token's SHA-256: the answer of its TokenReview, acceptance or refusal.
    tokens: TtlCache<[u8; 32], Result<User, String>>,
    decisions: TtlCache<(User, Access), bool>,
}

impl Authorizer {
    pub fn new(client: Client, ttl: Duration) -> Self {
        Authorizer {
            client,
            tokens: TtlCache::new(ttl, CACHE_ENTRIES),
            decisions: TtlCache::new(ttl, CACHE_ENTRIES),
        }
    }

    /// The token's user (TokenReview).
    pub async fn authenticate(&self, token: &str) -> Result<User, AuthError> {
        if !cookie_safe(token) {
            return Err(AuthError::Unauthenticated(
                "that is not a bearer token".to_owned(),
            ));
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((_, answer)) = self.tokens.get(&key) {
            return answer.map_err(AuthError::Unauthenticated);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| unavailable("TokenReview", &e))?;
        let status = answer.status.unwrap_or_default();
        let result = match (status.authenticated, status.user) {
            (Some(true), Some(user)) => Ok(User {
                name: user.username.unwrap_or_default(),
                uid: user.uid.unwrap_or_default(),
                groups: user.groups.unwrap_or_default(),
                extra: user.extra.unwrap_or_default(),
            }),
            _ => Err(status
                .error
                .filter(|e| !e.is_empty())
                .map(|e| format!("the token was not accepted: {e}"))
                .unwrap_or_else(|| "the token was not accepted".to_owned())),
        };
        self.tokens.put(key, result.clone());
        result.map_err(AuthError::Unauthenticated)
    }

    /// Whether `user` may `access` (SubjectAccessReview).
    pub async fn allowed(&self, user: &User, access: &Access) -> Result<bool, AuthError> {
        let key = (user.clone(), access.clone());
        if let Some((_, answer)) = self.decisions.get(&key) {
            return Ok(answer);
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.name.clone()),
                uid: Some(user.uid.clone()).filter(|u| !u.is_empty()),
                groups: Some(user.groups.clone()),
                extra: Some(user.extra.clone()).filter(|e| !e.is_empty()),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(access.group.to_owned()),
                    resource: Some(access.resource.to_owned()),
                    subresource: access.subresource.map(str::to_owned),
                    verb: Some(access.verb.to_owned()),
                    namespace: access.namespace.clone(),
                    name: access.name.clone(),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| unavailable("SubjectAccessReview", &e))?;
        let allowed = answer.status.is_some_and(|s| s.allowed);
        self.decisions.put(key, allowed);
        Ok(allowed)
    }
}

/// The API server did not answer a review: the detail goes to the log, the client learns
/// only that (the error may name the dashboard's own identity).
fn unavailable(review: &str, error: &kube::Error) -> AuthError {
    warn!(%error, review, "the Kubernetes API server did not answer");
    AuthError::Unavailable(format!(
        "the Kubernetes API server did not answer a {review}; try again"
    ))
}

/// The bearer token of a request: the `Authorization` header, else the login cookie.
pub fn token_of(headers: &axum::http::HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
            .then(|| token.trim().to_owned());
    }
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|t| !t.is_empty())
}

/// The login cookie's name.
pub const COOKIE: &str = "patchfleet-token";

/// A token as a cookie value can carry it: JWTs and static tokens are printable ASCII
/// without the characters a cookie value may not hold.
pub fn cookie_safe(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b",;\\\"".contains(&b))
}

/// The cookie that keeps the token: the script cannot read it (HttpOnly), it goes only over
/// HTTPS or to localhost (Secure), and never with a request another site starts
/// (SameSite=Strict).
pub fn set_cookie(token: &str, max_age: Duration) -> String {
    format!(
        "{COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
        max_age.as_secs()
    )
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                name.clone(),
                HeaderValue::from_str(value).expect("test header"),
            );
        }
        map
    }

    #[test]
    fn the_header_wins_over_the_cookie_and_only_bearer_counts() {
        let both = headers(&[
            (header::AUTHORIZATION, "Bearer abc.def"),
            (header::COOKIE, "patchfleet-token=xyz"),
        ]);
        assert_eq!(token_of(&both).as_deref(), Some("abc.def"));
        let basic = headers(&[(header::AUTHORIZATION, "Basic dXNlcjpwdw==")]);
        assert_eq!(token_of(&basic), None);
        let cookie = headers(&[(header::COOKIE, "a=1; patchfleet-token=xyz; b=2")]);
        assert_eq!(token_of(&cookie).as_deref(), Some("xyz"));
        assert_eq!(
            token_of(&headers(&[(header::COOKIE, "patchfleet-token=")])),
            None
        );
        assert_eq!(token_of(&HeaderMap::new()), None);
    }

    #[test]
    fn the_cookie_is_http_only_secure_and_strict() {
        let cookie = set_cookie("abc", Duration::from_secs(3600));
        for part in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=3600",
        ] {
            assert!(cookie.contains(part), "{cookie}");
        }
        assert!(cookie_safe("eyJhbGciOi.eyJpc3Mi.sig-_"));
        assert!(!cookie_safe("a;b"));
        assert!(!cookie_safe("a b"));
        assert!(!cookie_safe(""));
        assert!(!cookie_safe(&"a".repeat(MAX_TOKEN + 1)));
    }

    #[test]
    fn accesses_read_as_kubectl_would_say_them() {
        assert_eq!(
            Access::fleet("prod-a").describe(),
            "get systemaccounts/fleet.patchfleet.io prod-a"
        );
        assert_eq!(
            Access::get("patchgroups", Some("team-a"), Some("web")).describe(),
            "get patchgroups.patchfleet.io web in namespace team-a"
        );
        assert_eq!(
            Access::list_events(Some("team-a")).describe(),
            "list events in namespace team-a"
        );
    }
}
