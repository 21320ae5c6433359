//! `quiver import`: stream a vector file, or documents to embed, into a collection.
//!
//! The file is read twice: a checking pass (parse, dimension, finite values, ids, texts) and
//! then the import itself, so that a bad line near the end of a large file is reported before
//! anything is written. Each batch is one logged operation; by default it is fsynced before the
//! next one (`--bulk` fsyncs once a second instead, and at the end).
//!
//! With `--text-field`, the file is JSON Lines of documents: the text in that field is
//! embedded by the collection's text model (the vector must be declared as embedded from
//! text; `--create` declares it).

use crate::progress::Progress;
use crate::sysinfo;
use crate::texts::TextReader;
use anyhow::{Context, Result, bail};
use quiver_engine::{
    CollectionConfig, Database, DatabaseOptions, Distance, Durability, FieldIndexKind, Point,
    PointId, Schema, TEXT_MODEL, TEXT_MODEL_DIM, VectorKind,
};
use quiver_formats::{Format, JsonFields, Record, VectorReader};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ImportArgs {
    pub collection: String,
    /// .fvecs, .npy or JSON Lines (.jsonl, .ndjson, .json)
    pub file: PathBuf,
    /// Format, if the extension does not tell: fvecs, npy, jsonl.
    #[arg(long)]
    pub format: Option<String>,
    /// Points per logged batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Vector to fill (default: the unnamed vector).
    #[arg(long, default_value = "")]
    pub vector_name: String,
    /// Id of the first row for records without an id (.fvecs and .npy rows, JSON lines
    /// without one): row i gets id start_id + i.
    #[arg(long, default_value_t = 0)]
    pub start_id: u64,
    #[arg(long, default_value = "id")]
    pub id_field: String,
    #[arg(long, default_value = "vector")]
    pub vector_field: String,
    #[arg(long, default_value = "payload")]
    pub payload_field: String,
    /// Bulk mode: fsync the log once a second instead of after every batch.
    #[arg(long)]
    pub bulk: bool,
    /// Create the collection if it does not exist, with the file's dimension.
    #[arg(long)]
    pub create: bool,
    /// Distance for --create.
    #[arg(long, default_value = "cosine", value_parser = crate::parse_distance)]
    pub distance: Distance,
    /// Skip the checking pass (a bad record then stops the import midway).
    #[arg(long)]
    pub no_check: bool,
    /// Index for --create.
    #[command(flatten)]
    pub index: crate::IndexArgs,
    /// Import documents (JSON Lines) whose text, in this field, the collection's built-in
    /// model embeds; the payload is --payload-field if the line has it, else every field but
    /// the id and the vector. With --create, the vector is declared as embedded from this
    /// field.
    #[arg(long)]
    pub text_field: Option<String>,
    /// With --create and --text-field: keep the first D of the model's 384 dimensions
    /// (Matryoshka truncation).
    #[arg(long, requires = "text_field")]
    pub dims: Option<usize>,
    /// Declare a payload field index before importing, as FIELD=TYPE (keyword, integer,
    /// float or bool); repeatable. Same as `quiver index`, without a second pass later.
    #[arg(long, value_name = "FIELD=TYPE", value_parser = parse_payload_index)]
    pub payload_index: Vec<(String, FieldIndexKind)>,
}

fn parse_payload_index(s: &str) -> Result<(String, FieldIndexKind), String> {
    let (field, kind) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("`{s}`: expected FIELD=TYPE, e.g. lexname=keyword"))?;
    let kind = FieldIndexKind::from_name(kind).ok_or_else(|| {
        format!("`{s}`: unknown index type `{kind}`: use keyword, integer, float or bool")
    })?;
    Ok((field.to_string(), kind))
}

/// Declares the `--payload-index` field indexes (before the import, so that segments sealed
/// during it are built with them).
fn declare_indexes(c: &quiver_engine::Collection, args: &ImportArgs) -> Result<()> {
    for (field, kind) in &args.payload_index {
        if c.create_field_index(field, *kind)? {
            eprintln!("created a {kind} index on `{field}`");
        }
    }
    Ok(())
}

