//! Payload and vector updates of existing points: each kind by ids and by filter, rejected
//! calls that change nothing, WAL replay after a crash, points in sealed segments, field
//! indexes following the payload, and concurrent writers on the same ids ending in the state
//! of the serial order their sequence numbers give.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;
use common::{Rng, open_periodic};
use quiver_engine::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Two named vectors, so that a vector update can change one and keep the other.
fn schema() -> Schema {
    Schema {
        sparse_vectors: Default::default(),
        vectors: BTreeMap::from([
            ("a".to_string(), VectorKind::dense(3, Distance::Cosine)),
            ("b".to_string(), VectorKind::dense(2, Distance::Dot)),
        ]),
    }
}

fn open(dir: &Path) -> Database {
    Database::open(dir, DatabaseOptions::default()).unwrap()
}

fn obj(v: Value) -> Payload {
    match v {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn filter(v: Value) -> Filter {
    Filter::from_json(&v).unwrap()
}

fn ids(ids: &[u64]) -> PointSelector {
    PointSelector::Ids(ids.iter().map(|&i| PointId::Num(i)).collect())
}

fn set(payload: Value) -> PayloadUpdate {
    PayloadUpdate::Set {
        payload: obj(payload),
        key: None,
    }
}

/// Point `id` with vector `a` = [id, 1, 0] (normalised when stored), `b` = [id, -1].
fn point(id: u64, payload: Value) -> Point {
    Point {
        sparse: Default::default(),
        multi: Default::default(),
        id: PointId::Num(id),
        vectors: BTreeMap::from([
            ("a".to_string(), vec![id as f32, 1.0, 0.0]),
            ("b".to_string(), vec![id as f32, -1.0]),
        ]),
        payload: obj(payload),
    }
}

/// Points 0..n, payload `{"group": "even"|"odd", "n": id}`.
fn fill(c: &Collection, n: u64) {
    c.upsert(
        (0..n)
            .map(|i| {
                point(
                    i,
                    json!({"group": if i % 2 == 0 { "even" } else { "odd" }, "n": i}),
                )
            })
            .collect(),
    )
    .unwrap();
}

/// Every live point: id -> (payload, vectors).
fn dump(c: &Collection) -> BTreeMap<u64, (Value, BTreeMap<String, Vec<f32>>)> {
    let mut out = BTreeMap::new();
    let mut from = None;
    loop {
        let page = c.scroll(from, 1000, With::ALL).unwrap();
        for r in page.points {
            let PointId::Num(id) = r.id else {
                panic!("unexpected id {}", r.id)
            };
            let prev = out.insert(id, (Value::Object(r.payload.unwrap()), r.vectors.unwrap()));
            assert!(prev.is_none(), "point {id} twice");
        }
        match page.next {
            Some(n) => from = Some(n),
            None => return out,
        }
    }
}

fn payload_of(c: &Collection, id: u64) -> Value {
    let r = c.retrieve(&[PointId::Num(id)], With::PAYLOAD).unwrap();
    assert_eq!(r.len(), 1, "point {id} not found");
    Value::Object(r.into_iter().next().unwrap().payload.unwrap())
}

#[test]
fn every_payload_update_by_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let c = db
        .create_collection("c", schema(), Default::default())
        .unwrap();
    fill(&c, 4);
    let before = dump(&c);

    c.update_payload(&ids(&[0, 1]), &set(json!({"x": 1, "n": "changed"})))
        .unwrap();
    assert_eq!(
        payload_of(&c, 0),
        json!({"group": "even", "n": "changed", "x": 1})
    );
    assert_eq!(
        payload_of(&c, 1),
        json!({"group": "odd", "n": "changed", "x": 1})
    );
    assert_eq!(payload_of(&c, 2), json!({"group": "even", "n": 2}));

    c.update_payload(
        &ids(&[1]),
        &PayloadUpdate::DeleteKeys(vec!["x".into(), "nope".into()]),
    )
    .unwrap();
    assert_eq!(payload_of(&c, 1), json!({"group": "odd", "n": "changed"}));

    c.update_payload(
        &ids(&[2]),
        &PayloadUpdate::Overwrite(obj(json!({"only": true}))),
    )
    .unwrap();
    assert_eq!(payload_of(&c, 2), json!({"only": true}));

    c.update_payload(&ids(&[3, 3]), &PayloadUpdate::Clear)
        .unwrap();
    assert_eq!(payload_of(&c, 3), json!({}));

    // Vectors are kept as stored; no point is added or lost.
    let after = dump(&c);
    assert_eq!(after.len(), 4);
    for (id, (_, vectors)) in &after {
        assert_eq!(vectors, &before[id].1, "point {id}");
    }
    assert_eq!(c.count(), 4);
    c.check_integrity().unwrap();
}

#[test]
fn set_payload_with_key_sets_into_a_nested_object() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let c = db
        .create_collection("c", schema(), Default::default())
        .unwrap();
    c.upsert(vec![
        point(
            1,
            json!({"meta": {"keep": 1, "info": {"old": 0}}, "top": 1}),
        ),
        point(2, json!({"meta": "not an object"})),
        point(3, json!({})),
    ])
    .unwrap();
    let update = PayloadUpdate::Set {
        payload: obj(json!({"new": [1, 2]})),
        key: Some("meta.info".into()),
    };
    c.update_payload(&ids(&[1, 2, 3]), &update).unwrap();
    assert_eq!(
        payload_of(&c, 1),
        json!({"meta": {"keep": 1, "info": {"old": 0, "new": [1, 2]}}, "top": 1})
    );
    assert_eq!(
        payload_of(&c, 2),
        json!({"meta": {"info": {"new": [1, 2]}}})
    );
    assert_eq!(
        payload_of(&c, 3),
        json!({"meta": {"info": {"new": [1, 2]}}})
    );

    c.update_payload(
        &ids(&[1]),
        &PayloadUpdate::DeleteKeys(vec!["meta.info.old".into()]),
    )
    .unwrap();
    assert_eq!(
        payload_of(&c, 1),
        json!({"meta": {"keep": 1, "info": {"new": [1, 2]}}, "top": 1})
    );
    // The nested key is found by a filter on it.
    let f = filter(json!({"must": [{"key": "meta.info.new", "match": {"any": [2]}}]}));
    assert_eq!(c.count_filtered(&f).unwrap(), 3);
}

