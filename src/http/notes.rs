//! `/api/v1/people/{id}/notes/absence` and `…/notes/status`: notes about a person's
//! availability that Switchboard keeps. A person may set their own (`self`); receptionists and admins anyone's in
//! their scope. Every change is audited.

use std::collections::HashMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use crate::access::{Principal, Role};
use crate::audit::AuditEvent;
use crate::domain::Note;
use crate::error::{Error, Result};

/// Where servers sharing a database tell each other whose notes changed: `<server>:<person>`.
pub const NOTES_CHANNEL: &str = "switchboard_notes";

/// Whose notes changed, for open presence streams: told by this server at once, and by every
/// other server on the same database through PostgreSQL (LISTEN/NOTIFY), so a receptionist
/// behind another server of a balanced pair sees a note as soon as one set here.
#[derive(Clone)]
pub struct NotesFeed {
    local: tokio::sync::broadcast::Sender<Uuid>,
    /// This server, so that its own notices are not told twice.
    server: Uuid,
}

impl Default for NotesFeed {
    fn default() -> Self {
        NotesFeed {
            local: tokio::sync::broadcast::channel(1024).0,
            server: Uuid::new_v4(),
        }
    }
}

impl NotesFeed {
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Uuid> {
        self.local.subscribe()
    }

    /// Tells this server's streams now, and the other servers' after PostgreSQL passes it on.
    /// A lost notice costs only time: pages read notes again when they reload a card.
    async fn announce(&self, pool: &PgPool, id: Uuid) {
        let _ = self.local.send(id);
        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTES_CHANNEL)
            .bind(format!("{}:{id}", self.server))
            .execute(pool)
            .await
        {
            tracing::warn!(error = %e, "could not tell other servers of a note");
        }
    }

    /// Passes on what other servers announce until `stop` turns true. sqlx's listener
    /// reconnects by itself after the database goes away.
    pub async fn follow(self, pool: PgPool, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut listener = loop {
            match Self::listen(&pool).await {
                Ok(listener) => break listener,
                Err(e) => tracing::warn!(error = %e, "cannot listen for other servers' notes"),
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        };
        loop {
            let notice = tokio::select! {
                notice = listener.recv() => notice,
                _ = stop.wait_for(|s| *s) => return,
            };
            match notice {
                Ok(notice) => {
                    if let Some(id) = self.elsewhere_about(notice.payload()) {
                        let _ = self.local.send(id);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other servers' notes");
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    }

    async fn listen(pool: &PgPool) -> Result<sqlx::postgres::PgListener> {
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(NOTES_CHANNEL).await?;
        Ok(listener)
    }

    /// The person a notice is about, unless this server sent it (or it is not one).
    fn elsewhere_about(&self, payload: &str) -> Option<Uuid> {
        let (server, id) = payload.split_once(':')?;
        let server = Uuid::parse_str(server).ok()?;
        (server != self.server).then(|| Uuid::parse_str(id).ok())?
    }
}

/// Longest note, in characters.
pub const MAX_NOTE: usize = 500;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new().routes(routes!(put_note, delete_note))
}

/// Which note: an absence ("at the dentist, back 14:00") or a status message.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    Absence,
    Status,
}

impl NoteKind {
    fn parse(kind: &str) -> Result<NoteKind> {
        match kind {
            "absence" => Ok(NoteKind::Absence),
            "status" => Ok(NoteKind::Status),
            other => Err(Error::invalid(
                "kind",
                format!("`{other}` is not a note (absence, status)"),
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            NoteKind::Absence => "absence",
            NoteKind::Status => "status",
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NoteRequest {
    /// What callers should know ("at the dentist, back 14:00"), 1 to 500 characters (not
    /// counting spaces around it).
    #[schema(max_length = 500, pattern = r"^[^\x00]*[^\s\x00][^\x00]*$")]
    pub text: String,
    /// When it stops applying (RFC 3339); absent: until removed. A time already past ends the
    /// note of this kind at once. An empty string is no time, as absent.
    #[serde(default, deserialize_with = "empty_is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// `""` (an empty form field) reads as absent; anything else must be an RFC 3339 time.
fn empty_is_none<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(&s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(serde::de::Error::custom),
    }
}

/// Whose, which kind, text, until, set by, set at.
type NoteRow = (
    Uuid,
    String,
    String,
    Option<DateTime<Utc>>,
    String,
    DateTime<Utc>,
);

/// The notes in force for these people: absence and status, by person.
async fn in_force_of(
    pool: &PgPool,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, (Option<Note>, Option<Note>)>> {
    let rows: Vec<NoteRow> = sqlx::query_as(
        "SELECT person_id, kind, text, until, set_by, set_at FROM person_notes \
         WHERE person_id = ANY($1) AND (until IS NULL OR until > $2)",
    )
    .bind(ids)
    .bind(now)
    .fetch_all(pool)
    .await?;
    let mut notes: HashMap<Uuid, (Option<Note>, Option<Note>)> = HashMap::new();
    for (id, kind, text, until, set_by, set_at) in rows {
        let note = Some(Note {
            text,
            until,
            set_by,
            set_at,
        });
        let (absence, status) = notes.entry(id).or_default();
        match kind.as_str() {
            "absence" => *absence = note,
            _ => *status = note,
        }
    }
    Ok(notes)
}

/// The notes in force for a person, read with the person.
pub async fn in_force(
    pool: &PgPool,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(Option<Note>, Option<Note>)> {
    Ok(in_force_of(pool, &[id], now)
        .await?
        .remove(&id)
        .unwrap_or_default())
}

/// The absence notes in force for these people, on each (when the policy shows notes): what
/// a result list shows next to a name.
pub async fn decorate(
    state: &AppState,
    principal: &Principal,
    items: &mut [crate::domain::PersonSummary],
) -> Result<()> {
    if items.is_empty() || !principal.policy.shows(crate::access::PersonField::Notes) {
        return Ok(());
    }
    let ids: Vec<Uuid> = items.iter().map(|p| p.id).collect();
    let mut notes = in_force_of(&state.pool, &ids, state.access.now()).await?;
    for item in items {
        item.absence = notes.remove(&item.id).and_then(|(absence, _)| absence);
    }
    Ok(())
}

/// Whether `principal` may change `id`'s notes: their own, or anyone's in scope for reception.
/// Out of scope (or nobody) is a 404, exactly as for a lookup.
pub(super) async fn may_edit(state: &AppState, principal: &Principal, id: Uuid) -> Result<()> {
    let person = crate::db::people::get_person(&state.pool, id)
        .await?
        .and_then(|p| principal.policy.person(p))
        .ok_or(Error::NotFound { what: "person" })?;
    if principal.person_id == Some(person.id) || principal.role >= Role::Receptionist {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "only reception, or the person themselves, may change this".into(),
        ))
    }
}

async fn set(
    state: &AppState,
    principal: &Principal,
    (id, kind): (String, String),
    body: std::result::Result<Json<NoteRequest>, JsonRejection>,
) -> Result<Json<Note>> {
    let (id, kind) = (parse_id(&id)?, NoteKind::parse(&kind)?.as_str());
    let Json(request) = body.map_err(super::error::json_body)?;
    let text = request.text.trim().to_string();
    if text.is_empty() || text.chars().count() > MAX_NOTE || text.contains('\0') {
        return Err(Error::invalid(
            "text",
            format!("1 to {MAX_NOTE} characters, no NUL"),
        ));
    }
    let now = state.access.now();
    may_edit(state, principal, id).await?;
    sqlx::query(
        "INSERT INTO person_notes (person_id, kind, text, until, set_by, set_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (person_id, kind) DO UPDATE SET text = $3, until = $4, set_by = $5, set_at = $6",
    )
    .bind(id)
    .bind(kind)
    .bind(&text)
    .bind(request.until)
    .bind(&principal.name)
    .bind(now)
    .execute(&state.pool)
    .await?;
    let mut event = AuditEvent::new(now, &principal.name, &format!("{kind}.set"))
        .query(text.clone())
        .status(200);
    event.people = vec![id];
    state.audit.record(event);
    state.notes.announce(&state.pool, id).await;
    Ok(Json(Note {
        text,
        until: request.until,
        set_by: principal.name.clone(),
        set_at: now,
    }))
}

async fn clear(
    state: &AppState,
    principal: &Principal,
    (id, kind): (String, String),
) -> Result<StatusCode> {
    let (id, kind) = (parse_id(&id)?, NoteKind::parse(&kind)?.as_str());
    may_edit(state, principal, id).await?;
    sqlx::query("DELETE FROM person_notes WHERE person_id = $1 AND kind = $2")
        .bind(id)
        .bind(kind)
        .execute(&state.pool)
        .await?;
    let mut event = AuditEvent::new(
        state.access.now(),
        &principal.name,
        &format!("{kind}.clear"),
    )
    .status(204);
    event.people = vec![id];
    state.audit.record(event);
    state.notes.announce(&state.pool, id).await;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::invalid("id", format!("`{id}` is not a UUID")))
}

/// Set a note on a person: an absence ("at the dentist, back 14:00") or a status message. Their
/// own, or anyone's for reception; shown with the person until it expires.
#[utoipa::path(
    put,
    path = "/api/v1/people/{id}/notes/{kind}",
    tag = "people",
    params(
        ("id" = uuid::Uuid, Path, description = "Person id"),
        ("kind" = NoteKind, Path, description = "`absence` or `status`"),
    ),
    request_body = NoteRequest,
    security(("session" = ["self", "receptionist"]), ("bearer" = ["receptionist"])),
    responses(
        (status = 200, description = "The note in force", body = Note),
        (status = 400, description = "Bad id, kind or note", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Someone else's, and not reception", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_note(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(path): Path<(String, String)>,
    body: std::result::Result<Json<NoteRequest>, JsonRejection>,
) -> Result<Json<Note>> {
    set(&state, &principal, path, body).await
}

/// Remove a note from a person.
#[utoipa::path(
    delete,
    path = "/api/v1/people/{id}/notes/{kind}",
    tag = "people",
    params(
        ("id" = uuid::Uuid, Path, description = "Person id"),
        ("kind" = NoteKind, Path, description = "`absence` or `status`"),
    ),
    security(("session" = ["self", "receptionist"]), ("bearer" = ["receptionist"])),
    responses(
        (status = 204, description = "Removed (or there was none)"),
        (status = 400, description = "Bad id or kind", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Someone else's, and not reception", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_note(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode> {
    clear(&state, &principal, path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_passes_on_other_servers_notices_only() {
        let (feed, other) = (NotesFeed::default(), NotesFeed::default());
        let id = Uuid::now_v7();
        assert_eq!(
            feed.elsewhere_about(&format!("{}:{id}", other.server)),
            Some(id)
        );
        assert_eq!(feed.elsewhere_about(&format!("{}:{id}", feed.server)), None);
        for odd in ["", "x", &format!("{}:nope", other.server), &id.to_string()] {
            assert_eq!(feed.elsewhere_about(odd), None, "{odd}");
        }
    }
}
