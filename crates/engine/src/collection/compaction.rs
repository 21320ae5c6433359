//! Compaction: rewriting segments with deleted rows.

use super::seal::copy_row;
use super::*;

/// Result of a compaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    pub segments_merged: usize,
    pub rows_dropped: u64,
    pub disk_bytes_before: u64,
    pub disk_bytes_after: u64,
}

impl Collection {
    /// Rewrites sealed segments that have deleted rows into one segment holding only live
    /// rows, so that their disk space is freed. `min_deleted_fraction` = 0.0 compacts every
    /// segment with any deletion. The mutable segment is sealed first.
    pub fn compact(&self, min_deleted_fraction: f64) -> Result<CompactionReport> {
        self.check_usable()?;
        let before = qfs::disk_usage(&self.dir)?;
        let mut published = self.maintenance.lock();
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

    pub(super) fn compact_locked(
        &self,
        published: &mut Published,
        min_fraction: f64,
    ) -> Result<CompactionReport> {
        self.check_usable()?;
        let chosen: Vec<Arc<Segment>> = self
            .segments
            .read()
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
            let mut state = self.state.write();
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
            let mut state = self.state.write();
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
            let mut list: Vec<Arc<Segment>> = self
                .segments
                .read()
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
            *self.segments.write() = Arc::new(list);
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
}
