//! `/api/v1/people/{id}/team`: who is around a person, for putting a call through: their
//! managers up to the top, their direct reports, the colleagues who share their manager, and
//! the first of those available right now ("reach instead"). The org chart opens one person's
//! team at a time, so a million people are never read at once.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::ReturnedPeople;
use super::AppState;
use crate::access::{PersonField, Principal};
use crate::db::people::{self, ScopeParams};
use crate::domain::PersonSummary;
use crate::error::{Error, Result};
use crate::presence::Availability;

/// Longest manager chain followed (a cycle in the source stops here too).
pub const MAX_CHAIN: i32 = 32;
/// Direct reports listed (the count says how many there are in all).
pub const MAX_REPORTS: i64 = 100;
/// Colleagues with the same manager listed.
pub const MAX_TEAM: i64 = 50;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new().routes(routes!(get_team))
}

/// Why `reach_instead` was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReachReason {
    /// Their deputy.
    Deputy,
    /// Their manager.
    Manager,
    /// A colleague with the same manager.
    Team,
    /// One of their direct reports.
    Report,
}

/// The people around one person, each with presence, in scope only.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Team {
    /// Who takes their calls when they cannot (set in Switchboard by them or reception).
    pub deputy: Option<PersonSummary>,
    /// Their manager first, then that manager's, up to the top (at most 32).
    pub chain: Vec<PersonSummary>,
    /// Their direct reports by name (at most 100).
    pub reports: Vec<PersonSummary>,
    /// How many direct reports they have in all.
    pub reports_total: i64,
    /// Others with the same manager, by name (at most 50).
    pub team: Vec<PersonSummary>,
    /// How many others share their manager in all.
    pub team_total: i64,
    /// The first available now (and without an absence note) of: their deputy, their manager,
    /// their team, their reports.
    pub reach_instead: Option<PersonSummary>,
    pub reach_reason: Option<ReachReason>,
}

/// The people each of `managers` manages (other than `except`, and other than the manager, who
/// may be their own in a source), in scope, by name: the first `limit` ids of each and how many
/// in all. One query for any number of managers (a board of teams asks for fifty).
pub(super) async fn managed_by(
    pool: &PgPool,
    managers: &[Uuid],
    except: Option<Uuid>,
    scope: &ScopeParams,
    limit: i64,
) -> Result<HashMap<Uuid, (Vec<Uuid>, i64)>> {
    let rows: Vec<(Uuid, Uuid, i64)> = scope
        .bind(
            sqlx::query_as(&format!(
                "SELECT manager_id, id, total FROM ( \
                     SELECT manager_id, id, count(*) OVER w AS total, \
                            row_number() OVER (w ORDER BY display_name, id) AS n \
                     FROM people \
                     WHERE manager_id = ANY($1) AND id <> manager_id AND deleted_at IS NULL \
                       AND {} AND id IS DISTINCT FROM $6 \
                     WINDOW w AS (PARTITION BY manager_id)) t \
                 WHERE n <= $7 ORDER BY manager_id, n",
                people::in_scope(2)
            ))
            .bind(managers),
        )
        .bind(except)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    let mut managed: HashMap<Uuid, (Vec<Uuid>, i64)> = HashMap::new();
    for (manager, id, total) in rows {
        let entry = managed.entry(manager).or_default();
        entry.0.push(id);
        entry.1 = total;
    }
    Ok(managed)
}

/// `id`'s managers, nearest first; the chain stops at the first one out of scope (and where
/// the source's managers go round in a circle).
async fn managers_of(pool: &PgPool, id: Uuid, scope: &ScopeParams) -> Result<Vec<Uuid>> {
    let rows: Vec<(Uuid, bool)> = scope
        .bind(
            sqlx::query_as(&format!(
                "WITH RECURSIVE chain(id, manager_id, depth) AS ( \
                     SELECT id, manager_id, 0 FROM people WHERE id = $1 \
                     UNION ALL \
                     SELECT p.id, p.manager_id, c.depth + 1 FROM people p \
                     JOIN chain c ON p.id = c.manager_id \
                     WHERE p.deleted_at IS NULL AND c.depth < $6) \
                 SELECT c.id, {} FROM chain c JOIN people USING (id) \
                 WHERE c.depth > 0 ORDER BY c.depth",
                people::in_scope(2)
            ))
            .bind(id),
        )
        .bind(MAX_CHAIN)
        .fetch_all(pool)
        .await?;
    let mut chain = Vec::with_capacity(rows.len());
    for (manager, admitted) in rows {
        if !admitted || manager == id || chain.contains(&manager) {
            break;
        }
        chain.push(manager);
    }
    Ok(chain)
}

