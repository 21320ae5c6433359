//! Candidate and result queues of the graph search, ordered by score ("higher is better").

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A scored node. Ordered by score (total order on f32), then by lower id as the better one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub score: f32,
    pub id: u32,
}

impl Eq for Scored {}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.id.cmp(&self.id))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Best first (a max-heap of `Scored`).
pub type Candidates = BinaryHeap<Scored>;

/// Worst on top (a max-heap of reversed `Scored`), bounded by the caller.
pub type Results = BinaryHeap<std::cmp::Reverse<Scored>>;
