//! The reference semantics: a filter against one point's id and payload. Index-based
//! evaluation (`plan/`) is tested to agree with this on every row.

use quiver_types::PointId;
use serde_json::{Map, Value};

use crate::filter::{Condition, FieldTest, Filter, Match, MinShould, Range, Scalar, ScalarList};

impl Filter {
    /// Whether the point `id` with `payload` passes the filter. A point without a payload
    /// is checked with an empty map.
    pub fn matches(&self, id: PointId, payload: &Map<String, Value>) -> bool {
        let one = |c: &Condition| c.matches(id, payload);
        (self.should.is_empty() || self.should.iter().any(one))
            && self.must.iter().all(one)
            && !self.must_not.iter().any(one)
            && self
                .min_should
                .as_ref()
                .is_none_or(|m| m.matches(id, payload))
    }
}

impl MinShould {
    fn matches(&self, id: PointId, payload: &Map<String, Value>) -> bool {
        self.conditions
            .iter()
            .filter(|c| c.matches(id, payload))
            .take(self.min_count)
            .count()
            == self.min_count
    }
}

impl Condition {
    /// Whether the point passes this one condition.
    pub fn matches(&self, id: PointId, payload: &Map<String, Value>) -> bool {
        match self {
            Condition::Field(c) => c.key.any_value(payload, &mut |v| match v {
                Value::Array(items) => items.iter().any(|x| c.test.passes(x)),
                x => c.test.passes(x),
            }),
            Condition::IsEmpty(key) => !key.any_value(payload, &mut |v| !is_empty_value(v)),
            Condition::IsNull(key) => key.any_value(payload, &mut Value::is_null),
            Condition::HasId(ids) => ids.contains(&id),
            Condition::Filter(f) => f.matches(id, payload),
        }
    }
}

/// `null` or `[]`: what `is_empty` accepts for each selected value.
pub(crate) fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

impl FieldTest {
    /// Whether one value (a selected value, or an element of a selected array) passes.
    pub(crate) fn passes(&self, x: &Value) -> bool {
        match self {
            FieldTest::Match(m) => m.passes(x),
            FieldTest::Range(r) => r.passes(x),
        }
    }
}

impl Match {
    fn passes(&self, x: &Value) -> bool {
        match (self, x) {
            (Match::Value(Scalar::Keyword(k)), Value::String(s)) => k == s,
            (Match::Value(Scalar::Integer(n)), Value::Number(v)) => v.as_i64() == Some(*n),
            (Match::Value(Scalar::Bool(b)), Value::Bool(v)) => b == v,
            (Match::Value(_), _) => false,
            (Match::Any(list), Value::String(s)) => list.contains_keyword(s),
            (Match::Any(list), Value::Number(v)) => {
                v.as_i64().is_some_and(|n| list.contains_integer(n))
            }
            (Match::Any(_), _) => false,
            (Match::Except(_), Value::Null) => false,
            (Match::Except(list @ ScalarList::Keywords(_)), Value::String(s)) => {
                !list.contains_keyword(s)
            }
            (Match::Except(list @ ScalarList::Integers(_)), Value::Number(v)) => {
                v.as_i64().is_none_or(|n| !list.contains_integer(n))
            }
            (Match::Except(_), _) => true,
        }
    }
}

