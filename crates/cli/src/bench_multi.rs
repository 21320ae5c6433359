//! `quiver bench-multi`: multi-vector (late-interaction) search on token vectors, as
//! `scripts/wordnet-multivector` writes them: recall@10 of MUVERA + exact re-scoring against
//! exact MaxSim, queries per second on one thread, MaxSim evaluations and encoding
//! comparisons per query, over FDE settings and re-score depths; the exact MaxSim scan's
//! queries per second beside it; and how often each query's source synset is in the top 10
//! by MaxSim and by the pooled (mean) vector, when `query.jsonl` names it.
//!
//! Ground truth (exact MaxSim top 100, by the index crate's scorer, all threads) is computed
//! on the first run and kept as `groundtruth.maxsim.ivecs` in the dataset directory.

use anyhow::{Context, Result, bail};
use quiver_engine::{
    CollectionConfig, Database, DatabaseOptions, Distance, Durability, IndexKind, Muvera, Point,
    Quantization, Schema, SearchRequest, SettingsPatch, VectorKind,
};
use quiver_index::multi::MaxSim;
use rayon::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchMultiArgs {
    /// Directory with base.tokens.fvecs and query.tokens.fvecs (one row per token) and their
    /// `.counts` files (tokens per text), and optionally query.jsonl (`source_id`).
    pub dataset: PathBuf,
    /// Use only the first N documents (the cached ground truth is then not used).
    #[arg(long)]
    pub docs: Option<usize>,
    /// Use only the first N queries.
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Queries timed through the exact MaxSim scan (one thread).
    #[arg(long, default_value_t = 100)]
    pub exact_queries: usize,
    /// MUVERA SimHash bits per repetition to sweep.
    #[arg(long, value_delimiter = ',', default_value = "2,3,4")]
    pub k_sim: Vec<u32>,
    /// MUVERA inner projection widths to sweep (0: none).
    #[arg(long, value_delimiter = ',', default_value = "16")]
    pub d_proj: Vec<usize>,
    /// MUVERA repetitions to sweep.
    #[arg(long, value_delimiter = ',', default_value = "10,20")]
    pub repetitions: Vec<usize>,
    /// MUVERA final projection width (0: none).
    #[arg(long, default_value_t = 0)]
    pub d_final: usize,
    /// Graph candidates re-scored by exact MaxSim, to sweep.
    #[arg(long, value_delimiter = ',', default_value = "25,50,100,200,400")]
    pub rescore: Vec<usize>,
    /// HNSW beam width (a search uses at least the re-score depth).
    #[arg(long, default_value_t = 64)]
    pub ef: usize,
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// What the graph traverses on: none, lvq8, lvq4 or lvq4x8.
    #[arg(long, default_value = "lvq8")]
    pub quantization: String,
    /// Threads for ground truth and building (searches run on one).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Compute (or check) the ground truth file and stop.
    #[arg(long)]
    pub groundtruth_only: bool,
}

/// Token lists, back to back, with per-text token counts.
struct Texts {
    values: Vec<f32>,
    /// Start of text i's tokens (in tokens); `starts[n]` = total.
    starts: Vec<usize>,
    dim: usize,
}

impl Texts {
    fn read(fvecs: &Path, limit: Option<usize>) -> Result<Texts> {
        let (values, rows, dim) = quiver_formats::read_fvecs(fvecs)?;
        let mut name = fvecs.file_name().unwrap_or_default().to_os_string();
        name.push(".counts");
        let counts_path = fvecs.with_file_name(name);
        let counts = std::fs::read_to_string(&counts_path)
            .with_context(|| format!("cannot read {}", counts_path.display()))?;
        let mut starts = vec![0];
        for (i, line) in counts.lines().enumerate() {
            if limit.is_some_and(|l| i >= l) {
                break;
            }
            let n: usize = line
                .trim()
                .parse()
                .with_context(|| format!("{}: line {}", counts_path.display(), i + 1))?;
            starts.push(starts[starts.len() - 1] + n);
        }
        let total = starts[starts.len() - 1];
        if total > rows || (limit.is_none() && total != rows) {
            bail!(
                "{} counts {total} tokens, {} holds {rows}",
                counts_path.display(),
                fvecs.display()
            );
        }
        let mut values = values;
        values.truncate(total * dim);
        Ok(Texts {
            values,
            starts,
            dim,
        })
    }

