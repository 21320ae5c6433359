//! Changing a collection's settings: persisted, applied to segments built afterwards, and
//! invalid values refused with nothing changed.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;
use common::Rng;
use quiver_engine::*;
use std::path::Path;

const DIM: usize = 8;

fn open(dir: &Path) -> Database {
    Database::open(dir, DatabaseOptions::default()).unwrap()
}

fn hnsw_schema(m: usize, ef_construction: usize) -> Schema {
    let mut schema = Schema::dense(DIM, Distance::Euclid);
    schema.vectors.insert(
        String::new(),
        VectorKind::dense_indexed(DIM, Distance::Euclid, IndexKind::hnsw(m, ef_construction)),
    );
    schema
}

fn hnsw_params(schema: &Schema) -> (usize, usize) {
    match schema.vectors[""].index() {
        IndexKind::Hnsw {
            m, ef_construction, ..
        } => (m, ef_construction),
        other => panic!("not an hnsw index: {other:?}"),
    }
}

/// `m` of the graph file of each sealed segment, by segment id.
fn graph_m(dir: &Path, c: &Collection) -> Vec<(u64, usize)> {
    c.info()
        .unwrap()
        .segments
        .iter()
        .filter(|s| s.sealed)
        .map(|s| {
            let seg = dir
                .join("collections")
                .join(c.name())
                .join("segments")
                .join(s.id.to_string());
            let (_, body) = quiver_storage::segment::read_index_file(
                &seg,
                &quiver_storage::segment::hnsw_file(0),
                quiver_storage::segment::HNSW_KIND,
            )
            .unwrap();
            (s.id, quiver_index::hnsw::decode(&body).unwrap().m())
        })
        .collect()
}

fn upsert_random(c: &Collection, rng: &mut Rng, ids: std::ops::Range<u64>) {
    let points = ids.map(|id| Point::new(id, rng.vector(DIM))).collect();
    c.upsert(points).unwrap();
}

#[test]
fn patched_settings_are_kept_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let patch = SettingsPatch {
        hnsw_m: Some(8),
        hnsw_ef_construction: Some(50),
        seal_threshold_bytes: Some(1 << 20),
        compact_deleted_fraction: Some(0.5),
        merge_factor: Some(4),
        max_segment_bytes: Some(1 << 25),
        filter_scan_fraction: Some(0.25),
        muvera_rescore: None,
    };
    let expected = CollectionConfig {
        seal_threshold_bytes: 1 << 20,
        compact_deleted_fraction: 0.5,
        merge_factor: 4,
        max_segment_bytes: 1 << 25,
        filter_scan_fraction: 0.25,
    };
    {
        let db = open(dir.path());
        let c = db
            .create_collection("c", hnsw_schema(16, 100), CollectionConfig::default())
            .unwrap();
        c.update_settings(&patch).unwrap();
        assert_eq!(hnsw_params(&c.schema()), (8, 50));
        assert_eq!(c.config(), expected);
        let info = c.info().unwrap();
        assert_eq!(
            (hnsw_params(&info.schema), info.config),
            ((8, 50), expected.clone())
        );
        // A patch of one field leaves the others alone.
        c.update_settings(&SettingsPatch {
            hnsw_m: Some(12),
            ..SettingsPatch::default()
        })
        .unwrap();
    }
    let db = open(dir.path());
    let c = db.collection("c").unwrap();
    assert_eq!(hnsw_params(&c.schema()), (12, 50));
    assert_eq!(c.config(), expected);
}

