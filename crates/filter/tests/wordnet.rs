//! The WordNet benchmark's filters (`shared/datasets/wordnet/filters.jsonl`): each parses,
//! and on the 500-row sample index-based evaluation equals brute force. The ignored
//! `wordnet_full_timings` builds the indexes over all 117,659 rows and times each filter:
//!
//! ```text
//! cargo test --release -p quiver-filter --test wordnet -- --ignored --nocapture
//! ```

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use quiver_filter::{
    FieldIndexes, Filter, IndexKind, KeyPath, PointId, RowIds, describe, estimate, evaluate,
};
use serde_json::{Map, Value};

fn dataset() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/wordnet")
}

struct NamedFilter {
    name: String,
    filter: Filter,
    selectivity: f64,
}

fn filters(dir: &Path) -> Vec<NamedFilter> {
    let text = std::fs::read_to_string(dir.join("filters.jsonl")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let name = v["name"].as_str().unwrap().to_string();
            let filter = Filter::from_json(&v["filter"])
                .unwrap_or_else(|e| panic!("filter {name} does not parse: {e}"));
            NamedFilter {
                name,
                filter,
                selectivity: v["selectivity"].as_f64().unwrap(),
            }
        })
        .collect()
}

/// (ids, payloads): each line's object without `id`, which becomes the point id.
fn points(path: &Path) -> (Vec<PointId>, Vec<Map<String, Value>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut ids = Vec::new();
    let mut payloads = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Value::Object(mut map) = serde_json::from_str::<Value>(line).unwrap() else {
            panic!("not an object: {line}")
        };
        ids.push(PointId::from_json(&map.remove("id").unwrap()).unwrap());
        payloads.push(map);
    }
    (ids, payloads)
}

fn fields(gloss_kind: IndexKind) -> Vec<(KeyPath, IndexKind)> {
    [
        ("pos", IndexKind::Keyword),
        ("lexname", IndexKind::Keyword),
        ("gloss_words", gloss_kind),
        ("lemma_count", IndexKind::Integer),
        ("has_example", IndexKind::Bool),
    ]
    .into_iter()
    .map(|(k, kind)| (KeyPath::parse(k).unwrap(), kind))
    .collect()
}

fn build(fields: &[(KeyPath, IndexKind)], payloads: &[Map<String, Value>]) -> FieldIndexes {
    FieldIndexes::build(
        fields,
        payloads.iter().enumerate().map(|(r, p)| (r as u32, p)),
    )
}

