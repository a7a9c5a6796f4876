//! An SSM and STS simulator that behaves like AWS, for tests, benchmarks and the demo.
//!
//! One HTTP listener answers SSM (AWS JSON 1.1, dispatched on `X-Amz-Target`),
//! STS (query protocol, dispatched on the form's `Action=`) and the control
//! endpoint under `/_sim/`. Start it in-process with [`Server::start`].

pub mod auth;
pub mod clock;
pub mod config;
mod control;
pub mod counters;
pub mod documents;
pub mod error;
pub mod faults;
pub mod fleet;
pub mod http1;
pub mod occurrence;
pub mod ops;
mod paging;
pub mod patching;
mod predefined;
pub mod protocol;
pub mod registration;
pub mod schedule;
pub mod settings;
pub mod state;
mod sts;
pub mod validate;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{Config, Quotas};
pub use faults::FaultSpec;
pub use fleet::{FleetSpec, InstanceSpec};
pub use settings::Settings;

use crate::auth::{Caller, Sessions};
use crate::counters::Counters;
use crate::error::ApiError;
use crate::faults::{Faults, Injected};
use crate::protocol::{json, query};
use crate::settings::LiveSettings;
use crate::state::Store;

/// The simulator's shared state.
#[derive(Debug)]
pub struct Sim {
    pub config: Config,
    pub store: Store,
    pub sessions: Sessions,
    pub faults: Faults,
    /// Runtime settings (`/_sim/settings`): how long commands run.
    pub settings: LiveSettings,
    pub counters: Counters,
    /// Simulated time (`/_sim/clock`): every stored time stamp comes from it.
    pub clock: clock::SimClock,
}

impl Sim {
    pub fn new(config: Config) -> Self {
        Self {
            faults: Faults::new(config.faults.clone()),
            settings: LiveSettings::new(config.settings),
            config,
            store: Store::default(),
            sessions: Sessions::default(),
            counters: Counters::default(),
            clock: clock::SimClock::default(),
        }
    }

    pub fn reset(&self) {
        self.store.reset();
        self.counters.reset();
        self.faults.set(self.config.faults.clone());
        self.settings.set(self.config.settings);
        self.clock.reset();
    }
}

/// The HTTP routes: the control endpoint, and SSM/STS for everything else.
pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route(
            "/_sim/faults",
            get(control::get_faults).put(control::put_faults),
        )
        .route(
            "/_sim/settings",
            get(control::get_settings).put(control::put_settings),
        )
        .route(
            "/_sim/instances",
            get(control::get_instances).put(control::put_instances),
        )
        .route(
            "/_sim/clock",
            get(control::get_clock).put(control::put_clock),
        )
        .route("/_sim/clock/advance", post(control::advance_clock))
        .route("/_sim/register", post(control::register))
        .route("/_sim/counters", get(control::counters))
        .route("/_sim/metrics", get(control::metrics))
        .route("/_sim/reset", post(control::reset))
        .route("/_sim/health", get(control::health))
        .fallback(api)
        .with_state(sim)
}

#[derive(Clone, Copy)]
enum Protocol {
    Json,
    Query,
}

async fn api(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = clock::uuid();
    if let Some(target) = headers.get("x-amz-target") {
        let target = target.to_str().unwrap_or_default();
        let Some(op) = target.strip_prefix(json::TARGET_PREFIX) else {
            let err = ApiError::new(
                "UnknownOperationException",
                format!("Unknown target {target}"),
            );
            return json::error(&err, &request_id);
        };
        let op = op.to_string();
        let result = call(&sim, &op, &headers, Protocol::Json, |caller| {
            ops::dispatch(&sim, &caller.account, &caller.region, &op, &body)
        })
        .await;
        return match result {
            Ok(v) => json::ok(&v, &request_id),
            Err(e) => json::error(&e, &request_id),
        };
    }
    let form = if method == Method::POST {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        uri.query().unwrap_or_default().to_string()
    };
    let params = query::parse_form(&form);
    let Some(action) = params.get("Action").cloned() else {
        let err = ApiError::new(
            "UnknownOperationException",
            "Requests need X-Amz-Target (SSM) or a form with Action= (STS).",
        );
        return json::error(&err, &request_id);
    };
    let result = call(&sim, &action, &headers, Protocol::Query, |caller| {
        sts::dispatch(&sim, caller, &action, &params)
    })
    .await;
    match result {
        Ok(xml) => query::ok(&action, &xml, &request_id),
        Err(e) => query::error(&e, &request_id),
    }
}

/// Authenticates, injects faults, runs and counts one call.
async fn call<T>(
    sim: &Sim,
    op: &str,
    headers: &HeaderMap,
    protocol: Protocol,
    run: impl FnOnce(&Caller) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let Some(scope) = auth::scope(headers) else {
        sim.counters.record(
            "unknown",
            "unknown",
            "unknown",
            op,
            "MissingAuthenticationTokenException",
        );
        return Err(auth::missing_auth());
    };
    let caller = sim.sessions.resolve(&sim.config, &scope);
    let (latency, injected) = sim.faults.decide(op, &caller.account);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let result = match (injected, protocol) {
        (Some(Injected::Throttle), Protocol::Json) => Err(ApiError::throttling()),
        (Some(Injected::Throttle), Protocol::Query) => {
            Err(ApiError::new("Throttling", "Rate exceeded"))
        }
        (Some(Injected::ServerError), Protocol::Json) => Err(ApiError::internal()),
        (Some(Injected::ServerError), Protocol::Query) => Err(ApiError::new(
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        )
        .with_status(500)),
        // An unreachable account answers no one acting in it, sessions issued before the
        // fault included (as when the role's trust or permissions are withdrawn).
        (None, _) if sim.faults.is_unreachable(&caller.account) && op != "AssumeRole" => {
            Err(unreachable(&caller, protocol))
        }
        (None, _) => run(&caller),
    };
    let outcome = match &result {
        Ok(_) => "Success",
        Err(e) => e.code,
    };
    sim.counters
        .record(&caller.account, &caller.region, &caller.arn, op, outcome);
    result
}

fn unreachable(caller: &Caller, protocol: Protocol) -> ApiError {
    let message = format!(
        "User: {} is not authorized to perform this action (the account is unreachable)",
        caller.arn
    );
    match protocol {
        Protocol::Json => ApiError::new("AccessDeniedException", message),
        Protocol::Query => ApiError::new("AccessDenied", message).with_status(403),
    }
}

/// A running simulator; stops when dropped or on [`Server::shutdown`].
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    sim: Arc<Sim>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Binds `listen` (port 0 picks a free port) and serves in the background.
    pub async fn start(config: Config, listen: SocketAddr) -> std::io::Result<Self> {
        let sim = Arc::new(Sim::new(config));
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(Arc::clone(&sim));
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Ok(Self {
            addr,
            sim,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the endpoint override for SDK clients.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }

    /// Stops accepting requests and waits for the server task to end.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
