//! Forgetting people: those removed from every source are purged after `[retention]
//! removed_days`, and `switchboard person erase ID` erases one at once (GDPR art. 17). Either way
//! the person's row, their records from each source, notes and photos (unless someone else has
//! the same one) are deleted, and the change log keeps only that *someone* changed: their name
//! and source id are blanked. Managers' reports lose the link. Each erasure is audited; the audit
//! trail itself is append-only and hash-chained, so it is not rewritten: it keeps the queries
//! made and the ids answered.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::audit::{AuditEvent, AuditLog};
use crate::db::{CHANGES_CHANNEL, WRITE_LOCK_KEY};
use crate::error::{Error, Result};
use crate::presence::Clock;

/// `[retention]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days a person removed from every source is kept (for the record of who left, and to
    /// come back unchanged if the removal was a mistake) before being purged. 0: never purge.
    pub removed_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { removed_days: 30 }
    }
}

/// How often the server looks for people due for purging.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// What one erasure removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Erased {
    pub people: u64,
    pub photos: u64,
    /// Reports whose manager link was cut.
    pub reports: u64,
}

/// Erases `ids` (active or removed) in one transaction; unknown ids are skipped. Active people
/// leave the search index through the change log, like any removal.
pub async fn erase(pool: &PgPool, ids: &[Uuid]) -> Result<Erased> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITE_LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    let gone: Vec<(Uuid, Option<String>)> =
        sqlx::query_as("DELETE FROM people WHERE id = ANY($1) RETURNING id, photo_url")
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
    if gone.is_empty() {
        return Ok(Erased::default());
    }
    let ids: Vec<Uuid> = gone.iter().map(|(id, _)| *id).collect();
    let photos: Vec<String> = gone.iter().filter_map(|(_, p)| p.clone()).collect();
    let photos = sqlx::query(
        "DELETE FROM photos WHERE '/api/v1/photos/' || digest = ANY($1) \
         AND NOT EXISTS (SELECT 1 FROM people WHERE photo_url = '/api/v1/photos/' || digest)",
    )
    .bind(&photos)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    for table in ["person_sources", "person_notes"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE person_id = ANY($1)"))
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "UPDATE change_log SET display_name = NULL, external_id = NULL WHERE person_id = ANY($1)",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    // Reports name their manager by id and by what the source said (an email, often).
    let reports: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE people SET manager_id = NULL, manager_ref = NULL, updated_at = now() \
         WHERE manager_id = ANY($1) RETURNING id",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    // The indexer drops the erased (their rows are gone) and re-renders the reports.
    sqlx::query(
        "INSERT INTO change_log (person_id, kind) \
         SELECT id, 'removed' FROM unnest($1::uuid[]) AS id \
         UNION ALL SELECT id, 'updated' FROM unnest($2::uuid[]) AS id",
    )
    .bind(&ids)
    .bind(&reports)
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, 'erase')")
        .bind(CHANGES_CHANNEL)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Erased {
        people: ids.len() as u64,
        photos,
        reports: reports.len() as u64,
    })
}

/// Erases everyone removed from every source before `cutoff`. Answers who was erased.
pub async fn purge_removed_before(pool: &PgPool, cutoff: DateTime<Utc>) -> Result<Vec<Uuid>> {
    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM people WHERE deleted_at IS NOT NULL AND deleted_at < $1 ORDER BY id",
    )
    .bind(cutoff)
    .fetch_all(pool)
    .await?;
    // In slices, so one purge never holds the write lock for long.
    for slice in due.chunks(1000) {
        erase(pool, slice).await?;
    }
    Ok(due)
}

/// One purge as of `now`, audited when it erased anyone.
pub async fn purge(
    pool: &PgPool,
    config: &RetentionConfig,
    now: DateTime<Utc>,
    audit: &AuditLog,
) -> Result<usize> {
    if config.removed_days == 0 {
        return Ok(0);
    }
    let cutoff = now - chrono::Duration::days(i64::from(config.removed_days));
    let erased = purge_removed_before(pool, cutoff).await?;
    if !erased.is_empty() {
        let ids: Vec<String> = erased.iter().map(Uuid::to_string).collect();
        audit.record(
            AuditEvent::new(now, "system:retention", "person.purge").query(format!(
                "removed_days={} count={} ids={}",
                config.removed_days,
                erased.len(),
                ids.join(",")
            )),
        );
        tracing::info!(
            count = erased.len(),
            "purged people removed over the retention period"
        );
    }
    Ok(erased.len())
}

/// Purges at start and then every hour until `stop`.
pub fn run(
    pool: PgPool,
    config: RetentionConfig,
    clock: Clock,
    audit: AuditLog,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = purge(&pool, &config, clock(), &audit).await {
                tracing::warn!(error = %e, "retention purge failed; trying again in an hour");
            }
            tokio::select! {
                _ = tokio::time::sleep(PURGE_EVERY) => {}
                _ = crate::presence::stopped(&mut stop) => return,
            }
        }
    })
}

/// `switchboard person erase ID`: erases now, audited as the operator.
pub async fn erase_one(pool: &PgPool, id: Uuid, principal: &str) -> Result<Erased> {
    let erased = erase(pool, &[id]).await?;
    if erased.people == 0 {
        return Err(Error::NotFound { what: "person" });
    }
    crate::audit::append(
        pool,
        &[
            AuditEvent::new(Utc::now(), principal, "person.erase").query(format!(
                "id={id} photos={} reports={}",
                erased.photos, erased.reports
            )),
        ],
    )
    .await?;
    Ok(erased)
}
