//! The XMPP backend against a real Prosody: the conformance suite, presence set by a real client
//! reaching the people API and the SSE stream within a second, resources with priority and idle
//! time, and faults (server down at start, killed mid-stream and restarted, hanging, garbage).

mod common;
mod presence_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{options, TestApp};
use presence_support::prosody::{free_port, Prosody, DOMAIN, PASSWORD};
use presence_support::{conformance, person, wait_presence, Remote};
use switchboard::presence::xmpp::{Security, XmppClient, XmppTls};
use switchboard::presence::{
    build_backend, directory, system_clock, Availability, BackendConfig, BoxFuture, HealthStatus,
    PresenceBackend, PresenceConfig, PresenceHub,
};

fn chat_config(server: &str) -> BackendConfig {
    let mut c = BackendConfig::new("chat", "xmpp");
    c.jid = Some(format!("switchboard@{DOMAIN}"));
    c.password = Some(PASSWORD.into());
    c.server = Some(server.to_string());
    c.timeout_secs = Some(2.0);
    c
}

async fn client(prosody_server: &str, user: &str, resource: &str) -> XmppClient {
    XmppClient::connect(
        prosody_server,
        &format!("{user}@{DOMAIN}"),
        PASSWORD,
        resource,
    )
    .await
    .expect("client login")
}

fn show_of(a: Availability) -> Option<&'static str> {
    match a {
        Availability::Away => Some("away"),
        Availability::DoNotDisturb => Some("dnd"),
        _ => None,
    }
}

struct XmppRemote {
    prosody: Prosody,
    clients: HashMap<String, XmppClient>,
}

impl Remote for XmppRemote {
    fn handles(&self) -> Vec<String> {
        let mut h: Vec<String> = self.clients.keys().cloned().collect();
        h.sort();
        h
    }
    fn config(&self) -> BackendConfig {
        chat_config(&self.prosody.server())
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
            let client = &self.clients[handle];
            if availability == Availability::Offline {
                client.go_offline().await.expect("send");
            } else {
                client
                    .set_presence(show_of(availability), status, 0, None)
                    .await
                    .expect("send");
            }
        })
    }
}

#[tokio::test]
async fn xmpp_backend_passes_the_conformance_suite() {
    let prosody = Prosody::start(&["switchboard", "alice", "bob"]);
    let mut clients = HashMap::new();
    // Handles as imported: mixed case, and one naming a resource. Presence must be reported
    // under these handles, not under the lower-cased bare JID.
    for (user, handle) in [
        ("alice", format!("xmpp:Alice@{}", DOMAIN.to_uppercase())),
        ("bob", format!("xmpp:bob@{DOMAIN}/desk")),
    ] {
        let c = client(&prosody.server(), user, "desk").await;
        c.set_presence(None, None, 0, None).await.expect("initial");
        clients.insert(handle, c);
    }
    conformance(&XmppRemote { prosody, clients }).await;
}

const STAFF: &str = "\
external_id,given_name,family_name,email,im
alice,Alice,Archer,alice@example.com,xmpp:alice@corp.example
bob,Bob,Baker,bob@example.com,
";

async fn app_with_chat(server: &str) -> (TestApp, PresenceHub) {
    let mut chat = chat_config(server);
    // Bob has no IM URI: his handle comes from the template over his source id.
    chat.handle = Some(format!("xmpp:{{uid}}@{DOMAIN}"));
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![chat],
            ..Default::default()
        },
        system_clock(),
    )
    .expect("hub");
    let mut app = TestApp::with_presence(hub.clone()).await;
    app.import_csv(STAFF, &options("hr")).await.expect("import");
    let (_, people) = directory::load_all(&app.db.pool).await.expect("load");
    hub.set_people(&people);
    (app, hub)
}

async fn id_of(app: &TestApp, q: &str) -> uuid::Uuid {
    let (_, _, list) = app.get(&format!("/api/v1/people?q={q}")).await;
    list["items"][0]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid")
}

