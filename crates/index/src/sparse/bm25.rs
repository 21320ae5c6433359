//! BM25 as a [`Weighting`]: postings store a term's count in the row (`tf`), and the value a
//! query term's weight (its IDF) multiplies is computed at query time,
//!
//! ```text
//! value(tf, dl) = tf · (k1 + 1) / (tf + k1 · (1 − b + b · dl / avgdl))
//! ```
//!
//! with `dl` the row's length (the sum of its counts) and `avgdl` the average length over the
//! collection's documents when the query runs. Nothing stored depends on `avgdl`, so inserts
//! and deletes elsewhere never rewrite a posting.
//!
//! Bounds for block-max MaxScore: `value` grows with `tf` and shrinks with `dl`, and a row's
//! length is at least each of its counts and at least the segment's shortest length, so a
//! posting with count at most `max` is worth at most `value(max, max(max, shortest))`, and
//! that bound itself grows with `max`. Scores stay exact; the bound is loose only by how much
//! the block's longest-count rows are longer than the shortest row.

use super::Weighting;

/// BM25's free parameters (Robertson's `k1` and `b`; 1.2 and 0.75 by default, as in Lucene,
/// tantivy and `bm25s`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25Params {
    /// Term-count saturation: 0 counts a term once however often it occurs.
    pub k1: f64,
    /// Length normalisation, 0 (none) to 1 (full).
    pub b: f64,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params { k1: 1.2, b: 0.75 }
    }
}

impl Bm25Params {
    /// `value(tf, dl)` of the module documentation; 0 when `tf` is 0. An `avgdl` of 0 (no
    /// document has a term) reads as 1: there is then no posting to score anyway.
    pub fn value(&self, tf: f64, dl: f64, avgdl: f64) -> f64 {
        let ratio = if avgdl > 0.0 { dl / avgdl } else { 1.0 };
        let denominator = tf + self.k1 * (1.0 - self.b + self.b * ratio);
        if denominator > 0.0 {
            tf * (self.k1 + 1.0) / denominator
        } else {
            0.0
        }
    }
}

/// BM25 over one segment: `length(row)` is the row's length, `shortest` the least length of
/// a row holding any term (any lower value is also correct, only looser).
pub struct Bm25<L: Fn(u32) -> f32> {
    params: Bm25Params,
    avgdl: f64,
    shortest: f64,
    length: L,
}

impl<L: Fn(u32) -> f32> Bm25<L> {
    pub fn new(params: Bm25Params, avgdl: f64, shortest: f32, length: L) -> Bm25<L> {
        Bm25 {
            params,
            avgdl,
            shortest: f64::from(shortest),
            length,
        }
    }
}

impl<L: Fn(u32) -> f32> Weighting for Bm25<L> {
    #[inline]
    fn value(&self, w: f32, row: u32) -> f64 {
        let dl = f64::from((self.length)(row));
        self.params.value(f64::from(w), dl, self.avgdl)
    }

