//! Recall and distance computations of LVQ-8, LVQ-4 and LVQ-4x8 graph search on real
//! embeddings: the first `QUIVER_WORDNET_ROWS` (default 20,000) rows of
//! `$QUIVER_WORDNET/base.fvecs` (all-MiniLM-L6-v2, 384 dimensions) and its first 500 queries,
//! against brute force over the same rows. A measurement, not a timing: run with
//! `QUIVER_WORDNET=../shared/datasets/wordnet cargo test --release -p quiver-index
//! --test wordnet_lvq -- --ignored --nocapture`.
//!
//! Measured 2026-12-03 on all 117,659 rows (`QUIVER_WORDNET_ROWS=200000`), m = 16,
//! ef_construction = 200, recall@10 (distances per query):
//!
//! | ef | LVQ-8, best 20 on f32 | LVQ-4x8, beam on residual | LVQ-4, beam on f32 |
//! |---:|---|---|---|
//! | 16 | 0.8598 (475) | 0.8542 (475) | 0.8546 (475) |
//! | 32 | 0.9336 (735) | 0.9270 (750) | 0.9276 (750) |
//! | 48 | 0.9582 (980) | 0.9554 (1011) | 0.9562 (1011) |
//! | 64 | 0.9690 (1218) | 0.9686 (1263) | 0.9694 (1263) |
//! | 128 | 0.9886 (2118) | 0.9884 (2228) | 0.9892 (2228) |
//!
//! 4-bit traversal loses almost nothing on these embeddings; the two-level scores were within
//! 1.0e-4 of the exact ones.

#![allow(clippy::unwrap_used, reason = "a measurement harness")]

use quiver_index::hnsw::{self, BuildParams, DenseScorer, HnswGraph, Scorer, Traversal};
use quiver_index::lvq::Lvq8;
use quiver_index::lvq4::Lvq4;
use quiver_index::{Metric, flat};

/// The first `limit` rows of an `.fvecs` file (each row: `dim` as i32, then `dim` f32).
fn read_fvecs(path: &std::path::Path, limit: usize) -> (Vec<f32>, usize) {
    let bytes = std::fs::read(path).unwrap();
    let dim = i32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    let rows: Vec<f32> = bytes
        .chunks_exact(4 + 4 * dim)
        .take(limit)
        .flat_map(|row| {
            row[4..]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        })
        .collect();
    (rows, dim)
}

/// Recall@10 and distance computations per query of `search`, against `truth`.
fn measure(
    truth: &[Vec<u32>],
    queries: &[f32],
    dim: usize,
    search: impl Fn(&[f32]) -> (Vec<quiver_index::Hit>, quiver_index::SearchStats),
) -> (f64, f64) {
    let (mut hit, mut dist) = (0usize, 0u64);
    for (q, t) in queries.chunks_exact(dim).zip(truth) {
        let (got, stats) = search(q);
        hit += got.iter().filter(|h| t.contains(&h.offset)).count();
        dist += stats.distance_computations;
    }
    (
        hit as f64 / (10 * truth.len()) as f64,
        dist as f64 / truth.len() as f64,
    )
}

fn build<C: hnsw::Quantized>(rows: &[f32], dim: usize, codes: &C) -> HnswGraph {
    let params = BuildParams {
        m: 16,
        ef_construction: 200,
        seed: 1,
        threads: 2,
    };
    hnsw::build_with_codes(rows, dim, Metric::Dot, params, None, Some(codes), &|_| {}).unwrap()
}

