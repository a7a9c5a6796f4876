//! What every reconciler shares: the API client, the in-memory stores, the SSM edge, the
//! record of passes, and the channels that wake accounts and owners.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use patchfleet_api::v1alpha1::{
    MaintenanceWindow, PatchGroup, PatchPolicy, PatchRollout, SystemAccount,
};
use patchfleet_planner::model::{AccountRegion, Owner, OwnerKind};
use patchfleet_planner::{Inventory, Settings};
use patchfleet_ssm::SsmEdge;

use super::pending::{self, Pending};
use crate::fleet::Fleet;
use crate::metrics::Metrics;
use crate::nodes::NodeStore;

/// Timing of passes.
#[derive(Clone, Debug)]
pub struct Options {
    /// A converged account-region is passed over again this often (cheap: lists and
    /// fingerprints, no deep reads).
    pub resync: Duration,
    /// After a pass that wrote, the next pass comes this soon, to confirm the writes.
    pub settle: Duration,
    /// Every owned object is read in full this often, to catch drift made by hand.
    pub deep_interval: Duration,
    /// Retry after a failure that time may fix (throttling, a network error).
    pub retry_transient: Duration,
    /// Retry after a failure a person must fix (access denied, quota).
    pub retry_attention: Duration,
    /// An unfinished Emergency run's command status is read again this often.
    pub run_poll: Duration,
    /// Owners woken by account passes roll their status up at most once per this interval:
    /// a thousand account passes in a second cost one rollup per owner, not a thousand.
    pub status_interval: Duration,
    /// The compliance pass (reads nodes, patch states and window runs back).
    pub compliance: super::compliance::ComplianceOptions,
}

/// The reflector stores: every resource patchfleet reads, kept current by watches.
#[derive(Clone)]
pub struct Stores {
    pub accounts: Store<SystemAccount>,
    pub policies: Store<PatchPolicy>,
    pub groups: Store<PatchGroup>,
    pub windows: Store<MaintenanceWindow>,
    pub rollouts: Store<PatchRollout>,
    pub namespaces: Store<Namespace>,
}

impl Stores {
    /// Waits until every store holds its initial list. Planning on a partial store would
    /// read as "deleted" and remove what the missing resources made.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        wait(&self.accounts).await?;
        wait(&self.policies).await?;
        wait(&self.groups).await?;
        wait(&self.windows).await?;
        wait(&self.rollouts).await?;
        wait(&self.namespaces).await?;
        Ok(())
    }
}

/// `Store::wait_until_ready`, asked again every half second: a waiter that started before
/// the store became ready was seen never to wake (kube-runtime 5.0), while a new one
/// returns at once.
async fn wait<K>(store: &Store<K>) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        match tokio::time::timeout(Duration::from_millis(500), store.wait_until_ready()).await {
            Ok(result) => return Ok(result?),
            Err(_elapsed) => continue,
        }
    }
}

/// Senders that queue a reconcile, and the record of what waits (the queue-depth gauge).
pub struct Wakers {
    pub accounts: UnboundedSender<ObjectRef<SystemAccount>>,
    pub policies: UnboundedSender<ObjectRef<PatchPolicy>>,
    pub groups: UnboundedSender<ObjectRef<PatchGroup>>,
    pub windows: UnboundedSender<ObjectRef<MaintenanceWindow>>,
    pub rollouts: UnboundedSender<ObjectRef<PatchRollout>>,
    pub pending: std::sync::Arc<Pending>,
    /// Bumped by every watch event that can change a plan (specs, labels, deletions,
    /// namespaces; not the status writes of account passes).
    pub inventory_version: Arc<AtomicU64>,
}

/// Who this replica is (the Events' reporter instance) and its metrics.
pub struct Reporting {
    pub identity: String,
    pub metrics: std::sync::Arc<Metrics>,
}

/// What makes an owner's change worth waking accounts for: its spec (generation) or the
/// start of its deletion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revision {
    pub generation: Option<i64>,
    pub deleting: bool,
}

