//! What the HTTP-polled backends (Graph, Slack) share: a client, throttling, error mapping.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use super::backend::BackendError;

/// A client with TLS from the system's certificate store. Calls are bounded by the hub's
/// per-backend timeout; this is only a backstop.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout.max(Duration::from_secs(1)) * 2)
        .connect_timeout(timeout.max(Duration::from_secs(1)))
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// `Retry-After` as seconds or an HTTP date; 30 s when absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Duration {
    let Some(value) = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()) else {
        return Duration::from_secs(30);
    };
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Duration::from_secs(secs.min(3600));
    }
    DateTime::parse_from_rfc2822(value.trim())
        .ok()
        .and_then(|t| (t.with_timezone(&Utc) - now).to_std().ok())
        .map(|d| d.min(Duration::from_secs(3600)))
        .unwrap_or(Duration::from_secs(30))
}

pub fn unreachable(e: reqwest::Error) -> BackendError {
    BackendError::Unreachable(e.without_url().to_string())
}

/// Maps a non-success status to an error (429 → rate limited with its Retry-After).
pub fn status_error(status: StatusCode, headers: &HeaderMap, now: DateTime<Utc>) -> BackendError {
    match status {
        StatusCode::TOO_MANY_REQUESTS => BackendError::RateLimited(retry_after(headers, now)),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            BackendError::Auth(format!("HTTP {status}"))
        }
        s if s.is_server_error() => BackendError::Unreachable(format!("HTTP {status}")),
        s => BackendError::Protocol(format!("HTTP {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .expect("date")
            .with_timezone(&Utc);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), Duration::from_secs(30));
        h.insert(RETRY_AFTER, "7".parse().expect("header"));
        assert_eq!(retry_after(&h, now), Duration::from_secs(7));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:10 GMT".parse().expect("header"),
        );
        assert_eq!(retry_after(&h, now), Duration::from_secs(10));
        h.insert(RETRY_AFTER, "soon".parse().expect("header"));
        assert_eq!(retry_after(&h, now), Duration::from_secs(30));
    }
}
