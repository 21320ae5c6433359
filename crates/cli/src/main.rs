//! `quiver`: the command-line face of Quiver.

mod bench;
mod bench_filters;
mod bench_multi;
mod demo;
mod embed;
mod hybrid;
mod import;
mod progress;
mod search;
mod serve;
mod sysinfo;
mod texts;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use quiver_engine::{
    Bm25, CollectionConfig, Database, DatabaseOptions, Distance, IndexKind, PointId, Quantization,
    Schema, SparseKind, TEXT_MODEL_DIM, VectorKind,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "quiver",
    version,
    about = "Quiver: an embedded vector database"
)]
struct Cli {
    /// Data directory, created if missing [default: ./quiver-data; bench: a temporary one].
    #[arg(long, global = true, env = "QUIVER_DATA")]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a collection.
    Create(CreateArgs),
    /// List collections.
    List,
    /// Describe a collection: schema, points, segments, disk use.
    Info {
        collection: String,
        #[arg(long)]
        json: bool,
    },
    /// Drop a collection and delete its files.
    Drop { collection: String },
    /// Import vectors from .fvecs, .npy or JSON Lines (streaming).
    Import(import::ImportArgs),
    /// Embed texts (plain text or JSON Lines) with all-MiniLM-L6-v2 into .fvecs, .npy or .jsonl.
    Embed(embed::EmbedArgs),
    /// Search a collection with a vector given inline or read from a file.
    Search(search::SearchArgs),
    /// Retrieve points by id.
    Get {
        collection: String,
        ids: Vec<String>,
        /// Include vectors.
        #[arg(long)]
        with_vector: bool,
    },
    /// List points in id order, all or those whose payload passes --filter, as JSON lines
    /// (a page at a time; the next page's --from is printed to stderr).
    Scroll {
        collection: String,
        /// Only points whose payload passes this filter (Qdrant's JSON filter language).
        #[arg(long)]
        filter: Option<String>,
        /// Start at this id (inclusive).
        #[arg(long)]
        from: Option<String>,
        /// Points per page.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Every page, not only the first.
        #[arg(long)]
        all: bool,
        /// Include vectors.
        #[arg(long)]
        with_vector: bool,
    },
    /// Delete points by id, or those whose payload passes --filter.
    Delete {
        collection: String,
        ids: Vec<String>,
        /// Delete the points matching this filter (Qdrant's JSON filter language).
        #[arg(long, conflicts_with = "ids")]
        filter: Option<String>,
    },
    /// Count points, all or those whose payload passes --filter.
    Count {
        collection: String,
        /// Count the points matching this filter (Qdrant's JSON filter language).
        #[arg(long)]
        filter: Option<String>,
        /// Print how the filter is answered per segment to stderr.
        #[arg(long, requires = "filter")]
        explain: bool,
    },
    /// Declare a payload field index (built now for existing data, and at every seal), or
    /// drop one with --drop.
    Index {
        collection: String,
        /// The payload key path, as in filters (`lexname`, `meta.lang`, `tags[]`).
        field: String,
        /// keyword (strings: match), integer (match, range), float (range) or bool (match).
        #[arg(long = "type", required_unless_present = "drop")]
        kind: Option<String>,
        /// Drop the field's index instead.
        #[arg(long, conflicts_with = "kind")]
        drop: bool,
    },
    /// Seal the mutable segment and rewrite segments with deleted points, freeing disk space.
    Compact { collection: String },
    /// Benchmark on a dataset directory (base.fvecs, query.fvecs, groundtruth.ivecs).
    Bench(bench::BenchArgs),
    /// Benchmark multi-vector (MaxSim) search on token vectors: MUVERA settings and re-score
    /// depths against exact MaxSim (datasets from scripts/wordnet-multivector).
    BenchMulti(bench_multi::BenchMultiArgs),
    /// Serve the data directory over HTTP in Qdrant's REST dialect (docs/server.md).
    Serve(serve::ServeArgs),
    /// Run the demo: generate a small dataset, import it into a collection, search it.
    Demo(demo::DemoArgs),
}

