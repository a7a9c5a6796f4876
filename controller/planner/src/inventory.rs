//! The planner's input: a snapshot of every resource the controller watches, and the
//! controller's settings. Kept as plain data so that a test builds one in a few lines
//! and the runtime fills one from its reflector stores.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use patchfleet_api::v1alpha1::{
    DeletionPolicy, MaintenanceWindow, PatchGroup, PatchPolicy, PatchRollout, SystemAccount,
};

use crate::definitions::DefinitionCache;
use crate::model::{Owner, OwnerKind};
use crate::rollout::Staging;

/// The label the API server sets on every namespace (immutable since Kubernetes 1.22), so
/// a namespaceSelector can always name a namespace.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Every resource the plan of any account-region depends on.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Shared with the runtime's reflector store, not copied: a snapshot of a thousand
    /// accounts costs a thousand pointers (see `Shared`).
    pub accounts: Vec<Shared<SystemAccount>>,
    pub policies: Vec<PatchPolicy>,
    pub groups: Vec<PatchGroup>,
    pub windows: Vec<MaintenanceWindow>,
    pub rollouts: Vec<PatchRollout>,
    /// Namespace name -> its labels. A namespace missing here admits nothing: the
    /// tenancy boundary is never opened on missing information.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Baseline definitions computed from `policies`, shared by every plan made from this
    /// inventory.
    pub definitions: DefinitionCache,
    /// Which groups sit in which rollout stage, computed from the rest on first use.
    pub staging: StagingCache,
}

/// [`Staging`] computed once per inventory. A copy of an inventory starts empty: the copy
/// may be changed.
#[derive(Debug, Default)]
pub struct StagingCache(OnceLock<Staging>);

impl Clone for StagingCache {
    fn clone(&self) -> StagingCache {
        StagingCache::default()
    }
}

/// A resource held by reference, as the reflector stores hold it: snapshots share it
/// instead of copying it, and a change (in a test) copies it first (copy on write).
#[derive(Clone, Debug, PartialEq)]
pub struct Shared<T>(Arc<T>);

impl<T> Shared<T> {
    pub fn new(value: T) -> Shared<T> {
        Shared(Arc::new(value))
    }
}

impl<T> From<T> for Shared<T> {
    fn from(value: T) -> Shared<T> {
        Shared::new(value)
    }
}

impl<T> From<Arc<T>> for Shared<T> {
    fn from(value: Arc<T>) -> Shared<T> {
        Shared(value)
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> std::ops::DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.0)
    }
}

/// How this controller runs. The default has an empty cluster id, which owns nothing:
/// set one before planning writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// This controller's identity, written in the `patchfleet.io/cluster` tag: only
    /// objects carrying it are patchfleet's to change.
    pub cluster_id: String,
    pub quotas: Quotas,
}

impl Settings {
    pub fn new(cluster_id: &str) -> Settings {
        Settings {
            cluster_id: cluster_id.to_owned(),
            quotas: Quotas::default(),
        }
    }
}

/// SSM quotas per account and region that a plan must stay within. An account can have
/// them raised, hence settings rather than constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    pub baselines: usize,
    pub windows: usize,
    pub targets_per_window: usize,
    pub tasks_per_window: usize,
    pub patch_groups_per_baseline: usize,
}

impl Default for Quotas {
    /// AWS's defaults: <https://docs.aws.amazon.com/general/latest/gr/ssm.html#limits_ssm>.
    fn default() -> Quotas {
        Quotas {
            baselines: 50,
            windows: 50,
            targets_per_window: 100,
            tasks_per_window: 20,
            patch_groups_per_baseline: 25,
        }
    }
}

/// Whether a resource is being deleted: it then contributes nothing to desired state
/// (its finalizer waits for the plans that remove, or release, what it made).
pub fn is_being_deleted(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

pub fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

pub fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or_default()
}

fn owner_of(kind: OwnerKind, meta: &ObjectMeta) -> Owner {
    Owner::new(kind, namespace_of(meta), name_of(meta))
}

pub fn policy_owner(policy: &PatchPolicy) -> Owner {
    owner_of(OwnerKind::PatchPolicy, &policy.metadata)
}

pub fn group_owner(group: &PatchGroup) -> Owner {
    owner_of(OwnerKind::PatchGroup, &group.metadata)
}

pub fn window_owner(window: &MaintenanceWindow) -> Owner {
    owner_of(OwnerKind::MaintenanceWindow, &window.metadata)
}

impl Inventory {
    /// The rollouts' stages (computed on first use: an inventory is a snapshot).
    pub fn staging(&self) -> &Staging {
        self.staging.0.get_or_init(|| Staging::of(self))
    }

    pub fn rollout(&self, namespace: &str, name: &str) -> Option<&PatchRollout> {
        self.rollouts
            .iter()
            .find(|r| namespace_of(&r.metadata) == namespace && name_of(&r.metadata) == name)
    }

    pub fn account(&self, name: &str) -> Option<&SystemAccount> {
        self.accounts
            .iter()
            .find(|a| name_of(&a.metadata) == name)
            .map(|a| &**a)
    }

    pub fn policy(&self, namespace: &str, name: &str) -> Option<&PatchPolicy> {
        self.policies
            .iter()
            .find(|p| namespace_of(&p.metadata) == namespace && name_of(&p.metadata) == name)
    }

    pub fn group(&self, namespace: &str, name: &str) -> Option<&PatchGroup> {
        self.groups
            .iter()
            .find(|g| namespace_of(&g.metadata) == namespace && name_of(&g.metadata) == name)
    }

    pub fn window(&self, namespace: &str, name: &str) -> Option<&MaintenanceWindow> {
        self.windows
            .iter()
            .find(|w| namespace_of(&w.metadata) == namespace && name_of(&w.metadata) == name)
    }

    /// The labels a namespaceSelector sees: the stored ones plus the name label the API
    /// server always sets. None when the namespace is unknown.
    pub fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        let mut labels = self.namespaces.get(namespace)?.clone();
        labels
            .entry(NAMESPACE_NAME_LABEL.to_owned())
            .or_insert_with(|| namespace.to_owned());
        Some(labels)
    }

    /// PatchGroups (in the policy's namespace) whose `policyRef` names this policy.
    pub fn groups_following<'a>(
        &'a self,
        namespace: &'a str,
        policy: &'a str,
    ) -> impl Iterator<Item = &'a PatchGroup> + 'a {
        self.groups.iter().filter(move |g| {
            namespace_of(&g.metadata) == namespace && g.spec.policy_ref.name == policy
        })
    }
}

/// Owners being deleted with deletionPolicy Orphan: what they made is released (the
/// ownership tags removed) rather than deleted. PatchPolicy has no deletion policy.
pub fn orphaned_owners(inventory: &Inventory) -> BTreeSet<Owner> {
    let groups = inventory
        .groups
        .iter()
        .filter(|g| {
            is_being_deleted(&g.metadata) && g.spec.deletion_policy == DeletionPolicy::Orphan
        })
        .map(group_owner);
    let windows = inventory
        .windows
        .iter()
        .filter(|w| {
            is_being_deleted(&w.metadata) && w.spec.deletion_policy == DeletionPolicy::Orphan
        })
        .map(window_owner);
    groups.chain(windows).collect()
}
