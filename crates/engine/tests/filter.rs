//! Filtered search, count, scroll and delete against brute force over a model, with field
//! indexes declared before or after the data, points sealed, mutable and deleted, and reopen.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;
use common::Rng;
use proptest::prelude::*;
use quiver_engine::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

fn open(dir: &Path) -> Database {
    Database::open(
        dir,
        DatabaseOptions {
            durability: Durability::Periodic(std::time::Duration::from_secs(60)),
            ..DatabaseOptions::default()
        },
    )
    .unwrap()
}

/// A payload drawn from small domains, with missing, null, array and wrong-type values.
fn payload(rng: &mut Rng) -> Payload {
    let mut p = Payload::new();
    let color = [
        json!("red"),
        json!("green"),
        json!("blue"),
        json!(["red", "blue"]),
        json!(null),
        json!(3),
    ];
    let n = [
        json!(0),
        json!(1),
        json!(2),
        json!(3),
        json!(4),
        json!(2.5),
        json!(null),
    ];
    let tags = [
        json!([]),
        json!(["a"]),
        json!(["a", "b"]),
        json!(["c"]),
        json!("a"),
    ];
    if rng.below(6) > 0 {
        p.insert("color".into(), rng.pick(&color));
    }
    if rng.below(6) > 0 {
        p.insert("n".into(), rng.pick(&n));
    }
    if rng.below(3) > 0 {
        p.insert("tags".into(), rng.pick(&tags));
    }
    if rng.below(4) > 0 {
        p.insert("flag".into(), json!(rng.below(2) == 1));
    }
    p
}

fn condition(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 0 { 9 } else { 8 }) {
        0 => json!({"key": "color", "match": {"value": rng.pick(&["red", "green", "blue"])}}),
        1 => json!({"key": "color", "match": {"any": ["red", "green"]}}),
        2 => json!({"key": "color", "match": {"except": ["blue"]}}),
        3 => json!({"key": "n", "range": {"gte": rng.below(5), "lt": 2 + rng.below(4)}}),
        4 => json!({"key": "tags", "match": {"any": ["a", "c"]}}),
        5 => json!({"key": "flag", "match": {"value": rng.below(2) == 1}}),
        6 => json!({"is_empty": {"key": "tags"}}),
        7 => json!({"is_null": {"key": rng.pick(&["color", "n"])}}),
        _ => filter_json(rng, depth - 1),
    }
}

fn filter_json(rng: &mut Rng, depth: u32) -> Value {
    let mut f = serde_json::Map::new();
    for member in ["must", "should", "must_not"] {
        let n = rng.below(3);
        if n > 0 {
            let list: Vec<Value> = (0..n).map(|_| condition(rng, depth)).collect();
            f.insert(member.into(), Value::Array(list));
        }
    }
    Value::Object(f)
}

