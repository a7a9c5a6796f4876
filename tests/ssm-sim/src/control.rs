//! The control endpoint under `/_sim/`: faults, counters, metrics and reset.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Sim;
use crate::faults::FaultSpec;

pub async fn get_faults(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.faults.spec()).into_response()
}

pub async fn put_faults(State(sim): State<Arc<Sim>>, body: axum::body::Bytes) -> Response {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("invalid fault spec: {e}\n"),
            )
                .into_response();
        }
    };
    if let Err(e) = spec.validate() {
        return (
            StatusCode::BAD_REQUEST,
            format!("invalid fault spec: {e}\n"),
        )
            .into_response();
    }
    sim.faults.set(spec.clone());
    Json(spec).into_response()
}

/// `GET /_sim/counters[?account=..&region=..&caller=..&operation=..&outcome=..]`
pub async fn counters(
    State(sim): State<Arc<Sim>>,
    Query(filter): Query<HashMap<String, String>>,
) -> Response {
    let calls: Vec<_> = sim
        .counters
        .snapshot()
        .into_iter()
        .filter(|c| {
            [
                ("account", &c.key.account),
                ("region", &c.key.region),
                ("caller", &c.key.caller),
                ("operation", &c.key.operation),
                ("outcome", &c.key.outcome),
            ]
            .iter()
            .all(|(name, value)| filter.get(*name).is_none_or(|want| want == *value))
        })
        .collect();
    let total: u64 = calls.iter().map(|c| c.count).sum();
    Json(json!({"total": total, "calls": calls})).into_response()
}

pub async fn metrics(State(sim): State<Arc<Sim>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        sim.counters.prometheus(),
    )
        .into_response()
}

/// Forgets all stored objects and counts and restores the configured faults.
pub async fn reset(State(sim): State<Arc<Sim>>) -> Response {
    sim.reset();
    StatusCode::NO_CONTENT.into_response()
}

pub async fn health() -> &'static str {
    "ok\n"
}
