//! The Matrix backend against a real Synapse: the conformance suite, and presence set by a real
//! client (the client-server API Element uses) reaching the people API and the SSE stream; then
//! the homeserver is killed (channels turn unknown) and restarted (presence comes back).
//! One Synapse serves every step: it takes seconds to start.

mod common;
mod presence_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{options, TestApp};
use presence_support::synapse::Synapse;
use presence_support::{conformance, wait_presence, Remote};
use switchboard::presence::{
    build_backend, directory, system_clock, Availability, BackendConfig, BoxFuture, HealthStatus,
    PresenceBackend, PresenceConfig, PresenceHub,
};

fn matrix_config(homeserver: &str, token: &str) -> BackendConfig {
    let mut c = BackendConfig::new("matrix", "matrix");
    c.homeserver = Some(homeserver.to_string());
    c.access_token = Some(token.to_string());
    c.timeout_secs = Some(3.0);
    c
}

fn presence_name(a: Availability) -> &'static str {
    match a {
        Availability::Available => "online",
        Availability::Away => "unavailable",
        _ => "offline",
    }
}

struct MatrixRemote<'s> {
    synapse: &'s Synapse,
    service_token: String,
    /// handle → (user id, token)
    users: HashMap<String, (String, String)>,
}

impl Remote for MatrixRemote<'_> {
    fn handles(&self) -> Vec<String> {
        let mut h: Vec<String> = self.users.keys().cloned().collect();
        h.sort();
        h
    }
    fn config(&self) -> BackendConfig {
        matrix_config(&self.synapse.url(), &self.service_token)
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
            let (user, token) = &self.users[handle];
            self.synapse
                .set_presence(user, token, presence_name(availability), status)
                .await;
        })
    }
    fn states(&self) -> [Availability; 3] {
        [
            Availability::Away,
            Availability::Offline,
            Availability::Available,
        ]
    }
}

const STAFF: &str = "\
external_id,given_name,family_name,email,im
carol,Carol,Cooper,carol@example.com,@carol:test.local
";

#[tokio::test]
async fn matrix_backend_against_synapse() {
    let mut synapse = Synapse::start();
    let (_, service_token) = synapse.register("switchboard").await;
    let alice = synapse.register("alice").await;
    let bob = synapse.register("bob").await;
    let carol = synapse.register("carol").await;
    synapse
        .share_room(&service_token, &[alice.clone(), bob.clone(), carol.clone()])
        .await;

    eprintln!("synapse ready");
    // 1. The conformance suite.
    // Bob's handle carries a query (`?action=chat`, as matrix: URIs may): presence must still
    // be reported under the handle the directory holds.
    let users: HashMap<String, (String, String)> = [(alice, ""), (bob, "?action=chat")]
        .into_iter()
        .map(|((id, token), query)| {
            (
                format!("matrix:u/{}{query}", id.trim_start_matches('@')),
                (id, token),
            )
        })
        .collect();
    conformance(&MatrixRemote {
        synapse: &synapse,
        service_token: service_token.clone(),
        users,
    })
    .await;

    eprintln!("conformance passed");
    // 2. Carol's client sets her presence; it reaches the API and the stream.
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![matrix_config(&synapse.url(), &service_token)],
            ..Default::default()
        },
        system_clock(),
    )
    .expect("hub");
    let mut app = TestApp::with_presence(hub.clone()).await;
    app.import_csv(STAFF, &options("hr")).await.expect("import");
    let (_, people) = directory::load_all(&app.db.pool).await.expect("load");
    hub.set_people(&people);
    let carol_id = people[0].id;
    synapse
        .set_presence(&carol.0, &carol.1, "online", Some("at my desk"))
        .await;
    let mut rx = hub.subscribe();
    hub.start();
    wait_presence(
        &hub,
        &mut rx,
        carol_id,
        Duration::from_secs(15),
        "carol online",
        |p| p.availability == Availability::Available,
    )
    .await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let mut stream = app
        .client()
        .get(format!(
            "http://{addr}/api/v1/presence/stream?ids={carol_id}"
        ))
        .send()
        .await
        .expect("stream");
    let mut sse = presence_support::Sse::default();
    let first = sse
        .next(&mut stream, Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(first["presence"]["availability"], "available");
    assert_eq!(first["presence"]["status_message"], "at my desk");
    let changed = Instant::now();
    synapse
        .set_presence(&carol.0, &carol.1, "unavailable", Some("lunch"))
        .await;
    let event = sse
        .next(&mut stream, Duration::from_secs(10), |v| {
            v["presence"]["availability"] == "away"
        })
        .await;
    eprintln!(
        "matrix change reached the stream in {:?}",
        changed.elapsed()
    );
    assert_eq!(event["presence"]["status_message"], "lunch");
    assert_eq!(
        event["presence"]["channels"][0]["uri"],
        "matrix:u/carol:test.local"
    );
    let (_, _, person) = app.get(&format!("/api/v1/people/{carol_id}")).await;
    assert_eq!(person["presence"]["availability"], "away");
    assert_eq!(person["presence"]["channels"][0]["backend"], "matrix");

    eprintln!("api and stream passed");
    // 3. The homeserver dies: her channel turns unknown; it comes back: so does her presence.
    synapse.kill();
    wait_presence(
        &hub,
        &mut rx,
        carol_id,
        Duration::from_secs(10),
        "killed",
        |p| p.availability == Availability::Unknown,
    )
    .await;
    assert_eq!(hub.health()[0].health.status, HealthStatus::Down);
    synapse.run();
    wait_presence(
        &hub,
        &mut rx,
        carol_id,
        Duration::from_secs(60),
        "restarted",
        |p| p.availability == Availability::Away,
    )
    .await;
    assert_eq!(hub.health()[0].health.status, HealthStatus::Up);
    hub.shutdown().await;
}
