//! The one conformance suite every presence backend passes, and helpers for presence tests.
#![allow(dead_code)]

pub mod prosody;
pub mod synapse;

use std::sync::Arc;
use std::time::Duration;

use switchboard::presence::{
    Availability, BackendConfig, BoxFuture, HealthStatus, PersonAttrs, PresenceBackend,
    PresenceChange, PresenceHub,
};
use tokio::sync::broadcast;
use uuid::Uuid;

/// The system a backend reads, driven the way its users would drive it.
pub trait Remote: Send + Sync {
    /// Handles of (at least two) people the system knows.
    fn handles(&self) -> Vec<String>;
    /// The backend's configuration (kind-specific keys filled in).
    fn config(&self) -> BackendConfig;
    /// A fresh backend built from `config()`.
    fn backend(&self) -> Arc<dyn PresenceBackend>;
    /// Makes `handle` show `availability` (and a status text) in the remote system.
    fn set<'a>(
        &'a self,
        hub: &'a PresenceHub,
        handle: &'a str,
        availability: Availability,
        status: Option<&'a str>,
    ) -> BoxFuture<'a, ()>;
    /// Three distinct states the system can show, set in this order (Matrix has no
    /// do-not-disturb, for one).
    fn states(&self) -> [Availability; 3] {
        [
            Availability::Away,
            Availability::DoNotDisturb,
            Availability::Available,
        ]
    }
    /// Whether the system reports a status text with presence (Slack's presence API does not).
    fn has_status_text(&self) -> bool {
        true
    }
}

/// Waits for a change of `id` that satisfies `pred`, failing after `within`.
pub async fn wait_change(
    rx: &mut broadcast::Receiver<Arc<PresenceChange>>,
    id: Uuid,
    within: Duration,
    what: &str,
    pred: impl Fn(&PresenceChange) -> bool,
) -> Arc<PresenceChange> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let change = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no change within {within:?}: {what}"))
            .expect("change stream open");
        if change.id == id && pred(&change) {
            return change;
        }
    }
}

/// Waits until `id`'s presence satisfies `pred`: now, or after a change.
pub async fn wait_presence(
    hub: &PresenceHub,
    rx: &mut broadcast::Receiver<Arc<PresenceChange>>,
    id: Uuid,
    within: Duration,
    what: &str,
    pred: impl Fn(&switchboard::presence::Presence) -> bool,
) -> switchboard::presence::Presence {
    let now = hub.lookup(id);
    if pred(&now) {
        return now;
    }
    wait_change(rx, id, within, what, |c| pred(&c.presence))
        .await
        .presence
        .clone()
}

pub fn person(n: u128, handle: &str) -> PersonAttrs {
    PersonAttrs {
        id: Uuid::from_u128(n),
        im: vec![handle.to_string()],
        ..Default::default()
    }
}

/// The conformance suite: what every backend must do, whatever system it reads.
pub async fn conformance(remote: &dyn Remote) {
    let handles = remote.handles();
    assert!(handles.len() >= 2, "the remote must know two people");
    let config = remote.config();
    let name = config.name.clone();
    let backend = remote.backend();
    let hub = PresenceHub::with_backends(
        vec![(config, backend.clone())],
        switchboard::presence::system_clock(),
    );
    let people: Vec<PersonAttrs> = handles
        .iter()
        .enumerate()
        .map(|(i, h)| person(i as u128 + 1, h))
        .collect();
    hub.set_people(&people);
    let mut rx = hub.subscribe();
    hub.start();
    let within = Duration::from_secs(10);
    let (a, b) = (people[0].id, people[1].id);

    let with_text = remote.has_status_text();
    let [first, second, third] = remote.states();

    // 1. A state set in the remote system reaches the hub, with its status text.
    remote.set(&hub, &handles[0], first, Some("lunch")).await;
    let presence = wait_presence(&hub, &mut rx, a, within, "first state", |p| {
        p.availability == first && (!with_text || p.status_message.as_deref() == Some("lunch"))
    })
    .await;
    let channel = &presence.channels[0];
    assert_eq!(channel.backend, name);
    assert_eq!(channel.uri, handles[0]);
    assert!(channel.observed_at.is_some());
    assert!(presence.observed_at.is_some());

    // 2. A later change replaces it.
    remote.set(&hub, &handles[0], second, None).await;
    wait_presence(&hub, &mut rx, a, within, "second state", |p| {
        p.availability == second
    })
    .await;

    // 3. People are independent.
    remote.set(&hub, &handles[1], third, None).await;
    wait_presence(&hub, &mut rx, b, within, "other person", |p| {
        p.availability == third
    })
    .await;
    assert_eq!(hub.lookup(a).availability, second);

    // 4. fetch answers for known handles and says nothing wrong about unknown ones.
    let stranger = format!("{}-nobody", handles[0]);
    let fetched = tokio::time::timeout(
        within,
        backend.fetch(&[handles[0].clone(), stranger.clone()]),
    )
    .await
    .expect("fetch answers")
    .expect("fetch succeeds");
    let mine = fetched
        .iter()
        .find(|o| o.handle == handles[0])
        .expect("fetch reports the known handle");
    assert_eq!(mine.state.availability, second);
    assert!(fetched
        .iter()
        .filter(|o| o.handle == stranger)
        .all(|o| o.state.availability == Availability::Unknown));

    // 5. It says it is healthy, and /readyz-style health names it.
    assert_eq!(backend.health().status, HealthStatus::Up);
    let health = hub.health();
    assert_eq!(health[0].name, name);
    assert_eq!(health[0].tracked, handles.len());
    assert!(hub.metrics().contains(&format!("backend=\"{name}\"")));

    hub.shutdown().await;
}

/// Reads Server-Sent Events frames from a streaming response.
#[derive(Default)]
pub struct Sse {
    buffer: String,
}

impl Sse {
    /// The data (JSON) of the next event that satisfies `pred`, failing after `within`.
    pub async fn next(
        &mut self,
        response: &mut reqwest::Response,
        within: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let data: String = frame
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue;
                }
                let value: serde_json::Value = serde_json::from_str(&data).expect("json data");
                if pred(&value) {
                    return value;
                }
            }
            let chunk = tokio::time::timeout_at(deadline, response.chunk())
                .await
                .expect("an event in time")
                .expect("stream readable")
                .expect("stream open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}
