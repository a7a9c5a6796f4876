//! Azure: the Instance Metadata Service's attested data.
//!
//! <https://learn.microsoft.com/en-us/azure/virtual-machines/instance-metadata-service>,
//! section "Attested data": a VM asks
//! `/metadata/attested/document?api-version=...&nonce=NNNNNNNNNN` (the nonce "an
//! optional 10-digit string"; without one IMDS puts a timestamp there, and "due to
//! IMDS's caching mechanism, a previously cached nonce value may be returned") and gets
//! `{"encoding":"pkcs7","signature":"<base64 DER PKCS7>"}`. The PKCS7 embeds the signed
//! JSON: `nonce`, `vmId`, `subscriptionId`, `timeStamp.{createdOn,expiresOn}` (UTC, as
//! `MM/dd/yy HH:mm:ss -0000`, e.g. `11/28/18 06:16:17 -0000`, in every documented
//! api-version), `sku`, `plan`, `licenseType`; and the signer's certificate, whose
//! chain (intermediates published at <https://www.microsoft.com/pki/mscorp/cps/default.htm>,
//! which the server passes in, pinned) must end at a trusted root. The page names the
//! signer per cloud: `*.metadata.azure.com` (public cloud; "the certification validation
//! should allow a common name from any .metadata.azure.com subdomain"),
//! `*.metadata.azure.us` (Government), `*.metadata.azure.cn` (21Vianet); see
//! [`PUBLIC_CLOUD_SIGNERS`].

use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509Ref, X509StoreContext};
use serde::{Deserialize, Serialize};

use crate::refusal::shown;
use crate::{
    CLOCK_LEEWAY_SECS, Identity, NonceKey, Reason, Refusal, Source, TrustError, digest_hex, utc,
};

/// The signer names of Azure's public cloud: `metadata.azure.com` and any subdomain.
pub const PUBLIC_CLOUD_SIGNERS: [&str; 2] = ["metadata.azure.com", "*.metadata.azure.com"];

/// The body of `/metadata/attested/document`, as IMDS returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestedDocument {
    /// `pkcs7`.
    pub encoding: String,
    /// Base64 of the DER PKCS7 signed data.
    pub signature: String,
}

impl AttestedDocument {
    /// Parses the body of `/metadata/attested/document`.
    pub fn from_json(body: &[u8]) -> Result<AttestedDocument, Refusal> {
        serde_json::from_slice(body).map_err(|e| {
            Refusal::new(
                Reason::Malformed,
                format!(
                    "the attested document is not the JSON IMDS returns ({e}): send the body of \
                     /metadata/attested/document unchanged, {{\"encoding\":\"pkcs7\",\"signature\":\"...\"}}"
                ),
            )
        })
    }
}

/// What signs Azure's attested data: trusted roots, the intermediates between them and
/// the signer (pinned, since this crate fetches nothing), and the signer names allowed.
#[derive(Clone)]
pub struct AzureTrust {
    roots: Vec<X509>,
    intermediates: Vec<X509>,
    signer_names: Vec<String>,
}

impl std::fmt::Debug for AzureTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureTrust")
            .field("roots", &self.roots.len())
            .field("intermediates", &self.intermediates.len())
            .field("signer_names", &self.signer_names)
            .finish()
    }
}

impl AzureTrust {
    /// From PEM bundles of the trusted roots and of the intermediates (may be empty),
    /// and the signer names allowed: exact DNS names, or `*.domain` for any name under
    /// `domain` (see [`PUBLIC_CLOUD_SIGNERS`]).
    pub fn from_pem(
        roots_pem: &[u8],
        intermediates_pem: &[u8],
        signer_names: &[&str],
    ) -> Result<AzureTrust, TrustError> {
        let roots = X509::stack_from_pem(roots_pem).map_err(|e| {
            TrustError(format!(
                "the Azure root bundle is not PEM certificates ({e})"
            ))
        })?;
        if roots.is_empty() {
            return Err(TrustError(
                "the Azure root bundle holds no certificate".into(),
            ));
        }
        let intermediates = if intermediates_pem.iter().all(u8::is_ascii_whitespace) {
            Vec::new()
        } else {
            X509::stack_from_pem(intermediates_pem).map_err(|e| {
                TrustError(format!(
                    "the Azure intermediate bundle is not PEM certificates ({e})"
                ))
            })?
        };
        let signer_names: Vec<String> = signer_names
            .iter()
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        if signer_names.is_empty() {
            return Err(TrustError(format!(
                "no Azure signer name is allowed: allow {} for Azure's public cloud",
                PUBLIC_CLOUD_SIGNERS.join(" and ")
            )));
        }
        Ok(AzureTrust {
            roots,
            intermediates,
            signer_names,
        })
    }

