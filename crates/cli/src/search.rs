//! `quiver search`: one query, printed as a table or JSON.

use crate::hybrid::{self, FusionArg};
use anyhow::{Context, Result, bail};
use quiver_engine::{
    DEFAULT_RRF_K, HybridQuery, QueryStage, QueryVector, Schema, ScoredPoint, SearchRequest, With,
};
use quiver_formats::{Format, JsonFields, VectorReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct SearchArgs {
    pub collection: String,
    /// The query vector: comma-separated numbers or a JSON array.
    #[arg(long, conflicts_with = "vector_file")]
    pub vector: Option<String>,
    /// A text query: on a text-embedded vector (`quiver create --text-field`), embedded by
    /// its model; on a BM25 vector (`quiver create --bm25-field`), its terms ranked by BM25.
    /// Without --vector-name, a collection without an unnamed vector searches its only text
    /// or BM25 vector.
    #[arg(long, conflicts_with_all = ["vector", "vector_file"])]
    pub text: Option<String>,
    /// Read the query from a vector file (.fvecs, .npy, JSON Lines).
    #[arg(long)]
    pub vector_file: Option<PathBuf>,
    /// Which vector of --vector-file (0-based).
    #[arg(long, default_value_t = 0)]
    pub row: u64,
    /// Number of results.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Vector to search (default: the unnamed vector).
    #[arg(long, default_value = "")]
    pub vector_name: String,
    /// Cosine/dot: minimum score; euclid: maximum distance.
    #[arg(long)]
    pub score_threshold: Option<f32>,
    /// Include each result's vectors.
    #[arg(long)]
    pub with_vector: bool,
    /// Leave payloads out.
    #[arg(long)]
    pub no_payload: bool,
    /// Graph search beam width (default 64; higher is more accurate and slower).
    #[arg(long)]
    pub ef: Option<usize>,
    /// Only points whose payload passes this filter (Qdrant's JSON filter language), e.g.
    /// '{"must": [{"key": "pos", "match": {"value": "n"}}]}'.
    #[arg(long)]
    pub filter: Option<String>,
    /// Print how the filter is answered per segment (field indexes, strategy) to stderr.
    #[arg(long, requires = "filter")]
    pub explain: bool,
    /// A hybrid query: one sub-query per `--prefetch NAME=QUERY` (NAME empty for the unnamed
    /// vector; QUERY a dense vector as in --vector, a sparse one as
    /// '{"indices": [...], "values": [...]}', or 'text:...' for a text vector's model).
    /// Their results are fused by --fusion, or, when a main query is given (--vector,
    /// --vector-file, --text on --vector-name), re-scored by it. --filter applies to every
    /// prefetch. E.g. --prefetch 'dense=text:tree bark' --prefetch
    /// 'words={"indices": [17, 90], "values": [1, 1]}' --fusion rrf.
    #[arg(long, value_name = "NAME=QUERY")]
    pub prefetch: Vec<String>,
    /// How many results each --prefetch passes on to fusion or re-scoring.
    #[arg(long, default_value_t = 50, requires = "prefetch")]
    pub prefetch_limit: usize,
    /// How to fuse the --prefetch results when there is no main query.
    #[arg(long, value_enum, default_value_t = FusionArg::Rrf, requires = "prefetch")]
    pub fusion: FusionArg,
    /// The k of reciprocal rank fusion (Qdrant's default, 2: the first of a list adds 1/2).
    #[arg(long, default_value_t = DEFAULT_RRF_K, requires = "prefetch")]
    pub rrf_k: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Parses a `--filter` argument; the error names the place in the filter.
pub(crate) fn parse_filter(text: &str) -> Result<quiver_engine::Filter> {
    quiver_engine::Filter::parse(text).map_err(|e| anyhow::anyhow!("--filter: {e}"))
}

pub(crate) fn parse_inline(s: &str) -> Result<Vec<f32>> {
    let t = s.trim();
    if t.starts_with('[') {
        let v: Vec<f64> =
            serde_json::from_str(t).context("--vector: not a JSON array of numbers")?;
        return Ok(v.into_iter().map(|x| x as f32).collect());
    }
    t.split(',')
        .enumerate()
        .map(|(i, x)| {
            x.trim()
                .parse::<f32>()
                .with_context(|| format!("--vector: element {i} (`{}`) is not a number", x.trim()))
        })
        .collect()
}

fn from_file(path: &Path, row: u64) -> Result<Vec<f32>> {
    let mut reader = VectorReader::open(path, Format::from_path(path)?, &JsonFields::default())?;
    let mut i = 0;
    while let Some(r) = reader.next_record()? {
        if i == row {
            return Ok(r.vector);
        }
        i += 1;
    }
    bail!("{}: has {i} vectors, no row {row}", path.display())
}

/// The vector a text query searches: `name` if given or if the collection has an unnamed
/// vector, else its only text-embedded or BM25 vector (else `name`, for the engine's error).
pub(crate) fn text_vector(schema: &Schema, name: &str) -> String {
    if !name.is_empty()
        || schema.vectors.contains_key(name)
        || schema.sparse_vectors.contains_key(name)
    {
        return name.to_string();
    }
    let dense = schema
        .vectors
        .iter()
        .filter(|(_, k)| k.embedding().is_some())
        .map(|(n, _)| n);
    let bm25 = schema
        .sparse_vectors
        .iter()
        .filter(|(_, k)| k.bm25.is_some())
        .map(|(n, _)| n);
    let candidates: Vec<&String> = dense.chain(bm25).collect();
    match candidates.as_slice() {
        [only] => (*only).clone(),
        _ => name.to_string(),
    }
}

pub fn run(data: &Path, a: SearchArgs) -> Result<()> {
    let filter = a.filter.as_deref().map(parse_filter).transpose()?;
    let db = crate::open_db(data)?;
    let c = db.collection(&a.collection)?;
    let schema = c.schema();
    let vector_name = match &a.text {
        Some(_) => text_vector(&schema, &a.vector_name),
        None => a.vector_name.clone(),
    };
    let is_bm25 = schema
        .sparse_vectors
        .get(&vector_name)
        .is_some_and(|k| k.bm25.is_some());
    let main_query = a.vector.is_some() || a.vector_file.is_some() || a.text.is_some();
    let vector: QueryVector = match (&a.vector, &a.vector_file, &a.text) {
        (Some(v), _, _) => parse_inline(v)?.into(),
        (None, Some(f), _) => from_file(f, a.row)?.into(),
        (None, None, Some(text)) if is_bm25 => {
            QueryVector::Sparse(c.bm25_query(&vector_name, text)?)
        }
        (None, None, Some(text)) => {
            let t = Instant::now();
            let v = c
                .embed_text(&vector_name, &[text.as_str()])?
                .pop()
                .context("the model returned no vector")?;
            if !a.json {
                eprintln!(
                    "embedded the query in {:.1} ms",
                    t.elapsed().as_secs_f64() * 1e3
                );
            }
            v.into()
        }
        (None, None, None) if a.prefetch.is_empty() => {
            bail!("give the query with --vector, --vector-file, --text or --prefetch")
        }
        (None, None, None) => QueryVector::Dense(Vec::new()),
    };
    if a.explain
        && let Some(f) = &filter
    {
        eprint!("{}", c.explain(f)?);
    }
    let req = SearchRequest {
        vector_name,
        vector,
        k: a.k,
        score_threshold: a.score_threshold,
        with: With {
            payload: !a.no_payload,
            vectors: a.with_vector,
        },
        ef: a.ef,
        filter,
        exact: false,
        offset: 0,
    };
    let t = Instant::now();
    let hits = if a.prefetch.is_empty() {
        c.search(&req)?
    } else {
        let prefetch = a
            .prefetch
            .iter()
            .enumerate()
            .map(|(n, spec)| hybrid::prefetch(&c, spec, n, a.prefetch_limit))
            .collect::<Result<Vec<_>>>()?;
        let mut root = match main_query {
            true => QueryStage::nearest(&req.vector_name, req.vector, a.k).with_prefetch(prefetch),
            false => QueryStage::fused(a.fusion.fusion(a.rrf_k), prefetch, a.k),
        };
        root.filter = req.filter;
        root.score_threshold = req.score_threshold;
        root.ef = req.ef;
        c.query(&HybridQuery {
            root,
            offset: 0,
            with: req.with,
        })?
    };
    let ms = t.elapsed().as_secs_f64() * 1e3;
    print(&hits, a.json, ms);
    Ok(())
}

/// Prints hits as JSON or as a table (the time to stderr).
fn print(hits: &[ScoredPoint], json: bool, ms: f64) {
    if json {
        let out: Vec<serde_json::Value> = hits
            .iter()
            .map(|h| {
                let mut o = serde_json::json!({"id": h.id.to_json(), "score": h.score});
                if let Some(p) = &h.payload {
                    o["payload"] = serde_json::Value::Object(p.clone());
                }
                if let Some(v) = &h.vectors {
                    o["vectors"] = serde_json::json!(v);
                }
                o
            })
            .collect();
        println!("{}", serde_json::Value::Array(out));
    } else {
        println!("{:>4}  {:>10}  {:<38}  payload", "rank", "score", "id");
        for (i, h) in hits.iter().enumerate() {
            let payload = h
                .payload
                .as_ref()
                .map(|p| serde_json::Value::Object(p.clone()).to_string())
                .unwrap_or_default();
            let payload = if payload.chars().count() > 120 {
                payload.chars().take(117).collect::<String>() + "..."
            } else {
                payload
            };
            println!(
                "{:>4}  {:>10.6}  {:<38}  {payload}",
                i + 1,
                h.score,
                h.id.to_string()
            );
            if let Some(v) = &h.vectors {
                println!("      vectors: {}", serde_json::json!(v));
            }
        }
        eprintln!("{} result(s) in {ms:.2} ms", hits.len());
    }
}
