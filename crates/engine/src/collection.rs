//! A collection: the write path, the read path, sealing, compaction and recovery.
//!
//! Locks, always taken in this order (a thread never takes an earlier one while holding a later
//! one): `maintenance` (one seal or compaction at a time) → `state` (id map; its write lock is
//! held while a write is appended to the WAL and applied, so WAL order = apply order) →
//! `segments` (the list readers snapshot) → a segment's own locks.

use crate::error::{Error, Result};
use crate::ops::{Op, PreparedPoint};
use crate::planner::{self, RowFilter, parse_payload};
use crate::point::{DEFAULT_EF, Point, Record, ScoredPoint, ScrollPage, SearchRequest, With};
use crate::schema::{
    CollectionConfig, Distance, IndexKind, MIN_GRAPH_ROWS, Quantization, Schema, VectorKind,
};
use crate::segment::GraphIndex;
use crate::segment::{Segment, View};
use crate::text::TextModels;
use quiver_filter::{Filter, IndexKind as FieldKind, KeyPath};
use quiver_index::hnsw::{self, DenseScorer};
use quiver_index::lvq::Lvq8;
use quiver_index::{Hit, SearchStats, flat};
use quiver_storage::manifest::{Manifest, SegmentEntry};
use quiver_storage::segment::{self as segfiles, SegmentWriter};
use quiver_storage::wal::{Wal, WalReader};
use quiver_storage::{PointId, fs as qfs};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// When an acknowledged write is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `fsync` before a write returns (concurrent writers share fsyncs). The default.
    #[default]
    Fsync,
    /// Writes return once in the OS page cache; the log is fsynced every interval (and at
    /// seal, flush and close). A crash of the machine may lose the last interval of writes; a
    /// crash of the process loses nothing.
    Periodic(Duration),
}

/// Where a live point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    segment: u64,
    offset: u32,
}

type SegmentList = Arc<Vec<Arc<Segment>>>;

struct State {
    ids: BTreeMap<PointId, Loc>,
    by_id: HashMap<u64, Arc<Segment>>,
    mutable: Arc<Segment>,
    next_segment_id: u64,
}

/// What the last published manifest holds, owned by the maintenance lock.
struct Published {
    watermark: u64,
    /// Per sealed segment: (bitmap generation, deleted count it holds).
    deleted: HashMap<u64, (u64, usize)>,
}

/// Summary of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionInfo {
    pub name: String,
    pub schema: Schema,
    pub config: CollectionConfig,
    pub points: u64,
    pub segments: Vec<SegmentInfo>,
    /// Bytes on disk: segments, manifest and log.
    pub disk_bytes: u64,
    pub wal_bytes: u64,
    pub last_seq: u64,
    /// Declared payload field indexes: key -> kind.
    pub payload_indexes: BTreeMap<String, FieldKind>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub id: u64,
    pub sealed: bool,
    pub rows: u64,
    pub deleted: u64,
}

/// Result of a compaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    pub segments_merged: usize,
    pub rows_dropped: u64,
    pub disk_bytes_before: u64,
    pub disk_bytes_after: u64,
}

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub replayed_ops: u64,
    pub torn_tail_bytes: u64,
}

pub struct Collection {
    name: String,
    dir: PathBuf,
    schema: Schema,
    config: CollectionConfig,
    durability: Durability,
    wal: Wal,
    maintenance: Mutex<Published>,
    /// Declared payload field indexes; changed only under the maintenance lock.
    payload_indexes: RwLock<BTreeMap<String, FieldKind>>,
    state: RwLock<State>,
    segments: RwLock<SegmentList>,
    /// Set when a write could not complete (I/O error after logging): nothing more is accepted
    /// until the collection is reopened and recovered from disk.
    failed: Mutex<Option<String>>,
    dropped: AtomicBool,
    distance_computations: AtomicU64,
    recovery: RecoveryReport,
    /// The text model, for vectors declared as embedded from text.
    models: Arc<TextModels>,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("name", &self.name)
            .finish()
    }
}

