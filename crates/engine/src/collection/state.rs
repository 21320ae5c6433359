//! The in-memory state writes change: the id map, the segments by id, the mutable segment;
//! and `apply`, shared by the write path and WAL replay.

use super::*;

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
    pub(super) next_segment_id: u64,
}

/// Applies a logged operation to the in-memory state. Infallible: everything was validated
/// before the operation was logged (or, on replay, when it was first logged).
pub(super) fn apply(state: &mut State, schema: &Schema, op: &Op) {
    match op {
        Op::Upsert(points) => {
            for p in points {
                if p.vectors.len() != schema.vectors.len() {
                    continue;
                }
                if let Some(old) = state.ids.get(&p.id)
                    && let Some(seg) = state.by_id.get(&old.segment)
                {
                    seg.deleted.set(old.offset);
                }
                let offset = state.mutable.push(p);
                let segment = state.mutable.id;
                state.ids.insert(p.id, Loc { segment, offset });
            }
        }
        Op::Delete(ids) => {
            for id in ids {
                if let Some(old) = state.ids.remove(id)
                    && let Some(seg) = state.by_id.get(&old.segment)
                {
                    seg.deleted.set(old.offset);
                }
            }
        }
    }
}
