//! Credentials per account (assumed role, cached and refreshed), identity checks, and SSM
//! clients per account-region with their own retry budget.
//!
//! Memory is the constraint: thousands of accounts, each reached every few minutes. What
//! an account keeps between passes is its identity, its assumed credentials, its rate
//! limit and its retry partitions, a few KiB. SDK clients (tens of KiB each) are built
//! for a pass and dropped with it; they share one HTTP client and one base configuration.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, future};
use aws_sdk_ssm::config::retry::{RetryConfig, RetryPartition};
use aws_sdk_ssm::config::{
    Credentials, IdentityCache, SharedCredentialsProvider, SharedHttpClient, SharedIdentityCache,
};
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder as HttpClientBuilder, ConnectorBuilder};
use patchfleet_api::v1alpha1::SystemAccountSpec;
use patchfleet_planner::model::AccountRegion;

use crate::error::{EdgeError, ErrorKind, Scope};
use crate::ratelimit::RateLimiter;
use crate::settings::EdgeSettings;
use crate::telemetry::{CallObserver, Telemetry};

/// How to act in one AWS account: a SystemAccount's identity fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountAccess {
    /// metadata.name of the SystemAccount.
    pub name: String,
    pub account_id: String,
    /// None: the controller's own credentials, which must belong to `account_id`.
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
}

impl AccountAccess {
    pub fn from_spec(name: &str, spec: &SystemAccountSpec) -> Self {
        AccountAccess {
            name: name.to_owned(),
            account_id: spec.account_id.clone(),
            role_arn: spec.role_arn.clone(),
            external_id: spec.external_id.clone(),
        }
    }

    fn scope(&self, region: Option<&str>) -> Arc<Scope> {
        Arc::new(Scope {
            account: self.name.clone(),
            account_id: self.account_id.clone(),
            region: region.map(str::to_owned),
        })
    }
}

/// Who the SSM edge acts as in an account (sts GetCallerIdentity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerIdentity {
    pub arn: String,
    pub account_id: String,
}

/// The entry point: credentials and clients for every account, cached.
#[derive(Debug)]
pub struct SsmEdge {
    shared: Arc<Shared>,
    accounts: Mutex<HashMap<String, Arc<Account>>>,
}

/// What every account shares: one HTTP client (one connection pool, one TLS
/// configuration), one STS client, one base configuration per service, the settings.
#[derive(Debug)]
struct Shared {
    settings: EdgeSettings,
    /// The base configuration, with the shared HTTP client.
    base: SdkConfig,
    /// STS with the base credentials, the STS endpoint override and region: makes every
    /// account's AssumeRole, and is the base for GetCallerIdentity clients. Keeps the
    /// base configuration's identity cache: one entry, the base credentials, which may
    /// themselves come from STS (web identity).
    sts: aws_sdk_sts::Client,
    /// Every SSM client is this plus its region, retry partition and, for an assumed
    /// role, credentials.
    ssm_base: aws_sdk_ssm::Config,
    /// The identity cache of clients that use an assumed role: none, because
    /// [`AssumedRole`] caches. The SDK's lazy cache keeps at most 64 partitions (one per
    /// credentials provider) and evicts one past that (aws-smithy-runtime 1.16
    /// src/client/identity/cache/lazy.rs, DEFAULT_MAX_PARTITIONS), which with more
    /// accounts meant AssumeRole again and again.
    no_cache: SharedIdentityCache,
}

