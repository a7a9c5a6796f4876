//! Real trust roots, keys and signed documents, made with openssl, for tests (this
//! crate's and the enrollment server's): behind the `testing` feature.
//!
//! Each cloud has a signer type that generates its keys (RSA 2048 or P-256) and
//! certificates, a shared instance generated once per process (`aws()`, `gcp()`,
//! `azure()`, `vmware()`), and shorthands that sign with it (`aws_document`,
//! `gcp_token`, `azure_attested`, `vmware_token`). Bad variants: generate another
//! signer (another key, a chain to another root), sign altered content, or alter a
//! signed document afterwards ([`tamper_jwt`], [`tamper_attested`]).
//!
//! Certificates are valid from 2017-07-14 to 2096-10-02, so any `now` of a test in
//! between (such as [`NOW`]) sees them valid. Failures here are bugs of the test
//! setup, so this module panics with a message instead of returning errors.

use std::sync::OnceLock;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509Builder, X509NameBuilder, X509NameRef};
use serde_json::{Value, json};

use crate::{
    AttestedDocument, AwsTrust, AzureTrust, GcpKeys, Identity, NonceKey, Reason, Refusal,
    VmwareTrust,
};

/// A convenient "now" for tests: 2026-01-01T00:00:00Z (the start of a nonce slot).
pub const NOW: i64 = 1_767_225_600;
/// A convenient audience for tests.
pub const AUDIENCE: &str = "https://enroll.patchfleet.example";
/// The project number in [`gcp_claims`].
pub const GCP_PROJECT_NUMBER: u64 = 123_456_789_012;
/// The zone in [`gcp_claims`].
pub const GCP_ZONE: &str = "europe-west1-b";
/// The nonce secret of [`nonce_key`].
pub const NONCE_SECRET: &[u8] = b"patchfleet test nonce secret, 32B";

const NOT_BEFORE: i64 = 1_500_000_000;
const NOT_AFTER: i64 = 4_000_000_000;

fn rsa_key() -> PKey<Private> {
    let rsa = Rsa::generate(2048).expect("generate an RSA 2048 key");
    PKey::from_rsa(rsa).expect("wrap the RSA key")
}

fn p256_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
    PKey::from_ec_key(EcKey::generate(&group).expect("generate a P-256 key"))
        .expect("wrap the EC key")
}

/// A certificate for `key` named `subject` (`(field, value)` pairs), signed by `issuer`
/// (its certificate and key) or self-signed; a CA, or a leaf with `dns` names.
fn certificate(
    subject: &[(&str, &str)],
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    ca: bool,
    dns: &[&str],
) -> X509 {
    let mut name = X509NameBuilder::new().expect("name builder");
    for (field, value) in subject {
        name.append_entry_by_text(field, value).expect("name entry");
    }
    let name = name.build();
    let mut serial = BigNum::new().expect("bignum");
    serial
        .rand(120, MsbOption::MAYBE_ZERO, false)
        .expect("random serial");

    let mut b = X509Builder::new().expect("certificate builder");
    b.set_version(2).expect("v3");
    b.set_serial_number(&serial.to_asn1_integer().expect("serial"))
        .expect("serial");
    b.set_subject_name(&name).expect("subject");
    let issuer_name: &X509NameRef = match issuer {
        Some((cert, _)) => cert.subject_name(),
        None => &name,
    };
    b.set_issuer_name(issuer_name).expect("issuer");
    b.set_pubkey(key).expect("public key");
    b.set_not_before(&Asn1Time::from_unix(NOT_BEFORE).expect("time"))
        .expect("not before");
    b.set_not_after(&Asn1Time::from_unix(NOT_AFTER).expect("time"))
        .expect("not after");
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
            .expect("bc");
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .expect("ku"),
        )
        .expect("ku");
    } else {
        b.append_extension(BasicConstraints::new().critical().build().expect("bc"))
            .expect("bc");
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .build()
                .expect("ku"),
        )
        .expect("ku");
    }
    if !dns.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for name in dns {
            san.dns(name);
        }
        let san = san
            .build(&b.x509v3_context(issuer.map(|(cert, _)| &**cert), None))
            .expect("san");
        b.append_extension(san).expect("san");
    }
    b.sign(issuer.map_or(key, |(_, key)| key), MessageDigest::sha256())
        .expect("sign the certificate");
    b.build()
}

