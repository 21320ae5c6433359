//! Segments as the engine holds them: the one mutable segment taking inserts, and sealed,
//! immutable ones mapped from disk. Both expose the same read [`View`].

use crate::bm25::RowLengths;
use crate::ops::PreparedPoint;
use crate::point::SparseVector;
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use quiver_filter::FieldIndexes;
use quiver_index::hnsw::HnswGraph;
use quiver_index::leanvec::Projection;
use quiver_index::lvq::Lvq8;
use quiver_index::lvq4::Lvq4;
use quiver_index::sparse::postings::Postings;
use quiver_storage::PointId;
use quiver_storage::frame::MappedFile;
use quiver_storage::multi::MultiFile;
use quiver_storage::segment::{SegmentFiles, SparseFile};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Deleted rows of a segment, readable at a snapshot.
///
/// A bit per row; setting one needs only a shared lock (atomic `fetch_or`), only growth
/// (inserts into the mutable segment) takes the exclusive lock. A deletion newer than some
/// reader's snapshot also records its sequence number in `recent`, so that reader still sees
/// the row as live: the entry, then `newest`, then the bit are written, so a reader that sees
/// the bit sees both (see [`DeletedGuard::is_deleted`]). Entries no reader can need (at or
/// below every live snapshot) are pruned as new ones arrive.
#[derive(Debug, Default)]
pub(crate) struct DeletedBitmap {
    words: RwLock<Vec<AtomicU64>>,
    count: AtomicUsize,
    /// Highest sequence number in `recent` (0: none).
    newest: AtomicU64,
    /// Row -> sequence number of the operation that deleted it.
    recent: Mutex<HashMap<u32, u64>>,
}

/// `recent` is pruned when it grows past this many entries.
const PRUNE_RECENT_AT: usize = 1024;

impl DeletedBitmap {
    pub fn from_words(words: Vec<u64>) -> DeletedBitmap {
        let count = words.iter().map(|w| w.count_ones() as usize).sum();
        DeletedBitmap {
            words: RwLock::new(words.into_iter().map(AtomicU64::new).collect()),
            count: AtomicUsize::new(count),
            ..DeletedBitmap::default()
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

    /// Marks a row deleted by the operation `seq`; returns whether it was live. `horizon`: no
    /// reader's snapshot is below it (entries at or below it may be pruned).
    pub fn set(&self, row: u32, seq: u64, horizon: u64) -> bool {
        let words = self.words.read();
        let Some(word) = words.get(row as usize / 64) else {
            return false;
        };
        let bit = 1u64 << (row % 64);
        if word.load(Ordering::Acquire) & bit != 0 {
            return false;
        }
        if seq > horizon {
            let mut recent = self.recent.lock();
            if recent.len() >= PRUNE_RECENT_AT {
                recent.retain(|_, s| *s > horizon);
            }
            recent.insert(row, seq);
            self.newest.fetch_max(seq, Ordering::AcqRel);
        }
        let was_live = word.fetch_or(bit, Ordering::AcqRel) & bit == 0;
        if was_live {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
        was_live
    }

    /// Rows deleted now (whatever the snapshot).
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Rows deleted as seen at snapshot `seq`.
    pub fn count_at(&self, seq: u64) -> usize {
        let count = self.count();
        if self.newest.load(Ordering::Acquire) <= seq {
            return count;
        }
        let newer = self.recent.lock().values().filter(|&&s| s > seq).count();
        count.saturating_sub(newer)
    }

    /// The bits as they are now, one word per 64 rows, sized for `rows`.
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

    /// A read guard for a scan at snapshot `seq` (`u64::MAX`: the latest state).
    pub fn guard(&self, seq: u64) -> DeletedGuard<'_> {
        DeletedGuard {
            words: self.words.read(),
            bitmap: self,
            seq,
        }
    }
}

/// A read guard over the deleted bits at one snapshot, held for the duration of a scan.
pub(crate) struct DeletedGuard<'a> {
    words: RwLockReadGuard<'a, Vec<AtomicU64>>,
    bitmap: &'a DeletedBitmap,
    seq: u64,
}

impl DeletedGuard<'_> {
    /// Whether `row` is deleted at this guard's snapshot.
    #[inline]
    pub fn is_deleted(&self, row: u32) -> bool {
        let set = self
            .words
            .get(row as usize / 64)
            .is_some_and(|w| w.load(Ordering::Acquire) & (1 << (row % 64)) != 0);
        set && (self.bitmap.newest.load(Ordering::Acquire) <= self.seq || self.deleted_before(row))
    }

