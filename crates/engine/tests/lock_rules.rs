//! Defect 4 of the engine-hardening issue: batched searches held the mutable segment's read
//! lock across a parallel section of the shared rayon pool. A pool thread waiting for its
//! chunks could pick up another batch's chunk that wanted the same lock while a writer waited
//! for it (the lock then refuses new readers): the pool thread waited for the writer, the
//! writer for the pool thread (rayon#592). Many batch searches and writers at once, with a
//! watchdog.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;
use common::open_periodic;
use quiver_engine::*;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[test]
fn batch_searches_and_writers_on_the_mutable_segment_do_not_deadlock() {
    const DIM: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let db = open_periodic(dir.path(), Duration::from_secs(1));
    // Large enough that nothing seals: everything stays in the mutable segment.
    let c = db
        .create_collection("c", Schema::dense(DIM, Distance::Dot), Default::default())
        .unwrap();
    let vector = |i: u64| (0..DIM as u64).map(|j| ((i * 7 + j) % 11) as f32).collect();
    c.upsert((0..20_000).map(|i| Point::new(i, vector(i))).collect())
        .unwrap();
    // Batches of several blocks of 64 queries, so each batch is a parallel section.
    let batch: Vec<SearchRequest> = (0..512).map(|i| SearchRequest::new(vector(i), 5)).collect();
    let stop = AtomicBool::new(false);
    let (searches, writes) = (AtomicU64::new(0), AtomicU64::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let run = Duration::from_secs(3);
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::scope(|s| {
                // Batch searches called from inside the shared pool (as a server handler or
                // a caller's `par_iter` would): a pool thread holding a lock in one batch can
                // then be handed another batch's work.
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        (0..8).into_par_iter().for_each(|_| {
                            let hits = c.search_batch(&batch).unwrap();
                            assert_eq!(hits.len(), batch.len());
                            searches.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
                for w in 0..3u64 {
                    let (c, stop, writes) = (&c, &stop, &writes);
                    s.spawn(move || {
                        let mut i = 0;
                        while !stop.load(Ordering::Relaxed) {
                            let id = 20_000 + w * 1_000_000 + i;
                            c.upsert(vec![Point::new(id, vector(id))]).unwrap();
                            i += 1;
                            writes.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
                let started = Instant::now();
                while started.elapsed() < run {
                    std::thread::sleep(Duration::from_millis(20));
                }
                stop.store(true, Ordering::Relaxed);
            });
            tx.send(()).unwrap();
        });
        if rx.recv_timeout(run + Duration::from_secs(60)).is_err() {
            panic!(
                "deadlock: {} batch searches and {} writes, then nothing for 60 s",
                searches.load(Ordering::Relaxed),
                writes.load(Ordering::Relaxed)
            );
        }
    });
    assert!(searches.load(Ordering::Relaxed) > 0);
    assert!(writes.load(Ordering::Relaxed) > 0);
}
