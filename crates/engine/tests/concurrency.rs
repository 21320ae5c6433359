//! Writers, readers and background maintenance at once, more threads than cores, for a bounded
//! time. Invariants: no search returns an id twice; every point that stays live (acknowledged
//! before the run and never deleted) is found by every exact search, batch search, filtered
//! search and scroll; nothing deadlocks (a watchdog fails the test); the integrity check and
//! a reopen agree with what the writers acknowledged.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;
use common::{Rng, scroll_all};
use quiver_engine::*;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const DIM: usize = 4;
/// Points that are overwritten but never deleted: every read must see each of them once.
const STABLE: u64 = 400;
/// Points that writers delete and re-insert: a read sees each at most once.
const CHURN: u64 = 400;
const RUN: Duration = Duration::from_secs(4);
/// The run is declared deadlocked if it has not finished this long after it should have.
const WATCHDOG: Duration = Duration::from_secs(120);

fn vector(id: u64, round: u64) -> Vec<f32> {
    vec![
        (id % 97) as f32,
        (round % 13) as f32,
        1.0,
        id as f32 / 1000.0,
    ]
}

fn point(id: u64, round: u64) -> Point {
    let mut p = Point::new(id, vector(id, round));
    p.payload.insert("group".into(), json!(id % 4));
    p.payload.insert("round".into(), json!(round));
    p
}

/// Checks one result list: no id twice, and every stable id of `want_group` (None: all) in it.
fn check(
    what: &str,
    ids: impl IntoIterator<Item = PointId>,
    want_group: Option<u64>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            problems.push(format!("{what}: {id} twice"));
        }
    }
    let missing = (0..STABLE)
        .filter(|id| want_group.is_none_or(|g| id % 4 == g))
        .filter(|id| !seen.contains(&PointId::Num(*id)))
        .count();
    if missing > 0 {
        problems.push(format!("{what}: {missing} stable points missing"));
    }
    problems
}

