//! The tantivy index: derived from PostgreSQL, rebuilt at will, and the only thing searches read.
//! `schema/search-index.md` describes the fields; `indexer` owns the one writer.

pub mod facets;
pub mod indexer;
pub mod live;
pub mod names;
pub mod query;
pub mod ranked;

use std::cmp::Reverse;
use std::path::Path;

use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::BooleanQuery;
use tantivy::schema::{Field, IndexRecordOption, Schema, Value, FAST, INDEXED, STORED, STRING};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{DocId, Index, IndexReader, ReloadPolicy, Score, SegmentReader, TantivyDocument};

pub use facets::{FacetCount, Facets};

use crate::domain::PersonSummary;
use crate::error::{Error, Result};

/// Bumped whenever the schema changes; an index of another version is rebuilt.
pub const SCHEMA_VERSION: u32 = 18;

/// Bytes per compressed block of stored documents (tantivy's default is 16 KiB).
const DOCSTORE_BLOCK: usize = 4096;

/// Longest prefix indexed as a term; longer typed words match by automaton instead.
pub const MAX_PREFIX: usize = 16;

/// The prefixes of `word` (by characters) up to `MAX_PREFIX`: "jane" → j, ja, jan, jane.
pub fn prefixes(word: &str, min: usize) -> impl Iterator<Item = &str> {
    word.char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .enumerate()
        .filter(move |(n, _)| *n + 1 >= min && *n < MAX_PREFIX)
        .map(move |(_, end)| &word[..end])
}

/// The term that names a person's document: the id's 16 bytes (a shorter key than its text).
pub fn id_term(fields: &Fields, id: &uuid::Uuid) -> tantivy::Term {
    tantivy::Term::from_field_bytes(fields.id, id.as_bytes())
}

#[derive(Clone, Copy, Debug)]
pub struct Fields {
    pub id: Field,
    /// The distinct folded words of every name (`fold`), umlaut spellings included.
    pub name: Field,
    /// Every prefix (edge n-gram) of every folded name word, up to `MAX_PREFIX` characters.
    pub name_prefix: Field,
    /// The distinct folded words of email addresses.
    pub text: Field,
    /// The distinct folded words of IM handles (without their scheme).
    pub im: Field,
    /// The distinct folded words of title, department, org unit and location: a small
    /// vocabulary, so a typed start is expanded to the words it starts at query time
    /// (`query::Terms::starting_with`) instead of indexing every prefix.
    pub org: Field,
    pub phone: Field,
    /// Bytes 0–8 of the folded name, as a number: breaks score ties alphabetically.
    pub sort_key: Field,
    /// Bytes 8–13 of the folded name, then 3 random bytes of the id: the rest of the order.
    pub sort_key2: Field,
    pub department: Field,
    pub location: Field,
    pub org_unit: Field,
    pub doc: Field,
    /// Whole folded names ("jane smith", "smith jane"): the exact full-name tier.
    pub name_full: Field,
    /// Double Metaphone codes (primary and alternate) of every name word: sound-alikes.
    pub name_phonetic: Field,
    /// Whole numbers: E.164 digits, national digits and extension. Reverse lookup.
    pub phone_exact: Field,
    /// The last `MIN_PHONE_SUFFIX` digits of every number: "…0018" from a missed call.
    pub phone_suffix: Field,
    /// Every number's E.164 digits backwards: a longer ending is a start of these, expanded to
    /// the few numbers it ends at query time (indexing every ending made most of the terms).
    pub phone_reversed: Field,
    /// 1 when the person has an IM handle (later: live presence). Filter and facet.
    pub has_presence: Field,
    /// Email local parts without punctuation ("janesmith"): matched whole only, since nearly
    /// every person has a distinct one and a prefix automaton over them would be slow.
    pub handle: Field,
    /// A person's choice about partners: 0 none, 1 opted in, 2 opted out (`sharing_code`).
    pub partner_sharing: Field,
}

/// How `Fields::partner_sharing` holds a person's choice.
pub fn sharing_code(sharing: Option<bool>) -> u64 {
    match sharing {
        None => 0,
        Some(true) => 1,
        Some(false) => 2,
    }
}

