//! Multi-vectors (late interaction): exact MaxSim search against a brute-force reference
//! over a model (mutable and sealed segments, deletions, overwrites, filters, compaction,
//! reopen and log replay), MUVERA graph search's recall against exact MaxSim, bad input, and
//! the manifest version that keeps older builds out.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;
use common::{Rng, open_periodic};
use proptest::prelude::*;
use quiver_engine::*;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

const DIM: usize = 6;

/// Point id -> (tokens as stored, payload value `g`).
type Model = BTreeMap<u64, (Vec<Vec<f32>>, u64)>;

fn schema(distance: Distance, index: IndexKind, muvera: Muvera) -> Schema {
    let mut s = Schema::dense(2, Distance::Dot);
    s.vectors
        .insert("m".into(), multi_kind(distance, index, muvera));
    s
}

fn multi_kind(distance: Distance, index: IndexKind, muvera: Muvera) -> VectorKind {
    let mut kind = VectorKind::multi(DIM, distance, index);
    if let VectorKind::MultiVector {
        muvera: m,
        max_tokens,
        ..
    } = &mut kind
    {
        *m = muvera;
        *max_tokens = 12;
    }
    kind
}

fn tokens(rng: &mut Rng, n: usize) -> Vec<Vec<f32>> {
    (0..n).map(|_| rng.vector(DIM)).collect()
}

fn normalised(tokens: &[Vec<f32>]) -> Vec<Vec<f32>> {
    tokens
        .iter()
        .map(|t| {
            let norm = t.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
            t.iter()
                .map(|&x| {
                    if norm > 0.0 {
                        (f64::from(x) / norm) as f32
                    } else {
                        x
                    }
                })
                .collect()
        })
        .collect()
}

