//! Sparse vectors: search against brute force over a model (mutable segment, sealed segments,
//! compaction, reopen; deletions, overwrites and filters; with and without the IDF modifier),
//! recovery from the log, bad input, and damaged files.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;
use common::{Rng, open_periodic};
use proptest::prelude::*;
use quiver_engine::*;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

/// Point id -> (sparse vector, payload value `g`).
type Model = BTreeMap<u64, (SparseVector, u64)>;

fn schema(modifier: Modifier) -> Schema {
    Schema::dense(2, Distance::Dot).with_sparse("s", SparseKind::with_modifier(modifier))
}

/// A random sparse vector over a vocabulary where low indices are common and high ones rare,
/// values of both signs, entries in random order (the engine sorts them).
fn sparse(rng: &mut Rng) -> SparseVector {
    let mut entries = BTreeMap::new();
    for _ in 0..rng.below(9) {
        let scale = rng.below(4);
        entries.insert(rng.below(4 << (2 * scale)) as u32, rng.f32() * 2.0 + 0.5);
    }
    let (mut indices, mut values): (Vec<u32>, Vec<f32>) = entries.into_iter().unzip();
    if rng.below(2) == 0 {
        indices.reverse();
        values.reverse();
    }
    SparseVector::new(indices, values)
}

/// The best `k` scores of the model's points that pass `keep` and share an index with `q`,
/// best first; with `idf`, each query value weighted by Qdrant's IDF over the model.
fn reference(
    model: &Model,
    q: &SparseVector,
    idf: bool,
    k: usize,
    keep: impl Fn(u64) -> bool,
) -> Vec<(u64, f64)> {
    let weights: BTreeMap<u32, f64> = q
        .indices
        .iter()
        .zip(&q.values)
        .map(|(&i, &w)| {
            let w = f64::from(w);
            if !idf {
                return (i, w);
            }
            let big_n = model.len() as f64;
            let n = model
                .values()
                .filter(|(v, _)| v.indices.contains(&i))
                .count() as f64;
            let idf = (1.0 + (big_n - n + 0.5) / (n + 0.5)).ln();
            (i, f64::from((w * idf) as f32))
        })
        .collect();
    let mut all: Vec<(u64, f64)> = model
        .iter()
        .filter(|(_, (_, g))| keep(*g))
        .filter_map(|(&id, (v, _))| {
            let shared: Vec<f64> = v
                .indices
                .iter()
                .zip(&v.values)
                .filter_map(|(i, &x)| weights.get(i).map(|w| w * f64::from(x)))
                .collect();
            (!shared.is_empty()).then(|| (id, shared.iter().sum()))
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    all.truncate(k);
    all
}

/// `got` against the reference: as many results, distinct live points passing the filter,
/// each with its own score, rank by rank the reference's scores (ties may pick either).
fn check(got: &[ScoredPoint], want: &[(u64, f64)], own: &BTreeMap<u64, f64>, what: &str) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: result count; got {got:?}, want {want:?}"
    );
    let mut seen = HashSet::new();
    for (rank, (hit, (_, want))) in got.iter().zip(want).enumerate() {
        let PointId::Num(id) = hit.id else {
            panic!("{what}: unexpected id {}", hit.id)
        };
        assert!(seen.insert(id), "{what}: point {id} twice");
        let tolerance = 1e-4 * (1.0 + want.abs());
        let mine = own
            .get(&id)
            .unwrap_or_else(|| panic!("{what}: point {id} is not a candidate"));
        assert!(
            (f64::from(hit.score) - mine).abs() < tolerance,
            "{what}: point {id} scored {} but its score is {mine}",
            hit.score
        );
        assert!(
            (f64::from(hit.score) - want).abs() < tolerance,
            "{what}: rank {rank}: {} where brute force has {want}",
            hit.score
        );
    }
}

