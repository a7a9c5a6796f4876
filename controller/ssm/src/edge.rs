//! Credentials per account (assumed role, cached and refreshed), identity checks, and one
//! SSM client per account-region with its own retry budget.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ssm::config::retry::{RetryConfig, RetryPartition};
use aws_sdk_ssm::config::{IdentityCache, SharedCredentialsProvider};
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
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
    base: SdkConfig,
    settings: EdgeSettings,
    observer: Option<Arc<dyn CallObserver>>,
    accounts: Mutex<HashMap<String, Arc<Account>>>,
}

impl SsmEdge {
    /// The controller's own credentials from the default chain (AWS_* environment
    /// variables, profile, web identity, container or instance role).
    pub async fn from_env(settings: EdgeSettings) -> Self {
        let base = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::with_config(settings, base)
    }

    /// Base credentials and region from `base` (load it with `aws_config`, which provides
    /// the time source and sleep implementation that assumed roles need).
    pub fn with_config(settings: EdgeSettings, base: SdkConfig) -> Self {
        // One lazy identity cache for every client: it is partitioned by credentials
        // provider, so each account's assumed-role credentials are fetched once and
        // refreshed shortly before they expire, whichever region's client asks.
        let base = base
            .into_builder()
            .identity_cache(IdentityCache::lazy().build())
            .build();
        SsmEdge {
            base,
            settings,
            observer: None,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// Reports every SSM call and attempt to `observer` (the controller's metrics).
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn settings(&self) -> &EdgeSettings {
        &self.settings
    }

    /// The account's credentials and clients, built on first use and kept until the
    /// access fields change or [`SsmEdge::forget`].
    pub async fn account(&self, access: &AccountAccess) -> Arc<Account> {
        if let Some(account) = self.cached(access) {
            return account;
        }
        let account = Arc::new(Account::new(self, access).await);
        let mut accounts = self
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another task may have built it meanwhile: keep the first, its cache is warm.
        match accounts.get(&access.name) {
            Some(existing) if existing.access == *access => Arc::clone(existing),
            _ => {
                accounts.insert(access.name.clone(), Arc::clone(&account));
                account
            }
        }
    }

    fn cached(&self, access: &AccountAccess) -> Option<Arc<Account>> {
        self.accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&access.name)
            .filter(|a| a.access == *access)
            .cloned()
    }

    /// Drops an account's cached credentials and clients (SystemAccount deleted).
    pub fn forget(&self, account: &str) {
        self.accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(account);
    }
}

/// One account: its credentials, rate limit and per-region clients.
#[derive(Debug)]
pub struct Account {
    access: AccountAccess,
    base: SdkConfig,
    settings: EdgeSettings,
    observer: Option<Arc<dyn CallObserver>>,
    credentials: SharedCredentialsProvider,
    limiter: Arc<RateLimiter>,
    clients: Mutex<HashMap<String, SsmClient>>,
}

impl Account {
    async fn new(edge: &SsmEdge, access: &AccountAccess) -> Self {
        let (base, settings) = (&edge.base, &edge.settings);
        let credentials = match &access.role_arn {
            Some(role_arn) => {
                let mut builder = AssumeRoleProvider::builder(role_arn)
                    .session_name(&settings.session_name)
                    .region(sts_region(base, settings))
                    .configure(&sts_base(base, settings));
                if let Some(external_id) = &access.external_id {
                    builder = builder.external_id(external_id);
                }
                SharedCredentialsProvider::new(builder.build().await)
            }
            None => base.credentials_provider().unwrap_or_else(|| {
                // No base credentials at all: every call fails with a credentials error.
                SharedCredentialsProvider::new(aws_sdk_ssm::config::Credentials::new(
                    "", "", None, None, "none",
                ))
            }),
        };
        Account {
            access: access.clone(),
            base: base.clone(),
            settings: settings.clone(),
            observer: edge.observer.clone(),
            credentials,
            limiter: Arc::new(RateLimiter::new(settings.calls_per_second, settings.burst)),
            clients: Mutex::new(HashMap::new()),
        }
    }

    pub fn access(&self) -> &AccountAccess {
        &self.access
    }

    /// sts GetCallerIdentity through the account's credentials: the ARN patchfleet acts
    /// as, or an error when AWS refuses them or they belong to another account.
    pub async fn verify_identity(&self) -> Result<CallerIdentity, EdgeError> {
        let scope = self.access.scope(None);
        let mut conf = aws_sdk_sts::config::Builder::from(&sts_base(&self.base, &self.settings))
            .region(sts_region(&self.base, &self.settings));
        // set_, not credentials_provider(): that one wraps the provider anew, and a new
        // wrapper is a new identity cache partition, i.e. one more AssumeRole.
        conf.set_credentials_provider(Some(self.credentials.clone()));
        if let Some(endpoint) = &self.settings.sts_endpoint {
            conf = conf.endpoint_url(endpoint);
        }
        let sts = aws_sdk_sts::Client::from_conf(conf.build());
        let out = sts
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

    /// The SSM client of one region, built on first use.
    pub fn client(&self, region: &str) -> SsmClient {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(region.to_owned())
            .or_insert_with(|| self.build_client(region))
            .clone()
    }

    fn build_client(&self, region: &str) -> SsmClient {
        let target = AccountRegion {
            account: self.access.name.clone(),
            account_id: self.access.account_id.clone(),
            region: region.to_owned(),
        };
        // A custom partition owns its retry token bucket: throttling in this
        // account-region drains only its own retry budget, not another account's.
        let partition = RetryPartition::custom(format!(
            "patchfleet-ssm-{}-{region}",
            self.access.account_id
        ))
        .build();
        let retry = RetryConfig::standard()
            .with_max_attempts(self.settings.max_attempts.max(1))
            .with_initial_backoff(self.settings.initial_backoff);
        let mut conf = aws_sdk_ssm::config::Builder::from(&self.base)
            .region(Region::new(region.to_owned()))
            .retry_config(retry)
            .retry_partition(partition);
        // Shares the account's identity cache partition (see verify_identity).
        conf.set_credentials_provider(Some(self.credentials.clone()));
        if let Some(endpoint) = &self.settings.ssm_endpoint {
            conf = conf.endpoint_url(endpoint);
        }
        if let Some(observer) = &self.observer {
            conf = conf.interceptor(Telemetry(Arc::clone(observer)));
        }
        SsmClient {
            sdk: aws_sdk_ssm::Client::from_conf(conf.build()),
            scope: self.access.scope(Some(region)),
            target,
            limiter: Arc::clone(&self.limiter),
        }
    }
}

/// The base configuration for STS, with the endpoint override.
fn sts_base(base: &SdkConfig, settings: &EdgeSettings) -> SdkConfig {
    let mut builder = base.to_builder();
    if let Some(endpoint) = &settings.sts_endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    builder.build()
}

fn sts_region(base: &SdkConfig, settings: &EdgeSettings) -> Region {
    base.region()
        .cloned()
        .unwrap_or_else(|| Region::new(settings.sts_region.clone()))
}

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