#[derive(clap::Args)]
struct CreateArgs {
    collection: String,
    /// Dimension of the vector [with --text-field: the model's 384; fewer keeps the first
    /// D values, rescaled (Matryoshka truncation)].
    #[arg(
        long,
        visible_alias = "dims",
        required_unless_present_any = ["text_field", "bm25_field"]
    )]
    dim: Option<usize>,
    /// Declare the vector as embedded from the text in this payload field by the built-in
    /// model (all-MiniLM-L6-v2): points are upserted with their text and no vector, and
    /// `quiver search --text` queries it.
    #[arg(long)]
    text_field: Option<String>,
    /// cosine, dot or euclid.
    #[arg(long, default_value = "cosine", value_parser = parse_distance)]
    distance: Distance,
    /// Name of the vector (default: the unnamed vector).
    #[arg(long, default_value = "")]
    vector_name: String,
    #[command(flatten)]
    bm25: Bm25Args,
    /// Seal the mutable segment (in the background) once its ids, vectors and payloads take
    /// this many MiB.
    #[arg(long, default_value_t = 256)]
    seal_threshold_mb: u64,
    #[command(flatten)]
    index: IndexArgs,
}

/// A BM25 vector filled from a payload text field (alone, or beside the dense vector).
#[derive(clap::Args, Clone, Debug)]
struct Bm25Args {
    /// Declare a BM25 sparse vector computed from the text in this payload field: points
    /// are upserted with their text, and `quiver search --text` ranks them by BM25 with the
    /// collection's statistics. With --dim or --text-field, beside that dense vector.
    #[arg(long)]
    bm25_field: Option<String>,
    /// Name of the BM25 vector.
    #[arg(long, default_value = "bm25", requires = "bm25_field")]
    bm25_name: String,
    /// The Snowball stemmer's language.
    #[arg(long, default_value = "english", requires = "bm25_field")]
    language: String,
    /// Keep stop words (dropped by default; lists exist for English only).
    #[arg(long, requires = "bm25_field")]
    no_stop_words: bool,
    /// BM25's term-count saturation.
    #[arg(long, default_value_t = 1.2, requires = "bm25_field")]
    k1: f32,
    /// BM25's length normalisation, 0 to 1.
    #[arg(long, default_value_t = 0.75, requires = "bm25_field")]
    b: f32,
}

/// Index of sealed segments.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct IndexArgs {
    /// flat (exact) or hnsw.
    #[arg(long, default_value = "hnsw")]
    pub index: String,
    /// HNSW: links per node (2·m on the bottom level).
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW: beam width while building.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// HNSW: what the graph search traverses on: lvq8 (one byte per dimension; the best
    /// candidates are re-scored with the f32 vectors), lvq4 (half a byte; the whole beam
    /// re-scored with the f32 vectors), lvq4x8 (half a byte, and the whole beam re-scored on
    /// 8-bit residual codes: the f32 vectors are not read), none (the f32 vectors), or
    /// LeanVec: leanvec-id:D or leanvec-ood:D (codes of the vectors projected to D dimensions,
    /// the whole beam re-scored at full dimension), optionally followed by
    /// :PRIMARY:SECONDARY, the codes of the projected vectors (lvq8 or lvq4) and what the beam
    /// is re-scored on (lvq8 codes or the f32 vectors); default :lvq8:lvq8.
    #[arg(long, default_value = "lvq8")]
    pub quantization: String,
    /// LeanVec-OOD: a sample of queries (.fvecs) to learn the projection from, stored with
    /// the collection and used by every later seal.
    #[arg(long)]
    pub leanvec_queries: Option<PathBuf>,
}

impl IndexArgs {
    pub(crate) fn kind(&self) -> Result<IndexKind> {
        match self.index.as_str() {
            "flat" => Ok(IndexKind::Flat),
            "hnsw" => {
                let Some(quantization) = Quantization::parse(&self.quantization) else {
                    bail!(
                        "unknown quantization `{}`: use {}",
                        self.quantization,
                        Quantization::NAMES
                    );
                };
                Ok(IndexKind::Hnsw {
                    m: self.m,
                    ef_construction: self.ef_construction,
                    quantization,
                })
            }
            other => bail!("unknown index `{other}`: use flat or hnsw"),
        }
    }
}

impl IndexArgs {
    /// Stores the rows of `--leanvec-queries`, if given, as the query sample of `vector`.
    pub(crate) fn store_query_sample(
        &self,
        c: &quiver_engine::Collection,
        vector: &str,
    ) -> Result<()> {
        let Some(path) = &self.leanvec_queries else {
            return Ok(());
        };
        let (rows, n, dim) = quiver_formats::read_fvecs(path)
            .with_context(|| format!("cannot read --leanvec-queries {}", path.display()))?;
        store_query_sample(c, vector, &rows, n, dim)
            .with_context(|| format!("--leanvec-queries {}", path.display()))
    }
}

