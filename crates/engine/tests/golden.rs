//! Golden data directories (one per format version, `tests/golden/`), opened by this build,
//! and damaged copies of them: what open keeps, rebuilds, reports or refuses.

#![allow(clippy::unwrap_used, reason = "tests")]

use quiver_engine::*;
use serde_json::json;
use std::path::{Path, PathBuf};

fn golden(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(version)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A fresh copy of a golden directory.
fn copy_of(version: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&golden(version), dir.path());
    dir
}

fn open(dir: &Path) -> Database {
    Database::open(dir, DatabaseOptions::default()).unwrap()
}

fn segment_dir(dir: &Path) -> PathBuf {
    dir.join("collections/golden/segments/1")
}

/// What `v1/` holds (see `tests/golden/README.md`).
fn check_v1_contents(c: &Collection) {
    assert_eq!(c.count(), 2141);
    let ids = |hits: &[ScoredPoint]| hits.iter().map(|h| h.id).collect::<Vec<_>>();
    // Exact neighbours of [7, 3]: the point with id 307 is at distance 0.
    let hits = c.search(&SearchRequest::new(vec![7.0, 3.0], 1)).unwrap();
    assert_eq!(ids(&hits), vec![PointId::Num(307)]);
    // Deleted in the sealed bitmap and in the log.
    let got = c
        .retrieve(
            &[PointId::Num(3), PointId::Num(55), PointId::Num(5000)],
            With::PAYLOAD,
        )
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, PointId::Num(5000));
    assert_eq!(got[0].payload.as_ref().unwrap()["color"], json!("red"));
    // The keyword index answers a filter; id 5000 (red, in the log) is found by it too.
    let red =
        Filter::from_json(&json!({"must": [{"key": "color", "match": {"value": "red"}}]})).unwrap();
    // Red: i % 3 == 0 for i in 60..2200 (714 of them), and id 5000.
    assert_eq!(c.count_filtered(&red).unwrap(), 715);
    let req = SearchRequest {
        filter: Some(red),
        ..SearchRequest::new(vec![0.5, 0.5], 1)
    };
    assert_eq!(ids(&c.search(&req).unwrap()), vec![PointId::Num(5000)]);
    c.check_integrity().unwrap();
}

#[test]
fn v1_opens_and_reads_as_written() {
    let dir = copy_of("v1");
    let db = open(dir.path());
    let c = db.collection("golden").unwrap();
    assert_eq!(c.recovery_report().replayed_ops, 2);
    check_v1_contents(&c);
    // Written by this build (manifest format 2) and read again.
    c.upsert(vec![Point::new(6000, vec![1.0, 1.0])]).unwrap();
    c.flush().unwrap();
    drop(c);
    drop(db);
    let db = open(dir.path());
    let c = db.collection("golden").unwrap();
    assert_eq!(c.count(), 2142);
}

#[test]
fn a_damaged_collection_is_reported_and_the_others_open() {
    let dir = copy_of("v1");
    {
        let db = open(dir.path());
        db.create_collection(
            "healthy",
            Schema::dense(2, Distance::Dot),
            Default::default(),
        )
        .unwrap()
        .upsert(vec![Point::new(1, vec![1.0, 0.0])])
        .unwrap();
    }
    let manifest = dir.path().join("collections/golden/manifest");
    let mut bytes = std::fs::read(&manifest).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x55;
    std::fs::write(&manifest, &bytes).unwrap();
    let db = open(dir.path());
    assert_eq!(db.collection("healthy").unwrap().count(), 1);
    let err = db.collection("golden").unwrap_err();
    assert!(
        matches!(&err, Error::CollectionDamaged { reason, .. } if reason.contains("manifest")),
        "{err}"
    );
    assert!(db.damaged_collections().contains_key("golden"));
    db.drop_collection("golden").unwrap();
    assert!(!dir.path().join("collections/golden").exists());
    assert!(db.damaged_collections().is_empty());
}

#[test]
fn damaged_or_missing_derived_files_are_rebuilt() {
    for (file, damage) in [
        ("hnsw-0", "flip"),
        ("lvq8-0", "flip"),
        ("hnsw-0", "remove"),
        ("fields", "remove"),
        ("fields", "flip"),
    ] {
        let dir = copy_of("v1");
        let path = segment_dir(dir.path()).join(file);
        if damage == "remove" {
            std::fs::remove_file(&path).unwrap();
        } else {
            let mut bytes = std::fs::read(&path).unwrap();
            let at = bytes.len() / 2;
            bytes[at] ^= 0xff;
            std::fs::write(&path, &bytes).unwrap();
        }
        let db = open(dir.path());
        let c = db
            .collection("golden")
            .unwrap_or_else(|e| panic!("{file} ({damage}): {e}"));
        check_v1_contents(&c);
        if file != "fields" {
            // Rebuilt on disk too: the next open reads it.
            drop(c);
            drop(db);
            let db = open(dir.path());
            check_v1_contents(&db.collection("golden").unwrap());
        }
    }
}

#[test]
fn damaged_primary_files_are_an_error_naming_the_file() {
    for file in ["vectors-0", "ids", "payloads", "deleted-1"] {
        let dir = copy_of("v1");
        let path = segment_dir(dir.path()).join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let db = open(dir.path());
        let err = db.collection("golden").unwrap_err().to_string();
        assert!(err.contains(file), "{file}: {err}");
    }
}

#[test]
fn files_open_does_not_recognise_are_left_alone() {
    let dir = copy_of("v1");
    let segments = dir.path().join("collections/golden/segments");
    std::fs::write(segments.join("notes.txt"), b"mine").unwrap();
    std::fs::create_dir(segments.join("backup")).unwrap();
    // An unpublished segment (a crash before its manifest) is ours to remove.
    std::fs::create_dir(segments.join("77")).unwrap();
    std::fs::create_dir(segments.join("78.tmp")).unwrap();
    let db = open(dir.path());
    check_v1_contents(&db.collection("golden").unwrap());
    assert!(segments.join("notes.txt").exists());
    assert!(segments.join("backup").exists());
    assert!(!segments.join("77").exists());
    assert!(!segments.join("78.tmp").exists());
}

#[test]
fn a_manifest_with_a_field_this_build_does_not_know_is_refused() {
    use quiver_storage::frame;
    use quiver_storage::manifest::{FILE_NAME, MANIFEST_KIND};
    let dir = copy_of("v1");
    let path = dir.path().join("collections/golden").join(FILE_NAME);
    let (_, body) = frame::read_file(&path, MANIFEST_KIND).unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    json["config"]["a_future_setting"] = json!(1);
    let body = serde_json::to_vec(&json).unwrap();
    std::fs::write(&path, frame::encode(MANIFEST_KIND, [0; 4], &body)).unwrap();
    let db = open(dir.path());
    let err = db.collection("golden").unwrap_err().to_string();
    assert!(err.contains("a_future_setting"), "{err}");
}
