//! `quiver bench`: build a collection from a dataset directory and measure search.
//!
//! Reads `base.fvecs`, `query.fvecs` and `groundtruth.ivecs` (TEXMEX layout, as in
//! `../shared/datasets/wordnet`), prints one JSON object per search setting on stdout with the
//! fields of `../shared/peers/README.md`, and progress on stderr.

use crate::bench_filters;
use crate::sysinfo::{self, Measured};
use anyhow::{Context, Result, bail};
use quiver_engine::{
    CollectionConfig, Database, DatabaseOptions, Distance, Durability, IndexKind, LeanVecSecondary,
    Point, Quantization, Schema, SearchRequest, VectorKind,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Directory with base.fvecs, query.fvecs and groundtruth.ivecs.
    pub dataset: PathBuf,
    #[command(flatten)]
    pub index: crate::IndexArgs,
    /// HNSW: search beam widths to sweep, one output line each.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,16,24,32,48,64,96,128,192,256"
    )]
    pub ef: Vec<usize>,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Use only the first N queries.
    #[arg(long)]
    pub queries: Option<usize>,
    /// Threads for the build and for qps_mt (default: all CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Repetitions of each timing; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Queries timed one at a time for qps_1t with the flat index, where every query scans
    /// all vectors (the others are measured batched).
    #[arg(long, default_value_t = 1000)]
    pub single_queries: usize,
    /// Distance: ip (dot), cosine or l2.
    #[arg(long, default_value = "ip")]
    pub metric: String,
    /// Also run filtered search: one filter per line (`{"name", "filter", "selectivity"}`);
    /// payloads come from `<dataset>/base.jsonl`, ground truth from
    /// `<dataset>/groundtruth.<name>.ivecs`. Field indexes are declared for the filters' keys.
    #[arg(long)]
    pub filters: Option<PathBuf>,
    /// Filtered search: use only the first N queries.
    #[arg(long, default_value_t = 1000)]
    pub filter_queries: usize,
    /// Filtered search scans the candidates instead of searching the graph when they are at
    /// most this fraction of the rows (0: graph unless under 1,000 candidates; 1: always scan).
    #[arg(long, default_value_t = quiver_engine::DEFAULT_FILTER_SCAN_FRACTION)]
    pub filter_scan_fraction: f64,
    /// LeanVec-OOD: learn the projection from the dataset's queries that are not searched
    /// (those after the first --queries), so that it is tested on queries it has not seen.
    #[arg(long, conflicts_with = "leanvec_queries")]
    pub leanvec_train_on_unsearched: bool,
}

struct Dataset {
    base: Vec<f32>,
    n: usize,
    queries: Vec<f32>,
    nq: usize,
    gt: Vec<i32>,
    gt_k: usize,
    dim: usize,
}

fn read_dataset(dir: &Path) -> Result<Dataset> {
    let (base, n, dim) = quiver_formats::read_fvecs(&dir.join("base.fvecs"))?;
    let (queries, nq, qdim) = quiver_formats::read_fvecs(&dir.join("query.fvecs"))?;
    let (gt, ngt, gt_k) = quiver_formats::read_ivecs(&dir.join("groundtruth.ivecs"))?;
    if qdim != dim {
        bail!(
            "{}: queries have dimension {qdim}, base vectors {dim}",
            dir.display()
        );
    }
    if ngt < nq {
        bail!(
            "{}: ground truth has {ngt} rows for {nq} queries",
            dir.display()
        );
    }
    Ok(Dataset {
        base,
        n,
        queries,
        nq,
        gt,
        gt_k,
        dim,
    })
}

