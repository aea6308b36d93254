//! The audit trail: who looked up whom, who signed in, what admins changed. Append-only in
//! PostgreSQL, each record chained to the one before by `sha256(previous hash ‖ record)`, so an
//! edited, deleted or reordered record is found by [`verify`].
//!
//! Requests hand records to [`AuditLog::record`], which queues them; one writer task stores
//! them every [`FLUSH_EVERY`], in transactions of up to [`BATCH`] records, off the request
//! path. A clean shutdown writes what is queued; a crash loses what was queued and not yet
//! written.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, SecondsFormat, Utc};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::secret::hex;
use crate::error::{Error, Result};

/// Records written at most this long after they happen (while the database answers).
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Records per write.
pub const BATCH: usize = 1000;
/// Records queued at most; past this (a database down for long under load), new ones are
/// dropped and counted, and the log says so.
const QUEUE: usize = 100_000;
/// Serializes writers of the chain across servers sharing one database.
const CHAIN_LOCK: i64 = 0x5357_4155; // "SWAU"

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    /// `local:NAME`, `ldap:SOURCE:DN`, `oidc:ISSUER#SUB`, `token:NAME`, `cli:USER`, `anonymous`.
    pub principal: String,
    /// `GET /api/v1/people`, `sign_in`, `sign_in_failed`, `token.add`, …
    pub action: String,
    /// The query string, or what the action was about (a user or token name).
    pub query: Option<String>,
    /// Ids of the people returned.
    pub people: Vec<Uuid>,
    /// HTTP status, or 0 for actions outside HTTP.
    pub status: u16,
    /// The client's address.
    pub address: Option<String>,
}

impl AuditEvent {
    pub fn new(at: DateTime<Utc>, principal: &str, action: &str) -> AuditEvent {
        AuditEvent {
            // PostgreSQL keeps microseconds: hash what is stored.
            at: at
                .duration_trunc(chrono::Duration::microseconds(1))
                .unwrap_or(at),
            principal: storable(principal),
            action: action.to_string(),
            query: None,
            people: Vec::new(),
            status: 0,
            address: None,
        }
    }

    pub fn query(mut self, query: impl Into<String>) -> AuditEvent {
        self.query = Some(storable(&query.into()));
        self
    }

    pub fn status(mut self, status: u16) -> AuditEvent {
        self.status = status;
        self
    }

    pub fn address(mut self, address: Option<String>) -> AuditEvent {
        self.address = address;
        self
    }

    /// Feeds the record to `h` in a fixed order, each field length-prefixed (so no two
    /// different records can feed the same bytes); absent fields are marked apart from empty ones.
    fn feed(&self, h: &mut Sha256) {
        fn text(h: &mut Sha256, value: Option<&str>) {
            match value {
                None => h.update([0u8]),
                Some(v) => {
                    h.update([1u8]);
                    h.update((v.len() as u64).to_be_bytes());
                    h.update(v.as_bytes());
                }
            }
        }
        h.update(self.at.timestamp_micros().to_be_bytes());
        text(h, Some(&self.principal));
        text(h, Some(&self.action));
        text(h, self.query.as_deref());
        h.update((self.people.len() as u64).to_be_bytes());
        for id in &self.people {
            h.update(id.as_bytes());
        }
        h.update(self.status.to_be_bytes());
        text(h, self.address.as_deref());
    }
}

/// The hash of a record that follows `prev`.
/// Text PostgreSQL can store: NUL (which a caller may send in a name or a query) becomes U+FFFD.
fn storable(text: &str) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text.to_string()
    }
}

pub fn chain(prev: &[u8], event: &AuditEvent) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    event.feed(&mut h);
    h.finalize().into()
}

/// The `prev_hash` of the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// Where requests send their records.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<AuditEvent>,
    dropped: Arc<AtomicU64>,
}

impl AuditLog {
    /// Starts the writer. It stops, after writing everything queued, when `stop` turns true.
    pub fn start(
        pool: PgPool,
        stop: watch::Receiver<bool>,
    ) -> (AuditLog, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_loop(pool, rx, stop));
        (
            AuditLog {
                tx,
                dropped: Arc::default(),
            },
            task,
        )
    }

    /// Queues a record; never waits.
    pub fn record(&self, event: AuditEvent) {
        if self.tx.try_send(event).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::error!(dropped, "audit queue full or closed: records dropped");
            }
        }
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Wakes every [`FLUSH_EVERY`] and writes what has queued since: a request only pushes onto
/// the queue (nothing is woken per record).
async fn write_loop(
    pool: PgPool,
    mut rx: mpsc::Receiver<AuditEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pending: Vec<AuditEvent> = Vec::new();
    let mut failures = 0u32;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = crate::presence::stopped(&mut stop) => true,
        };
        while let Ok(event) = rx.try_recv() {
            pending.push(event);
        }
        while !pending.is_empty() {
            let n = pending.len().min(BATCH);
            match append(&pool, &pending[..n]).await {
                Ok(()) => {
                    pending.drain(..n);
                    failures = 0;
                }
                Err(e) => {
                    failures += 1;
                    if failures.is_power_of_two() {
                        tracing::error!(error = %e, queued = pending.len(), "cannot write the audit trail; retrying");
                    }
                    if stopping && failures >= 5 {
                        tracing::error!(
                            lost = pending.len(),
                            "audit records not written at shutdown"
                        );
                        return;
                    }
                    tokio::time::sleep(FLUSH_EVERY * failures.min(20)).await;
                    break;
                }
            }
        }
        if stopping && pending.is_empty() {
            return;
        }
    }
}

