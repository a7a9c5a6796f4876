//! `patchfleet run`: the kube-rs glue. Reflectors keep every resource in memory; one
//! controller reconciles SystemAccounts (each pass covers the account's regions, the unit
//! of work being one account-region), three more keep PatchPolicy, PatchGroup and
//! MaintenanceWindow finalizers and roll their status up from what the account passes saw.

mod account;
mod compliance;
mod context;
mod enrollment;
mod events;
mod finalizer;
mod inventory;
mod owner;
mod pending;
mod rollout;
mod runs;
mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::channel::mpsc;
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Predicate, PredicateConfig, WatchStreamExt, predicates, watcher};
use kube::{Api, Client};
use patchfleet_api::v1alpha1::{
    Enrollment, MaintenanceWindow, PatchGroup, PatchPolicy, PatchRollout, SystemAccount,
};
use patchfleet_planner::Settings;
use patchfleet_ssm::{EdgeSettings, SsmEdge};
use pending::Pending;
use tracing::{info, warn};

use crate::http::{self, Probes};
use crate::leader::{Elector, LeaseSettings};
use crate::metrics::Metrics;

pub use account::fingerprints;
pub use compliance::ComplianceOptions;
pub use context::{Context, Options, Reporting, Stores, Wakers};

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
    /// Where /metrics, /healthz and /readyz are served.
    pub http_address: SocketAddr,
    /// This replica's name (Lease holder, Event reporter instance).
    pub identity: String,
    /// None: no leader election (a single replica).
    pub lease: Option<LeaseSettings>,
}

pub async fn run(config: RunConfig) -> anyhow::Result<()> {
    // One listener for the whole process, installed first: a signal that arrives while
    // standing by or while the controllers start is never lost.
    let shutdown = shutdown_signal();
    let metrics = Arc::new(Metrics::default());
    let probes = Arc::new(Probes::default());
    http::serve(config.http_address, metrics.clone(), probes.clone()).await?;

    let client = Client::try_default()
        .await
        .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?;
    check_crds(&client).await?;

    let Some(lease) = config.lease.clone() else {
        metrics.set_leader(true);
        return reconcile_all(client, config, metrics, probes, shutdown).await;
    };
    probes.set_ready(true);
    let mut elector = Elector::new(client.clone(), lease);
    let renewed = tokio::select! {
        renewed = elector.acquire() => renewed,
        () = shutdown.clone() => {
            info!("stopped while standing by");
            return Ok(());
        }
    };
    metrics.set_leader(true);
    probes.set_ready(false);
    // After a shutdown signal, reconciles in flight get this long to finish; then the Lease
    // is released anyway, well within the pod's termination grace period.
    let drain = shutdown
        .clone()
        .then(|()| tokio::time::sleep(SHUTDOWN_DRAIN));
    let result = tokio::select! {
        result = reconcile_all(client, config, metrics.clone(), probes, shutdown) => result,
        () = drain => {
            warn!(limit = ?SHUTDOWN_DRAIN, "reconciles still running at shutdown: stopping them");
            Ok(())
        }
        why = elector.hold(renewed) => {
            metrics.set_leader(false);
            // Exiting is the only safe way out: reconciles in flight stop with the process,
            // and the restarted replica stands by until the Lease is free again.
            anyhow::bail!("lost leadership: {why}; exiting so that no two replicas reconcile");
        }
    };
    elector.release().await;
    result
}

/// How long reconciles in flight may finish after SIGTERM (the chart's grace period is
/// 30 s: this leaves time to release the Lease).
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(20);

/// The process-wide shutdown signal, awaitable from many places.
type Shutdown = futures::future::Shared<futures::future::BoxFuture<'static, ()>>;

