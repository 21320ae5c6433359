//! Read snapshots: the segment list with the sequence number it reflects, and the registry of
//! live snapshots that tells writers which deletion records a reader may still need.

use super::*;
use std::collections::BTreeMap;

/// What readers snapshot, replaced under the `segments` lock.
pub(super) struct ReadState {
    pub(super) list: SegmentList,
    /// Sequence number of the last operation applied to the segments in `list`.
    pub(super) seq: u64,
}

/// A reader's consistent view: search each segment at `seq`.
pub(super) struct Snapshot<'c> {
    pub(super) segments: SegmentList,
    pub(super) seq: u64,
    pub(super) _registered: Registration<'c>,
}

/// Sequence numbers of live snapshots, with how many readers hold each.
#[derive(Default)]
pub(super) struct Readers(Mutex<BTreeMap<u64, usize>>);

/// Unregisters a snapshot when dropped.
pub(super) struct Registration<'c> {
    readers: &'c Readers,
    seq: u64,
}

impl Readers {
    /// Called with the `segments` lock held, so no writer publishes a newer sequence number
    /// between the snapshot and its registration.
    pub(super) fn register(&self, seq: u64) -> Registration<'_> {
        *self.0.lock().entry(seq).or_insert(0) += 1;
        Registration { readers: self, seq }
    }

    /// The oldest sequence number a reader may still see: deletion records at or below it
    /// are needed by no one. `published`: the sequence number new snapshots get.
    pub(super) fn horizon(&self, published: u64) -> u64 {
        self.0
            .lock()
            .first_key_value()
            .map_or(published, |(&s, _)| s.min(published))
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut map = self.readers.0.lock();
        if let Some(n) = map.get_mut(&self.seq) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.seq);
            }
        }
    }
}

impl Collection {
    /// The horizon for deletions applied now (under the state write lock).
    pub(super) fn deletion_horizon(&self) -> u64 {
        let published = self.segments.read().seq;
        self.readers.horizon(published)
    }
}
