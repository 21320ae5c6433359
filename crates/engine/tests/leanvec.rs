//! LeanVec storage through the engine: recall against brute force for LeanVec-ID and -OOD
//! with each kind of primary and secondary codes, the query sample, deletes, filters, reopen,
//! compaction, a damaged projection file, and schemas that must be refused.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;
use common::Rng;
use quiver_engine::*;
use quiver_index::leanvec::{Fit, Projection};
use std::collections::BTreeMap;
use std::path::Path;

const DIM: usize = 64;
/// Rank of the data: the base lives near a 16-dimension subspace.
const RANK: usize = 16;

fn open(dir: &Path) -> Database {
    Database::open(dir, DatabaseOptions::default()).unwrap()
}

/// Synthetic data with a distribution shift: base rows and queries both near the span of
/// one `DIM × RANK` matrix, the rows around 200 centres with latent variances falling along
/// the latent coordinates, the queries weighting the *last* latent coordinates most (where
/// the base varies least), as questions stress what passages hold in small print.
struct Data {
    basis: Vec<Vec<f32>>,
    centres: Vec<Vec<f32>>,
    rng: Rng,
}

impl Data {
    fn new(seed: u64) -> Data {
        let mut rng = Rng(seed);
        let basis = (0..RANK).map(|_| rng.vector(DIM)).collect();
        let centres = (0..200)
            .map(|_| {
                (0..RANK)
                    .map(|k| rng.f32() * 2.0 / (1.0 + k as f32 * 0.4))
                    .collect()
            })
            .collect();
        Data {
            basis,
            centres,
            rng,
        }
    }