/// MaxSim in `f64` by loops.
fn max_sim(query: &[Vec<f32>], doc: &[Vec<f32>]) -> f64 {
    query
        .iter()
        .map(|q| {
            doc.iter()
                .map(|p| {
                    q.iter()
                        .zip(p)
                        .map(|(&a, &b)| f64::from(a) * f64::from(b))
                        .sum::<f64>()
                })
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .sum()
}

/// Every model point passing `keep`, by MaxSim, best first.
fn reference(model: &Model, q: &[Vec<f32>], keep: impl Fn(u64) -> bool) -> Vec<(u64, f64)> {
    let mut all: Vec<(u64, f64)> = model
        .iter()
        .filter(|(_, (_, g))| keep(*g))
        .map(|(&id, (doc, _))| (id, max_sim(q, doc)))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    all
}

/// Exact MaxSim results against the reference: as many results, distinct points passing the
/// filter, each with its own score, rank by rank the reference's scores.
fn check(got: &[ScoredPoint], all: &[(u64, f64)], k: usize, what: &str) {
    let own: BTreeMap<u64, f64> = all.iter().copied().collect();
    assert_eq!(got.len(), k.min(all.len()), "{what}: result count");
    let mut seen = HashSet::new();
    for (rank, (hit, (_, want))) in got.iter().zip(all).enumerate() {
        let PointId::Num(id) = hit.id else {
            panic!("{what}: unexpected id {}", hit.id)
        };
        assert!(seen.insert(id), "{what}: point {id} twice");
        let mine = own
            .get(&id)
            .unwrap_or_else(|| panic!("{what}: point {id} is not a candidate"));
        let tolerance = 1e-4 * (1.0 + want.abs());
        assert!(
            (f64::from(hit.score) - mine).abs() < tolerance,
            "{what}: point {id} scored {} but its MaxSim is {mine}",
            hit.score
        );
        assert!(
            (f64::from(hit.score) - want).abs() < tolerance,
            "{what}: rank {rank}: {} where brute force has {want}",
            hit.score
        );
    }
}

fn check_queries(c: &Collection, model: &Model, rng: &mut Rng, cosine: bool, what: &str) {
    for round in 0..6 {
        let n = 1 + rng.below(4) as usize;
        let raw = tokens(rng, n);
        let q = if cosine {
            normalised(&raw)
        } else {
            raw.clone()
        };
        let k = 1 + rng.below(15) as usize;
        let filtered = round % 2 == 1;
        let mut req = SearchRequest::multi("m", raw, k);
        let keep = |g: u64| !filtered || g == 1 || g == 3;
        if filtered {
            req.filter = Some(
                Filter::from_json(&json!({"must": [{"key": "g", "match": {"any": [1, 3]}}]}))
                    .unwrap(),
            );
        }
        let got = c.search(&req).unwrap();
        check(
            &got,
            &reference(model, &q, keep),
            k,
            &format!("{what}, query {round}"),
        );
    }
}

fn open(dir: &Path) -> Database {
    open_periodic(dir, Duration::from_secs(60))
}

fn upsert_round(c: &Collection, model: &mut Model, rng: &mut Rng, cosine: bool) {
    let points: Vec<Point> = (0..120)
        .map(|_| {
            let id = rng.below(300);
            let n = 1 + rng.below(12) as usize;
            let t = tokens(rng, n);
            let g = rng.below(5);
            let stored = if cosine { normalised(&t) } else { t.clone() };
            model.insert(id, (stored, g));
            Point::new(id, vec![rng.f32(), rng.f32()])
                .with_multi("m", t)
                .with_payload(json!({"g": g}).as_object().unwrap().clone())
        })
        .collect();
    for batch in points.chunks(20) {
        c.upsert(batch.to_vec()).unwrap();
    }
    let ids: Vec<PointId> = (0..15).map(|_| PointId::Num(rng.below(300))).collect();
    for id in &ids {
        let PointId::Num(n) = id else { unreachable!() };
        model.remove(n);
    }
    c.delete(&ids).unwrap();
}

/// Stored tokens come back as the model holds them (retrieve).
fn check_retrieve(c: &Collection, model: &Model, what: &str) {
    let ids: Vec<PointId> = model.keys().take(20).map(|&i| PointId::Num(i)).collect();
    let got = c
        .retrieve(
            &ids,
            With {
                payload: false,
                vectors: true,
            },
        )
        .unwrap();
    assert_eq!(got.len(), ids.len(), "{what}");
    for r in got {
        let PointId::Num(id) = r.id else {
            unreachable!()
        };
        let multi = r.multi.unwrap();
        let want = &model[&id].0;
        let got = &multi["m"];
        assert_eq!(got.len(), want.len(), "{what}: point {id} token count");
        for (a, b) in got.iter().zip(want) {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-6, "{what}: point {id}: {a:?} vs {b:?}");
            }
        }
        assert!(
            !r.vectors.unwrap().contains_key("m"),
            "the encoding is internal"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]
    /// Exact MaxSim (no graph: segments are small) equals brute force through every stage
    /// of a collection's life.
    #[test]
    fn maxsim_search_equals_brute_force(seed in any::<u64>(), cosine in any::<bool>()) {
        let mut rng = Rng(seed);
        let dir = tempfile::tempdir().unwrap();
        let distance = if cosine { Distance::Cosine } else { Distance::Dot };
        let config = CollectionConfig {
            seal_threshold_bytes: 16 << 10,
            merge_factor: 0,
            compact_deleted_fraction: 1.0,
            ..CollectionConfig::default()
        };
        let muvera = Muvera { k_sim: 2, d_proj: 4, repetitions: 2, ..Muvera::default() };
        let mut model = Model::new();
        {
            let db = open(dir.path());
            let c = db
                .create_collection("c", schema(distance, IndexKind::hnsw(8, 32), muvera), config)
                .unwrap();
            upsert_round(&c, &mut model, &mut rng, cosine);
            check_queries(&c, &model, &mut rng, cosine, "mutable");
            c.flush().unwrap();
            prop_assert!(c.info().unwrap().segments.iter().filter(|s| s.sealed).count() >= 2);
            check_queries(&c, &model, &mut rng, cosine, "sealed");
            check_retrieve(&c, &model, "sealed");
            upsert_round(&c, &mut model, &mut rng, cosine);
            check_queries(&c, &model, &mut rng, cosine, "sealed and mutable, deletions");
            c.compact(0.0).unwrap();
            check_queries(&c, &model, &mut rng, cosine, "compacted");
            upsert_round(&c, &mut model, &mut rng, cosine);
        }
        // The last round is only in the log: reopening replays it.
        let db = open(dir.path());
        let c = db.collection("c").unwrap();
        check_queries(&c, &model, &mut rng, cosine, "reopened");
        check_retrieve(&c, &model, "reopened");
        c.check_integrity().unwrap();
    }
}

/// Documents made of tokens near a few of many topic centres, queries of tokens near some
/// of one document's: the structure late interaction is for.
fn clustered(rng: &mut Rng, centres: &[Vec<f32>], n: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|_| {
            let c = rng.pick(centres);
            c.iter().map(|x| x + 0.3 * rng.f32()).collect()
        })
        .collect()
}

