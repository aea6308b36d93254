//! The top of a ranking without reading every match.
//!
//! Results are ordered by score, then by name (`OrderKeys`). The indexer adds documents in name
//! order, so a segment is a few long *runs* of documents in name order (merging segments
//! concatenates them). Scores come in a few fixed tiers (`query::score`), so a tier knows the
//! best score a document can reach in a segment. A run is read document at a time, and once the
//! page is full (and enough matches are counted), only documents that can still beat the page's
//! worst are looked for: ones scoring at least as well before the worst's name, better after it.
//! `Matcher::skip` turns that into where to read next: past the rest of the run when nothing
//! can, or to the next document of an alternative that is needed for it. A one-letter prefix that
//! matches 100,000 people reads a few dozen per run.
//!
//! Counting stops once `count_to` matches are counted: totals above it are lower bounds. Runs are
//! worked out from the documents' own sort keys, so a segment in any order gives correct results,
//! only slower.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::query::{EnableScoring, Scorer, Weight};
use tantivy::{DocAddress, DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED};

use super::query::Tier;
use super::OrderKeys;
use crate::error::Result;

/// What searches need of each segment beyond its postings: where its runs start, and its sort
/// keys (opening those columns reads their block index, too slow to do per search).
#[derive(Clone, Default)]
pub struct SegmentCache {
    segments: Arc<Mutex<HashMap<SegmentId, Arc<Segment>>>>,
}

pub struct Segment {
    /// The first document of every run, in order.
    pub starts: Vec<DocId>,
    keys: OrderKeys,
}

impl SegmentCache {
    pub fn get(&self, segment: &SegmentReader) -> Arc<Segment> {
        let id = segment.segment_id();
        if let Some(cached) = self.lock().get(&id) {
            return cached.clone();
        }
        let keys = OrderKeys::new(segment);
        let cached = Arc::new(Segment {
            starts: run_starts(&keys, segment.max_doc()),
            keys,
        });
        self.lock().insert(id, cached.clone());
        cached
    }

