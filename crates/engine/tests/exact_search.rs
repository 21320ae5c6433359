//! `SearchRequest::exact` against brute force over a model (a sealed segment with a graph,
//! deletions, overwrites, a mutable segment; with and without a filter), and
//! `SearchRequest::offset`.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;
use common::{Rng, open_periodic};
use proptest::prelude::*;
use quiver_engine::*;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

const DIM: usize = 8;

/// User-facing score of `v` for query `q` in f64: cosine and dot higher is better, euclid the
/// distance.
fn score(distance: Distance, q: &[f32], v: &[f32]) -> f64 {
    let norm = |v: &[f32]| -> Vec<f64> {
        let n = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        v.iter().map(|x| f64::from(*x) / n).collect()
    };
    let (q, v): (Vec<f64>, Vec<f64>) = match distance {
        Distance::Cosine => (norm(q), norm(v)),
        _ => (
            q.iter().map(|x| f64::from(*x)).collect(),
            v.iter().map(|x| f64::from(*x)).collect(),
        ),
    };
    match distance {
        Distance::Cosine | Distance::Dot => q.iter().zip(&v).map(|(a, b)| a * b).sum(),
        Distance::Euclid => q
            .iter()
            .zip(&v)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt(),
    }
}

/// The best `k` scores of the points of `model` that pass `keep`, best first.
fn reference(
    model: &BTreeMap<u64, (Vec<f32>, u64)>,
    distance: Distance,
    q: &[f32],
    k: usize,
    keep: impl Fn(u64) -> bool,
) -> Vec<f64> {
    let mut scores: Vec<f64> = model
        .iter()
        .filter(|(_, (_, g))| keep(*g))
        .map(|(_, (v, _))| score(distance, q, v))
        .collect();
    match distance {
        Distance::Euclid => scores.sort_by(f64::total_cmp),
        _ => scores.sort_by(|a, b| b.total_cmp(a)),
    }
    scores.truncate(k);
    scores
}