impl Range {
    fn passes(&self, x: &Value) -> bool {
        x.as_f64().is_some_and(|v| self.contains(v))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::parse;

    fn check(filter: serde_json::Value, payload: serde_json::Value) -> bool {
        let f = parse::from_json(&filter).unwrap();
        let serde_json::Value::Object(p) = payload else {
            panic!("payload must be an object")
        };
        f.matches(7.into(), &p)
    }

    #[test]
    fn qdrant_examples() {
        let p = json!({
            "price": 499.90, "amount": 10, "rating": [3, 7, 9, 9], "color": "red",
            "has_delivery": true, "parts": [], "packaging": null, "not_null": [null],
            "meta": {"lang": "en", "tags": ["a", "b"]}, "list": [{"x": 1}, {"x": null}]
        });
        let must = |c: serde_json::Value| json!({"must": [c]});
        // is_empty: missing, null or [].
        assert!(!check(
            must(json!({"is_empty": {"key": "price"}})),
            p.clone()
        ));
        assert!(check(
            must(json!({"is_empty": {"key": "nothing"}})),
            p.clone()
        ));
        assert!(check(
            must(json!({"is_empty": {"key": "parts"}})),
            p.clone()
        ));
        assert!(check(
            must(json!({"is_empty": {"key": "packaging"}})),
            p.clone()
        ));
        assert!(!check(
            must(json!({"is_empty": {"key": "not_null"}})),
            p.clone()
        ));
        // is_null: some selected value is null.
        assert!(!check(
            must(json!({"is_null": {"key": "amount"}})),
            p.clone()
        ));
        assert!(!check(
            must(json!({"is_null": {"key": "parts"}})),
            p.clone()
        ));
        assert!(!check(
            must(json!({"is_null": {"key": "nothing"}})),
            p.clone()
        ));
        assert!(check(
            must(json!({"is_null": {"key": "packaging"}})),
            p.clone()
        ));
        assert!(!check(
            must(json!({"is_null": {"key": "not_null"}})),
            p.clone()
        ));
        assert!(check(
            must(json!({"is_null": {"key": "list[].x"}})),
            p.clone()
        ));
        // match on arrays: any element.
        let m = |k: &str, m: serde_json::Value| must(json!({"key": k, "match": m}));
        assert!(check(m("rating", json!({"value": 9})), p.clone()));
        assert!(!check(m("rating", json!({"value": 4})), p.clone()));
        assert!(check(m("meta.tags", json!({"any": ["b", "z"]})), p.clone()));
        assert!(check(m("meta.lang", json!({"value": "en"})), p.clone()));
        assert!(!check(m("amount", json!({"value": "10"})), p.clone()));
        assert!(!check(m("price", json!({"value": 499})), p.clone()));
        // except: null and missing fail; other types pass.
        assert!(check(m("color", json!({"except": ["blue"]})), p.clone()));
        assert!(!check(m("color", json!({"except": ["red"]})), p.clone()));
        assert!(check(m("amount", json!({"except": ["red"]})), p.clone()));
        assert!(!check(
            m("packaging", json!({"except": ["red"]})),
            p.clone()
        ));
        assert!(!check(m("nothing", json!({"except": ["red"]})), p.clone()));
        assert!(!check(m("parts", json!({"except": [1]})), p.clone()));
        assert!(check(m("rating", json!({"except": [3, 7]})), p.clone()));
        assert!(!check(m("rating", json!({"except": [3, 7, 9]})), p.clone()));
        // range: any number, ints and floats alike.
        let r = |k: &str, r: serde_json::Value| must(json!({"key": k, "range": r}));
        assert!(check(r("price", json!({"gt": 400, "lt": 500})), p.clone()));
        assert!(check(r("rating", json!({"gte": 8})), p.clone()));
        assert!(!check(r("rating", json!({"gt": 9})), p.clone()));
        assert!(!check(r("color", json!({})), p.clone()));
        assert!(check(r("amount", json!({})), p.clone()));
        // has_id and the empty filter.
        assert!(check(must(json!({"has_id": [1, 7]})), p.clone()));
        assert!(!check(must(json!({"has_id": [1]})), p.clone()));
        assert!(check(json!({}), p.clone()));
        assert!(check(json!({"should": []}), p.clone()));
        assert!(!check(json!({"should": [{"has_id": [1]}]}), p.clone()));
        assert!(check(json!({"must_not": [{"has_id": [1]}]}), p.clone()));
    }

    #[test]
    fn min_should_counts() {
        let p = json!({"a": 1, "b": 2});
        let f = |n: usize| {
            json!({"min_should": {"conditions": [
                {"key": "a", "match": {"value": 1}},
                {"key": "b", "match": {"value": 2}},
                {"key": "c", "match": {"value": 3}}
            ], "min_count": n}})
        };
        assert!(check(f(0), p.clone()));
        assert!(check(f(2), p.clone()));
        assert!(!check(f(3), p.clone()));
        assert!(!check(f(4), p));
    }
}
