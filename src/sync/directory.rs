//! Directory sync: reads an LDAP or Active Directory source (incrementally when the stored cursor
//! allows), turns what it read into an import, and stores the new cursor once the import has
//! committed. A read that fails changes nobody and is recorded as a failed run.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;
use serde::Serialize;
use sqlx::PgPool;

use crate::config::{Config, SourceConfig};
use crate::db::runs;
use crate::domain::{normalize_dn, PhoneNormalizer, SourceRecord};
use crate::error::{Error, Result};
use crate::sources::ldap::{LdapSettings, SyncCursor};
use crate::sync::{
    import_validated, normalize_all, refuse_duplicates, ImportOptions, ImportReport, Normalized,
    Validated,
};

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
    /// Seconds until the directory had sent everything. A full read's records are validated
    /// meanwhile, so this overlaps `report.timings.validate`.
    pub read_seconds: f64,
    pub report: ImportReport,
}

/// Records are validated in batches while the directory is still being read: first this many,
/// then twice as many each time. Few, growing batches keep the overlap without paying the phone
/// parser's pattern compilation once per small batch (its cache holds 100 patterns).
const FIRST_VALIDATE_BATCH: usize = 10_000;

/// Syncs one directory source.
pub async fn sync_directory(
    pool: &PgPool,
    config: &Config,
    source: &SourceConfig,
    opts: DirectorySyncOptions,
    progress: &ProgressBar,
) -> Result<DirectorySyncReport> {
    let settings = LdapSettings::from_config(source)?;
    let phones = Arc::new(config.phones(Some(&source.name))?);
    let cursor = if opts.full || opts.person.is_some() {
        None
    } else {
        load_cursor(pool, &source.name).await?
    };
    progress.set_message(format!("reading {}", settings.url));
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = {
        let settings = settings.clone();
        let person = opts.person.clone();
        let progress = progress.clone();
        let tick = move |n: usize| progress.set_message(format!("read {n} entries"));
        // A malformed server response panics inside the LDAP client; a task turns that into an
        // error instead of taking the process down.
        tokio::spawn(async move {
            match person {
                Some(who) => settings.read_person(&who).await,
                None => settings.read(cursor.as_ref(), Some(&tx), &tick).await,
            }
        })
    };
    // Validate what a full read sends while the server is still sending the rest.
    let mut normalized = Vec::new();
    let mut validate_seconds = 0.0;
    let mut pending: Vec<SourceRecord> = Vec::new();
    let mut read_seconds = 0.0;
    let mut batch_size = FIRST_VALIDATE_BATCH;
    loop {
        let batch = rx.recv().await;
        let done = batch.is_none();
        if done {
            read_seconds = started.elapsed().as_secs_f64();
        }
        pending.extend(batch.unwrap_or_default());
        if pending.len() >= batch_size || (done && !pending.is_empty()) {
            batch_size *= 2;
            let (chunk, phones) = (std::mem::take(&mut pending), phones.clone());
            let t = Instant::now();
            match validate_chunk(chunk, phones).await {
                Ok(chunk) => normalized.extend(chunk),
                Err(e) => {
                    task.abort();
                    return Err(e);
                }
            }
            validate_seconds += t.elapsed().as_secs_f64();
        }
        if done {
            break;
        }
    }
    let read = match task.await {
        Ok(result) => result,
        Err(e) => Err(Error::Directory {
            source_name: source.name.clone(),
            reason: format!("the server sent a response Switchboard could not parse ({e})"),
        }),
    };
    let mode = match &read {
        _ if opts.person.is_some() => "partial",
        Ok(r) if !r.complete => "incremental",
        _ => "full",
    };
    let mut read = match read {
        Ok(read) => read,
        Err(e) => {
            if !opts.dry_run {
                record_failure(pool, source, mode, &e).await;
            }
            return Err(e);
        }
    };
    if opts.person.is_some() && read.entries == 0 {
        return Err(Error::NotFound {
            what: "person in the directory",
        });
    }
    progress.set_message(format!("read {} entries; applying", read.entries));
    if !read.records.is_empty() {
        let t = Instant::now();
        let records = std::mem::take(&mut read.records);
        normalized.extend(validate_chunk(records, phones.clone()).await?);
        validate_seconds += t.elapsed().as_secs_f64();
    }
    resolve_manager_dns(pool, &source.name, &read.ids_by_dn, &mut normalized).await?;
    let (records, rejects) = refuse_duplicates(normalized, std::mem::take(&mut read.rejects));

    let mut removals = std::mem::take(&mut read.deleted);
    if let Some(present) = &read.present {
        // RFC 4533 present phase: whoever the store holds and the server did not mention is gone.
        let mentioned: HashSet<&str> = records
            .iter()
            .map(|(_, r)| r.external_id.as_str())
            .chain(rejects.iter().filter_map(|r| r.external_id.as_deref()))
            .chain(present.iter().map(String::as_str))
            .collect();
        let gone: Vec<String> = active_ids(pool, &source.name)
            .await?
            .into_iter()
            .filter(|id| !mentioned.contains(id.as_str()))
            .collect();
        removals.extend(gone);
    }

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
    let batch = Validated {
        records,
        rejects,
        removals,
    };
    let report = import_validated(pool, batch, validate_seconds, &import_opts, progress).await?;
    if !opts.dry_run && opts.person.is_none() {
        save_cursor(pool, &source.name, read.cursor.as_ref()).await?;
    }
    Ok(DirectorySyncReport {
        mode,
        fell_back: read.fell_back,
        read: read.entries,
        read_seconds,
        report,
    })
}

