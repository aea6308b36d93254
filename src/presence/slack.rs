//! Slack presence: `users.getPresence` (one user a call) and `dnd.info`, polled within Slack's
//! rate limits (429 + Retry-After pauses the poller). Handles are `slack:<user id>`.
//!
//! Slack cannot tell "away" from "offline" for other users, so `away` is reported with low
//! confidence.

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;

use super::backend::{
    BackendError, BoxFuture, Health, HealthCell, Mode, PartialFetch, PresenceBackend,
};
use super::config::BackendConfig;
use super::http_client::{self, status_error, unreachable};
use super::model::{Availability, ChannelState, Observation};
use super::Clock;
use crate::error::Result;

/// Users per poll call: each is two API calls.
pub const BATCH: usize = 20;

pub struct SlackBackend {
    api_url: String,
    token: String,
    http: reqwest::Client,
    /// Per API call.
    timeout: std::time::Duration,
    clock: Clock,
    health: HealthCell,
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    presence: Option<String>,
    #[serde(default)]
    dnd_enabled: Option<bool>,
    #[serde(default)]
    next_dnd_start_ts: Option<i64>,
    #[serde(default)]
    next_dnd_end_ts: Option<i64>,
    #[serde(default)]
    snooze_enabled: Option<bool>,
    #[serde(default)]
    snooze_endtime: Option<i64>,
}

fn ts(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.and_then(|s| Utc.timestamp_opt(s, 0).single())
}

/// `users.getPresence` and `dnd.info` → the normalized model.
fn map_presence(presence: &str, dnd: &Envelope, now: DateTime<Utc>) -> ChannelState {
    let snoozing =
        dnd.snooze_enabled == Some(true) && ts(dnd.snooze_endtime).is_none_or(|end| end > now);
    let scheduled = dnd.dnd_enabled == Some(true)
        && ts(dnd.next_dnd_start_ts).is_some_and(|start| start <= now)
        && ts(dnd.next_dnd_end_ts).is_some_and(|end| end > now);
    let mut state = match presence {
        "active" if snoozing || scheduled => {
            let mut s = ChannelState::new(Availability::DoNotDisturb, now);
            s.until = if snoozing {
                ts(dnd.snooze_endtime)
            } else {
                ts(dnd.next_dnd_end_ts)
            };
            s
        }
        "active" => ChannelState::new(Availability::Available, now),
        "away" => {
            let mut s = ChannelState::new(Availability::Away, now);
            s.confidence = 0.5;
            s
        }
        _ => ChannelState::unknown(now),
    };
    if state.availability == Availability::DoNotDisturb {
        state.manual = snoozing;
    }
    state
}

impl SlackBackend {
    pub fn new(config: &BackendConfig, clock: Clock) -> Result<SlackBackend> {
        Ok(SlackBackend {
            api_url: config
                .api_url
                .clone()
                .unwrap_or_else(|| "https://slack.com/api".into())
                .trim_end_matches('/')
                .to_string(),
            token: config.token.clone().unwrap_or_default(),
            http: http_client::client(config.timeout()),
            timeout: config.timeout(),
            clock,
            health: HealthCell::default(),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    async fn call(&self, method: &str, user: &str) -> std::result::Result<Envelope, BackendError> {
        match tokio::time::timeout(self.timeout, self.call_once(method, user)).await {
            Ok(answer) => answer,
            Err(_) => Err(BackendError::Unreachable(format!(
                "{method}: no answer within {:?}",
                self.timeout
            ))),
        }
    }

    async fn call_once(
        &self,
        method: &str,
        user: &str,
    ) -> std::result::Result<Envelope, BackendError> {
        let response = self
            .http
            .get(format!("{}/{method}", self.api_url))
            .bearer_auth(&self.token)
            .query(&[("user", user)])
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_error(status, response.headers(), self.now()));
        }
        let bytes = response.bytes().await.map_err(unreachable)?;
        let envelope: Envelope = serde_json::from_slice(&bytes)
            .map_err(|e| BackendError::Protocol(format!("{method} answer: {e}")))?;
        if !envelope.ok {
            let error = envelope.error.unwrap_or_else(|| "unknown_error".into());
            return Err(match error.as_str() {
                "invalid_auth" | "not_authed" | "token_expired" | "token_revoked"
                | "account_inactive" | "missing_scope" => BackendError::Auth(error),
                "ratelimited" => BackendError::RateLimited(std::time::Duration::from_secs(30)),
                "user_not_found" | "user_not_visible" => {
                    return Ok(Envelope {
                        ok: false,
                        error: Some(error),
                        presence: None,
                        dnd_enabled: None,
                        next_dnd_start_ts: None,
                        next_dnd_end_ts: None,
                        snooze_enabled: None,
                        snooze_endtime: None,
                    })
                }
                _ => BackendError::Protocol(format!("{method}: {error}")),
            });
        }
        Ok(envelope)
    }

    async fn one(
        &self,
        handle: &str,
        user: &str,
    ) -> std::result::Result<Observation, BackendError> {
        let presence = self.call("users.getPresence", user).await?;
        let now = self.now();
        let state = match presence.presence.clone() {
            Some(p) if presence.ok => {
                let dnd = if p == "active" {
                    self.call("dnd.info", user).await?
                } else {
                    presence
                };
                map_presence(&p, &dnd, now)
            }
            _ => ChannelState::unknown(now),
        };
        Ok(Observation {
            handle: handle.to_string(),
            state,
        })
    }
}

impl PresenceBackend for SlackBackend {
    fn kind(&self) -> &'static str {
        "slack"
    }

