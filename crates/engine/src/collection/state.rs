//! The in-memory state writes change: the id map, the segments by id, the mutable segment and
//! the frozen ones awaiting their seal; and `apply`, shared by the write path and WAL replay.

use super::*;
use std::collections::VecDeque;

/// Where a live point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Loc {
    pub(super) segment: u64,
    pub(super) offset: u32,
}

pub(super) struct State {
    pub(super) ids: BTreeMap<PointId, Loc>,
    pub(super) by_id: HashMap<u64, Arc<Segment>>,
    pub(super) mutable: Arc<Segment>,
    /// Segments frozen for sealing, oldest first, each with the last sequence number it
    /// holds. Searchable until the maintenance thread swaps in the sealed segment.
    pub(super) frozen: VecDeque<(Arc<Segment>, u64)>,
    pub(super) next_segment_id: u64,
}

/// Applies logged operation `seq` to the in-memory state. Infallible: everything was validated
/// before the operation was logged (or, on replay, when it was first logged), and the writer
/// froze the mutable segment before it could overflow. `horizon`: see
/// [`crate::segment::DeletedBitmap::set`]. An overwrite pushes the new row before it deletes
/// the old one.
pub(super) fn apply(state: &mut State, op: &Op, seq: u64, horizon: u64) {
    match op {
        Op::Upsert(points) => {
            for p in points {
                let Some(offset) = state.mutable.push(p, seq) else {
                    // Unreachable: `Collection::write` freezes a segment before 2^32 rows.
                    log::error!("mutable segment full: point {} not applied", p.id);
                    continue;
                };
                let segment = state.mutable.id;
                if let Some(old) = state.ids.insert(p.id, Loc { segment, offset })
                    && let Some(seg) = state.by_id.get(&old.segment)
                {
                    seg.deleted.set(old.offset, seq, horizon);
                }
            }
        }
        Op::Delete(ids) => {
            for id in ids {
                if let Some(old) = state.ids.remove(id)
                    && let Some(seg) = state.by_id.get(&old.segment)
                {
                    seg.deleted.set(old.offset, seq, horizon);
                }
            }
        }
    }
}
