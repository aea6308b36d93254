//! `/api/v1/presence`: webhook events in, merged presence out (one lookup, or a Server-Sent
//! Events stream of changes), and the presence lines of `/metrics`.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use futures_util::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::ReturnedPeople;
use super::AppState;
use crate::access::partners::Partner;
use crate::access::Principal;
use crate::error::{Error, Result};
use crate::presence::webhook::{WebhookError, WebhookRequest};
use crate::presence::{PresenceChange, PresenceHub};

/// Largest webhook request body.
pub const MAX_EVENTS_BODY: usize = 1024 * 1024;

/// At most this many people per lookup or stream.
pub const MAX_IDS: usize = 1000;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(get_presence))
        .merge(
            // Webhook batches may be larger than the default body limit.
            utoipa_axum::router::OpenApiRouter::new()
                .routes(routes!(post_presence_events))
                .layer(axum::extract::DefaultBodyLimit::max(MAX_EVENTS_BODY)),
        )
        .routes(routes!(stream_presence))
        .routes(routes!(stream_shared_presence))
        .routes(routes!(stream_peer_presence))
        .routes(routes!(metrics))
}

/// The requested people the caller may see, in request order. Without a scope, everyone (an id
/// nobody has answers `unknown`, as before); with one, ids outside it are dropped, exactly as
/// ids nobody has would be if they were.
async fn visible(state: &AppState, principal: &Principal, ids: Vec<Uuid>) -> Result<Vec<Uuid>> {
    let scope = &principal.policy.scope;
    if scope.is_everyone() {
        return Ok(ids);
    }
    let params = crate::db::people::ScopeParams::of(scope);
    let sql = format!(
        "SELECT id FROM people WHERE id = ANY($1) AND deleted_at IS NULL AND {}",
        crate::db::people::in_scope(2)
    );
    let allowed: HashSet<Uuid> = params
        .bind(sqlx::query_as::<_, (Uuid,)>(&sql).bind(&ids))
        .fetch_all(&state.pool)
        .await?
        .into_iter()
        .map(|(id,)| id)
        .collect();
    Ok(ids.into_iter().filter(|id| allowed.contains(id)).collect())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdsParams {
    /// Person ids (UUIDs), comma-separated, at most 1000.
    #[param(
        max_length = 36999,
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(,[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})*$"
    )]
    pub ids: String,
}

