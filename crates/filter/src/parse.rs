//! JSON → [`Filter`]: every member is checked, unknown ones rejected, and each error says
//! where it is (`must[1].range.gte`) and what was expected. Never panics.

use std::collections::BTreeSet;
use std::str::FromStr;

use quiver_types::PointId;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::filter::{
    Condition, FieldCondition, FieldTest, Filter, Match, MinShould, Range, Scalar, ScalarList,
};
use crate::key::KeyPath;

/// Filters nested deeper than this are rejected, which bounds the recursion of parsing and
/// of every evaluation.
pub const MAX_DEPTH: usize = 32;

impl Filter {
    /// Reads a filter from its JSON text.
    pub fn parse(text: &str) -> Result<Filter> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            let full = e.to_string();
            let message = match full.rsplit_once(" at line ") {
                Some((message, _)) if e.line() > 0 => message.to_string(),
                _ => full,
            };
            Error::Json {
                line: e.line(),
                column: e.column(),
                message,
            }
        })?;
        Filter::from_json(&value)
    }

    /// Reads a filter from a JSON value.
    pub fn from_json(value: &Value) -> Result<Filter> {
        from_json(value)
    }
}

impl FromStr for Filter {
    type Err = Error;
    fn from_str(text: &str) -> Result<Filter> {
        Filter::parse(text)
    }
}

pub(crate) fn from_json(value: &Value) -> Result<Filter> {
    filter(value, &At::ROOT, 0)
}

/// Where in the filter JSON we are: a linked list up to the root, rendered only for errors.
struct At<'a> {
    parent: Option<&'a At<'a>>,
    step: PathStep<'a>,
}

enum PathStep<'a> {
    Root,
    Member(&'a str),
    Element(usize),
}