    /// Reads every segment of `searcher` in, and forgets segments that are gone.
    pub fn warm(&self, searcher: &Searcher) {
        let live: Vec<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(|s| {
                self.get(s);
                s.segment_id()
            })
            .collect();
        self.lock().retain(|id, _| live.contains(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SegmentId, Arc<Segment>>> {
        // The map holds no invariant a panicking holder could break.
        self.segments.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn run_starts(keys: &OrderKeys, max_doc: DocId) -> Vec<DocId> {
    let mut starts = vec![0];
    let mut previous = None;
    for doc in 0..max_doc {
        // `OrderKeys` are reversed (larger ranks first): a run is where they do not grow.
        let key = keys.get(doc);
        if previous.is_some_and(|p| key > p) {
            starts.push(doc);
        }
        previous = Some(key);
    }
    starts
}

/// One ranked document. Orders best first: higher score, then earlier name.
#[derive(Clone, Copy)]
struct Ranked {
    score: Score,
    key: super::OrderKey,
    address: DocAddress,
}

impl Ranked {
    fn rank(&self) -> (f32, super::OrderKey, Reverse<DocAddress>) {
        (self.score, self.key, Reverse(self.address))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    /// Greater is better.
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.rank(), other.rank());
        a.0.total_cmp(&b.0)
            .then_with(|| a.1.cmp(&b.1))
            .then_with(|| a.2.cmp(&b.2))
    }
}

/// The best `k` matches, best first, and how many matches there are.
pub struct Top {
    pub docs: Vec<(Score, DocAddress)>,
    pub total: usize,
    /// False when counting stopped at `count_to`: there are at least `total` matches.
    pub total_exact: bool,
}

/// The best `k` matches of `tier`, counting matches up to `count_to` (at least `k`).
pub fn top(
    searcher: &Searcher,
    tier: &Tier,
    k: usize,
    count_to: usize,
    cache: &SegmentCache,
) -> Result<Top> {
    let count_to = count_to.max(k);
    let scoring = EnableScoring::disabled_from_searcher(searcher);
    let weigh = |alternatives: &[super::query::Alternative]| {
        alternatives
            .iter()
            .map(|a| Ok((a.query.weight(scoring)?, a.score, a.exact)))
            .collect::<Result<Vec<_>>>()
    };
    let words = tier
        .words
        .iter()
        .map(|w| weigh(w))
        .collect::<Result<Vec<_>>>()?;
    let bonuses = weigh(&tier.bonuses)?;
    // A min-heap of the page so far: its top is the worst document on it.
    let mut page: BinaryHeap<Reverse<Ranked>> = BinaryHeap::with_capacity(k + 1);
    let mut total = 0usize;
    let mut total_exact = true;
    'segments: for (ord, segment) in searcher.segment_readers().iter().enumerate() {
        let Some(mut matcher) = Matcher::new(segment, &words, &bonuses, tier.exclude_exact)? else {
            continue;
        };
        let cached = cache.get(segment);
        let alive = segment.alive_bitset();
        for (i, &start) in cached.starts.iter().enumerate() {
            let end = cached.starts.get(i + 1).copied().unwrap_or(TERMINATED);
            let mut target = start;
            loop {
                let doc = matcher.next(target);
                if doc == TERMINATED {
                    continue 'segments;
                }
                if doc >= end {
                    break;
                }
                target = doc + 1;
                if !alive.is_none_or(|a| a.is_alive(doc)) || matcher.excluded(doc) {
                    continue;
                }
                total += 1;
                let ranked = Ranked {
                    score: matcher.score(doc),
                    key: cached.keys.get(doc),
                    address: DocAddress::new(ord as u32, doc),
                };
                if page.len() < k {
                    page.push(Reverse(ranked));
                } else if let Some(mut worst) = page.peek_mut() {
                    if ranked > worst.0 {
                        *worst = Reverse(ranked);
                    }
                }
                // Counted enough and the page is full: skip to where a document that can enter
                // the page may be, one scoring at least as well as the page's worst (better,
                // once this run has passed the worst's name).
                let Some(worst) = page.peek().filter(|_| page.len() == k) else {
                    continue;
                };
                if total >= count_to {
                    let past = ranked.key <= worst.0.key;
                    match matcher.skip(target, end, worst.0.score, past) {
                        Some(next) => {
                            total_exact &= next == target;
                            target = next;
                        }
                        None => {
                            total_exact = false;
                            break;
                        }
                    }
                }
            }
        }
    }
    let mut docs: Vec<Ranked> = page.into_iter().map(|r| r.0).collect();
    docs.sort_unstable_by(|a, b| b.cmp(a));
    Ok(Top {
        docs: docs.into_iter().map(|r| (r.score, r.address)).collect(),
        total,
        total_exact,
    })
}

type Weighed = (Box<dyn Weight>, Score, bool);

/// One alternative's postings in a segment.
struct Leaf {
    scorer: Box<dyn Scorer>,
    score: Score,
    exact: bool,
}

impl Leaf {
    /// Moves to the first document at or after `target`.
    fn seek(&mut self, target: DocId) -> DocId {
        let doc = self.scorer.doc();
        if doc < target {
            self.scorer.seek(target)
        } else {
            doc
        }
    }
}

fn best(leaves: &[Leaf]) -> Score {
    leaves.iter().map(|l| l.score).fold(0.0, f32::max)
}

/// Finds a tier's matches in one segment, document at a time: every word is the union of its
/// alternatives' postings, and a match is where all words meet. Skips ahead with the postings'
/// skip lists, so starting a run or leaving a sparse word behind costs little.
struct Matcher {
    words: Vec<Vec<Leaf>>,
    bonuses: Vec<Leaf>,
    exclude_exact: bool,
    /// The best score each word can reach here, and the best score of a document.
    word_best: Vec<Score>,
    best: Score,
}

impl Matcher {
    /// `None` when some word has no postings in the segment (nothing matches).
    fn new(
        segment: &SegmentReader,
        words: &[Vec<Weighed>],
        bonuses: &[Weighed],
        exclude_exact: bool,
    ) -> Result<Option<Matcher>> {
        let leaves = |weighed: &[Weighed]| -> Result<Vec<Leaf>> {
            let mut leaves = Vec::new();
            for (weight, score, exact) in weighed {
                let scorer = weight.scorer(segment, 1.0)?;
                if scorer.doc() != TERMINATED {
                    leaves.push(Leaf {
                        scorer,
                        score: *score,
                        exact: *exact,
                    });
                }
            }
            Ok(leaves)
        };
        let mut matched = Vec::with_capacity(words.len());
        for word in words {
            let leaves = leaves(word)?;
            if leaves.is_empty() {
                return Ok(None);
            }
            matched.push(leaves);
        }
        // The rarest word leads: the others are only asked about its documents.
        matched.sort_by_key(|leaves| {
            leaves
                .iter()
                .map(|l| u64::from(l.scorer.size_hint()))
                .sum::<u64>()
        });
        let bonuses = leaves(bonuses)?;
        let word_best: Vec<Score> = matched.iter().map(|leaves| best(leaves)).collect();
        let best = word_best.iter().sum::<Score>() + bonuses.iter().map(|b| b.score).sum::<Score>();
        Ok(Some(Matcher {
            words: matched,
            bonuses,
            exclude_exact,
            word_best,
            best,
        }))
    }

    /// Where the next document scoring above `worst` (or as well, unless `strictly`) can be,
    /// from `target` on (before `end`); `None` when there is none. A part (a word or a bonus)
    /// that must be worth more than some of its alternatives for that (with every other part at
    /// its best) limits the search to its better alternatives: to the few people named exactly
    /// "Li" among the many whose names start with "li", or to names starting with "u" among
    /// everyone whose IM handle has a "u" in it.
    fn skip(&mut self, target: DocId, end: DocId, worst: Score, strictly: bool) -> Option<DocId> {
        let mut next = target;
        let words = self
            .words
            .iter_mut()
            .zip(&self.word_best)
            .map(|(leaves, best)| (leaves.as_mut_slice(), *best, false));
        let bonuses = self.bonuses.iter_mut().map(|b| {
            let score = b.score;
            (std::slice::from_mut(b), score, true)
        });
        for (leaves, part_best, optional) in words.chain(bonuses) {
            // What this part must be worth, with every other part at its best.
            let needed = worst - (self.best - part_best);
            let enough = |score: Score| {
                if strictly {
                    score > needed
                } else {
                    score >= needed
                }
            };
            // A missing bonus is worth 0; a word always matches one of its alternatives.
            if (optional && enough(0.0)) || leaves.iter().all(|leaf| enough(leaf.score)) {
                continue;
            }
            let at = leaves
                .iter_mut()
                .filter(|leaf| enough(leaf.score))
                .map(|leaf| leaf.seek(next))
                .min()
                .unwrap_or(TERMINATED);
            if at >= end {
                return None;
            }
            next = next.max(at);
        }
        Some(next)
    }

    /// The first document at or after `target` where every word matches.
    fn next(&mut self, target: DocId) -> DocId {
        let mut candidate = target;
        'candidates: loop {
            for word in &mut self.words {
                let doc = word
                    .iter_mut()
                    .map(|leaf| leaf.seek(candidate))
                    .min()
                    .unwrap_or(TERMINATED);
                if doc == TERMINATED {
                    return TERMINATED;
                }
                if doc > candidate {
                    candidate = doc;
                    continue 'candidates;
                }
            }
            return candidate;
        }
    }

    /// Whether every word matches `doc` (where all words stand) exactly, for a tier that
    /// leaves those out.
    fn excluded(&self, doc: DocId) -> bool {
        self.exclude_exact
            && self.words.iter().all(|word| {
                word.iter()
                    .any(|leaf| leaf.exact && leaf.scorer.doc() == doc)
            })
    }

    /// The score of `doc`, where all words stand: each word's best alternative, plus bonuses.
    fn score(&mut self, doc: DocId) -> Score {
        let words: Score = self
            .words
            .iter()
            .map(|word| {
                word.iter()
                    .filter(|leaf| leaf.scorer.doc() == doc)
                    .map(|leaf| leaf.score)
                    .fold(0.0, f32::max)
            })
            .sum();
        let bonuses: Score = self
            .bonuses
            .iter_mut()
            .filter_map(|leaf| (leaf.seek(doc) == doc).then_some(leaf.score))
            .sum();
        words + bonuses
    }
}

/// Early stopping must never change a page: `top` against a full ranking (every match scored
/// and sorted by tantivy's `TopDocs`) on an index with sorted, shuffled and merged segments and
/// deleted documents, for every kind of query and both tiers.
#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use tantivy::collector::{Count, TopDocs};
    use tantivy::schema::Value;
    use tantivy::{DocAddress, Score, SegmentReader};

    use super::{top, SegmentCache};
    use crate::db::people::PersonRow;
    use crate::domain::{PhoneKind, PhoneNormalizer};
    use crate::search::query::{plan, Filters, Tier};
    use crate::search::{indexer, OrderKeys, SearchIndex};

    const GIVEN: [&str; 10] = [
        "Jan", "Jane", "Janet", "Janusz", "Anna", "Ann", "José", "Smith", "Li", "Sören",
    ];
    const FAMILY: [&str; 10] = [
        "Smith", "Smithson", "Smyth", "Jansen", "Müller", "Mueller", "Li", "Schmidt", "Anders",
        "Kowalski",
    ];
    const PLACES: [&str; 3] = ["London", "Berlin", "Warsaw"];

    fn person(rng: &mut SmallRng, n: usize) -> PersonRow {
        let phones = PhoneNormalizer::new("GB").expect("region");
        let given = GIVEN[rng.random_range(0..GIVEN.len())];
        let family = FAMILY[rng.random_range(0..FAMILY.len())];
        let number = format!("+44 20 7946 {:04}", n % 10_000);
        PersonRow {
            id: uuid::Uuid::now_v7(),
            display_name: format!("{given} {family}"),
            given_name: Some(given.into()),
            family_name: Some(family.into()),
            nicknames: Vec::new(),
            title: Some(["Engineer", "Janitor", "Sales Lead"][n % 3].into()),
            department: Some(["Engineering", "Sales"][n % 2].into()),
            org_unit: None,
            location: Some(PLACES[n % 3].into()),
            manager_id: None,
            manager_name: None,
            phones: sqlx::types::Json(vec![phones
                .normalize(PhoneKind::Work, &number)
                .expect("phone")]),
            emails: vec![format!("{given}.{family}{n}@example.com").to_lowercase()],
            im: Vec::new(),
            photo_url: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            deleted_at: None,
            partner_sharing: None,
        }
    }

    /// Segments: two sorted, one shuffled, one merged from a sorted and a shuffled one; some
    /// people deleted.
    fn index(dir: &std::path::Path) -> SearchIndex {
        let index = SearchIndex::open(dir).expect("index");
        let fields = index.fields();
        let mut rng = SmallRng::seed_from_u64(7);
        let mut writer = index.index().writer(15_000_000).expect("writer");
        let mut n = 0;
        let mut batch = |size: usize, rng: &mut SmallRng| {
            let rows: Vec<PersonRow> = (0..size)
                .map(|_| {
                    n += 1;
                    person(rng, n)
                })
                .collect();
            rows
        };
        for (size, sorted) in [(800, true), (600, false), (500, true), (400, false)] {
            let mut rows = batch(size, &mut rng);
            if sorted {
                indexer::add_sorted(&mut writer, &fields, rows).expect("add");
            } else {
                rows.shuffle(&mut rng);
                for row in rows {
                    writer
                        .add_document(indexer::document(&fields, row))
                        .expect("add");
                }
            }
            writer.commit().expect("commit");
        }
        let segments = index.index().searchable_segment_ids().expect("segments");
        assert_eq!(segments.len(), 4);
        let mut merge = segments[2..].to_vec();
        merge.sort();
        writer.merge(&merge).wait().expect("merge");
        index.reload().expect("reload");
        // Delete every 7th person in the first segment.
        let searcher = index.index().reader().expect("reader").searcher();
        let first = &searcher.segment_readers()[0];
        let store = first.get_store_reader(0).expect("store");
        for doc in (0..first.max_doc()).step_by(7) {
            let stored: tantivy::TantivyDocument = store.get(doc).expect("doc");
            let summary: crate::domain::PersonSummary = serde_json::from_str(
                stored
                    .get_first(fields.doc)
                    .and_then(|v| v.as_str())
                    .expect("doc"),
            )
            .expect("summary");
            writer.delete_term(crate::search::id_term(&fields, &summary.id));
        }
        writer.commit().expect("commit");
        writer.wait_merging_threads().expect("merges");
        index.reload().expect("reload");
        index
    }

    fn reference(
        searcher: &tantivy::Searcher,
        tier: &Tier,
        k: usize,
    ) -> (Vec<(Score, DocAddress)>, usize) {
        let collector = TopDocs::with_limit(k).tweak_score(|segment: &SegmentReader| {
            let keys = OrderKeys::new(segment);
            move |doc, score: Score| (score, keys.get(doc))
        });
        let (docs, count) = searcher
            .search(tier.query().as_ref(), &(collector, Count))
            .expect("search");
        (
            docs.into_iter()
                .map(|((score, _), address)| (score, address))
                .collect(),
            count,
        )
    }

    #[test]
    fn early_stopping_never_changes_the_page() {
        let dir = tempfile::tempdir().expect("dir");
        let index = index(dir.path());
        let searcher = index.reader.searcher();
        let cache = SegmentCache::default();
        let starts: usize = searcher
            .segment_readers()
            .iter()
            .map(|s| cache.get(s).starts.len())
            .sum();
        assert!(
            starts > 100,
            "the shuffled segments make many runs: {starts}"
        );
        assert!(searcher.segment_readers().iter().any(|s| s.has_deletes()));
        let fields = index.fields();
        let queries = [
            "",
            "j",
            "ja",
            "jan",
            "jane",
            "jane s",
            "smith",
            "smi jan",
            "smith jane",
            "li",
            "eng",
            "sales",
            "london",
            "jans",
            "mueller",
            "müller",
            "jose",
            "+44 20 7946",
            "7946 01",
            "0018",
            "jonh",
            "smiht",
            "janet smyht",
            "schmidt",
            "sorn",
            "anders j",
        ];
        let mut compared = 0;
        let mut stopped = 0;
        for q in queries {
            for near in [None, Some("London")] {
                for filters in [
                    Filters::default(),
                    Filters {
                        department: Some("Sales".into()),
                        ..Filters::default()
                    },
                ] {
                    let planned = plan(q, &fields, &filters, near, &searcher);
                    for tier in std::iter::once(&planned.exact).chain(planned.wide.as_ref()) {
                        for k in [1, 5, 20, 100] {
                            let (expected, count) = reference(&searcher, tier, k);
                            let all = top(&searcher, tier, k, 1 << 20, &cache).expect("top");
                            assert_eq!(all.docs, expected, "{q:?} near {near:?} k {k}");
                            assert_eq!((all.total, all.total_exact), (count, true), "{q:?}");
                            // Counting only a little past the page: same page, total a bound.
                            let some = top(&searcher, tier, k, k + 1, &cache).expect("top");
                            assert_eq!(
                                some.docs, expected,
                                "{q:?} near {near:?} k {k}, capped count"
                            );
                            assert!(
                                some.total <= count && some.total >= count.min(k + 1),
                                "{q:?}"
                            );
                            if some.total_exact {
                                assert_eq!(some.total, count, "{q:?}");
                            } else {
                                assert!(some.total > k, "{q:?}: a lower bound past the page");
                                stopped += 1;
                            }
                            compared += usize::from(!expected.is_empty());
                        }
                    }
                }
            }
        }
        assert!(compared > 300, "most queries match someone: {compared}");
        assert!(stopped > 100, "searches stopped early: {stopped}");
    }

    #[test]
    fn large_totals_are_lower_bounds_unless_facets_count_everything() {
        let dir = tempfile::tempdir().expect("dir");
        let index = index(dir.path());
        let everyone = index.num_docs() as usize;
        assert!(everyone > crate::search::COUNT_TO);
        let listed = index.search("", 20, 0).expect("search");
        assert_eq!(listed.hits.len(), 20);
        assert!(!listed.total_exact);
        assert!((crate::search::COUNT_TO..everyone).contains(&listed.total));
        let request = crate::search::SearchRequest {
            limit: 20,
            facets: true,
            ..Default::default()
        };
        let counted = index.search_with(&request).expect("search");
        assert_eq!((counted.total, counted.total_exact), (everyone, true));
        assert_eq!(
            counted.hits.iter().map(|h| h.id).collect::<Vec<_>>(),
            listed.hits.iter().map(|h| h.id).collect::<Vec<_>>()
        );
        // A page far down still knows whether another follows.
        let deep = index.search("", 20, 1500).expect("search");
        assert_eq!(deep.hits.len(), 20);
        assert!(deep.total > 1520, "{}", deep.total);
    }
}
