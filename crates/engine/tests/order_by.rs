//! Scroll ordered by a payload field (Qdrant's `order_by`) against a sorted model.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;
use common::Rng;
use quiver_engine::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

fn open(dir: &Path) -> Database {
    Database::open(dir, DatabaseOptions::default()).unwrap()
}

fn config() -> CollectionConfig {
    CollectionConfig {
        seal_threshold_bytes: 24_000, // some 200 rows
        merge_factor: 3,
        ..CollectionConfig::default()
    }
}

/// Payloads with integers, floats, arrays of both, other types and missing fields.
fn payload(rng: &mut Rng) -> Payload {
    let small = |rng: &mut Rng| json!(rng.below(40) as i64 - 20);
    let n = match rng.below(9) {
        0..=2 => small(rng),
        3 => json!([small(rng), small(rng), small(rng)]),
        4 => json!(rng.below(40) as f64 / 4.0 - 5.0), // 2.5, 3.0: not integers
        5 => json!(i64::MAX - rng.below(3) as i64),
        6 => json!("7"),
        7 => json!(null),
        _ => Value::Null,
    };
    let f = match rng.below(5) {
        0 | 1 => json!(rng.below(60) as f64 / 8.0 - 3.0),
        2 => small(rng),
        3 => json!([rng.below(10) as f64 / 2.0, small(rng)]),
        _ => Value::Null,
    };
    let mut p = Payload::new();
    if !n.is_null() || rng.below(2) == 0 {
        p.insert("n".into(), n);
    }
    if !f.is_null() {
        p.insert("f".into(), f);
    }
    p.insert("c".into(), json!(rng.pick(&["red", "blue"])));
    p
}

