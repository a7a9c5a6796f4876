//! The owner reconcilers (PatchPolicy, PatchGroup, MaintenanceWindow), one generic
//! pipeline: finalizer → wake the accounts a change concerns → references → status rollup
//! → on deletion, release the finalizer once no account-region holds anything of it.
//! They never talk to SSM: the account reconciler does, and wakes them when it is done.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::core::NamespaceResourceScope;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use patchfleet_api::conditions::{self, STALLED};
use patchfleet_api::v1alpha1::{
    EmergencyRun, FleetStatus, GroupNodes, MaintenanceWindow, MaintenanceWindowStatus, PatchGroup,
    PatchGroupStatus, PatchPolicy, Strategy, WindowRuns,
};
use patchfleet_planner::Inventory;
use patchfleet_planner::model::{AccountRegion, Owner, OwnerKind};
use patchfleet_planner::runs::recorded_runs;
use patchfleet_planner::snapshots as window_snapshots;
use serde::de::DeserializeOwned;
use thiserror::Error;
use tracing::{Instrument, info, info_span, warn};

use super::context::Revision;
use super::{Context, FINALIZER, events, finalizer, status};
use crate::fleet::RegionOutcome;
use crate::rollup::{RollupInput, rollup};

#[derive(Debug, Error)]
pub enum OwnerError {
    #[error("waiting for the resource caches: {0}")]
    Caches(String),
    #[error("updating the finalizer of {owner}: {source}")]
    Finalizer { owner: Owner, source: kube::Error },
    #[error("writing the status of {owner}: {source}")]
    Status { owner: Owner, source: kube::Error },
}

/// What the owner reconciler saw, for the parts of a status beyond the rollup.
pub struct Seen<'a> {
    pub owner: &'a Owner,
    pub inventory: &'a Inventory,
    /// Account-regions the owner reaches now.
    pub reached: &'a BTreeSet<AccountRegion>,
    pub outcomes: &'a BTreeMap<AccountRegion, RegionOutcome>,
    pub now: Time,
    /// What the compliance pass read for the owner (PatchGroup: its nodes;
    /// MaintenanceWindow: its last runs).
    pub nodes: &'a OwnerNodes,
}

/// An owner's compliance figures, from `Context::nodes`.
#[derive(Default)]
pub struct OwnerNodes {
    pub group: Option<GroupNodes>,
    pub window: Option<WindowRuns>,
    /// Whether a whole compliance pass has ended since the start: until then, an owner
    /// without figures keeps what its status said (they may just not be read yet).
    pub known: bool,
}

impl OwnerNodes {
    fn of(ctx: &Context, owner: &Owner) -> OwnerNodes {
        let known = ctx.nodes.swept();
        match owner.kind {
            OwnerKind::PatchGroup => OwnerNodes {
                group: ctx.nodes.group_nodes(owner),
                window: None,
                known,
            },
            OwnerKind::MaintenanceWindow => OwnerNodes {
                group: None,
                window: ctx.nodes.window_runs(owner),
                known,
            },
            OwnerKind::PatchPolicy => OwnerNodes::default(),
        }
    }

    /// The figures to show: the pass's, else (before a whole pass) what the status said.
    fn or_previous<T: Clone>(&self, read: &Option<T>, previous: Option<&T>) -> Option<T> {
        if read.is_some() || self.known {
            read.clone()
        } else {
            previous.cloned()
        }
    }
}

/// The PatchGroup condition that says another tool's scans replaced patchfleet's data on
/// some of its nodes.
pub const SCAN_OVERWRITTEN: &str = "ScanOverwritten";

/// What distinguishes the three owner kinds.
pub trait OwnerResource:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + serde::Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    const KIND: OwnerKind;
    fn fleet_status(&self) -> Option<&FleetStatus>;
    /// The status to write, given the rollup and what else the kind reports.
    fn status_with(&self, fleet: FleetStatus, seen: &Seen<'_>) -> serde_json::Value;
}

impl OwnerResource for PatchPolicy {
    const KIND: OwnerKind = OwnerKind::PatchPolicy;
    fn fleet_status(&self) -> Option<&FleetStatus> {
        self.status.as_ref()
    }
    fn status_with(&self, fleet: FleetStatus, _seen: &Seen<'_>) -> serde_json::Value {
        serde_json::to_value(fleet).unwrap_or_default()
    }
}

