//! The HTTP API and the web UI: one router per resource, merged here.

pub mod error;
pub mod health;
pub mod openapi;
pub mod people;
pub mod photos;
pub mod presence;
pub mod sync;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use sqlx::PgPool;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

use crate::search::SearchIndex;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub index: SearchIndex,
    /// True once the indexer has caught up after start.
    pub ready: Arc<AtomicBool>,
    /// Live presence: cache, backends and change stream.
    pub presence: crate::presence::PresenceHub,
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(people::router())
        .merge(presence::router())
        .merge(photos::router())
        .merge(sync::router())
        .route("/openapi.json", get(openapi_json))
        .fallback(not_found);
    Router::new()
        .merge(crate::web::router())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(presence::metrics_router())
        .nest("/api/v1", api)
        .fallback(not_found)
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::spec_json(),
    )
}

async fn not_found(uri: axum::http::Uri) -> error::Problem {
    error::Problem::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {}", uri.path()),
    )
}
