//! `patchfleet run`: the kube-rs glue. Reflectors keep every resource in memory; one
//! controller reconciles SystemAccounts (each pass covers the account's regions, the unit
//! of work being one account-region), three more keep PatchPolicy, PatchGroup and
//! MaintenanceWindow finalizers and roll their status up from what the account passes saw.

mod account;
mod context;
mod events;
mod inventory;
mod owner;
mod status;

use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use patchfleet_api::v1alpha1::{MaintenanceWindow, PatchGroup, PatchPolicy, SystemAccount};
use patchfleet_planner::Settings;
use patchfleet_ssm::{EdgeSettings, SsmEdge};
use tracing::{info, warn};

pub use account::fingerprints;
pub use context::{Context, Options, Stores, Wakers};

/// The finalizer on every resource whose deletion must clean SSM up first.
pub const FINALIZER: &str = "patchfleet.io/cleanup";
/// The field manager of every status patch.
pub const MANAGER: &str = "patchfleet";

/// What `patchfleet run` needs from its flags.
pub struct RunConfig {
    pub options: Options,
    pub settings: Settings,
    pub edge: EdgeSettings,
    pub concurrency: u16,
}

pub async fn run(config: RunConfig) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?;
    let edge = SsmEdge::from_env(config.edge).await;

    let accounts_api: Api<SystemAccount> = Api::all(client.clone());
    let policies_api: Api<PatchPolicy> = Api::all(client.clone());
    let groups_api: Api<PatchGroup> = Api::all(client.clone());
    let windows_api: Api<MaintenanceWindow> = Api::all(client.clone());
    let namespaces_api: Api<Namespace> = Api::all(client.clone());
    check_crds(&accounts_api, &policies_api, &groups_api, &windows_api).await?;

    let watch = watcher::Config::default().any_semantic();
    let controller_config = ControllerConfig::default().concurrency(config.concurrency);
    let accounts =
        Controller::new(accounts_api, watch.clone()).with_config(controller_config.clone());
    let policies =
        Controller::new(policies_api, watch.clone()).with_config(controller_config.clone());
    let groups = Controller::new(groups_api, watch.clone()).with_config(controller_config.clone());
    let windows = Controller::new(windows_api, watch.clone()).with_config(controller_config);

    // Namespace labels decide which accounts admit a namespace: a change wakes every account.
    let (namespaces, namespaces_writer) = reflector::store::<Namespace>();
    let (account_tx, account_rx) = mpsc::unbounded::<ObjectRef<SystemAccount>>();
    let (policy_tx, policy_rx) = mpsc::unbounded::<ObjectRef<PatchPolicy>>();
    let (group_tx, group_rx) = mpsc::unbounded::<ObjectRef<PatchGroup>>();
    let (window_tx, window_rx) = mpsc::unbounded::<ObjectRef<MaintenanceWindow>>();

    let stores = Stores {
        accounts: accounts.store(),
        policies: policies.store(),
        groups: groups.store(),
        windows: windows.store(),
        namespaces: namespaces.clone(),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        stores,
        edge,
        config.settings,
        config.options,
        Wakers {
            accounts: account_tx,
            policies: policy_tx,
            groups: group_tx,
            windows: window_tx,
        },
    ));

    let namespace_watch = {
        let ctx = ctx.clone();
        reflector::reflector(
            namespaces_writer,
            watcher(namespaces_api, watcher::Config::default()),
        )
        .default_backoff()
        .applied_objects()
        .for_each(move |event| {
            let ctx = ctx.clone();
            async move {
                match event {
                    Ok(_) => ctx.wake_all_accounts(),
                    Err(error) => warn!(%error, "namespace watch"),
                }
            }
        })
    };

    info!("patchfleet controller starting");
    let accounts = accounts
        .reconcile_on(account_rx)
        .shutdown_on_signal()
        .run(account::reconcile, account::error_policy, ctx.clone())
        .for_each(|_| async {});
    let policies = policies
        .reconcile_on(policy_rx)
        .shutdown_on_signal()
        .run(
            owner::reconcile::<PatchPolicy>,
            owner::error_policy::<PatchPolicy>,
            ctx.clone(),
        )
        .for_each(|_| async {});
    let groups = groups
        .reconcile_on(group_rx)
        .shutdown_on_signal()
        .run(
            owner::reconcile::<PatchGroup>,
            owner::error_policy::<PatchGroup>,
            ctx.clone(),
        )
        .for_each(|_| async {});
    let windows = windows
        .reconcile_on(window_rx)
        .shutdown_on_signal()
        .run(
            owner::reconcile::<MaintenanceWindow>,
            owner::error_policy::<MaintenanceWindow>,
            ctx.clone(),
        )
        .for_each(|_| async {});
    tokio::select! {
        _ = futures::future::join4(accounts, policies, groups, windows) => {}
        _ = namespace_watch => {}
    }
    info!("patchfleet controller stopped");
    Ok(())
}

/// Fails early, with the fix, when the CRDs are not installed.
async fn check_crds(
    accounts: &Api<SystemAccount>,
    policies: &Api<PatchPolicy>,
    groups: &Api<PatchGroup>,
    windows: &Api<MaintenanceWindow>,
) -> anyhow::Result<()> {
    let params = kube::api::ListParams::default().limit(1);
    let hint = "is the CRD installed? kubectl apply --server-side -f crds/";
    accounts
        .list_metadata(&params)
        .await
        .with_context(|| format!("listing SystemAccounts: {hint}"))?;
    policies
        .list_metadata(&params)
        .await
        .with_context(|| format!("listing PatchPolicies: {hint}"))?;
    groups
        .list_metadata(&params)
        .await
        .with_context(|| format!("listing PatchGroups: {hint}"))?;
    windows
        .list_metadata(&params)
        .await
        .with_context(|| format!("listing MaintenanceWindows: {hint}"))?;
    Ok(())
}
