//! Compaction: rewriting sealed segments without their deleted rows, and merging small ones,
//! as the merge policy decides.
//!
//! The policy (after tantivy's log merge policy): sealed segments whose deleted fraction is at
//! least `compact_deleted_fraction` are rewritten; segments are grouped into levels by their
//! live rows (each level `merge_factor` times the one below, from [`MIN_GRAPH_ROWS`]), and
//! once a level holds `merge_factor` segments they are merged into one. No merge produces a
//! segment over `max_segment_bytes` (of vectors), and segments over half of it are only ever
//! rewritten for their deletions.

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

/// A sealed segment as the merge policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentSize {
    pub(super) id: u64,
    pub(super) rows: u64,
    pub(super) deleted: u64,
}

/// What the merge policy is allowed to do.
#[derive(Debug, Clone, Copy)]
pub(super) struct MergePolicy {
    /// Rewrite segments with at least this fraction of deleted rows (and at least one).
    pub(super) deleted_fraction: f64,
    /// Merge this many segments of one size level; 0: no size merges.
    pub(super) merge_factor: usize,
    /// No merged segment holds more live rows than this.
    pub(super) max_rows: u64,
}

impl MergePolicy {
    /// Groups of segments to merge, each into one new segment.
    pub(super) fn plan(&self, segments: &[SegmentSize]) -> Vec<Vec<u64>> {
        let live = |s: &SegmentSize| s.rows.saturating_sub(s.deleted);
        let dirty = |s: &SegmentSize| {
            s.deleted > 0 && s.deleted as f64 >= self.deleted_fraction * s.rows as f64
        };
        let mut groups: Vec<Vec<u64>> = Vec::new();
        let mut taken = std::collections::HashSet::new();
        // Size levels first: merging also drops the deleted rows of the segments merged.
        if self.merge_factor >= 2 {
            let floor = MIN_GRAPH_ROWS as u64;
            let factor = self.merge_factor as u64;
            let level = |s: &SegmentSize| {
                let (mut l, mut size) = (0u32, floor);
                while live(s) >= size.saturating_mul(factor) {
                    size = size.saturating_mul(factor);
                    l += 1;
                }
                l
            };
            let mut by_level: BTreeMap<u32, Vec<SegmentSize>> = BTreeMap::new();
            for s in segments.iter().filter(|s| live(s) <= self.max_rows / 2) {
                by_level.entry(level(s)).or_default().push(*s);
            }
            for mut members in by_level.into_values() {
                members.sort_by_key(|s| (live(s), s.id));
                while members.len() >= self.merge_factor {
                    let mut group = Vec::new();
                    let mut total = 0;
                    for s in members.drain(..self.merge_factor) {
                        if total + live(&s) > self.max_rows {
                            break;
                        }
                        total += live(&s);
                        group.push(s.id);
                    }
                    if group.len() >= 2 {
                        taken.extend(group.iter().copied());
                        groups.push(group);
                    }
                }
            }
        }
        // Then segments with many deletions, smallest first, packed up to the size cap.
        let mut dirty: Vec<&SegmentSize> = segments
            .iter()
            .filter(|s| dirty(s) && !taken.contains(&s.id))
            .collect();
        dirty.sort_by_key(|s| (live(s), s.id));
        let mut group = Vec::new();
        let mut total = 0;
        for s in dirty {
            if !group.is_empty() && total + live(s) > self.max_rows {
                groups.push(std::mem::take(&mut group));
                total = 0;
            }
            total += live(s);
            group.push(s.id);
        }
        if !group.is_empty() {
            groups.push(group);
        }
        groups
    }
}

