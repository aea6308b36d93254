//! Who is available right now, as the search sees it: the "available now" filter and its count.
//!
//! Presence changes a few times a second and lives in memory, so it is not indexed (that
//! would mean a commit per change). Instead each segment of the index gets a bit set of its
//! documents whose person is available, built once when a search first meets the segment (by
//! walking its `id` terms) and kept current as changes arrive (one term lookup per segment).
//! A search reads it as one more filter word, a facet count reads it per match: a bit test.
//! Sets are copied on write, so a search holds a snapshot while changes go on.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::query::{ConstScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, Searcher, SegmentReader, Term, TERMINATED};
use tantivy_common::{BitSet, TinySet};
use uuid::Uuid;

/// The people available now, and each segment's documents of them. Cheap to clone.
#[derive(Clone)]
pub struct Available {
    id_field: Field,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    ids: HashSet<Uuid>,
    segments: HashMap<SegmentId, Bits>,
}

/// One segment's documents of people available now, and of everyone else.
#[derive(Clone)]
struct Bits {
    reader: SegmentReader,
    available: Arc<BitSet>,
    others: Arc<BitSet>,
}

impl std::fmt::Debug for Available {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Available")
    }
}

/// Moves `id`'s documents in one segment to the available set (`on`) or the others.
fn mark(bits: &mut Bits, field: Field, id: Uuid, on: bool) {
    let Ok(inverted) = bits.reader.inverted_index(field) else {
        return;
    };
    let term = Term::from_field_bytes(field, id.as_bytes());
    let Ok(Some(mut postings)) = inverted.read_postings(&term, IndexRecordOption::Basic) else {
        return;
    };
    let (available, others) = (
        Arc::make_mut(&mut bits.available),
        Arc::make_mut(&mut bits.others),
    );
    let mut doc = postings.doc();
    while doc != TERMINATED {
        if doc < available.max_value() {
            if on {
                available.insert(doc);
                others.remove(doc);
            } else {
                available.remove(doc);
                others.insert(doc);
            }
        }
        doc = postings.advance();
    }
}

/// A segment's documents whose `id` is in `ids`, walking its id terms, and the rest.
fn build(reader: &SegmentReader, field: Field, ids: &HashSet<Uuid>) -> Bits {
    let max_doc = reader.max_doc();
    let mut available = BitSet::with_max_value(max_doc);
    let mut others = BitSet::with_max_value_and_full(max_doc);
    let mut add = |doc: DocId| {
        if doc < max_doc {
            available.insert(doc);
            others.remove(doc);
        }
    };
    if let (false, Ok(inverted)) = (ids.is_empty(), reader.inverted_index(field)) {
        if let Ok(mut terms) = inverted.terms().stream() {
            while terms.advance() {
                let Ok(id) = Uuid::from_slice(terms.key()) else {
                    continue;
                };
                if !ids.contains(&id) {
                    continue;
                }
                let Ok(mut postings) =
                    inverted.read_postings_from_terminfo(terms.value(), IndexRecordOption::Basic)
                else {
                    continue;
                };
                let mut doc = postings.doc();
                while doc != TERMINATED {
                    add(doc);
                    doc = postings.advance();
                }
            }
        }
    }
    Bits {
        reader: reader.clone(),
        available: Arc::new(available),
        others: Arc::new(others),
    }
}