#[tokio::test]
async fn a_change_in_prosody_reaches_the_api_and_the_stream_within_a_second() {
    let prosody = Prosody::start(&["switchboard", "alice", "bob"]);
    let alice = client(&prosody.server(), "alice", "desk").await;
    alice
        .set_presence(None, Some("at my desk"), 0, None)
        .await
        .expect("send");
    let bob = client(&prosody.server(), "bob", "laptop").await;
    bob.set_presence(Some("away"), None, 0, None)
        .await
        .expect("send");
    let (app, hub) = app_with_chat(&prosody.server()).await;
    let (alice_id, bob_id) = (id_of(&app, "alice").await, id_of(&app, "bob").await);
    let mut rx = hub.subscribe();
    hub.start();
    wait_presence(
        &hub,
        &mut rx,
        alice_id,
        Duration::from_secs(10),
        "alice subscribed",
        |p| p.availability == Availability::Available,
    )
    .await;
    wait_presence(
        &hub,
        &mut rx,
        bob_id,
        Duration::from_secs(10),
        "bob via template",
        |p| p.availability == Availability::Away,
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
            "http://{addr}/api/v1/presence/stream?ids={alice_id},{bob_id}"
        ))
        .send()
        .await
        .expect("stream");
    let mut sse = presence_support::Sse::default();
    let first = sse
        .next(&mut stream, Duration::from_secs(5), |v| {
            v["id"] == alice_id.to_string()
        })
        .await;
    assert_eq!(first["presence"]["availability"], "available");
    assert_eq!(first["presence"]["status_message"], "at my desk");

    // Alice, in her chat client, sets "do not disturb".
    let changed_at = Instant::now();
    alice
        .set_presence(Some("dnd"), Some("in a meeting"), 0, None)
        .await
        .expect("send");
    let event = sse
        .next(&mut stream, Duration::from_secs(5), |v| {
            v["id"] == alice_id.to_string() && v["presence"]["availability"] == "do_not_disturb"
        })
        .await;
    // A figure, not a pass/fail criterion (a busy CI machine is slow); the deadline above is.
    eprintln!(
        "xmpp change reached the stream in {:?}",
        changed_at.elapsed()
    );
    assert_eq!(event["presence"]["status_message"], "in a meeting");
    assert_eq!(event["presence"]["channels"][0]["backend"], "chat");
    assert_eq!(
        event["presence"]["channels"][0]["uri"],
        format!("xmpp:alice@{DOMAIN}")
    );

    let (status, _, person) = app.get(&format!("/api/v1/people/{alice_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(person["presence"]["availability"], "do_not_disturb");
    let (_, _, list) = app.get("/api/v1/people?q=alice").await;
    assert_eq!(
        list["items"][0]["presence"]["availability"],
        "do_not_disturb"
    );
    assert!(list["items"][0]["presence"]["observed_at"].is_string());

    // A second resource with a higher priority speaks for her; idle time is kept.
    let phone = client(&prosody.server(), "alice", "phone").await;
    let idle_since = chrono::Utc::now() - chrono::Duration::minutes(10);
    phone
        .set_presence(Some("xa"), Some("on the road"), 10, Some(idle_since))
        .await
        .expect("send");
    let presence = wait_presence(
        &hub,
        &mut rx,
        alice_id,
        Duration::from_secs(5),
        "phone",
        |p| p.availability == Availability::Away,
    )
    .await;
    assert!(presence.idle);
    assert_eq!(
        presence.activity,
        Some(switchboard::presence::Activity::ExtendedAway)
    );
    assert_eq!(presence.status_message.as_deref(), Some("on the road"));
    phone.go_offline().await.expect("send");
    wait_presence(
        &hub,
        &mut rx,
        alice_id,
        Duration::from_secs(5),
        "phone gone",
        |p| p.availability == Availability::DoNotDisturb,
    )
    .await;
    alice.go_offline().await.expect("send");
    wait_presence(
        &hub,
        &mut rx,
        alice_id,
        Duration::from_secs(5),
        "alice gone",
        |p| p.availability == Availability::Offline,
    )
    .await;

    let (_, _, ready) = app.get("/readyz").await;
    assert_eq!(ready["presence"][0]["name"], "chat");
    assert_eq!(ready["presence"][0]["status"], "up");
    hub.shutdown().await;
    bob.close().await;
}

fn hub_for(server: &str, timeout: f64) -> (PresenceHub, uuid::Uuid) {
    let mut chat = chat_config(server);
    chat.timeout_secs = Some(timeout);
    hub_with(chat)
}

fn hub_with(chat: BackendConfig) -> (PresenceHub, uuid::Uuid) {
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![chat],
            ..Default::default()
        },
        system_clock(),
    )
    .expect("hub");
    let alice = person(1, &format!("xmpp:alice@{DOMAIN}"));
    hub.set_people(std::slice::from_ref(&alice));
    (hub, alice.id)
}

