//! A readable account of how each condition of a filter is answered on a segment, so that
//! search can say when a field is not indexed.

use std::fmt;

use super::estimate::{Cardinality, Estimator};
use crate::filter::{Condition, Filter};
use crate::index::{FieldIndex, FieldIndexes, IndexKind, Inside, Outside};

/// How a filter's conditions are answered on one segment; `Display` gives e.g.
/// `lexname: keyword index (341 rows); gloss_words: not indexed, checked per point`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// One step per leaf condition, in the filter's order (nested filters flattened).
    pub steps: Vec<Step>,
    /// The whole filter's estimate ([`super::estimate`]).
    pub estimate: Cardinality,
}

/// One leaf condition: the key it tests (`has_id` for id conditions) and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub subject: String,
    pub access: Access,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// Answered from an index; `complete` is false when some rows (values of another type,
    /// rows the index does not cover) are still checked per point.
    Index {
        kind: IndexKind,
        rows: Cardinality,
        complete: bool,
    },
    /// No index on the key: every candidate row is checked per point.
    NotIndexed,
    /// A `has_id` condition with this many ids, answered from the segment's ids.
    Ids { count: usize },
}

impl Plan {
    /// Whether every condition is answered by an index alone (`has_id` counts as such).
    pub fn fully_indexed(&self) -> bool {
        self.steps.iter().all(|s| match s.access {
            Access::Index { complete, .. } => complete,
            Access::NotIndexed => false,
            Access::Ids { .. } => true,
        })
    }

    /// The keys of conditions that have no index, each once, in order.
    pub fn unindexed_keys(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.steps {
            if s.access == Access::NotIndexed && !out.contains(&s.subject.as_str()) {
                out.push(&s.subject);
            }
        }
        out
    }
}

/// Describes how each condition of `filter` is answered with `indexes` on `rows` rows.
pub fn describe(filter: &Filter, indexes: &FieldIndexes, rows: u32) -> Plan {
    let est = Estimator {
        indexes,
        rows: u64::from(rows),
    };
    let mut steps = Vec::new();
    walk(filter, &est, &mut steps);
    Plan {
        steps,
        estimate: est.filter(filter),
    }
}

fn walk(f: &Filter, est: &Estimator<'_>, steps: &mut Vec<Step>) {
    let min_should = f.min_should.iter().flat_map(|m| m.conditions.iter());
    for c in f
        .must
        .iter()
        .chain(&f.should)
        .chain(&f.must_not)
        .chain(min_should)
    {
        let (subject, index) = match c {
            Condition::Filter(inner) => {
                walk(inner, est, steps);
                continue;
            }
            Condition::HasId(ids) => {
                steps.push(Step {
                    subject: "has_id".into(),
                    access: Access::Ids { count: ids.len() },
                });
                continue;
            }
            Condition::Field(fc) => (&fc.key, est.indexes.get(fc.key.as_str())),
            Condition::IsEmpty(key) | Condition::IsNull(key) => {
                (key, est.indexes.get(key.as_str()))
            }
        };
        let access = match index {
            None => Access::NotIndexed,
            Some(index) => Access::Index {
                kind: index.kind(),
                rows: est.condition(c),
                complete: complete(index, c, est.rows),
            },
        };
        steps.push(Step {
            subject: subject.to_string(),
            access,
        });
    }
}

/// Whether the index alone decides `c` on every row of the segment.
fn complete(index: &FieldIndex, c: &Condition, rows: u64) -> bool {
    if u64::from(index.rows()) < rows {
        return false;
    }
    let Condition::Field(fc) = c else {
        return true;
    };
    let answer = index.answer(&fc.test);
    (answer.inside != Inside::Unknown || index.indexed_rows().is_empty())
        && (answer.outside != Outside::Unknown || index.other().is_empty())
}

impl fmt::Display for Cardinality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_exact() {
            write!(f, "{} rows", self.min)
        } else {
            write!(f, "{}..{} rows, ~{}", self.min, self.max, self.expected)
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = &self.subject;
        match &self.access {
            Access::Index {
                kind,
                rows,
                complete: true,
            } => write!(f, "{subject}: {kind} index ({rows})"),
            Access::Index { kind, rows, .. } => write!(
                f,
                "{subject}: {kind} index ({rows}), some rows checked per point"
            ),
            Access::NotIndexed => write!(f, "{subject}: not indexed, checked per point"),
            Access::Ids { count: 1 } => write!(f, "has_id: 1 id"),
            Access::Ids { count } => write!(f, "has_id: {count} ids"),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            return f.write_str("no conditions");
        }
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{step}")?;
        }
        Ok(())
    }
}