/// Longest start of a phone number indexed as a term. Longer starts are nearly unique: they
/// would make most of the term dictionary (7 digits: 2.5 s of building a million people's
/// index); a longer typed start is matched by automaton over whole numbers instead, where it
/// selects a few thousand at most (0.7 ms).
pub const MAX_PHONE_PREFIX: usize = 6;

/// Longest phone-number ending indexed as a term.
pub const MAX_PHONE_SUFFIX: usize = 8;
/// Shortest phone-number ending that matches.
pub const MIN_PHONE_SUFFIX: usize = 4;

pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    // Words are folded (`fold`) and deduplicated before indexing, so every field takes its
    // terms as they are: no tokenizing twice, no repeated words, no frequencies or positions
    // (scores are constants per kind of match).
    let fields = Fields {
        id: b.add_bytes_field("id", INDEXED),
        name: b.add_text_field("name", STRING),
        name_prefix: b.add_text_field("name_prefix", STRING),
        text: b.add_text_field("text", STRING),
        im: b.add_text_field("im", STRING),
        org: b.add_text_field("org", STRING),
        phone: b.add_text_field("phone", STRING),
        sort_key: b.add_u64_field("sort_key", FAST),
        sort_key2: b.add_u64_field("sort_key2", FAST),
        department: b.add_text_field("department", STRING | FAST),
        location: b.add_text_field("location", STRING | FAST),
        org_unit: b.add_text_field("org_unit", STRING | FAST),
        // Stored as text, not bytes: tantivy reads stored bytes back one byte at a time.
        doc: b.add_text_field("doc", STORED),
        name_full: b.add_text_field("name_full", STRING),
        name_phonetic: b.add_text_field("name_phonetic", STRING),
        phone_exact: b.add_text_field("phone_exact", STRING),
        phone_suffix: b.add_text_field("phone_suffix", STRING),
        phone_reversed: b.add_text_field("phone_reversed", STRING),
        has_presence: b.add_u64_field("has_presence", INDEXED | FAST),
        handle: b.add_text_field("handle", STRING),
        partner_sharing: b.add_u64_field("partner_sharing", INDEXED),
    };
    (b.build(), fields)
}

/// How words are folded (`fold`): split on non-alphanumerics, drop words over 64 bytes,
/// lower-case, fold accents (é→e, ß→ss, ø→o, Ł→l).
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// Folds text the way the index does, for sort keys and query words.
pub fn fold(text: &str) -> Vec<String> {
    thread_local! {
        // Building an analyzer allocates; indexing folds several fields per person.
        static ANALYZER: std::cell::RefCell<TextAnalyzer> = std::cell::RefCell::new(analyzer());
    }
    ANALYZER.with_borrow_mut(|analyzer| {
        let mut stream = analyzer.token_stream(text);
        let mut words = Vec::new();
        while stream.advance() {
            words.push(stream.token().text.clone());
        }
        words
    })
}