/// The values a point is ordered by: numbers at `key` (an array: its elements), integers only
/// for an integer index, without repeats.
fn values_of(p: &Payload, key: &str, integers: bool) -> Vec<OrderValue> {
    let items: Vec<&Value> = match p.get(key) {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
        None => vec![],
    };
    let mut out: Vec<OrderValue> = Vec::new();
    for n in items.iter().filter_map(|v| v.as_number()) {
        let v = match integers {
            true => match n.as_i64() {
                Some(i) => OrderValue::Int(i),
                None => continue,
            },
            false => OrderValue::Float(n.as_f64().unwrap()),
        };
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// `a` before or equal to `from` in ascending order, exactly.
fn at_most(a: OrderValue, from: f64) -> bool {
    match a {
        OrderValue::Int(i) => i128::from(i) <= from.floor() as i128,
        OrderValue::Float(x) => x <= from,
    }
}

fn at_least(a: OrderValue, from: f64) -> bool {
    match a {
        OrderValue::Int(i) => i128::from(i) >= from.ceil() as i128,
        OrderValue::Float(x) => x >= from,
    }
}

fn cmp(a: &OrderValue, b: &OrderValue) -> std::cmp::Ordering {
    match (a, b) {
        (OrderValue::Int(a), OrderValue::Int(b)) => a.cmp(b),
        (OrderValue::Float(a), OrderValue::Float(b)) => a.total_cmp(b),
        _ => panic!("values of two kinds: {a:?} {b:?}"),
    }
}

struct Query<'a> {
    key: &'a str,
    descending: bool,
    start_from: Option<f64>,
    limit: usize,
    filter: Option<&'a Filter>,
}

fn expected(model: &BTreeMap<u64, Payload>, q: &Query) -> Vec<(OrderValue, PointId)> {
    let mut all: Vec<(OrderValue, PointId)> = Vec::new();
    for (&id, p) in model {
        let id = PointId::Num(id);
        if q.filter.is_some_and(|f| !f.matches(id, p)) {
            continue;
        }
        for v in values_of(p, q.key, q.key == "n") {
            let keep = match (q.start_from, q.descending) {
                (None, _) => true,
                (Some(from), false) => at_least(v, from),
                (Some(from), true) => at_most(v, from),
            };
            if keep {
                all.push((v, id));
            }
        }
    }
    all.sort_by(|a, b| cmp(&a.0, &b.0).then(a.1.cmp(&b.1)));
    if q.descending {
        all.reverse();
    }
    all.truncate(q.limit);
    all
}

fn check(c: &Collection, model: &BTreeMap<u64, Payload>, q: &Query, context: &str) {
    let got: Vec<(OrderValue, PointId)> = c
        .scroll_ordered(
            q.key,
            q.descending,
            q.start_from,
            q.limit,
            q.filter,
            With::PAYLOAD,
        )
        .unwrap_or_else(|e| panic!("{context}: {e}"))
        .into_iter()
        .map(|(v, r)| {
            assert_eq!(
                r.payload.as_ref(),
                model.get(&num(r.id)),
                "{context}: payload"
            );
            (v, r.id)
        })
        .collect();
    let want = expected(model, q);
    if got != want {
        let at = got.iter().zip(&want).take_while(|(g, w)| g == w).count();
        panic!(
            "{context}: key {} desc {} from {:?} limit {} filter {}: {} results, {} expected; first difference at {at}: {:?} instead of {:?}",
            q.key,
            q.descending,
            q.start_from,
            q.limit,
            q.filter.is_some(),
            got.len(),
            want.len(),
            got.get(at),
            want.get(at)
        );
    }
}

fn num(id: PointId) -> u64 {
    match id {
        PointId::Num(n) => n,
        other => panic!("unexpected id {other}"),
    }
}

fn run_queries(c: &Collection, model: &BTreeMap<u64, Payload>, rng: &mut Rng, context: &str) {
    let filters = [
        Filter::parse(r#"{"must": [{"key": "c", "match": {"value": "red"}}]}"#).unwrap(),
        Filter::parse(r#"{"must_not": [{"key": "f", "range": {"gt": 0}}]}"#).unwrap(),
    ];
    let starts = [
        -20.0,
        -3.5,
        0.0,
        2.5,
        7.0,
        19.5,
        9.223372036854775e18,
        1e300,
        -1e300,
    ];
    for i in 0..150 {
        let q = Query {
            key: rng.pick(&["n", "f"]),
            descending: rng.below(2) == 0,
            start_from: (rng.below(3) == 0).then(|| rng.pick(&starts)),
            limit: match rng.below(6) {
                0 => 5000,
                _ => 1 + rng.below(60) as usize,
            },
            filter: match rng.below(3) {
                0 => None,
                k => Some(&filters[k as usize - 1]),
            },
        };
        check(c, model, &q, &format!("{context}, query {i}"));
    }
}

#[test]
fn ordered_scroll_matches_a_sorted_model() {
    for seed in [1, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed);
        let mut model = BTreeMap::new();
        let context = format!("seed {seed}");
        {
            let db = open(dir.path());
            let c = db
                .create_collection("c", Schema::dense(2, Distance::Dot), config())
                .unwrap();
            c.create_field_index("n", FieldIndexKind::Integer).unwrap();
            c.create_field_index("c", FieldIndexKind::Keyword).unwrap();
            for batch in 0..20u64 {
                if batch == 8 {
                    // Declared with sealed segments already there.
                    c.create_field_index("f", FieldIndexKind::Float).unwrap();
                }
                let mut points = Vec::new();
                for _ in 0..100 {
                    // Ids repeat: overwrites.
                    let id = rng.below(1600);
                    let p = payload(&mut rng);
                    model.insert(id, p.clone());
                    points.push(Point::new(id, rng.vector(2)).with_payload(p));
                }
                c.upsert(points).unwrap();
                let gone: Vec<u64> = (0..15).map(|_| rng.below(1600)).collect();
                for id in &gone {
                    model.remove(id);
                }
                let ids: Vec<PointId> = gone.into_iter().map(PointId::Num).collect();
                c.delete(&ids).unwrap();
            }
            run_queries(&c, &model, &mut rng, &context);
            assert!(
                c.info().unwrap().segments.len() > 2,
                "{context}: one segment only"
            );
        }
        let db = open(dir.path());
        let c = db.collection("c").unwrap();
        c.flush().unwrap();
        run_queries(
            &c,
            &model,
            &mut rng,
            &format!("{context}, reopened and flushed"),
        );
    }
}

#[test]
fn a_point_appears_once_per_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let c = db
        .create_collection("c", Schema::dense(2, Distance::Dot), Default::default())
        .unwrap();
    c.create_field_index("n", FieldIndexKind::Integer).unwrap();
    let point = |id: u64, n: Value| {
        Point::new(id, vec![1.0, 0.0]).with_payload(json!({ "n": n }).as_object().unwrap().clone())
    };
    c.upsert(vec![
        point(1, json!([5, 1, 5])),
        point(2, json!(3)),
        point(3, json!(1)),
        point(4, json!(2.5)),
    ])
    .unwrap();
    let order = |descending, start_from| -> Vec<(OrderValue, u64)> {
        c.scroll_ordered("n", descending, start_from, 10, None, With::default())
            .unwrap()
            .into_iter()
            .map(|(v, r)| (v, num(r.id)))
            .collect()
    };
    use OrderValue::Int;
    assert_eq!(
        order(false, None),
        [(Int(1), 1), (Int(1), 3), (Int(3), 2), (Int(5), 1)]
    );
    assert_eq!(
        order(true, None),
        [(Int(5), 1), (Int(3), 2), (Int(1), 3), (Int(1), 1)]
    );
    assert_eq!(order(false, Some(1.5)), [(Int(3), 2), (Int(5), 1)]);
    assert_eq!(
        order(true, Some(3.0)),
        [(Int(3), 2), (Int(1), 3), (Int(1), 1)]
    );
}

#[test]
fn ordering_needs_an_integer_or_float_index() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let c = db
        .create_collection("c", Schema::dense(2, Distance::Dot), Default::default())
        .unwrap();
    c.create_field_index("k", FieldIndexKind::Keyword).unwrap();
    c.create_field_index("n", FieldIndexKind::Float).unwrap();
    for (key, start, says) in [
        ("m", None, "no field index"),
        ("k", None, "keyword index"),
        ("n", Some(f64::NAN), "not a number"),
        ("n[", None, "order_by key"),
    ] {
        let e = c
            .scroll_ordered(key, false, start, 10, None, With::default())
            .unwrap_err();
        assert!(
            matches!(&e, Error::InvalidRequest { .. }) && e.to_string().contains(says),
            "{key}: {e}"
        );
    }
    assert!(
        c.scroll_ordered("n", false, None, 10, None, With::default())
            .unwrap()
            .is_empty()
    );
}
