//! What one field index can tell about a field test.
//!
//! A row passes a test when one of its values does. The index splits a row's non-null
//! values in two: those of its kind ("inside", in the postings) and the rest ("outside",
//! only known as the `other` row set). For each half the answer says whether such values
//! pass: for these postings, all of them, none, or unknown. Combining the halves gives rows
//! that surely pass and rows that must be checked per point.
//!
//! The table follows the reference semantics in `check.rs`:
//! - `match value/any` only passes values of its own type (integers: numbers within `i64`);
//! - `except` passes any non-null value not of its list's type;
//! - `range` only passes numbers.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::ops::Range as Span;

use super::{FieldIndex, ValueSet, Values};
use crate::filter::{FieldTest, Match, Range, Scalar, ScalarList};

/// Which of the index's own values pass.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inside {
    /// Exactly the values in this set.
    Values(ValueSet),
    /// All of them.
    All,
    /// None of them.
    None,
    /// Unknown: rows holding them must be checked.
    Unknown,
}

/// Whether the non-null values outside the index's kind pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outside {
    All,
    None,
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub(crate) inside: Inside,
    pub(crate) outside: Outside,
}

impl Answer {
    fn new(inside: Inside, outside: Outside) -> Answer {
        Answer { inside, outside }
    }
}

impl FieldIndex {
    pub(crate) fn answer(&self, test: &FieldTest) -> Answer {
        use FieldTest::{Match as M, Range as R};
        use Inside as I;
        use Match::{Any, Except, Value};
        use Outside as O;
        use ScalarList::{Integers, Keywords};
        match (&self.values, test) {
            (Values::Keyword(v), M(Value(Scalar::Keyword(s)))) => Answer::new(
                I::Values(find_all::<str, _>(v, std::iter::once(s.as_str()))),
                O::None,
            ),
            (Values::Keyword(v), M(Any(Keywords(l)))) => Answer::new(
                I::Values(find_all::<str, _>(v, l.iter().map(String::as_str))),
                O::None,
            ),
            (Values::Keyword(v), M(Except(Keywords(l)))) => {
                Answer::new(I::Values(all_but::<str, _, _>(v, l)), O::All)
            }
            (Values::Keyword(_), M(Except(Integers(_)))) => Answer::new(I::All, O::Unknown),
            (Values::Keyword(_), _) => Answer::new(I::None, O::Unknown),

            (Values::Integer(v), M(Value(Scalar::Integer(n)))) => {
                Answer::new(I::Values(find_all(v, std::iter::once(n))), O::None)
            }
            (Values::Integer(v), M(Any(Integers(l)))) => {
                Answer::new(I::Values(find_all(v, l.iter())), O::None)
            }
            (Values::Integer(v), M(Except(Integers(l)))) => {
                Answer::new(I::Values(all_but::<i64, _, _>(v, l)), O::All)
            }
            (Values::Integer(_), M(Except(Keywords(_)))) => Answer::new(I::All, O::Unknown),
            (Values::Integer(v), R(r)) => {
                // i64 → f64 is monotone, so the passing values are one span.
                Answer::new(I::Values(span(v, r, |x| *x as f64)), O::Unknown)
            }
            (Values::Integer(_), _) => Answer::new(I::None, O::Unknown),

            (Values::Float(v), R(r)) => Answer::new(I::Values(span(v, r, |x| *x)), O::None),
            (Values::Float(_), M(Value(Scalar::Integer(_)) | Any(Integers(_)))) => {
                Answer::new(I::Unknown, O::None)
            }
            (Values::Float(_), M(Except(Integers(_)))) => Answer::new(I::Unknown, O::All),
            (Values::Float(_), M(Except(Keywords(_)))) => Answer::new(I::All, O::Unknown),
            (Values::Float(_), _) => Answer::new(I::None, O::Unknown),

            (Values::Bool(v), M(Value(Scalar::Bool(b)))) => {
                Answer::new(I::Values(find_all(v, std::iter::once(b))), O::None)
            }
            (Values::Bool(_), M(Except(_))) => Answer::new(I::All, O::Unknown),
            (Values::Bool(_), _) => Answer::new(I::None, O::Unknown),
        }
    }
}

/// Positions in `values` of the wanted ones that occur, ascending.
fn find_all<'w, T, V>(values: &[V], wanted: impl Iterator<Item = &'w T>) -> ValueSet
where
    T: Ord + ?Sized + 'w,
    V: Borrow<T>,
{
    let mut out: Vec<usize> = wanted
        .filter_map(|w| values.binary_search_by(|v| v.borrow().cmp(w)).ok())
        .collect();
    out.sort_unstable();
    out.dedup();
    ValueSet::List(out)
}

/// Positions in `values` of those not in `excluded`.
fn all_but<T, V, E>(values: &[V], excluded: &BTreeSet<E>) -> ValueSet
where
    T: Ord + ?Sized,
    V: Borrow<T>,
    E: Borrow<T> + Ord,
{
    ValueSet::List(
        values
            .iter()
            .enumerate()
            .filter(|(_, v)| !excluded.contains((*v).borrow()))
            .map(|(i, _)| i)
            .collect(),
    )
}

/// The positions of ascending `values` whose `as_f64` lies in `r`.
fn span<T>(values: &[T], r: &Range, as_f64: impl Fn(&T) -> f64) -> ValueSet {
    let start = values.partition_point(|x| r.below(as_f64(x)));
    let end = values.partition_point(|x| r.not_above(as_f64(x)));
    ValueSet::Span(Span {
        start,
        end: end.max(start),
    })
}
