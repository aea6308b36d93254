//! `/api/v1/photos/{digest}`: pictures read from directories (`jpegPhoto`, `thumbnailPhoto`).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::AppState;
use crate::error::{Error, Result};

pub fn router() -> Router<AppState> {
    Router::new().route("/photos/{digest}", get(get_photo))
}

/// A person's photo, by the digest in their `photo_url`. Immutable: a new photo has a new digest.
#[utoipa::path(
    get,
    path = "/api/v1/photos/{digest}",
    tag = "people",
    params(("digest" = String, Path, description = "Digest from a person's photo_url")),
    responses(
        (status = 200, description = "The picture", content_type = "image/jpeg"),
        (status = 404, description = "No such photo", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_photo(
    State(state): State<AppState>,
    Path(digest): Path<String>,
) -> Result<impl IntoResponse> {
    if digest.len() != 32 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
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
                "public, max-age=31536000, immutable".to_string(),
            ),
        ],
        bytes,
    ))
}
