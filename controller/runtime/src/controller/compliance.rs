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
use patchfleet_planner::compliance::{self as figures, NodeQuotas};
use patchfleet_planner::model::{AccountRegion, Owner};
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
    let accounts: Vec<Arc<SystemAccount>> = ctx
        .stores
        .accounts
        .state()
        .into_iter()
        .filter(|a| !a.spec.suspend && a.meta().deletion_timestamp.is_none())
        .collect();
    let active: BTreeSet<(String, String)> = accounts
        .iter()
        .flat_map(|a| {
            a.spec
                .regions
                .iter()
                .map(move |r| (a.name_any(), r.clone()))
        })
        .collect();
    ctx.nodes
        .retain(|r| active.contains(&(r.account.clone(), r.region.clone())));
    futures::stream::iter(accounts)
        .map(|account| {
            let ctx = ctx.clone();
            async move {
                let span = info_span!("account", account = %account.name_any());
                pass_account(&ctx, &account, options).instrument(span).await
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .fold(0u64, |total, calls| async move { total + calls })
        .await
}

/// Reads each region of one account, records the figures, writes the account's
/// `status.nodes` and wakes the owners whose figures changed; the calls it made.
async fn pass_account(ctx: &Context, account: &SystemAccount, options: ComplianceOptions) -> u64 {
    let name = account.name_any();
    let access = AccountAccess::from_spec(&name, &account.spec);
    let edge_account = ctx.edge.account(&access).await;
    let identity = edge_account
        .caller_identity()
        .await
        .map_err(|e| e.to_string());
    let inventory = ctx.inventory();
    let regions: Vec<AccountRegion> = account
        .spec
        .regions
        .iter()
        .map(|region| AccountRegion {
            account: name.clone(),
            account_id: account.spec.account_id.clone(),
            region: region.clone(),
        })
        .collect();
    let passes = regions.iter().map(|region| {
        let client = edge_account.client(&region.region);
        let identity = &identity;
        let inventory = &inventory;
        async move {
            let previous = ctx.nodes.get(region).unwrap_or_default();
            let (record, calls) = match identity {
                Err(error) => (failed(&previous, error.clone()), 0),
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
    let intent = figures::intent(inventory, &ctx.settings, region);
    let request = ComplianceRequest {
        groups: intent.groups.keys().cloned().collect(),
        windows: intent.windows.keys().cloned().collect(),
        known_runs: previous.known_runs.clone(),
    };
    match read_compliance(client, &request).await {
        Ok(read) => {
            let figures = figures::tally(&read.reading, &intent, options.quotas);
            debug!(region = %region.region, calls = read.calls, nodes = read.reading.nodes.len(), "compliance read");
            let known_runs = read
                .reading
                .windows
                .into_iter()
                .filter_map(|(name, run)| Some((name, run?)))
                .collect();
            let record = RegionRecord {
                figures,
                observed_at: Some(status::now()),
                error: None,
                known_runs,
            };
            (record, u64::from(read.calls))
        }
        Err(error) => {
            warn!(region = %region.region, %error, "compliance read failed");
            ctx.metrics.compliance_failed();
            (failed(previous, error.to_string()), 0)
        }
    }
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
    let patch = serde_json::json!({
        "apiVersion": SystemAccount::api_version(&()),
        "kind": SystemAccount::kind(&()),
        "status": { "nodes": nodes },
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
