//! Webhook backend: other systems (a PBX reporting a call, a calendar reporting a meeting) POST
//! presence events to `/api/v1/presence/events` with this backend's bearer token.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use super::backend::{
    BackendError, BoxFuture, Health, HealthCell, Mode, PresenceBackend, RunContext,
};
use super::config::BackendConfig;
use super::model::{Activity, Availability, ChannelState, Observation};

/// At most this many events in one request.
pub const MAX_EVENTS: usize = 1000;
const MAX_TEXT: usize = 500;

/// One presence event.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEvent {
    /// The person's handle in the reporting system, e.g. `sip:alice@pbx.example.com` or
    /// `tel:+442079460018`.
    pub handle: String,
    /// `available`, `busy`, `do_not_disturb`, `be_right_back`, `away`, `offline` or `unknown`.
    pub availability: String,
    /// `in_call`, `in_meeting`, `presenting`, `out_of_office`, `off_work`, `free_to_chat`,
    /// `extended_away`, `urgent_only`, or any other text.
    #[serde(default)]
    pub activity: Option<String>,
    #[serde(default)]
    pub status_message: Option<String>,
    /// Until when this state holds.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub idle: bool,
    #[serde(default)]
    pub out_of_office: bool,
    /// Set by the person rather than inferred.
    #[serde(default)]
    pub manual: bool,
    /// When the reporting system saw it (default: now; never later than now).
    #[serde(default)]
    pub observed_at: Option<DateTime<Utc>>,
}

/// `POST /api/v1/presence/events` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    pub events: Vec<WebhookEvent>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WebhookError {
    #[error("no webhook backend has this token")]
    Unauthorized,
    #[error("{0}")]
    Invalid(String),
}

pub fn parse_activity(text: &str) -> Activity {
    match text {
        "in_call" => Activity::InCall,
        "in_meeting" => Activity::InMeeting,
        "presenting" => Activity::Presenting,
        "out_of_office" => Activity::OutOfOffice,
        "off_work" => Activity::OffWork,
        "free_to_chat" => Activity::FreeToChat,
        "extended_away" => Activity::ExtendedAway,
        "urgent_only" => Activity::UrgentOnly,
        other => Activity::Other(other.to_string()),
    }
}

pub struct WebhookBackend {
    token: String,
    schemes: Vec<String>,
    last: RwLock<HashMap<String, ChannelState>>,
    /// The handles the directory tracks (kept current by `run`; `None` before it starts).
    tracked: RwLock<Option<HashSet<String>>>,
    health: HealthCell,
}

impl WebhookBackend {
    pub fn new(config: &BackendConfig) -> WebhookBackend {
        WebhookBackend {
            token: config.token.clone().unwrap_or_default(),
            schemes: config.schemes(),
            last: RwLock::new(HashMap::new()),
            tracked: RwLock::new(None),
            health: HealthCell::default(),
        }
    }