/// Runs a few random queries against the model, with and without a filter.
fn check_queries(c: &Collection, model: &Model, idf: bool, rng: &mut Rng, what: &str) {
    for round in 0..6 {
        let q = sparse(rng);
        let k = 1 + rng.below(20) as usize;
        let filtered = round % 2 == 1;
        let mut req = SearchRequest::sparse("s", q.clone(), k);
        let keep = |g: u64| !filtered || g == 1 || g == 3;
        if filtered {
            req.filter = Some(
                Filter::from_json(&json!({"must": [{"key": "g", "match": {"any": [1, 3]}}]}))
                    .unwrap(),
            );
        }
        let got = c.search(&req).unwrap();
        let want = reference(model, &q, idf, k, keep);
        let own: BTreeMap<u64, f64> = reference(model, &q, idf, usize::MAX, keep)
            .into_iter()
            .collect();
        check(&got, &want, &own, &format!("{what}, query {round}"));
    }
}

fn open(dir: &Path) -> Database {
    open_periodic(dir, Duration::from_secs(60))
}

fn upsert_round(c: &Collection, model: &mut Model, rng: &mut Rng) {
    let points: Vec<Point> = (0..150)
        .map(|_| {
            let id = rng.below(400);
            let v = sparse(rng);
            let g = rng.below(5);
            model.insert(id, (v.clone(), g));
            Point::new(id, vec![rng.f32(), rng.f32()])
                .with_sparse("s", v)
                .with_payload(json!({"g": g}).as_object().unwrap().clone())
        })
        .collect();
    // Later points overwrite earlier ones with the same id, as in the model. Batches of 25:
    // the mutable segment is frozen between writes, so rounds make several segments.
    for batch in points.chunks(25) {
        c.upsert(batch.to_vec()).unwrap();
    }
    let ids: Vec<PointId> = (0..20).map(|_| PointId::Num(rng.below(400))).collect();
    for id in &ids {
        let PointId::Num(n) = id else { unreachable!() };
        model.remove(n);
    }
    c.delete(&ids).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]
    #[test]
    fn sparse_search_equals_brute_force(seed in any::<u64>(), idf in any::<bool>()) {
        let mut rng = Rng(seed);
        let dir = tempfile::tempdir().unwrap();
        let modifier = if idf { Modifier::Idf } else { Modifier::None };
        let config = CollectionConfig {
            // About 30 points per segment: several sealed segments, left apart by the policy
            // (no size merges) until `compact` merges those with deletions.
            seal_threshold_bytes: 4 << 10,
            merge_factor: 0,
            compact_deleted_fraction: 1.0,
            ..CollectionConfig::default()
        };
        let mut model = Model::new();
        {
            let db = open(dir.path());
            let c = db.create_collection("c", schema(modifier), config).unwrap();
            upsert_round(&c, &mut model, &mut rng);
            check_queries(&c, &model, idf, &mut rng, "mutable");
            c.flush().unwrap();
            prop_assert!(c.info().unwrap().segments.iter().filter(|s| s.sealed).count() >= 2);
            check_queries(&c, &model, idf, &mut rng, "sealed");
            upsert_round(&c, &mut model, &mut rng);
            check_queries(&c, &model, idf, &mut rng, "sealed and mutable, deletions");
            c.compact(0.0).unwrap();
            check_queries(&c, &model, idf, &mut rng, "compacted");
            prop_assert!(c.info().unwrap().segments.iter().all(|s| !s.sealed || s.deleted == 0));
            upsert_round(&c, &mut model, &mut rng);
        }
        let db = open(dir.path());
        let c = db.collection("c").unwrap();
        check_queries(&c, &model, idf, &mut rng, "reopened");
        prop_assert_eq!(c.count(), model.len() as u64);
        // Every point's sparse vector comes back, sorted by index.
        let ids: Vec<PointId> = model.keys().map(|&id| PointId::Num(id)).collect();
        for r in c.retrieve(&ids, With::ALL).unwrap() {
            let PointId::Num(id) = r.id else { unreachable!() };
            let (v, _) = &model[&id];
            let mut pairs: Vec<(u32, f32)> = v.indices.iter().copied().zip(v.values.iter().copied()).collect();
            pairs.sort_by_key(|p| p.0);
            let (indices, values): (Vec<u32>, Vec<f32>) = pairs.into_iter().unzip();
            let got = r.sparse.unwrap().remove("s").unwrap_or_default();
            prop_assert_eq!(got, SparseVector::new(indices, values), "point {}", id);
        }
    }
}