/// Normalizes records off the async runtime (phone parsing is CPU work).
async fn validate_chunk(
    records: Vec<SourceRecord>,
    phones: Arc<PhoneNormalizer>,
) -> Result<Vec<Normalized>> {
    tokio::task::spawn_blocking(move || {
        normalize_all(records.into_iter().map(|r| (None, r)).collect(), &phones)
    })
    .await
    .map_err(|e| Error::Internal(e.into()))
}

async fn record_failure(pool: &PgPool, source: &SourceConfig, mode: &str, error: &Error) {
    let recorded = async {
        runs::ensure_source(pool, &source.name, &source.kind).await?;
        let (run, _lease) = runs::start(pool, &source.name, &source.kind, mode).await?;
        runs::fail(pool, run, &error.to_string(), &[]).await
    };
    if let Err(e) = recorded.await {
        tracing::error!(error = %e, source = %source.name, "could not record the failed sync");
    }
}

/// Managers are named by DN: they resolve to the stable id of the entry with that DN in this
/// read, else of the record the store holds under it. Unknown DNs stay as they are (and resolve
/// to nobody) until that manager appears.
async fn resolve_manager_dns(
    pool: &PgPool,
    source: &str,
    ids_by_dn: &HashMap<String, String>,
    records: &mut [Normalized],
) -> Result<()> {
    let dn_of = |m: &str| m.contains('=').then(|| normalize_dn(m));
    let mut wanted = HashSet::new();
    for (_, record) in records.iter_mut() {
        let Ok(record) = record else { continue };
        let Some(dn) = record.manager_ref.as_deref().and_then(dn_of) else {
            continue;
        };
        match ids_by_dn.get(&dn) {
            Some(id) => record.manager_ref = Some(id.clone()),
            None => {
                wanted.insert(dn);
            }
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let wanted: Vec<String> = wanted.into_iter().collect();
    let found: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT dn, external_id FROM person_sources WHERE source = $1 AND dn = ANY($2)",
    )
    .bind(source)
    .bind(&wanted)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    for (_, record) in records.iter_mut() {
        let Ok(record) = record else { continue };
        if let Some(id) = record
            .manager_ref
            .as_deref()
            .and_then(dn_of)
            .and_then(|dn| found.get(&dn))
        {
            record.manager_ref = Some(id.clone());
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