    /// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
    pub fn accepts(&self, token: &str) -> bool {
        let (a, b) = (self.token.as_bytes(), token.as_bytes());
        !a.is_empty()
            && a.len() == b.len()
            && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Validates a batch (all or nothing) and turns it into observations.
    pub fn accept(
        &self,
        events: Vec<WebhookEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Observation>, WebhookError> {
        if events.len() > MAX_EVENTS {
            return Err(WebhookError::Invalid(format!(
                "at most {MAX_EVENTS} events per request"
            )));
        }
        let mut out = Vec::with_capacity(events.len());
        for (n, e) in events.into_iter().enumerate() {
            let bad = |why: String| WebhookError::Invalid(format!("events[{n}]: {why}"));
            let handle = crate::domain::record::normalize_im(&e.handle).map_err(bad)?;
            let scheme = handle.split(':').next().unwrap_or_default();
            if !self.schemes.iter().any(|s| s == scheme) {
                return Err(bad(format!(
                    "handle scheme `{scheme}` is not one this backend reports ({})",
                    self.schemes.join(", ")
                )));
            }
            let availability = Availability::parse(&e.availability)
                .ok_or_else(|| bad(format!("unknown availability `{}`", e.availability)))?;
            for text in [&e.activity, &e.status_message].into_iter().flatten() {
                if text.chars().count() > MAX_TEXT || text.chars().any(char::is_control) {
                    return Err(bad(format!(
                        "texts are limited to {MAX_TEXT} characters without control characters"
                    )));
                }
            }
            let mut state = ChannelState::new(availability, e.observed_at.unwrap_or(now).min(now));
            state.activity = e
                .activity
                .as_deref()
                .filter(|a| !a.is_empty())
                .map(parse_activity);
            state.status_message = e.status_message.filter(|s| !s.is_empty());
            state.until = e.until;
            state.idle = e.idle;
            state.out_of_office = e.out_of_office || state.activity == Some(Activity::OutOfOffice);
            state.manual = e.manual;
            out.push(Observation { handle, state });
        }
        if let (Ok(mut last), Ok(tracked)) = (self.last.write(), self.tracked.read()) {
            for o in &out {
                // Only tracked handles are kept (once `run` knows them); a late event does not
                // replace a newer one.
                if tracked.as_ref().is_some_and(|t| !t.contains(&o.handle))
                    || last
                        .get(&o.handle)
                        .is_some_and(|old| old.observed_at > o.state.observed_at)
                {
                    continue;
                }
                last.insert(o.handle.clone(), o.state.clone());
            }
        }
        self.health.up(now);
        Ok(out)
    }
}

impl PresenceBackend for WebhookBackend {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn mode(&self) -> Mode {
        Mode::Push
    }

    /// Follows the tracked handles, dropping what it kept for handles that went away.
    fn run(self: Arc<Self>, mut ctx: RunContext) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            loop {
                {
                    let handles = ctx.tracked.borrow_and_update().clone();
                    let set: HashSet<String> = handles.iter().cloned().collect();
                    if let Ok(mut last) = self.last.write() {
                        last.retain(|h, _| set.contains(h));
                    }
                    if let Ok(mut tracked) = self.tracked.write() {
                        *tracked = Some(set);
                    }
                }
                tokio::select! {
                    changed = ctx.tracked.changed() => if changed.is_err() { return },
                    _ = super::stopped(&mut ctx.stop) => return,
                }
            }
        })
    }

    fn fetch<'a>(
        &'a self,
        handles: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Observation>, BackendError>> {
        Box::pin(async move {
            let last = self
                .last
                .read()
                .map_err(|_| BackendError::Protocol("poisoned".into()))?;
            Ok(handles
                .iter()
                .filter_map(|h| {
                    last.get(h).map(|s| Observation {
                        handle: h.clone(),
                        state: s.clone(),
                    })
                })
                .collect())
        })
    }

    fn health(&self) -> Health {
        // A webhook is only as healthy as its callers; it is up once configured.
        let mut h = self.health.get();
        if h.status == super::HealthStatus::Starting {
            h.status = super::HealthStatus::Up;
        }
        h
    }

    fn as_webhook(&self) -> Option<&WebhookBackend> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> WebhookBackend {
        let mut c = BackendConfig::new("pbx", "webhook");
        c.token = Some("s3cret".into());
        WebhookBackend::new(&c)
    }

    fn event(handle: &str, availability: &str) -> WebhookEvent {
        serde_json::from_value(serde_json::json!({"handle": handle, "availability": availability}))
            .expect("event")
    }

    #[test]
    fn tokens_are_compared_exactly() {
        let h = hook();
        assert!(h.accepts("s3cret"));
        assert!(!h.accepts("s3cre"));
        assert!(!h.accepts("s3creT"));
        assert!(!h.accepts(""));
    }

    #[test]
    fn events_become_observations_and_bad_ones_are_refused() {
        let h = hook();
        let now = Utc::now();
        let mut call = event("SIP:alice@pbx", "busy");
        call.activity = Some("in_call".into());
        call.observed_at = Some(now + chrono::Duration::hours(1));
        let obs = h.accept(vec![call], now).expect("valid");
        assert_eq!(obs[0].handle, "sip:alice@pbx");
        assert_eq!(obs[0].state.availability, Availability::Busy);
        assert_eq!(obs[0].state.activity, Some(Activity::InCall));
        assert_eq!(obs[0].state.observed_at, now, "future times are clamped");
        for (handle, availability) in [
            ("sip:alice@pbx", "online"),
            ("xmpp:alice@corp", "busy"),
            ("alice", "busy"),
        ] {
            assert!(matches!(
                h.accept(vec![event(handle, availability)], now),
                Err(WebhookError::Invalid(_))
            ));
        }
    }
}
