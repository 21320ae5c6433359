//! Filtered reads of one segment: which rows pass a filter, and how a filtered search runs.
//!
//! Per segment the planner evaluates the filter on the segment's payload field indexes
//! (`quiver_filter::evaluate`): rows that surely match, rows to check per point on their
//! payload, and the rest. The filtered search then picks a strategy:
//! - **scan** of the candidate rows only, when the segment has no graph or the candidates
//!   are few ([`scan_threshold`]; [`Strategy::choose`] decides for search and `explain`): exactly on the `f32` rows, or for sets of at least
//!   [`CODE_SCAN_MIN_ROWS`] on the graph's LVQ codes with the best re-scored as a graph
//!   search on them re-scores (`max(2k, 10)` for LVQ-8, at least `ef` for LVQ-4 and LVQ-4x8);
//! - **graph** search with the filter as its `accept` predicate otherwise, going on until it
//!   holds `ef` accepted nodes. When most rows may pass, rejected nodes are scored and
//!   traversed (the graph stays navigable) but never returned; when at most
//!   [`TWO_HOP_FRACTION`] may, they are stepped over to their passing neighbours without being
//!   scored (two hops, as in ACORN), so distance computations go to rows that can be returned.
//!   A graph search that returns fewer than `k` hits is completed
//!   by the scan, so a search returns `min(k, matching points)` results.
//!
//! Nothing is post-filtered: every strategy applies the filter before a result enters a
//! top-k list.

use crate::segment::{Segment, View};
use quiver_filter::{
    Evaluation, FieldIndexes, Filter, IndexKind as FieldKind, KeyPath, RowIds, Verdict,
    dense_words, evaluate,
};
use quiver_index::hnsw::Traversal;
use quiver_storage::PointId;
use quiver_storage::segment::{self as segfiles, SegmentFiles};
use std::collections::BTreeMap;

/// A segment's payload as a JSON object (empty when it has none). Payload bytes were produced
/// by serde_json from a map and are checksummed on disk, so an error means damage or a bug:
/// callers report it (reads) or log it (filter checks, where the point then does not match).
pub(crate) fn parse_payload(bytes: &[u8]) -> Result<crate::Payload, String> {
    if bytes.is_empty() {
        return Ok(crate::Payload::new());
    }
    serde_json::from_slice(bytes).map_err(|e| format!("stored payload is not a JSON object: {e}"))
}

/// [`parse_payload`] for filter checks and index builds: a payload that does not parse is
/// logged and treated as empty (it matches no condition on its fields).
pub(crate) fn payload_or_empty(id: PointId, bytes: &[u8]) -> crate::Payload {
    parse_payload(bytes).unwrap_or_else(|e| {
        log::error!("point {id}: {e}");
        crate::Payload::new()
    })
}

/// Builds the declared field indexes over a sealed segment's rows (one pass, every row,
/// deleted ones too: rows are addressed by offset).
pub(crate) fn build_fields(
    declared: &BTreeMap<String, FieldKind>,
    files: &SegmentFiles,
) -> FieldIndexes {
    let fields: Vec<(KeyPath, FieldKind)> = declared
        .iter()
        .filter_map(|(k, kind)| KeyPath::parse(k).ok().map(|p| (p, *kind)))
        .collect();
    if fields.is_empty() {
        return FieldIndexes::new();
    }
    let payloads: Vec<crate::Payload> = (0..files.rows)
        .map(|r| {
            let id = files.ids.get(r).copied().unwrap_or(PointId::Num(0));
            payload_or_empty(id, files.payload(r))
        })
        .collect();
    FieldIndexes::build(&fields, (0u32..).zip(payloads.iter()))
}

/// Reads a sealed segment's `fields` file and completes it: indexes not declared are left
/// out, declared ones missing from the file (declared later, or the file is absent or
/// unreadable: it is derived data) are built from the payloads.
pub(crate) fn load_fields(
    files: &SegmentFiles,
    declared: &BTreeMap<String, FieldKind>,
) -> FieldIndexes {
    let (dir, rows) = (files.dir.as_path(), files.rows);
    let mut have = FieldIndexes::new();
    if dir.join(segfiles::FIELDS_FILE).exists() {
        let read = segfiles::read_index_file(dir, segfiles::FIELDS_FILE, segfiles::FIELDS_KIND)
            .map_err(|e| e.to_string())
            .and_then(|(h, body)| {
                if h.meta[0] != rows as u64 {
                    return Err(format!("covers {} rows, the segment has {rows}", h.meta[0]));
                }
                FieldIndexes::decode(&body).map_err(|e| e.to_string())
            });
        match read {
            Ok(f) => have = f,
            Err(e) => log::warn!(
                "{}: field indexes not usable ({e}); rebuilding them from the payloads",
                dir.join(segfiles::FIELDS_FILE).display()
            ),
        }
    }
    let mut out = FieldIndexes::new();
    let mut missing = BTreeMap::new();
    for (key, kind) in declared {
        match have.remove(key) {
            Some(index) if index.kind() == *kind && index.rows() as usize == rows => {
                out.insert(index);
            }
            _ => {
                missing.insert(key.clone(), *kind);
            }
        }
    }
    if !missing.is_empty() {
        for index in build_fields(&missing, files).iter() {
            out.insert(index.clone());
        }
    }
    out
}