/// Copies a data directory as it is on disk: what a crash at this moment would leave
/// (every write below was acknowledged, so fsynced).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_log_restores_sparse_vectors_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let v = SparseVector::new(vec![30, 2, 7], vec![1.5, -0.5, 2.0]);
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let c = db
        .create_collection("c", schema(Modifier::None), CollectionConfig::default())
        .unwrap();
    c.upsert(vec![
        Point::new(1, vec![0.0, 1.0]).with_sparse("s", v.clone()),
        Point::new(2, vec![1.0, 0.0]),
    ])
    .unwrap();
    // No flush: the points are only in the log (and the mutable segment, lost in a crash).
    copy_dir(dir.path(), crashed.path());
    drop((c, db));
    let db = Database::open(crashed.path(), DatabaseOptions::default()).unwrap();
    let c = db.collection("c").unwrap();
    assert_eq!(c.recovery_report().replayed_ops, 1);
    let got = c.retrieve(&[PointId::Num(1)], With::ALL).unwrap();
    assert_eq!(
        got[0].sparse.as_ref().unwrap()["s"],
        SparseVector::new(vec![2, 7, 30], vec![-0.5, 2.0, 1.5])
    );
    let hits = c
        .search(&SearchRequest::sparse(
            "s",
            SparseVector::new(vec![7], vec![2.0]),
            5,
        ))
        .unwrap();
    assert_eq!(
        hits.len(),
        1,
        "point 2 has no sparse vector: not a candidate"
    );
    assert_eq!((hits[0].id, hits[0].score), (PointId::Num(1), 4.0));
}

#[test]
fn bad_sparse_input_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let c = db
        .create_collection("c", schema(Modifier::Idf), CollectionConfig::default())
        .unwrap();
    c.upsert(vec![
        Point::new(1, vec![0.0, 1.0]).with_sparse("s", SparseVector::new(vec![1], vec![1.0])),
    ])
    .unwrap();
    let seq = c.last_seq();
    let good =
        Point::new(2, vec![1.0, 0.0]).with_sparse("s", SparseVector::new(vec![1], vec![1.0]));
    let with = |v: SparseVector| Point::new(9, vec![1.0, 0.0]).with_sparse("s", v);
    let cases = [
        (
            with(SparseVector::new(vec![1, 2], vec![1.0])),
            "point 9: vector `s`: 2 indices but 1 values",
        ),
        (
            with(SparseVector::new(vec![4, 8, 4], vec![1.0, 2.0, 3.0])),
            "point 9: vector `s`: index 4 appears twice (indices[0] and indices[2])",
        ),
        (
            with(SparseVector::new(vec![4, 8], vec![1.0, f32::NAN])),
            "point 9: vector `s`: values[1] is NaN",
        ),
        (
            with(SparseVector::new(vec![4], vec![f32::INFINITY])),
            "values[0] is inf",
        ),
        (
            Point::new(9, vec![1.0, 0.0]).with_sparse("", SparseVector::new(vec![1], vec![1.0])),
            "it is a dense vector, not a sparse one",
        ),
        (
            Point::new(9, vec![1.0, 0.0]).with_vector("s", vec![1.0]),
            "it is a sparse vector",
        ),
        (
            Point::new(9, vec![1.0, 0.0]).with_sparse("t", SparseVector::new(vec![1], vec![1.0])),
            "no vector named `t` (it has: \"\" (default), `s` (sparse))",
        ),
    ];
    for (bad, says) in cases {
        // The good point in the same batch is refused too.
        let err = c.upsert(vec![good.clone(), bad]).unwrap_err().to_string();
        assert!(err.contains(says), "expected {says:?} in: {err}");
    }
    assert_eq!(c.last_seq(), seq, "nothing was logged");
    assert_eq!(c.count(), 1);
    let query_cases = [
        (
            SearchRequest::sparse("", SparseVector::new(vec![1], vec![1.0]), 3),
            "vector ``: it is a dense vector, not a sparse one",
        ),
        (
            SearchRequest {
                vector_name: "s".into(),
                ..SearchRequest::new(vec![1.0], 3)
            },
            "it is a sparse vector",
        ),
        (
            SearchRequest::sparse("s", SparseVector::new(vec![3, 3], vec![1.0, 1.0]), 3),
            "index 3 appears twice",
        ),
        (
            SearchRequest::sparse("s", SparseVector::new(vec![3], vec![f32::NAN]), 3),
            "values[0] is NaN",
        ),
    ];
    for (req, says) in query_cases {
        let err = c.search(&req).unwrap_err().to_string();
        assert!(err.contains(says), "expected {says:?} in: {err}");
        let err = c.search_batch(&[req]).unwrap_err().to_string();
        assert!(err.contains(says), "batch: expected {says:?} in: {err}");
    }
    // Schemas: a name both dense and sparse.
    let both = Schema::dense(2, Distance::Dot).with_sparse("", SparseKind::default());
    let err = db
        .create_collection("d", both, CollectionConfig::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("both as a dense and a sparse vector"), "{err}");
}

