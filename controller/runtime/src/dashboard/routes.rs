//! The HTTP surface: every page as HTML and as JSON under `/api`, each behind the same
//! authorisation; /login and /logout are the only POSTs, and they change nothing but the
//! browser's cookie. Every response carries the security headers.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, ListParams};
use kube::runtime::reflector;
use patchfleet_api::v1alpha1::SystemAccount;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::Dashboard;
use super::auth::{self, Access, AuthError, User};
use super::html;
use super::view::{self, Clock, OverviewQuery};

type Shared = State<Arc<Dashboard>>;

/// How long the login cookie lives; the token's own expiry applies first.
const SESSION: Duration = Duration::from_secs(8 * 3600);
/// SubjectAccessReviews in flight at once for one request (per-object checks).
const REVIEWS_AT_ONCE: usize = 16;
/// Recent Events shown per object.
const EVENTS: usize = 20;
/// Where kube-rs' Recorder puts the Events of a cluster-scoped object (a SystemAccount).
const CLUSTER_EVENTS_NAMESPACE: &str = "default";

/// Only our own script, stylesheet and images; no inline script or style, no framing, no
/// form posting elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// HTML for a browser, JSON for `/api`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Html,
    Json,
}

pub fn router(dashboard: Arc<Dashboard>) -> Router {
    use Format::{Html, Json};
    Router::new()
        .route(
            "/",
            get(|s: Shared, q: Query<OverviewQuery>, h: HeaderMap| overview(s, q, h, Html)),
        )
        .route(
            "/api/overview",
            get(|s: Shared, q: Query<OverviewQuery>, h: HeaderMap| overview(s, q, h, Json)),
        )
        .route(
            "/accounts/{name}",
            get(|s: Shared, p: Path<String>, h: HeaderMap| account(s, p, h, Html)),
        )
        .route(
            "/api/accounts/{name}",
            get(|s: Shared, p: Path<String>, h: HeaderMap| account(s, p, h, Json)),
        )
        .route(
            "/groups/{namespace}/{name}",
            get(|s: Shared, p: Path<(String, String)>, h: HeaderMap| group(s, p, h, Html)),
        )
        .route(
            "/api/groups/{namespace}/{name}",
            get(|s: Shared, p: Path<(String, String)>, h: HeaderMap| group(s, p, h, Json)),
        )
        .route(
            "/windows/{namespace}/{name}",
            get(|s: Shared, p: Path<(String, String)>, h: HeaderMap| window(s, p, h, Html)),
        )
        .route(
            "/api/windows/{namespace}/{name}",
            get(|s: Shared, p: Path<(String, String)>, h: HeaderMap| window(s, p, h, Json)),
        )
        .route(
            "/instances/{account}/{region}/{namespace}/{name}",
            get(|s: Shared, p: Path<InstancesPath>, h: HeaderMap| instances(s, p, h, Html)),
        )
        .route(
            "/api/instances/{account}/{region}/{namespace}/{name}",
            get(|s: Shared, p: Path<InstancesPath>, h: HeaderMap| instances(s, p, h, Json)),
        )
        .route(
            "/nodes/{account}/{region}/{id}",
            get(|s: Shared, p: Path<(String, String, String)>, h: HeaderMap| node(s, p, h, Html)),
        )
        .route(
            "/api/nodes/{account}/{region}/{id}",
            get(|s: Shared, p: Path<(String, String, String)>, h: HeaderMap| node(s, p, h, Json)),
        )
        .route(
            "/rollouts/{namespace}/{name}",
            get(|s: Shared, p: Path<(String, String)>, h: HeaderMap| rollout(s, p, h, Html)),
        )
        .route(
            "/api/rollouts/{namespace}/{name}",
            get(|s: Shared, p: Path<(String, String)>, h: HeaderMap| rollout(s, p, h, Json)),
        )
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
        .route(
            "/assets/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/assets/app.css",
            get(|| asset(APP_CSS, "text/css; charset=utf-8")),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readiness))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::middleware::map_response(security_headers))
        .with_state(dashboard)
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("private, no-cache"));
    h.entry(header::VARY)
        .or_insert(HeaderValue::from_static("Authorization, Cookie"));
    response
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn readiness(State(d): Shared) -> (StatusCode, &'static str) {
    if d.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// A request refused or failed, answered in the request's format.
struct Refusal {
    status: StatusCode,
    title: &'static str,
    message: String,
}

const NO_TOKEN: &str = "no bearer token: send an Authorization header or log in";

impl Refusal {
    fn forbidden(user: &User, access: &Access) -> Refusal {
        Refusal {
            status: StatusCode::FORBIDDEN,
            title: "Forbidden",
            message: format!("{} may not {}", user.name, access.describe()),
        }
    }

    fn not_found(what: String) -> Refusal {
        Refusal {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            message: what,
        }
    }

    fn unavailable(message: String) -> Refusal {
        Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "Unavailable",
            message,
        }
    }

    fn respond(self, format: Format, user: Option<&User>, here: &str) -> Response {
        match format {
            Format::Json => (
                self.status,
                axum::Json(
                    serde_json::json!({ "error": self.message, "status": self.status.as_u16() }),
                ),
            )
                .into_response(),
            Format::Html if self.status == StatusCode::UNAUTHORIZED => {
                let error = (self.message != NO_TOKEN).then_some(self.message.as_str());
                (self.status, axum::response::Html(html::login(here, error))).into_response()
            }
            Format::Html => (
                self.status,
                axum::response::Html(html::problem(
                    self.title,
                    &self.message,
                    user.map(|u| u.name.as_str()),
                )),
            )
                .into_response(),
        }
    }
}

impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Refusal {
        match error {
            AuthError::Unauthenticated(message) => Refusal {
                status: StatusCode::UNAUTHORIZED,
                title: "Log in",
                message,
            },
            AuthError::Unavailable(message) => Refusal::unavailable(message),
        }
    }
}

/// A page, built once the user is known: its view and how the HTML shows it.
struct Page<T> {
    title: String,
    crumbs: Vec<(String, Option<String>)>,
    view: T,
    html: fn(&T) -> String,
    /// Pages read from the statuses check for changes; pages read from SSM do not (each
    /// check could cost SSM calls).
    live: bool,
}

/// Every page's flow: who asks (401 without a token the API server accepts), then
/// `build` (which authorizes each object it reads), then the view as HTML or JSON, or
/// `304 Not Modified` when the view's ETag is the one the client has.
async fn serve<T, F, Fut>(
    d: Arc<Dashboard>,
    headers: HeaderMap,
    format: Format,
    here: String,
    build: F,
) -> Response
where
    T: Serialize,
    F: FnOnce(Arc<Dashboard>, User) -> Fut,
    Fut: Future<Output = Result<Page<T>, Refusal>>,
{
    let user = match user_of(&d, &headers).await {
        Ok(user) => user,
        Err(r) => return r.respond(format, None, &here),
    };
    let page = match build(Arc::clone(&d), user.clone()).await {
        Ok(page) => page,
        Err(r) => return r.respond(format, Some(&user), &here),
    };
    let tag = etag(&page.view);
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == tag);
    let etag_header = [(header::ETAG, tag.clone())];
    if not_modified {
        return (StatusCode::NOT_MODIFIED, etag_header).into_response();
    }
    match format {
        Format::Json => (etag_header, axum::Json(&page.view)).into_response(),
        Format::Html => {
            let body = (page.html)(&page.view);
            let refresh = if page.live && !d.refresh.is_zero() {
                d.refresh.as_secs().max(1)
            } else {
                0
            };
            let html = html::page(
                &html::Frame {
                    title: &page.title,
                    crumbs: page.crumbs,
                    user: Some(&user.name),
                    refresh,
                    etag: &tag,
                },
                &body,
            );
            (etag_header, axum::response::Html(html)).into_response()
        }
    }
}

async fn user_of(d: &Dashboard, headers: &HeaderMap) -> Result<User, Refusal> {
    let token = auth::token_of(headers).ok_or(Refusal {
        status: StatusCode::UNAUTHORIZED,
        title: "Log in",
        message: NO_TOKEN.to_owned(),
    })?;
    Ok(d.auth.authenticate(&token).await?)
}

async fn require(d: &Dashboard, user: &User, access: Access) -> Result<(), Refusal> {
    if d.auth.allowed(user, &access).await? {
        Ok(())
    } else {
        Err(Refusal::forbidden(user, &access))
    }
}