/// Appends records to the chain in one transaction.
pub async fn append(pool: &PgPool, events: &[AuditEvent]) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHAIN_LOCK)
        .execute(&mut *tx)
        .await?;
    let last: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
    let prev = last.unwrap_or_else(|| GENESIS.to_vec());
    // Hashing and laying out a batch is CPU work: not on the workers that serve requests.
    let batch = events.to_vec();
    let columns = tokio::task::spawn_blocking(move || Columns::of(prev, &batch))
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    sqlx::query(
        "INSERT INTO audit_log (at, principal, action, query, people, status, address, prev_hash, hash) \
         SELECT at, principal, action, query, \
                CASE WHEN people = '' THEN '{}'::uuid[] ELSE string_to_array(people, ',')::uuid[] END, \
                status, address, prev_hash, hash \
         FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int2[], \
                     $7::text[], $8::bytea[], $9::bytea[]) WITH ORDINALITY \
              AS t(at, principal, action, query, people, status, address, prev_hash, hash, ordinality) \
         ORDER BY ordinality",
    )
    .bind(&columns.at)
    .bind(&columns.principal)
    .bind(&columns.action)
    .bind(&columns.query)
    .bind(&columns.people)
    .bind(&columns.status)
    .bind(&columns.address)
    .bind(&columns.prev_hash)
    .bind(&columns.hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A batch laid out as columns, chained from `prev`.
#[derive(Default)]
struct Columns {
    at: Vec<DateTime<Utc>>,
    principal: Vec<String>,
    action: Vec<String>,
    query: Vec<Option<String>>,
    // uuid[][] cannot be ragged: people travel as text and are split back.
    people: Vec<String>,
    status: Vec<i16>,
    address: Vec<Option<String>>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

impl Columns {
    fn of(mut prev: Vec<u8>, events: &[AuditEvent]) -> Columns {
        let mut c = Columns::default();
        for e in events {
            let hash = chain(&prev, e).to_vec();
            c.at.push(e.at);
            c.principal.push(e.principal.clone());
            c.action.push(e.action.clone());
            c.query.push(e.query.clone());
            c.people.push(
                e.people
                    .iter()
                    .map(Uuid::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
            c.status.push(e.status as i16);
            c.address.push(e.address.clone());
            c.prev_hash.push(std::mem::replace(&mut prev, hash.clone()));
            c.hash.push(hash);
        }
        c
    }
}

/// A stored record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Hex SHA-256 chaining this record to the one before.
    pub hash: String,
}

type Row = (
    i64,
    DateTime<Utc>,
    String,
    String,
    Option<String>,
    Vec<Uuid>,
    i16,
    Option<String>,
    Vec<u8>,
    Vec<u8>,
);

const COLUMNS: &str = "seq, at, principal, action, query, people, status, address, prev_hash, hash";

fn event_of(r: &Row) -> AuditEvent {
    AuditEvent {
        at: r.1,
        principal: r.2.clone(),
        action: r.3.clone(),
        query: r.4.clone(),
        people: r.5.clone(),
        status: r.6 as u16,
        address: r.7.clone(),
    }
}

fn record_of(r: Row) -> AuditRecord {
    AuditRecord {
        seq: r.0,
        event: event_of(&r),
        hash: hex(&r.9),
    }
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub records: u64,
    /// The first problem found, naming the record; `None` when the chain is whole.
    pub problem: Option<String>,
}

/// Walks the chain in order and names the first record that was edited, or that does not follow
/// the one before it (a record deleted, or records reordered).
pub async fn verify(pool: &PgPool) -> Result<Verification> {
    let sql = format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq");
    let mut rows = sqlx::query_as::<_, Row>(&sql).fetch(pool);
    let mut prev: Option<(i64, Vec<u8>)> = None;
    let mut records = 0u64;
    while let Some(row) = rows.try_next().await? {
        records += 1;
        let seq = row.0;
        let stored_prev = &row.8;
        if chain(stored_prev, &event_of(&row))[..] != row.9[..] {
            return Ok(Verification {
                records,
                problem: Some(format!(
                    "record {seq} was edited: its content does not match its hash"
                )),
            });
        }
        let expected: &[u8] = prev.as_ref().map_or(&GENESIS[..], |(_, h)| h);
        if stored_prev[..] != expected[..] {
            drop(rows);
            let after = prev.as_ref().map(|(s, _)| *s);
            let problem = broken_link(pool, seq, after, stored_prev).await?;
            return Ok(Verification {
                records,
                problem: Some(problem),
            });
        }
        prev = Some((seq, row.9));
    }
    Ok(Verification {
        records,
        problem: None,
    })
}

/// Says why record `seq` does not follow `after`: the record it names as its predecessor is
/// elsewhere (reordered), or nowhere (deleted).
async fn broken_link(pool: &PgPool, seq: i64, after: Option<i64>, named: &[u8]) -> Result<String> {
    let named_seq: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM audit_log WHERE hash = $1 LIMIT 1")
            .bind(named)
            .fetch_optional(pool)
            .await?;
    let place = after.map_or_else(
        || "at the start".to_string(),
        |a| format!("after record {a}"),
    );
    Ok(match named_seq {
        Some(other) => format!(
            "record {seq} is out of order: it follows record {other}, but stands {place} (records were reordered)"
        ),
        None => format!(
            "record {seq} does not follow the record {place}: the record before it was deleted"
        ),
    })
}

/// Records since `since` (all when `None`), oldest first, at most `limit`.
pub async fn list(
    pool: &PgPool,
    since: Option<DateTime<Utc>>,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<AuditRecord>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE ($1::timestamptz IS NULL OR at >= $1) AND seq > $2 \
         ORDER BY seq LIMIT $3"
    ))
    .bind(since)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(record_of).collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

/// Writes every record since `since` to `out`; returns how many.
/// Which records `export` writes.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// At or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Of this principal (`partner:NAME`).
    pub principal: Option<String>,
    /// That returned this person.
    pub person: Option<Uuid>,
}

pub async fn export(
    pool: &PgPool,
    filter: &ExportFilter,
    format: ExportFormat,
    out: &mut (dyn Write + Send),
) -> Result<u64> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log WHERE ($1::timestamptz IS NULL OR at >= $1) \
         AND ($2::text IS NULL OR principal = $2) AND ($3::uuid IS NULL OR $3 = ANY(people)) ORDER BY seq"
    );
    let mut rows = sqlx::query_as::<_, Row>(&sql)
        .bind(filter.since)
        .bind(filter.principal.as_deref())
        .bind(filter.person)
        .fetch(pool);
    let failed = |e: csv::Error| Error::Internal(e.into());
    let mut count = 0u64;
    match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            w.write_record([
                "seq",
                "at",
                "principal",
                "action",
                "query",
                "people",
                "status",
                "address",
                "hash",
            ])
            .map_err(failed)?;
            while let Some(row) = rows.try_next().await? {
                count += 1;
                let record = record_of(row);
                let e = &record.event;
                w.write_record([
                    record.seq.to_string(),
                    e.at.to_rfc3339_opts(SecondsFormat::Micros, true),
                    e.principal.clone(),
                    e.action.clone(),
                    e.query.clone().unwrap_or_default(),
                    e.people
                        .iter()
                        .map(Uuid::to_string)
                        .collect::<Vec<_>>()
                        .join(" "),
                    e.status.to_string(),
                    e.address.clone().unwrap_or_default(),
                    record.hash.clone(),
                ])
                .map_err(failed)?;
            }
            w.flush()?;
        }
        ExportFormat::Jsonl => {
            while let Some(row) = rows.try_next().await? {
                count += 1;
                serde_json::to_writer(&mut *out, &record_of(row))
                    .map_err(|e| Error::Internal(e.into()))?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_field_and_the_previous_hash() {
        let base = AuditEvent::new(Utc::now(), "token:cron", "GET /api/v1/people")
            .query("q=jan")
            .status(200);
        let h = chain(&GENESIS, &base);
        assert_eq!(h, chain(&GENESIS, &base.clone()), "deterministic");
        assert_ne!(h, chain(&[1; 32], &base), "previous hash");
        let variants = [
            AuditEvent {
                principal: "token:other".into(),
                ..base.clone()
            },
            AuditEvent {
                action: "GET /x".into(),
                ..base.clone()
            },
            AuditEvent {
                query: Some("q=ja".into()),
                ..base.clone()
            },
            AuditEvent {
                people: vec![Uuid::from_u128(1)],
                ..base.clone()
            },
            AuditEvent {
                status: 404,
                ..base.clone()
            },
            AuditEvent {
                address: Some("10.0.0.1".into()),
                ..base.clone()
            },
            AuditEvent {
                at: base.at + chrono::Duration::microseconds(1),
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(chain(&GENESIS, &v), h, "{v:?}");
        }
    }
}
