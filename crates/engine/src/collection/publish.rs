//! Publishing: deleted bitmaps and the manifest, then truncating the log.

use super::open::manifest_for;
use super::*;

impl Collection {
    /// Writes changed deleted bitmaps and a new manifest with `watermark`, then truncates the
    /// log and removes what the new manifest no longer names (`removed` segments).
    pub(super) fn publish(
        &self,
        published: &mut Published,
        watermark: u64,
        removed: &[u64],
    ) -> Result<()> {
        // Snapshot under the state lock: no write is being applied, so the bitmaps reflect
        // exactly the operations up to `last_seq`.
        let (sealed, bitmaps, last_seq, next_segment_id, watermark) = {
            let state = self.state.read();
            let sealed = self.sealed_segments();
            let bitmaps: Vec<Option<Vec<u64>>> = sealed
                .iter()
                .map(|s| {
                    let (_, count) = published.deleted.get(&s.id).copied().unwrap_or((0, 0));
                    (s.deleted.count() != count).then(|| s.deleted.snapshot(s.rows()))
                })
                .collect();
            let last_seq = self.wal.last_seq();
            // With the mutable segment empty and nothing frozen, every logged operation is
            // reflected in the sealed segments and these bitmaps: the watermark can move up to
            // the last one and the log be truncated entirely (after deletes followed by a
            // compaction, say).
            let watermark =
                if state.mutable.rows() == 0 && state.frozen.is_empty() && last_seq > watermark {
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
        let settings = self.settings();
        manifest_for(
            &settings.schema,
            &settings.config,
            &self.payload_indexes.read(),
            entries,
            next_segment_id,
            watermark,
        )?
        .write(&self.dir, settings.schema.manifest_version())?;
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
}