impl Collection {
    /// Seals the mutable segment, then rewrites sealed segments that have at least
    /// `min_deleted_fraction` deleted rows (0.0: any) without them, so that their disk space
    /// is freed. Segments are packed together up to `max_segment_bytes`.
    pub fn compact(&self, min_deleted_fraction: f64) -> Result<CompactionReport> {
        self.check_usable()?;
        if !(0.0..=1.0).contains(&min_deleted_fraction) {
            return Err(self.invalid(format!(
                "the deleted fraction to compact at must be between 0 and 1, not {min_deleted_fraction}"
            )));
        }
        let before = qfs::disk_usage(&self.dir)?;
        let mut published = self.seal_all()?;
        let policy = MergePolicy {
            deleted_fraction: min_deleted_fraction,
            merge_factor: 0,
            max_rows: self.max_segment_rows(),
        };
        let mut report = match self.compact_with(&mut published, &policy) {
            Ok(r) => r,
            Err(e) => return self.fail(e),
        };
        report.disk_bytes_before = before;
        report.disk_bytes_after = qfs::disk_usage(&self.dir)?;
        Ok(report)
    }

    /// Live rows a segment may hold: `max_segment_bytes` of vectors.
    pub(super) fn max_segment_rows(&self) -> u64 {
        let settings = self.settings();
        let row_bytes = (settings.schema.dims().iter().sum::<usize>() as u64 * 4).max(1);
        (settings.config.max_segment_bytes / row_bytes).clamp(1, u64::from(u32::MAX))
    }

    /// The merges the collection's settings call for (after a seal, in the background).
    pub(super) fn compact_by_policy(&self, published: &mut Published) -> Result<CompactionReport> {
        let config = self.config();
        let policy = MergePolicy {
            deleted_fraction: config.compact_deleted_fraction,
            merge_factor: config.merge_factor,
            max_rows: self.max_segment_rows(),
        };
        self.compact_with(published, &policy)
    }

    fn compact_with(
        &self,
        published: &mut Published,
        policy: &MergePolicy,
    ) -> Result<CompactionReport> {
        self.check_usable()?;
        let sealed = self.sealed_segments();
        let sizes: Vec<SegmentSize> = sealed
            .iter()
            .map(|s| SegmentSize {
                id: s.id,
                rows: s.rows() as u64,
                deleted: s.deleted.count() as u64,
            })
            .collect();
        let mut report = CompactionReport::default();
        for group in policy.plan(&sizes) {
            let chosen: Vec<Arc<Segment>> = sealed
                .iter()
                .filter(|s| group.contains(&s.id))
                .cloned()
                .collect();
            let (merged, dropped) = self.merge_segments(published, &chosen)?;
            report.segments_merged += merged;
            report.rows_dropped += dropped;
        }
        Ok(report)
    }

