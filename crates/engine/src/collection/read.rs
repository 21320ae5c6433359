//! Reads by id, by filter, and in id order.

use super::*;

impl Collection {
    /// Number of live points.
    pub fn count(&self) -> u64 {
        self.snapshot().iter().map(|s| s.live() as u64).sum()
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
        for seg in self.snapshot().iter() {
            n += seg.with_view(|v| RowFilter::new(filter, seg, v).passing().count() as u64);
        }
        Ok(n)
    }

    /// Ids of the live points whose payload passes `filter`, per segment order.
    pub(super) fn matching_ids(&self, filter: &Filter) -> Vec<PointId> {
        let mut ids = Vec::new();
        for seg in self.snapshot().iter() {
            seg.with_view(|v| {
                let rf = RowFilter::new(filter, seg, v);
                ids.extend(rf.passing().map(|r| v.ids[r as usize]));
            });
        }
        ids
    }

    pub(super) fn record(&self, view: &View<'_>, row: u32, with: With) -> Record {
        Record {
            id: view.ids[row as usize],
            payload: with.payload.then(|| parse_payload(view.payload(row))),
            vectors: with.vectors.then(|| self.vectors_of(view, row)),
        }
    }

    pub(super) fn vectors_of(&self, view: &View<'_>, row: u32) -> BTreeMap<String, Vec<f32>> {
        self.schema
            .vectors
            .iter()
            .enumerate()
            .map(|(i, (name, kind))| (name.clone(), view.vector(i, kind.dim(), row).to_vec()))
            .collect()
    }

    /// Points by id, in the order asked; missing ids are skipped.
    pub fn retrieve(&self, ids: &[PointId], with: With) -> Result<Vec<Record>> {
        self.check_usable()?;
        let state = self.state.read();
        Ok(ids
            .iter()
            .filter_map(|id| {
                let loc = state.ids.get(id)?;
                let seg = state.by_id.get(&loc.segment)?;
                Some(seg.with_view(|v| self.record(v, loc.offset, with)))
            })
            .collect())
    }

    /// Up to `limit` points in id order, starting at `from` (inclusive).
    pub fn scroll(&self, from: Option<PointId>, limit: usize, with: With) -> Result<ScrollPage> {
        self.scroll_filtered(from, limit, with, None)
    }

    /// [`Collection::scroll`] over the points whose payload passes `filter`.
    pub fn scroll_filtered(
        &self,
        from: Option<PointId>,
        limit: usize,
        with: With,
        filter: Option<&Filter>,
    ) -> Result<ScrollPage> {
        self.check_usable()?;
        let state = self.state.read();
        // Per segment, the rows that pass (evaluated once per page).
        let passing: HashMap<u64, quiver_filter::RoaringBitmap> = match filter {
            Some(f) => state
                .by_id
                .iter()
                .map(|(id, seg)| {
                    let rows = seg.with_view(|v| RowFilter::new(f, seg, v).passing().collect());
                    (*id, rows)
                })
                .collect(),
            None => HashMap::new(),
        };
        let passes = |loc: &Loc| {
            filter.is_none()
                || passing
                    .get(&loc.segment)
                    .is_some_and(|b| b.contains(loc.offset))
        };
        let range = match from {
            Some(f) => state.ids.range(f..),
            None => state.ids.range(..),
        };
        let mut points = Vec::with_capacity(limit.min(1024));
        let mut next = None;
        for (id, loc) in range.filter(|(_, loc)| passes(loc)) {
            if points.len() == limit {
                next = Some(*id);
                break;
            }
            if let Some(seg) = state.by_id.get(&loc.segment) {
                points.push(seg.with_view(|v| self.record(v, loc.offset, with)));
            }
        }
        Ok(ScrollPage { points, next })
    }
}
