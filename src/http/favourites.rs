//! `/api/v1/me/favourites`: each signed-in person's board of favourites (the console's
//! busy-lamp field): the people they keep an eye on and the teams (a lead and their direct
//! reports: the executives, the IT hotline), in their order, with live presence. People since
//! removed or outside the caller's scope are left out, as if they did not exist.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use std::collections::{HashMap, HashSet};

use super::auth::ReturnedPeople;
use super::AppState;
use crate::access::{PersonField, Principal, PrincipalKind};
use crate::db::people::ScopeParams;
use crate::domain::PersonSummary;
use crate::error::{Error, Result};

/// The most people one board holds.
pub const MAX_FAVOURITES: usize = 200;
/// The most teams one board holds.
pub const MAX_TEAMS: usize = 50;
/// Members shown of each team on a board (the count says how many there are in all).
pub const MAX_MEMBERS: i64 = 50;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new().routes(routes!(get_favourites, put_favourites))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Favourites {
    /// The people on the board, in the caller's order.
    pub items: Vec<PersonSummary>,
    /// The teams on the board, in the caller's order.
    pub teams: Vec<TeamPin>,
}

/// A team on the board: its lead and the people who report to them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TeamPin {
    pub lead: PersonSummary,
    /// Their direct reports in the caller's scope, by name (at most 50; none when the caller's
    /// policy hides managers).
    pub members: Vec<PersonSummary>,
    /// How many direct reports in scope they have in all.
    pub members_total: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct FavouritesRequest {
    /// The people to keep on the board, in order (at most 200; repeats count once).
    #[schema(max_items = 200)]
    pub ids: Vec<Uuid>,
    /// The teams to keep on the board, by their lead, in order (at most 50; repeats count
    /// once). Absent: the teams stay as they are.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub teams: Option<Vec<Uuid>>,
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
async fn board(state: &AppState, principal: &Principal) -> Result<Favourites> {
    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT person_id FROM favourites WHERE subject = $1 ORDER BY position")
            .bind(&principal.name)
            .fetch_all(&state.pool)
            .await?;
    let leads: Vec<Uuid> = sqlx::query_scalar(
        "SELECT lead_id FROM favourite_teams WHERE subject = $1 ORDER BY position",
    )
    .bind(&principal.name)
    .fetch_all(&state.pool)
    .await?;
    let items = super::team::summaries(state, principal, &ids).await?;
    Ok(Favourites {
        items,
        teams: teams(state, principal, &leads).await?,
    })
}

/// These leads' teams as the caller may see them: every team's first members and counts in
/// one read, then everyone's presence and notes in one more.
async fn teams(state: &AppState, principal: &Principal, leads: &[Uuid]) -> Result<Vec<TeamPin>> {
    if leads.is_empty() {
        return Ok(Vec::new());
    }
    // Who reports to whom is the manager field: no members for a policy that hides managers.
    let mut members = if principal.policy.shows(PersonField::Manager) {
        let scope = ScopeParams::of(&principal.policy.scope);
        super::team::managed_by(&state.pool, leads, None, &scope, MAX_MEMBERS).await?
    } else {
        HashMap::new()
    };
    let everyone: Vec<Uuid> = leads
        .iter()
        .chain(members.values().flat_map(|(ids, _)| ids))
        .copied()
        .collect();
    let found: HashMap<Uuid, PersonSummary> = super::team::summaries(state, principal, &everyone)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    Ok(leads
        .iter()
        .filter_map(|lead| {
            let (ids, total) = members.remove(lead).unwrap_or_default();
            Some(TeamPin {
                lead: found.get(lead)?.clone(),
                members: ids.iter().filter_map(|id| found.get(id).cloned()).collect(),
                members_total: total,
            })
        })
        .collect())
}

/// Everyone a board shows: the people pinned, and each team's lead and members.
fn shown(board: &Favourites) -> Vec<Uuid> {
    board
        .items
        .iter()
        .chain(
            board
                .teams
                .iter()
                .flat_map(|t| std::iter::once(&t.lead).chain(&t.members)),
        )
        .map(|p| p.id)
        .collect()
}

/// Replaces `subject`'s rows of `table` with `ids`, in order.
async fn replace(
    tx: &mut sqlx::PgConnection,
    table: &str,
    column: &str,
    subject: &str,
    ids: &[Uuid],
) -> Result<()> {
    let positions: Vec<i32> = (0..ids.len() as i32).collect();
    sqlx::query(&format!("DELETE FROM {table} WHERE subject = $1"))
        .bind(subject)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO {table} (subject, {column}, position) \
         SELECT $1, id, position FROM unnest($2::uuid[], $3::int[]) AS f(id, position)"
    ))
    .bind(subject)
    .bind(ids)
    .bind(&positions)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// `ids` in order without repeats, or an error naming `field` when more than `max` remain.
fn distinct(ids: Vec<Uuid>, field: &'static str, max: usize, what: &str) -> Result<Vec<Uuid>> {
    let mut seen = HashSet::with_capacity(ids.len());
    let ids: Vec<Uuid> = ids.into_iter().filter(|id| seen.insert(*id)).collect();
    if ids.len() > max {
        return Err(Error::invalid(
            field,
            format!("at most {max} {what} on a board"),
        ));
    }
    Ok(ids)
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
    let board = board(&state, &principal).await?;
    Ok((Extension(ReturnedPeople(shown(&board))), Json(board)))
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
    let ids = distinct(request.ids, "ids", MAX_FAVOURITES, "people")?;
    let leads = request
        .teams
        .map(|teams| distinct(teams, "teams", MAX_TEAMS, "teams"))
        .transpose()?;
    let mut tx = state.pool.begin().await?;
    replace(&mut tx, "favourites", "person_id", &principal.name, &ids).await?;
    if let Some(leads) = &leads {
        replace(
            &mut tx,
            "favourite_teams",
            "lead_id",
            &principal.name,
            leads,
        )
        .await?;
    }
    tx.commit().await?;
    let board = board(&state, &principal).await?;
    Ok((Extension(ReturnedPeople(shown(&board))), Json(board)))
}