#[test]
fn writers_readers_and_maintenance_keep_every_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(
        dir.path(),
        DatabaseOptions {
            durability: Durability::Periodic(Duration::from_millis(100)),
            build_threads: 2,
            ..DatabaseOptions::default()
        },
    )
    .unwrap();
    let schema = Schema {
        sparse_vectors: Default::default(),
        vectors: BTreeMap::from([
            // Exact: every live point must be found.
            (
                "exact".to_string(),
                VectorKind::dense(DIM, Distance::Euclid),
            ),
            // A graph once segments reach 2,048 rows: built in the background.
            (
                "graph".to_string(),
                VectorKind::dense_indexed(DIM, Distance::Euclid, IndexKind::hnsw(8, 32)),
            ),
        ]),
    };
    let config = CollectionConfig {
        // About 2,200 rows per segment: graphs get built, seals happen often.
        seal_threshold_bytes: 2_200 * (2 * DIM as u64 * 4 + 120),
        compact_deleted_fraction: 0.2,
        merge_factor: 3,
        ..CollectionConfig::default()
    };
    let c = db.create_collection("c", schema, config).unwrap();
    c.create_field_index("group", FieldIndexKind::Integer)
        .unwrap();
    let with_both = |p: Point| {
        let v = p.vectors[""].clone();
        let mut p = p;
        p.vectors.clear();
        p.vectors.insert("exact".into(), v.clone());
        p.vectors.insert("graph".into(), v);
        p
    };
    c.upsert(
        (0..STABLE + CHURN)
            .map(|id| with_both(point(id, 0)))
            .collect(),
    )
    .unwrap();

    let stop = AtomicBool::new(false);
    let problems = Mutex::new(Vec::<String>::new());
    let reads = AtomicU64::new(0);
    let writes = AtomicU64::new(0);
    let report = |p: Vec<String>| {
        if !p.is_empty() {
            problems.lock().unwrap().extend(p);
        }
    };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let watchdog_scope = s.spawn(|| {
            std::thread::scope(|s| {
                // Writers: overwrite stable points, delete and re-insert churn points.
                for w in 0..3u64 {
                    let (c, stop, writes) = (&c, &stop, &writes);
                    s.spawn(move || {
                        let mut rng = Rng(w + 1);
                        let mut round = 1;
                        while !stop.load(Ordering::Relaxed) {
                            let batch: Vec<Point> = (0..1 + rng.below(40))
                                .map(|_| with_both(point(rng.below(STABLE + CHURN), round)))
                                .collect();
                            c.upsert(batch).unwrap();
                            if round % 3 == 0 {
                                let ids: Vec<PointId> = (0..1 + rng.below(20))
                                    .map(|_| PointId::Num(STABLE + rng.below(CHURN)))
                                    .collect();
                                c.delete(&ids).unwrap();
                            }
                            round += 1;
                            writes.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
                // Readers.
                let all = (STABLE + CHURN) as usize + 10;
                for r in 0..4u64 {
                    let (c, stop, reads, report) = (&c, &stop, &reads, &report);
                    s.spawn(move || {
                        let mut rng = Rng(100 + r);
                        while !stop.load(Ordering::Relaxed) {
                            let q = vector(rng.below(1000), rng.below(13));
                            let exact = SearchRequest {
                                vector_name: "exact".into(),
                                ..SearchRequest::new(q.clone(), all)
                            };
                            match rng.below(5) {
                                0 => {
                                    let hits = c.search(&exact).unwrap();
                                    report(check("search", hits.iter().map(|h| h.id), None));
                                }
                                1 => {
                                    let batch = c
                                        .search_batch(&[exact.clone(), exact.clone(), exact])
                                        .unwrap();
                                    for hits in batch {
                                        report(check("batch", hits.iter().map(|h| h.id), None));
                                    }
                                }
                                2 => {
                                    let group = rng.below(4);
                                    let filter = Filter::from_json(&json!({
                                        "must": [{"key": "group", "match": {"value": group}}]
                                    }))
                                    .unwrap();
                                    let req = SearchRequest {
                                        filter: Some(filter),
                                        ..exact
                                    };
                                    let hits = c.search(&req).unwrap();
                                    report(check(
                                        "filtered search",
                                        hits.iter().map(|h| h.id),
                                        Some(group),
                                    ));
                                }
                                3 => {
                                    // The graph is approximate: only "never twice".
                                    let req = SearchRequest {
                                        vector_name: "graph".into(),
                                        ..SearchRequest::new(q, 50)
                                    };
                                    let hits = c.search(&req).unwrap();
                                    let mut seen = HashSet::new();
                                    for h in hits {
                                        if !seen.insert(h.id) {
                                            report(vec![format!("graph search: {} twice", h.id)]);
                                        }
                                    }
                                }
                                _ => {
                                    report(check("scroll", scroll_all(c, 97), None));
                                }
                            }
                            reads.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
                // Explicit maintenance beside the background thread.
                {
                    let (c, stop) = (&c, &stop);
                    s.spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(300));
                            c.compact(0.1).unwrap();
                            c.info().unwrap();
                        }
                    });
                }
                let started = Instant::now();
                while started.elapsed() < RUN {
                    std::thread::sleep(Duration::from_millis(50));
                }
                stop.store(true, Ordering::Relaxed);
            });
            done_tx.send(()).unwrap();
        });
        if done_rx.recv_timeout(RUN + WATCHDOG).is_err() {
            panic!(
                "deadlock: the run did not finish {WATCHDOG:?} after its end ({} reads, {} writes)",
                reads.load(Ordering::Relaxed),
                writes.load(Ordering::Relaxed)
            );
        }
        watchdog_scope.join().unwrap();
    });
    let problems = problems.into_inner().unwrap();
    eprintln!(
        "{} reads, {} writes, segments now: {:?}",
        reads.load(Ordering::Relaxed),
        writes.load(Ordering::Relaxed),
        c.info().unwrap().segments
    );
    assert!(
        problems.is_empty(),
        "{} violations over {} reads and {} writes, first: {:?}",
        problems.len(),
        reads.load(Ordering::Relaxed),
        writes.load(Ordering::Relaxed),
        &problems[..problems.len().min(5)]
    );
    assert!(reads.load(Ordering::Relaxed) > 10, "readers ran");
    assert!(writes.load(Ordering::Relaxed) > 10, "writers ran");
    c.flush().unwrap();
    c.check_integrity().unwrap();
    let info = c.info().unwrap();
    assert!(
        info.segments.iter().filter(|s| s.sealed).count() >= 1,
        "seals happened: {:?}",
        info.segments
    );
    let live = scroll_all(&c, 1000);
    assert_eq!(live.len() as u64, c.count());
    drop(c);
    drop(db);
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let c = db.collection("c").unwrap();
    c.check_integrity().unwrap();
    assert_eq!(c.count(), live.len() as u64, "reopen finds what was live");
}
