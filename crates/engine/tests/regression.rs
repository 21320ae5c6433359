//! Regression tests, each named for what broke (see the engine-hardening issue).

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;
use common::open_periodic;
use quiver_engine::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn open(dir: &std::path::Path) -> Result<Database> {
    Database::open(dir, DatabaseOptions::default())
}

/// Defect 1: the directory lock was owned by `Database` alone, so a second `Database::open`
/// succeeded while a `Collection` handle of the first was still writing.
#[test]
fn the_directory_lock_lives_as_long_as_any_collection_handle() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    let c = db
        .create_collection("x", Schema::dense(2, Distance::Dot), Default::default())
        .unwrap();
    drop(db);
    let second = open(dir.path());
    assert!(
        matches!(&second, Err(e) if e.to_string().contains("lock")),
        "a second open must fail while a handle lives, got {second:?}"
    );
    c.upsert(vec![Point::new(1, vec![1.0, 0.0])]).unwrap();
    drop(c);
    let db = open(dir.path()).unwrap();
    assert_eq!(db.collection("x").unwrap().count(), 1);
}

/// Defect 3: an overwrite set the old row's deleted bit before pushing the new row, so a
/// concurrent search could miss the point, or (across a seal) return it twice. Writers
/// overwrite every id again and again while readers ask for all of them by exact search.
#[test]
fn searches_see_every_live_point_exactly_once_during_overwrites() {
    const IDS: u64 = 300;
    const DIM: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let db = open_periodic(dir.path(), Duration::from_millis(200));
    let config = CollectionConfig {
        seal_threshold_bytes: (DIM * 4 * 500) as u64,
        compact_deleted_fraction: 0.5,
        ..CollectionConfig::default()
    };
    let schema = Schema {
        sparse_vectors: Default::default(),
        vectors: [(String::new(), VectorKind::dense(DIM, Distance::Euclid))].into(),
    };
    let c = db.create_collection("c", schema, config).unwrap();
    let vector = |id: u64, round: u64| vec![id as f32, round as f32, 1.0, 0.5];
    c.upsert((0..IDS).map(|id| Point::new(id, vector(id, 0))).collect())
        .unwrap();
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(3);
    let problems = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..3u64 {
            let (c, stop) = (&c, &stop);
            s.spawn(move || {
                let mut round = 1;
                while !stop.load(Ordering::Relaxed) {
                    let batch = (0..IDS)
                        .filter(|id| id % 3 == w)
                        .take(20 + (round % 7) as usize)
                        .map(|id| Point::new(id, vector(id, round)))
                        .collect();
                    c.upsert(batch).unwrap();
                    round += 1;
                }
            });
        }
        for _ in 0..4 {
            let (c, stop, problems) = (&c, &stop, &problems);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let req = SearchRequest::new(vec![0.0; DIM], IDS as usize + 10);
                    let hits = c.search(&req).unwrap();
                    let mut seen = HashSet::new();
                    for h in &hits {
                        if !seen.insert(h.id) {
                            problems.lock().unwrap().push(format!("{} twice", h.id));
                        }
                    }
                    if seen.len() != IDS as usize {
                        problems
                            .lock()
                            .unwrap()
                            .push(format!("{} of {IDS} ids found", seen.len()));
                    }
                }
            });
        }
        while Instant::now() < deadline && problems.lock().unwrap().is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let problems = problems.into_inner().unwrap();
    assert!(
        problems.is_empty(),
        "{} inconsistent reads, first: {:?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
    c.check_integrity().unwrap();
}

/// `seal_threshold_bytes` was never validated (0 sealed after every write) and the merge
/// settings are new: out-of-range settings are refused with a message naming them.
#[test]
fn collection_settings_out_of_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    for (config, field) in [
        (
            CollectionConfig {
                seal_threshold_bytes: 0,
                ..CollectionConfig::default()
            },
            "seal_threshold_bytes",
        ),
        (
            CollectionConfig {
                merge_factor: 1,
                ..CollectionConfig::default()
            },
            "merge_factor",
        ),
        (
            CollectionConfig {
                max_segment_bytes: 0,
                ..CollectionConfig::default()
            },
            "max_segment_bytes",
        ),
    ] {
        let err = db
            .create_collection("c", Schema::dense(2, Distance::Dot), config)
            .unwrap_err();
        assert!(err.to_string().contains(field), "{err}");
    }
    assert!(db.list_collections().is_empty());
}
