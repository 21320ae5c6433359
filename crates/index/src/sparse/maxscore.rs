//! Exact top-k over a sealed sparse index with block-max MaxScore (Turtle & Flood's MaxScore;
//! the block bounds as in Ding & Suel's block-max WAND, applied to MaxScore as in PISA's
//! `block_max_maxscore`).
//!
//! Lists are ordered by their bound (the most one posting can add to a score). Once the
//! top-k is full with threshold θ, the lists whose bounds sum below θ are *non-essential*: a
//! row found only in them cannot enter, so candidates come from the essential lists alone.
//! A candidate's exact essential score plus the non-essential lists' *block* bounds at that
//! row (read from the block table, nothing decoded) must reach θ before its non-essential
//! lists are decoded, best bound first, stopping as soon as the rest cannot lift it to θ.
//! Blocks lying wholly before a target are skipped without decoding.
//!
//! Exact: a row is left out only when an upper bound of its score is below θ (bounds are
//! summed in f64 and widened by a relative 1e-9 so rounding cannot make them too small), and
//! rows are visited in ascending order, so a later row tying θ would lose the tie anyway.

use super::format::{BlockEntry, PostingsView, TermEntry};
use super::{BLOCK, Dot, QueryTerm, Weighting, bound};
use crate::{Hit, SearchStats};
use quiver_kernels::TopK;

/// No row: a cursor past its list's end. Rows are below `u32::MAX` (`crate::MAX_ROWS`).
const END: u32 = u32::MAX;

/// Widens a sum of bounds against rounding.
#[inline]
fn widen(x: f64) -> f64 {
    x + x.abs() * 1e-9
}

/// A position in one term's list.
struct Cursor<'v, 'a, W: Weighting> {
    view: &'v PostingsView<'a>,
    weighting: &'v W,
    q: f32,
    /// The most one of its postings adds to a score.
    ub: f64,
    /// The block the shallow pointer is at, its entry, and one past the term's last block.
    block: usize,
    entry: Option<BlockEntry>,
    end: usize,
    /// The block whose rows are in `rows` (its entry), and how many.
    decoded: Option<BlockEntry>,
    rows: [u32; BLOCK],
    n: usize,
    pos: usize,
    /// The current row; [`END`] when exhausted.
    doc: u32,
}

impl<'v, 'a, W: Weighting> Cursor<'v, 'a, W> {
    fn new(
        view: &'v PostingsView<'a>,
        weighting: &'v W,
        t: TermEntry,
        q: f32,
    ) -> Cursor<'v, 'a, W> {
        let block = t.first_block as usize;
        let mut c = Cursor {
            view,
            weighting,
            q,
            ub: bound(q, weighting.range(t.min, t.max)),
            block,
            entry: view.block_at(block),
            end: block.saturating_add(t.blocks as usize),
            decoded: None,
            rows: [0; BLOCK],
            n: 0,
            pos: 0,
            doc: END,
        };
        c.next_geq(0);
        c
    }

    fn exhaust(&mut self) {
        self.doc = END;
        self.block = self.end;
        self.entry = None;
    }

    /// Moves the block pointer to the first block whose last row is at least `target`,
    /// without decoding anything; its entry, or `None` past the list's end.
    fn shallow(&mut self, target: u32) -> Option<BlockEntry> {
        while self.block < self.end {
            let e = self.entry?;
            if e.last >= target {
                return Some(e);
            }
            self.block += 1;
            self.entry = self.view.block_at(self.block);
        }
        None
    }

    /// The most this list can add to row `target`'s score, from its block's bounds.
    fn block_bound(&mut self, target: u32) -> f64 {
        match self.shallow(target) {
            Some(e) if e.first <= target => bound(self.q, self.weighting.range(e.min, e.max)),
            _ => 0.0,
        }
    }

    /// Moves to the first row at or after `target`.
    fn next_geq(&mut self, target: u32) {
        if self.doc != END && self.doc >= target {
            return;
        }
        let Some(e) = self.shallow(target) else {
            return self.exhaust();
        };
        if self.decoded != Some(e) {
            // Verified at open; a block that does not decode ends the list.
            let Some(n) = self.view.decode_block(&e, &mut self.rows) else {
                return self.exhaust();
            };
            self.decoded = Some(e);
            self.n = n;
            self.pos = 0;
        }
        let rest = self.rows.get(self.pos..self.n).unwrap_or(&[]);
        self.pos += rest.partition_point(|&r| r < target);
        match self.rows.get(self.pos) {
            Some(&r) if self.pos < self.n => self.doc = r,
            _ => self.exhaust(),
        }
    }

