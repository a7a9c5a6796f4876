//! The only code that talks to AWS: credentials per account (STS AssumeRole, cached),
//! SSM clients built per pass with one retry budget per account-region, a rate limit per
//! account, [`observe`] (SSM -> [`Observed`](patchfleet_planner::model::Observed)) and
//! [`apply`] ([`Operation`](patchfleet_planner::model::Operation)s -> SSM).
//!
//! ```text
//! let edge = SsmEdge::from_env(EdgeSettings::default()).await;
//! let account = edge.account(&AccountAccess::from_spec(name, &spec)).await;
//! let caller = account.caller_identity().await?;          // status.callerArn, cached
//! let client = account.client("eu-west-1");
//! let seen = observe(&client, cluster_id, &fingerprints, deep).await?;
//! let report = apply(&client, cluster_id, &operations).await;
//! ```

pub mod activations;
mod apply;
pub mod compliance;
pub mod convert;
mod edge;
mod error;
pub mod instances;
mod memory;
mod observe;
mod paging;
mod ratelimit;
pub mod runs;
mod settings;
mod summary;
mod telemetry;
mod token;

pub use apply::{Applied, ApplyReport, Outcome, apply};
pub use edge::{Account, AccountAccess, CallerIdentity, SsmClient, SsmEdge};
pub use error::{EdgeError, ErrorKind, Scope};
pub use observe::{Fingerprints, NAME_PREFIX, Observation, UNREPRESENTABLE_FINGERPRINT, observe};
pub use settings::EdgeSettings;
pub use summary::Summary;
pub use telemetry::CallObserver;
