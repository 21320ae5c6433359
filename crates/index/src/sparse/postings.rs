//! In-memory postings: per term, the rows holding it and their weights, in row order.
//!
//! The mutable segment keeps one per sparse vector and appends each new row; a seal encodes
//! one ([`crate::sparse::format::encode`]). Searched term at a time into a score per row:
//! the mutable segment is small (a seal threshold) and has no blocks to skip with.

use super::{Dot, QueryTerm, Weighting};
use crate::{Hit, SearchStats};
use quiver_kernels::TopK;
use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct Postings {
    lists: HashMap<u32, Vec<(u32, f32)>>,
    postings: usize,
}

impl Postings {
    pub fn new() -> Postings {
        Postings::default()
    }

    /// Adds row `row`'s terms and weights (`terms` distinct). Rows are added in ascending
    /// order, so every list stays sorted by row.
    pub fn push(&mut self, row: u32, terms: &[u32], weights: &[f32]) {
        for (&t, &w) in terms.iter().zip(weights) {
            self.lists.entry(t).or_default().push((row, w));
            self.postings += 1;
        }
    }

    /// The rows holding `term` and their weights, ascending by row.
    pub fn list(&self, term: u32) -> &[(u32, f32)] {
        self.lists.get(&term).map_or(&[], Vec::as_slice)
    }

    /// Postings held (the sum of every row's number of terms).
    pub fn len(&self) -> usize {
        self.postings
    }

    pub fn is_empty(&self) -> bool {
        self.postings == 0
    }

    /// The terms in ascending order with their lists (for encoding).
    pub fn sorted(&self) -> Vec<(u32, &[(u32, f32)])> {
        let mut terms: Vec<(u32, &[(u32, f32)])> =
            self.lists.iter().map(|(&t, l)| (t, l.as_slice())).collect();
        terms.sort_unstable_by_key(|&(t, _)| t);
        terms
    }

    /// Rows below `rows` holding `term` that `live` accepts (for document frequencies).
    pub fn count(&self, term: u32, rows: u32, live: impl Fn(u32) -> bool) -> u64 {
        let list = self.list(term);
        let list = &list[..list.partition_point(|&(r, _)| r < rows)];
        list.iter().filter(|&&(r, _)| live(r)).count() as u64
    }

    /// The `k` best accepted rows below `rows` sharing a term with the query, best first
    /// (ties: lower row first). Scores are summed in f64 and returned as f32.
    /// `distance_computations` counts the postings read.
    pub fn search(
        &self,
        query: &[QueryTerm],
        rows: u32,
        k: usize,
        accept: impl Fn(u32) -> bool,
    ) -> (Vec<Hit>, SearchStats) {
        self.search_weighted(query, rows, k, &Dot, accept)
    }

    /// As [`Postings::search`], each posting's weight turned into its value by `weighting`.
    pub fn search_weighted<W: Weighting>(
        &self,
        query: &[QueryTerm],
        rows: u32,
        k: usize,
        weighting: &W,
        accept: impl Fn(u32) -> bool,
    ) -> (Vec<Hit>, SearchStats) {
        let mut stats = SearchStats::default();
        if k == 0 {
            return (Vec::new(), stats);
        }
        let mut scores: HashMap<u32, f64> = HashMap::new();
        for q in query {
            let list = self.list(q.term);
            let list = &list[..list.partition_point(|&(r, _)| r < rows)];
            stats.distance_computations += list.len() as u64;
            for &(r, w) in list {
                *scores.entry(r).or_default() += f64::from(q.weight) * weighting.value(w, r);
            }
        }
        let mut top = TopK::new(k);
        for (r, s) in scores {
            if accept(r) {
                top.push(s as f32, u64::from(r));
            }
        }
        let hits = top
            .into_sorted_vec()
            .into_iter()
            .map(|(score, offset)| Hit {
                score,
                // Pushed from `u32` rows.
                offset: offset as u32,
            })
            .collect();
        (hits, stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::reference;

    #[test]
    fn term_at_a_time_matches_brute_force() {
        let rows: Vec<Vec<(u32, f32)>> = vec![
            vec![(1, 0.5), (7, 2.0)],
            vec![(7, -1.0)],
            vec![(3, 1.0)],
            vec![(1, 1.0), (3, 0.25), (7, 0.5)],
        ];
        let mut p = Postings::new();
        for (r, row) in (0u32..).zip(&rows) {
            let (t, w): (Vec<u32>, Vec<f32>) = row.iter().copied().unzip();
            p.push(r, &t, &w);
        }
        assert_eq!(p.len(), 7);
        let query = [
            QueryTerm {
                term: 7,
                weight: 1.0,
            },
            QueryTerm {
                term: 1,
                weight: 2.0,
            },
        ];
        let accept = |r: u32| r != 0;
        let (hits, _) = p.search(&query, 4, 10, accept);
        let want = reference::top_k(&rows, &query, 10, accept);
        let got: Vec<(f64, u32)> = hits
            .iter()
            .map(|h| (f64::from(h.score), h.offset))
            .collect();
        assert_eq!(got, want);
        // Row 2 shares no term: not a candidate. Rows at or past `rows` are not seen.
        assert!(hits.iter().all(|h| h.offset != 2));
        let (hits, _) = p.search(&query, 2, 10, |_| true);
        assert_eq!(
            hits.iter().map(|h| h.offset).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(p.count(7, 4, |r| r != 1), 2);
    }
}
