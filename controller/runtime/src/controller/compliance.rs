//! The compliance pass: a loop of its own, apart from the write path, that reads every
//! account-region's nodes, patch states and window runs back from SSM on its own
//! interval, keeps the figures in memory (`crate::nodes`), writes them into each
//! SystemAccount's `status.nodes` (under its own field manager, so that it never races
//! the account reconciler's status) and wakes the PatchGroups and MaintenanceWindows
//! whose figures changed. It shares each account's rate limit with the write path, and
//! runs a bounded number of accounts at a time, so it never holds the writes up for long.
//! Its cost per pass is `patchfleet_planner::compliance::calls` (docs/compliance.md).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::join_all;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use patchfleet_api::v1alpha1::SystemAccount;
use patchfleet_planner::compliance::{self as counting, NodeQuotas};
use patchfleet_planner::model::{AccountRegion, Owner};
use patchfleet_planner::selection::account_region;
use patchfleet_ssm::compliance::{ComplianceRequest, read_compliance};
use patchfleet_ssm::{AccountAccess, SsmClient};
use tracing::{Instrument, debug, info, info_span, warn};

use super::{Context, status};
use crate::nodes::RegionRecord;

/// The field manager of `status.nodes`: not the account reconciler's, so neither
/// overwrites the other's part of the status.
pub const MANAGER: &str = "patchfleet-compliance";

/// How the compliance pass runs.
#[derive(Clone, Copy, Debug)]
pub struct ComplianceOptions {
    /// A pass over every account-region starts this often; zero turns the pass off.
    pub interval: Duration,
    /// Accounts read at the same time.
    pub concurrency: usize,
    pub quotas: NodeQuotas,
}

/// Runs passes until the process stops.
pub async fn run(ctx: Arc<Context>) {
    let options = ctx.options.compliance;
    if options.interval.is_zero() {
        info!("compliance pass off (--compliance-interval 0)");
        return futures::future::pending().await;
    }
    if let Err(error) = ctx.stores.wait_ready().await {
        warn!(%error, "compliance pass not started: the resource caches never filled");
        return futures::future::pending().await;
    }
    loop {
        let started = Instant::now();
        let span = info_span!("compliance");
        let calls = sweep(&ctx, options).instrument(span).await;
        let took = started.elapsed();
        let (total, overwritten) = ctx.nodes.totals();
        ctx.metrics
            .compliance_pass(took, calls, &total, overwritten);
        info!(calls, seconds = took.as_secs_f64(), "compliance pass done");
        tokio::time::sleep(options.interval.saturating_sub(took)).await;
    }
}

