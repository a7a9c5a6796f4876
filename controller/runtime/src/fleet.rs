//! What the controller last saw and did in every account-region, kept in memory.
//!
//! The account reconciler is the only writer: after each pass over an account-region it
//! records the outcome. Owner reconcilers read it to roll status up and to decide when a
//! deleted resource's finalizer may go. After a restart nothing is known until each
//! account-region has been passed over once, and unknown counts as "maybe still there".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;

use patchfleet_api::v1alpha1::EmergencyRun;
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
    /// Emergency runs by MaintenanceWindow: the command of the current run token.
    pub runs: BTreeMap<Owner, EmergencyRun>,
}

impl RegionOutcome {
    /// Whether an Emergency run here still has a command in progress.
    pub fn runs_in_progress(&self) -> bool {
        self.runs.values().any(|run| !run.is_finished())
    }
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

    /// Account-regions where the owner still has objects, as far as is known.
    pub fn where_present(&self, owner: &Owner) -> BTreeSet<AccountRegion> {
        self.read()
            .iter()
            .filter(|(_, outcome)| outcome.owners_present.contains(owner))
            .map(|(region, _)| region.clone())
            .collect()
    }

    /// Every account-region of one SystemAccount (a range of the map: accounts sort first).
    pub fn regions_of(&self, account: &str) -> BTreeMap<AccountRegion, RegionOutcome> {
        self.read()
            .range(first_of(account)..)
            .take_while(|(region, _)| region.account == account)
            .map(|(region, outcome)| (region.clone(), outcome.clone()))
            .collect()
    }

    /// Forgets the account-regions of `account` that `keep` refuses, leaving the others';
    /// under one lock, copying nothing but the keys it drops.
    pub fn retain_of(&self, account: &str, keep: impl Fn(&AccountRegion, &RegionOutcome) -> bool) {
        let mut regions = self.write();
        let gone: Vec<AccountRegion> = regions
            .range(first_of(account)..)
            .take_while(|(region, _)| region.account == account)
            .filter(|(region, outcome)| !keep(region, outcome))
            .map(|(region, _)| region.clone())
            .collect();
        for region in gone {
            regions.remove(&region);
        }
    }

    /// Runs `read` on every outcome without copying them (a rollup reads a few fields of
    /// each of thousands); writers wait meanwhile, so `read` must not block.
    pub fn read_with<T>(
        &self,
        read: impl FnOnce(&BTreeMap<AccountRegion, RegionOutcome>) -> T,
    ) -> T {
        read(&self.read())
    }

    /// The SystemAccounts with at least one account-region on record.
    pub fn accounts(&self) -> BTreeSet<String> {
        self.read().keys().map(|r| r.account.clone()).collect()
    }

    /// How many accounts and account-regions are ready, failing or pending, for the gauges;
    /// `suspended` accounts are left out (their last outcome no longer says anything).
    pub fn health(&self, suspended: &BTreeSet<String>) -> Health {
        let mut health = Health::default();
        let mut accounts: BTreeMap<&str, State> = BTreeMap::new();
        let regions = self.read();
        for (region, outcome) in regions
            .iter()
            .filter(|(region, _)| !suspended.contains(&region.account))
        {
            let state = State::of(outcome);
            health.regions.add(state);
            let account = accounts.entry(region.account.as_str()).or_insert(state);
            *account = (*account).max(state);
        }
        for state in accounts.into_values() {
            health.accounts.add(state);
        }
        health
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<AccountRegion, RegionOutcome>> {
        // A panic while holding the lock leaves consistent data (whole-value inserts).
        self.regions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<AccountRegion, RegionOutcome>> {
        self.regions.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The smallest key of `account`'s account-regions.
fn first_of(account: &str) -> AccountRegion {
    AccountRegion {
        account: account.to_owned(),
        account_id: String::new(),
        region: String::new(),
    }
}

/// Accounts and account-regions by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Health {
    pub accounts: StateCounts,
    pub regions: StateCounts,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub ready: usize,
    pub failing: usize,
    pub pending: usize,
}

impl StateCounts {
    fn add(&mut self, state: State) {
        match state {
            State::Ready => self.ready += 1,
            State::Pending => self.pending += 1,
            State::Failing => self.failing += 1,
        }
    }
}

/// Ordered so that an account takes the worst state of its regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Ready,
    Pending,
    Failing,
}

impl State {
    fn of(outcome: &RegionOutcome) -> Self {
        if outcome.error.is_some() {
            State::Failing
        } else if outcome.converged && outcome.problems.is_empty() {
            State::Ready
        } else {
            State::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(account: &str, region: &str) -> AccountRegion {
        AccountRegion {
            account: account.to_owned(),
            account_id: "111111111111".to_owned(),
            region: region.to_owned(),
        }
    }

    #[test]
    fn one_accounts_regions_are_read_and_dropped_without_touching_the_others() {
        let fleet = Fleet::default();
        for (account, name) in [("a", "eu-west-1"), ("a", "us-east-1"), ("ab", "eu-west-1")] {
            fleet.record(region(account, name), RegionOutcome::default());
        }
        fleet.record(region("b", "eu-west-1"), RegionOutcome::default());
        assert_eq!(
            fleet.regions_of("a").into_keys().collect::<Vec<_>>(),
            [region("a", "eu-west-1"), region("a", "us-east-1")]
        );
        fleet.retain_of("a", |r, _| r.region == "us-east-1");
        assert_eq!(
            fleet.accounts(),
            BTreeSet::from(["a".to_owned(), "ab".to_owned(), "b".to_owned()])
        );
        assert_eq!(fleet.regions_of("a").len(), 1);
        assert_eq!(
            fleet.regions_of("ab").len(),
            1,
            "a longer name is another account"
        );
    }

    #[test]
    fn an_account_takes_the_worst_state_of_its_regions() {
        let fleet = Fleet::default();
        let ready = RegionOutcome {
            converged: true,
            ..RegionOutcome::default()
        };
        let failing = RegionOutcome {
            error: Some(PassError {
                reason: "AccessDenied".to_owned(),
                message: "denied".to_owned(),
                needs_attention: true,
            }),
            ..RegionOutcome::default()
        };
        fleet.record(region("a", "eu-west-1"), ready.clone());
        fleet.record(region("a", "us-east-1"), ready.clone());
        fleet.record(region("b", "eu-west-1"), ready);
        fleet.record(region("b", "us-east-1"), failing);
        fleet.record(region("c", "eu-west-1"), RegionOutcome::default());
        let health = fleet.health(&BTreeSet::new());
        assert_eq!(
            health.regions,
            StateCounts {
                ready: 3,
                failing: 1,
                pending: 1
            }
        );
        assert_eq!(
            health.accounts,
            StateCounts {
                ready: 1,
                failing: 1,
                pending: 1
            }
        );
        let without_b = fleet.health(&BTreeSet::from(["b".to_owned()]));
        assert_eq!(
            without_b.accounts,
            StateCounts {
                ready: 1,
                failing: 0,
                pending: 1
            },
            "a suspended account's last outcome counts nowhere"
        );
        assert_eq!(without_b.regions.failing, 0);
    }
}