    /// Clears the bits of `rows` (one bit per row, as in [`DeletedBitmap::snapshot`]) whose
    /// rows are deleted at this guard's snapshot: word by word while no deletion is newer
    /// than the snapshot, row by row otherwise.
    pub fn remove_deleted(&self, rows: &mut [u64]) {
        let settled = self.bitmap.newest.load(Ordering::Acquire) <= self.seq;
        for (i, (out, d)) in rows.iter_mut().zip(self.words.iter()).enumerate() {
            let d = d.load(Ordering::Acquire) & *out;
            if d == 0 {
                continue;
            }
            if settled {
                *out &= !d;
            } else {
                let mut bits = d;
                while bits != 0 {
                    let b = bits.trailing_zeros();
                    bits &= bits - 1;
                    if self.deleted_before((i * 64) as u32 + b) {
                        *out &= !(1 << b);
                    }
                }
            }
        }
    }

    /// The slow path: a deletion at least as new as some reader's snapshot.
    #[cold]
    fn deleted_before(&self, row: u32) -> bool {
        // No entry: deleted at or below the horizon, which is at most this snapshot.
        self.bitmap
            .recent
            .lock()
            .get(&row)
            .is_none_or(|&s| s <= self.seq)
    }
}

/// The in-memory segment taking inserts, until it is frozen for sealing.
#[derive(Debug, Default)]
pub(crate) struct MutableData {
    pub ids: Vec<PointId>,
    /// Per row, the sequence number of the operation that wrote it (ascending): a reader at
    /// snapshot `s` sees the rows written at or below `s`, a prefix.
    pub seqs: Vec<u64>,
    /// One row-major buffer per schema vector.
    pub vectors: Vec<Vec<f32>>,
    pub payloads: Vec<Vec<u8>>,
    /// One per schema sparse vector.
    pub sparse: Vec<SparseColumn>,
    /// One per schema multi-vector.
    pub multi: Vec<MultiColumn>,
    /// Bytes held: ids, vectors, sparse vectors, multi-vectors and payloads (what the seal
    /// threshold measures).
    pub bytes: u64,
}

/// One sparse vector's rows in the mutable segment, and the postings searches use.
#[derive(Debug)]
pub(crate) struct SparseColumn {
    /// Row r's entries are `offsets[r]..offsets[r + 1]` of `indices` and `values`.
    offsets: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
    pub postings: Postings,
    /// Every row's length (the sum of its values) and their totals, for BM25.
    pub lengths: RowLengths,
}

impl Default for SparseColumn {
    fn default() -> Self {
        SparseColumn {
            offsets: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
            postings: Postings::new(),
            lengths: RowLengths::default(),
        }
    }
}

impl SparseColumn {
    fn row(&self, r: usize) -> Option<SparseVector> {
        let (start, end) = (*self.offsets.get(r)?, *self.offsets.get(r + 1)?);
        Some(SparseVector {
            indices: self.indices.get(start..end)?.to_vec(),
            values: self.values.get(start..end)?.to_vec(),
        })
    }
}

/// One multi-vector's rows in the mutable segment: every row's tokens back to back.
#[derive(Debug)]
pub(crate) struct MultiColumn {
    /// Row r's tokens are `values[offsets[r]..offsets[r + 1]]`.
    offsets: Vec<usize>,
    values: Vec<f32>,
}

impl Default for MultiColumn {
    fn default() -> Self {
        MultiColumn {
            offsets: vec![0],
            values: Vec::new(),
        }
    }
}

/// A multi-vector's token lists as a [`View`] reads them.
pub(crate) enum MultiRows<'a> {
    Mutable(&'a MultiColumn),
    /// Verified when the segment was opened or built.
    Sealed(&'a MultiFile),
}

impl<'a> MultiRows<'a> {
    /// Row `r`'s tokens, row-major (empty past the rows).
    pub fn row(&self, r: u32) -> &'a [f32] {
        let r = r as usize;
        let found = match self {
            MultiRows::Mutable(c) => c
                .offsets
                .get(r)
                .zip(c.offsets.get(r + 1))
                .and_then(|(&a, &b)| c.values.get(a..b)),
            MultiRows::Sealed(f) => f.row(r),
        };
        found.unwrap_or_default()
    }
}

