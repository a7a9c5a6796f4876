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
use kube::api::{Api, ListParams};
use kube::runtime::reflector;
use kube::{Resource, ResourceExt};
use patchfleet_api::v1alpha1::{MaintenanceWindow, PatchGroup, SystemAccount};
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

/// Only our own script, stylesheet and images; no inline script or style, no framing, no
/// form posting elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

pub fn router(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/", get(overview_html))
        .route("/api/overview", get(overview_json))
        .route("/accounts/{name}", get(account_html))
        .route("/api/accounts/{name}", get(account_json))
        .route("/groups/{namespace}/{name}", get(group_html))
        .route("/api/groups/{namespace}/{name}", get(group_json))
        .route("/windows/{namespace}/{name}", get(window_html))
        .route("/api/windows/{namespace}/{name}", get(window_json))
        .route(
            "/instances/{account}/{region}/{namespace}/{name}",
            get(instances_html),
        )
        .route(
            "/api/instances/{account}/{region}/{namespace}/{name}",
            get(instances_json),
        )
        .route("/nodes/{account}/{region}/{id}", get(node_html))
        .route("/api/nodes/{account}/{region}/{id}", get(node_json))
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

/// HTML for a browser, JSON for `/api`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Html,
    Json,
}

/// A request refused or failed, answered in the request's format.
struct Refusal {
    status: StatusCode,
    title: &'static str,
    message: String,
}

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

    fn respond(self, format: Format, user: Option<&User>, next: &str) -> Response {
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
                (self.status, axum::response::Html(html::login(next, error))).into_response()
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

const NO_TOKEN: &str = "no bearer token: send an Authorization header or log in";

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

fn owned<K: Clone>(list: Vec<Arc<K>>) -> Vec<K> {
    list.into_iter().map(|k| (*k).clone()).collect()
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

struct Rendered<'a, T> {
    title: String,
    crumbs: Vec<(String, Option<String>)>,
    view: T,
    html: fn(&T) -> String,
    /// Pages read from the statuses check for changes; pages read from SSM do not (each
    /// check could cost SSM calls).
    live: bool,
    user: &'a User,
}

fn respond<T: Serialize>(
    d: &Dashboard,
    format: Format,
    headers: &HeaderMap,
    r: Rendered<'_, T>,
) -> Response {
    let tag = etag(&r.view);
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == tag);
    let etag_header = [
        (header::ETAG, tag.clone()),
        (header::VARY, "Authorization, Cookie".to_owned()),
    ];
    if not_modified {
        return (StatusCode::NOT_MODIFIED, etag_header).into_response();
    }
    match format {
        Format::Json => (etag_header, axum::Json(&r.view)).into_response(),
        Format::Html => {
            let body = (r.html)(&r.view);
            let page = html::page(
                &html::Frame {
                    title: &r.title,
                    crumbs: r.crumbs,
                    user: Some(&r.user.name),
                    refresh: if r.live {
                        d.refresh.as_secs().max(1) * u64::from(!d.refresh.is_zero())
                    } else {
                        0
                    },
                    etag: &tag,
                },
                &body,
            );
            (etag_header, axum::response::Html(page)).into_response()
        }
    }
}

fn home() -> (String, Option<String>) {
    ("Fleet".to_owned(), Some("/".to_owned()))
}

// ---- overview ----

async fn overview_html(
    State(d): Shared,
    Query(q): Query<OverviewQuery>,
    headers: HeaderMap,
) -> Response {
    overview(d, q, headers, Format::Html).await
}

async fn overview_json(
    State(d): Shared,
    Query(q): Query<OverviewQuery>,
    headers: HeaderMap,
) -> Response {
    overview(d, q, headers, Format::Json).await
}

async fn overview(
    d: Arc<Dashboard>,
    q: OverviewQuery,
    headers: HeaderMap,
    format: Format,
) -> Response {
    let user = match user_of(&d, &headers).await {
        Ok(user) => user,
        Err(r) => return r.respond(format, None, "/"),
    };
    let lists = async {
        Ok::<_, Refusal>((
            visible(&d, &user, "systemaccounts", &d.accounts).await?,
            visible(&d, &user, "patchgroups", &d.groups).await?,
            visible(&d, &user, "maintenancewindows", &d.windows).await?,
        ))
    }
    .await;
    let (accounts, groups, windows) = match lists {
        Ok(lists) => lists,
        Err(r) => return r.respond(format, Some(&user), "/"),
    };
    let view = view::overview(
        &owned(accounts),
        &owned(groups),
        &owned(windows),
        &q,
        clock(&d),
    );
    respond(
        &d,
        format,
        &headers,
        Rendered {
            title: "Fleet".to_owned(),
            crumbs: vec![("Fleet".to_owned(), None)],
            view,
            html: html::overview,
            live: true,
            user: &user,
        },
    )
}

