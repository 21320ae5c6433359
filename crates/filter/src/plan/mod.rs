//! Planning support for one segment: how many rows a filter keeps ([`estimate`]), which
//! rows ([`evaluate`]), and how each condition is answered ([`describe`]).
//!
//! All three see a segment as `rows` rows numbered `0..rows` plus its [`FieldIndexes`]. A
//! condition on an indexed key is answered from the index; any other condition (and the
//! part of an indexed one the index cannot decide, such as values of another type) leaves
//! rows to be checked per point with [`crate::Filter::matches`].

mod dense;
mod describe;
mod estimate;
mod evaluate;

pub use dense::dense_words;
pub use describe::{Access, Plan, Step, describe};
pub use estimate::{Cardinality, UNINDEXED_SELECTIVITY, estimate};
pub use evaluate::{Evaluation, Verdict, evaluate};

use quiver_types::PointId;

/// How `has_id` conditions find the segment's rows.
#[derive(Clone, Copy, Default)]
pub enum RowIds<'a> {
    /// Not available: rows are checked per point.
    #[default]
    Unknown,
    /// `ids[row]` is the id of `row`; rows past the end are checked per point.
    Slice(&'a [PointId]),
    /// The row of an id in this segment, if it has one (e.g. from the collection's id map).
    Lookup(&'a dyn Fn(&PointId) -> Option<u32>),
}

impl std::fmt::Debug for RowIds<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowIds::Unknown => f.write_str("Unknown"),
            RowIds::Slice(ids) => write!(f, "Slice({} ids)", ids.len()),
            RowIds::Lookup(_) => f.write_str("Lookup(..)"),
        }
    }
}
