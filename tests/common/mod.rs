//! Shared test harness: a real PostgreSQL (the embedded cluster, started on first use in
//! `target/tmp/pg`), one fresh database per test, a tantivy index in a temp dir, and the router.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use indicatif::ProgressBar;
use sqlx::PgPool;
use switchboard::config::Config;
use switchboard::db::EmbeddedPostgres;
use switchboard::domain::PhoneNormalizer;
use switchboard::http::router;
use switchboard::search::indexer::Indexer;
use switchboard::search::SearchIndex;
use switchboard::sync::{self, ImportOptions, ImportReport, RawBatch};
use tower::ServiceExt;

pub mod certs;
pub mod demo;
pub mod samba;
pub mod slapd;

pub fn cluster_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("pg")
        .join("postgres")
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub struct TestDb {
    pub pool: PgPool,
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A new, migrated database in the shared test cluster.
    pub async fn new() -> TestDb {
        let cluster = EmbeddedPostgres::start(&cluster_dir())
            .await
            .expect("start test cluster");
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        switchboard::db::ensure_database(&cluster.connect_options("postgres"), &name)
            .await
            .expect("create db");
        let pool = switchboard::db::pool(cluster.connect_options(&name), 8)
            .await
            .expect("connect");
        switchboard::db::MIGRATOR.run(&pool).await.expect("migrate");
        let url = cluster.url(&name);
        TestDb { pool, name, url }
    }
}

pub struct TestApp {
    pub db: TestDb,
    pub index: SearchIndex,
    pub indexer: Indexer,
    pub router: Router,
    pub ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub dir: tempfile::TempDir,
    pub state: switchboard::http::AppState,
    /// An admin service token, sent by `get`.
    pub token: String,
    /// Added to the real time by the app's clock (sessions, throttling).
    pub clock_offset: std::sync::Arc<std::sync::Mutex<chrono::Duration>>,
    audit_stop: tokio::sync::watch::Sender<bool>,
    audit_task: Option<tokio::task::JoinHandle<()>>,
}

pub fn options(source: &str) -> ImportOptions {
    ImportOptions {
        source: source.into(),
        kind: "csv".into(),
        full: false,
        dry_run: false,
        force: false,
        max_delete_share: 0.2,
        mode: None,
        merge: Default::default(),
    }
}

impl TestApp {
    pub async fn new() -> TestApp {
        TestApp::with_presence(switchboard::presence::PresenceHub::disabled()).await
    }

    /// A test app whose API serves presence from `presence`.
    pub async fn with_presence(presence: switchboard::presence::PresenceHub) -> TestApp {
        TestApp::with(Config::default(), presence).await
    }

    /// A test app built as `serve` builds its state, from `config` (without the per-principal
    /// rate limit unless the config sets one other than the default: tests ask much, fast).
    pub async fn with(mut config: Config, presence: switchboard::presence::PresenceHub) -> TestApp {
        if config.access.rate_per_second == Config::default().access.rate_per_second {
            config.access.rate_per_second = 0.0;
        }
        let db = TestDb::new().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let index = SearchIndex::open(&dir.path().join("index")).expect("index");
        let indexer = Indexer::new(index.clone(), db.pool.clone(), 50).expect("indexer");
        let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let clock_offset = std::sync::Arc::new(std::sync::Mutex::new(chrono::Duration::zero()));
        let offset = clock_offset.clone();
        let clock: switchboard::presence::Clock =
            std::sync::Arc::new(move || chrono::Utc::now() + *offset.lock().expect("clock"));
        let (audit_stop, stopped) = tokio::sync::watch::channel(false);
        let (audit, audit_task) = switchboard::audit::AuditLog::start(db.pool.clone(), stopped);
        let state = switchboard::state::app_state(
            &config,
            db.pool.clone(),
            index.clone(),
            ready.clone(),
            presence,
            audit,
            clock,
        )
        .expect("state");
        let router = router(state.clone());
        let token = switchboard::access::tokens::add(
            &db.pool,
            "test-admin",
            switchboard::access::Role::Admin,
        )
        .await
        .expect("token");
        TestApp {
            db,
            index,
            indexer,
            router,
            ready,
            dir,
            state,
            token,
            clock_offset,
            audit_stop,
            audit_task: Some(audit_task),
        }
    }

