//! The one owner of the index writer. It follows `change_log` from the position stored in the
//! index's last commit, woken by NOTIFY (and a periodic check, in case a notification is lost).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tantivy::schema::TantivyDocument;
use tantivy::IndexWriter;
use tokio::sync::watch;
use uuid::Uuid;

use super::{fold, Fields, SearchIndex};
use crate::db::people::{self, PersonRow};
use crate::db::CHANGES_CHANNEL;
use crate::domain::PersonSummary;
use crate::error::{Error, Result};

/// Rows fetched from PostgreSQL per round trip.
const BATCH: i64 = 10_000;
/// Rows added to the index at once, in name order: a bulk load makes segments of a few long
/// runs of documents in name order, which searches read only the start of (`ranked`).
const SORT_CHUNK: usize = 100_000;
/// A catch-up of at least this many changes (a bulk load) is followed by merging every segment
/// into one.
const MERGE_AFTER: usize = 50_000;
/// How often to look for changes when no notification arrives.
const POLL: Duration = Duration::from_secs(5);

/// A first load being indexed while the import writes it (see [`Indexer::start_bulk`]).
pub struct BulkLoad {
    task: tokio::task::JoinHandle<(IndexWriter, Result<()>)>,
    /// Set when the import failed: stop after the chunk under way.
    stop: Arc<AtomicBool>,
}

pub struct Indexer {
    index: SearchIndex,
    writer: Option<IndexWriter>,
    pool: PgPool,
    /// The writer holds changes not committed yet (a catch-up failed half-way).
    pending: bool,
}