/// How one segment answers a filtered search for one vector: chosen by [`Strategy::choose`]
/// for both the search and `explain`, so the two never disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Score every candidate row exactly on the `f32` rows.
    ScanRows { why: ScanReason },
    /// Score every candidate on the graph's LVQ codes, re-score the best on the `f32` rows
    /// (or, for LVQ-4x8, on its residual codes).
    ScanCodes { why: ScanReason },
    /// Graph search with the filter checked during traversal (completed by a scan when it
    /// finds fewer than k); rejected nodes scored and traversed, or stepped over
    /// ([`Traversal::TwoHop`]) when at most [`TWO_HOP_FRACTION`] of the rows may pass.
    Graph { traversal: Traversal },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanReason {
    /// The segment has no graph for the vector.
    NoGraph,
    /// At most `threshold` candidates: cheaper than the graph.
    Few { threshold: u64 },
}

impl Strategy {
    /// `has_graph`/`has_codes`: what the segment has for the vector; `candidates`: rows that
    /// may pass; `rows`: the segment's rows; `fraction`: `filter_scan_fraction`.
    pub fn choose(
        has_graph: bool,
        has_codes: bool,
        candidates: u64,
        rows: u64,
        fraction: f64,
    ) -> Strategy {
        let threshold = scan_threshold(rows, fraction);
        let why = if !has_graph {
            ScanReason::NoGraph
        } else if candidates <= threshold {
            ScanReason::Few { threshold }
        } else {
            let traversal = if (candidates as f64) <= rows as f64 * TWO_HOP_FRACTION {
                Traversal::TwoHop
            } else {
                Traversal::Through
            };
            return Strategy::Graph { traversal };
        };
        if has_codes && candidates >= CODE_SCAN_MIN_ROWS {
            Strategy::ScanCodes { why }
        } else {
            Strategy::ScanRows { why }
        }
    }

    /// For `explain`.
    pub fn describe(&self, candidates: u64) -> String {
        let why = |w: &ScanReason| match w {
            ScanReason::NoGraph => "no graph".to_string(),
            ScanReason::Few { threshold } => {
                format!("{candidates} candidates <= scan threshold {threshold}")
            }
        };
        match self {
            Strategy::ScanRows { why: w } => {
                format!("scan of the candidates on f32 rows ({})", why(w))
            }
            Strategy::ScanCodes { why: w } => format!(
                "scan of the candidates on LVQ codes, best re-scored ({}; {candidates} >= {CODE_SCAN_MIN_ROWS} candidates)",
                why(w)
            ),
            Strategy::Graph {
                traversal: Traversal::Through,
            } => format!(
                "graph search, filter checked during traversal ({candidates} candidates > scan threshold; > {TWO_HOP_FRACTION} of the rows, so rejected nodes are scored and traversed)"
            ),
            Strategy::Graph {
                traversal: Traversal::TwoHop,
            } => format!(
                "graph search, rejected nodes stepped over to their passing neighbours ({candidates} candidates > scan threshold; <= {TWO_HOP_FRACTION} of the rows)"
            ),
        }
    }
}

/// Candidate counts at or below which a segment of `rows` rows is scanned, not searched by
/// graph: `fraction` of its rows ([`crate::CollectionConfig`]'s `filter_scan_fraction`), and
/// never below [`EXACT_FLOOR`].
pub(crate) fn scan_threshold(rows: u64, fraction: f64) -> u64 {
    EXACT_FLOOR.max((rows as f64 * fraction) as u64)
}

/// Candidate counts up to this are always scanned: an unfiltered graph search
/// (m = 16, ef = 64) costs about as many distance computations.
const EXACT_FLOOR: u64 = 1000;

/// Graph searches whose candidates are at most this fraction of the segment's rows step over
/// rejected nodes instead of scoring them ([`Traversal::TwoHop`]). On WordNet (m = 16,
/// ef = 64, 2026-12-03): at 15 % of the rows, 1,753 distances per query instead of 5,774
/// (recall 0.973 instead of 0.992); at 28 %, 2,074 instead of 3,198; at 48 %, no fewer
/// (2,178 against 2,130) and a lower recall, so such filters keep scoring rejected nodes.
pub(crate) const TWO_HOP_FRACTION: f64 = 0.35;