    fn allows(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.signer_names
            .iter()
            .any(|allowed| match allowed.strip_prefix("*.") {
                Some(domain) => name
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                None => *allowed == name,
            })
    }

    /// The trusted roots, with OpenSSL's check time set to `now`.
    fn store(&self, now: i64) -> Result<X509Store, openssl::error::ErrorStack> {
        let mut builder = X509StoreBuilder::new()?;
        for root in &self.roots {
            builder.add_cert(root.clone())?;
        }
        let mut param = X509VerifyParam::new()?;
        // time_t is i64 on 64-bit targets (a no-op there); where it is 32 bits, a date
        // past 2038 saturates.
        #[allow(clippy::useless_conversion)]
        let time = now
            .try_into()
            .unwrap_or(if now < 0 { 0 } else { i32::MAX.into() });
        param.set_time(time);
        builder.set_param(&param)?;
        Ok(builder.build())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attested {
    nonce: Option<String>,
    vm_id: Option<String>,
    subscription_id: Option<String>,
    time_stamp: Option<TimeStamp>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimeStamp {
    created_on: String,
    expires_on: String,
}

const FETCH: &str =
    "fetch /metadata/attested/document again with a fresh nonce from the enrollment server";

/// Verifies Azure attested data at `now` (unix seconds): the signature, the signer's
/// chain and name, the validity and the nonce (issued by `nonces`).
pub fn verify(
    attested: &AttestedDocument,
    trust: &AzureTrust,
    nonces: &NonceKey,
    now: i64,
) -> Result<Identity, Refusal> {
    let malformed = |what: String| {
        Refusal::new(
            Reason::Malformed,
            format!("the attested document {what}: {FETCH}"),
        )
    };
    if !attested.encoding.eq_ignore_ascii_case("pkcs7") {
        return Err(Refusal::new(
            Reason::Malformed,
            format!(
                "the attested document has encoding {}, not pkcs7: send the body of \
                 /metadata/attested/document unchanged",
                shown(&attested.encoding)
            ),
        ));
    }
    let body: String = attested
        .signature
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = openssl::base64::decode_block(&body)
        .ok()
        .filter(|der| !der.is_empty())
        .ok_or_else(|| malformed("signature is not base64".into()))?;
    let p7 = Pkcs7::from_der(&der)
        .map_err(|_| malformed("signature is not a PKCS7 structure".into()))?;
    let Some(signed) = p7.signed() else {
        return Err(malformed(
            "signature is a PKCS7 structure but not signed data".into(),
        ));
    };

    let intermediates = stack(&trust.intermediates).map_err(internal)?;
    let Ok(signers) = p7.signers(&intermediates, Pkcs7Flags::empty()) else {
        return Err(Refusal::new(
            Reason::UntrustedCertificate,
            format!("the attested document carries no certificate of its signer: {FETCH}"),
        ));
    };
    let signer = match signers.iter().collect::<Vec<_>>()[..] {
        [signer] => signer.to_owned(),
        ref more => {
            return Err(malformed(format!(
                "has {} signers where Azure signs with one",
                more.len()
            )));
        }
    };
    let signer_name = names(&signer)
        .into_iter()
        .next()
        .unwrap_or_else(|| "(no name)".into());

    // The chain: the intermediates passed in and any certificate the PKCS7 carries,
    // ending at a trusted root, every certificate valid at `now`.
    let mut chain = stack(&trust.intermediates).map_err(internal)?;
    for cert in signed.certificates().into_iter().flatten() {
        chain.push(cert.to_owned()).map_err(internal)?;
    }
    let store = trust.store(now).map_err(internal)?;
    let mut context = X509StoreContext::new().map_err(internal)?;
    let (chained, error, depth) = context
        .init(&store, &signer, &chain, |ctx| {
            Ok((ctx.verify_cert()?, ctx.error(), ctx.error_depth()))
        })
        .map_err(internal)?;
    if !chained {
        return Err(Refusal::new(
            Reason::UntrustedCertificate,
            format!(
                "the attested document's signing certificate {} does not chain to a trusted Azure root \
                 at {} ({} at depth {depth}): if Azure rolled its intermediate certificates over, add the \
                 new ones from https://www.microsoft.com/pki/mscorp/cps/default.htm to the enrollment \
                 server's Azure trust; otherwise the document does not come from Azure",
                shown(&signer_name),
                utc(now),
                error.error_string()
            ),
        ));
    }
    if !names(&signer).iter().any(|name| trust.allows(name)) {
        return Err(Refusal::new(
            Reason::UntrustedCertificate,
            format!(
                "the attested document is signed by {}, which is not an allowed signer ({}): if it is \
                 Azure's signer for another cloud, allow its name on the enrollment server",
                shown(&signer_name),
                trust.signer_names.join(", ")
            ),
        ));
    }

    let mut content = Vec::new();
    let flags = Pkcs7Flags::NOVERIFY | Pkcs7Flags::BINARY; // the chain is checked above
    if p7
        .verify(&intermediates, &store, None, Some(&mut content), flags)
        .is_err()
    {
        return Err(Refusal::new(
            Reason::BadSignature,
            format!(
                "the attested document's signature does not match its content (altered in transit?): {FETCH}"
            ),
        ));
    }
    let doc: Attested = serde_json::from_slice(&content).map_err(|e| {
        malformed(format!(
            "signs content that is not Azure's attested JSON ({e})"
        ))
    })?;

    let Some(stamp) = doc.time_stamp else {
        return Err(malformed("has no timeStamp".into()));
    };
    let (Some(created), Some(expires)) =
        (parse_time(&stamp.created_on), parse_time(&stamp.expires_on))
    else {
        return Err(malformed(format!(
            "has timeStamp createdOn {} and expiresOn {}, not in Azure's documented form MM/dd/yy HH:mm:ss -0000",
            shown(&stamp.created_on),
            shown(&stamp.expires_on)
        )));
    };
    if now > expires.saturating_add(CLOCK_LEEWAY_SECS) {
        return Err(Refusal::new(
            Reason::Expired,
            format!(
                "the attested document expired at {} ({} s before this server's time {}): {FETCH}; if it \
                 was just fetched, check the clocks of the VM and of the enrollment server",
                utc(expires),
                now.saturating_sub(expires),
                utc(now)
            ),
        ));
    }
    if created > now.saturating_add(CLOCK_LEEWAY_SECS) {
        return Err(Refusal::new(
            Reason::NotYetValid,
            format!(
                "the attested document was created at {}, {} s after this server's time {}: check the \
                 enrollment server's clock",
                utc(created),
                created.saturating_sub(now),
                utc(now)
            ),
        ));
    }

    let Some(nonce) = doc.nonce else {
        return Err(Refusal::new(
            Reason::BadNonce,
            format!("the attested document has no nonce: {FETCH}"),
        ));
    };
    nonces.check(&nonce, now)?;

    let non_empty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let Some(subscription_id) = non_empty(doc.subscription_id) else {
        return Err(malformed(
            "has no subscriptionId (classic VMs, and api-versions before 2019-04-30, have none): \
             request it with api-version 2019-04-30 or later from a Resource Manager VM"
                .into(),
        ));
    };
    let Some(vm_id) = non_empty(doc.vm_id) else {
        return Err(malformed("has no vmId".into()));
    };
    Ok(Identity {
        source: Source::Azure { subscription_id },
        instance_id: vm_id,
        region: None,
        location: None,
        name: None,
        document_digest: digest_hex(&content),
        valid_until: Some(expires),
    })
}

fn stack(certs: &[X509]) -> Result<Stack<X509>, openssl::error::ErrorStack> {
    let mut stack = Stack::new()?;
    for cert in certs {
        stack.push(cert.clone())?;
    }
    Ok(stack)
}

/// The certificate's subject common names, then its DNS subject alternative names.
fn names(cert: &X509Ref) -> Vec<String> {
    let cns = cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .filter_map(|entry| entry.data().to_string().ok());
    let sans = cert
        .subject_alt_names()
        .into_iter()
        .flatten()
        .filter_map(|n| n.dnsname().map(str::to_string));
    cns.chain(sans).collect()
}

/// OpenSSL failing to allocate: not the document's fault.
fn internal(e: openssl::error::ErrorStack) -> Refusal {
    Refusal::new(
        Reason::Malformed,
        format!(
            "the enrollment server could not check the attested document (OpenSSL: {e}): try again later"
        ),
    )
}

/// `MM/dd/yy HH:mm:ss ±hhmm` (years 2000-2099) to unix seconds.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    fn num(s: &str, digits: usize, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
        let n = (s.len() == digits && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())??;
        range.contains(&n).then_some(n)
    }
    let mut parts = text.trim().split(' ');
    let (date, time, offset) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let mut date = date.split('/');
    let (month, day, year) = (date.next()?, date.next()?, date.next()?);
    let mut time = time.split(':');
    let (hour, minute, second) = (time.next()?, time.next()?, time.next()?);
    if date.next().is_some() || time.next().is_some() {
        return None;
    }
    let (sign, offset) = match offset.split_at_checked(1)? {
        ("+", rest) => (1, rest),
        ("-", rest) => (-1, rest),
        _ => return None,
    };
    let days = crate::days_from_civil(
        2000 + i64::from(num(year, 2, 0..=99)?),
        num(month, 2, 1..=12)?,
        num(day, 2, 1..=31)?,
    );
    let secs = i64::from(num(hour, 2, 0..=23)?) * 3600
        + i64::from(num(minute, 2, 0..=59)?) * 60
        + i64::from(num(second, 2, 0..=60)?);
    let offset = sign
        * (i64::from(num(offset.get(..2)?, 2, 0..=23)?) * 3600
            + i64::from(num(offset.get(2..)?, 2, 0..=59)?) * 60);
    Some(days * 86_400 + secs - offset)
}

/// Unix seconds as Azure writes them: `MM/dd/yy HH:mm:ss -0000`.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn format_time(unix: i64) -> String {
    let text = utc(unix); // 2026-01-01T00:00:00Z
    format!(
        "{}/{}/{} {} -0000",
        &text[5..7],
        &text[8..10],
        &text[2..4],
        &text[11..19]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_times() {
        let cases = [
            ("11/28/18 00:16:17 -0000", Some(1_543_364_177)),
            ("11/28/18 06:16:17 -0000", Some(1_543_385_777)),
            ("11/28/18 07:16:17 +0100", Some(1_543_385_777)),
            ("02/29/24 12:00:00 -0000", Some(1_709_208_000)),
            ("2018-11-28T00:16:17Z", None),
            ("13/28/18 00:16:17 -0000", None),
            ("11/28/18 24:16:17 -0000", None),
            ("11/28/18 00:16:17", None),
            ("11/28/18 00:16:17 0000", None),
            ("1/28/18 00:16:17 -0000", None),
            ("11/28/18 00:16:17 -0000 x", None),
            ("", None),
        ];
        for (text, unix) in cases {
            assert_eq!(parse_time(text), unix, "{text}");
        }
        assert_eq!(format_time(1_543_364_177), "11/28/18 00:16:17 -0000");
        assert_eq!(parse_time(&format_time(1_767_225_600)), Some(1_767_225_600));
    }

    #[test]
    fn signer_names() {
        let trust = AzureTrust {
            roots: Vec::new(),
            intermediates: Vec::new(),
            signer_names: PUBLIC_CLOUD_SIGNERS.iter().map(|s| s.to_string()).collect(),
        };
        for (name, allowed) in [
            ("metadata.azure.com", true),
            ("eastus.metadata.azure.com", true),
            ("A.B.Metadata.Azure.com", true),
            (".metadata.azure.com", false),
            ("evilmetadata.azure.com", false),
            ("metadata.azure.com.evil.example", false),
            ("metadata.azure.us", false),
        ] {
            assert_eq!(trust.allows(name), allowed, "{name}");
        }
    }
}

#[cfg(test)]
mod verify_tests {
    use super::*;
    use crate::testing::{
        AzureSigner, NOW, assert_refused, azure, azure_attested, azure_content, nonce_key,
        tamper_attested,
    };