    /// Rewrites `chosen` (sealed segments) into one segment of their live rows, swaps it in
    /// and publishes. Returns (segments merged, rows dropped).
    fn merge_segments(
        &self,
        published: &mut Published,
        chosen: &[Arc<Segment>],
    ) -> Result<(usize, u64)> {
        if chosen.is_empty() {
            return Ok((0, 0));
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
        let is_set = |words: &[u64], row: usize| {
            words
                .get(row / 64)
                .is_some_and(|w| w & (1 << (row % 64)) != 0)
        };
        // 2. Write live rows into the new segment, remembering where each came from.
        let dims = self.schema().dims();
        let mut origin: Vec<(usize, u32)> = Vec::new();
        let mut dropped_rows = 0u64;
        let live_rows: usize = chosen
            .iter()
            .zip(&snapshots)
            .map(|(s, snap)| (0..s.rows()).filter(|&r| !is_set(snap, r)).count())
            .sum();
        if live_rows == 0 {
            // Nothing to keep (deletions are final): the segments just go.
            let removed: Vec<u64> = chosen.iter().map(|s| s.id).collect();
            self.swap_segments(&mut self.state.write(), &removed, None);
            let dropped = chosen.iter().map(|s| s.rows() as u64).sum();
            let watermark = published.watermark;
            self.publish(published, watermark, &removed)?;
            return Ok((chosen.len(), dropped));
        }
        if u32::try_from(live_rows).is_err() {
            return Err(self.invalid(format!(
                "merging {} segments would make one of {live_rows} rows, over 2^32",
                chosen.len()
            )));
        }
        let (files, graphs, postings, fields) =
            self.build_segment(new_id, live_rows, |writer| {
                for (si, (seg, snap)) in chosen.iter().zip(&snapshots).enumerate() {
                    seg.with_view(|v| -> Result<()> {
                        for row in 0..v.rows() {
                            if is_set(snap, row) {
                                dropped_rows += 1;
                                continue;
                            }
                            copy_row(writer, v, &dims, row)?;
                            origin.push((si, row as u32));
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
        // 3. Swap: carry over deletions made meanwhile and repoint the id map.
        {
            let mut state = self.state.write();
            let merged = Arc::new(Segment::sealed(
                new_id,
                files,
                vec![0; origin.len().div_ceil(64)],
                graphs,
                postings,
                fields,
            ));
            let current: Vec<Vec<u64>> = chosen
                .iter()
                .map(|s| s.deleted.snapshot(s.rows()))
                .collect();
            merged.with_view(|v| {
                for (new_row, &(si, old_row)) in (0u32..).zip(&origin) {
                    let Some(&id) = v.ids.get(new_row as usize) else {
                        continue;
                    };
                    let was = Loc {
                        segment: chosen[si].id,
                        offset: old_row,
                    };
                    let deleted_since = is_set(&current[si], old_row as usize);
                    if deleted_since || state.ids.get(&id) != Some(&was) {
                        // Applied before any snapshot that sees the merged segment.
                        merged.deleted.set(new_row, 0, u64::MAX);
                    } else {
                        state.ids.insert(
                            id,
                            Loc {
                                segment: new_id,
                                offset: new_row,
                            },
                        );
                    }
                }
            });
            let removed: Vec<u64> = chosen.iter().map(|s| s.id).collect();
            self.swap_segments(&mut state, &removed, Some(merged));
        }
        published.deleted.insert(new_id, (0, 0));
        let removed: Vec<u64> = chosen.iter().map(|s| s.id).collect();
        let watermark = published.watermark;
        self.publish(published, watermark, &removed)?;
        Ok((chosen.len(), dropped_rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(id: u64, rows: u64, deleted: u64) -> SegmentSize {
        SegmentSize { id, rows, deleted }
    }

    #[test]
    fn dirty_segments_are_rewritten_and_packed_up_to_the_cap() {
        let policy = MergePolicy {
            deleted_fraction: 0.3,
            merge_factor: 0,
            max_rows: 1000,
        };
        let segs = [
            seg(1, 1000, 100),
            seg(2, 600, 300),
            seg(3, 900, 600),
            seg(4, 500, 400),
        ];
        // Live: 900 (clean enough), 300, 300, 100 -> smallest first: 4, 2, 3 fit in 700.
        assert_eq!(policy.plan(&segs), vec![vec![4, 2, 3]]);
        let tight = MergePolicy {
            max_rows: 350,
            ..policy
        };
        assert_eq!(tight.plan(&segs), vec![vec![4], vec![2], vec![3]]);
    }

    #[test]
    fn a_full_level_is_merged_and_big_segments_are_left_alone() {
        let policy = MergePolicy {
            deleted_fraction: 1.0,
            merge_factor: 3,
            max_rows: 1_000_000,
        };
        let small = MIN_GRAPH_ROWS as u64;
        let segs = [
            seg(1, small, 0),
            seg(2, small + 10, 0),
            seg(3, small * 3 + 1, 0), // next level
            seg(4, small + 5, 0),
            seg(5, 600_000, 0), // over half the cap
            seg(6, 600_001, 0),
            seg(7, 600_002, 0),
        ];
        assert_eq!(policy.plan(&segs), vec![vec![1, 4, 2]]);
        let two = [seg(1, small, 0), seg(2, small, 0)];
        assert!(
            policy.plan(&two).is_empty(),
            "a level below the factor waits"
        );
    }
}
