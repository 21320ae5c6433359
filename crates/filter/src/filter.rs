//! The typed filter: what [`Filter::from_json`] produces and [`Filter::to_json`] writes
//! back. Evaluation against one payload is in `check.rs`, against indexes in `plan/`.

use std::collections::BTreeSet;

use quiver_types::PointId;
use serde_json::{Map, Number, Value, json};

use crate::key::KeyPath;

/// A payload filter in Qdrant's shape. A point matches when
/// - every `must` condition matches,
/// - at least one `should` condition matches (skipped when `should` is empty),
/// - no `must_not` condition matches,
/// - and at least `min_count` of `min_should`'s conditions match (when present).
///
/// `Filter::default()` (the JSON `{}`) matches every point.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    pub must: Vec<Condition>,
    pub should: Vec<Condition>,
    pub must_not: Vec<Condition>,
    pub min_should: Option<MinShould>,
}

/// "At least `min_count` of `conditions`" (Qdrant's `min_should`). `min_count` 0 always holds.
#[derive(Debug, Clone, PartialEq)]
pub struct MinShould {
    pub conditions: Vec<Condition>,
    pub min_count: usize,
}

/// One clause of a [`Filter`].
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// A test on the values a key selects (`{"key": ..., "match" | "range": ...}`).
    Field(FieldCondition),
    /// The key selects nothing, or only `null`s and empty arrays.
    IsEmpty(KeyPath),
    /// The key selects at least one `null` (an array holding `null` is not `null`).
    IsNull(KeyPath),
    /// The point's id is one of these.
    HasId(BTreeSet<PointId>),
    /// A nested filter, evaluated as a whole.
    Filter(Box<Filter>),
}

/// A test on the values `key` selects. It holds when *some* selected value passes the test;
/// a selected array passes when one of its elements does (arrays inside it are not looked
/// into). A key selecting nothing fails every test, `except` included.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldCondition {
    pub key: KeyPath,
    pub test: FieldTest,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldTest {
    Match(Match),
    Range(Range),
}

/// Equality tests. Integers compare with JSON numbers that are integers within `i64`
/// (`3.0` and `2^63` are not integers here); keywords with strings; booleans with booleans.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// The value equals this one.
    Value(Scalar),
    /// The value equals one of these.
    Any(ScalarList),
    /// The value is not `null` and is not one of these. Values of another type pass
    /// (`5` passes `except: ["a"]`, and so do booleans, objects and nested arrays).
    Except(ScalarList),
}

/// A value to match: `{"value": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    Keyword(String),
    Integer(i64),
    Bool(bool),
}

/// A list to match against: `{"any": [...]}` or `{"except": [...]}`; one type per list
/// (order and repeats do not matter). An empty JSON list becomes an empty `Keywords`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScalarList {
    Keywords(BTreeSet<String>),
    Integers(BTreeSet<i64>),
}

/// A numeric range; absent bounds are unbounded, all present bounds must hold. Any JSON
/// number is compared as `f64`; non-numbers never pass.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Range {
    pub gt: Option<f64>,
    pub gte: Option<f64>,
    pub lt: Option<f64>,
    pub lte: Option<f64>,
}

impl Range {
    /// Whether `x` lies in the range.
    pub fn contains(&self, x: f64) -> bool {
        self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
    }

    /// Whether `x` fails the lower bounds; over ascending values this holds for a prefix.
    pub(crate) fn below(&self, x: f64) -> bool {
        self.gt.is_some_and(|b| x <= b) || self.gte.is_some_and(|b| x < b)
    }

    /// Whether `x` passes the upper bounds; over ascending values this holds for a prefix.
    pub(crate) fn not_above(&self, x: f64) -> bool {
        self.lt.is_none_or(|b| x < b) && self.lte.is_none_or(|b| x <= b)
    }
}

impl ScalarList {
    pub fn len(&self) -> usize {
        match self {
            ScalarList::Keywords(v) => v.len(),
            ScalarList::Integers(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn contains_keyword(&self, s: &str) -> bool {
        match self {
            ScalarList::Keywords(v) => v.contains(s),
            ScalarList::Integers(_) => false,
        }
    }

    pub(crate) fn contains_integer(&self, n: i64) -> bool {
        match self {
            ScalarList::Keywords(_) => false,
            ScalarList::Integers(v) => v.contains(&n),
        }
    }
}

impl Filter {
    /// Whether the filter has no clauses (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.must.is_empty()
            && self.should.is_empty()
            && self.must_not.is_empty()
            && self.min_should.is_none()
    }

    /// The filter as Qdrant-style JSON; [`Filter::from_json`] reads it back to an equal filter.
    /// Empty clause lists are left out. A non-finite range bound (only constructible in
    /// code) is written as `null`, which reads back as absent.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        let lists = [
            ("must", &self.must),
            ("should", &self.should),
            ("must_not", &self.must_not),
        ];
        for (name, list) in lists {
            if !list.is_empty() {
                out.insert(name.into(), conditions_json(list));
            }
        }
        if let Some(m) = &self.min_should {
            out.insert(
                "min_should".into(),
                json!({"conditions": conditions_json(&m.conditions), "min_count": m.min_count}),
            );
        }
        Value::Object(out)
    }
}

fn conditions_json(list: &[Condition]) -> Value {
    Value::Array(list.iter().map(Condition::to_json).collect())
}

impl Condition {
    pub fn to_json(&self) -> Value {
        match self {
            Condition::Field(c) => {
                let test = match &c.test {
                    FieldTest::Match(Match::Value(v)) => json!({"match": {"value": v.to_json()}}),
                    FieldTest::Match(Match::Any(l)) => json!({"match": {"any": l.to_json()}}),
                    FieldTest::Match(Match::Except(l)) => {
                        json!({"match": {"except": l.to_json()}})
                    }
                    FieldTest::Range(r) => json!({"range": r.to_json()}),
                };
                let mut obj = Map::new();
                obj.insert("key".into(), Value::String(c.key.to_string()));
                if let Value::Object(test) = test {
                    obj.extend(test);
                }
                Value::Object(obj)
            }
            Condition::IsEmpty(key) => json!({"is_empty": {"key": key.as_str()}}),
            Condition::IsNull(key) => json!({"is_null": {"key": key.as_str()}}),
            Condition::HasId(ids) => {
                json!({"has_id": ids.iter().map(PointId::to_json).collect::<Vec<_>>()})
            }
            Condition::Filter(f) => f.to_json(),
        }
    }
}

impl Scalar {
    pub fn to_json(&self) -> Value {
        match self {
            Scalar::Keyword(s) => Value::String(s.clone()),
            Scalar::Integer(n) => Value::from(*n),
            Scalar::Bool(b) => Value::Bool(*b),
        }
    }
}

impl ScalarList {
    pub fn to_json(&self) -> Value {
        match self {
            ScalarList::Keywords(v) => v.iter().map(|s| Value::from(s.as_str())).collect(),
            ScalarList::Integers(v) => v.iter().map(|&n| Value::from(n)).collect(),
        }
    }
}

impl Range {
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        let bounds = [
            ("gt", self.gt),
            ("gte", self.gte),
            ("lt", self.lt),
            ("lte", self.lte),
        ];
        for (name, bound) in bounds {
            if let Some(b) = bound {
                out.insert(name.into(), number(b));
            }
        }
        Value::Object(out)
    }
}

/// A bound as JSON: integers (within ±2^53) as integers, other finite values as floats.
fn number(x: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if x.fract() == 0.0 && x.abs() <= EXACT {
        // Integral and within ±2^53, so the conversion is exact.
        return Value::from(x as i64);
    }
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}
