//! `/api/v1/me/favourites`: each signed-in person's board of favourites (the console's
//! busy-lamp field): the people they keep an eye on, in their order, with live presence. People
//! since removed or outside the caller's scope are left out, as if they did not exist.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::ReturnedPeople;
use super::AppState;
use crate::access::{Principal, PrincipalKind};
use crate::domain::PersonSummary;
use crate::error::{Error, Result};

/// The most people one board holds.
pub const MAX_FAVOURITES: usize = 200;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new().routes(routes!(get_favourites, put_favourites))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Favourites {
    /// The people on the board, in the caller's order.
    pub items: Vec<PersonSummary>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct FavouritesRequest {
    /// The people to keep on the board, in order (at most 200; repeats count once).
    #[schema(max_items = 200)]
    pub ids: Vec<Uuid>,
}

fn person_only(principal: &Principal) -> Result<()> {
    if matches!(principal.kind, PrincipalKind::Staff | PrincipalKind::Open) {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "a board of favourites belongs to a signed-in person".into(),
        ))
    }
}

/// The board as the caller may see it now.
async fn board(state: &AppState, principal: &Principal) -> Result<Vec<PersonSummary>> {
    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT person_id FROM favourites WHERE subject = $1 ORDER BY position")
            .bind(&principal.name)
            .fetch_all(&state.pool)
            .await?;
    super::team::summaries(state, principal, &ids).await
}

/// The caller's board of favourites, with presence.
#[utoipa::path(
    get,
    path = "/api/v1/me/favourites",
    tag = "people",
    security(("session" = ["viewer"])),
    responses(
        (status = 200, description = "The board, in the caller's order", body = Favourites),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a person (a service token)", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_favourites(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<(Extension<ReturnedPeople>, Json<Favourites>)> {
    person_only(&principal)?;
    let items = board(&state, &principal).await?;
    Ok((
        Extension(ReturnedPeople(items.iter().map(|p| p.id).collect())),
        Json(Favourites { items }),
    ))
}

/// Replace the caller's board of favourites.
#[utoipa::path(
    put,
    path = "/api/v1/me/favourites",
    tag = "people",
    request_body = FavouritesRequest,
    security(("session" = ["viewer"])),
    responses(
        (status = 200, description = "The board as kept, with presence", body = Favourites),
        (status = 400, description = "Too many people, or not a list of ids", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a person (a service token), or missing CSRF token", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_favourites(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: std::result::Result<Json<FavouritesRequest>, JsonRejection>,
) -> Result<(Extension<ReturnedPeople>, Json<Favourites>)> {
    person_only(&principal)?;
    let Json(request) = body.map_err(super::error::json_body)?;
    let mut ids: Vec<Uuid> = Vec::with_capacity(request.ids.len());
    for id in request.ids {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() > MAX_FAVOURITES {
        return Err(Error::invalid(
            "ids",
            format!("at most {MAX_FAVOURITES} people on a board"),
        ));
    }
    let positions: Vec<i32> = (0..ids.len() as i32).collect();
    let mut tx = state.pool.begin().await?;
    sqlx::query("DELETE FROM favourites WHERE subject = $1")
        .bind(&principal.name)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO favourites (subject, person_id, position) \
         SELECT $1, id, position FROM unnest($2::uuid[], $3::int[]) AS f(id, position)",
    )
    .bind(&principal.name)
    .bind(&ids)
    .bind(&positions)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let items = board(&state, &principal).await?;
    Ok((
        Extension(ReturnedPeople(items.iter().map(|p| p.id).collect())),
        Json(Favourites { items }),
    ))
}