    /// `q ×` the value of the weight at the current row, in f64.
    fn contribution(&self) -> f64 {
        let w = self
            .decoded
            .and_then(|e| self.view.weight(e.start + self.pos as u64))
            .unwrap_or(0.0);
        f64::from(self.q) * self.weighting.value(w, self.doc)
    }
}

/// The `k` best accepted rows sharing a term with the query, best first (ties: lower row
/// first), scores summed in f64 and returned as f32. `distance_computations` counts the
/// candidate rows scored.
pub fn search(
    view: &PostingsView<'_>,
    query: &[QueryTerm],
    k: usize,
    accept: impl Fn(u32) -> bool,
) -> (Vec<Hit>, SearchStats) {
    search_weighted(view, query, k, &Dot, accept)
}

/// As [`search`], each posting's weight turned into its value by `weighting` (the score of a
/// row is the sum over shared terms of the query weight times that value).
pub fn search_weighted<W: Weighting>(
    view: &PostingsView<'_>,
    query: &[QueryTerm],
    k: usize,
    weighting: &W,
    accept: impl Fn(u32) -> bool,
) -> (Vec<Hit>, SearchStats) {
    let mut stats = SearchStats::default();
    if k == 0 {
        return (Vec::new(), stats);
    }
    let mut cursors: Vec<Cursor<'_, '_, W>> = query
        .iter()
        .filter_map(|q| {
            view.term(q.term)
                .map(|t| Cursor::new(view, weighting, t, q.weight))
        })
        .collect();
    cursors.sort_by(|a, b| a.ub.total_cmp(&b.ub));
    // prefix[i]: bound of a row found only in lists 0..=i.
    let prefix: Vec<f64> = cursors
        .iter()
        .scan(0.0, |sum, c| {
            *sum += c.ub;
            Some(widen(*sum))
        })
        .collect();
    let mut block_bounds = vec![0.0f64; cursors.len()];
    let mut top = TopK::new(k);
    let mut essential = 0;
    loop {
        let theta = f64::from(top.threshold());
        while prefix.get(essential).is_some_and(|&p| p < theta) {
            essential += 1;
        }
        let (lower, upper) = cursors.split_at_mut(essential);
        let Some(d) = upper.iter().map(|c| c.doc).min().filter(|&d| d != END) else {
            break;
        };
        let mut score = 0.0;
        for c in upper.iter().filter(|c| c.doc == d) {
            score += c.contribution();
        }
        let rest = essential
            .checked_sub(1)
            .and_then(|i| prefix.get(i))
            .copied()
            .unwrap_or(0.0);
        if score + rest >= theta {
            // Tighter: the block bounds of the non-essential lists at `d`, running sums.
            let mut sum = 0.0;
            for (c, b) in lower.iter_mut().zip(block_bounds.iter_mut()) {
                sum += c.block_bound(d);
                *b = sum;
            }
            if score + widen(sum) >= theta && accept(d) {
                stats.distance_computations += 1;
                let mut complete = true;
                for (c, &left) in lower.iter_mut().zip(&block_bounds).rev() {
                    if score + widen(left) < theta {
                        complete = false;
                        break;
                    }
                    c.next_geq(d);
                    if c.doc == d {
                        score += c.contribution();
                    }
                }
                if complete {
                    top.push(score as f32, u64::from(d));
                }
            }
        }
        for c in upper.iter_mut().filter(|c| c.doc == d) {
            c.next_geq(d + 1);
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

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sparse::format::encode;
    use crate::sparse::postings::Postings;
    use crate::sparse::reference;
    use proptest::prelude::*;

    /// Rows over a vocabulary where low terms are common (long lists, many blocks) and high
    /// ones rare; weights of both signs.
    fn rows_strategy() -> impl Strategy<Value = Vec<Vec<(u32, f32)>>> {
        proptest::collection::vec(
            proptest::collection::btree_map(
                (0u32..6).prop_flat_map(|scale| 0..(4u32 << (2 * scale))),
                -2.0f32..4.0,
                0..12,
            )
            .prop_map(|m| m.into_iter().collect::<Vec<_>>()),
            0..1500,
        )
    }

    fn check(rows: &[Vec<(u32, f32)>], query: &[QueryTerm], k: usize, deleted: &[bool]) {
        let mut p = Postings::new();
        for (r, row) in (0u32..).zip(rows) {
            let (t, w): (Vec<u32>, Vec<f32>) = row.iter().copied().unzip();
            p.push(r, &t, &w);
        }
        let bytes = encode(&p).unwrap();
        let view = PostingsView::new(&bytes).unwrap();
        view.verify(rows.len() as u64).unwrap();
        let accept = |r: u32| !deleted.get(r as usize).copied().unwrap_or(false);
        let want = reference::top_k(rows, query, k, accept);
        let (got, _) = search(&view, query, k, accept);
        let (mem, _) = p.search(query, rows.len() as u32, k, accept);
        for got in [got, mem] {
            assert_eq!(
                got.len(),
                want.len(),
                "result count; want {want:?}, got {got:?}"
            );
            for (g, w) in got.iter().zip(&want) {
                let tol = 1e-4 * (1.0 + w.0.abs());
                assert!(
                    (f64::from(g.score) - w.0).abs() <= tol,
                    "score {} vs {}",
                    g.score,
                    w.0
                );
                assert!(accept(g.offset));
                // The row's true score is the one reported (ties may pick other rows).
                let truth: f64 = rows[g.offset as usize]
                    .iter()
                    .filter_map(|(t, w)| {
                        query
                            .iter()
                            .find(|q| q.term == *t)
                            .map(|q| f64::from(q.weight) * f64::from(*w))
                    })
                    .sum();
                assert!((truth - f64::from(g.score)).abs() <= tol);
            }
            let mut offsets: Vec<u32> = got.iter().map(|h| h.offset).collect();
            offsets.sort_unstable();
            offsets.dedup();
            assert_eq!(offsets.len(), got.len(), "a row returned twice");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn block_max_maxscore_equals_brute_force(
            rows in rows_strategy(),
            query in proptest::collection::btree_map(
                (0u32..5).prop_flat_map(|scale| 0..(4u32 << (2 * scale))),
                -1.0f32..3.0,
                1..8,
            ),
            k in 1usize..30,
            deleted_seed in any::<u64>(),
        ) {
            let query: Vec<QueryTerm> = query.into_iter().map(|(term, weight)| QueryTerm { term, weight }).collect();
            let deleted: Vec<bool> = (0..rows.len() as u64)
                .map(|r| (r.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ deleted_seed) % 5 == 0)
                .collect();
            check(&rows, &query, k, &deleted);
        }
    }

    #[test]
    fn skipping_saves_work_on_long_lists() {
        // One common term everywhere with small weights, one rare term with large ones:
        // after k rows the common list is non-essential and most rows are never scored.
        let rows: Vec<Vec<(u32, f32)>> = (0..20_000u32)
            .map(|r| {
                let mut row = vec![(1, 0.01 + (r % 7) as f32 / 1000.0)];
                if r % 97 == 0 {
                    row.push((2, 5.0 + (r % 13) as f32));
                }
                row
            })
            .collect();
        let query = [
            QueryTerm {
                term: 1,
                weight: 1.0,
            },
            QueryTerm {
                term: 2,
                weight: 1.0,
            },
        ];
        check(&rows, &query, 10, &[]);
        let mut p = Postings::new();
        for (r, row) in (0u32..).zip(&rows) {
            let (t, w): (Vec<u32>, Vec<f32>) = row.iter().copied().unzip();
            p.push(r, &t, &w);
        }
        let bytes = encode(&p).unwrap();
        let (_, stats) = search(&PostingsView::new(&bytes).unwrap(), &query, 10, |_| true);
        assert!(
            stats.distance_computations < 1_000,
            "scored {} rows",
            stats.distance_computations
        );
    }

    #[test]
    fn no_shared_term_no_result_and_k_zero() {
        let mut p = Postings::new();
        p.push(0, &[1], &[1.0]);
        let bytes = encode(&p).unwrap();
        let v = PostingsView::new(&bytes).unwrap();
        assert!(
            search(
                &v,
                &[QueryTerm {
                    term: 2,
                    weight: 1.0
                }],
                5,
                |_| true
            )
            .0
            .is_empty()
        );
        assert!(
            search(
                &v,
                &[QueryTerm {
                    term: 1,
                    weight: 1.0
                }],
                0,
                |_| true
            )
            .0
            .is_empty()
        );
        // A zero query weight still makes the row a candidate (score 0), as brute force does.
        let (hits, _) = search(
            &v,
            &[QueryTerm {
                term: 1,
                weight: 0.0,
            }],
            5,
            |_| true,
        );
        assert_eq!(
            hits,
            vec![Hit {
                score: 0.0,
                offset: 0
            }]
        );
    }
}
