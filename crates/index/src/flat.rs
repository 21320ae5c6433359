//! Exact search: every accepted row is scored.
//!
//! One query scans rows with the SIMD kernels. A batch of queries is a matrix product:
//! blocks of queries against tiles of rows with an sgemm micro-kernel, so that each row is
//! loaded from memory once per block instead of once per query (the way FAISS's
//! `IndexFlat` uses BLAS). Blocks run in parallel on the current rayon pool.
//!
//! Offsets are `u32`: a scan looks at the first [`MAX_ROWS`] rows only (an index never
//! holds more), so no offset wraps.

use crate::hnsw::Scorer;
use crate::{Hit, MAX_ROWS, Metric, SearchStats};
use quiver_kernels::TopK;
use rayon::prelude::*;

/// Queries per block of a batch (one rayon task each).
pub const QUERY_BLOCK: usize = 64;
/// How many rows ahead [`search_subset_reranked`] prefetches.
const PREFETCH_AHEAD: usize = 4;
/// Rows per tile of a batch: a tile of 384-dim rows is 768 KiB and stays in L2.
const ROW_TILE: usize = 512;

fn into_hits(top: TopK) -> Vec<Hit> {
    top.into_sorted_vec()
        .into_iter()
        .map(|(score, offset)| Hit {
            score,
            // Pushed from `u32` offsets.
            offset: offset as u32,
        })
        .collect()
}

/// The `k` best accepted rows for one query, best first (ties: lower offset first).
///
/// `rows` is row-major with `dim` columns; `accept(offset)` says whether a row may be returned.
pub fn search(
    rows: &[f32],
    dim: usize,
    metric: Metric,
    query: &[f32],
    k: usize,
    accept: impl Fn(u32) -> bool,
) -> (Vec<Hit>, SearchStats) {
    assert_eq!(query.len(), dim, "query dimension");
    let mut top = TopK::new(k);
    let mut stats = SearchStats::default();
    if k == 0 || dim == 0 {
        return (Vec::new(), stats);
    }
    // Scores are finite (the engine rejects non-finite vectors), so the threshold, −∞ until
    // `k` rows are held, admits every row until then.
    let mut threshold = top.threshold();
    // `0..u32::MAX`: the first `MAX_ROWS` rows.
    for (offset, row) in (0..u32::MAX).zip(rows.chunks_exact(dim)) {
        if !accept(offset) {
            continue;
        }
        let score = metric.score(query, row);
        stats.distance_computations += 1;
        if score > threshold {
            top.push(score, u64::from(offset));
            threshold = top.threshold();
        }
    }
    (into_hits(top), stats)
}

/// [`search`] over only the rows in `offsets` (for a selective filter: the rows its
/// indexes say may match), each still checked by `accept`. Offsets past the end are
/// ignored; the result does not depend on their order.
pub fn search_subset(
    rows: &[f32],
    dim: usize,
    metric: Metric,
    query: &[f32],
    k: usize,
    offsets: impl IntoIterator<Item = u32>,
    accept: impl Fn(u32) -> bool,
) -> (Vec<Hit>, SearchStats) {
    assert_eq!(query.len(), dim, "query dimension");
    let mut top = TopK::new(k);
    let mut stats = SearchStats::default();
    if k == 0 || dim == 0 {
        return (Vec::new(), stats);
    }
    let mut threshold = top.threshold();
    let row = |o: u32| {
        let start = o as usize * dim;
        rows.get(start..start + dim)
    };
    // Load one row ahead: subset rows are scattered, so the hardware prefetcher cannot guess.
    let mut offsets = offsets.into_iter().peekable();
    while let Some(offset) = offsets.next() {
        if let Some(next) = offsets.peek().and_then(|&n| row(n)) {
            quiver_kernels::prefetch(next, 24);
        }
        let Some(r) = row(offset) else { continue };
        if !accept(offset) {
            continue;
        }
        let score = metric.score(query, r);
        stats.distance_computations += 1;
        if score > threshold {
            top.push(score, u64::from(offset));
            threshold = top.threshold();
        }
    }
    (into_hits(top), stats)
}

