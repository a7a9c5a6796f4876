//! A consistent snapshot of every resource for the planner.

use std::collections::BTreeMap;

use kube::ResourceExt;
use patchfleet_planner::Inventory;

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
        accounts: stores
            .accounts
            .state()
            .iter()
            .map(|a| (**a).clone())
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
        namespaces,
        definitions: Default::default(),
    }
}