impl OwnerResource for PatchGroup {
    const KIND: OwnerKind = OwnerKind::PatchGroup;
    fn fleet_status(&self) -> Option<&FleetStatus> {
        self.status.as_ref().map(|s| &s.fleet)
    }
    fn status_with(&self, mut fleet: FleetStatus, seen: &Seen<'_>) -> serde_json::Value {
        let nodes = seen.nodes.or_previous(
            &seen.nodes.group,
            self.status.as_ref().and_then(|s| s.nodes.as_ref()),
        );
        match &nodes {
            Some(nodes) => set_scan_overwritten(&mut fleet, self, nodes, seen.now.clone()),
            None => fleet.conditions.retain(|c| c.type_ != SCAN_OVERWRITTEN),
        }
        let status = PatchGroupStatus {
            fleet,
            group_name: Some(self.group_name().to_owned()),
            nodes,
        };
        serde_json::to_value(status).unwrap_or_default()
    }
}

impl OwnerResource for MaintenanceWindow {
    const KIND: OwnerKind = OwnerKind::MaintenanceWindow;
    fn fleet_status(&self) -> Option<&FleetStatus> {
        self.status.as_ref().map(|s| &s.fleet)
    }
    fn status_with(&self, mut fleet: FleetStatus, seen: &Seen<'_>) -> serde_json::Value {
        let notice = window_snapshots::snapshot_notice(seen.inventory, self, seen.reached);
        match notice {
            Some(notice) => {
                conditions::set(
                    &mut fleet.conditions,
                    conditions::Desired {
                        type_: window_snapshots::CONDITION,
                        status: if notice.applies {
                            conditions::Status::True
                        } else {
                            conditions::Status::False
                        },
                        reason: notice.reason,
                        message: notice.message,
                    },
                    self.metadata.generation,
                    seen.now.clone(),
                );
            }
            None => fleet
                .conditions
                .retain(|c| c.type_ != window_snapshots::CONDITION),
        }
        let runs = seen
            .nodes
            .or_previous(
                &seen.nodes.window,
                self.status.as_ref().and_then(|s| s.runs.as_ref()),
            )
            .filter(|_| self.spec.strategy != Strategy::Emergency);
        let status = MaintenanceWindowStatus {
            fleet,
            emergency_runs: emergency_runs(self, seen),
            runs,
        };
        serde_json::to_value(status).unwrap_or_default()
    }
}

/// `ScanOverwritten`: True while some of the group's nodes last reported a patch operation
/// with a baseline patchfleet did not register for the group.
fn set_scan_overwritten(
    fleet: &mut FleetStatus,
    group: &PatchGroup,
    nodes: &GroupNodes,
    now: Time,
) {
    let desired = if nodes.overwritten == 0 {
        conditions::Desired {
            type_: SCAN_OVERWRITTEN,
            status: conditions::Status::False,
            reason: "AsExpected",
            message: String::new(),
        }
    } else {
        conditions::Desired {
            type_: SCAN_OVERWRITTEN,
            status: conditions::Status::True,
            reason: "OtherBaselineScanned",
            message: format!(
                "{} node(s) of patch group {:?} last reported a scan or install with a baseline \
                 patchfleet did not register for the group: another tool scanned them, or \
                 the operation ran before the group's registration existed, and each \
                 operation replaces the previous report. Their figures are not judged by \
                 the group's policy until its next Scan or Install; find them with \
                 DescribeInstancePatchStatesForPatchGroup (BaselineId) and stop any other \
                 tool scanning this group (docs/compliance.md)",
                nodes.overwritten,
                group.group_name()
            ),
        }
    };
    conditions::set(
        &mut fleet.conditions,
        desired,
        group.metadata.generation,
        now,
    );
}

/// A MaintenanceWindow's runs, one entry per reached account-region: this process's last
/// pass there, else what the status already said (after a restart, before the first
/// pass). Only an Emergency window has runs.
fn emergency_runs(window: &MaintenanceWindow, seen: &Seen<'_>) -> Vec<EmergencyRun> {
    if window.spec.strategy != Strategy::Emergency {
        return Vec::new();
    }
    seen.reached
        .iter()
        .filter_map(|region| {
            let remembered = seen
                .outcomes
                .get(region)
                .and_then(|o| o.runs.get(seen.owner));
            remembered
                .or_else(|| recorded_runs(window, region).next())
                .cloned()
        })
        .collect()
}

