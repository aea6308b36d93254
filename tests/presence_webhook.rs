//! The webhook backend: the conformance suite, `POST /api/v1/presence/events` with its token and
//! errors, presence on the people API, and the SSE stream, over a real database and HTTP server.

mod common;
mod presence_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{options, TestApp};
use presence_support::{conformance, Remote};
use serde_json::json;
use switchboard::presence::{
    build_backend, directory, system_clock, Availability, BackendConfig, BoxFuture,
    PresenceBackend, PresenceConfig, PresenceHub,
};

const TOKEN: &str = "pbx-token-0123456789";

fn pbx_config() -> BackendConfig {
    let mut c = BackendConfig::new("pbx", "webhook");
    c.token = Some(TOKEN.into());
    c
}

struct WebhookRemote;

impl Remote for WebhookRemote {
    fn handles(&self) -> Vec<String> {
        vec![
            "sip:alice@pbx.example.com".into(),
            "tel:+442079460018".into(),
        ]
    }
    fn config(&self) -> BackendConfig {
        pbx_config()
    }
    fn backend(&self) -> Arc<dyn PresenceBackend> {
        build_backend(&pbx_config(), system_clock()).expect("backend")
    }
    fn set<'a>(
        &'a self,
        hub: &'a PresenceHub,
        handle: &'a str,
        availability: Availability,
        status: Option<&'a str>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let event = serde_json::from_value(json!({
                "handle": handle, "availability": availability.as_str(), "status_message": status
            }))
            .expect("event");
            hub.ingest_webhook(TOKEN, vec![event]).expect("accepted");
        })
    }
}

#[tokio::test]
async fn webhook_backend_passes_the_conformance_suite() {
    conformance(&WebhookRemote).await;
}

const STAFF: &str = "\
external_id,given_name,family_name,email,im
S1,Jane,Smith,jane.smith@example.com,sip:jane@pbx.example.com
S2,John,Smithers,john@example.com,
";

async fn app_with_pbx() -> (TestApp, PresenceHub) {
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![pbx_config()],
            ..Default::default()
        },
        system_clock(),
    )
    .expect("hub");
    let mut app = TestApp::with_presence(hub.clone()).await;
    app.import_csv(STAFF, &options("hr")).await.expect("import");
    let (_, people) = directory::load_all(&app.db.pool).await.expect("load");
    hub.set_people(&people);
    hub.start();
    (app, hub)
}

async fn post_events(
    app: &TestApp,
    token: Option<&str>,
    body: &str,
) -> (u16, String, serde_json::Value) {
    let mut request = axum::http::Request::post("/api/v1/presence/events")
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let (status, headers, json) = app
        .send(
            request
                .body(axum::body::Body::from(body.to_string()))
                .expect("request"),
        )
        .await;
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status.as_u16(), content_type, json)
}

#[tokio::test]
async fn events_need_the_token_and_a_valid_body() {
    let (app, _hub) = app_with_pbx().await;
    let good = r#"{"events":[{"handle":"sip:jane@pbx.example.com","availability":"busy","activity":"in_call"}]}"#;
    for token in [None, Some("wrong-token"), Some("")] {
        let (status, content_type, body) = post_events(&app, token, good).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["code"], "unauthorized");
    }
    for bad in [
        "not json",
        r#"{"events":[{"handle":"sip:jane@pbx.example.com"}]}"#,
        r#"{"events":[{"handle":"sip:jane@pbx.example.com","availability":"online"}]}"#,
        r#"{"events":[{"handle":"icq:1234","availability":"busy"}]}"#,
        r#"{"events":[{"handle":"xmpp:jane@corp","availability":"busy"}]}"#,
        r#"{"events":[{"handle":"sip:jane@pbx.example.com","availability":"busy","extra":1}]}"#,
    ] {
        let (status, content_type, body) = post_events(&app, Some(TOKEN), bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["code"], "invalid_parameter");
    }
    let (status, _, body) = post_events(&app, Some(TOKEN), good).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 1);
}

