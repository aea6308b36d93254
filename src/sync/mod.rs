//! The sync engine: diffs what a source says against the store and applies the difference in
//! one transaction, appending to `change_log`. Nothing else writes people.

pub mod directory;
pub mod merge;

use std::collections::{HashMap, HashSet};

use indicatif::ProgressBar;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::MergeConfig;
use crate::db::copy::{copy_rows, CopyRow};
use crate::db::people::PersonRow;
use crate::db::runs::{self, Counts, Reject};
use crate::db::{CHANGES_CHANNEL, WRITE_LOCK_KEY};
use crate::domain::{NormalizedRecord, PhoneNormalizer, Photo, RecordError, SourceRecord};
use crate::error::{Error, Result};
use crate::search::indexer::Indexer;

/// A map over a batch's records (a million ids, addresses or people): foldhash, seeded per
/// process, hashes these keys several times faster than the standard SipHash.
type FastMap<K, V> = foldhash::HashMap<K, V>;
type FastSet<T> = foldhash::HashSet<T>;

/// What a source read: records with the line they start on, rows it could not read at all, and
/// (incremental syncs) the ids the source says are gone.
#[derive(Debug, Default)]
pub struct RawBatch {
    pub records: Vec<(Option<u64>, SourceRecord)>,
    pub rejects: Vec<Reject>,
    /// External ids the source reported deleted (or disabled). Only partial runs use this; a
    /// full run removes whoever it does not list.
    pub removals: Vec<String>,
    /// Files: each column's header (LDIF: attribute) and the field it was read as (`None`:
    /// not imported).
    pub columns: Vec<(String, Option<&'static str>)>,
    /// Files: the format as detected (`CSV (Outlook), `;`-delimited, UTF-8 with BOM`).
    pub format: String,
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub source: String,
    pub kind: String,
    /// The batch is the whole source: people it no longer lists are removed.
    pub full: bool,
    /// Compute and report the changes, write nothing.
    pub dry_run: bool,
    /// Accept removing more than `max_delete_share` of the source.
    pub force: bool,
    pub max_delete_share: f64,
    /// Recorded as the run's mode instead of `full`/`partial` (e.g. `incremental`).
    pub mode: Option<&'static str>,
    /// How records join people of other sources, and which source wins each attribute.
    pub merge: MergeConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Updated,
    Removed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Updated => "updated",
            ChangeKind::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeKind> {
        match s {
            "added" => Some(ChangeKind::Added),
            "updated" => Some(ChangeKind::Updated),
            "removed" => Some(ChangeKind::Removed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Change {
    pub kind: ChangeKind,
    pub person_id: Uuid,
    pub external_id: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The recorded run; `None` for a dry run.
    pub run_id: Option<i64>,
    pub dry_run: bool,
    pub counts: Counts,
    pub changes: Vec<Change>,
    pub rejects: Vec<Reject>,
    /// Odd fields on people who were kept (by line or DN).
    pub warnings: Vec<Reject>,
    pub timings: Timings,
}

/// The warnings on kept records, by line (or DN), in input order.
fn warnings_of(records: &[(Option<u64>, NormalizedRecord)]) -> Vec<Reject> {
    records
        .iter()
        .flat_map(|(line, record)| {
            record.warnings.iter().map(move |warning| Reject {
                line: *line,
                external_id: Some(record.external_id.clone()),
                dn: record.dn.clone(),
                reason: warning.clone(),
            })
        })
        .collect()
}

/// Where an import spent its time, in seconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timings {
    /// Normalizing and checking every record (phone numbers dominate).
    pub validate: f64,
    /// Loading what the directory holds for the source and diffing.
    pub compare: f64,
    /// Writing the changes and committing.
    pub write: f64,
    /// After the commit, finishing and committing the documents of a first load indexed while
    /// it was written (0 when the indexer's catch-up indexes the changes instead).
    pub index: f64,
}

#[derive(Debug)]
struct Existing {
    person_id: Uuid,
    hash: i64,
    manager_id: Option<Uuid>,
    deleted: bool,
    display_name: String,
    /// The person has other sources too: this source's view is kept apart and merged.
    shared: bool,
}

/// Validates, diffs and applies a batch. On failure nothing is changed and, unless this is a dry
/// run, the run is recorded as failed with the reason.
pub async fn import(
    pool: &PgPool,
    raw: RawBatch,
    phones: &PhoneNormalizer,
    opts: &ImportOptions,
    progress: &ProgressBar,
) -> Result<ImportReport> {
    import_with(pool, raw, phones, opts, progress, None).await
}

/// As [`import`], by a process that holds the index writer: a first load (into an empty index
/// that has applied every change) is indexed while PostgreSQL writes it, and committed to the
/// index right after the import commits. Anything else is left to the indexer's catch-up.
pub async fn import_indexing(
    pool: &PgPool,
    raw: RawBatch,
    phones: &PhoneNormalizer,
    opts: &ImportOptions,
    progress: &ProgressBar,
    indexer: &mut Indexer,
) -> Result<ImportReport> {
    import_with(pool, raw, phones, opts, progress, Some(indexer)).await
}

async fn import_with(
    pool: &PgPool,
    mut raw: RawBatch,
    phones: &PhoneNormalizer,
    opts: &ImportOptions,
    progress: &ProgressBar,
    indexer: Option<&mut Indexer>,
) -> Result<ImportReport> {
    progress.set_message("validating");
    let started = std::time::Instant::now();
    let removals = std::mem::take(&mut raw.removals);
    // Every core parses phone numbers: off the async workers.
    let phones = phones.clone();
    let (records, rejects) = tokio::task::spawn_blocking(move || validate(raw, &phones))
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    let validated = started.elapsed().as_secs_f64();
    import_validated_with(
        pool,
        Validated {
            records,
            rejects,
            removals,
        },
        validated,
        opts,
        progress,
        indexer,
    )
    .await
}

/// A batch after validation: what can be stored, what was refused, and what the source says is
/// gone.
#[derive(Debug, Default)]
pub struct Validated {
    pub records: Vec<(Option<u64>, NormalizedRecord)>,
    pub rejects: Vec<Reject>,
    pub removals: Vec<String>,
}

/// Diffs and applies an already validated batch (`validate_seconds` is reported as the
/// validation time). On failure nothing is changed and the run is recorded as failed.
pub async fn import_validated(
    pool: &PgPool,
    batch: Validated,
    validate_seconds: f64,
    opts: &ImportOptions,
    progress: &ProgressBar,
) -> Result<ImportReport> {
    import_validated_with(pool, batch, validate_seconds, opts, progress, None).await
}

async fn import_validated_with(
    pool: &PgPool,
    batch: Validated,
    validate_seconds: f64,
    opts: &ImportOptions,
    progress: &ProgressBar,
    indexer: Option<&mut Indexer>,
) -> Result<ImportReport> {
    let validated = validate_seconds;
    // The lease lives until the run is recorded as done (or this process dies).
    let (run_id, _lease) = if opts.dry_run {
        (None, None)
    } else {
        runs::ensure_source(pool, &opts.source, &opts.kind).await?;
        let mode = opts
            .mode
            .unwrap_or(if opts.full { "full" } else { "partial" });
        let (id, lease) = runs::start(pool, &opts.source, &opts.kind, mode).await?;
        (Some(id), Some(lease))
    };
    match apply(pool, &batch, opts, run_id, progress, indexer).await {
        Ok(mut report) => {
            report.timings.validate = validated;
            Ok(report)
        }
        Err(e) => {
            if let Some(run_id) = run_id {
                if let Err(record_err) =
                    runs::fail(pool, run_id, &e.to_string(), &batch.rejects).await
                {
                    tracing::error!(error = %record_err, run_id, "could not record failed run");
                }
            }
            Err(e)
        }
    }
}

/// Normalizes every record (in parallel: phone parsing dominates), then refuses duplicate ids.
pub fn validate(
    raw: RawBatch,
    phones: &PhoneNormalizer,
) -> (Vec<(Option<u64>, NormalizedRecord)>, Vec<Reject>) {
    let results = normalize_all(raw.records, phones);
    refuse_duplicates(results, raw.rejects)
}

/// What normalizing one record gave: the record, or why it was refused.
pub type Normalized = (
    Option<u64>,
    std::result::Result<NormalizedRecord, RecordError>,
);

/// Normalizes records on every core, each thread parsing phone numbers with its own copy of
/// the numbering plans.
pub fn normalize_all(
    records: Vec<(Option<u64>, SourceRecord)>,
    phones: &PhoneNormalizer,
) -> Vec<Normalized> {
    let mut records = records;
    let part = per_core(records.len());
    // Each thread takes its records out of a slice of the one vector: no copy of a million
    // records into per-thread vectors first.
    on_every_core(records.chunks_mut(part), |part| {
        phones.with_private_parser(|parser| {
            part.iter_mut()
                .map(|(line, rec)| (*line, std::mem::take(rec).normalize(parser)))
                .collect()
        })
    })
}

/// How many of `len` items each core gets.
fn per_core(len: usize) -> usize {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    len.div_ceil(threads).max(1)
}

/// Runs `work` on each of `parts` on a thread of its own and joins the results in order. A
/// panic in one is raised here: a result must never be silently dropped (a full import would
/// remove the records it lost).
fn on_every_core<P: Send, R: Send>(
    parts: impl Iterator<Item = P>,
    work: impl Fn(P) -> Vec<R> + Sync,
) -> Vec<R> {
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts.map(|part| scope.spawn(move || work(part))).collect();
        let parts: Vec<Vec<R>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        // Sized once: growing a vector of a million records copies it a dozen times.
        let mut all = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        for part in parts {
            all.extend(part);
        }
        all
    })
}

/// Keeps the first record of each id and refuses the others, then orders the refusals by line.
pub fn refuse_duplicates(
    results: Vec<Normalized>,
    mut rejects: Vec<Reject>,
) -> (Vec<(Option<u64>, NormalizedRecord)>, Vec<Reject>) {
    // Sized once: the records are large, and growing copies them.
    let mut valid = Vec::with_capacity(results.len());
    let mut first_line: FastMap<String, Option<u64>> =
        FastMap::with_capacity_and_hasher(results.len(), Default::default());
    for (line, result) in results {
        match result {
            Ok(rec) => {
                if let Some(first) = first_line.get(&rec.external_id) {
                    let first =
                        first.map_or_else(|| "earlier".to_string(), |l| format!("on line {l}"));
                    rejects.push(Reject {
                        line,
                        external_id: Some(rec.external_id.clone()),
                        dn: rec.dn.clone(),
                        reason: format!("duplicate id `{}` (first seen {first})", rec.external_id),
                    });
                } else {
                    first_line.insert(rec.external_id.clone(), line);
                    valid.push((line, rec));
                }
            }
            Err(e) => rejects.push(Reject {
                line,
                external_id: e.external_id,
                dn: e.dn,
                reason: e.reason,
            }),
        }
    }
    rejects.sort_by_key(|r| r.line);
    (valid, rejects)
}

async fn apply(
    pool: &PgPool,
    batch: &Validated,
    opts: &ImportOptions,
    run_id: Option<i64>,
    progress: &ProgressBar,
    indexer: Option<&mut Indexer>,
) -> Result<ImportReport> {
    let (records, removals) = (&batch.records, &batch.removals);
    let rejects = batch.rejects.clone();
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITE_LOCK_KEY)
        .execute(&mut *tx)
        .await?;

    progress.set_message("comparing with the directory");
    let started = std::time::Instant::now();
    let only = (!opts.full).then(|| {
        records
            .iter()
            .map(|(_, r)| r.external_id.as_str())
            .chain(removals.iter().map(String::as_str))
            .collect()
    });
    let existing = load_existing(&mut tx, &opts.source, only).await?;
    // Records new to this source that share an email with a person of another source join them.
    let joins: HashMap<usize, Uuid> = if opts.merge.by_email() {
        let candidates: Vec<(usize, &[String])> = records
            .iter()
            .enumerate()
            .filter(|(_, (_, r))| !existing.contains_key(&r.external_id) && !r.emails.is_empty())
            .map(|(i, (_, r))| (i, r.emails.as_slice()))
            .collect();
        merge::find_matches(&mut tx, &opts.source, &candidates).await?
    } else {
        HashMap::new()
    };
    // The generator is not held across an await (it stays on this thread).
    let ids: Vec<Uuid> = {
        let mut rng = rand::rng();
        let millis = chrono::Utc::now().timestamp_millis().max(0) as u64;
        records
            .iter()
            .enumerate()
            .map(|(i, (_, r))| match existing.get(&r.external_id) {
                Some(e) => e.person_id,
                None => joins
                    .get(&i)
                    .copied()
                    .unwrap_or_else(|| new_id(&mut rng, millis)),
            })
            .collect()
    };
    let managers = resolve_managers(&mut tx, &opts.source, records, &ids).await?;

    // A first load (nobody of this source known yet, nobody joining a person of another) by a
    // process holding the index writer: its documents are built and indexed from here on, on
    // the core that the rest of the comparison and PostgreSQL's COPY leave idle, instead of
    // being read back once the import has committed.
    let mut bulk = None;
    if let Some(indexer) = indexer {
        let first_load =
            !opts.dry_run && existing.is_empty() && joins.is_empty() && !records.is_empty();
        if first_load {
            let latest = crate::db::people::latest_change(&mut tx).await?;
            // An index that cannot say costs the import nothing: the catch-up indexes it.
            if indexer.can_take_first_load(latest).unwrap_or(false) {
                // The time the rows are stamped with (the transaction's).
                let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
                    .fetch_one(&mut *tx)
                    .await?;
                let rows = first_load_rows(records, &ids, &managers, now);
                match indexer.start_bulk(rows) {
                    Ok(load) => bulk = Some((load, indexer)),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot index the first load as it is written")
                    }
                }
            }
        }
    }
    let diff = diff(&mut tx, opts, batch, &existing, &joins, &ids, &managers).await;
    let Diff {
        hashes,
        counts,
        added,
        updated,
        joined,
        updated_shared,
        changes,
        detached,
        removed,
    } = match diff {
        Ok(diff) => diff,
        Err(e) => {
            if let Some((load, indexer)) = bulk {
                if let Err(e) = indexer.abandon_bulk(load).await {
                    tracing::warn!(error = %e, "dropping a failed first load's documents");
                }
            }
            return Err(e);
        }
    };

