//! Which account-regions a resource reaches. Selection is the tenancy boundary, so it is
//! decided in one place: a PatchGroup's accountSelector proposes accounts, each account's
//! namespaceSelector decides whether the group's namespace may use it, and its
//! patchGroupGrants whether that namespace may use the group's `Patch Group` value.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use patchfleet_api::v1alpha1::{PatchGroup, SystemAccount};

use crate::inventory::{Inventory, is_being_deleted, name_of, namespace_of};
use crate::model::{AccountRegion, Owner, OwnerKind};

/// Whether a label selector matches `labels`, with Kubernetes' semantics: every
/// matchLabels pair and every matchExpressions requirement must hold, and a selector with
/// neither matches everything. Err names what makes the selector invalid; an invalid
/// selector selects nothing.
pub fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, String> {
    validate_selector(selector)?;
    let labels_hold = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let expressions_hold = selector.match_expressions.iter().flatten().all(|req| {
        let value = labels.get(&req.key);
        let values = req.values.as_deref().unwrap_or_default();
        match req.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            // validate_selector admits no other operator.
            _ => value.is_none(),
        }
    });
    Ok(labels_hold && expressions_hold)
}

/// The checks Kubernetes makes when it turns a LabelSelector into a selector
/// (`metav1.LabelSelectorAsSelector`): a known operator, values for In and NotIn, none
/// for Exists and DoesNotExist. CRD schemas do not check this, so the planner does.
pub fn validate_selector(selector: &LabelSelector) -> Result<(), String> {
    for (i, req) in selector.match_expressions.iter().flatten().enumerate() {
        let values = req.values.as_deref().unwrap_or_default();
        let at = format!("matchExpressions[{i}]");
        if req.key.is_empty() {
            return Err(format!("{at}.key: must not be empty"));
        }
        match req.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(format!(
                    "{at}.values: must be non-empty for operator {}",
                    req.operator
                ));
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(format!(
                    "{at}.values: must be empty for operator {}",
                    req.operator
                ));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => {
                return Err(format!(
                    "{at}.operator: {other:?} is not one of In, NotIn, Exists, DoesNotExist"
                ));
            }
        }
    }
    Ok(())
}

/// A selector with no matchLabels and no matchExpressions.
pub fn is_empty_selector(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
}

/// How one PatchGroup relates to one account-region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The group is planned there.
    Reached,
    /// The group does not select it (labels, regions, suspended or deleted account).
    NotSelected,
    /// The group's accountSelector matches the account, but the account does not admit
    /// the group's namespace.
    NotPermitted,
    /// The group's accountSelector is invalid: it selects nothing.
    InvalidAccountSelector(String),
    /// The account's namespaceSelector is invalid: it admits nothing.
    InvalidNamespaceSelector(String),
    /// The account admits the namespace, but does not grant it the group's `Patch Group`
    /// value (spec.patchGroupGrants): why, naming the fields.
    NotGranted(String),
}

/// Whether patchfleet manages `region` of `account` now: the account is neither suspended
/// nor being deleted, and lists the region.
pub fn is_active_in(account: &SystemAccount, region: &str) -> bool {
    !account.spec.suspend
        && !is_being_deleted(&account.metadata)
        && account.spec.regions.iter().any(|r| r == region)
}

