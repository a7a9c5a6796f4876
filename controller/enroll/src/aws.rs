//! AWS EC2: the instance identity document and its PKCS7 signature.
//!
//! - The document: <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-identity-documents.html>,
//!   plaintext JSON from IMDS `/latest/dynamic/instance-identity/document` with
//!   `accountId`, `region`, `instanceId`, `availabilityZone`, `pendingTime`, ...
//! - Its signatures: <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/verify-iid.html>
//!   (sections verify-pkcs7 and verify-rsa2048): `/latest/dynamic/instance-identity/pkcs7`
//!   (SHA-1, DSA) and `/latest/dynamic/instance-identity/rsa2048` (SHA-256, RSA-2048)
//!   are base64 PKCS7 bodies without the PEM armour lines (we accept both, with and
//!   without). AWS verifies them with
//!   `openssl smime -verify -in pkcs7 -inform PEM -certfile certificate -noverify`,
//!   whose output is the document: the PKCS7 carries the document as its content, and
//!   AWS then compares that content with the document byte for byte. We verify the
//!   signature over the document as presented (passed as the content, which also
//!   covers a detached PKCS7), so it must be exactly the signed bytes.
//! - The certificates: AWS's self-signed per-region certificates (DSA for `/pkcs7`,
//!   RSA-2048 for `/rsa2048`), <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/regions-certs.html>.
//!   Like `-noverify`, nothing chains: the signer must be one of these certificates
//!   (NOINTERN, so a certificate inside the PKCS7 is never used).

use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use serde::Deserialize;

use crate::refusal::shown;
use crate::{Identity, Reason, Refusal, Source, TrustError, digest_hex};

const CERTS_PAGE: &str = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/regions-certs.html";

/// AWS's public certificates for instance identity signatures: any signer among them
/// is trusted.
#[derive(Clone, Default)]
pub struct AwsTrust {
    certs: Vec<X509>,
}

impl std::fmt::Debug for AwsTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AwsTrust({} certificates)", self.certs.len())
    }
}

impl AwsTrust {
    /// From a PEM bundle of AWS's certificates (one or more `CERTIFICATE` blocks).
    pub fn from_pem(pem: &[u8]) -> Result<AwsTrust, TrustError> {
        let mut trust = AwsTrust::default();
        trust.extend(pem)?;
        Ok(trust)
    }

    /// Adds the certificates of another PEM bundle.
    pub fn extend(&mut self, pem: &[u8]) -> Result<(), TrustError> {
        let certs = X509::stack_from_pem(pem).map_err(|e| {
            TrustError(format!(
                "the AWS certificate bundle is not PEM certificates ({e})"
            ))
        })?;
        if certs.is_empty() {
            return Err(TrustError(format!(
                "the AWS certificate bundle holds no certificate: take them from {CERTS_PAGE}"
            )));
        }
        self.certs.extend(certs);
        Ok(())
    }

    /// The number of certificates trusted.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

/// The fields we use of an instance identity document.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    account_id: String,
    instance_id: String,
    region: String,
    availability_zone: Option<String>,
}

