//! What the server trusts, loaded once at start from files and flags: AWS's certificates
//! (built in, plus `--aws-certificates`), Google's keys (fetched from the JWKS URL and
//! cached), Azure's roots and the nonce secret, each vCenter's key. A source without its
//! trust material refuses its machines with a reason that says which flag is missing.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use patchfleet_enroll::{AwsTrust, AzureTrust, GcpKeys, NonceKey, VmwareTrust};
use tokio::sync::RwLock;
use tracing::{info, warn};

use crate::args::EnrollArgs;

/// The largest JWKS document read.
const JWKS_LIMIT: usize = 1 << 20;
/// A token signed by a key not in the cache fetches the keys again at most this often.
const FORCED_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

pub struct Trust {
    pub aws: AwsTrust,
    pub gcp: GoogleKeys,
    pub azure: Option<AzureTrust>,
    pub nonces: Option<NonceKey>,
    pub vmware: VmwareTrust,
}

impl Trust {
    pub async fn load(args: &EnrollArgs) -> anyhow::Result<Trust> {
        let mut aws = if args.no_builtin_aws_certificates {
            None
        } else {
            Some(
                patchfleet_enroll::builtin_trust()
                    .context("the built-in AWS certificates do not load")?,
            )
        };
        for file in &args.aws_certificates {
            let pem = read(file, "AWS certificates").await?;
            match aws.as_mut() {
                Some(trust) => trust
                    .extend(&pem)
                    .with_context(|| format!("{} holds no usable certificate", file.display()))?,
                None => {
                    aws = Some(AwsTrust::from_pem(&pem).with_context(|| {
                        format!("{} holds no usable certificate", file.display())
                    })?)
                }
            }
        }
        let Some(aws) = aws else {
            bail!("--no-builtin-aws-certificates needs at least one --aws-certificates file");
        };
        let azure = match &args.azure_roots {
            Some(roots) => {
                let roots = read(roots, "Azure roots").await?;
                let intermediates = match &args.azure_intermediates {
                    Some(file) => read(file, "Azure intermediates").await?,
                    None => Vec::new(),
                };
                let names: Vec<&str> = args.azure_signer_names.iter().map(String::as_str).collect();
                Some(
                    AzureTrust::from_pem(&roots, &intermediates, &names)
                        .context("the Azure trust roots do not load")?,
                )
            }
            None => None,
        };
        let nonces = match &args.nonce_key_file {
            Some(file) => Some(
                NonceKey::new(&read(file, "nonce key").await?)
                    .with_context(|| format!("{} is not a usable nonce key", file.display()))?,
            ),
            None => None,
        };
        let mut vmware = VmwareTrust::new();
        for (vcenter, file) in &args.vmware_keys {
            let pem = read(file, "vCenter key").await?;
            vmware
                .add(vcenter, &pem)
                .with_context(|| format!("the key of vCenter {vcenter} ({})", file.display()))?;
        }
        let gcp = GoogleKeys::new(args.gcp_jwks_url.clone(), args.gcp_jwks_refresh)?;
        info!(
            aws_certificates = aws.len(),
            azure = azure.is_some(),
            azure_nonces = nonces.is_some(),
            vcenters = args.vmware_keys.len(),
            gcp_jwks = %args.gcp_jwks_url,
            "trust loaded"
        );
        Ok(Trust {
            aws,
            gcp,
            azure,
            nonces,
            vmware,
        })
    }
}

async fn read(file: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    tokio::fs::read(file)
        .await
        .with_context(|| format!("reading the {what} file {}", file.display()))
}

/// Google's token keys: fetched when first needed, again after `refresh`, and at once
/// (at most once a minute) for a token whose key id is not among them, as Google rotates
/// keys.
pub struct GoogleKeys {
    url: String,
    refresh: Duration,
    cached: RwLock<Option<(Arc<GcpKeys>, Instant)>>,
    last_forced: std::sync::Mutex<Option<Instant>>,
}

impl GoogleKeys {
    fn new(url: String, refresh: Duration) -> anyhow::Result<Self> {
        if !(url.starts_with("https://")
            || url.starts_with("http://")
            || url.starts_with("file://"))
        {
            bail!("--gcp-jwks-url {url:?}: use https://, http:// or file://");
        }
        Ok(GoogleKeys {
            url,
            refresh,
            cached: RwLock::new(None),
            last_forced: std::sync::Mutex::new(None),
        })
    }

    /// The keys to verify a token signed with `kid` (None: the token names none); None
    /// when they cannot be had (never fetched, and the fetch fails now): the server's
    /// problem, not the machine's.
    pub async fn keys_for(&self, kid: Option<&str>) -> Option<Arc<GcpKeys>> {
        if let Some(keys) = self.usable(kid).await {
            return Some(keys);
        }
        let mut cached = self.cached.write().await;
        // Another request may have fetched them while this one waited for the lock.
        if let Some((keys, fetched)) = cached.as_ref()
            && fetched.elapsed() < self.refresh
            && kid.is_none_or(|kid| keys.kids().contains(&kid))
        {
            return Some(keys.clone());
        }
        match self.fetch().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *cached = Some((keys.clone(), Instant::now()));
                Some(keys)
            }
            Err(error) => {
                warn!(error = %format!("{error:#}"), url = %self.url, "fetching Google's keys");
                // Keys a little old verify as well as they did; count them fresh again so
                // that an outage costs one fetch per refresh, not one per request.
                let (keys, _) = cached.take()?;
                *cached = Some((keys.clone(), Instant::now()));
                Some(keys)
            }
        }
    }

    /// The cached keys, when fresh and holding `kid` (or when a forced fetch is not due).
    async fn usable(&self, kid: Option<&str>) -> Option<Arc<GcpKeys>> {
        let cached = self.cached.read().await;
        let (keys, fetched) = cached.as_ref()?;
        let fresh = fetched.elapsed() < self.refresh;
        let known = kid.is_none_or(|kid| keys.kids().contains(&kid));
        (fresh && (known || !self.may_force())).then(|| keys.clone())
    }

    fn may_force(&self) -> bool {
        let Ok(mut last) = self.last_forced.lock() else {
            return false;
        };
        if last.is_some_and(|at| at.elapsed() < FORCED_REFRESH_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    async fn fetch(&self) -> anyhow::Result<GcpKeys> {
        let body = if let Some(path) = self.url.strip_prefix("file://") {
            tokio::fs::read(path)
                .await
                .with_context(|| format!("reading {path}"))?
        } else {
            fetch_https(&self.url).await?
        };
        GcpKeys::from_json(&body).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

async fn fetch_https(url: &str) -> anyhow::Result<Vec<u8>> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .context("the system's root certificates")?
        .https_or_http()
        .enable_http1()
        .build();
    let client: HttpClient<_, Empty<Bytes>> =
        HttpClient::builder(TokioExecutor::new()).build(connector);
    let uri: hyper::Uri = url.parse().with_context(|| format!("the URL {url}"))?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.get(uri))
        .await
        .context("timed out after 10 s")??;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    let body = Limited::new(response.into_body(), JWKS_LIMIT)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading {url}: {e}"))?;
    Ok(body.to_bytes().to_vec())
}
