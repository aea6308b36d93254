//! The `PresenceBackend` trait, its health report, and the circuit breaker the hub wraps around
//! every polled backend.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;

use super::model::Observation;
use super::PresenceSink;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a backend learns about changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// It keeps a stream open (XMPP) or is called (webhook): `run` reports changes as they come.
    Push,
    /// The hub calls `fetch` with at most `batch` handles at a time, every poll interval.
    Poll { batch: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend asked us to slow down (HTTP 429 + Retry-After).
    #[error("rate limited; retry after {0:?}")]
    RateLimited(Duration),
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("refused our credentials: {0}")]
    Auth(String),
    /// It answered something we cannot read.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// Part of a batch was fetched before a call failed: the hub keeps what came back.
    #[error("{}", .0.error)]
    Partial(Box<PartialFetch>),
}

/// What a batch fetch got before `error` stopped it.
#[derive(Debug)]
pub struct PartialFetch {
    pub observations: Vec<super::model::Observation>,
    pub error: BackendError,
}

/// What a running backend needs: where to report, which handles to track, when to stop.
pub struct RunContext {
    pub sink: PresenceSink,
    /// Handles of the people the directory knows for this backend; changes as people come and go.
    pub tracked: watch::Receiver<Arc<Vec<String>>>,
    pub stop: watch::Receiver<bool>,
}

/// A source of presence: one IM system, reached one way. Implementations are trait objects built
/// from `[[presence.backends]]`; every one passes `tests/presence_conformance.rs`.
pub trait PresenceBackend: Send + Sync + 'static {
    fn kind(&self) -> &'static str;

    fn mode(&self) -> Mode;

    /// Push backends: keep the stream up (reconnecting with backoff), report changes through
    /// `ctx.sink`, return when `ctx.stop` turns true. Polled backends need not implement it.
    fn run(self: Arc<Self>, ctx: RunContext) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut stop = ctx.stop;
            let _ = stop.wait_for(|s| *s).await;
        })
    }

    /// How long one `fetch` of `handles` may take, given the configured per-call `timeout`
    /// (default: one call per batch).
    fn fetch_deadline(&self, timeout: std::time::Duration, handles: usize) -> std::time::Duration {
        let _ = handles;
        timeout
    }

    /// The current presence of `handles` (at most one batch). Handles the backend knows nothing
    /// about are left out or reported `unknown`. Push backends answer from their stream's state.
    fn fetch<'a>(
        &'a self,
        handles: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Observation>, BackendError>>;

    /// Whether it can currently reach its system.
    fn health(&self) -> Health;

    /// Webhook backends receive events over HTTP instead of fetching them.
    fn as_webhook(&self) -> Option<&super::webhook::WebhookBackend> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Reaching its system.
    Up,
    /// Not yet connected or polled.
    Starting,
    /// Cannot reach its system: its channels are `unknown`.
    Down,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: HealthStatus,
    /// Why it is down, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When it last reached its system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ok: Option<DateTime<Utc>>,
    /// Failures since start.
    pub failures: u64,
}

impl Health {
    pub fn starting() -> Health {
        Health {
            status: HealthStatus::Starting,
            detail: None,
            last_ok: None,
            failures: 0,
        }
    }
}

/// A backend's health, updated from its tasks.
#[derive(Debug)]
pub struct HealthCell(Mutex<Health>);

impl Default for HealthCell {
    fn default() -> Self {
        HealthCell(Mutex::new(Health::starting()))
    }
}

impl HealthCell {
    pub fn get(&self) -> Health {
        self.0
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|_| Health::starting())
    }

    pub fn up(&self, now: DateTime<Utc>) {
        if let Ok(mut h) = self.0.lock() {
            h.status = HealthStatus::Up;
            h.detail = None;
            h.last_ok = Some(now);
        }
    }

    pub fn down(&self, detail: impl Into<String>) {
        if let Ok(mut h) = self.0.lock() {
            h.status = HealthStatus::Down;
            h.detail = Some(detail.into());
            h.failures += 1;
        }
    }
}

/// Stops calling a failing backend for a while: after `threshold` failures in a row it opens for
/// `cooldown` (doubling up to `max_cooldown` while failures go on), then lets one call through.
#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    max_cooldown: Duration,
    failures: u32,
    open_until: Option<Instant>,
    current_cooldown: Duration,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration, max_cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            max_cooldown,
            failures: 0,
            open_until: None,
            current_cooldown: cooldown,
        }
    }

    /// May we call the backend at `now`?
    pub fn allow(&self, now: Instant) -> bool {
        self.open_until.is_none_or(|until| now >= until)
    }

    pub fn is_open(&self, now: Instant) -> bool {
        !self.allow(now)
    }

    pub fn success(&mut self) {
        self.failures = 0;
        self.open_until = None;
        self.current_cooldown = self.cooldown;
    }

    pub fn failure(&mut self, now: Instant) {
        self.failures += 1;
        if self.failures >= self.threshold {
            if self.open_until.is_some() {
                // A trial call after a cooldown failed: wait longer next time.
                self.current_cooldown = (self.current_cooldown * 2).min(self.max_cooldown);
            }
            self.open_until = Some(now + self.current_cooldown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_repeated_failures_and_lets_a_trial_through_later() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut b = Breaker::new(3, 10 * s, 40 * s);
        assert!(b.allow(t0));
        b.failure(t0);
        b.failure(t0);
        assert!(b.allow(t0), "two failures are not enough");
        b.failure(t0);
        assert!(b.is_open(t0));
        assert!(b.is_open(t0 + 9 * s));
        assert!(b.allow(t0 + 10 * s), "half-open after the cooldown");
        b.failure(t0 + 10 * s);
        assert!(b.is_open(t0 + 29 * s), "the cooldown doubled");
        assert!(b.allow(t0 + 30 * s));
        b.failure(t0 + 30 * s);
        b.failure(t0 + 70 * s);
        assert!(b.allow(t0 + 110 * s), "capped at the maximum");
        b.success();
        assert!(b.allow(t0 + 110 * s));
        b.failure(t0 + 110 * s);
        assert!(b.allow(t0 + 110 * s), "success reset the count");
    }

    #[test]
    fn health_records_failures() {
        let cell = HealthCell::default();
        assert_eq!(cell.get().status, HealthStatus::Starting);
        cell.down("connection refused");
        let h = cell.get();
        assert_eq!(h.status, HealthStatus::Down);
        assert_eq!(h.failures, 1);
        cell.up(Utc::now());
        assert_eq!(cell.get().status, HealthStatus::Up);
        assert_eq!(cell.get().detail, None);
    }
}
