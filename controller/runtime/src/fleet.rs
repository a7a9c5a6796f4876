//! What the controller last saw and did in every account-region, kept in memory.
//!
//! The account reconciler is the only writer: after each pass over an account-region it
//! records the outcome. Owner reconcilers read it to roll status up and to decide when a
//! deleted resource's finalizer may go. After a restart nothing is known until each
//! account-region has been passed over once, and unknown counts as "maybe still there".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;

use patchfleet_planner::model::{AccountRegion, Owner, Problem};

/// A failed pass: why, for status and events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassError {
    /// CamelCase, such as AccessDenied, Throttled or QuotaExceeded.
    pub reason: String,
    pub message: String,
    /// Whether a person has to act (bad role, quota) rather than time fixing it.
    pub needs_attention: bool,
}

/// The outcome of the last pass over one account-region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionOutcome {
    /// metadata.generation of each owner the pass planned for.
    pub planned_generations: BTreeMap<Owner, i64>,
    /// Owners with objects in SSM after the last pass that read SSM successfully; carried
    /// over unchanged by passes that failed before reading.
    pub owners_present: BTreeSet<Owner>,
    /// Whether owners_present comes from a successful read.
    pub observed: bool,
    /// Semantic problems of this pass (nothing was written for what they concern).
    pub problems: Vec<Problem>,
    /// Set when the pass failed; the rest of the outcome is from before the failure.
    pub error: Option<PassError>,
    /// The pass applied its whole plan: the account-region holds exactly the desired state.
    pub converged: bool,
    /// The pass wrote to SSM (so another pass soon confirms the result).
    pub wrote: bool,
    /// How many objects of each sort patchfleet owns there now.
    pub counts: Counts,
}

/// Owned objects in one account-region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub patch_baselines: u32,
    pub patch_group_registrations: u32,
    pub maintenance_windows: u32,
    pub window_targets: u32,
    pub window_tasks: u32,
}

/// The in-memory record of every account-region.
#[derive(Debug, Default)]
pub struct Fleet {
    regions: RwLock<BTreeMap<AccountRegion, RegionOutcome>>,
}

impl Fleet {
    pub fn get(&self, region: &AccountRegion) -> Option<RegionOutcome> {
        self.read().get(region).cloned()
    }

    pub fn record(&self, region: AccountRegion, outcome: RegionOutcome) {
        self.write().insert(region, outcome);
    }

    /// Forgets account-regions that no longer exist (an account removed, a region dropped).
    pub fn retain(&self, keep: impl Fn(&AccountRegion, &RegionOutcome) -> bool) {
        self.write().retain(|region, outcome| keep(region, outcome));
    }

    /// Account-regions where the owner still has objects, as far as is known.
    pub fn where_present(&self, owner: &Owner) -> BTreeSet<AccountRegion> {
        self.read()
            .iter()
            .filter(|(_, outcome)| outcome.owners_present.contains(owner))
            .map(|(region, _)| region.clone())
            .collect()
    }

    /// Every account-region of one SystemAccount.
    pub fn regions_of(&self, account: &str) -> BTreeMap<AccountRegion, RegionOutcome> {
        self.read()
            .iter()
            .filter(|(region, _)| region.account == account)
            .map(|(region, outcome)| (region.clone(), outcome.clone()))
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<AccountRegion, RegionOutcome>> {
        // A panic while holding the lock leaves consistent data (whole-value inserts).
        self.regions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<AccountRegion, RegionOutcome>> {
        self.regions.write().unwrap_or_else(|e| e.into_inner())
    }
}