#[test]
fn every_payload_update_by_filter() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let c = db
        .create_collection("c", schema(), Default::default())
        .unwrap();
    fill(&c, 10);
    let even = PointSelector::Filter(filter(
        json!({"must": [{"key": "group", "match": {"value": "even"}}]}),
    ));

    c.update_payload(&even, &set(json!({"tag": "e"}))).unwrap();
    for i in 0..10 {
        let want = match i % 2 {
            0 => json!({"group": "even", "n": i, "tag": "e"}),
            _ => json!({"group": "odd", "n": i}),
        };
        assert_eq!(payload_of(&c, i), want);
    }

    c.update_payload(&even, &PayloadUpdate::DeleteKeys(vec!["n".into()]))
        .unwrap();
    assert_eq!(payload_of(&c, 4), json!({"group": "even", "tag": "e"}));
    assert_eq!(payload_of(&c, 5), json!({"group": "odd", "n": 5}));

    let small = PointSelector::Filter(filter(json!({"must": [{"key": "n", "range": {"lt": 3}}]})));
    c.update_payload(
        &small,
        &PayloadUpdate::Overwrite(obj(json!({"group": "small"}))),
    )
    .unwrap();
    assert_eq!(payload_of(&c, 1), json!({"group": "small"}));
    assert_eq!(payload_of(&c, 3), json!({"group": "odd", "n": 3}));

    // A filter that matches nothing changes nothing.
    let none = PointSelector::Filter(filter(
        json!({"must": [{"key": "group", "match": {"value": "none"}}]}),
    ));
    c.update_payload(&none, &PayloadUpdate::Clear).unwrap();
    assert_eq!(c.count(), 10);

    c.update_payload(&even, &PayloadUpdate::Clear).unwrap();
    for i in [0, 2, 4, 6, 8] {
        assert_eq!(payload_of(&c, i), json!({}));
    }
    assert_eq!(payload_of(&c, 1), json!({"group": "small"}));
    assert_eq!(payload_of(&c, 7), json!({"group": "odd", "n": 7}));
    assert_eq!(c.count(), 10);
    c.check_integrity().unwrap();
}

