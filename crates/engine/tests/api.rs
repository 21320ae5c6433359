//! The embedded API against a brute-force model: CRUD, search, seal, compaction, reopen and
//! bad input.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;
use common::Rng;
use quiver_engine::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

fn open(dir: &Path) -> Database {
    Database::open(dir, DatabaseOptions::default()).unwrap()
}

fn small_segments() -> CollectionConfig {
    CollectionConfig {
        seal_threshold_bytes: 8 * 4 * 40, // 40 rows of dim 8
        compact_deleted_fraction: 0.5,
        ..CollectionConfig::default()
    }
}

/// Exact top-k by brute force over the model, with user-facing scores.
fn brute_force(
    model: &BTreeMap<u64, Vec<f32>>,
    q: &[f32],
    k: usize,
    distance: Distance,
) -> Vec<(u64, f32)> {
    let norm = |v: &[f32]| {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect::<Vec<_>>()
    };
    let q = if distance == Distance::Cosine {
        norm(q)
    } else {
        q.to_vec()
    };
    let mut all: Vec<(u64, f64)> = model
        .iter()
        .map(|(id, v)| {
            let v = if distance == Distance::Cosine {
                norm(v)
            } else {
                v.clone()
            };
            let s = match distance {
                Distance::Cosine | Distance::Dot => v
                    .iter()
                    .zip(&q)
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum(),
                Distance::Euclid => -v
                    .iter()
                    .zip(&q)
                    .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                    .sum::<f64>(),
            };
            (*id, s)
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all.into_iter()
        .map(|(id, s)| {
            (
                id,
                if distance == Distance::Euclid {
                    (-s).sqrt() as f32
                } else {
                    s as f32
                },
            )
        })
        .collect()
}

fn check_search(
    c: &Collection,
    model: &BTreeMap<u64, Vec<f32>>,
    rng: &mut Rng,
    distance: Distance,
) {
    let queries: Vec<Vec<f32>> = (0..20).map(|_| rng.vector(8)).collect();
    let reqs: Vec<SearchRequest> = queries
        .iter()
        .map(|q| SearchRequest::new(q.clone(), 7))
        .collect();
    let batch = c.search_batch(&reqs).unwrap();
    for (q, b) in queries.iter().zip(&batch) {
        let want = brute_force(model, q, 7, distance);
        let got = c.search(&SearchRequest::new(q.clone(), 7)).unwrap();
        let ids = |v: &[ScoredPoint]| v.iter().map(|p| p.id).collect::<Vec<_>>();
        let want_ids: Vec<PointId> = want.iter().map(|(id, _)| PointId::Num(*id)).collect();
        assert_eq!(ids(&got), want_ids, "{distance:?}");
        assert_eq!(ids(b), want_ids, "{distance:?} batch");
        for (p, (_, s)) in got.iter().zip(&want) {
            assert!((p.score - s).abs() < 1e-4, "score {} vs {}", p.score, s);
        }
    }
}

#[test]
fn search_matches_brute_force_through_seal_delete_compact_and_reopen() {
    for distance in [Distance::Cosine, Distance::Dot, Distance::Euclid] {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(42);
        let mut model = BTreeMap::new();
        {
            let db = open(dir.path());
            let c = db
                .create_collection("c", Schema::dense(8, distance), small_segments())
                .unwrap();
            for batch in 0..10u64 {
                let points: Vec<Point> = (0..25)
                    .map(|i| {
                        let id = batch * 25 + i;
                        let v = rng.vector(8);
                        model.insert(id, v.clone());
                        Point::new(id, v)
                            .with_payload(json!({"i": id}).as_object().unwrap().clone())
                    })
                    .collect();
                c.upsert(points).unwrap();
            }
            // Overwrites and deletes across sealed and mutable segments.
            for id in (0..250).step_by(3) {
                let v = rng.vector(8);
                model.insert(id, v.clone());
                c.upsert(vec![Point::new(id, v)]).unwrap();
            }
            let gone: Vec<PointId> = (0..250).step_by(4).map(PointId::Num).collect();
            for id in &gone {
                if let PointId::Num(n) = id {
                    model.remove(n);
                }
            }
            c.delete(&gone).unwrap();
            assert_eq!(c.count(), model.len() as u64);
            assert!(
                c.info().unwrap().segments.len() > 2,
                "small threshold makes several segments"
            );
            check_search(&c, &model, &mut rng, distance);
            c.check_integrity().unwrap();
        }
        let db = open(dir.path());
        let c = db.collection("c").unwrap();
        assert_eq!(c.count(), model.len() as u64);
        check_search(&c, &model, &mut Rng(7), distance);
        c.compact(0.0).unwrap();
        c.check_integrity().unwrap();
        check_search(&c, &model, &mut Rng(8), distance);
        assert!(
            c.info()
                .unwrap()
                .segments
                .iter()
                .all(|s| s.deleted == 0 || !s.sealed)
        );
    }
}

#[test]
fn reopen_gives_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(1);
    let queries: Vec<SearchRequest> = (0..30)
        .map(|_| SearchRequest {
            with: With::ALL,
            ..SearchRequest::new(rng.vector(8), 10)
        })
        .collect();
    let before = {
        let db = open(dir.path());
        let c = db
            .create_collection("c", Schema::dense(8, Distance::Cosine), small_segments())
            .unwrap();
        let points: Vec<Point> = (0..300).map(|i| Point::new(i, rng.vector(8))).collect();
        c.upsert(points).unwrap();
        c.delete(&[PointId::Num(5), PointId::Num(77)]).unwrap();
        c.search_batch(&queries).unwrap()
    };
    let db = open(dir.path());
    let after = db.collection("c").unwrap().search_batch(&queries).unwrap();
    assert_eq!(before, after);
}

#[test]
fn crud_retrieve_scroll_and_uuids() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let schema = Schema {
        sparse_vectors: Default::default(),
        vectors: BTreeMap::from([
            ("text".to_string(), VectorKind::dense(3, Distance::Dot)),
            ("image".to_string(), VectorKind::dense(2, Distance::Euclid)),
        ]),
    };
    let c = db
        .create_collection("multi", schema, CollectionConfig::default())
        .unwrap();
    let uuid = PointId::parse("550e8400-e29b-41d4-a716-446655440000").unwrap();
    let mk = |id: PointId, x: f32| Point {
        sparse: Default::default(),
        multi: Default::default(),
        id,
        vectors: BTreeMap::from([
            ("text".into(), vec![x, 0.0, 1.0]),
            ("image".into(), vec![x, x]),
        ]),
        payload: json!({"x": x}).as_object().unwrap().clone(),
    };
    c.upsert(vec![
        mk(PointId::Num(2), 2.0),
        mk(uuid, 3.0),
        mk(PointId::Num(1), 1.0),
    ])
    .unwrap();
    let got = c
        .retrieve(&[uuid, PointId::Num(9), PointId::Num(1)], With::ALL)
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, uuid);
    assert_eq!(got[0].payload.as_ref().unwrap()["x"], json!(3.0));
    assert_eq!(got[1].vectors.as_ref().unwrap()["image"], vec![1.0, 1.0]);
    let page = c.scroll(None, 2, With::default()).unwrap();
    assert_eq!(
        page.points.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![PointId::Num(1), PointId::Num(2)]
    );
    assert_eq!(page.next, Some(uuid));
    assert!(page.points[0].payload.is_none());
    let page2 = c.scroll(page.next, 2, With::default()).unwrap();
    assert_eq!(page2.points.len(), 1);
    assert_eq!(page2.next, None);
    let hits = c
        .search(&SearchRequest {
            vector_name: "image".into(),
            score_threshold: Some(1.5),
            ..SearchRequest::new(vec![1.0, 1.0], 3)
        })
        .unwrap();
    // Euclid: distances 0 and sqrt(2) pass a threshold of 1.5, sqrt(8) does not.
    assert_eq!(
        hits.iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![PointId::Num(1), PointId::Num(2)]
    );
    assert!((hits[1].score - 2f32.sqrt()).abs() < 1e-6);
    assert_eq!(c.delete(&[PointId::Num(2), PointId::Num(99)]).unwrap(), 1);
    assert_eq!(c.count(), 2);
    assert_eq!(db.list_collections(), vec!["multi".to_string()]);
    db.drop_collection("multi").unwrap();
    assert!(matches!(
        db.collection("multi"),
        Err(Error::CollectionNotFound { .. })
    ));
    assert!(matches!(c.count_checked(), Err(Error::Unavailable { .. })));
    assert!(db.list_collections().is_empty());
}