fn where_(r: &Record, format: Format) -> String {
    match format {
        Format::JsonLines => format!("line {}", r.position + 1),
        _ => format!("row {}", r.position),
    }
}

fn point_of(r: Record, args: &ImportArgs, format: Format, path: &Path) -> Result<Point> {
    let id = match &r.id {
        Some(v) => PointId::from_json(v).with_context(|| {
            format!(
                "{}: {}: id {v} is not an unsigned integer or a UUID",
                path.display(),
                where_(&r, format)
            )
        })?,
        None => PointId::Num(args.start_id + r.position),
    };
    let mut p = Point::new(id, Vec::new());
    p.vectors = BTreeMap::from([(args.vector_name.clone(), r.vector)]);
    p.payload = r.payload.unwrap_or_default();
    Ok(p)
}

fn check_record(r: &Record, dim: usize, format: Format, path: &Path) -> Result<()> {
    if r.vector.len() != dim {
        bail!(
            "{}: {}: vector has dimension {}, the collection expects {dim}",
            path.display(),
            where_(r, format),
            r.vector.len()
        );
    }
    if let Some((i, x)) = r.vector.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        bail!(
            "{}: {}: value {x} at index {i} is not finite",
            path.display(),
            where_(r, format)
        );
    }
    Ok(())
}

fn open_for_import(data: &Path, args: &ImportArgs) -> Result<Database> {
    let durability = if args.bulk {
        Durability::Periodic(Duration::from_secs(1))
    } else {
        Durability::Fsync
    };
    let options = DatabaseOptions {
        durability,
        ..crate::database_options()
    };
    Database::open(data, options)
        .with_context(|| format!("cannot open data directory {}", data.display()))
}

/// The summary line after an import.
fn report(args: &ImportArgs, n: u64, start: Instant, imported_s: f64, seal_s: f64) {
    let total_s = start.elapsed().as_secs_f64();
    eprintln!(
        "imported {n} points into `{}` in {total_s:.2}s ({:.0} points/s; {imported_s:.2}s logging and applying, {seal_s:.2}s sealing), {} mode, peak RSS {:.0} MiB",
        args.collection,
        n as f64 / total_s.max(1e-9),
        if args.bulk { "bulk" } else { "durable" },
        sysinfo::peak_rss_mb().unwrap_or(f64::NAN)
    );
}