/// Whether `group` reaches `region` of `account`. The account must be active (not
/// suspended, not being deleted) and the region one of its regions and of the group's; the
/// group's accountSelector must match the account's labels; the account's
/// namespaceSelector must admit the group's namespace ([`admits`]); and the account must
/// grant that namespace the group's `Patch Group` value ([`grant`]). Unlike Kubernetes'
/// usual convention, an absent or empty namespaceSelector admits NO namespace (see
/// SystemAccountSpec): opening an account to every tenant must be written out.
///
/// An account the group's selector matches but that does not admit its namespace is
/// `NotPermitted`, except when the selector is `{}`: that selector means "every account
/// that admits this namespace" (PatchGroupSpec), so the others are simply not selected.
pub fn reach(
    inventory: &Inventory,
    group: &PatchGroup,
    account: &SystemAccount,
    region: &str,
) -> Reach {
    if !is_active_in(account, region) {
        return Reach::NotSelected;
    }
    let in_group = group
        .spec
        .regions
        .as_ref()
        .is_none_or(|regions| regions.iter().any(|r| r == region));
    if !in_group {
        return Reach::NotSelected;
    }
    let account_labels = account.metadata.labels.clone().unwrap_or_default();
    match selector_matches(&group.spec.account_selector, &account_labels) {
        Err(e) => return Reach::InvalidAccountSelector(e),
        Ok(false) => return Reach::NotSelected,
        Ok(true) => {}
    }
    let namespace = namespace_of(&group.metadata);
    let admitted = match admits(inventory, account, namespace) {
        Err(e) => return Reach::InvalidNamespaceSelector(e),
        Ok(admitted) => admitted,
    };
    if !admitted {
        return if is_empty_selector(&group.spec.account_selector) {
            Reach::NotSelected
        } else {
            Reach::NotPermitted
        };
    }
    match grant(account, namespace, group.group_name()) {
        Grant::Granted => Reach::Reached,
        Grant::Refused(why) => Reach::NotGranted(why),
    }
}

/// Whether the account's namespaceSelector admits `namespace`. Unlike Kubernetes' usual
/// convention, an absent or empty selector admits NO namespace, and a namespace the
/// controller has not seen is not admitted. Err: the selector is invalid (admits nothing).
pub fn admits(
    inventory: &Inventory,
    account: &SystemAccount,
    namespace: &str,
) -> Result<bool, String> {
    match &account.spec.namespace_selector {
        None => Ok(false),
        Some(selector) if is_empty_selector(selector) => Ok(false),
        Some(selector) => match inventory.namespace_labels(namespace) {
            None => Ok(false),
            Some(labels) => selector_matches(selector, &labels),
        },
    }
}

/// Whether an account lets a namespace use a `Patch Group` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    Granted,
    /// Why not, naming the SystemAccount's fields.
    Refused(String),
}

/// The account's decision on `namespace` using `value`: granted when exactly that
/// namespace holds a grant covering it. A value covered by the grants of several
/// namespaces is refused to all of them, so that no order of creation or of names ever
/// decides which tenant's machines are whose.
pub fn grant(account: &SystemAccount, namespace: &str, value: &str) -> Grant {
    let grants = &account.spec.patch_group_grants;
    let covering = || {
        grants
            .iter()
            .enumerate()
            .filter_map(|(i, g)| g.covers(value).map(|entry| (i, g, entry)))
    };
    // Granted on the planner's hot path (every group, account and region): no message
    // is built unless the value is refused.
    let ours = covering().any(|(_, g, _)| g.namespace == namespace);
    if ours && covering().count() == 1 {
        return Grant::Granted;
    }
    let account_name = name_of(&account.metadata);
    if !ours {
        return Grant::Refused(format!(
            "spec.groupName: SystemAccount {account_name} does not grant the Patch Group \
             value {value:?} to namespace {namespace} (spec.patchGroupGrants); nothing is \
             planned for this group there"
        ));
    }
    let holders: Vec<String> = covering()
        .map(|(i, g, entry)| format!("{} (spec.patchGroupGrants[{i}].{entry})", g.namespace))
        .collect();
    Grant::Refused(format!(
        "spec.groupName: SystemAccount {account_name} grants the Patch Group value {value:?} \
         to several namespaces: {}; a value granted to more than one namespace is granted to \
         none",
        holders.join(", ")
    ))
}

