//! What a security review asked for, through the real router and a real listening server:
//! security headers everywhere, a slow client cut off, bounded ids and bodies.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::TestApp;
use switchboard::http::auth::Rules;
use tower::ServiceExt;

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::new().await;
    let spec = switchboard::http::openapi::spec();
    let mut uris: Vec<(Method, String)> = Rules::from_spec(&spec)
        .iter()
        .map(|((method, path), _)| (method.clone(), common::sample_path(path)))
        .collect();
    for page in [
        "/",
        "/no-such-page",
        "/api/v1/nothing",
        "/assets/nothing.js",
    ] {
        uris.push((Method::GET, page.to_string()));
    }
    for asset in switchboard::web::names() {
        uris.push((Method::GET, format!("/assets/{asset}")));
    }
    for (method, uri) in uris {
        for token in [None, Some(app.token.as_str())] {
            let mut request = Request::builder().method(method.clone()).uri(&uri);
            if let Some(t) = token {
                request = request.header("authorization", format!("Bearer {t}"));
            }
            let response = app
                .router
                .clone()
                .oneshot(request.body(Body::empty()).expect("request"))
                .await
                .expect("response");
            let h = response.headers();
            let csp = h
                .get("content-security-policy")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{method} {uri}: no CSP"));
            assert!(
                csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
                "{csp}"
            );
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
            assert_eq!(h["x-content-type-options"], "nosniff", "{method} {uri}");
            assert_eq!(h["x-frame-options"], "DENY", "{method} {uri}");
            assert_eq!(h["referrer-policy"], "no-referrer", "{method} {uri}");
        }
    }
    // The page keeps to that policy: no inline script, no inline handlers or styles.
    let page = include_str!("../src/web/assets/index.html");
    for forbidden in ["<script>", "<style", " onclick=", " onload=", " style="] {
        assert!(!page.contains(forbidden), "the page has {forbidden}");
    }
    assert!(switchboard::web::names().any(|name| name.ends_with(".js")));
}

/// As many ids as fit in a URL (64 KiB): refused, and fast (10,000 are refused by `parse_ids`
/// in its own test; no URL can carry them).
#[tokio::test]
async fn more_ids_than_allowed_are_refused_at_once() {
    let app = TestApp::new().await;
    let ids: Vec<String> = (0..1_700u128)
        .map(|i| uuid::Uuid::from_u128(i).to_string())
        .collect();
    let uri = format!("/api/v1/presence?ids={}", ids.join(","));
    let started = Instant::now();
    let (status, _, body) = app.get(&uri).await;
    println!("1,700 ids answered in {:?}", started.elapsed());
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_parameter");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("at most 1000"),
        "{body}"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = TestApp::new().await;
    let big = format!(
        "{{\"username\": \"x\", \"password\": \"{}\"}}",
        "p".repeat(100 * 1024)
    );
    let (status, _, _) = app
        .send(
            Request::post("/api/v1/auth/login")
                .header("content-type", "application/json")
                .body(Body::from(big))
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    let app = TestApp::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = app.router.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(switchboard::server::serve_connections(
        listener,
        router,
        None,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));

    // A well-behaved request is served, with the client's address known to the server.
    let ok = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("write");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("read");
        answer
    })
    .await
    .expect("client");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");

    // One byte every 200 ms: the server must hang up long before this client is done (it would
    // need about 8 s to send its headers).
    let cut = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(10)))
            .expect("timeout");
        let started = Instant::now();
        for byte in b"GET /healthz HTTP/1.1\r\nHost: example\r\nX-Slow: 1\r\n\r\n".iter() {
            if s.write_all(&[*byte]).is_err() {
                return Some(started.elapsed());
            }
            let mut buf = [0u8; 256];
            match s.read(&mut buf) {
                Ok(0) => return Some(started.elapsed()),
                Ok(_) => return Some(started.elapsed()),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return Some(started.elapsed()),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    })
    .await
    .expect("slow client");
    let after = cut.expect("the server never hung up on a client trickling its headers");
    println!("slow client cut off after {after:?} (header timeout 1 s)");
    assert!(after < Duration::from_secs(6), "{after:?}");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops")
        .expect("server task");
}

#[tokio::test]
async fn presence_streams_per_principal_are_capped() {
    let mut config = switchboard::config::Config::default();
    config.access.max_streams_per_principal = 2;
    let app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    let other =
        switchboard::access::tokens::add(&app.db.pool, "other", switchboard::access::Role::Viewer)
            .await
            .expect("token");
    let open = |token: String| {
        let router = app.router.clone();
        async move {
            router
                .oneshot(
                    Request::get(
                        "/api/v1/presence/stream?ids=00000000-0000-0000-0000-000000000001",
                    )
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                    .expect("request"),
                )
                .await
                .expect("response")
        }
    };
    let first = open(app.token.clone()).await;
    let second = open(app.token.clone()).await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let third = open(app.token.clone()).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().contains_key("retry-after"));
    assert_eq!(
        open(other).await.status(),
        StatusCode::OK,
        "another caller has its own cap"
    );
    drop(first);
    assert_eq!(
        open(app.token.clone()).await.status(),
        StatusCode::OK,
        "a closed stream frees its slot"
    );
    drop(second);
}

