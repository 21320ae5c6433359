//! Parsing: the exact error messages for malformed filters, accepted forms, and arbitrary
//! JSON or text never panics.

use proptest::prelude::*;
use quiver_filter::{Condition, Error, FieldTest, Filter, Match, Range, Scalar, ScalarList};
use serde_json::{Value, json};

fn error(filter: Value) -> String {
    match Filter::from_json(&filter) {
        Ok(f) => panic!("{filter} parsed as {f:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn error_messages_say_what_and_where() {
    let cases = [
        (
            json!({"must": [{"key": "a", "match": {"value": 1}}, {"key": "b", "range": {"gte": "x"}}]}),
            r#"must[1].range.gte: expected a number, got "x""#,
        ),
        (json!(5), "filter: expected a filter object, got 5"),
        (
            json!({"musts": []}),
            r#"filter: unknown key "musts" (expected must, should, must_not or min_should)"#,
        ),
        (
            json!({"must": 3}),
            "must: expected an array of conditions, got 3",
        ),
        (
            json!({"must": ["a"]}),
            r#"must[0]: expected a condition object, got "a""#,
        ),
        (
            json!({"must": [{"key": "a", "match": {"value": 1}, "extra": 1}]}),
            r#"must[0]: unknown key "extra" (expected key, match or range)"#,
        ),
        (
            json!({"must": [{"key": "a"}]}),
            r#"must[0]: a field condition needs "match" or "range""#,
        ),
        (
            json!({"must": [{"key": "a", "match": {"value": 1}, "range": {"gt": 1}}]}),
            r#"must[0]: a field condition takes one of "match" and "range"; use two conditions"#,
        ),
        (
            json!({"must": [{"match": {"value": 1}}]}),
            r#"must[0]: a "match" condition needs a "key""#,
        ),
        (
            json!({"must": [{"key": 5, "match": {"value": 1}}]}),
            "must[0].key: expected a key string, got 5",
        ),
        (
            json!({"must": [{"key": "a..b", "match": {"value": 1}}]}),
            r#"must[0].key: invalid key "a..b": empty name in part 2"#,
        ),
        (
            json!({"should": [{"key": "a", "match": {"value": 1.5}}]}),
            r#"should[0].match.value: expected a string, an integer or a boolean (use "range" for floats), got 1.5"#,
        ),
        (
            json!({"should": [{"key": "a", "match": {"value": [1]}}]}),
            "should[0].match.value: expected a string, an integer or a boolean, got an array",
        ),
        (
            json!({"should": [{"key": "a", "match": {"value": 18446744073709551615u64}}]}),
            "should[0].match.value: expected an integer within 64 signed bits, got 18446744073709551615",
        ),
        (
            json!({"must": [{"key": "a", "match": {"any": ["x", 1]}}]}),
            "must[0].match.any[1]: expected a string, like the first value, got 1",
        ),
        (
            json!({"must": [{"key": "a", "match": {"except": [1, "x"]}}]}),
            r#"must[0].match.except[1]: expected an integer, like the first value, got "x""#,
        ),
        (
            json!({"must": [{"key": "a", "match": {"any": [true]}}]}),
            "must[0].match.any[0]: expected a string or an integer, got true",
        ),
        (
            json!({"must": [{"key": "a", "match": {"any": "x"}}]}),
            r#"must[0].match.any: expected an array of strings or of integers, got "x""#,
        ),
        (
            json!({"must": [{"key": "a", "match": {"value": 1, "any": [1]}}]}),
            "must[0].match: takes exactly one of value, any and except",
        ),
        (
            json!({"must": [{"key": "a", "match": {}}]}),
            "must[0].match: needs one of value, any or except",
        ),
        (
            json!({"must": [{"key": "a", "match": {"valeu": 1}}]}),
            r#"must[0].match: unknown key "valeu" (expected value, any or except)"#,
        ),
        (
            json!({"must": [{"key": "a", "match": {"text": "x"}}]}),
            r#"must[0].match.text: full-text match ("text") is not supported"#,
        ),
        (
            json!({"must": [{"key": "a", "range": {"gte": 1, "gtee": 2}}]}),
            r#"must[0].range: unknown key "gtee" (expected gt, gte, lt or lte)"#,
        ),
        (
            json!({"must": [{"key": "a", "range": {"lt": true}}]}),
            "must[0].range.lt: expected a number, got true",
        ),
        (
            json!({"must": [{"key": "a", "geo_radius": {}}]}),
            r#"must[0].geo_radius: "geo_radius" is not supported"#,
        ),
        (
            json!({"must": [{"nested": {"key": "a", "filter": {}}}]}),
            r#"must[0].nested: the "nested" condition is not supported"#,
        ),
        (
            json!({"must": [{"is_empty": {"key": "a"}, "x": 1}]}),
            r#"must[0]: unknown key "x" (expected nothing else beside is_empty, is_null or has_id)"#,
        ),
        (
            json!({"must": [{"is_null": {}}]}),
            r#"must[0].is_null: missing "key""#,
        ),
        (
            json!({"must": [{"is_null": "a"}]}),
            r#"must[0].is_null: expected an object with a "key", got "a""#,
        ),
        (
            json!({"must": [{"has_id": [1, -2]}]}),
            "must[0].has_id[1]: expected a point id (a non-negative integer or a UUID string), got -2",
        ),
        (
            json!({"must": [{"has_id": 1}]}),
            "must[0].has_id: expected an array of point ids, got 1",
        ),
        (
            json!({"must": [{"should": [{"must_not": [{"key": "a", "range": {"gt": "1"}}]}]}]}),
            r#"must[0].should[0].must_not[0].range.gt: expected a number, got "1""#,
        ),
        (
            json!({"must": [{"foo": 1}]}),
            r#"must[0]: unknown key "foo" (expected key, is_empty, is_null, has_id, must, should, must_not or min_should)"#,
        ),
        (
            json!({"min_should": {"conditions": []}}),
            r#"min_should: missing "min_count""#,
        ),
        (
            json!({"min_should": {"conditions": [], "min_count": -1}}),
            "min_should.min_count: expected a non-negative integer, got -1",
        ),
        (
            json!({"must": [{"key": "a", "match": {"value": "a very long string that goes on and on and on"}}], "x": 1}),
            r#"filter: unknown key "x" (expected must, should, must_not or min_should)"#,
        ),
        (
            json!({"must": [{"key": "a", "match": {"any": ["x", {"k": "a very long string that goes on and on and on"}]}}]}),
            "must[0].match.any[1]: expected a string, like the first value, got an object",
        ),
        (
            json!({"must": [{"key": "a", "range": {"gt": "a very long string that goes on and on and on"}}]}),
            r#"must[0].range.gt: expected a number, got "a very long string that goes on and on a"..."#,
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(error(filter.clone()), expected, "for {filter}");
    }
}

#[test]
fn error_variants_are_structured() {
    let e = Filter::from_json(&json!({"must": [{"key": "a", "range": {"gte": "x"}}]})).unwrap_err();
    assert_eq!(
        e,
        Error::WrongType {
            path: "must[0].range.gte".into(),
            expected: "a number".into(),
            got: "\"x\"".into()
        }
    );
    match Filter::parse("{\"must\": [}") {
        Err(Error::Json {
            line: 1, column, ..
        }) => assert_eq!(column, 11),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        Filter::parse("{\"must\": [}").unwrap_err().to_string(),
        "filter is not valid JSON (line 1, column 11): expected value"
    );
}

#[test]
fn too_deep_filters_are_rejected() {
    let mut f = json!({});
    for _ in 0..40 {
        f = json!({"must": [f]});
    }
    let e = error(f);
    assert!(e.ends_with("filters nest more than 32 levels deep"), "{e}");
}

#[test]
fn accepted_forms() {
    let f = Filter::parse(
        r#"{
        "must": {"key": "a", "match": {"any": ["y", "x", "y"]}},
        "should": null,
        "must_not": [{"key": "n", "range": {"gt": 1, "lte": 2.5, "lt": null}}, {}],
        "min_should": {"conditions": [{"has_id": [1, "550e8400-e29b-41d4-a716-446655440000"]}], "min_count": 1}
    }"#,
    )
    .unwrap();
    let Condition::Field(a) = &f.must[0] else {
        panic!("{f:?}")
    };
    assert_eq!(
        a.test,
        FieldTest::Match(Match::Any(ScalarList::Keywords(
            ["x".to_string(), "y".to_string()].into()
        )))
    );
    assert!(f.should.is_empty());
    let Condition::Field(n) = &f.must_not[0] else {
        panic!("{f:?}")
    };
    assert_eq!(
        n.test,
        FieldTest::Range(Range {
            gt: Some(1.0),
            lte: Some(2.5),
            ..Range::default()
        })
    );
    assert_eq!(f.must_not[1], Condition::Filter(Box::default()));
    let m = f.min_should.as_ref().unwrap();
    assert_eq!(m.min_count, 1);
    let Condition::HasId(ids) = &m.conditions[0] else {
        panic!("{f:?}")
    };
    assert_eq!(ids.len(), 2);
    assert_eq!(Filter::parse("{}").unwrap(), Filter::default());
    let v = Filter::parse(r#"{"must": [{"key": "b", "match": {"value": false}}]}"#).unwrap();
    let Condition::Field(b) = &v.must[0] else {
        panic!("{v:?}")
    };
    assert_eq!(b.test, FieldTest::Match(Match::Value(Scalar::Bool(false))));
    // `{}` round-trips, and so does an empty `any`.
    let e = Filter::parse(r#"{"must": [{"key": "a", "match": {"any": []}}]}"#).unwrap();
    assert_eq!(Filter::from_json(&e.to_json()).unwrap(), e);
}

/// JSON built from the filter language's own words, to reach deep into the parser.
fn filterish_json() -> impl Strategy<Value = Value> {
    let word = prop::sample::select(vec![
        "must",
        "should",
        "must_not",
        "min_should",
        "conditions",
        "min_count",
        "key",
        "match",
        "value",
        "any",
        "except",
        "range",
        "gt",
        "gte",
        "lt",
        "lte",
        "is_empty",
        "is_null",
        "has_id",
        "nested",
        "text",
        "a",
        "a.b",
        "a[]",
        "[",
        "",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        word.clone().prop_map(|w| Value::String(w.into())),
        ".*".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(word.clone().prop_map(String::from), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn parsing_arbitrary_json_never_panics(v in filterish_json()) {
        if let Ok(f) = Filter::from_json(&v) {
            // What parses, writes back to an equal filter.
            prop_assert_eq!(Filter::from_json(&f.to_json()).unwrap(), f);
        }
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(s in ".{0,200}") {
        let _ = Filter::parse(&s);
    }
}