/// A sparse vector's rows and postings as a [`View`] reads them.
pub(crate) enum SparseRows<'a> {
    Mutable(&'a SparseColumn),
    /// The rows and the mapped inverted index (`quiver_index::sparse::format`, verified
    /// when the segment was opened or built).
    Sealed {
        rows: &'a SparseFile,
        postings: &'a MappedFile,
    },
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
    pub deleted: DeletedBitmap,
    /// Per schema vector, the graph index if this segment has one (sealed segments only).
    pub graphs: Vec<Option<GraphIndex>>,
    /// Per schema sparse vector, its inverted index (sealed segments only; the mutable
    /// segment keeps its postings with its rows).
    pub postings: Vec<MappedFile>,
    /// Per schema sparse vector, its rows' lengths, read from the rows at the first BM25
    /// search (sealed segments only; the mutable segment keeps them with its rows).
    pub lengths: Vec<OnceLock<RowLengths>>,
    /// Payload field indexes (sealed segments only; the mutable one checks every row).
    /// Replaced as a whole when an index is declared or dropped.
    fields: RwLock<Arc<FieldIndexes>>,
}

/// A graph and the codes its search traverses on (`None`: the `f32` rows).
#[derive(Debug)]
pub(crate) struct GraphIndex {
    pub graph: HnswGraph,
    pub codes: Option<Codes>,
}

/// The codes of a graph index, by [`crate::Quantization`].
#[derive(Debug)]
pub(crate) enum Codes {
    /// LVQ-8: the best candidates are re-scored with the `f32` rows.
    Lvq8(Lvq8),
    /// LVQ-4 (re-scored with the `f32` rows) or LVQ-4x8 (re-scored on its residual codes).
    Lvq4(Lvq4),
    /// LeanVec: codes of the projected rows, re-scored at full dimension.
    LeanVec(Box<LeanVecCodes>),
}

/// A LeanVec graph's codes: the projection, the codes of the projected rows the graph is
/// traversed on, and the full-dimension LVQ-8 codes its beam is re-scored on (`None`: the
/// `f32` rows).
#[derive(Debug)]
pub(crate) struct LeanVecCodes {
    pub projection: Projection,
    pub primary: ReducedCodes,
    pub secondary: Option<Lvq8>,
}

/// Codes of LeanVec's projected rows.
#[derive(Debug)]
pub(crate) enum ReducedCodes {
    Lvq8(Lvq8),
    /// Without residual codes.
    Lvq4(Lvq4),
}

/// A consistent read-only view of a segment's rows.
pub(crate) struct View<'a> {
    pub ids: &'a [PointId],
    pub vectors: Vec<&'a [f32]>,
    pub sparse: Vec<SparseRows<'a>>,
    /// Per schema multi-vector, its token lists.
    pub multi: Vec<MultiRows<'a>>,
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

    /// Row `row` of sparse vector `position` (empty if out of range).
    pub fn sparse_row(&self, position: usize, row: u32) -> SparseVector {
        let row = row as usize;
        let found = match self.sparse.get(position) {
            Some(SparseRows::Mutable(c)) => c.row(row),
            Some(SparseRows::Sealed { rows, .. }) => rows
                .row(row)
                .map(|(indices, values)| SparseVector { indices, values }),
            None => None,
        };
        found.unwrap_or_default()
    }
}

impl Segment {
    pub fn new_mutable(id: u64, vectors: usize, sparse: usize, multi: usize) -> Segment {
        Segment {
            id,
            body: Body::Mutable(RwLock::new(MutableData {
                vectors: vec![Vec::new(); vectors],
                sparse: (0..sparse).map(|_| SparseColumn::default()).collect(),
                multi: (0..multi).map(|_| MultiColumn::default()).collect(),
                ..MutableData::default()
            })),
            deleted: DeletedBitmap::default(),
            graphs: (0..vectors).map(|_| None).collect(),
            postings: Vec::new(),
            lengths: Vec::new(),
            fields: RwLock::default(),
        }
    }

