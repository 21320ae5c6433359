//! Segments as the engine holds them: the one mutable segment taking inserts, and sealed,
//! immutable ones mapped from disk. Both expose the same read [`View`].

use crate::ops::PreparedPoint;
use parking_lot::{RwLock, RwLockReadGuard};
use quiver_filter::FieldIndexes;
use quiver_index::hnsw::HnswGraph;
use quiver_index::lvq::Lvq8;
use quiver_storage::PointId;
use quiver_storage::segment::SegmentFiles;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Deleted rows of a segment. Setting a bit needs only a shared lock (atomic `fetch_or`);
/// only growth (inserts into the mutable segment) takes the exclusive lock.
#[derive(Debug, Default)]
pub(crate) struct DeletedBits {
    words: RwLock<Vec<AtomicU64>>,
    count: AtomicUsize,
}

impl DeletedBits {
    pub fn from_words(words: Vec<u64>) -> DeletedBits {
        let count = words.iter().map(|w| w.count_ones() as usize).sum();
        DeletedBits {
            words: RwLock::new(words.into_iter().map(AtomicU64::new).collect()),
            count: AtomicUsize::new(count),
        }
    }

    pub fn ensure_rows(&self, rows: usize) {
        let need = rows.div_ceil(64);
        if self.words.read().len() < need {
            let mut w = self.words.write();
            while w.len() < need {
                w.push(AtomicU64::new(0));
            }
        }
    }

    /// Marks a row deleted; returns whether it was live.
    pub fn set(&self, row: u32) -> bool {
        let words = self.words.read();
        let Some(word) = words.get(row as usize / 64) else {
            return false;
        };
        let bit = 1u64 << (row % 64);
        let was_live = word.fetch_or(bit, Ordering::AcqRel) & bit == 0;
        if was_live {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
        was_live
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    pub fn snapshot(&self, rows: usize) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .words
            .read()
            .iter()
            .map(|w| w.load(Ordering::Acquire))
            .collect();
        out.resize(rows.div_ceil(64), 0);
        out
    }

    pub fn guard(&self) -> DeletedGuard<'_> {
        DeletedGuard(self.words.read())
    }
}

/// A read guard over the deleted bits, held for the duration of a scan.
pub(crate) struct DeletedGuard<'a>(RwLockReadGuard<'a, Vec<AtomicU64>>);

impl DeletedGuard<'_> {
    #[inline]
    pub fn is_deleted(&self, row: u32) -> bool {
        self.0
            .get(row as usize / 64)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (row % 64)) != 0)
    }
}

/// The in-memory segment taking inserts, until it is frozen for sealing.
#[derive(Debug, Default)]
pub(crate) struct MutableData {
    pub ids: Vec<PointId>,
    /// One row-major buffer per schema vector.
    pub vectors: Vec<Vec<f32>>,
    pub payloads: Vec<Vec<u8>>,
}

#[derive(Debug)]
pub(crate) enum Body {
    Mutable(RwLock<MutableData>),
    Sealed(SegmentFiles),
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub id: u64,
    pub body: Body,
    pub deleted: DeletedBits,
    /// Per schema vector, the graph index if this segment has one (sealed segments only).
    pub graphs: Vec<Option<GraphIndex>>,
    /// Payload field indexes (sealed segments only; the mutable one checks every row).
    /// Replaced as a whole when an index is declared or dropped.
    fields: RwLock<Arc<FieldIndexes>>,
}

/// A graph and the codes its search traverses on (`None`: the `f32` rows).
#[derive(Debug)]
pub(crate) struct GraphIndex {
    pub graph: HnswGraph,
    pub codes: Option<Lvq8>,
}

/// A consistent read-only view of a segment's rows.
pub(crate) struct View<'a> {
    pub ids: &'a [PointId],
    pub vectors: Vec<&'a [f32]>,
    payloads: Payloads<'a>,
    pub deleted: DeletedGuard<'a>,
}