/// Stores `n` queries of dimension `dim` (row-major `rows`) as the query sample of `vector`.
pub(crate) fn store_query_sample(
    c: &quiver_engine::Collection,
    vector: &str,
    rows: &[f32],
    n: usize,
    dim: usize,
) -> Result<()> {
    let queries: Vec<Vec<f32>> = rows
        .chunks_exact(dim.max(1))
        .take(n)
        .map(<[f32]>::to_vec)
        .collect();
    let stored = c.set_query_sample(vector, &queries)?;
    eprintln!(
        "stored {stored} of {n} queries as the LeanVec query sample of vector {vector:?} in `{}`",
        c.name()
    );
    Ok(())
}

pub(crate) fn parse_distance(s: &str) -> Result<Distance, String> {
    Distance::parse(s).ok_or_else(|| format!("unknown distance `{s}`: use cosine, dot or euclid"))
}

pub(crate) fn parse_id(s: &str) -> Result<PointId> {
    PointId::parse(s)
        .with_context(|| format!("`{s}` is not a point id (an unsigned integer or a UUID)"))
}

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Logs warnings and errors from the engine (a torn WAL tail, say) to stderr.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
            || m.target() == "quiver::progress"
            || VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!(
                "quiver: {}: {}",
                r.level().as_str().to_lowercase(),
                r.args()
            );
        }
    }
    fn flush(&self) {}
}

fn main() {
    let _ = log::set_logger(&StderrLog);
    // Info level reaches the logger so that progress of long builds is shown; other info
    // messages are filtered in `StderrLog::enabled` unless QUIVER_DEBUG is set.
    log::set_max_level(log::LevelFilter::Info);
    VERBOSE.store(
        std::env::var_os("QUIVER_DEBUG").is_some(),
        std::sync::atomic::Ordering::Relaxed,
    );
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        // The reader of our output went away (`quiver scroll --all | head`): not an error.
        let broken_pipe = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if broken_pipe {
            return;
        }
        eprintln!("error: {}", error_chain(&e));
        std::process::exit(1);
    }
}

/// An error and its causes, `: `-joined, each cause left out when the message before it
/// already says it (Quiver's errors put their source in their own message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Options for every database the CLI opens: the built-in text model (found as
/// `quiver_embed::locate_model` does, one thread per CPU), read only if a text is embedded.
pub(crate) fn database_options() -> DatabaseOptions {
    DatabaseOptions {
        text_embedder: Some(Arc::new(quiver_embed::LazyEmbedder::default())),
        ..DatabaseOptions::default()
    }
}

pub(crate) fn open_db(data: &std::path::Path) -> Result<Database> {
    Database::open(data, database_options())
        .with_context(|| format!("cannot open data directory {}", data.display()))
}

