//! Microsoft Teams presence via Microsoft Graph: `POST /communications/getPresencesByUserId` with
//! up to 650 user ids a call, authenticated by an OAuth2 client-credentials token that is
//! renewed before it expires and again when Graph refuses it. Handles are `msteams:<user id>`.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::backend::{BackendError, BoxFuture, Health, HealthCell, Mode, PresenceBackend};
use super::config::BackendConfig;
use super::http_client::{self, status_error, unreachable};
use super::model::{Activity, Availability, ChannelState, Observation};
use super::Clock;
use crate::error::Result;

/// Graph's documented limit of ids per `getPresencesByUserId` call.
pub const MAX_BATCH: usize = 650;

pub struct GraphBackend {
    api_url: String,
    token_url: String,
    client_id: String,
    client_secret: String,
    http: reqwest::Client,
    clock: Clock,
    token: Mutex<Option<(String, DateTime<Utc>)>>,
    health: HealthCell,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct PresenceList {
    value: Vec<GraphPresence>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphPresence {
    id: String,
    availability: Option<String>,
    activity: Option<String>,
    #[serde(default)]
    status_message: Option<StatusMessage>,
    #[serde(default)]
    out_of_office_settings: Option<OutOfOffice>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusMessage {
    message: Option<ItemBody>,
    expiry_date_time: Option<DateTimeTimeZone>,
}

#[derive(Deserialize)]
struct ItemBody {
    content: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DateTimeTimeZone {
    date_time: String,
    time_zone: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutOfOffice {
    #[serde(default)]
    is_out_of_office: bool,
}

/// Graph `availability` and `activity` → the normalized model.
pub fn map_presence(
    availability: &str,
    activity: Option<&str>,
    now: DateTime<Utc>,
) -> ChannelState {
    let (a, idle) = match availability {
        "Available" => (Availability::Available, false),
        "AvailableIdle" => (Availability::Available, true),
        "Busy" => (Availability::Busy, false),
        "BusyIdle" => (Availability::Busy, true),
        "DoNotDisturb" => (Availability::DoNotDisturb, false),
        "BeRightBack" => (Availability::BeRightBack, false),
        "Away" => (Availability::Away, false),
        "Offline" => (Availability::Offline, false),
        _ => (Availability::Unknown, false),
    };
    let mut state = ChannelState::new(a, now);
    state.idle = idle;
    state.activity = match activity {
        Some("InACall" | "InAConferenceCall") => Some(Activity::InCall),
        Some("InAMeeting") => Some(Activity::InMeeting),
        Some("Presenting") => Some(Activity::Presenting),
        Some("UrgentInterruptionsOnly") => Some(Activity::UrgentOnly),
        Some("OutOfOffice") => Some(Activity::OutOfOffice),
        Some("OffWork") => Some(Activity::OffWork),
        Some(
            "Available" | "Away" | "BeRightBack" | "Busy" | "DoNotDisturb" | "Offline"
            | "PresenceUnknown" | "Inactive",
        )
        | None => None,
        Some(other) => Some(Activity::Other(other.to_string())),
    };
    state.out_of_office = state.activity == Some(Activity::OutOfOffice);
    state
}

/// The OAuth2 error code of a token endpoint's answer (RFC 6749 §5.2: `invalid_client`, …),
/// and nothing else of it: descriptions can be long and carry details health must not echo.
fn oauth_error(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
    }
    let code = serde_json::from_str::<OAuthError>(body).ok()?.error;
    (!code.is_empty()
        && code.len() <= 40
        && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .then_some(code)
}

impl GraphBackend {
    pub fn new(config: &BackendConfig, clock: Clock) -> Result<GraphBackend> {
        let tenant = config.tenant.clone().unwrap_or_default();
        Ok(GraphBackend {
            api_url: config
                .api_url
                .clone()
                .unwrap_or_else(|| "https://graph.microsoft.com/v1.0".into())
                .trim_end_matches('/')
                .to_string(),
            token_url: config.token_url.clone().unwrap_or_else(|| {
                format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
            }),
            client_id: config.client_id.clone().unwrap_or_default(),
            client_secret: config.client_secret.clone().unwrap_or_default(),
            http: http_client::client(config.timeout()),
            clock,
            token: Mutex::new(None),
            health: HealthCell::default(),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// A valid access token: the cached one unless it expires within a minute.
    async fn token(&self) -> std::result::Result<String, BackendError> {
        let now = self.now();
        if let Some((token, expires)) = self.token.lock().ok().and_then(|t| t.clone()) {
            if expires - chrono::Duration::seconds(60) > now {
                return Ok(token);
            }
        }
        let response = self
            .http
            .post(&self.token_url)
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            let error = status_error(status, response.headers(), now);
            let body = response.text().await.unwrap_or_default();
            return Err(match error {
                BackendError::Protocol(_) if status.as_u16() == 400 || status.as_u16() == 401 => {
                    BackendError::Auth(format!(
                        "token endpoint refused: {}",
                        oauth_error(&body).unwrap_or_else(|| format!("HTTP {}", status.as_u16()))
                    ))
                }
                other => other,
            });
        }
        let token: TokenResponse = response
            .json()
            .await
            .map_err(|e| BackendError::Protocol(format!("token response: {e}")))?;
        let expires =
            now + chrono::Duration::seconds(token.expires_in.unwrap_or(3600).clamp(0, 86_400));
        if let Ok(mut cached) = self.token.lock() {
            *cached = Some((token.access_token.clone(), expires));
        }
        Ok(token.access_token)
    }

    fn forget_token(&self) {
        if let Ok(mut cached) = self.token.lock() {
            *cached = None;
        }
    }

    async fn get_presences(
        &self,
        ids: &[&str],
    ) -> std::result::Result<Vec<GraphPresence>, BackendError> {
        // One retry with a fresh token: Graph answers 401 when a token expired early or was revoked.
        for attempt in 0..2 {
            let token = self.token().await?;
            let response = self
                .http
                .post(format!(
                    "{}/communications/getPresencesByUserId",
                    self.api_url
                ))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "ids": ids }))
                .send()
                .await
                .map_err(unreachable)?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                self.forget_token();
                continue;
            }
            if !status.is_success() {
                return Err(status_error(status, response.headers(), self.now()));
            }
            let bytes = response.bytes().await.map_err(unreachable)?;
            let list: PresenceList = serde_json::from_slice(&bytes)
                .map_err(|e| BackendError::Protocol(format!("getPresencesByUserId answer: {e}")))?;
            return Ok(list.value);
        }
        Err(BackendError::Auth("Graph refused a fresh token".into()))
    }
}

impl PresenceBackend for GraphBackend {
    fn kind(&self) -> &'static str {
        "graph"
    }

    fn mode(&self) -> Mode {
        Mode::Poll { batch: MAX_BATCH }
    }

    fn fetch<'a>(
        &'a self,
        handles: &'a [String],
    ) -> BoxFuture<'a, std::result::Result<Vec<Observation>, BackendError>> {
        Box::pin(async move {
            let ids: Vec<&str> = handles
                .iter()
                .filter_map(|h| h.strip_prefix("msteams:"))
                .collect();
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(MAX_BATCH) {
                let result = self.get_presences(chunk).await;
                let presences = match result {
                    Ok(p) => p,
                    Err(e) => {
                        if !matches!(e, BackendError::RateLimited(_)) {
                            self.health.down(e.to_string());
                        }
                        return Err(e);
                    }
                };
                let now = self.now();
                for p in presences {
                    let mut state = map_presence(
                        p.availability.as_deref().unwrap_or("PresenceUnknown"),
                        p.activity.as_deref(),
                        now,
                    );
                    if let Some(message) = p.status_message {
                        let expires = message
                            .expiry_date_time
                            .filter(|e| e.time_zone.as_deref().is_none_or(|z| z == "UTC"))
                            .and_then(|e| {
                                chrono::NaiveDateTime::parse_from_str(
                                    e.date_time.split('.').next().unwrap_or_default(),
                                    "%Y-%m-%dT%H:%M:%S",
                                )
                                .ok()
                            })
                            .map(|t| t.and_utc());
                        if expires.is_none_or(|t| t > now) {
                            state.status_message = message
                                .message
                                .and_then(|m| m.content)
                                .map(|c| c.trim().to_string())
                                .filter(|c| !c.is_empty());
                        }
                    }
                    if p.out_of_office_settings.is_some_and(|o| o.is_out_of_office) {
                        state.out_of_office = true;
                    }
                    // Graph answers with the ids as stored (lower case GUIDs); map back to ours.
                    let handle = handles
                        .iter()
                        .find(|h| {
                            h.strip_prefix("msteams:")
                                .is_some_and(|id| id.eq_ignore_ascii_case(&p.id))
                        })
                        .cloned()
                        .unwrap_or_else(|| format!("msteams:{}", p.id));
                    out.push(Observation { handle, state });
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

    #[test]
    fn only_the_oauth_error_code_of_a_refusal_is_kept() {
        assert_eq!(
            oauth_error(
                r#"{"error":"invalid_client","error_description":"AADSTS7000215: secret s3cret"}"#
            )
            .as_deref(),
            Some("invalid_client")
        );
        assert_eq!(oauth_error("<html>s3cret</html>"), None);
        assert_eq!(oauth_error(r#"{"error":"has spaces and s3cret"}"#), None);
    }

    #[test]
    fn graph_states_map_to_the_model() {
        let now = Utc::now();
        let s = map_presence("AvailableIdle", Some("Available"), now);
        assert_eq!(
            (s.availability, s.idle, s.activity),
            (Availability::Available, true, None)
        );
        let s = map_presence("Busy", Some("InACall"), now);
        assert_eq!(
            (s.availability, s.activity),
            (Availability::Busy, Some(Activity::InCall))
        );
        let s = map_presence("DoNotDisturb", Some("Presenting"), now);
        assert_eq!(s.activity, Some(Activity::Presenting));
        let s = map_presence("Away", Some("OutOfOffice"), now);
        assert!(s.out_of_office);
        let s = map_presence("Offline", Some("OffWork"), now);
        assert_eq!(
            (s.availability, s.activity),
            (Availability::Offline, Some(Activity::OffWork))
        );
        assert_eq!(
            map_presence("PresenceUnknown", None, now).availability,
            Availability::Unknown
        );
        assert_eq!(
            map_presence("BeRightBack", None, now).availability,
            Availability::BeRightBack
        );
    }
}
