//! `/api/v1/auth/app-passwords`: a signed-in person's passwords for clients that only know a
//! name and a password (a phone's CardDAV or LDAP account).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use crate::access::app_passwords::{self, AppPasswordInfo};
use crate::access::Principal;
use crate::audit::AuditEvent;
use crate::error::{Error, Result};

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(create_app_password, list_app_passwords))
        .routes(routes!(revoke_app_password))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewAppPassword {
    /// What it is for, to recognise it later ("Jane's iPhone").
    #[schema(min_length = 1, max_length = 100)]
    pub label: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAppPassword {
    /// The name to give the client (with the server's address: CardDAV, or an LDAP bind DN
    /// `cn=<login>`).
    pub login: String,
    /// Shown this once.
    pub password: String,
    pub label: String,
}

/// Make an app password (signed-in people only; never above the receptionist role).
#[utoipa::path(
    post,
    path = "/api/v1/auth/app-passwords",
    tag = "auth",
    request_body = NewAppPassword,
    security(("session" = ["viewer"])),
    responses(
        (status = 201, description = "Made: the password is shown this once", body = CreatedAppPassword),
        (status = 400, description = "Invalid label, or too many app passwords", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a person (a service token), or missing CSRF token", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_app_password(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: std::result::Result<Json<NewAppPassword>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedAppPassword>)> {
    let Json(request) = body.map_err(super::error::json_body)?;
    let (login, password) = app_passwords::create(&state.pool, &principal, &request.label).await?;
    state.audit.record(
        AuditEvent::new(state.access.now(), &principal.name, "app_password.create")
            .query(format!("login={login}"))
            .status(201),
    );
    Ok((
        StatusCode::CREATED,
        Json(CreatedAppPassword {
            login,
            password,
            label: request.label.trim().to_string(),
        }),
    ))
}

/// The caller's app passwords (never the passwords).
#[utoipa::path(
    get,
    path = "/api/v1/auth/app-passwords",
    tag = "auth",
    security(("session" = ["viewer"])),
    responses(
        (status = 200, description = "The caller's app passwords", body = Vec<AppPasswordInfo>),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_app_passwords(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Vec<AppPasswordInfo>>> {
    Ok(Json(
        app_passwords::list(&state.pool, &principal.name).await?,
    ))
}

/// Revoke one of the caller's app passwords: refused from then on.
#[utoipa::path(
    delete,
    path = "/api/v1/auth/app-passwords/{login}",
    tag = "auth",
    params(("login" = String, Path, description = "The app password's login", max_length = 64)),
    security(("session" = ["viewer"])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing CSRF token", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The caller has no app password by that login", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_app_password(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(login): Path<String>,
) -> Result<StatusCode> {
    if !app_passwords::revoke(&state.pool, &principal.name, &login).await? {
        return Err(Error::NotFound {
            what: "app password",
        });
    }
    state.audit.record(
        AuditEvent::new(state.access.now(), &principal.name, "app_password.revoke")
            .query(format!("login={login}"))
            .status(204),
    );
    Ok(StatusCode::NO_CONTENT)
}