pub fn run(data: &Path, args: ImportArgs) -> Result<()> {
    if let Some(field) = args.text_field.clone() {
        return import_documents(data, &args, &field);
    }
    let path = args.file.clone();
    let format = match &args.format {
        Some(f) => Format::from_name(f)
            .with_context(|| format!("unknown format `{f}`: use fvecs, npy or jsonl"))?,
        None => Format::from_path(&path)?,
    };
    let fields = JsonFields {
        id: args.id_field.clone(),
        vector: args.vector_field.clone(),
        payload: args.payload_field.clone(),
    };
    let db = open_for_import(data, &args)?;
    let batch = args.batch.max(1);

    // Pass 1: check everything before writing anything.
    let mut file_dim = None;
    if !args.no_check {
        let mut reader = VectorReader::open(&path, format, &fields)?;
        let mut progress = Progress::new("checking", Some(reader.total_bytes()), "B");
        let expected = match db.collection(&args.collection) {
            Ok(c) => Some(
                c.schema()
                    .vectors
                    .get(&args.vector_name)
                    .map(VectorKind::dim)
                    .with_context(|| {
                        format!(
                            "collection `{}` has no vector named `{}`",
                            args.collection, args.vector_name
                        )
                    })?,
            ),
            Err(_) => None,
        };
        let mut n = 0u64;
        loop {
            let records = reader.next_batch(batch)?;
            if records.is_empty() {
                break;
            }
            for r in records {
                let dim = *file_dim.get_or_insert(r.vector.len());
                check_record(&r, expected.unwrap_or(dim), format, &path)?;
                point_of(r, &args, format, &path)?;
                n += 1;
            }
            progress.update(reader.bytes_read(), &format!("{n} records"));
        }
        progress.finish(reader.bytes_read(), &format!("{n} records ok"));
    }

    let collection = match db.collection(&args.collection) {
        Ok(c) => c,
        Err(quiver_engine::Error::CollectionNotFound { .. }) if args.create => {
            let dim = match file_dim {
                Some(d) => d,
                None => VectorReader::open(&path, format, &fields)?
                    .next_record()?
                    .map(|r| r.vector.len())
                    .context("the file holds no vectors: cannot tell the dimension for --create")?,
            };
            let schema = Schema {
                sparse_vectors: Default::default(),
                vectors: BTreeMap::from([(
                    args.vector_name.clone(),
                    VectorKind::dense_indexed(dim, args.distance, args.index.kind()?),
                )]),
            };
            eprintln!(
                "creating collection `{}` (dim {dim}, {:?})",
                args.collection, args.distance
            );
            db.create_collection(&args.collection, schema, CollectionConfig::default())?
        }
        Err(e) => return Err(e.into()),
    };

    declare_indexes(&collection, &args)?;
    args.index
        .store_query_sample(&collection, &args.vector_name)?;

    // Pass 2: import.
    let mut reader = VectorReader::open(&path, format, &fields)?;
    let mut progress = Progress::new("importing", Some(reader.total_bytes()), "B");
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        let records = reader.next_batch(batch)?;
        if records.is_empty() {
            break;
        }
        let points = records
            .into_iter()
            .map(|r| point_of(r, &args, format, &path))
            .collect::<Result<Vec<_>>>()?;
        let count = points.len() as u64;
        collection.upsert(points).with_context(|| {
            format!("importing {}: batch starting at record {n}", path.display())
        })?;
        n += count;
        let rate = n as f64 / start.elapsed().as_secs_f64().max(1e-9);
        progress.update(reader.bytes_read(), &format!("{n} points, {rate:.0}/s"));
    }
    collection.sync()?;
    let imported_s = start.elapsed().as_secs_f64();
    progress.finish(reader.bytes_read(), &format!("{n} points"));
    let t = Instant::now();
    collection.flush()?;
    report(&args, n, start, imported_s, t.elapsed().as_secs_f64());
    Ok(())
}

/// One JSON Lines document as a point without vectors: the engine embeds its text.
fn document_of(
    line: u64,
    mut record: Map<String, Value>,
    args: &ImportArgs,
    text_field: &str,
    target_field: &str,
    path: &Path,
) -> Result<Point> {
    let here = || format!("{}: line {line}", path.display());
    let id = match record.remove(&args.id_field) {
        None | Some(Value::Null) => PointId::Num(args.start_id + line - 1),
        Some(v) => PointId::from_json(&v)
            .with_context(|| format!("{}: id {v} is not an unsigned integer or a UUID", here()))?,
    };
    let text = match record.get(text_field) {
        Some(Value::String(t)) => t.clone(),
        Some(other) => bail!(
            "{}: field `{text_field}` must be a string (the text to embed), found {other}",
            here()
        ),
        None => bail!("{}: no field `{text_field}` (see --text-field)", here()),
    };
    let mut payload = match record.remove(&args.payload_field) {
        Some(Value::Object(p)) => p,
        None | Some(Value::Null) => {
            record.remove(&args.vector_field);
            record
        }
        Some(other) => bail!(
            "{}: field `{}` must be an object, found {other}",
            here(),
            args.payload_field
        ),
    };
    payload.insert(target_field.to_string(), Value::String(text));
    Ok(Point::from_payload(id, payload))
}