#[test]
fn update_vectors_replaces_only_the_named_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let c = db
        .create_collection("c", schema(), Default::default())
        .unwrap();
    fill(&c, 3);
    let before = dump(&c);
    c.update_vectors(vec![
        (
            PointId::Num(1),
            BTreeMap::from([("a".to_string(), vec![3.0, 0.0, 4.0])]),
        ),
        (
            PointId::Num(2),
            BTreeMap::from([("b".to_string(), vec![7.0, 8.0])]),
        ),
        // Listed twice: both changes apply, in order.
        (
            PointId::Num(2),
            BTreeMap::from([("a".to_string(), vec![0.0, 0.0, 2.0])]),
        ),
    ])
    .unwrap();
    let after = dump(&c);
    // Cosine vectors are normalised as by upsert; the other vector and the payload are kept.
    assert_eq!(after[&1].1["a"], vec![0.6, 0.0, 0.8]);
    assert_eq!(after[&1].1["b"], before[&1].1["b"]);
    assert_eq!(after[&2].1["a"], vec![0.0, 0.0, 1.0]);
    assert_eq!(after[&2].1["b"], vec![7.0, 8.0]);
    assert_eq!(after[&0], before[&0]);
    for id in [1, 2] {
        assert_eq!(after[&id].0, before[&id].0, "payload of {id}");
    }
    // Search sees the new vectors.
    let hit = &c
        .search(&SearchRequest {
            vector_name: "a".into(),
            ..SearchRequest::new(vec![0.0, 0.0, 1.0], 1)
        })
        .unwrap()[0];
    assert_eq!((hit.id, hit.score), (PointId::Num(2), 1.0));
    assert_eq!(c.count(), 3);
    c.check_integrity().unwrap();
}

#[test]
fn a_rejected_update_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let c = db
        .create_collection("c", schema(), Default::default())
        .unwrap();
    fill(&c, 3);
    let before = dump(&c);
    let last_seq = c.info().unwrap().last_seq;

    // An unknown id anywhere in the list: the error names it, the known ones are untouched.
    let err = c
        .update_payload(&ids(&[0, 99, 1]), &set(json!({"x": 1})))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::PointNotFound {
                point: PointId::Num(99),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("no point with id 99"), "{err}");
    let err = c
        .update_vectors(vec![
            (
                PointId::Num(0),
                BTreeMap::from([("b".to_string(), vec![1.0, 1.0])]),
            ),
            (
                PointId::Num(42),
                BTreeMap::from([("b".to_string(), vec![1.0, 1.0])]),
            ),
        ])
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::PointNotFound {
                point: PointId::Num(42),
                ..
            }
        ),
        "{err:?}"
    );

    // Bad vectors and bad key paths, each after a good point.
    let bad_vectors = [
        ("b", vec![1.0]),
        ("b", vec![f32::NAN, 1.0]),
        ("nope", vec![1.0, 1.0]),
    ];
    for (name, v) in bad_vectors {
        let err = c
            .update_vectors(vec![
                (
                    PointId::Num(0),
                    BTreeMap::from([("b".to_string(), vec![5.0, 5.0])]),
                ),
                (
                    PointId::Num(1),
                    BTreeMap::from([(name.to_string(), v.clone())]),
                ),
            ])
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::DimensionMismatch { .. }
                    | Error::NonFinite { .. }
                    | Error::UnknownVector { .. }
            ),
            "{name} {v:?}: {err:?}"
        );
    }
    let bad_key = PayloadUpdate::Set {
        payload: obj(json!({"x": 1})),
        key: Some("a[0]".into()),
    };
    assert!(matches!(
        c.update_payload(&ids(&[0]), &bad_key),
        Err(Error::InvalidRequest { .. })
    ));
    assert!(matches!(
        c.update_payload(&ids(&[0]), &PayloadUpdate::DeleteKeys(vec!["a..b".into()])),
        Err(Error::InvalidRequest { .. })
    ));

    assert_eq!(dump(&c), before);
    assert_eq!(c.info().unwrap().last_seq, last_seq, "nothing was logged");
}

