//! Crash test: a real child process doing upserts, deletes, seals and compactions is killed
//! with SIGKILL at random moments; after each kill the data directory is reopened and checked
//! against a model built from what the child acknowledged.
//!
//! - every acknowledged operation is present;
//! - the one operation in flight at the kill is either fully applied or not at all;
//! - the integrity check passes and search sees exactly the model's points.
//!
//! `QUIVER_CRASH_KILLS=200 cargo test -p quiver-engine --test crash -- --nocapture` runs a
//! longer campaign (default: 6 kills). `QUIVER_CRASH_SEED` fixes the seed.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use quiver_engine::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_DIR: &str = "QUIVER_CRASH_CHILD_DIR";
const DIM: usize = 4;
const MARK: &str = "@crash@ ";

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn config() -> CollectionConfig {
    CollectionConfig {
        seal_threshold_bytes: (64 * DIM * 4) as u64,
        compact_deleted_fraction: 0.3,
        ..CollectionConfig::default()
    }
}

fn vector(val: u32, op: u64) -> Vec<f32> {
    vec![val as f32, 1.0, 0.0, op as f32]
}

/// The child: runs operations until killed, printing `B` before and `A` after each one.
#[test]
#[ignore = "entry point of the crash test's child process"]
fn crash_child_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let seed: u64 = std::env::var("QUIVER_CRASH_CHILD_SEED")
        .unwrap()
        .parse()
        .unwrap();
    let periodic = seed % 2 == 1;
    let durability = if periodic {
        Durability::Periodic(Duration::from_millis(20))
    } else {
        Durability::Fsync
    };
    let db = Database::open(
        &dir,
        DatabaseOptions {
            durability,
            ..DatabaseOptions::default()
        },
    )
    .unwrap();
    let c = match db.collection("c") {
        Ok(c) => c,
        Err(_) => db
            .create_collection("c", Schema::dense(DIM, Distance::Dot), config())
            .unwrap(),
    };
    let mut rng = Rng(seed | 1);
    let out = std::io::stdout();
    let say = |line: String| {
        let mut o = out.lock();
        // A marker, because libtest prints "test crash_child_entry ... " on the same line.
        writeln!(o, "{MARK}{line}").unwrap();
        o.flush().unwrap();
    };
    for op in 0u64.. {
        match rng.below(20) {
            0 => {
                say("S flush".into());
                c.flush().unwrap();
            }
            1 => {
                say("S compact".into());
                c.compact(0.0).unwrap();
            }
            2..=5 => {
                let n = 1 + rng.below(8);
                let ids: Vec<u64> = (0..n).map(|_| rng.below(300)).collect();
                let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
                say(format!("B {op} D {list}"));
                c.delete(&ids.iter().map(|&i| PointId::Num(i)).collect::<Vec<_>>())
                    .unwrap();
                say(format!("A {op}"));
            }
            _ => {
                let n = 1 + rng.below(20);
                let pts: Vec<(u64, u32)> = (0..n)
                    .map(|_| (rng.below(300), rng.below(1_000_000) as u32))
                    .collect();
                let list = pts
                    .iter()
                    .map(|(i, v)| format!("{i}:{v}"))
                    .collect::<Vec<_>>()
                    .join(",");
                say(format!("B {op} U {list}"));
                let points = pts
                    .iter()
                    .map(|&(id, val)| {
                        let payload = serde_json::json!({"val": val, "op": op});
                        Point::new(id, vector(val, op))
                            .with_payload(payload.as_object().unwrap().clone())
                    })
                    .collect();
                c.upsert(points).unwrap();
                say(format!("A {op}"));
            }
        }
    }
}

/// (value, op) per live id.
type Model = BTreeMap<u64, (u32, u64)>;

#[derive(Clone)]
enum PendingOp {
    Upsert(u64, Vec<(u64, u32)>),
    Delete(Vec<u64>),
}

fn apply(model: &mut Model, op: &PendingOp) {
    match op {
        PendingOp::Upsert(opno, pts) => {
            for &(id, val) in pts {
                model.insert(id, (val, *opno));
            }
        }
        PendingOp::Delete(ids) => {
            for id in ids {
                model.remove(id);
            }
        }
    }
}

fn parse(line: &str) -> Option<(u64, PendingOp)> {
    let mut parts = line.split(' ');
    let (_b, opno, kind, list) = (
        parts.next()?,
        parts.next()?.parse().ok()?,
        parts.next()?,
        parts.next()?,
    );
    Some((
        opno,
        match kind {
            "U" => PendingOp::Upsert(
                opno,
                list.split(',')
                    .map(|p| {
                        let (i, v) = p.split_once(':').unwrap();
                        (i.parse().unwrap(), v.parse().unwrap())
                    })
                    .collect(),
            ),
            _ => PendingOp::Delete(list.split(',').map(|i| i.parse().unwrap()).collect()),
        },
    ))
}