/// Checks `got` against the reference: the same number of results, each a distinct point of
/// the model that passes `keep`, with its own score, and the scores rank by rank those of the
/// reference (ties may pick either point).
fn check(
    got: &[ScoredPoint],
    want: &[f64],
    model: &BTreeMap<u64, (Vec<f32>, u64)>,
    distance: Distance,
    q: &[f32],
    keep: impl Fn(u64) -> bool,
    what: &str,
) {
    assert_eq!(got.len(), want.len(), "{what}: result count");
    let mut seen = HashSet::new();
    for (rank, (hit, want)) in got.iter().zip(want).enumerate() {
        let PointId::Num(id) = hit.id else {
            panic!("{what}: unexpected id {}", hit.id)
        };
        assert!(seen.insert(id), "{what}: point {id} twice");
        let (v, g) = model
            .get(&id)
            .unwrap_or_else(|| panic!("{what}: point {id} is not live"));
        assert!(keep(*g), "{what}: point {id} does not pass the filter");
        let own = score(distance, q, v);
        let tolerance = 1e-4 * (1.0 + want.abs());
        assert!(
            (f64::from(hit.score) - own).abs() < tolerance,
            "{what}: point {id} scored {} but its score is {own}",
            hit.score
        );
        assert!(
            (f64::from(hit.score) - want).abs() < tolerance,
            "{what}: rank {rank}: {} where brute force has {want}",
            hit.score
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]
    #[test]
    fn exact_search_equals_brute_force(
        seed in any::<u64>(),
        distance in prop_oneof![Just(Distance::Cosine), Just(Distance::Dot), Just(Distance::Euclid)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = open_periodic(dir.path(), Duration::from_secs(60));
        // A coarse graph (m = 4, ef_construction = 8): graph search would miss neighbours.
        let schema = Schema {
            sparse_vectors: Default::default(),
            vectors: BTreeMap::from([(
                String::new(),
                VectorKind::dense_indexed(DIM, distance, IndexKind::hnsw(4, 8)),
            )]),
        };
        let c = db.create_collection("c", schema, Default::default()).unwrap();
        c.create_field_index("g", FieldIndexKind::Integer).unwrap();
        let mut rng = Rng(seed);
        let mut model: BTreeMap<u64, (Vec<f32>, u64)> = BTreeMap::new();
        let mut upsert = |c: &Collection, ids: Vec<u64>, rng: &mut Rng| {
            let points: Vec<Point> = ids
                .iter()
                .map(|&id| {
                    let v = rng.vector(DIM);
                    let g = rng.below(5);
                    model.insert(id, (v.clone(), g));
                    let mut p = Point::new(id, v);
                    p.payload.insert("g".into(), json!(g));
                    p
                })
                .collect();
            c.upsert(points).unwrap();
        };
        // One sealed segment over the graph threshold, then deletes and overwrites of sealed
        // points and new points, all in the mutable segment.
        upsert(&c, (0..MIN_GRAPH_ROWS as u64 + 300).collect(), &mut rng);
        c.flush().unwrap();
        upsert(&c, (0..150).map(|i| i * 7).collect(), &mut rng);
        upsert(&c, (10_000..10_200).collect(), &mut rng);
        let deleted: Vec<u64> = (0..200).map(|i| 3 + i * 11).collect();
        c.delete(&deleted.iter().map(|&i| PointId::Num(i)).collect::<Vec<_>>()).unwrap();
        for id in &deleted {
            model.remove(id);
        }
        let segments = c.info().unwrap().segments;
        prop_assert!(segments.iter().any(|s| s.sealed) && segments.iter().any(|s| !s.sealed));

        let f = Filter::from_json(&json!({"must": [{"key": "g", "match": {"any": [1, 3]}}]})).unwrap();
        let in_filter = |g: u64| g == 1 || g == 3;
        let matching = model.values().filter(|(_, g)| in_filter(*g)).count() as u64;
        for round in 0..10 {
            let q = rng.vector(DIM);
            let k = [1, 10, 50][round % 3];
            // The sealed segment has a graph: a search that is not exact scores fewer rows.
            let before = c.distance_computations();
            c.search(&SearchRequest::new(q.clone(), k)).unwrap();
            prop_assert!(c.distance_computations() - before < model.len() as u64);

            let before = c.distance_computations();
            let got = c.search(&SearchRequest { exact: true, ..SearchRequest::new(q.clone(), k) }).unwrap();
            // A scan: one distance per live row, none through a graph.
            prop_assert_eq!(c.distance_computations() - before, model.len() as u64);
            let want = reference(&model, distance, &q, k, |_| true);
            check(&got, &want, &model, distance, &q, |_| true, &format!("seed {seed}, {distance:?}, k {k}"));

            let before = c.distance_computations();
            let req = SearchRequest { exact: true, filter: Some(f.clone()), ..SearchRequest::new(q.clone(), k) };
            let got = c.search(&req).unwrap();
            prop_assert_eq!(c.distance_computations() - before, matching);
            let want = reference(&model, distance, &q, k, in_filter);
            check(&got, &want, &model, distance, &q, in_filter, &format!("seed {seed}, {distance:?}, k {k}, filtered"));

            prop_assert_eq!(&c.search_batch(&[req]).unwrap()[0], &got);

            // In a batch beside a graph search of the same vector, the exact one stays exact.
            let batch = c.search_batch(&[
                SearchRequest::new(q.clone(), k),
                SearchRequest { exact: true, ..SearchRequest::new(q.clone(), k) },
            ]).unwrap();
            let want = reference(&model, distance, &q, k, |_| true);
            check(&batch[1], &want, &model, distance, &q, |_| true, &format!("seed {seed}, {distance:?}, k {k}, batch"));
        }
    }
}

/// Points `0..n` with vector `[id, 1]` (dot with `[1, 0]` is the id: no ties) and payload
/// `{"odd": id % 2 == 1}`.
fn line(n: u64) -> (tempfile::TempDir, Database, std::sync::Arc<Collection>) {
    let dir = tempfile::tempdir().unwrap();
    let db = open_periodic(dir.path(), Duration::from_secs(60));
    let c = db
        .create_collection("c", Schema::dense(2, Distance::Dot), Default::default())
        .unwrap();
    c.upsert(
        (0..n)
            .map(|i| {
                let mut p = Point::new(i, vec![i as f32, 1.0]);
                p.payload.insert("odd".into(), json!(i % 2 == 1));
                p
            })
            .collect(),
    )
    .unwrap();
    (dir, db, c)
}

fn ids(hits: &[ScoredPoint]) -> Vec<u64> {
    hits.iter()
        .map(|h| match h.id {
            PointId::Num(i) => i,
            other => panic!("unexpected id {other}"),
        })
        .collect()
}

#[test]
fn offset_skips_the_best_results() {
    let (_dir, _db, c) = line(50);
    for exact in [false, true] {
        for offset in [0, 1, 7, 45, 49, 50, 60] {
            let req = SearchRequest {
                offset,
                exact,
                ..SearchRequest::new(vec![1.0, 0.0], 5)
            };
            let want: Vec<u64> = (0..50u64).rev().skip(offset).take(5).collect();
            assert_eq!(ids(&c.search(&req).unwrap()), want, "offset {offset}");
            assert_eq!(
                ids(&c.search_batch(std::slice::from_ref(&req)).unwrap()[0]),
                want,
                "offset {offset}, batch"
            );

            // With a filter: ranks among the matching points.
            let odd =
                Filter::from_json(&json!({"must": [{"key": "odd", "match": {"value": true}}]}))
                    .unwrap();
            let req = SearchRequest {
                filter: Some(odd),
                ..req
            };
            let want: Vec<u64> = (0..50u64)
                .rev()
                .filter(|i| i % 2 == 1)
                .skip(offset)
                .take(5)
                .collect();
            assert_eq!(
                ids(&c.search(&req).unwrap()),
                want,
                "offset {offset}, filtered"
            );

            // The score threshold cuts the ranking after the offset: scores >= 40.
            let req = SearchRequest {
                filter: None,
                score_threshold: Some(40.0),
                ..req
            };
            let want: Vec<u64> = (40..50u64).rev().skip(offset).take(5).collect();
            assert_eq!(
                ids(&c.search(&req).unwrap()),
                want,
                "offset {offset}, threshold"
            );
        }
    }
    // A huge offset does not overflow or allocate for it.
    let req = SearchRequest {
        offset: usize::MAX,
        ..SearchRequest::new(vec![1.0, 0.0], 5)
    };
    assert!(c.search(&req).unwrap().is_empty());
}

#[test]
fn offset_pages_through_a_segment_with_a_graph() {
    // Pages of an exact search, across sealed (with a graph) and mutable segments, chain
    // into the first page of one search as deep as all of them.
    let dir = tempfile::tempdir().unwrap();
    let db = open_periodic(dir.path(), Duration::from_secs(60));
    let schema = Schema {
        sparse_vectors: Default::default(),
        vectors: BTreeMap::from([(
            String::new(),
            VectorKind::dense_indexed(4, Distance::Euclid, IndexKind::hnsw(8, 32)),
        )]),
    };
    let c = db
        .create_collection("c", schema, Default::default())
        .unwrap();
    let mut rng = Rng(7);
    let points = |range: std::ops::Range<u64>, rng: &mut Rng| {
        range
            .map(|i| Point::new(i, rng.vector(4)))
            .collect::<Vec<_>>()
    };
    c.upsert(points(0..MIN_GRAPH_ROWS as u64 + 100, &mut rng))
        .unwrap();
    c.flush().unwrap();
    c.upsert(points(100_000..100_300, &mut rng)).unwrap();
    let q = rng.vector(4);
    let all = c
        .search(&SearchRequest {
            exact: true,
            ..SearchRequest::new(q.clone(), 100)
        })
        .unwrap();
    let mut paged = Vec::new();
    for page in 0..10 {
        paged.extend(
            c.search(&SearchRequest {
                exact: true,
                offset: page * 10,
                ..SearchRequest::new(q.clone(), 10)
            })
            .unwrap(),
        );
    }
    assert_eq!(paged, all);
}
