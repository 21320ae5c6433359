//! Cardinality estimation from index statistics only (no bitmap is built), Qdrant-style:
//! `must` intersects, `should` unites, `must_not` complements; conditions the indexes cannot
//! answer count as `[0, rows]` with [`UNINDEXED_SELECTIVITY`] expected.

use crate::filter::{Condition, FieldCondition, Filter, MinShould};
use crate::index::{FieldIndex, FieldIndexes, Inside, Outside};
use crate::key::KeyPath;

/// The share of rows a condition that no index answers is expected to keep.
pub const UNINDEXED_SELECTIVITY: f64 = 0.5;

/// How many rows pass: `min <= expected <= max`; `min` and `max` are guaranteed bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cardinality {
    pub min: u64,
    pub expected: u64,
    pub max: u64,
}

impl Cardinality {
    pub fn exact(n: u64) -> Cardinality {
        Cardinality {
            min: n,
            expected: n,
            max: n,
        }
    }

    /// Anything from none to `of` rows, `UNINDEXED_SELECTIVITY` of them expected.
    pub fn unknown(of: u64) -> Cardinality {
        Cardinality {
            min: 0,
            expected: (of as f64 * UNINDEXED_SELECTIVITY).round() as u64,
            max: of,
        }
    }

    pub fn is_exact(&self) -> bool {
        self.min == self.max
    }

    fn clamped(min: u64, expected: f64, max: u64) -> Cardinality {
        Cardinality {
            min,
            expected: (expected.round() as u64).clamp(min, max.max(min)),
            max: max.max(min),
        }
    }

    /// Both hold (independence assumed for `expected`).
    fn and(self, other: Cardinality, rows: u64) -> Cardinality {
        if rows == 0 {
            return Cardinality::exact(0);
        }
        let share = |c: Cardinality| c.expected as f64 / rows as f64;
        Cardinality::clamped(
            (self.min + other.min).saturating_sub(rows),
            share(self) * share(other) * rows as f64,
            self.max.min(other.max),
        )
    }

    /// Either holds.
    fn or(self, other: Cardinality, rows: u64) -> Cardinality {
        if rows == 0 {
            return Cardinality::exact(0);
        }
        let miss = |c: Cardinality| 1.0 - c.expected as f64 / rows as f64;
        Cardinality::clamped(
            self.min.max(other.min),
            (1.0 - miss(self) * miss(other)) * rows as f64,
            (self.max + other.max).min(rows),
        )
    }

    fn not(self, rows: u64) -> Cardinality {
        Cardinality {
            min: rows.saturating_sub(self.max),
            expected: rows.saturating_sub(self.expected),
            max: rows.saturating_sub(self.min),
        }
    }
}

/// Estimates how many of the segment's `rows` rows pass `filter`, from `indexes` alone.
pub fn estimate(filter: &Filter, indexes: &FieldIndexes, rows: u32) -> Cardinality {
    Estimator {
        indexes,
        rows: u64::from(rows),
    }
    .filter(filter)
}

pub(super) struct Estimator<'a> {
    pub(super) indexes: &'a FieldIndexes,
    pub(super) rows: u64,
}

