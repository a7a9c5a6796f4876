//! `patchfleet dashboard`: a read-only web server over what the controller wrote into the
//! statuses, with per-instance detail read from SSM on demand (docs/dashboard.md).
//! Stateless (any number of replicas): it watches SystemAccounts, PatchGroups and
//! MaintenanceWindows into reflector stores, asks the API server who each request is and
//! what it may see (`auth`), builds a view (`view`, pure) and renders it as HTML (`html`) or
//! JSON (`/api/...`).

mod auth;
mod cache;
mod fleet;
mod html;
mod routes;
mod view;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use kube::Client;
use kube::runtime::reflector::{self, Store};
use patchfleet_api::v1alpha1::{MaintenanceWindow, PatchGroup, PatchRollout, SystemAccount};
use patchfleet_ssm::SsmEdge;
use tokio::net::TcpListener;
use tracing::info;

use crate::args::DashboardArgs;

pub use routes::router;

/// A path segment of the dashboard's URLs, percent-encoded.
pub fn encode_segment(text: &str) -> String {
    html::enc(text)
}

/// What every request reads.
pub struct Dashboard {
    pub client: Client,
    pub accounts: Store<SystemAccount>,
    pub groups: Store<PatchGroup>,
    pub windows: Store<MaintenanceWindow>,
    pub rollouts: Store<PatchRollout>,
    pub auth: auth::Authorizer,
    pub fleet: fleet::Fleet,
    /// Figures older than this are stale (two compliance intervals).
    pub stale_after: Duration,
    /// How often an open page checks for a change.
    pub refresh: Duration,
    /// The three stores hold their first lists.
    pub ready: AtomicBool,
}

pub async fn run(args: DashboardArgs) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to Kubernetes (KUBECONFIG or in-cluster config)")?;
    let edge = SsmEdge::from_env(args.edge_settings()).await;
    let (accounts, accounts_writer) = reflector::store::<SystemAccount>();
    let (groups, groups_writer) = reflector::store::<PatchGroup>();
    let (windows, windows_writer) = reflector::store::<MaintenanceWindow>();
    let (rollouts, rollouts_writer) = reflector::store::<PatchRollout>();
    let dashboard = Arc::new(Dashboard {
        auth: auth::Authorizer::new(client.clone(), args.auth_cache_ttl),
        fleet: fleet::Fleet::new(edge, args.cache_ttl),
        client: client.clone(),
        accounts,
        groups,
        windows,
        rollouts,
        stale_after: args.compliance_interval * 2,
        refresh: args.refresh_interval,
        ready: AtomicBool::new(false),
    });
    tokio::spawn(crate::serving::reflect(client.clone(), accounts_writer));
    tokio::spawn(crate::serving::reflect(client.clone(), groups_writer));
    tokio::spawn(crate::serving::reflect(client.clone(), windows_writer));
    tokio::spawn(crate::serving::reflect(client, rollouts_writer));
    {
        let dashboard = Arc::clone(&dashboard);
        tokio::spawn(async move {
            let synced = futures::future::join4(
                dashboard.accounts.wait_until_ready(),
                dashboard.groups.wait_until_ready(),
                dashboard.windows.wait_until_ready(),
                dashboard.rollouts.wait_until_ready(),
            )
            .await;
            if let (Ok(()), Ok(()), Ok(()), Ok(())) = synced {
                dashboard.ready.store(true, Ordering::Relaxed);
                info!("the dashboard's caches hold the first lists");
            }
        });
    }
    serve(args.http_address, dashboard).await
}

async fn serve(address: SocketAddr, dashboard: Arc<Dashboard>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the dashboard's address {address}"))?;
    info!(address = %listener.local_addr()?, "serving the dashboard");
    axum::serve(listener, router(dashboard))
        .with_graceful_shutdown(crate::serving::stopped("the dashboard"))
        .await
        .context("serving the dashboard")
}