enum Payloads<'a> {
    Mutable(&'a [Vec<u8>]),
    Sealed(&'a SegmentFiles),
}

impl View<'_> {
    pub fn payload(&self, row: u32) -> &[u8] {
        match &self.payloads {
            Payloads::Mutable(p) => p.get(row as usize).map_or(&[], Vec::as_slice),
            Payloads::Sealed(f) => f.payload(row as usize),
        }
    }

    pub fn vector(&self, position: usize, dim: usize, row: u32) -> &[f32] {
        let start = row as usize * dim;
        self.vectors
            .get(position)
            .and_then(|v| v.get(start..start + dim))
            .unwrap_or(&[])
    }

    pub fn rows(&self) -> usize {
        self.ids.len()
    }
}

impl Segment {
    pub fn new_mutable(id: u64, vectors: usize) -> Segment {
        Segment {
            id,
            body: Body::Mutable(RwLock::new(MutableData {
                vectors: vec![Vec::new(); vectors],
                ..MutableData::default()
            })),
            deleted: DeletedBits::default(),
            graphs: (0..vectors).map(|_| None).collect(),
            fields: RwLock::default(),
        }
    }

    pub fn sealed(
        id: u64,
        files: SegmentFiles,
        deleted: Vec<u64>,
        graphs: Vec<Option<GraphIndex>>,
        fields: FieldIndexes,
    ) -> Segment {
        Segment {
            id,
            body: Body::Sealed(files),
            deleted: DeletedBits::from_words(deleted),
            graphs,
            fields: RwLock::new(Arc::new(fields)),
        }
    }

    /// The segment's payload field indexes (empty for the mutable segment).
    pub fn fields(&self) -> Arc<FieldIndexes> {
        Arc::clone(&self.fields.read())
    }

    pub fn set_fields(&self, fields: FieldIndexes) {
        *self.fields.write() = Arc::new(fields);
    }

    pub fn is_mutable(&self) -> bool {
        matches!(self.body, Body::Mutable(_))
    }

    pub fn rows(&self) -> usize {
        match &self.body {
            Body::Mutable(d) => d.read().ids.len(),
            Body::Sealed(f) => f.rows,
        }
    }

    pub fn live(&self) -> usize {
        self.rows().saturating_sub(self.deleted.count())
    }

    /// Runs `f` over a consistent view (holding the mutable segment's read lock if any).
    pub fn with_view<R>(&self, f: impl FnOnce(&View<'_>) -> R) -> R {
        match &self.body {
            Body::Mutable(d) => {
                let d = d.read();
                let view = View {
                    ids: &d.ids,
                    vectors: d.vectors.iter().map(Vec::as_slice).collect(),
                    payloads: Payloads::Mutable(&d.payloads),
                    deleted: self.deleted.guard(),
                };
                f(&view)
            }
            Body::Sealed(files) => {
                let view = View {
                    ids: &files.ids,
                    vectors: files.vectors.iter().map(|v| v.as_f32()).collect(),
                    payloads: Payloads::Sealed(files),
                    deleted: self.deleted.guard(),
                };
                f(&view)
            }
        }
    }

    /// Appends a point to the mutable segment; returns its offset. Vectors arrive in schema
    /// order (validated by the caller).
    pub fn push(&self, p: &PreparedPoint) -> u32 {
        let Body::Mutable(d) = &self.body else {
            unreachable!("inserts only go to the mutable segment");
        };
        let mut d = d.write();
        let offset = d.ids.len() as u32;
        d.ids.push(p.id);
        for (buf, (_, v)) in d.vectors.iter_mut().zip(&p.vectors) {
            buf.extend_from_slice(v);
        }
        d.payloads.push(p.payload.clone());
        drop(d);
        self.deleted.ensure_rows(offset as usize + 1);
        offset
    }

    /// Bytes of vector data held (what the seal threshold measures).
    pub fn vector_bytes(&self) -> u64 {
        match &self.body {
            Body::Mutable(d) => d.read().vectors.iter().map(|v| v.len() as u64 * 4).sum(),
            Body::Sealed(f) => f.vectors.iter().map(|v| (v.rows * v.dim * 4) as u64).sum(),
        }
    }
}