/// Double Metaphone codes of a folded word: the primary code, and the alternate when it
/// differs. Empty for words without letters, and for words that are not ASCII after folding
/// (Double Metaphone reads Latin letters only; `rphonetic` also slices by bytes and would panic).
pub fn phonetic_codes(word: &str) -> Vec<String> {
    /// Names repeat a lot (a directory of a million has tens of thousands of distinct name
    /// words), and encoding allocates: indexing remembers recent codes per thread.
    const CACHE_LIMIT: usize = 100_000;
    thread_local! {
        static ENCODER: rphonetic::DoubleMetaphone = rphonetic::DoubleMetaphone::default();
        static CACHE: std::cell::RefCell<std::collections::HashMap<String, Vec<String>>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    if !word.is_ascii() || !word.chars().any(|c| c.is_ascii_alphabetic()) {
        return Vec::new();
    }
    if let Some(codes) = CACHE.with_borrow(|cache| cache.get(word).cloned()) {
        return codes;
    }
    let codes = ENCODER.with(|encoder| {
        let result = encoder.double_metaphone(word);
        let mut codes = vec![result.primary()];
        let alternate = result.alternate();
        if alternate != codes[0] {
            codes.push(alternate);
        }
        codes.retain(|c| !c.is_empty());
        codes
    });
    CACHE.with_borrow_mut(|cache| {
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(word.to_string(), codes.clone());
    });
    codes
}

/// Two numbers that order people after their score: by the first 13 bytes of the folded name,
/// then by 3 random bytes of the id (namesakes tie only by a 1-in-16-million coincidence). Two
/// numbers, because every matching document is read for them: a third read cost ~25% at p50.
pub fn sort_keys(sort_name: &str, id: &uuid::Uuid) -> (u64, u64) {
    let mut bytes = [0u8; 16];
    for (slot, b) in bytes.iter_mut().take(13).zip(sort_name.bytes()) {
        *slot = b;
    }
    // The last bytes of a UUID v7 are random; its first ones are a timestamp.
    bytes[13..].copy_from_slice(&id.as_bytes()[13..]);
    let (high, low) = bytes.split_at(8);
    let key = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
    (key(high), key(low))
}

/// What orders documents after their score: name, then id. Taken from the documents
/// themselves, never from where they sit in the index, so pages stay stable across merges.
#[derive(Clone)]
struct OrderKeys {
    columns: [Option<tantivy::columnar::Column<u64>>; 2],
}

type OrderKey = (Reverse<u64>, Reverse<u64>);

impl OrderKeys {
    fn new(segment: &SegmentReader) -> OrderKeys {
        let ff = segment.fast_fields();
        OrderKeys {
            columns: [ff.u64("sort_key").ok(), ff.u64("sort_key2").ok()],
        }
    }

    fn get(&self, doc: DocId) -> OrderKey {
        let key = |i: usize| {
            Reverse(
                self.columns[i]
                    .as_ref()
                    .and_then(|c| c.first(doc))
                    .unwrap_or(u64::MAX),
            )
        };
        (key(0), key(1))
    }
}

/// A handle on the index for searching. Cheap to clone.
#[derive(Clone)]
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    segments: ranked::SegmentCache,
    available: live::Available,
}

/// Planning looks words up in the term dictionaries of every segment.
impl query::Terms for tantivy::Searcher {
    fn known(&self, field: Field, word: &str) -> bool {
        self.doc_freq(&tantivy::Term::from_field_text(field, word))
            .is_ok_and(|n| n > 0)
    }

    fn starting_with(&self, field: Field, prefix: &str, limit: usize) -> Option<Vec<String>> {
        let mut terms = std::collections::BTreeSet::new();
        for segment in self.segment_readers() {
            let Ok(inverted) = segment.inverted_index(field) else {
                continue;
            };
            let Ok(mut stream) = inverted.terms().range().ge(prefix.as_bytes()).into_stream()
            else {
                continue;
            };
            while stream.advance() {
                let key = stream.key();
                if !key.starts_with(prefix.as_bytes()) {
                    break;
                }
                if !terms.contains(key) {
                    if terms.len() == limit {
                        return None;
                    }
                    terms.insert(key.to_vec());
                }
            }
        }
        Some(
            terms
                .into_iter()
                .filter_map(|t| String::from_utf8(t).ok())
                .collect(),
        )
    }
}

/// Matches are counted up to this many (or one past the page asked for, if further): a larger
/// total is reported as a lower bound, since counting a million matches of "a" costs more than
/// finding the page.
pub const COUNT_TO: usize = 1000;

#[cfg(test)]
mod tests {
    #[test]
    fn prefixes_are_cut_on_characters() {
        assert_eq!(
            super::prefixes("jané", 1).collect::<Vec<_>>(),
            ["j", "ja", "jan", "jané"]
        );
        assert_eq!(
            super::prefixes("44207", 3).collect::<Vec<_>>(),
            ["442", "4420", "44207"]
        );
        assert_eq!(
            super::prefixes(&"x".repeat(40), 1).count(),
            super::MAX_PREFIX
        );
    }
}

#[derive(Debug, Clone)]
pub struct SearchResults {
    /// How many people match; with `total_exact` false, at least this many.
    pub total: usize,
    pub total_exact: bool,
    pub hits: Vec<PersonSummary>,
    /// True when typo-tolerant and sound-alike matches were included (the exact and prefix
    /// matches did not fill the page); `total` then counts those too.
    pub approximate: bool,
    /// Counts over every match, when asked for.
    pub facets: Option<Facets>,
}

