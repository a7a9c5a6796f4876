//! The pure planner: resources -> desired SSM state per account and region -> operations.
//! No I/O: this crate depends on nothing that can do any, so every decision is a plain
//! function tested with plain table tests.
//!
//! The runtime builds an [`Inventory`] from its stores, lists the [`AccountRegion`]s
//! ([`account_regions`]), and for each one asks the SSM edge for an [`Observed`] and
//! calls [`plan`]; the edge applies the plan's operations in order.

pub mod builders;
pub mod compliance;
pub mod definitions;
pub mod desired;
pub mod diff;
pub mod enrollment;
pub mod fingerprint;
pub mod instances;
pub mod inventory;
pub mod model;
pub mod naming;
pub mod normalize;
pub mod ownership;
pub mod plan;
pub mod quota;
pub mod rollout;
pub mod runs;
pub mod selection;
pub mod snapshots;
pub mod steps;

pub use desired::{desired, reference_problems, reference_problems_of};
pub use diff::{Diff, Orphaned, diff};
pub use fingerprint::{baseline_fingerprint, window_fingerprint};
pub use inventory::{Inventory, Quotas, Settings, orphaned_owners};
pub use model::*;
pub use plan::{Plan, baseline_needs_deep_read, plan, plan_from, window_needs_deep_read};
pub use quota::fit_quotas;
pub use selection::{account_regions, reached_by};
pub use steps::{Step, group_giving, owners_observed};
