//! Live presence: backends (XMPP, Matrix, webhook, Graph, Slack) feed a cache of per-handle states; the
//! hub merges a person's channels on lookup (from memory, never waiting on a backend) and
//! broadcasts changes to the SSE stream.
//!
//! Push backends run their own task; polled ones are called by the hub in batches, each call
//! bounded by the backend's timeout and guarded by a circuit breaker. A backend that fails or
//! hangs turns its channels `unknown`.

pub mod backend;
pub mod config;
pub mod directory;
pub mod graph;
pub mod http_client;
pub mod matrix;
pub mod model;
pub mod simulated;
pub mod slack;
pub mod webhook;
pub mod xmpp;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use utoipa::ToSchema;
use uuid::Uuid;

pub use backend::{
    BackendError, BoxFuture, Breaker, Health, HealthCell, HealthStatus, Mode, PartialFetch,
    PresenceBackend, RunContext,
};
pub use config::{BackendConfig, PresenceConfig};
pub use directory::{Directory, HandleRule, PersonAttrs};
pub use model::{
    merge, Activity, Availability, ChannelInput, ChannelState, Observation, Presence,
    PresenceChannel, Visibility,
};

use crate::domain::{Person, PersonSummary};
use crate::error::{Error, Result};

/// Where "now" comes from: the system clock in production, a settable one in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Resolves once `stop` turns true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The wait between reconnection attempts of a push backend: 250 ms, doubling up to 30 s, with
/// jitter so a restarted server is not hit by every node at once; back to 250 ms after a
/// connection that came up.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const MIN: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(30);

    pub fn new() -> Backoff {
        Backoff { next: Self::MIN }
    }

    /// A connection came up: the next failure waits the shortest time again.
    pub fn reset(&mut self) {
        self.next = Self::MIN;
    }

    /// Waits before the next attempt; `false` when `stop` came first.
    pub async fn wait(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let jitter = self.next.mul_f64(rand::random::<f64>() * 0.3);
        let waited = tokio::select! {
            _ = tokio::time::sleep(self.next + jitter) => true,
            _ = stopped(stop) => false,
        };
        self.next = (self.next * 2).min(Self::MAX);
        waited
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// A person's merged presence changed.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct PresenceChange {
    pub id: Uuid,
    pub presence: Presence,
}

/// A backend's health as `/readyz` shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct BackendHealth {
    pub name: String,
    pub kind: String,
    #[serde(flatten)]
    pub health: Health,
    /// Calls are suspended after repeated failures.
    pub circuit_open: bool,
    /// Handles it tracks.
    pub tracked: usize,
}

struct Slot {
    name: String,
    kind: &'static str,
    backend: Arc<dyn PresenceBackend>,
    rule: HandleRule,
    ttl: chrono::Duration,
    timeout: Duration,
    poll_interval: Duration,
    cache: RwLock<HashMap<String, ChannelState>>,
    tracked: watch::Sender<Arc<Vec<String>>>,
    breaker: Mutex<Breaker>,
    /// Health as the hub sees it when it calls the backend (polled backends).
    polled: HealthCell,
    observations: AtomicU64,
}

struct Inner {
    slots: Vec<Slot>,
    directory: RwLock<Directory>,
    changes: broadcast::Sender<Arc<PresenceChange>>,
    clock: Clock,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Serializes reports (cache write, merge, broadcast).
    reporting: Mutex<()>,
}

/// The presence service. Cheap to clone.
#[derive(Clone)]
pub struct PresenceHub(Arc<Inner>);

/// Hands a backend's reports to the hub.
#[derive(Clone)]
pub struct PresenceSink {
    hub: Weak<Inner>,
    slot: usize,
}

impl PresenceSink {
    pub fn now(&self) -> DateTime<Utc> {
        self.hub
            .upgrade()
            .map(|inner| (inner.clock)())
            .unwrap_or_else(Utc::now)
    }

    pub fn report(&self, observations: Vec<Observation>) {
        if let Some(inner) = self.hub.upgrade() {
            PresenceHub(inner).report(self.slot, observations);
        }
    }

    /// The backend lost its system: every channel it reported is `unknown` now.
    pub fn all_unknown(&self) {
        if let Some(inner) = self.hub.upgrade() {
            let hub = PresenceHub(inner);
            let handles: Vec<String> = hub.0.slots[self.slot]
                .cache
                .read()
                .map(|c| c.keys().cloned().collect())
                .unwrap_or_default();
            hub.mark_unknown(self.slot, &handles);
        }
    }
}