impl Shared {
    fn new(
        settings: EdgeSettings,
        base: &SdkConfig,
        http_client: SharedHttpClient,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Self {
        let mut builder = base.to_builder();
        builder.set_http_client(Some(http_client));
        if base.credentials_provider().is_none() {
            // No base credentials at all: every call fails with an authentication error.
            builder.set_credentials_provider(Some(SharedCredentialsProvider::new(
                Credentials::new("", "", None, None, "none"),
            )));
        }
        let base = builder.build();
        let sts_region = base
            .region()
            .cloned()
            .unwrap_or_else(|| Region::new(settings.sts_region.clone()));
        let retry = RetryConfig::standard()
            .with_max_attempts(settings.max_attempts.max(1))
            .with_initial_backoff(settings.initial_backoff);
        // STS's default retry partition ("sts") is one budget for all accounts' AssumeRole:
        // STS's quotas are those of the one caller, the base credentials.
        let mut sts = aws_sdk_sts::config::Builder::from(&base)
            .region(sts_region)
            .retry_config(retry.clone());
        if let Some(endpoint) = &settings.sts_endpoint {
            sts = sts.endpoint_url(endpoint);
        }
        let mut ssm = aws_sdk_ssm::config::Builder::from(&base).retry_config(retry);
        if let Some(endpoint) = &settings.ssm_endpoint {
            ssm = ssm.endpoint_url(endpoint);
        }
        if let Some(observer) = &observer {
            ssm = ssm.interceptor(Telemetry(Arc::clone(observer)));
        }
        Shared {
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            ssm_base: ssm.build(),
            settings,
            base,
            no_cache: IdentityCache::no_cache(),
        }
    }

    fn now(&self) -> SystemTime {
        self.base
            .time_source()
            .map_or_else(SystemTime::now, |t| t.now())
    }
}

/// One HTTPS client for every SDK client of the edge. Without it each SDK client builds
/// its own (aws-smithy-runtime 1.16 src/client/defaults.rs,
/// default_http_client_plugin_v2): its own connection pool and TLS configuration,
/// hundreds of KiB per client. Built as the SDK builds its default one
/// (src/client/http.rs, default_https_client): rustls with aws-lc, and the proxy from
/// HTTPS_PROXY/HTTP_PROXY/NO_PROXY, which the SDK honours since behavior version
/// 2025-08-07. The client keeps one connector per timeout setting, so every client of
/// the edge shares one pool.
fn https_client() -> SharedHttpClient {
    HttpClientBuilder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SsmEdge {
    /// The controller's own credentials from the default chain (AWS_* environment
    /// variables, profile, web identity, container or instance role).
    pub async fn from_env(settings: EdgeSettings) -> Self {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .load()
            .await;
        Self::with_config(settings, base)
    }

    /// Base credentials and region from `base` (load it with `aws_config`, which provides
    /// the time source and sleep implementation the SDK needs). Its HTTP client, if it
    /// has one, is used by every client; else one is built.
    pub fn with_config(settings: EdgeSettings, base: SdkConfig) -> Self {
        let http_client = base.http_client().unwrap_or_else(https_client);
        SsmEdge {
            shared: Arc::new(Shared::new(settings, &base, http_client, None)),
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// Reports every SSM call and attempt to `observer` (the controller's metrics).
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        let shared = &self.shared;
        let http_client = shared.base.http_client().unwrap_or_else(https_client);
        self.shared = Arc::new(Shared::new(
            shared.settings.clone(),
            &shared.base,
            http_client,
            Some(observer),
        ));
        lock(&self.accounts).clear();
        self
    }

    pub fn settings(&self) -> &EdgeSettings {
        &self.shared.settings
    }

    /// The account's credentials, identity and rate limit, kept until the access fields
    /// change or [`SsmEdge::forget`]. Makes no call: credentials are assumed on first use.
    pub async fn account(&self, access: &AccountAccess) -> Arc<Account> {
        let mut accounts = lock(&self.accounts);
        match accounts.get(&access.name) {
            Some(existing) if existing.access == *access => Arc::clone(existing),
            _ => {
                let account = Arc::new(Account::new(&self.shared, access));
                accounts.insert(access.name.clone(), Arc::clone(&account));
                account
            }
        }
    }

    /// Drops an account's cached credentials and identity (SystemAccount deleted); its
    /// rate limit and SSM memory go with the last client of the account.
    pub fn forget(&self, account: &str) {
        lock(&self.accounts).remove(account);
    }

    /// Accounts whose credentials, identity and rate limit are kept.
    pub fn cached_accounts(&self) -> usize {
        lock(&self.accounts).len()
    }
}

/// One account: its credentials, identity, rate limit and retry partitions. SSM and STS
/// clients are built on demand by [`Account::client`] and [`Account::verify_identity`].
#[derive(Debug)]
pub struct Account {
    access: AccountAccess,
    shared: Arc<Shared>,
    /// The assumed role's credentials provider ([`AssumedRole`]); None: the base
    /// credentials, which `Shared::ssm_base` and `Shared::sts` already carry.
    assumed: Option<SharedCredentialsProvider>,
    limiter: Arc<RateLimiter>,
    /// One per region, kept across client builds: a custom partition owns its retry
    /// token bucket and a new one with the same name gets a new, full bucket
    /// (aws-smithy-runtime 1.16 src/client/retries.rs, RetryPartition), so throttling in
    /// this account-region drains only its own retry budget, pass after pass.
    partitions: Mutex<Vec<(String, RetryPartition)>>,
    /// The last successful verification and when it was made; never an error.
    verified: Mutex<Option<(SystemTime, CallerIdentity)>>,
}

impl Account {
    fn new(shared: &Arc<Shared>, access: &AccountAccess) -> Self {
        let settings = &shared.settings;
        let assumed = access.role_arn.as_ref().map(|role_arn| {
            SharedCredentialsProvider::new(AssumedRole {
                shared: Arc::clone(shared),
                role_arn: role_arn.clone(),
                external_id: access.external_id.clone(),
                scope: access.scope(None),
                state: tokio::sync::Mutex::new(AssumedState::default()),
                attempts: AtomicU64::new(0),
            })
        });
        Account {
            access: access.clone(),
            shared: Arc::clone(shared),
            assumed,
            limiter: Arc::new(RateLimiter::new(settings.calls_per_second, settings.burst)),
            partitions: Mutex::new(Vec::new()),
            verified: Mutex::new(None),
        }
    }

    pub fn access(&self) -> &AccountAccess {
        &self.access
    }

    /// The identity [`Account::verify_identity`] last returned, while younger than
    /// `identity_reverify`; else verifies again. Cheap enough for every pass: one
    /// GetCallerIdentity per `identity_reverify` (default: one session's lifetime).
    /// A failed verification is not remembered: the next call tries again.
    pub async fn caller_identity(&self) -> Result<CallerIdentity, EdgeError> {
        let now = self.shared.now();
        if let Some((at, identity)) = lock(&self.verified).as_ref() {
            let age = now.duration_since(*at).unwrap_or(Duration::MAX);
            if age < self.shared.settings.identity_reverify {
                return Ok(identity.clone());
            }
        }
        match self.verify_identity().await {
            Ok(identity) => {
                *lock(&self.verified) = Some((now, identity.clone()));
                Ok(identity)
            }
            Err(e) => {
                *lock(&self.verified) = None;
                Err(e)
            }
        }
    }

    /// sts GetCallerIdentity through the account's credentials, always: the ARN
    /// patchfleet acts as, or an error when AWS refuses them or they belong to another
    /// account. See [`Account::caller_identity`] for the cached form.
    pub async fn verify_identity(&self) -> Result<CallerIdentity, EdgeError> {
        let scope = self.access.scope(None);
        let out = self
            .sts()
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| EdgeError::from_sdk(e, &scope, "GetCallerIdentity"))?;
        let arn = out.arn().unwrap_or_default().to_owned();
        let account_id = out.account().unwrap_or_default().to_owned();
        if account_id != self.access.account_id {
            return Err(EdgeError::new(
                ErrorKind::IdentityMismatch,
                &scope,
                "GetCallerIdentity",
                format!(
                    "the credentials act as {arn} in account {account_id}, not in spec.accountId {}: \
                     fix spec.roleArn or spec.accountId",
                    self.access.account_id
                ),
            ));
        }
        Ok(CallerIdentity { arn, account_id })
    }

    /// STS acting as the account, built for the call: it is made once per
    /// `identity_reverify`, not worth keeping a client for.
    fn sts(&self) -> aws_sdk_sts::Client {
        let Some(assumed) = &self.assumed else {
            return self.shared.sts.clone();
        };
        let mut conf = self
            .shared
            .sts
            .config()
            .to_builder()
            .identity_cache(self.shared.no_cache.clone());
        // set_, not credentials_provider(): that one would wrap the provider again.
        conf.set_credentials_provider(Some(assumed.clone()));
        aws_sdk_sts::Client::from_conf(conf.build())
    }

    /// An SSM client for one region, built on each call and meant for one pass: it
    /// shares the HTTP client, base configuration, credentials, rate limit and retry
    /// partition of the account-region, so building it makes no call and dropping it
    /// loses nothing.
    pub fn client(&self, region: &str) -> SsmClient {
        let target = AccountRegion {
            account: self.access.name.clone(),
            account_id: self.access.account_id.clone(),
            region: region.to_owned(),
        };
        let mut conf = self
            .shared
            .ssm_base
            .to_builder()
            .region(Region::new(region.to_owned()))
            .retry_partition(self.retry_partition(region));
        if let Some(assumed) = &self.assumed {
            conf.set_identity_cache(self.shared.no_cache.clone());
            conf.set_credentials_provider(Some(assumed.clone()));
        }
        SsmClient {
            sdk: aws_sdk_ssm::Client::from_conf(conf.build()),
            scope: self.access.scope(Some(region)),
            target,
            limiter: Arc::clone(&self.limiter),
        }
    }

    fn retry_partition(&self, region: &str) -> RetryPartition {
        let mut partitions = lock(&self.partitions);
        if let Some((_, partition)) = partitions.iter().find(|(r, _)| r == region) {
            return partition.clone();
        }
        let partition = RetryPartition::custom(format!(
            "patchfleet-ssm-{}-{region}",
            self.access.account_id
        ))
        .build();
        partitions.push((region.to_owned(), partition.clone()));
        partition
    }
}

/// An account's assumed-role credentials: sts AssumeRole through the shared STS client
/// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html), kept until
/// `credentials_refresh_before` their expiry, so that no call goes out with credentials
/// that expire on the way. Callers that arrive while AssumeRole is in flight wait for
/// it and share its outcome: one AssumeRole per credential lifetime, whatever the
/// number of regions and concurrent calls. A failure is given to those waiting callers
/// only; the next caller asks STS again.
#[derive(Debug)]
struct AssumedRole {
    shared: Arc<Shared>,
    role_arn: String,
    external_id: Option<String>,
    scope: Arc<Scope>,
    state: tokio::sync::Mutex<AssumedState>,
    /// AssumeRole calls finished, successful or not. Read before waiting for `state`:
    /// if it moved meanwhile, the caller waited for a call and takes its outcome.
    attempts: AtomicU64,
}

#[derive(Debug, Default)]
struct AssumedState {
    credentials: Option<Credentials>,
    /// The failure of the last call, for the callers that waited for it.
    failure: Option<Arc<dyn StdError + Send + Sync>>,
}

impl AssumedRole {
    async fn credentials(&self) -> provider::Result {
        let attempts = self.attempts.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if self.attempts.load(Ordering::Acquire) != attempts {
            // A call finished while this caller waited: its outcome, even if already
            // within the refresh margin (sessions shorter than the margin).
            if let Some(failure) = &state.failure {
                return Err(AssumeRoleFailed::error(failure));
            }
            if let Some(credentials) = &state.credentials {
                return Ok(credentials.clone());
            }
        }
        let now = self.shared.now();
        if let Some(credentials) = &state.credentials {
            let fresh = credentials.expiry().is_none_or(|expiry| {
                expiry
                    .duration_since(now)
                    .is_ok_and(|left| left > self.shared.settings.credentials_refresh_before)
            });
            if fresh {
                return Ok(credentials.clone());
            }
        }
        let outcome = self.assume_role().await;
        self.attempts.fetch_add(1, Ordering::Release);
        match outcome {
            Ok(credentials) => {
                *state = AssumedState {
                    credentials: Some(credentials.clone()),
                    failure: None,
                };
                Ok(credentials)
            }
            Err(failure) => {
                let err = AssumeRoleFailed::error(&failure);
                // The old credentials are past the refresh margin: not handed out again.
                *state = AssumedState {
                    credentials: None,
                    failure: Some(failure),
                };
                Err(err)
            }
        }
    }

    async fn assume_role(&self) -> Result<Credentials, Arc<dyn StdError + Send + Sync>> {
        let settings = &self.shared.settings;
        let out = self
            .shared
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(&settings.session_name)
            .set_external_id(self.external_id.clone())
            // STS refuses a duration outside 900..=43200 seconds (or the role's maximum)
            // with a ValidationError, which says so.
            .set_duration_seconds(
                settings
                    .session_duration
                    .map(|d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX)),
            )
            .send()
            .await
            .map_err(|e| {
                tracing::debug!(account = %self.scope, error = %e, "AssumeRole failed");
                Arc::new(e) as Arc<dyn StdError + Send + Sync>
            })?;
        let Some(assumed) = out.credentials() else {
            return Err(Arc::new(NoCredentials));
        };
        let expiry = SystemTime::try_from(*assumed.expiration())
            .map_err(|e| Arc::new(e) as Arc<dyn StdError + Send + Sync>)?;
        tracing::debug!(account = %self.scope, ?expiry, "assumed role");
        Ok(Credentials::new(
            assumed.access_key_id(),
            assumed.secret_access_key(),
            Some(assumed.session_token().to_owned()),
            Some(expiry),
            "patchfleet-assume-role",
        ))
    }
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.credentials())
    }
}

