//! VMware: a token from the operator's vCenter-side signer (format in the crate docs).
//!
//! vSphere has no cloud-signed instance identity, so the operator runs a signer beside
//! each vCenter that issues a JWT per VM; the enrollment server holds each signer's
//! public key under the vCenter's name.

use std::collections::BTreeMap;

use jsonwebtoken::{Algorithm, DecodingKey};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use serde::Deserialize;

use crate::jwt::{self, Audience, TokenKind};
use crate::refusal::shown;
use crate::{Identity, Reason, Refusal, Source, TrustError, digest_hex, utc};

/// The longest validity (`exp - iat`) a VMware token may have, in seconds.
pub const MAX_LIFETIME_SECS: i64 = 3600;

const KIND: TokenKind = TokenKind {
    what: "the VMware token",
    fetch: "have the vCenter signer issue a new token for this VM",
};

/// The public key of each vCenter's signer, by vCenter name (lower case).
#[derive(Clone, Default)]
pub struct VmwareTrust {
    signers: BTreeMap<String, (Algorithm, DecodingKey)>,
}

impl std::fmt::Debug for VmwareTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmwareTrust")
            .field("vcenters", &self.vcenters())
            .finish()
    }
}

impl VmwareTrust {
    pub fn new() -> VmwareTrust {
        VmwareTrust::default()
    }

    /// Trusts `public_key_pem` (a `PUBLIC KEY` PEM: RSA of 2048 bits or more for RS256,
    /// or P-256 for ES256) for the tokens of `vcenter`, replacing any key it had.
    pub fn add(&mut self, vcenter: &str, public_key_pem: &[u8]) -> Result<(), TrustError> {
        let vcenter = vcenter.trim().to_ascii_lowercase();
        if vcenter.is_empty() {
            return Err(TrustError(
                "a VMware signer key needs the name of its vCenter".into(),
            ));
        }
        let bad = |what: String| TrustError(format!("the signer key of vCenter {vcenter} {what}"));
        let pkey = PKey::public_key_from_pem(public_key_pem)
            .map_err(|e| bad(format!("is not a PEM public key ({e})")))?;
        let (alg, key) = match pkey.id() {
            Id::RSA if pkey.bits() >= 2048 => {
                (Algorithm::RS256, DecodingKey::from_rsa_pem(public_key_pem))
            }
            Id::RSA => {
                return Err(bad(format!(
                    "is RSA of {} bits; RS256 needs 2048 or more",
                    pkey.bits()
                )));
            }
            Id::EC => {
                let curve = pkey.ec_key().ok().and_then(|ec| ec.group().curve_name());
                if curve != Some(Nid::X9_62_PRIME256V1) {
                    return Err(bad("is an EC key not on P-256; ES256 needs P-256".into()));
                }
                (Algorithm::ES256, DecodingKey::from_ec_pem(public_key_pem))
            }
            _ => return Err(bad("is neither RSA (RS256) nor P-256 (ES256)".into())),
        };
        let key = key.map_err(|e| bad(format!("cannot be used ({e})")))?;
        self.signers.insert(vcenter, (alg, key));
        Ok(())
    }

    /// The vCenters with a signer key.
    pub fn vcenters(&self) -> Vec<&str> {
        self.signers.keys().map(String::as_str).collect()
    }
}

#[derive(Deserialize)]
struct Unverified {
    iss: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    aud: Option<Audience>,
    iat: Option<i64>,
    exp: Option<i64>,
    nbf: Option<i64>,
    vm_name: Option<String>,
}