async fn wait_health(hub: &PresenceHub, status: HealthStatus, within: Duration) {
    let deadline = Instant::now() + within;
    while hub.health()[0].health.status != status {
        assert!(
            Instant::now() < deadline,
            "health never became {status:?}: {:?}",
            hub.health()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_server_down_at_start_is_reached_once_it_comes_up() {
    let port = free_port();
    let mut prosody = Prosody::prepare(port, &["switchboard", "alice"]);
    let (hub, alice_id) = hub_for(&prosody.server(), 2.0);
    let mut rx = hub.subscribe();
    hub.start();
    wait_health(&hub, HealthStatus::Down, Duration::from_secs(5)).await;
    assert_eq!(hub.lookup(alice_id).availability, Availability::Unknown);

    prosody.run();
    let alice = client(&prosody.server(), "alice", "desk").await;
    alice.set_presence(None, None, 0, None).await.expect("send");
    wait_presence(
        &hub,
        &mut rx,
        alice_id,
        Duration::from_secs(15),
        "after start",
        |p| p.availability == Availability::Available,
    )
    .await;
    assert_eq!(hub.health()[0].health.status, HealthStatus::Up);
    hub.shutdown().await;
}

#[tokio::test]
async fn a_server_killed_mid_stream_turns_unknown_and_recovers_after_restart() {
    let mut prosody = Prosody::start(&["switchboard", "alice"]);
    let (hub, alice_id) = hub_for(&prosody.server(), 2.0);
    let alice = client(&prosody.server(), "alice", "desk").await;
    alice
        .set_presence(Some("away"), None, 0, None)
        .await
        .expect("send");
    let mut rx = hub.subscribe();
    hub.start();
    wait_presence(
        &hub,
        &mut rx,
        alice_id,
        Duration::from_secs(10),
        "before",
        |p| p.availability == Availability::Away,
    )
    .await;

    prosody.kill();
    wait_presence(
        &hub,
        &mut rx,
        alice_id,
        Duration::from_secs(5),
        "killed",
        |p| p.availability == Availability::Unknown,
    )
    .await;
    wait_health(&hub, HealthStatus::Down, Duration::from_secs(5)).await;

    prosody.run();
    let alice = client(&prosody.server(), "alice", "desk").await;
    alice
        .set_presence(Some("dnd"), None, 0, None)
        .await
        .expect("send");
    wait_presence(
        &hub,
        &mut rx,
        alice_id,
        Duration::from_secs(15),
        "restarted",
        |p| p.availability == Availability::DoNotDisturb,
    )
    .await;
    assert_eq!(hub.health()[0].health.status, HealthStatus::Up);
    assert!(hub.health()[0].health.failures >= 1);
    hub.shutdown().await;
}

/// A server that accepts and then says nothing, or says nonsense.
async fn fake_server(reply: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = socket.write_all(reply).await;
            held.push(socket);
        }
    });
    addr
}

#[tokio::test]
async fn a_hanging_server_turns_unknown_after_the_timeout_without_blocking_lookups() {
    let server = fake_server(b"").await;
    let (hub, alice_id) = hub_for(&server, 0.5);
    hub.start();
    let started = Instant::now();
    wait_health(&hub, HealthStatus::Down, Duration::from_secs(15)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "it waited its timeout"
    );
    // Answered from memory while the backend is stuck in its login.
    assert_eq!(hub.lookup(alice_id).availability, Availability::Unknown);
    let health = hub.health()[0].health.clone();
    let detail = health.detail.clone().unwrap_or_default();
    assert!(detail.contains("no login within"), "{detail}");
    assert!(health.failures >= 1, "{health:?}");
    hub.shutdown().await;
}

