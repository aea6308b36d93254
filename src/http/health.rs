//! Liveness and readiness.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use crate::access::{Principal, Role};
use crate::error::{Error, Result};

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// The process is up: `status` is always `ok`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Liveness {
    #[schema(example = "ok")]
    pub status: String,
}

/// Readiness. The details are for admins; everyone else sees the status alone.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub status: String,
    /// People in the search index (admins only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexed_people: Option<u64>,
    /// Last change-log position the index reflects (admins only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_position: Option<i64>,
    /// Each presence backend (admins only); a failing one makes its channels `unknown`, never
    /// the server unready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<Vec<crate::presence::BackendHealth>>,
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    security(()),
    responses((status = 200, body = Liveness))
)]
pub async fn healthz() -> Json<Liveness> {
    Json(Liveness {
        status: "ok".into(),
    })
}

/// The database answers and the index has caught up once since start. Anyone may ask; admins
/// also get the index position and each presence backend's health.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    security(()),
    responses(
        (status = 200, body = Readiness),
        (status = 503, description = "Not ready", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
) -> Result<Json<Readiness>> {
    let admin = principal.is_some_and(|Extension(p)| p.role == Role::Admin);
    if let Err(e) = sqlx::query("SELECT 1").execute(&state.pool).await {
        return Err(Error::Unavailable(if admin {
            format!("database: {e}")
        } else {
            "the database does not answer".into()
        }));
    }
    if !state.ready.load(Ordering::Acquire) {
        return Err(Error::Unavailable(
            "the search index is still catching up".into(),
        ));
    }
    if !admin {
        return Ok(Json(Readiness {
            status: "ready".into(),
            indexed_people: None,
            index_position: None,
            presence: None,
        }));
    }
    Ok(Json(Readiness {
        status: "ready".into(),
        indexed_people: Some(state.index.num_docs()),
        index_position: Some(state.index.applied_seq()?),
        presence: Some(state.presence.health()),
    }))
}