    fn range(&self, _min: f32, max: f32) -> (f64, f64) {
        let max = f64::from(max.max(0.0));
        (
            0.0,
            self.params.value(max, max.max(self.shortest), self.avgdl),
        )
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sparse::QueryTerm;
    use crate::sparse::format::{PostingsView, encode};
    use crate::sparse::maxscore;
    use crate::sparse::postings::Postings;
    use proptest::prelude::*;

    /// Brute force: every accepted row's BM25 score, straight from the formula, best first,
    /// ties by lower row.
    fn reference(
        rows: &[Vec<(u32, f32)>],
        query: &[QueryTerm],
        params: Bm25Params,
        avgdl: f64,
        k: usize,
        accept: impl Fn(u32) -> bool,
    ) -> Vec<(f64, u32)> {
        let mut all = Vec::new();
        for (r, row) in (0u32..).zip(rows) {
            let dl: f64 = row.iter().map(|&(_, tf)| f64::from(tf)).sum();
            let mut score = 0.0;
            let mut shared = false;
            for q in query {
                if let Some(&(_, tf)) = row.iter().find(|(t, _)| *t == q.term) {
                    shared = true;
                    let tf = f64::from(tf);
                    let k1 = params.k1;
                    score += f64::from(q.weight) * tf * (k1 + 1.0)
                        / (tf + k1 * (1.0 - params.b + params.b * dl / avgdl));
                }
            }
            if shared && accept(r) {
                all.push((score, r));
            }
        }
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        all.truncate(k);
        all
    }

    /// Rows of term counts over a skewed vocabulary (low terms common), some long.
    fn rows_strategy() -> impl Strategy<Value = Vec<Vec<(u32, f32)>>> {
        proptest::collection::vec(
            proptest::collection::btree_map(
                (0u32..5).prop_flat_map(|scale| 0..(3u32 << (2 * scale))),
                (1u32..6).prop_map(|c| c as f32),
                0..16,
            )
            .prop_map(|m| m.into_iter().collect::<Vec<_>>()),
            0..1200,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Both searches (block-max MaxScore over the sealed form, term at a time over the
        /// in-memory one) return brute force's top-k, with the formula's scores.
        #[test]
        fn bm25_search_equals_brute_force(
            rows in rows_strategy(),
            query in proptest::collection::btree_map(
                (0u32..4).prop_flat_map(|scale| 0..(3u32 << (2 * scale))),
                0.0f32..4.0,
                1..6,
            ),
            k in 1usize..25,
            k1 in 0.0f64..3.0,
            b in 0.0f64..=1.0,
            avgdl in 1.0f64..20.0,
            deleted_seed in any::<u64>(),
        ) {
            let query: Vec<QueryTerm> =
                query.into_iter().map(|(term, weight)| QueryTerm { term, weight }).collect();
            let params = Bm25Params { k1, b };
            let lengths: Vec<f32> = rows.iter().map(|r| r.iter().map(|t| t.1).sum()).collect();
            let shortest = lengths.iter().copied().filter(|&l| l > 0.0).fold(f32::MAX, f32::min);
            let accept = |r: u32| (u64::from(r).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ deleted_seed) % 4 != 0;
            let mut p = Postings::new();
            for (r, row) in (0u32..).zip(&rows) {
                let (t, w): (Vec<u32>, Vec<f32>) = row.iter().copied().unzip();
                p.push(r, &t, &w);
            }
            let weighting = Bm25::new(params, avgdl, shortest, |r: u32| lengths[r as usize]);
            let bytes = encode(&p).unwrap();
            let view = PostingsView::new(&bytes).unwrap();
            let want = reference(&rows, &query, params, avgdl, k, accept);
            let (sealed, _) = maxscore::search_weighted(&view, &query, k, &weighting, accept);
            let (mutable, _) = p.search_weighted(&query, rows.len() as u32, k, &weighting, accept);
            for got in [sealed, mutable] {
                prop_assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(&want) {
                    let tol = 1e-5 * (1.0 + w.0.abs());
                    prop_assert!((f64::from(g.score) - w.0).abs() <= tol, "{} vs {}", g.score, w.0);
                    prop_assert!(accept(g.offset));
                }
            }
        }
    }

    /// The BM25 bounds still let block-max MaxScore skip: a term in every row (low IDF) and
    /// a rare one (high IDF); once the top 10 is full, rows holding only the common term are
    /// mostly never scored.
    #[test]
    fn bm25_bounds_still_skip_on_long_lists() {
        let rows: Vec<Vec<(u32, f32)>> = (0..20_000u32)
            .map(|r| {
                let mut row = vec![(1, 1.0 + (r % 3) as f32), (7, 2.0)];
                if r % 97 == 0 {
                    row.push((2, 1.0));
                }
                row
            })
            .collect();
        let lengths: Vec<f32> = rows.iter().map(|r| r.iter().map(|t| t.1).sum()).collect();
        let mut p = Postings::new();
        for (r, row) in (0u32..).zip(&rows) {
            let (t, w): (Vec<u32>, Vec<f32>) = row.iter().copied().unzip();
            p.push(r, &t, &w);
        }
        let bytes = encode(&p).unwrap();
        let view = PostingsView::new(&bytes).unwrap();
        let query = [
            QueryTerm {
                term: 1,
                weight: 0.05,
            },
            QueryTerm {
                term: 2,
                weight: 4.0,
            },
        ];
        let params = Bm25Params::default();
        let avgdl = f64::from(lengths.iter().sum::<f32>()) / lengths.len() as f64;
        let weighting = Bm25::new(params, avgdl, 3.0, |r: u32| lengths[r as usize]);
        let (hits, stats) = maxscore::search_weighted(&view, &query, 10, &weighting, |_| true);
        let want = reference(&rows, &query, params, avgdl, 10, |_| true);
        assert_eq!(hits.len(), 10);
        for (h, w) in hits.iter().zip(&want) {
            assert!((f64::from(h.score) - w.0).abs() <= 1e-5 * (1.0 + w.0));
        }
        assert!(
            stats.distance_computations < 1_000,
            "scored {} rows",
            stats.distance_computations
        );
    }

    #[test]
    fn value_saturates_and_normalises_length() {
        let p = Bm25Params::default();
        // At the average length the value is tf·2.2/(tf+1.2).
        assert!((p.value(1.0, 10.0, 10.0) - 1.0).abs() < 1e-12);
        assert!(p.value(2.0, 10.0, 10.0) > p.value(1.0, 10.0, 10.0));
        assert!(p.value(1.0, 5.0, 10.0) > p.value(1.0, 20.0, 10.0));
        assert!(p.value(1000.0, 10.0, 10.0) < p.k1 + 1.0);
        assert_eq!(p.value(0.0, 0.0, 0.0), 0.0);
        let binary = Bm25Params { k1: 0.0, b: 0.75 };
        assert_eq!(binary.value(3.0, 7.0, 2.0), 1.0);
    }
}
