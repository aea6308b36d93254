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
use tantivy::query::{
    BitSetDocSet, ConstScorer, EnableScoring, Explanation, Query, Scorer, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, Searcher, SegmentReader, Term, TERMINATED};
use tantivy_common::BitSet;
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
    segments: HashMap<SegmentId, (SegmentReader, Arc<BitSet>)>,
}

impl std::fmt::Debug for Available {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Available")
    }
}

/// Sets (or clears) the bits of `id`'s documents in one segment.
fn mark(reader: &SegmentReader, field: Field, bits: &mut BitSet, id: Uuid, on: bool) {
    let Ok(inverted) = reader.inverted_index(field) else {
        return;
    };
    let term = Term::from_field_bytes(field, id.as_bytes());
    let Ok(Some(mut postings)) = inverted.read_postings(&term, IndexRecordOption::Basic) else {
        return;
    };
    let mut doc = postings.doc();
    while doc != TERMINATED {
        if doc < bits.max_value() {
            if on {
                bits.insert(doc);
            } else {
                bits.remove(doc);
            }
        }
        doc = postings.advance();
    }
}

/// A segment's documents whose `id` is in `ids`, walking its id terms.
fn build(reader: &SegmentReader, field: Field, ids: &HashSet<Uuid>) -> BitSet {
    let mut bits = BitSet::with_max_value(reader.max_doc());
    if ids.is_empty() {
        return bits;
    }
    let Ok(inverted) = reader.inverted_index(field) else {
        return bits;
    };
    let Ok(mut terms) = inverted.terms().stream() else {
        return bits;
    };
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
            if doc < bits.max_value() {
                bits.insert(doc);
            }
            doc = postings.advance();
        }
    }
    bits
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
        for (reader, bits) in state.segments.values_mut() {
            mark(reader, field, Arc::make_mut(bits), id, available);
        }
    }

    /// Everyone available now (a fresh reading of all presence): replaces what was known.
    pub fn replace(&self, ids: HashSet<Uuid>) {
        let mut state = self.lock();
        if state.ids == ids {
            return;
        }
        state.ids = ids;
        state.segments.clear();
    }

    pub fn len(&self) -> usize {
        self.lock().ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The segment's documents of people available now (built on first use).
    pub fn segment(&self, reader: &SegmentReader) -> Arc<BitSet> {
        let mut state = self.lock();
        let id = reader.segment_id();
        if let Some((_, bits)) = state.segments.get(&id) {
            return bits.clone();
        }
        let bits = Arc::new(build(reader, self.id_field, &state.ids));
        state.segments.insert(id, (reader.clone(), bits.clone()));
        bits
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
        let live = self.set.segment(reader);
        let bits = if self.available {
            (*live).clone()
        } else {
            let mut others = BitSet::with_max_value(reader.max_doc());
            for doc in 0..reader.max_doc() {
                if !live.contains(doc) {
                    others.insert(doc);
                }
            }
            others
        };
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(bits), boost)))
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
