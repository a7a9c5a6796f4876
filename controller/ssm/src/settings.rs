//! How the SSM edge reaches AWS.

use std::time::Duration;

/// Endpoints, retries and rate limits shared by every account.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeSettings {
    /// SSM endpoint override (the simulator, a VPC endpoint); None: AWS's regional one.
    pub ssm_endpoint: Option<String>,
    /// STS endpoint override, used for AssumeRole and GetCallerIdentity.
    pub sts_endpoint: Option<String>,
    /// Attempts per call, first one included (SDK standard retry mode); SSM and STS.
    pub max_attempts: u32,
    /// The first retry's backoff ceiling; later ones grow exponentially (SDK standard mode).
    pub initial_backoff: Duration,
    /// Calls per second to SSM, per account (0: unlimited).
    pub calls_per_second: f64,
    /// Calls that may go out at once after a quiet period.
    pub burst: u32,
    /// RoleSessionName of assumed roles, visible in the account's CloudTrail.
    pub session_name: String,
    /// Region for STS calls (AssumeRole, GetCallerIdentity) when the base configuration
    /// names none.
    pub sts_region: String,
    /// DurationSeconds asked of AssumeRole; None: STS's default, one hour
    /// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
    pub session_duration: Option<Duration>,
    /// How long before their expiry assumed credentials are renewed, so that no call
    /// goes out with credentials that expire on the way. Keep it shorter than the
    /// session: credentials already within it are renewed on every use.
    pub credentials_refresh_before: Duration,
    /// How long a verified caller identity is trusted before
    /// [`Account::caller_identity`](crate::Account::caller_identity) asks STS again.
    pub identity_reverify: Duration,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        EdgeSettings {
            ssm_endpoint: None,
            sts_endpoint: None,
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            // SSM's Describe*/Get* quotas are a few calls per second per account and region;
            // staying below them keeps the SDK retries for the odd burst.
            calls_per_second: 5.0,
            burst: 10,
            session_name: "patchfleet".to_owned(),
            sts_region: "us-east-1".to_owned(),
            session_duration: None,
            credentials_refresh_before: Duration::from_secs(5 * 60),
            // Once per default session: the role or its trust policy may have changed.
            identity_reverify: Duration::from_secs(3600),
        }
    }
}
