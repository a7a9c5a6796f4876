//! A consistent snapshot of every resource for the planner.

use std::collections::BTreeMap;

use kube::ResourceExt;
use patchfleet_planner::Inventory;
use patchfleet_planner::inventory::Shared;

use super::Stores;

pub fn snapshot(stores: &Stores) -> Inventory {
    let namespaces = stores
        .namespaces
        .state()
        .iter()
        .map(|ns| {
            (
                ns.name_any(),
                ns.labels().clone().into_iter().collect::<BTreeMap<_, _>>(),
            )
        })
        .collect();
    Inventory {
        // Shared with the store: a snapshot of a thousand accounts is a thousand pointers
        // (copying them was the largest share of the heap while accounts were added).
        accounts: stores
            .accounts
            .state()
            .into_iter()
            .map(Shared::from)
            .collect(),
        policies: stores
            .policies
            .state()
            .iter()
            .map(|p| (**p).clone())
            .collect(),
        groups: stores
            .groups
            .state()
            .iter()
            .map(|g| (**g).clone())
            .collect(),
        windows: stores
            .windows
            .state()
            .iter()
            .map(|w| (**w).clone())
            .collect(),
        rollouts: stores
            .rollouts
            .state()
            .iter()
            .map(|r| (**r).clone())
            .collect(),
        namespaces,
        definitions: Default::default(),
        staging: Default::default(),
    }
}
