//! Development probe: build HNSW over a dataset directory (base.fvecs, query.fvecs,
//! groundtruth.ivecs) and print recall, QPS and distance computations per ef.
//! `cargo run --release -p quiver-index --example hnsw_dataset -- DIR [M] [EF_CONSTRUCTION]`
//! (The benchmark of record is `quiver bench --index hnsw`.)

#![allow(clippy::unwrap_used, reason = "development example")]

use quiver_index::Metric;
use quiver_index::hnsw::{self, BuildParams, DenseScorer};
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
    let t = Instant::now();
    let params = BuildParams {
        m,
        ef_construction: efc,
        ..BuildParams::default()
    };
    // Set HNSW_CACHE=FILE to reuse a graph between runs while tuning search.
    let cache = std::env::var("HNSW_CACHE").ok();
    let g = match cache.as_deref().and_then(|p| std::fs::read(p).ok()) {
        Some(bytes) => hnsw::decode(&bytes).unwrap(),
        None => {
            let g = hnsw::build(&base, dim, Metric::Dot, params, None, &|d| {
                eprint!("\rbuilt {d}/{n}")
            });
            let secs = t.elapsed().as_secs_f64();
            eprintln!("\nbuild {secs:.1}s ({} threads)", params.threads);
            if let Some(p) = &cache {
                std::fs::write(p, hnsw::encode(&g)).unwrap();
            }
            g
        }
    };

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
            let (r, st) = g.search(&s, 10, ef, |_| true);
            dist += st.distance_computations;
            let truth = &gt[qi * gt_k..qi * gt_k + 10];
            hits += r
                .iter()
                .filter(|h| truth.contains(&(h.offset as i32)))
                .count();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{{\"index\":\"hnsw\",\"params\":{{\"m\":{m},\"ef_construction\":{efc},\"ef\":{ef}}},\"recall_at_10\":{:.4},\"qps_1t\":{:.0},\"dist_per_query\":{:.0}}}",
            hits as f64 / (nq * 10) as f64,
            nq as f64 / secs,
            dist as f64 / nq as f64
        );
    }
}