/// With a graph over the MUVERA encodings (a segment above the graph threshold), the top 10
/// after re-scoring the best 300 candidates (a tenth of the points) by MaxSim matches exact MaxSim's top 10 for
/// nearly every query; exact search still equals brute force; deletions are respected.
#[test]
fn muvera_graph_recall_against_exact_maxsim() {
    let mut rng = Rng(7);
    let dir = tempfile::tempdir().unwrap();
    // No inner projection: the tokens have 6 dimensions (16 × 8 × 6 = 768 values).
    let muvera = Muvera {
        k_sim: 3,
        d_proj: 0,
        repetitions: 16,
        rescore: 300,
        ..Muvera::default()
    };
    let db = open(dir.path());
    let c = db
        .create_collection(
            "c",
            schema(Distance::Cosine, IndexKind::hnsw(16, 64), muvera),
            CollectionConfig::default(),
        )
        .unwrap();
    let centres: Vec<Vec<f32>> = (0..64).map(|_| rng.vector(DIM)).collect();
    let mut model = Model::new();
    let n = 3000;
    let points: Vec<Point> = (0..n)
        .map(|id| {
            let doc_centres: Vec<Vec<f32>> = (0..3).map(|_| rng.pick(&centres)).collect();
            let len = 4 + rng.below(8) as usize;
            let t = clustered(&mut rng, &doc_centres, len);
            model.insert(id, (normalised(&t), 0));
            Point::new(id, vec![0.0, 1.0]).with_multi("m", t)
        })
        .collect();
    for batch in points.chunks(500) {
        c.upsert(batch.to_vec()).unwrap();
    }
    c.flush().unwrap();
    let deleted: Vec<PointId> = (0..n).step_by(7).map(PointId::Num).collect();
    for id in &deleted {
        let PointId::Num(i) = id else { unreachable!() };
        model.remove(i);
    }
    c.delete(&deleted).unwrap();
    let queries = 50;
    let (mut found, mut total) = (0, 0);
    for _ in 0..queries {
        let id = rng.below(n);
        let Some((doc, _)) = model.get(&id) else {
            continue;
        };
        let q: Vec<Vec<f32>> = doc
            .iter()
            .take(3)
            .map(|t| t.iter().map(|x| x + 0.2 * rng.f32()).collect())
            .collect();
        let all = reference(&model, &normalised(&q), |_| true);
        let truth: HashSet<u64> = all.iter().take(10).map(|h| h.0).collect();
        let got = c.search(&SearchRequest::multi("m", q.clone(), 10)).unwrap();
        assert!(
            got.iter().all(|h| !deleted.contains(&h.id)),
            "a deleted point"
        );
        found += got
            .iter()
            .filter(|h| matches!(h.id, PointId::Num(i) if truth.contains(&i)))
            .count();
        total += truth.len();
        let exact = c
            .search(&SearchRequest {
                exact: true,
                ..SearchRequest::multi("m", q, 10)
            })
            .unwrap();
        check(&exact, &all, 10, "exact search beside the graph");
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.9, "recall@10 {recall} (seed 7)");
}