    const SUBSCRIPTION: &str = "8d10da13-8125-4ba9-a717-bf7490507b3d";
    const VM_ID: &str = "02aab8a4-74ef-476e-8182-f6d2ba4166a6";
    const SIX_HOURS: i64 = 6 * 3600;

    fn fresh(signer: &AzureSigner) -> AttestedDocument {
        signer.sign(&azure_content(
            SUBSCRIPTION,
            VM_ID,
            &nonce_key().issue(NOW),
            NOW - 5,
            NOW + SIX_HOURS,
        ))
    }

    #[test]
    fn attested_data_verifies_to_its_identity() {
        let content = azure_content(
            SUBSCRIPTION,
            VM_ID,
            &nonce_key().issue(NOW),
            NOW - 5,
            NOW + SIX_HOURS,
        );
        let attested = azure().sign(&content);
        let want = Identity {
            source: Source::Azure {
                subscription_id: SUBSCRIPTION.into(),
            },
            instance_id: VM_ID.into(),
            region: None,
            location: None,
            name: None,
            document_digest: digest_hex(content.as_bytes()),
            valid_until: Some(NOW + SIX_HOURS),
        };
        let body = serde_json::to_vec(&attested).expect("JSON");
        let wrapped = AttestedDocument {
            encoding: "pkcs7".into(),
            signature: openssl::base64::encode_block(
                &openssl::base64::decode_block(&attested.signature).expect("base64"),
            )
            .as_bytes()
            .chunks(76)
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n"),
        };
        let regional = azure().with_leaf("eastus.metadata.azure.com");
        let cases = [
            ("as signed", attested.clone(), azure().trust(), NOW),
            (
                "parsed from IMDS's body",
                AttestedDocument::from_json(&body).expect("body"),
                azure().trust(),
                NOW,
            ),
            ("base64 with line breaks", wrapped, azure().trust(), NOW),
            (
                "in the next nonce slot",
                attested.clone(),
                azure().trust(),
                NOW + 599,
            ),
        ];
        for (name, attested, trust, now) in cases {
            assert_eq!(
                verify(&attested, &trust, &nonce_key(), now),
                Ok(want.clone()),
                "{name}"
            );
        }
        let got = verify(&fresh(&regional), &azure().trust(), &nonce_key(), NOW)
            .expect("a regional signer");
        assert_eq!(got.source, want.source);
        let azure_us = AzureTrust::from_pem(
            azure().roots_pem().as_bytes(),
            azure().intermediates_pem().as_bytes(),
            &["*.metadata.azure.us"],
        )
        .expect("trust");
        let us = azure().with_leaf("usgovvirginia.metadata.azure.us");
        assert!(verify(&fresh(&us), &azure_us, &nonce_key(), NOW).is_ok());
    }