/// The objects of a store the user may `get`: all when they may get the kind everywhere
/// (one review), else, per namespace or object, the ones a review allows.
async fn visible<K>(
    d: &Dashboard,
    user: &User,
    resource: &'static str,
    store: &reflector::Store<K>,
) -> Result<Vec<Arc<K>>, Refusal>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let all = store.state();
    if d.auth
        .allowed(user, &Access::get(resource, None, None))
        .await?
    {
        return Ok(all);
    }
    let checks = futures::stream::iter(all.into_iter().map(|object| async move {
        let namespace = object.meta().namespace.clone();
        let name = object.meta().name.clone();
        // A namespaced object: the whole namespace first (one review for all of it).
        let allowed = if namespace.is_some()
            && d.auth
                .allowed(user, &Access::get(resource, namespace.as_deref(), None))
                .await?
        {
            true
        } else {
            d.auth
                .allowed(
                    user,
                    &Access::get(resource, namespace.as_deref(), name.as_deref()),
                )
                .await?
        };
        Ok::<_, AuthError>(allowed.then_some(object))
    }))
    .buffered(REVIEWS_AT_ONCE)
    .collect::<Vec<_>>()
    .await;
    let mut visible = Vec::new();
    for check in checks {
        if let Some(object) = check? {
            visible.push(object);
        }
    }
    Ok(visible)
}

/// The SystemAccount, if the user may get it (403 before 404: a refusal says nothing of
/// whether it exists).
async fn visible_account(
    d: &Dashboard,
    user: &User,
    name: &str,
) -> Result<Arc<SystemAccount>, Refusal> {
    require(d, user, Access::get("systemaccounts", None, Some(name))).await?;
    d.accounts
        .get(&reflector::ObjectRef::new(name))
        .ok_or_else(|| Refusal::not_found(format!("no SystemAccount {name}")))
}

/// A namespaced object, if the user may get it.
async fn visible_namespaced<K>(
    d: &Dashboard,
    user: &User,
    resource: &'static str,
    store: &reflector::Store<K>,
    ns: &str,
    name: &str,
) -> Result<Arc<K>, Refusal>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    require(d, user, Access::get(resource, Some(ns), Some(name))).await?;
    store
        .get(&reflector::ObjectRef::new(name).within(ns))
        .ok_or_else(|| Refusal::not_found(format!("no {} {ns}/{name}", K::kind(&()))))
}

/// The object's recent Events, for a user who may list Events where they are (as
/// `kubectl describe` needs); none for the others. Found by the object's uid, so an Event
/// someone wrote about another object of the same name is not shown.
async fn events_of<K: Resource<DynamicType = ()>>(
    d: &Dashboard,
    user: &User,
    object: &K,
) -> Result<Vec<view::EventView>, Refusal> {
    let namespace = object
        .meta()
        .namespace
        .clone()
        .unwrap_or_else(|| CLUSTER_EVENTS_NAMESPACE.to_owned());
    if !d
        .auth
        .allowed(user, &Access::list_events(Some(&namespace)))
        .await?
    {
        return Ok(Vec::new());
    }
    let Some(uid) = object.meta().uid.as_deref() else {
        return Ok(Vec::new());
    };
    let api: Api<Event> = Api::namespaced(d.client.clone(), &namespace);
    let selector = format!("involvedObject.uid={uid}");
    Ok(
        match api.list(&ListParams::default().fields(&selector)).await {
            Ok(list) => view::events(&list.items, EVENTS),
            Err(error) => {
                warn!(%error, kind = %K::kind(&()), "listing Events failed; the page shows none");
                Vec::new()
            }
        },
    )
}

fn clock(d: &Dashboard) -> Clock {
    Clock {
        now: Timestamp::now(),
        stale_after: d.stale_after,
    }
}

/// A stable tag of what a view shows, for `If-None-Match` (the same in every replica).
fn etag<T: Serialize>(value: &T) -> String {
    let mut hasher = DefaultHasher::new();
    serde_json::to_vec(value)
        .unwrap_or_default()
        .hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}

fn home() -> (String, Option<String>) {
    ("Fleet".to_owned(), Some("/".to_owned()))
}

async fn overview(
    State(d): Shared,
    Query(q): Query<OverviewQuery>,
    headers: HeaderMap,
    format: Format,
) -> Response {
    serve(d, headers, format, "/".to_owned(), |d, user| async move {
        let accounts = visible(&d, &user, "systemaccounts", &d.accounts).await?;
        let groups = visible(&d, &user, "patchgroups", &d.groups).await?;
        let windows = visible(&d, &user, "maintenancewindows", &d.windows).await?;
        Ok(Page {
            title: "Fleet".to_owned(),
            crumbs: vec![("Fleet".to_owned(), None)],
            view: view::overview(&accounts, &groups, &windows, &q, clock(&d)),
            html: html::overview,
            live: true,
        })
    })
    .await
}