#[test]
fn updates_survive_a_crash_by_wal_replay() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let db = open(dir.path());
        let c = db
            .create_collection("c", schema(), Default::default())
            .unwrap();
        fill(&c, 20);
        c.flush().unwrap(); // some points sealed, the updates only in the log
        c.update_payload(&ids(&[1, 2]), &set(json!({"x": 1})))
            .unwrap();
        let f = PointSelector::Filter(filter(
            json!({"must": [{"key": "n", "range": {"gte": 15}}]}),
        ));
        c.update_payload(&f, &PayloadUpdate::Overwrite(obj(json!({"late": true}))))
            .unwrap();
        c.update_payload(
            &ids(&[3]),
            &PayloadUpdate::Set {
                payload: obj(json!({"y": 2})),
                key: Some("deep.er".into()),
            },
        )
        .unwrap();
        c.update_payload(&ids(&[4]), &PayloadUpdate::Clear).unwrap();
        c.update_vectors(vec![(
            PointId::Num(5),
            BTreeMap::from([("b".to_string(), vec![-3.0, 3.0])]),
        )])
        .unwrap();
        dump(&c)
        // Dropped without flush: the updates are only in the WAL.
    };
    assert_eq!(expected[&1].0, json!({"group": "odd", "n": 1, "x": 1}));
    assert_eq!(expected[&16].0, json!({"late": true}));
    assert_eq!(
        expected[&3].0,
        json!({"group": "odd", "n": 3, "deep": {"er": {"y": 2}}})
    );
    assert_eq!(expected[&5].1["b"], vec![-3.0, 3.0]);

    let db = open(dir.path());
    let c = db.collection("c").unwrap();
    assert_eq!(c.recovery_report().replayed_ops, 5);
    assert_eq!(dump(&c), expected);
    assert_eq!(c.count(), 20);
    c.check_integrity().unwrap();
}

/// The published manifest of collection `name`: the frame's body (64-byte header, 4-byte
/// checksum after the body) as JSON.
fn manifest(dir: &Path, name: &str) -> Value {
    let bytes = std::fs::read(dir.join("collections").join(name).join("manifest")).unwrap();
    serde_json::from_slice(&bytes[64..bytes.len() - 4]).unwrap()
}

