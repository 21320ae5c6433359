//! BM25 vectors: scores and top-k against a straightforward implementation of the formula
//! on the WordNet sample (glosses as documents, example sentences as queries), through the
//! mutable segment, sealed segments, overwrites, deletions, payload updates, compaction and
//! reopening, with and without a filter; bad input.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;
use common::open_periodic;
use quiver_analyzer::{Analyzer, Language};
use quiver_engine::*;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn sample() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/wordnet/sample");
    assert!(p.join("base.jsonl").exists(), "{} not found", p.display());
    p
}

fn texts(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["text"].as_str().unwrap().to_string()
        })
        .collect()
}

fn schema(spec: Bm25) -> Schema {
    Schema {
        vectors: BTreeMap::new(),
        sparse_vectors: BTreeMap::from([("bm25".to_string(), SparseKind::bm25(spec))]),
    }
}

/// The model: point id -> (text, group `g`).
type Model = BTreeMap<u64, (String, u64)>;

/// BM25 straight from the formula, on stems (strings, not ids): `N` documents with a term,
/// their mean length, document frequencies by stem, distinct query stems. Every accepted
/// point sharing a stem with the query, best first.
fn reference(
    model: &Model,
    query: &str,
    spec: &Bm25,
    keep: impl Fn(u64) -> bool,
) -> Vec<(u64, f64)> {
    let analyzer =
        Analyzer::new(Language::parse(&spec.language).unwrap(), spec.stop_words).unwrap();
    let docs: BTreeMap<u64, Vec<String>> = model
        .iter()
        .map(|(&id, (text, _))| (id, analyzer.terms(text)))
        .filter(|(_, terms)| !terms.is_empty())
        .collect();
    let n_docs = docs.len() as f64;
    let avgdl = docs.values().map(|t| t.len() as f64).sum::<f64>() / n_docs;
    let mut df: HashMap<&str, f64> = HashMap::new();
    for terms in docs.values() {
        for t in terms.iter().collect::<HashSet<_>>() {
            *df.entry(t.as_str()).or_default() += 1.0;
        }
    }
    let q: HashSet<String> = analyzer.terms(query).into_iter().collect();
    let (k1, b) = (f64::from(spec.k1), f64::from(spec.b));
    let mut all = Vec::new();
    for (&id, terms) in &docs {
        if !keep(model[&id].1) {
            continue;
        }
        let dl = terms.len() as f64;
        let mut score = 0.0;
        let mut shared = false;
        for t in &q {
            let tf = terms.iter().filter(|x| *x == t).count() as f64;
            if tf == 0.0 {
                continue;
            }
            shared = true;
            let n = df[t.as_str()];
            let idf = (1.0 + (n_docs - n + 0.5) / (n + 0.5)).ln();
            score += idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * dl / avgdl));
        }
        if shared {
            all.push((id, score));
        }
    }
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all
}

/// Every query (some filtered to `g` in {1, 3}) returns brute force's top-k with its scores.
fn check(c: &Collection, model: &Model, queries: &[String], spec: &Bm25, what: &str) {
    for (i, q) in queries.iter().enumerate() {
        let filtered = i % 2 == 1;
        let keep = |g: u64| !filtered || g == 1 || g == 3;
        let k = 1 + i % 15;
        let mut req = SearchRequest::sparse("bm25", c.bm25_query("bm25", q).unwrap(), k);
        if filtered {
            req.filter = Some(
                Filter::from_json(&json!({"must": [{"key": "g", "match": {"any": [1, 3]}}]}))
                    .unwrap(),
            );
        }
        let got = c.search(&req).unwrap();
        let all = reference(model, q, spec, keep);
        let own: HashMap<u64, f64> = all.iter().copied().collect();
        assert_eq!(
            got.len(),
            all.len().min(k),
            "{what}: query {q:?}: result count; got {got:?}"
        );
        for (rank, (hit, (_, want))) in got.iter().zip(&all).enumerate() {
            let PointId::Num(id) = hit.id else {
                panic!("{what}: id {}", hit.id)
            };
            let tolerance = 1e-4 * (1.0 + want.abs());
            let mine = own
                .get(&id)
                .unwrap_or_else(|| panic!("{what}: query {q:?}: point {id} is not a candidate"));
            assert!(
                (f64::from(hit.score) - mine).abs() < tolerance,
                "{what}: query {q:?}: point {id} scored {}, the formula gives {mine}",
                hit.score
            );
            assert!(
                (f64::from(hit.score) - want).abs() < tolerance,
                "{what}: query {q:?}: rank {rank}: {} where brute force has {want}",
                hit.score
            );
        }
    }
}