    let warnings = warnings_of(records);
    let mut timings = Timings {
        compare: started.elapsed().as_secs_f64(),
        ..Timings::default()
    };
    if opts.dry_run {
        tx.rollback().await?;
        return Ok(ImportReport {
            run_id,
            dry_run: true,
            counts,
            changes,
            rejects,
            warnings,
            timings,
        });
    }
    let started = std::time::Instant::now();
    let indexing = bulk.is_some();
    let written: Result<Option<i64>> = async {
        progress.set_message(format!("writing {} changes", changes.len()));
        let record_row = |row: &mut CopyRow, i: usize| {
            let rec = &records[i].1;
            row.display(Some(ids[i]))
                .text(Some(&rec.display_name))
                .text(rec.given_name.as_deref())
                .text(rec.family_name.as_deref())
                .array(&rec.nicknames)
                .text(rec.title.as_deref())
                .text(rec.department.as_deref())
                .text(rec.org_unit.as_deref())
                .text(rec.location.as_deref())
                .display(managers[i])
                .text(rec.manager_ref.as_deref())
                .json(&rec.phones)
                .array(&rec.emails)
                .array(&rec.im)
                .text(rec.photo_url.as_deref())
                .display(rec.partner_sharing);
        };
        const PERSON_COPY_COLUMNS: &str =
            "id, display_name, given_name, family_name, nicknames, title, department, \
            org_unit, location, manager_id, manager_ref, phones, emails, im, photo_url, partner_sharing";

        store_photos(
            &mut tx,
            added
                .iter()
                .chain(&updated)
                .filter_map(|&i| records[i].1.photo.as_deref()),
        )
        .await?;
        if !added.is_empty() {
            let statement = format!("COPY people ({PERSON_COPY_COLUMNS}) FROM STDIN");
            copy_rows(&mut tx, &statement, added.iter().copied(), record_row).await?;
            copy_rows(
                &mut tx,
                "COPY person_sources (source, external_id, person_id, content_hash, dn) FROM STDIN",
                added.iter().copied(),
                |row, i| {
                    let rec = &records[i].1;
                    row.text(Some(&opts.source))
                        .text(Some(&rec.external_id))
                        .display(Some(ids[i]))
                        .display(Some(hashes[i]))
                        .text(rec.dn.as_deref());
                },
            )
            .await?;
        }
        if !updated.is_empty() {
            sqlx::query(
                "CREATE TEMP TABLE staging_people ON COMMIT DROP AS \
                 SELECT id, display_name, given_name, family_name, nicknames, title, department, org_unit, \
                 location, manager_id, manager_ref, phones, emails, im, photo_url, partner_sharing, 0::bigint AS content_hash, \
                 ''::text AS external_id, ''::text AS dn FROM people WITH NO DATA",
            )
            .execute(&mut *tx)
            .await?;
            let statement = format!(
                "COPY staging_people ({PERSON_COPY_COLUMNS}, content_hash, external_id, dn) FROM STDIN"
            );
            copy_rows(&mut tx, &statement, updated.iter().copied(), |row, i| {
                record_row(row, i);
                row.display(Some(hashes[i]))
                    .text(Some(&records[i].1.external_id))
                    .text(records[i].1.dn.as_deref());
            })
            .await?;
            sqlx::query(&format!(
                "UPDATE people p SET {PEOPLE_FROM_S} FROM staging_people s WHERE p.id = s.id"
            ))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE person_sources ps SET content_hash = s.content_hash, dn = s.dn FROM staging_people s \
                 WHERE ps.source = $1 AND ps.external_id = s.external_id",
            )
            .bind(&opts.source)
            .execute(&mut *tx)
            .await?;
        }
        if !joined.is_empty() || !updated_shared.is_empty() || !detached.is_empty() {
            write_shared(
                &mut tx,
                opts,
                records,
                &ids,
                &managers,
                &hashes,
                &joined,
                &updated_shared,
                &detached,
            )
            .await?;
        }
        if !removed.is_empty() {
            sqlx::query("UPDATE people SET deleted_at = now(), updated_at = now() WHERE id = ANY($1)")
                .bind(&removed)
                .execute(&mut *tx)
                .await?;
        }
        if !changes.is_empty() {
            copy_rows(
                &mut tx,
                "COPY change_log (person_id, run_id, kind, external_id, display_name) FROM STDIN",
                &changes,
                |row, c| {
                    row.display(Some(c.person_id))
                        .display(run_id)
                        .text(Some(c.kind.as_str()))
                        .text(Some(&c.external_id))
                        .text(Some(&c.display_name));
                },
            )
            .await?;
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGES_CHANNEL)
                .bind(run_id.unwrap_or_default().to_string())
                .execute(&mut *tx)
                .await?;
        }
        // The last change written: where an index holding this first load stands.
        let last_seq = if indexing {
            Some(
                sqlx::query_scalar("SELECT currval(pg_get_serial_sequence('change_log', 'seq'))")
                    .fetch_one(&mut *tx)
                    .await?,
            )
        } else {
            None
        };
        if let Some(run_id) = run_id {
            runs::succeed(&mut tx, run_id, &counts, &rejects, &warnings).await?;
        }
        tx.commit().await?;
        Ok(last_seq)
    }
    .await;
    timings.write = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    match (written, bulk) {
        (Ok(last_seq), Some((load, indexer))) => {
            progress.set_message("indexing");
            // Committed already: an index that fails here catches up from the change log.
            if let Err(e) = indexer
                .finish_bulk(load, last_seq.unwrap_or_default())
                .await
            {
                tracing::warn!(error = %e, "indexing the first load failed; the indexer will catch up");
            }
            timings.index = started.elapsed().as_secs_f64();
        }
        (Ok(_), None) => {}
        (Err(e), Some((load, indexer))) => {
            if let Err(e) = indexer.abandon_bulk(load).await {
                tracing::warn!(error = %e, "dropping a failed first load's documents");
            }
            return Err(e);
        }
        (Err(e), None) => return Err(e),
    }
    progress.set_message("done");
    Ok(ImportReport {
        run_id,
        dry_run: false,
        counts,
        changes,
        rejects,
        warnings,
        timings,
    })
}

