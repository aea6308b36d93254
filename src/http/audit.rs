//! `/api/v1/audit`: the audit trail, for admins.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use crate::audit::{self, AuditRecord};
use crate::error::{Error, Result};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(list_audit))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only records at or after this time (RFC 3339).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only records after this sequence number (the `next_after` of the previous page).
    pub after: Option<i64>,
    /// Records per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditResponse {
    /// Oldest first.
    pub items: Vec<AuditRecord>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

/// The audit trail, oldest first: sign-ins, admin actions, token and user changes, every request
/// by a service, and staff lookups when `audit.staff_lookups` is on.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditParams),
    security(("session" = ["admin"]), ("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Records, oldest first", body = AuditResponse),
        (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_audit(
    State(state): State<AppState>,
    params: std::result::Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditResponse>> {
    let Query(params) = params.map_err(|e| Error::invalid("query", e.body_text()))?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid("limit", format!("must be 1 to {MAX_LIMIT}")));
    }
    let items = audit::list(&state.pool, params.since, params.after.unwrap_or(0), limit).await?;
    let next_after = (items.len() as i64 == limit)
        .then(|| items.last().map(|r| r.seq))
        .flatten();
    Ok(Json(AuditResponse { items, next_after }))
}