// ---- account ----

async fn account_html(State(d): Shared, Path(name): Path<String>, headers: HeaderMap) -> Response {
    account(d, name, headers, Format::Html).await
}

async fn account_json(State(d): Shared, Path(name): Path<String>, headers: HeaderMap) -> Response {
    account(d, name, headers, Format::Json).await
}

async fn account(d: Arc<Dashboard>, name: String, headers: HeaderMap, format: Format) -> Response {
    let here = format!("/accounts/{}", html::enc(&name));
    let user = match user_of(&d, &headers).await {
        Ok(user) => user,
        Err(r) => return r.respond(format, None, &here),
    };
    let result = async {
        let object = visible_account(&d, &user, &name).await?;
        let groups = visible(&d, &user, "patchgroups", &d.groups).await?;
        let windows = visible(&d, &user, "maintenancewindows", &d.windows).await?;
        let events = events_of::<SystemAccount>(&d, None, &name).await;
        Ok::<_, Refusal>(view::account(
            &object,
            &owned(groups),
            &owned(windows),
            events,
            clock(&d),
        ))
    }
    .await;
    match result {
        Ok(view) => respond(
            &d,
            format,
            &headers,
            Rendered {
                title: name.clone(),
                crumbs: vec![home(), (name.clone(), None)],
                view,
                html: html::account,
                live: true,
                user: &user,
            },
        ),
        Err(r) => r.respond(format, Some(&user), &here),
    }
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
        .find(|a| a.name_any() == name)
        .ok_or_else(|| Refusal::not_found(format!("no SystemAccount {name}")))
}

async fn events_of<K: Resource<DynamicType = ()>>(
    d: &Dashboard,
    namespace: Option<&str>,
    name: &str,
) -> Vec<view::EventView> {
    let api: Api<Event> = match namespace {
        Some(ns) => Api::namespaced(d.client.clone(), ns),
        None => Api::all(d.client.clone()),
    };
    let selector = format!(
        "involvedObject.kind={},involvedObject.name={name}",
        K::kind(&())
    );
    match api.list(&ListParams::default().fields(&selector)).await {
        Ok(list) => view::events(&list.items, EVENTS),
        Err(error) => {
            warn!(%error, kind = %K::kind(&()), name, "listing Events failed; the page shows none");
            Vec::new()
        }
    }
}

// ---- group ----

async fn group_html(
    State(d): Shared,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    group(d, ns, name, headers, Format::Html).await
}

async fn group_json(
    State(d): Shared,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    group(d, ns, name, headers, Format::Json).await
}

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

async fn group(
    d: Arc<Dashboard>,
    ns: String,
    name: String,
    headers: HeaderMap,
    format: Format,
) -> Response {
    let here = format!("/groups/{}/{}", html::enc(&ns), html::enc(&name));
    let user = match user_of(&d, &headers).await {
        Ok(user) => user,
        Err(r) => return r.respond(format, None, &here),
    };
    let result = async {
        let object = visible_namespaced(&d, &user, "patchgroups", &d.groups, &ns, &name).await?;
        let accounts = visible(&d, &user, "systemaccounts", &d.accounts).await?;
        let events = events_of::<PatchGroup>(&d, Some(&ns), &name).await;
        Ok::<_, Refusal>(view::group(&object, &owned(accounts), events))
    }
    .await;
    match result {
        Ok(view) => respond(
            &d,
            format,
            &headers,
            Rendered {
                title: format!("{ns}/{name}"),
                crumbs: vec![home(), (format!("group {ns}/{name}"), None)],
                view,
                html: html::group,
                live: true,
                user: &user,
            },
        ),
        Err(r) => r.respond(format, Some(&user), &here),
    }
}

// ---- window ----

async fn window_html(
    State(d): Shared,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    window(d, ns, name, headers, Format::Html).await
}

async fn window_json(
    State(d): Shared,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    window(d, ns, name, headers, Format::Json).await
}