/// Flips one byte in the middle of `path`'s body.
fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = 64 + (bytes.len() - 68) / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

fn sealed_collection(dir: &Path) -> Vec<ScoredPoint> {
    let db = Database::open(dir, DatabaseOptions::default()).unwrap();
    let c = db
        .create_collection("c", schema(Modifier::None), CollectionConfig::default())
        .unwrap();
    let mut rng = Rng(7);
    let points: Vec<Point> = (0..500)
        .map(|id| Point::new(id, vec![0.0, 1.0]).with_sparse("s", sparse(&mut rng)))
        .collect();
    c.upsert(points).unwrap();
    c.flush().unwrap();
    c.search(&SearchRequest::sparse(
        "s",
        SparseVector::new(vec![0, 1, 2, 3], vec![1.0, 0.5, -0.5, 2.0]),
        10,
    ))
    .unwrap()
}

fn segment_dir(dir: &Path) -> std::path::PathBuf {
    let segments = dir.join("collections/c/segments");
    let entry = std::fs::read_dir(&segments)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    entry.path()
}

#[test]
fn damaged_sparse_rows_fail_the_open_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    sealed_collection(dir.path());
    let file = segment_dir(dir.path()).join("sparse-0");
    damage(&file);
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let reason = db
        .damaged_collections()
        .remove("c")
        .expect("reported damaged");
    assert!(reason.contains(&file.display().to_string()), "{reason}");
    assert!(reason.contains("checksum"), "{reason}");
}

#[test]
fn a_damaged_inverted_index_is_rebuilt_from_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let before = sealed_collection(dir.path());
    assert_eq!(before.len(), 10);
    let file = segment_dir(dir.path()).join("postings-0");
    let good = std::fs::read(&file).unwrap();
    damage(&file);
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let c = db.collection("c").unwrap();
    let after = c
        .search(&SearchRequest::sparse(
            "s",
            SparseVector::new(vec![0, 1, 2, 3], vec![1.0, 0.5, -0.5, 2.0]),
            10,
        ))
        .unwrap();
    assert_eq!(after, before);
    assert_eq!(std::fs::read(&file).unwrap(), good, "rebuilt as it was");
}