#[test]
fn segments_built_after_a_patch_use_the_new_graph_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let config = CollectionConfig {
        merge_factor: 0, // keep each sealed segment as it was built
        ..CollectionConfig::default()
    };
    let c = db
        .create_collection("c", hnsw_schema(16, 64), config)
        .unwrap();
    let mut rng = Rng(7);
    let rows = MIN_GRAPH_ROWS as u64 + 100;
    upsert_random(&c, &mut rng, 0..rows);
    c.flush().unwrap();
    let first = graph_m(dir.path(), &c);
    assert_eq!(first.iter().map(|s| s.1).collect::<Vec<_>>(), [16]);

    c.update_settings(&SettingsPatch {
        hnsw_m: Some(6),
        ..SettingsPatch::default()
    })
    .unwrap();
    upsert_random(&c, &mut rng, rows..2 * rows);
    c.flush().unwrap();
    let both = graph_m(dir.path(), &c);
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both[0], first[0], "an existing graph was rebuilt");
    assert_eq!(both[1].1, 6);

    // A merge (here: rewriting the first segment without a deleted point) builds with the
    // new parameters too.
    c.update_settings(&SettingsPatch {
        hnsw_m: Some(10),
        ..SettingsPatch::default()
    })
    .unwrap();
    c.delete(&[PointId::Num(0)]).unwrap();
    let report = c.compact(0.0).unwrap();
    assert!(report.segments_merged >= 1, "{report:?}");
    assert!(graph_m(dir.path(), &c).iter().any(|s| s.1 == 10));

    // The graphs still answer: every point finds itself.
    for id in [1, rows, rows + 7, 2 * rows - 1] {
        let v = c.retrieve(&[PointId::Num(id)], With::ALL).unwrap()[0]
            .vectors
            .as_ref()
            .unwrap()[""]
            .clone();
        let hits = c.search(&SearchRequest::new(v, 1)).unwrap();
        assert_eq!(hits[0].id, PointId::Num(id));
    }
}

#[test]
fn a_lower_seal_threshold_applies_to_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let c = db
        .create_collection("c", Schema::dense(DIM, Distance::Dot), Default::default())
        .unwrap();
    let mut rng = Rng(3);
    upsert_random(&c, &mut rng, 0..100);
    assert_eq!(c.info().unwrap().segments.len(), 1);
    c.update_settings(&SettingsPatch {
        seal_threshold_bytes: Some(1000),
        ..SettingsPatch::default()
    })
    .unwrap();
    upsert_random(&c, &mut rng, 100..101);
    // The write froze the full mutable segment: a fresh one took its place.
    assert!(c.info().unwrap().segments.len() >= 2);
    c.flush().unwrap();
    assert_eq!(c.count(), 101);
}

#[test]
fn invalid_settings_are_rejected_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let c = db
        .create_collection("c", hnsw_schema(16, 100), CollectionConfig::default())
        .unwrap();
    let before = c.info().unwrap();
    let invalid = [
        SettingsPatch {
            hnsw_m: Some(1),
            ..SettingsPatch::default()
        },
        SettingsPatch {
            hnsw_m: Some(513),
            ..SettingsPatch::default()
        },
        SettingsPatch {
            hnsw_ef_construction: Some(0),
            ..SettingsPatch::default()
        },
        SettingsPatch {
            seal_threshold_bytes: Some(0),
            ..SettingsPatch::default()
        },
        SettingsPatch {
            merge_factor: Some(1),
            ..SettingsPatch::default()
        },
        SettingsPatch {
            max_segment_bytes: Some(0),
            ..SettingsPatch::default()
        },
        SettingsPatch {
            compact_deleted_fraction: Some(1.5),
            ..SettingsPatch::default()
        },
        SettingsPatch {
            filter_scan_fraction: Some(f64::NAN),
            ..SettingsPatch::default()
        },
        // Valid fields beside an invalid one are not applied either.
        SettingsPatch {
            hnsw_m: Some(8),
            merge_factor: Some(4),
            filter_scan_fraction: Some(-0.1),
            ..SettingsPatch::default()
        },
    ];
    for patch in &invalid {
        let e = c.update_settings(patch).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidRequest { collection, .. } if collection == "c"),
            "{patch:?}: {e}"
        );
        let now = c.info().unwrap();
        assert_eq!((&now.schema, &now.config), (&before.schema, &before.config));
    }
    // Graph parameters on a collection without a graph index have nothing to apply to.
    let flat = db
        .create_collection(
            "flat",
            Schema::dense(DIM, Distance::Dot),
            Default::default(),
        )
        .unwrap();
    let e = flat
        .update_settings(&SettingsPatch {
            hnsw_m: Some(8),
            ..SettingsPatch::default()
        })
        .unwrap_err();
    assert!(matches!(e, Error::InvalidRequest { .. }), "{e}");
    drop((c, flat));
    drop(db);
    let db = open(dir.path());
    let info = db.collection("c").unwrap().info().unwrap();
    assert_eq!((info.schema, info.config), (before.schema, before.config));
}