pub struct Context {
    pub client: Client,
    pub stores: Stores,
    pub edge: SsmEdge,
    pub settings: Settings,
    pub options: Options,
    pub fleet: Fleet,
    /// What the compliance pass last read in each account-region.
    pub nodes: NodeStore,
    pub recorder: Recorder,
    /// This replica's name, the reporting instance of its Events.
    pub identity: String,
    pub metrics: std::sync::Arc<Metrics>,
    wakers: Wakers,
    /// Owners to roll up at the next flush (see [`Options::status_interval`]).
    owners_to_wake: Mutex<BTreeSet<Owner>>,
    /// The planner's input, built from the stores once per inventory version: account
    /// passes share it instead of copying every resource each time.
    inventory: Mutex<Option<(u64, Arc<Inventory>)>>,
    /// When each account-region was last read in full.
    deep_reads: Mutex<BTreeMap<AccountRegion, Instant>>,
    /// Per owner, the account-regions it reached when it last changed, so that a change
    /// that stops selecting an account still wakes that account (to clean it).
    reach: Mutex<BTreeMap<Owner, (Revision, BTreeSet<AccountRegion>)>>,
    /// Per PatchRollout, the plan inputs ([`super::rollout::plan_inputs`]) its accounts
    /// were last woken for.
    rollouts_woken: Mutex<BTreeMap<(String, String), u64>>,
}

impl Context {
    pub fn new(
        client: Client,
        stores: Stores,
        edge: SsmEdge,
        settings: Settings,
        options: Options,
        wakers: Wakers,
        reporting: Reporting,
    ) -> Self {
        let reporter = Reporter {
            controller: "patchfleet".into(),
            instance: Some(reporting.identity.clone()),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            identity: reporting.identity,
            client,
            stores,
            edge,
            settings,
            options,
            fleet: Fleet::default(),
            nodes: NodeStore::default(),
            metrics: reporting.metrics,
            wakers,
            owners_to_wake: Mutex::default(),
            inventory: Mutex::default(),
            deep_reads: Mutex::default(),
            reach: Mutex::default(),
            rollouts_woken: Mutex::default(),
        }
    }

    /// Objects waiting for a reconcile to start.
    pub fn pending(&self) -> &Pending {
        &self.wakers.pending
    }

    pub fn wake_account(&self, name: &str) {
        self.wakers
            .pending
            .requested("SystemAccount", pending::key(None, name));
        // A closed channel means the controller is shutting down: nothing to wake.
        let _ = self.wakers.accounts.unbounded_send(ObjectRef::new(name));
    }

    pub fn wake_all_accounts(&self) {
        for account in self.stores.accounts.state() {
            if let Some(name) = &account.metadata.name {
                self.wake_account(name);
            }
        }
    }

    /// Queues every PatchRollout's evaluation (a compliance pass brought new evidence).
    pub fn wake_all_rollouts(&self) {
        for rollout in self.stores.rollouts.state() {
            let _ = self
                .wakers
                .rollouts
                .unbounded_send(ObjectRef::from_obj(&*rollout));
        }
    }

    /// Queues every PatchGroup's and MaintenanceWindow's rollup (the compliance figures of
    /// all of them changed meaning: see `OwnerNodes::known`).
    pub fn wake_all_owners(&self) {
        let groups = self.stores.groups.state().into_iter().map(|g| {
            Owner::new(
                OwnerKind::PatchGroup,
                g.metadata.namespace.as_deref().unwrap_or_default(),
                g.metadata.name.as_deref().unwrap_or_default(),
            )
        });
        let windows = self.stores.windows.state().into_iter().map(|w| {
            Owner::new(
                OwnerKind::MaintenanceWindow,
                w.metadata.namespace.as_deref().unwrap_or_default(),
                w.metadata.name.as_deref().unwrap_or_default(),
            )
        });
        for owner in groups.chain(windows).collect::<Vec<_>>() {
            self.wake_owner(&owner);
        }
    }

    /// Queues an owner's rollup for the next flush.
    pub fn wake_owner(&self, owner: &Owner) {
        self.wakers.pending.requested(
            owner.kind.as_str(),
            pending::key(Some(&owner.namespace), &owner.name),
        );
        self.owners_to_wake
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(owner.clone());
    }

    /// Sends every queued owner to its reconciler, once, every `status_interval`.
    pub async fn flush_owner_wakes(&self) {
        let mut tick = tokio::time::interval(self.options.status_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let owners = std::mem::take(
                &mut *self
                    .owners_to_wake
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            );
            for owner in owners {
                self.send_owner(&owner);
            }
        }
    }