/// A time-ordered (version 7) id for a new person, as `Uuid::now_v7` makes, with its random
/// bits from the thread's generator: `now_v7` asks the kernel for them, a system call per person.
fn new_id(rng: &mut impl rand::RngCore, millis: u64) -> Uuid {
    let mut random = [0u8; 10];
    rng.fill_bytes(&mut random);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

/// What a batch changes, against what the directory holds for its source.
struct Diff {
    /// Each record's content hash.
    hashes: Vec<i64>,
    counts: Counts,
    /// Records (by index) of people new to the directory.
    added: Vec<usize>,
    updated: Vec<usize>,
    /// Records of people new to this source who join a person of another (same email).
    joined: Vec<usize>,
    /// Records whose person other sources share.
    updated_shared: Vec<usize>,
    changes: Vec<Change>,
    /// Shared people leaving this source (their view goes, the person stays).
    detached: Vec<(String, Uuid)>,
    /// People leaving the directory.
    removed: Vec<Uuid>,
}

/// Compares `batch` with what the directory holds for its source (`existing`): who is added,
/// updated, joined and removed, with the changes to log; refuses a removal over the limits.
async fn diff(
    tx: &mut PgConnection,
    opts: &ImportOptions,
    batch: &Validated,
    existing: &FastMap<String, Existing>,
    joins: &HashMap<usize, Uuid>,
    ids: &[Uuid],
    managers: &[Option<Uuid>],
) -> Result<Diff> {
    let (records, rejects, removals) = (&batch.records, &batch.rejects, &batch.removals);
    let hashes = content_hashes(records);

    let mut counts = Counts {
        rejected: rejects.len(),
        ..Counts::default()
    };
    let mut added = Vec::new();
    let mut updated = Vec::new();
    // Records whose person other sources share: written as views, then the person is merged.
    let mut joined = Vec::new();
    let mut updated_shared = Vec::new();
    let mut changes = Vec::new();
    for (i, (_, rec)) in records.iter().enumerate() {
        let kind = match existing.get(&rec.external_id) {
            None if joins.contains_key(&i) => {
                joined.push(i);
                ChangeKind::Added
            }
            None => {
                added.push(i);
                ChangeKind::Added
            }
            Some(e) if e.deleted || e.hash != hashes[i] || e.manager_id != managers[i] => {
                if e.shared {
                    updated_shared.push(i);
                } else {
                    updated.push(i);
                }
                ChangeKind::Updated
            }
            Some(_) => {
                counts.unchanged += 1;
                continue;
            }
        };
        changes.push(Change {
            kind,
            person_id: ids[i],
            external_id: rec.external_id.clone(),
            display_name: rec.display_name.clone(),
        });
    }

    let mut removed = Vec::new();
    if !opts.full && !removals.is_empty() {
        let listed: FastSet<&str> = records
            .iter()
            .map(|(_, r)| r.external_id.as_str())
            .collect();
        let mut reported = HashSet::new();
        for external_id in removals {
            // A record both listed and reported gone (re-added in the same window) stays; one
            // reported twice (disabled, then deleted) goes once.
            if listed.contains(external_id.as_str()) || !reported.insert(external_id.as_str()) {
                continue;
            }
            if let Some(e) = existing.get(external_id).filter(|e| !e.deleted) {
                removed.push((external_id.clone(), e.person_id, e.shared));
                changes.push(Change {
                    kind: ChangeKind::Removed,
                    person_id: e.person_id,
                    external_id: external_id.clone(),
                    display_name: e.display_name.clone(),
                });
            }
        }
        if !removed.is_empty() {
            let active = crate::db::people::count_active(&mut *tx, Some(&opts.source)).await?;
            check_share(opts, removed.len(), usize::try_from(active).unwrap_or(0))?;
        }
    }
    if opts.full {
        // Rows that were refused still name people who exist: keep them.
        let seen: FastSet<&str> = records
            .iter()
            .map(|(_, r)| r.external_id.as_str())
            .chain(rejects.iter().filter_map(|r| r.external_id.as_deref()))
            .collect();
        for (external_id, e) in existing {
            if !e.deleted && !seen.contains(external_id.as_str()) {
                removed.push((external_id.clone(), e.person_id, e.shared));
                changes.push(Change {
                    kind: ChangeKind::Removed,
                    person_id: e.person_id,
                    external_id: external_id.clone(),
                    display_name: e.display_name.clone(),
                });
            }
        }
        check_removal_limit(
            opts,
            removed.len(),
            existing,
            records.len() + rejects.len(),
            rejects,
        )?;
    }
    counts.added = added.len() + joined.len();
    counts.updated = updated.len() + updated_shared.len();
    counts.removed = removed.len();
    // A shared person leaving this source stays, merged from the sources that still list them,
    // unless this was their last source.
    let (detached, removed) = split_detached(tx, removed).await?;

    Ok(Diff {
        hashes,
        counts,
        added,
        updated,
        joined,
        updated_shared,
        changes,
        detached,
        removed,
    })
}

/// The people of a first load (every record of the batch is new) as the indexer would read
/// them back from PostgreSQL (a new person's own sharing choice is not made yet; their
/// manager, if any, is in the same load). Copied on every core.
fn first_load_rows(
    records: &[(Option<u64>, NormalizedRecord)],
    ids: &[Uuid],
    managers: &[Option<Uuid>],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<PersonRow> {
    let names: FastMap<Uuid, &str> = records
        .iter()
        .zip(ids)
        .map(|((_, rec), id)| (*id, rec.display_name.as_str()))
        .collect();
    let names = &names;
    let numbered: Vec<(usize, &NormalizedRecord)> =
        records.iter().map(|(_, rec)| rec).enumerate().collect();
    on_every_core(numbered.chunks(per_core(numbered.len())), |part| {
        part.iter()
            .map(|&(i, rec)| PersonRow {
                id: ids[i],
                display_name: rec.display_name.clone(),
                given_name: rec.given_name.clone(),
                family_name: rec.family_name.clone(),
                nicknames: rec.nicknames.clone(),
                title: rec.title.clone(),
                department: rec.department.clone(),
                org_unit: rec.org_unit.clone(),
                location: rec.location.clone(),
                manager_id: managers[i],
                manager_name: managers[i]
                    .and_then(|m| names.get(&m))
                    .map(|n| n.to_string()),
                phones: sqlx::types::Json(rec.phones.clone()),
                emails: rec.emails.clone(),
                im: rec.im.clone(),
                photo_url: rec.photo_url.clone(),
                created_at: now,
                updated_at: now,
                deleted_at: None,
                partner_sharing: rec.partner_sharing,
            })
            .collect()
    })
}

/// Each record's `content_hash`, on every core (each serializes the whole record).
fn content_hashes(records: &[(Option<u64>, NormalizedRecord)]) -> Vec<i64> {
    on_every_core(records.chunks(per_core(records.len())), |part| {
        part.iter().map(|(_, r)| r.content_hash()).collect()
    })
}

fn check_removal_limit(
    opts: &ImportOptions,
    removing: usize,
    existing: &FastMap<String, Existing>,
    input_rows: usize,
    rejects: &[Reject],
) -> Result<()> {
    if removing == 0 {
        return Ok(());
    }
    // A refused row we could not identify may be one of the people this run would remove.
    let unidentified: Vec<String> = rejects
        .iter()
        .filter(|r| r.external_id.is_none())
        .map(|r| r.line.map_or_else(|| "?".to_string(), |l| l.to_string()))
        .collect();
    if !unidentified.is_empty() {
        return Err(Error::SafetyLimit(format!(
            "{} refused row(s) could not be identified (line {}), so this full import cannot tell whether \
             the {removing} people it would remove are really gone; nothing was changed. Fix those rows, \
             or import without --full",
            unidentified.len(),
            unidentified.join(", ")
        )));
    }
    if input_rows == 0 {
        return Err(Error::SafetyLimit(format!(
            "the input is empty: refusing to remove all {removing} people of source `{}`; nothing was changed",
            opts.source
        )));
    }
    let active = existing.values().filter(|e| !e.deleted).count();
    check_share(opts, removing, active)
}

fn check_share(opts: &ImportOptions, removing: usize, active: usize) -> Result<()> {
    if !opts.force && removing as f64 > opts.max_delete_share * active as f64 {
        return Err(Error::SafetyLimit(format!(
            "this run would remove {removing} of {active} people of source `{}` ({:.0}%), more than the \
             limit of {:.0}%; nothing was changed. Check the input, then rerun with --force to accept",
            opts.source,
            100.0 * removing as f64 / active as f64,
            100.0 * opts.max_delete_share
        )));
    }
    Ok(())
}

/// What the directory holds for `source`: everyone (a full import must find who is gone), or
/// only the records named in `only` (a partial import of a few rows into a large source).
async fn load_existing(
    conn: &mut PgConnection,
    source: &str,
    only: Option<Vec<&str>>,
) -> Result<FastMap<String, Existing>> {
    let rows = sqlx::query_as::<_, (String, Uuid, i64, Option<Uuid>, bool, String, bool)>(
        "SELECT ps.external_id, ps.person_id, ps.content_hash, \
         CASE WHEN ps.record IS NULL THEN p.manager_id ELSE (ps.record->>'manager_id')::uuid END, \
         p.deleted_at IS NOT NULL, COALESCE(ps.record->>'display_name', p.display_name), \
         ps.record IS NOT NULL FROM person_sources ps JOIN people p ON p.id = ps.person_id \
         WHERE ps.source = $1 AND ($2::text[] IS NULL OR ps.external_id = ANY($2))",
    )
    .bind(source)
    .bind(only)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(external_id, person_id, hash, manager_id, deleted, display_name, shared)| {
                (
                    external_id,
                    Existing {
                        person_id,
                        hash,
                        manager_id,
                        deleted,
                        display_name,
                        shared,
                    },
                )
            },
        )
        .collect())
}