pub async fn reconcile<K: OwnerResource>(
    object: Arc<K>,
    ctx: Arc<Context>,
) -> Result<Action, OwnerError> {
    let owner = owner_of(&*object);
    let span = info_span!("owner", kind = K::KIND.as_str(), namespace = %owner.namespace, name = %owner.name);
    reconcile_owner(object, owner, ctx).instrument(span).await
}

pub fn error_policy<K: OwnerResource>(
    _object: Arc<K>,
    error: &OwnerError,
    ctx: Arc<Context>,
) -> Action {
    warn!(%error, "owner reconcile failed");
    Action::requeue(ctx.options.retry_transient)
}

fn owner_of<K: OwnerResource>(object: &K) -> Owner {
    Owner {
        kind: K::KIND,
        namespace: object.namespace().unwrap_or_default(),
        name: object.name_any(),
    }
}

async fn reconcile_owner<K: OwnerResource>(
    object: Arc<K>,
    owner: Owner,
    ctx: Arc<Context>,
) -> Result<Action, OwnerError> {
    ctx.stores
        .wait_ready()
        .await
        .map_err(|e| OwnerError::Caches(e.to_string()))?;
    let deleting = object.meta().deletion_timestamp.is_some();
    let has_finalizer = object.finalizers().iter().any(|f| f == FINALIZER);
    if deleting && !has_finalizer {
        ctx.forget_reach(&owner);
        return Ok(Action::await_change());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    if !deleting && !has_finalizer {
        finalizer::add(&api, object.as_ref())
            .await
            .map_err(|source| OwnerError::Finalizer {
                owner: owner.clone(),
                source,
            })?;
    }

    let inventory = ctx.inventory();
    // What the owner selects: where it is planned, and where its selector matches but the
    // account refuses its namespace (reported there as NamespaceNotPermitted).
    let mut reached = patchfleet_planner::reached_by(&inventory, &owner);
    reached.extend(refused_regions(&inventory, &owner));
    let revision = Revision {
        generation: object.meta().generation,
        deleting,
    };
    let mut to_wake: BTreeSet<AccountRegion> = ctx
        .note_reach(&owner, revision, reached.clone())
        .unwrap_or_default();
    if deleting {
        to_wake.extend(ctx.fleet.where_present(&owner));
    }
    // Only where the last pass did not already plan this generation: an account that
    // appeared (or a controller that started) passes with every owner anyway, and waking
    // it again would cost a second pass for nothing.
    let generation = object.meta().generation;
    ctx.fleet.read_with(|outcomes| {
        to_wake.retain(|region| {
            deleting
                || outcomes.get(region).is_none_or(|outcome| {
                    outcome.planned_generations.get(&owner).copied() != generation
                        || (!reached.contains(region) && outcome.owners_present.contains(&owner))
                })
        });
    });
    for account in to_wake
        .iter()
        .map(|r| r.account.clone())
        .collect::<BTreeSet<_>>()
    {
        ctx.wake_account(&account);
    }

    if deleting {
        return finish_deletion(&*object, &api, &owner, &reached, &inventory, &ctx).await;
    }

    let problems = patchfleet_planner::reference_problems_of(&inventory, &owner);
    let previous = object.fleet_status();
    let now = status::now();
    let nodes = OwnerNodes::of(&ctx, &owner);
    // Read in place: copying thousands of outcomes per rollup is what made it quadratic.
    let (fleet, next) = ctx.fleet.read_with(|outcomes| {
        let fleet = rollup(RollupInput {
            owner: &owner,
            generation: object.meta().generation.unwrap_or_default(),
            selected: &reached,
            outcomes,
            own_problems: &problems,
            previous,
            now: now.clone(),
        });
        let seen = Seen {
            owner: &owner,
            inventory: &inventory,
            reached: &reached,
            outcomes,
            now,
            nodes: &nodes,
        };
        let next = object.status_with(fleet.clone(), &seen);
        (fleet, next)
    });
    announce_stall(&ctx, &owner, previous, &fleet).await;
    let current = previous
        .map(|_| object_status_value(&*object))
        .unwrap_or(serde_json::Value::Null);
    if next != current {
        status::apply(&api, &*object, &next)
            .await
            .map_err(|source| OwnerError::Status {
                owner: owner.clone(),
                source,
            })?;
    }
    Ok(Action::await_change())
}

/// Account-regions a PatchGroup's selector matches whose account does not admit its
/// namespace (or whose selectors are invalid).
fn refused_regions(inventory: &Inventory, owner: &Owner) -> BTreeSet<AccountRegion> {
    use patchfleet_planner::selection::{Reach, account_region, reach};
    let Some(group) = inventory.groups.iter().find(|g| {
        owner.kind == OwnerKind::PatchGroup
            && g.metadata.namespace.as_deref() == Some(&owner.namespace)
            && g.metadata.name.as_deref() == Some(&owner.name)
    }) else {
        return BTreeSet::new();
    };
    let mut refused = BTreeSet::new();
    for account in &inventory.accounts {
        for region in &account.spec.regions {
            if !matches!(
                reach(inventory, group, account, region),
                Reach::Reached | Reach::NotSelected
            ) {
                refused.insert(account_region(account, region));
            }
        }
    }
    refused
}

/// The status as stored, to compare with the one about to be written.
fn object_status_value<K: OwnerResource>(object: &K) -> serde_json::Value {
    serde_json::to_value(object)
        .ok()
        .and_then(|v| v.get("status").cloned())
        .unwrap_or(serde_json::Value::Null)
}

/// An Event when the resource becomes Stalled, or stalls for another reason.
async fn announce_stall(
    ctx: &Context,
    owner: &Owner,
    previous: Option<&FleetStatus>,
    next: &FleetStatus,
) {
    let stalled = |s: &FleetStatus| {
        conditions::find(&s.conditions, STALLED)
            .filter(|c| c.status == "True")
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    let before = previous.and_then(stalled);
    if let Some((reason, message)) = stalled(next)
        && before.as_ref().map(|(_, m)| m) != Some(&message)
    {
        events::warning(ctx, owner, &reason, message).await;
    }
}

/// Releases the finalizer once no account-region holds anything of the owner, and no
/// account-region it reached is in an unknown state; otherwise says where it waits.
async fn finish_deletion<K: OwnerResource>(
    object: &K,
    api: &Api<K>,
    owner: &Owner,
    reached: &BTreeSet<AccountRegion>,
    inventory: &Inventory,
    ctx: &Context,
) -> Result<Action, OwnerError> {
    let mut waiting: BTreeSet<AccountRegion> = ctx.fleet.where_present(owner);
    waiting.extend(
        reached
            .iter()
            .filter(|region| !ctx.fleet.get(region).is_some_and(|o| o.observed))
            .cloned(),
    );
    if waiting.is_empty() {
        finalizer::remove(api, &owner.name)
            .await
            .map_err(|source| OwnerError::Finalizer {
                owner: owner.clone(),
                source,
            })?;
        ctx.forget_reach(owner);
        info!("cleaned up in every account-region: finalizer removed");
        return Ok(Action::await_change());
    }
    let details: Vec<String> = waiting
        .iter()
        .take(5)
        .map(|region| match ctx.fleet.get(region).and_then(|o| o.error) {
            Some(error) => format!("{region}: {}", error.message),
            None => format!("{region}: cleanup pending"),
        })
        .collect();
    let message = format!(
        "deleting: waiting for {} account-region(s) to be cleaned: {}",
        waiting.len(),
        details.join("; ")
    );
    let mut fleet = object.fleet_status().cloned().unwrap_or_default();
    let now = status::now();
    let generation = object.meta().generation;
    conditions::set(
        &mut fleet.conditions,
        conditions::Desired {
            type_: conditions::READY,
            status: conditions::Status::False,
            reason: "Deleting",
            message: message.clone(),
        },
        generation,
        now.clone(),
    );
    conditions::set(
        &mut fleet.conditions,
        conditions::Desired {
            type_: conditions::RECONCILING,
            status: conditions::Status::True,
            reason: "Deleting",
            message,
        },
        generation,
        now,
    );
    let nodes = OwnerNodes::default();
    let next = ctx.fleet.read_with(|outcomes| {
        let seen = Seen {
            owner,
            inventory,
            reached,
            outcomes,
            now: status::now(),
            nodes: &nodes,
        };
        object.status_with(fleet, &seen)
    });
    if next != object_status_value(object) {
        status::apply(api, object, &next)
            .await
            .map_err(|source| OwnerError::Status {
                owner: owner.clone(),
                source,
            })?;
    }
    Ok(Action::requeue(ctx.options.retry_transient))
}