/// [`search_subset`] on cheap scores: the rows in `offsets` that `accept` passes are scored
/// by `approx` (e.g. [`crate::lvq`] codes, a quarter of the bytes of `f32` rows), the best
/// `rerank` of them (at least `k`) are re-scored by `exact`, and the best `k` by exact score
/// are returned, best first (ties: lower offset first). Offsets `approx` does not know
/// score −∞ and are dropped. Counts both kinds of score in the stats.
pub fn search_subset_reranked<A: Scorer, E: Scorer>(
    approx: &A,
    exact: &E,
    k: usize,
    rerank: usize,
    offsets: impl IntoIterator<Item = u32>,
    accept: impl Fn(u32) -> bool,
) -> (Vec<Hit>, SearchStats) {
    let mut stats = SearchStats::default();
    if k == 0 {
        return (Vec::new(), stats);
    }
    let mut top = TopK::new(rerank.max(k));
    let mut threshold = top.threshold();
    // Rows are scattered: start loading a few ahead, so that several loads are in flight.
    let offsets: Vec<u32> = offsets.into_iter().collect();
    for &o in offsets.iter().take(PREFETCH_AHEAD) {
        approx.prefetch(o);
    }
    for (i, &offset) in offsets.iter().enumerate() {
        if let Some(&ahead) = offsets.get(i + PREFETCH_AHEAD) {
            approx.prefetch(ahead);
        }
        if !accept(offset) {
            continue;
        }
        let score = approx.score(offset);
        stats.distance_computations += 1;
        if score > threshold {
            top.push(score, u64::from(offset));
            threshold = top.threshold();
        }
    }
    let mut hits = into_hits(top);
    crate::hnsw::rescore(&mut hits, exact, k, &mut stats);
    (hits, stats)
}

/// [`search`] for many queries (`queries` row-major, `dim` columns), in parallel blocks.
/// Results are in query order and equal to per-query [`search`] up to floating-point
/// rounding of the matrix product; returned scores are recomputed exactly.
pub fn search_batch(
    rows: &[f32],
    dim: usize,
    metric: Metric,
    queries: &[f32],
    k: usize,
    accept: &(impl Fn(u32) -> bool + Sync),
) -> (Vec<Vec<Hit>>, SearchStats) {
    if dim == 0 {
        return (Vec::new(), SearchStats::default());
    }
    assert_eq!(queries.len() % dim, 0, "queries are whole rows");
    let n = (rows.len() / dim).min(MAX_ROWS);
    let per_block: Vec<(Vec<Vec<Hit>>, SearchStats)> = queries
        .par_chunks(QUERY_BLOCK * dim)
        .map(|block| search_block(rows, n, dim, metric, block, k, accept))
        .collect();
    let mut stats = SearchStats::default();
    let mut out = Vec::with_capacity(queries.len() / dim);
    for (hits, s) in per_block {
        out.extend(hits);
        stats.add(s);
    }
    (out, stats)
}

/// [`search_batch`] on the calling thread only: for callers that hold a lock, which must not
/// be held across a parallel section (a pool thread waiting for its tasks may run another
/// task that wants the same lock). Split the queries into blocks of [`QUERY_BLOCK`] and
/// parallelise outside the lock instead.
pub fn search_batch_sequential(
    rows: &[f32],
    dim: usize,
    metric: Metric,
    queries: &[f32],
    k: usize,
    accept: &impl Fn(u32) -> bool,
) -> (Vec<Vec<Hit>>, SearchStats) {
    if dim == 0 {
        return (Vec::new(), SearchStats::default());
    }
    assert_eq!(queries.len() % dim, 0, "queries are whole rows");
    let n = rows.len() / dim;
    let mut stats = SearchStats::default();
    let mut out = Vec::with_capacity(queries.len() / dim);
    for block in queries.chunks(QUERY_BLOCK * dim) {
        let (hits, s) = search_block(rows, n, dim, metric, block, k, accept);
        out.extend(hits);
        stats.add(s);
    }
    (out, stats)
}

