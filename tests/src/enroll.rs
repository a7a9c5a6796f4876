//! The enrollment server as tests run it: `patchfleet enroll` as a process, with trust
//! roots, keys and a TLS certificate the test made (patchfleet_enroll::testing, openssl),
//! and an HTTPS client that trusts only the test's CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::stack::{Stack, free_local_address};
use crate::web::get;

/// The audience Google Cloud and VMware tokens are made for in the tests.
pub const AUDIENCE: &str = "https://enroll.patchfleet.test";
/// The vCenter whose signer the tests hold the key of.
pub const VCENTER: &str = "vc01.example.com";

/// A CA and a server certificate for 127.0.0.1, made fresh.
pub struct TlsFiles {
    pub ca_pem: Vec<u8>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn key() -> anyhow::Result<PKey<Private>> {
    Ok(PKey::from_rsa(Rsa::generate(2048)?)?)
}

fn certificate(
    cn: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    ca: bool,
) -> anyhow::Result<X509> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", cn)?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(issuer.map_or(&name, |(cert, _)| cert.subject_name()))?;
    b.set_pubkey(key)?;
    let (not_before, not_after) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(2)?);
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(KeyUsage::new().critical().key_cert_sign().build()?)?;
    } else {
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .dns("localhost")
            .build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None))?;
        b.append_extension(san)?;
    }
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())?;
    Ok(b.build())
}

impl TlsFiles {
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        let ca_key = key()?;
        let ca = certificate("patchfleet test CA", &ca_key, None, true)?;
        let leaf_key = key()?;
        let leaf = certificate("127.0.0.1", &leaf_key, Some((&ca, &ca_key)), false)?;
        let cert = dir.join("tls.crt");
        let key_file = dir.join("tls.key");
        std::fs::write(&cert, leaf.to_pem()?)?;
        std::fs::write(&key_file, leaf_key.private_key_to_pem_pkcs8()?)?;
        Ok(TlsFiles {
            ca_pem: ca.to_pem()?,
            cert,
            key: key_file,
        })
    }
}

/// `patchfleet enroll`, running.
pub struct EnrollProcess {
    child: Child,
    pub https: SocketAddr,
    pub http: SocketAddr,
    pub log: PathBuf,
    pub ca_pem: Vec<u8>,
    pub dir: PathBuf,
}

impl EnrollProcess {
    /// Starts it with the stack's kubeconfig and simulator, trusting what `trust_args`
    /// name (files the test wrote into `dir`), and waits until it is ready.
    pub fn start(stack: &Stack, dir: &Path, trust_args: &[String]) -> anyhow::Result<Self> {
        let tls = TlsFiles::create(dir)?;
        let (https, http) = (free_local_address()?, free_local_address()?);
        let log = dir.join("enroll.log");
        let child = stack
            .patchfleet_server(
                "enroll",
                std::fs::File::create(&log).context("creating the enroll log")?,
            )?
            .args(["--https-address", &https.to_string()])
            .args(["--http-address", &http.to_string()])
            .args(["--tls-cert".as_ref(), tls.cert.as_os_str()])
            .args(["--tls-key".as_ref(), tls.key.as_os_str()])
            .args(["--audience", AUDIENCE, "--cluster-id", &stack.cluster_id])
            .args(["--rate-limit", "1000", "--namespace", "default"])
            .args(["--pod-name", "patchfleet-enroll-test"])
            .args(trust_args)
            .spawn()
            .context("starting patchfleet enroll")?;
        let mut process = EnrollProcess {
            child,
            https,
            http,
            log,
            ca_pem: tls.ca_pem,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = process.child.try_wait()? {
                bail!(
                    "patchfleet enroll exited ({status}):\n{}",
                    process.log_text()
                );
            }
            if get(http, "/readyz", None).is_ok_and(|a| a.status == 200) {
                return Ok(process);
            }
            if Instant::now() > deadline {
                bail!(
                    "patchfleet enroll was not ready in 60 s:\n{}",
                    process.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client that trusts only the test's CA.
    pub fn client(&self) -> anyhow::Result<HttpsClient> {
        HttpsClient::new(self.https, &self.ca_pem)
    }
}

impl Drop for EnrollProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HTTP/1.1 over TLS, one request per connection, as `curl` would send it.
#[derive(Clone)]
pub struct HttpsClient {
    address: SocketAddr,
    connector: TlsConnector,
}

impl HttpsClient {
    pub fn new(address: SocketAddr, ca_pem: &[u8]) -> anyhow::Result<Self> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(cert?)?;
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(HttpsClient {
            address,
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Sends one request; returns the status and the body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: &str,
    ) -> anyhow::Result<(u16, String)> {
        let tcp = TcpStream::connect(self.address).await?;
        let name = ServerName::try_from("127.0.0.1")?;
        let mut tls = self.connector.connect(name, tcp).await?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        // A server that closes without close_notify is fine here: what it sent counts.
        let _ = tls.read_to_end(&mut response).await;
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .with_context(|| format!("no HTTP response: {text:?}"))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no status in {head:?}"))?;
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            crate::stack::dechunk(body)?
        } else {
            body.to_owned()
        };
        Ok((status, body))
    }
}
