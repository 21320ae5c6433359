//! Vector indexes over the rows of one segment.
//!
//! An index sees a segment as contiguous row-major `f32` rows addressed by a `u32` offset and
//! knows nothing of ids, payloads or files: the engine passes an `accept` predicate over
//! offsets (deleted rows, later filters) and maps offsets back to points. Scores are always
//! "higher is better" ([`Metric::score`]); the engine converts to user-facing distances.

mod eigen;
pub mod flat;
pub mod hnsw;
mod huge;
pub mod leanvec;
pub mod lvq;
pub mod lvq4;
mod metric;
pub mod multi;
pub mod sparse;

pub use metric::Metric;

/// The little-endian `u32` at byte `at` of a code file's bytes, or an error naming the byte
/// (the header reader of every `from_bytes` here).
pub(crate) fn word_at(bytes: &[u8], at: usize) -> Result<u32, String> {
    at.checked_add(4)
        .and_then(|end| bytes.get(at..end))
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| format!("truncated at byte {at}"))
}

/// The most rows an index holds: rows are addressed by `u32` offsets, and `u32::MAX` itself
/// stays free (the HNSW format writes it for "no entry point").
pub const MAX_ROWS: usize = u32::MAX as usize;

/// Why an index cannot be built over the given rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// More rows than [`MAX_ROWS`].
    #[error("{rows} rows are more than the {max} an index addresses with u32 offsets")]
    TooManyRows { rows: usize, max: usize },
    /// An HNSW graph whose upper-level link blocks outnumber the `u32` block offsets of its
    /// format (only near [`MAX_ROWS`] rows with a small `m`).
    #[error(
        "the graph needs {blocks} upper-level link blocks, more than the {max} its format addresses"
    )]
    TooManyLinkBlocks { blocks: usize, max: usize },
}

/// The number of `dim`-wide rows in `len` floats (0 when `dim` is 0), if an index can
/// address them all.
pub(crate) fn row_count(len: usize, dim: usize) -> Result<u32, Error> {
    let rows = len.checked_div(dim).unwrap_or(0);
    u32::try_from(rows).map_err(|_| Error::TooManyRows {
        rows,
        max: MAX_ROWS,
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_counts_past_u32_offsets_are_refused() {
        assert_eq!(row_count(7, 0), Ok(0));
        assert_eq!(row_count(7, 3), Ok(2));
        assert_eq!(row_count(MAX_ROWS * 3 + 2, 3), Ok(u32::MAX));
        assert_eq!(
            row_count((MAX_ROWS + 1) * 3, 3),
            Err(Error::TooManyRows {
                rows: MAX_ROWS + 1,
                max: MAX_ROWS
            })
        );
    }
}