/// Pushes the accepted scores that beat `top`'s threshold. Most scores of a scan do not, so
/// chunks are first screened by their maximum (a vectorised reduction) and only chunks that
/// could contribute are looked at one by one.
fn select_into(top: &mut TopK, scores: &[f32], start: usize, accepted: &[bool]) {
    const CHUNK: usize = 16;
    let mut threshold = top.threshold();
    for (c, chunk) in scores.chunks(CHUNK).enumerate() {
        let max = chunk.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        if max <= threshold {
            continue;
        }
        for (i, &score) in chunk.iter().enumerate() {
            let j = c * CHUNK + i;
            // Ties with the threshold lose: rows come in offset order and the lower offset wins.
            if score > threshold && accepted.get(j).copied().unwrap_or(false) {
                top.push(score, (start + j) as u64);
                threshold = top.threshold();
            }
        }
    }
}

fn search_block(
    rows: &[f32],
    n: usize,
    dim: usize,
    metric: Metric,
    block: &[f32],
    k: usize,
    accept: &impl Fn(u32) -> bool,
) -> (Vec<Vec<Hit>>, SearchStats) {
    let nq = block.len() / dim;
    let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
    let mut stats = SearchStats::default();
    if k == 0 {
        return (vec![Vec::new(); nq], stats);
    }
    let query_norms: Vec<f32> = match metric {
        Metric::Dot => Vec::new(),
        Metric::L2 => block
            .chunks_exact(dim)
            .map(quiver_kernels::norm_squared)
            .collect(),
    };
    let mut products = vec![0f32; nq * ROW_TILE];
    let mut row_norms = vec![0f32; ROW_TILE];
    let mut start = 0;
    while start < n {
        let tile_rows = ROW_TILE.min(n - start);
        let tile = &rows[start * dim..(start + tile_rows) * dim];
        let products = &mut products[..nq * tile_rows];
        quiver_kernels::dot_matrix(block, nq, tile, tile_rows, dim, products);
        if metric == Metric::L2 {
            for (norm, row) in row_norms.iter_mut().zip(tile.chunks_exact(dim)) {
                *norm = quiver_kernels::norm_squared(row);
            }
        }
        // Below `n` ≤ `MAX_ROWS`: the offsets fit.
        let accepted: Vec<bool> = (0..tile_rows).map(|j| accept((start + j) as u32)).collect();
        let live = accepted.iter().filter(|&&a| a).count() as u64;
        stats.distance_computations += live * nq as u64;
        for (q, top) in tops.iter_mut().enumerate() {
            let scores = &mut products[q * tile_rows..(q + 1) * tile_rows];
            if metric == Metric::L2 {
                // −‖q − r‖² = 2 q·r − ‖r‖² − ‖q‖², in place (vectorises).
                let qn = query_norms[q];
                for (s, rn) in scores.iter_mut().zip(&row_norms) {
                    *s = 2.0 * *s - rn - qn;
                }
            }
            select_into(top, scores, start, &accepted);
        }
        start += tile_rows;
    }
    let hits = tops
        .into_iter()
        .zip(block.chunks_exact(dim))
        .map(|(top, query)| {
            // Exact scores for what is returned (the expansion of L2 loses precision).
            let mut hits = into_hits(top);
            for h in &mut hits {
                let o = h.offset as usize;
                h.score = metric.score(query, &rows[o * dim..(o + 1) * dim]);
            }
            hits.sort_by(|a, b| crate::best_first(a.score, b.score).then(a.offset.cmp(&b.offset)));
            hits
        })
        .collect();
    (hits, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Brute force in f64 with the same tie rule.
    fn reference(
        rows: &[f32],
        dim: usize,
        metric: Metric,
        q: &[f32],
        k: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<u32> {
        let mut all: Vec<(f64, u32)> = rows
            .chunks_exact(dim)
            .enumerate()
            .filter(|(i, _)| accept(*i as u32))
            .map(|(i, r)| {
                let s = match metric {
                    Metric::Dot => r
                        .iter()
                        .zip(q)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum::<f64>(),
                    Metric::L2 => -r
                        .iter()
                        .zip(q)
                        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                        .sum::<f64>(),
                };
                (s, i as u32)
            })
            .collect();
        // Signed zeros compare equal, as IEEE (and `TopK`) do.
        all.sort_by(|a, b| (b.0 + 0.0).total_cmp(&(a.0 + 0.0)).then(a.1.cmp(&b.1)));
        all.into_iter().take(k).map(|(_, i)| i).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn single_and_batch_match_brute_force(
            dim in 1usize..40,
            n in 0usize..700,
            nq in 1usize..70,
            k in 0usize..15,
            l2 in any::<bool>(),
            seed in any::<u64>(),
            deleted_mod in 2u32..9,
        ) {
            let metric = if l2 { Metric::L2 } else { Metric::Dot };
            // Values on a coarse grid make exact score ties common, exercising the tie rule;
            // products of grid values are exact in f32, so the reference order is exact too.
            let mut s = seed;
            let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); ((s >> 33) % 9) as f32 - 4.0 };
            let rows: Vec<f32> = (0..n * dim).map(|_| next()).collect();
            let queries: Vec<f32> = (0..nq * dim).map(|_| next()).collect();
            let accept = |o: u32| !o.is_multiple_of(deleted_mod);
            let (batch, bstats) = search_batch(&rows, dim, metric, &queries, k, &accept);
            prop_assert_eq!(batch.len(), nq);
            let mut total = 0;
            for (qi, q) in queries.chunks_exact(dim).enumerate() {
                let want = reference(&rows, dim, metric, q, k, &accept);
                let (hits, stats) = search(&rows, dim, metric, q, k, accept);
                total += stats.distance_computations;
                let got: Vec<u32> = hits.iter().map(|h| h.offset).collect();
                prop_assert_eq!(&got, &want, "single query {}", qi);
                let got_batch: Vec<u32> = batch[qi].iter().map(|h| h.offset).collect();
                prop_assert_eq!(&got_batch, &want, "batch query {}", qi);
                // A subset holding every other row (plus out-of-range offsets), with the
                // accept predicate still applied: brute force over the subset.
                let in_subset = |o: u32| o % 2 == 1 && accept(o);
                let subset = (0..n as u32 + 3).filter(|o| o % 2 == 1);
                let (sub, _) = search_subset(&rows, dim, metric, q, k, subset, accept);
                let got_sub: Vec<u32> = sub.iter().map(|h| h.offset).collect();
                let want_sub = reference(&rows, dim, metric, q, k, &in_subset);
                prop_assert_eq!(&got_sub, &want_sub, "subset query {}", qi);
                // Re-ranked with exact scores on both sides: the same result whatever
                // `rerank`; with LVQ-8 codes first and every candidate re-scored, too.
                let exact = crate::hnsw::DenseScorer { rows: &rows, dim, metric, query: q };
                let subset = || (0..n as u32 + 3).filter(|o| o % 2 == 1);
                let (rr, _) = search_subset_reranked(&exact, &exact, k, (qi % 3) * 4, subset(), accept);
                let got_rr: Vec<u32> = rr.iter().map(|h| h.offset).collect();
                prop_assert_eq!(&got_rr, &want_sub, "re-ranked subset query {}", qi);
                if n > 0 {
                    let lvq = crate::lvq::Lvq8::encode(&rows, dim).unwrap();
                    let (rr, _) = search_subset_reranked(&lvq.scorer(q, metric), &exact, k, n, subset(), accept);
                    let got_rr: Vec<u32> = rr.iter().map(|h| h.offset).collect();
                    prop_assert_eq!(&got_rr, &want_sub, "LVQ re-ranked subset query {}", qi);
                }
            }
            if k > 0 {
                prop_assert_eq!(bstats.distance_computations, total);
            }
        }
    }
}
