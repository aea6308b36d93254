//! The record of every import and sync run.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;

use crate::error::Result;

/// A row refused by an import, or a warning on one it kept, with where and why.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Reject {
    /// Line in the input where the record starts, when the source has lines.
    pub line: Option<u64>,
    pub external_id: Option<String>,
    /// Where the entry lives in a directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
    pub reason: String,
}

impl Reject {
    /// `line 12`, `dn uid=ann,ou=people,…`, or `?` when the source gives neither.
    pub fn position(&self) -> String {
        match (&self.line, &self.dn) {
            (Some(line), _) => format!("line {line}"),
            (None, Some(dn)) => format!("dn {dn}"),
            (None, None) => "?".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Counts {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub rejected: usize,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct SyncRun {
    pub id: i64,
    pub source: String,
    pub kind: String,
    pub mode: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub added: i32,
    pub updated: i32,
    pub removed: i32,
    pub unchanged: i32,
    pub rejected: i32,
    /// Warnings on people kept (numbers kept as written, fields cut…).
    pub warnings: i32,
    pub error: Option<String>,
}

pub async fn ensure_source(pool: &PgPool, name: &str, kind: &str) -> Result<()> {
    sqlx::query("INSERT INTO sources (name, kind) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(kind)
        .execute(pool)
        .await?;
    Ok(())
}

/// The first key of the advisory locks that say a run's process is alive (the second is the
/// run id; two-key locks never meet the one-key ones).
const RUN_LOCK: i32 = 0x5352; // "SR"

/// Proof that this process is running a run: a connection of its own holding the run's
/// advisory lock. When the process dies, PostgreSQL ends the connection and the lock goes, and
/// [`fail_abandoned`] can tell the run will never finish. Dropping it closes the connection.
pub struct RunLease {
    _conn: PgConnection,
}

/// Opens a run in its own transaction, so a run that fails later is still on record. Keep the
/// lease until the run is recorded as done.
pub async fn start(pool: &PgPool, source: &str, kind: &str, mode: &str) -> Result<(i64, RunLease)> {
    fail_abandoned(pool).await?;
    let mut conn = pool.acquire().await?.detach();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO sync_runs (source, kind, mode, status) VALUES ($1, $2, $3, 'running') RETURNING id",
    )
    .bind(source)
    .bind(kind)
    .bind(mode)
    .fetch_one(&mut conn)
    .await?;
    sqlx::query("SELECT pg_advisory_lock($1, $2)")
        .bind(RUN_LOCK)
        .bind(lock_key(id))
        .execute(&mut conn)
        .await?;
    Ok((id, RunLease { _conn: conn }))
}

fn lock_key(run_id: i64) -> i32 {
    // Ids past 2^31 wrap: two runs that share a key are only checked a little later.
    run_id as i32
}

/// Marks failed the runs still `running` whose process is gone (killed, crashed, its machine
/// lost): nobody holds their lease. Returns their ids.
pub async fn fail_abandoned(pool: &PgPool) -> Result<Vec<i64>> {
    let running: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM sync_runs WHERE status = 'running' ORDER BY id")
            .fetch_all(pool)
            .await?;
    if running.is_empty() {
        return Ok(running);
    }
    let mut conn = pool.acquire().await?;
    let mut failed = Vec::new();
    for id in running {
        let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(RUN_LOCK)
            .bind(lock_key(id))
            .fetch_one(&mut *conn)
            .await?;
        if !free {
            continue;
        }
        let done = sqlx::query(
            "UPDATE sync_runs SET status = 'failed', finished_at = now(), \
             error = 'interrupted: the process running it stopped before it finished; nothing of it was written' \
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
        sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(RUN_LOCK)
            .bind(lock_key(id))
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() > 0 {
            tracing::warn!(
                run = id,
                "a run left running by a stopped process is marked failed"
            );
            failed.push(id);
        }
    }
    Ok(failed)
}

fn clamp(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub async fn succeed(
    conn: &mut PgConnection,
    run_id: i64,
    counts: &Counts,
    rejects: &[Reject],
    warnings: &[Reject],
) -> Result<()> {
    sqlx::query(
        "UPDATE sync_runs SET status = 'succeeded', finished_at = now(), added = $2, updated = $3, \
         removed = $4, unchanged = $5, rejected = $6, warnings = $7 WHERE id = $1",
    )
    .bind(run_id)
    .bind(clamp(counts.added))
    .bind(clamp(counts.updated))
    .bind(clamp(counts.removed))
    .bind(clamp(counts.unchanged))
    .bind(clamp(counts.rejected))
    .bind(clamp(warnings.len()))
    .execute(&mut *conn)
    .await?;
    record_rejects(conn, run_id, rejects, false).await?;
    record_rejects(conn, run_id, warnings, true).await
}

pub async fn fail(pool: &PgPool, run_id: i64, error: &str, rejects: &[Reject]) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE sync_runs SET status = 'failed', finished_at = now(), rejected = $3, error = $2 WHERE id = $1",
    )
    .bind(run_id)
    .bind(error)
    .bind(clamp(rejects.len()))
    .execute(&mut *tx)
    .await?;
    record_rejects(&mut tx, run_id, rejects, false).await?;
    tx.commit().await?;
    Ok(())
}

async fn record_rejects(
    conn: &mut PgConnection,
    run_id: i64,
    rejects: &[Reject],
    warning: bool,
) -> Result<()> {
    if rejects.is_empty() {
        return Ok(());
    }
    crate::db::copy::copy_rows(
        conn,
        "COPY sync_rejects (run_id, line, external_id, dn, reason, warning) FROM STDIN",
        rejects,
        |row, r| {
            row.display(Some(run_id))
                .display(r.line)
                .text(r.external_id.as_deref())
                .text(r.dn.as_deref())
                .text(Some(&r.reason))
                .display(Some(warning));
        },
    )
    .await?;
    Ok(())
}

pub async fn get(pool: &PgPool, run_id: i64) -> Result<Option<SyncRun>> {
    Ok(
        sqlx::query_as::<_, SyncRun>("SELECT * FROM sync_runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(pool)
            .await?,
    )
}

/// The rows a run refused (`warnings`: the warnings on those it kept), in input order.
pub async fn rejects(pool: &PgPool, run_id: i64, warnings: bool) -> Result<Vec<Reject>> {
    let rows = sqlx::query_as::<_, (Option<i64>, Option<String>, Option<String>, String)>(
        "SELECT line, external_id, dn, reason FROM sync_rejects WHERE run_id = $1 AND warning = $2 \
         ORDER BY line NULLS LAST, dn",
    )
    .bind(run_id)
    .bind(warnings)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(line, external_id, dn, reason)| Reject {
            line: line.map(|l| l as u64),
            external_id,
            dn,
            reason,
        })
        .collect())
}

/// The most recent runs first, optionally of one source.
pub async fn list(pool: &PgPool, source: Option<&str>, limit: i64) -> Result<Vec<SyncRun>> {
    Ok(sqlx::query_as::<_, SyncRun>(
        "SELECT * FROM sync_runs WHERE ($1::text IS NULL OR source = $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(source)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// One person a run added, updated or removed.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, ToSchema)]
pub struct RunChange {
    /// `added`, `updated` or `removed`.
    pub kind: String,
    pub person_id: uuid::Uuid,
    /// The person's id in the source (entryUUID, objectGUID, CSV id…).
    pub external_id: String,
    pub display_name: String,
}

/// Who a run changed, in the order it changed them, at most `limit`.
pub async fn changes(pool: &PgPool, run_id: i64, limit: i64) -> Result<Vec<RunChange>> {
    Ok(sqlx::query_as::<_, RunChange>(
        "SELECT kind, person_id, external_id, display_name FROM change_log \
         WHERE run_id = $1 AND kind IS NOT NULL ORDER BY seq LIMIT $2",
    )
    .bind(run_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
