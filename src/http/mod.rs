//! The HTTP API and the web UI: one router per resource, merged here. Each operation is
//! registered once with its OpenAPI docs (`utoipa_axum`), and its documented `security` is
//! what [`auth::guard`] enforces.

pub mod app_passwords;
pub mod audit;
pub mod auth;
pub mod deputies;
pub mod error;
pub mod favourites;
pub mod health;
pub mod imports;
pub mod notes;
pub mod openapi;
pub mod partners;
pub mod people;
pub mod phonebooks;
pub mod photos;
pub mod presence;
pub mod scim;
pub mod shared;
pub mod sharing;
pub mod sync;
pub mod team;

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use sqlx::PgPool;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Access, Principal};
use crate::audit::AuditLog;
use crate::search::SearchIndex;

/// Shared by every handler. Built by `state::build`.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub index: SearchIndex,
    /// True once the indexer has caught up after start.
    pub ready: Arc<std::sync::atomic::AtomicBool>,
    /// Live presence: cache, backends and change stream.
    pub presence: crate::presence::PresenceHub,
    /// Sign-in, sessions, tokens, policies.
    pub access: Arc<Access>,
    pub audit: AuditLog,
    /// `audit.staff_lookups`: record staff lookups too.
    pub audit_staff_lookups: bool,
    /// How long a request may take, and how many may run at once.
    pub limits: Limits,
    /// The configuration the server started with (sources, regions, import limits).
    pub config: Arc<crate::config::Config>,
    /// Partners' directories our staff may search.
    pub federation: Arc<crate::federation::Federation>,
    /// Whose notes changed (here or on another server): open presence streams tell their pages.
    pub notes: notes::NotesFeed,
}

impl AppState {
    /// Whether a lookup by `principal` goes to the audit trail: always for services, devices
    /// and partners; for staff when `audit.staff_lookups` says so. The HTTP guard, the LDAP
    /// server and CardDAV all ask here.
    pub fn audits_lookups_of(&self, principal: &Principal) -> bool {
        !principal.is_staff() || self.audit_staff_lookups
    }
}

#[derive(Clone)]
pub struct Limits {
    pub request_timeout: std::time::Duration,
    /// Permits for requests in progress.
    pub in_flight: Arc<tokio::sync::Semaphore>,
}

/// Sheds what is over the concurrency limit (503 `overloaded`) and ends what runs past the
/// request timeout (503 `timeout`), before any other work on the request.
async fn limit(
    axum::extract::State(limits): axum::extract::State<Limits>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Ok(_permit) = limits.in_flight.clone().try_acquire_owned() else {
        return crate::error::Error::Overloaded.into_response();
    };
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => crate::error::Error::Timeout(limits.request_timeout).into_response(),
    }
}

/// Every documented route, with its docs: the API under `/api/v1`, health and metrics.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(people::routes())
        .merge(notes::routes())
        .merge(favourites::routes())
        .merge(team::routes())
        .merge(deputies::routes())
        .merge(sharing::routes())
        .merge(presence::routes())
        .merge(photos::routes())
        .merge(sync::routes())
        .merge(
            imports::routes().layer(axum::extract::DefaultBodyLimit::max(
                imports::MAX_IMPORT_BYTES,
            )),
        )
        .merge(phonebooks::routes())
        .merge(auth::routes())
        .merge(app_passwords::routes())
        .merge(audit::routes())
        .merge(partners::routes())
        .merge(shared::routes())
        .merge(scim::routes())
        .merge(health::routes())
        .routes(routes!(openapi_json))
}

pub fn router(state: AppState) -> Router {
    let (api, spec) = api().split_for_parts();
    let rules = Arc::new(auth::Rules::from_spec(&spec));
    let api = api.route_layer(axum::middleware::from_fn_with_state(
        (state.clone(), rules),
        auth::guard,
    ));
    Router::new()
        .merge(crate::web::router())
        .merge(crate::addressbook::carddav::router(state.clone()))
        .merge(api)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(scim::errors_as_scim))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::edge,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.limits.clone(),
            limit,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json"),
        (status = 404, description = "Never: documented for symmetry", body = error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::spec_json(),
    )
}

/// Request bodies larger than this are refused (413); routes that need more raise it.
pub const MAX_BODY: usize = 64 * 1024;

/// The page's policy: scripts, styles and everything else only from here (no inline script),
/// never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// On every response, API and page alike.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::HeaderValue;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ] {
        headers.insert(name, value);
    }
    response
}

async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    if uri.path().starts_with("/scim/v2/") {
        // SCIM clients read SCIM errors.
        return scim::error(StatusCode::NOT_FOUND, None, "no such resource");
    }
    error::Problem::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {}", uri.path()),
    )
    .into_response()
}