/// The assignments that rewrite a person (`p`) from a row `s` with the same columns, undeleting
/// them: shared by the plain update and the merge.
pub(crate) const PEOPLE_FROM_S: &str =
    "display_name = s.display_name, given_name = s.given_name, family_name = s.family_name, \
     nicknames = s.nicknames, title = s.title, department = s.department, org_unit = s.org_unit, location = s.location, \
     manager_id = s.manager_id, manager_ref = s.manager_ref, phones = s.phones, \
     emails = s.emails, im = s.im, photo_url = s.photo_url, partner_sharing = s.partner_sharing, \
     updated_at = now(), deleted_at = NULL";

/// Splits removals into shared people who keep other sources (detached from this one) and
/// people to soft-delete.
async fn split_detached(
    conn: &mut PgConnection,
    removed: Vec<(String, Uuid, bool)>,
) -> Result<(Vec<(String, Uuid)>, Vec<Uuid>)> {
    let shared: Vec<Uuid> = removed.iter().filter(|r| r.2).map(|r| r.1).collect();
    let sources: HashMap<Uuid, i64> = if shared.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (Uuid, i64)>(
            "SELECT person_id, count(*) FROM person_sources WHERE person_id = ANY($1) GROUP BY person_id",
        )
        .bind(&shared)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect()
    };
    let mut detached = Vec::new();
    let mut gone = Vec::new();
    for (external_id, person, is_shared) in removed {
        if is_shared && sources.get(&person).copied().unwrap_or(0) > 1 {
            detached.push((external_id, person));
        } else {
            gone.push(person);
        }
    }
    Ok((detached, gone))
}

