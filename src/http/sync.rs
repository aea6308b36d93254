//! `/api/v1/sync/runs`: the record of every import and directory sync, with who changed.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use crate::db::runs::{self, Reject, RunChange, SyncRun};
use crate::error::{Error, Result};

const DEFAULT_RUNS: i64 = 20;
const MAX_RUNS: i64 = 500;
/// Changes listed per run; `changes_total` says how many there were.
const MAX_CHANGES: i64 = 10_000;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsParams {
    /// Only runs of this source.
    #[param(max_length = 256)]
    pub source: Option<String>,
    /// How many runs, newest first: 1 to 500 (default 20).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunsResponse {
    pub items: Vec<SyncRun>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    pub run: SyncRun,
    /// Who the run added, updated or removed (the first 10,000).
    pub changes: Vec<RunChange>,
    /// Rows or entries the run refused, with the reason.
    pub rejects: Vec<Reject>,
    /// Warnings on the people it kept: numbers kept as written, emails not kept, fields cut.
    pub warnings: Vec<Reject>,
}

/// Recent import and sync runs, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/sync/runs",
    tag = "sync",
    params(RunsParams),
    security(("session" = ["admin"]), ("bearer" = ["admin"])),
    responses(
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 200, description = "Runs, newest first", body = RunsResponse),
        (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_runs(
    State(state): State<AppState>,
    params: std::result::Result<Query<RunsParams>, QueryRejection>,
) -> Result<Json<RunsResponse>> {
    let Query(params) = params.map_err(|e| Error::invalid("query", e.body_text()))?;
    let limit = params.limit.unwrap_or(DEFAULT_RUNS);
    if !(1..=MAX_RUNS).contains(&limit) {
        return Err(Error::invalid("limit", format!("must be 1 to {MAX_RUNS}")));
    }
    // No source's name holds a NUL (PostgreSQL text cannot): such a filter matches nothing.
    if params
        .source
        .as_deref()
        .is_some_and(|s| s.chars().count() > 256)
    {
        return Err(Error::invalid("source", "longer than 256 characters"));
    }
    let items = match params.source.as_deref() {
        Some(source) if source.contains('\0') => Vec::new(),
        source => runs::list(&state.pool, source, limit).await?,
    };
    Ok(Json(RunsResponse { items }))
}

/// One run: its counts, who changed, and what was refused.
#[utoipa::path(
    get,
    path = "/api/v1/sync/runs/{id}",
    tag = "sync",
    params(("id" = i64, Path, description = "Run id")),
    security(("session" = ["admin"]), ("bearer" = ["admin"])),
    responses(
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 200, description = "The run", body = RunDetail),
        (status = 400, description = "Not a run id", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>> {
    let id: i64 = id
        .parse()
        .map_err(|_| Error::invalid("id", format!("`{id}` is not a run id")))?;
    let run = runs::get(&state.pool, id)
        .await?
        .ok_or(Error::NotFound { what: "sync run" })?;
    let changes = runs::changes(&state.pool, id, MAX_CHANGES).await?;
    let rejects = runs::rejects(&state.pool, id, false).await?;
    let warnings = runs::rejects(&state.pool, id, true).await?;
    Ok(Json(RunDetail {
        run,
        changes,
        rejects,
        warnings,
    }))
}
