//! The Slack backend against a local server replaying Slack's documented Web API formats
//! (`users.getPresence`, `dnd.info`, `{"ok": false, "error": …}`, 429 with Retry-After).

mod presence_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use presence_support::{conformance, person, wait_presence, Remote};
use serde_json::json;
use switchboard::presence::{
    build_backend, system_clock, Availability, BackendConfig, BoxFuture, HealthStatus,
    PresenceBackend, PresenceConfig, PresenceHub,
};

const TOKEN: &str = "xoxb-test-token";

#[derive(Default)]
struct Slack {
    /// user → (presence, snoozing)
    users: Mutex<HashMap<String, (String, bool)>>,
    throttle_next: AtomicU32,
    /// From this call on (1-based), every call is answered 429 (0: never).
    throttle_from: AtomicU32,
    token_expired: AtomicBool,
    garbage: AtomicBool,
    calls: Mutex<Vec<(Instant, String)>>,
}

type Shared = Arc<Slack>;

fn check(s: &Slack, headers: &HeaderMap, method: &str) -> Option<Response> {
    s.calls
        .lock()
        .expect("lock")
        .push((Instant::now(), method.to_string()));
    let call = s.calls.lock().expect("lock").len() as u32;
    let from = s.throttle_from.load(Ordering::SeqCst);
    if from > 0 && call >= from {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response();
        r.headers_mut()
            .insert("retry-after", "1".parse().expect("header"));
        return Some(r);
    }
    if s.garbage.load(Ordering::SeqCst) {
        return Some((StatusCode::OK, "}{ not json").into_response());
    }
    if s.throttle_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response();
        r.headers_mut()
            .insert("retry-after", "1".parse().expect("header"));
        return Some(r);
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {TOKEN}") {
        return Some(Json(json!({"ok": false, "error": "invalid_auth"})).into_response());
    }
    if s.token_expired.load(Ordering::SeqCst) {
        return Some(Json(json!({"ok": false, "error": "token_expired"})).into_response());
    }
    None
}

async fn get_presence(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = check(&s, &headers, "users.getPresence") {
        return r;
    }
    let user = q.get("user").cloned().unwrap_or_default();
    match s.users.lock().expect("lock").get(&user) {
        Some((presence, _)) => Json(json!({"ok": true, "presence": presence, "online": presence == "active", "auto_away": false, "manual_away": presence == "away", "connection_count": 1})).into_response(),
        None => Json(json!({"ok": false, "error": "user_not_found"})).into_response(),
    }
}

async fn dnd_info(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = check(&s, &headers, "dnd.info") {
        return r;
    }
    let user = q.get("user").cloned().unwrap_or_default();
    let snoozing = s
        .users
        .lock()
        .expect("lock")
        .get(&user)
        .is_some_and(|(_, snooze)| *snooze);
    let now = chrono::Utc::now().timestamp();
    Json(json!({
        "ok": true, "dnd_enabled": true,
        "next_dnd_start_ts": now + 36_000, "next_dnd_end_ts": now + 72_000,
        "snooze_enabled": snoozing, "snooze_endtime": now + 3600, "snooze_remaining": 3600
    }))
    .into_response()
}

async fn start_slack(s: Shared) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let app = Router::new()
        .route("/api/users.getPresence", get(get_presence))
        .route("/api/dnd.info", get(dnd_info))
        .with_state(s);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn slack_config(addr: &str) -> BackendConfig {
    let mut c = BackendConfig::new("slack", "slack");
    c.token = Some(TOKEN.into());
    c.api_url = Some(format!("http://{addr}/api"));
    c.poll_interval_secs = Some(0.1);
    c.timeout_secs = Some(1.0);
    c
}

struct SlackRemote {
    slack: Shared,
    addr: String,
}

