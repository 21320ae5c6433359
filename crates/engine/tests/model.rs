//! Random operation sequences against a `BTreeMap` model: upserts, deletes, seals, compactions
//! and reopenings in any order must leave exactly the model's points, and search must equal
//! brute force over them.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use proptest::prelude::*;
use quiver_engine::*;
use std::collections::BTreeMap;
use std::sync::Arc;

const DIM: usize = 3;

#[derive(Debug, Clone)]
enum Action {
    Upsert(Vec<(u64, [i8; DIM])>),
    Delete(Vec<u64>),
    Flush,
    Compact,
    Reopen,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        5 => prop::collection::vec((0u64..40, prop::array::uniform3(-5i8..=5)), 1..12).prop_map(Action::Upsert),
        2 => prop::collection::vec(0u64..40, 1..6).prop_map(Action::Delete),
        1 => Just(Action::Flush),
        1 => Just(Action::Compact),
        1 => Just(Action::Reopen),
    ]
}

fn config() -> CollectionConfig {
    CollectionConfig {
        seal_threshold_bytes: (DIM * 4 * 16) as u64,
        compact_deleted_fraction: 0.25,
        ..CollectionConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn engine_matches_model(actions in prop::collection::vec(action(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
        let mut c: Arc<Collection> = db.create_collection("m", Schema::dense(DIM, Distance::Euclid), config()).unwrap();
        let mut model: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
        for a in &actions {
            match a {
                Action::Upsert(points) => {
                    let pts = points.iter().map(|(id, v)| Point::new(*id, v.iter().map(|&x| f32::from(x)).collect())).collect();
                    c.upsert(pts).unwrap();
                    for (id, v) in points {
                        model.insert(*id, v.iter().map(|&x| f32::from(x)).collect());
                    }
                }
                Action::Delete(ids) => {
                    let ids: Vec<PointId> = ids.iter().map(|&i| PointId::Num(i)).collect();
                    c.delete(&ids).unwrap();
                    for id in &ids {
                        if let PointId::Num(n) = id { model.remove(n); }
                    }
                }
                Action::Flush => c.flush().unwrap(),
                Action::Compact => { c.compact(0.0).unwrap(); }
                Action::Reopen => {
                    drop(c);
                    drop(db);
                    db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
                    c = db.collection("m").unwrap();
                }
            }
            prop_assert_eq!(c.count(), model.len() as u64);
        }
        c.check_integrity().unwrap();
        let page = c.scroll(None, 1000, With::ALL).unwrap();
        let seen: BTreeMap<u64, Vec<f32>> = page.points.iter().map(|r| {
            let PointId::Num(n) = r.id else { unreachable!() };
            (n, r.vectors.as_ref().unwrap()[""].clone())
        }).collect();
        prop_assert_eq!(&seen, &model);
        // Search equals brute force (integer coordinates: distances are exact).
        for q in [[0.0f32, 0.0, 0.0], [3.0, -2.0, 1.0]] {
            let mut want: Vec<(f32, u64)> = model.iter().map(|(id, v)| {
                (v.iter().zip(&q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(), *id)
            }).collect();
            want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let got = c.search(&SearchRequest::new(q.to_vec(), 5)).unwrap();
            let got_d: Vec<f32> = got.iter().map(|h| h.score * h.score).collect();
            let want_d: Vec<f32> = want.iter().take(5).map(|w| w.0).collect();
            prop_assert_eq!(got_d.len(), want_d.len());
            for (g, w) in got_d.iter().zip(&want_d) {
                prop_assert!((g - w).abs() < 1e-3, "distances {:?} vs {:?}", got_d, want_d);
            }
        }
    }
}

/// Writers, readers and seals at once: nothing is lost, and the integrity check passes.
#[test]
fn concurrent_writers_readers_and_seals() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let c = db
        .create_collection("c", Schema::dense(DIM, Distance::Dot), config())
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let c = &c;
            s.spawn(move || {
                for i in 0..150u64 {
                    let id = t * 1000 + i;
                    c.upsert(vec![Point::new(id, vec![1.0, id as f32, 0.0])])
                        .unwrap();
                    if i % 10 == 9 {
                        c.delete(&[PointId::Num(id - 5)]).unwrap();
                    }
                }
            });
        }
        s.spawn(|| {
            for _ in 0..200 {
                let hits = c
                    .search(&SearchRequest::new(vec![1.0, 0.0, 0.0], 5))
                    .unwrap();
                // Best first, no id twice (the full invariants: tests/concurrency.rs).
                assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
                let ids: std::collections::HashSet<_> = hits.iter().map(|h| h.id).collect();
                assert_eq!(ids.len(), hits.len(), "an id twice in {hits:?}");
                let _ = c.count();
            }
        });
        s.spawn(|| {
            for _ in 0..5 {
                c.compact(0.0).unwrap();
                // Disk usage is read while seals run (a regression: a file removed during the
                // walk made `compact` and `info` fail).
                c.info().unwrap();
            }
        });
    });
    c.check_integrity().unwrap();
    assert_eq!(c.count(), 3 * (150 - 15));
    drop(c);
    drop(db);
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let c = db.collection("c").unwrap();
    c.check_integrity().unwrap();
    assert_eq!(c.count(), 3 * (150 - 15));
}