impl Indexer {
    /// Takes the index's writer lock; fails with `IndexLocked` if another process holds it.
    pub fn new(index: SearchIndex, pool: PgPool, memory_mb: usize) -> Result<Indexer> {
        let writer = index
            .index()
            .writer(memory_mb.max(16) * 1_000_000)
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => Error::IndexLocked,
                e => e.into(),
            })?;
        Ok(Indexer {
            index,
            writer: Some(writer),
            pool,
            pending: false,
        })
    }

    /// Applies every change since the index's last commit. Returns how many were applied.
    pub async fn catch_up(&mut self) -> Result<usize> {
        let start = self.index.applied_seq()?;
        // The next batch is fetched from PostgreSQL while the previous one is being indexed.
        let (batches, mut received) = tokio::sync::mpsc::channel(2);
        let pool = self.pool.clone();
        let fetcher = tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            let mut seq = start;
            loop {
                let changes = people::changes_since(&mut conn, seq, BATCH).await?;
                let Some((last, _)) = changes.last() else {
                    return Ok::<_, Error>(());
                };
                seq = *last;
                if batches.send(changes).await.is_err() {
                    return Ok(());
                }
            }
        });
        let mut seq = start;
        let mut applied = 0;
        let fields = self.index.fields();
        let mut chunk = Vec::new();
        // Into an empty index with nothing uncommitted (a first load, a new schema), only
        // people added earlier in this catch-up can have a document to replace: a delete for
        // every one of a million new people costs tantivy a lookup in every segment.
        let mut indexed = (self.index.num_docs() == 0 && !self.pending).then(HashSet::new);
        loop {
            let changes = received.recv().await;
            let done = changes.is_none();
            for (s, row) in changes.into_iter().flatten() {
                seq = s;
                applied += 1;
                chunk.push(row);
            }
            if chunk.len() >= SORT_CHUNK || (done && !chunk.is_empty()) {
                let rows = std::mem::take(&mut chunk);
                let mut known = indexed.take();
                indexed = self
                    .with_writer(move |writer| {
                        replace_sorted(writer, &fields, rows, known.as_mut())?;
                        Ok(known)
                    })
                    .await?;
            }
            if done {
                break;
            }
        }
        fetcher.await.map_err(|e| Error::Internal(e.into()))??;
        if applied > 0 {
            self.commit(seq).await?;
            tracing::debug!(applied, seq, "index caught up");
        }
        Ok(applied)
    }

    /// Whether a first load may be indexed by the import that writes it (see
    /// [`Indexer::start_bulk`]): the index is empty, holds nothing uncommitted, and has applied
    /// every change up to `latest`, so what the import adds is all there will be to index.
    pub fn can_take_first_load(&self, latest: i64) -> Result<bool> {
        Ok(!self.pending && self.index.num_docs() == 0 && self.index.applied_seq()? == latest)
    }

    /// Starts indexing `rows` (a first load's people, as the import is about to write them) on
    /// a blocking thread, while the import writes them to PostgreSQL. The import then commits
    /// them with [`Indexer::finish_bulk`] after its own commit, or drops them with
    /// [`Indexer::abandon_bulk`].
    pub fn start_bulk(&mut self, mut rows: Vec<PersonRow>) -> Result<BulkLoad> {
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("index writer lost")))?;
        self.pending = true;
        let fields = self.index.fields();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut result = Ok(());
            while !rows.is_empty() && result.is_ok() && !stopped.load(Ordering::Acquire) {
                let rest = rows.split_off(rows.len().min(SORT_CHUNK));
                result = add_sorted(&mut writer, &fields, std::mem::replace(&mut rows, rest));
            }
            (writer, result)
        });
        Ok(BulkLoad { task, stop })
    }

    /// Waits for a bulk load's documents and commits them as applied up to `seq` (the last
    /// change the import wrote, committed already).
    pub async fn finish_bulk(&mut self, load: BulkLoad, seq: i64) -> Result<()> {
        self.take_back(load).await?;
        self.commit(seq).await
    }

    /// Drops a bulk load's documents (the import failed): the index is as it was.
    pub async fn abandon_bulk(&mut self, load: BulkLoad) -> Result<()> {
        // What is left is not indexed: the chunk under way is the last.
        load.stop.store(true, Ordering::Release);
        let added = self.take_back(load).await;
        self.with_writer(|writer| Ok(writer.rollback().map(|_| ())?))
            .await?;
        self.pending = false;
        added.map(|_| ())
    }

    async fn take_back(&mut self, load: BulkLoad) -> Result<()> {
        let (writer, result) = load.task.await.map_err(|e| Error::Internal(e.into()))?;
        self.writer = Some(writer);
        result
    }

    /// Merges every segment into one and makes the result searchable. A bulk load leaves a
    /// segment per indexing thread and memory budget; every search looks each of its terms up
    /// in every segment, so one segment makes searches cheaper.
    pub async fn merge_segments(&mut self) -> Result<()> {
        if let Some(merge) = self.start_merge()? {
            finish_merge(self.index.clone(), merge).await;
        }
        Ok(())
    }

    /// Whether the index is large and no segment holds most of it (as a bulk load leaves it).
    fn scattered(&self) -> bool {
        let sizes = self.index.segment_sizes();
        let total: u64 = sizes.iter().sum();
        let largest = sizes.iter().copied().max().unwrap_or(0);
        total >= MERGE_AFTER as u64 && largest * 10 < total * 9
    }

    fn start_merge(&mut self) -> Result<Option<Merge>> {
        let ids = self.index.index().searchable_segment_ids()?;
        if ids.len() < 2 {
            return Ok(None);
        }
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("index writer lost")))?;
        Ok(Some(writer.merge(&ids)))
    }

    /// Recreates the index from the people table.
    pub async fn rebuild(&mut self) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        // One snapshot for the rows and the position they correspond to.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        let seq = people::latest_change(&mut tx).await?;
        // A stamped delete of everything before the new documents. (`delete_all_documents`
        // drops segments and rewinds the operation stamp; with several indexing threads it
        // lost up to half the re-added documents.)
        self.with_writer(|writer| {
            Ok(writer
                .delete_query(Box::new(tantivy::query::AllQuery))
                .map(|_| ())?)
        })
        .await?;
        let mut after = Uuid::nil();
        let mut count = 0u64;
        let fields = self.index.fields();
        let mut chunk = Vec::new();
        loop {
            let rows = people::active_after(&mut tx, after, BATCH).await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            count += rows.len() as u64;
            chunk.extend(rows);
            if chunk.len() >= SORT_CHUNK {
                let rows = std::mem::take(&mut chunk);
                self.with_writer(move |writer| add_sorted(writer, &fields, rows))
                    .await?;
            }
        }
        if !chunk.is_empty() {
            self.with_writer(move |writer| add_sorted(writer, &fields, chunk))
                .await?;
        }
        tx.commit().await?;
        self.commit(seq).await?;
        Ok(count)
    }

    async fn commit(&mut self, seq: i64) -> Result<()> {
        self.with_writer(move |writer| {
            let mut prepared = writer.prepare_commit()?;
            prepared.set_payload(&seq.to_string());
            prepared.commit()?;
            Ok(())
        })
        .await?;
        self.pending = false;
        self.index.reload()
    }

    /// Runs blocking writer work off the async threads.
    async fn with_writer<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut IndexWriter) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("index writer lost")))?;
        self.pending = true;
        let (writer, result) = tokio::task::spawn_blocking(move || {
            let result = work(&mut writer);
            (writer, result)
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?;
        self.writer = Some(writer);
        result
    }

    /// Follows the change log until `shutdown` turns true. `ready` is true while the last
    /// catch-up succeeded.
    pub async fn run(mut self, ready: Arc<AtomicBool>, mut shutdown: watch::Receiver<bool>) {
        let mut listener = self.listen().await;
        // A first load indexed by its import leaves a segment per indexing thread and memory
        // budget: merged in the background, as after a long catch-up.
        if self.scattered() {
            match self.start_merge() {
                Ok(Some(merge)) => {
                    tokio::spawn(finish_merge(self.index.clone(), merge));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot merge index segments"),
            }
        }
        loop {
            // A long catch-up (a million people after a bulk import) must not delay shutdown;
            // what it had not committed is redone from the stored position next time.
            let caught_up = tokio::select! {
                _ = shutdown.changed() => break,
                result = self.catch_up() => result,
            };
            match &caught_up {
                Ok(n) if *n >= MERGE_AFTER => {
                    tracing::info!(applied = n, docs = self.index.num_docs(), "index updated");
                    // In the background: changes keep being applied meanwhile.
                    match self.start_merge() {
                        Ok(Some(merge)) => {
                            tokio::spawn(finish_merge(self.index.clone(), merge));
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot merge index segments"),
                    }
                }
                Ok(n) if *n > 0 => {
                    tracing::info!(applied = n, docs = self.index.num_docs(), "index updated")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "index catch-up failed; will retry"),
            }
            ready.store(caught_up.is_ok(), Ordering::Release);
            let woken = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.map(|_| ()).map_err(|e| e.to_string()),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(POLL) => {}
                result = woken => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "change notifications lost; reconnecting");
                        listener = self.listen().await;
                    }
                }
            }
        }
        if let Some(writer) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || writer.wait_merging_threads()).await;
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for changes; polling instead");
                return None;
            }
        };
        match listener.listen(CHANGES_CHANNEL).await {
            Ok(()) => Some(listener),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for changes; polling instead");
                None
            }
        }
    }
}