fn pem(cert: &X509) -> String {
    String::from_utf8(cert.to_pem().expect("certificate PEM")).expect("PEM is ASCII")
}

/// Base64 wrapped at 64 columns, as IMDS serves `/pkcs7` and `/rsa2048`.
fn wrapped_base64(der: &[u8]) -> String {
    let text = openssl::base64::encode_block(der);
    text.as_bytes()
        .chunks(64)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Unpadded base64url (JWT, JWK).
pub fn b64url(bytes: &[u8]) -> String {
    openssl::base64::encode_block(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn b64url_decode(text: &str) -> Vec<u8> {
    let mut standard = text.replace('-', "+").replace('_', "/");
    while !standard.len().is_multiple_of(4) {
        standard.push('=');
    }
    openssl::base64::decode_block(&standard).expect("base64url")
}

fn jwt(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).expect("sign the JWT")
}

/// Asserts that `result` is a refusal for `reason` whose message contains `text` and
/// reads as something a person can act on: what was wrong, a colon, what to do.
#[track_caller]
pub fn assert_refused(case: &str, result: Result<Identity, Refusal>, reason: Reason, text: &str) {
    let refusal = match result {
        Ok(identity) => panic!("{case}: verified as {identity:?}, want a {reason} refusal"),
        Err(refusal) => refusal,
    };
    assert_eq!(refusal.reason, reason, "{case}: {}", refusal.message);
    assert!(
        refusal.message.contains(text),
        "{case}: {:?} does not contain {text:?}",
        refusal.message
    );
    let (what, todo) = refusal.message.split_once(": ").unwrap_or_else(|| {
        panic!(
            "{case}: {:?} does not say what to do after a colon",
            refusal.message
        )
    });
    assert!(
        what.len() >= 20 && todo.len() >= 15,
        "{case}: {:?} is too terse to act on",
        refusal.message
    );
    assert_eq!(refusal.to_string(), refusal.message, "{case}");
}

/// The token with its claims changed by `change` and its header and signature kept:
/// a tampered token.
pub fn tamper_jwt(token: &str, change: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWT");
    let mut claims: Value = serde_json::from_slice(&b64url_decode(parts[1])).expect("JSON claims");
    change(&mut claims);
    let payload = b64url(&serde_json::to_vec(&claims).expect("JSON"));
    format!("{}.{payload}.{}", parts[0], parts[2])
}

// ---------------------------------------------------------------------------------- AWS

/// An "AWS region certificate": self-signed, RSA 2048 (like the RSA-2048 certificates
/// for `/rsa2048`), and its key.
pub struct AwsSigner {
    pub cert: X509,
    key: PKey<Private>,
}

impl AwsSigner {
    pub fn generate() -> AwsSigner {
        let key = rsa_key();
        let subject = [
            ("C", "US"),
            ("ST", "Washington State"),
            ("L", "Seattle"),
            ("O", "Amazon Web Services LLC"),
        ];
        AwsSigner {
            cert: certificate(&subject, &key, None, false, &[]),
            key,
        }
    }

    pub fn cert_pem(&self) -> String {
        pem(&self.cert)
    }

    /// A trust holding only this certificate.
    pub fn trust(&self) -> AwsTrust {
        AwsTrust::from_pem(self.cert_pem().as_bytes()).expect("the certificate's own PEM")
    }

    /// The PKCS7 signature of `document` as IMDS serves it: base64 lines, no armour,
    /// the document inside, no certificate.
    pub fn sign(&self, document: &str) -> String {
        self.pkcs7(document, Pkcs7Flags::empty(), false)
    }

    /// A detached PKCS7 signature of `document` (without the document inside).
    pub fn sign_detached(&self, document: &str) -> String {
        self.pkcs7(document, Pkcs7Flags::DETACHED, false)
    }

    /// A PKCS7 signature of `document` that carries this certificate inside, as a
    /// forger would: verification must not trust it for being there.
    pub fn sign_with_certificate(&self, document: &str) -> String {
        self.pkcs7(document, Pkcs7Flags::empty(), true)
    }

    fn pkcs7(&self, document: &str, flags: Pkcs7Flags, with_certificate: bool) -> String {
        let none = Stack::new().expect("stack");
        let flags = flags
            | Pkcs7Flags::BINARY
            | if with_certificate {
                Pkcs7Flags::empty()
            } else {
                Pkcs7Flags::NOCERTS
            };
        let p7 = Pkcs7::sign(&self.cert, &self.key, &none, document.as_bytes(), flags)
            .expect("sign PKCS7");
        wrapped_base64(&p7.to_der().expect("PKCS7 DER"))
    }
}

/// The shared AWS signer.
pub fn aws() -> &'static AwsSigner {
    static SIGNER: OnceLock<AwsSigner> = OnceLock::new();
    SIGNER.get_or_init(AwsSigner::generate)
}

/// An instance identity document as IMDS serves it (pretty-printed JSON).
pub fn aws_document_json(account: &str, region: &str, instance: &str) -> String {
    let doc = json!({
        "accountId": account,
        "architecture": "x86_64",
        "availabilityZone": format!("{region}a"),
        "billingProducts": null,
        "devpayProductCodes": null,
        "marketplaceProductCodes": null,
        "imageId": "ami-0abcdef1234567890",
        "instanceId": instance,
        "instanceType": "t3.micro",
        "kernelId": null,
        "pendingTime": "2025-12-31T23:00:00Z",
        "privateIp": "10.0.1.10",
        "ramdiskId": null,
        "region": region,
        "version": "2017-09-30",
    });
    serde_json::to_string_pretty(&doc).expect("JSON")
}

/// `(document JSON, PKCS7 base64)` signed by [`aws()`].
pub fn aws_document(account: &str, region: &str, instance: &str) -> (String, String) {
    let document = aws_document_json(account, region, instance);
    let pkcs7 = aws().sign(&document);
    (document, pkcs7)
}

// ------------------------------------------------------------------------- Google Cloud

/// A Google-like RSA signing key with its key id.
pub struct GcpSigner {
    pub kid: String,
    key: PKey<Private>,
}

impl GcpSigner {
    pub fn generate(kid: &str) -> GcpSigner {
        GcpSigner {
            kid: kid.to_string(),
            key: rsa_key(),
        }
    }

    /// The JWKS JSON of this key, as Google publishes its keys.
    pub fn jwks_json(&self) -> String {
        let rsa = self.key.rsa().expect("RSA key");
        json!({"keys": [{
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": b64url(&rsa.n().to_vec()),
            "e": b64url(&rsa.e().to_vec()),
        }]})
        .to_string()
    }

    pub fn keys(&self) -> GcpKeys {
        GcpKeys::from_json(self.jwks_json().as_bytes()).expect("our own JWKS")
    }

    /// An RS256 JWT of `claims` with this key's `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_kid(Some(&self.kid), claims)
    }

    /// An RS256 JWT of `claims` with the `kid` given (or none) in its header.
    pub fn sign_with_kid(&self, kid: Option<&str>, claims: &Value) -> String {
        let pem = self.key.private_key_to_pem_pkcs8().expect("PKCS8 PEM");
        let key = EncodingKey::from_rsa_pem(&pem).expect("RSA encoding key");
        jwt(Algorithm::RS256, kid, &key, claims)
    }
}