#[test]
fn a_sparse_collection_is_refused_by_builds_without_sparse_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    db.create_collection("sparse", schema(Modifier::Idf), CollectionConfig::default())
        .unwrap();
    db.create_collection(
        "dense",
        Schema::dense(2, Distance::Dot),
        CollectionConfig::default(),
    )
    .unwrap();
    let version = |name: &str| {
        let bytes =
            std::fs::read(dir.path().join("collections").join(name).join("manifest")).unwrap();
        u32::from_le_bytes(bytes[8..12].try_into().unwrap())
    };
    // Version 3 is refused by builds reading up to 2 ("written by a newer Quiver"); dense
    // collections stay at 2, readable by them.
    assert_eq!(version("sparse"), 3);
    assert_eq!(version("dense"), 2);
    let old = quiver_storage::frame::FileKind {
        magic: *b"QVMANIF\n",
        version: 2,
    };
    let err =
        quiver_storage::frame::read_file(&dir.path().join("collections/sparse/manifest"), old)
            .unwrap_err();
    assert!(err.to_string().contains("newer Quiver"), "{err}");
}

#[test]
fn idf_follows_deletions() {
    // Index 1 is held by every point, index 2 by one: IDF makes the rare index count more,
    // and deleting points changes the counts the next query sees.
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let c = db
        .create_collection("c", schema(Modifier::Idf), CollectionConfig::default())
        .unwrap();
    let points: Vec<Point> = (0..10)
        .map(|id| {
            let v = if id == 0 {
                SparseVector::new(vec![1, 2], vec![1.0, 1.0])
            } else {
                SparseVector::new(vec![1], vec![1.0])
            };
            Point::new(id, vec![0.0, 1.0]).with_sparse("s", v)
        })
        .collect();
    c.upsert(points).unwrap();
    c.flush().unwrap();
    let idf = |big_n: f64, n: f64| (1.0 + (big_n - n + 0.5) / (n + 0.5)).ln();
    let q = SearchRequest::sparse("s", SparseVector::new(vec![2], vec![1.0]), 1);
    let score = c.search(&q).unwrap()[0].score;
    assert!((f64::from(score) - idf(10.0, 1.0)).abs() < 1e-6, "{score}");
    c.delete(&(5..10).map(PointId::Num).collect::<Vec<_>>())
        .unwrap();
    let score = c.search(&q).unwrap()[0].score;
    assert!((f64::from(score) - idf(5.0, 1.0)).abs() < 1e-6, "{score}");
}

#[test]
fn a_collection_may_have_sparse_vectors_only() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema {
        vectors: BTreeMap::new(),
        sparse_vectors: BTreeMap::from([("s".to_string(), SparseKind::default())]),
    };
    {
        let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
        let c = db
            .create_collection("c", schema, CollectionConfig::default())
            .unwrap();
        let point = |id: u64, v: SparseVector| Point {
            id: PointId::Num(id),
            vectors: BTreeMap::new(),
            sparse: BTreeMap::from([("s".to_string(), v)]),
            multi: BTreeMap::new(),
            payload: Payload::new(),
        };
        c.upsert(vec![
            point(1, SparseVector::new(vec![1, 2], vec![1.0, 2.0])),
            point(2, SparseVector::new(vec![2], vec![3.0])),
        ])
        .unwrap();
        c.flush().unwrap();
        c.upsert(vec![point(3, SparseVector::new(vec![2], vec![0.5]))])
            .unwrap();
    }
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let c = db.collection("c").unwrap();
    let hits = c
        .search(&SearchRequest::sparse(
            "s",
            SparseVector::new(vec![2], vec![1.0]),
            10,
        ))
        .unwrap();
    let got: Vec<(PointId, f32)> = hits.iter().map(|h| (h.id, h.score)).collect();
    assert_eq!(
        got,
        vec![
            (PointId::Num(2), 3.0),
            (PointId::Num(1), 2.0),
            (PointId::Num(3), 0.5)
        ]
    );
}