/// AssumeRole's failure as a credentials error. Its source chain holds the STS error
/// (`SdkError<AssumeRoleError>`), which `EdgeError::from_sdk` classifies: AccessDenied,
/// Throttled, or Credentials.
#[derive(Debug)]
struct AssumeRoleFailed(Arc<dyn StdError + Send + Sync>);

impl AssumeRoleFailed {
    fn error(failure: &Arc<dyn StdError + Send + Sync>) -> CredentialsError {
        CredentialsError::provider_error(AssumeRoleFailed(Arc::clone(failure)))
    }
}

impl fmt::Display for AssumeRoleFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AssumeRole failed")
    }
}

impl StdError for AssumeRoleFailed {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

/// An AssumeRole answer without credentials (the API reference marks them optional).
#[derive(Debug)]
struct NoCredentials;

impl fmt::Display for NoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("STS answered AssumeRole without credentials")
    }
}

impl StdError for NoCredentials {}

/// SSM in one account-region: the SDK client, rate-limited.
#[derive(Clone, Debug)]
pub struct SsmClient {
    sdk: aws_sdk_ssm::Client,
    target: AccountRegion,
    scope: Arc<Scope>,
    limiter: Arc<RateLimiter>,
}

impl SsmClient {
    pub fn target(&self) -> &AccountRegion {
        &self.target
    }