/// Writes this source's views of shared people, drops the views of those it no longer lists,
/// and merges each affected person again.
#[allow(clippy::too_many_arguments)]
async fn write_shared(
    conn: &mut PgConnection,
    opts: &ImportOptions,
    records: &[(Option<u64>, NormalizedRecord)],
    ids: &[Uuid],
    managers: &[Option<Uuid>],
    hashes: &[i64],
    joined: &[usize],
    updated_shared: &[usize],
    detached: &[(String, Uuid)],
) -> Result<()> {
    let mut people: Vec<Uuid> = joined
        .iter()
        .chain(updated_shared)
        .map(|&i| ids[i])
        .chain(detached.iter().map(|d| d.1))
        .collect();
    people.sort();
    people.dedup();
    // The people joined so far had one source, whose view is their current row.
    merge::snapshot_single_source(conn, &people).await?;
    let view = |i: usize| {
        serde_json::to_value(merge::SourceView::of(&records[i].1, managers[i]))
            .map_err(|e| Error::Internal(e.into()))
    };
    let rows: Vec<serde_json::Value> = joined
        .iter()
        .chain(updated_shared)
        .map(|&i| {
            Ok(serde_json::json!({
                "external_id": records[i].1.external_id,
                "person_id": ids[i],
                "content_hash": hashes[i],
                "dn": records[i].1.dn,
                "record": view(i)?,
            }))
        })
        .collect::<Result<_>>()?;
    sqlx::query(
        "INSERT INTO person_sources (source, external_id, person_id, content_hash, dn, record) \
         SELECT $1, s.external_id, s.person_id, s.content_hash, s.dn, s.record \
         FROM jsonb_to_recordset($2::jsonb) AS s(external_id text, person_id uuid, \
           content_hash bigint, dn text, record jsonb) \
         ON CONFLICT (source, external_id) DO UPDATE SET content_hash = EXCLUDED.content_hash, \
           dn = EXCLUDED.dn, record = EXCLUDED.record",
    )
    .bind(&opts.source)
    .bind(serde_json::Value::Array(rows))
    .execute(&mut *conn)
    .await?;
    if !detached.is_empty() {
        let gone: Vec<&str> = detached.iter().map(|d| d.0.as_str()).collect();
        sqlx::query("DELETE FROM person_sources WHERE source = $1 AND external_id = ANY($2)")
            .bind(&opts.source)
            .bind(&gone)
            .execute(&mut *conn)
            .await?;
    }
    merge::recompute(conn, &people, &opts.merge).await
}