fn all_kinds() -> [(&'static str, FieldIndexKind); 4] {
    [
        ("color", FieldIndexKind::Keyword),
        ("n", FieldIndexKind::Integer),
        ("tags", FieldIndexKind::Keyword),
        ("flag", FieldIndexKind::Bool),
    ]
}

/// Live points of the model: id -> (vector, payload).
type Model = BTreeMap<u64, (Vec<f32>, Payload)>;

fn brute_scores(model: &Model, filter: &Filter, q: &[f32], k: usize) -> Vec<f32> {
    let mut s: Vec<f32> = model
        .iter()
        .filter(|(id, (_, p))| filter.matches(PointId::Num(**id), p))
        .map(|(_, (v, _))| v.iter().zip(q).map(|(a, b)| a * b).sum())
        .collect();
    s.sort_by(|a, b| b.total_cmp(a));
    s.truncate(k);
    s
}

fn matching(model: &Model, filter: &Filter) -> Vec<u64> {
    model
        .iter()
        .filter(|(id, (_, p))| filter.matches(PointId::Num(**id), p))
        .map(|(id, _)| *id)
        .collect()
}

fn num(id: PointId) -> u64 {
    match id {
        PointId::Num(n) => n,
        PointId::Uuid(_) => u64::MAX,
    }
}

/// Checks search (scores equal to brute force, tie-tolerant), count and scroll.
fn check(c: &Collection, model: &Model, filter: &Filter, rng: &mut Rng, seed: u64) {
    let want = matching(model, filter);
    assert_eq!(
        c.count_filtered(filter).unwrap(),
        want.len() as u64,
        "count, seed {seed}, filter {}",
        filter.to_json()
    );
    let page = c
        .scroll_filtered(None, usize::MAX, With::default(), Some(filter))
        .unwrap();
    let got: Vec<u64> = page.points.iter().map(|r| num(r.id)).collect();
    assert_eq!(got, want, "scroll, seed {seed}");
    for _ in 0..4 {
        let q = rng.vector(4);
        let hits = c
            .search(&SearchRequest {
                filter: Some(filter.clone()),
                ..SearchRequest::new(q.clone(), 10)
            })
            .unwrap();
        let expect = brute_scores(model, filter, &q, 10);
        assert_eq!(hits.len(), expect.len(), "result count, seed {seed}");
        for (h, e) in hits.iter().zip(&expect) {
            assert!(
                (h.score - e).abs() < 1e-4,
                "score {} vs {e}, seed {seed}",
                h.score
            );
            let (_, p) = &model[&num(h.id)];
            assert!(filter.matches(h.id, p), "non-matching hit, seed {seed}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    #[test]
    fn filtered_reads_equal_brute_force(seed in any::<u64>(), declare_first in any::<bool>()) {
        let mut rng = Rng(seed);
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::new();
        let filters: Vec<Filter> = (0..6)
            .map(|_| Filter::from_json(&filter_json(&mut rng, 1)).unwrap())
            .collect();
        let n = 150 + rng.below(150);
        {
            let db = open(dir.path());
            let config = CollectionConfig {
                seal_threshold_bytes: 4 * 4 * 60, // 60 rows of dim 4
                compact_deleted_fraction: 0.5,
                ..CollectionConfig::default()
            };
            let c = db
                .create_collection("c", Schema::dense(4, Distance::Dot), config)
                .unwrap();
            let kinds: Vec<_> = all_kinds().into_iter().filter(|_| rng.below(3) > 0).collect();
            if declare_first {
                for (k, kind) in &kinds {
                    c.create_field_index(k, *kind).unwrap();
                }
            }
            for chunk in (0..n).collect::<Vec<_>>().chunks(25) {
                let points: Vec<Point> = chunk
                    .iter()
                    .map(|&id| {
                        let v = rng.vector(4);
                        let p = payload(&mut rng);
                        model.insert(id, (v.clone(), p.clone()));
                        Point::new(id, v).with_payload(p)
                    })
                    .collect();
                c.upsert(points).unwrap();
            }
            let dead: Vec<PointId> = (0..n / 10).map(|_| PointId::Num(rng.below(n))).collect();
            for id in &dead {
                model.remove(&num(*id));
            }
            c.delete(&dead).unwrap();
            if !declare_first {
                for (k, kind) in &kinds {
                    c.create_field_index(k, *kind).unwrap();
                }
            }
            for f in &filters {
                check(&c, &model, f, &mut rng, seed);
            }
        }
        // Reopen: indexes loaded from the `fields` files, same answers.
        let db = open(dir.path());
        let c = db.collection("c").unwrap();
        for f in &filters {
            check(&c, &model, f, &mut rng, seed);
        }
        let gone = c.delete_by_filter(&filters[0]).unwrap();
        let want = matching(&model, &filters[0]);
        prop_assert_eq!(gone, want.len());
        for id in want {
            model.remove(&id);
        }
        prop_assert_eq!(c.count_filtered(&Filter::default()).unwrap(), model.len() as u64);
        for f in &filters {
            check(&c, &model, f, &mut rng, seed);
        }
    }
}

#[test]
fn filtered_graph_search_keeps_recall_and_returns_k() {
    filtered_search_keeps_recall(0.0);
}

#[test]
fn filtered_scan_on_codes_keeps_recall_and_returns_k() {
    filtered_search_keeps_recall(1.0);
}

/// Filters from 75 % to 0.1 % selectivity on a sealed HNSW segment with LVQ-8 codes, with
/// `filter_scan_fraction` = `scan_fraction` (0: graph search above 1,000 candidates, stepping
/// over rejected nodes at 35 % or less; 1: a scan of the candidates on the codes, always).
fn filtered_search_keeps_recall(scan_fraction: f64) {
    let seed = 7;
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let dim = 16;
    let schema = Schema {
        sparse_vectors: Default::default(),
        vectors: BTreeMap::from([(
            String::new(),
            VectorKind::dense_indexed(
                dim,
                Distance::Dot,
                IndexKind::Hnsw {
                    m: 12,
                    ef_construction: 64,
                    quantization: Quantization::Lvq8,
                },
            ),
        )]),
    };
    let config = CollectionConfig {
        filter_scan_fraction: scan_fraction,
        ..CollectionConfig::default()
    };
    let c = db.create_collection("g", schema, config).unwrap();
    c.create_field_index("bucket", FieldIndexKind::Integer)
        .unwrap();
    let n = 6000u64;
    let mut model = Model::new();
    let points: Vec<Point> = (0..n)
        .map(|id| {
            let v = rng.vector(dim);
            // bucket b holds about n / 2^(b+1) points: selectivities from 50 % to 0.1 %.
            let bucket = (rng.next() | 1 << 20).trailing_zeros();
            let mut p = Payload::new();
            p.insert("bucket".into(), json!(bucket));
            p.insert("odd".into(), json!(id % 2 == 1));
            model.insert(id, (v.clone(), p.clone()));
            Point::new(id, v).with_payload(p)
        })
        .collect();
    c.upsert(points).unwrap();
    c.flush().unwrap();
    // Deleted after the seal: a sealed segment's deletion bits, never returned.
    let dead: Vec<PointId> = (0..n).step_by(7).map(PointId::Num).collect();
    for id in &dead {
        model.remove(&num(*id));
    }
    c.delete(&dead).unwrap();
    // A few more in the mutable segment.
    for id in n..n + 50 {
        let v = rng.vector(dim);
        let mut p = Payload::new();
        p.insert("bucket".into(), json!(0));
        model.insert(id, (v.clone(), p.clone()));
        c.upsert(vec![Point::new(id, v).with_payload(p)]).unwrap();
    }
    let filters = [
        json!({"must": [{"key": "bucket", "match": {"value": 0}}]}),
        json!({"must": [{"key": "bucket", "range": {"lte": 1}}]}),
        json!({"must": [{"key": "bucket", "range": {"gte": 1}}]}),
        json!({"must": [{"key": "bucket", "range": {"gte": 2}}]}),
        json!({"must": [{"key": "bucket", "range": {"gte": 3}}]}),
        json!({"must": [{"key": "bucket", "range": {"gte": 8}}]}),
        json!({"must": [{"key": "odd", "match": {"value": true}}]}), // not indexed
        json!({"must": [{"key": "bucket", "range": {"lte": 2}}, {"key": "odd", "match": {"value": false}}]}),
    ];
    for f in &filters {
        let filter = Filter::from_json(f).unwrap();
        let want = matching(&model, &filter);
        let mut recall = 0.0;
        let queries = 40;
        for _ in 0..queries {
            let q = rng.vector(dim);
            let hits = c
                .search(&SearchRequest {
                    filter: Some(filter.clone()),
                    ..SearchRequest::new(q.clone(), 10)
                })
                .unwrap();
            let expect = brute_scores(&model, &filter, &q, 10);
            assert_eq!(hits.len(), expect.len(), "min(k, matches) for {f}");
            for h in &hits {
                assert!(
                    filter.matches(h.id, &model[&num(h.id)].1),
                    "non-matching hit for {f}"
                );
            }
            let worst = expect.last().copied().unwrap_or(f32::NEG_INFINITY);
            let found = hits.iter().filter(|h| h.score >= worst - 1e-4).count();
            recall += found as f64 / expect.len().max(1) as f64;
        }
        let recall = recall / f64::from(queries);
        assert!(
            recall >= 0.9,
            "recall {recall} for {f} ({} matches)",
            want.len()
        );
    }
    if scan_fraction == 0.0 {
        // The 25 % filter took the two-hop traversal on the sealed segment.
        let plan = c.explain(&Filter::from_json(&filters[3]).unwrap()).unwrap();
        assert!(plan.contains("stepped over"), "{plan}");
    }
    let plan = c
        .explain(&Filter::from_json(filters.last().unwrap()).unwrap())
        .unwrap();
    assert!(plan.contains("bucket: integer index"), "{plan}");
    assert!(
        plan.contains("odd: not indexed, checked per point"),
        "{plan}"
    );
}

#[test]
fn field_index_added_later_gives_the_same_results_and_shows_in_explain() {
    let mut rng = Rng(11);
    let dir = tempfile::tempdir().unwrap();
    let filter =
        Filter::parse(r#"{"must": [{"key": "color", "match": {"any": ["red", "green"]}}]}"#)
            .unwrap();
    let queries: Vec<Vec<f32>> = (0..10).map(|_| rng.vector(4)).collect();
    let search = |c: &Collection| -> Vec<Vec<(PointId, f32)>> {
        queries
            .iter()
            .map(|q| {
                c.search(&SearchRequest {
                    filter: Some(filter.clone()),
                    ..SearchRequest::new(q.clone(), 5)
                })
                .unwrap()
                .into_iter()
                .map(|h| (h.id, h.score))
                .collect()
            })
            .collect()
    };
    let before = {
        let db = open(dir.path());
        let c = db
            .create_collection(
                "c",
                Schema::dense(4, Distance::Dot),
                CollectionConfig::default(),
            )
            .unwrap();
        let points: Vec<Point> = (0..200)
            .map(|id| Point::new(id, rng.vector(4)).with_payload(payload(&mut rng)))
            .collect();
        c.upsert(points).unwrap();
        c.flush().unwrap();
        let plan = c.explain(&filter).unwrap();
        assert!(
            plan.contains("color: not indexed, checked per point"),
            "{plan}"
        );
        let before = search(&c);
        assert!(
            c.create_field_index("color", FieldIndexKind::Keyword)
                .unwrap()
        );
        assert!(
            !c.create_field_index("color", FieldIndexKind::Keyword)
                .unwrap()
        );
        assert!(
            c.create_field_index("color", FieldIndexKind::Integer)
                .is_err()
        );
        assert!(
            c.create_field_index("a..b", FieldIndexKind::Integer)
                .is_err()
        );
        assert_eq!(search(&c), before);
        let plan = c.explain(&filter).unwrap();
        assert!(plan.contains("color: keyword index"), "{plan}");
        assert_eq!(
            c.info().unwrap().payload_indexes,
            BTreeMap::from([("color".to_string(), FieldIndexKind::Keyword)])
        );
        before
    };
    let db = open(dir.path());
    let c = db.collection("c").unwrap();
    assert_eq!(search(&c), before);
    assert!(c.explain(&filter).unwrap().contains("color: keyword index"));
    // The `fields` files are derived data: without them, the index is rebuilt at open.
    drop(c);
    drop(db);
    let mut removed = 0;
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "fields") {
                std::fs::remove_file(&p).unwrap();
                removed += 1;
            }
        }
    }
    assert!(removed > 0);
    let db = open(dir.path());
    let c = db.collection("c").unwrap();
    assert_eq!(search(&c), before);
    assert!(c.explain(&filter).unwrap().contains("color: keyword index"));
    assert!(c.drop_field_index("color").unwrap());
    assert_eq!(search(&c), before);
    assert!(c.explain(&filter).unwrap().contains("color: not indexed"));
}
