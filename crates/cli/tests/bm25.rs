//! BM25 collections end to end: `create --bm25-field`, `import --text-field` of the WordNet
//! sample's glosses (no model needed), `search --text` against the engine's own BM25 search,
//! with a dense vector beside it, and bad input.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn quiver(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "command failed: {stderr}");
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn fails(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "command should have failed");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    stderr
}

fn sample() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/wordnet/sample");
    assert!(p.join("base.jsonl").exists(), "{} not found", p.display());
    p
}

fn ids(json: &str) -> Vec<u64> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn create_import_and_search_by_text() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let base = sample().join("base.jsonl");
    ok(&quiver(data, &["create", "wn", "--bm25-field", "text"]));
    ok(&quiver(
        data,
        &[
            "import",
            "wn",
            base.to_str().unwrap(),
            "--text-field",
            "text",
        ],
    ));
    // "howler: a glaring blunder" is the only gloss with both words.
    let out = ok(&quiver(
        data,
        &[
            "search",
            "wn",
            "--text",
            "glaring blunders",
            "-k",
            "3",
            "--json",
        ],
    ));
    let got = ids(&out);
    assert_eq!(got.first(), Some(&264), "{out}");
    // The library's search, with the query the engine makes of the text, agrees.
    let want: Vec<u64> = {
        let db = quiver_engine::Database::open(data, Default::default()).unwrap();
        let c = db.collection("wn").unwrap();
        let q = c.bm25_query("bm25", "glaring blunders").unwrap();
        let hits = c
            .search(&quiver_engine::SearchRequest::sparse("bm25", q, 3))
            .unwrap();
        hits.iter()
            .map(|h| match h.id {
                quiver_engine::PointId::Num(n) => n,
                _ => unreachable!(),
            })
            .collect()
    };
    assert_eq!(got, want);
    // A filter applies.
    let out = ok(&quiver(
        data,
        &[
            "search",
            "wn",
            "--text",
            "glaring blunders",
            "--json",
            "--filter",
            r#"{"must_not": [{"key": "lemmas", "match": {"value": "howler"}}]}"#,
        ],
    ));
    assert!(!ids(&out).contains(&264), "{out}");
}

#[test]
fn bm25_beside_a_dense_vector_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(&quiver(
        data,
        &[
            "create",
            "c",
            "--dim",
            "4",
            "--bm25-field",
            "body",
            "--k1",
            "0.9",
            "--b",
            "0.4",
        ],
    ));
    let err = fails(&quiver(data, &["search", "c", "--text", "dog"]));
    assert!(err.contains("not embedded from text"), "{err}");
    let out = ok(&quiver(
        data,
        &[
            "search",
            "c",
            "--text",
            "dog",
            "--vector-name",
            "bm25",
            "--json",
        ],
    ));
    assert_eq!(ids(&out), Vec::<u64>::new());
    let err = fails(&quiver(
        data,
        &["create", "d", "--bm25-field", "t", "--b", "2"],
    ));
    assert!(err.contains("b = 2"), "{err}");
    let err = fails(&quiver(
        data,
        &["create", "d", "--bm25-field", "t", "--language", "klingon"],
    ));
    assert!(err.contains("unknown language `klingon`"), "{err}");
    let err = fails(&quiver(data, &["create", "d"]));
    assert!(err.contains("--dim"), "{err}");
}