/// Mean over queries of |first 10 returned ∩ first 10 true| / 10 (or / the true count).
fn recall_at_10(results: &[Vec<u64>], gt: &[i32], gt_k: usize) -> f64 {
    let mut total = 0.0;
    for (q, got) in results.iter().enumerate() {
        let truth: Vec<i64> = gt[q * gt_k..q * gt_k + gt_k.min(10)]
            .iter()
            .map(|&x| i64::from(x))
            .filter(|&x| x >= 0)
            .collect();
        if truth.is_empty() {
            total += 1.0;
            continue;
        }
        let hit = got
            .iter()
            .take(10)
            .filter(|&&id| truth.contains(&(id as i64)))
            .count();
        total += hit as f64 / truth.len() as f64;
    }
    total / results.len().max(1) as f64
}

fn ids_of(hits: &[quiver_engine::ScoredPoint]) -> Vec<u64> {
    hits.iter()
        .map(|h| match h.id {
            quiver_engine::PointId::Num(n) => n,
            quiver_engine::PointId::Uuid(_) => u64::MAX,
        })
        .collect()
}

fn best_of(reps: usize, mut f: impl FnMut()) -> Measured {
    let mut best: Option<Measured> = None;
    for _ in 0..reps.max(1) {
        let m = sysinfo::measure(&mut f);
        if best.as_ref().is_none_or(|b| m.wall_s < b.wall_s) {
            best = Some(m);
        }
    }
    best.unwrap_or(Measured {
        wall_s: f64::NAN,
        cpu_util: None,
        other_cpu: None,
    })
}