/// The shared Google-like signer (kid `patchfleet-test-google`).
pub fn gcp() -> &'static GcpSigner {
    static SIGNER: OnceLock<GcpSigner> = OnceLock::new();
    SIGNER.get_or_init(|| GcpSigner::generate("patchfleet-test-google"))
}

/// The claims of a `format=full` instance identity token: project `project`
/// ([`GCP_PROJECT_NUMBER`]), instance id `instance` named `vm-<instance>` in
/// [`GCP_ZONE`].
pub fn gcp_claims(project: &str, instance: &str, audience: &str, iat: i64, exp: i64) -> Value {
    json!({
        "iss": "https://accounts.google.com",
        "aud": audience,
        "azp": "112233445566778899000",
        "sub": "112233445566778899000",
        "iat": iat,
        "exp": exp,
        "google": {"compute_engine": {
            "project_id": project,
            "project_number": GCP_PROJECT_NUMBER,
            "zone": GCP_ZONE,
            "instance_id": instance,
            "instance_name": format!("vm-{instance}"),
            "instance_creation_timestamp": iat - 86_400,
        }},
    })
}

/// An instance identity token signed by [`gcp()`].
pub fn gcp_token(project: &str, instance: &str, audience: &str, iat: i64, exp: i64) -> String {
    gcp().sign(&gcp_claims(project, instance, audience, iat, exp))
}