fn point(id: u64, text: &str, g: u64) -> Point {
    Point::from_payload(
        id,
        json!({"text": text, "g": g}).as_object().unwrap().clone(),
    )
}

#[test]
fn bm25_equals_the_formula_on_the_wordnet_sample() {
    let dir = sample();
    let glosses = texts(&dir.join("base.jsonl"));
    let queries: Vec<String> = texts(&dir.join("query.jsonl"))
        .into_iter()
        .step_by(7)
        .collect();
    // Queries share terms with the glosses (else the test would check nothing).
    let spec = Bm25::new("text");
    let data = tempfile::tempdir().unwrap();
    let config = CollectionConfig {
        // About 60 glosses per segment: several sealed segments.
        seal_threshold_bytes: 8 << 10,
        merge_factor: 0,
        compact_deleted_fraction: 1.0,
        ..CollectionConfig::default()
    };
    let mut model = Model::new();
    {
        let db = open_periodic(data.path(), Duration::from_secs(60));
        let c = db
            .create_collection("c", schema(spec.clone()), config)
            .unwrap();
        let first: Vec<Point> = (0..300u64)
            .map(|i| {
                let text = &glosses[i as usize];
                model.insert(i, (text.clone(), i % 5));
                point(i, text, i % 5)
            })
            .collect();
        for batch in first.chunks(50) {
            c.upsert(batch.to_vec()).unwrap();
        }
        check(&c, &model, &queries, &spec, "mutable");
        let hits: usize = queries
            .iter()
            .map(|q| reference(&model, q, &spec, |_| true).len())
            .sum();
        assert!(
            hits > queries.len(),
            "the queries share few terms with the glosses"
        );
        c.flush().unwrap();
        assert!(
            c.info()
                .unwrap()
                .segments
                .iter()
                .filter(|s| s.sealed)
                .count()
                >= 2
        );
        check(&c, &model, &queries, &spec, "sealed");
        // Overwrites (ids 0..100 get other glosses), new points, deletions.
        let second: Vec<Point> = (0..100u64)
            .chain(300..400)
            .map(|i| {
                let text = &glosses[(i as usize + 350) % glosses.len()];
                model.insert(i, (text.clone(), (i + 1) % 5));
                point(i, text, (i + 1) % 5)
            })
            .collect();
        c.upsert(second).unwrap();
        let gone: Vec<PointId> = (0..400u64).step_by(9).map(PointId::Num).collect();
        for id in &gone {
            let PointId::Num(n) = id else { unreachable!() };
            model.remove(n);
        }
        c.delete(&gone).unwrap();
        check(
            &c,
            &model,
            &queries,
            &spec,
            "sealed and mutable, overwrites and deletions",
        );
        // A payload update re-analyses the text.
        let new_text = glosses[499].clone();
        c.update_payload(
            &PointSelector::Ids(vec![PointId::Num(1), PointId::Num(2)]),
            &PayloadUpdate::Set {
                payload: json!({"text": new_text}).as_object().unwrap().clone(),
                key: None,
            },
        )
        .unwrap();
        for id in [1, 2] {
            model.get_mut(&id).unwrap().0 = new_text.clone();
        }
        check(&c, &model, &queries, &spec, "payload update");
        c.compact(0.0).unwrap();
        check(&c, &model, &queries, &spec, "compacted");
    }
    let db = open_periodic(data.path(), Duration::from_secs(60));
    let c = db.collection("c").unwrap();
    check(&c, &model, &queries, &spec, "reopened");
    // The stored vector is the text's term counts.
    let r = c.retrieve(&[PointId::Num(3)], With::ALL).unwrap();
    let v = r[0].sparse.as_ref().unwrap()["bm25"].clone();
    let analyzer = Analyzer::new(Language::English, true).unwrap();
    let counts = analyzer.count(&model[&3].0);
    assert_eq!(
        v.indices,
        counts.terms.iter().map(|t| t.0).collect::<Vec<_>>()
    );
    assert_eq!(v.values.iter().sum::<f32>(), counts.length as f32);
}