    fn send_owner(&self, owner: &Owner) {
        let namespace = owner.namespace.as_str();
        let name = owner.name.as_str();
        // A send fails only when the controller is shutting down.
        match owner.kind {
            OwnerKind::PatchPolicy => {
                let _ = self
                    .wakers
                    .policies
                    .unbounded_send(ObjectRef::new(name).within(namespace));
            }
            OwnerKind::PatchGroup => {
                let _ = self
                    .wakers
                    .groups
                    .unbounded_send(ObjectRef::new(name).within(namespace));
            }
            OwnerKind::MaintenanceWindow => {
                let _ = self
                    .wakers
                    .windows
                    .unbounded_send(ObjectRef::new(name).within(namespace));
            }
        }
    }

    /// Every resource, as the planner reads it; rebuilt only after [`Self::inventory_changed`].
    pub fn inventory(&self) -> Arc<Inventory> {
        // The version is read before the stores: a change during the build bumps it again,
        // so a snapshot is never kept as newer than what it holds.
        let version = self.wakers.inventory_version.load(Ordering::SeqCst);
        let mut cached = self.inventory.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((built, inventory)) = cached.as_ref()
            && *built == version
        {
            return Arc::clone(inventory);
        }
        let inventory = Arc::new(super::inventory::snapshot(&self.stores));
        *cached = Some((version, Arc::clone(&inventory)));
        inventory
    }

    /// Whether this pass over the account-region should read every owned object in full,
    /// and if so, notes that it did.
    pub fn take_deep_read(&self, region: &AccountRegion) -> bool {
        let mut deep_reads = self.deep_reads.lock().unwrap_or_else(|e| e.into_inner());
        let due = deep_reads
            .get(region)
            .is_none_or(|last| last.elapsed() >= self.options.deep_interval);
        if due {
            deep_reads.insert(region.clone(), Instant::now());
        }
        due
    }

    /// How long until the first of these account-regions is due a deep read: the pass
    /// after a converged one is scheduled no later, so drift made by hand is corrected
    /// within `deep_interval` whatever the resync.
    pub fn deep_read_due_in(&self, regions: &[AccountRegion]) -> Option<Duration> {
        let deep_reads = self.deep_reads.lock().unwrap_or_else(|e| e.into_inner());
        regions
            .iter()
            .map(|region| match deep_reads.get(region) {
                Some(last) => self.options.deep_interval.saturating_sub(last.elapsed()),
                None => Duration::ZERO,
            })
            .min()
    }

    /// Records what an owner reaches now; returns the account-regions to wake (what it
    /// reaches now and what it reached before) when its generation moved since last time.
    pub fn note_reach(
        &self,
        owner: &Owner,
        revision: Revision,
        reached: BTreeSet<AccountRegion>,
    ) -> Option<BTreeSet<AccountRegion>> {
        let mut reach = self.reach.lock().unwrap_or_else(|e| e.into_inner());
        let previous = reach.insert(owner.clone(), (revision, reached.clone()));
        match previous {
            Some((seen, before)) if seen == revision && before == reached => None,
            Some((_, before)) => Some(before.union(&reached).cloned().collect()),
            None => Some(reached),
        }
    }

    /// Records a rollout's plan inputs; whether they differ from those last recorded.
    pub fn note_rollout(&self, namespace: &str, name: &str, inputs: u64) -> bool {
        let mut woken = self
            .rollouts_woken
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        woken.insert((namespace.to_owned(), name.to_owned()), inputs) != Some(inputs)
    }

    /// Forgets a rollout being deleted: one created again with the same name and spec
    /// wakes its accounts anew.
    pub fn forget_rollout(&self, namespace: &str, name: &str) {
        self.rollouts_woken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(namespace.to_owned(), name.to_owned()));
    }

    pub fn forget_reach(&self, owner: &Owner) {
        self.reach
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(owner);
    }

    /// Drops everything kept for a SystemAccount that is gone: its cached credentials,
    /// clients and rate limit (the edge), what its passes found, and when it was last read
    /// in full. Without this a deleted account's memory stayed until the process ended.
    pub fn forget_account(&self, name: &str) {
        self.edge.forget(name);
        self.fleet.retain_of(name, |_, _| false);
        self.deep_reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|region, _| region.account != name);
        for (_, regions) in self
            .reach
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values_mut()
        {
            regions.retain(|region| region.account != name);
        }
    }
}