/// One search: what was typed, which page, which filters, which facets.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub q: String,
    pub limit: usize,
    pub offset: usize,
    pub filters: query::Filters,
    /// People at this location rank first among equally good matches.
    pub near: Option<String>,
    pub facets: bool,
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it (or recreating it, if its schema is outdated).
    pub fn open(dir: &Path) -> Result<SearchIndex> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = schema();
        let version_file = dir.join("schema_version");
        let current = std::fs::read_to_string(&version_file)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok());
        let has_index = dir.join("meta.json").exists();
        if has_index && current != Some(SCHEMA_VERSION) {
            // Never under a live server (a newer or older binary started beside it): it holds
            // the writer lock, and its index stays as it is.
            use tantivy::directory::{Directory, INDEX_WRITER_LOCK};
            let _lock = MmapDirectory::open(dir)?
                .acquire_lock(&INDEX_WRITER_LOCK)
                .map_err(|_| Error::IndexLocked)?;
            tracing::warn!(dir = %dir.display(), "search index has an old schema; recreating it");
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                let lock_file = path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".tantivy"));
                if path.is_file() && !lock_file {
                    std::fs::remove_file(path)?;
                }
            }
        }
        // Small blocks in the document store: a search reads 20 documents from 20 places, and
        // each read decompresses a whole block.
        let settings = tantivy::IndexSettings {
            docstore_blocksize: DOCSTORE_BLOCK,
            ..Default::default()
        };
        let index = Index::builder()
            .schema(schema)
            .settings(settings)
            .open_or_create(MmapDirectory::open(dir)?)?;
        std::fs::write(&version_file, SCHEMA_VERSION.to_string())?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let index = SearchIndex {
            index,
            reader,
            fields,
            segments: ranked::SegmentCache::default(),
            available: live::Available::new(fields.id),
        };
        index.segments.warm(&index.reader.searcher());
        Ok(index)
    }

    pub fn fields(&self) -> Fields {
        self.fields
    }

    /// Who is available now, for the `available` filter and count (fed from presence).
    pub fn available(&self) -> &live::Available {
        &self.available
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Makes the last commit searchable (and works out the new segments' runs right away, so
    /// no search waits for that).
    pub fn reload(&self) -> Result<()> {
        self.reader.reload()?;
        self.segments.warm(&self.reader.searcher());
        Ok(())
    }

    /// The last `change_log` sequence number this index reflects (from the last commit).
    pub fn applied_seq(&self) -> Result<i64> {
        let meta = self.index.load_metas()?;
        Ok(meta
            .payload
            .as_deref()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0))
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// How many documents each segment holds.
    pub fn segment_sizes(&self) -> Vec<u64> {
        self.reader
            .searcher()
            .segment_readers()
            .iter()
            .map(|s| u64::from(s.num_docs()))
            .collect()
    }

    /// Searches for `q`; an empty query lists everyone alphabetically.
    pub fn search(&self, q: &str, limit: usize, offset: usize) -> Result<SearchResults> {
        self.search_with(&SearchRequest {
            q: q.to_string(),
            limit,
            offset,
            ..SearchRequest::default()
        })
    }

    /// Runs the exact tier, and the wide tier (typos, sound-alikes) only when the exact one
    /// does not fill the page.
    pub fn search_with(&self, request: &SearchRequest) -> Result<SearchResults> {
        let searcher = self.reader.searcher();
        let mut plan = query::plan(
            &request.q,
            &self.fields,
            &request.filters,
            request.near.as_deref(),
            &searcher,
        );
        if request.facets || request.filters.available.is_some() {
            self.available.keep_only(&searcher);
        }
        if let Some(available) = request.filters.available {
            let word = || {
                vec![query::Alternative::filter(Box::new(
                    self.available.query(available),
                ))]
            };
            plan.exact.words.push(word());
            if let Some(wide) = plan.wide.as_mut() {
                wide.words.push(word());
            }
        }
        let limit = request.limit.max(1);
        let k = request.offset + limit;
        // One more than the page, so that a next page is known to exist.
        let count_to = COUNT_TO.max(k + 1);
        let exact = ranked::top(&searcher, &plan.exact, k, count_to, &self.segments)?;
        let mut docs = exact.docs;
        let mut total = exact.total;
        let mut total_exact = exact.total_exact;
        let mut approximate = false;
        // Fewer exact matches than the page: all of them are here, and typos and sound-alikes
        // fill the rest.
        if total < k {
            if let Some(wide) = &plan.wide {
                let more =
                    ranked::top(&searcher, wide, k - total, count_to - total, &self.segments)?;
                docs.extend(more.docs);
                total += more.total;
                total_exact = more.total_exact;
                approximate = true;
            }
        }
        let facets = if request.facets {
            // Facets count every match, and then so can the total.
            let mut query = plan.exact.query();
            if let (true, Some(wide)) = (approximate, &plan.wide) {
                query = Box::new(BooleanQuery::union(vec![query, wide.query()]));
            }
            let (count, facets) = searcher.search(
                query.as_ref(),
                &(
                    Count,
                    facets::FacetCollector {
                        live: self.available.clone(),
                    },
                ),
            )?;
            total = count;
            total_exact = true;
            Some(facets)
        } else {
            None
        };
        let addresses = docs
            .into_iter()
            .skip(request.offset)
            .map(|(_, address)| address)
            .collect();
        let hits = self.hits(&searcher, addresses)?;
        Ok(SearchResults {
            total,
            total_exact,
            hits,
            approximate,
            facets,
        })
    }

    /// Everyone who owns one of the `candidates` readings of a number (E.164 digits, national
    /// digits or extension), alphabetically.
    pub fn by_phone(&self, candidates: &[String]) -> Result<Vec<PersonSummary>> {
        let searcher = self.reader.searcher();
        let queries: Vec<Box<dyn tantivy::query::Query>> = candidates
            .iter()
            .map(|digits| -> Box<dyn tantivy::query::Query> {
                Box::new(tantivy::query::TermQuery::new(
                    tantivy::Term::from_field_text(self.fields.phone_exact, digits),
                    IndexRecordOption::Basic,
                ))
            })
            .collect();
        let query = tantivy::query::DisjunctionMaxQuery::new(queries);
        let top = TopDocs::with_limit(100).tweak_score(|segment: &SegmentReader| {
            let keys = OrderKeys::new(segment);
            move |doc: DocId, _: Score| keys.get(doc)
        });
        let docs = searcher.search(&query, &top)?;
        self.hits(&searcher, docs.into_iter().map(|(_, a)| a).collect())
    }

    /// People with a number ending in `digits` (4 to 8 of them: a missed call's last digits,
    /// a phone's `*0018`), alphabetically, from `offset`.
    pub fn by_phone_ending(
        &self,
        digits: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PersonSummary>> {
        if !(MIN_PHONE_SUFFIX..=MAX_PHONE_SUFFIX).contains(&digits.len())
            || !digits.chars().all(|c| c.is_ascii_digit())
        {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let query: Box<dyn tantivy::query::Query> = if digits.len() == MIN_PHONE_SUFFIX {
            Box::new(tantivy::query::TermQuery::new(
                tantivy::Term::from_field_text(self.fields.phone_suffix, digits),
                IndexRecordOption::Basic,
            ))
        } else {
            // A longer ending is the start of the number written backwards.
            let backwards: String = digits.chars().rev().collect();
            Box::new(tantivy::query::FuzzyTermQuery::new_prefix(
                tantivy::Term::from_field_text(self.fields.phone_reversed, &backwards),
                0,
                false,
            ))
        };
        let top = TopDocs::with_limit(limit.max(1))
            .and_offset(offset)
            .tweak_score(|segment: &SegmentReader| {
                let keys = OrderKeys::new(segment);
                move |doc: DocId, _: Score| keys.get(doc)
            });
        let docs = searcher.search(query.as_ref(), &top)?;
        self.hits(&searcher, docs.into_iter().map(|(_, a)| a).collect())
    }

    fn hits(
        &self,
        searcher: &tantivy::Searcher,
        addresses: Vec<tantivy::DocAddress>,
    ) -> Result<Vec<PersonSummary>> {
        let mut hits = Vec::with_capacity(addresses.len());
        for address in addresses {
            let doc: TantivyDocument = searcher.doc(address)?;
            let json = doc
                .get_first(self.fields.doc)
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let summary: PersonSummary = serde_json::from_str(json)
                .map_err(|e| Error::Internal(anyhow::anyhow!("corrupt index document: {e}")))?;
            hits.push(summary);
        }
        Ok(hits)
    }
}