/// Bad multi-vectors are refused with errors naming the point, the vector and the token,
/// and nothing is written; a multi-vector and a dense vector cannot stand in for each other.
#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let c = db
        .create_collection(
            "c",
            schema(Distance::Dot, IndexKind::Flat, Muvera::default()),
            CollectionConfig::default(),
        )
        .unwrap();
    let good = vec![vec![1.0; DIM]; 2];
    let mk = |id: u64, t: Vec<Vec<f32>>| Point::new(id, vec![0.0, 1.0]).with_multi("m", t);
    let mut nan = good.clone();
    nan[1][3] = f32::NAN;
    let mut short = good.clone();
    short[1].pop();
    let cases: Vec<(Point, &str)> = vec![
        (
            mk(7, short),
            "token vector [1] has 5 values, the dimension is 6",
        ),
        (mk(7, nan), "token vector [1] has NaN at index 3"),
        (mk(7, vec![]), "no token vector"),
        (
            mk(7, vec![vec![0.5; DIM]; 13]),
            "13 token vectors, above the limit of 12",
        ),
        (Point::new(7, vec![0.0, 1.0]), "`m` is missing"),
        (
            Point::new(7, vec![0.0, 1.0]).with_vector("m", vec![1.0; DIM]),
            "give a list of token vectors",
        ),
        (
            Point::new(7, vec![0.0, 1.0])
                .with_multi("m", good.clone())
                .with_multi("", good.clone()),
            "it is a dense vector",
        ),
    ];
    for (p, want) in cases {
        let err = c
            .upsert(vec![mk(1, good.clone()), p])
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "want {want:?} in: {err}");
        assert!(
            err.contains('7') || want.contains("missing"),
            "names the point: {err}"
        );
    }
    assert_eq!(c.info().unwrap().points, 0, "nothing was written");
    let err = c
        .search(&SearchRequest::multi("m", vec![vec![1.0; DIM + 1]], 3))
        .unwrap_err()
        .to_string();
    assert!(err.contains("token vector [0] has 7 values"), "{err}");
    let err = c
        .search(&SearchRequest {
            vector_name: "m".into(),
            ..SearchRequest::new(vec![1.0; DIM], 3)
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("multi-vector"), "{err}");
}

/// Invalid settings are refused at creation, naming the vector and the setting.
#[test]
fn bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let cases = [
        (
            multi_kind(Distance::Euclid, IndexKind::Flat, Muvera::default()),
            "euclid",
        ),
        (
            multi_kind(
                Distance::Dot,
                IndexKind::Flat,
                Muvera {
                    repetitions: 0,
                    ..Muvera::default()
                },
            ),
            "repetitions",
        ),
        (
            multi_kind(
                Distance::Dot,
                IndexKind::Flat,
                Muvera {
                    k_sim: 8,
                    d_proj: 64,
                    repetitions: 8,
                    ..Muvera::default()
                },
            ),
            "above 65536",
        ),
        (
            multi_kind(
                Distance::Dot,
                IndexKind::Flat,
                Muvera {
                    rescore: 0,
                    ..Muvera::default()
                },
            ),
            "rescore",
        ),
    ];
    for (kind, want) in cases {
        let mut s = Schema::dense(2, Distance::Dot);
        s.vectors.insert("m".into(), kind);
        let err = db
            .create_collection("c", s, CollectionConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("multi-vector `m`") && err.contains(want),
            "{want}: {err}"
        );
    }
}

/// A collection with a multi-vector is written as manifest version 4 (older builds refuse
/// it as written by a newer version); one without stays at its old version.
#[test]
fn manifest_version_marks_multi_vectors() {
    use quiver_storage::frame;
    use quiver_storage::manifest::{FILE_NAME, MANIFEST_KIND};
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.create_collection(
        "multi",
        schema(Distance::Dot, IndexKind::Flat, Muvera::default()),
        CollectionConfig::default(),
    )
    .unwrap();
    db.create_collection(
        "dense",
        Schema::dense(2, Distance::Dot),
        CollectionConfig::default(),
    )
    .unwrap();
    let version = |name: &str| {
        let (h, _) = frame::read_file(
            &dir.path().join("collections").join(name).join(FILE_NAME),
            MANIFEST_KIND,
        )
        .unwrap();
        h.version
    };
    assert_eq!(version("multi"), 4);
    assert_eq!(version("dense"), 2);
}