/// The `params` of an output line. `storage` is the peers' field: what the graph search reads
/// while it traverses; `rerank` what its best candidates are re-scored on (the f32 vectors,
/// or LVQ-4x8's two-level codes).
fn index_params(index: IndexKind, metric: &str, ef: serde_json::Value) -> serde_json::Value {
    let mut params = json!({"storage": "f32", "metric": metric});
    if let IndexKind::Hnsw {
        m,
        ef_construction,
        quantization,
    } = index
    {
        match quantization {
            Quantization::Lvq8 | Quantization::Lvq4 => {
                params["storage"] = json!(quantization.name());
                params["rerank"] = json!("f32");
            }
            Quantization::Lvq4x8 => {
                params["storage"] = json!("lvq4");
                params["rerank"] = json!("lvq4x8");
            }
            Quantization::LeanVec(lean) => {
                params["storage"] = json!(lean.to_string());
                params["rerank"] = json!(match lean.secondary {
                    LeanVecSecondary::Lvq8 => "lvq8",
                    _ => "f32",
                });
            }
            _ => {}
        }
        params["m"] = json!(m);
        params["ef_construction"] = json!(ef_construction);
        params["ef"] = ef;
    }
    params
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// `data`: keep the collection there (the global `--data`); default: a temporary directory.
pub fn run(a: BenchArgs, data: Option<PathBuf>) -> Result<()> {
    let index = a.index.kind()?;
    let distance = match a.metric.as_str() {
        "ip" | "dot" => Distance::Dot,
        "cos" | "cosine" => Distance::Cosine,
        "l2" | "euclid" => Distance::Euclid,
        m => bail!("unknown metric `{m}`: use ip, cosine or l2"),
    };
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("cannot start the thread pool")?;
    let dataset = a
        .dataset
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();

    let rss_baseline = sysinfo::rss_mb();
    eprintln!("bench: reading {}", a.dataset.display());
    let Dataset {
        base,
        n,
        queries,
        nq: nq_all,
        gt,
        gt_k,
        dim,
    } = read_dataset(&a.dataset)?;
    let nq = a.queries.unwrap_or(nq_all).min(nq_all);
    eprintln!(
        "bench: {n} base vectors, {nq} queries, dim {dim}, {threads} threads, isa {:?}",
        quiver_kernels::isa()
    );

    let tmp;
    let data_dir = match &data {
        Some(d) => d.clone(),
        None => {
            tmp = TempDir::new()?;
            tmp.0.clone()
        }
    };
    let db = Database::open(
        &data_dir,
        DatabaseOptions {
            durability: Durability::Periodic(Duration::from_secs(1)),
            ..crate::database_options()
        },
    )?;
    if db.collection("bench").is_ok() {
        eprintln!(
            "bench: dropping the existing collection `bench` in {}",
            data_dir.display()
        );
        db.drop_collection("bench")?;
    }
    let schema = Schema {
        sparse_vectors: Default::default(),
        vectors: BTreeMap::from([(
            String::new(),
            VectorKind::dense_indexed(dim, distance, index),
        )]),
    };
    let config = CollectionConfig {
        filter_scan_fraction: a.filter_scan_fraction,
        ..CollectionConfig::default()
    };
    let c = db.create_collection("bench", schema, config)?;
    a.index.store_query_sample(&c, "")?;
    if a.leanvec_train_on_unsearched {
        if nq >= nq_all {
            bail!(
                "--leanvec-train-on-unsearched needs --queries below the {nq_all} queries of the dataset"
            );
        }
        let unsearched = queries.get(nq * dim..).unwrap_or_default();
        crate::store_query_sample(&c, "", unsearched, nq_all - nq, dim)?;
    }
    let (filters, mut payloads) = match &a.filters {
        Some(path) => {
            let filters = bench_filters::read_filters(path)?;
            let payloads = bench_filters::read_payloads(&a.dataset.join("base.jsonl"), n)?;
            let declared = bench_filters::declare_indexes(&c, &filters, &payloads)?;
            eprintln!(
                "bench: {} filters; field indexes: {}",
                filters.len(),
                declared
                    .iter()
                    .map(|(k, v)| format!("{k} ({v})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            (filters, payloads)
        }
        None => (Vec::new(), Vec::new()),
    };

    // Build: from vectors in memory to a sealed, searchable segment.
    let mut progress = crate::progress::Progress::new("building", Some(n as u64), "points");
    let t = Instant::now();
    let mut built: Result<()> = Ok(());
    let build = sysinfo::measure(|| {
        built = (|| {
            for (b, chunk) in base.chunks(10_000 * dim).enumerate() {
                let points = chunk
                    .chunks_exact(dim)
                    .enumerate()
                    .map(|(i, v)| {
                        let row = b * 10_000 + i;
                        let p = Point::new(row as u64, v.to_vec());
                        match payloads.get_mut(row) {
                            Some(payload) => p.with_payload(std::mem::take(payload)),
                            None => p,
                        }
                    })
                    .collect();
                c.upsert(points)?;
                progress.update(((b + 1) * 10_000).min(n) as u64, "");
            }
            c.sync()?;
            c.flush()?;
            Ok(())
        })();
    });
    built.context("build failed")?;
    progress.finish(n as u64, "sealed");
    let build_s = t.elapsed().as_secs_f64();
    drop(base);
    let rss = sysinfo::rss_mb();
    let info = c.info()?;
    let index_bytes = info.disk_bytes - info.wal_bytes;
    // Close and reopen: every search below runs on the collection as loaded from disk (graphs
    // read from their files, not rebuilt).
    drop(c);
    drop(db);
    let t = Instant::now();
    let db = Database::open(&data_dir, crate::database_options())?;
    let c = db.collection("bench")?;
    let open_s = t.elapsed().as_secs_f64();
    let rss_reopen = sysinfo::rss_mb();
    let memory = c.memory();

    let base_line = json!({
        "index": a.index.index,
        "lib_version": env!("CARGO_PKG_VERSION"),
        "dataset": dataset,
        "n": n, "dim": dim, "k": a.k, "threads": threads,
        "build_s": round(build_s, 3),
        "rss_mb": rss.map(|x| round(x, 1)),
        "rss_reopen_mb": rss_reopen.map(|x| round(x, 1)),
        "open_s": round(open_s, 3),
        "rss_baseline_mb": rss_baseline.map(|x| round(x, 1)),
        "index_bytes": index_bytes,
        "vector_ram_bytes": memory.vector_bytes,
        "index_ram_bytes": memory.index_bytes,
        "nq": nq,
        "other_cpu_build": build.other_cpu.map(|x| round(x, 2)),
    });
    let efs: Vec<Option<usize>> = if index == IndexKind::Flat {
        vec![None]
    } else {
        a.ef.iter().copied().map(Some).collect()
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .context("thread pool")?;
    for ef in efs {
        let reqs: Vec<SearchRequest> = queries
            .chunks_exact(dim)
            .take(nq)
            .map(|q| SearchRequest {
                ef,
                ..SearchRequest::new(q.to_vec(), a.k)
            })
            .collect();
        let label = ef.map_or(String::new(), |e| format!(" ef={e}"));

        // One query at a time, one thread. The flat index scans everything per query, so it
        // times only the first `single_queries` queries.
        let single = if index == IndexKind::Flat {
            a.single_queries.min(nq).max(1)
        } else {
            nq
        };
        eprintln!("bench{label}: {single} queries one at a time, 1 thread");
        let mut single_results = Vec::new();
        let d0 = c.distance_computations();
        let st = best_of(a.reps, || {
            single_results = reqs[..single]
                .iter()
                .map(|r| c.search(r).map(|h| ids_of(&h)).unwrap_or_default())
                .collect();
        });
        let dist_per_query =
            (c.distance_computations() - d0) as f64 / (a.reps.max(1) * single) as f64;
        let single_recall = recall_at_10(&single_results, &gt, gt_k);

        // Batched, all threads.
        eprintln!("bench{label}: batched search, {threads} threads");
        let mut batch_results = Vec::new();
        let mt = best_of(a.reps, || {
            batch_results = c.search_batch(&reqs).unwrap_or_default();
        });
        if batch_results.len() != nq {
            bail!("batched search failed");
        }
        let recall = recall_at_10(
            &batch_results.iter().map(|h| ids_of(h)).collect::<Vec<_>>(),
            &gt,
            gt_k,
        );

        let mut line = base_line.clone();
        let mut params = index_params(index, &a.metric, json!(ef));
        params["isa"] = json!(format!("{:?}", quiver_kernels::isa()).to_lowercase());
        line["params"] = params;
        line["recall_at_10"] = json!(round(
            if index == IndexKind::Flat {
                recall
            } else {
                single_recall
            },
            5
        ));
        line["recall_at_10_mt"] = json!(round(recall, 5));
        line["qps_1t"] = json!(round(single as f64 / st.wall_s, 1));
        line["qps_1t_mode"] = json!(format!(
            "one search call per query on the calling thread, {single} queries; best of {}",
            a.reps
        ));
        line["qps_mt"] = json!(round(nq as f64 / mt.wall_s, 1));
        line["cpu_util_1t"] = json!(st.cpu_util.map(|x| round(x, 2)));
        line["cpu_util_mt"] = json!(mt.cpu_util.map(|x| round(x, 2)));
        line["other_cpu_1t"] = json!(st.other_cpu.map(|x| round(x, 2)));
        line["other_cpu_mt"] = json!(mt.other_cpu.map(|x| round(x, 2)));
        line["dist_per_query"] = json!(round(dist_per_query, 1));
        // What the searches so far made resident: mapped files count once touched.
        line["rss_search_mb"] = json!(sysinfo::rss_mb().map(|x| round(x, 1)));
        if index == IndexKind::Flat {
            // The flat index's batch is a matrix product: also time it on one thread, which is
            // how FAISS's qps_1t is measured (one batch call, one thread).
            eprintln!("bench: batched search, 1 thread");
            let bt = best_of(a.reps, || {
                one.install(|| {
                    let _ = c.search_batch(&reqs);
                });
            });
            line["qps_1t_batch"] = json!(round(nq as f64 / bt.wall_s, 1));
            line["cpu_util_1t_batch"] = json!(bt.cpu_util.map(|x| round(x, 2)));
        }
        eprintln!(
            "bench{label}: recall@10 {:.4}, qps_1t {}, qps_mt {}, dist/q {:.0}",
            line["recall_at_10"].as_f64().unwrap_or(0.0),
            line["qps_1t"],
            line["qps_mt"],
            dist_per_query
        );
        println!("{line}");
    }
    for nf in &filters {
        let truth_path = a.dataset.join(format!("groundtruth.{}.ivecs", nf.name));
        let (fgt, fgt_rows, fgt_k) = quiver_formats::read_ivecs(&truth_path)?;
        let fnq = a.filter_queries.min(nq).min(fgt_rows);
        let matched = c.count_filtered(&nf.filter)?;
        let matching: std::collections::HashSet<u64> = c
            .scroll_filtered(
                None,
                usize::MAX,
                quiver_engine::With::default(),
                Some(&nf.filter),
            )?
            .points
            .iter()
            .filter_map(|r| match r.id {
                quiver_engine::PointId::Num(x) => Some(x),
                quiver_engine::PointId::Uuid(_) => None,
            })
            .collect();
        for ef in a.ef.iter().copied() {
            let ef = (index != IndexKind::Flat).then_some(ef);
            let reqs = bench_filters::requests(&queries, dim, fnq, a.k, ef, &nf.filter);
            let label = format!(
                " filter={}{}",
                nf.name,
                ef.map_or(String::new(), |e| format!(" ef={e}"))
            );
            eprintln!("bench{label}: {fnq} queries one at a time, 1 thread");
            let mut results = Vec::new();
            let d0 = c.distance_computations();
            let st = best_of(a.reps, || {
                results = reqs
                    .iter()
                    .map(|r| c.search(r).map(|h| ids_of(&h)).unwrap_or_default())
                    .collect();
            });
            let dist_per_query =
                (c.distance_computations() - d0) as f64 / (a.reps.max(1) * fnq.max(1)) as f64;
            let recall = recall_at_10(&results, &fgt, fgt_k);
            let returned: usize = results.iter().map(Vec::len).sum();
            let not_matching = results
                .iter()
                .flatten()
                .filter(|id| !matching.contains(id))
                .count();
            let mut line = base_line.clone();
            line["nq"] = json!(fnq);
            line["params"] = index_params(index, &a.metric, json!(ef));
            line["params"]["filter_scan_fraction"] = json!(a.filter_scan_fraction);
            line["filter"] = json!(nf.name);
            line["selectivity"] = json!(nf.selectivity);
            line["matched"] = json!(matched);
            line["recall_at_10"] = json!(round(recall, 5));
            line["qps_1t"] = json!(round(fnq as f64 / st.wall_s, 1));
            line["qps_1t_mode"] = json!(format!(
                "one search call per query on the calling thread, {fnq} queries, filter planned per segment (field indexes; scan of the candidates when at most max(1000, {} of the rows), else graph search checking the filter); best of {}",
                a.filter_scan_fraction, a.reps
            ));
            line["cpu_util_1t"] = json!(st.cpu_util.map(|x| round(x, 2)));
            line["other_cpu_1t"] = json!(st.other_cpu.map(|x| round(x, 2)));
            line["dist_per_query"] = json!(round(dist_per_query, 1));
            line["returned_mean"] = json!(round(returned as f64 / fnq.max(1) as f64, 3));
            line["returned_not_matching"] = json!(not_matching);
            eprintln!(
                "bench{label}: recall@10 {recall:.4}, qps_1t {}, dist/q {dist_per_query:.0}, matched {matched}",
                line["qps_1t"]
            );
            println!("{line}");
        }
    }
    Ok(())
}

/// A temporary data directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let p = base.join(format!("quiver-bench-{}-{attempt}", std::process::id()));
            if std::fs::create_dir(&p).is_ok() {
                return Ok(TempDir(p));
            }
        }
        bail!("cannot create a temporary directory in {}", base.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