type Merge = tantivy::FutureResult<Option<tantivy::index::SegmentMeta>>;

/// Waits for a merge and makes its result searchable. A failed merge (say, a segment the merge
/// policy was already merging) costs only speed, so it is logged, not returned.
async fn finish_merge(index: SearchIndex, merge: Merge) {
    let started = std::time::Instant::now();
    match tokio::task::spawn_blocking(move || merge.wait()).await {
        Ok(Ok(_)) => {
            tracing::info!(
                secs = started.elapsed().as_secs_f64(),
                "index segments merged"
            );
            if let Err(e) = index.reload() {
                tracing::warn!(error = %e, "cannot reload the index after merging");
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "index segments not merged"),
        Err(e) => tracing::warn!(error = %e, "index merge task failed"),
    }
}

/// Replaces the documents of the people in `rows` (latest states, in change order) with their
/// new ones; people deleted since are only removed. With `indexed`, the index holds documents
/// of those people only: only theirs are deleted, and the people added join them.
fn replace_sorted(
    writer: &mut IndexWriter,
    fields: &Fields,
    rows: Vec<PersonRow>,
    mut indexed: Option<&mut HashSet<Uuid>>,
) -> Result<()> {
    // The latest state of each person; deletions before additions, so none undoes one.
    let mut latest = HashMap::with_capacity(rows.len());
    for row in rows {
        latest.insert(row.id, row);
    }
    let mut active = Vec::with_capacity(latest.len());
    for (id, row) in latest {
        let present = match indexed.as_deref_mut() {
            None => true,
            Some(indexed) if row.deleted_at.is_none() => !indexed.insert(id),
            Some(indexed) => indexed.remove(&id),
        };
        if present {
            writer.delete_term(super::id_term(fields, &id));
        }
        if row.deleted_at.is_none() {
            active.push(row);
        }
    }
    add_sorted(writer, fields, active)
}

/// Adds the documents of `rows` in name order (`super::sort_keys`).
pub(crate) fn add_sorted(
    writer: &mut IndexWriter,
    fields: &Fields,
    rows: Vec<PersonRow>,
) -> Result<()> {
    let mut keyed: Vec<(Names, PersonRow)> =
        rows.into_iter().map(|row| (Names::of(&row), row)).collect();
    keyed.sort_unstable_by_key(|(names, _)| names.sort_keys);
    for (names, row) in keyed {
        writer.add_document(document_of(fields, row, names))?;
    }
    Ok(())
}

/// A person's folded names, folded once per document (and sorted on before it is built).
struct Names {
    display: Vec<String>,
    given: Vec<String>,
    family: Vec<String>,
    /// Each name they go by, folded.
    nicknames: Vec<Vec<String>>,
    sort_keys: (u64, u64),
}

impl Names {
    fn of(row: &PersonRow) -> Names {
        let display = fold(&row.display_name);
        let sort_keys = super::sort_keys(&super::names::sort_name(&display.join(" ")), &row.id);
        let fold_part = |part: &Option<String>| part.as_deref().map(fold).unwrap_or_default();
        Names {
            given: fold_part(&row.given_name),
            family: fold_part(&row.family_name),
            nicknames: row.nicknames.iter().map(|n| fold(n)).collect(),
            display,
            sort_keys,
        }
    }
}

/// Adds each of `words` (distinct already) as a term of `field`.
fn add_words(doc: &mut TantivyDocument, field: tantivy::schema::Field, words: &[String]) {
    for word in words {
        doc.add_text(field, word);
    }
}

/// Adds each distinct prefix of `words` from `min` to `max` characters (capped at `MAX_PREFIX`
/// by `prefixes`) as a term of `field`.
fn add_prefixes(
    doc: &mut TantivyDocument,
    field: tantivy::schema::Field,
    words: &[String],
    min: usize,
    max: usize,
) {
    let mut grams: Vec<&str> = words
        .iter()
        .flat_map(|w| super::prefixes(w, min).take(max.saturating_sub(min) + 1))
        .collect();
    grams.sort_unstable();
    grams.dedup();
    for gram in grams {
        doc.add_text(field, gram);
    }
}

/// The index document for a person.
pub fn document(f: &Fields, row: PersonRow) -> TantivyDocument {
    let names = Names::of(&row);
    document_of(f, row, names)
}

fn document_of(f: &Fields, row: PersonRow, names: Names) -> TantivyDocument {
    let person = row.into_person(Vec::new());
    let mut doc = TantivyDocument::default();
    doc.add_bytes(f.id, person.id.as_bytes());
    // The words of display, given and family name and the names they go by; other spellings
    // too: "mueller" for "Müller", "boerge" for "Børge", "ivanova" for "Иванова", "liubei",
    // "liu", "bei" for "刘备".
    let mut name_words: Vec<String> = [&names.display, &names.given, &names.family]
        .into_iter()
        .chain(&names.nicknames)
        .flatten()
        .cloned()
        .collect();
    let raw_words: Vec<&str> = [
        Some(&person.display_name),
        person.given_name.as_ref(),
        person.family_name.as_ref(),
    ]
    .into_iter()
    .flatten()
    .chain(&person.nicknames)
    .flat_map(|t| t.split(|c: char| !c.is_alphanumeric()))
    .collect();
    for word in raw_words {
        name_words.extend(super::names::spellings(word));
    }
    name_words.sort_unstable();
    name_words.dedup();
    add_words(&mut doc, f.name, &name_words);
    // Every prefix of every name word is a term: typing "j" or "smi" is one lookup.
    add_prefixes(&mut doc, f.name_prefix, &name_words, 1, super::MAX_PREFIX);
    let mut codes: Vec<String> = name_words
        .iter()
        .flat_map(|w| super::phonetic_codes(w))
        .collect();
    codes.sort_unstable();
    codes.dedup();
    add_words(&mut doc, f.name_phonetic, &codes);
    // The whole name, in display order and as "given family" / "family given".
    let mut full_names = vec![names.display.join(" ")];
    if person.given_name.is_some() && person.family_name.is_some() {
        let (given, family) = (names.given.join(" "), names.family.join(" "));
        full_names.push(format!("{given} {family}"));
        full_names.push(format!("{family} {given}"));
    }
    // "peggy smith" for Margaret Smith who goes by Peggy.
    if person.family_name.is_some() {
        let family = names.family.join(" ");
        for nickname in &names.nicknames {
            full_names.push(format!("{} {family}", nickname.join(" ")));
        }
    }
    full_names.sort_unstable();
    full_names.dedup();
    add_words(&mut doc, f.name_full, &full_names);
    // Words of title, department, unit and location; their starts are found at query time.
    let mut org_words: Vec<String> = [
        &person.title,
        &person.department,
        &person.org_unit,
        &person.location,
    ]
    .into_iter()
    .flatten()
    .flat_map(|t| fold(t))
    .collect();
    org_words.sort_unstable();
    org_words.dedup();
    add_words(&mut doc, f.org, &org_words);
    // Words of email addresses, and apart, of IM handles (without their scheme): a partner may
    // be shown one and not the other.
    let mut contact_words = Vec::new();
    for email in &person.emails {
        contact_words.extend(fold(email));
        // "janesmith" for jane.smith@…: the local part as one word, as people type handles.
        let local = email.split('@').next().unwrap_or_default();
        let compact: String = local.chars().filter(|c| c.is_alphanumeric()).collect();
        if compact.len() < local.len() {
            doc.add_text(f.handle, compact.to_lowercase());
        }
    }
    contact_words.sort_unstable();
    contact_words.dedup();
    add_words(&mut doc, f.text, &contact_words);
    let mut im_words = Vec::new();
    for handle in &person.im {
        im_words.extend(fold(
            handle
                .split_once(':')
                .map_or(handle.as_str(), |(_, rest)| rest),
        ));
    }
    im_words.sort_unstable();
    im_words.dedup();
    add_words(&mut doc, f.im, &im_words);
    // Phone digits are indexed with their prefixes of 3 to `MAX_PHONE_PREFIX` digits, so a
    // typed start of a number is one term lookup (longer ones: see `query::phone_alternatives`).
    let mut digits: Vec<String> = person.phones.iter().flat_map(|p| p.search_keys()).collect();
    add_prefixes(&mut doc, f.phone, &digits, 3, super::MAX_PHONE_PREFIX);
    digits.sort_unstable();
    digits.dedup();
    add_words(&mut doc, f.phone_exact, &digits);
    let mut endings = Vec::new();
    for phone in &person.phones {
        // Its last digits (not the extension's, which is matched whole).
        if let Some(e164) = &phone.e164 {
            let backwards: String = e164.chars().rev().filter(char::is_ascii_digit).collect();
            if backwards.len() >= super::MIN_PHONE_SUFFIX {
                endings.push(backwards[..super::MIN_PHONE_SUFFIX].chars().rev().collect());
            }
            doc.add_text(f.phone_reversed, backwards);
        }
    }
    endings.sort_unstable();
    endings.dedup();
    add_words(&mut doc, f.phone_suffix, &endings);
    doc.add_u64(f.has_presence, u64::from(!person.im.is_empty()));
    doc.add_u64(
        f.partner_sharing,
        super::sharing_code(person.partner_sharing),
    );
    let (key, key2) = names.sort_keys;
    doc.add_u64(f.sort_key, key);
    doc.add_u64(f.sort_key2, key2);
    for (field, value) in [
        (f.department, &person.department),
        (f.location, &person.location),
        (f.org_unit, &person.org_unit),
    ] {
        if let Some(value) = value {
            doc.add_text(field, value);
        }
    }
    let summary = PersonSummary::from(&person);
    doc.add_text(f.doc, serde_json::to_string(&summary).unwrap_or_default());
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PhoneKind, PhoneNormalizer};

    fn person(given: &str, family: &str, title: &str, number: &str) -> PersonRow {
        let phones = PhoneNormalizer::new("GB").expect("region");
        PersonRow {
            id: Uuid::now_v7(),
            display_name: format!("{given} {family}"),
            given_name: Some(given.into()),
            family_name: Some(family.into()),
            nicknames: Vec::new(),
            title: Some(title.into()),
            department: None,
            org_unit: None,
            location: None,
            manager_id: None,
            manager_name: None,
            phones: sqlx::types::Json(vec![phones
                .normalize(PhoneKind::Work, number)
                .expect("phone")]),
            emails: Vec::new(),
            im: Vec::new(),
            photo_url: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            deleted_at: None,
            partner_sharing: None,
        }
    }

    /// A new index in a temporary directory (kept while the first value lives), and its writer.
    fn empty_index() -> (tempfile::TempDir, SearchIndex, IndexWriter) {
        let dir = tempfile::tempdir().expect("dir");
        let index = SearchIndex::open(dir.path()).expect("index");
        let writer = index.index().writer(15_000_000).expect("writer");
        (dir, index, writer)
    }

    fn names(index: &SearchIndex, q: &str) -> Vec<String> {
        let results = index.search(q, 100, 0).expect("search");
        results.hits.into_iter().map(|h| h.display_name).collect()
    }

    /// A first load skips deleting people it has not added yet, but one who changes again in a
    /// later chunk of the same catch-up is still replaced, and one deleted is removed.
    #[test]
    fn a_first_load_replaces_people_it_added_and_removes_the_deleted() {
        let (_dir, index, mut writer) = empty_index();
        let fields = index.fields();
        let mut indexed = HashSet::new();
        let ann = person("Ann", "Able", "Engineer", "+44 20 7946 0001");
        let ben = person("Ben", "Baker", "Engineer", "+44 20 7946 0002");
        let rows = vec![ann.clone(), ben.clone()];
        replace_sorted(&mut writer, &fields, rows, Some(&mut indexed)).expect("first chunk");
        let mut renamed = ann.clone();
        renamed.display_name = "Ann Abel".into();
        renamed.family_name = Some("Abel".into());
        let mut gone = ben.clone();
        gone.deleted_at = Some(chrono::Utc::now());
        let rows = vec![renamed, gone];
        replace_sorted(&mut writer, &fields, rows, Some(&mut indexed)).expect("second chunk");
        writer.commit().expect("commit");
        index.reload().expect("reload");
        assert_eq!(names(&index, ""), ["Ann Abel"]);
        assert_eq!(indexed, HashSet::from([ann.id]));
    }

    /// Starts of title words and endings of numbers are found by expanding them to the indexed
    /// words and numbers, and by automaton when a start names too many words to list.
    #[test]
    fn typed_starts_of_org_words_and_number_endings_are_expanded() {
        let (_dir, index, mut writer) = empty_index();
        let fields = index.fields();
        let many = super::super::query::MAX_EXPANSION + 6;
        let mut rows: Vec<PersonRow> = (0..many)
            .map(|n| {
                let number = format!("+44 20 7946 {n:04}");
                person(
                    &format!("Pat{n}"),
                    "Person",
                    &format!("Z{n:03}word Officer"),
                    &number,
                )
            })
            .collect();
        rows.push(person(
            "Ann",
            "Able",
            "Engineering Lead",
            "+44 161 496 0123",
        ));
        add_sorted(&mut writer, &fields, rows).expect("add");
        writer.commit().expect("commit");
        index.reload().expect("reload");

        assert_eq!(names(&index, "z").len(), many, "more words than are listed");
        assert_eq!(names(&index, "z007"), ["Pat7 Person"]);
        assert_eq!(names(&index, "z00").len(), 10);
        assert_eq!(names(&index, "engin"), ["Ann Able"]);
        assert_eq!(names(&index, "offi lead"), Vec::<String>::new());
        for ending in ["0123", "60123", "960123", "4960123", "14960123"] {
            assert_eq!(names(&index, ending), ["Ann Able"], "{ending}");
        }
        // An ending is matched as an ending only up to 8 digits, and only at the end.
        assert!(names(&index, "614960123").is_empty());
        assert!(names(&index, "496012").is_empty());
    }
}
