//! Inspection: collection info and the integrity check.

use super::*;
use crate::segment::ReducedCodes;

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
    /// The mutable segment: bytes held in memory (what the seal threshold measures). A sealed
    /// segment: bytes of its dense vectors, memory-mapped.
    pub bytes: u64,
    /// Dense vectors of the segment that have a graph (the mutable segment has none).
    pub graphs: usize,
}

/// What the maintenance thread is doing, read without waiting for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceStatus {
    /// Segments frozen and waiting for their seal (writers wait once there are too many).
    pub frozen: usize,
    /// A round of sealing or merging is running now.
    pub working: bool,
    /// Why the collection stopped accepting writes, if a write failed.
    pub failed: Option<String>,
}

/// Memory that a collection's searches read, by what holds it (`quiver bench` prints it as
/// `vector_ram_bytes` and `index_ram_bytes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Vector data an unfiltered search reads: the codes a graph traverses and re-scores on,
    /// and the `f32` rows where a search reads them (exact search, graphs without codes,
    /// LVQ-8 and LVQ-4 re-scoring). LVQ-4x8 re-scores on its residual codes, so its `f32`
    /// rows stay on disk, mapped but untouched, and so do LeanVec's with LVQ-8 secondary codes.
    pub vector_bytes: u64,
    /// Graphs and sparse postings.
    pub index_bytes: u64,
}

impl Collection {
    /// What searches keep in memory; computed from sizes, without touching the data.
    pub fn memory(&self) -> MemoryUsage {
        let schema = Arc::clone(&self.settings().schema);
        let mut usage = MemoryUsage::default();
        for segment in self.segment_list().iter() {
            for (i, kind) in schema.vectors.values().enumerate() {
                let rows = (segment.rows() * kind.dim() * size_of::<f32>()) as u64;
                let graph = segment.graphs.get(i).and_then(Option::as_ref);
                let (codes, reads_rows) = match graph.and_then(|g| g.codes.as_ref()) {
                    None => (0, true),
                    Some(Codes::Lvq8(c)) => (c.memory_bytes(), true),
                    Some(Codes::Lvq4(c)) => (c.memory_bytes(), !c.has_residual()),
                    Some(Codes::LeanVec(l)) => {
                        let primary = match &l.primary {
                            ReducedCodes::Lvq8(c) => c.memory_bytes(),
                            ReducedCodes::Lvq4(c) => c.memory_bytes(),
                        };
                        let projection = l.projection.dim() * l.projection.dims() * 4;
                        let secondary = l.secondary.as_ref().map(Lvq8::memory_bytes);
                        (
                            primary + projection + secondary.unwrap_or(0),
                            secondary.is_none(),
                        )
                    }
                };
                usage.vector_bytes += codes as u64 + if reads_rows { rows } else { 0 };
                usage.index_bytes += graph.map_or(0, |g| g.graph.memory_bytes()) as u64;
            }
            usage.index_bytes += segment
                .postings
                .iter()
                .map(|p| p.body().len() as u64)
                .sum::<u64>();
        }
        usage
    }

    /// Live points and segments, without touching the disk (for metrics).
    pub fn size(&self) -> (u64, usize) {
        let segments = self.segment_list();
        let points = segments.iter().map(|s| s.live() as u64).sum();
        (points, segments.len())
    }

    pub fn info(&self) -> Result<CollectionInfo> {
        let segments = self.segment_list();
        let settings = self.settings();
        Ok(CollectionInfo {
            name: self.name.clone(),
            schema: (*settings.schema).clone(),
            config: settings.config.clone(),
            points: segments.iter().map(|s| s.live() as u64).sum(),
            segments: segments
                .iter()
                .map(|s| SegmentInfo {
                    id: s.id,
                    sealed: !s.is_mutable(),
                    rows: s.rows() as u64,
                    deleted: s.deleted.count() as u64,
                    bytes: s.bytes(),
                    graphs: s.graphs.iter().flatten().count(),
                })
                .collect(),
            disk_bytes: qfs::disk_usage(&self.dir)?,
            wal_bytes: self.wal.disk_bytes()?,
            last_seq: self.wal.last_seq(),
            payload_indexes: self.payload_indexes.read().clone(),
        })
    }

    /// The maintenance thread's state, from counters it keeps (no lock it holds is taken).
    pub fn maintenance_status(&self) -> MaintenanceStatus {
        MaintenanceStatus {
            frozen: self.signal.frozen.load(Ordering::Acquire),
            working: self.signal.working(),
            failed: self.failed.lock().clone(),
        }
    }

    /// Checks internal consistency: every live row's id maps to it, every mapped id is live
    /// where it points, deleted counts match their bitmaps, and sealed files verify on disk.
    pub fn check_integrity(&self) -> Result<()> {
        // The id map against the segments under the state lock (no write half-applied); the
        // files, which are immutable, after it.
        let sealed = self.check_id_map()?;
        let schema = self.schema();
        let dims = schema.dims();
        for (dir, rows) in sealed {
            segfiles::open_segment(
                &dir,
                rows,
                &dims,
                schema.sparse_vectors.len(),
                &schema.multi_dims(),
            )?;
        }
        Ok(())
    }

    /// The in-memory half of [`Collection::check_integrity`]; returns the sealed segments'
    /// directories and rows.
    fn check_id_map(&self) -> Result<Vec<(PathBuf, u64)>> {
        let state = self.state.read();
        let segments = self.segment_list();
        let mut sealed = Vec::new();
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
                sealed.push((files.dir.clone(), rows as u64));
            }
        }
        if live_rows != state.ids.len() {
            return Err(corrupt(format!(
                "{live_rows} live rows but {} ids mapped",
                state.ids.len()
            )));
        }
        Ok(sealed)
    }
}