/// Stores each new photo once, by digest.
async fn store_photos<'a>(
    conn: &mut PgConnection,
    photos: impl Iterator<Item = &'a Photo>,
) -> Result<()> {
    let mut seen = HashSet::new();
    let (mut digests, mut types, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    for photo in photos {
        if seen.insert(photo.digest.as_str()) {
            digests.push(photo.digest.as_str());
            types.push(photo.content_type);
            bytes.push(photo.bytes.as_slice());
        }
    }
    if digests.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO photos (digest, content_type, bytes) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) ON CONFLICT (digest) DO NOTHING",
    )
    .bind(&digests)
    .bind(&types)
    .bind(&bytes)
    .execute(conn)
    .await?;
    Ok(())
}

/// Finds each record's manager: in the batch (by external id, then email), then in the
/// directory (by id in this source, or by email). Unknown managers stay unresolved until they appear.
async fn resolve_managers(
    conn: &mut PgConnection,
    source: &str,
    records: &[(Option<u64>, NormalizedRecord)],
    ids: &[Uuid],
) -> Result<Vec<Option<Uuid>>> {
    let mut by_key: FastMap<&str, Uuid> =
        FastMap::with_capacity_and_hasher(records.len() * 2, Default::default());
    for (i, (_, rec)) in records.iter().enumerate() {
        for email in &rec.emails {
            by_key.insert(email.as_str(), ids[i]);
        }
    }
    for (i, (_, rec)) in records.iter().enumerate() {
        by_key.insert(rec.external_id.as_str(), ids[i]);
    }

    let mut managers: Vec<Option<Uuid>> = records
        .iter()
        .map(|(_, r)| {
            r.manager_ref
                .as_deref()
                .and_then(|m| by_key.get(m).copied())
        })
        .collect();
    let unresolved: Vec<String> = records
        .iter()
        .zip(&managers)
        .filter_map(|((_, r), m)| {
            if m.is_none() {
                r.manager_ref.clone()
            } else {
                None
            }
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !unresolved.is_empty() {
        let found: HashMap<String, Uuid> = sqlx::query_as::<_, (String, Uuid)>(
            // Ids are looked up in this source only (other sources' ids mean nothing here);
            // emails across the whole directory.
            "SELECT DISTINCT ON (key) key, id FROM ( \
               SELECT ps.external_id AS key, ps.person_id AS id FROM person_sources ps \
               JOIN people p ON p.id = ps.person_id \
               WHERE ps.source = $2 AND ps.external_id = ANY($1) AND p.deleted_at IS NULL \
               UNION ALL \
               SELECT e, p.id FROM people p CROSS JOIN LATERAL unnest(p.emails) e \
               WHERE p.deleted_at IS NULL AND e = ANY($1)) found ORDER BY key, id",
        )
        .bind(&unresolved)
        .bind(source)
        .fetch_all(conn)
        .await?
        .into_iter()
        .collect();
        for ((_, rec), manager) in records.iter().zip(managers.iter_mut()) {
            if manager.is_none() {
                *manager = rec
                    .manager_ref
                    .as_deref()
                    .and_then(|m| found.get(m).copied());
            }
        }
    }
    for (manager, id) in managers.iter_mut().zip(ids) {
        if *manager == Some(*id) {
            *manager = None;
        }
    }
    Ok(managers)
}
