//! Bounded selection of the best-scoring items of a scan, and merging of per-segment
//! results.
//!
//! Order: a higher score is better; on equal scores the lower id is better. Scores compare
//! as IEEE 754 numbers (so `-0.0` ties with `0.0`), except that NaN ranks below every
//! number: a NaN never displaces a real score.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Compares scores as IEEE 754 does, with every NaN below every number and equal to other
/// NaNs, which makes the order total.
fn cmp_score(a: f32, b: f32) -> Ordering {
    match a.partial_cmp(&b) {
        Some(order) => order,
        None => b.is_nan().cmp(&a.is_nan()),
    }
}

/// One scored item, ordered by *worseness*: the greatest `Entry` is the worst, so a
/// max-heap of entries has the one to evict at its root.
#[derive(Clone, Copy, Debug)]
struct Entry {
    score: f32,
    id: u64,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_score(other.score, self.score).then(self.id.cmp(&other.id))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

/// Bounded selection of the `k` best (highest score) items; ties broken by lower id first.
///
/// Holds at most `k` items in a binary heap whose root is the current worst, so
/// [`push`](Self::push) is O(log k). Room for `k` items is allocated by [`new`](Self::new)
/// and kept by [`clear`](Self::clear); nothing else allocates until
/// [`into_sorted_vec`](Self::into_sorted_vec) hands the buffer over.
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Entry>,
}

impl TopK {
    /// An empty selection that will keep the `k` best items; allocates room for `k`.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k),
        }
    }

    /// How many items this selection keeps at most.
    pub fn k(&self) -> usize {
        self.k
    }

    /// How many items it holds now (at most `k`).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether it holds no item.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The score a candidate must reach to enter, so scans can skip work: a candidate
    /// scoring below it is rejected, one scoring equal to it enters only if its id is lower
    /// than the current worst item's. `f32::NEG_INFINITY` until `k` items are held (every
    /// candidate enters), `f32::INFINITY` when `k == 0` (none does).
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap.peek().map_or(f32::INFINITY, |worst| worst.score)
        }
    }

    /// Offers one candidate: it is kept if fewer than `k` items are held or it beats the
    /// current worst, which it then evicts. O(log k); never allocates.
    #[inline]
    pub fn push(&mut self, score: f32, id: u64) {
        self.push_entry(Entry { score, id });
    }

    fn push_entry(&mut self, entry: Entry) {
        if self.heap.len() < self.k {
            self.heap.push(entry);
        } else if let Some(mut worst) = self.heap.peek_mut()
            && entry < *worst
        {
            // Dropping the `PeekMut` sifts the new entry down.
            *worst = entry;
        }
    }

    /// Removes every item, keeping `k` and the allocation.
    pub fn clear(&mut self) {
        self.heap.clear();
    }

    /// The items as `(score, id)`, best first.
    pub fn into_sorted_vec(self) -> Vec<(f32, u64)> {
        // Ascending by `Entry`'s order is worst-last, that is best first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|e| (e.score, e.id))
            .collect()
    }

    /// Offers every item of `other` to `self`; the result keeps `self.k()` items.
    pub fn merge(&mut self, other: TopK) {
        for entry in other.heap {
            self.push_entry(entry);
        }
    }
}

