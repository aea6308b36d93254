//! Directory sync: reads an LDAP or Active Directory source (incrementally when the stored cursor
//! allows), turns what it read into an import, and stores the new cursor once the import has
//! committed. A read that fails changes nobody and is recorded as a failed run.

use std::collections::HashSet;

use indicatif::ProgressBar;
use serde::Serialize;
use sqlx::PgPool;

use crate::config::{Config, SourceConfig};
use crate::db::runs;
use crate::domain::{normalize_dn, PhoneNormalizer};
use crate::error::{Error, Result};
use crate::sources::ldap::{LdapSettings, SyncCursor};
use crate::sync::{import, ImportOptions, ImportReport, RawBatch};

#[derive(Debug, Clone, Default)]
pub struct DirectorySyncOptions {
    /// Read everything even when an incremental read is possible.
    pub full: bool,
    pub dry_run: bool,
    pub force: bool,
    /// Refresh only the person with this uid, mail, sAMAccountName or cn; the stored cursor
    /// is left alone.
    pub person: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DirectorySyncReport {
    /// `full` or `incremental`.
    pub mode: &'static str,
    /// Why an incremental sync was done in full.
    pub fell_back: Option<String>,
    /// Entries the directory sent.
    pub read: usize,
    /// Seconds spent reading the directory (the import's own stages are in `report.timings`).
    pub read_seconds: f64,
    pub report: ImportReport,
}

/// Syncs one directory source.
pub async fn sync_directory(
    pool: &PgPool,
    config: &Config,
    source: &SourceConfig,
    opts: DirectorySyncOptions,
    progress: &ProgressBar,
) -> Result<DirectorySyncReport> {
    let settings = LdapSettings::from_config(source)?;
    let cursor = if opts.full || opts.person.is_some() {
        None
    } else {
        load_cursor(pool, &source.name).await?
    };
    progress.set_message(format!("reading {}", settings.url));
    let started = std::time::Instant::now();
    let read = {
        let progress = progress.clone();
        let tick = move |n: usize| {
            if n.is_multiple_of(500) {
                progress.set_message(format!("read {n} entries"));
            }
        };
        let task = {
            let settings = settings.clone();
            let cursor = cursor.clone();
            // A malformed server response panics inside the LDAP client; a task turns that
            // into an error instead of taking the process down.
            let person = opts.person.clone();
            tokio::spawn(async move {
                match person {
                    Some(who) => settings.read_person(&who).await,
                    None => settings.read(cursor.as_ref(), &tick).await,
                }
            })
        };
        match task.await {
            Ok(result) => result,
            Err(e) => Err(Error::Directory {
                source_name: source.name.clone(),
                reason: format!("the server sent a response Switchboard could not parse ({e})"),
            }),
        }
    };
    let mode = match &read {
        _ if opts.person.is_some() => "partial",
        Ok(r) if !r.complete => "incremental",
        _ => "full",
    };
    let read = match read {
        Ok(read) => read,
        Err(e) => {
            if !opts.dry_run {
                record_failure(pool, source, mode, &e).await;
            }
            return Err(e);
        }
    };
    let entries = read.records.len();
    if opts.person.is_some() && entries == 0 && read.rejects.is_empty() {
        return Err(Error::NotFound {
            what: "person in the directory",
        });
    }
    let read_seconds = started.elapsed().as_secs_f64();
    progress.set_message(format!("read {entries} entries; applying"));

    let mut raw = RawBatch {
        records: read.records.into_iter().map(|r| (None, r)).collect(),
        rejects: read.rejects,
        removals: read.deleted,
    };
    resolve_manager_dns(pool, &source.name, &mut raw).await?;
    if let Some(present) = &read.present {
        // RFC 4533 present phase: whoever the store holds and the server did not mention is gone.
        let mentioned: HashSet<&str> = raw
            .records
            .iter()
            .filter_map(|(_, r)| r.external_id.as_deref())
            .chain(present.iter().map(String::as_str))
            .collect();
        let gone: Vec<String> = active_ids(pool, &source.name)
            .await?
            .into_iter()
            .filter(|id| !mentioned.contains(id.as_str()))
            .collect();
        raw.removals.extend(gone);
    }

    let phones = PhoneNormalizer::new(&config.default_region).map_err(Error::Config)?;
    let import_opts = ImportOptions {
        source: source.name.clone(),
        kind: source.kind.clone(),
        full: read.complete,
        dry_run: opts.dry_run,
        force: opts.force,
        max_delete_share: config.import.max_delete_share,
        mode: Some(mode),
        merge: config.merge.clone(),
    };
    let report = import(pool, raw, &phones, &import_opts, progress).await?;
    if !opts.dry_run && opts.person.is_none() {
        save_cursor(pool, &source.name, read.cursor.as_ref()).await?;
    }
    Ok(DirectorySyncReport {
        mode,
        fell_back: read.fell_back,
        read: entries,
        read_seconds,
        report,
    })
}

async fn record_failure(pool: &PgPool, source: &SourceConfig, mode: &str, error: &Error) {
    let recorded = async {
        runs::ensure_source(pool, &source.name, &source.kind).await?;
        let run = runs::start(pool, &source.name, &source.kind, mode).await?;
        runs::fail(pool, run, &error.to_string(), &[]).await
    };
    if let Err(e) = recorded.await {
        tracing::error!(error = %e, source = %source.name, "could not record the failed sync");
    }
}

/// Managers named by a DN outside this read resolve through the DNs the store holds.
async fn resolve_manager_dns(pool: &PgPool, source: &str, raw: &mut RawBatch) -> Result<()> {
    let in_batch: HashSet<String> = raw
        .records
        .iter()
        .filter_map(|(_, r)| r.external_id.clone())
        .collect();
    let wanted: Vec<String> = raw
        .records
        .iter()
        .filter_map(|(_, r)| r.manager_ref.as_deref())
        .filter(|m| !in_batch.contains(*m) && m.contains('='))
        .map(normalize_dn)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let found: std::collections::HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT dn, external_id FROM person_sources WHERE source = $1 AND dn = ANY($2)",
    )
    .bind(source)
    .bind(&wanted)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    for (_, record) in &mut raw.records {
        if let Some(manager) = record.manager_ref.as_mut() {
            if let Some(id) = found.get(&normalize_dn(manager)) {
                *manager = id.clone();
            }
        }
    }
    Ok(())
}

async fn active_ids(pool: &PgPool, source: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT ps.external_id FROM person_sources ps JOIN people p ON p.id = ps.person_id \
         WHERE ps.source = $1 AND p.deleted_at IS NULL",
    )
    .bind(source)
    .fetch_all(pool)
    .await?)
}

async fn load_cursor(pool: &PgPool, source: &str) -> Result<Option<SyncCursor>> {
    let state: Option<Option<serde_json::Value>> =
        sqlx::query_scalar("SELECT sync_state FROM sources WHERE name = $1")
            .bind(source)
            .fetch_optional(pool)
            .await?;
    Ok(state
        .flatten()
        .and_then(|v| serde_json::from_value::<SyncCursor>(v).ok()))
}

async fn save_cursor(pool: &PgPool, source: &str, cursor: Option<&SyncCursor>) -> Result<()> {
    let value = cursor
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| Error::Internal(e.into()))?;
    sqlx::query("UPDATE sources SET sync_state = $2 WHERE name = $1")
        .bind(source)
        .bind(value)
        .execute(pool)
        .await?;
    Ok(())
}