#[test]
fn an_update_survives_a_crash_after_its_deletion_was_published() {
    // An update deletes the point's old row in a sealed segment. When a seal of an older
    // frozen segment publishes while the update is newer than its watermark, the published
    // deleted bitmap already holds that deletion: at recovery the old row is dead, so the
    // point is not in the id map, and only the logged operation can bring it back. Had it
    // been logged as a delta against the old row ("set key x"), the point would be lost.
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema {
        sparse_vectors: Default::default(),
        vectors: BTreeMap::from([(
            String::new(),
            VectorKind::dense_indexed(32, Distance::Dot, IndexKind::hnsw(16, 200)),
        )]),
    };
    let config = CollectionConfig {
        seal_threshold_bytes: 100_000,
        ..CollectionConfig::default()
    };
    let mut rng = Rng(3);
    for attempt in 1.. {
        let name = format!("c{attempt}");
        let db = open(dir.path());
        let c = db
            .create_collection(&name, schema.clone(), config.clone())
            .unwrap();
        c.upsert(vec![
            Point::new(1, rng.vector(32)).with_payload(obj(json!({"v": 0}))),
        ])
        .unwrap();
        c.flush().unwrap();
        // Over the seal threshold: frozen, and sealed by the maintenance thread with a graph
        // to build (a while), during which the update runs.
        let big: Vec<Point> = (1000..1000 + MIN_GRAPH_ROWS as u64 + 500)
            .map(|i| Point::new(i, rng.vector(32)))
            .collect();
        let frozen_at = c.upsert(big).unwrap();
        let updated_at = c.update_payload(&ids(&[1]), &set(json!({"x": 1}))).unwrap();
        // Wait for the seal's publish (the manifest is replaced atomically).
        let start = Instant::now();
        let m = loop {
            let m = manifest(dir.path(), &name);
            if m["wal_watermark"].as_u64().unwrap() >= frozen_at {
                break m;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the seal never published"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let published_deletion = m["segments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["rows"] == json!(1) && s["deleted_gen"] != json!(0));
        assert!(updated_at > frozen_at);
        drop(c);
        drop(db); // no flush: the update is only in the log

        let db = open(dir.path());
        let c = db.collection(&name).unwrap();
        assert_eq!(
            payload_of(&c, 1),
            json!({"v": 0, "x": 1}),
            "attempt {attempt}"
        );
        assert_eq!(c.count(), MIN_GRAPH_ROWS as u64 + 501);
        c.check_integrity().unwrap();
        if published_deletion {
            return;
        }
        // The seal published before the update: not the interleaving aimed at (the update
        // still had to survive, checked above); again. Which one happens is timing, so a busy
        // machine that never reaches it is reported, not failed.
        if attempt == 10 {
            eprintln!(
                "the seal published before the update in all 10 attempts: the published-deletion case was not reached"
            );
            return;
        }
    }
}

#[test]
fn updates_apply_to_sealed_points() {
    let dir = tempfile::tempdir().unwrap();
    let config = CollectionConfig {
        seal_threshold_bytes: 2_000, // a few dozen rows per segment
        ..CollectionConfig::default()
    };
    let db = open(dir.path());
    let c = db.create_collection("c", schema(), config).unwrap();
    for b in 0..5 {
        c.upsert(
            (b * 40..(b + 1) * 40)
                .map(|i| point(i, json!({"n": i})))
                .collect(),
        )
        .unwrap();
    }
    c.flush().unwrap();
    let sealed = c
        .info()
        .unwrap()
        .segments
        .iter()
        .filter(|s| s.sealed)
        .count();
    assert!(sealed >= 2, "{sealed} sealed segments");

    let odd_ids: Vec<u64> = (0..200).filter(|i| i % 2 == 1).collect();
    c.update_payload(&ids(&odd_ids), &set(json!({"odd": true})))
        .unwrap();
    let big = PointSelector::Filter(filter(
        json!({"must": [{"key": "n", "range": {"gte": 150}}]}),
    ));
    c.update_payload(&big, &set(json!({"big": true}))).unwrap();
    c.update_vectors(
        (0..200)
            .step_by(10)
            .map(|i| {
                (
                    PointId::Num(i),
                    BTreeMap::from([("b".to_string(), vec![0.5, i as f32])]),
                )
            })
            .collect(),
    )
    .unwrap();

    let check = |c: &Collection| {
        let all = dump(c);
        assert_eq!(all.len(), 200);
        for (id, (payload, vectors)) in &all {
            let mut want = json!({"n": id});
            if id % 2 == 1 {
                want["odd"] = json!(true);
            }
            if *id >= 150 {
                want["big"] = json!(true);
            }
            assert_eq!(payload, &want, "point {id}");
            let b = match id % 10 {
                0 => vec![0.5, *id as f32],
                _ => vec![*id as f32, -1.0],
            };
            assert_eq!(vectors["b"], b, "point {id}");
        }
        let odd = filter(json!({"must": [{"key": "odd", "match": {"value": true}}]}));
        assert_eq!(c.count_filtered(&odd).unwrap(), 100);
        c.check_integrity().unwrap();
    };
    check(&c);
    c.flush().unwrap();
    check(&c);
    drop(c);
    drop(db);
    let db = open(dir.path());
    check(&db.collection("c").unwrap());
}

#[test]
fn field_index_follows_a_payload_update() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let c = db
        .create_collection("c", schema(), Default::default())
        .unwrap();
    c.create_field_index("color", FieldIndexKind::Keyword)
        .unwrap();
    c.upsert(
        (0..100)
            .map(|i| point(i, json!({"color": if i < 50 { "red" } else { "blue" }})))
            .collect(),
    )
    .unwrap();
    c.flush().unwrap(); // sealed, with the keyword index built
    let red = filter(json!({"must": [{"key": "color", "match": {"value": "red"}}]}));
    let blue = filter(json!({"must": [{"key": "color", "match": {"value": "blue"}}]}));
    assert!(c.explain(&red).unwrap().contains("sealed"));
    assert_eq!(c.count_filtered(&red).unwrap(), 50);

    c.update_payload(&ids(&[0, 1, 2, 3, 4]), &set(json!({"color": "blue"})))
        .unwrap();
    c.update_payload(
        &PointSelector::Filter(filter(
            json!({"must": [{"key": "color", "match": {"value": "blue"}}, {"has_id": [99, 98]}]}),
        )),
        &set(json!({"color": "red"})),
    )
    .unwrap();
    let check = |c: &Collection| {
        assert_eq!(c.count_filtered(&red).unwrap(), 47);
        assert_eq!(c.count_filtered(&blue).unwrap(), 53);
        let hits = c
            .search(&SearchRequest {
                vector_name: "b".into(),
                filter: Some(red.clone()),
                ..SearchRequest::new(vec![1.0, 0.0], 100)
            })
            .unwrap();
        let mut got: Vec<PointId> = hits.iter().map(|h| h.id).collect();
        got.sort();
        let want: Vec<PointId> = (5..50).chain([98, 99]).map(PointId::Num).collect();
        assert_eq!(got, want);
    };
    check(&c);
    // And once the new rows are sealed and indexed too.
    c.flush().unwrap();
    check(&c);
}

