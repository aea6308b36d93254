//! `/api/v1/partners`: the admin API for partner companies (as `switchboard partner …`). Admin
//! requests are audited by the guard.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use crate::access::partners::{self, KeyInfo, Partner, PartnerSettings};
use crate::error::{Error, Result};

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_partners, add_partner))
        .routes(routes!(show_partner, set_partner, revoke_partner))
        .routes(routes!(rotate_partner_key))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPartner {
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._@-]+$")]
    pub name: String,
    /// As in `PartnerSettings`: what is left out takes the `[partners]` default.
    pub fields: Option<Vec<partners::SharedField>>,
    pub presence: Option<crate::access::PresenceLevel>,
    pub scope: Option<partners::ScopeSettings>,
    pub consent: Option<crate::domain::Consent>,
    #[schema(pattern = r"^[1-9][0-9]{0,6}/(s|min|h)$")]
    pub rate: Option<String>,
    #[schema(pattern = r"^[1-9][0-9]{0,8}/day$")]
    pub quota: Option<String>,
    #[schema(pattern = r"^([0-9a-fA-F]{64})?$")]
    pub certificate_sha256: Option<String>,
}

impl NewPartner {
    fn settings(self) -> (String, PartnerSettings) {
        (
            self.name,
            PartnerSettings {
                fields: self.fields,
                presence: self.presence,
                scope: self.scope,
                consent: self.consent,
                rate: self.rate,
                quota: self.quota,
                certificate_sha256: self.certificate_sha256,
            },
        )
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerDetail {
    #[serde(flatten)]
    pub partner: Partner,
    pub keys: Vec<KeyInfo>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerKey {
    pub partner: Partner,
    /// Give this to the partner: shown this once. They send it as `Authorization: Bearer <key>`.
    pub key: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// How long the old keys keep working (`24h`, `30m`, `0s`; default `[partners] rotate_grace`).
    #[schema(pattern = r"^[0-9]{1,6}(s|m|h|d)$")]
    pub grace: Option<String>,
}

/// Partners and their policies (revoked ones too, with when).
#[utoipa::path(
    get,
    path = "/api/v1/partners",
    tag = "partners",
    security(("session" = ["admin"]), ("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Every partner", body = Vec<Partner>),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_partners(State(state): State<AppState>) -> Result<Json<Vec<Partner>>> {
    Ok(Json(partners::list(&state.pool).await?))
}

/// Add a partner; its key is in the response, once.
#[utoipa::path(
    post,
    path = "/api/v1/partners",
    tag = "partners",
    request_body = NewPartner,
    security(("session" = ["admin"]), ("bearer" = ["admin"])),
    responses(
        (status = 201, description = "Added", body = PartnerKey),
        (status = 400, description = "Invalid name, field, scope, rate or quota", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken (`conflict`)", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn add_partner(
    State(state): State<AppState>,
    body: std::result::Result<Json<NewPartner>, JsonRejection>,
) -> Result<(StatusCode, Json<PartnerKey>)> {
    let Json(new) = body.map_err(super::error::json_body)?;
    let (name, settings) = new.settings();
    let (partner, key) =
        partners::add(&state.pool, &state.access.partners, &name, &settings).await?;
    Ok((StatusCode::CREATED, Json(PartnerKey { partner, key })))
}

/// A partner, with its keys (never the keys themselves).
#[utoipa::path(
    get,
    path = "/api/v1/partners/{name}",
    tag = "partners",
    params(("name" = String, Path, max_length = 64)),
    security(("session" = ["admin"]), ("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The partner", body = PartnerDetail),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such partner, or revoked", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn show_partner(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<PartnerDetail>> {
    // A revoked partner is gone (`partner show` still tells its story).
    let partner = partners::get(&state.pool, &name)
        .await?
        .filter(|p| p.revoked_at.is_none())
        .ok_or(Error::NotFound { what: "partner" })?;
    let keys = partners::keys(&state.pool, &name).await?;
    Ok(Json(PartnerDetail { partner, keys }))
}

/// Change a partner's fields, presence, scope, consent, rate or quota.
#[utoipa::path(
    patch,
    path = "/api/v1/partners/{name}",
    tag = "partners",
    params(("name" = String, Path, max_length = 64)),
    request_body = PartnerSettings,
    security(("session" = ["admin"]), ("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Changed", body = Partner),
        (status = 400, description = "Invalid field, scope, rate or quota", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such partner", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_partner(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: std::result::Result<Json<PartnerSettings>, JsonRejection>,
) -> Result<Json<Partner>> {
    let Json(settings) = body.map_err(super::error::json_body)?;
    let partner = partners::set(&state.pool, &name, &settings).await?;
    state.access.forget_partner_keys();
    Ok(Json(partner))
}

/// Revoke a partner: every key is refused from then on.
#[utoipa::path(
    delete,
    path = "/api/v1/partners/{name}",
    tag = "partners",
    params(("name" = String, Path, max_length = 64)),
    security(("session" = ["admin"]), ("bearer" = ["admin"])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such live partner", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_partner(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    if !partners::revoke(&state.pool, &name).await? {
        return Err(Error::NotFound {
            what: "live partner",
        });
    }
    state.access.forget_partner_keys();
    Ok(StatusCode::NO_CONTENT)
}

/// A new key for a partner; the old ones keep working for the grace period, then are refused.
#[utoipa::path(
    post,
    path = "/api/v1/partners/{name}/rotate",
    tag = "partners",
    params(("name" = String, Path, max_length = 64)),
    request_body = Rotation,
    security(("session" = ["admin"]), ("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The new key, shown once", body = PartnerKey),
        (status = 400, description = "Not a duration", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such partner", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rotate_partner_key(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: std::result::Result<Json<Rotation>, JsonRejection>,
) -> Result<Json<PartnerKey>> {
    let Json(rotation) = body.map_err(super::error::json_body)?;
    let grace = rotation
        .grace
        .unwrap_or_else(|| state.access.partners.rotate_grace.clone());
    let grace = parse_grace(&grace)?;
    let key = partners::rotate(&state.pool, &name, state.access.now(), grace).await?;
    state.access.forget_partner_keys();
    let partner = partners::get(&state.pool, &name)
        .await?
        .ok_or(Error::NotFound { what: "partner" })?;
    Ok(Json(PartnerKey { partner, key }))
}

/// `24h`, `30m`, or `0s` (the old keys stop at once).
pub fn parse_grace(s: &str) -> Result<chrono::Duration> {
    humantime::parse_duration(s)
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .ok_or_else(|| Error::invalid("grace", format!("`{s}` is not a duration like 24h")))
}