fn same_state(a: &ChannelState, b: &ChannelState) -> bool {
    a.availability == b.availability
        && a.idle == b.idle
        && a.activity == b.activity
        && a.status_message == b.status_message
        && a.until == b.until
        && a.out_of_office == b.out_of_office
        && a.manual == b.manual
        && a.confidence == b.confidence
}

/// Builds the backend a config declares.
pub fn build_backend(config: &BackendConfig, clock: Clock) -> Result<Arc<dyn PresenceBackend>> {
    config.validate()?;
    Ok(match config.kind.as_str() {
        "webhook" => Arc::new(webhook::WebhookBackend::new(config)),
        "xmpp" => Arc::new(xmpp::XmppBackend::new(config, clock)?),
        "graph" => Arc::new(graph::GraphBackend::new(config, clock)?),
        "slack" => Arc::new(slack::SlackBackend::new(config, clock)?),
        "matrix" => Arc::new(matrix::MatrixBackend::new(config, clock)?),
        other => {
            return Err(Error::Config(format!(
                "unknown presence backend kind {other}"
            )))
        }
    })
}

impl PresenceHub {
    /// No backends: people carry no presence.
    pub fn disabled() -> PresenceHub {
        PresenceHub::with_backends(Vec::new(), system_clock())
    }

    pub fn from_config(config: &PresenceConfig, clock: Clock) -> Result<PresenceHub> {
        PresenceHub::from_config_and(config, clock, Vec::new())
    }

    /// The configured backends and `extra` ones (the demo's simulated presence).
    pub fn from_config_and(
        config: &PresenceConfig,
        clock: Clock,
        extra: Vec<(BackendConfig, Arc<dyn PresenceBackend>)>,
    ) -> Result<PresenceHub> {
        config.validate()?;
        let mut backends = extra;
        for b in &config.backends {
            backends.push((b.clone(), build_backend(b, clock.clone())?));
        }
        Ok(PresenceHub::with_backends(backends, clock))
    }

    /// A hub over ready-made backends (tests and benchmarks).
    pub fn with_backends(
        backends: Vec<(BackendConfig, Arc<dyn PresenceBackend>)>,
        clock: Clock,
    ) -> PresenceHub {
        let slots: Vec<Slot> = backends
            .into_iter()
            .map(|(config, backend)| {
                let poll_interval = config.poll_interval();
                let default_ttl = match backend.mode() {
                    Mode::Push => 86_400,
                    Mode::Poll { .. } => (poll_interval.as_secs() * 3).max(60),
                };
                Slot {
                    name: config.name.clone(),
                    kind: backend.kind(),
                    rule: HandleRule {
                        schemes: config.schemes(),
                        template: config.handle.clone(),
                    },
                    ttl: chrono::Duration::seconds(
                        config
                            .ttl_secs
                            .unwrap_or(default_ttl)
                            .min(10 * 365 * 86_400) as i64,
                    ),
                    timeout: config.timeout(),
                    poll_interval,
                    cache: RwLock::new(HashMap::new()),
                    tracked: watch::channel(Arc::new(Vec::new())).0,
                    breaker: Mutex::new(Breaker::new(
                        3,
                        Duration::from_secs(10),
                        Duration::from_secs(300),
                    )),
                    polled: HealthCell::default(),
                    observations: AtomicU64::new(0),
                    backend,
                }
            })
            .collect();
        let directory = Directory::new(slots.len());
        PresenceHub(Arc::new(Inner {
            slots,
            directory: RwLock::new(directory),
            changes: broadcast::channel(16_384).0,
            clock,
            stop: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            reporting: Mutex::new(()),
        }))
    }

