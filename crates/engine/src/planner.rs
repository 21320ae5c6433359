//! Filtered reads of one segment: which rows pass a filter, and how a filtered search runs.
//!
//! Per segment the planner evaluates the filter on the segment's payload field indexes
//! (`quiver_filter::evaluate`): rows that surely match, rows to check per point on their
//! payload, and the rest. The filtered search then picks a strategy:
//! - **scan** of the candidate rows only, when the segment has no graph or the candidates
//!   are few ([`scan_threshold`]; [`Strategy::choose`] decides for search and `explain`): exactly on the `f32` rows, or for sets of at least
//!   [`CODE_SCAN_MIN_ROWS`] on the graph's LVQ codes with the best re-scored as a graph
//!   search on them re-scores (`max(2k, 10)` for LVQ-8, at least `ef` for LVQ-4 and LVQ-4x8);
//! - **graph** search with the filter as its `accept` predicate otherwise: rejected nodes are
//!   traversed (the graph stays navigable) but never returned, and the search goes on until it
//!   holds `ef` accepted nodes. A graph search that returns fewer than `k` hits is completed
//!   by the scan, so a search returns `min(k, matching points)` results.
//!
//! Nothing is post-filtered: every strategy applies the filter before a result enters a
//! top-k list.

use crate::segment::{Segment, View};
use quiver_filter::{
    Evaluation, FieldIndexes, Filter, IndexKind as FieldKind, KeyPath, RowIds, Verdict, evaluate,
};
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
    /// finds fewer than k).
    Graph,
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
            return Strategy::Graph;
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
                "scan of the candidates on LVQ-8 codes, best re-scored ({}; {candidates} >= {CODE_SCAN_MIN_ROWS} candidates)",
                why(w)
            ),
            Strategy::Graph => format!(
                "graph search, filter checked during traversal ({candidates} candidates > scan threshold)"
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

/// Candidate sets at least this large are scanned on the graph's LVQ-8 codes (when it has
/// them), smaller ones on the f32 rows. On WordNet (one thread, 2026-11-27): 4,076 candidates
/// scanned at 86 ns per row on f32 and 107 on codes; 11,679 at 181 and 79 — scattered reads of
/// the mapped f32 rows miss the TLB once the set is large, the codes sit on huge pages.
pub(crate) const CODE_SCAN_MIN_ROWS: u64 = 8_000;

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

    /// Live rows that pass, ascending.
    pub fn passing(&self) -> impl Iterator<Item = u32> + '_ {
        self.eval
            .candidates()
            .into_iter()
            .filter(move |&r| self.accepts(r))
    }
}
