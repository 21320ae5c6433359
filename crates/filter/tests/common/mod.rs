//! Generators shared by the test binaries: payloads over a few keys with small value
//! domains (missing, null, arrays, nested arrays, objects, wrong types), and filters over
//! the same keys.

#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::collections::BTreeSet;

use proptest::collection::{btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use quiver_filter::{
    Condition, FieldCondition, FieldIndexes, FieldTest, Filter, IndexKind, KeyPath, Match,
    MinShould, PointId, Range, Scalar, ScalarList,
};
use serde_json::{Map, Value, json};

/// The keys filters test; `missing` is in no payload.
pub const KEYS: [&str; 6] = ["a", "b", "c", "o.x", "arr[].y", "missing"];

pub type Payload = Map<String, Value>;

fn scalar_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        prop::sample::select(vec!["x", "y", "z"]).prop_map(|s| json!(s)),
        (-1i64..3).prop_map(|n| json!(n)),
        prop::sample::select(vec![0.5, 1.5, 2.0f64]).prop_map(|f| json!(f)),
        any::<bool>().prop_map(|b| json!(b)),
    ]
}

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        5 => scalar_value(),
        3 => vec(scalar_value(), 0..4).prop_map(Value::Array),
        1 => vec(vec(scalar_value(), 0..3).prop_map(Value::Array), 0..3).prop_map(Value::Array),
        1 => scalar_value().prop_map(|v| json!({"x": v})),
    ]
}

/// A payload: each key present or not, with any kind of value.
pub fn payload() -> impl Strategy<Value = Payload> {
    (
        option::of(field_value()),
        option::of(field_value()),
        option::of(field_value()),
        option::of(prop_oneof![
            3 => field_value().prop_map(|v| json!({"x": v})),
            1 => field_value(),
        ]),
        option::of(vec(
            prop_oneof![
                3 => field_value().prop_map(|v| json!({"y": v})),
                1 => field_value(),
            ],
            0..3,
        )),
    )
        .prop_map(|(a, b, c, o, arr)| {
            let mut map = Map::new();
            let fields = [
                ("a", a),
                ("b", b),
                ("c", c),
                ("o", o),
                ("arr", arr.map(Value::Array)),
            ];
            for (k, v) in fields {
                if let Some(v) = v {
                    map.insert(k.into(), v);
                }
            }
            map
        })
}

pub fn index_kind() -> impl Strategy<Value = IndexKind> {
    prop::sample::select(vec![
        IndexKind::Keyword,
        IndexKind::Integer,
        IndexKind::Float,
        IndexKind::Bool,
    ])
}

/// Index declarations: for each key of [`KEYS`], maybe an index of some kind.
pub fn index_fields() -> impl Strategy<Value = Vec<(KeyPath, IndexKind)>> {
    vec(option::of(index_kind()), KEYS.len()).prop_map(|kinds| {
        KEYS.iter()
            .zip(kinds)
            .filter_map(|(k, kind)| kind.map(|kind| (KeyPath::parse(k).unwrap(), kind)))
            .collect()
    })
}

fn key() -> impl Strategy<Value = KeyPath> {
    prop::sample::select(KEYS.to_vec()).prop_map(|k| KeyPath::parse(k).unwrap())
}

fn scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        prop::sample::select(vec!["x", "y", "z", "w"]).prop_map(|s| Scalar::Keyword(s.into())),
        (-1i64..3).prop_map(Scalar::Integer),
        any::<bool>().prop_map(Scalar::Bool),
    ]
}

fn scalar_list() -> impl Strategy<Value = ScalarList> {
    prop_oneof![
        btree_set(prop::sample::select(vec!["x", "y", "z", "w"]), 0..4)
            .prop_map(|s| ScalarList::Keywords(s.into_iter().map(String::from).collect())),
        btree_set(-1i64..3, 1..4).prop_map(ScalarList::Integers),
    ]
}

fn bound() -> impl Strategy<Value = Option<f64>> {
    option::weighted(
        0.4,
        prop::sample::select(vec![-1.0, 0.0, 0.5, 1.0, 1.5, 2.0]),
    )
}

fn range() -> impl Strategy<Value = Range> {
    (bound(), bound(), bound(), bound()).prop_map(|(gt, gte, lt, lte)| Range { gt, gte, lt, lte })
}

/// A condition without nesting.
pub fn leaf() -> impl Strategy<Value = Condition> {
    let field = |test: BoxedStrategy<FieldTest>| {
        (key(), test).prop_map(|(key, test)| Condition::Field(FieldCondition { key, test }))
    };
    prop_oneof![
        3 => field(scalar().prop_map(|s| FieldTest::Match(Match::Value(s))).boxed()),
        2 => field(scalar_list().prop_map(|l| FieldTest::Match(Match::Any(l))).boxed()),
        2 => field(scalar_list().prop_map(|l| FieldTest::Match(Match::Except(l))).boxed()),
        3 => field(range().prop_map(FieldTest::Range).boxed()),
        1 => key().prop_map(Condition::IsEmpty),
        1 => key().prop_map(Condition::IsNull),
        1 => btree_set(0u64..50, 0..4).prop_map(|ids| {
            Condition::HasId(ids.into_iter().map(PointId::Num).collect::<BTreeSet<_>>())
        }),
    ]
}

/// Short clause lists, so that a good share of filters keep some rows.
fn clauses<S>(condition: &S, max: usize) -> impl Strategy<Value = Vec<Condition>> + use<S>
where
    S: Strategy<Value = Condition> + Clone,
{
    prop_oneof![
        2 => Just(Vec::new()),
        3 => vec(condition.clone(), 1..=1),
        1 => vec(condition.clone(), 2..=max),
    ]
}

fn filter_of<S>(condition: S) -> impl Strategy<Value = Filter>
where
    S: Strategy<Value = Condition> + Clone,
{
    (
        clauses(&condition, 3),
        clauses(&condition, 3),
        clauses(&condition, 2),
        option::weighted(
            0.2,
            (vec(condition, 0..4), 0usize..4).prop_map(|(conditions, min_count)| MinShould {
                conditions,
                min_count,
            }),
        ),
    )
        .prop_map(|(must, should, must_not, min_should)| Filter {
            must,
            should,
            must_not,
            min_should,
        })
}

/// Filters nested up to three levels over [`KEYS`].
pub fn filter() -> impl Strategy<Value = Filter> {
    let condition = leaf().prop_recursive(3, 24, 3, |inner| {
        filter_of(inner).prop_map(|f| Condition::Filter(Box::new(f)))
    });
    filter_of(condition)
}

/// Builds `fields`' indexes over the first `covered` of `payloads`.
pub fn build(
    fields: &[(KeyPath, IndexKind)],
    payloads: &[Payload],
    covered: usize,
) -> FieldIndexes {
    FieldIndexes::build(
        fields,
        payloads
            .iter()
            .take(covered)
            .enumerate()
            .map(|(r, p)| (r as u32, p)),
    )
}
