//! The people API over a real database and index: search, lookup, paging, and problem+json errors.

mod common;

use common::{options, TestApp};
use std::sync::atomic::Ordering;
use switchboard::sync::ImportOptions;

const STAFF: &str = "\
external_id,given_name,family_name,email,phone,mobile,extension,title,department,location,manager_email,im
S1,Jane,Smith,jane.smith@example.com,+44 20 7946 0018,+44 7400 123456,,Chief Financial Officer,Finance,London,,xmpp:jsmith@chat.example.com
S2,José,Müller,jose.muller@example.com,+49 30 901820 1234,,,Software Engineer,Engineering,Berlin,jane.smith@example.com,
S3,Janet,Smithson,janet@example.com,020 7946 0200,,,Recruiter,Human Resources,London,jane.smith@example.com,
S4,Grace,Hopper,grace@example.com,,,4711,Head of Engineering,Engineering,New York,,
S5,Åsa,Lindqvist,asa@example.com,+46 8 505 123 45,,,Receptionist,Facilities,Stockholm,,
";

async fn staff() -> TestApp {
    let mut app = TestApp::new().await;
    let report = app.import_csv(STAFF, &options("hr")).await.expect("import");
    assert!(report.rejects.is_empty(), "{:?}", report.rejects);
    app
}

#[tokio::test]
async fn typing_finds_people_by_name_prefixes_in_any_order() {
    let app = staff().await;
    assert_eq!(
        app.names("jan sm").await[..2],
        ["Jane Smith", "Janet Smithson"]
    );
    assert_eq!(app.names("smith jane").await[0], "Jane Smith");
    assert_eq!(app.names("smithson").await, ["Janet Smithson"]);
    assert_eq!(app.names("gra").await, ["Grace Hopper"]);
    assert!(app.names("nobody-like-this").await.is_empty());
}

#[tokio::test]
async fn accents_are_folded_both_ways() {
    let app = staff().await;
    assert_eq!(app.names("jose muller").await, ["José Müller"]);
    assert_eq!(app.names("JOSÉ MÜLLER").await, ["José Müller"]);
    assert_eq!(app.names("asa").await, ["Åsa Lindqvist"]);
}

#[tokio::test]
async fn searches_titles_departments_locations_and_emails() {
    let app = staff().await;
    assert_eq!(app.names("recep").await, ["Åsa Lindqvist"]);
    let mut engineering = app.names("engineering").await;
    engineering.sort();
    assert_eq!(engineering, ["Grace Hopper", "José Müller"]);
    assert_eq!(app.names("stockholm").await, ["Åsa Lindqvist"]);
    assert_eq!(
        app.names("jan c").await,
        ["Jane Smith"],
        "a one-letter start of her title"
    );
    assert_eq!(
        app.names("jan hu").await,
        ["Janet Smithson"],
        "two letters of her department"
    );
    assert_eq!(app.names("jsmith").await, ["Jane Smith"], "IM handle");
    assert_eq!(app.names("jose.muller@example.com").await, ["José Müller"]);
}

#[tokio::test]
async fn phone_numbers_in_any_format() {
    let app = staff().await;
    for q in [
        "+44 20 7946 0018",
        "020 7946 0018",
        "02079460018",
        "442079460018",
        "+44 7400 123456",
        "4711",
        "+49 30 9018",
    ] {
        let names = app.names(q).await;
        assert!(!names.is_empty(), "{q} found nobody");
        assert!(
            names[0] == "Jane Smith" || q.contains("4711") || q.contains("+49"),
            "{q}: {names:?}"
        );
    }
    assert_eq!(app.names("4711").await, ["Grace Hopper"]);
    assert_eq!(app.names("+49 30 9018").await, ["José Müller"]);
    assert_eq!(app.names("(020) 7946-0200").await, ["Janet Smithson"]);
}

