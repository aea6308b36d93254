//! Matrix presence (client-server API): a service account long-polls `/sync` (presence only) and
//! reads `/presence/{userId}/status` for people the stream has not mentioned. Homeservers share
//! presence between users who share a room, so the account must share one with the people it
//! tracks (e.g. a company-wide room). Handles are `matrix:u/alice:example.org`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;
use serde::Deserialize;
use tokio::sync::watch;

use super::backend::{
    BackendError, BoxFuture, Health, HealthCell, Mode, PresenceBackend, RunContext,
};
use super::config::BackendConfig;
use super::http_client::{self, status_error, unreachable};
use super::model::{Availability, ChannelState, Observation};
use super::Clock;
use crate::error::{Error, Result};

/// How long one `/sync` long poll waits on the server.
const LONG_POLL: Duration = Duration::from_secs(25);
/// How often a live stream re-confirms the states it knows.
const REFRESH: Duration = Duration::from_secs(300);

pub struct MatrixBackend {
    homeserver: Url,
    access_token: String,
    timeout: Duration,
    http: reqwest::Client,
    long_poll: reqwest::Client,
    clock: Clock,
    /// Last state seen per tracked user id.
    known: Mutex<HashMap<String, ChannelState>>,
    /// User id → the tracked handles that name it (`matrix:u/bob:example.org?action=chat`, …).
    tracked: Mutex<HashMap<String, Vec<String>>>,
    health: HealthCell,
}

#[derive(Deserialize, Default)]
struct PresenceContent {
    presence: Option<String>,
    status_msg: Option<String>,
    last_active_ago: Option<i64>,
    currently_active: Option<bool>,
}

#[derive(Deserialize)]
struct PresenceEvent {
    sender: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    content: PresenceContent,
}

#[derive(Deserialize)]
struct SyncResponse {
    next_batch: String,
    #[serde(default)]
    presence: Option<PresenceEvents>,
}

#[derive(Deserialize)]
struct PresenceEvents {
    #[serde(default)]
    events: Vec<PresenceEvent>,
}

/// `matrix:u/alice:example.org` (or `@alice:example.org`) → `@alice:example.org`.
pub fn user_id(handle: &str) -> Option<String> {
    let rest = handle
        .strip_prefix("matrix:u/")
        .or_else(|| handle.strip_prefix('@'))?;
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (local, server) = rest.split_once(':')?;
    (!local.is_empty() && !server.is_empty()).then(|| format!("@{local}:{server}"))
}

#[cfg(test)]
fn handle_of(user_id: &str) -> String {
    format!("matrix:u/{}", user_id.trim_start_matches('@'))
}

fn map_presence(content: &PresenceContent, now: DateTime<Utc>) -> ChannelState {
    let availability = match content.presence.as_deref() {
        Some("online") => Availability::Available,
        Some("unavailable") => Availability::Away,
        Some("offline") => Availability::Offline,
        _ => Availability::Unknown,
    };
    let mut state = ChannelState::new(availability, now);
    state.status_message = content
        .status_msg
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    // Online but not currently active: the client reports the person idle.
    state.idle = availability == Availability::Available && content.currently_active == Some(false);
    let _ = content.last_active_ago;
    state
}