#[tokio::test]
async fn people_api_carries_merged_presence_with_channels() {
    let (app, _hub) = app_with_pbx().await;
    let (_, _, list) = app.get("/api/v1/people?q=smith").await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(
            item["presence"]["availability"], "unknown",
            "nothing reported yet"
        );
    }
    let event = r#"{"events":[{"handle":"sip:jane@pbx.example.com","availability":"busy","activity":"in_call","status_message":"on a call"}]}"#;
    assert_eq!(post_events(&app, Some(TOKEN), event).await.0, 200);

    let (_, _, list) = app.get("/api/v1/people?q=jane").await;
    let jane = &list["items"][0];
    assert_eq!(jane["display_name"], "Jane Smith");
    assert_eq!(jane["presence"]["availability"], "busy");
    assert_eq!(jane["presence"]["activity"], "in_call");
    assert_eq!(jane["presence"]["status_message"], "on a call");
    let channel = &jane["presence"]["channels"][0];
    assert_eq!(channel["backend"], "pbx");
    assert_eq!(channel["uri"], "sip:jane@pbx.example.com");
    assert_eq!(channel["availability"], "busy");
    assert!(channel["observed_at"].is_string());
    assert!(jane["presence"]["observed_at"].is_string());
    assert_eq!(
        jane["im"][0], "sip:jane@pbx.example.com",
        "existing fields kept"
    );

    let id = jane["id"].as_str().expect("id");
    let (status, _, person) = app.get(&format!("/api/v1/people/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(person["presence"]["availability"], "busy");
    assert_eq!(person["presence"]["channels"][0]["backend"], "pbx");

    let (status, _, batch) = app.get(&format!("/api/v1/presence?ids={id}")).await;
    assert_eq!(status, 200);
    assert_eq!(batch["items"][0]["presence"]["availability"], "busy");
    let (status, _, problem) = app.get("/api/v1/presence?ids=bogus").await;
    assert_eq!(status, 400);
    assert_eq!(problem["code"], "invalid_parameter");

    let (status, _, ready) = app.get("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(ready["presence"][0]["name"], "pbx");
    assert_eq!(ready["presence"][0]["status"], "up");
    assert_eq!(ready["presence"][0]["tracked"], 1);
}

#[tokio::test]
async fn without_backends_people_carry_no_presence() {
    let mut app = TestApp::new().await;
    app.import_csv(STAFF, &options("hr")).await.expect("import");
    let (_, _, list) = app.get("/api/v1/people?q=jane").await;
    assert!(list["items"][0].get("presence").is_none());
}

#[tokio::test]
async fn the_stream_sends_current_state_then_changes() {
    let (app, _hub) = app_with_pbx().await;
    let (_, _, list) = app.get("/api/v1/people?q=jane").await;
    let id = list["items"][0]["id"].as_str().expect("id").to_string();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = app.client();

    let bad = client
        .get(format!("http://{addr}/api/v1/presence/stream?ids=nope"))
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 400);

    let mut stream = client
        .get(format!("http://{addr}/api/v1/presence/stream?ids={id}"))
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/event-stream"));
    let mut sse = presence_support::Sse::default();
    let first = sse
        .next(&mut stream, Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(first["id"], id.as_str());
    assert_eq!(first["presence"]["availability"], "unknown");

    let sent = Instant::now();
    let response = client
        .post(format!("http://{addr}/api/v1/presence/events"))
        .bearer_auth(TOKEN)
        .json(&json!({"events": [{"handle": "sip:jane@pbx.example.com", "availability": "do_not_disturb"}]}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    let change = sse
        .next(&mut stream, Duration::from_secs(5), |v| {
            v["presence"]["availability"] == "do_not_disturb"
        })
        .await;
    assert_eq!(change["id"], id.as_str());
    eprintln!("webhook event reached the stream in {:?}", sent.elapsed());

    let metrics = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("switchboard_presence_backend_up{backend=\"pbx\",kind=\"webhook\"} 1"));
    assert!(
        metrics.contains(
            "switchboard_presence_observations_total{backend=\"pbx\",kind=\"webhook\"} 1"
        ),
        "the event went through the backend: {metrics}"
    );
    assert!(
        metrics.contains("switchboard_presence_stream_clients 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_directory_follows_imports() {
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![pbx_config()],
            ..Default::default()
        },
        system_clock(),
    )
    .expect("hub");
    let mut app = TestApp::with_presence(hub.clone()).await;
    let follower = tokio::spawn(hub.clone().follow_directory(app.db.pool.clone()));
    app.import_csv(STAFF, &options("hr")).await.expect("import");
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.health()[0].tracked != 1 {
        assert!(
            Instant::now() < deadline,
            "the import never reached the directory"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.import_csv(
        "external_id,given_name,family_name,im\nS2,John,Smithers,tel:+442079460999\n",
        &options("hr"),
    )
    .await
    .expect("import");
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.health()[0].tracked != 2 {
        assert!(
            Instant::now() < deadline,
            "the change never reached the directory"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hub.shutdown().await;
    follower.await.expect("follower stops");
}

#[tokio::test]
async fn a_state_older_than_the_backend_ttl_turns_unknown() {
    let now = Arc::new(std::sync::Mutex::new(chrono::Utc::now()));
    let clock_now = now.clone();
    let clock: switchboard::presence::Clock = Arc::new(move || *clock_now.lock().expect("clock"));
    let mut config = pbx_config();
    config.ttl_secs = Some(60);
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![config],
            ..Default::default()
        },
        clock,
    )
    .expect("hub");
    let jane = presence_support::person(1, "sip:jane@pbx.example.com");
    hub.set_people(std::slice::from_ref(&jane));
    let event = serde_json::from_value(
        json!({"handle": "sip:jane@pbx.example.com", "availability": "busy"}),
    )
    .expect("event");
    hub.ingest_webhook(TOKEN, vec![event]).expect("accepted");
    assert_eq!(hub.lookup(jane.id).availability, Availability::Busy);
    *now.lock().expect("clock") += chrono::Duration::seconds(60);
    assert_eq!(
        hub.lookup(jane.id).availability,
        Availability::Busy,
        "still fresh"
    );
    *now.lock().expect("clock") += chrono::Duration::seconds(1);
    let stale = hub.lookup(jane.id);
    assert_eq!(stale.availability, Availability::Unknown);
    assert_eq!(stale.channels[0].availability, Availability::Unknown);
    assert!(
        stale.channels[0].observed_at.is_some(),
        "when it was last seen"
    );
}

fn event(value: serde_json::Value) -> switchboard::presence::webhook::WebhookEvent {
    serde_json::from_value(value).expect("event")
}

#[tokio::test]
async fn the_cache_keeps_tracked_handles_only_and_forgets_people_who_leave() {
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![pbx_config()],
            ..Default::default()
        },
        system_clock(),
    )
    .expect("hub");
    let jane = presence_support::person(1, "sip:jane@pbx.example.com");
    let john = presence_support::person(2, "tel:+442079460018");
    hub.set_people(&[jane.clone(), john.clone()]);
    hub.start();
    let accepted = hub
        .ingest_webhook(
            TOKEN,
            vec![
                event(json!({"handle": "sip:jane@pbx.example.com", "availability": "busy"})),
                event(json!({"handle": "tel:+442079460018", "availability": "away"})),
                event(json!({"handle": "sip:stranger@pbx.example.com", "availability": "busy"})),
            ],
        )
        .expect("accepted");
    assert_eq!(accepted, 3, "valid events are accepted, tracked or not");
    assert!(hub.cached("pbx", "sip:jane@pbx.example.com").is_some());
    assert!(hub.cached("pbx", "tel:+442079460018").is_some());
    assert!(
        hub.cached("pbx", "sip:stranger@pbx.example.com").is_none(),
        "nobody tracks the stranger"
    );
    assert_eq!(hub.lookup(john.id).availability, Availability::Away);

    // John leaves the directory: his channel leaves the cache.
    hub.set_people(std::slice::from_ref(&jane));
    assert!(hub.cached("pbx", "tel:+442079460018").is_none());
    assert!(hub.cached("pbx", "sip:jane@pbx.example.com").is_some());
    hub.shutdown().await;
}

#[tokio::test]
async fn a_late_event_does_not_replace_a_newer_one() {
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![pbx_config()],
            ..Default::default()
        },
        system_clock(),
    )
    .expect("hub");
    let jane = presence_support::person(1, "sip:jane@pbx.example.com");
    hub.set_people(std::slice::from_ref(&jane));
    let now = chrono::Utc::now();
    let at = |ago: i64| (now - chrono::Duration::seconds(ago)).to_rfc3339();
    hub.ingest_webhook(
        TOKEN,
        vec![event(
            json!({"handle": "sip:jane@pbx.example.com", "availability": "busy", "observed_at": at(10)}),
        )],
    )
    .expect("accepted");
    // Delayed in some queue: seen before the busy one, delivered after it.
    hub.ingest_webhook(
        TOKEN,
        vec![event(
            json!({"handle": "sip:jane@pbx.example.com", "availability": "available", "observed_at": at(60)}),
        )],
    )
    .expect("accepted");
    assert_eq!(hub.lookup(jane.id).availability, Availability::Busy);
    // A newer one does replace it.
    hub.ingest_webhook(
        TOKEN,
        vec![event(
            json!({"handle": "sip:jane@pbx.example.com", "availability": "available", "observed_at": at(1)}),
        )],
    )
    .expect("accepted");
    assert_eq!(hub.lookup(jane.id).availability, Availability::Available);
}