/// SIGTERM (Kubernetes stopping the pod) or Ctrl-C. The SIGTERM listener is registered
/// here, before the future is first awaited, so a SIGTERM that comes at any later point is
/// seen.
fn shutdown_signal() -> Shutdown {
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        let terminate = async {
            match terminate {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    warn!(%error, "cannot listen for SIGTERM");
                    futures::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            () = terminate => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    .boxed()
    .shared()
}

/// The controllers, until a shutdown signal.
async fn reconcile_all(
    client: Client,
    config: RunConfig,
    metrics: Arc<Metrics>,
    probes: Arc<Probes>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let edge = SsmEdge::from_env(config.edge)
        .await
        .with_observer(metrics.clone());
    let watch = watcher::Config::default().any_semantic();
    let controller_config = ControllerConfig::default().concurrency(config.concurrency);

    // Every watch event that passes its kind's filter marks its object pending for the
    // queue-depth gauge and makes the planner's next snapshot a new one.
    let pending = Arc::new(Pending::default());
    let changes = Arc::new(AtomicU64::new(0));
    let watch_of = Watch {
        client: &client,
        config: &watch,
        pending: &pending,
        changes: &changes,
    };
    // A SystemAccount's status is written by its own pass: only its spec, its labels
    // (which PatchGroups select) and its deletion wake it.
    let accounts = watch_of
        .controller::<SystemAccount, _>(predicates::generation.combine(predicates::labels))
        .with_config(controller_config.clone());
    // Owners: their spec and their deletion (which bumps the generation); status writes
    // wake nothing. Account passes wake them for their rollups (Context::wake_owner).
    let policies = watch_of
        .controller::<PatchPolicy, _>(predicates::generation)
        .with_config(controller_config.clone());
    let groups = watch_of
        .controller::<PatchGroup, _>(predicates::generation)
        .with_config(controller_config.clone());
    let windows = watch_of
        .controller::<MaintenanceWindow, _>(predicates::generation)
        .with_config(controller_config.clone());
    // Rollouts: their spec, and the stage releases their own status records (which the
    // account passes plan from); evidence-only status writes wake nothing. Compliance
    // passes wake them for new evidence.
    let rollouts = watch_of
        .controller::<PatchRollout, _>(rollout::plan_inputs_predicate)
        .with_config(controller_config.clone());
    // Enrollments: their spec (the patch group) and their deletion; they poll SSM on
    // their own schedule while they wait for a registration.
    let enrollments = watch_of
        .controller::<Enrollment, _>(predicates::generation)
        .with_config(controller_config);

    // Namespace labels decide which accounts admit a namespace: a change wakes every account.
    let (namespaces, namespaces_writer) = reflector::store::<Namespace>();
    let (account_tx, account_rx) = mpsc::unbounded::<ObjectRef<SystemAccount>>();
    let (policy_tx, policy_rx) = mpsc::unbounded::<ObjectRef<PatchPolicy>>();
    let (group_tx, group_rx) = mpsc::unbounded::<ObjectRef<PatchGroup>>();
    let (window_tx, window_rx) = mpsc::unbounded::<ObjectRef<MaintenanceWindow>>();
    let (rollout_tx, rollout_rx) = mpsc::unbounded::<ObjectRef<PatchRollout>>();

    let stores = Stores {
        accounts: accounts.store(),
        policies: policies.store(),
        groups: groups.store(),
        windows: windows.store(),
        rollouts: rollouts.store(),
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
            rollouts: rollout_tx,
            pending,
            inventory_version: changes.clone(),
        },
        Reporting {
            identity: config.identity,
            metrics,
        },
    ));

    let namespace_watch = {
        let ctx = ctx.clone();
        let changes = changes.clone();
        reflector::reflector(
            namespaces_writer,
            watcher(Api::<Namespace>::all(client), watcher::Config::default()).modify(slim),
        )
        .default_backoff()
        .applied_objects()
        .for_each(move |event| {
            let ctx = ctx.clone();
            let changes = changes.clone();
            async move {
                match event {
                    Ok(_) => {
                        changes.fetch_add(1, Ordering::SeqCst);
                        ctx.wake_all_accounts();
                    }
                    Err(error) => warn!(%error, "namespace watch"),
                }
            }
        })
    };
    let readiness = {
        let ctx = ctx.clone();
        async move {
            if ctx.stores.wait_ready().await.is_ok() {
                probes.set_ready(true);
            }
            futures::future::pending::<()>().await;
        }
    };

    info!("patchfleet controller starting");
    let accounts = accounts
        .reconcile_on(account_rx)
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |account, ctx| measured(account, ctx, account::reconcile),
            account::error_policy,
            ctx.clone(),
        )
        .for_each(|_| async {});
    let policies = policies
        .reconcile_on(policy_rx)
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |object, ctx| measured(object, ctx, owner::reconcile::<PatchPolicy>),
            owner::error_policy::<PatchPolicy>,
            ctx.clone(),
        )
        .for_each(|_| async {});
    let groups = groups
        .reconcile_on(group_rx)
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |object, ctx| measured(object, ctx, owner::reconcile::<PatchGroup>),
            owner::error_policy::<PatchGroup>,
            ctx.clone(),
        )
        .for_each(|_| async {});
    let windows = windows
        .reconcile_on(window_rx)
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |object, ctx| measured(object, ctx, owner::reconcile::<MaintenanceWindow>),
            owner::error_policy::<MaintenanceWindow>,
            ctx.clone(),
        )
        .for_each(|_| async {});
    let rollouts = rollouts
        .reconcile_on(rollout_rx)
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |object, ctx| measured(object, ctx, rollout::reconcile),
            rollout::error_policy,
            ctx.clone(),
        )
        .for_each(|_| async {});
    let enrollments = enrollments
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |object, ctx| measured(object, ctx, enrollment::reconcile),
            enrollment::error_policy,
            ctx.clone(),
        )
        .for_each(|_| async {});
    tokio::select! {
        _ = futures::future::join(
            futures::future::join5(accounts, policies, groups, windows, rollouts),
            enrollments,
        ) => {}
        _ = namespace_watch => {}
        () = readiness => {}
        () = refresh_gauges(&ctx) => {}
        () = ctx.flush_owner_wakes() => {}
        () = compliance::run(ctx.clone()) => {}
    }
    info!("patchfleet controller stopped");
    Ok(())
}