/// Verifies a VMware token made for `audience`, at `now` (unix seconds).
pub fn verify(
    token: &str,
    trust: &VmwareTrust,
    audience: &str,
    now: i64,
) -> Result<Identity, Refusal> {
    let token = token.trim();
    let header = jwt::header(token, &KIND)?;
    let issuer: Unverified = jwt::unverified_claims(token, &KIND)?;
    let Some(iss) = issuer.iss.filter(|iss| !iss.trim().is_empty()) else {
        return Err(Refusal::new(
            Reason::Malformed,
            format!(
                "{} has no iss claim naming its vCenter: configure the vCenter signer to set iss",
                KIND.what
            ),
        ));
    };
    let vcenter = iss.trim().to_ascii_lowercase();
    let Some((alg, key)) = trust.signers.get(&vcenter) else {
        return Err(Refusal::new(
            Reason::UnknownSource,
            format!(
                "{} is issued by vCenter {}, which has no signer key on this enrollment server \
                 (it knows {}): add that vCenter's signer public key to the enrollment server's \
                 VMware trust, or fix the signer's iss",
                KIND.what,
                shown(&iss),
                if trust.signers.is_empty() {
                    "none".to_string()
                } else {
                    trust.vcenters().join(", ")
                }
            ),
        ));
    };
    if header.alg != *alg {
        return Err(Refusal::new(
            Reason::BadSignature,
            format!(
                "{} is signed with {:?}, but the key of vCenter {vcenter} is for {alg:?}: \
                 configure the vCenter signer to sign with {alg:?} and its configured key",
                KIND.what, header.alg
            ),
        ));
    }
    let claims: Claims = jwt::verified_claims(token, key, *alg, &KIND)?;

    jwt::check_audience(
        claims.aud.as_ref(),
        audience,
        &KIND,
        &format!("configure the vCenter signer to issue tokens with aud {audience}"),
    )?;
    let (iat, exp) = jwt::check_times(claims.iat, claims.exp, claims.nbf, now, &KIND)?;
    if exp.saturating_sub(iat) > MAX_LIFETIME_SECS {
        return Err(Refusal::new(
            Reason::Malformed,
            format!(
                "{} is valid for {} s (from {} to {}); this server accepts at most {MAX_LIFETIME_SECS} s: \
                 configure the vCenter signer to issue tokens valid for an hour or less",
                KIND.what,
                exp.saturating_sub(iat),
                utc(iat),
                utc(exp)
            ),
        ));
    }
    let sub = claims.sub.unwrap_or_default();
    if !is_uuid(&sub) {
        return Err(Refusal::new(
            Reason::Malformed,
            format!(
                "{}'s sub {} is not a VM instance UUID (8-4-4-4-12 hex digits): configure the \
                 vCenter signer to put the VM's config.instanceUuid in sub",
                KIND.what,
                shown(&sub)
            ),
        ));
    }
    Ok(Identity {
        source: Source::Vmware { vcenter },
        instance_id: sub.to_ascii_lowercase(),
        region: None,
        location: None,
        name: claims.vm_name,
        document_digest: digest_hex(token.as_bytes()),
        valid_until: Some(exp),
    })
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{
        AUDIENCE, NOW, VmwareSigner, assert_refused, tamper_jwt, vmware, vmware_claims,
        vmware_token,
    };
    use serde_json::{Value, json};

    const VCENTER: &str = "vc01.example.com";
    const UUID: &str = "5012a3b4-c5d6-e7f8-0912-a3b4c5d6e7f8";

    fn claims() -> Value {
        vmware_claims(VCENTER, UUID, AUDIENCE, NOW - 5, NOW + 900)
    }

    fn with(change: impl FnOnce(&mut Value)) -> String {
        let mut claims = claims();
        change(&mut claims);
        vmware().sign(&claims)
    }

    #[test]
    fn a_token_verifies_to_its_identity() {
        let token = vmware_token(VCENTER, UUID, AUDIENCE, NOW - 5, NOW + 900);
        let want = Identity {
            source: Source::Vmware {
                vcenter: VCENTER.into(),
            },
            instance_id: UUID.into(),
            region: None,
            location: None,
            name: Some("vm-5012a3b4".into()),
            document_digest: digest_hex(token.as_bytes()),
            valid_until: Some(NOW + 900),
        };
        assert_eq!(
            verify(&token, &vmware().trust(VCENTER), AUDIENCE, NOW),
            Ok(want.clone())
        );

        let ec = VmwareSigner::p256();
        let mut both = vmware().trust(VCENTER);
        both.add("VC02.example.com", ec.public_pem().as_bytes())
            .expect("P-256 key");
        assert_eq!(both.vcenters(), vec![VCENTER, "vc02.example.com"]);
        let cases = [
            (
                "the vCenter's name in capitals",
                with(|c| c["iss"] = json!("VC01.Example.COM")),
                VCENTER,
                UUID,
            ),
            (
                "an upper-case UUID",
                with(|c| c["sub"] = json!(UUID.to_uppercase())),
                VCENTER,
                UUID,
            ),
            (
                "audience in an array",
                with(|c| c["aud"] = json!([AUDIENCE])),
                VCENTER,
                UUID,
            ),
            (
                "exactly an hour",
                with(|c| c["exp"] = json!(NOW - 5 + 3600)),
                VCENTER,
                UUID,
            ),
            (
                "ES256 from another vCenter",
                ec.sign(&vmware_claims(
                    "vc02.example.com",
                    UUID,
                    AUDIENCE,
                    NOW,
                    NOW + 60,
                )),
                "vc02.example.com",
                UUID,
            ),
        ];
        for (name, token, vcenter, uuid) in cases {
            let got = verify(&token, &both, AUDIENCE, NOW).expect(name);
            assert_eq!(
                got.source,
                Source::Vmware {
                    vcenter: vcenter.into()
                },
                "{name}"
            );
            assert_eq!(got.instance_id, uuid, "{name}");
        }
    }

    #[test]
    fn refusals() {
        let trust = vmware().trust(VCENTER);
        let token = vmware().sign(&claims());
        let stranger = VmwareSigner::rsa();
        let ec = VmwareSigner::p256();
        let without = |claim: &str| {
            with(|c| {
                c.as_object_mut()
                    .expect("claims are an object")
                    .remove(claim);
            })
        };
        let cases: Vec<(&str, String, Reason, &str)> = vec![
            (
                "a vCenter without a key here",
                with(|c| c["iss"] = json!("vc09.example.com")),
                Reason::UnknownSource,
                "vCenter \"vc09.example.com\", which has no signer key on this enrollment server (it knows vc01.example.com)",
            ),
            ("no iss", without("iss"), Reason::Malformed, "no iss claim"),
            (
                "signed by another key",
                stranger.sign(&claims()),
                Reason::BadSignature,
                "another key",
            ),
            (
                "ES256 for an RSA vCenter",
                ec.sign(&claims()),
                Reason::BadSignature,
                "signed with ES256, but the key of vCenter vc01.example.com is for RS256",
            ),
            (
                "another VM written into a signed token",
                tamper_jwt(&token, |c| {
                    c["sub"] = json!("5012a3b4-c5d6-e7f8-0912-a3b4c5d6e7f9")
                }),
                Reason::BadSignature,
                "does not match its content",
            ),
            (
                "expired",
                with(|c| c["exp"] = json!(NOW - 61)),
                Reason::Expired,
                "expired at",
            ),
            (
                "issued in the future",
                with(|c| c["iat"] = json!(NOW + 120)),
                Reason::NotYetValid,
                "is issued",
            ),
            (
                "valid for a day",
                with(|c| c["exp"] = json!(NOW + 86_400)),
                Reason::Malformed,
                "valid for 86405 s",
            ),
            ("no iat", without("iat"), Reason::Malformed, "no iat claim"),
            (
                "another audience",
                with(|c| c["aud"] = json!("https://other.example")),
                Reason::WrongAudience,
                "configure the vCenter signer to issue tokens with aud https://enroll.patchfleet.example",
            ),
            (
                "a sub that is not a UUID",
                with(|c| c["sub"] = json!("vm-42")),
                Reason::Malformed,
                "\"vm-42\" is not a VM instance UUID",
            ),
            (
                "no sub",
                without("sub"),
                Reason::Malformed,
                "is not a VM instance UUID",
            ),
            (
                "not a JWT",
                "hello".into(),
                Reason::Malformed,
                "not a well-formed JWT",
            ),
            (
                "claims not JSON",
                format!("{}.bm90IGpzb24.{}", "eyJhbGciOiJSUzI1NiJ9", "c2ln"),
                Reason::Malformed,
                "not a well-formed JWT",
            ),
        ];
        for (name, token, reason, text) in cases {
            assert_refused(name, verify(&token, &trust, AUDIENCE, NOW), reason, text);
        }
        assert_refused(
            "no vCenter configured",
            verify(&token, &VmwareTrust::new(), AUDIENCE, NOW),
            Reason::UnknownSource,
            "(it knows none)",
        );
    }

    #[test]
    fn document_digest_is_stable_and_tells_tokens_apart() {
        let trust = vmware().trust(VCENTER);
        let a = vmware_token(VCENTER, UUID, AUDIENCE, NOW, NOW + 60);
        let b = vmware_token(VCENTER, UUID, AUDIENCE, NOW, NOW + 61);
        let digest = |t: &str| {
            verify(t, &trust, AUDIENCE, NOW)
                .expect("valid")
                .document_digest
        };
        assert_eq!(digest(&a), digest(&a));
        assert_ne!(digest(&a), digest(&b));
    }

    #[test]
    fn unusable_keys() {
        let pem = |key: PKey<openssl::pkey::Private>| key.public_key_to_pem().expect("PEM");
        let rsa1024 =
            pem(PKey::from_rsa(openssl::rsa::Rsa::generate(1024).expect("RSA")).expect("key"));
        let p384 = {
            let group = openssl::ec::EcGroup::from_curve_name(Nid::SECP384R1).expect("P-384");
            pem(PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("EC")).expect("key"))
        };
        let good = vmware().public_pem();
        let cases: [(&str, &str, &[u8], &str); 4] = [
            ("not PEM", VCENTER, b"hello", "is not a PEM public key"),
            ("RSA 1024", VCENTER, &rsa1024, "2048 or more"),
            ("P-384", VCENTER, &p384, "P-256"),
            (
                "no vCenter name",
                " ",
                good.as_bytes(),
                "needs the name of its vCenter",
            ),
        ];
        for (name, vcenter, key, text) in cases {
            let e = VmwareTrust::new().add(vcenter, key).expect_err(name);
            assert!(e.0.contains(text), "{name}: {e}");
        }
    }
}