    /// The SDK client, for what the edge does not wrap (tests, adoption tools).
    pub fn sdk(&self) -> &aws_sdk_ssm::Client {
        &self.sdk
    }

    pub(crate) fn scope(&self) -> &Arc<Scope> {
        &self.scope
    }

    /// The account's rate limiter: shared by all its clients and kept as long as the
    /// account, so it also identifies the account for the edge's memory (`memory`).
    pub(crate) fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }
}

/// Calls made for one observe or apply, counted (logical calls; SDK retries of a call
/// are not counted again).
#[derive(Debug)]
pub(crate) struct Session<'a> {
    pub client: &'a SsmClient,
    calls: AtomicU32,
}

impl<'a> Session<'a> {
    pub fn new(client: &'a SsmClient) -> Self {
        Session {
            client,
            calls: AtomicU32::new(0),
        }
    }

    pub fn ssm(&self) -> &aws_sdk_ssm::Client {
        &self.client.sdk
    }

    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Waits for the rate limit, then runs one SDK call (built but not yet polled).
    pub async fn send<T, E, R>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, SdkError<E, R>>>,
    ) -> Result<T, EdgeError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        self.client.limiter.acquire().await;
        self.calls.fetch_add(1, Ordering::Relaxed);
        call.await
            .map_err(|e| EdgeError::from_sdk(e, &self.client.scope, operation))
    }
}