    #[test]
    fn refusals() {
        let trust = azure().trust();
        let nonce = nonce_key().issue(NOW);
        let attested = |nonce: &str, created: i64, expires: i64| {
            azure_attested(SUBSCRIPTION, VM_ID, nonce, created, expires)
        };
        let good = attested(&nonce, NOW - 5, NOW + SIX_HOURS);
        let signed = |content: &str| azure().sign(content);
        let foreign = AzureSigner::generate("metadata.azure.com");
        let no_intermediate =
            AzureTrust::from_pem(azure().roots_pem().as_bytes(), b"", &PUBLIC_CLOUD_SIGNERS)
                .expect("trust");
        let other_nonces = NonceKey::new(b"the other cluster's nonce secret").expect("key");
        let content =
            |nonce: &str| azure_content(SUBSCRIPTION, VM_ID, nonce, NOW - 5, NOW + SIX_HOURS);
        let cases: Vec<(&str, AttestedDocument, &AzureTrust, i64, Reason, &str)> = vec![
            (
                "another vmId written into the signed content",
                tamper_attested(&good, VM_ID, "02aab8a4-74ef-476e-8182-f6d2ba4166a7"),
                &trust,
                NOW,
                Reason::BadSignature,
                "does not match its content",
            ),
            (
                "signed under another root",
                fresh(&foreign),
                &trust,
                NOW,
                Reason::UntrustedCertificate,
                "does not chain to a trusted Azure root",
            ),
            (
                "the intermediate missing from the trust",
                good.clone(),
                &no_intermediate,
                NOW,
                Reason::UntrustedCertificate,
                "unable to get local issuer certificate",
            ),
            (
                "a certificate expired at now",
                attested(
                    &nonce_key().issue(4_100_000_000),
                    4_100_000_000,
                    4_100_000_000 + SIX_HOURS,
                ),
                &trust,
                4_100_000_000,
                Reason::UntrustedCertificate,
                "certificate has expired",
            ),
            (
                "a signer not named metadata.azure.com",
                fresh(&azure().with_leaf("evil.example.com")),
                &trust,
                NOW,
                Reason::UntrustedCertificate,
                "signed by \"evil.example.com\", which is not an allowed signer",
            ),
            (
                "a look-alike name",
                fresh(&azure().with_leaf("evilmetadata.azure.com")),
                &trust,
                NOW,
                Reason::UntrustedCertificate,
                "not an allowed signer",
            ),
            (
                "expired",
                attested(&nonce, NOW - 7 * 3600, NOW - 61),
                &trust,
                NOW,
                Reason::Expired,
                "expired at",
            ),
            (
                "created in the future",
                attested(&nonce, NOW + 3600, NOW + 7200),
                &trust,
                NOW,
                Reason::NotYetValid,
                "created at",
            ),
            (
                "a nonce two slots old",
                attested(&nonce_key().issue(NOW - 600), NOW - 5, NOW + SIX_HOURS),
                &trust,
                NOW,
                Reason::BadNonce,
                "not issued in the last 10 minutes",
            ),
            (
                "a nonce of another nonce key",
                attested(&other_nonces.issue(NOW), NOW - 5, NOW + SIX_HOURS),
                &trust,
                NOW,
                Reason::BadNonce,
                "not issued by this enrollment server",
            ),
            (
                "IMDS's default nonce",
                attested("20201130-211924", NOW - 5, NOW + SIX_HOURS),
                &trust,
                NOW,
                Reason::BadNonce,
                "without a nonce",
            ),
            (
                "no nonce at all",
                signed(&content(&nonce).replace(&format!("\"nonce\":\"{nonce}\","), "")),
                &trust,
                NOW,
                Reason::BadNonce,
                "has no nonce",
            ),
            (
                "encoding not pkcs7",
                AttestedDocument {
                    encoding: "base64".into(),
                    signature: good.signature.clone(),
                },
                &trust,
                NOW,
                Reason::Malformed,
                "has encoding \"base64\"",
            ),
            (
                "garbage base64",
                AttestedDocument {
                    encoding: "pkcs7".into(),
                    signature: "%%% not base64 %%%".into(),
                },
                &trust,
                NOW,
                Reason::Malformed,
                "not base64",
            ),
            (
                "base64 but not PKCS7",
                AttestedDocument {
                    encoding: "pkcs7".into(),
                    signature: "aGVsbG8gd29ybGQ=".into(),
                },
                &trust,
                NOW,
                Reason::Malformed,
                "not a PKCS7",
            ),
            (
                "signed content that is not JSON",
                signed("hello"),
                &trust,
                NOW,
                Reason::Malformed,
                "not Azure's attested JSON",
            ),
            (
                "no subscriptionId",
                signed(
                    &content(&nonce)
                        .replace(&format!("\"subscriptionId\":\"{SUBSCRIPTION}\","), ""),
                ),
                &trust,
                NOW,
                Reason::Malformed,
                "no subscriptionId",
            ),
            (
                "ISO times",
                signed(
                    &content(&nonce).replace(&format_time(NOW + SIX_HOURS), "2026-01-01T06:00:00Z"),
                ),
                &trust,
                NOW,
                Reason::Malformed,
                "MM/dd/yy HH:mm:ss -0000",
            ),
        ];
        for (name, attested, trust, now, reason, text) in cases {
            assert_refused(
                name,
                verify(&attested, trust, &nonce_key(), now),
                reason,
                text,
            );
        }
        let not_json = AttestedDocument::from_json(b"<html>").map(|_| unreachable!("not JSON"));
        assert_refused(
            "a body that is not JSON",
            not_json,
            Reason::Malformed,
            "not the JSON IMDS returns",
        );
    }

