//! What the compliance pass last read in every account-region, kept in memory: the
//! figures the SystemAccount, PatchGroup and MaintenanceWindow statuses and the metrics
//! show. The compliance pass is the only writer. After a restart nothing is known until
//! each account-region has been read once; the statuses keep what they said until then.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use patchfleet_api::v1alpha1::{
    AccountNodes, GroupNodes, NodeCounts, RegionNodes, WindowRun, WindowRuns,
};
use patchfleet_planner::compliance::{self, RegionFigures};
use patchfleet_planner::model::{AccountRegion, Owner};
use patchfleet_planner::rollout::{GroupTotals, StageRelease};

/// One account-region's last compliance reading.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegionRecord {
    /// From the last successful read.
    pub figures: RegionFigures,
    /// When that read ended; None before the first success.
    pub observed_at: Option<Time>,
    /// Why the last read failed, if it did (the figures are then older).
    pub error: Option<String>,
    /// The last run of each of patchfleet's windows here, by SSM name: a finished run is
    /// not read again.
    pub known_runs: BTreeMap<String, WindowRun>,
}

impl RegionRecord {
    /// The region as the SystemAccount shows it.
    pub fn region_nodes(&self, region: &str) -> RegionNodes {
        RegionNodes {
            region: region.to_owned(),
            observed_at: self.observed_at.clone(),
            error: self.error.clone(),
            ..self.figures.region.clone()
        }
    }
}

#[derive(Debug, Default)]
pub struct NodeStore {
    regions: RwLock<BTreeMap<AccountRegion, RegionRecord>>,
    /// A whole pass has ended since the start: an owner no reading counts has no
    /// figures (before, it may just not have been read yet).
    swept: AtomicBool,
}

impl NodeStore {
    pub fn get(&self, region: &AccountRegion) -> Option<RegionRecord> {
        self.read().get(region).cloned()
    }

    pub fn record(&self, region: AccountRegion, record: RegionRecord) {
        self.write().insert(region, record);
    }

    /// Forgets every account-region `keep` refuses; the owners those counted for.
    pub fn retain(&self, keep: impl Fn(&AccountRegion) -> bool) -> BTreeSet<Owner> {
        let mut owners = BTreeSet::new();
        self.write().retain(|region, record| {
            let kept = keep(region);
            if !kept {
                owners.extend(record.figures.groups.keys().cloned());
                owners.extend(record.figures.windows.keys().cloned());
            }
            kept
        });
        owners
    }

    pub fn swept(&self) -> bool {
        self.swept.load(Ordering::Acquire)
    }

    pub fn mark_swept(&self) {
        self.swept.store(true, Ordering::Release);
    }

    /// A SystemAccount's nodes in `regions` (those with a reading), in that order.
    pub fn account_nodes(&self, account: &str, regions: &[String]) -> Option<AccountNodes> {
        let map = self.read();
        let mut nodes = AccountNodes::default();
        // Account-regions sort by account first: one range of the map.
        let first = AccountRegion {
            account: account.to_owned(),
            account_id: String::new(),
            region: String::new(),
        };
        let of_account = map.range(first..).take_while(|(r, _)| r.account == account);
        for (region, record) in of_account {
            if !regions.contains(&region.region) {
                continue;
            }
            nodes.total.add(&record.figures.region.counts);
            nodes.regions.push(record.region_nodes(&region.region));
        }
        if nodes.regions.is_empty() {
            return None;
        }
        nodes
            .regions
            .sort_by_key(|r| regions.iter().position(|x| *x == r.region));
        Some(nodes)
    }

    /// A PatchGroup's nodes, where it was read; None where it never was.
    pub fn group_nodes(&self, owner: &Owner) -> Option<GroupNodes> {
        let map = self.read();
        let mut found = false;
        let nodes = compliance::group_nodes(map.iter().filter_map(|(region, record)| {
            let counts = record.figures.groups.get(owner)?;
            found = true;
            let overwritten = record.figures.overwritten.get(owner).copied().unwrap_or(0);
            Some((region, counts, overwritten))
        }));
        found.then_some(nodes)
    }

    /// What a staged PatchGroup's nodes showed for `release`, summed over the
    /// account-regions whose last reading judged them against that release.
    pub fn group_evidence(&self, owner: &Owner, release: &StageRelease) -> GroupTotals {
        let mut totals = GroupTotals {
            group: owner.name.clone(),
            ..GroupTotals::default()
        };
        for record in self.read().values() {
            let Some((read_for, evidence)) = record.figures.stages.get(owner) else {
                continue;
            };
            if read_for != release {
                continue;
            }
            totals.evidence.add(evidence);
            totals.account_regions += 1;
        }
        totals
    }

    /// A MaintenanceWindow's last runs, where it was read; None where it never was.
    pub fn window_runs(&self, owner: &Owner) -> Option<WindowRuns> {
        let map = self.read();
        let mut found = false;
        let runs = compliance::window_runs(map.iter().filter_map(|(region, record)| {
            let run = record.figures.windows.get(owner)?;
            found = true;
            Some((region, run.as_ref()))
        }));
        found.then_some(runs)
    }

    /// Every account-region's figures added up, and the overwritten nodes (the metrics).
    pub fn totals(&self) -> (NodeCounts, u32) {
        let mut total = NodeCounts::default();
        let mut overwritten = 0;
        for record in self.read().values() {
            total.add(&record.figures.region.counts);
            overwritten += record.figures.region.overwritten;
        }
        (total, overwritten)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<AccountRegion, RegionRecord>> {
        self.regions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<AccountRegion, RegionRecord>> {
        self.regions.write().unwrap_or_else(|e| e.into_inner())
    }
}