    /// A sealed segment: its files, deleted bits, and derived indexes (a graph per dense
    /// vector if any, an inverted index per sparse vector, the payload field indexes).
    pub fn sealed(
        id: u64,
        files: SegmentFiles,
        deleted: Vec<u64>,
        graphs: Vec<Option<GraphIndex>>,
        postings: Vec<MappedFile>,
        fields: FieldIndexes,
    ) -> Segment {
        let lengths = files.sparse.iter().map(|_| OnceLock::new()).collect();
        Segment {
            id,
            body: Body::Sealed(files),
            deleted: DeletedBitmap::from_words(deleted),
            graphs,
            postings,
            lengths,
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

    /// Runs `f` over the latest view (holding the mutable segment's read lock if any): for
    /// writers and maintenance, which see every row.
    pub fn with_view<R>(&self, f: impl FnOnce(&View<'_>) -> R) -> R {
        self.view_at(u64::MAX, f)
    }

    /// Runs `f` over the segment as it was at snapshot `seq`: rows written later are not in
    /// the view, rows deleted later are live in it. Takes the mutable segment's read lock for
    /// the duration of `f`: `f` must not start parallel work that could wait on it (see the
    /// lock rules in `collection/mod.rs`).
    pub fn view_at<R>(&self, seq: u64, f: impl FnOnce(&View<'_>) -> R) -> R {
        match &self.body {
            Body::Mutable(d) => {
                let d = d.read();
                let rows = d.seqs.partition_point(|&s| s <= seq);
                let view = View {
                    ids: d.ids.get(..rows).unwrap_or(&d.ids),
                    vectors: d
                        .vectors
                        .iter()
                        .map(|v| v.get(..rows * (v.len() / d.ids.len().max(1))).unwrap_or(v))
                        .collect(),
                    sparse: d.sparse.iter().map(SparseRows::Mutable).collect(),
                    multi: d.multi.iter().map(MultiRows::Mutable).collect(),
                    payloads: Payloads::Mutable(&d.payloads),
                    deleted: self.deleted.guard(seq),
                };
                f(&view)
            }
            Body::Sealed(files) => {
                let view = View {
                    ids: &files.ids,
                    vectors: files.vectors.iter().map(|v| v.as_f32()).collect(),
                    sparse: files
                        .sparse
                        .iter()
                        .zip(&self.postings)
                        .map(|(rows, postings)| SparseRows::Sealed { rows, postings })
                        .collect(),
                    multi: files.multi.iter().map(MultiRows::Sealed).collect(),
                    payloads: Payloads::Sealed(files),
                    deleted: self.deleted.guard(seq),
                };
                f(&view)
            }
        }
    }

    /// Live rows at snapshot `seq`.
    pub fn live_at(&self, seq: u64) -> usize {
        let rows = match &self.body {
            Body::Mutable(d) => d.read().seqs.partition_point(|&s| s <= seq),
            Body::Sealed(f) => f.rows,
        };
        rows.saturating_sub(self.deleted.count_at(seq))
    }

    /// Appends a point written by operation `seq` to the mutable segment; returns its offset,
    /// or `None` if the segment is full (2^32 rows). Vectors arrive in schema order
    /// (validated by the caller).
    pub fn push(&self, p: &PreparedPoint, seq: u64) -> Option<u32> {
        let Body::Mutable(d) = &self.body else {
            unreachable!("inserts only go to the mutable segment");
        };
        let mut d = d.write();
        let offset = u32::try_from(d.ids.len()).ok()?;
        d.ids.push(p.id);
        d.seqs.push(seq);
        let mut bytes = ROW_OVERHEAD + p.payload.len() as u64;
        for (buf, (_, v)) in d.vectors.iter_mut().zip(&p.vectors) {
            buf.extend_from_slice(v);
            bytes += 4 * v.len() as u64;
        }
        for (column, (_, v)) in d.sparse.iter_mut().zip(&p.sparse) {
            column.indices.extend_from_slice(&v.indices);
            column.values.extend_from_slice(&v.values);
            column.offsets.push(column.indices.len());
            column.postings.push(offset, &v.indices, &v.values);
            column.lengths.push(&v.values);
            // The entry and its posting, 8 bytes each, the row's offset and its length.
            bytes += 16 * v.indices.len() as u64 + 12;
        }
        for (column, (_, v)) in d.multi.iter_mut().zip(&p.multi) {
            column.values.extend_from_slice(v);
            column.offsets.push(column.values.len());
            bytes += 4 * v.len() as u64 + 8;
        }
        d.payloads.push(p.payload.clone());
        d.bytes += bytes;
        drop(d);
        self.deleted.ensure_rows(offset as usize + 1);
        Some(offset)
    }

    /// Bytes held in memory by the mutable segment (ids, vectors, sparse vectors and their
    /// postings, payloads): what the seal threshold measures. For a sealed segment, the bytes
    /// of its dense vectors.
    pub fn bytes(&self) -> u64 {
        match &self.body {
            Body::Mutable(d) => d.read().bytes,
            Body::Sealed(f) => f.vectors.iter().map(|v| (v.rows * v.dim * 4) as u64).sum(),
        }
    }
}

/// Bytes a mutable row costs besides its vectors and payload: the id (17 bytes encoded, 24 in
/// memory), its sequence number and the payload's vector header.
const ROW_OVERHEAD: u64 = 24 + 8 + 24;