/// A graph search tests the filter on rows as one bit each ([`RowFilter::passing_bits`]) when
/// at most this many rows need their payload checked (all of them then are, up front);
/// otherwise rows are tested as the search reaches them.
pub(crate) const EAGER_CHECKS: u64 = 1_000;

/// Candidate sets at least this large are scanned on the graph's LVQ codes (when it has
/// them), smaller ones on the f32 rows. On WordNet (one thread): on 2026-11-27, with AVX2 code
/// kernels, 4,076 candidates scanned at 86 ns per row on f32 and 107 on codes, 11,679 at 181
/// and 79 (scattered reads of the mapped f32 rows miss the TLB once the set is large; the
/// codes sit on huge pages), so the threshold was 8,000. On 2026-12-03, with the AVX-512 VNNI
/// code kernels, codes won from 1,415 rows on: 1,415 candidates at 6,204 and 8,145 queries/s
/// on f32 against 11,943 and 11,949 on codes, 4,076 at 2,484 and 3,169 against 4,591 and
/// 4,702 (two alternating runs each, recall 1.000 both ways).
pub(crate) const CODE_SCAN_MIN_ROWS: u64 = 1_000;

/// Rows of a segment that pass a filter, one bit each ([`RowFilter::passing_bits`]).
pub(crate) struct PassingBits(Vec<u64>);

impl PassingBits {
    #[inline]
    pub fn contains(&self, row: u32) -> bool {
        self.0
            .get(row as usize / 64)
            .is_some_and(|w| w & (1 << (row % 64)) != 0)
    }
}

/// A filter evaluated on one segment view: answers "does row `r` pass" for live rows.
pub(crate) struct RowFilter<'a, 'v> {
    pub filter: &'a Filter,
    pub eval: Evaluation,
    view: &'a View<'v>,
}

impl<'a, 'v> RowFilter<'a, 'v> {
    pub fn new(filter: &'a Filter, seg: &Segment, view: &'a View<'v>) -> RowFilter<'a, 'v> {
        let fields = seg.fields();
        let eval = evaluate(filter, &fields, view.rows() as u32, RowIds::Slice(view.ids));
        RowFilter { filter, eval, view }
    }

    /// Rows that may pass: `matched + unsure` (deleted ones included).
    pub fn candidate_count(&self) -> u64 {
        self.eval.matched.len() + self.eval.unsure.len()
    }

    /// Whether row `row` is live and passes the filter.
    pub fn accepts(&self, row: u32) -> bool {
        if self.view.deleted.is_deleted(row) {
            return false;
        }
        match self.eval.verdict(row) {
            Verdict::Match => true,
            Verdict::NoMatch => false,
            Verdict::Check => self.view.ids.get(row as usize).is_some_and(|id| {
                self.filter
                    .matches(*id, &payload_or_empty(*id, self.view.payload(row)))
            }),
        }
    }

    /// The live rows that pass as one bit each, rows to check on their payload checked now. A
    /// graph search then tests a bit instead of two bitmap lookups and a deletion check: on
    /// WordNet those were 31 % of a two-hop search, which tests every rejected neighbour's
    /// neighbours. Costs a copy of the bitmap's words (about 2,000 for 117k rows).
    pub fn passing_bits(&self) -> PassingBits {
        let mut words = dense_words(&self.eval.matched, self.view.rows());
        self.view.deleted.remove_deleted(&mut words);
        for row in self.eval.unsure.iter() {
            if self.accepts(row)
                && let Some(w) = words.get_mut(row as usize / 64)
            {
                *w |= 1 << (row % 64);
            }
        }
        PassingBits(words)
    }

    /// Live rows that pass, ascending.
    pub fn passing(&self) -> impl Iterator<Item = u32> + '_ {
        self.eval
            .candidates()
            .into_iter()
            .filter(move |&r| self.accepts(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_follows_the_candidate_fraction() {
        let rows = 100_000;
        let choose = |candidates| Strategy::choose(true, true, candidates, rows, 0.1);
        assert_eq!(
            choose(900),
            Strategy::ScanRows {
                why: ScanReason::Few { threshold: 10_000 }
            }
        );
        assert_eq!(
            choose(10_000),
            Strategy::ScanCodes {
                why: ScanReason::Few { threshold: 10_000 }
            }
        );
        let two_hop = Strategy::Graph {
            traversal: Traversal::TwoHop,
        };
        let through = Strategy::Graph {
            traversal: Traversal::Through,
        };
        assert_eq!(choose(10_001), two_hop);
        assert_eq!(choose(35_000), two_hop);
        assert_eq!(choose(35_001), through);
        assert_eq!(choose(rows), through);
        assert!(two_hop.describe(20_000).contains("stepped over"));
        assert!(through.describe(50_000).contains("scored and traversed"));
        assert_eq!(
            Strategy::choose(false, false, 50_000, rows, 0.1),
            Strategy::ScanRows {
                why: ScanReason::NoGraph
            }
        );
    }
}