    fn len(&self) -> usize {
        self.starts.len() - 1
    }

    fn text(&self, i: usize) -> &[f32] {
        &self.values[self.starts[i] * self.dim..self.starts[i + 1] * self.dim]
    }

    fn lists(&self, i: usize) -> Vec<Vec<f32>> {
        self.text(i)
            .chunks_exact(self.dim)
            .map(<[f32]>::to_vec)
            .collect()
    }

    /// Every token normalised (the collections below are cosine: MaxSim over unit tokens, as
    /// ColBERT scores).
    fn normalise(&mut self) {
        for t in self.values.chunks_exact_mut(self.dim) {
            let norm = t.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                t.iter_mut().for_each(|x| *x /= norm);
            }
        }
    }

    /// Text i's normalised mean token (the pooled sentence vector).
    fn pooled(&self, i: usize) -> Vec<f32> {
        let mut mean = vec![0.0f32; self.dim];
        for t in self.text(i).chunks_exact(self.dim) {
            mean.iter_mut().zip(t).for_each(|(m, x)| *m += x);
        }
        let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        mean.iter_mut().for_each(|x| *x /= norm);
        mean
    }
}

const GT_K: usize = 100;

/// Exact MaxSim top 100 per query, best first (ties: lower id), all threads.
fn ground_truth(docs: &Texts, queries: &Texts) -> Vec<Vec<u32>> {
    (0..queries.len())
        .into_par_iter()
        .map(|q| {
            let mut scorer = MaxSim::new(queries.text(q), queries.dim);
            let mut top = quiver_kernels::TopK::new(GT_K);
            for d in 0..docs.len() {
                top.push(scorer.score(docs.text(d)), d as u64);
            }
            top.into_sorted_vec()
                .into_iter()
                .map(|(_, d)| d as u32)
                .collect()
        })
        .collect()
}

fn read_or_compute_gt(a: &BenchMultiArgs, docs: &Texts, queries: &Texts) -> Result<Vec<Vec<u32>>> {
    let path = a.dataset.join("groundtruth.maxsim.ivecs");
    if a.docs.is_none() && path.is_file() {
        let (gt, rows, k) = quiver_formats::read_ivecs(&path)?;
        if rows >= queries.len() && k == GT_K {
            return Ok(gt
                .chunks_exact(k)
                .take(queries.len())
                .map(|r| r.iter().map(|&x| x as u32).collect())
                .collect());
        }
    }
    eprintln!(
        "bench-multi: computing exact MaxSim ground truth for {} queries",
        queries.len()
    );
    let gt = ground_truth(docs, queries);
    if a.docs.is_none() {
        let mut w = quiver_formats::IvecsWriter::create(&path, GT_K)?;
        for row in &gt {
            let mut r: Vec<i32> = row.iter().map(|&x| x as i32).collect();
            r.resize(GT_K, -1);
            w.write_rows(&r)?;
        }
        w.finish()?;
    }
    Ok(gt)
}

/// Mean over queries of |returned top 10 ∩ true top 10| / 10.
fn recall_at_10(results: &[Vec<u64>], gt: &[Vec<u32>]) -> f64 {
    let total: f64 = results
        .iter()
        .zip(gt)
        .map(|(got, truth)| {
            let truth = &truth[..truth.len().min(10)];
            let hit = got
                .iter()
                .take(10)
                .filter(|&&id| truth.contains(&(id as u32)))
                .count();
            hit as f64 / truth.len().max(1) as f64
        })
        .sum();
    total / results.len().max(1) as f64
}

