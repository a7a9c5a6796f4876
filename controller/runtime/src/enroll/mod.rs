//! `patchfleet enroll`: the enrollment server (docs/enrollment.md). Stateless, any number
//! of replicas: it watches SystemAccounts into a store, verifies each machine's signed
//! identity, and creates its Enrollment and SSM activation (`flow`). The Enrollment is the
//! only record, in the API server, so replicas share it and a replay finds it taken.
//! TLS on the enrollment port (`tls`); /metrics, /healthz and /readyz in plain HTTP.

mod flow;
mod tls;
mod trust;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use patchfleet_api::v1alpha1::SystemAccount;
use patchfleet_ssm::SsmEdge;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::args::EnrollArgs;

/// The field manager of what the server writes.
pub const MANAGER: &str = "patchfleet-enroll";
/// The largest request body: an identity document and its signature are a few KiB.
const BODY_LIMIT: usize = 64 * 1024;

/// What every request reads.
pub struct Server {
    pub client: Client,
    pub accounts: Store<SystemAccount>,
    pub trust: trust::Trust,
    pub edge: SsmEdge,
    pub audience: String,
    pub cluster_id: String,
    recorder: Recorder,
    /// The object refusals are reported about: this server's Pod.
    pod: ObjectReference,
    metrics: EnrollMetrics,
    ready: AtomicBool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    /// `Enrolled`, or the refusal's reason.
    outcome: String,
}

struct EnrollMetrics {
    registry: Registry,
    requests: Family<OutcomeLabels, Counter>,
}

impl EnrollMetrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("patchfleet_enroll");
        let requests = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "requests",
            "Enrollment requests answered, by outcome: Enrolled or the refusal's reason",
            requests.clone(),
        );
        EnrollMetrics { registry, requests }
    }

    fn count(&self, outcome: &str) {
        self.requests
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

pub async fn run(args: EnrollArgs) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to Kubernetes (KUBECONFIG or in-cluster config)")?;
    let trust = trust::Trust::load(&args).await?;
    let edge = SsmEdge::from_env(args.edge_settings()).await;
    let (accounts, writer) = reflector::store::<SystemAccount>();
    let pod_name = args.pod_name.clone().unwrap_or_else(|| {
        std::env::var("HOSTNAME").unwrap_or_else(|_| "patchfleet-enroll".to_owned())
    });
    let server = Arc::new(Server {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance: Some(pod_name.clone()),
            },
        ),
        pod: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(args.namespace.clone()),
            name: Some(pod_name),
            ..ObjectReference::default()
        },
        client: client.clone(),
        accounts,
        trust,
        edge,
        audience: args.audience.clone(),
        cluster_id: args.cluster_id.clone(),
        metrics: EnrollMetrics::new(),
        ready: AtomicBool::new(false),
    });
    tokio::spawn(crate::serving::reflect(client, writer));
    {
        let server = server.clone();
        tokio::spawn(async move {
            if server.accounts.wait_until_ready().await.is_ok() {
                server.ready.store(true, Ordering::Relaxed);
                info!("the SystemAccounts are listed: ready");
            }
        });
    }
    serve_probes(args.http_address, server.clone()).await?;
    let listener =
        tls::TlsListener::bind(args.https_address, &args.tls_cert, &args.tls_key).await?;
    info!(address = %axum::serve::Listener::local_addr(&listener)?, "serving enrollments over TLS");
    axum::serve(listener, router(server))
        .with_graceful_shutdown(crate::serving::stopped("the enrollment server"))
        .await
        .context("serving enrollments")
}

/// The enrollment routes.
pub fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/v1/enroll", post(enroll))
        .route("/v1/nonce", get(nonce))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(server)
}

async fn enroll(
    State(server): State<Arc<Server>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let message = format!(
                "the request body was not read ({rejection}): send one JSON document of at most {} KiB",
                BODY_LIMIT / 1024
            );
            server.metrics.count("Malformed");
            report(&server, "Malformed", &message).await;
            return answer(status, json!({"reason": "Malformed", "message": message}));
        }
    };
    if !server.ready.load(Ordering::Relaxed) {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"reason": "Unavailable", "message": "the server is starting: try again shortly"}),
        );
    }
    match flow::enroll(&server, &body).await {
        Ok(enrolled) => {
            server.metrics.count("Enrolled");
            answer(StatusCode::CREATED, json!(enrolled))
        }
        Err(refused) => {
            server.metrics.count(refused.reason);
            info!(reason = refused.reason, status = refused.status.as_u16(), message = %refused.message, "enrollment refused");
            if refused.status.is_client_error() || refused.detail.is_some() {
                let note = refused.detail.as_deref().unwrap_or(&refused.message);
                report(&server, refused.reason, note).await;
            }
            answer(
                refused.status,
                json!({"reason": refused.reason, "message": refused.message}),
            )
        }
    }
}

/// A Warning Event about this server's Pod: what was refused and why.
async fn report(server: &Server, reason: &str, message: &str) {
    let event = Event {
        type_: EventType::Warning,
        reason: reason.to_owned(),
        note: Some(message.chars().take(1000).collect()),
        action: "Enroll".to_owned(),
        secondary: None,
    };
    if let Err(error) = server.recorder.publish(&event, &server.pod).await {
        warn!(%error, "publishing an event");
    }
}

/// A nonce for an Azure machine's attested document (10 digits, valid about 5 minutes).
async fn nonce(State(server): State<Arc<Server>>) -> Response {
    match &server.trust.nonces {
        Some(key) => answer(
            StatusCode::OK,
            json!({"nonce": key.issue(Timestamp::now().as_second())}),
        ),
        None => answer(
            StatusCode::NOT_FOUND,
            json!({"reason": "UnknownSource", "message": "this server does not accept Azure machines: an administrator sets --nonce-key-file"}),
        ),
    }
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn serve_probes(address: SocketAddr, server: Arc<Server>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the metrics and probe address {address}"))?;
    info!(address = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(server): State<Arc<Server>>| async move {
                if server.ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "starting")
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(server): State<Arc<Server>>| async move {
                let mut text = String::new();
                match prometheus_client::encoding::text::encode(&mut text, &server.metrics.registry)
                {
                    Ok(()) => (
                        StatusCode::OK,
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        text,
                    )
                        .into_response(),
                    Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                }
            }),
        )
        .with_state(server);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            warn!(%error, "the metrics and probe server stopped");
        }
    });
    Ok(())
}
