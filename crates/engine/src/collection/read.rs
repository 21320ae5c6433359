//! Reads by id, by filter, and in id order.

use super::*;

impl Collection {
    /// Number of live points.
    pub fn count(&self) -> u64 {
        let snap = self.snapshot();
        snap.segments
            .iter()
            .map(|s| s.live_at(snap.seq) as u64)
            .sum()
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
        let snap = self.snapshot();
        for seg in snap.segments.iter() {
            n += seg.view_at(snap.seq, |v| {
                RowFilter::new(filter, seg, v).passing().count() as u64
            });
        }
        Ok(n)
    }

    /// Ids of the live points whose payload passes `filter`, per segment order.
    pub(super) fn matching_ids(&self, filter: &Filter) -> Vec<PointId> {
        let mut ids = Vec::new();
        let snap = self.snapshot();
        for seg in snap.segments.iter() {
            seg.view_at(snap.seq, |v| {
                let rf = RowFilter::new(filter, seg, v);
                ids.extend(rf.passing().map(|r| v.ids[r as usize]));
            });
        }
        ids
    }

    pub(super) fn record(&self, view: &View<'_>, row: u32, with: With) -> Result<Record> {
        let id = view
            .ids
            .get(row as usize)
            .copied()
            .ok_or_else(|| Error::Corrupt {
                path: self.dir.clone(),
                message: format!("row {row} is past the segment's {} rows", view.rows()),
            })?;
        let payload = match with.payload {
            true => Some(
                parse_payload(view.payload(row)).map_err(|e| Error::Corrupt {
                    path: self.dir.clone(),
                    message: format!("point {id}: {e}"),
                })?,
            ),
            false => None,
        };
        Ok(Record {
            id,
            payload,
            vectors: with.vectors.then(|| self.vectors_of(view, row)),
            sparse: with.vectors.then(|| self.sparse_of(view, row)),
            multi: with.vectors.then(|| self.multi_of(view, row)),
        })
    }

    /// The point's dense vectors (multi-vectors' encodings are internal: their tokens are in
    /// [`Collection::multi_of`]).
    pub(super) fn vectors_of(&self, view: &View<'_>, row: u32) -> BTreeMap<String, Vec<f32>> {
        self.schema()
            .vectors
            .iter()
            .enumerate()
            .filter(|(_, (_, kind))| kind.multi_config().is_none())
            .map(|(i, (name, kind))| (name.clone(), view.vector(i, kind.dim(), row).to_vec()))
            .collect()
    }

    /// The point's non-empty sparse vectors.
    pub(super) fn sparse_of(&self, view: &View<'_>, row: u32) -> BTreeMap<String, SparseVector> {
        self.schema()
            .sparse_vectors
            .keys()
            .enumerate()
            .map(|(j, name)| (name.clone(), view.sparse_row(j, row)))
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }

    /// Points by id, in the order asked; missing ids are skipped.
    pub fn retrieve(&self, ids: &[PointId], with: With) -> Result<Vec<Record>> {
        self.check_usable()?;
        let state = self.state.read();
        ids.iter()
            .filter_map(|id| {
                let loc = state.ids.get(id)?;
                let seg = state.by_id.get(&loc.segment)?;
                Some(seg.with_view(|v| self.record(v, loc.offset, with)))
            })
            .collect()
    }

    /// Up to `limit` points in id order, starting at `from` (inclusive).
    pub fn scroll(&self, from: Option<PointId>, limit: usize, with: With) -> Result<ScrollPage> {
        self.scroll_filtered(from, limit, with, None)
    }

    /// [`Collection::scroll`] over the points whose payload passes `filter`.
    ///
    /// The filter is evaluated per segment on a snapshot, without the state lock; the id map
    /// is then walked in id order holding the state lock for at most [`SCROLL_IDS_PER_LOCK`]
    /// ids at a time, so writers never wait for a whole page.
    pub fn scroll_filtered(
        &self,
        from: Option<PointId>,
        limit: usize,
        with: With,
        filter: Option<&Filter>,
    ) -> Result<ScrollPage> {
        use std::ops::Bound;
        self.check_usable()?;
        let passing: HashMap<u64, quiver_filter::RoaringBitmap> = match filter {
            Some(f) => {
                let snap = self.snapshot();
                snap.segments
                    .iter()
                    .map(|seg| {
                        let rows = seg
                            .view_at(snap.seq, |v| RowFilter::new(f, seg, v).passing().collect());
                        (seg.id, rows)
                    })
                    .collect()
            }
            None => HashMap::new(),
        };
        let mut points = Vec::with_capacity(limit.min(1024));
        let mut start = match from {
            Some(id) => Bound::Included(id),
            None => Bound::Unbounded,
        };
        loop {
            let state = self.state.read();
            let mut walked = 0;
            let mut last = None;
            for (id, loc) in state.ids.range((start, Bound::Unbounded)) {
                if walked == SCROLL_IDS_PER_LOCK {
                    break;
                }
                walked += 1;
                last = Some(*id);
                let Some(seg) = state.by_id.get(&loc.segment) else {
                    continue;
                };
                let passes = match filter {
                    None => true,
                    Some(f) => match passing.get(&loc.segment) {
                        Some(rows) => rows.contains(loc.offset),
                        // Written after the snapshot: check the point itself.
                        None => seg.with_view(|v| {
                            f.matches(*id, &payload_or_empty(*id, v.payload(loc.offset)))
                        }),
                    },
                };
                if !passes {
                    continue;
                }
                if points.len() == limit {
                    return Ok(ScrollPage {
                        points,
                        next: Some(*id),
                    });
                }
                points.push(seg.with_view(|v| self.record(v, loc.offset, with))?);
            }
            match last {
                Some(id) if walked == SCROLL_IDS_PER_LOCK => start = Bound::Excluded(id),
                _ => return Ok(ScrollPage { points, next: None }),
            }
        }
    }
}

/// Ids a scroll walks per hold of the state lock.
const SCROLL_IDS_PER_LOCK: usize = 4096;