async fn window(
    d: Arc<Dashboard>,
    ns: String,
    name: String,
    headers: HeaderMap,
    format: Format,
) -> Response {
    let here = format!("/windows/{}/{}", html::enc(&ns), html::enc(&name));
    let user = match user_of(&d, &headers).await {
        Ok(user) => user,
        Err(r) => return r.respond(format, None, &here),
    };
    let result = async {
        let object =
            visible_namespaced(&d, &user, "maintenancewindows", &d.windows, &ns, &name).await?;
        let accounts = visible(&d, &user, "systemaccounts", &d.accounts).await?;
        let events = events_of::<MaintenanceWindow>(&d, Some(&ns), &name).await;
        Ok::<_, Refusal>(view::window(&object, &owned(accounts), events))
    }
    .await;
    match result {
        Ok(view) => respond(
            &d,
            format,
            &headers,
            Rendered {
                title: format!("{ns}/{name}"),
                crumbs: vec![home(), (format!("window {ns}/{name}"), None)],
                view,
                html: html::window,
                live: true,
                user: &user,
            },
        ),
        Err(r) => r.respond(format, Some(&user), &here),
    }
}

// ---- a group's nodes in an account-region (SSM) ----

#[derive(Deserialize)]
struct InstancesPath {
    account: String,
    region: String,
    namespace: String,
    name: String,
}

async fn instances_html(
    State(d): Shared,
    Path(p): Path<InstancesPath>,
    headers: HeaderMap,
) -> Response {
    instances(d, p, headers, Format::Html).await
}

async fn instances_json(
    State(d): Shared,
    Path(p): Path<InstancesPath>,
    headers: HeaderMap,
) -> Response {
    instances(d, p, headers, Format::Json).await
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

async fn instances(
    d: Arc<Dashboard>,
    p: InstancesPath,
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
    let user = match user_of(&d, &headers).await {
        Ok(user) => user,
        Err(r) => return r.respond(format, None, &here),
    };
    let result = async {
        let group =
            visible_namespaced(&d, &user, "patchgroups", &d.groups, &p.namespace, &p.name).await?;
        let account = fleet_account(&d, &user, &p.account, &p.region).await?;
        let read = d
            .fleet
            .group(&account, &p.region, group.group_name())
            .await
            .map_err(|e| Refusal::unavailable(format!("reading SSM: {e}")))?;
        Ok::<_, Refusal>(view::InstancesView {
            account: p.account.clone(),
            account_id: account.spec.account_id.clone(),
            region: p.region.clone(),
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            group: group.group_name().to_owned(),
            instances: (*read.value).clone(),
            read_at: read.read_at,
        })
    }
    .await;
    match result {
        Ok(view) => respond(
            &d,
            format,
            &headers,
            Rendered {
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
                view,
                html: html::instances,
                live: false,
                user: &user,
            },
        ),
        Err(r) => r.respond(format, Some(&user), &here),
    }
}

// ---- one node (SSM) ----

async fn node_html(
    State(d): Shared,
    Path(p): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    node(d, p, headers, Format::Html).await
}

async fn node_json(
    State(d): Shared,
    Path(p): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    node(d, p, headers, Format::Json).await
}

async fn node(
    d: Arc<Dashboard>,
    (name, region, id): (String, String, String),
    headers: HeaderMap,
    format: Format,
) -> Response {
    let here = format!(
        "/nodes/{}/{}/{}",
        html::enc(&name),
        html::enc(&region),
        html::enc(&id)
    );
    let user = match user_of(&d, &headers).await {
        Ok(user) => user,
        Err(r) => return r.respond(format, None, &here),
    };
    let result = async {
        let account = fleet_account(&d, &user, &name, &region).await?;
        let read = d
            .fleet
            .node(&account, &region, &id)
            .await
            .map_err(|e| Refusal::unavailable(format!("reading SSM: {e}")))?;
        let detail = (*read.value).clone().ok_or_else(|| {
            Refusal::not_found(format!("no managed node {id} in {name} {region}"))
        })?;
        Ok::<_, Refusal>(view::NodeView {
            account: name.clone(),
            account_id: account.spec.account_id.clone(),
            region: region.clone(),
            detail,
            read_at: read.read_at,
        })
    }
    .await;
    match result {
        Ok(view) => respond(
            &d,
            format,
            &headers,
            Rendered {
                title: id.clone(),
                crumbs: vec![
                    home(),
                    (
                        name.clone(),
                        Some(format!("/accounts/{}", html::enc(&name))),
                    ),
                    (format!("node {id}"), None),
                ],
                view,
                html: html::node,
                live: false,
                user: &user,
            },
        ),
        Err(r) => r.respond(format, Some(&user), &here),
    }
}

// ---- login ----

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// Only a path of this site: never an address elsewhere (`//host`, `https:`).
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
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
    fn the_etag_is_the_same_for_the_same_view() {
        assert_eq!(etag(&[1, 2]), etag(&[1, 2]));
        assert_ne!(etag(&[1, 2]), etag(&[2, 1]));
    }
}