/// Best-first merge of per-segment results, each already best-first (as
/// [`TopK::into_sorted_vec`] returns them), keeping the `k` best overall under the same
/// order as [`TopK`]. O(k · log(runs)). Ids are not deduplicated across runs.
///
/// A run that is not best-first is a caller bug: the result is then still `k` items from
/// the runs, but not necessarily the best ones.
pub fn merge_best_first<R: AsRef<[(f32, u64)]>>(runs: &[R], k: usize) -> Vec<(f32, u64)> {
    let total: usize = runs.iter().map(|r| r.as_ref().len()).sum();
    let mut out = Vec::with_capacity(k.min(total));
    if out.capacity() == 0 {
        return out;
    }
    // Heads of the runs; `Reverse` makes the best entry the root of the max-heap.
    let mut heads: BinaryHeap<(Reverse<Entry>, usize, usize)> = runs
        .iter()
        .enumerate()
        .filter_map(|(run, items)| {
            let &(score, id) = items.as_ref().first()?;
            Some((Reverse(Entry { score, id }), run, 0))
        })
        .collect();
    while out.len() < k
        && let Some((Reverse(best), run, pos)) = heads.pop()
    {
        out.push((best.score, best.id));
        if let Some(&(score, id)) = runs.get(run).and_then(|r| r.as_ref().get(pos + 1)) {
            heads.push((Reverse(Entry { score, id }), run, pos + 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: sort everything best first, then truncate.
    fn reference(items: &[(f32, u64)], k: usize) -> Vec<(f32, u64)> {
        let mut sorted = items.to_vec();
        sorted.sort_by(|x, y| cmp_score(y.0, x.0).then(x.1.cmp(&y.1)));
        sorted.truncate(k);
        sorted
    }

    fn select(items: &[(f32, u64)], k: usize) -> TopK {
        let mut top = TopK::new(k);
        for &(score, id) in items {
            top.push(score, id);
        }
        top
    }

    /// Scores from a small set so that ties are common; ids may repeat.
    fn items() -> impl Strategy<Value = Vec<(f32, u64)>> {
        prop::collection::vec(((-4i8..=4).prop_map(f32::from), 0u64..40), 0..60)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn topk_matches_sort_then_truncate(items in items(), k in 0usize..70) {
            let top = select(&items, k);
            let want = reference(&items, k);
            prop_assert_eq!(top.k(), k);
            prop_assert_eq!(top.len(), want.len());
            prop_assert_eq!(top.is_empty(), want.is_empty());
            let threshold = match (k, want.len() == k) {
                (0, _) => f32::INFINITY,
                (_, true) => want[k - 1].0,
                (_, false) => f32::NEG_INFINITY,
            };
            prop_assert_eq!(top.threshold(), threshold);
            prop_assert_eq!(top.into_sorted_vec(), want);
        }

        #[test]
        fn merge_matches_selection_over_the_union(
            left in items(), right in items(), k in 0usize..70, k_right in 0usize..70
        ) {
            let mut top = select(&left, k);
            top.merge(select(&right, k_right));
            let kept_right = reference(&right, k_right);
            let union: Vec<_> = left.iter().chain(&kept_right).copied().collect();
            prop_assert_eq!(top.into_sorted_vec(), reference(&union, k));
        }

        #[test]
        fn merge_best_first_matches_selection_over_the_union(
            runs in prop::collection::vec(items(), 0..6), k in 0usize..70
        ) {
            let sorted_runs: Vec<_> = runs.iter().map(|run| reference(run, k)).collect();
            let union: Vec<_> = sorted_runs.iter().flatten().copied().collect();
            prop_assert_eq!(merge_best_first(&sorted_runs, k), reference(&union, k));
        }
    }

    #[test]
    fn clear_keeps_k_and_capacity() {
        let mut top = select(&[(1.0, 1), (2.0, 2), (3.0, 3)], 2);
        let capacity = top.heap.capacity();
        top.clear();
        assert!(top.is_empty());
        assert_eq!((top.k(), top.heap.capacity()), (2, capacity));
        assert_eq!(top.threshold(), f32::NEG_INFINITY);
        top.push(5.0, 9);
        assert_eq!(top.into_sorted_vec(), [(5.0, 9)]);
    }

    #[test]
    fn nan_never_displaces_a_number() {
        let mut top = select(&[(f32::NAN, 0), (1.0, 5), (-f32::NAN, 1)], 2);
        top.push(f32::NAN, 2);
        let got = top.into_sorted_vec();
        assert_eq!(got[0], (1.0, 5));
        assert!(got[1].0.is_nan() && got[1].1 == 0);
    }

    #[test]
    fn equal_scores_prefer_lower_ids() {
        let top = select(&[(1.0, 7), (1.0, 3), (1.0, 9), (1.0, 1)], 2);
        assert_eq!(top.threshold(), 1.0);
        assert_eq!(top.into_sorted_vec(), [(1.0, 1), (1.0, 3)]);
    }
}