/// Verifies an instance identity `document` (exactly as IMDS returned it) with its
/// `pkcs7` signature (the body of `/pkcs7` or `/rsa2048`, with or without PEM armour).
pub fn verify(document: &str, pkcs7: &str, trust: &AwsTrust) -> Result<Identity, Refusal> {
    let p7 = parse_pkcs7(pkcs7)?;
    let mut certs = Stack::new().map_err(internal)?;
    for cert in &trust.certs {
        certs.push(cert.clone()).map_err(internal)?;
    }
    // NOINTERN: the signer is looked up (by issuer and serial) among the trusted
    // certificates only.
    if p7.signers(&certs, Pkcs7Flags::NOINTERN).is_err() {
        return Err(Refusal::new(
            Reason::UntrustedCertificate,
            format!(
                "the instance identity signature is not made by any of the {} AWS certificates this \
                 server trusts: add AWS's certificate for the instance's region (RSA-2048 for /rsa2048, \
                 DSA for /pkcs7) from {CERTS_PAGE} to the enrollment server's AWS trust",
                trust.certs.len()
            ),
        ));
    }
    let store = X509StoreBuilder::new().map_err(internal)?.build();
    // NOVERIFY: AWS's certificates are self-signed and trusted as they are (like the
    // documented -noverify); BINARY: the signature covers the exact bytes.
    let flags = Pkcs7Flags::NOINTERN | Pkcs7Flags::NOVERIFY | Pkcs7Flags::BINARY;
    if p7
        .verify(&certs, &store, Some(document.as_bytes()), None, flags)
        .is_err()
    {
        return Err(Refusal::new(
            Reason::BadSignature,
            "the instance identity signature does not match the document: send the document exactly \
             as IMDS returned it (/latest/dynamic/instance-identity/document, same bytes and whitespace) \
             together with the signature fetched with it",
        ));
    }
    let doc: Document = serde_json::from_str(document).map_err(|e| {
        Refusal::new(
            Reason::Malformed,
            format!(
                "the signed document is not an EC2 instance identity document ({e}): send \
                 /latest/dynamic/instance-identity/document as the document"
            ),
        )
    })?;
    if doc.account_id.len() != 12 || !doc.account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::new(
            Reason::Malformed,
            format!(
                "the instance identity document's accountId {} is not a 12-digit AWS account id: send \
                 /latest/dynamic/instance-identity/document as the document",
                shown(&doc.account_id)
            ),
        ));
    }
    if doc.instance_id.is_empty() || doc.region.is_empty() {
        return Err(Refusal::new(
            Reason::Malformed,
            "the instance identity document has an empty instanceId or region: send \
             /latest/dynamic/instance-identity/document as the document",
        ));
    }
    Ok(Identity {
        source: Source::Aws {
            account_id: doc.account_id,
        },
        instance_id: doc.instance_id,
        region: Some(doc.region),
        location: doc.availability_zone,
        name: None,
        document_digest: digest_hex(document.as_bytes()),
        valid_until: None,
    })
}

/// A base64 PKCS7, with or without `-----BEGIN PKCS7-----` armour, line breaks anywhere.
fn parse_pkcs7(text: &str) -> Result<Pkcs7, Refusal> {
    let body: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("-----"))
        .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
        .collect();
    let malformed = |what: &str| {
        Refusal::new(
            Reason::Malformed,
            format!(
                "the instance identity signature is {what}: send the body of \
                 /latest/dynamic/instance-identity/rsa2048 (or /pkcs7) as IMDS returned it"
            ),
        )
    };
    if body.is_empty() {
        return Err(malformed("empty"));
    }
    let der = openssl::base64::decode_block(&body).map_err(|_| malformed("not base64"))?;
    let p7 = Pkcs7::from_der(&der).map_err(|_| malformed("not a PKCS7 structure"))?;
    if p7.signed().is_none() {
        return Err(malformed("a PKCS7 structure but not signed data"));
    }
    Ok(p7)
}

