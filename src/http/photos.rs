//! `/api/v1/photos/{digest}`: pictures read from directories (`jpegPhoto`, `thumbnailPhoto`).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;

use super::AppState;
use crate::access::{PersonField, Principal, Role};
use crate::error::{Error, Result};

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(get_photo))
}

/// Whether the caller may see this photo: it belongs to someone they may see, whose photo their
/// policy shows. Photos of people removed from every source are for admins only.
async fn may_see(state: &AppState, principal: &Principal, digest: &str) -> Result<bool> {
    if principal.role == Role::Admin
        && principal.policy.shows(PersonField::Photo)
        && principal.policy.scope.is_everyone()
    {
        return Ok(true);
    }
    if !principal.policy.shows(PersonField::Photo) {
        return Ok(false);
    }
    type Owner = (Option<String>, Option<String>, Option<String>, Option<bool>);
    let owners: Vec<Owner> = sqlx::query_as(
        "SELECT department, location, org_unit, COALESCE(partner_sharing_own, partner_sharing) FROM people \
         WHERE photo_url = $1 AND deleted_at IS NULL LIMIT 100",
    )
    .bind(crate::domain::Photo::url_of(digest))
    .fetch_all(&state.pool)
    .await?;
    Ok(owners
        .into_iter()
        .any(|(department, location, org_unit, partner_sharing)| {
            principal
                .policy
                .admits_summary(&crate::domain::PersonSummary {
                    id: uuid::Uuid::nil(),
                    display_name: String::new(),
                    given_name: None,
                    family_name: None,
                    nicknames: Vec::new(),
                    title: None,
                    department,
                    org_unit,
                    location,
                    phones: Vec::new(),
                    emails: Vec::new(),
                    im: Vec::new(),
                    partner_sharing,
                    photo_url: None,
                    presence: None,
                    absence: None,
                })
        }))
}

/// A person's photo, by the digest in their `photo_url`. Immutable: a new photo has a new digest.
#[utoipa::path(
    get,
    path = "/api/v1/photos/{digest}",
    tag = "people",
    params(("digest" = String, Path, description = "Digest from a person's photo_url", pattern = "^[0-9a-f]{32}$")),
    security(("session" = ["viewer"]), ("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The picture", content_type = "image/jpeg"),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such photo", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_photo(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(digest): Path<String>,
) -> Result<impl IntoResponse> {
    if digest.len() != 32 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::NotFound { what: "photo" });
    }
    if !may_see(&state, &principal, &digest).await? {
        return Err(Error::NotFound { what: "photo" });
    }
    let (content_type, bytes): (String, Vec<u8>) =
        sqlx::query_as("SELECT content_type, bytes FROM photos WHERE digest = $1")
            .bind(&digest)
            .fetch_optional(&state.pool)
            .await?
            .ok_or(Error::NotFound { what: "photo" })?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable".to_string(),
            ),
        ],
        bytes,
    ))
}
