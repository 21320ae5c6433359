//! Vector indexes over the rows of one segment.
//!
//! An index sees a segment as contiguous row-major `f32` rows addressed by a `u32` offset and
//! knows nothing of ids, payloads or files: the engine passes an `accept` predicate over
//! offsets (deleted rows, later filters) and maps offsets back to points. Scores are always
//! "higher is better" ([`Metric::score`]); the engine converts to user-facing distances.

pub mod flat;
pub mod hnsw;
mod huge;
pub mod lvq;
mod metric;

pub use metric::Metric;

/// One result of a search inside a segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Higher is better (see [`Metric`]).
    pub score: f32,
    pub offset: u32,
}

/// Cost counters of one search, for `dist_per_query` in benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchStats {
    pub distance_computations: u64,
}

impl SearchStats {
    pub fn add(&mut self, other: SearchStats) {
        self.distance_computations += other.distance_computations;
    }
}

/// Orders scores best first as IEEE numbers do (−0 ties with +0, as in `TopK`), with a total
/// order so sorting cannot panic. Ties are left to the caller's next key.
#[inline]
pub fn best_first(a: f32, b: f32) -> std::cmp::Ordering {
    // Adding +0.0 turns −0.0 into +0.0 and changes nothing else.
    (b + 0.0).total_cmp(&(a + 0.0))
}
