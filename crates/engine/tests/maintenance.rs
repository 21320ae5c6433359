//! Background maintenance (defects 5 and 6 of the engine-hardening issue): a write that fills
//! the mutable segment returns without sealing it, the seal and graph build run on the
//! collection's maintenance thread, and the seal threshold counts payloads too.
//!
//! Its own test binary: it installs a logger to see which thread sealed.

#![allow(clippy::unwrap_used, reason = "tests")]

use quiver_engine::*;
use serde_json::json;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// (thread name, message) of every `quiver::progress` record.
static PROGRESS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "quiver::progress"
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            PROGRESS
                .lock()
                .unwrap()
                .push((thread, r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture;

fn capture_progress() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// Waits (up to a minute: a bound, not a timing) until no segment of `c` is left unsealed
/// but the mutable one.
fn wait_for_seals(c: &Collection) -> CollectionInfo {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = c.info().unwrap();
        if info.segments.iter().filter(|s| !s.sealed).count() <= 1 {
            return info;
        }
        assert!(Instant::now() < deadline, "seals never finished: {info:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Defect 5: the write that crossed the seal threshold sealed the segment and built its graph
/// on the writing thread (40 s for a 117k-row segment).
#[test]
fn the_seal_and_graph_build_run_on_the_maintenance_thread_not_the_writer() {
    capture_progress();
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let schema = Schema {
        sparse_vectors: Default::default(),
        vectors: [(
            String::new(),
            VectorKind::dense_indexed(32, Distance::Dot, IndexKind::hnsw(8, 32)),
        )]
        .into(),
    };
    // About 2,100 rows of 32 dimensions (with the per-row overhead), so the first sealed
    // segment is over MIN_GRAPH_ROWS and gets a graph.
    let config = CollectionConfig {
        seal_threshold_bytes: 2100 * (32 * 4 + 56),
        ..CollectionConfig::default()
    };
    let c = db.create_collection("bgseal", schema, config).unwrap();
    let writer = std::thread::current().name().unwrap_or("").to_string();
    // 4,000 rows in batches: the threshold is crossed during the import.
    for b in 0..40u64 {
        let points = (0..100)
            .map(|i| {
                let id = b * 100 + i;
                let v = (0..32).map(|j| ((id * 31 + j) % 97) as f32).collect();
                Point::new(id, v)
            })
            .collect();
        c.upsert(points).unwrap();
    }
    let info = wait_for_seals(&c);
    assert!(
        info.segments.iter().any(|s| s.sealed && s.rows >= 2048),
        "a segment with a graph was sealed: {info:?}"
    );
    let progress = PROGRESS.lock().unwrap().clone();
    let ours: Vec<&(String, String)> = progress
        .iter()
        .filter(|(_, m)| m.contains("`bgseal`"))
        .collect();
    assert!(
        ours.iter().any(|(_, m)| m.contains("graph over")),
        "a graph was built: {ours:?}"
    );
    for (thread, message) in &ours {
        assert_ne!(thread, &writer, "`{message}` logged on the writing thread");
        assert!(
            thread.starts_with("quiver-maint-") || thread.starts_with("quiver-build-"),
            "`{message}` logged on thread `{thread}`"
        );
    }
}

/// Defect 6: the seal threshold counted only vector bytes, so a collection of small vectors
/// with large payloads never sealed and its log never rotated.
#[test]
fn payload_heavy_collections_seal_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let config = CollectionConfig {
        seal_threshold_bytes: 256 * 1024,
        ..CollectionConfig::default()
    };
    let c = db
        .create_collection("docs", Schema::dense(2, Distance::Dot), config)
        .unwrap();
    let text = "x".repeat(4000);
    // 200 points: 1.6 KB of vectors, 800 KB of payloads.
    for b in 0..10u64 {
        let points = (0..20)
            .map(|i| {
                let mut p = Point::new(b * 20 + i, vec![1.0, i as f32]);
                p.payload.insert("text".into(), json!(text));
                p
            })
            .collect();
        c.upsert(points).unwrap();
    }
    let info = wait_for_seals(&c);
    assert!(
        info.segments.iter().filter(|s| s.sealed).count() >= 2,
        "payload bytes count toward the seal threshold: {:?}",
        info.segments
    );
    assert_eq!(c.count(), 200);
}
