//! Facet counts over every match of a search: how many of them are in each department,
//! location and organisation unit, how many can be reached by IM and how many are available now. Read from fast fields by
//! term ordinal, so a segment's count is an array increment per document and field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};
use utoipa::ToSchema;

/// The string facets, in the order of `Facets`' lists.
const FIELDS: [&str; 3] = ["department", "location", "org_unit"];

/// One value of a facet and how many matches have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

/// Counts over all matches (not just the page), most frequent value first, then by value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Facets {
    pub department: Vec<FacetCount>,
    pub location: Vec<FacetCount>,
    pub org_unit: Vec<FacetCount>,
    /// Matches that can be reached by IM (have at least one IM handle).
    pub has_presence: u64,
    /// Matches available right now (live presence).
    #[serde(default)]
    pub available: u64,
}

/// Counts facets, and who is available now by `live`.
pub struct FacetCollector {
    pub live: super::live::Available,
}

pub struct FacetSegment {
    columns: Vec<Option<StrColumn>>,
    counts: Vec<Vec<u64>>,
    presence: Option<Column<u64>>,
    has_presence: u64,
    live: std::sync::Arc<tantivy_common::BitSet>,
    available: u64,
}

type Counts = ([BTreeMap<String, u64>; 3], u64, u64);

impl Collector for FacetCollector {
    type Fruit = Facets;
    type Child = FacetSegment;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<FacetSegment> {
        let ff = segment.fast_fields();
        let mut columns = Vec::new();
        let mut counts = Vec::new();
        for name in FIELDS {
            let column = ff.str(name)?;
            counts.push(vec![0; column.as_ref().map_or(0, |c| c.num_terms())]);
            columns.push(column);
        }
        Ok(FacetSegment {
            columns,
            counts,
            presence: ff.u64("has_presence").ok(),
            has_presence: 0,
            live: self.live.segment(segment, true),
            available: 0,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Counts>) -> tantivy::Result<Facets> {
        let mut merged: [BTreeMap<String, u64>; 3] = Default::default();
        let (mut has_presence, mut available) = (0, 0);
        for (maps, presence, live) in fruits {
            has_presence += presence;
            available += live;
            for (into, from) in merged.iter_mut().zip(maps) {
                for (value, count) in from {
                    *into.entry(value).or_default() += count;
                }
            }
        }
        let [department, location, org_unit] = merged.map(|counts| {
            let mut list: Vec<FacetCount> = counts
                .into_iter()
                .map(|(value, count)| FacetCount { value, count })
                .collect();
            list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            list
        });
        Ok(Facets {
            department,
            location,
            org_unit,
            has_presence,
            available,
        })
    }
}

impl SegmentCollector for FacetSegment {
    type Fruit = Counts;

    fn collect(&mut self, doc: DocId, _: Score) {
        for (column, counts) in self.columns.iter().zip(self.counts.iter_mut()) {
            if let Some(column) = column {
                for ord in column.term_ords(doc) {
                    if let Some(slot) = counts.get_mut(ord as usize) {
                        *slot += 1;
                    }
                }
            }
        }
        if let Some(presence) = &self.presence {
            self.has_presence += presence.first(doc).unwrap_or(0);
        }
        if doc < self.live.max_value() && self.live.contains(doc) {
            self.available += 1;
        }
    }

    fn harvest(self) -> Counts {
        let mut maps: [BTreeMap<String, u64>; 3] = Default::default();
        for ((column, counts), map) in self.columns.iter().zip(self.counts).zip(maps.iter_mut()) {
            let Some(column) = column else { continue };
            let mut value = String::new();
            for (ord, count) in counts.into_iter().enumerate() {
                value.clear();
                if count > 0 && column.ord_to_str(ord as u64, &mut value).unwrap_or(false) {
                    map.insert(value.clone(), count);
                }
            }
        }
        (maps, self.has_presence, self.available)
    }
}
