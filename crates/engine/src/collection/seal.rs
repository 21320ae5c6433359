//! Sealing: the mutable segment becomes immutable files on disk.

use super::*;

impl Collection {
    /// Seals the mutable segment if it is over the threshold.
    pub(super) fn maybe_seal(&self) -> Result<()> {
        let over = self.state.read().mutable.vector_bytes() >= self.config.seal_threshold_bytes;
        if over { self.flush() } else { Ok(()) }
    }

    /// Seals the mutable segment (if it holds anything) into an immutable one on disk and
    /// publishes a new manifest; the log is then truncated. Also compacts segments over the
    /// configured deleted fraction.
    pub fn flush(&self) -> Result<()> {
        self.check_usable()?;
        let mut published = self.maintenance.lock();
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

    pub(super) fn seal(&self, published: &mut Published) -> Result<()> {
        self.check_usable()?;
        // 1. Freeze: new writes go to a fresh mutable segment; the log rotates so that the
        //    frozen segment's operations are exactly the older log files.
        let (frozen, frozen_seq) = {
            let mut state = self.state.write();
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
            let mut list = (**self.segments.read()).clone();
            list.push(fresh);
            *self.segments.write() = Arc::new(list);
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
            let mut state = self.state.write();
            let sealed = Arc::new(Segment::sealed(
                frozen.id,
                files,
                frozen.deleted.snapshot(frozen.rows()),
                graphs,
                fields,
            ));
            state.by_id.insert(frozen.id, Arc::clone(&sealed));
            let list = self
                .segments
                .read()
                .iter()
                .map(|s| {
                    if s.id == frozen.id {
                        Arc::clone(&sealed)
                    } else {
                        Arc::clone(s)
                    }
                })
                .collect();
            *self.segments.write() = Arc::new(list);
        }
        published.deleted.insert(frozen.id, (0, 0));
        self.publish(published, frozen_seq, &[])
    }
}

/// Appends row `row` of a segment view (all its vectors, id and payload) to a segment being
/// written: sealing copies every row, compaction the live ones.
pub(super) fn copy_row(
    w: &mut SegmentWriter,
    v: &View<'_>,
    dims: &[usize],
    row: u32,
) -> Result<()> {
    let vectors: Vec<&[f32]> = dims
        .iter()
        .enumerate()
        .map(|(i, &dim)| v.vector(i, dim, row))
        .collect();
    w.push_row(v.ids[row as usize], &vectors, v.payload(row))?;
    Ok(())
}