/// What every watched kind shares.
struct Watch<'a> {
    client: &'a Client,
    config: &'a watcher::Config,
    pending: &'a Arc<Pending>,
    changes: &'a Arc<AtomicU64>,
}

impl Watch<'_> {
    /// A Controller over its own reflector (which sees every event, so the store is always
    /// current), triggered only by the events `filter` finds changed.
    fn controller<K, P>(&self, filter: P) -> Controller<K>
    where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + Sync
            + 'static,
        P: Predicate<K> + Send + 'static,
    {
        let (reader, writer) = reflector::store::<K>();
        let pending = self.pending.clone();
        let changes = self.changes.clone();
        let kind = kind_name::<K>();
        let events = reflector::reflector(
            writer,
            watcher(Api::<K>::all(self.client.clone()), self.config.clone()).modify(slim),
        )
        .applied_objects()
        .predicate_filter(filter, PredicateConfig::default())
        .inspect_ok(move |object| {
            changes.fetch_add(1, Ordering::SeqCst);
            pending.requested(
                kind,
                pending::key(object.meta().namespace.as_deref(), &object.name_any()),
            );
        });
        Controller::for_stream(events, reader)
    }
}

/// Drops what the controller never reads before an object is kept in memory: managed
/// fields (a field tree per manager, often larger than the spec) and kubectl's
/// last-applied copy of the whole object. At 1,000 SystemAccounts with their status
/// writes, these were most of the reflector stores.
pub(crate) fn slim<K: kube::Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Runs a reconcile, clearing its object from the pending set and counting it by outcome
/// and duration.
async fn measured<K, E, Fut>(
    object: Arc<K>,
    ctx: Arc<Context>,
    reconcile: impl FnOnce(Arc<K>, Arc<Context>) -> Fut,
) -> Result<Action, E>
where
    K: kube::Resource<DynamicType = ()>,
    Fut: Future<Output = Result<Action, E>>,
{
    let kind = kind_name::<K>();
    ctx.pending().started(
        kind,
        &pending::key(object.meta().namespace.as_deref(), &object.name_any()),
    );
    let started = Instant::now();
    let result = reconcile(object, ctx.clone()).await;
    ctx.metrics
        .reconciled(kind, result.is_ok(), started.elapsed());
    result
}

