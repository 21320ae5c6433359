//! Development probe: build HNSW over a dataset directory (base.fvecs, query.fvecs,
//! groundtruth.ivecs) and print recall, QPS and distance computations per ef.
//! `cargo run --release -p quiver-index --example hnsw_dataset -- DIR [M] [EF_CONSTRUCTION]`
//! (The benchmark of record is `quiver bench --index hnsw`.)
//!
//! `HNSW_BUILD_CODES=1` builds with insertions searching on LVQ-8 codes.
//! `HNSW_ORDER` chooses the insertion order, for the study of "The Impacts of Data, Ordering,
//! and Intrinsic Dimensionality on Recall in HNSW": `identity` (file order, the default),
//! `random` (seeded shuffle), `lexname` (sorted by the `lexname` field of `base.jsonl`,
//! WordNet's category), `lid-desc` / `lid-asc` (by the maximum-likelihood local intrinsic
//! dimensionality estimated from each point's 20 exact nearest neighbours, highest or lowest
//! first).

#![allow(clippy::unwrap_used, reason = "development example")]

use quiver_index::hnsw::{self, BuildParams, DenseScorer, Traversal};
use quiver_index::{Metric, flat};
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(&args[1]);
    let m: usize = args.get(2).map_or(16, |s| s.parse().unwrap());
    let efc: usize = args.get(3).map_or(200, |s| s.parse().unwrap());
    let (base, n, dim) = quiver_formats::read_fvecs(&dir.join("base.fvecs")).unwrap();
    let (queries, nq, _) = quiver_formats::read_fvecs(&dir.join("query.fvecs")).unwrap();
    let (gt, _, gt_k) = quiver_formats::read_ivecs(&dir.join("groundtruth.ivecs")).unwrap();
    let params = BuildParams {
        m,
        ef_construction: efc,
        ..BuildParams::default()
    };
    let order_name = std::env::var("HNSW_ORDER").unwrap_or_else(|_| "identity".into());
    // Set HNSW_CACHE=FILE to reuse a graph between runs while tuning search.
    let cache = std::env::var("HNSW_CACHE").ok();
    let g = match cache.as_deref().and_then(|p| std::fs::read(p).ok()) {
        Some(bytes) => hnsw::decode(&bytes).unwrap(),
        None => {
            let order = insertion_order(&order_name, dir, &base, n, dim);
            let t = Instant::now();
            // HNSW_BUILD_CODES=1: insertions search on LVQ-8 codes (encoding time included).
            let codes = std::env::var_os("HNSW_BUILD_CODES")
                .map(|_| quiver_index::lvq::Lvq8::encode(&base, dim).unwrap());
            let g = hnsw::build_with_codes(
                &base,
                dim,
                Metric::Dot,
                params,
                Some(&order),
                codes.as_ref(),
                &|d| eprint!("\rbuilt {d}/{n}"),
            )
            .unwrap();
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "\nbuild {secs:.1}s ({} threads, on {})",
                params.threads,
                if codes.is_some() {
                    "LVQ-8 codes"
                } else {
                    "f32 rows"
                }
            );
            if let Some(p) = &cache {
                std::fs::write(p, hnsw::encode(&g)).unwrap();
            }
            g
        }
    };

    // HNSW_LVQ=R searches on LVQ-8 codes and re-scores the best R with the f32 rows.
    let rerank: Option<usize> = std::env::var("HNSW_LVQ").ok().map(|s| s.parse().unwrap());
    let lvq = rerank.map(|_| {
        let t = Instant::now();
        let l = quiver_index::lvq::Lvq8::encode(&base, dim).unwrap();
        eprintln!("LVQ-8 encoded in {:.2}s", t.elapsed().as_secs_f64());
        l
    });
    for ef in [10, 16, 24, 32, 48, 64, 96, 128, 192, 256] {
        let t = Instant::now();
        let mut hits = 0;
        let mut dist = 0;
        for (qi, q) in queries.chunks_exact(dim).enumerate().take(nq) {
            let s = DenseScorer {
                rows: &base,
                dim,
                metric: Metric::Dot,
                query: q,
            };
            let (r, st) = match (&lvq, rerank) {
                (Some(l), Some(rr)) => g.search_reranked(
                    &l.scorer(q, Metric::Dot),
                    &s,
                    10,
                    ef,
                    rr,
                    |_| true,
                    Traversal::Through,
                ),
                _ => g.search(&s, 10, ef, |_| true, Traversal::Through),
            };
            dist += st.distance_computations;
            let truth = &gt[qi * gt_k..qi * gt_k + 10];
            hits += r
                .iter()
                .filter(|h| truth.contains(&(h.offset as i32)))
                .count();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{{\"index\":\"hnsw\",\"order\":\"{order_name}\",\"params\":{{\"m\":{m},\"ef_construction\":{efc},\"ef\":{ef}}},\"recall_at_10\":{:.4},\"qps_1t\":{:.0},\"dist_per_query\":{:.0}}}",
            hits as f64 / (nq * 10) as f64,
            nq as f64 / secs,
            dist as f64 / nq as f64
        );
    }
}

fn insertion_order(name: &str, dir: &Path, base: &[f32], n: usize, dim: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    match name {
        "identity" => {}
        "random" => {
            let mut s = 0x9E37_79B9_7F4A_7C15u64;
            for i in (1..n).rev() {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                order.swap(i, (s % (i as u64 + 1)) as usize);
            }
        }
        "lexname" => {
            let text = std::fs::read_to_string(dir.join("base.jsonl")).unwrap();
            let lex: Vec<String> = text
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["lexname"].as_str().unwrap_or("").to_string()
                })
                .collect();
            order.sort_by(|&a, &b| lex[a as usize].cmp(&lex[b as usize]).then(a.cmp(&b)));
        }
        "lid-desc" | "lid-asc" => {
            let t = Instant::now();
            let k = 20;
            let (knn, _) = flat::search_batch(base, dim, Metric::Dot, base, k + 1, &|_| true);
            // Unit vectors: distance = sqrt(2 - 2·ip). MLE: LID = -1 / mean(ln(d_i / d_k)).
            let lid: Vec<f64> = knn
                .iter()
                .map(|hits| {
                    let d: Vec<f64> = hits
                        .iter()
                        .skip(1)
                        .map(|h| (2.0 - 2.0 * f64::from(h.score)).max(1e-12).sqrt())
                        .collect();
                    let dk = *d.last().unwrap();
                    let mean = d.iter().map(|x| (x / dk).ln()).sum::<f64>() / d.len() as f64;
                    if mean < 0.0 { -1.0 / mean } else { 0.0 }
                })
                .collect();
            eprintln!("LID estimated in {:.1}s", t.elapsed().as_secs_f64());
            order.sort_by(|&a, &b| lid[a as usize].total_cmp(&lid[b as usize]).then(a.cmp(&b)));
            if name == "lid-desc" {
                order.reverse();
            }
        }
        other => panic!("unknown HNSW_ORDER {other}"),
    }
    order
}