    #[test]
    fn document_digest_is_stable_and_tells_documents_apart() {
        let trust = azure().trust();
        let nonce = nonce_key().issue(NOW);
        let a = azure_attested(SUBSCRIPTION, VM_ID, &nonce, NOW, NOW + 600);
        let b = azure_attested(
            SUBSCRIPTION,
            VM_ID,
            &nonce_key().issue(NOW + 300),
            NOW,
            NOW + 600,
        );
        let digest = |d: &AttestedDocument| {
            verify(d, &trust, &nonce_key(), NOW + 300)
                .expect("valid")
                .document_digest
        };
        assert_eq!(digest(&a), digest(&a));
        assert_ne!(digest(&a), digest(&b));
    }

    #[test]
    fn unusable_trust() {
        let root = azure().roots_pem();
        type Case<'a> = (&'a str, &'a [u8], &'a [u8], &'a [&'a str]);
        let cases: [Case; 3] = [
            ("no root", b"", b"", &PUBLIC_CLOUD_SIGNERS),
            (
                "garbage intermediates",
                root.as_bytes(),
                b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
                &PUBLIC_CLOUD_SIGNERS,
            ),
            ("no signer name", root.as_bytes(), b"", &[" "]),
        ];
        for (name, roots, intermediates, names) in cases {
            assert!(
                AzureTrust::from_pem(roots, intermediates, names).is_err(),
                "{name}"
            );
        }
    }
}
