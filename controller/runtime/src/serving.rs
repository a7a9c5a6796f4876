//! What the stateless servers (`patchfleet dashboard`, `patchfleet enroll`) share: a watch
//! kept in a reflector store, and the signal that stops them.

use futures::StreamExt;
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

/// Keeps a store current; watch errors are retried with the watcher's backoff.
pub async fn reflect<K>(client: Client, writer: reflector::store::Writer<K>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let stream = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client), watcher::Config::default())
            .default_backoff()
            // What no page or request reads (managed fields, kubectl's last-applied
            // copy), as the controller's own stores drop it.
            .modify(crate::controller::slim),
    )
    .applied_objects();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        if let Err(error) = event {
            warn!(%error, kind = %K::kind(&()), "watch failed; retrying");
        }
    }
}

/// SIGTERM (Kubernetes stopping the pod) or SIGINT: `axum`'s graceful shutdown then
/// finishes the requests in flight, and `what` stops.
pub async fn stopped(what: &str) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    info!("stopping {what}");
}
