//! A collection: the write path, the read path, sealing, compaction and recovery, one file per
//! protocol step (`docs/format.md` names them).
//!
//! **Locks**, always taken in this order (a thread never takes an earlier one while holding a
//! later one): `maintenance` (one seal or compaction at a time) → `state` (id map; its write
//! lock is held while a write is appended to the WAL and applied, so WAL order = apply order)
//! → `segments` (the list and sequence number readers snapshot) → `readers` → a segment's own
//! locks. `settings` (schema and config) is a leaf: held only to clone or replace its
//! `Arc`, never while taking another lock; it is replaced under `maintenance`, which every
//! publish holds, so a manifest never mixes old and new settings. **No lock is held across
//! a parallel section of the shared rayon pool**: a pool thread waiting for its tasks may
//! run another task that wants the same lock (rayon#592). Work that runs in parallel under
//! a lock (graph builds, LVQ encoding, under `maintenance`) runs in the database's build
//! pool, whose tasks take no collection lock.
//!
//! **Reads are snapshots**: a search sees every operation up to one sequence number and none
//! after it (rows written later are outside its view, rows deleted later are live in it), so
//! it returns each point at most once and finds every point live at that sequence number.

use crate::error::{Error, Result};
use crate::ops::{Op, PreparedPoint};
use crate::planner::{self, RowFilter, parse_payload, payload_or_empty};
use crate::point::{
    DEFAULT_EF, Point, QueryVector, Record, ScoredPoint, ScrollPage, SearchRequest, SparseVector,
    With,
};
use crate::schema::{
    CollectionConfig, Distance, IndexKind, MIN_GRAPH_ROWS, Quantization, Schema, SettingsPatch,
    VectorKind,
};
use crate::segment::{Codes, GraphIndex};
use crate::segment::{Segment, View};
use crate::text::TextModels;
use parking_lot::{Mutex, RwLock};
use quiver_filter::{Filter, IndexKind as FieldKind, KeyPath};
use quiver_index::hnsw::{self, DenseScorer};
use quiver_index::lvq::Lvq8;
use quiver_index::lvq4::Lvq4;
use quiver_index::{Hit, SearchStats, flat};
use quiver_storage::manifest::{Manifest, SegmentEntry};
use quiver_storage::segment::{self as segfiles, SegmentWriter};
use quiver_storage::wal::{Wal, WalReader};
use quiver_storage::{PointId, fs as qfs};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

mod bm25;
mod compaction;
mod derived;
mod durability;
mod field_index;
mod hybrid;
mod inspect;
mod leanvec;
mod maintenance;
mod multi;
mod open;
mod order;
mod publish;
mod query_sample;
mod read;
mod seal;
mod search;
mod settings;
mod snapshot;
mod state;
mod update;
mod write;

pub use compaction::CompactionReport;
pub use durability::Durability;
pub use inspect::{CollectionInfo, MaintenanceStatus, MemoryUsage, SegmentInfo};
use maintenance::Signal;
use settings::Settings;
use snapshot::{ReadState, Readers, Snapshot};
use state::{Loc, State, apply};

type SegmentList = Arc<Vec<Arc<Segment>>>;

/// What the collections of a database share.
pub(crate) struct Shared {
    pub(crate) durability: Durability,
    pub(crate) models: Arc<TextModels>,
    pub(crate) pool: Arc<rayon::ThreadPool>,
    pub(crate) dir_lock: Arc<DirLock>,
}

/// The data directory's lock: held by the database and every collection handle, released when
/// the last of them is gone.
pub(crate) struct DirLock {
    pub(crate) _file: std::fs::File,
}

/// What the last published manifest holds, owned by the maintenance lock.
struct Published {
    pub(super) watermark: u64,
    /// Per sealed segment: (bitmap generation, deleted count it holds).
    pub(super) deleted: HashMap<u64, (u64, usize)>,
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
    /// Schema and config, replaced whole by [`Collection::update_settings`].
    settings: RwLock<Arc<Settings>>,
    durability: Durability,
    wal: Wal,
    maintenance: Mutex<Published>,
    /// Declared payload field indexes; changed only under the maintenance lock.
    payload_indexes: RwLock<BTreeMap<String, FieldKind>>,
    state: RwLock<State>,
    segments: RwLock<ReadState>,
    readers: Readers,
    /// Wakes the maintenance thread; writers wait on it when too many segments await sealing.
    signal: Arc<Signal>,
    /// Runs graph builds and LVQ encoding (shared by the database's collections).
    pool: Arc<rayon::ThreadPool>,
    _dir_lock: Arc<DirLock>,
    /// Set when a write could not complete (I/O error after logging): nothing more is accepted
    /// until the collection is reopened and recovered from disk.
    failed: Mutex<Option<String>>,
    dropped: AtomicBool,
    distance_computations: AtomicU64,
    recovery: RecoveryReport,
    /// The text model, for vectors declared as embedded from text.
    models: Arc<TextModels>,
    /// MUVERA encoders of the multi-vectors, by name (fixed at creation).
    encoders: BTreeMap<String, Arc<quiver_index::multi::Fde>>,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("name", &self.name)
            .finish()
    }
}

