//! The Microsoft Graph backend against a local server replaying Graph's documented formats:
//! OAuth2 client credentials (`/{tenant}/oauth2/v2.0/token`), `POST
//! /communications/getPresencesByUserId` (≤ 650 ids), 401 on an expired token, 429 with
//! Retry-After; plus faults (down at start, hanging, garbage).

mod presence_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use presence_support::prosody::free_port;
use presence_support::{conformance, person, wait_presence, Remote};
use serde_json::json;
use switchboard::presence::{
    build_backend, system_clock, Availability, BackendConfig, BoxFuture, HealthStatus, PersonAttrs,
    PresenceBackend, PresenceConfig, PresenceHub,
};

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Normal,
    Hang,
    Garbage,
}

/// availability, activity, status message
type GraphState = (String, String, Option<String>);

struct Graph {
    presences: Mutex<HashMap<String, GraphState>>,
    valid_tokens: Mutex<Vec<String>>,
    token_requests: AtomicU32,
    batches: Mutex<Vec<(Instant, usize)>>,
    /// The first id of each batch, in order.
    first_ids: Mutex<Vec<String>>,
    throttle_next: AtomicU32,
    /// The n-th presence request (1-based) is answered 429 (0: none).
    throttle_request: AtomicU32,
    behaviour: Mutex<Behaviour>,
}

type Shared = Arc<Graph>;

impl Graph {
    fn new() -> Shared {
        Arc::new(Graph {
            presences: Mutex::new(HashMap::new()),
            valid_tokens: Mutex::new(Vec::new()),
            token_requests: AtomicU32::new(0),
            batches: Mutex::new(Vec::new()),
            first_ids: Mutex::new(Vec::new()),
            throttle_next: AtomicU32::new(0),
            throttle_request: AtomicU32::new(0),
            behaviour: Mutex::new(Behaviour::Normal),
        })
    }

    fn set(&self, id: &str, availability: &str, activity: &str, status: Option<&str>) {
        self.presences.lock().expect("lock").insert(
            id.to_string(),
            (
                availability.to_string(),
                activity.to_string(),
                status.map(str::to_string),
            ),
        );
    }

    /// Every token issued so far stops working, as when they expire.
    fn expire_tokens(&self) {
        self.valid_tokens.lock().expect("lock").clear();
    }
}

async fn token(State(g): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let n = g.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let ok = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id").map(String::as_str) == Some("app-id")
        && form.get("client_secret").map(String::as_str) == Some("app-secret")
        && form.get("scope").map(String::as_str) == Some("https://graph.microsoft.com/.default");
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})),
        )
            .into_response();
    }
    let access_token = format!("token-{n}");
    g.valid_tokens
        .lock()
        .expect("lock")
        .push(access_token.clone());
    Json(json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": access_token}))
        .into_response()
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn presences(
    State(g): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    let behaviour = *g.behaviour.lock().expect("lock");
    if behaviour == Behaviour::Hang {
        std::future::pending::<()>().await;
    }
    if behaviour == Behaviour::Garbage {
        return (StatusCode::OK, "<html>definitely not json").into_response();
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    if !g.valid_tokens.lock().expect("lock").contains(&bearer) {
        return graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
        );
    }
    let Some(ids) = body["ids"].as_array() else {
        return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "ids missing");
    };
    let request = {
        let mut batches = g.batches.lock().expect("lock");
        batches.push((Instant::now(), ids.len()));
        batches.len() as u32
    };
    g.first_ids.lock().expect("lock").push(
        ids.first()
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string(),
    );
    if g.throttle_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
        || g.throttle_request.load(Ordering::SeqCst) == request
    {
        let mut r = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests.",
        );
        r.headers_mut()
            .insert("retry-after", "1".parse().expect("header"));
        return r;
    }
    if ids.len() > 650 {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The number of ids exceeds 650.",
        );
    }
    let known = g.presences.lock().expect("lock");
    let value: Vec<serde_json::Value> = ids
        .iter()
        .filter_map(|id| id.as_str())
        .map(|id| {
            let (availability, activity, status) = known.get(id).cloned().unwrap_or((
                "PresenceUnknown".into(),
                "PresenceUnknown".into(),
                None,
            ));
            json!({
                "id": id,
                "availability": availability,
                "activity": activity,
                "statusMessage": status.map(|s| json!({"message": {"content": s, "contentType": "text"}, "expiryDateTime": {"dateTime": "9999-12-30T23:00:00.0000000", "timeZone": "UTC"}})),
                "outOfOfficeSettings": {"message": null, "isOutOfOffice": false}
            })
        })
        .collect();
    Json(json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.presence)", "value": value}))
        .into_response()
}

