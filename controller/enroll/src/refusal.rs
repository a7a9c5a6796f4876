//! Why a proof of identity was refused, in words a person can act on.

use std::fmt;

/// The kind of a refusal: a Kubernetes Event reason and a metric label, so it is
/// CamelCase ([`Reason::as_str`]) and the set is closed ([`Reason::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Not the documented format: bad base64, not JSON, a missing field, a wrong encoding.
    Malformed,
    /// The signature does not match the document, or uses an algorithm not allowed here.
    BadSignature,
    /// Signed, but not by a certificate or key this server trusts.
    UntrustedCertificate,
    /// The proof's validity ended.
    Expired,
    /// The proof's validity has not begun (or it was issued in the future).
    NotYetValid,
    /// A token made for another audience.
    WrongAudience,
    /// A token from an issuer other than the one documented.
    WrongIssuer,
    /// The Azure nonce is missing, not ours, or too old.
    BadNonce,
    /// Signed for a source (a vCenter) this server has no key for.
    UnknownSource,
}

impl Reason {
    /// Every reason, for registering metric label values up front.
    pub const ALL: [Reason; 9] = [
        Reason::Malformed,
        Reason::BadSignature,
        Reason::UntrustedCertificate,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::WrongAudience,
        Reason::WrongIssuer,
        Reason::BadNonce,
        Reason::UnknownSource,
    ];

    /// The CamelCase name: a Kubernetes Event reason and a metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "Malformed",
            Reason::BadSignature => "BadSignature",
            Reason::UntrustedCertificate => "UntrustedCertificate",
            Reason::Expired => "Expired",
            Reason::NotYetValid => "NotYetValid",
            Reason::WrongAudience => "WrongAudience",
            Reason::WrongIssuer => "WrongIssuer",
            Reason::BadNonce => "BadNonce",
            Reason::UnknownSource => "UnknownSource",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A proof of identity refused: the kind, and a sentence saying what was wrong and
/// what to do about it. The message quotes values from the presented document
/// (escaped and shortened), never secrets of the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub reason: Reason,
    pub message: String,
}

impl Refusal {
    pub fn new(reason: Reason, message: impl Into<String>) -> Refusal {
        Refusal {
            reason,
            message: message.into(),
        }
    }
}

/// A value taken from a presented document, fit to be quoted in a message: escaped
/// (quotes, control characters) and cut to 80 characters, since whoever presents a
/// document chooses its content.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 80;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &value[..cut]),
        None => format!("{value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_camel_case_and_distinct() {
        let names: std::collections::BTreeSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Reason::ALL.len());
        for name in names {
            assert!(
                name.chars().next().is_some_and(|c| c.is_ascii_uppercase()),
                "{name}"
            );
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");
        }
    }

    #[test]
    fn shown_escapes_and_shortens() {
        assert_eq!(shown("vc01"), "\"vc01\"");
        assert_eq!(shown("a\"b\n"), "\"a\\\"b\\n\"");
        let long = "x".repeat(200);
        assert_eq!(shown(&long), format!("{:?}…", "x".repeat(80)));
    }
}
