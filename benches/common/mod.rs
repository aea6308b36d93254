//! What the benchmarks share: their arguments and a fresh embedded PostgreSQL.
#![allow(dead_code)]

use std::path::Path;

use switchboard::db::EmbeddedPostgres;

/// The number after `name` on the command line (`--people 1_000_000`), or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A throwaway PostgreSQL cluster in `dir` with a migrated `bench` database.
pub async fn fresh_database(dir: &Path) -> (EmbeddedPostgres, sqlx::PgPool) {
    let cluster = EmbeddedPostgres::start(&dir.join("postgres"))
        .await
        .expect("postgres");
    switchboard::db::ensure_database(&cluster.connect_options("postgres"), "bench")
        .await
        .expect("db");
    let pool = switchboard::db::pool(cluster.connect_options("bench"), 16)
        .await
        .expect("pool");
    switchboard::db::MIGRATOR.run(&pool).await.expect("migrate");
    (cluster, pool)
}

/// A full import of `source`, as the CLI does it.
pub fn import_options(source: &str) -> switchboard::sync::ImportOptions {
    switchboard::sync::ImportOptions {
        source: source.into(),
        kind: "csv".into(),
        full: true,
        dry_run: false,
        force: false,
        max_delete_share: 0.2,
        mode: None,
        merge: Default::default(),
    }
}

/// The `p` quantile of sorted times, in milliseconds.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// The demo company of `count` people imported into `pool` and indexed (merged into one
/// segment, as a settled index is), as `switchboard demo` loads it.
pub async fn demo_index(
    pool: &sqlx::PgPool,
    dir: &Path,
    count: usize,
) -> switchboard::search::SearchIndex {
    use switchboard::sources::ContactSource;
    let raw = switchboard::demo::DemoSource { count, seed: 3 }
        .read()
        .await
        .expect("people");
    let phones = switchboard::config::Config::default()
        .phones(None)
        .expect("phones");
    switchboard::sync::import(
        pool,
        raw,
        &phones,
        &import_options("demo"),
        &indicatif::ProgressBar::hidden(),
    )
    .await
    .expect("import");
    let index = switchboard::search::SearchIndex::open(&dir.join("index")).expect("index");
    let mut indexer = switchboard::search::indexer::Indexer::new(index.clone(), pool.clone(), 512)
        .expect("indexer");
    indexer.catch_up().await.expect("index");
    indexer.merge_segments().await.expect("merge");
    index
}

/// One GET through the whole router with `key` as bearer: how long it took and the answer.
pub async fn ask(
    router: &axum::Router,
    uri: &str,
    key: &str,
) -> (std::time::Duration, serde_json::Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let request = axum::http::Request::get(uri)
        .header("authorization", format!("Bearer {key}"))
        .body(axum::body::Body::empty())
        .expect("request");
    let t = std::time::Instant::now();
    let response = router.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let took = t.elapsed();
    assert!(
        status.is_success(),
        "{uri}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    (took, serde_json::from_slice(&body).expect("json"))
}

/// The app as `serve` builds it over `pool`, `index` and `presence` (without the per-principal
/// rate limit: a benchmark asks much, fast), with a viewer's service token; stop the audit
/// writer with the sender, then await the task.
pub async fn router(
    pool: &sqlx::PgPool,
    index: switchboard::search::SearchIndex,
    presence: switchboard::presence::PresenceHub,
) -> (
    axum::Router,
    String,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (audit_stop, audit_stopped) = tokio::sync::watch::channel(false);
    let (audit, audit_task) = switchboard::audit::AuditLog::start(pool.clone(), audit_stopped);
    let mut config = switchboard::config::Config::default();
    config.access.rate_per_second = 0.0;
    let state = switchboard::state::app_state(
        &config,
        pool.clone(),
        index,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        presence,
        audit,
        std::sync::Arc::new(chrono::Utc::now),
    )
    .expect("state");
    let token = switchboard::access::tokens::add(pool, "bench", switchboard::access::Role::Viewer)
        .await
        .expect("token");
    (
        switchboard::http::router(state),
        token,
        audit_stop,
        audit_task,
    )
}
