//! `quiver import`: stream a vector file into a collection.
//!
//! The file is read twice: a checking pass (parse, dimension, finite values, ids) and then the
//! import itself, so that a bad line near the end of a large file is reported before anything
//! is written. Each batch is one logged operation; by default it is fsynced before the next
//! one (`--bulk` fsyncs once a second instead, and at the end).

use crate::progress::Progress;
use crate::sysinfo;
use anyhow::{Context, Result, bail};
use quiver_engine::{
    CollectionConfig, Database, DatabaseOptions, Distance, Durability, Point, PointId, Schema,
    VectorKind,
};
use quiver_formats::{Format, JsonFields, Record, VectorReader};
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

pub fn run(data: &Path, args: ImportArgs) -> Result<()> {
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
    let durability = if args.bulk {
        Durability::Periodic(Duration::from_secs(1))
    } else {
        Durability::Fsync
    };
    let db = Database::open(data, DatabaseOptions { durability })
        .with_context(|| format!("cannot open data directory {}", data.display()))?;
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
    let seal_s = t.elapsed().as_secs_f64();
    let total_s = start.elapsed().as_secs_f64();
    eprintln!(
        "imported {n} points into `{}` in {total_s:.2}s ({:.0} points/s; {imported_s:.2}s logging and applying, {seal_s:.2}s sealing), {} mode, peak RSS {:.0} MiB",
        args.collection,
        n as f64 / total_s.max(1e-9),
        if args.bulk { "bulk" } else { "durable" },
        sysinfo::peak_rss_mb().unwrap_or(f64::NAN)
    );
    Ok(())
}
