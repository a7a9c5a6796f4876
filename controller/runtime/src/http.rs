//! The controller's HTTP endpoints: /metrics (Prometheus), /healthz (liveness) and
//! /readyz (readiness).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::metrics::Metrics;

/// What the probes answer.
#[derive(Debug, Default)]
pub struct Probes {
    ready: AtomicBool,
}

impl Probes {
    /// Ready: a standby once it reached the API server, the leader once its caches hold the
    /// initial lists (so a rolling update waits for the new replica to be useful).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    probes: Arc<Probes>,
}

/// Binds `address` and serves in the background; returns the address bound (port 0 picks
/// a free one).
pub async fn serve(
    address: SocketAddr,
    metrics: Arc<Metrics>,
    probes: Arc<Probes>,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the metrics and probe address {address}"))?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readiness))
        .with_state(Shared { metrics, probes });
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            warn!(%error, "the metrics and probe server stopped");
        }
    });
    info!(address = %bound, "serving /metrics, /healthz and /readyz");
    Ok(bound)
}

async fn metrics_text(State(shared): State<Shared>) -> impl IntoResponse {
    match shared.metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn readiness(State(shared): State<Shared>) -> (StatusCode, &'static str) {
    if shared.probes.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}