/// Reads the database state as a model.
fn observe(dir: &Path) -> Model {
    let db = Database::open(dir, DatabaseOptions::default()).unwrap();
    let Ok(c) = db.collection("c") else {
        return Model::new();
    };
    c.check_integrity().unwrap();
    let mut seen = Model::new();
    let mut from = None;
    loop {
        let page = c.scroll(from, 100, With::ALL).unwrap();
        for r in &page.points {
            let PointId::Num(id) = r.id else {
                panic!("unexpected id {}", r.id)
            };
            let payload = r.payload.as_ref().unwrap();
            let val = payload["val"].as_u64().unwrap() as u32;
            let op = payload["op"].as_u64().unwrap();
            assert_eq!(
                r.vectors.as_ref().unwrap()[""],
                vector(val, op),
                "vector and payload of point {id} agree"
            );
            seen.insert(id, (val, op));
        }
        match page.next {
            Some(n) => from = Some(n),
            None => break,
        }
    }
    assert_eq!(c.count(), seen.len() as u64);
    // Search sees exactly the live points.
    let all = c
        .search(&SearchRequest::new(
            vec![1.0, 0.0, 0.0, 0.0],
            seen.len() + 10,
        ))
        .unwrap();
    let mut found: Vec<u64> = all
        .iter()
        .map(|p| {
            if let PointId::Num(n) = p.id {
                n
            } else {
                u64::MAX
            }
        })
        .collect();
    found.sort_unstable();
    assert_eq!(
        found,
        seen.keys().copied().collect::<Vec<_>>(),
        "search returns exactly the live points"
    );
    seen
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let kills: u64 = std::env::var("QUIVER_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let seed: u64 = std::env::var("QUIVER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test: {kills} kills, QUIVER_CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut model = Model::new();
    let (mut in_flight_applied, mut in_flight_absent, mut during_maintenance) = (0, 0, 0);
    for round in 0..kills {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_entry",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env("QUIVER_CRASH_CHILD_SEED", rng.next().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Kill either after a random number of acknowledgements, or just after a seal or
        // compaction begins (with a small random delay, to land inside it).
        let target_acks = 5 + rng.below(150);
        let at_maintenance = rng.below(3) == 0;
        let mut acks = 0;
        let mut pending: Option<(u64, PendingOp)> = None;
        let handle = |line: &str, pending: &mut Option<(u64, PendingOp)>, model: &mut Model| {
            let Some(line) = line.split_once(MARK).map(|(_, l)| l) else {
                return false;
            };
            if line.starts_with("B ") {
                *pending = Some(parse(line).unwrap_or_else(|| panic!("bad line {line}")));
            } else if let Some(n) = line.strip_prefix("A ") {
                let (opno, op) = pending.take().expect("ack without begin");
                assert_eq!(n.parse::<u64>().unwrap(), opno);
                apply(model, &op);
                return true;
            }
            false
        };
        for line in lines.by_ref() {
            let line = line.unwrap();
            if handle(&line, &mut pending, &mut model) {
                acks += 1;
            }
            if at_maintenance && acks > 3 && line.contains(&format!("{MARK}S ")) {
                std::thread::sleep(Duration::from_micros(rng.below(3000)));
                during_maintenance += 1;
                break;
            }
            if acks >= target_acks {
                std::thread::sleep(Duration::from_micros(rng.below(500)));
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Whatever the child printed before dying was printed before the kill.
        for line in lines {
            handle(&line.unwrap(), &mut pending, &mut model);
        }
        let seen = observe(dir.path());
        if let Some((opno, op)) = pending {
            let mut with = model.clone();
            apply(&mut with, &op);
            if seen == with {
                model = with;
                in_flight_applied += 1;
            } else {
                assert_eq!(
                    seen, model,
                    "round {round}: op {opno} in flight was half-applied or acknowledged writes are missing (seed {seed})"
                );
                in_flight_absent += 1;
            }
        } else {
            assert_eq!(
                seen, model,
                "round {round}: acknowledged writes missing (seed {seed})"
            );
        }
    }
    eprintln!(
        "crash test passed: {kills} kills ({during_maintenance} aimed at a seal or compaction), in-flight op applied {in_flight_applied}×, absent {in_flight_absent}×, {} live points",
        model.len()
    );
}