/// Everyone around a person: managers up the chain, direct reports, the team sharing their
/// manager, and who to put a call through to when they cannot take it.
#[utoipa::path(
    get,
    path = "/api/v1/people/{id}/team",
    tag = "people",
    params(("id" = uuid::Uuid, Path, description = "Person id")),
    security(("session" = ["viewer"]), ("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "Their managers, reports and team, with presence", body = Team),
        (status = 400, description = "Not a UUID", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person, or deleted", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_team(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<(Extension<ReturnedPeople>, Json<Team>)> {
    let id = super::notes::parse_id(&id)?;
    let person = crate::db::people::get_person(&state.pool, id)
        .await?
        .filter(|p| principal.policy.admits_person(p))
        .ok_or(Error::NotFound { what: "person" })?;
    let mut team = Team {
        deputy: super::deputies::of(&state, &principal, id).await?,
        chain: Vec::new(),
        reports: Vec::new(),
        reports_total: 0,
        team: Vec::new(),
        team_total: 0,
        reach_instead: None,
        reach_reason: None,
    };
    // Who manages whom is the manager field: hidden from a policy that hides managers.
    if principal.policy.shows(PersonField::Manager) {
        let scope = ScopeParams::of(&principal.policy.scope);
        let chain = managers_of(&state.pool, id, &scope).await?;
        let (reports, reports_total) = managed_by(&state.pool, &[id], None, &scope, MAX_REPORTS)
            .await?
            .remove(&id)
            .unwrap_or_default();
        let (peers, team_total) = match chain.first() {
            Some(&manager) => managed_by(&state.pool, &[manager], Some(id), &scope, MAX_TEAM)
                .await?
                .remove(&manager)
                .unwrap_or_default(),
            None => (Vec::new(), 0),
        };
        // Everyone at once (one read of people, presence and notes), then into their lists.
        let everyone: Vec<Uuid> = chain
            .iter()
            .chain(&reports)
            .chain(&peers)
            .copied()
            .collect();
        let found: std::collections::HashMap<Uuid, PersonSummary> =
            summaries(&state, &principal, &everyone)
                .await?
                .into_iter()
                .map(|p| (p.id, p))
                .collect();
        let take = |ids: &[Uuid]| -> Vec<PersonSummary> {
            ids.iter().filter_map(|id| found.get(id).cloned()).collect()
        };
        team.chain = take(&chain);
        team.reports = take(&reports);
        team.team = take(&peers);
        team.reports_total = reports_total;
        team.team_total = team_total;
    }
    // Available, and not away by a note ("on parental leave") whatever their status says.
    let available = |p: &&PersonSummary| {
        p.absence.is_none()
            && p.presence
                .as_ref()
                .is_some_and(|p| p.availability == Availability::Available)
    };
    let candidates = [
        (ReachReason::Deputy, team.deputy.as_ref()),
        (ReachReason::Manager, team.chain.first()),
        (ReachReason::Team, team.team.iter().find(available)),
        (ReachReason::Report, team.reports.iter().find(available)),
    ];
    if let Some((reason, who)) = candidates
        .into_iter()
        .find_map(|(reason, who)| who.filter(available).map(|who| (reason, who)))
    {
        team.reach_instead = Some(who.clone());
        team.reach_reason = Some(reason);
    }
    let returned = std::iter::once(person.id)
        .chain(team.deputy.iter().map(|p| p.id))
        .chain(team.chain.iter().map(|p| p.id))
        .chain(team.reports.iter().map(|p| p.id))
        .chain(team.team.iter().map(|p| p.id))
        .collect();
    Ok((Extension(ReturnedPeople(returned)), Json(team)))
}

/// These people as the caller may see them, in this order, with presence and absence notes.
pub async fn summaries(
    state: &AppState,
    principal: &Principal,
    ids: &[Uuid],
) -> Result<Vec<PersonSummary>> {
    let mut items: Vec<PersonSummary> = crate::db::people::get_many(&state.pool, ids)
        .await?
        .into_iter()
        .filter_map(|p| principal.policy.person(p))
        .map(|p| PersonSummary::from(&p))
        .collect();
    state.presence.decorate_summaries(&mut items);
    for item in &mut items {
        item.presence = principal.policy.presence(item.presence.take());
    }
    super::notes::decorate(state, principal, &mut items).await?;
    Ok(items)
}
