//! Which objects wait for a reconcile to start, for the queue-depth gauge: a watch event
//! or a wake-up marks an object, the start of its reconcile clears it. kube-runtime's
//! scheduler does not expose its queue, so this is kept beside it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Pending {
    waiting: Mutex<BTreeMap<&'static str, BTreeSet<String>>>,
}

impl Pending {
    pub fn requested(&self, kind: &'static str, key: String) {
        self.lock().entry(kind).or_default().insert(key);
    }

    pub fn started(&self, kind: &'static str, key: &str) {
        if let Some(keys) = self.lock().get_mut(kind) {
            keys.remove(key);
        }
    }

    /// Objects of `kind` waiting; forgets those that no longer exist (the controller
    /// drops a request for a deleted object without reconciling it).
    pub fn depth(&self, kind: &'static str, exists: impl Fn(&str) -> bool) -> usize {
        let mut waiting = self.lock();
        let keys = waiting.entry(kind).or_default();
        keys.retain(|key| exists(key));
        keys.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, BTreeSet<String>>> {
        // Whole-entry updates: a panic elsewhere cannot leave it inconsistent.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The key of an object: `namespace/name`, or `name` when cluster-scoped.
pub fn key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_waits_until_its_reconcile_starts_or_the_object_goes() {
        let pending = Pending::default();
        pending.requested("PatchGroup", key(Some("team"), "web"));
        pending.requested("PatchGroup", key(Some("team"), "web"));
        pending.requested("PatchGroup", key(Some("team"), "db"));
        pending.requested("SystemAccount", key(None, "hub"));
        assert_eq!(pending.depth("PatchGroup", |_| true), 2);
        pending.started("PatchGroup", "team/web");
        assert_eq!(pending.depth("PatchGroup", |_| true), 1);
        assert_eq!(pending.depth("PatchGroup", |k| k != "team/db"), 0);
        assert_eq!(pending.depth("SystemAccount", |_| true), 1);
        assert_eq!(pending.depth("MaintenanceWindow", |_| true), 0);
    }
}
