//! `/api/v1/people/{id}/deputy`: who takes a person's calls when they cannot. Switchboard keeps
//! it (directories rarely say); the person sets their own, reception anyone's in scope, as for
//! absence notes. "Reach instead" tries the deputy first. Every change is audited.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::ReturnedPeople;
use super::AppState;
use crate::access::Principal;
use crate::audit::AuditEvent;
use crate::domain::PersonSummary;
use crate::error::{Error, Result};

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new().routes(routes!(put_deputy, delete_deputy))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeputyRequest {
    /// The deputy: someone else, in the caller's scope.
    pub id: Uuid,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Deputy {
    /// The deputy as the caller may see them, with presence.
    pub deputy: PersonSummary,
}

/// `id`'s deputy, if they have one the caller may see.
pub async fn of(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<Option<PersonSummary>> {
    let deputy: Option<Uuid> =
        sqlx::query_scalar("SELECT deputy_id FROM deputies WHERE person_id = $1")
            .bind(id)
            .fetch_optional(&state.pool)
            .await?;
    let Some(deputy) = deputy else {
        return Ok(None);
    };
    Ok(super::team::summaries(state, principal, &[deputy])
        .await?
        .pop())
}

/// Name someone's deputy: their own, or anyone's in scope for reception.
#[utoipa::path(
    put,
    path = "/api/v1/people/{id}/deputy",
    tag = "people",
    params(("id" = uuid::Uuid, Path, description = "Person id")),
    request_body = DeputyRequest,
    security(("session" = ["self", "receptionist"]), ("bearer" = ["receptionist"])),
    responses(
        (status = 200, description = "The deputy, with presence", body = Deputy),
        (status = 400, description = "Bad id", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Someone else's, and not reception", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person or deputy", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The person themselves: nobody is their own deputy", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_deputy(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: std::result::Result<Json<DeputyRequest>, JsonRejection>,
) -> Result<(Extension<ReturnedPeople>, Json<Deputy>)> {
    let id = super::notes::parse_id(&id)?;
    let Json(request) = body.map_err(super::error::json_body)?;
    if request.id == id {
        return Err(Error::Conflict("nobody is their own deputy".into()));
    }
    super::notes::may_edit(&state, &principal, id).await?;
    // A deputy out of the caller's scope is nobody, as everywhere.
    let deputy = super::team::summaries(&state, &principal, &[request.id])
        .await?
        .pop()
        .ok_or(Error::NotFound { what: "deputy" })?;
    let now = state.access.now();
    sqlx::query(
        "INSERT INTO deputies (person_id, deputy_id, set_by, set_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (person_id) DO UPDATE SET deputy_id = $2, set_by = $3, set_at = $4",
    )
    .bind(id)
    .bind(deputy.id)
    .bind(&principal.name)
    .bind(now)
    .execute(&state.pool)
    .await?;
    let mut event = AuditEvent::new(now, &principal.name, "deputy.set").status(200);
    event.people = vec![id, deputy.id];
    state.audit.record(event);
    Ok((
        Extension(ReturnedPeople(vec![id, deputy.id])),
        Json(Deputy { deputy }),
    ))
}

/// Remove someone's deputy.
#[utoipa::path(
    delete,
    path = "/api/v1/people/{id}/deputy",
    tag = "people",
    params(("id" = uuid::Uuid, Path, description = "Person id")),
    security(("session" = ["self", "receptionist"]), ("bearer" = ["receptionist"])),
    responses(
        (status = 204, description = "Removed (or there was none)"),
        (status = 400, description = "Bad id", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Someone else's, and not reception", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_deputy(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id = super::notes::parse_id(&id)?;
    super::notes::may_edit(&state, &principal, id).await?;
    sqlx::query("DELETE FROM deputies WHERE person_id = $1")
        .bind(id)
        .execute(&state.pool)
        .await?;
    let mut event =
        AuditEvent::new(state.access.now(), &principal.name, "deputy.clear").status(204);
    event.people = vec![id];
    state.audit.record(event);
    Ok(StatusCode::NO_CONTENT)
}