/// OpenSSL failing to allocate a stack or store: not the document's fault.
fn internal(e: openssl::error::ErrorStack) -> Refusal {
    Refusal::new(
        Reason::Malformed,
        format!(
            "the enrollment server could not check the signature (OpenSSL: {e}): try again later"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{AwsSigner, assert_refused, aws, aws_document, aws_document_json};

    const ACCOUNT: &str = "111122223333";
    const REGION: &str = "eu-west-1";
    const INSTANCE: &str = "i-0123456789abcdef0";

    #[test]
    fn a_signed_document_verifies_to_its_identity() {
        let (document, pkcs7) = aws_document(ACCOUNT, REGION, INSTANCE);
        let want = Identity {
            source: Source::Aws {
                account_id: ACCOUNT.into(),
            },
            instance_id: INSTANCE.into(),
            region: Some(REGION.into()),
            location: Some("eu-west-1a".into()),
            name: None,
            document_digest: digest_hex(document.as_bytes()),
            valid_until: None,
        };
        let mut more = AwsSigner::generate().trust();
        more.extend(aws().cert_pem().as_bytes()).expect("PEM");
        assert_eq!(more.len(), 2);
        let cases = [
            ("IMDS's base64 lines", pkcs7.clone(), aws().trust()),
            ("on one line", pkcs7.replace('\n', ""), aws().trust()),
            (
                "with PEM armour",
                format!("-----BEGIN PKCS7-----\n{pkcs7}\n-----END PKCS7-----\n"),
                aws().trust(),
            ),
            ("detached", aws().sign_detached(&document), aws().trust()),
            ("among other certificates", pkcs7.clone(), more),
        ];
        for (name, pkcs7, trust) in cases {
            assert_eq!(
                verify(&document, &pkcs7, &trust),
                Ok(want.clone()),
                "{name}"
            );
        }
    }

    #[test]
    fn refusals() {
        let trust = aws().trust();
        let (document, pkcs7) = aws_document(ACCOUNT, REGION, INSTANCE);
        let other_document = aws_document_json("444455556666", REGION, INSTANCE);
        let stranger = AwsSigner::generate();
        let signed = |doc: &str| (doc.to_string(), aws().sign(doc));
        let cases: Vec<(&str, (String, String), Reason, &str)> = vec![
            (
                "another account in the document",
                (other_document.clone(), pkcs7.clone()),
                Reason::BadSignature,
                "does not match the document",
            ),
            (
                "a newline added",
                (format!("{document}\n"), pkcs7.clone()),
                Reason::BadSignature,
                "same bytes",
            ),
            (
                "the signature of another document",
                (document.clone(), aws().sign(&other_document)),
                Reason::BadSignature,
                "does not match",
            ),
            (
                "signed by a certificate not trusted",
                (document.clone(), stranger.sign(&document)),
                Reason::UntrustedCertificate,
                "regions-certs.html",
            ),
            (
                "an untrusted certificate carried inside the PKCS7",
                (document.clone(), stranger.sign_with_certificate(&document)),
                Reason::UntrustedCertificate,
                "not made by any of the 1 AWS certificates",
            ),
            (
                "garbage base64",
                (document.clone(), "not base64 at all!".into()),
                Reason::Malformed,
                "not base64",
            ),
            (
                "base64 but not PKCS7",
                (document.clone(), "aGVsbG8gd29ybGQ=".into()),
                Reason::Malformed,
                "not a PKCS7",
            ),
            (
                "empty signature",
                (document.clone(), "\n".into()),
                Reason::Malformed,
                "empty",
            ),
            (
                "armour only",
                (
                    document.clone(),
                    "-----BEGIN PKCS7-----\n-----END PKCS7-----".into(),
                ),
                Reason::Malformed,
                "empty",
            ),
            (
                "a signed document that is not JSON",
                signed("hello"),
                Reason::Malformed,
                "not an EC2 instance identity document",
            ),
            (
                "JSON without accountId",
                signed(r#"{"instanceId":"i-1","region":"eu-west-1"}"#),
                Reason::Malformed,
                "accountId",
            ),
            (
                "an account id that is not 12 digits",
                signed(&aws_document_json("12345", REGION, INSTANCE)),
                Reason::Malformed,
                "\"12345\" is not a 12-digit",
            ),
            (
                "an empty region",
                signed(&aws_document_json(ACCOUNT, "", INSTANCE)),
                Reason::Malformed,
                "empty instanceId or region",
            ),
        ];
        for (name, (document, pkcs7), reason, text) in cases {
            assert_refused(name, verify(&document, &pkcs7, &trust), reason, text);
        }
    }

    #[test]
    fn document_digest_is_stable_and_tells_documents_apart() {
        let trust = aws().trust();
        let (a, a_sig) = aws_document(ACCOUNT, REGION, INSTANCE);
        let (b, b_sig) = aws_document(ACCOUNT, REGION, "i-0fedcba9876543210");
        let first = verify(&a, &a_sig, &trust).expect("valid").document_digest;
        assert_eq!(
            verify(&a, &aws().sign(&a), &trust)
                .expect("valid")
                .document_digest,
            first
        );
        assert_ne!(
            verify(&b, &b_sig, &trust).expect("valid").document_digest,
            first
        );
        assert_eq!(first.len(), 64);
    }

    #[test]
    fn unusable_bundles() {
        for (name, pem) in [
            ("empty", &b""[..]),
            ("not PEM", b"hello"),
            (
                "a key, not a certificate",
                b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            ),
        ] {
            assert!(AwsTrust::from_pem(pem).is_err(), "{name}");
        }
    }
}
