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