/// The ids of a request, in order, without repeats. Linear in the input: the count is checked
/// before anything is parsed, and repeats are found with a set.
fn parse_ids(raw: &str) -> Result<Vec<Uuid>> {
    let parts: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .take(MAX_IDS * 2 + 1)
        .collect();
    if parts.len() > MAX_IDS * 2 {
        return Err(Error::invalid("ids", format!("at most {MAX_IDS} ids")));
    }
    let mut seen = HashSet::with_capacity(parts.len());
    let mut ids = Vec::with_capacity(parts.len());
    for part in parts {
        let id = Uuid::parse_str(part)
            .map_err(|_| Error::invalid("ids", format!("`{part}` is not a UUID")))?;
        if seen.insert(id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err(Error::invalid("ids", "give at least one person id"));
    }
    if ids.len() > MAX_IDS {
        return Err(Error::invalid("ids", format!("at most {MAX_IDS} ids")));
    }
    Ok(ids)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PresenceResponse {
    /// One entry per requested id, in request order.
    pub items: Vec<PresenceChange>,
}

/// Merged presence of some people, from the cache.
#[utoipa::path(
    get,
    path = "/api/v1/presence",
    tag = "presence",
    params(IdsParams),
    security(("session" = ["viewer"]), ("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "Presence per person", body = PresenceResponse),
        (status = 400, description = "Invalid ids", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_presence(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    params: std::result::Result<Query<IdsParams>, QueryRejection>,
) -> Result<(Extension<ReturnedPeople>, Json<PresenceResponse>)> {
    let Query(params) = params.map_err(|e| Error::invalid("ids", e.body_text()))?;
    let ids = visible(&state, &principal, parse_ids(&params.ids)?).await?;
    let items: Vec<PresenceChange> = ids
        .iter()
        .map(|&id| PresenceChange {
            id,
            presence: principal
                .policy
                .presence(Some(state.presence.lookup(id)))
                .unwrap_or_else(crate::presence::Presence::unknown),
        })
        .collect();
    Ok((
        Extension(ReturnedPeople(ids)),
        Json(PresenceResponse { items }),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventsAccepted {
    /// Events stored.
    pub accepted: usize,
}

/// Presence events from a webhook backend (a PBX, a calendar…), authenticated with its bearer token.
#[utoipa::path(
    post,
    path = "/api/v1/presence/events",
    tag = "presence",
    request_body = WebhookRequest,
    security(("webhook" = [])),
    responses(
        (status = 200, description = "Events accepted", body = EventsAccepted),
        (status = 400, description = "Malformed body or event; nothing was stored", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn post_presence_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: std::result::Result<Json<WebhookRequest>, JsonRejection>,
) -> Result<Json<EventsAccepted>> {
    // The token is checked before the body, so a caller without one learns nothing about the format.
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Unauthorized("send `Authorization: Bearer <token>`".into()))?;
    if !state.presence.has_webhook_token(token) {
        return Err(Error::Unauthorized(
            "no webhook backend has this token".into(),
        ));
    }
    let Json(request) = body.map_err(super::error::json_body)?;
    let accepted = state
        .presence
        .ingest_webhook(token, request.events)
        .map_err(|e| match e {
            WebhookError::Unauthorized => Error::Unauthorized(e.to_string()),
            WebhookError::Invalid(why) => Error::invalid("body", why),
        })?;
    Ok(Json(EventsAccepted { accepted }))
}

/// The event of a change, under the id the caller knows the person by (a partner's own).
fn event_of(change: &PresenceChange, partner: Option<&Partner>) -> Event {
    let shown;
    let change = match partner {
        Some(p) => {
            shown = PresenceChange {
                id: p.public_id(change.id),
                presence: change.presence.clone(),
            };
            &shown
        }
        None => change,
    };
    Event::default()
        .event("presence")
        .id(change.id.to_string())
        .json_data(change)
        .unwrap_or_else(|_| Event::default().comment("unserializable"))
}

fn snapshot(
    hub: &PresenceHub,
    policy: &crate::access::Policy,
    ids: &[Uuid],
    partner: Option<&Partner>,
) -> Vec<std::result::Result<Event, Infallible>> {
    ids.iter()
        .map(|&id| {
            Ok(event_of(
                &PresenceChange {
                    id,
                    presence: policy
                        .presence(Some(hub.lookup(id)))
                        .unwrap_or_else(crate::presence::Presence::unknown),
                },
                partner,
            ))
        })
        .collect()
}

/// Server-Sent Events: first the current presence of each person (`event: presence`), then every
/// change as it happens. Each event's data is `{"id": …, "presence": {…}}`. When someone's
/// absence or status note is set or cleared here, `event: notes` with `{"id": …, "absence": …,
/// "status": …}` (for callers who may see notes).
#[utoipa::path(
    get,
    path = "/api/v1/presence/stream",
    tag = "presence",
    params(IdsParams),
    security(("session" = ["viewer"]), ("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "An endless `text/event-stream`", body = String, content_type = "text/event-stream"),
        (status = 400, description = "Invalid ids", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many streams open for this caller", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn stream_presence(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    params: std::result::Result<Query<IdsParams>, QueryRejection>,
) -> Result<(
    Extension<ReturnedPeople>,
    Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>,
)> {
    let Query(params) = params.map_err(|e| Error::invalid("ids", e.body_text()))?;
    let ids = parse_ids(&params.ids)?;
    open_stream(state, principal, ids, None).await
}

/// Server-Sent Events of the presence of people a partner found, by its ids for them: first
/// their current presence at the partner's level (`event: presence`), then each change. People
/// outside the partner's agreement are left out, as if they did not exist.
#[utoipa::path(
    get,
    path = "/shared/v1/presence/stream",
    tag = "shared",
    params(IdsParams),
    security(("partner" = [])),
    responses(
        (status = 200, description = "An endless `text/event-stream`", body = String, content_type = "text/event-stream"),
        (status = 400, description = "Invalid ids", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a partner key, or presence is not part of the agreement", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many streams open for this partner", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn stream_shared_presence(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(partner): Extension<Arc<Partner>>,
    headers: HeaderMap,
    params: std::result::Result<Query<IdsParams>, QueryRejection>,
) -> Result<(
    Extension<ReturnedPeople>,
    Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>,
)> {
    if principal.policy.presence == crate::access::PresenceLevel::None {
        return Err(Error::Forbidden(
            "presence is not part of your agreement".into(),
        ));
    }
    let Query(params) = params.map_err(|e| Error::invalid("ids", e.body_text()))?;
    let ids = parse_ids(&params.ids)?
        .into_iter()
        .map(|id| partner.our_id(id))
        .collect();
    let key = super::auth::bearer(&headers)
        .unwrap_or_default()
        .to_string();
    open_stream(state, principal, ids, Some(key)).await
}

/// A partner's presence stream for people its search returned (`peers=` on the search),
/// relayed as it comes: their presence, at the level they allow us, under their ids.
#[utoipa::path(
    get,
    path = "/api/v1/peers/{peer}/presence/stream",
    tag = "presence",
    params(("peer" = String, Path, description = "A configured `[[federation.peers]]` name", max_length = 64), IdsParams),
    security(("session" = ["viewer"]), ("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "An endless `text/event-stream`, as the peer sends it", body = String, content_type = "text/event-stream"),
        (status = 400, description = "Invalid ids", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such peer", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many streams open for this caller", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 502, description = "The peer refused or could not be reached (`directory_unavailable`)", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn stream_peer_presence(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    axum::extract::Path(peer): axum::extract::Path<String>,
    params: std::result::Result<Query<IdsParams>, QueryRejection>,
) -> Result<axum::response::Response> {
    let Query(params) = params.map_err(|e| Error::invalid("ids", e.body_text()))?;
    let ids: Vec<String> = parse_ids(&params.ids)?
        .iter()
        .map(Uuid::to_string)
        .collect();
    let peer = state
        .federation
        .peer(&peer)
        .cloned()
        .ok_or(Error::NotFound { what: "peer" })?;
    let slot = state.access.stream_slot(&principal.name)?;
    let upstream = state
        .federation
        .presence_stream(&peer, &ids.join(","))
        .await
        .map_err(|why| Error::Directory {
            source_name: peer.name.clone(),
            reason: why,
        })?;
    let stop = state.presence.stop_signal();
    // The slot is held as long as the relay runs.
    let relay = stream::unfold(
        (upstream, stop, slot),
        |(mut upstream, mut stop, slot)| async move {
            let next = tokio::select! {
                next = upstream.chunk() => next,
                _ = crate::presence::stopped(&mut stop) => return None,
            };
            match next {
                Ok(Some(bytes)) => Some((Ok::<_, std::io::Error>(bytes), (upstream, stop, slot))),
                _ => None,
            }
        },
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(relay),
    )
        .into_response())
}

/// How often a partner's open stream checks its key and its people again: a revoked key ends
/// it, a person who opted out or left its scope drops out of it.
const PARTNER_RECHECK: Duration = Duration::from_secs(30);

/// What a presence stream carries between events.
struct Following {
    rx: tokio::sync::broadcast::Receiver<Arc<PresenceChange>>,
    /// Whose notes changed; `None` for partners (notes are staff business).
    notes: Option<tokio::sync::broadcast::Receiver<Uuid>>,
    pool: sqlx::PgPool,
    stop: tokio::sync::watch::Receiver<bool>,
    hub: PresenceHub,
    ids: Vec<Uuid>,
    wanted: HashSet<Uuid>,
    principal: Principal,
    /// Held by the stream: released when it ends or the client goes away.
    _slot: crate::access::StreamSlot,
    /// A partner's stream: its key, checked again every `PARTNER_RECHECK`.
    recheck: Option<(AppState, String)>,
}

impl Following {
    fn partner(&self) -> Option<&Partner> {
        self.principal.partner.as_deref()
    }

    /// False when the partner's key no longer opens anything; else its people, refreshed.
    async fn still_allowed(&mut self) -> bool {
        let Some((state, key)) = &self.recheck else {
            return true;
        };
        match state.access.partner_of_key(key).await {
            Ok(Some(fresh)) => {
                let ids = visible(state, &fresh, self.ids.clone())
                    .await
                    .unwrap_or_default();
                self.wanted = ids.iter().copied().collect();
                self.ids = ids;
                self.principal = fresh;
                true
            }
            // Unknown: keep going until the next check.
            Err(_) => true,
            Ok(None) => false,
        }
    }
}

/// A person's notes changed: what `event: notes` carries on a staff presence stream.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct NotesChange {
    pub id: Uuid,
    /// The absence note now in force, if any.
    pub absence: Option<crate::domain::Note>,
    /// The status note now in force, if any.
    pub status: Option<crate::domain::Note>,
}

/// The next person whose notes changed; never resolves without a receiver.
async fn recv_note(notes: &mut Option<tokio::sync::broadcast::Receiver<Uuid>>) -> Option<Uuid> {
    match notes {
        Some(rx) => match rx.recv().await {
            Ok(id) => Some(id),
            Err(RecvError::Lagged(_)) => None,
            Err(RecvError::Closed) => {
                *notes = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// The presence stream of `ids` (ours) as `principal` may see it, under its partner's ids
/// when it is a partner's (whose `key` is then checked again now and then).
async fn open_stream(
    state: AppState,
    principal: Principal,
    ids: Vec<Uuid>,
    key: Option<String>,
) -> Result<(
    Extension<ReturnedPeople>,
    Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>,
)> {
    let ids = visible(&state, &principal, ids).await?;
    let slot = state.access.stream_slot(&principal.name)?;
    let returned = Extension(ReturnedPeople(ids.clone()));
    let hub = state.presence.clone();
    // Subscribe before the snapshot, so no change falls between the two.
    let rx = hub.subscribe();
    let notes = (principal.partner.is_none()
        && principal.policy.shows(crate::access::PersonField::Notes))
    .then(|| state.notes.subscribe());
    // The stream ends when the server shuts down (graceful shutdown waits for every connection).
    let stop = hub.stop_signal();
    let first = snapshot(&hub, &principal.policy, &ids, principal.partner.as_deref());
    let following = Following {
        rx,
        notes,
        pool: state.pool.clone(),
        stop,
        hub,
        wanted: ids.iter().copied().collect(),
        ids,
        recheck: key.map(|k| (state.clone(), k)),
        principal,
        _slot: slot,
    };
    let changes = stream::unfold(following, |mut f| async move {
        let mut next_check = tokio::time::Instant::now() + PARTNER_RECHECK;
        loop {
            let next = tokio::select! {
                next = f.rx.recv() => next,
                id = recv_note(&mut f.notes) => {
                    match id {
                        Some(id) if f.wanted.contains(&id) => {
                            let now = f.hub.now();
                            let Ok((absence, status)) = super::notes::in_force(&f.pool, id, now).await else {
                                continue;
                            };
                            let event = Event::default()
                                .event("notes")
                                .id(id.to_string())
                                .json_data(NotesChange { id, absence, status })
                                .unwrap_or_else(|_| Event::default().comment("unserializable"));
                            return Some((stream::iter(vec![Ok(event)]), f));
                        }
                        Some(_) => continue,
                        // Closed or behind: notes are only pushed, never the whole state again.
                        None => continue,
                    }
                }
                _ = crate::presence::stopped(&mut f.stop) => return None,
                _ = tokio::time::sleep_until(next_check), if f.recheck.is_some() => {
                    if !f.still_allowed().await {
                        return None;
                    }
                    next_check = tokio::time::Instant::now() + PARTNER_RECHECK;
                    continue;
                }
            };
            match next {
                Ok(change) if f.wanted.contains(&change.id) => {
                    let change = PresenceChange {
                        id: change.id,
                        presence: f
                            .principal
                            .policy
                            .presence(Some(change.presence.clone()))
                            .unwrap_or_else(crate::presence::Presence::unknown),
                    };
                    let batch = vec![Ok(event_of(&change, f.partner()))];
                    return Some((stream::iter(batch), f));
                }
                Ok(_) => continue,
                // Too slow to keep up: send everyone's current state again.
                Err(RecvError::Lagged(_)) => {
                    let batch = snapshot(&f.hub, &f.principal.policy, &f.ids, f.partner());
                    return Some((stream::iter(batch), f));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .flatten();
    Ok((
        returned,
        Sse::new(stream::iter(first).chain(changes))
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))),
    ))
}

/// Prometheus metrics: presence backends up, failures, people tracked.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    security(("bearer" = ["metrics"]), ("session" = ["admin"])),
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "No credentials", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Neither a service token, an admin, nor an allowed address", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.presence.metrics() + &state.access.partner_usage.metrics(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        let a = Uuid::from_u128(1);
        assert_eq!(
            parse_ids(&format!("{a}, {a},")).expect("ids"),
            vec![a],
            "duplicates and blanks dropped"
        );
        assert!(parse_ids("").is_err());
        assert!(parse_ids("nope").is_err());
        let many: Vec<String> = (0..=MAX_IDS as u128)
            .map(|i| Uuid::from_u128(i).to_string())
            .collect();
        assert!(parse_ids(&many.join(",")).is_err());
        // Ten thousand distinct ids: refused before most are even parsed.
        let ten_thousand: Vec<String> = (0..10_000u128)
            .map(|i| Uuid::from_u128(i).to_string())
            .collect();
        let started = std::time::Instant::now();
        assert!(parse_ids(&ten_thousand.join(",")).is_err());
        println!("10,000 ids refused in {:?}", started.elapsed());
        // Repeats of one id are one id (up to twice the limit of entries).
        let repeated = vec![a.to_string(); MAX_IDS * 2].join(",");
        assert_eq!(parse_ids(&repeated).expect("ids"), vec![a]);
    }
}