#[tokio::test]
async fn a_server_speaking_garbage_is_reported_down() {
    let server = fake_server(b"HTTP/1.1 400 Bad Request\r\n\r\n<<<&&&\0\0\0").await;
    let (hub, alice_id) = hub_for(&server, 2.0);
    hub.start();
    wait_health(&hub, HealthStatus::Down, Duration::from_secs(15)).await;
    assert_eq!(hub.lookup(alice_id).availability, Availability::Unknown);
    // It really read the nonsense and said why, rather than never starting.
    let health = hub.health()[0].health.clone();
    let detail = health.detail.clone().unwrap_or_default();
    assert!(detail.contains("not an XMPP stream"), "{detail}");
    assert!(health.failures >= 1, "{health:?}");
    hub.shutdown().await;
}

#[tokio::test]
async fn a_frozen_server_is_noticed_by_ping_and_left_for_a_new_connection() {
    let prosody = Prosody::start(&["switchboard", "alice"]);
    let mut chat = chat_config(&prosody.server());
    chat.ping_secs = Some(0.5);
    chat.timeout_secs = Some(1.0);
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![chat],
            ..Default::default()
        },
        system_clock(),
    )
    .expect("hub");
    let alice = person(1, &format!("xmpp:alice@{DOMAIN}"));
    hub.set_people(std::slice::from_ref(&alice));
    let alice_client = client(&prosody.server(), "alice", "desk").await;
    alice_client
        .set_presence(Some("away"), None, 0, None)
        .await
        .expect("send");
    let mut rx = hub.subscribe();
    hub.start();
    wait_presence(
        &hub,
        &mut rx,
        alice.id,
        Duration::from_secs(15),
        "before",
        |p| p.availability == Availability::Away,
    )
    .await;
    // The TCP connection stays open; only pings can tell the server is gone.
    prosody.pause();
    wait_presence(
        &hub,
        &mut rx,
        alice.id,
        Duration::from_secs(30),
        "frozen",
        |p| p.availability == Availability::Unknown,
    )
    .await;
    let detail = hub.health()[0].health.detail.clone().unwrap_or_default();
    prosody.resume();
    assert!(detail.contains("ping"), "{detail}");
    wait_presence(
        &hub,
        &mut rx,
        alice.id,
        Duration::from_secs(30),
        "thawed",
        |p| p.availability == Availability::Away,
    )
    .await;
    hub.shutdown().await;
}

/// This machine's address on its default route (not loopback), if it has one.
fn outward_ip() -> std::net::IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp");
    // No packet is sent: connecting a UDP socket only picks the route.
    probe.connect("192.0.2.1:9").expect("a default route");
    let ip = probe.local_addr().expect("addr").ip();
    assert!(!ip.is_loopback(), "no address besides loopback");
    ip
}

/// A server on a non-loopback address offering SASL PLAIN; counts the `<auth` it receives.
async fn plain_server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind((outward_ip(), 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let auths = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = auths.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let _ = socket
                    .write_all(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'><stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>")
                    .await;
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&got).contains("<auth") {
                        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let _ = socket.write_all(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>").await;
                        break;
                    }
                }
            });
        }
    });
    (addr, auths)
}

#[tokio::test]
async fn the_password_is_not_sent_in_plain_text_off_loopback_unless_allowed() {
    for allow in [false, true] {
        let (server, auths) = plain_server().await;
        let mut chat = chat_config(&server);
        chat.allow_plaintext = Some(allow);
        let hub = PresenceHub::from_config(
            &PresenceConfig {
                backends: vec![chat],
                ..Default::default()
            },
            system_clock(),
        )
        .expect("hub");
        hub.set_people(&[person(1, &format!("xmpp:alice@{DOMAIN}"))]);
        hub.start();
        wait_health(&hub, HealthStatus::Down, Duration::from_secs(15)).await;
        let detail = hub.health()[0].health.detail.clone().unwrap_or_default();
        hub.shutdown().await;
        let sent = auths.load(std::sync::atomic::Ordering::SeqCst);
        if allow {
            assert!(sent >= 1, "allowed: the password was offered");
            assert!(detail.contains("SASL PLAIN refused"), "{detail}");
        } else {
            assert_eq!(sent, 0, "the password never left");
            assert!(detail.contains("plain text"), "{detail}");
        }
    }
}