    fn mode(&self) -> Mode {
        Mode::Poll { batch: BATCH }
    }

    /// Up to two calls a user, one after the other, each bounded by the timeout.
    fn fetch_deadline(&self, timeout: std::time::Duration, handles: usize) -> std::time::Duration {
        timeout * 2 * handles.max(1) as u32
    }

    fn fetch<'a>(
        &'a self,
        handles: &'a [String],
    ) -> BoxFuture<'a, std::result::Result<Vec<Observation>, BackendError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(handles.len());
            for handle in handles {
                let Some(user) = handle.strip_prefix("slack:") else {
                    continue;
                };
                match self.one(handle, user).await {
                    Ok(o) => out.push(o),
                    Err(e) => {
                        if !matches!(e, BackendError::RateLimited(_)) {
                            self.health.down(e.to_string());
                        }
                        // Users already fetched are kept.
                        if out.is_empty() {
                            return Err(e);
                        }
                        return Err(BackendError::Partial(Box::new(PartialFetch {
                            observations: out,
                            error: e,
                        })));
                    }
                }
            }
            self.health.up(self.now());
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

    fn dnd(json: serde_json::Value) -> Envelope {
        serde_json::from_value(json).expect("envelope")
    }

    #[test]
    fn slack_states_map_to_the_model() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).single().expect("now");
        let off = dnd(serde_json::json!({"ok": true, "dnd_enabled": false}));
        assert_eq!(
            map_presence("active", &off, now).availability,
            Availability::Available
        );
        let away = map_presence("away", &off, now);
        assert_eq!(away.availability, Availability::Away);
        assert!(away.confidence < 1.0);
        let scheduled = dnd(serde_json::json!({"ok": true, "dnd_enabled": true,
            "next_dnd_start_ts": 1_699_999_000, "next_dnd_end_ts": 1_700_003_600}));
        let s = map_presence("active", &scheduled, now);
        assert_eq!(s.availability, Availability::DoNotDisturb);
        assert_eq!(s.until, ts(Some(1_700_003_600)));
        let later = dnd(serde_json::json!({"ok": true, "dnd_enabled": true,
            "next_dnd_start_ts": 1_700_001_000, "next_dnd_end_ts": 1_700_003_600}));
        assert_eq!(
            map_presence("active", &later, now).availability,
            Availability::Available
        );
        let snooze = dnd(serde_json::json!({"ok": true, "dnd_enabled": true,
            "snooze_enabled": true, "snooze_endtime": 1_700_000_600}));
        let s = map_presence("active", &snooze, now);
        assert_eq!(s.availability, Availability::DoNotDisturb);
        assert!(s.manual);
    }
}
