//! Index-based evaluation in three-valued logic: each condition yields rows that surely pass
//! and rows that might (to be checked per point), combined with Kleene's AND / OR / NOT.

use roaring::RoaringBitmap;

use super::RowIds;
use crate::filter::{Condition, FieldCondition, Filter, MinShould};
use crate::index::{FieldIndex, FieldIndexes, Inside, Outside};
use crate::key::KeyPath;

/// The rows of a segment that pass a filter, as far as the indexes tell.
///
/// Rows in `matched` pass; rows in `unsure` may pass and must be checked with
/// [`Filter::matches`] on their payload; all other rows fail. The two sets are disjoint and
/// within `0..rows`. When `unsure` is empty the answer is exact.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    pub matched: RoaringBitmap,
    pub unsure: RoaringBitmap,
}

/// What an [`Evaluation`] says about one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Match,
    NoMatch,
    /// Check the row's payload with [`Filter::matches`].
    Check,
}

impl Evaluation {
    /// Whether no row needs a check.
    pub fn is_exact(&self) -> bool {
        self.unsure.is_empty()
    }

    /// Rows that may pass: `matched ∪ unsure`.
    pub fn candidates(&self) -> RoaringBitmap {
        &self.matched | &self.unsure
    }

    pub fn verdict(&self, row: u32) -> Verdict {
        if self.matched.contains(row) {
            Verdict::Match
        } else if self.unsure.contains(row) {
            Verdict::Check
        } else {
            Verdict::NoMatch
        }
    }

    /// The passing rows, deciding each unsure row with `check` (typically loading its
    /// payload and calling [`Filter::matches`]).
    pub fn resolve(self, mut check: impl FnMut(u32) -> bool) -> RoaringBitmap {
        let mut out = self.matched;
        for row in self.unsure.iter().filter(|&r| check(r)) {
            out.insert(row);
        }
        out
    }
}

/// Which of the segment's `rows` rows pass `filter`, using `indexes` and `ids`.
///
/// The indexes must have been built over this segment's rows (rows past an index's
/// [`FieldIndex::rows`] are checked per point). Cost: bitmap operations proportional to the
/// rows the indexed conditions select, plus O(rows) bits for conditions that are not indexed.
pub fn evaluate(filter: &Filter, indexes: &FieldIndexes, rows: u32, ids: RowIds<'_>) -> Evaluation {
    let mut all = RoaringBitmap::new();
    all.insert_range(0..rows);
    let eval = Evaluator {
        indexes,
        rows,
        ids,
        all,
    };
    let t = eval.filter(filter);
    Evaluation {
        matched: t.sure,
        unsure: t.maybe,
    }
}

/// A three-valued row set: `sure` pass, `maybe` might; disjoint.
#[derive(Debug, Clone, Default)]
struct Tri {
    sure: RoaringBitmap,
    maybe: RoaringBitmap,
}

impl Tri {
    fn exact(sure: RoaringBitmap) -> Tri {
        Tri {
            sure,
            maybe: RoaringBitmap::new(),
        }
    }

    fn unknown(maybe: RoaringBitmap) -> Tri {
        Tri {
            sure: RoaringBitmap::new(),
            maybe,
        }
    }

    fn is_empty(&self) -> bool {
        self.sure.is_empty() && self.maybe.is_empty()
    }

    fn possible(&self) -> RoaringBitmap {
        &self.sure | &self.maybe
    }

    fn and(self, other: Tri) -> Tri {
        if self.maybe.is_empty() && other.maybe.is_empty() {
            return Tri::exact(self.sure & other.sure);
        }
        let possible = self.possible() & other.possible();
        let sure = self.sure & other.sure;
        Tri {
            maybe: possible - &sure,
            sure,
        }
    }

    fn or(self, other: Tri) -> Tri {
        let sure = self.sure | other.sure;
        let maybe = (self.maybe | other.maybe) - &sure;
        Tri { sure, maybe }
    }

    fn not(self, all: &RoaringBitmap) -> Tri {
        Tri {
            sure: all - self.possible(),
            maybe: self.maybe,
        }
    }

    /// Keeps only rows in `all`.
    fn within(mut self, all: &RoaringBitmap) -> Tri {
        self.sure &= all;
        self.maybe &= all;
        self
    }
}

struct Evaluator<'a> {
    indexes: &'a FieldIndexes,
    rows: u32,
    ids: RowIds<'a>,
    all: RoaringBitmap,
}