async fn serve_graph(g: Shared, listener: tokio::net::TcpListener) {
    let app = Router::new()
        .route("/tenant-1/oauth2/v2.0/token", post(token))
        .route("/v1.0/communications/getPresencesByUserId", post(presences))
        .with_state(g);
    tokio::spawn(async move { axum::serve(listener, app).await });
}

async fn start_graph(g: Shared) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    serve_graph(g, listener).await;
    addr
}

fn teams_config(addr: &str) -> BackendConfig {
    let mut c = BackendConfig::new("teams", "graph");
    c.tenant = Some("tenant-1".into());
    c.client_id = Some("app-id".into());
    c.client_secret = Some("app-secret".into());
    c.token_url = Some(format!("http://{addr}/tenant-1/oauth2/v2.0/token"));
    c.api_url = Some(format!("http://{addr}/v1.0"));
    c.poll_interval_secs = Some(0.1);
    c.timeout_secs = Some(1.0);
    c
}

const A: &str = "fa8bf3dc-eca7-46b7-bad1-db199b62afc3";
const B: &str = "66825e03-7ef5-42da-9069-724602c31f6b";

struct GraphRemote {
    graph: Shared,
    addr: String,
}

fn graph_name(a: Availability) -> &'static str {
    match a {
        Availability::Available => "Available",
        Availability::Busy => "Busy",
        Availability::DoNotDisturb => "DoNotDisturb",
        Availability::BeRightBack => "BeRightBack",
        Availability::Away => "Away",
        Availability::Offline => "Offline",
        Availability::Unknown => "PresenceUnknown",
    }
}

impl Remote for GraphRemote {
    fn handles(&self) -> Vec<String> {
        vec![format!("msteams:{A}"), format!("msteams:{B}")]
    }
    fn config(&self) -> BackendConfig {
        teams_config(&self.addr)
    }
    fn backend(&self) -> Arc<dyn PresenceBackend> {
        build_backend(&self.config(), system_clock()).expect("backend")
    }
    fn set<'a>(
        &'a self,
        _hub: &'a PresenceHub,
        handle: &'a str,
        availability: Availability,
        status: Option<&'a str>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let id = handle.strip_prefix("msteams:").expect("teams handle");
            let name = graph_name(availability);
            self.graph.set(id, name, name, status);
        })
    }
}

#[tokio::test]
async fn graph_backend_passes_the_conformance_suite() {
    let graph = Graph::new();
    let addr = start_graph(graph.clone()).await;
    conformance(&GraphRemote { graph, addr }).await;
}

