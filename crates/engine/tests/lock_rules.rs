//! Defect 4 of the engine-hardening issue: batched searches held the mutable segment's read
//! lock across a parallel section of the current rayon pool. While a pool thread holding the
//! lock waits for its chunks, the threads that stole them (and the holder itself) run other
//! work queued on the pool; if that is another batch search, it asks for the same lock, which
//! refuses new readers while a writer waits for it. The stolen chunk never finishes, so the
//! lock is never released and the writer never gets it (rayon#592). Batch searches queued on
//! one pool from several threads, writers beside them, and a watchdog.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;
use common::open_periodic;
use quiver_engine::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[test]
fn batch_searches_and_writers_on_the_mutable_segment_do_not_deadlock() {
    const DIM: usize = 16;
    const ROWS: u64 = 20_000;
    /// Threads calling batch searches into the pool.
    const SEARCHERS: usize = 4;
    const WRITERS: u64 = 3;
    let run = Duration::from_secs(3);
    // Any progress at all (a search or a write) within this long means no deadlock.
    let stall = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let db = open_periodic(dir.path(), Duration::from_secs(1));
    // Far below the seal threshold: everything stays in the mutable segment.
    let c = db
        .create_collection("c", Schema::dense(DIM, Distance::Dot), Default::default())
        .unwrap();
    let vector = |i: u64| (0..DIM as u64).map(|j| ((i * 7 + j) % 11) as f32).collect();
    c.upsert((0..ROWS).map(|i| Point::new(i, vector(i))).collect())
        .unwrap();
    let (searches, writes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (tx, rx) = std::sync::mpsc::channel();
    // The workload runs on a thread of its own that owns everything it touches (the database
    // too), so that when it deadlocks the test fails without waiting for (or dropping) what the
    // stuck threads hold.
    let workload = {
        let (searches, writes) = (Arc::clone(&searches), Arc::clone(&writes));
        move || {
            // 16 blocks of 64 queries: each batch is a parallel section that splits.
            let batch: Vec<SearchRequest> = (0..1024)
                .map(|i| SearchRequest::new(vector(i), 5))
                .collect();
            // A pool of its own, with more threads than cores: idle threads steal a batch's
            // chunks, and a thread waiting for a stolen chunk runs other queued work meanwhile,
            // here the batch searches the other threads queue (as a server running its
            // requests on a pool would).
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(4)
                .build()
                .unwrap();
            let stop = AtomicBool::new(false);
            std::thread::scope(|s| {
                for _ in 0..SEARCHERS {
                    s.spawn(|| {
                        while !stop.load(Ordering::Relaxed) {
                            let hits = pool.install(|| c.search_batch(&batch)).unwrap();
                            assert_eq!(hits.len(), batch.len());
                            searches.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
                for w in 0..WRITERS {
                    let (c, stop, writes, vector) = (&c, &stop, &writes, &vector);
                    s.spawn(move || {
                        let mut i = 0;
                        while !stop.load(Ordering::Relaxed) {
                            let id = ROWS + w * 1_000_000 + i;
                            c.upsert(vec![Point::new(id, vector(id))]).unwrap();
                            i += 1;
                            writes.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
                std::thread::sleep(run);
                stop.store(true, Ordering::Relaxed);
            });
            drop(c);
            drop(db);
            drop(dir);
            tx.send(()).unwrap();
        }
    };
    // Detached on purpose: a deadlocked workload is left behind (the test process ends anyway).
    drop(std::thread::spawn(workload));
    let progress = || searches.load(Ordering::Relaxed) + writes.load(Ordering::Relaxed);
    let (mut last, mut since) = (progress(), Instant::now());
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(()) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the workload panicked")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        let now = progress();
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() > stall {
            panic!(
                "deadlock: {} batch searches and {} writes, then nothing for {} s",
                searches.load(Ordering::Relaxed),
                writes.load(Ordering::Relaxed),
                stall.as_secs()
            );
        }
    }
    assert!(searches.load(Ordering::Relaxed) > 0);
    assert!(writes.load(Ordering::Relaxed) > 0);
}