impl<'a> At<'a> {
    const ROOT: At<'static> = At {
        parent: None,
        step: PathStep::Root,
    };

    fn member(&'a self, name: &'a str) -> At<'a> {
        At {
            parent: Some(self),
            step: PathStep::Member(name),
        }
    }

    fn element(&'a self, i: usize) -> At<'a> {
        At {
            parent: Some(self),
            step: PathStep::Element(i),
        }
    }

    fn render(&self) -> String {
        let mut steps = Vec::new();
        let mut at = Some(self);
        while let Some(here) = at {
            steps.push(&here.step);
            at = here.parent;
        }
        let mut out = String::new();
        for step in steps.into_iter().rev() {
            match step {
                PathStep::Root => {}
                PathStep::Member(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                PathStep::Element(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        if out.is_empty() {
            out.push_str("filter");
        }
        out
    }

    fn wrong_type(&self, expected: &str, got: &Value) -> Error {
        Error::WrongType {
            path: self.render(),
            expected: expected.to_string(),
            got: describe(got),
        }
    }

    fn unknown(&self, key: &str, expected: &'static str) -> Error {
        Error::UnknownKey {
            path: self.render(),
            key: key.to_string(),
            expected,
        }
    }

    fn invalid(&self, message: impl Into<String>) -> Error {
        Error::Invalid {
            path: self.render(),
            message: message.into(),
        }
    }

    fn unsupported(&self, feature: impl Into<String>) -> Error {
        Error::Unsupported {
            path: self.render(),
            feature: feature.into(),
        }
    }
}

/// A value as it appears in an error: scalars as JSON (strings cut at 40 characters).
fn describe(v: &Value) -> String {
    match v {
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
        Value::String(s) if s.chars().count() > 40 => {
            let cut: String = s.chars().take(40).collect();
            format!("{}...", Value::String(cut))
        }
        v => v.to_string(),
    }
}

fn object<'v>(v: &'v Value, at: &At<'_>, expected: &str) -> Result<&'v Map<String, Value>> {
    v.as_object().ok_or_else(|| at.wrong_type(expected, v))
}

const FILTER_KEYS: &str = "must, should, must_not or min_should";
const CONDITION_KEYS: &str = "key, is_empty, is_null, has_id, must, should, must_not or min_should";

fn is_filter_key(k: &str) -> bool {
    matches!(k, "must" | "should" | "must_not" | "min_should")
}

fn filter(v: &Value, at: &At<'_>, depth: usize) -> Result<Filter> {
    let obj = object(v, at, "a filter object")?;
    if depth > MAX_DEPTH {
        return Err(at.invalid(format!("filters nest more than {MAX_DEPTH} levels deep")));
    }
    let mut f = Filter::default();
    for (k, val) in obj {
        let here = at.member(k);
        match k.as_str() {
            "must" => f.must = conditions(val, &here, depth)?,
            "should" => f.should = conditions(val, &here, depth)?,
            "must_not" => f.must_not = conditions(val, &here, depth)?,
            "min_should" => f.min_should = min_should(val, &here, depth)?,
            _ => return Err(at.unknown(k, FILTER_KEYS)),
        }
    }
    Ok(f)
}

/// A list of conditions; like Qdrant, a single condition object or `null` are accepted too.
fn conditions(v: &Value, at: &At<'_>, depth: usize) -> Result<Vec<Condition>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, c)| condition(c, &at.element(i), depth))
            .collect(),
        Value::Object(_) => Ok(vec![condition(v, at, depth)?]),
        _ => Err(at.wrong_type("an array of conditions", v)),
    }
}

fn min_should(v: &Value, at: &At<'_>, depth: usize) -> Result<Option<MinShould>> {
    if v.is_null() {
        return Ok(None);
    }
    let obj = object(v, at, "an object with conditions and min_count")?;
    let (mut list, mut min_count) = (None, None);
    for (k, val) in obj {
        let here = at.member(k);
        match k.as_str() {
            "conditions" => list = Some(conditions(val, &here, depth)?),
            "min_count" => {
                let n = val
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| here.wrong_type("a non-negative integer", val))?;
                min_count = Some(n);
            }
            _ => return Err(at.unknown(k, "conditions or min_count")),
        }
    }
    let conditions = list.ok_or_else(|| at.invalid("missing \"conditions\""))?;
    let min_count = min_count.ok_or_else(|| at.invalid("missing \"min_count\""))?;
    Ok(Some(MinShould {
        conditions,
        min_count,
    }))
}

fn condition(v: &Value, at: &At<'_>, depth: usize) -> Result<Condition> {
    let obj = object(v, at, "a condition object")?;
    if obj.contains_key("key") {
        return field(obj, at).map(Condition::Field);
    }
    for name in ["is_empty", "is_null", "has_id"] {
        let Some(inner) = obj.get(name) else {
            continue;
        };
        if let Some(extra) = obj.keys().find(|k| *k != name) {
            return Err(at.unknown(extra, "nothing else beside is_empty, is_null or has_id"));
        }
        let here = at.member(name);
        return match name {
            "is_empty" => key_object(inner, &here).map(Condition::IsEmpty),
            "is_null" => key_object(inner, &here).map(Condition::IsNull),
            _ => has_id(inner, &here).map(Condition::HasId),
        };
    }
    for name in ["nested", "has_vector"] {
        if obj.contains_key(name) {
            return Err(at
                .member(name)
                .unsupported(format!("the \"{name}\" condition")));
        }
    }
    match obj.keys().find(|k| !is_filter_key(k)) {
        None => filter(v, at, depth + 1).map(|f| Condition::Filter(Box::new(f))),
        Some(k) if matches!(k.as_str(), "match" | "range") => {
            Err(at.invalid(format!("a \"{k}\" condition needs a \"key\"")))
        }
        Some(k) => Err(at.unknown(k, CONDITION_KEYS)),
    }
}

fn field(obj: &Map<String, Value>, at: &At<'_>) -> Result<FieldCondition> {
    let (mut key, mut test) = (None, None);
    for (k, val) in obj {
        let here = at.member(k);
        let t = match k.as_str() {
            "key" => {
                key = Some(key_path(val, &here)?);
                continue;
            }
            "match" => FieldTest::Match(match_(val, &here)?),
            "range" => FieldTest::Range(range(val, &here)?),
            "geo_radius" | "geo_bounding_box" | "geo_polygon" | "values_count"
            | "datetime_range" => return Err(here.unsupported(format!("\"{k}\""))),
            _ => return Err(at.unknown(k, "key, match or range")),
        };
        if test.replace(t).is_some() {
            return Err(at.invalid(
                "a field condition takes one of \"match\" and \"range\"; use two conditions",
            ));
        }
    }
    let test = test.ok_or_else(|| at.invalid("a field condition needs \"match\" or \"range\""))?;
    let key = key.ok_or_else(|| at.invalid("missing \"key\""))?;
    Ok(FieldCondition { key, test })
}

fn key_path(v: &Value, at: &At<'_>) -> Result<KeyPath> {
    let s = v.as_str().ok_or_else(|| at.wrong_type("a key string", v))?;
    KeyPath::parse(s).map_err(|e| match e {
        Error::InvalidKey { key, reason, .. } => Error::InvalidKey {
            path: Some(at.render()),
            key,
            reason,
        },
        other => other,
    })
}

/// `{"key": "..."}`, the argument of `is_empty` and `is_null`.
fn key_object(v: &Value, at: &At<'_>) -> Result<KeyPath> {
    let obj = object(v, at, "an object with a \"key\"")?;
    if let Some(extra) = obj.keys().find(|k| *k != "key") {
        return Err(at.unknown(extra, "key"));
    }
    let key = obj
        .get("key")
        .ok_or_else(|| at.invalid("missing \"key\""))?;
    key_path(key, &at.member("key"))
}

fn has_id(v: &Value, at: &At<'_>) -> Result<BTreeSet<PointId>> {
    let items = v
        .as_array()
        .ok_or_else(|| at.wrong_type("an array of point ids", v))?;
    items
        .iter()
        .enumerate()
        .map(|(i, id)| {
            PointId::from_json(id).ok_or_else(|| {
                at.element(i)
                    .wrong_type("a point id (a non-negative integer or a UUID string)", id)
            })
        })
        .collect()
}

fn match_(v: &Value, at: &At<'_>) -> Result<Match> {
    let obj = object(v, at, "an object with value, any or except")?;
    let mut found = None;
    for (k, val) in obj {
        let here = at.member(k);
        let m = match k.as_str() {
            "value" => Match::Value(scalar(val, &here)?),
            "any" => Match::Any(list(val, &here)?),
            "except" => Match::Except(list(val, &here)?),
            "text" | "phrase" | "text_any" => {
                return Err(here.unsupported(format!("full-text match (\"{k}\")")));
            }
            _ => return Err(at.unknown(k, "value, any or except")),
        };
        if found.replace(m).is_some() {
            return Err(at.invalid("takes exactly one of value, any and except"));
        }
    }
    found.ok_or_else(|| at.invalid("needs one of value, any or except"))
}

fn scalar(v: &Value, at: &At<'_>) -> Result<Scalar> {
    match v {
        Value::String(s) => Ok(Scalar::Keyword(s.clone())),
        Value::Bool(b) => Ok(Scalar::Bool(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(Scalar::Integer(i)),
            None if n.is_u64() => Err(at.wrong_type("an integer within 64 signed bits", v)),
            None => Err(at.wrong_type(
                "a string, an integer or a boolean (use \"range\" for floats)",
                v,
            )),
        },
        _ => Err(at.wrong_type("a string, an integer or a boolean", v)),
    }
}

fn list(v: &Value, at: &At<'_>) -> Result<ScalarList> {
    let items = v
        .as_array()
        .ok_or_else(|| at.wrong_type("an array of strings or of integers", v))?;
    let Some(first) = items.first() else {
        return Ok(ScalarList::Keywords(BTreeSet::new()));
    };
    if first.is_string() {
        let strings = typed_items(items, at, Value::as_str, "a string, like the first value")?;
        Ok(ScalarList::Keywords(
            strings.into_iter().map(str::to_string).collect(),
        ))
    } else if first.is_i64() {
        let integers = typed_items(items, at, Value::as_i64, "an integer, like the first value")?;
        Ok(ScalarList::Integers(integers.into_iter().collect()))
    } else {
        Err(at.element(0).wrong_type("a string or an integer", first))
    }
}

fn typed_items<'v, T>(
    items: &'v [Value],
    at: &At<'_>,
    get: impl Fn(&'v Value) -> Option<T>,
    expected: &str,
) -> Result<Vec<T>> {
    items
        .iter()
        .enumerate()
        .map(|(i, x)| get(x).ok_or_else(|| at.element(i).wrong_type(expected, x)))
        .collect()
}

fn range(v: &Value, at: &At<'_>) -> Result<Range> {
    let obj = object(v, at, "an object with gt, gte, lt or lte")?;
    let mut r = Range::default();
    for (k, val) in obj {
        let here = at.member(k);
        let slot = match k.as_str() {
            "gt" => &mut r.gt,
            "gte" => &mut r.gte,
            "lt" => &mut r.lt,
            "lte" => &mut r.lte,
            _ => return Err(at.unknown(k, "gt, gte, lt or lte")),
        };
        *slot = match val {
            Value::Null => None,
            Value::Number(n) => n.as_f64(),
            _ => return Err(here.wrong_type("a number", val)),
        };
    }
    Ok(r)
}
