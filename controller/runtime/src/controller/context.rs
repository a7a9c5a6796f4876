//! What every reconciler shares: the API client, the in-memory stores, the SSM edge, the
//! record of passes, and the channels that wake accounts and owners.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use patchfleet_api::v1alpha1::{MaintenanceWindow, PatchGroup, PatchPolicy, SystemAccount};
use patchfleet_planner::Settings;
use patchfleet_planner::model::{AccountRegion, Owner, OwnerKind};
use patchfleet_ssm::SsmEdge;

use super::pending::{self, Pending};
use crate::fleet::Fleet;
use crate::metrics::Metrics;

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
}

/// The reflector stores: every resource patchfleet reads, kept current by watches.
#[derive(Clone)]
pub struct Stores {
    pub accounts: Store<SystemAccount>,
    pub policies: Store<PatchPolicy>,
    pub groups: Store<PatchGroup>,
    pub windows: Store<MaintenanceWindow>,
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
    pub pending: std::sync::Arc<Pending>,
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
    pub recorder: Recorder,
    pub metrics: std::sync::Arc<Metrics>,
    wakers: Wakers,
    /// When each account-region was last read in full.
    deep_reads: Mutex<BTreeMap<AccountRegion, Instant>>,
    /// Per owner, the account-regions it reached when it last changed, so that a change
    /// that stops selecting an account still wakes that account (to clean it).
    reach: Mutex<BTreeMap<Owner, (Revision, BTreeSet<AccountRegion>)>>,
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
            instance: Some(reporting.identity),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            stores,
            edge,
            settings,
            options,
            fleet: Fleet::default(),
            metrics: reporting.metrics,
            wakers,
            deep_reads: Mutex::default(),
            reach: Mutex::default(),
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

    pub fn wake_owner(&self, owner: &Owner) {
        let namespace = owner.namespace.as_str();
        let name = owner.name.as_str();
        self.wakers
            .pending
            .requested(owner.kind.as_str(), pending::key(Some(namespace), name));
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

    pub fn forget_reach(&self, owner: &Owner) {
        self.reach
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(owner);
    }
}
