//! Federation between two real Switchboard processes, each a partner of the other, and a third
//! peer that accepts connections and never answers: a staff search with `peers=all` returns our
//! own results, the other company's labelled with its name, and a note for the peer that hung,
//! once its timeout has passed (not when it answers: it never does).

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::demo::{free_port, Demo as Company};

/// A `switchboard demo` of its own company, with `[partners]` and `[federation]` from `config`.
fn start(dir: &Path, port: u16, seed: u64, config: &str) -> Company {
    common::demo::start(dir, port, seed, 300, config)
}

/// Signs the demo's admin in; answers a client holding the session and its CSRF token.
async fn admin(company: &Company) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let session: Value = client
        .post(format!("{}/api/v1/auth/login", company.url))
        .json(&json!({"username": "admin", "password": company.admin_password()}))
        .send()
        .await
        .expect("sign in")
        .json()
        .await
        .expect("session");
    let csrf = session["csrf_token"].as_str().expect("csrf").to_string();
    (client, csrf)
}

async fn add_partner(company: &Company, name: &str) -> String {
    let (client, csrf) = admin(company).await;
    let answer: Value = client
        .post(format!("{}/api/v1/partners", company.url))
        .header("x-csrf-token", csrf)
        .json(&json!({"name": name, "fields": ["name", "title", "department", "location", "work_phone", "email"], "presence": "coarse"}))
        .send()
        .await
        .expect("add partner")
        .json()
        .await
        .expect("json");
    answer["key"].as_str().expect("key").to_string()
}

/// A family name of someone at `company`, from its own API.
async fn someone_at(company: &Company) -> String {
    let (client, _) = admin(company).await;
    let found: Value = client
        .get(format!("{}/api/v1/people?q=&limit=50", company.url))
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    found["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["family_name"].as_str())
        .find(|f| f.chars().count() >= 4 && f.is_ascii())
        .expect("a family name")
        .to_string()
}

#[tokio::test]
async fn staff_search_partners_in_parallel_and_a_hung_peer_is_only_a_note() {
    let (alpha_dir, beta_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (alpha_port, beta_port) = (free_port(), free_port());
    // The third peer accepts connections and never says a word.
    let hang = TcpListener::bind("127.0.0.1:0").expect("bind");
    let hang_port = hang.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in hang.incoming().map_while(Result::ok) {
            held.push(stream);
        }
    });
    let config = |org: &str, peer: &str, port: u16, key_file: &Path| {
        format!(
            "[partners]\norganization = \"{org}\"\n\n[federation]\ntimeout = \"800ms\"\n\n\
             [[federation.peers]]\nname = \"{peer}\"\nurl = \"http://127.0.0.1:{port}\"\nkey_file = \"{}\"\n\n\
             [[federation.peers]]\nname = \"hang\"\nurl = \"http://127.0.0.1:{hang_port}\"\nkey = \"sbp_never-used\"\n",
            key_file.display()
        )
    };
    let alpha_key_file = alpha_dir.path().join("beta.key");
    let beta_key_file = beta_dir.path().join("alpha.key");
    let alpha = start(
        alpha_dir.path(),
        alpha_port,
        1,
        &config("Alpha Ltd", "beta", beta_port, &alpha_key_file),
    );
    let beta = start(
        beta_dir.path(),
        beta_port,
        2,
        &config("Beta GmbH", "alpha", alpha_port, &beta_key_file),
    );
    // Each is a partner of the other: each gives the other a key.
    std::fs::write(&alpha_key_file, add_partner(&beta, "alpha").await).expect("key");
    std::fs::write(&beta_key_file, add_partner(&alpha, "beta").await).expect("key");

    let (client, _) = admin(&alpha).await;
    let theirs = someone_at(&beta).await;
    let ours = someone_at(&alpha).await;
    for (q, local_expected) in [(ours.as_str(), true), (theirs.as_str(), false)] {
        let started = Instant::now();
        let response = client
            .get(format!("{}/api/v1/people", alpha.url))
            .query(&[("q", q), ("peers", "all")])
            .send()
            .await
            .expect("search");
        let took = started.elapsed();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        if local_expected {
            assert!(
                !body["items"].as_array().expect("items").is_empty(),
                "our own {q}: {body}"
            );
        }
        let peers = body["peers"].as_array().expect("peers");
        let by_name = |name: &str| {
            peers
                .iter()
                .find(|p| p["peer"] == name)
                .unwrap_or_else(|| panic!("{name} in {body}"))
        };
        let beta_results = by_name("beta");
        assert!(beta_results.get("note").is_none(), "{beta_results}");
        if !local_expected {
            let items = beta_results["items"].as_array().expect("items");
            assert!(!items.is_empty(), "their {q}: {beta_results}");
            assert!(
                items.iter().all(|p| p["organization"] == "Beta GmbH"),
                "labelled with their company: {beta_results}"
            );
            assert!(
                items.iter().any(|p| p["family_name"] == q),
                "{q}: {beta_results}"
            );
            // Their policy for us: coarse presence and no mobile numbers.
            assert!(items
                .iter()
                .flat_map(|p| p["phones"].as_array().into_iter().flatten())
                .all(|phone| phone["kind"] != "mobile"));
            // Their presence, live, relayed by our server under their ids.
            let id = items[0]["id"].as_str().expect("id");
            let mut stream = client
                .get(format!("{}/api/v1/peers/beta/presence/stream", alpha.url))
                .query(&[("ids", id)])
                .send()
                .await
                .expect("stream");
            assert_eq!(stream.status(), 200);
            let mut text = String::new();
            while !text.contains(id) {
                let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
                    .await
                    .expect("an event in time")
                    .expect("chunk")
                    .expect("open");
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
            assert!(text.contains("event: presence"), "{text}");
            drop(stream);
        }
        let hung = by_name("hang");
        assert!(hung["items"].as_array().expect("items").is_empty());
        assert!(
            hung["note"].as_str().unwrap_or_default().contains("800 ms"),
            "{hung}"
        );
        // The hung peer never answers: the search came back because its time was up.
        assert!(took < Duration::from_secs(10), "{took:?}");
        println!("{q}: answered in {took:?} with the hung peer timed out");
    }
    // And the other way round: Beta's staff find Alpha's people.
    let (client, _) = admin(&beta).await;
    let body: Value = client
        .get(format!("{}/api/v1/people", beta.url))
        .query(&[("q", ours.as_str()), ("peers", "alpha")])
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    let alpha_results = &body["peers"][0];
    assert_eq!(alpha_results["peer"], "alpha");
    assert!(
        alpha_results["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|p| p["organization"] == "Alpha Ltd" && p["family_name"] == ours.as_str()),
        "{alpha_results}"
    );
    // A peer nobody configured is a note too, beside our own results.
    let body: Value = client
        .get(format!("{}/api/v1/people", beta.url))
        .query(&[("q", ours.as_str()), ("peers", "gamma")])
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    assert_eq!(body["peers"][0]["peer"], "gamma");
    assert_eq!(body["peers"][0]["note"], "no such peer is configured");
}