#[tokio::test]
async fn each_principal_has_a_rate_limit() {
    let mut config = switchboard::config::Config::default();
    config.access.rate_per_second = 2.0;
    config.access.rate_burst = 3.0;
    let app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    let other =
        switchboard::access::tokens::add(&app.db.pool, "other", switchboard::access::Role::Viewer)
            .await
            .expect("token");
    let get = |token: &str| {
        Request::get("/api/v1/people")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request")
    };
    for i in 0..3 {
        assert_eq!(
            app.send(get(&app.token)).await.0,
            StatusCode::OK,
            "request {i} of the burst"
        );
    }
    let (status, headers, body) = app.send(get(&app.token)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(
        app.send(get(&other)).await.0,
        StatusCode::OK,
        "another principal has its own bucket"
    );
    app.advance(chrono::Duration::milliseconds(600));
    assert_eq!(
        app.send(get(&app.token)).await.0,
        StatusCode::OK,
        "refilled at 2 a second"
    );
    assert_eq!(
        app.send(get(&app.token)).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn the_host_must_be_ours_and_only_a_trusted_proxy_names_the_client() {
    let mut config = switchboard::config::Config::default();
    config.access.public_url = Some("https://directory.example.com".into());
    config.access.trusted_proxies = vec!["10.9.0.0/16".into()];
    config.access.metrics_allow = vec!["192.0.2.7".into()];
    let app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    let request = |host: &str, peer: &str, forwarded: Option<&str>| {
        let mut r = Request::get("/metrics").header("host", host);
        if let Some(f) = forwarded {
            r = r.header("x-forwarded-for", f);
        }
        if let Some(ext) = r.extensions_mut() {
            ext.insert(axum::extract::ConnectInfo(
                format!("{peer}:4000")
                    .parse::<std::net::SocketAddr>()
                    .expect("addr"),
            ));
        }
        r.body(Body::empty()).expect("request")
    };
    let (status, _, body) = app
        .send(request("evil.example.net", "192.0.2.7", None))
        .await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(body["code"], "misdirected");
    // A probe addressing the machine still gets its health.
    let probe = Request::get("/healthz")
        .header("host", "10.0.0.12:8080")
        .body(Body::empty())
        .expect("request");
    assert_eq!(app.send(probe).await.0, StatusCode::OK);
    // Our host (the default port may be written or not); the allowed address itself.
    for host in [
        "directory.example.com",
        "directory.example.com:443",
        "DIRECTORY.example.com",
    ] {
        assert_eq!(
            app.send(request(host, "192.0.2.7", None)).await.0,
            StatusCode::OK,
            "{host}"
        );
    }
    // Behind a trusted proxy, the client is the one X-Forwarded-For names…
    let via_proxy = request(
        "directory.example.com",
        "10.9.1.1",
        Some("203.0.113.5, 192.0.2.7"),
    );
    assert_eq!(app.send(via_proxy).await.0, StatusCode::OK);
    let via_proxy = request(
        "directory.example.com",
        "10.9.1.1",
        Some("192.0.2.7, 203.0.113.5"),
    );
    assert_eq!(
        app.send(via_proxy).await.0,
        StatusCode::UNAUTHORIZED,
        "the rightmost untrusted address counts"
    );
    // …and from anyone else the header is ignored.
    let spoofed = request("directory.example.com", "203.0.113.9", Some("192.0.2.7"));
    assert_eq!(app.send(spoofed).await.0, StatusCode::UNAUTHORIZED);
}

/// Drill: `kill -9` of an import in progress. Nothing of it is written (one transaction), and
/// its run, left `running`, is marked failed by the next start (`serve`, or another import).
#[tokio::test]
async fn a_run_left_running_by_a_killed_import_is_marked_failed() {
    use switchboard::db::runs;
    let app = TestApp::new().await;
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("big.csv");
    let mut csv = String::from("external_id,given_name,family_name,email\n");
    for i in 0..200_000 {
        csv.push_str(&format!("e{i},Given{i},Family{i},p{i}@example.com\n"));
    }
    std::fs::write(&file, csv).expect("csv");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["import", "csv"])
        .arg(&file)
        .args(["--source", "hr", "--full"])
        .env("SWITCHBOARD_DATABASE__URL", &app.db.url)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("import");
    let deadline = Instant::now() + Duration::from_secs(120);
    let run: i64 = loop {
        let running: Option<i64> =
            sqlx::query_scalar("SELECT id FROM sync_runs WHERE status = 'running'")
                .fetch_optional(&app.db.pool)
                .await
                .expect("runs");
        if let Some(id) = running {
            break id;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the import ended before it could be killed"
        );
        assert!(
            Instant::now() < deadline,
            "the import never started its run"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // While it runs, its run is not taken for abandoned.
    assert_eq!(
        runs::fail_abandoned(&app.db.pool).await.expect("check"),
        Vec::<i64>::new()
    );
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    // PostgreSQL notices the dead connection (and drops its lock) on its own time.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if runs::fail_abandoned(&app.db.pool).await.expect("check") == vec![run] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "run {run} was never marked failed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status, error FROM sync_runs WHERE id = $1")
            .bind(run)
            .fetch_one(&app.db.pool)
            .await
            .expect("run");
    assert_eq!(status, "failed");
    assert!(error.unwrap_or_default().contains("interrupted"));
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM people")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(people, 0, "nothing half-written");
}

/// A binary with another index schema started beside a live server refuses to touch its index
/// (it used to delete it); once nobody writes to it, it is rebuilt.
#[tokio::test]
async fn a_schema_mismatch_never_deletes_a_live_servers_index() {
    use switchboard::search::SearchIndex;
    let mut app = TestApp::new().await;
    app.import_csv(
        "given_name,family_name,email\nAda,Lovelace,ada@example.com\n",
        &common::options("hr"),
    )
    .await
    .expect("import");
    let dir = app.dir.path().join("index");
    // The app's indexer holds the writer, as a running server does; the version file says
    // another schema (as after an upgrade of the binary on disk).
    std::fs::write(dir.join("schema_version"), "1").expect("version");
    let refused = SearchIndex::open(&dir);
    assert!(
        matches!(refused, Err(switchboard::Error::IndexLocked)),
        "{:?}",
        refused.err()
    );
    assert!(dir.join("meta.json").exists(), "the live index is intact");
    assert_eq!(app.names("lovelace").await, ["Ada Lovelace"]);

    // The server stops: the next start rebuilds the index for its schema.
    let TestApp { indexer, .. } = app;
    drop(indexer);
    let reopened = SearchIndex::open(&dir).expect("recreated");
    assert_eq!(
        reopened.num_docs(),
        0,
        "an empty index for the new schema, to rebuild"
    );
}

/// A sign-in provider that accepts connections and never answers, so requests that reach it
/// hang: the request timeout ends them, and past the concurrency limit new ones are shed.
#[tokio::test]
async fn hung_requests_time_out_and_excess_ones_are_shed() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let issuer = format!("http://{}", silent.local_addr().expect("addr"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let mut config = switchboard::config::Config::default();
    config.access.oidc = Some(switchboard::access::oidc::OidcConfig {
        issuer_url: issuer,
        client_id: "switchboard".into(),
        client_secret: Some("secret".into()),
        client_secret_file: None,
        scopes: Vec::new(),
        groups_claim: "groups".into(),
        roles: Default::default(),
    });
    config.access.public_url = Some("http://127.0.0.1:9".into());
    config.access.allowed_hosts = Vec::new();
    config.http.request_timeout = "1s".into();
    config.http.max_concurrent_requests = 1;
    let app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    let login = || {
        Request::get("/api/v1/auth/oidc/login")
            .header("host", "127.0.0.1:9")
            .body(Body::empty())
            .expect("request")
    };
    let hung = {
        let router = app.router.clone();
        tokio::spawn(async move { router.oneshot(login()).await.expect("response") })
    };
    // While it hangs, the one permit is taken: the next request is shed at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    let health = || {
        Request::get("/healthz")
            .header("host", "127.0.0.1:9")
            .body(Body::empty())
            .expect("request")
    };
    let shed = loop {
        let (status, headers, body) = app.send(health()).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break (headers, body);
        }
        assert!(
            Instant::now() < deadline,
            "the hung request never held its permit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(shed.1["code"], "overloaded");
    assert_eq!(shed.0["retry-after"], "1");
    let timed_out = hung.await.expect("hung request");
    assert_eq!(timed_out.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = http_body_util::BodyExt::collect(timed_out.into_body())
        .await
        .expect("body")
        .to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).expect("problem");
    assert_eq!(body["code"], "timeout");
    // The permit is back.
    assert_eq!(app.send(health()).await.0, StatusCode::OK);
    held.abort();
}

/// A method a path does not have is 405 with the ones it has, for everyone (not a 403 that
/// would read as "you may not").
#[tokio::test]
async fn a_method_the_spec_does_not_list_is_405_with_allow() {
    let app = TestApp::new().await;
    for (method, path, allow) in [
        ("TRACE", "/healthz", "GET, HEAD"),
        ("DELETE", "/api/v1/people", "GET, HEAD"),
        ("GET", "/api/v1/auth/logout", "POST"),
    ] {
        let request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", app.token))
            .body(axum::body::Body::empty())
            .expect("request");
        let (status, headers, body) = app.send(request).await;
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert_eq!(headers["allow"], allow, "{method} {path}");
        assert_eq!(body["code"], "method_not_allowed");
    }
}
