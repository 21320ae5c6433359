//! Sealing: a full mutable segment is frozen (a fresh one takes writes) and the maintenance
//! thread turns it into immutable files on disk, then swaps it for the mapped segment.

use super::derived::build_postings;
use super::*;
use quiver_storage::frame::MappedFile;

/// Segments frozen and not yet sealed at which writers wait for the maintenance thread
/// (backpressure): memory stays bounded by about this many seal thresholds.
pub(super) const MAX_FROZEN: usize = 2;

/// A mutable segment never grows past this many rows (row offsets are `u32`).
pub(super) const MAX_MUTABLE_ROWS: usize = u32::MAX as usize;

impl Collection {
    /// Freezes the mutable segment (if it holds anything) under the state write lock: a fresh
    /// one takes new writes, the log rotates so that the frozen segment's operations are
    /// exactly the older log files, and the maintenance thread is woken to seal it.
    pub(super) fn freeze(&self, state: &mut State) -> Result<()> {
        if state.mutable.rows() == 0 {
            return Ok(());
        }
        let frozen_seq = self.wal.last_seq();
        self.wal.rotate()?;
        let schema = self.schema();
        let fresh = Arc::new(Segment::new_mutable(
            state.next_segment_id,
            schema.vectors.len(),
            schema.sparse_vectors.len(),
            schema.multi_dims().len(),
        ));
        state.next_segment_id += 1;
        state.by_id.insert(fresh.id, Arc::clone(&fresh));
        let frozen = std::mem::replace(&mut state.mutable, Arc::clone(&fresh));
        state.frozen.push_back((frozen, frozen_seq));
        self.signal
            .frozen
            .store(state.frozen.len(), Ordering::Release);
        let mut list = (*self.segment_list()).clone();
        list.push(fresh);
        self.set_segment_list(list);
        self.signal.wake();
        Ok(())
    }

    /// Seals every segment frozen so far and the mutable segment (if it holds anything),
    /// publishes a new manifest (the log is then truncated), and compacts per the merge
    /// policy. Waits for maintenance already running.
    pub fn flush(&self) -> Result<()> {
        let mut published = self.seal_all()?;
        match self.compact_by_policy(&mut published) {
            Ok(_) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    /// Seals the frozen segments, oldest first (so the published watermark only rises).
    pub(super) fn seal_frozen(&self, published: &mut Published) -> Result<()> {
        loop {
            self.check_usable()?;
            let Some((frozen, frozen_seq)) = self.state.read().frozen.front().cloned() else {
                return Ok(());
            };
            self.seal_one(published, &frozen, frozen_seq)?;
        }
    }

    fn seal_one(&self, published: &mut Published, frozen: &Arc<Segment>, seq: u64) -> Result<()> {
        let started = std::time::Instant::now();
        if frozen.live_at(u64::MAX) == 0 {
            // Every row was deleted (for good): nothing to write.
            self.finish_frozen(frozen.id, || None);
            return self.publish(published, seq, &[]);
        }
        // Every row, deleted ones too: offsets stay valid. No pushes reach a frozen segment.
        let dims = self.schema().dims();
        let (files, graphs, postings, fields) = frozen.with_view(|v| {
            self.build_segment(frozen.id, v.rows(), |w| {
                (0..v.rows()).try_for_each(|row| copy_row(w, v, &dims, row))
            })
        })?;
        self.finish_frozen(frozen.id, || {
            Some(Segment::sealed(
                frozen.id,
                files,
                frozen.deleted.snapshot(frozen.rows()),
                graphs,
                postings,
                fields,
            ))
        });
        published.deleted.insert(frozen.id, (0, 0));
        self.publish(published, seq, &[])?;
        log::info!(
            target: "quiver::progress",
            "`{}`: sealed segment {} ({} rows) in {:.1}s",
            self.name,
            frozen.id,
            frozen.rows(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Takes the oldest frozen segment (`id`) out of the queue and puts the segment
    /// `replacement` makes in its place (or nothing), then wakes writers waiting for room.
    /// `replacement` runs under the state write lock, so the deletions it copies from the
    /// frozen segment are all there are: no write applies meanwhile.
    fn finish_frozen(&self, id: u64, replacement: impl FnOnce() -> Option<Segment>) {
        {
            let mut state = self.state.write();
            let sealed = replacement().map(Arc::new);
            self.swap_segments(&mut state, &[id], sealed);
            state.frozen.pop_front();
            self.signal
                .frozen
                .store(state.frozen.len(), Ordering::Release);
        }
        self.signal.drained();
    }

    /// Writes a new segment directory `segments/<id>` (rows from `rows_into`), maps it, and
    /// builds its derived data (graphs and LVQ codes, inverted indexes of sparse vectors,
    /// payload field indexes): the one path by which sealing and compaction make segments.
    /// No manifest names it yet.
    pub(super) fn build_segment(
        &self,
        id: u64,
        expected_rows: usize,
        rows_into: impl FnOnce(&mut SegmentWriter) -> Result<()>,
    ) -> Result<BuiltSegment> {
        let schema = self.schema();
        let dims = schema.dims();
        let sparse = schema.sparse_vectors.len();
        let multi = schema.multi_dims();
        let mut w = SegmentWriter::create(&self.dir.join(SEGMENTS_DIR), id, &dims, sparse, &multi)?;
        rows_into(&mut w)?;
        let (dir, _) = w.finish()?;
        let files = segfiles::open_segment(&dir, expected_rows as u64, &dims, sparse, &multi)?;
        let graphs = self.build_graphs(&files)?;
        let postings = (0..sparse)
            .map(|j| build_postings(&files, j))
            .collect::<Result<Vec<_>>>()?;
        let fields = self.write_fields(&files)?;
        Ok((files, graphs, postings, fields))
    }
}

/// A segment as [`Collection::build_segment`] makes it: files, graphs, inverted indexes,
/// field indexes.
pub(super) type BuiltSegment = (
    segfiles::SegmentFiles,
    Vec<Option<GraphIndex>>,
    Vec<MappedFile>,
    quiver_filter::FieldIndexes,
);

/// Appends row `row` of a segment view (all its vectors, sparse vectors, multi-vectors, id
/// and payload) to
/// a segment being written: sealing copies every row, compaction the live ones.
pub(super) fn copy_row(
    w: &mut SegmentWriter,
    v: &View<'_>,
    dims: &[usize],
    row: usize,
) -> Result<()> {
    let Some(&id) = v.ids.get(row) else {
        return Ok(());
    };
    let row = row as u32; // < v.rows(), which is at most 2^32.
    let vectors: Vec<&[f32]> = dims
        .iter()
        .enumerate()
        .map(|(i, &dim)| v.vector(i, dim, row))
        .collect();
    let sparse: Vec<SparseVector> = (0..v.sparse.len()).map(|j| v.sparse_row(j, row)).collect();
    let sparse: Vec<segfiles::SparseRow<'_>> = sparse
        .iter()
        .map(|s| (s.indices.as_slice(), s.values.as_slice()))
        .collect();
    let multi: Vec<&[f32]> = v.multi.iter().map(|m| m.row(row)).collect();
    w.push_row(id, &vectors, &sparse, &multi, v.payload(row))?;
    Ok(())
}