#[tokio::test]
async fn a_person_comes_back_whole() {
    let app = staff().await;
    let (_, _, list) = app.get("/api/v1/people?q=jose").await;
    let id = list["items"][0]["id"].as_str().expect("id");
    let (status, content_type, jose) = app.get(&format!("/api/v1/people/{id}")).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/json"));
    assert_eq!(jose["given_name"], "José");
    assert_eq!(jose["family_name"], "Müller");
    assert_eq!(jose["title"], "Software Engineer");
    assert_eq!(jose["department"], "Engineering");
    assert_eq!(jose["manager"]["display_name"], "Jane Smith");
    assert_eq!(
        jose["phones"][0],
        serde_json::json!({
            "kind": "work", "e164": "+49309018201234", "display": "+49 30 9018201234", "extension": null, "raw": "+49 30 901820 1234"
        })
    );
    assert_eq!(
        jose["sources"],
        serde_json::json!([{ "source": "hr", "external_id": "S2" }])
    );
    assert!(jose["created_at"].is_string() && jose["updated_at"].is_string());
}

#[tokio::test]
async fn empty_query_lists_everyone_alphabetically_with_paging() {
    let app = staff().await;
    let (status, _, page1) = app.get("/api/v1/people?limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(page1["total"], 5);
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| p["display_name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(names(&page1), ["Åsa Lindqvist", "Grace Hopper"]);
    let cursor = page1["next_cursor"].as_str().expect("cursor");
    let (_, _, page2) = app
        .get(&format!("/api/v1/people?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(names(&page2), ["Jane Smith", "Janet Smithson"]);
    let cursor = page2["next_cursor"].as_str().expect("cursor");
    let (_, _, page3) = app
        .get(&format!("/api/v1/people?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(names(&page3), ["José Müller"]);
    assert!(page3["next_cursor"].is_null());
}

#[tokio::test]
async fn results_are_stable_between_identical_queries() {
    let app = staff().await;
    let first = app.names("j").await;
    assert!(first.len() >= 3);
    for _ in 0..3 {
        assert_eq!(app.names("j").await, first);
    }
}

#[tokio::test]
async fn errors_are_problem_json_with_stable_codes() {
    let app = staff().await;
    let long = "a".repeat(2000);
    let cases = [
        ("/api/v1/people?limit=0", 400, "invalid_parameter"),
        ("/api/v1/people?limit=1000", 400, "invalid_parameter"),
        ("/api/v1/people?limit=ten", 400, "invalid_parameter"),
        ("/api/v1/people?cursor=bogus", 400, "invalid_parameter"),
        ("/api/v1/people/not-a-uuid", 400, "invalid_parameter"),
        (
            "/api/v1/people/7d4e0c84-3b0a-4d8e-9f7e-1a2b3c4d5e6f",
            404,
            "not_found",
        ),
        ("/api/v1/nothing-here", 404, "not_found"),
        ("/nothing-here", 404, "not_found"),
    ];
    for (uri, status, code) in cases {
        let (got, content_type, body) = app.get(uri).await;
        assert_eq!(got.as_u16(), status, "{uri}: {body}");
        assert_eq!(content_type, "application/problem+json", "{uri}");
        assert_eq!(body["code"], code, "{uri}");
        assert_eq!(body["status"], status, "{uri}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{uri}"
        );
        assert_eq!(body["type"], format!("urn:switchboard:problem:{code}"));
    }
    let (status, _, body) = app.get(&format!("/api/v1/people?q={long}")).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
}

#[tokio::test]
async fn query_syntax_and_odd_characters_are_just_text() {
    let app = staff().await;
    for q in [
        "\"jane",
        "(smith",
        "name:jane",
        "jan*",
        "smith~2",
        "jane AND smith",
        "jane OR",
        "\u{7}\u{0}jane",
        "简 jane",
        "-",
        "🙂",
        "+",
        "((((",
        "\\",
    ] {
        let uri = format!("/api/v1/people?q={}", common::urlencode(q));
        let (status, _, body) = app.get(&uri).await;
        assert_eq!(status, 200, "{q:?}: {body}");
    }
    assert_eq!(
        app.names("jane AND smith")
            .await
            .first()
            .map(String::as_str),
        None,
        "`and` is a word, not an operator"
    );
    assert_eq!(
        app.names("name:jane").await.first().map(String::as_str),
        None
    );
    assert_eq!(app.names("(smith").await[0], "Jane Smith");
}

#[tokio::test]
async fn health_and_readiness() {
    let app = staff().await;
    let (status, _, body) = app.get("/healthz").await;
    assert_eq!(
        (status.as_u16(), body["status"].as_str()),
        (200, Some("ok"))
    );
    let (status, _, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["indexed_people"], 5);
    app.ready.store(false, Ordering::Release);
    let (status, content_type, body) = app.get("/readyz").await;
    assert_eq!(
        (
            status.as_u16(),
            content_type.as_str(),
            body["code"].as_str()
        ),
        (503, "application/problem+json", Some("unavailable"))
    );
}

#[tokio::test]
async fn the_search_page_and_the_spec_are_served() {
    let app = staff().await;
    let response = tower::ServiceExt::oneshot(
        app.router.clone(),
        axum::http::Request::get("/")
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await
    .expect("response");
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    let html = String::from_utf8_lossy(&body);
    assert!(html.contains("<input id=\"q\"") && html.contains("src=\"/assets/app.js\""));
    let script = tower::ServiceExt::oneshot(
        app.router.clone(),
        axum::http::Request::get("/assets/app.js")
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await
    .expect("response");
    assert_eq!(script.status(), 200);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let script = http_body_util::BodyExt::collect(script.into_body())
        .await
        .expect("body")
        .to_bytes();
    assert!(!script.is_empty());
    // The console's modules call the API they are served with.
    let mut calls_search = false;
    for name in switchboard::web::names().filter(|n| *n != "index.html") {
        let response = tower::ServiceExt::oneshot(
            app.router.clone(),
            axum::http::Request::get(format!("/assets/{name}"))
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
        assert_eq!(response.status(), 200, "{name}");
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        calls_search |= String::from_utf8_lossy(&body).contains("/api/v1/people");
    }
    assert!(
        calls_search,
        "no module of the console calls /api/v1/people"
    );
    let (status, _, spec) = app.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(spec["paths"]["/api/v1/people"].is_object());
}

#[tokio::test]
async fn the_indexer_follows_imports_from_another_writer() {
    let mut app = staff().await;
    // A second writer (like `switchboard import` from cron) changes the database directly;
    // the running indexer is woken by NOTIFY.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let indexer =
        switchboard::search::indexer::Indexer::new(app.index.clone(), app.db.pool.clone(), 20);
    assert!(
        matches!(indexer, Err(switchboard::Error::IndexLocked)),
        "one writer per index"
    );
    let spare = placeholder_indexer(&app).await;
    let indexer = std::mem::replace(&mut app.indexer, spare);
    let ready = app.ready.clone();
    let task = tokio::spawn(indexer.run(ready, stopped));

    let phones = switchboard::domain::PhoneNormalizer::new("GB").expect("region");
    let raw = switchboard::sources::csv::parse(
        b"external_id,display_name,email\nN1,Newton Newcomer,newton@example.com\n",
        &Default::default(),
    )
    .expect("parse");
    let opts = ImportOptions { ..options("hr") };
    switchboard::sync::import(
        &app.db.pool,
        raw,
        &phones,
        &opts,
        &indicatif::ProgressBar::hidden(),
    )
    .await
    .expect("import");

    let mut found = Vec::new();
    for _ in 0..100 {
        found = app.names("newcomer").await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(found, ["Newton Newcomer"]);
    let _ = stop.send(true);
    task.await.expect("indexer stops");
}

/// The test's own indexer moves into the background task; this one stands in, on another index.
async fn placeholder_indexer(app: &TestApp) -> switchboard::search::indexer::Indexer {
    let index =
        switchboard::search::SearchIndex::open(&app.dir.path().join("spare")).expect("index");
    switchboard::search::indexer::Indexer::new(index, app.db.pool.clone(), 20).expect("indexer")
}

#[tokio::test]
async fn rebuilding_the_index_gives_the_same_answers() {
    let mut app = staff().await;
    let full = ImportOptions {
        full: true,
        force: true,
        ..options("hr")
    };
    let without_grace: String = STAFF
        .lines()
        .filter(|l| !l.starts_with("S4"))
        .map(|l| format!("{l}\n"))
        .collect();
    app.import_csv(&without_grace, &full)
        .await
        .expect("remove grace");
    let before = (app.names("j").await, app.names("jan sm").await);
    let count = app.indexer.rebuild().await.expect("rebuild");
    assert_eq!(count, 4, "deleted people are not indexed");
    assert_eq!((app.names("j").await, app.names("jan sm").await), before);
    assert!(app.names("grace").await.is_empty());
}

#[tokio::test]
async fn namesakes_keep_one_order_across_pages_and_rebuilds() {
    let mut app = TestApp::new().await;
    let mut csv = String::from("external_id,display_name,email\n");
    for i in 0..12 {
        csv.push_str(&format!(
            "A{i},Alexandra Constantinopoulou,alexandra{i}@example.com\n"
        ));
    }
    app.import_csv(&csv, &options("hr")).await.expect("import");
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| p["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let mut paged = Vec::new();
    let mut uri = "/api/v1/people?q=alexandra&limit=5".to_string();
    loop {
        let (_, _, page) = app.get(&uri).await;
        paged.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/api/v1/people?q=alexandra&limit=5&cursor={cursor}"),
            None => break,
        }
    }
    let mut unique = paged.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        (paged.len(), unique.len()),
        (12, 12),
        "paging neither repeats nor skips"
    );
    app.indexer.rebuild().await.expect("rebuild");
    let (_, _, all) = app.get("/api/v1/people?q=alexandra&limit=20").await;
    assert_eq!(ids(&all), paged, "same order after a rebuild");
    let (_, _, listing) = app.get("/api/v1/people?limit=20").await;
    assert_eq!(
        ids(&listing),
        paged,
        "the empty query lists namesakes in the same order"
    );
    // Merged into one segment (as after a bulk load): the same pages.
    app.indexer.merge_segments().await.expect("merge");
    let segments = app
        .index
        .index()
        .searchable_segment_ids()
        .expect("segments");
    assert_eq!(segments.len(), 1);
    let (_, _, all) = app.get("/api/v1/people?q=alexandra&limit=20").await;
    assert_eq!(ids(&all), paged, "same order in one segment");
}

/// `[http] web_dir` serves the console from disk (for working on it), and nothing outside it.
#[tokio::test]
async fn the_console_can_be_served_from_a_directory() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("index.html"), "<p>from disk</p>").expect("write");
    std::fs::create_dir(dir.path().join("ui")).expect("mkdir");
    std::fs::write(dir.path().join("ui/card.js"), "export {};").expect("write");
    std::fs::write(dir.path().join(".secret"), "no").expect("write");
    let mut config = switchboard::config::Config::default();
    config.http.web_dir = Some(dir.path().to_path_buf());
    let app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    for (uri, status, body) in [
        ("/", 200, Some("<p>from disk</p>")),
        ("/assets/ui/card.js", 200, Some("export {};")),
        ("/assets/.secret", 404, None),
        ("/assets/ui/../.secret", 404, None),
        ("/assets/nothing.js", 404, None),
    ] {
        let response = tower::ServiceExt::oneshot(
            app.router.clone(),
            axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
        assert_eq!(response.status(), status, "{uri}");
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        if let Some(body) = body {
            assert_eq!(String::from_utf8_lossy(&bytes), body, "{uri}");
        }
    }
}