    /// An HTTP client that sends the admin token on every request.
    pub fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", self.token).parse().expect("header"),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client")
    }

    /// Moves the app's clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        *self.clock_offset.lock().expect("clock") += by;
    }

    /// Stops the audit writer after it has written everything queued.
    pub async fn flush_audit(&mut self) {
        let _ = self.audit_stop.send(true);
        if let Some(task) = self.audit_task.take() {
            task.await.expect("audit writer");
        }
    }

    /// Sends a request through the router; answers status, headers and the body as JSON (or
    /// `Null`).
    pub async fn send(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let (status, headers, bytes) = self.send_raw(request).await;
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, headers, json)
    }

    /// Sends a request through the router; answers status, headers and the body's bytes.
    pub async fn send_raw(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, headers, bytes.to_vec())
    }

    /// Imports CSV text with the default region GB, then brings the index up to date.
    pub async fn import_csv(
        &mut self,
        csv: &str,
        opts: &ImportOptions,
    ) -> switchboard::Result<ImportReport> {
        let raw = switchboard::sources::csv::parse(csv.as_bytes(), &Default::default())?;
        self.import(raw, opts).await
    }

    pub async fn import(
        &mut self,
        raw: RawBatch,
        opts: &ImportOptions,
    ) -> switchboard::Result<ImportReport> {
        let phones = PhoneNormalizer::new("GB").expect("region");
        self.import_with(raw, opts, &phones).await
    }

    /// Imports with the given phone normalizer (regions as a config would give them).
    pub async fn import_with(
        &mut self,
        raw: RawBatch,
        opts: &ImportOptions,
        phones: &PhoneNormalizer,
    ) -> switchboard::Result<ImportReport> {
        let report = sync::import(&self.db.pool, raw, phones, opts, &ProgressBar::hidden()).await?;
        self.indexer.catch_up().await.expect("catch up");
        Ok(report)
    }

    /// GET with the admin token; answers status, content type and the body as JSON (or `Null`).
    pub async fn get(&self, uri: &str) -> (StatusCode, String, serde_json::Value) {
        let request = Request::get(uri)
            .header("authorization", format!("Bearer {}", self.token))
            .body(Body::empty())
            .expect("request");
        let (status, headers, json) = self.send(request).await;
        let content_type = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .unwrap_or_default();
        (status, content_type, json)
    }

    /// Writes what the audit writer has queued, then answers every record's principal and
    /// action, oldest first.
    pub async fn audit_actions(&mut self) -> Vec<(String, String)> {
        self.flush_audit().await;
        sqlx::query_as("SELECT principal, action FROM audit_log ORDER BY seq")
            .fetch_all(&self.db.pool)
            .await
            .expect("audit")
    }

    /// Runs SQL as a superuser who has turned the audit trail's append-only triggers off: a
    /// tamperer.
    pub async fn tamper(&self, sql: &str) {
        let mut tx = self.db.pool.begin().await.expect("tx");
        sqlx::query("SET LOCAL session_replication_role = replica")
            .execute(&mut *tx)
            .await
            .expect("replica");
        sqlx::query(sql).execute(&mut *tx).await.expect(sql);
        tx.commit().await.expect("commit");
    }

    /// People of `source` who are not deleted.
    pub async fn active(&self, source: &str) -> i64 {
        switchboard::db::people::count_active(&self.db.pool, Some(source))
            .await
            .expect("count")
    }

    /// Signs a local account in through the API; answers the session cookie (`name=value`) and
    /// the session's CSRF token.
    /// The id of the (one) person with this family name.
    pub async fn id_of(&self, family: &str) -> uuid::Uuid {
        sqlx::query_scalar("SELECT id FROM people WHERE family_name = $1")
            .bind(family)
            .fetch_one(&self.db.pool)
            .await
            .expect("id")
    }

    /// A new local account with `role`, signed in: its session cookie.
    pub async fn signed_in(&self, user: &str, role: switchboard::access::Role) -> String {
        switchboard::access::users::add(
            &self.db.pool,
            user,
            role,
            Some("correct horse battery".into()),
        )
        .await
        .expect("user");
        self.sign_in(user, "correct horse battery").await.0
    }

    pub async fn sign_in(&self, user: &str, password: &str) -> (String, String) {
        let body = serde_json::json!({"username": user, "password": password});
        let (status, headers, session) = self
            .send(
                Request::post("/api/v1/auth/login")
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_string()))
                    .expect("request"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{session}");
        let cookie = headers["set-cookie"]
            .to_str()
            .expect("cookie")
            .split(';')
            .next()
            .expect("cookie")
            .to_string();
        let csrf = session["csrf_token"].as_str().expect("csrf").to_string();
        (cookie, csrf)
    }

    /// Serves the app's router on a free port, as `serve` does; answers its URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let router = self.router.clone();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .expect("serve");
        });
        format!("http://{address}")
    }

    /// Creates a device (desk phone, mail client) and returns its password.
    pub async fn device(&self, name: &str) -> String {
        switchboard::access::devices::add(&self.db.pool, name)
            .await
            .expect("device")
    }

    /// Display names of the hits for `q`, best first.
    pub async fn names(&self, q: &str) -> Vec<String> {
        let uri = format!("/api/v1/people?limit=100&q={}", urlencode(q));
        let (status, _, body) = self.get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        display_names(&body)
    }
}

/// A configuration whose viewers (and devices) see only these departments.
pub fn viewers_see_only(departments: &[&str]) -> Config {
    let mut config = Config::default();
    let mut policy = switchboard::access::policy::Policy::staff_default();
    policy.scope.department = departments.iter().map(|d| d.to_string()).collect();
    config
        .access
        .policies
        .insert(switchboard::access::Role::Viewer, policy);
    config
}

/// Display names of the people in a search response, in order.
pub fn display_names(body: &serde_json::Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["display_name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The address a `serve` or `demo` process announces on a line of its output ("… running at
/// http://127.0.0.1:PORT/"), without the trailing slash.
pub fn served_url(line: &str) -> Option<String> {
    let rest = line.split("running at ").nth(1)?;
    Some(
        rest.split_whitespace()
            .next()?
            .trim_end_matches('/')
            .to_string(),
    )
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A concrete URI for an OpenAPI path template, with ids of the right shape.
pub fn sample_path(path: &str) -> String {
    path.replace(
        "{id}",
        if path.contains("/sync/runs/") {
            "1"
        } else {
            "00000000-0000-0000-0000-000000000001"
        },
    )
    .replace("{number}", "4711")
    .replace("{digest}", "0123456789abcdef0123456789abcdef")
    .replace("{kind}", "absence")
}

/// A presence hub with one webhook backend, `pbx`, whose callers present `token`.
pub fn webhook_hub(token: &str) -> switchboard::presence::PresenceHub {
    let mut pbx = switchboard::presence::BackendConfig::new("pbx", "webhook");
    pbx.token = Some(token.into());
    switchboard::presence::PresenceHub::from_config(
        &switchboard::presence::PresenceConfig {
            backends: vec![pbx],
            ..Default::default()
        },
        switchboard::presence::system_clock(),
    )
    .expect("hub")
}