#[test]
fn bad_input_is_rejected_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let c = db
        .create_collection(
            "c",
            Schema::dense(3, Distance::Cosine),
            CollectionConfig::default(),
        )
        .unwrap();
    c.upsert(vec![Point::new(1, vec![1.0, 2.0, 3.0])]).unwrap();
    let seq = c.info().unwrap().last_seq;

    let err = c
        .upsert(vec![
            Point::new(2, vec![1.0, 2.0]),
            Point::new(3, vec![1.0, 1.0, 1.0]),
        ])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DimensionMismatch {
                expected: 3,
                got: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("point 2"), "{err}");
    let err = c
        .upsert(vec![Point::new(3, vec![1.0, f32::NAN, 1.0])])
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 1, .. }), "{err}");
    let err = c
        .upsert(vec![Point::new(3, vec![1.0, f32::INFINITY, 1.0])])
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    let err = c
        .upsert(vec![
            Point::new(3, vec![1.0, 1.0, 1.0]).with_vector("other", vec![1.0]),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::UnknownVector { .. }), "{err}");
    let err = c.search(&SearchRequest::new(vec![1.0], 3)).unwrap_err();
    assert!(matches!(err, Error::DimensionMismatch { .. }), "{err}");
    assert_eq!(c.count(), 1);
    assert_eq!(c.info().unwrap().last_seq, seq, "nothing was logged");

    assert!(matches!(
        db.create_collection(
            "c",
            Schema::dense(3, Distance::Dot),
            CollectionConfig::default()
        ),
        Err(Error::CollectionExists { .. })
    ));
    assert!(matches!(
        db.create_collection(
            "../x",
            Schema::dense(3, Distance::Dot),
            CollectionConfig::default()
        ),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        db.create_collection(
            "z",
            Schema::dense(0, Distance::Dot),
            CollectionConfig::default()
        ),
        Err(Error::InvalidSchema { .. })
    ));
    for bad in [-0.1, 1.5, f64::NAN] {
        let config = CollectionConfig {
            filter_scan_fraction: bad,
            ..CollectionConfig::default()
        };
        assert!(matches!(
            db.create_collection("z", Schema::dense(3, Distance::Dot), config),
            Err(Error::InvalidSchema { .. })
        ));
    }
    assert!(matches!(
        db.collection("nope"),
        Err(Error::CollectionNotFound { .. })
    ));
    // Huge k is bounded by the collection size, not allocated.
    assert_eq!(
        c.search(&SearchRequest::new(vec![1.0, 0.0, 0.0], usize::MAX))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_second_process_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _db = open(dir.path());
    let err = Database::open(dir.path(), DatabaseOptions::default()).unwrap_err();
    assert!(err.to_string().contains("locked"), "{err}");
}