fn hub(addr: &str, people: &[PersonAttrs]) -> PresenceHub {
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![teams_config(addr)],
            ..Default::default()
        },
        system_clock(),
    )
    .expect("hub");
    hub.set_people(people);
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
async fn large_directories_are_polled_in_batches_of_at_most_650() {
    let graph = Graph::new();
    let addr = start_graph(graph.clone()).await;
    let people: Vec<PersonAttrs> = (0..1400u128)
        .map(|n| person(n + 1, &format!("msteams:{}", uuid::Uuid::from_u128(n + 1))))
        .collect();
    graph.set(
        &uuid::Uuid::from_u128(1400).to_string(),
        "Busy",
        "InACall",
        None,
    );
    let hub = hub(&addr, &people);
    hub.start();
    until("three batches", Duration::from_secs(10), || {
        graph.batches.lock().expect("lock").len() >= 3
    })
    .await;
    let batches: Vec<usize> = graph.batches.lock().expect("lock")[..3]
        .iter()
        .map(|(_, n)| *n)
        .collect();
    assert!(batches.iter().all(|n| *n <= 650), "{batches:?}");
    assert_eq!(batches.iter().sum::<usize>(), 1400, "{batches:?}");
    until("the last person", Duration::from_secs(5), || {
        hub.lookup(uuid::Uuid::from_u128(1400)).availability == Availability::Busy
    })
    .await;
    let p = hub.lookup(uuid::Uuid::from_u128(1400));
    assert_eq!(p.activity, Some(switchboard::presence::Activity::InCall));
    assert_eq!(
        hub.lookup(uuid::Uuid::from_u128(1)).availability,
        Availability::Unknown,
        "PresenceUnknown"
    );
    assert_eq!(
        graph.token_requests.load(Ordering::SeqCst),
        1,
        "the token is reused"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn throttling_is_honoured_and_an_expired_token_is_renewed() {
    let graph = Graph::new();
    let addr = start_graph(graph.clone()).await;
    graph.set(A, "Available", "Available", None);
    graph.throttle_next.store(1, Ordering::SeqCst);
    let hub = hub(&addr, &[person(1, &format!("msteams:{A}"))]);
    let id = uuid::Uuid::from_u128(1);
    let mut rx = hub.subscribe();
    hub.start();
    wait_presence(
        &hub,
        &mut rx,
        id,
        Duration::from_secs(10),
        "after 429",
        |p| p.availability == Availability::Available,
    )
    .await;
    {
        let batches = graph.batches.lock().expect("lock");
        assert!(batches.len() >= 2, "the throttled call and the retry");
        let waited = batches[1].0 - batches[0].0;
        assert!(
            waited >= Duration::from_millis(900),
            "retried after {waited:?}, before Retry-After"
        );
    }
    assert_eq!(
        hub.health()[0].health.status,
        HealthStatus::Up,
        "429 is not a failure"
    );

    graph.expire_tokens();
    graph.set(A, "DoNotDisturb", "Presenting", Some("demo to the board"));
    let p = wait_presence(
        &hub,
        &mut rx,
        id,
        Duration::from_secs(10),
        "new token",
        |p| p.availability == Availability::DoNotDisturb,
    )
    .await;
    assert_eq!(
        p.activity,
        Some(switchboard::presence::Activity::Presenting)
    );
    assert_eq!(p.status_message.as_deref(), Some("demo to the board"));
    assert_eq!(graph.token_requests.load(Ordering::SeqCst), 2);
    assert_eq!(hub.health()[0].health.status, HealthStatus::Up);
    hub.shutdown().await;
}

#[tokio::test]
async fn a_hanging_graph_turns_unknown_after_the_timeout_and_opens_the_circuit() {
    let graph = Graph::new();
    let addr = start_graph(graph.clone()).await;
    graph.set(A, "Busy", "InAMeeting", None);
    let hub = hub(&addr, &[person(1, &format!("msteams:{A}"))]);
    let id = uuid::Uuid::from_u128(1);
    let mut rx = hub.subscribe();
    hub.start();
    wait_presence(&hub, &mut rx, id, Duration::from_secs(10), "first", |p| {
        p.availability == Availability::Busy
    })
    .await;
    *graph.behaviour.lock().expect("lock") = Behaviour::Hang;
    let hung = Instant::now();
    wait_presence(&hub, &mut rx, id, Duration::from_secs(10), "hung", |p| {
        p.availability == Availability::Unknown
    })
    .await;
    assert!(
        hung.elapsed() >= Duration::from_millis(900),
        "not before its timeout"
    );
    // Answered from memory while the backend hangs.
    assert_eq!(hub.lookup(id).availability, Availability::Unknown);
    let detail = hub.health()[0].health.detail.clone().unwrap_or_default();
    assert!(detail.contains("no answer within"), "{detail}");
    until("the circuit to open", Duration::from_secs(10), || {
        hub.health()[0].circuit_open
    })
    .await;
    assert_eq!(hub.health()[0].health.status, HealthStatus::Down);
    assert!(hub
        .metrics()
        .contains("switchboard_presence_backend_up{backend=\"teams\",kind=\"graph\"} 0"));
    hub.shutdown().await;
}

#[tokio::test]
async fn garbage_from_graph_is_a_failure_not_a_state() {
    let graph = Graph::new();
    let addr = start_graph(graph.clone()).await;
    *graph.behaviour.lock().expect("lock") = Behaviour::Garbage;
    let hub = hub(&addr, &[person(1, &format!("msteams:{A}"))]);
    hub.start();
    until("down", Duration::from_secs(5), || {
        hub.health()[0].health.status == HealthStatus::Down
    })
    .await;
    let detail = hub.health()[0].health.detail.clone().unwrap_or_default();
    assert!(detail.contains("getPresencesByUserId"), "{detail}");
    assert_eq!(
        hub.lookup(uuid::Uuid::from_u128(1)).availability,
        Availability::Unknown
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn graph_down_at_start_is_polled_once_it_is_up() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let hub = hub(&addr, &[person(1, &format!("msteams:{A}"))]);
    let id = uuid::Uuid::from_u128(1);
    let mut rx = hub.subscribe();
    hub.start();
    until("down", Duration::from_secs(5), || {
        hub.health()[0].health.status == HealthStatus::Down
    })
    .await;
    let graph = Graph::new();
    graph.set(A, "Away", "Away", None);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    serve_graph(graph, listener).await;
    // The circuit may have opened meanwhile: recovery waits for its cooldown (10 s).
    wait_presence(&hub, &mut rx, id, Duration::from_secs(20), "up", |p| {
        p.availability == Availability::Away
    })
    .await;
    assert_eq!(hub.health()[0].health.status, HealthStatus::Up);
    hub.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_are_reported() {
    let graph = Graph::new();
    let addr = start_graph(graph.clone()).await;
    let mut config = teams_config(&addr);
    config.client_secret = Some("wrong".into());
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![config],
            ..Default::default()
        },
        system_clock(),
    )
    .expect("hub");
    hub.set_people(&[person(1, &format!("msteams:{A}"))]);
    hub.start();
    until("down", Duration::from_secs(5), || {
        hub.health()[0].health.status == HealthStatus::Down
    })
    .await;
    let detail = hub.health()[0].health.detail.clone().unwrap_or_default();
    assert!(detail.contains("credentials"), "{detail}");
    assert!(
        !detail.contains("AADSTS"),
        "the endpoint's description is not echoed: {detail}"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn after_a_429_polling_resumes_at_the_throttled_batch_and_waits_even_for_new_people() {
    let graph = Graph::new();
    let addr = start_graph(graph.clone()).await;
    let mut people: Vec<PersonAttrs> = (0..1400u128)
        .map(|n| person(n + 1, &format!("msteams:{}", uuid::Uuid::from_u128(n + 1))))
        .collect();
    graph.throttle_request.store(2, Ordering::SeqCst);
    let hub = hub(&addr, &people);
    hub.start();
    until("the throttled batch", Duration::from_secs(30), || {
        graph.batches.lock().expect("lock").len() >= 2
    })
    .await;
    // Someone joins while the backend asked us to wait.
    people.push(person(
        5000,
        &format!("msteams:{}", uuid::Uuid::from_u128(5000)),
    ));
    hub.set_people(&people);
    until("the retry", Duration::from_secs(30), || {
        graph.batches.lock().expect("lock").len() >= 3
    })
    .await;
    let batches = graph.batches.lock().expect("lock").clone();
    let first_ids = graph.first_ids.lock().expect("lock").clone();
    assert_eq!(
        first_ids[2], first_ids[1],
        "the next call retries the throttled batch, not the first one"
    );
    let waited = batches[2].0 - batches[1].0;
    assert!(
        waited >= Duration::from_millis(900),
        "Retry-After honoured although the tracked set changed (next call after {waited:?})"
    );
    hub.shutdown().await;
}