/// `--text-field`: documents in, embedded by the collection's model.
fn import_documents(data: &Path, args: &ImportArgs, text_field: &str) -> Result<()> {
    let path = &args.file;
    if !crate::texts::is_jsonl(path) {
        bail!(
            "{}: --text-field needs JSON Lines (.jsonl, .ndjson)",
            path.display()
        );
    }
    if let Some(dim) = args.dims
        && !(1..=TEXT_MODEL_DIM).contains(&dim)
    {
        bail!("--dims must be between 1 and {TEXT_MODEL_DIM}");
    }
    let db = open_for_import(data, args)?;
    let existing = match db.collection(&args.collection) {
        Ok(c) => Some(c),
        Err(quiver_engine::Error::CollectionNotFound { .. }) if args.create => None,
        Err(e) => return Err(e.into()),
    };
    // The payload field the collection embeds or analyses: the text goes there.
    let (target_field, embedded) = match &existing {
        None => (text_field.to_string(), true),
        Some(c) => {
            if args.dims.is_some() {
                bail!(
                    "--dims applies when --create creates the collection; `{}` exists",
                    args.collection
                );
            }
            let schema = c.schema();
            let vector_name = crate::search::text_vector(&schema, &args.vector_name);
            if let Some(bm25) = schema
                .sparse_vectors
                .get(&vector_name)
                .and_then(|k| k.bm25.as_ref())
            {
                // The engine also embeds any text-embedded vector of the points.
                let embeds = schema.vectors.values().any(|k| k.embedding().is_some());
                (bm25.field.clone(), embeds)
            } else {
                let field = match schema.vectors.get(&vector_name) {
                    Some(kind) => match kind.embedding() {
                        Some(e) => e.field.clone(),
                        None => bail!(
                            "vector `{}` of collection `{}` is not embedded from text: import vectors (without --text-field), or create the collection with --text-field",
                            args.vector_name,
                            args.collection
                        ),
                    },
                    None => bail!(
                        "collection `{}` has no vector named `{}`",
                        args.collection,
                        args.vector_name
                    ),
                };
                (field, true)
            }
        }
    };
    // Fail before anything is created when the model is missing.
    if embedded {
        quiver_embed::locate_model(None)?;
    }
    let batch = args.batch.max(1);

    // Pass 1: check every document before writing anything.
    let mut total = 0u64;
    if !args.no_check {
        let mut reader = TextReader::open(path)?;
        let mut progress = Progress::new("checking", Some(reader.total_bytes()), "B");
        while let Some((line, record)) = reader.next_object()? {
            document_of(line, record, args, text_field, &target_field, path)?;
            total += 1;
            if total.is_multiple_of(1000) {
                progress.update(reader.bytes_read(), &format!("{total} documents"));
            }
        }
        progress.finish(reader.bytes_read(), &format!("{total} documents ok"));
    }

    let collection = match existing {
        Some(c) => c,
        None => {
            let dim = args.dims.unwrap_or(TEXT_MODEL_DIM);
            let schema = Schema {
                sparse_vectors: Default::default(),
                vectors: BTreeMap::from([(
                    args.vector_name.clone(),
                    VectorKind::text(text_field, dim, args.distance, args.index.kind()?),
                )]),
            };
            eprintln!(
                "creating collection `{}` (vector embedded from `{text_field}` by {TEXT_MODEL}, dim {dim}, {:?})",
                args.collection, args.distance
            );
            db.create_collection(&args.collection, schema, CollectionConfig::default())?
        }
    };

    declare_indexes(&collection, args)?;
    args.index
        .store_query_sample(&collection, &args.vector_name)?;

    // Pass 2: import; the engine embeds each batch before logging it.
    let mut reader = TextReader::open(path)?;
    let mut progress = Progress::new(
        "embedding and importing",
        (!args.no_check).then_some(total),
        "documents",
    );
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        let mut points = Vec::with_capacity(batch);
        while points.len() < batch {
            match reader.next_object()? {
                Some((line, record)) => points.push(document_of(
                    line,
                    record,
                    args,
                    text_field,
                    &target_field,
                    path,
                )?),
                None => break,
            }
        }
        if points.is_empty() {
            break;
        }
        let count = points.len() as u64;
        collection.upsert(points).with_context(|| {
            format!(
                "importing {}: batch starting at document {n}",
                path.display()
            )
        })?;
        n += count;
        let rate = n as f64 / start.elapsed().as_secs_f64().max(1e-9);
        progress.update(n, &format!("{rate:.0} documents/s"));
    }
    collection.sync()?;
    let imported_s = start.elapsed().as_secs_f64();
    progress.finish(n, "documents");
    let t = Instant::now();
    collection.flush()?;
    report(args, n, start, imported_s, t.elapsed().as_secs_f64());
    Ok(())
}