#[test]
fn wordnet_sample_filters_agree_with_brute_force() {
    let dir = dataset();
    let sample = dir.join("sample/base.jsonl");
    assert!(
        sample.exists() && dir.join("filters.jsonl").exists(),
        "{} or filters.jsonl is absent: these tests need the shared wordnet sample beside the project",
        sample.display()
    );
    let filters = filters(&dir);
    assert_eq!(filters.len(), 12);
    let (ids, payloads) = points(&sample);
    assert_eq!(payloads.len(), 500);
    let n = payloads.len() as u32;
    let setups = [
        (
            "integer gloss_words",
            build(&fields(IndexKind::Integer), &payloads),
        ),
        (
            "float gloss_words",
            build(&fields(IndexKind::Float), &payloads),
        ),
        (
            "keyword fields only",
            build(&fields(IndexKind::Integer)[..2], &payloads),
        ),
        ("no indexes", FieldIndexes::new()),
    ];
    for (setup, indexes) in &setups {
        for f in &filters {
            let truth: Vec<u32> = (0..n)
                .filter(|&r| f.filter.matches(ids[r as usize], &payloads[r as usize]))
                .collect();
            let ev = evaluate(&f.filter, indexes, n, RowIds::Slice(&ids));
            let plan = describe(&f.filter, indexes, n);
            if *setup != "keyword fields only" && *setup != "no indexes" {
                assert!(plan.fully_indexed(), "{setup} {}: {plan}", f.name);
                assert!(ev.is_exact(), "{setup} {}", f.name);
            }
            let est = estimate(&f.filter, indexes, n);
            let count = truth.len() as u64;
            assert!(est.min <= count && count <= est.max, "{setup} {}", f.name);
            let resolved = ev.resolve(|r| f.filter.matches(ids[r as usize], &payloads[r as usize]));
            assert_eq!(
                resolved.iter().collect::<Vec<_>>(),
                truth,
                "{setup} {}",
                f.name
            );
        }
    }
    let [_, _, (_, keyword_only), _] = &setups;
    let verb = filters
        .iter()
        .find(|f| f.name == "verb_no_example")
        .unwrap();
    assert_eq!(
        describe(&verb.filter, keyword_only, n).to_string(),
        "pos: keyword index (54 rows); has_example: not indexed, checked per point"
    );
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[test]
#[ignore = "needs shared/datasets/wordnet/base.jsonl (117,659 rows); run with --release"]
fn wordnet_full_timings() {
    let dir = dataset();
    let filters = filters(&dir);
    let t = Instant::now();
    let (ids, payloads) = points(&dir.join("base.jsonl"));
    let n = payloads.len() as u32;
    println!("read and parsed {n} payloads in {:.2?}", t.elapsed());
    assert_eq!(n, 117_659);

    for (label, kind) in [("integer", IndexKind::Integer), ("float", IndexKind::Float)] {
        let fields = fields(kind);
        println!("\n== gloss_words as {label}");
        let mut indexes = FieldIndexes::new();
        for (key, kind) in &fields {
            let t = Instant::now();
            let one = FieldIndexes::build(
                &[(key.clone(), *kind)],
                payloads.iter().enumerate().map(|(r, p)| (r as u32, p)),
            );
            let built = t.elapsed();
            let index = one.get(key.as_str()).unwrap().clone();
            let bytes = index.encode();
            let t = Instant::now();
            let decoded = quiver_filter::FieldIndex::decode(&bytes).unwrap();
            let decode = t.elapsed();
            assert_eq!(decoded, index);
            println!(
                "index {:<12} {:<8} build {:>8.2?}  {:>4} values  {:>8} bytes encoded (decode {:.2?})  ~{} KiB in memory",
                key.as_str(),
                kind.name(),
                built,
                index.distinct_values(),
                bytes.len(),
                decode,
                index.heap_bytes() / 1024
            );
            indexes.insert(index);
        }
        let t = Instant::now();
        let all = build(&fields, &payloads);
        println!("all five in one pass: {:.2?}", t.elapsed());
        assert_eq!(all, indexes);

        println!(
            "{:<24} {:>6} {:>6} {:>6}  {:>9} {:>9} {:>11}  plan",
            "filter", "rows", "target", "est.", "evaluate", "estimate", "brute force"
        );
        for f in &filters {
            let runs = 21;
            let times: Vec<Duration> = (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(evaluate(&f.filter, &indexes, n, RowIds::Slice(&ids)));
                    t.elapsed()
                })
                .collect();
            let ev = evaluate(&f.filter, &indexes, n, RowIds::Slice(&ids));
            assert!(ev.is_exact(), "{}", f.name);
            let est_times: Vec<Duration> = (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(estimate(&f.filter, &indexes, n));
                    t.elapsed()
                })
                .collect();
            let t = Instant::now();
            let brute = (0..n)
                .filter(|&r| f.filter.matches(ids[r as usize], &payloads[r as usize]))
                .count() as u64;
            let brute_time = t.elapsed();
            let expected = (f.selectivity * f64::from(n)).round() as u64;
            println!(
                "{:<24} {:>6} {:>6} {:>6}  {:>9.2?} {:>9.2?} {:>11.2?}  {}",
                f.name,
                ev.matched.len(),
                expected,
                estimate(&f.filter, &indexes, n).expected,
                median(times),
                median(est_times),
                brute_time,
                describe(&f.filter, &indexes, n)
            );
            assert_eq!(ev.matched.len(), brute, "{}", f.name);
            assert_eq!(ev.matched.len(), expected, "{}", f.name);
            let est = estimate(&f.filter, &indexes, n);
            assert!(est.min <= brute && brute <= est.max, "{}", f.name);
        }
    }
}
