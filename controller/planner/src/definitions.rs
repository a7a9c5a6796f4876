//! Baseline definitions computed once per inventory and shared, not once per account-region.
//!
//! Every account-region that follows a policy gets the same definition of its baselines:
//! normalizing the spec for each of them (and cloning it again into each operation) made
//! the passes in flight hold one copy per account-region, the largest part of the
//! controller's heap at 1,000 accounts (docs/performance.md). The cache hands out one
//! `Arc` per policy and operating system. An entry is reused only while the policy's spec
//! and mode are still the ones it was computed from (compared, not trusted by name), so a
//! cache kept across an edit can never serve a stale definition: the result is always the
//! one [`baseline_definition`](crate::desired::baseline_definition) computes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use patchfleet_api::v1alpha1::{BaselineSpec, OperatingSystem, PolicyMode};

use crate::model::Owner;

#[derive(Default)]
pub struct DefinitionCache {
    entries: Mutex<HashMap<(Owner, OperatingSystem, Approvals), Entry>>,
}

/// Which approvals a baseline of a policy carries: the policy's own, or a rollout stage's
/// (the rules cut off at its release's date; None: no release yet, no rule).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Approvals {
    Policy,
    Release(Option<String>),
}

struct Entry {
    mode: PolicyMode,
    spec: BaselineSpec,
    definition: Arc<BaselineSpec>,
}

impl DefinitionCache {
    /// The definition of `policy`'s baseline for `spec`, computed by `compute` unless an
    /// entry made from an equal spec and mode exists.
    pub fn get_or_compute(
        &self,
        policy: &Owner,
        approvals: &Approvals,
        mode: PolicyMode,
        spec: &BaselineSpec,
        compute: impl FnOnce() -> BaselineSpec,
    ) -> Arc<BaselineSpec> {
        let key = (policy.clone(), spec.operating_system, approvals.clone());
        // A panic elsewhere while holding the lock leaves entries that are still whole.
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get(&key)
            && entry.mode == mode
            && entry.spec == *spec
        {
            return Arc::clone(&entry.definition);
        }
        let definition = Arc::new(compute());
        entries.insert(
            key,
            Entry {
                mode,
                spec: spec.clone(),
                definition: Arc::clone(&definition),
            },
        );
        definition
    }

    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A copy of an inventory starts with an empty cache: the copy may be changed.
impl Clone for DefinitionCache {
    fn clone(&self) -> DefinitionCache {
        DefinitionCache::default()
    }
}

impl std::fmt::Debug for DefinitionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefinitionCache")
            .field("entries", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OwnerKind;

    fn owner(name: &str) -> Owner {
        Owner {
            kind: OwnerKind::PatchPolicy,
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    #[test]
    fn an_equal_spec_shares_one_definition_and_a_changed_one_is_recomputed() {
        let cache = DefinitionCache::default();
        let spec = BaselineSpec::new(OperatingSystem::Windows);
        let computed = std::cell::Cell::new(0);
        let get = |spec: &BaselineSpec, mode| {
            cache.get_or_compute(&owner("p"), &Approvals::Policy, mode, spec, || {
                computed.set(computed.get() + 1);
                spec.clone()
            })
        };
        let first = get(&spec, PolicyMode::Active);
        let again = get(&spec, PolicyMode::Active);
        assert!(Arc::ptr_eq(&first, &again), "the same spec shares one Arc");
        assert_eq!(computed.get(), 1);

        let mut edited = spec.clone();
        edited.approved_patches.push("KB1".into());
        let after_edit = get(&edited, PolicyMode::Active);
        assert_eq!(after_edit.approved_patches, vec!["KB1".to_owned()]);
        let frozen = get(&edited, PolicyMode::Frozen);
        assert!(
            !Arc::ptr_eq(&after_edit, &frozen),
            "the mode is part of the key"
        );
        assert_eq!(computed.get(), 3);
    }

    #[test]
    fn policies_and_operating_systems_do_not_share() {
        let cache = DefinitionCache::default();
        let windows = BaselineSpec::new(OperatingSystem::Windows);
        let linux = BaselineSpec::new(OperatingSystem::AmazonLinux2);
        let a = cache.get_or_compute(
            &owner("a"),
            &Approvals::Policy,
            PolicyMode::Active,
            &windows,
            || windows.clone(),
        );
        let b = cache.get_or_compute(
            &owner("b"),
            &Approvals::Policy,
            PolicyMode::Active,
            &windows,
            || windows.clone(),
        );
        let c = cache.get_or_compute(
            &owner("a"),
            &Approvals::Policy,
            PolicyMode::Active,
            &linux,
            || linux.clone(),
        );
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(c.operating_system, OperatingSystem::AmazonLinux2);
        assert_eq!(cache.len(), 3);
        assert!(cache.clone().is_empty(), "a copy starts empty");
    }
}