impl Evaluator<'_> {
    fn filter(&self, f: &Filter) -> Tri {
        // The conjunction of the clauses, starting from the first instead of from all rows.
        let mut acc: Option<Tri> = None;
        let and = |acc: &mut Option<Tri>, t: Tri| {
            *acc = Some(match acc.take() {
                None => t,
                Some(a) => a.and(t),
            });
        };
        if !f.should.is_empty() {
            let any = f
                .should
                .iter()
                .fold(Tri::default(), |any, c| any.or(self.condition(c)));
            and(&mut acc, any);
        }
        let clauses = f
            .must
            .iter()
            .map(|c| (c, false))
            .chain(f.must_not.iter().map(|c| (c, true)));
        for (c, negated) in clauses {
            if acc.as_ref().is_some_and(Tri::is_empty) {
                return Tri::default();
            }
            let t = self.condition(c);
            and(&mut acc, if negated { t.not(&self.all) } else { t });
        }
        if let Some(m) = &f.min_should
            && !acc.as_ref().is_some_and(Tri::is_empty)
        {
            let t = self.min_should(m);
            and(&mut acc, t);
        }
        acc.unwrap_or_else(|| Tri::exact(self.all.clone()))
    }

    fn condition(&self, c: &Condition) -> Tri {
        match c {
            Condition::Field(fc) => match self.indexes.get(fc.key.as_str()) {
                Some(index) => self.field(index, fc),
                None => Tri::unknown(self.all.clone()),
            },
            Condition::IsEmpty(key) => self.row_set(key, |i| {
                let mut empty = RoaringBitmap::new();
                empty.insert_range(0..i.rows());
                empty - i.filled()
            }),
            Condition::IsNull(key) => self.row_set(key, |i| i.null().clone()),
            Condition::HasId(wanted) => match self.ids {
                RowIds::Unknown => Tri::unknown(self.all.clone()),
                RowIds::Lookup(row_of) => Tri::exact(
                    wanted
                        .iter()
                        .filter_map(row_of)
                        .filter(|&r| r < self.rows)
                        .collect(),
                ),
                RowIds::Slice(ids) => {
                    let known = u32::try_from(ids.len()).unwrap_or(u32::MAX).min(self.rows);
                    let sure = ids
                        .iter()
                        .zip(0..known)
                        .filter(|(id, _)| wanted.contains(id))
                        .map(|(_, row)| row)
                        .collect();
                    let mut maybe = RoaringBitmap::new();
                    maybe.insert_range(known..self.rows);
                    Tri { sure, maybe }
                }
            },
            Condition::Filter(f) => self.filter(f),
        }
    }

    /// A condition an index answers with one row set over the rows it covers.
    fn row_set(&self, key: &KeyPath, rows: impl Fn(&FieldIndex) -> RoaringBitmap) -> Tri {
        match self.indexes.get(key.as_str()) {
            Some(index) => self.covered(index, Tri::exact(rows(index))),
            None => Tri::unknown(self.all.clone()),
        }
    }

    fn field(&self, index: &FieldIndex, fc: &FieldCondition) -> Tri {
        let answer = index.answer(&fc.test);
        let mut sure = RoaringBitmap::new();
        let mut maybe = RoaringBitmap::new();
        match &answer.inside {
            Inside::Values(set) => sure = index.postings().union(set),
            Inside::All => sure |= index.indexed_rows(),
            Inside::None => {}
            Inside::Unknown => maybe |= index.indexed_rows(),
        }
        match answer.outside {
            Outside::All => sure |= index.other(),
            Outside::None => {}
            Outside::Unknown => maybe |= index.other(),
        }
        maybe -= &sure;
        self.covered(index, Tri { sure, maybe })
    }

    /// Adjusts an index's answer to the segment: rows the index does not cover become
    /// unsure, rows past the segment are dropped.
    fn covered(&self, index: &FieldIndex, t: Tri) -> Tri {
        match index.rows().cmp(&self.rows) {
            std::cmp::Ordering::Equal => t,
            std::cmp::Ordering::Greater => t.within(&self.all),
            std::cmp::Ordering::Less => {
                let mut t = t;
                t.maybe.insert_range(index.rows()..self.rows);
                t
            }
        }
    }

    fn min_should(&self, m: &MinShould) -> Tri {
        let k = m.min_count;
        if k == 0 {
            return Tri::exact(self.all.clone());
        }
        if k > m.conditions.len() {
            return Tri::default();
        }
        let tris: Vec<Tri> = m.conditions.iter().map(|c| self.condition(c)).collect();
        let sure = self.at_least(k, tris.iter().map(|t| t.sure.clone()));
        let possible = self.at_least(k, tris.iter().map(Tri::possible));
        Tri {
            maybe: possible - &sure,
            sure,
        }
    }

    /// Rows in at least `k` (≥ 1) of the sets: `level[j]` holds rows seen in `j` sets so far.
    fn at_least(&self, k: usize, sets: impl Iterator<Item = RoaringBitmap>) -> RoaringBitmap {
        let mut level = vec![RoaringBitmap::new(); k + 1];
        if let Some(first) = level.first_mut() {
            *first = self.all.clone();
        }
        for set in sets {
            for j in (1..=k).rev() {
                let (lower, upper) = level.split_at_mut(j);
                if let (Some(below), Some(here)) = (lower.last(), upper.first_mut()) {
                    *here |= below & &set;
                }
            }
        }
        level.pop().unwrap_or_default()
    }
}