impl Remote for SlackRemote {
    fn handles(&self) -> Vec<String> {
        vec!["slack:U024BE7LH".into(), "slack:U0G9QF9C6".into()]
    }
    fn config(&self) -> BackendConfig {
        slack_config(&self.addr)
    }
    fn backend(&self) -> Arc<dyn PresenceBackend> {
        build_backend(&self.config(), system_clock()).expect("backend")
    }
    fn set<'a>(
        &'a self,
        _hub: &'a PresenceHub,
        handle: &'a str,
        availability: Availability,
        _status: Option<&'a str>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let user = handle.strip_prefix("slack:").expect("slack handle");
            let state = match availability {
                Availability::Away => ("away", false),
                Availability::DoNotDisturb => ("active", true),
                _ => ("active", false),
            };
            self.slack
                .users
                .lock()
                .expect("lock")
                .insert(user.to_string(), (state.0.to_string(), state.1));
        })
    }
    fn has_status_text(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn slack_backend_passes_the_conformance_suite() {
    let slack = Shared::default();
    let addr = start_slack(slack.clone()).await;
    conformance(&SlackRemote { slack, addr }).await;
}

fn hub(addr: &str) -> PresenceHub {
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![slack_config(addr)],
            ..Default::default()
        },
        system_clock(),
    )
    .expect("hub");
    hub.set_people(&[person(1, "slack:U024BE7LH")]);
    hub
}

async fn until(what: &str, within: Duration, check: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn rate_limits_are_honoured_and_an_expired_token_turns_channels_unknown() {
    let slack = Shared::default();
    slack
        .users
        .lock()
        .expect("lock")
        .insert("U024BE7LH".into(), ("active".into(), true));
    slack.throttle_next.store(1, Ordering::SeqCst);
    let addr = start_slack(slack.clone()).await;
    let hub = hub(&addr);
    let id = uuid::Uuid::from_u128(1);
    let mut rx = hub.subscribe();
    hub.start();
    let p = wait_presence(&hub, &mut rx, id, Duration::from_secs(10), "dnd", |p| {
        p.availability == Availability::DoNotDisturb
    })
    .await;
    assert!(p.until.is_some(), "snooze end");
    {
        let calls = slack.calls.lock().expect("lock");
        let waited = calls[1].0 - calls[0].0;
        assert!(
            waited >= Duration::from_millis(900),
            "retried after {waited:?}"
        );
    }
    assert_eq!(hub.health()[0].health.status, HealthStatus::Up);

    slack.token_expired.store(true, Ordering::SeqCst);
    wait_presence(&hub, &mut rx, id, Duration::from_secs(10), "expired", |p| {
        p.availability == Availability::Unknown
    })
    .await;
    let health = hub.health()[0].health.clone();
    assert_eq!(health.status, HealthStatus::Down);
    assert!(health.detail.unwrap_or_default().contains("token_expired"));
    hub.shutdown().await;
}

#[tokio::test]
async fn garbage_from_slack_is_a_failure_not_a_state() {
    let slack = Shared::default();
    slack.garbage.store(true, Ordering::SeqCst);
    let addr = start_slack(slack.clone()).await;
    let hub = hub(&addr);
    hub.start();
    until("down", Duration::from_secs(15), || {
        hub.health()[0].health.status == HealthStatus::Down
    })
    .await;
    assert_eq!(
        hub.lookup(uuid::Uuid::from_u128(1)).availability,
        Availability::Unknown
    );
    // The API was called and its answer refused, with the reason.
    assert!(!slack.calls.lock().expect("lock").is_empty());
    let detail = hub.health()[0].health.detail.clone().unwrap_or_default();
    assert!(detail.contains("users.getPresence answer"), "{detail}");
    hub.shutdown().await;
}

#[tokio::test]
async fn users_fetched_before_a_429_in_the_same_batch_are_kept() {
    let slack = Shared::default();
    for user in ["UAAAAAAA1", "UBBBBBBB2"] {
        slack
            .users
            .lock()
            .expect("lock")
            .insert(user.into(), ("away".into(), false));
    }
    // The first user's getPresence answers; every later call is throttled.
    slack.throttle_from.store(2, Ordering::SeqCst);
    let addr = start_slack(slack.clone()).await;
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![slack_config(&addr)],
            ..Default::default()
        },
        system_clock(),
    )
    .expect("hub");
    let people = [person(1, "slack:UAAAAAAA1"), person(2, "slack:UBBBBBBB2")];
    hub.set_people(&people);
    hub.start();
    until("the first user's state", Duration::from_secs(15), || {
        people
            .iter()
            .any(|p| hub.lookup(p.id).availability == Availability::Away)
    })
    .await;
    assert!(
        people
            .iter()
            .any(|p| hub.lookup(p.id).availability == Availability::Unknown),
        "the throttled user has no state yet"
    );
    assert_ne!(
        hub.health()[0].health.status,
        HealthStatus::Down,
        "429 is not a failure"
    );
    hub.shutdown().await;
}