fn rlock<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn wlock<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn mlock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn normalize(v: &mut [f32]) {
    let norm = quiver_kernels::norm_squared(v).sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

pub(crate) const WAL_DIR: &str = "wal";
pub(crate) const SEGMENTS_DIR: &str = "segments";

impl Collection {
    /// Creates the collection's files in `dir` (which must not exist yet).
    pub(crate) fn create_files(
        dir: &Path,
        schema: &Schema,
        config: &CollectionConfig,
    ) -> Result<()> {
        qfs::create_dir_durable(&dir.join(SEGMENTS_DIR))?;
        qfs::create_dir_durable(&dir.join(WAL_DIR))?;
        Manifest {
            schema: serde_json::to_value(schema).map_err(|e| Error::InvalidSchema {
                reason: e.to_string(),
            })?,
            config: serde_json::to_value(config).map_err(|e| Error::InvalidSchema {
                reason: e.to_string(),
            })?,
            segments: Vec::new(),
            next_segment_id: 1,
            wal_watermark: 0,
            payload_indexes: BTreeMap::new(),
        }
        .write(dir)?;
        Ok(())
    }

    /// Opens a collection directory: reads the manifest, maps sealed segments, replays the WAL
    /// above the manifest's watermark, and removes files no manifest refers to.
    pub(crate) fn open(
        name: &str,
        dir: &Path,
        durability: Durability,
        models: &Arc<TextModels>,
    ) -> Result<Arc<Collection>> {
        let manifest = Manifest::read(dir)?;
        let manifest_path = dir.join(quiver_storage::manifest::FILE_NAME);
        let schema: Schema =
            serde_json::from_value(manifest.schema.clone()).map_err(|e| Error::Corrupt {
                path: manifest_path.clone(),
                message: format!("schema not understood ({e}); was it written by a newer Quiver?"),
            })?;
        schema.validate()?;
        let config: CollectionConfig =
            serde_json::from_value(manifest.config.clone()).map_err(|e| Error::Corrupt {
                path: manifest_path.clone(),
                message: format!("collection settings not understood: {e}"),
            })?;
        let mut payload_indexes = BTreeMap::new();
        for (key, kind) in &manifest.payload_indexes {
            let kind = FieldKind::from_name(kind).ok_or_else(|| Error::Corrupt {
                path: manifest_path.clone(),
                message: format!("field index `{key}` has unknown kind `{kind}`"),
            })?;
            payload_indexes.insert(key.clone(), kind);
        }
        let dims = schema.dims();
        let segments_dir = dir.join(SEGMENTS_DIR);
        remove_unlisted_segments(&segments_dir, &manifest)?;

        let mut ids = BTreeMap::new();
        let mut by_id = HashMap::new();
        let mut list = Vec::new();
        let mut published = HashMap::new();
        for entry in &manifest.segments {
            let seg_dir = segments_dir.join(entry.id.to_string());
            let files = segfiles::open_segment(&seg_dir, entry.rows, &dims)?;
            let deleted = if entry.deleted_gen == 0 {
                vec![0; files.rows.div_ceil(64)]
            } else {
                segfiles::read_deleted(&seg_dir, entry.deleted_gen, entry.rows)?
            };
            segfiles::remove_other_deleted(&seg_dir, entry.deleted_gen)?;
            let graphs = load_graphs(&schema, &files)?;
            let fields = planner::load_fields(&files, &payload_indexes);
            let seg = Arc::new(Segment::sealed(entry.id, files, deleted, graphs, fields));
            published.insert(entry.id, (entry.deleted_gen, seg.deleted.count()));
            seg.with_view(|v| -> Result<()> {
                for (row, id) in v.ids.iter().enumerate() {
                    if v.deleted.is_deleted(row as u32) {
                        continue;
                    }
                    let loc = Loc {
                        segment: entry.id,
                        offset: row as u32,
                    };
                    if let Some(other) = ids.insert(*id, loc) {
                        return Err(Error::Corrupt {
                            path: seg_dir.clone(),
                            message: format!(
                                "point {id} is live in segment {} and in segment {}",
                                other.segment, entry.id
                            ),
                        });
                    }
                }
                Ok(())
            })?;
            by_id.insert(entry.id, Arc::clone(&seg));
            list.push(seg);
        }
        let mutable = Arc::new(Segment::new_mutable(manifest.next_segment_id, dims.len()));
        by_id.insert(mutable.id, Arc::clone(&mutable));
        list.push(Arc::clone(&mutable));

        let mut state = State {
            ids,
            by_id,
            mutable,
            next_segment_id: manifest.next_segment_id + 1,
        };
        let wal_dir = dir.join(WAL_DIR);
        let mut reader = WalReader::open(&wal_dir)?;
        let mut replayed = 0;
        let mut first_seen = None;
        while let Some(rec) = reader.next_record()? {
            first_seen.get_or_insert(rec.seq);
            if rec.seq <= manifest.wal_watermark {
                continue;
            }
            let op = Op::decode(&rec.payload)
                .and_then(|op| op.check_against(&schema).map(|()| op))
                .map_err(|m| Error::Corrupt {
                    path: wal_dir.clone(),
                    message: format!("record {}: {m}", rec.seq),
                })?;
            apply(&mut state, &schema, &op);
            replayed += 1;
        }
        if let Some(first) = first_seen
            && first > manifest.wal_watermark + 1
        {
            return Err(Error::Corrupt {
                path: wal_dir,
                message: format!(
                    "log starts at sequence {first} but the manifest needs everything after {}",
                    manifest.wal_watermark
                ),
            });
        }
        let end = reader.finish(manifest.wal_watermark + 1)?;
        let wal = Wal::resume(&wal_dir, &end)?;
        wal.remove_through(manifest.wal_watermark)?;

        let collection = Arc::new(Collection {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            schema,
            config,
            durability,
            wal,
            maintenance: Mutex::new(Published {
                watermark: manifest.wal_watermark,
                deleted: published,
            }),
            payload_indexes: RwLock::new(payload_indexes),
            state: RwLock::new(state),
            segments: RwLock::new(Arc::new(list)),
            failed: Mutex::new(None),
            dropped: AtomicBool::new(false),
            distance_computations: AtomicU64::new(0),
            recovery: RecoveryReport {
                replayed_ops: replayed,
                torn_tail_bytes: end.truncated_bytes,
            },
            models: Arc::clone(models),
        });
        if let Durability::Periodic(every) = durability {
            spawn_periodic_sync(Arc::downgrade(&collection), every);
        }
        collection.maybe_seal()?;
        Ok(collection)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Distance computations done by searches since open (a load-independent cost figure).
    pub fn distance_computations(&self) -> u64 {
        self.distance_computations.load(Ordering::Relaxed)
    }

    fn check_usable(&self) -> Result<()> {
        if self.dropped.load(Ordering::Acquire) {
            return Err(Error::Unavailable {
                collection: self.name.clone(),
                reason: "it was dropped".into(),
            });
        }
        if let Some(reason) = mlock(&self.failed).as_ref() {
            return Err(Error::Unavailable {
                collection: self.name.clone(),
                reason: format!(
                    "a write failed earlier ({reason}); reopen the database to recover"
                ),
            });
        }
        Ok(())
    }

    fn fail<T>(&self, e: impl Into<Error>) -> Result<T> {
        let e = e.into();
        mlock(&self.failed).get_or_insert_with(|| e.to_string());
        Err(e)
    }

    /// Marks the collection dropped once no seal or compaction is running, so none can write
    /// into its directory (or a new one of the same name) afterwards.
    pub(crate) fn mark_dropped(&self) {
        let _maintenance = mlock(&self.maintenance);
        self.dropped.store(true, Ordering::Release);
    }

    fn invalid(&self, message: impl Into<String>) -> Error {
        Error::InvalidRequest {
            collection: self.name.clone(),
            message: message.into(),
        }
    }

    /// Checks a vector against the schema; normalises it for cosine. Returns its position.
    fn prepare_vector(&self, point: Option<PointId>, name: &str, v: &mut [f32]) -> Result<usize> {
        let position = self
            .schema
            .position(name)
            .ok_or_else(|| Error::UnknownVector {
                collection: self.name.clone(),
                name: name.to_string(),
                known: self.schema.names(),
            })?;
        let kind = &self.schema.vectors[name];
        if v.len() != kind.dim() {
            return Err(Error::DimensionMismatch {
                collection: self.name.clone(),
                point,
                vector: name.to_string(),
                expected: kind.dim(),
                got: v.len(),
            });
        }
        if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(Error::NonFinite {
                collection: self.name.clone(),
                point,
                vector: name.to_string(),
                index,
                value,
            });
        }
        if kind.distance() == Distance::Cosine {
            normalize(v);
        }
        Ok(position)
    }

    fn prepare_point(&self, p: Point) -> Result<PreparedPoint> {
        let Point {
            id,
            mut vectors,
            payload,
        } = p;
        for (name, v) in vectors.iter_mut() {
            self.prepare_vector(Some(id), name, v)?;
        }
        if let Some(missing) = self
            .schema
            .vectors
            .keys()
            .find(|k| !vectors.contains_key(*k))
        {
            return Err(Error::MissingVector {
                collection: self.name.clone(),
                point: id,
                name: missing.clone(),
            });
        }
        let payload = if payload.is_empty() {
            Vec::new()
        } else {
            serde_json::to_vec(&payload)
                .map_err(|e| self.invalid(format!("point {id}: payload: {e}")))?
        };
        // BTreeMap iteration is schema order (the schema is a BTreeMap too).
        Ok(PreparedPoint {
            id,
            vectors: vectors.into_iter().collect(),
            payload,
        })
    }

    /// Logs, applies and (by default) fsyncs one operation. Returns its sequence number.
    fn write(&self, op: Op) -> Result<u64> {
        let bytes = op.encode();
        if bytes.len() > quiver_storage::wal::MAX_RECORD {
            return Err(self.invalid(format!(
                "one batch encodes to {} bytes, over the {} byte limit: send smaller batches",
                bytes.len(),
                quiver_storage::wal::MAX_RECORD
            )));
        }
        let seq = {
            let mut state = wlock(&self.state);
            self.check_usable()?;
            let seq = match self.wal.append(&bytes) {
                Ok(seq) => seq,
                Err(e) => return self.fail(e),
            };
            apply(&mut state, &self.schema, &op);
            seq
        };
        if self.durability == Durability::Fsync
            && let Err(e) = self.wal.sync_to(seq)
        {
            return self.fail(e);
        }
        // The write is durable now: a failing seal must not report it as failed. The seal
        // marks the collection failed, so the next write reports it.
        if let Err(e) = self.maybe_seal() {
            log::error!(
                "collection `{}`: sealing after write {seq} failed: {e}",
                self.name
            );
        }
        Ok(seq)
    }

    /// Inserts or replaces points. All points are validated before anything changes: one bad
    /// point rejects the whole batch. A vector embedded from text that a point does not carry
    /// is computed from the point's payload field (see [`crate::TextEmbedding`]). Returns the
    /// operation's sequence number.
    pub fn upsert(&self, mut points: Vec<Point>) -> Result<u64> {
        self.check_usable()?;
        self.embed_missing(&mut points)?;
        let prepared = points
            .into_iter()
            .map(|p| self.prepare_point(p))
            .collect::<Result<Vec<_>>>()?;
        self.write(Op::Upsert(prepared))
    }

    /// Fills the text-embedded vectors the points do not carry from their payloads.
    fn embed_missing(&self, points: &mut [Point]) -> Result<()> {
        for (name, kind) in &self.schema.vectors {
            let Some(spec) = kind.embedding() else {
                continue;
            };
            let mut which = Vec::new();
            let mut texts = Vec::new();
            for (i, p) in points.iter().enumerate() {
                if p.vectors.contains_key(name) {
                    continue;
                }
                match p.payload.get(&spec.field) {
                    Some(serde_json::Value::String(text)) => {
                        which.push(i);
                        texts.push(text.as_str());
                    }
                    other => {
                        let found = match other {
                            None => "it has no such field".to_string(),
                            Some(v) => format!("it holds {}", json_kind(v)),
                        };
                        return Err(self.invalid(format!(
                            "point {}: vector `{name}` is embedded from the text in payload field `{}`, but {found}",
                            p.id, spec.field
                        )));
                    }
                }
            }
            if texts.is_empty() {
                continue;
            }
            let vectors = self.embed_text(name, &texts)?;
            for (i, v) in which.into_iter().zip(vectors) {
                if let Some(p) = points.get_mut(i) {
                    p.vectors.insert(name.clone(), v);
                }
            }
        }
        Ok(())
    }

    /// Embeds texts with the model of vector `vector_name` (which must be declared as embedded
    /// from text): one vector per text, as an upsert would store it. Use it to search with a
    /// text query.
    pub fn embed_text(&self, vector_name: &str, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let kind = self
            .schema
            .vectors
            .get(vector_name)
            .ok_or_else(|| Error::UnknownVector {
                collection: self.name.clone(),
                name: vector_name.to_string(),
                known: self.schema.names(),
            })?;
        if kind.embedding().is_none() {
            return Err(self.invalid(format!(
                "vector `{vector_name}` is not embedded from text: search it with a vector"
            )));
        }
        self.models
            .embed(texts, kind.dim())
            .map_err(|error| Error::Embed {
                collection: self.name.clone(),
                vector: vector_name.to_string(),
                error: Box::new(error),
            })
    }

    /// Deletes points by id; ids that do not exist are ignored. Returns how many existed.
    pub fn delete(&self, ids: &[PointId]) -> Result<usize> {
        let existing = {
            let state = rlock(&self.state);
            ids.iter().filter(|id| state.ids.contains_key(id)).count()
        };
        self.write(Op::Delete(ids.to_vec()))?;
        Ok(existing)
    }

    /// Number of live points.
    pub fn count(&self) -> u64 {
        self.snapshot().iter().map(|s| s.live() as u64).sum()
    }

    /// [`Collection::count`], failing if the collection was dropped or has failed.
    pub fn count_checked(&self) -> Result<u64> {
        self.check_usable()?;
        Ok(self.count())
    }

    /// Number of live points whose payload passes `filter`.
    pub fn count_filtered(&self, filter: &Filter) -> Result<u64> {
        self.check_usable()?;
        let mut n = 0;
        for seg in self.snapshot().iter() {
            n += seg.with_view(|v| RowFilter::new(filter, seg, v).passing().count() as u64);
        }
        Ok(n)
    }

    /// Ids of the live points whose payload passes `filter`, per segment order.
    fn matching_ids(&self, filter: &Filter) -> Vec<PointId> {
        let mut ids = Vec::new();
        for seg in self.snapshot().iter() {
            seg.with_view(|v| {
                let rf = RowFilter::new(filter, seg, v);
                ids.extend(rf.passing().map(|r| v.ids[r as usize]));
            });
        }
        ids
    }

    /// Deletes the points whose payload passes `filter` (those matching when the call starts;
    /// logged as a delete of their ids). Returns how many were deleted.
    pub fn delete_by_filter(&self, filter: &Filter) -> Result<usize> {
        self.check_usable()?;
        let ids = self.matching_ids(filter);
        if ids.is_empty() {
            return Ok(0);
        }
        let mut deleted = 0;
        // Keep each logged record well under the WAL's record limit.
        for chunk in ids.chunks(100_000) {
            deleted += self.delete(chunk)?;
        }
        Ok(deleted)
    }

    /// How a filter would be answered, one line per segment: rows, the estimate, how each
    /// condition is answered (field index or checked per point), and the search strategy.
    pub fn explain(&self, filter: &Filter) -> Result<String> {
        self.check_usable()?;
        let mut out = String::new();
        for seg in self.snapshot().iter() {
            let line = seg.with_view(|v| {
                let fields = seg.fields();
                let rows = v.rows() as u32;
                let plan = quiver_filter::describe(filter, &fields, rows);
                let rf = RowFilter::new(filter, seg, v);
                let candidates = rf.candidate_count();
                let has_graph = seg.graphs.iter().any(Option::is_some);
                let strategy = if !has_graph {
                    "scan of the candidates (no graph)"
                } else if planner::exact_is_cheaper(
                    candidates,
                    u64::from(rows),
                    self.config.filter_scan_fraction,
                ) {
                    "scan of the candidates (few)"
                } else {
                    "graph search, filter checked during traversal"
                };
                format!(
                    "segment {} ({}, {rows} rows): estimate {}; candidates {candidates} ({} sure, {} checked per point); {plan}; strategy: {strategy}",
                    seg.id,
                    if seg.is_mutable() { "mutable, no field indexes" } else { "sealed" },
                    plan.estimate,
                    rf.eval.matched.len(),
                    rf.eval.unsure.len(),
                )
            });
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }

    fn snapshot(&self) -> SegmentList {
        Arc::clone(&rlock(&self.segments))
    }

    fn record(&self, view: &View<'_>, row: u32, with: With) -> Record {
        Record {
            id: view.ids[row as usize],
            payload: with.payload.then(|| parse_payload(view.payload(row))),
            vectors: with.vectors.then(|| self.vectors_of(view, row)),
        }
    }

    fn vectors_of(&self, view: &View<'_>, row: u32) -> BTreeMap<String, Vec<f32>> {
        self.schema
            .vectors
            .iter()
            .enumerate()
            .map(|(i, (name, kind))| (name.clone(), view.vector(i, kind.dim(), row).to_vec()))
            .collect()
    }

    /// Points by id, in the order asked; missing ids are skipped.
    pub fn retrieve(&self, ids: &[PointId], with: With) -> Result<Vec<Record>> {
        self.check_usable()?;
        let state = rlock(&self.state);
        Ok(ids
            .iter()
            .filter_map(|id| {
                let loc = state.ids.get(id)?;
                let seg = state.by_id.get(&loc.segment)?;
                Some(seg.with_view(|v| self.record(v, loc.offset, with)))
            })
            .collect())
    }

    /// Up to `limit` points in id order, starting at `from` (inclusive).
    pub fn scroll(&self, from: Option<PointId>, limit: usize, with: With) -> Result<ScrollPage> {
        self.scroll_filtered(from, limit, with, None)
    }

    /// [`Collection::scroll`] over the points whose payload passes `filter`.
    pub fn scroll_filtered(
        &self,
        from: Option<PointId>,
        limit: usize,
        with: With,
        filter: Option<&Filter>,
    ) -> Result<ScrollPage> {
        self.check_usable()?;
        let state = rlock(&self.state);
        // Per segment, the rows that pass (evaluated once per page).
        let passing: HashMap<u64, quiver_filter::RoaringBitmap> = match filter {
            Some(f) => state
                .by_id
                .iter()
                .map(|(id, seg)| {
                    let rows = seg.with_view(|v| RowFilter::new(f, seg, v).passing().collect());
                    (*id, rows)
                })
                .collect(),
            None => HashMap::new(),
        };
        let passes = |loc: &Loc| {
            filter.is_none()
                || passing
                    .get(&loc.segment)
                    .is_some_and(|b| b.contains(loc.offset))
        };
        let range = match from {
            Some(f) => state.ids.range(f..),
            None => state.ids.range(..),
        };
        let mut points = Vec::with_capacity(limit.min(1024));
        let mut next = None;
        for (id, loc) in range.filter(|(_, loc)| passes(loc)) {
            if points.len() == limit {
                next = Some(*id);
                break;
            }
            if let Some(seg) = state.by_id.get(&loc.segment) {
                points.push(seg.with_view(|v| self.record(v, loc.offset, with)));
            }
        }
        Ok(ScrollPage { points, next })
    }

    fn prepare_query(&self, req: &SearchRequest) -> Result<(usize, Vec<f32>)> {
        let mut q = req.vector.clone();
        let position = self.prepare_vector(None, &req.vector_name, &mut q)?;
        Ok((position, q))
    }

    /// The `k` nearest points to one query, best first.
    pub fn search(&self, req: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        self.check_usable()?;
        let (position, query) = self.prepare_query(req)?;
        let kind = &self.schema.vectors[&req.vector_name];
        let segments = self.snapshot();
        // No result list is longer than the collection: this bounds allocation for huge k.
        let k = req.k.min(segments.iter().map(|s| s.rows()).sum());
        let mut per_segment = Vec::with_capacity(segments.len());
        let mut dist = 0;
        let ef = req.ef.unwrap_or(DEFAULT_EF);
        let filter = req.filter.as_ref();
        for seg in segments.iter() {
            let (hits, stats) = search_segment(
                seg,
                position,
                kind,
                &query,
                k,
                ef,
                filter,
                self.config.filter_scan_fraction,
            );
            dist += stats.distance_computations;
            per_segment.push(hits);
        }
        self.distance_computations
            .fetch_add(dist, Ordering::Relaxed);
        Ok(self.merge(req, &segments, per_segment))
    }

    /// Many queries at once, spread over the current rayon pool. Results in request order.
    pub fn search_batch(&self, reqs: &[SearchRequest]) -> Result<Vec<Vec<ScoredPoint>>> {
        self.check_usable()?;
        if reqs.iter().any(|r| r.filter.is_some()) {
            // Filtered searches are planned per query and segment: one query per task.
            return reqs.par_iter().map(|r| self.search(r)).collect();
        }
        let segments = self.snapshot();
        let mut out = vec![Vec::new(); reqs.len()];
        // Group requests by vector so that each group is one matrix of queries.
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, r) in reqs.iter().enumerate() {
            groups.entry(r.vector_name.as_str()).or_default().push(i);
        }
        for (name, members) in groups {
            let mut position = 0;
            let mut matrix = Vec::new();
            for &i in &members {
                let (p, q) = self.prepare_query(&reqs[i])?;
                position = p;
                matrix.extend_from_slice(&q);
            }
            let kind = &self.schema.vectors[name];
            let rows: usize = segments.iter().map(|s| s.rows()).sum();
            let k = members
                .iter()
                .map(|&i| reqs[i].k)
                .max()
                .unwrap_or(0)
                .min(rows);
            let mut per_query: Vec<Vec<Vec<Hit>>> =
                vec![Vec::with_capacity(segments.len()); members.len()];
            let mut dist = 0;
            for seg in segments.iter() {
                let (hits, stats) = if seg.graphs.get(position).is_some_and(Option::is_some) {
                    // Graph search: one query per task.
                    let per: Vec<(Vec<Hit>, SearchStats)> = members
                        .par_iter()
                        .zip(matrix.par_chunks(kind.dim()))
                        .map(|(&i, q)| {
                            let ef = reqs[i].ef.unwrap_or(DEFAULT_EF);
                            search_segment(
                                seg,
                                position,
                                kind,
                                q,
                                reqs[i].k.min(k),
                                ef,
                                None,
                                self.config.filter_scan_fraction,
                            )
                        })
                        .collect();
                    let mut stats = SearchStats::default();
                    let hits = per
                        .into_iter()
                        .map(|(h, s)| {
                            stats.add(s);
                            h
                        })
                        .collect();
                    (hits, stats)
                } else {
                    seg.with_view(|v| {
                        let deleted = &v.deleted;
                        flat::search_batch(
                            v.vectors[position],
                            kind.dim(),
                            kind.distance().metric(),
                            &matrix,
                            k,
                            &|o| !deleted.is_deleted(o),
                        )
                    })
                };
                dist += stats.distance_computations;
                for (slot, h) in per_query.iter_mut().zip(hits) {
                    slot.push(h);
                }
            }
            self.distance_computations
                .fetch_add(dist, Ordering::Relaxed);
            for (&i, hits) in members.iter().zip(per_query) {
                out[i] = self.merge(&reqs[i], &segments, hits);
            }
        }
        Ok(out)
    }

    /// Merges per-segment hits (parallel to `segments`) into the final top-k, applies the
    /// score threshold and fetches what was asked for.
    fn merge(
        &self,
        req: &SearchRequest,
        segments: &[Arc<Segment>],
        per_segment: Vec<Vec<Hit>>,
    ) -> Vec<ScoredPoint> {
        let distance = self.schema.vectors[&req.vector_name].distance();
        // Each segment's hits are best first: a k-way merge keeps the k best. Packing
        // (segment index, offset) into the id breaks ties by segment, then offset.
        let runs: Vec<Vec<(f32, u64)>> = per_segment
            .into_iter()
            .enumerate()
            .map(|(s, hits)| {
                hits.into_iter()
                    .map(|h| (h.score, ((s as u64) << 32) | u64::from(h.offset)))
                    .collect()
            })
            .collect();
        quiver_kernels::merge_best_first(&runs, req.k)
            .into_iter()
            .filter_map(|(score, packed)| {
                let (s, offset) = ((packed >> 32) as usize, packed as u32);
                let score = distance.external(score);
                if let Some(t) = req.score_threshold
                    && !distance.passes(score, t)
                {
                    return None;
                }
                Some(segments[s].with_view(|v| {
                    let r = self.record(v, offset, req.with);
                    ScoredPoint {
                        id: r.id,
                        score,
                        payload: r.payload,
                        vectors: r.vectors,
                    }
                }))
            })
            .collect()
    }

    /// Seals the mutable segment if it is over the threshold.
    fn maybe_seal(&self) -> Result<()> {
        let over = rlock(&self.state).mutable.vector_bytes() >= self.config.seal_threshold_bytes;
        if over { self.flush() } else { Ok(()) }
    }

    /// Seals the mutable segment (if it holds anything) into an immutable one on disk and
    /// publishes a new manifest; the log is then truncated. Also compacts segments over the
    /// configured deleted fraction.
    pub fn flush(&self) -> Result<()> {
        self.check_usable()?;
        let mut published = mlock(&self.maintenance);
        match self.seal(&mut published) {
            Ok(()) => {}
            Err(e) => return self.fail(e),
        }
        let fraction = self.config.compact_deleted_fraction;
        match self.compact_locked(&mut published, fraction) {
            Ok(_) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    fn seal(&self, published: &mut Published) -> Result<()> {
        self.check_usable()?;
        // 1. Freeze: new writes go to a fresh mutable segment; the log rotates so that the
        //    frozen segment's operations are exactly the older log files.
        let (frozen, frozen_seq) = {
            let mut state = wlock(&self.state);
            if state.mutable.rows() == 0 {
                return Ok(());
            }
            let frozen_seq = self.wal.last_seq();
            self.wal.rotate()?;
            let fresh = Arc::new(Segment::new_mutable(
                state.next_segment_id,
                self.schema.vectors.len(),
            ));
            state.next_segment_id += 1;
            state.by_id.insert(fresh.id, Arc::clone(&fresh));
            let frozen = std::mem::replace(&mut state.mutable, Arc::clone(&fresh));
            let mut list = (**rlock(&self.segments)).clone();
            list.push(fresh);
            *wlock(&self.segments) = Arc::new(list);
            (frozen, frozen_seq)
        };
        // 2. Write the frozen rows (deleted ones too: offsets stay valid) without blocking
        //    writers or readers.
        let dims = self.schema.dims();
        let segments_dir = self.dir.join(SEGMENTS_DIR);
        let dir = frozen.with_view(|v| -> Result<PathBuf> {
            let mut w = SegmentWriter::create(&segments_dir, frozen.id, &dims)?;
            for row in 0..v.rows() as u32 {
                copy_row(&mut w, v, &dims, row)?;
            }
            Ok(w.finish()?.0)
        })?;
        let files = segfiles::open_segment(&dir, frozen.rows() as u64, &dims)?;
        let graphs = self.build_graphs(&files)?;
        let fields = self.write_fields(&files)?;
        // 3. Swap the frozen segment for the sealed one, carrying its deletions over.
        {
            let mut state = wlock(&self.state);
            let sealed = Arc::new(Segment::sealed(
                frozen.id,
                files,
                frozen.deleted.snapshot(frozen.rows()),
                graphs,
                fields,
            ));
            state.by_id.insert(frozen.id, Arc::clone(&sealed));
            let list = rlock(&self.segments)
                .iter()
                .map(|s| {
                    if s.id == frozen.id {
                        Arc::clone(&sealed)
                    } else {
                        Arc::clone(s)
                    }
                })
                .collect();
            *wlock(&self.segments) = Arc::new(list);
        }
        published.deleted.insert(frozen.id, (0, 0));
        self.publish(published, frozen_seq, &[])
    }

    /// Builds the graph indexes a new segment needs (per schema vector with an HNSW index, if
    /// the segment has at least [`MIN_GRAPH_ROWS`] rows) and writes them into its directory,
    /// which no manifest names yet.
    fn build_graphs(&self, files: &segfiles::SegmentFiles) -> Result<Vec<Option<GraphIndex>>> {
        let mut graphs = Vec::with_capacity(self.schema.vectors.len());
        for (i, kind) in self.schema.vectors.values().enumerate() {
            let IndexKind::Hnsw {
                m,
                ef_construction,
                quantization,
            } = kind.index()
            else {
                graphs.push(None);
                continue;
            };
            if files.rows < MIN_GRAPH_ROWS {
                graphs.push(None);
                continue;
            }
            let params = hnsw::BuildParams {
                m,
                ef_construction,
                seed: GRAPH_SEED,
                threads: rayon::current_num_threads(),
            };
            let n = files.rows;
            let name = &self.name;
            let started = std::time::Instant::now();
            let rows = files.vectors.get(i).map_or(&[][..], |v| v.as_f32());
            // `hnsw::build` reports every max(n / 100, 1000) insertions: log every fifth.
            let report = |done: usize| {
                if (done / (n / 100).max(1000)).is_multiple_of(5) {
                    log::info!(target: "quiver::progress", "`{name}`: building graph: {done}/{n} points, {:.0}s", started.elapsed().as_secs_f64());
                }
            };
            // Codes first: the build's insertions search on them too (a quarter of the bytes
            // of the f32 rows; see BENCHMARKS.md).
            let codes = match quantization {
                Quantization::Lvq8 => {
                    let codes = Lvq8::encode(rows, kind.dim());
                    segfiles::write_index_file(
                        &files.dir,
                        &segfiles::lvq8_file(i),
                        segfiles::LVQ8_KIND,
                        [n as u64, kind.dim() as u64, 0, 0],
                        &codes.to_bytes(),
                    )?;
                    Some(codes)
                }
                _ => None,
            };
            let graph = hnsw::build_with_codes(
                rows,
                kind.dim(),
                kind.distance().metric(),
                params,
                None,
                codes.as_ref(),
                &report,
            );
            log::info!(target: "quiver::progress", "`{name}`: graph over {n} points built in {:.1}s", started.elapsed().as_secs_f64());
            let body = hnsw::encode(&graph);
            segfiles::write_index_file(
                &files.dir,
                &segfiles::hnsw_file(i),
                segfiles::HNSW_KIND,
                [n as u64, 0, 0, 0],
                &body,
            )?;
            graphs.push(Some(GraphIndex { graph, codes }));
        }
        Ok(graphs)
    }

    /// Builds the declared payload field indexes of a new segment and writes them into its
    /// directory (which no manifest names yet) as `fields`.
    fn write_fields(&self, files: &segfiles::SegmentFiles) -> Result<quiver_filter::FieldIndexes> {
        let declared = rlock(&self.payload_indexes).clone();
        if declared.is_empty() {
            return Ok(Default::default());
        }
        let fields = planner::build_fields(&declared, files);
        segfiles::write_index_file(
            &files.dir,
            segfiles::FIELDS_FILE,
            segfiles::FIELDS_KIND,
            [files.rows as u64, 0, 0, 0],
            &fields.encode(),
        )?;
        Ok(fields)
    }

    /// Declares a payload field index on `key` (a key path as in filters) and builds it for
    /// every sealed segment (rewriting each segment's `fields` file), then publishes the
    /// manifest. Returns `false` if the same index was already declared; a different kind on
    /// the same key is an error (drop it first).
    pub fn create_field_index(&self, key: &str, kind: FieldKind) -> Result<bool> {
        self.check_usable()?;
        let path = KeyPath::parse(key)
            .map_err(|e| self.invalid(format!("field index key `{key}`: {e}")))?;
        let key = path.as_str().to_string();
        let mut published = mlock(&self.maintenance);
        match rlock(&self.payload_indexes).get(&key) {
            Some(k) if *k == kind => return Ok(false),
            Some(k) => {
                return Err(self.invalid(format!(
                    "field `{key}` already has a {k} index; drop it before creating a {kind} index"
                )));
            }
            None => {}
        }
        wlock(&self.payload_indexes).insert(key.clone(), kind);
        let one = BTreeMap::from([(key, kind)]);
        let result = (|| -> Result<()> {
            for seg in self.snapshot().iter() {
                let crate::segment::Body::Sealed(files) = &seg.body else {
                    continue;
                };
                let mut fields = (*seg.fields()).clone();
                for index in planner::build_fields(&one, files).iter() {
                    fields.insert(index.clone());
                }
                segfiles::replace_fields_file(&files.dir, files.rows as u64, &fields.encode())?;
                seg.set_fields(fields);
            }
            let watermark = published.watermark;
            self.publish(&mut published, watermark, &[])
        })();
        match result {
            Ok(()) => Ok(true),
            Err(e) => self.fail(e),
        }
    }

    /// Drops a declared payload field index. Returns whether it existed. Filters on the key
    /// still work, checked per point.
    pub fn drop_field_index(&self, key: &str) -> Result<bool> {
        self.check_usable()?;
        let key = KeyPath::parse(key)
            .map_err(|e| self.invalid(format!("field index key `{key}`: {e}")))?
            .as_str()
            .to_string();
        let mut published = mlock(&self.maintenance);
        if wlock(&self.payload_indexes).remove(&key).is_none() {
            return Ok(false);
        }
        let result = (|| -> Result<()> {
            // The manifest first: a crash after it leaves `fields` files with an extra index,
            // which open ignores.
            let watermark = published.watermark;
            self.publish(&mut published, watermark, &[])?;
            for seg in self.snapshot().iter() {
                let crate::segment::Body::Sealed(files) = &seg.body else {
                    continue;
                };
                let mut fields = (*seg.fields()).clone();
                if fields.remove(&key).is_some() {
                    segfiles::replace_fields_file(&files.dir, files.rows as u64, &fields.encode())?;
                    seg.set_fields(fields);
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(true),
            Err(e) => self.fail(e),
        }
    }

    /// Writes changed deleted bitmaps and a new manifest with `watermark`, then truncates the
    /// log and removes what the new manifest no longer names (`removed` segments).
    fn publish(&self, published: &mut Published, watermark: u64, removed: &[u64]) -> Result<()> {
        // Snapshot under the state lock: no write is being applied, so the bitmaps reflect
        // exactly the operations up to `last_seq`.
        let (sealed, bitmaps, last_seq, next_segment_id, watermark) = {
            let state = rlock(&self.state);
            let sealed: Vec<Arc<Segment>> = rlock(&self.segments)
                .iter()
                .filter(|s| !s.is_mutable())
                .cloned()
                .collect();
            let bitmaps: Vec<Option<Vec<u64>>> = sealed
                .iter()
                .map(|s| {
                    let (_, count) = published.deleted.get(&s.id).copied().unwrap_or((0, 0));
                    (s.deleted.count() != count).then(|| s.deleted.snapshot(s.rows()))
                })
                .collect();
            let last_seq = self.wal.last_seq();
            // With the mutable segment empty, every logged operation is reflected in the
            // sealed segments and these bitmaps: the watermark can move up to the last one and
            // the log be truncated entirely (after deletes followed by a compaction, say).
            let watermark = if state.mutable.rows() == 0 && last_seq > watermark {
                self.wal.rotate()?;
                last_seq
            } else {
                watermark
            };
            (sealed, bitmaps, last_seq, state.next_segment_id, watermark)
        };
        // The bitmaps may include deletions logged but not yet fsynced: make them durable
        // first, or a crash could keep the deletion half of an unacknowledged overwrite.
        self.wal.sync_to(last_seq)?;
        let segments_dir = self.dir.join(SEGMENTS_DIR);
        let mut entries = Vec::with_capacity(sealed.len());
        let mut new_gens = Vec::new();
        for (seg, bitmap) in sealed.iter().zip(bitmaps) {
            let (mut generation, _) = published.deleted.get(&seg.id).copied().unwrap_or((0, 0));
            let seg_dir = segments_dir.join(seg.id.to_string());
            if let Some(words) = bitmap {
                generation += 1;
                segfiles::write_deleted(&seg_dir, generation, seg.rows() as u64, &words)?;
                let count = words.iter().map(|w| w.count_ones() as usize).sum();
                new_gens.push((seg.id, generation, count, seg_dir));
            }
            entries.push(SegmentEntry {
                id: seg.id,
                rows: seg.rows() as u64,
                deleted_gen: generation,
            });
        }
        Manifest {
            schema: serde_json::to_value(&self.schema).map_err(|e| Error::InvalidSchema {
                reason: e.to_string(),
            })?,
            config: serde_json::to_value(&self.config).map_err(|e| Error::InvalidSchema {
                reason: e.to_string(),
            })?,
            segments: entries,
            next_segment_id,
            wal_watermark: watermark,
            payload_indexes: rlock(&self.payload_indexes)
                .iter()
                .map(|(k, v)| (k.clone(), v.name().to_string()))
                .collect(),
        }
        .write(&self.dir)?;
        // The manifest is durable: older state can go.
        published.watermark = watermark;
        for (id, generation, count, seg_dir) in new_gens {
            published.deleted.insert(id, (generation, count));
            segfiles::remove_other_deleted(&seg_dir, generation)?;
        }
        for id in removed {
            published.deleted.remove(id);
            let d = segments_dir.join(id.to_string());
            std::fs::remove_dir_all(&d)
                .map_err(|source| quiver_storage::Error::Io { path: d, source })?;
        }
        self.wal.remove_through(watermark)?;
        Ok(())
    }

    /// Rewrites sealed segments that have deleted rows into one segment holding only live
    /// rows, so that their disk space is freed. `min_deleted_fraction` = 0.0 compacts every
    /// segment with any deletion. The mutable segment is sealed first.
    pub fn compact(&self, min_deleted_fraction: f64) -> Result<CompactionReport> {
        self.check_usable()?;
        let before = qfs::disk_usage(&self.dir)?;
        let mut published = mlock(&self.maintenance);
        if let Err(e) = self.seal(&mut published) {
            return self.fail(e);
        }
        let mut report = match self.compact_locked(&mut published, min_deleted_fraction) {
            Ok(r) => r,
            Err(e) => return self.fail(e),
        };
        report.disk_bytes_before = before;
        report.disk_bytes_after = qfs::disk_usage(&self.dir)?;
        Ok(report)
    }

    fn compact_locked(
        &self,
        published: &mut Published,
        min_fraction: f64,
    ) -> Result<CompactionReport> {
        self.check_usable()?;
        let chosen: Vec<Arc<Segment>> = rlock(&self.segments)
            .iter()
            .filter(|s| {
                let rows = s.rows();
                let deleted = s.deleted.count();
                !s.is_mutable() && deleted > 0 && deleted as f64 >= min_fraction * rows as f64
            })
            .cloned()
            .collect();
        if chosen.is_empty() {
            return Ok(CompactionReport::default());
        }
        // 1. Snapshot deletions (under the state lock: consistent with the log) and reserve an id.
        let (snapshots, new_id) = {
            let mut state = wlock(&self.state);
            let snaps: Vec<Vec<u64>> = chosen
                .iter()
                .map(|s| s.deleted.snapshot(s.rows()))
                .collect();
            let id = state.next_segment_id;
            state.next_segment_id += 1;
            (snaps, id)
        };
        // 2. Write live rows into the new segment, remembering where each came from.
        let dims = self.schema.dims();
        let segments_dir = self.dir.join(SEGMENTS_DIR);
        let mut writer = SegmentWriter::create(&segments_dir, new_id, &dims)?;
        let mut origin: Vec<(usize, u32)> = Vec::new();
        let mut dropped_rows = 0u64;
        for (si, (seg, snap)) in chosen.iter().zip(&snapshots).enumerate() {
            seg.with_view(|v| -> Result<()> {
                for row in 0..v.rows() as u32 {
                    if snap[row as usize / 64] & (1 << (row % 64)) != 0 {
                        dropped_rows += 1;
                        continue;
                    }
                    copy_row(&mut writer, v, &dims, row)?;
                    origin.push((si, row));
                }
                Ok(())
            })?;
        }
        let (dir, _) = writer.finish()?;
        let files = segfiles::open_segment(&dir, origin.len() as u64, &dims)?;
        let graphs = self.build_graphs(&files)?;
        let fields = self.write_fields(&files)?;
        // 3. Swap: carry over deletions made meanwhile and repoint the id map.
        {
            let mut state = wlock(&self.state);
            let merged = Arc::new(Segment::sealed(
                new_id,
                files,
                vec![0; origin.len().div_ceil(64)],
                graphs,
                fields,
            ));
            let current: Vec<Vec<u64>> = chosen
                .iter()
                .map(|s| s.deleted.snapshot(s.rows()))
                .collect();
            merged.with_view(|v| {
                for (new_row, &(si, old_row)) in origin.iter().enumerate() {
                    let id = v.ids[new_row];
                    let was = Loc {
                        segment: chosen[si].id,
                        offset: old_row,
                    };
                    let deleted_since =
                        current[si][old_row as usize / 64] & (1 << (old_row % 64)) != 0;
                    if deleted_since || state.ids.get(&id) != Some(&was) {
                        merged.deleted.set(new_row as u32);
                    } else {
                        state.ids.insert(
                            id,
                            Loc {
                                segment: new_id,
                                offset: new_row as u32,
                            },
                        );
                    }
                }
            });
            for s in &chosen {
                state.by_id.remove(&s.id);
            }
            state.by_id.insert(new_id, Arc::clone(&merged));
            let mut list: Vec<Arc<Segment>> = rlock(&self.segments)
                .iter()
                .filter(|s| !chosen.iter().any(|c| c.id == s.id))
                .cloned()
                .collect();
            // Keep the mutable segment last.
            let insert_at = list
                .iter()
                .position(|s| s.is_mutable())
                .unwrap_or(list.len());
            list.insert(insert_at, merged);
            *wlock(&self.segments) = Arc::new(list);
        }
        published.deleted.insert(new_id, (0, 0));
        let removed: Vec<u64> = chosen.iter().map(|s| s.id).collect();
        let watermark = published.watermark;
        self.publish(published, watermark, &removed)?;
        Ok(CompactionReport {
            segments_merged: chosen.len(),
            rows_dropped: dropped_rows,
            ..CompactionReport::default()
        })
    }

    /// Makes every write so far durable (for `Durability::Periodic`).
    pub fn sync(&self) -> Result<()> {
        match self.wal.sync_all() {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    pub fn info(&self) -> Result<CollectionInfo> {
        let segments = self.snapshot();
        Ok(CollectionInfo {
            name: self.name.clone(),
            schema: self.schema.clone(),
            config: self.config.clone(),
            points: segments.iter().map(|s| s.live() as u64).sum(),
            segments: segments
                .iter()
                .map(|s| SegmentInfo {
                    id: s.id,
                    sealed: !s.is_mutable(),
                    rows: s.rows() as u64,
                    deleted: s.deleted.count() as u64,
                })
                .collect(),
            disk_bytes: qfs::disk_usage(&self.dir)?,
            wal_bytes: self.wal.disk_bytes()?,
            last_seq: self.wal.last_seq(),
            payload_indexes: rlock(&self.payload_indexes).clone(),
        })
    }

    /// Checks internal consistency: every live row's id maps to it, every mapped id is live
    /// where it points, deleted counts match their bitmaps, and sealed files verify on disk.
    pub fn check_integrity(&self) -> Result<()> {
        let state = rlock(&self.state);
        let segments = self.snapshot();
        let corrupt = |message: String| Error::Corrupt {
            path: self.dir.clone(),
            message,
        };
        let mut live_rows = 0usize;
        for seg in segments.iter() {
            let rows = seg.rows();
            let deleted_bits: usize = seg
                .deleted
                .snapshot(rows)
                .iter()
                .map(|w| w.count_ones() as usize)
                .sum();
            if deleted_bits != seg.deleted.count() {
                return Err(corrupt(format!(
                    "segment {}: deleted count {} but {deleted_bits} bits set",
                    seg.id,
                    seg.deleted.count()
                )));
            }
            seg.with_view(|v| -> Result<()> {
                for row in 0..v.rows() as u32 {
                    if v.deleted.is_deleted(row) {
                        continue;
                    }
                    live_rows += 1;
                    let id = v.ids[row as usize];
                    let want = Loc {
                        segment: seg.id,
                        offset: row,
                    };
                    if state.ids.get(&id) != Some(&want) {
                        return Err(corrupt(format!(
                            "point {id} is live in segment {} row {row} but the id map says {:?}",
                            seg.id,
                            state.ids.get(&id)
                        )));
                    }
                }
                Ok(())
            })?;
            if let crate::segment::Body::Sealed(files) = &seg.body {
                segfiles::open_segment(&files.dir, rows as u64, &self.schema.dims())?;
            }
        }
        if live_rows != state.ids.len() {
            return Err(corrupt(format!(
                "{live_rows} live rows but {} ids mapped",
                state.ids.len()
            )));
        }
        Ok(())
    }
}

/// Appends row `row` of a segment view (all its vectors, id and payload) to a segment being
/// written: sealing copies every row, compaction the live ones.
fn copy_row(w: &mut SegmentWriter, v: &View<'_>, dims: &[usize], row: u32) -> Result<()> {
    let vectors: Vec<&[f32]> = dims
        .iter()
        .enumerate()
        .map(|(i, &dim)| v.vector(i, dim, row))
        .collect();
    w.push_row(v.ids[row as usize], &vectors, v.payload(row))?;
    Ok(())
}

/// Seed of graph level draws: fixed, so a rebuild over the same rows draws the same levels.
const GRAPH_SEED: u64 = 0x5155_4956_4552;

/// Loads the graph indexes of a published segment (those its schema and size call for).
fn load_graphs(schema: &Schema, files: &segfiles::SegmentFiles) -> Result<Vec<Option<GraphIndex>>> {
    let mut graphs = Vec::with_capacity(schema.vectors.len());
    for (i, kind) in schema.vectors.values().enumerate() {
        let IndexKind::Hnsw { quantization, .. } = kind.index() else {
            graphs.push(None);
            continue;
        };
        if files.rows < MIN_GRAPH_ROWS {
            graphs.push(None);
            continue;
        }
        let name = segfiles::hnsw_file(i);
        let (_, body) = segfiles::read_index_file(&files.dir, &name, segfiles::HNSW_KIND)?;
        let path = files.dir.join(&name);
        let graph = hnsw::decode(&body).map_err(|e| Error::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if graph.len() != files.rows {
            return Err(Error::Corrupt {
                path,
                message: format!(
                    "graph has {} nodes, the segment {} rows",
                    graph.len(),
                    files.rows
                ),
            });
        }
        let codes = match quantization {
            Quantization::Lvq8 => Some(load_lvq8(files, i, kind.dim())?),
            _ => None,
        };
        graphs.push(Some(GraphIndex { graph, codes }));
    }
    Ok(graphs)
}

/// Loads the LVQ-8 codes of vector `i` and checks they fit the segment.
fn load_lvq8(files: &segfiles::SegmentFiles, i: usize, dim: usize) -> Result<Lvq8> {
    let name = segfiles::lvq8_file(i);
    let (_, body) = segfiles::read_index_file(&files.dir, &name, segfiles::LVQ8_KIND)?;
    let path = files.dir.join(&name);
    let codes = Lvq8::from_bytes(&body).map_err(|message| Error::Corrupt {
        path: path.clone(),
        message,
    })?;
    if codes.len() != files.rows || codes.dim() != dim {
        return Err(Error::Corrupt {
            path,
            message: format!(
                "codes for {} rows of dimension {}, the segment has {} rows of dimension {dim}",
                codes.len(),
                codes.dim(),
                files.rows
            ),
        });
    }
    Ok(codes)
}

/// How many of a quantized graph search's best candidates are re-scored with the `f32` rows:
/// 2k reached the recall of `f32` traversal at every ef on wordnet (BENCHMARKS.md).
fn rerank_count(k: usize) -> usize {
    (2 * k).max(10)
}

/// Searches one segment: its graph for `position` if it has one, else exactly. With a
/// filter, the planner (`planner.rs`) picks exact search over the candidate rows or graph
/// search with the filter checked during traversal.
#[allow(clippy::too_many_arguments)]
fn search_segment(
    seg: &Segment,
    position: usize,
    kind: &VectorKind,
    query: &[f32],
    k: usize,
    ef: usize,
    filter: Option<&Filter>,
    scan_fraction: f64,
) -> (Vec<Hit>, SearchStats) {
    seg.with_view(|v| {
        let rows = v.vectors[position];
        let (dim, metric) = (kind.dim(), kind.distance().metric());
        let graph = seg.graphs.get(position).and_then(Option::as_ref);
        let graph_search = |index: &GraphIndex, accept: &dyn Fn(u32) -> bool| {
            let exact = DenseScorer {
                rows,
                dim,
                metric,
                query,
            };
            match &index.codes {
                Some(codes) => index.graph.search_reranked(
                    &codes.scorer(query, metric),
                    &exact,
                    k,
                    ef,
                    rerank_count(k),
                    accept,
                ),
                None => index.graph.search(&exact, k, ef, accept),
            }
        };
        let Some(filter) = filter else {
            let deleted = &v.deleted;
            let accept = |o: u32| !deleted.is_deleted(o);
            return match graph {
                Some(index) => graph_search(index, &accept),
                None => flat::search(rows, dim, metric, query, k, accept),
            };
        };
        let rf = RowFilter::new(filter, seg, v);
        let accept = |o: u32| rf.accepts(o);
        // Over the candidates only. Large sets are scanned on the graph's LVQ codes (a
        // quarter of the bytes, on huge pages), the best re-scored with the f32 rows.
        let exact = || match graph.and_then(|g| g.codes.as_ref()) {
            Some(codes) if rf.candidate_count() >= planner::CODE_SCAN_MIN_ROWS => {
                flat::search_subset_reranked(
                    &codes.scorer(query, metric),
                    &DenseScorer {
                        rows,
                        dim,
                        metric,
                        query,
                    },
                    k,
                    rerank_count(k),
                    rf.eval.candidates(),
                    accept,
                )
            }
            _ => flat::search_subset(rows, dim, metric, query, k, rf.eval.candidates(), accept),
        };
        match graph {
            Some(index)
                if !planner::exact_is_cheaper(
                    rf.candidate_count(),
                    v.rows() as u64,
                    scan_fraction,
                ) =>
            {
                let (hits, stats) = graph_search(index, &accept);
                if hits.len() >= k {
                    return (hits, stats);
                }
                // Fewer accepted nodes reachable than asked for: finish exactly, so the
                // result holds min(k, matching points).
                let (hits, mut more) = exact();
                more.add(stats);
                (hits, more)
            }
            _ => exact(),
        }
    })
}

/// Applies a logged operation to the in-memory state. Infallible: everything was validated
/// before the operation was logged (or, on replay, when it was first logged).
fn apply(state: &mut State, schema: &Schema, op: &Op) {
    match op {
        Op::Upsert(points) => {
            for p in points {
                if p.vectors.len() != schema.vectors.len() {
                    continue;
                }
                if let Some(old) = state.ids.get(&p.id)
                    && let Some(seg) = state.by_id.get(&old.segment)
                {
                    seg.deleted.set(old.offset);
                }
                let offset = state.mutable.push(p);
                let segment = state.mutable.id;
                state.ids.insert(p.id, Loc { segment, offset });
            }
        }
        Op::Delete(ids) => {
            for id in ids {
                if let Some(old) = state.ids.remove(id)
                    && let Some(seg) = state.by_id.get(&old.segment)
                {
                    seg.deleted.set(old.offset);
                }
            }
        }
    }
}

/// Removes segment directories the manifest does not name (a crash between writing a segment
/// and publishing the manifest, or after publishing but before removing merged segments).
fn remove_unlisted_segments(segments_dir: &Path, manifest: &Manifest) -> Result<()> {
    let entries = std::fs::read_dir(segments_dir).map_err(|source| quiver_storage::Error::Io {
        path: segments_dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| quiver_storage::Error::Io {
            path: segments_dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let listed = name
            .parse::<u64>()
            .is_ok_and(|id| manifest.segments.iter().any(|s| s.id == id));
        if !listed {
            log::info!("removing unpublished segment {}", entry.path().display());
            let path = entry.path();
            std::fs::remove_dir_all(&path)
                .map_err(|source| quiver_storage::Error::Io { path, source })?;
        }
    }
    Ok(())
}

fn spawn_periodic_sync(collection: std::sync::Weak<Collection>, every: Duration) {
    std::thread::Builder::new()
        .name("quiver-wal-sync".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(c) = collection.upgrade() else {
                    return;
                };
                if c.dropped.load(Ordering::Acquire) {
                    return;
                }
                if let Err(e) = c.sync() {
                    log::error!("periodic WAL sync of `{}` failed: {e}", c.name);
                    return;
                }
            }
        })
        .map(|_| ())
        .unwrap_or_else(|e| log::error!("cannot start the periodic WAL sync thread: {e}"));
}

impl Drop for Collection {
    fn drop(&mut self) {
        if !self.dropped.load(Ordering::Acquire)
            && let Err(e) = self.wal.sync_all()
        {
            log::error!("final WAL sync of `{}` failed: {e}", self.name);
        }
    }
}

/// A JSON value's type, for messages.
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