/// One pass over every account-region; the calls it made.
async fn sweep(ctx: &Arc<Context>, options: ComplianceOptions) -> u64 {
    let (accounts, idle): (Vec<Arc<SystemAccount>>, Vec<Arc<SystemAccount>>) = ctx
        .stores
        .accounts
        .state()
        .into_iter()
        .partition(|a| !a.spec.suspend && a.meta().deletion_timestamp.is_none());
    // What is no longer read (an account deleted, suspended, a region or accountId
    // changed) is forgotten, and the owners it counted for roll up without it.
    let active: BTreeSet<AccountRegion> = accounts
        .iter()
        .flat_map(|a| a.spec.regions.iter().map(|r| account_region(a, r)))
        .collect();
    for owner in ctx.nodes.retain(|r| active.contains(r)) {
        ctx.wake_owner(&owner);
    }
    // A suspended account's figures would only grow stale: its status says nothing.
    for account in idle
        .iter()
        .filter(|a| a.meta().deletion_timestamp.is_none())
    {
        if let Err(error) = clear_account_nodes(ctx, account).await {
            warn!(account = %account.name_any(), %error, "clearing status.nodes");
        }
    }
    let calls = futures::stream::iter(accounts)
        .map(|account| {
            let ctx = ctx.clone();
            async move {
                let span = info_span!("account", account = %account.name_any());
                pass_account(&ctx, &account, options).instrument(span).await
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .fold(0u64, |total, calls| async move { total + calls })
        .await;
    if !ctx.nodes.swept() {
        // From now on an owner no reading counts is one with no figures, not one whose
        // figures are not read yet: wake them all to say so.
        ctx.nodes.mark_swept();
        ctx.wake_all_owners();
    }
    // Rollouts judge their stages on what this pass read.
    ctx.wake_all_rollouts();
    calls
}

/// Reads each region of one account, records the figures, writes the account's
/// `status.nodes` and wakes the owners whose figures changed; the calls it made.
async fn pass_account(ctx: &Context, account: &SystemAccount, options: ComplianceOptions) -> u64 {
    let name = account.name_any();
    let access = AccountAccess::from_spec(&name, &account.spec);
    let edge_account = ctx.edge.account(&access).await;
    let identity = edge_account.caller_identity().await.map_err(|error| {
        warn!(%error, "compliance pass: identity not verified");
        error.to_string()
    });
    let inventory = ctx.inventory();
    let regions: Vec<AccountRegion> = account
        .spec
        .regions
        .iter()
        .map(|r| account_region(account, r))
        .collect();
    let passes = regions.iter().map(|region| {
        let client = edge_account.client(&region.region);
        let identity = &identity;
        let inventory = &inventory;
        async move {
            let previous = ctx.nodes.get(region).unwrap_or_default();
            let (record, calls) = match identity {
                Err(error) => {
                    ctx.metrics.compliance_failed();
                    (failed(&previous, error.clone()), 0)
                }
                Ok(_) => pass_region(ctx, &client, region, inventory, &previous, options).await,
            };
            (previous, record, calls)
        }
    });
    let mut calls = 0;
    let mut changed: BTreeSet<Owner> = BTreeSet::new();
    for (region, (previous, record, region_calls)) in regions.iter().zip(join_all(passes).await) {
        calls += region_calls;
        changed.extend(changed_owners(&previous, &record));
        ctx.nodes.record(region.clone(), record);
    }
    for owner in &changed {
        ctx.wake_owner(owner);
    }
    if let Err(error) = write_account_nodes(ctx, account).await {
        warn!(%error, "writing status.nodes");
    }
    calls
}

async fn pass_region(
    ctx: &Context,
    client: &SsmClient,
    region: &AccountRegion,
    inventory: &patchfleet_planner::Inventory,
    previous: &RegionRecord,
    options: ComplianceOptions,
) -> (RegionRecord, u64) {
    let intent = counting::intent(inventory, &ctx.settings, region);
    let request = ComplianceRequest {
        groups: intent.groups.keys().cloned().collect(),
        windows: intent.windows.keys().cloned().collect(),
        known_runs: previous.known_runs.clone(),
    };
    let read = read_compliance(client, &request).await;
    let calls = u64::from(read.calls);
    match read.reading {
        Ok(reading) => {
            let figures = counting::tally(&reading, &intent, options.quotas);
            debug!(region = %region.region, calls, nodes = reading.nodes.len(), "compliance read");
            let record = RegionRecord {
                figures,
                observed_at: Some(whole_second(status::now())),
                error: None,
                known_runs: reading.last_runs(),
            };
            (record, calls)
        }
        Err(error) => {
            warn!(region = %region.region, %error, "compliance read failed");
            ctx.metrics.compliance_failed();
            (failed(previous, error.to_string()), calls)
        }
    }
}

/// A time as the API server stores it (whole seconds), so that the status compares equal
/// to what was written.
fn whole_second(
    time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    let second = k8s_openapi::jiff::Timestamp::from_second(time.0.as_second()).unwrap_or(time.0);
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(second)
}

/// The previous figures, with why they could not be read again.
fn failed(previous: &RegionRecord, error: String) -> RegionRecord {
    RegionRecord {
        error: Some(error),
        ..previous.clone()
    }
}

/// Owners whose figures differ between two readings of an account-region.
fn changed_owners(before: &RegionRecord, after: &RegionRecord) -> BTreeSet<Owner> {
    let (b, a) = (&before.figures, &after.figures);
    let mut owners = BTreeSet::new();
    for owner in b.groups.keys().chain(a.groups.keys()) {
        if b.groups.get(owner) != a.groups.get(owner)
            || b.overwritten.get(owner) != a.overwritten.get(owner)
        {
            owners.insert(owner.clone());
        }
    }
    for owner in b.windows.keys().chain(a.windows.keys()) {
        if b.windows.get(owner) != a.windows.get(owner) {
            owners.insert(owner.clone());
        }
    }
    owners
}

/// Removes `status.nodes` (an apply without the fields this manager owns drops them).
async fn clear_account_nodes(ctx: &Context, account: &SystemAccount) -> Result<(), kube::Error> {
    if account.status.as_ref().is_none_or(|s| s.nodes.is_none()) {
        return Ok(());
    }
    apply_nodes(ctx, account, serde_json::json!({})).await
}

async fn apply_nodes(
    ctx: &Context,
    account: &SystemAccount,
    status: serde_json::Value,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({
        "apiVersion": SystemAccount::api_version(&()),
        "kind": SystemAccount::kind(&()),
        "status": status,
    });
    let api: Api<SystemAccount> = Api::all(ctx.client.clone());
    api.patch_status(
        &account.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Applies the account's `status.nodes`, when it changed.
async fn write_account_nodes(ctx: &Context, account: &SystemAccount) -> Result<(), kube::Error> {
    let Some(nodes) = ctx
        .nodes
        .account_nodes(&account.name_any(), &account.spec.regions)
    else {
        return Ok(());
    };
    let current = ctx
        .stores
        .accounts
        .get(&kube::runtime::reflector::ObjectRef::from_obj(account))
        .and_then(|a| a.status.as_ref().and_then(|s| s.nodes.clone()));
    // One write per account and pass at most (observedAt moves with each successful
    // read: readers judge freshness by it).
    if current.as_ref() == Some(&nodes) {
        return Ok(());
    }
    apply_nodes(ctx, account, serde_json::json!({ "nodes": nodes })).await
}