impl Estimator<'_> {
    pub(super) fn filter(&self, f: &Filter) -> Cardinality {
        let rows = self.rows;
        let mut acc = Cardinality::exact(rows);
        if !f.should.is_empty() {
            let any = f
                .should
                .iter()
                .map(|c| self.condition(c))
                .fold(Cardinality::exact(0), |a, b| a.or(b, rows));
            acc = acc.and(any, rows);
        }
        for c in &f.must {
            acc = acc.and(self.condition(c), rows);
        }
        for c in &f.must_not {
            acc = acc.and(self.condition(c).not(rows), rows);
        }
        if let Some(m) = &f.min_should {
            acc = acc.and(self.min_should(m), rows);
        }
        acc
    }

    pub(super) fn condition(&self, c: &Condition) -> Cardinality {
        let rows = self.rows;
        match c {
            Condition::Field(fc) => match self.indexes.get(fc.key.as_str()) {
                Some(index) => self.field(index, fc),
                None => Cardinality::unknown(rows),
            },
            Condition::IsEmpty(key) => self.row_set(key, |i| {
                u64::from(i.rows()).saturating_sub(i.filled().len())
            }),
            Condition::IsNull(key) => self.row_set(key, |i| i.null().len()),
            // The ids may live in other segments.
            Condition::HasId(ids) => Cardinality {
                min: 0,
                expected: (ids.len() as u64).min(rows),
                max: (ids.len() as u64).min(rows),
            },
            Condition::Filter(f) => self.filter(f),
        }
    }

    fn row_set(&self, key: &KeyPath, count: impl Fn(&FieldIndex) -> u64) -> Cardinality {
        match self.indexes.get(key.as_str()) {
            Some(index) => self.covered(index, Cardinality::exact(count(index))),
            None => Cardinality::unknown(self.rows),
        }
    }

    pub(super) fn field(&self, index: &FieldIndex, fc: &FieldCondition) -> Cardinality {
        let answer = index.answer(&fc.test);
        let typed = index.indexed_rows().len();
        let other = index.other().len();
        let inside = match &answer.inside {
            Inside::Values(set) => {
                let pairs = index.postings().pairs(set) as u64;
                if index.single_valued() {
                    Cardinality::exact(pairs)
                } else {
                    let upper = pairs.min(typed);
                    Cardinality {
                        min: index.postings().largest(set) as u64,
                        expected: upper,
                        max: upper,
                    }
                }
            }
            Inside::All => Cardinality::exact(typed),
            Inside::None | Inside::Unknown => Cardinality::exact(0),
        };
        let sure = match answer.outside {
            Outside::All if other > 0 => inside.or(Cardinality::exact(other), self.rows),
            _ => inside,
        };
        let mut unsure = 0;
        if answer.inside == Inside::Unknown {
            unsure += typed;
        }
        if answer.outside == Outside::Unknown {
            unsure += other;
        }
        let c = Cardinality::clamped(
            sure.min,
            sure.expected as f64 + unsure as f64 * UNINDEXED_SELECTIVITY,
            (sure.max + unsure).min(self.rows),
        );
        self.covered(index, c)
    }

    /// Adjusts an index's count to the segment: widened by the rows it does not cover, or
    /// narrowed when it covers rows past the segment.
    fn covered(&self, index: &FieldIndex, c: Cardinality) -> Cardinality {
        let indexed = u64::from(index.rows());
        let uncovered = self.rows.saturating_sub(indexed);
        if uncovered == 0 {
            let excess = indexed - self.rows;
            return Cardinality::clamped(
                c.min.saturating_sub(excess),
                c.expected as f64,
                c.max.min(self.rows),
            );
        }
        Cardinality::clamped(
            c.min,
            c.expected as f64 + uncovered as f64 * UNINDEXED_SELECTIVITY,
            (c.max + uncovered).min(self.rows),
        )
    }

    fn min_should(&self, m: &MinShould) -> Cardinality {
        let (k, n, rows) = (m.min_count, m.conditions.len(), self.rows);
        if k == 0 {
            return Cardinality::exact(rows);
        }
        if k > n || rows == 0 {
            return Cardinality::exact(0);
        }
        let parts: Vec<Cardinality> = m.conditions.iter().map(|c| self.condition(c)).collect();
        // Each passing row is counted by at least k conditions.
        let max = (parts.iter().map(|c| c.max).sum::<u64>() / k as u64).min(rows);
        // P(at least k of n independent events), by dynamic programming over counts.
        let mut p = vec![0.0f64; n + 1];
        if let Some(first) = p.first_mut() {
            *first = 1.0;
        }
        for c in &parts {
            let q = c.expected as f64 / rows as f64;
            for j in (1..=n).rev() {
                let below = p.get(j - 1).copied().unwrap_or(0.0);
                if let Some(here) = p.get_mut(j) {
                    *here = *here * (1.0 - q) + below * q;
                }
            }
            if let Some(first) = p.first_mut() {
                *first *= 1.0 - q;
            }
        }
        let share: f64 = p.iter().skip(k).sum();
        Cardinality::clamped(0, share * rows as f64, max)
    }
}