/// Prosody requiring encryption, with a certificate for the domain from a test CA: the backend
/// reaches it over STARTTLS and over direct TLS, and refuses it when the CA is not trusted.
#[tokio::test]
async fn starttls_and_direct_tls_to_prosody_verify_its_certificate() {
    let mut prosody = Prosody::prepare_with(free_port(), &["switchboard", "alice"], true);
    prosody.run();
    let (direct_port, ca) = prosody.tls.clone().expect("tls");
    let direct = format!("127.0.0.1:{direct_port}");
    let security = Security::new(XmppTls::Starttls, Some(&ca), false).expect("ca");
    // A client that will not encrypt is refused by the server: encryption is really required.
    let plain = Security::new(XmppTls::None, None, false).expect("security");
    let refused = XmppClient::connect_with(
        &prosody.server(),
        &format!("alice@{DOMAIN}"),
        PASSWORD,
        "desk",
        &plain,
    )
    .await;
    assert!(refused.is_err(), "prosody let a plain-text login in");

    let alice = XmppClient::connect_with(
        &prosody.server(),
        &format!("alice@{DOMAIN}"),
        PASSWORD,
        "desk",
        &security,
    )
    .await
    .expect("alice over STARTTLS");
    for (mode, server, show, expected) in [
        (
            XmppTls::Starttls,
            prosody.server(),
            "dnd",
            Availability::DoNotDisturb,
        ),
        (XmppTls::Direct, direct.clone(), "away", Availability::Away),
    ] {
        let mut chat = chat_config(&server);
        chat.tls = Some(mode);
        chat.ca_file = Some(ca.clone());
        let (hub, alice_id) = hub_with(chat);
        let mut rx = hub.subscribe();
        hub.start();
        wait_health(&hub, HealthStatus::Up, Duration::from_secs(15)).await;
        alice
            .set_presence(Some(show), None, 0, None)
            .await
            .expect("send");
        wait_presence(
            &hub,
            &mut rx,
            alice_id,
            Duration::from_secs(15),
            &format!("{mode:?}"),
            |p| p.availability == expected,
        )
        .await;
        hub.shutdown().await;
    }

    // Without the test CA (the system's trust store only) the certificate is refused, both ways.
    for (mode, server) in [
        (XmppTls::Starttls, prosody.server()),
        (XmppTls::Direct, direct),
    ] {
        let mut chat = chat_config(&server);
        chat.tls = Some(mode);
        let (hub, _) = hub_with(chat);
        hub.start();
        wait_health(&hub, HealthStatus::Down, Duration::from_secs(15)).await;
        let detail = hub.health()[0].health.detail.clone().unwrap_or_default();
        hub.shutdown().await;
        assert!(
            detail.contains("TLS") && detail.to_lowercase().contains("certificate"),
            "{mode:?}: {detail}"
        );
    }
    alice.close().await;
}

#[tokio::test]
async fn a_live_stream_keeps_an_unchanged_state_fresh_beyond_the_ttl() {
    let prosody = Prosody::start(&["switchboard", "alice"]);
    let mut chat = chat_config(&prosody.server());
    chat.ttl_secs = Some(4);
    chat.ping_secs = Some(0.5);
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![chat],
            ..Default::default()
        },
        system_clock(),
    )
    .expect("hub");
    let alice = person(1, &format!("xmpp:alice@{DOMAIN}"));
    hub.set_people(std::slice::from_ref(&alice));
    let alice_client = client(&prosody.server(), "alice", "desk").await;
    alice_client
        .set_presence(Some("away"), None, 0, None)
        .await
        .expect("send");
    let mut rx = hub.subscribe();
    hub.start();
    wait_presence(
        &hub,
        &mut rx,
        alice.id,
        Duration::from_secs(15),
        "away",
        |p| p.availability == Availability::Away,
    )
    .await;
    // Nothing changes for longer than the TTL; the stream stays up.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let presence = hub.lookup(alice.id);
    assert_eq!(presence.availability, Availability::Away, "{presence:?}");
    hub.shutdown().await;
}