impl MatrixBackend {
    pub fn new(config: &BackendConfig, clock: Clock) -> Result<MatrixBackend> {
        let homeserver = config.homeserver.clone().unwrap_or_default();
        let homeserver = Url::parse(&homeserver).map_err(|e| {
            Error::Config(format!(
                "presence backend {}: homeserver `{homeserver}`: {e}",
                config.name
            ))
        })?;
        let timeout = config.timeout();
        Ok(MatrixBackend {
            homeserver,
            access_token: config.access_token.clone().unwrap_or_default(),
            timeout,
            http: http_client::client(timeout),
            long_poll: reqwest::Client::builder()
                .connect_timeout(timeout)
                .timeout(LONG_POLL + timeout + Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            clock,
            known: Mutex::new(HashMap::new()),
            tracked: Mutex::new(HashMap::new()),
            health: HealthCell::default(),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    fn url(&self, segments: &[&str]) -> std::result::Result<Url, BackendError> {
        let mut url = self.homeserver.clone();
        url.path_segments_mut()
            .map_err(|_| BackendError::Protocol("homeserver URL cannot have paths".into()))?
            .pop_if_empty()
            .extend(["_matrix", "client", "v3"])
            .extend(segments);
        Ok(url)
    }

    async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        response: reqwest::Response,
        what: &str,
    ) -> std::result::Result<T, BackendError> {
        let status = response.status();
        if !status.is_success() {
            return Err(status_error(status, response.headers(), self.now()));
        }
        let bytes = response.bytes().await.map_err(unreachable)?;
        serde_json::from_slice(&bytes).map_err(|e| BackendError::Protocol(format!("{what}: {e}")))
    }

    async fn status(&self, user: &str) -> std::result::Result<ChannelState, BackendError> {
        let request = self
            .http
            .get(self.url(&["presence", user, "status"])?)
            .bearer_auth(&self.access_token)
            .send();
        let response = tokio::time::timeout(self.timeout, request)
            .await
            .map_err(|_| BackendError::Unreachable(format!("no answer within {:?}", self.timeout)))?
            .map_err(unreachable)?;
        // Someone we may not see (no shared room) or who does not exist: unknown, not a failure.
        if matches!(response.status().as_u16(), 403 | 404) {
            return Ok(ChannelState::unknown(self.now()));
        }
        let content: PresenceContent = self.json(response, "presence status").await?;
        Ok(map_presence(&content, self.now()))
    }

    async fn sync(&self, since: Option<&str>) -> std::result::Result<SyncResponse, BackendError> {
        let filter = r#"{"presence":{"types":["m.presence"]},"account_data":{"not_types":["*"]},"room":{"rooms":[]}}"#;
        let timeout = if since.is_some() {
            LONG_POLL.as_millis().to_string()
        } else {
            "0".to_string()
        };
        let mut query = vec![
            ("filter", filter),
            ("timeout", timeout.as_str()),
            // The directory's account should not appear online itself.
            ("set_presence", "offline"),
        ];
        if let Some(since) = since {
            query.push(("since", since));
        }
        let request = self
            .long_poll
            .get(self.url(&["sync"])?)
            .bearer_auth(&self.access_token)
            .query(&query)
            .send();
        let response = if since.is_none() {
            tokio::time::timeout(self.timeout * 4, request)
                .await
                .map_err(|_| BackendError::Unreachable("initial sync timed out".into()))?
        } else {
            request.await
        }
        .map_err(unreachable)?;
        self.json(response, "sync").await
    }

    /// Takes the tracked handles: rebuilds the user id → handles map and forgets the state of
    /// users nobody tracks any more.
    fn track(&self, handles: &[String]) {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for handle in handles {
            if let Some(user) = user_id(handle) {
                map.entry(user).or_default().push(handle.clone());
            }
        }
        if let Ok(mut known) = self.known.lock() {
            known.retain(|user, _| map.contains_key(user));
        }
        if let Ok(mut tracked) = self.tracked.lock() {
            *tracked = map;
        }
    }

    /// The tracked handles of a user id (none when nobody tracks them).
    fn handles_of(&self, user: &str) -> Vec<String> {
        self.tracked
            .lock()
            .ok()
            .and_then(|t| t.get(user).cloned())
            .unwrap_or_default()
    }

    /// `state` under each of `handles`.
    fn observations(handles: Vec<String>, state: &ChannelState) -> Vec<Observation> {
        handles
            .into_iter()
            .map(|handle| Observation {
                handle,
                state: state.clone(),
            })
            .collect()
    }

    /// Every known state, observed again at `now`.
    fn refreshed(&self, now: DateTime<Utc>) -> Vec<Observation> {
        let known: Vec<(String, ChannelState)> = self
            .known
            .lock()
            .map(|k| k.iter().map(|(u, s)| (u.clone(), s.clone())).collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        for (user, mut state) in known {
            state.observed_at = now;
            out.extend(Self::observations(self.handles_of(&user), &state));
        }
        out
    }

    /// Records a tracked user's state; true when it differs from the last one.
    fn remember(&self, user: &str, state: &ChannelState) -> bool {
        let Ok(mut known) = self.known.lock() else {
            return true;
        };
        let changed = known.get(user).is_none_or(|old| {
            old.availability != state.availability
                || old.status_message != state.status_message
                || old.idle != state.idle
        });
        known.insert(user.to_string(), state.clone());
        changed
    }

    /// Status of tracked people neither the stream nor an earlier call has mentioned.
    async fn unmentioned(
        &self,
        tracked: &mut watch::Receiver<Arc<Vec<String>>>,
    ) -> std::result::Result<Vec<Observation>, BackendError> {
        self.track(&tracked.borrow_and_update());
        let users: Vec<(String, Vec<String>)> = self
            .tracked
            .lock()
            .map(|t| t.iter().map(|(u, h)| (u.clone(), h.clone())).collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        for (user, handles) in users {
            let known = self
                .known
                .lock()
                .map(|k| k.contains_key(&user))
                .unwrap_or(false);
            if known {
                continue;
            }
            let state = self.status(&user).await?;
            self.remember(&user, &state);
            out.extend(Self::observations(handles, &state));
        }
        Ok(out)
    }

    async fn stream(&self, ctx: &mut RunContext, connected: &mut bool) -> Option<BackendError> {
        let mut since: Option<String> = None;
        let mut last_refresh = std::time::Instant::now();
        self.track(&ctx.tracked.borrow_and_update());
        loop {
            let next = tokio::select! {
                r = self.sync(since.as_deref()) => r,
                _ = super::stopped(&mut ctx.stop) => return None,
                changed = ctx.tracked.changed(), if since.is_some() => {
                    if changed.is_err() {
                        return None;
                    }
                    // New people to track: ask for their status (still listening for the stop
                    // signal), then resume the long poll.
                    let asked = tokio::select! {
                        r = self.unmentioned(&mut ctx.tracked) => r,
                        _ = super::stopped(&mut ctx.stop) => return None,
                    };
                    match asked {
                        Ok(observations) if !observations.is_empty() => ctx.sink.report(observations),
                        Ok(_) => {}
                        Err(e) => return Some(e),
                    }
                    continue;
                }
            };
            let response = match next {
                Ok(r) => r,
                Err(e) => return Some(e),
            };
            *connected = true;
            self.health.up(self.now());
            let now = self.now();
            let mut observations = Vec::new();
            for event in response
                .presence
                .map(|p| p.events)
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.kind == "m.presence")
            {
                // Presence of people nobody tracks is neither kept nor reported.
                let handles = self.handles_of(&event.sender);
                if handles.is_empty() {
                    continue;
                }
                let state = map_presence(&event.content, now);
                if self.remember(&event.sender, &state) {
                    observations.extend(Self::observations(handles, &state));
                }
            }
            if since.is_none() {
                let asked = tokio::select! {
                    r = self.unmentioned(&mut ctx.tracked) => r,
                    _ = super::stopped(&mut ctx.stop) => return None,
                };
                match asked {
                    Ok(more) => observations.extend(more),
                    Err(e) => return Some(e),
                }
            }
            // The stream is live: states it reported still hold. Refresh them now and then, so
            // people whose presence has not changed for a TTL do not turn unknown.
            if since.is_some() && last_refresh.elapsed() >= REFRESH {
                last_refresh = std::time::Instant::now();
                observations.extend(self.refreshed(now));
            }
            if !observations.is_empty() {
                ctx.sink.report(observations);
            }
            since = Some(response.next_batch);
        }
    }
}

impl PresenceBackend for MatrixBackend {
    fn kind(&self) -> &'static str {
        "matrix"
    }

    fn mode(&self) -> Mode {
        Mode::Push
    }

    fn run(self: Arc<Self>, mut ctx: RunContext) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut backoff = super::Backoff::new();
            loop {
                if *ctx.stop.borrow() {
                    return;
                }
                let mut connected = false;
                match self.stream(&mut ctx, &mut connected).await {
                    None => return,
                    Some(e) => {
                        tracing::warn!(homeserver = %self.homeserver, error = %e, "matrix presence sync failed");
                        self.health.down(e.to_string());
                        if let Ok(mut known) = self.known.lock() {
                            known.clear();
                        }
                        ctx.sink.all_unknown();
                    }
                }
                if connected {
                    backoff.reset();
                }
                if !backoff.wait(&mut ctx.stop).await {
                    return;
                }
            }
        })
    }

