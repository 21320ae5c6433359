//! BM25 over one segment: its rows' lengths, the statistics of its live rows, and the search.
//!
//! A BM25 vector's rows are term counts (`tf`), so a row's length `dl` is the sum of its
//! values. The collection adds up each segment's [`Statistics`] at the query's snapshot
//! (documents and total length of the live rows holding at least one term) to get `N` and
//! `avgdl`, and the existing document frequencies (live rows holding each query term) for
//! the IDF; every segment is then searched with those collection-wide values, so a row
//! scores the same whichever segment holds it.

use crate::planner::RowFilter;
use crate::segment::{Segment, SparseRows, View};
use quiver_filter::Filter;
use quiver_index::sparse::QueryTerm;
use quiver_index::sparse::bm25::{Bm25, Bm25Params};
use quiver_index::sparse::format::PostingsView;
use quiver_index::sparse::maxscore;
use quiver_index::{Hit, SearchStats};
use quiver_storage::segment::SparseFile;

/// The lengths of a sparse vector's rows, and their totals over every row.
#[derive(Debug, Default, Clone)]
pub(crate) struct RowLengths {
    lengths: Vec<f32>,
    /// Sum of every row's length, in f64 (exact for term counts below 2^53).
    total: f64,
    /// Rows with at least one term.
    documents: u64,
    /// The least length of a row with a term (`f32::MAX` when there is none).
    shortest: f32,
}

/// Live documents of a BM25 vector and their total length.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Statistics {
    pub documents: u64,
    pub total_length: f64,
}

impl Statistics {
    pub fn add(&mut self, other: Statistics) {
        self.documents += other.documents;
        self.total_length += other.total_length;
    }

    /// The average document length (0 with no document).
    pub fn average_length(&self) -> f64 {
        match self.documents {
            0 => 0.0,
            n => self.total_length / n as f64,
        }
    }
}

impl RowLengths {
    /// Appends a row with these values.
    pub fn push(&mut self, values: &[f32]) {
        let length: f32 = values.iter().sum();
        if self.lengths.is_empty() {
            self.shortest = f32::MAX;
        }
        self.lengths.push(length);
        self.total += f64::from(length);
        if !values.is_empty() {
            self.documents += 1;
            self.shortest = self.shortest.min(length);
        }
    }

    /// The lengths of a sealed segment's rows (a row that fails to read counts as empty: the
    /// file was verified when the segment was opened).
    fn of_file(rows: &SparseFile) -> RowLengths {
        let mut out = RowLengths::default();
        for r in 0..rows.rows() {
            let (_, values) = rows.row(r).unwrap_or_default();
            out.push(&values);
        }
        out
    }

    /// Row `row`'s length (0 past the end).
    #[inline]
    pub fn length(&self, row: u32) -> f32 {
        self.lengths.get(row as usize).copied().unwrap_or(0.0)
    }

    /// Statistics of the first `rows` rows, less the rows `deleted` accepts.
    fn statistics(&self, rows: usize, deleted: impl Fn(u32) -> bool, any: bool) -> Statistics {
        let mut s = Statistics {
            documents: self.documents,
            total_length: self.total,
        };
        let mut drop = |l: f32| {
            if l > 0.0 {
                s.documents -= 1;
                s.total_length -= f64::from(l);
            }
        };
        // Rows appended after the snapshot, then the deleted ones.
        for &l in self.lengths.get(rows..).unwrap_or(&[]) {
            drop(l);
        }
        if any {
            for (r, &l) in (0u32..).zip(self.lengths.get(..rows).unwrap_or(&self.lengths)) {
                if deleted(r) {
                    drop(l);
                }
            }
        }
        s
    }
}

/// The lengths of sparse vector `j`'s rows in this view of `seg`.
fn lengths<'a>(seg: &'a Segment, v: &'a View<'_>, j: usize) -> Option<&'a RowLengths> {
    match v.sparse.get(j)? {
        SparseRows::Mutable(c) => Some(&c.lengths),
        SparseRows::Sealed { rows, .. } => Some(
            seg.lengths
                .get(j)?
                .get_or_init(|| RowLengths::of_file(rows)),
        ),
    }
}

/// Live documents of sparse vector `j` in `seg` at snapshot `seq`, and their total length.
pub(crate) fn statistics(seg: &Segment, seq: u64, j: usize) -> Statistics {
    let any_deleted = seg.deleted.count_at(seq) > 0;
    seg.view_at(seq, |v| {
        lengths(seg, v, j).map_or_else(Statistics::default, |l| {
            l.statistics(v.rows(), |r| v.deleted.is_deleted(r), any_deleted)
        })
    })
}

/// The `k` best live rows of `seg` passing `filter` by BM25 for `terms` (weights already
/// multiplied by their IDF), with the collection's average length `avgdl`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn search_segment(
    seg: &Segment,
    seq: u64,
    j: usize,
    terms: &[QueryTerm],
    k: usize,
    filter: Option<&Filter>,
    params: Bm25Params,
    avgdl: f64,
) -> (Vec<Hit>, SearchStats) {
    seg.view_at(seq, |v| {
        let rf = filter.map(|f| RowFilter::new(f, seg, v));
        let accept = |o: u32| match &rf {
            Some(rf) => rf.accepts(o),
            None => !v.deleted.is_deleted(o),
        };
        let Some(lengths) = lengths(seg, v, j) else {
            return Default::default();
        };
        let weighting = Bm25::new(params, avgdl, lengths.shortest, |r| lengths.length(r));
        match v.sparse.get(j) {
            Some(SparseRows::Mutable(c)) => {
                c.postings
                    .search_weighted(terms, v.rows() as u32, k, &weighting, accept)
            }
            // Verified when the segment was opened or built.
            Some(SparseRows::Sealed { postings, .. }) => match PostingsView::new(postings.body()) {
                Ok(view) => maxscore::search_weighted(&view, terms, k, &weighting, accept),
                Err(_) => Default::default(),
            },
            None => Default::default(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_leave_out_later_and_deleted_rows() {
        let mut l = RowLengths::default();
        l.push(&[1.0, 2.0]);
        l.push(&[]);
        l.push(&[4.0]);
        l.push(&[1.0]);
        assert_eq!(l.shortest, 1.0);
        let all = l.statistics(4, |_| false, false);
        assert_eq!(
            all,
            Statistics {
                documents: 3,
                total_length: 8.0
            }
        );
        assert_eq!(all.average_length(), 8.0 / 3.0);
        let s = l.statistics(3, |r| r == 0, true);
        assert_eq!(
            s,
            Statistics {
                documents: 1,
                total_length: 4.0
            }
        );
        assert_eq!(Statistics::default().average_length(), 0.0);
    }
}
