//! Posting lists: for each distinct value of a field index (numbered in value order), the
//! ascending rows that hold it.
//!
//! All rows sit in one array (value `i`'s rows are `rows[offsets[i]..offsets[i + 1]]`), which
//! is also how they are encoded. Values held by at least [`HEAVY_ROWS`] rows additionally
//! get a roaring bitmap, so that a frequent value or a range over a few frequent values is a
//! bitmap union; rare values (long tails of distinct numbers) are merged from the array by a
//! sort. Both are measured in `tests/wordnet.rs`.

use std::ops::Range;

use roaring::{MultiOps, RoaringBitmap};

/// Values with at least this many rows are kept as bitmaps too.
pub(crate) const HEAVY_ROWS: usize = 64;

/// A set of value numbers of one index: a span (ranges) or a sorted list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueSet {
    Span(Range<usize>),
    List(Vec<usize>),
}

impl ValueSet {
    pub(crate) fn iter(&self) -> Box<dyn Iterator<Item = usize> + '_> {
        match self {
            ValueSet::Span(r) => Box::new(r.clone()),
            ValueSet::List(v) => Box::new(v.iter().copied()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Postings {
    /// `values + 1` entries, starting at 0, non-decreasing, ending at `rows.len()`.
    offsets: Vec<usize>,
    /// Each value's rows, ascending within the value.
    rows: Vec<u32>,
    /// `(value number, its rows)` for the values with at least `HEAVY_ROWS` rows, by value.
    heavy: Vec<(usize, RoaringBitmap)>,
}

impl Postings {
    /// From per-value run lengths and the concatenated rows. The caller guarantees the
    /// lengths sum to `rows.len()` and each run is strictly ascending.
    pub(crate) fn new(run_lengths: &[usize], rows: Vec<u32>) -> Postings {
        let mut offsets = Vec::with_capacity(run_lengths.len() + 1);
        let mut at = 0;
        offsets.push(0);
        for len in run_lengths {
            at += len;
            offsets.push(at);
        }
        let mut postings = Postings {
            offsets,
            rows,
            heavy: Vec::new(),
        };
        postings.heavy = (0..run_lengths.len())
            .filter(|&i| postings.run(i).len() >= HEAVY_ROWS)
            .map(|i| (i, sorted_bitmap(postings.run(i))))
            .collect();
        postings
    }

    /// Number of distinct values.
    pub(crate) fn values(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The ascending rows of value `i` (empty for an unknown value).
    pub(crate) fn run(&self, i: usize) -> &[u32] {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&start), Some(&end)) => self.rows.get(start..end).unwrap_or_default(),
            _ => &[],
        }
    }

    /// Total (value, row) pairs of the values in `set`: the number of rows when no row holds
    /// two of them.
    pub(crate) fn pairs(&self, set: &ValueSet) -> usize {
        match set {
            ValueSet::Span(r) => {
                let at = |i: usize| self.offsets.get(i).copied().unwrap_or(0);
                at(r.end).saturating_sub(at(r.start))
            }
            ValueSet::List(v) => v.iter().map(|&i| self.run(i).len()).sum(),
        }
    }

    /// Rows of the most frequent value in `set`: a lower bound on the rows holding any.
    pub(crate) fn largest(&self, set: &ValueSet) -> usize {
        set.iter().map(|i| self.run(i).len()).max().unwrap_or(0)
    }

    /// Rows holding at least one value of `set`.
    pub(crate) fn union(&self, set: &ValueSet) -> RoaringBitmap {
        let mut heavy = Vec::new();
        let mut light = Vec::new();
        let mut light_runs = 0;
        for i in set.iter() {
            match self.heavy.binary_search_by_key(&i, |(v, _)| *v) {
                Ok(h) => heavy.extend(self.heavy.get(h).map(|(_, b)| b)),
                Err(_) => {
                    light.extend_from_slice(self.run(i));
                    light_runs += 1;
                }
            }
        }
        let mut out = heavy.into_iter().union();
        if light_runs > 1 {
            light.sort_unstable();
            light.dedup();
        }
        if !light.is_empty() {
            out |= sorted_bitmap(&light);
        }
        out
    }

    /// The concatenated rows, value by value, for encoding.
    pub(crate) fn runs(&self) -> impl Iterator<Item = &[u32]> {
        (0..self.values()).map(|i| self.run(i))
    }

    /// Heap bytes held, approximately.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * size_of::<usize>()
            + self.rows.capacity() * size_of::<u32>()
            + self
                .heavy
                .iter()
                .map(|(_, b)| b.serialized_size() + 32)
                .sum::<usize>()
    }
}

/// A bitmap from strictly ascending rows (falls back to inserting if they are not).
pub(crate) fn sorted_bitmap(rows: &[u32]) -> RoaringBitmap {
    RoaringBitmap::from_sorted_iter(rows.iter().copied())
        .unwrap_or_else(|_| rows.iter().copied().collect())
}
