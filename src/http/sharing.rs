//! `/api/v1/me/sharing`: whether partner companies may see the signed-in person. Their own
//! choice wins over what their sources say; a search reflects it as soon as the indexer has
//! read the change (it is logged like any change to a person).

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use crate::access::Principal;
use crate::audit::AuditEvent;
use crate::db::{CHANGES_CHANNEL, WRITE_LOCK_KEY};
use crate::domain::Consent;
use crate::error::{Error, Result};

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new().routes(routes!(get_sharing, put_sharing))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Sharing {
    /// Your own choice: `true` shown to partners, `false` hidden; absent: as your sources say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own: Option<bool>,
    /// What your sources say (`partner_sharing` in their mapping), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<bool>,
    /// Whether partners see you: partners that show everyone who has not opted out do unless
    /// this is `false`; partners that show only those who opted in, when it is `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<bool>,
    /// The server's default for people who made no choice.
    pub default: Consent,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharingRequest {
    /// `true` to be shown to partners, `false` to be hidden, `null` to leave it to your sources.
    pub own: Option<bool>,
}

async fn current(state: &AppState, principal: &Principal) -> Result<Sharing> {
    let id = principal.person_id.ok_or_else(|| {
        Error::Forbidden(
            "only a signed-in person who is in the directory (by email) has a choice to make"
                .into(),
        )
    })?;
    let row: Option<(Option<bool>, Option<bool>)> = sqlx::query_as(
        "SELECT partner_sharing_own, partner_sharing FROM people WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_optional(&state.pool)
    .await?;
    let (own, source) = row.ok_or(Error::NotFound { what: "person" })?;
    Ok(Sharing {
        own,
        source,
        effective: own.or(source),
        default: state.access.partners.consent,
    })
}

/// Whether partners may see you.
#[utoipa::path(
    get,
    path = "/api/v1/me/sharing",
    tag = "people",
    security(("session" = ["viewer"])),
    responses(
        (status = 200, description = "Your choice, your sources', and the default", body = Sharing),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a person in the directory", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_sharing(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Sharing>> {
    Ok(Json(current(&state, &principal).await?))
}

/// Opt in to or out of the shared directory, or leave it to your sources.
#[utoipa::path(
    put,
    path = "/api/v1/me/sharing",
    tag = "people",
    request_body = SharingRequest,
    security(("session" = ["viewer"])),
    responses(
        (status = 200, description = "Saved", body = Sharing),
        (status = 400, description = "Not a choice", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a person in the directory, or missing CSRF token", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_sharing(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: std::result::Result<Json<SharingRequest>, JsonRejection>,
) -> Result<Json<Sharing>> {
    let Json(request) = body.map_err(super::error::json_body)?;
    let before = current(&state, &principal).await?;
    let id = principal
        .person_id
        .ok_or(Error::NotFound { what: "person" })?;
    if before.own != request.own {
        // Written as people's changes are (one writer at a time), so the indexer sees it.
        let mut tx = state.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE people SET partner_sharing_own = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(request.own)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO change_log (person_id, kind) VALUES ($1, 'updated')")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_notify($1, 'sharing')")
            .bind(CHANGES_CHANNEL)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        state.audit.record(
            AuditEvent::new(state.access.now(), &principal.name, "sharing.set")
                .query(format!(
                    "own={}",
                    request.own.map_or("none".into(), |b| b.to_string())
                ))
                .status(200),
        );
    }
    Ok(Json(current(&state, &principal).await?))
}
