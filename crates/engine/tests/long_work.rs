//! Defect 9 of the engine-hardening issue: long work under locks that others need. A filtered
//! scroll evaluated its filter over the whole collection under the state lock (writers
//! waited), and dropping a collection held the database's collection map while it waited for
//! a seal (every other collection lookup waited). Each test starts the long work, then does
//! the short thing beside it and checks which finished first: no timing is measured.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;
use common::open_periodic;
use quiver_engine::*;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long the short operation waits before it starts, so the long one holds its locks:
/// a head start, not a measurement.
const HEAD_START: Duration = Duration::from_millis(20);
/// Short operations done beside the long one: enough that, were they queued behind it, they
/// could not all finish in the instant between its end and its check.
const WRITES: u64 = 100;
const LOOKUPS: u64 = 200_000;

#[test]
fn a_write_does_not_wait_for_a_filtered_scroll() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_periodic(dir.path(), Duration::from_secs(1));
    let c = db
        .create_collection("c", Schema::dense(2, Distance::Dot), Default::default())
        .unwrap();
    // Payloads checked point by point (no field index): a slow filter, about a second.
    for b in 0..40u64 {
        let points = (0..10_000)
            .map(|i| {
                let id = b * 10_000 + i;
                let mut p = Point::new(id, vec![1.0, id as f32]);
                p.payload
                    .insert("tag".into(), json!(format!("t{}", id % 1000)));
                p.payload.insert("n".into(), json!(id));
                p
            })
            .collect();
        c.upsert(points).unwrap();
    }
    c.flush().unwrap();
    let filter = Filter::from_json(&json!({"should": [
        {"key": "tag", "match": {"value": "t7"}},
        {"key": "n", "range": {"lt": 3}}
    ]}))
    .unwrap();
    // 100 writes started once the scroll holds whatever it holds. Checked by the scroll as
    // soon as it returns: had they all finished meanwhile? Had the scroll held a lock the
    // writes need, the first could only finish after it, and the other 99 after that.
    let writes = AtomicU64::new(0);
    let all_writes_first = std::thread::scope(|s| {
        let scroll = s.spawn(|| {
            let page = c
                .scroll_filtered(None, 1_000, With::default(), Some(&filter))
                .unwrap();
            let done = writes.load(Ordering::SeqCst);
            assert_eq!(page.points.len(), 403);
            done
        });
        std::thread::sleep(HEAD_START);
        for i in 0..WRITES {
            c.upsert(vec![Point::new(1_000_000 + i, vec![0.0, 1.0])])
                .unwrap();
            writes.fetch_add(1, Ordering::SeqCst);
        }
        scroll.join().unwrap()
    });
    assert_eq!(
        all_writes_first, WRITES,
        "writes waited for the scroll (or the scroll took under {HEAD_START:?}: make it slower)"
    );
}

#[test]
fn dropping_a_collection_does_not_block_the_others_during_its_seal() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let schema = Schema {
        sparse_vectors: Default::default(),
        vectors: [(
            String::new(),
            VectorKind::dense_indexed(64, Distance::Dot, IndexKind::hnsw(16, 200)),
        )]
        .into(),
    };
    let big = db
        .create_collection("big", schema, Default::default())
        .unwrap();
    db.create_collection("other", Schema::dense(2, Distance::Dot), Default::default())
        .unwrap();
    // A graph of 30,000 rows: a seal of a few seconds.
    for b in 0..6u64 {
        let points = (0..5_000)
            .map(|i| {
                let id = b * 5_000 + i;
                let v = (0..64).map(|j| ((id * 13 + j * 7) % 101) as f32).collect();
                Point::new(id, v)
            })
            .collect();
        big.upsert(points).unwrap();
    }
    // As in the scroll test: lookups of another collection while the drop waits for the seal;
    // the drop checks, as soon as it returns, whether they had all finished.
    let lookups = AtomicU64::new(0);
    let all_lookups_first = std::thread::scope(|s| {
        s.spawn(|| big.flush());
        std::thread::sleep(HEAD_START);
        let drop = s.spawn(|| {
            db.drop_collection("big").unwrap();
            lookups.load(Ordering::SeqCst)
        });
        std::thread::sleep(HEAD_START);
        for _ in 0..LOOKUPS {
            db.collection("other").unwrap();
            lookups.fetch_add(1, Ordering::SeqCst);
        }
        drop.join().unwrap()
    });
    assert_eq!(
        all_lookups_first, LOOKUPS,
        "lookups waited for the drop, which waited for the seal (or the seal was too quick)"
    );
    assert!(db.collection("big").is_err());
}
