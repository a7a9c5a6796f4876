//! The control endpoint under `/_sim/`: faults, settings, the simulated fleet and agent
//! registrations, counters, metrics and reset.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::Sim;
use crate::faults::FaultSpec;
use crate::fleet::{self, FleetSpec};
use crate::registration::{self, RegisterError, RegisterRequest};
use crate::settings::Settings;
use crate::state;

fn bad_request(what: &str, e: impl std::fmt::Display) -> Response {
    (StatusCode::BAD_REQUEST, format!("invalid {what}: {e}\n")).into_response()
}

pub async fn get_faults(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.faults.spec()).into_response()
}

pub async fn put_faults(State(sim): State<Arc<Sim>>, body: axum::body::Bytes) -> Response {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad_request("fault spec", e),
    };
    if let Err(e) = spec.validate() {
        return bad_request("fault spec", e);
    }
    sim.faults.set(spec.clone());
    Json(spec).into_response()
}

pub async fn get_settings(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.settings.get()).into_response()
}

/// `PUT /_sim/settings` with `{"command_seconds": 0.5}`: replaces the settings.
pub async fn put_settings(State(sim): State<Arc<Sim>>, body: axum::body::Bytes) -> Response {
    let settings: Settings = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad_request("settings", e),
    };
    if let Err(e) = settings.validate() {
        return bad_request("settings", e);
    }
    sim.settings.set(settings);
    Json(settings).into_response()
}

/// `PUT /_sim/instances`: replaces the managed nodes of one account-region and
/// answers them as `GET` does.
pub async fn put_instances(State(sim): State<Arc<Sim>>, body: axum::body::Bytes) -> Response {
    let spec: FleetSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad_request("instances", e),
    };
    if let Err(e) = spec.validate(&sim.config.quotas) {
        return bad_request("instances", e);
    }
    fleet::apply(&sim, &spec);
    instances(&sim, &spec.account_id, &spec.region)
}

/// `POST /_sim/register`: an SSM Agent registers with an activation (see
/// `crate::registration`); answers `{"instanceId", "accountId", "region"}`, or 400 with
/// `{"error": "<Code>", "message": "..."}` and nothing changed.
pub async fn register(State(sim): State<Arc<Sim>>, body: axum::body::Bytes) -> Response {
    let result = serde_json::from_slice::<RegisterRequest>(&body)
        .map_err(|e| RegisterError::InvalidRequest(format!("invalid registration: {e}")))
        .and_then(|request| registration::register(&sim, request));
    match result {
        Ok(registered) => Json(registered).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.code(), "message": e.to_string()})),
        )
            .into_response(),
    }
}

/// `GET /_sim/instances?accountId=..&region=..`: the managed nodes and their command runs.
pub async fn get_instances(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (Some(account), Some(region)) = (q.get("accountId"), q.get("region")) else {
        return bad_request("query", "accountId and region are required");
    };
    if let Err(e) = fleet::check_scope(account, region) {
        return bad_request("query", e);
    }
    instances(&sim, account, region)
}

fn instances(sim: &Sim, account: &str, region: &str) -> Response {
    let shard = sim.store.region(account, region);
    let st = state::lock(&shard);
    Json(fleet::view(&st, account, region, sim.clock.now())).into_response()
}

fn clock_view(now: f64) -> Response {
    Json(json!({"now": now, "iso": crate::clock::iso8601(now)})).into_response()
}

/// `GET /_sim/clock`: the simulated time, `{"now": <epoch seconds>, "iso": "..."}`.
pub async fn get_clock(State(sim): State<Arc<Sim>>) -> Response {
    clock_view(sim.clock.now())
}

/// An instant given as epoch seconds or an ISO 8601 string with an offset.
fn instant(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
        Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond() as f64 / 1000.0)
            .map_err(|e| format!("{s:?} is not an ISO 8601 time with an offset: {e}")),
        other => Err(format!(
            "{other} is neither epoch seconds nor an ISO 8601 string"
        )),
    }
}

/// `PUT /_sim/clock` with `{"now": <epoch seconds or ISO 8601>}`: moves the simulated
/// time forward (400 if it is earlier than the simulated time), then runs the
/// maintenance windows that came due.
pub async fn put_clock(State(sim): State<Arc<Sim>>, body: axum::body::Bytes) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request("clock", e),
    };
    let Some(to) = body.get("now") else {
        return bad_request(
            "clock",
            "the body must be {\"now\": <epoch seconds or ISO 8601>}",
        );
    };
    let to = match instant(to) {
        Ok(t) => t,
        Err(e) => return bad_request("clock", e),
    };
    match sim.clock.set(to) {
        Ok(now) => {
            crate::ops::run_due_everywhere(&sim);
            clock_view(now)
        }
        Err(e) => bad_request("clock", e),
    }
}

/// `POST /_sim/clock/advance` with `{"seconds": N}` (0 to 366 days), then runs the
/// maintenance windows that came due.
pub async fn advance_clock(State(sim): State<Arc<Sim>>, body: axum::body::Bytes) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request("clock advance", e),
    };
    let Some(seconds) = body.get("seconds").and_then(Value::as_f64) else {
        return bad_request("clock advance", "the body must be {\"seconds\": N}");
    };
    match sim.clock.advance(seconds) {
        Ok(now) => {
            crate::ops::run_due_everywhere(&sim);
            clock_view(now)
        }
        Err(e) => bad_request("clock advance", e),
    }
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

/// Forgets all stored objects (the fleet included) and counts, and restores the
/// configured faults and settings.
pub async fn reset(State(sim): State<Arc<Sim>>) -> Response {
    sim.reset();
    StatusCode::NO_CONTENT.into_response()
}

pub async fn health() -> &'static str {
    "ok\n"
}