/// Where the account's grants give one `Patch Group` value (or values beginning with one
/// prefix) to two namespaces: such values are granted to neither (see [`grant`]). For the
/// SystemAccount's status, so its administrator sees the overlap before a tenant does.
pub fn grant_overlaps(account: &SystemAccount) -> Vec<String> {
    let grants = &account.spec.patch_group_grants;
    let mut overlaps = Vec::new();
    for (i, a) in grants.iter().enumerate() {
        for (j, b) in grants.iter().enumerate().skip(i + 1) {
            if a.namespace == b.namespace {
                continue;
            }
            let mut what: Vec<String> = a
                .values
                .iter()
                .filter(|v| b.covers(v).is_some())
                .chain(b.values.iter().filter(|v| a.covers(v).is_some()))
                .map(|v| format!("{v:?}"))
                .collect();
            for p in &a.prefixes {
                for q in b
                    .prefixes
                    .iter()
                    .filter(|q| p.starts_with(*q) || q.starts_with(p))
                {
                    let longer = if p.len() >= q.len() { p } else { q };
                    what.push(format!("every value beginning {longer:?}"));
                }
            }
            what.dedup();
            if !what.is_empty() {
                overlaps.push(format!(
                    "spec.patchGroupGrants[{i}] (namespace {}) and spec.patchGroupGrants[{j}] \
                     (namespace {}) both cover {}: granted to neither",
                    a.namespace,
                    b.namespace,
                    what.join(", ")
                ));
            }
        }
    }
    overlaps
}

pub fn account_region(account: &SystemAccount, region: &str) -> AccountRegion {
    AccountRegion {
        account: name_of(&account.metadata).to_owned(),
        account_id: account.spec.account_id.clone(),
        region: region.to_owned(),
    }
}

/// Every account-region patchfleet manages: each region of each account that is not
/// suspended. Accounts being deleted are included, so their plans can clean up.
pub fn account_regions(inventory: &Inventory) -> Vec<AccountRegion> {
    let all: BTreeSet<AccountRegion> = inventory
        .accounts
        .iter()
        .filter(|a| !a.spec.suspend)
        .flat_map(|a| a.spec.regions.iter().map(|r| account_region(a, r)))
        .collect();
    all.into_iter().collect()
}

/// The account-regions a PatchGroup reaches.
pub fn group_reach(inventory: &Inventory, group: &PatchGroup) -> BTreeSet<AccountRegion> {
    let mut reached = BTreeSet::new();
    for account in &inventory.accounts {
        for region in &account.spec.regions {
            if reach(inventory, group, account, region) == Reach::Reached {
                reached.insert(account_region(account, region));
            }
        }
    }
    reached
}

/// The account-regions an owner's spec selects: for a PatchGroup its own, for a
/// PatchPolicy those of the groups following it and those of the accounts naming it their
/// `defaultPatchPolicy`, for a MaintenanceWindow those of its target groups. The runtime wakes these accounts when the owner changes and rolls their
/// status up into the owner's. Deletion is ignored on purpose (of the owner and of the
/// groups): a resource being deleted must still wake the accounts that hold its objects.
pub fn reached_by(inventory: &Inventory, owner: &Owner) -> BTreeSet<AccountRegion> {
    let ns = owner.namespace.as_str();
    match owner.kind {
        OwnerKind::PatchGroup => inventory
            .group(ns, &owner.name)
            .map(|g| group_reach(inventory, g))
            .unwrap_or_default(),
        OwnerKind::PatchPolicy => {
            let defaults_of = inventory.accounts.iter().filter(|a| {
                a.spec
                    .default_patch_policy
                    .as_ref()
                    .is_some_and(|d| d.namespace == ns && d.name == owner.name)
            });
            let defaults = defaults_of.flat_map(|a| {
                a.spec.regions.iter().map(|region| AccountRegion {
                    account: name_of(&a.metadata).to_owned(),
                    account_id: a.spec.account_id.clone(),
                    region: region.clone(),
                })
            });
            inventory
                .groups_following(ns, &owner.name)
                .flat_map(|g| group_reach(inventory, g))
                .chain(defaults)
                .collect()
        }
        OwnerKind::MaintenanceWindow => inventory
            .window(ns, &owner.name)
            .map(|w| {
                w.spec
                    .targets
                    .patch_groups
                    .iter()
                    .filter_map(|name| inventory.group(ns, name))
                    .flat_map(|g| group_reach(inventory, g))
                    .collect()
            })
            .unwrap_or_default(),
    }
}