fn run(cli: Cli) -> Result<()> {
    let data = cli
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from("quiver-data"));
    match cli.command {
        Command::Create(a) => {
            let db = open_db(&data)?;
            let index = a.index.kind()?;
            let kind = match (&a.text_field, a.dim) {
                (Some(field), dim) => Some(VectorKind::text(
                    field,
                    dim.unwrap_or(TEXT_MODEL_DIM),
                    a.distance,
                    index,
                )),
                (None, Some(dim)) => Some(VectorKind::dense_indexed(dim, a.distance, index)),
                (None, None) if a.bm25.bm25_field.is_some() => None,
                (None, None) => bail!(
                    "give --dim, --text-field for a text-embedded vector or --bm25-field for a BM25 vector"
                ),
            };
            let sparse_vectors = match &a.bm25.bm25_field {
                Some(field) => {
                    let spec = Bm25 {
                        language: a.bm25.language.clone(),
                        stop_words: !a.bm25.no_stop_words,
                        k1: a.bm25.k1,
                        b: a.bm25.b,
                        ..Bm25::new(field)
                    };
                    BTreeMap::from([(a.bm25.bm25_name.clone(), SparseKind::bm25(spec))])
                }
                None => BTreeMap::new(),
            };
            let schema = Schema {
                sparse_vectors,
                vectors: kind
                    .map(|k| (a.vector_name.clone(), k))
                    .into_iter()
                    .collect(),
            };
            let config = CollectionConfig {
                seal_threshold_bytes: a.seal_threshold_mb.checked_mul(1 << 20).ok_or_else(
                    || anyhow::anyhow!("--seal-threshold-mb {} is too large", a.seal_threshold_mb),
                )?,
                ..CollectionConfig::default()
            };
            let c = db.create_collection(&a.collection, schema, config)?;
            a.index.store_query_sample(&c, &a.vector_name)?;
            eprintln!(
                "created collection `{}` in {}",
                a.collection,
                data.display()
            );
        }
        Command::List => {
            let db = open_db(&data)?;
            for name in db.list_collections() {
                println!("{name}");
            }
            for (name, reason) in db.damaged_collections() {
                println!("{name}\tdamaged: {reason}");
                eprintln!("collection `{name}` cannot be opened; `quiver drop {name}` removes it");
            }
        }
        Command::Info { collection, json } => {
            let db = open_db(&data)?;
            let info = db.collection(&collection)?.info()?;
            print_info(&info, json);
        }
        Command::Drop { collection } => {
            open_db(&data)?.drop_collection(&collection)?;
            eprintln!("dropped collection `{collection}`");
        }
        Command::Import(a) => import::run(&data, a)?,
        Command::Embed(a) => embed::run(a)?,
        Command::Search(a) => search::run(&data, a)?,
        Command::Serve(a) => serve::run(&data, a)?,
        Command::Get {
            collection,
            ids,
            with_vector,
        } => {
            let db = open_db(&data)?;
            let ids = ids
                .iter()
                .map(|s| parse_id(s))
                .collect::<Result<Vec<_>>>()?;
            let with = quiver_engine::With {
                payload: true,
                vectors: with_vector,
            };
            let mut out = std::io::stdout().lock();
            for r in db.collection(&collection)?.retrieve(&ids, with)? {
                print_record(&mut out, r)?;
            }
        }
        Command::Scroll {
            collection,
            filter,
            from,
            limit,
            all,
            with_vector,
        } => {
            let filter = filter.as_deref().map(search::parse_filter).transpose()?;
            let mut from = from.as_deref().map(parse_id).transpose()?;
            if limit == 0 {
                bail!("--limit must be at least 1");
            }
            let db = open_db(&data)?;
            let c = db.collection(&collection)?;
            let with = quiver_engine::With {
                payload: true,
                vectors: with_vector,
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            loop {
                let page = c.scroll_filtered(from, limit, with, filter.as_ref())?;
                for r in page.points {
                    print_record(&mut out, r)?;
                }
                match page.next {
                    Some(next) if all => from = Some(next),
                    Some(next) => {
                        eprintln!("more: continue with --from {next}");
                        break;
                    }
                    None => break,
                }
            }
            std::io::Write::flush(&mut out)?;
        }
        Command::Delete {
            collection,
            filter: Some(filter),
            ..
        } => {
            let filter = search::parse_filter(&filter)?;
            let db = open_db(&data)?;
            let n = db.collection(&collection)?.delete_by_filter(&filter)?;
            eprintln!("deleted {n} point(s) matching the filter");
        }
        Command::Count {
            collection,
            filter,
            explain,
        } => {
            let filter = filter.as_deref().map(search::parse_filter).transpose()?;
            let db = open_db(&data)?;
            let c = db.collection(&collection)?;
            let n = match &filter {
                Some(f) => {
                    if explain {
                        eprint!("{}", c.explain(f)?);
                    }
                    c.count_filtered(f)?
                }
                None => c.count_checked()?,
            };
            println!("{n}");
        }
        Command::Index {
            collection,
            field,
            kind,
            drop,
        } => {
            let db = open_db(&data)?;
            let c = db.collection(&collection)?;
            if drop {
                if c.drop_field_index(&field)? {
                    eprintln!("dropped the index on `{field}`");
                } else {
                    eprintln!("`{field}` has no index");
                }
            } else {
                let name = kind.unwrap_or_default();
                let Some(kind) = quiver_engine::FieldIndexKind::from_name(&name) else {
                    bail!("unknown field index type `{name}`: use keyword, integer, float or bool");
                };
                if c.create_field_index(&field, kind)? {
                    eprintln!("created a {kind} index on `{field}`");
                } else {
                    eprintln!("`{field}` already has a {kind} index");
                }
            }
        }
        Command::Delete {
            collection, ids, ..
        } => {
            if ids.is_empty() {
                bail!("give at least one id to delete, or --filter");
            }
            let db = open_db(&data)?;
            let ids = ids
                .iter()
                .map(|s| parse_id(s))
                .collect::<Result<Vec<_>>>()?;
            let n = db.collection(&collection)?.delete(&ids)?;
            eprintln!("deleted {n} of {} ids", ids.len());
        }
        Command::Compact { collection } => {
            let db = open_db(&data)?;
            let r = db.collection(&collection)?.compact(0.0)?;
            eprintln!(
                "compacted {} segment(s), dropped {} deleted rows; disk {:.1} MiB -> {:.1} MiB",
                r.segments_merged,
                r.rows_dropped,
                r.disk_bytes_before as f64 / 1048576.0,
                r.disk_bytes_after as f64 / 1048576.0
            );
        }
        Command::Bench(a) => bench::run(a, cli.data)?,
        Command::BenchMulti(a) => bench_multi::run(a)?,
        Command::Demo(a) => demo::run(&data, a)?,
    }
    Ok(())
}