// -------------------------------------------------------------------------------- Azure

/// An Azure-like chain: a root CA → an intermediate CA → a leaf that signs attested data.
pub struct AzureSigner {
    pub root: X509,
    pub intermediate: X509,
    intermediate_key: PKey<Private>,
    pub leaf: X509,
    leaf_key: PKey<Private>,
}

impl AzureSigner {
    /// A new root, intermediate and leaf named `leaf_name` (CN and DNS name).
    pub fn generate(leaf_name: &str) -> AzureSigner {
        let root_key = rsa_key();
        let root = certificate(
            &[
                ("C", "US"),
                ("O", "Patchfleet Test"),
                ("CN", "Patchfleet Test Global Root G2"),
            ],
            &root_key,
            None,
            true,
            &[],
        );
        let intermediate_key = rsa_key();
        let intermediate = certificate(
            &[
                ("C", "US"),
                ("O", "Patchfleet Test"),
                ("CN", "Patchfleet Test Azure TLS Issuing CA 01"),
            ],
            &intermediate_key,
            Some((&root, &root_key)),
            true,
            &[],
        );
        let (leaf, leaf_key) = Self::leaf(&intermediate, &intermediate_key, leaf_name);
        AzureSigner {
            root,
            intermediate,
            intermediate_key,
            leaf,
            leaf_key,
        }
    }

    /// The same root and intermediate with a new leaf named `leaf_name`.
    pub fn with_leaf(&self, leaf_name: &str) -> AzureSigner {
        let (leaf, leaf_key) = Self::leaf(&self.intermediate, &self.intermediate_key, leaf_name);
        AzureSigner {
            root: self.root.clone(),
            intermediate: self.intermediate.clone(),
            intermediate_key: self.intermediate_key.clone(),
            leaf,
            leaf_key,
        }
    }

    fn leaf(
        intermediate: &X509,
        intermediate_key: &PKey<Private>,
        name: &str,
    ) -> (X509, PKey<Private>) {
        let key = rsa_key();
        let cert = certificate(
            &[("CN", name)],
            &key,
            Some((intermediate, intermediate_key)),
            false,
            &[name],
        );
        (cert, key)
    }

    pub fn roots_pem(&self) -> String {
        pem(&self.root)
    }

    pub fn intermediates_pem(&self) -> String {
        pem(&self.intermediate)
    }

    /// Trusts this root and intermediate and Azure's public-cloud signer names.
    pub fn trust(&self) -> AzureTrust {
        AzureTrust::from_pem(
            self.roots_pem().as_bytes(),
            self.intermediates_pem().as_bytes(),
            &crate::azure::PUBLIC_CLOUD_SIGNERS,
        )
        .expect("our own certificates")
    }

    /// Attested data signing `content` as IMDS does: PKCS7 with the content and the
    /// leaf certificate inside.
    pub fn sign(&self, content: &str) -> AttestedDocument {
        let none = Stack::new().expect("stack");
        let p7 = Pkcs7::sign(
            &self.leaf,
            &self.leaf_key,
            &none,
            content.as_bytes(),
            Pkcs7Flags::BINARY,
        )
        .expect("sign PKCS7");
        AttestedDocument {
            encoding: "pkcs7".into(),
            signature: openssl::base64::encode_block(&p7.to_der().expect("PKCS7 DER")),
        }
    }
}

/// The shared Azure-like signer, its leaf named `metadata.azure.com`.
pub fn azure() -> &'static AzureSigner {
    static SIGNER: OnceLock<AzureSigner> = OnceLock::new();
    SIGNER.get_or_init(|| AzureSigner::generate("metadata.azure.com"))
}