impl Available {
    pub fn new(id_field: Field) -> Available {
        Available {
            id_field,
            state: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Each change leaves the state whole: a panicking holder breaks nothing.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Someone became available, or stopped being.
    pub fn set(&self, id: Uuid, available: bool) {
        let mut state = self.lock();
        let changed = if available {
            state.ids.insert(id)
        } else {
            state.ids.remove(&id)
        };
        if !changed {
            return;
        }
        let field = self.id_field;
        for bits in state.segments.values_mut() {
            mark(bits, field, id, available);
        }
    }

    /// Everyone available now (a fresh reading of all presence): replaces what was known,
    /// moving only who differs (or, when most differ, building the segments' sets anew).
    pub fn replace(&self, ids: HashSet<Uuid>) {
        let mut state = self.lock();
        let gone: Vec<Uuid> = state.ids.difference(&ids).copied().collect();
        let came: Vec<Uuid> = ids.difference(&state.ids).copied().collect();
        if gone.len() + came.len() > (ids.len() / 10).max(1_000) {
            state.ids = ids;
            state.segments.clear();
            return;
        }
        state.ids = ids;
        let field = self.id_field;
        for bits in state.segments.values_mut() {
            for id in &gone {
                mark(bits, field, *id, false);
            }
            for id in &came {
                mark(bits, field, *id, true);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lock().ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The segment's documents of people available now (`true`) or of everyone else, built on
    /// first use: a walk over the segment's id terms (tens of milliseconds for a million
    /// people, once per new segment).
    pub fn segment(&self, reader: &SegmentReader, available: bool) -> Arc<BitSet> {
        let mut state = self.lock();
        let id = reader.segment_id();
        let bits = match state.segments.get(&id) {
            Some(bits) => bits.clone(),
            None => {
                let bits = build(reader, self.id_field, &state.ids);
                state.segments.insert(id, bits.clone());
                bits
            }
        };
        if available {
            bits.available
        } else {
            bits.others
        }
    }

    /// Forgets segments the index no longer has.
    pub fn keep_only(&self, searcher: &Searcher) {
        let live: HashSet<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(|s| s.segment_id())
            .collect();
        self.lock().segments.retain(|id, _| live.contains(id));
    }

    /// Matches the documents of people available now (`true`) or of everyone else (`false`).
    pub fn query(&self, available: bool) -> AvailableQuery {
        AvailableQuery {
            set: self.clone(),
            available,
        }
    }
}

/// A filter: the documents of people available now, or of everyone else.
#[derive(Clone, Debug)]
pub struct AvailableQuery {
    set: Available,
    available: bool,
}

impl Query for AvailableQuery {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for AvailableQuery {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let bits = self.set.segment(reader, self.available);
        Ok(Box::new(ConstScorer::new(SharedBits::new(bits), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) == doc {
            Ok(Explanation::new("availability filter", 0.0))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} does not pass the availability filter"
            )))
        }
    }
}

/// The documents of a shared bit set, read in place (a search never copies the set; a change
/// while it runs copies it instead).
struct SharedBits {
    bits: Arc<BitSet>,
    bucket: u32,
    word: TinySet,
    doc: DocId,
}

impl SharedBits {
    fn new(bits: Arc<BitSet>) -> SharedBits {
        let word = if bits.max_value() == 0 {
            TinySet::empty()
        } else {
            bits.tinyset(0)
        };
        let mut docs = SharedBits {
            bits,
            bucket: 0,
            word,
            doc: 0,
        };
        docs.advance();
        docs
    }
}

impl DocSet for SharedBits {
    fn advance(&mut self) -> DocId {
        if let Some(lower) = self.word.pop_lowest() {
            self.doc = (self.bucket * 64) | lower;
            return self.doc;
        }
        let next = (self.bucket + 1 < self.bits.max_value().div_ceil(64))
            .then(|| self.bits.first_non_empty_bucket(self.bucket + 1))
            .flatten();
        match next {
            Some(bucket) => {
                self.bucket = bucket;
                self.word = self.bits.tinyset(bucket);
                let lower = self.word.pop_lowest().unwrap_or(0);
                self.doc = (bucket * 64) | lower;
            }
            None => self.doc = TERMINATED,
        }
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if target >= self.bits.max_value() {
            self.doc = TERMINATED;
            return TERMINATED;
        }
        let bucket = target / 64;
        if bucket > self.bucket {
            self.bucket = bucket;
            self.word = self.bits.tinyset(bucket);
        }
        self.word = self
            .word
            .intersect(TinySet::range_greater_or_equal(target % 64));
        if self.doc >= target && self.doc != TERMINATED {
            return self.doc;
        }
        self.advance()
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.bits.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(mut set: SharedBits) -> Vec<DocId> {
        let mut out = Vec::new();
        while set.doc() != TERMINATED {
            out.push(set.doc());
            set.advance();
        }
        out
    }

    #[test]
    fn shared_bits_iterate_and_seek_as_a_bit_set_does() {
        for max in [0u32, 1, 63, 64, 65, 200, 1_000] {
            let mut bits = BitSet::with_max_value(max);
            let members: Vec<DocId> = (0..max).filter(|d| d % 7 == 3 || *d == 64).collect();
            for d in &members {
                bits.insert(*d);
            }
            let bits = Arc::new(bits);
            assert_eq!(docs(SharedBits::new(bits.clone())), members, "max {max}");
            for target in [0u32, 1, 3, 10, 63, 64, 65, 128, 199, 999] {
                let mut set = SharedBits::new(bits.clone());
                // Seeking goes forward only.
                if set.doc() == TERMINATED || target <= set.doc() {
                    continue;
                }
                let rest: Vec<DocId> = members.iter().copied().filter(|d| *d >= target).collect();
                let expected = rest.first().copied().unwrap_or(TERMINATED);
                assert_eq!(set.seek(target), expected, "max {max}, seek {target}");
                assert_eq!(docs(set), rest, "max {max}, after {target}");
            }
        }
    }
}
