//! Sparse vectors: inverted indexes over one segment's rows, searched exactly by dot product.
//!
//! A sparse vector is a list of `(term, weight)` pairs with distinct `u32` terms (SPLADE or
//! BM25 output, learned impacts). The score of a row for a query is the dot product over the
//! terms both share; rows sharing no term with the query are not candidates (as in Qdrant).
//!
//! - [`postings`]: in-memory postings, appended row by row (the mutable segment, and the
//!   builder of a sealed index), searched term at a time.
//! - [`format`]: the sealed index's bytes (doc-ordered postings in blocks of [`BLOCK`] rows,
//!   offsets delta-coded and bit-packed, weights exact `f32`, each block's maximum and minimum
//!   weight), encoded from [`postings::Postings`] and read in place from a mapped file.
//! - [`maxscore`]: exact top-k over the sealed index with block-max MaxScore: lists whose
//!   bound cannot lift a row into the top-k only score rows found in the others, and a row's
//!   bound is tightened with the block maxima before any of those lists is decoded.
//!
//! - [`bm25`]: the BM25 [`Weighting`], which turns a stored term count into its saturated,
//!   length-normalised value at query time, so that the collection's statistics of the
//!   moment (average length) are used without rewriting any posting.
//!
//! Like the rest of this crate: no I/O, rows are `u32` offsets, `accept(offset)` decides which
//! rows may be returned (deleted rows, filters).

pub mod bm25;
pub mod format;
pub mod maxscore;
pub mod postings;

/// Postings per block of a sealed index: a block is decoded as a whole (its offsets unpacked
/// into a stack buffer) or skipped as a whole on its bounds. 128 is tantivy's and Lucene's
/// block size; not measured here yet.
pub const BLOCK: usize = 128;

/// One query term: the term and its weight, already multiplied by its IDF when the vector
/// has that modifier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryTerm {
    pub term: u32,
    pub weight: f32,
}

/// How a posting's stored weight becomes the value its query term's weight multiplies.
/// Searches are generic over it: [`Dot`] for plain sparse vectors, [`bm25::Bm25`] for BM25.
pub trait Weighting {
    /// The value of a posting with stored weight `w` at row `row`.
    fn value(&self, w: f32, row: u32) -> f64;
    /// Bounds `[lo, hi]` of [`Weighting::value`] over stored weights in `[min, max]`, at any
    /// row: what block-max MaxScore skips on, so `hi` must never be below a true value.
    fn range(&self, min: f32, max: f32) -> (f64, f64);
}

/// The stored weight as it is: the score is the dot product.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dot;

impl Weighting for Dot {
    #[inline]
    fn value(&self, w: f32, _row: u32) -> f64 {
        f64::from(w)
    }

    fn range(&self, min: f32, max: f32) -> (f64, f64) {
        (f64::from(min), f64::from(max))
    }
}

/// The most a posting valued in `[lo, hi]` can add to a score for query weight `q`, and
/// never less than 0: a row not in the list gets 0 from it.
#[inline]
pub(crate) fn bound(q: f32, (lo, hi): (f64, f64)) -> f64 {
    let q = f64::from(q);
    (q * lo).max(q * hi).max(0.0)
}

#[cfg(test)]
pub(crate) mod reference {
    //! Brute force: every row's dot product with the query, for tests.
    use super::QueryTerm;
    use std::collections::HashMap;

    /// `(score, row)` of every accepted row sharing a term with the query, best first, ties
    /// by lower row; scores summed in f64.
    pub fn top_k(
        rows: &[Vec<(u32, f32)>],
        query: &[QueryTerm],
        k: usize,
        accept: impl Fn(u32) -> bool,
    ) -> Vec<(f64, u32)> {
        let q: HashMap<u32, f32> = query.iter().map(|t| (t.term, t.weight)).collect();
        let mut all: Vec<(f64, u32)> = Vec::new();
        for (r, row) in (0u32..).zip(rows) {
            if !accept(r) {
                continue;
            }
            let mut shared = false;
            let mut s = 0.0f64;
            for (t, w) in row {
                if let Some(&qw) = q.get(t) {
                    shared = true;
                    s += f64::from(qw) * f64::from(*w);
                }
            }
            if shared {
                all.push((s, r));
            }
        }
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        all.truncate(k);
        all
    }
}
