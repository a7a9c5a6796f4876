//! patchfleet's enrollment identity verification, pure: a cloud's signed instance
//! identity + the trust roots + the time → a verified [`Identity`] or a [`Refusal`] a
//! person can act on.
//!
//! No I/O at all: no network, no files, no async, no clock. The enrollment server
//! (`patchfleet enroll`) reads the trust bundles, fetches Google's JWKS, serves HTTP,
//! passes the time in as unix seconds (`now`) and maps an [`Identity`] to a
//! SystemAccount before it creates an SSM hybrid activation there.
//!
//! | cloud | proof | verified with | module |
//! | --- | --- | --- | --- |
//! | AWS EC2 | instance identity document + its PKCS7 (`/pkcs7` or `/rsa2048`) signature | AWS's published per-region certificates ([`AwsTrust`]) | [`aws`] |
//! | Google Cloud | instance identity token (`format=full`), an RS256 JWT | Google's JWKS ([`GcpKeys`]) | [`gcp`] |
//! | Azure | IMDS attested data, a PKCS7 with embedded signed JSON | trusted roots + intermediates + signer names ([`AzureTrust`]) and our nonce ([`NonceKey`]) | [`azure`] |
//! | VMware | a JWT issued per VM by the operator's vCenter-side signer | the signer's public key per vCenter ([`VmwareTrust`]) | [`vmware`] |
//!
//! # The VMware token (our format)
//!
//! vSphere has no cloud-signed instance identity, so the operator runs a signer next to
//! each vCenter that issues a compact JWS (JWT) per VM:
//!
//! - header: `alg` `RS256` (an RSA key, 2048 bits or more) or `ES256` (a P-256 key),
//!   matching the key configured for that vCenter; `typ` `JWT` (optional); `kid` ignored.
//! - claims, all required but `vm_name`:
//!   - `iss`: the vCenter's name as configured on the enrollment server, e.g.
//!     `vc01.example.com` (compared case-insensitively);
//!   - `sub`: the VM's instance UUID (`config.instanceUuid`, 8-4-4-4-12 hex digits);
//!   - `aud`: the enrollment server's audience (a string, or an array holding it);
//!   - `iat`, `exp`: unix seconds; `exp - iat` at most [`vmware::MAX_LIFETIME_SECS`]
//!     (one hour): longer-lived tokens are refused;
//!   - `vm_name`: the VM's name, informational.
//!
//! # The Azure nonce (our format)
//!
//! Azure documents the attested-data nonce as an optional 10-digit string. The server
//! issues it statelessly, so any number of replicas sharing one secret accept each
//! other's nonces: see [`NonceKey`].

pub mod aws;
pub mod azure;
mod builtin;
pub mod gcp;
mod jwt;
mod nonce;
mod refusal;
pub mod vmware;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::fmt;

pub use aws::AwsTrust;
pub use azure::{AttestedDocument, AzureTrust};
pub use builtin::{BUILTIN_AWS_CERTIFICATES, builtin_trust};
pub use gcp::GcpKeys;
pub use nonce::{NONCE_SLOT_SECS, NonceKey};
pub use refusal::{Reason, Refusal};
pub use vmware::VmwareTrust;

/// Clock skew allowed between the machine that made a proof and this server, in
/// seconds, on every "not yet valid" and "expired" check.
pub const CLOCK_LEEWAY_SECS: i64 = 60;

/// A verified machine identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Who vouches for the machine: the cloud account, project, subscription or vCenter.
    pub source: Source,
    /// The machine within its source: EC2 instance id, GCE instance id, Azure vmId,
    /// VMware instance UUID (lower case).
    pub instance_id: String,
    /// AWS only: the instance's region, from the signed document.
    pub region: Option<String>,
    /// Where the machine runs, informational: AWS availability zone, GCE zone.
    pub location: Option<String>,
    /// The machine's name where the proof carries one (GCE instance name, VMware VM name).
    pub name: Option<String>,
    /// Lower-case hex SHA-256 of the identity document itself, for replay detection:
    /// AWS the document JSON, Azure the signed JSON content, GCP and VMware the
    /// compact JWT.
    pub document_digest: String,
    /// When the proof expires (unix seconds), if it does. AWS documents never do: a
    /// copied AWS document stays valid, so the server has to remember digests it has
    /// already used.
    pub valid_until: Option<i64>,
}

/// Who vouches for a machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    Aws {
        account_id: String,
    },
    Gcp {
        project_id: String,
        project_number: String,
    },
    Azure {
        subscription_id: String,
    },
    Vmware {
        vcenter: String,
    },
}

impl Source {
    /// `aws`, `gcp`, `azure` or `vmware`: a metric label value.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Aws { .. } => "aws",
            Source::Gcp { .. } => "gcp",
            Source::Azure { .. } => "azure",
            Source::Vmware { .. } => "vmware",
        }
    }

    /// The source's own identifier: AWS account id, Google Cloud project id, Azure
    /// subscription id, vCenter name.
    pub fn id(&self) -> &str {
        match self {
            Source::Aws { account_id } => account_id,
            Source::Gcp { project_id, .. } => project_id,
            Source::Azure { subscription_id } => subscription_id,
            Source::Vmware { vcenter } => vcenter,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Aws { account_id } => write!(f, "AWS account {account_id}"),
            Source::Gcp { project_id, .. } => write!(f, "Google Cloud project {project_id}"),
            Source::Azure { subscription_id } => write!(f, "Azure subscription {subscription_id}"),
            Source::Vmware { vcenter } => write!(f, "vCenter {vcenter}"),
        }
    }
}

/// Trust material that cannot be used: a configuration problem of the enrollment
/// server (bad PEM, empty bundle, unusable key), not of a machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TrustError(pub String);

/// Lower-case hex SHA-256.
pub(crate) fn digest_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Unix seconds as `2026-01-01T00:00:00Z`, for messages.
pub(crate) fn utc(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_display_and_kind() {
        let cases = [
            (
                Source::Aws {
                    account_id: "111122223333".into(),
                },
                "aws",
                "AWS account 111122223333",
            ),
            (
                Source::Gcp {
                    project_id: "my-proj".into(),
                    project_number: "123".into(),
                },
                "gcp",
                "Google Cloud project my-proj",
            ),
            (
                Source::Azure {
                    subscription_id: "8d10da13-8125-4ba9-a717-bf7490507b3d".into(),
                },
                "azure",
                "Azure subscription 8d10da13-8125-4ba9-a717-bf7490507b3d",
            ),
            (
                Source::Vmware {
                    vcenter: "vc01.example.com".into(),
                },
                "vmware",
                "vCenter vc01.example.com",
            ),
        ];
        for (source, kind, shown) in cases {
            assert_eq!(source.kind(), kind);
            assert_eq!(source.to_string(), shown);
            assert!(shown.ends_with(source.id()));
        }
    }

    #[test]
    fn civil_time_round_trips() {
        for (unix, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_767_225_599, "2025-12-31T23:59:59Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
        ] {
            assert_eq!(utc(unix), text);
        }
        assert_eq!(days_from_civil(2000, 2, 29) * 86_400, 951_782_400);
    }

    #[test]
    fn digest_is_lower_hex_sha256() {
        assert_eq!(
            digest_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