/// Writes one stored point as a JSON line: `{"id", "payload", "vectors"?}`.
fn print_record(out: &mut impl std::io::Write, r: quiver_engine::Record) -> std::io::Result<()> {
    let mut o = serde_json::json!({"id": r.id.to_json(), "payload": r.payload});
    if let Some(v) = r.vectors {
        o["vectors"] = serde_json::json!(v);
    }
    writeln!(out, "{o}")
}

fn print_info(info: &quiver_engine::CollectionInfo, json: bool) {
    let vectors: serde_json::Map<String, serde_json::Value> = info
        .schema
        .vectors
        .iter()
        .map(|(name, kind)| {
            (
                name.clone(),
                serde_json::json!({
                    "dim": kind.dim(),
                    "distance": format!("{:?}", kind.distance()).to_lowercase(),
                    "embed": kind.embedding().map(|e| serde_json::json!({"model": e.model, "field": e.field})),
                }),
            )
        })
        .collect();
    let segments: Vec<serde_json::Value> = info
        .segments
        .iter()
        .map(|s| serde_json::json!({"id": s.id, "sealed": s.sealed, "rows": s.rows, "deleted": s.deleted}))
        .collect();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "name": info.name, "points": info.points, "vectors": vectors, "segments": segments,
                "disk_bytes": info.disk_bytes, "wal_bytes": info.wal_bytes, "last_seq": info.last_seq,
                "payload_indexes": info.payload_indexes.iter().map(|(k, v)| (k.clone(), v.name())).collect::<BTreeMap<_, _>>(),
            })
        );
        return;
    }
    println!("collection {}", info.name);
    println!("  points     {}", info.points);
    for (name, kind) in &info.schema.vectors {
        let shown = if name.is_empty() { "(default)" } else { name };
        let embed = kind
            .embedding()
            .map(|e| format!(", embedded from payload `{}` by {}", e.field, e.model))
            .unwrap_or_default();
        println!(
            "  vector     {shown}: dim {}, {:?}{embed}",
            kind.dim(),
            kind.distance()
        );
    }
    for s in &info.segments {
        println!(
            "  segment    {} {}: {} rows, {} deleted",
            s.id,
            if s.sealed { "sealed" } else { "mutable" },
            s.rows,
            s.deleted
        );
    }
    for (key, kind) in &info.payload_indexes {
        println!("  field      {key}: {kind} index");
    }
    println!(
        "  disk       {:.2} MiB (log {:.2} MiB)",
        info.disk_bytes as f64 / 1048576.0,
        info.wal_bytes as f64 / 1048576.0
    );
    println!("  last seq   {}", info.last_seq);
}

#[cfg(test)]
mod tests {
    use super::error_chain;
    use anyhow::Context;

    #[test]
    fn error_chain_says_each_cause_once() {
        let io = std::io::Error::other("held by another process");
        let inner = anyhow::Error::new(io).context("data is locked: held by another process");
        let e = inner.context("cannot open data directory data");
        assert_eq!(
            error_chain(&e),
            "cannot open data directory data: data is locked: held by another process"
        );
        let e = Err::<(), _>(std::io::Error::other("disk full"))
            .context("cannot write x")
            .err()
            .map(|e| error_chain(&e));
        assert_eq!(e.as_deref(), Some("cannot write x: disk full"));
    }
}
