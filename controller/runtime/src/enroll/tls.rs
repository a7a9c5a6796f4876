//! TLS for the enrollment server: rustls on aws-lc, the certificate read from files (a
//! Secret's `tls.crt` and `tls.key`) and read again when they change, so a renewal by
//! cert-manager needs no restart. Handshakes run in their own tasks with a deadline: a
//! slow or silent client holds up no one else.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// The certificate files and the acceptor built from them, rebuilt when they change.
struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<(Option<SystemTime>, Option<SystemTime>, TlsAcceptor)>,
}

impl Certificates {
    async fn load(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let acceptor = acceptor(cert, key).await?;
        Ok(Certificates {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: Mutex::new((modified(cert).await, modified(key).await, acceptor)),
        })
    }

    /// The acceptor for the files as they are now. A change that does not load (a half
    /// written pair) keeps the previous certificate and is tried again next time.
    async fn acceptor(&self) -> TlsAcceptor {
        let (cert_time, key_time) = (modified(&self.cert).await, modified(&self.key).await);
        let mut current = self.current.lock().await;
        if (cert_time, key_time) != (current.0, current.1) {
            match acceptor(&self.cert, &self.key).await {
                Ok(acceptor) => {
                    info!(cert = %self.cert.display(), "the TLS certificate changed: serving the new one");
                    *current = (cert_time, key_time, acceptor);
                }
                Err(error) => {
                    warn!(error = %format!("{error:#}"), "the TLS certificate changed but does not load: serving the previous one");
                }
            }
        }
        current.2.clone()
    }
}

async fn modified(path: &Path) -> Option<SystemTime> {
    tokio::fs::metadata(path).await.ok()?.modified().ok()
}

async fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let cert_pem = tokio::fs::read(cert)
        .await
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?;
    let key_pem = tokio::fs::read(key)
        .await
        .with_context(|| format!("reading the TLS key {}", key.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} holds no PEM certificate", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert.display());
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .with_context(|| format!("{} holds no PEM private key", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepted TLS connections, for `axum::serve`.
pub struct TlsListener {
    connections: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Binds `address` and accepts in the background.
    pub async fn bind(address: SocketAddr, cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let certificates = Arc::new(Certificates::load(cert, key).await?);
        let tcp = TcpListener::bind(address)
            .await
            .with_context(|| format!("binding the enrollment address {address}"))?;
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, certificates, tx));
        Ok(TlsListener {
            connections: rx,
            local,
        })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    certificates: Arc<Certificates>,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: wait a little rather than spin.
                warn!(%error, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = certificates.acceptor().await;
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(error)) => debug!(%error, %peer, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The accept loop never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