    /// The row of `latent`, with a little noise, at unit length (the collection is cosine).
    fn embed(&mut self, latent: &[f32]) -> Vec<f32> {
        let mut v: Vec<f32> = (0..DIM).map(|_| 0.02 * self.rng.f32()).collect();
        for (z, b) in latent.iter().zip(&self.basis) {
            for (x, y) in v.iter_mut().zip(b) {
                *x += z * y;
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / norm).collect()
    }

    fn row(&mut self) -> Vec<f32> {
        let c = self.rng.pick(&self.centres);
        let latent: Vec<f32> = (0..RANK)
            .map(|k| c[k] + 0.8 * self.rng.f32() / (1.0 + k as f32 * 0.4))
            .collect();
        self.embed(&latent)
    }

    fn query(&mut self) -> Vec<f32> {
        let latent: Vec<f32> = (0..RANK)
            .map(|k| self.rng.f32() * (1.0 + k as f32 * 0.4) / 4.0)
            .collect();
        self.embed(&latent)
    }
}

fn lean(
    dims: usize,
    fit: LeanVecFit,
    primary: LeanVecPrimary,
    secondary: LeanVecSecondary,
) -> IndexKind {
    IndexKind::Hnsw {
        m: 16,
        ef_construction: 100,
        quantization: Quantization::LeanVec(LeanVec {
            dims,
            fit,
            primary,
            secondary,
        }),
    }
}

fn schema(index: IndexKind) -> Schema {
    Schema {
        vectors: BTreeMap::from([(
            String::new(),
            VectorKind::dense_indexed(DIM, Distance::Cosine, index),
        )]),
        sparse_vectors: Default::default(),
    }
}

/// The ids of the `k` best live points of `model` (unit rows) by inner product.
fn brute_force(model: &BTreeMap<u64, Vec<f32>>, q: &[f32], k: usize) -> Vec<u64> {
    let mut all: Vec<(u64, f64)> = model
        .iter()
        .map(|(id, v)| {
            let s = v.iter().zip(q).map(|(a, b)| f64::from(a * b)).sum();
            (*id, s)
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.into_iter().take(k).map(|(id, _)| id).collect()
}

/// Recall@10 of `c` on `queries` against `model`, with beam `ef` and an optional filter
/// (which `keep` mirrors on ids); asserts no result is outside the model or fails `keep`.
fn recall(
    c: &Collection,
    model: &BTreeMap<u64, Vec<f32>>,
    queries: &[Vec<f32>],
    ef: usize,
    filter: Option<(&Filter, &dyn Fn(u64) -> bool)>,
) -> f64 {
    let mut hit = 0;
    for q in queries {
        let subset: BTreeMap<u64, Vec<f32>>;
        let truth_model = match filter {
            Some((_, keep)) => {
                subset = model
                    .iter()
                    .filter(|(id, _)| keep(**id))
                    .map(|(id, v)| (*id, v.clone()))
                    .collect();
                &subset
            }
            None => model,
        };
        let want = brute_force(truth_model, q, 10);
        let got = c
            .search(&SearchRequest {
                ef: Some(ef),
                filter: filter.map(|(f, _)| f.clone()),
                ..SearchRequest::new(q.clone(), 10)
            })
            .unwrap();
        assert_eq!(got.len(), 10);
        for p in &got {
            let PointId::Num(id) = p.id else {
                panic!("uuid {:?}", p.id)
            };
            assert!(
                truth_model.contains_key(&id),
                "point {id} should not be returned"
            );
        }
        hit += got
            .iter()
            .filter(|p| matches!(p.id, PointId::Num(n) if want.contains(&n)))
            .count();
    }
    hit as f64 / (queries.len() * 10) as f64
}

/// Creates collection `c` in `dir` with `index`, the query sample if given, and `n` rows
/// sealed into one segment; returns it and the model.
fn build(
    dir: &Path,
    index: IndexKind,
    data: &mut Data,
    n: u64,
    sample: Option<&[Vec<f32>]>,
) -> (Database, Arc<Collection>, BTreeMap<u64, Vec<f32>>) {
    let db = open(dir);
    let c = db
        .create_collection("c", schema(index), CollectionConfig::default())
        .unwrap();
    if let Some(s) = sample {
        assert_eq!(c.set_query_sample("", s).unwrap(), s.len());
    }
    let mut model = BTreeMap::new();
    let points: Vec<Point> = (0..n)
        .map(|i| {
            let v = data.row();
            model.insert(i, v.clone());
            let payload = serde_json::json!({"g": i % 3});
            Point::new(i, v).with_payload(payload.as_object().unwrap().clone())
        })
        .collect();
    c.upsert(points).unwrap();
    c.flush().unwrap();
    assert!(
        c.info()
            .unwrap()
            .segments
            .iter()
            .any(|s| s.sealed && s.rows == n)
    );
    (db, c, model)
}

use std::sync::Arc;

/// The projection a sealed segment of collection `c` in `dir` learned for vector 0.
fn projections(dir: &Path) -> Vec<Projection> {
    let segments = dir.join("collections/c/segments");
    let mut out = Vec::new();
    for seg in std::fs::read_dir(&segments).unwrap() {
        let path = seg.unwrap().path().join("leanvec-0");
        if path.exists() {
            let (header, body) =
                quiver_storage::frame::read_file(&path, quiver_storage::segment::LEANVEC_KIND)
                    .unwrap();
            let p = Projection::from_bytes(&body).unwrap();
            assert_eq!(header.meta, [DIM as u64, p.dims() as u64, 0, 0]);
            out.push(p);
        }
    }
    out
}

/// Recall ≥ 0.95 on 10,000 rows for LeanVec-ID and -OOD with every primary and secondary,
/// on queries unlike the base; OOD learned from a sample of other queries of the same kind.
#[test]
fn leanvec_recall_on_10k_rows_for_each_storage() {
    let configs = [
        (LeanVecFit::Id, LeanVecPrimary::Lvq8, LeanVecSecondary::Lvq8),
        (
            LeanVecFit::Ood,
            LeanVecPrimary::Lvq8,
            LeanVecSecondary::Lvq8,
        ),
        (LeanVecFit::Ood, LeanVecPrimary::Lvq4, LeanVecSecondary::F32),
        (LeanVecFit::Id, LeanVecPrimary::Lvq4, LeanVecSecondary::Lvq8),
    ];
    for (fit, primary, secondary) in configs {
        let dir = tempfile::tempdir().unwrap();
        let mut data = Data::new(21);
        let sample: Vec<Vec<f32>> = (0..500).map(|_| data.query()).collect();
        let queries: Vec<Vec<f32>> = (0..50).map(|_| data.query()).collect();
        let ood = fit == LeanVecFit::Ood;
        let (_db, c, model) = build(
            dir.path(),
            lean(14, fit, primary, secondary),
            &mut data,
            10_000,
            ood.then_some(&sample[..]),
        );
        let p = projections(dir.path());
        assert_eq!(p.len(), 1);
        match p[0].fit() {
            Fit::Ood { beta, queries } => {
                assert!(ood);
                assert_eq!(queries, 500);
                assert!(beta > 0.0, "the shifted sample should move the projection");
            }
            Fit::Id => assert!(!ood),
        }
        let r = recall(&c, &model, &queries, 300, None);
        eprintln!("{fit:?} {primary:?} {secondary:?}: recall@10 {r:.3} at ef 300");
        assert!(r >= 0.95, "{fit:?} {primary:?} {secondary:?}: recall {r}");
    }
}

/// Deletes are never returned, filters hold, reopening gives the same results, a lost
/// projection file is rebuilt, and compaction keeps the recall.
#[test]
fn leanvec_deletes_filters_reopen_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = Data::new(5);
    let sample: Vec<Vec<f32>> = (0..300).map(|_| data.query()).collect();
    let queries: Vec<Vec<f32>> = (0..30).map(|_| data.query()).collect();
    let index = lean(
        16,
        LeanVecFit::Ood,
        LeanVecPrimary::Lvq8,
        LeanVecSecondary::Lvq8,
    );
    let (db, c, mut model) = build(dir.path(), index, &mut data, 4000, Some(&sample));
    assert!(recall(&c, &model, &queries, 128, None) >= 0.95);
    let gone: Vec<PointId> = (0..4000).step_by(4).map(PointId::Num).collect();
    c.delete(&gone).unwrap();
    for i in (0..4000).step_by(4) {
        model.remove(&i);
    }
    assert!(recall(&c, &model, &queries, 128, None) >= 0.95);
    let filter = Filter::parse(r#"{"must": [{"key": "g", "match": {"value": 1}}]}"#).unwrap();
    let keep = |id: u64| id % 3 == 1;
    let r = recall(&c, &model, &queries, 128, Some((&filter, &keep)));
    assert!(r >= 0.95, "filtered recall {r}");
    let reqs: Vec<SearchRequest> = queries
        .iter()
        .map(|q| SearchRequest {
            ef: Some(64),
            ..SearchRequest::new(q.clone(), 10)
        })
        .collect();
    let before = c.search_batch(&reqs).unwrap();
    drop(c);
    drop(db);

    let db = open(dir.path());
    let c = db.collection("c").unwrap();
    assert_eq!(
        c.search_batch(&reqs).unwrap(),
        before,
        "reopen gives identical results"
    );
    drop(c);
    drop(db);

    // The projection is derived data: lost, it is learned again (from the stored sample).
    let segments = dir.path().join("collections/c/segments");
    for seg in std::fs::read_dir(&segments).unwrap() {
        let path = seg.unwrap().path().join("leanvec-0");
        if path.exists() {
            std::fs::remove_file(&path).unwrap();
        }
    }
    let db = open(dir.path());
    let c = db.collection("c").unwrap();
    assert!(matches!(projections(dir.path())[0].fit(), Fit::Ood { .. }));
    assert!(recall(&c, &model, &queries, 128, None) >= 0.95);

    c.compact(0.0).unwrap();
    assert!(c.info().unwrap().segments.iter().all(|s| s.deleted == 0));
    assert!(recall(&c, &model, &queries, 128, None) >= 0.95);
    c.check_integrity().unwrap();
}

/// OOD without a sample learns from the base alone (as ID) rather than failing the seal.
#[test]
fn leanvec_ood_without_a_sample_falls_back_to_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = Data::new(8);
    let queries: Vec<Vec<f32>> = (0..20).map(|_| data.query()).collect();
    let index = lean(
        16,
        LeanVecFit::Ood,
        LeanVecPrimary::Lvq8,
        LeanVecSecondary::F32,
    );
    let (_db, c, model) = build(dir.path(), index, &mut data, 3000, None);
    assert_eq!(projections(dir.path())[0].fit(), Fit::Id);
    assert!(recall(&c, &model, &queries, 128, None) >= 0.95);
}

#[test]
fn bad_query_samples_and_dims_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let too_wide = lean(
        DIM + 1,
        LeanVecFit::Id,
        LeanVecPrimary::Lvq8,
        LeanVecSecondary::Lvq8,
    );
    let err = db
        .create_collection("c", schema(too_wide), CollectionConfig::default())
        .unwrap_err();
    assert!(err.to_string().contains("leanvec dims = 65"), "{err}");
    let zero = lean(
        0,
        LeanVecFit::Id,
        LeanVecPrimary::Lvq8,
        LeanVecSecondary::Lvq8,
    );
    assert!(
        db.create_collection("c", schema(zero), CollectionConfig::default())
            .is_err()
    );
    let index = lean(
        8,
        LeanVecFit::Ood,
        LeanVecPrimary::Lvq8,
        LeanVecSecondary::Lvq8,
    );
    let c = db
        .create_collection("c", schema(index), CollectionConfig::default())
        .unwrap();
    let err = c
        .set_query_sample("", &[vec![1.0; DIM], vec![1.0; 3]])
        .unwrap_err();
    assert!(err.to_string().contains("query 1 of the sample"), "{err}");
    assert!(c.set_query_sample("", &[]).is_err());
    assert!(c.set_query_sample("other", &[vec![1.0; DIM]]).is_err());
    let mut nan = vec![1.0; DIM];
    nan[3] = f32::NAN;
    assert!(c.set_query_sample("", &[nan]).is_err());
    assert!(!dir.path().join("collections/c/query-sample-0").exists());
    assert_eq!(c.set_query_sample("", &[vec![0.5; DIM]]).unwrap(), 1);
    assert!(dir.path().join("collections/c/query-sample-0").exists());
}

/// The manifest names the storage with its parameters; one this build cannot read (as
/// `leanvec` is to builds before it) is refused as possibly written by a newer version.
#[test]
fn the_manifest_records_leanvec_and_unknown_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let index = lean(
        8,
        LeanVecFit::Ood,
        LeanVecPrimary::Lvq4,
        LeanVecSecondary::F32,
    );
    drop(
        open(dir.path())
            .create_collection("c", schema(index), CollectionConfig::default())
            .unwrap(),
    );
    let coll = dir.path().join("collections/c");
    let mut manifest = quiver_storage::manifest::Manifest::read(&coll).unwrap();
    let stored = &mut manifest.schema["vectors"][""]["index"]["quantization"];
    assert_eq!(
        *stored,
        serde_json::json!({"leanvec": {"dims": 8, "fit": "ood", "primary": "lvq4", "secondary": "f32"}})
    );
    stored["leanvec"]["fit"] = serde_json::json!("frank_wolfe");
    manifest.write(&coll, 2).unwrap();
    let err = open(dir.path()).collection("c").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("unknown variant `frank_wolfe`") && msg.contains("newer Quiver"),
        "{msg}"
    );
}

#[test]
fn quantization_names_parse_and_print_back() {
    let q = Quantization::parse("leanvec-ood:160").unwrap();
    assert_eq!(
        q,
        Quantization::LeanVec(LeanVec {
            dims: 160,
            fit: LeanVecFit::Ood,
            primary: LeanVecPrimary::Lvq8,
            secondary: LeanVecSecondary::Lvq8,
        })
    );
    assert_eq!(q.to_string(), "leanvec-ood:160:lvq8:lvq8");
    assert_eq!(q.name(), "leanvec");
    for s in [
        "leanvec-id:96:lvq4:f32",
        "leanvec-ood:1:lvq8:f32",
        "lvq4x8",
        "none",
    ] {
        assert_eq!(Quantization::parse(s).unwrap().to_string(), s);
    }
    for s in [
        "leanvec-id",
        "leanvec-id:",
        "leanvec-id:x",
        "leanvec-id:8:lvq2",
        "leanvec-id:8:lvq8:lvq4",
        "leanvec-id:8:lvq8:f32:more",
        "leanvec:8",
    ] {
        assert_eq!(Quantization::parse(s), None, "{s}");
    }
}
