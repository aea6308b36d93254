//! Liveness and readiness.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use crate::error::{Error, Result};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub status: String,
    /// People in the search index.
    pub indexed_people: u64,
    /// Last change-log position the index reflects.
    pub index_position: i64,
    /// Each presence backend; a failing one makes its channels `unknown`, never the server unready.
    pub presence: Vec<crate::presence::BackendHealth>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// The database answers and the index has caught up once since start.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, body = Readiness),
        (status = 503, description = "Not ready", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>> {
    sqlx::query("SELECT 1")
        .execute(&state.pool)
        .await
        .map_err(|e| Error::Unavailable(format!("database: {e}")))?;
    if !state.ready.load(Ordering::Acquire) {
        return Err(Error::Unavailable(
            "the search index is still catching up".into(),
        ));
    }
    Ok(Json(Readiness {
        status: "ready".into(),
        indexed_people: state.index.num_docs(),
        index_position: state.index.applied_seq()?,
        presence: state.presence.health(),
    }))
}