/// Source synset in the top 10 by exact MaxSim and by the pooled vector (brute force).
fn relevance(
    dir: &Path,
    docs: &Texts,
    queries: &Texts,
    gt: &[Vec<u32>],
) -> Result<Option<serde_json::Value>> {
    let path = dir.join("query.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let sources: Vec<Option<u64>> = text
        .lines()
        .take(queries.len())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["source_id"].as_u64())
        })
        .collect();
    let pooled_docs: Vec<Vec<f32>> = (0..docs.len())
        .into_par_iter()
        .map(|d| docs.pooled(d))
        .collect();
    let pooled_top: Vec<Vec<u64>> = (0..queries.len())
        .into_par_iter()
        .map(|q| {
            let p = queries.pooled(q);
            let mut top = quiver_kernels::TopK::new(10);
            for (d, v) in pooled_docs.iter().enumerate() {
                top.push(quiver_kernels::dot(&p, v), d as u64);
            }
            top.into_sorted_vec().into_iter().map(|(_, d)| d).collect()
        })
        .collect();
    let (mut n, mut maxsim, mut pooled) = (0usize, 0usize, 0usize);
    for (q, s) in sources.iter().enumerate() {
        let Some(s) = *s else { continue };
        n += 1;
        maxsim += usize::from(gt[q].iter().take(10).any(|&d| u64::from(d) == s));
        pooled += usize::from(pooled_top[q].contains(&s));
    }
    Ok(Some(json!({
        "queries_with_source": n,
        "source_in_top10_maxsim": maxsim as f64 / n.max(1) as f64,
        "source_in_top10_pooled": pooled as f64 / n.max(1) as f64,
    })))
}

fn ids(hits: &[quiver_engine::ScoredPoint]) -> Vec<u64> {
    hits.iter()
        .map(|h| match h.id {
            quiver_engine::PointId::Num(n) => n,
            quiver_engine::PointId::Uuid(_) => u64::MAX,
        })
        .collect()
}