async fn account(
    State(d): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    format: Format,
) -> Response {
    let here = format!("/accounts/{}", html::enc(&name));
    serve(d, headers, format, here, |d, user| async move {
        let object = visible_account(&d, &user, &name).await?;
        let groups = visible(&d, &user, "patchgroups", &d.groups).await?;
        let windows = visible(&d, &user, "maintenancewindows", &d.windows).await?;
        let events = events_of(&d, &user, object.as_ref()).await?;
        Ok(Page {
            title: name.clone(),
            crumbs: vec![home(), (name.clone(), None)],
            view: view::account(&object, &groups, &windows, events, clock(&d)),
            html: html::account,
            live: true,
        })
    })
    .await
}

async fn group(
    State(d): Shared,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    format: Format,
) -> Response {
    let here = format!("/groups/{}/{}", html::enc(&ns), html::enc(&name));
    serve(d, headers, format, here, |d, user| async move {
        let object = visible_namespaced(&d, &user, "patchgroups", &d.groups, &ns, &name).await?;
        let accounts = visible(&d, &user, "systemaccounts", &d.accounts).await?;
        let events = events_of(&d, &user, object.as_ref()).await?;
        let mut view = view::group(&object, &accounts, events);
        let stage = view::group_stage(&d.rollouts.state(), &ns, &name);
        // Shown only to who may read that rollout.
        if let Some(stage) = stage
            && d.auth
                .allowed(
                    &user,
                    &Access::get("patchrollouts", Some(&ns), Some(&stage.rollout)),
                )
                .await?
        {
            view.rollout = Some(stage);
        }
        Ok(Page {
            title: format!("{ns}/{name}"),
            crumbs: vec![home(), (format!("group {ns}/{name}"), None)],
            view,
            html: html::group,
            live: true,
        })
    })
    .await
}

async fn window(
    State(d): Shared,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    format: Format,
) -> Response {
    let here = format!("/windows/{}/{}", html::enc(&ns), html::enc(&name));
    serve(d, headers, format, here, |d, user| async move {
        let object =
            visible_namespaced(&d, &user, "maintenancewindows", &d.windows, &ns, &name).await?;
        let accounts = visible(&d, &user, "systemaccounts", &d.accounts).await?;
        let events = events_of(&d, &user, object.as_ref()).await?;
        Ok(Page {
            title: format!("{ns}/{name}"),
            crumbs: vec![home(), (format!("window {ns}/{name}"), None)],
            view: view::window(&object, &accounts, events),
            html: html::window,
            live: true,
        })
    })
    .await
}

async fn rollout(
    State(d): Shared,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    format: Format,
) -> Response {
    let here = format!("/rollouts/{}/{}", html::enc(&ns), html::enc(&name));
    serve(d, headers, format, here, |d, user| async move {
        let object =
            visible_namespaced(&d, &user, "patchrollouts", &d.rollouts, &ns, &name).await?;
        let events = events_of(&d, &user, object.as_ref()).await?;
        Ok(Page {
            title: format!("{ns}/{name}"),
            crumbs: vec![home(), (format!("rollout {ns}/{name}"), None)],
            view: view::rollout(&object, events),
            html: html::rollout,
            live: true,
        })
    })
    .await
}

#[derive(Deserialize)]
struct InstancesPath {
    account: String,
    region: String,
    namespace: String,
    name: String,
}

/// The account (get and the fleet permission) and its region, checked before any SSM call.
async fn fleet_account(
    d: &Dashboard,
    user: &User,
    name: &str,
    region: &str,
) -> Result<Arc<SystemAccount>, Refusal> {
    let account = visible_account(d, user, name).await?;
    require(d, user, Access::fleet(name)).await?;
    if !account.spec.regions.iter().any(|r| r == region) {
        return Err(Refusal::not_found(format!(
            "SystemAccount {name} has no region {region}"
        )));
    }
    Ok(account)
}

fn ssm_failed(error: &patchfleet_ssm::EdgeError) -> Refusal {
    Refusal::unavailable(format!("reading SSM: {error}"))
}

async fn instances(
    State(d): Shared,
    Path(p): Path<InstancesPath>,
    headers: HeaderMap,
    format: Format,
) -> Response {
    let here = format!(
        "/instances/{}/{}/{}/{}",
        html::enc(&p.account),
        html::enc(&p.region),
        html::enc(&p.namespace),
        html::enc(&p.name)
    );
    serve(d, headers, format, here, |d, user| async move {
        let group =
            visible_namespaced(&d, &user, "patchgroups", &d.groups, &p.namespace, &p.name).await?;
        let account = fleet_account(&d, &user, &p.account, &p.region).await?;
        let read = d
            .fleet
            .group(&account, &p.region, group.group_name())
            .await
            .map_err(|e| ssm_failed(&e))?;
        Ok(Page {
            title: format!("{} nodes in {} {}", p.name, p.account, p.region),
            crumbs: vec![
                home(),
                (
                    p.account.clone(),
                    Some(format!("/accounts/{}", html::enc(&p.account))),
                ),
                (
                    format!("group {}/{}", p.namespace, p.name),
                    Some(format!(
                        "/groups/{}/{}",
                        html::enc(&p.namespace),
                        html::enc(&p.name)
                    )),
                ),
                (format!("nodes in {}", p.region), None),
            ],
            view: view::InstancesView {
                account: p.account.clone(),
                account_id: account.spec.account_id.clone(),
                region: p.region.clone(),
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                group: group.group_name().to_owned(),
                instances: (*read.value).clone(),
                read_at: read.read_at,
            },
            html: html::instances,
            live: false,
        })
    })
    .await
}