    fn fetch<'a>(
        &'a self,
        handles: &'a [String],
    ) -> BoxFuture<'a, std::result::Result<Vec<Observation>, BackendError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(handles.len());
            for handle in handles {
                let state = match user_id(handle) {
                    Some(user) => self.status(&user).await?,
                    None => ChannelState::unknown(self.now()),
                };
                out.push(Observation {
                    handle: handle.clone(),
                    state,
                });
            }
            Ok(out)
        })
    }

    fn health(&self) -> Health {
        self.health.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_become_user_ids() {
        assert_eq!(
            user_id("matrix:u/alice:example.org").as_deref(),
            Some("@alice:example.org")
        );
        assert_eq!(
            user_id("@bob:hs.example:8448").as_deref(),
            Some("@bob:hs.example:8448")
        );
        assert_eq!(user_id("matrix:r/room:example.org"), None);
        assert_eq!(user_id("matrix:u/alice"), None);
        assert_eq!(
            handle_of("@alice:example.org"),
            "matrix:u/alice:example.org"
        );
    }

    #[test]
    fn matrix_states_map_to_the_model() {
        let now = Utc::now();
        let content = |p: &str, active: Option<bool>| PresenceContent {
            presence: Some(p.into()),
            status_msg: Some(" lunch ".into()),
            last_active_ago: Some(1000),
            currently_active: active,
        };
        let s = map_presence(&content("online", Some(true)), now);
        assert_eq!((s.availability, s.idle), (Availability::Available, false));
        assert_eq!(s.status_message.as_deref(), Some("lunch"));
        assert!(map_presence(&content("online", Some(false)), now).idle);
        assert_eq!(
            map_presence(&content("unavailable", None), now).availability,
            Availability::Away
        );
        assert_eq!(
            map_presence(&content("offline", None), now).availability,
            Availability::Offline
        );
        assert_eq!(
            map_presence(&content("weird", None), now).availability,
            Availability::Unknown
        );
    }
}