pub fn run(a: BenchMultiArgs) -> Result<()> {
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("cannot start the thread pool")?;
    let Some(quantization) = Quantization::parse(&a.quantization) else {
        bail!(
            "unknown quantization `{}`: use {}",
            a.quantization,
            Quantization::NAMES
        );
    };
    let mut docs = Texts::read(&a.dataset.join("base.tokens.fvecs"), a.docs)?;
    let mut queries = Texts::read(&a.dataset.join("query.tokens.fvecs"), Some(a.queries))?;
    if docs.dim != queries.dim {
        bail!(
            "documents have {} dimensions, queries {}",
            docs.dim,
            queries.dim
        );
    }
    docs.normalise();
    queries.normalise();
    let dim = docs.dim;
    let (n, nq) = (docs.len(), queries.len());
    eprintln!(
        "bench-multi: {n} documents ({} tokens), {nq} queries ({} tokens), dim {dim}",
        docs.starts[n], queries.starts[nq]
    );
    let gt = read_or_compute_gt(&a, &docs, &queries)?;
    if a.groundtruth_only {
        return Ok(());
    }
    if let Some(r) = relevance(&a.dataset, &docs, &queries, &gt)? {
        println!("{}", json!({"relevance": r}));
    }
    let tmp = tempfile_dir()?;
    let db = Database::open(
        &tmp.0,
        DatabaseOptions {
            durability: Durability::Periodic(Duration::from_secs(1)),
            ..crate::database_options()
        },
    )?;
    let token_bytes = docs.values.len() * 4;
    let mut exact_done = false;
    for &k_sim in &a.k_sim {
        for &d_proj in &a.d_proj {
            for &repetitions in &a.repetitions {
                let muvera = Muvera {
                    k_sim,
                    d_proj,
                    repetitions,
                    d_final: a.d_final,
                    rescore: a.rescore.first().copied().unwrap_or(100),
                    ..Muvera::default()
                };
                let index = IndexKind::Hnsw {
                    m: a.m,
                    ef_construction: a.ef_construction,
                    quantization,
                };
                let mut kind = VectorKind::multi(dim, Distance::Cosine, index);
                if let VectorKind::MultiVector {
                    muvera: m,
                    max_tokens,
                    ..
                } = &mut kind
                {
                    *m = muvera;
                    *max_tokens = quiver_engine::DEFAULT_MAX_TOKENS;
                }
                let fde_dim = kind.dim();
                let mut schema = Schema::dense(1, Distance::Dot);
                schema.vectors.clear();
                schema.vectors.insert("m".into(), kind);
                let name = format!("k{k_sim}-p{d_proj}-r{repetitions}");
                let c = db.create_collection(&name, schema, CollectionConfig::default())?;
                let t = Instant::now();
                for chunk in (0..n).collect::<Vec<_>>().chunks(5_000) {
                    let points: Vec<Point> = chunk
                        .par_iter()
                        .map(|&d| {
                            Point::from_payload(d as u64, Default::default())
                                .with_multi("m", docs.lists(d))
                        })
                        .collect();
                    c.upsert(points)?;
                }
                c.flush()?;
                let build_s = t.elapsed().as_secs_f64();
                let info = c.info()?;
                let setting = json!({
                    "k_sim": k_sim, "d_proj": d_proj, "repetitions": repetitions,
                    "d_final": a.d_final, "fde_dim": fde_dim,
                    "m": a.m, "ef_construction": a.ef_construction, "quantization": quantization.name(),
                });
                if !exact_done {
                    exact_done = true;
                    let nx = a.exact_queries.min(nq);
                    let d0 = c.distance_computations();
                    let t = Instant::now();
                    let mut results = Vec::with_capacity(nx);
                    for q in 0..nx {
                        let req = SearchRequest {
                            exact: true,
                            ..SearchRequest::multi("m", queries.lists(q), 10)
                        };
                        results.push(ids(&c.search(&req)?));
                    }
                    let secs = t.elapsed().as_secs_f64();
                    println!(
                        "{}",
                        json!({
                            "search": "exact_maxsim", "n": n, "nq": nx,
                            "recall_at_10": recall_at_10(&results, &gt[..nx]),
                            "qps_1t": nx as f64 / secs.max(1e-9),
                            "maxsim_per_query": (c.distance_computations() - d0) as f64 / nx.max(1) as f64,
                            "token_bytes": token_bytes,
                        })
                    );
                }
                for &rescore in &a.rescore {
                    c.update_settings(&SettingsPatch {
                        muvera_rescore: Some(rescore),
                        ..SettingsPatch::default()
                    })?;
                    let d0 = c.distance_computations();
                    let t = Instant::now();
                    let mut results = Vec::with_capacity(nq);
                    for q in 0..nq {
                        let req = SearchRequest {
                            ef: Some(a.ef),
                            ..SearchRequest::multi("m", queries.lists(q), 10)
                        };
                        results.push(ids(&c.search(&req)?));
                    }
                    let secs = t.elapsed().as_secs_f64();
                    println!(
                        "{}",
                        json!({
                            "search": "muvera", "params": setting, "rescore": rescore, "ef": a.ef,
                            "n": n, "nq": nq,
                            "recall_at_10": recall_at_10(&results, &gt),
                            "qps_1t": nq as f64 / secs.max(1e-9),
                            "work_per_query": (c.distance_computations() - d0) as f64 / nq.max(1) as f64,
                            "build_s": build_s,
                            "disk_bytes": info.disk_bytes - info.wal_bytes,
                        })
                    );
                }
                drop(c);
                db.drop_collection(&name)?;
            }
        }
    }
    Ok(())
}

/// A temporary data directory removed on drop.
struct TempDir(PathBuf);

fn tempfile_dir() -> Result<TempDir> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let p = base.join(format!(
            "quiver-bench-multi-{}-{attempt}",
            std::process::id()
        ));
        if std::fs::create_dir(&p).is_ok() {
            return Ok(TempDir(p));
        }
    }
    bail!("cannot create a temporary directory in {}", base.display())
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