/// The kind's name for metric labels.
fn kind_name<K: kube::Resource<DynamicType = ()>>() -> &'static str {
    const KINDS: [&str; 6] = [
        "SystemAccount",
        "PatchPolicy",
        "PatchGroup",
        "MaintenanceWindow",
        "PatchRollout",
        "Enrollment",
    ];
    let kind = K::kind(&());
    KINDS.into_iter().find(|k| *k == kind).unwrap_or("Other")
}

/// Keeps the account and queue gauges current.
async fn refresh_gauges(ctx: &Context) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        let accounts = ctx.stores.accounts.state();
        let suspended: std::collections::BTreeSet<String> = accounts
            .iter()
            .filter(|a| a.spec.suspend)
            .map(|a| a.name_any())
            .collect();
        let mut health = ctx.fleet.health(&suspended);
        // Accounts not yet passed over are pending.
        let known = ctx.fleet.accounts();
        health.accounts.pending += accounts
            .iter()
            .filter(|a| !a.spec.suspend && !known.contains(&a.name_any()))
            .count();
        ctx.metrics.set_health(&health, suspended.len());
        ctx.metrics.set_cached_accounts(ctx.edge.cached_accounts());
        let stores = &ctx.stores;
        queue_depth(ctx, &stores.accounts);
        queue_depth(ctx, &stores.policies);
        queue_depth(ctx, &stores.groups);
        queue_depth(ctx, &stores.windows);
        queue_depth(ctx, &stores.rollouts);
    }
}

/// Sets the queue-depth gauge of one kind, forgetting requests for objects gone.
fn queue_depth<K>(ctx: &Context, store: &reflector::Store<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    let kind = kind_name::<K>();
    let depth = ctx.pending().depth(kind, |key| {
        let (namespace, name) = match key.split_once('/') {
            Some((namespace, name)) => (Some(namespace), name),
            None => (None, key),
        };
        has(store, namespace, name)
    });
    ctx.metrics.set_queue_depth(kind, depth);
}

fn has<K>(store: &reflector::Store<K>, namespace: Option<&str>, name: &str) -> bool
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    let reference = match namespace {
        Some(namespace) => ObjectRef::new(name).within(namespace),
        None => ObjectRef::new(name),
    };
    store.get(&reference).is_some()
}

/// Fails early, with the fix, when the CRDs are not installed.
async fn check_crds(client: &Client) -> anyhow::Result<()> {
    let params = kube::api::ListParams::default().limit(1);
    let hint = "is the CRD installed? kubectl apply --server-side -f crds/";
    Api::<SystemAccount>::all(client.clone())
        .list_metadata(&params)
        .await
        .with_context(|| format!("listing SystemAccounts: {hint}"))?;
    Api::<PatchPolicy>::all(client.clone())
        .list_metadata(&params)
        .await
        .with_context(|| format!("listing PatchPolicies: {hint}"))?;
    Api::<PatchGroup>::all(client.clone())
        .list_metadata(&params)
        .await
        .with_context(|| format!("listing PatchGroups: {hint}"))?;
    Api::<MaintenanceWindow>::all(client.clone())
        .list_metadata(&params)
        .await
        .with_context(|| format!("listing MaintenanceWindows: {hint}"))?;
    Api::<PatchRollout>::all(client.clone())
        .list_metadata(&params)
        .await
        .with_context(|| format!("listing PatchRollouts: {hint}"))?;
    Ok(())
}