#[test]
fn newer_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let newer = quiver_storage_frame_with_version(DATA_DIR_KIND.version + 1);
    std::fs::write(dir.path().join("quiver.meta"), newer).unwrap();
    let err = Database::open(dir.path(), DatabaseOptions::default()).unwrap_err();
    assert!(err.to_string().contains("newer Quiver"), "{err}");
}

/// A `quiver.meta` as a future version would write it: the documented header layout
/// (docs/format.md) with a higher version number.
fn quiver_storage_frame_with_version(version: u32) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[0..8].copy_from_slice(&DATA_DIR_KIND.magic);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h[16..24].copy_from_slice(&2u64.to_le_bytes());
    let crc = crc32c_of(&h[0..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(b"{}");
    h.extend_from_slice(&crc32c_of(b"{}").to_le_bytes());
    h
}

fn crc32c_of(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32C (Castagnoli), independent of the implementation under test.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn wal_damage_torn_tail_is_cut_and_middle_damage_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        let c = db
            .create_collection(
                "c",
                Schema::dense(4, Distance::Dot),
                CollectionConfig::default(),
            )
            .unwrap();
        for i in 0..3 {
            c.upsert(vec![Point::new(i, vec![1.0; 4])]).unwrap();
        }
    }
    let wal_dir = dir.path().join("collections/c/wal");
    let wal_file = std::fs::read_dir(&wal_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&wal_file).unwrap();
    // Torn tail: half of a fourth record.
    let mut torn = bytes.clone();
    torn.extend_from_slice(&bytes[64..64 + 20]);
    std::fs::write(&wal_file, &torn).unwrap();
    {
        let db = open(dir.path());
        let c = db.collection("c").unwrap();
        assert_eq!(c.count(), 3);
        assert_eq!(c.recovery_report().torn_tail_bytes, 20);
    }
    // Damage inside the first record, with valid records after it.
    let mut bad = std::fs::read(&wal_file).unwrap();
    bad[64 + 30] ^= 0xff;
    std::fs::write(&wal_file, &bad).unwrap();
    // The database opens; the damaged collection is reported, not opened.
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let err = db.collection("c").unwrap_err();
    assert!(matches!(err, Error::CollectionDamaged { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&wal_file.display().to_string()) && msg.contains("byte 64"),
        "{msg}"
    );
}

/// What a build that predates a storage kind does with a manifest naming it (here a kind no
/// build knows, as `lvq4x8` is to builds before it): the collection is refused, reported as
/// damaged with a message that names the kind and suggests a newer version, and its files
/// are left alone.
#[test]
fn a_manifest_with_an_unknown_quantization_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let index = IndexKind::Hnsw {
        m: 8,
        ef_construction: 64,
        quantization: Quantization::Lvq4x8,
    };
    let schema = Schema {
        vectors: BTreeMap::from([(
            String::new(),
            VectorKind::dense_indexed(4, Distance::Dot, index),
        )]),
        sparse_vectors: Default::default(),
    };
    drop(
        open(dir.path())
            .create_collection("c", schema, CollectionConfig::default())
            .unwrap(),
    );
    let coll = dir.path().join("collections/c");
    let mut manifest = quiver_storage::manifest::Manifest::read(&coll).unwrap();
    let stored = &mut manifest.schema["vectors"][""]["index"]["quantization"];
    assert_eq!(stored, "lvq4x8", "the manifest names the storage");
    *stored = serde_json::json!("lvq16");
    manifest.write(&coll, 2).unwrap();
    let db = open(dir.path());
    let err = db.collection("c").unwrap_err();
    assert!(matches!(err, Error::CollectionDamaged { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("unknown variant `lvq16`") && msg.contains("newer Quiver"),
        "{msg}"
    );
    assert!(coll.join("manifest").exists());
}

#[test]
fn deleting_half_and_compacting_frees_disk() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let c = db
        .create_collection(
            "c",
            Schema::dense(64, Distance::Dot),
            // Background maintenance must not compact first: this test counts what
            // `compact` drops.
            CollectionConfig {
                compact_deleted_fraction: 1.0,
                ..CollectionConfig::default()
            },
        )
        .unwrap();
    let mut rng = Rng(3);
    c.upsert((0..2000).map(|i| Point::new(i, rng.vector(64))).collect())
        .unwrap();
    c.flush().unwrap();
    let full = c.info().unwrap().disk_bytes;
    let half: Vec<PointId> = (0..2000).filter(|i| i % 2 == 0).map(PointId::Num).collect();
    c.delete(&half).unwrap();
    let report = c.compact(0.0).unwrap();
    assert_eq!(report.rows_dropped, 1000);
    let after = c.info().unwrap().disk_bytes;
    assert!(
        after < full * 6 / 10,
        "disk use {after} after deleting half of {full} bytes"
    );
    assert_eq!(c.count(), 1000);
    drop(c);
    drop(db);
    let db = open(dir.path());
    assert_eq!(db.collection("c").unwrap().count(), 1000);
}

#[test]
fn hnsw_collections_search_seal_delete_compact_and_reopen() {
    // The default traverses LVQ-8 codes; the other one the f32 rows.
    hnsw_collection_lifecycle(IndexKind::hnsw(8, 64));
    hnsw_collection_lifecycle(IndexKind::Hnsw {
        m: 8,
        ef_construction: 64,
        quantization: Quantization::None,
    });
}

#[test]
fn lvq4_collections_search_seal_delete_compact_and_reopen() {
    for quantization in [Quantization::Lvq4x8, Quantization::Lvq4] {
        let index = IndexKind::Hnsw {
            m: 8,
            ef_construction: 64,
            quantization,
        };
        // 8 dimensions: all in the tail of the 4-bit layout; 72: one 64-dimension block and
        // a tail, clustered (uniform vectors of 72 dimensions have no near neighbours to
        // speak of: f32 traversal reached recall 0.73 on them).
        for (dim, clustered) in [(8, false), (72, true)] {
            let dir = hnsw_collection_lifecycle_in(index, dim, clustered);
            // The codes are where the format says, of the kind the schema asks for.
            let segments = dir.path().join("collections/g/segments");
            let mut graphs = 0;
            for seg in std::fs::read_dir(&segments).unwrap() {
                let seg = seg.unwrap().path();
                if seg.join("hnsw-0").exists() {
                    assert!(!seg.join("lvq8-0").exists(), "{seg:?} has lvq8-0");
                    let (meta, body) = quiver_storage::frame::read_file(
                        &seg.join("lvq4-0"),
                        quiver_storage::segment::LVQ4_KIND,
                    )
                    .unwrap();
                    let codes = quiver_index::lvq4::Lvq4::from_bytes(&body).unwrap();
                    let residual = quantization == Quantization::Lvq4x8;
                    assert_eq!(codes.has_residual(), residual);
                    let want = [codes.len() as u64, dim as u64, u64::from(residual), 0];
                    assert_eq!(meta.meta, want);
                    graphs += 1;
                }
            }
            assert!(graphs > 0, "no graph segment after compaction");
        }
    }
}

fn hnsw_collection_lifecycle(index: IndexKind) {
    hnsw_collection_lifecycle_in(index, 8, false);
}

/// Seal, search (recall against brute force), delete, reopen, compact, on uniform vectors
/// or around 20 centres; returns the data directory.
fn hnsw_collection_lifecycle_in(
    index: IndexKind,
    dim: usize,
    clustered: bool,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(11);
    let mut centres = Rng(5);
    let centres: Vec<Vec<f32>> = (0..20).map(|_| centres.vector(dim)).collect();
    let vector = move |rng: &mut Rng| match clustered {
        true => {
            let c = rng.pick(&centres);
            c.iter().map(|x| x + 0.3 * rng.f32()).collect()
        }
        false => rng.vector(dim),
    };
    let schema = Schema {
        sparse_vectors: Default::default(),
        vectors: BTreeMap::from([(
            String::new(),
            VectorKind::dense_indexed(dim, Distance::Cosine, index),
        )]),
    };
    let mut model = BTreeMap::new();
    let queries: Vec<SearchRequest> = (0..40)
        .map(|_| SearchRequest {
            ef: Some(64),
            ..SearchRequest::new(vector(&mut rng), 10)
        })
        .collect();
    let recall = |c: &Collection, model: &BTreeMap<u64, Vec<f32>>| {
        let mut hit = 0;
        for q in &queries {
            let QueryVector::Dense(v) = &q.vector else {
                unreachable!("dense queries")
            };
            let want: Vec<PointId> = brute_force(model, v, 10, Distance::Cosine)
                .iter()
                .map(|(id, _)| PointId::Num(*id))
                .collect();
            let got = c.search(q).unwrap();
            assert!(
                got.iter()
                    .all(|p| matches!(p.id, PointId::Num(n) if model.contains_key(&n))),
                "a deleted point was returned"
            );
            hit += got.iter().filter(|p| want.contains(&p.id)).count();
        }
        hit as f64 / (queries.len() * 10) as f64
    };
    let before = {
        let db = open(dir.path());
        let c = db
            .create_collection("g", schema, CollectionConfig::default())
            .unwrap();
        let points: Vec<Point> = (0..4000u64)
            .map(|i| {
                let v = vector(&mut rng);
                model.insert(i, v.clone());
                Point::new(i, v)
            })
            .collect();
        c.upsert(points).unwrap();
        c.flush().unwrap();
        assert!(
            c.info()
                .unwrap()
                .segments
                .iter()
                .any(|s| s.sealed && s.rows == 4000)
        );
        let r = recall(&c, &model);
        assert!(r >= 0.9, "recall {r} on the sealed graph segment");
        // Delete a quarter: never returned, recall over the rest holds.
        let gone: Vec<PointId> = (0..4000).step_by(4).map(PointId::Num).collect();
        c.delete(&gone).unwrap();
        for i in (0..4000).step_by(4) {
            model.remove(&i);
        }
        let r = recall(&c, &model);
        assert!(r >= 0.9, "recall {r} after deletes");
        c.search_batch(&queries).unwrap()
    };
    let db = open(dir.path());
    let c = db.collection("g").unwrap();
    assert_eq!(
        c.search_batch(&queries).unwrap(),
        before,
        "reopen gives identical results"
    );
    // Compaction rebuilds the graph over the live rows.
    c.compact(0.0).unwrap();
    assert!(c.info().unwrap().segments.iter().all(|s| s.deleted == 0));
    let r = recall(&c, &model);
    assert!(r >= 0.9, "recall {r} after compaction");
    c.check_integrity().unwrap();
    eprintln!("{index:?}, dim {dim}: recall@10 {r:.3} after compaction");
    drop(c);
    drop(db);
    dir
}

/// `Collection::memory` counts what searches read: the codes, plus the `f32` rows only
/// where a search re-scores on them (LVQ-4x8 re-scores on its residual codes), and the graph
/// as index memory; the mutable segment counts its rows.
#[test]
fn memory_counts_codes_rows_and_graphs_per_storage() {
    const DIM: usize = 64;
    const ROWS: usize = MIN_GRAPH_ROWS + 100;
    let f32_bytes = (ROWS * DIM * 4) as u64;
    for (quantization, codes_per_row, reads_rows) in [
        (Quantization::None, 0, true),
        // codes, then lo/step/norm per row
        (Quantization::Lvq8, DIM + 12, true),
        (Quantization::Lvq4, DIM / 2 + 12, true),
        // and the residual codes with their norm
        (Quantization::Lvq4x8, DIM / 2 + 12 + DIM + 4, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let index = IndexKind::Hnsw {
            m: 8,
            ef_construction: 32,
            quantization,
        };
        let schema = Schema {
            sparse_vectors: Default::default(),
            vectors: BTreeMap::from([(
                String::new(),
                VectorKind::dense_indexed(DIM, Distance::Dot, index),
            )]),
        };
        let c = db
            .create_collection("m", schema, CollectionConfig::default())
            .unwrap();
        let mut rng = Rng(3);
        let points = (0..ROWS as u64)
            .map(|i| Point::new(PointId::Num(i), rng.vector(DIM)))
            .collect();
        c.upsert(points).unwrap();
        let mutable = c.memory();
        assert_eq!(
            mutable.vector_bytes, f32_bytes,
            "{quantization:?} before sealing"
        );
        assert_eq!(mutable.index_bytes, 0, "{quantization:?} before sealing");
        c.flush().unwrap();
        let sealed = c.memory();
        let mean = if codes_per_row == 0 { 0 } else { DIM * 4 };
        let want = (ROWS * codes_per_row + mean) as u64 + if reads_rows { f32_bytes } else { 0 };
        assert_eq!(sealed.vector_bytes, want, "{quantization:?}");
        // At least a count and level-0 links per row.
        assert!(
            sealed.index_bytes > (ROWS * 4 * 2) as u64,
            "{quantization:?}: {sealed:?}"
        );
    }
}