    pub fn enabled(&self) -> bool {
        !self.0.slots.is_empty()
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.0.clock)()
    }

    /// Starts every backend: push backends' own tasks, and a poll loop for polled ones.
    pub fn start(&self) {
        let mut tasks = Vec::new();
        for (i, slot) in self.0.slots.iter().enumerate() {
            let ctx = RunContext {
                sink: PresenceSink {
                    hub: Arc::downgrade(&self.0),
                    slot: i,
                },
                tracked: slot.tracked.subscribe(),
                stop: self.0.stop.subscribe(),
            };
            match slot.backend.mode() {
                Mode::Push => tasks.push(tokio::spawn(slot.backend.clone().run(ctx))),
                Mode::Poll { batch } => {
                    tasks.push(tokio::spawn(self.clone().poll_loop(i, batch.max(1))))
                }
            }
        }
        if let Ok(mut all) = self.0.tasks.lock() {
            all.extend(tasks);
        }
    }

    /// Tells backends and SSE streams to stop, without waiting: the server calls it as soon as
    /// it is asked to shut down, so open streams end before it drains connections.
    pub fn begin_shutdown(&self) {
        let _ = self.0.stop.send(true);
    }

    /// Turns true when the hub is shutting down.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.0.stop.subscribe()
    }

    /// Stops every backend task and waits for them (5 s each at most; then they are aborted).
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        let tasks: Vec<JoinHandle<()>> = self
            .0
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for mut task in tasks {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                tracing::warn!("a presence task did not stop within 5 s; aborting it");
                task.abort();
            }
        }
    }

    async fn poll_loop(self, i: usize, batch: usize) {
        let weak = Arc::downgrade(&self.0);
        let mut tracked = self.0.slots[i].tracked.subscribe();
        let mut stop = self.0.stop.subscribe();
        drop(self);
        // Where the last round stopped when it was rate limited: the next one resumes there.
        let mut resume = 0usize;
        loop {
            let Some(hub) = weak.upgrade().map(PresenceHub) else {
                return;
            };
            let slot = &hub.0.slots[i];
            let handles = tracked.borrow_and_update().clone();
            let chunks: Vec<&[String]> = handles.chunks(batch).collect();
            if resume >= chunks.len() {
                resume = 0;
            }
            let mut polled: std::collections::HashSet<String> = handles.iter().cloned().collect();
            let mut wait = slot.poll_interval;
            let mut limited = false;
            // Round-robin from `resume`, so a rate limit does not starve the tail of the list.
            let order = (resume..chunks.len()).chain(0..resume);
            resume = 0;
            for n in order {
                if *stop.borrow() {
                    return;
                }
                if let Some(retry_after) = hub.poll_chunk(i, chunks[n]).await {
                    wait = retry_after;
                    limited = true;
                    resume = n;
                    break;
                }
            }
            drop(hub);
            // Wait out the interval (or Retry-After). People added meanwhile are polled at
            // once, unless the backend asked us to back off; the wait itself is not cut short.
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    changed = tracked.changed(), if !limited => {
                        if changed.is_err() {
                            return;
                        }
                        let fresh: Vec<String> = tracked
                            .borrow_and_update()
                            .iter()
                            .filter(|h| !polled.contains(*h))
                            .cloned()
                            .collect();
                        let Some(hub) = weak.upgrade().map(PresenceHub) else {
                            return;
                        };
                        for chunk in fresh.chunks(batch) {
                            if *stop.borrow() {
                                return;
                            }
                            if hub.poll_chunk(i, chunk).await.is_some() {
                                // Rate limited: the rest waits for the next round.
                                limited = true;
                                break;
                            }
                            polled.extend(chunk.iter().cloned());
                        }
                    }
                    _ = stopped(&mut stop) => return,
                }
            }
        }
    }

    /// Polls one chunk: reports what came back, or marks the chunk unknown on failure.
    /// `Some(wait)` when the backend is rate limited.
    async fn poll_chunk(&self, i: usize, chunk: &[String]) -> Option<Duration> {
        let slot = &self.0.slots[i];
        let allowed = slot
            .breaker
            .lock()
            .map(|b| b.allow(Instant::now()))
            .unwrap_or(true);
        if !allowed {
            self.mark_unknown(i, chunk);
            return None;
        }
        let deadline = slot.backend.fetch_deadline(slot.timeout, chunk.len());
        let outcome = tokio::time::timeout(deadline, slot.backend.fetch(chunk)).await;
        let (got, error) = match outcome {
            Ok(Ok(observations)) => (observations, None),
            Ok(Err(BackendError::Partial(partial))) => {
                let PartialFetch {
                    observations,
                    error,
                } = *partial;
                (observations, Some(error))
            }
            Ok(Err(e)) => (Vec::new(), Some(e)),
            Err(_) => (
                Vec::new(),
                Some(BackendError::Unreachable(format!(
                    "no answer within {deadline:?}"
                ))),
            ),
        };
        // Handles the failure left without an answer.
        let rest: Vec<String> = if error.is_some() {
            let answered: std::collections::HashSet<&str> =
                got.iter().map(|o| o.handle.as_str()).collect();
            chunk
                .iter()
                .filter(|h| !answered.contains(h.as_str()))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        match error {
            None => {
                if let Ok(mut b) = slot.breaker.lock() {
                    b.success();
                }
                slot.polled.up(self.now());
                self.report(i, got);
                None
            }
            Some(BackendError::RateLimited(retry_after)) => {
                // Not a failure: the cache keeps serving until the TTL runs out.
                tracing::info!(backend = %slot.name, ?retry_after, "presence backend rate limited");
                self.report(i, got);
                Some(retry_after.clamp(Duration::from_millis(100), Duration::from_secs(3600)))
            }
            Some(e) => {
                tracing::warn!(backend = %slot.name, error = %e, "presence backend failed");
                if let Ok(mut b) = slot.breaker.lock() {
                    b.failure(Instant::now());
                }
                slot.polled.down(e.to_string());
                self.report(i, got);
                self.mark_unknown(i, &rest);
                None
            }
        }
    }

    fn mark_unknown(&self, i: usize, handles: &[String]) {
        let now = self.now();
        let observations = handles
            .iter()
            .map(|h| Observation {
                handle: h.clone(),
                state: ChannelState::unknown(now),
            })
            .collect();
        self.report(i, observations);
    }

    /// Stores what backend `i` observed and broadcasts the people whose presence changed.
    /// Handles the directory does not track are ignored (the cache holds tracked handles only).
    pub fn report(&self, i: usize, observations: Vec<Observation>) {
        self.store(i, observations, false);
    }

    /// `report`, but an observation older than the cached one for its handle is dropped (events
    /// from outside, like webhooks, may arrive late and out of order).
    pub fn report_newer(&self, i: usize, observations: Vec<Observation>) {
        self.store(i, observations, true);
    }

    fn store(&self, i: usize, observations: Vec<Observation>, newer_only: bool) {
        let Some(slot) = self.0.slots.get(i) else {
            return;
        };
        slot.observations
            .fetch_add(observations.len() as u64, Ordering::Relaxed);
        // One report at a time, from the cache write to the broadcast: two reporters cannot
        // broadcast their merges in the opposite order of their writes.
        let _serial = self.0.reporting.lock();
        let observations: Vec<Observation> = match self.0.directory.read() {
            Ok(directory) => observations
                .into_iter()
                .filter(|o| directory.by_handle[i].contains_key(&o.handle))
                .collect(),
            Err(_) => return,
        };
        let now = self.now();
        let mut changed = Vec::new();
        if let Ok(mut cache) = slot.cache.write() {
            for o in observations {
                let differs = match cache.get(&o.handle) {
                    Some(old) if newer_only && o.state.observed_at < old.observed_at => continue,
                    Some(old) => !same_state(old, &o.state) || now - old.observed_at > slot.ttl,
                    None => true,
                };
                if differs {
                    changed.push(o.handle.clone());
                }
                cache.insert(o.handle, o.state);
            }
        }
        if changed.is_empty() || self.0.changes.receiver_count() == 0 {
            return;
        }
        let mut people = BTreeSet::new();
        if let Ok(directory) = self.0.directory.read() {
            for handle in &changed {
                if let Some(ids) = directory.by_handle[i].get(handle) {
                    people.extend(ids.iter().copied());
                }
            }
        }
        for id in people {
            let presence = self.lookup(id);
            let _ = self
                .0
                .changes
                .send(Arc::new(PresenceChange { id, presence }));
        }
    }

    fn merge_handles(&self, handles: &[(usize, String)]) -> Presence {
        let now = self.now();
        let guards: Vec<_> = self.0.slots.iter().map(|s| s.cache.read().ok()).collect();
        let inputs: Vec<ChannelInput<'_>> = handles
            .iter()
            .map(|(i, handle)| {
                let slot = &self.0.slots[*i];
                ChannelInput {
                    backend: &slot.name,
                    uri: handle,
                    ttl: slot.ttl,
                    state: guards[*i].as_ref().and_then(|c| c.get(handle)),
                }
            })
            .collect();
        merge(&inputs, now)
    }

    /// Everyone whose merged presence is `available` now: a full reading, one merge per person
    /// (a second for a million people; run it off the async workers).
    pub fn available_now(&self) -> std::collections::HashSet<Uuid> {
        // The directory is read a few thousand people at a time: a writer waiting for it (and
        // lookups queued behind that writer) never waits for a million people's handles.
        let ids: Vec<Uuid> = self
            .0
            .directory
            .read()
            .map(|d| d.people.keys().copied().collect())
            .unwrap_or_default();
        let mut available = std::collections::HashSet::new();
        for chunk in ids.chunks(4_096) {
            let people: Vec<(Uuid, Vec<(usize, String)>)> = self
                .0
                .directory
                .read()
                .map(|d| {
                    chunk
                        .iter()
                        .filter_map(|id| d.people.get(id).map(|h| (*id, h.clone())))
                        .collect()
                })
                .unwrap_or_default();
            available.extend(
                people
                    .into_iter()
                    .filter(|(_, handles)| {
                        self.merge_handles(handles).availability == Availability::Available
                    })
                    .map(|(id, _)| id),
            );
        }
        available
    }

    /// A person's merged presence, from memory.
    pub fn lookup(&self, id: Uuid) -> Presence {
        let handles = self
            .0
            .directory
            .read()
            .ok()
            .and_then(|d| d.people.get(&id).cloned())
            .unwrap_or_default();
        self.merge_handles(&handles)
    }

    fn handles_of(&self, person: &PersonAttrs) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (i, slot) in self.0.slots.iter().enumerate() {
            for handle in slot.rule.handles(person) {
                out.push((i, handle));
            }
        }
        out
    }

    /// Presence of a person the directory may not know yet (say, imported a second ago).
    pub fn lookup_attrs(&self, person: &PersonAttrs) -> Presence {
        let known = self
            .0
            .directory
            .read()
            .ok()
            .and_then(|d| d.people.get(&person.id).cloned());
        match known {
            Some(handles) => self.merge_handles(&handles),
            None => self.merge_handles(&self.handles_of(person)),
        }
    }

    /// Adds merged presence to search hits (when any backend is configured).
    pub fn decorate_summaries(&self, items: &mut [PersonSummary]) {
        if !self.enabled() {
            return;
        }
        for item in items {
            let attrs = PersonAttrs {
                id: item.id,
                im: item.im.clone(),
                emails: item.emails.clone(),
                ..Default::default()
            };
            item.presence = Some(self.lookup_attrs(&attrs));
        }
    }

    /// Adds merged presence to a person (when any backend is configured).
    pub fn decorate_person(&self, person: &mut Person) {
        if !self.enabled() {
            return;
        }
        let attrs = PersonAttrs {
            id: person.id,
            im: person.im.clone(),
            emails: person.emails.clone(),
            given_name: person.given_name.clone(),
            family_name: person.family_name.clone(),
            external_id: person.sources.first().map(|s| s.external_id.clone()),
        };
        person.presence = Some(self.lookup_attrs(&attrs));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<PresenceChange>> {
        self.0.changes.subscribe()
    }

    /// Replaces the directory with these people.
    pub fn set_people(&self, people: &[PersonAttrs]) {
        let mut fresh = Directory::new(self.0.slots.len());
        for person in people {
            fresh.upsert(person.id, self.handles_of(person));
        }
        if let Ok(mut directory) = self.0.directory.write() {
            *directory = fresh;
        }
        self.publish_tracked();
    }

    /// Applies changed and deleted people to the directory.
    pub fn update_people(&self, present: &[PersonAttrs], deleted: &[Uuid]) {
        let mut changed = false;
        if let Ok(mut directory) = self.0.directory.write() {
            for id in deleted {
                changed |= directory.people.contains_key(id);
                directory.remove(*id);
            }
            for person in present {
                changed |= directory.upsert(person.id, self.handles_of(person));
            }
        }
        if changed {
            self.publish_tracked();
        }
    }

    fn publish_tracked(&self) {
        let Ok(directory) = self.0.directory.read() else {
            return;
        };
        for (i, slot) in self.0.slots.iter().enumerate() {
            let handles = directory.tracked(i);
            // People and handles that went away leave the cache.
            if let Ok(mut cache) = slot.cache.write() {
                cache.retain(|handle, _| directory.by_handle[i].contains_key(handle));
            }
            slot.tracked.send_if_modified(|current| {
                if **current == handles {
                    false
                } else {
                    *current = Arc::new(handles);
                    true
                }
            });
        }
    }

    /// Loads the directory from PostgreSQL, then follows the change log until shutdown.
    pub async fn follow_directory(self, pool: PgPool) {
        if !self.enabled() {
            return;
        }
        let mut stop = self.0.stop.subscribe();
        let mut position = None;
        loop {
            let step =
                match position {
                    None => directory::load_all(&pool).await.map(|(seq, people)| {
                        self.set_people(&people);
                        seq
                    }),
                    Some(after) => directory::load_changes(&pool, after).await.map(
                        |(seq, present, deleted)| {
                            self.update_people(&present, &deleted);
                            seq
                        },
                    ),
                };
            match step {
                Ok(seq) => position = Some(seq),
                Err(e) => tracing::warn!(error = %e, "presence directory refresh failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stopped(&mut stop) => return,
            }
        }
    }

    pub fn has_webhook_token(&self, token: &str) -> bool {
        self.0
            .slots
            .iter()
            .any(|s| s.backend.as_webhook().is_some_and(|h| h.accepts(token)))
    }

    /// Webhook events: the token picks the backend.
    pub fn ingest_webhook(
        &self,
        token: &str,
        events: Vec<webhook::WebhookEvent>,
    ) -> Result<usize, webhook::WebhookError> {
        let Some((i, hook)) = self.0.slots.iter().enumerate().find_map(|(i, s)| {
            s.backend
                .as_webhook()
                .filter(|h| h.accepts(token))
                .map(|h| (i, h))
        }) else {
            return Err(webhook::WebhookError::Unauthorized);
        };
        let observations = hook.accept(events, self.now())?;
        let n = observations.len();
        self.report_newer(i, observations);
        Ok(n)
    }

    pub fn health(&self) -> Vec<BackendHealth> {
        let now = Instant::now();
        self.0
            .slots
            .iter()
            .map(|slot| {
                let circuit_open = slot.breaker.lock().map(|b| b.is_open(now)).unwrap_or(false);
                let health = match slot.backend.mode() {
                    Mode::Push => slot.backend.health(),
                    Mode::Poll { .. } => {
                        let mut h = slot.polled.get();
                        let own = slot.backend.health();
                        if own.status == HealthStatus::Down && h.status != HealthStatus::Down {
                            h = own;
                        }
                        h
                    }
                };
                BackendHealth {
                    name: slot.name.clone(),
                    kind: slot.kind.to_string(),
                    health,
                    circuit_open,
                    tracked: slot.tracked.borrow().len(),
                }
            })
            .collect()
    }

    /// Prometheus text lines.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# TYPE switchboard_presence_backend_up gauge\n# TYPE switchboard_presence_observations_total counter\n# TYPE switchboard_presence_tracked_handles gauge\n# TYPE switchboard_presence_backend_failures_total counter"
        );
        for (slot, health) in self.0.slots.iter().zip(self.health()) {
            let labels = format!(
                "backend=\"{}\",kind=\"{}\"",
                slot.name.replace('"', ""),
                slot.kind
            );
            let up = u8::from(health.health.status == HealthStatus::Up && !health.circuit_open);
            let _ = writeln!(out, "switchboard_presence_backend_up{{{labels}}} {up}");
            let _ = writeln!(
                out,
                "switchboard_presence_observations_total{{{labels}}} {}",
                slot.observations.load(Ordering::Relaxed)
            );
            let _ = writeln!(
                out,
                "switchboard_presence_tracked_handles{{{labels}}} {}",
                health.tracked
            );
            let _ = writeln!(
                out,
                "switchboard_presence_backend_failures_total{{{labels}}} {}",
                health.health.failures
            );
        }
        let _ = writeln!(
            out,
            "# TYPE switchboard_presence_stream_clients gauge\nswitchboard_presence_stream_clients {}",
            self.0.changes.receiver_count()
        );
        out
    }

    /// The hub's cache of one backend, by name (tests and diagnostics).
    pub fn cached(&self, backend: &str, handle: &str) -> Option<ChannelState> {
        let slot = self.0.slots.iter().find(|s| s.name == backend)?;
        slot.cache.read().ok()?.get(handle).cloned()
    }
}