#[test]
#[ignore = "needs the wordnet data set: set QUIVER_WORDNET"]
fn lvq4x8_against_lvq8_on_wordnet() {
    let Ok(dir) = std::env::var("QUIVER_WORDNET") else {
        eprintln!("QUIVER_WORDNET not set: nothing measured");
        return;
    };
    let dir = std::path::Path::new(&dir);
    let limit = std::env::var("QUIVER_WORDNET_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (rows, dim) = read_fvecs(&dir.join("base.fvecs"), limit);
    let (queries, _) = read_fvecs(&dir.join("query.fvecs"), 500);
    let truth: Vec<Vec<u32>> = queries
        .chunks_exact(dim)
        .map(|q| {
            let (hits, _) = flat::search(&rows, dim, Metric::Dot, q, 10, |_| true);
            hits.iter().map(|h| h.offset).collect()
        })
        .collect();
    let lvq8 = Lvq8::encode(&rows, dim).unwrap();
    let lvq4x8 = Lvq4::encode(&rows, dim, true).unwrap();
    let lvq4 = Lvq4::encode(&rows, dim, false).unwrap();
    let on8 = build(&rows, dim, &lvq8);
    let on4 = build(&rows, dim, &lvq4x8);
    eprintln!(
        "{} rows × {dim}, {} queries; re-scored: LVQ-8 the best 20 on f32, LVQ-4 the whole beam",
        rows.len() / dim,
        truth.len()
    );
    for ef in [10, 16, 24, 32, 48, 64, 96, 128] {
        let (r8, d8) = measure(&truth, &queries, dim, |q| {
            on8.search_reranked(
                &lvq8.scorer(q, Metric::Dot),
                &exact(&rows, dim, q),
                10,
                ef,
                20,
                |_| true,
                Traversal::Through,
            )
        });
        let (r48, d48) = measure(&truth, &queries, dim, |q| {
            let approx = lvq4x8.scorer(q, Metric::Dot);
            let two_level = lvq4x8.rescorer(q, Metric::Dot).unwrap();
            on4.search_reranked(
                &approx,
                &two_level,
                10,
                ef,
                ef.max(20),
                |_| true,
                Traversal::Through,
            )
        });
        let (r4, d4) = measure(&truth, &queries, dim, |q| {
            let approx = lvq4.scorer(q, Metric::Dot);
            on4.search_reranked(
                &approx,
                &exact(&rows, dim, q),
                10,
                ef,
                ef.max(20),
                |_| true,
                Traversal::Through,
            )
        });
        let (r4_graph8, _) = measure(&truth, &queries, dim, |q| {
            let approx = lvq4x8.scorer(q, Metric::Dot);
            let two_level = lvq4x8.rescorer(q, Metric::Dot).unwrap();
            on8.search_reranked(
                &approx,
                &two_level,
                10,
                ef,
                ef.max(20),
                |_| true,
                Traversal::Through,
            )
        });
        eprintln!(
            "ef {ef:>3}: LVQ-8 {r8:.4} ({d8:.0} dist) | LVQ-4x8 {r48:.4} ({d48:.0}) | LVQ-4 + f32 {r4:.4} ({d4:.0}) | LVQ-4x8 on the LVQ-8 graph {r4_graph8:.4}"
        );
    }
    let err = two_level_error(&lvq4x8, &rows, &queries, dim);
    eprintln!("max |score(x̂₄₈) − score(x)| over the first 100 rows × 100 queries: {err:.2e}");
}

/// The largest difference between LVQ-4x8 re-scores and exact scores.
fn two_level_error(codes: &Lvq4, rows: &[f32], queries: &[f32], dim: usize) -> f32 {
    let mut worst = 0.0f32;
    for q in queries.chunks_exact(dim).take(100) {
        let s = codes.rescorer(q, Metric::Dot).unwrap();
        for (i, row) in rows.chunks_exact(dim).take(100).enumerate() {
            worst = worst.max((s.score(i as u32) - Metric::Dot.score(q, row)).abs());
        }
    }
    worst
}

fn exact<'a>(rows: &'a [f32], dim: usize, query: &'a [f32]) -> DenseScorer<'a> {
    DenseScorer {
        rows,
        dim,
        metric: Metric::Dot,
        query,
    }
}