/// The nonce key of the tests ([`NONCE_SECRET`]).
pub fn nonce_key() -> NonceKey {
    NonceKey::new(NONCE_SECRET).expect("a long enough secret")
}

/// The signed JSON of attested data, with Azure's time format.
pub fn azure_content(
    subscription: &str,
    vm_id: &str,
    nonce: &str,
    created: i64,
    expires: i64,
) -> String {
    json!({
        "licenseType": "",
        "nonce": nonce,
        "plan": {"name": "", "product": "", "publisher": ""},
        "sku": "22_04-lts-gen2",
        "subscriptionId": subscription,
        "timeStamp": {
            "createdOn": crate::azure::format_time(created),
            "expiresOn": crate::azure::format_time(expires),
        },
        "vmId": vm_id,
    })
    .to_string()
}

/// Attested data signed by [`azure()`].
pub fn azure_attested(
    subscription: &str,
    vm_id: &str,
    nonce: &str,
    created: i64,
    expires: i64,
) -> AttestedDocument {
    azure().sign(&azure_content(subscription, vm_id, nonce, created, expires))
}

/// The attested data with `from` replaced by `to` (same length) inside the signed
/// PKCS7: altered content under the original signature.
pub fn tamper_attested(attested: &AttestedDocument, from: &str, to: &str) -> AttestedDocument {
    assert_eq!(from.len(), to.len(), "same length keeps the DER valid");
    let mut der = openssl::base64::decode_block(&attested.signature).expect("base64");
    let at = der
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .expect("the text to replace is in the content");
    der[at..at + to.len()].copy_from_slice(to.as_bytes());
    AttestedDocument {
        encoding: attested.encoding.clone(),
        signature: openssl::base64::encode_block(&der),
    }
}

// ------------------------------------------------------------------------------- VMware

/// A vCenter signer's key: RSA 2048 (RS256) or P-256 (ES256).
pub struct VmwareSigner {
    key: PKey<Private>,
    alg: Algorithm,
}

impl VmwareSigner {
    pub fn rsa() -> VmwareSigner {
        VmwareSigner {
            key: rsa_key(),
            alg: Algorithm::RS256,
        }
    }

    pub fn p256() -> VmwareSigner {
        VmwareSigner {
            key: p256_key(),
            alg: Algorithm::ES256,
        }
    }

    pub fn public_pem(&self) -> String {
        String::from_utf8(self.key.public_key_to_pem().expect("public PEM")).expect("PEM is ASCII")
    }

    /// A trust holding this key for `vcenter`.
    pub fn trust(&self, vcenter: &str) -> VmwareTrust {
        let mut trust = VmwareTrust::new();
        trust
            .add(vcenter, self.public_pem().as_bytes())
            .expect("our own key");
        trust
    }

    /// A JWT of `claims` signed with this key (RS256 or ES256).
    pub fn sign(&self, claims: &Value) -> String {
        let pem = self.key.private_key_to_pem_pkcs8().expect("PKCS8 PEM");
        let key = match self.alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_rsa_pem(&pem),
        }
        .expect("encoding key");
        jwt(self.alg, None, &key, claims)
    }
}

/// The shared VMware signer (RSA, RS256).
pub fn vmware() -> &'static VmwareSigner {
    static SIGNER: OnceLock<VmwareSigner> = OnceLock::new();
    SIGNER.get_or_init(VmwareSigner::rsa)
}

/// The claims of a VMware token (our format), the VM named `vm-<first 8 of uuid>`.
pub fn vmware_claims(vcenter: &str, uuid: &str, audience: &str, iat: i64, exp: i64) -> Value {
    json!({
        "iss": vcenter,
        "sub": uuid,
        "aud": audience,
        "iat": iat,
        "exp": exp,
        "vm_name": format!("vm-{}", uuid.get(..8).unwrap_or(uuid)),
    })
}

/// A VMware token signed by [`vmware()`].
pub fn vmware_token(vcenter: &str, uuid: &str, audience: &str, iat: i64, exp: i64) -> String {
    vmware().sign(&vmware_claims(vcenter, uuid, audience, iat, exp))
}