/// How long the concurrent writers run.
const RUN: Duration = Duration::from_secs(3);
const SHARED_IDS: u64 = 12;

/// One acknowledged write of the concurrency test, to replay on the model in sequence order.
#[derive(Debug, Clone)]
enum Write {
    Upsert(Vec<u64>, Value),
    Set(Vec<u64>, String, u64),
    Vectors(Vec<u64>, Vec<f32>),
}

#[test]
fn concurrent_upserts_and_updates_end_in_a_serial_order() {
    // Writers (more than the 2 cores) upsert, set payload keys (by ids and by filter) and
    // replace vectors on the same few ids, while small segments freeze and seal. Every write
    // returns its sequence number, which is its place in the log and in the apply order: the
    // final state must be what applying them one by one in that order gives. A payload update
    // that read a point before the state lock and wrote after it would lose a concurrent
    // upsert (the model would hold the upsert's payload, the collection the older one plus the
    // key), and an update logged as a delta against a row replaced meanwhile would apply to
    // the wrong version.
    let dir = tempfile::tempdir().unwrap();
    let db = open_periodic(dir.path(), Duration::from_millis(50));
    let config = CollectionConfig {
        seal_threshold_bytes: 4_000,
        ..CollectionConfig::default()
    };
    let c = db.create_collection("c", schema(), config).unwrap();
    fill(&c, SHARED_IDS);
    let initial = dump(&c);
    let threads = 6;
    let log: Vec<(u64, Write)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let c = Arc::clone(&c);
                s.spawn(move || {
                    let mut rng = Rng(1 + t);
                    let mut log = Vec::new();
                    let start = Instant::now();
                    let mut round = 0u64;
                    while start.elapsed() < RUN {
                        round += 1;
                        let mut chosen: Vec<u64> = (0..1 + rng.below(4))
                            .map(|_| rng.below(SHARED_IDS))
                            .collect();
                        chosen.sort_unstable();
                        chosen.dedup();
                        let key = format!("k{t}");
                        let (seq, write) = match rng.below(4) {
                            0 => {
                                let payload = json!({"by": t, "round": round});
                                let points =
                                    chosen.iter().map(|&i| point(i, payload.clone())).collect();
                                (c.upsert(points).unwrap(), Write::Upsert(chosen, payload))
                            }
                            1 => {
                                let seq = c
                                    .update_payload(
                                        &ids(&chosen),
                                        &set(json!({ key.clone(): round })),
                                    )
                                    .unwrap();
                                (seq, Write::Set(chosen, key, round))
                            }
                            2 => {
                                let f = filter(json!({"must": [{"has_id": chosen.clone()}]}));
                                let seq = c
                                    .update_payload(
                                        &PointSelector::Filter(f),
                                        &set(json!({ key.clone(): round })),
                                    )
                                    .unwrap();
                                (seq, Write::Set(chosen, key, round))
                            }
                            _ => {
                                let b = vec![t as f32, round as f32];
                                let points = chosen
                                    .iter()
                                    .map(|&i| {
                                        (
                                            PointId::Num(i),
                                            BTreeMap::from([("b".to_string(), b.clone())]),
                                        )
                                    })
                                    .collect();
                                (c.update_vectors(points).unwrap(), Write::Vectors(chosen, b))
                            }
                        };
                        log.push((seq, write));
                    }
                    log
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut log = log;
    log.sort_by_key(|(seq, _)| *seq);
    for w in log.windows(2) {
        assert!(w[0].0 < w[1].0, "sequence number {} given twice", w[0].0);
    }
    let kinds = |f: fn(&Write) -> bool| log.iter().filter(|(_, w)| f(w)).count();
    assert!(kinds(|w| matches!(w, Write::Upsert(..))) > 10);
    assert!(kinds(|w| matches!(w, Write::Set(..))) > 20);
    assert!(kinds(|w| matches!(w, Write::Vectors(..))) > 10);

    // The serial model: payload and vector `b` per id.
    let mut model: BTreeMap<u64, (Value, Vec<f32>)> = initial
        .iter()
        .map(|(id, (p, v))| (*id, (p.clone(), v["b"].clone())))
        .collect();
    for (_, write) in &log {
        match write {
            Write::Upsert(chosen, payload) => {
                for id in chosen {
                    model.insert(*id, (payload.clone(), vec![*id as f32, -1.0]));
                }
            }
            Write::Set(chosen, key, round) => {
                for id in chosen {
                    model.get_mut(id).unwrap().0[key] = json!(round);
                }
            }
            Write::Vectors(chosen, b) => {
                for id in chosen {
                    model.get_mut(id).unwrap().1 = b.clone();
                }
            }
        }
    }
    let check = |c: &Collection, when: &str| {
        let got = dump(c);
        assert_eq!(got.len() as u64, SHARED_IDS, "{when}");
        for (id, (payload, b)) in &model {
            assert_eq!(&got[id].0, payload, "{when}: payload of point {id}");
            assert_eq!(&got[id].1["b"], b, "{when}: vector b of point {id}");
        }
        c.check_integrity().unwrap();
    };
    check(&c, "after the run");
    drop(c);
    drop(db);
    let db = open(dir.path());
    check(&db.collection("c").unwrap(), "after reopening");
}