pub(crate) const WAL_DIR: &str = "wal";
pub(crate) const SEGMENTS_DIR: &str = "segments";

impl Collection {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema as it is now (graph parameters change with
    /// [`Collection::update_settings`]; vectors, dimensions and distances never do).
    pub fn schema(&self) -> Arc<Schema> {
        Arc::clone(&self.settings.read().schema)
    }

    /// The collection's settings as they are now.
    pub fn config(&self) -> CollectionConfig {
        self.settings.read().config.clone()
    }

    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Distance computations done by searches since open (a load-independent cost figure).
    pub fn distance_computations(&self) -> u64 {
        self.distance_computations.load(Ordering::Relaxed)
    }

    /// Sequence number of the last logged write (what a write's operation id is compared to).
    pub fn last_seq(&self) -> u64 {
        self.wal.last_seq()
    }

    fn check_usable(&self) -> Result<()> {
        if self.dropped.load(Ordering::Acquire) {
            return Err(Error::Unavailable {
                collection: self.name.clone(),
                reason: "it was dropped".into(),
            });
        }
        if let Some(reason) = self.failed.lock().as_ref() {
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
        self.failed.lock().get_or_insert_with(|| e.to_string());
        Err(e)
    }

    /// Marks the collection dropped once no seal or compaction is running, so none can write
    /// into its directory (or a new one of the same name) afterwards.
    pub(crate) fn mark_dropped(&self) {
        let _maintenance = self.maintenance.lock();
        self.dropped.store(true, Ordering::Release);
    }

    fn invalid(&self, message: impl Into<String>) -> Error {
        Error::InvalidRequest {
            collection: self.name.clone(),
            message: message.into(),
        }
    }

    /// A consistent read snapshot: the segment list and the sequence number it reflects.
    fn snapshot(&self) -> Snapshot<'_> {
        let read = self.segments.read();
        Snapshot {
            segments: Arc::clone(&read.list),
            seq: read.seq,
            _registered: self.readers.register(read.seq),
        }
    }

    /// The current segment list (for maintenance, which sees every row).
    fn segment_list(&self) -> SegmentList {
        Arc::clone(&self.segments.read().list)
    }

    /// Replaces the segment list (under the state write lock).
    fn set_segment_list(&self, list: Vec<Arc<Segment>>) {
        self.segments.write().list = Arc::new(list);
    }

    /// Under the state write lock: takes the segments `removed` out of the id lookup and the
    /// list, and puts `sealed` (if any) in their place. The list stays ordered sealed
    /// segments, then frozen ones (oldest first), then the mutable one, so a new sealed
    /// segment goes before the first segment that is not sealed: where the frozen segment
    /// it replaces was, since seals go oldest first.
    fn swap_segments(&self, state: &mut State, removed: &[u64], sealed: Option<Arc<Segment>>) {
        for id in removed {
            state.by_id.remove(id);
        }
        let mut list: Vec<Arc<Segment>> = self
            .segment_list()
            .iter()
            .filter(|s| !removed.contains(&s.id))
            .cloned()
            .collect();
        if let Some(sealed) = sealed {
            state.by_id.insert(sealed.id, Arc::clone(&sealed));
            let at = list
                .iter()
                .position(|s| s.is_mutable())
                .unwrap_or(list.len());
            list.insert(at, sealed);
        }
        self.set_segment_list(list);
    }

    /// The sealed segments of the current list.
    fn sealed_segments(&self) -> Vec<Arc<Segment>> {
        self.segment_list()
            .iter()
            .filter(|s| !s.is_mutable())
            .cloned()
            .collect()
    }

    /// Freezes the mutable segment and seals everything frozen, on the caller's thread;
    /// returns the maintenance lock, held (for `flush` and `compact`).
    fn seal_all(&self) -> Result<parking_lot::MutexGuard<'_, Published>> {
        self.check_usable()?;
        {
            let mut state = self.state.write();
            if let Err(e) = self.freeze(&mut state) {
                return self.fail(e);
            }
        }
        let mut published = self.maintenance.lock();
        if let Err(e) = self.seal_frozen(&mut published) {
            return self.fail(e);
        }
        Ok(published)
    }
}

impl Drop for Collection {
    fn drop(&mut self) {
        self.signal.stop();
        if !self.dropped.load(Ordering::Acquire)
            && let Err(e) = self.wal.sync_all()
        {
            log::error!("final WAL sync of `{}` failed: {e}", self.name);
        }
    }
}