/// A managed node's id as SSM's InstanceId pattern has it (`i-` with 8 or 17 characters,
/// `mi-` with 17: <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstancePatches.html>):
/// anything else is no node, answered without a call.
fn is_instance_id(id: &str) -> bool {
    let word = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match (id.strip_prefix("mi-"), id.strip_prefix("i-")) {
        (Some(rest), _) => rest.len() == 17 && word(rest),
        (None, Some(rest)) => (rest.len() == 8 || rest.len() == 17) && word(rest),
        _ => false,
    }
}

async fn node(
    State(d): Shared,
    Path((name, region, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    format: Format,
) -> Response {
    let here = format!(
        "/nodes/{}/{}/{}",
        html::enc(&name),
        html::enc(&region),
        html::enc(&id)
    );
    serve(d, headers, format, here, |d, user| async move {
        let account = fleet_account(&d, &user, &name, &region).await?;
        let missing = || Refusal::not_found(format!("no managed node {id} in {name} {region}"));
        if !is_instance_id(&id) {
            return Err(missing());
        }
        let read = d
            .fleet
            .node(&account, &region, &id)
            .await
            .map_err(|e| ssm_failed(&e))?;
        let detail = (*read.value).clone().ok_or_else(missing)?;
        Ok(Page {
            title: id.clone(),
            crumbs: vec![
                home(),
                (
                    name.clone(),
                    Some(format!("/accounts/{}", html::enc(&name))),
                ),
                (format!("node {id}"), None),
            ],
            view: view::NodeView {
                account: name.clone(),
                account_id: account.spec.account_id.clone(),
                region: region.clone(),
                detail,
                read_at: read.read_at,
            },
            html: html::node,
            live: false,
        })
    })
    .await
}

// ---- login ----

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// Only a path of this site: never an address elsewhere (`//host`, `https:`).
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                // Browsers drop tabs and newlines from a Location: `/\t/host` is `//host`.
                && !n.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

async fn login_form(Query(q): Query<LoginQuery>) -> Response {
    axum::response::Html(html::login(&local_path(q.next.as_deref()), None)).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

/// A POST from another site (Origin or Sec-Fetch-Site say so) is refused: it could log the
/// browser in as someone else.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin" || site == "none";
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority == host),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

async fn login(State(d): Shared, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let next = local_path(form.next.as_deref());
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "a login must come from this site\n").into_response();
    }
    let token = form.token.trim();
    if !auth::cookie_safe(token) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::response::Html(html::login(&next, Some("that is not a bearer token"))),
        )
            .into_response();
    }
    match d.auth.authenticate(token).await {
        Ok(_) => (
            [(header::SET_COOKIE, auth::set_cookie(token, SESSION))],
            Redirect::to(&next),
        )
            .into_response(),
        Err(error) => Refusal::from(error).respond(Format::Html, None, &next),
    }
}

async fn logout(headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "a logout must come from this site\n").into_response();
    }
    (
        [(header::SET_COOKIE, auth::clear_cookie())],
        Redirect::to("/login"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(local_path(Some("/accounts/a")), "/accounts/a");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(Some("/\t/evil.example")), "/");
        assert_eq!(local_path(Some("/\n/evil.example")), "/");
        assert_eq!(local_path(Some("/ /evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn a_post_from_another_site_is_not_same_origin() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h), "no Origin: a same-site form or a tool");
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&h));
    }

    #[test]
    fn only_ssm_instance_ids_are_looked_up() {
        for id in ["i-0123456789abcdef0", "i-01234567", "mi-0123456789abcdef0"] {
            assert!(is_instance_id(id), "{id}");
        }
        for id in [
            "i-0123",
            "mi-01234567",
            "x-0123456789abcdef0",
            "i-0123456789abcdef0/..",
            "",
            "i-01234567 ",
        ] {
            assert!(!is_instance_id(id), "{id}");
        }
    }
}