#[test]
fn other_parameters_and_no_stop_words() {
    let glosses = texts(&sample().join("base.jsonl"));
    let queries: Vec<String> = texts(&sample().join("query.jsonl"))
        .into_iter()
        .take(25)
        .collect();
    let spec = Bm25 {
        stop_words: false,
        k1: 0.9,
        b: 0.4,
        ..Bm25::new("text")
    };
    let data = tempfile::tempdir().unwrap();
    let db = open_periodic(data.path(), Duration::from_secs(60));
    let c = db
        .create_collection("c", schema(spec.clone()), CollectionConfig::default())
        .unwrap();
    let mut model = Model::new();
    let points: Vec<Point> = (0..200u64)
        .map(|i| {
            model.insert(i, (glosses[i as usize].clone(), i % 5));
            point(i, &glosses[i as usize], i % 5)
        })
        .collect();
    c.upsert(points).unwrap();
    check(
        &c,
        &model,
        &queries,
        &spec,
        "k1 0.9, b 0.4, stop words kept",
    );
}

#[test]
fn bad_bm25_input_is_refused_and_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let db = open_periodic(data.path(), Duration::from_secs(60));
    let bad = |spec: Bm25, needle: &str| {
        let err = db
            .create_collection("bad", schema(spec), CollectionConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    };
    bad(
        Bm25 {
            b: 1.5,
            ..Bm25::new("text")
        },
        "b = 1.5",
    );
    bad(
        Bm25 {
            k1: -1.0,
            ..Bm25::new("text")
        },
        "k1 = -1",
    );
    bad(
        Bm25 {
            language: "klingon".into(),
            ..Bm25::new("text")
        },
        "unknown language `klingon`",
    );
    bad(
        Bm25 {
            language: "french".into(),
            ..Bm25::new("text")
        },
        "no stop-word list for french",
    );
    bad(Bm25::new(""), "field name is empty");
    let mut no_idf = schema(Bm25::new("text"));
    no_idf.sparse_vectors.get_mut("bm25").unwrap().modifier = Modifier::None;
    let err = db
        .create_collection("bad", no_idf, CollectionConfig::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("modifier must be idf"), "{err}");

    let mut with_dense = schema(Bm25::new("text"));
    with_dense
        .vectors
        .insert("d".into(), VectorKind::dense(2, Distance::Dot));
    let c = db
        .create_collection("c", with_dense, CollectionConfig::default())
        .unwrap();
    let ok = Point::new(1, vec![1.0, 0.0])
        .with_payload(json!({"text": "a dog"}).as_object().unwrap().clone());
    let ok = Point {
        vectors: BTreeMap::from([("d".to_string(), vec![1.0, 0.0])]),
        ..ok
    };
    let missing = Point {
        id: PointId::Num(2),
        payload: json!({"other": "a cat"}).as_object().unwrap().clone(),
        ..ok.clone()
    };
    let err = c.upsert(vec![ok.clone(), missing]).unwrap_err().to_string();
    assert!(
        err.contains("point 2")
            && err.contains("payload field `text`")
            && err.contains("no such field"),
        "{err}"
    );
    let negative = Point {
        id: PointId::Num(3),
        ..ok.clone()
    }
    .with_sparse("bm25", SparseVector::new(vec![5], vec![-1.0]));
    let err = c.upsert(vec![negative]).unwrap_err().to_string();
    assert!(err.contains("term counts"), "{err}");
    assert_eq!(c.count(), 0, "a refused batch wrote something");
    let err = c.bm25_query("d", "dog").unwrap_err().to_string();
    assert!(err.contains("not a bm25 vector"), "{err}");
    let err = c.bm25_query("nope", "dog").unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
    // A query sharing no term finds nothing; one with terms finds the point.
    c.upsert(vec![ok]).unwrap();
    let q = c.bm25_query("bm25", "the cats").unwrap();
    assert!(
        c.search(&SearchRequest::sparse("bm25", q, 5))
            .unwrap()
            .is_empty()
    );
    let q = c.bm25_query("bm25", "dogs").unwrap();
    assert_eq!(
        c.search(&SearchRequest::sparse("bm25", q, 5))
            .unwrap()
            .len(),
        1
    );
}
