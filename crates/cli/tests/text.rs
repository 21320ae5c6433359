//! Text collections end to end: `import --text-field` of the committed WordNet sample's
//! glosses, `search --text` against an exact search over the vectors sentence-transformers
//! made for the same texts, bad input, and the demo. Needs the model (`scripts/fetch-model`).

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
    assert!(
        out.status.success(),
        "command failed: {stderr}\n(if the model is missing: run scripts/fetch-model)"
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Runs a command that must fail; returns its stderr.
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

fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ids(hits: &serde_json::Value) -> Vec<u64> {
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn import_documents_and_search_with_text() {
    let sample = sample();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = sample.join("base.jsonl");
    ok(&quiver(
        d,
        &[
            "import",
            "wn",
            base.to_str().unwrap(),
            "--text-field",
            "text",
            "--create",
            "--index",
            "flat",
            "--payload-index",
            "pos=keyword",
            "--payload-index",
            "gloss_words=integer",
        ],
    ));
    let info: serde_json::Value =
        serde_json::from_str(&ok(&quiver(d, &["info", "wn", "--json"]))).unwrap();
    assert_eq!(info["points"], 500);
    assert_eq!(info["payload_indexes"]["pos"], "keyword");
    assert_eq!(info["payload_indexes"]["gloss_words"], "integer");
    assert_eq!(info["vectors"][""]["embed"]["field"], "text");

    // Exact top 10 by the reference vectors of the same texts.
    let docs = jsonl(&base);
    let (base_v, n, dim) = quiver_formats::read_fvecs(&sample.join("base.fvecs")).unwrap();
    let (query_v, _, _) = quiver_formats::read_fvecs(&sample.join("query.fvecs")).unwrap();
    let queries = jsonl(&sample.join("query.jsonl"));
    let mut overlap = 0;
    let tried = 20;
    for (qi, q) in queries.iter().take(tried).enumerate() {
        let qv = &query_v[qi * dim..(qi + 1) * dim];
        let mut scored: Vec<(f32, u64)> = (0..n)
            .map(|r| {
                let s: f32 = base_v[r * dim..(r + 1) * dim]
                    .iter()
                    .zip(qv)
                    .map(|(a, b)| a * b)
                    .sum();
                (s, docs[r]["id"].as_u64().unwrap())
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let want: Vec<u64> = scored.iter().take(10).map(|x| x.1).collect();
        let text = q["text"].as_str().unwrap();
        let got = ids(&serde_json::from_str(&ok(&quiver(
            d,
            &["search", "wn", "--text", text, "-k", "10", "--json"],
        )))
        .unwrap());
        overlap += got.iter().filter(|id| want.contains(id)).count();
    }
    // Same model, same texts: only ties in the last decimals may reorder the tenth place.
    assert!(
        overlap >= tried * 10 - 2,
        "{overlap} of {} results agree",
        tried * 10
    );

    // The other fields of each line are the payload, filterable.
    let text = queries[0]["text"].as_str().unwrap();
    let filter = r#"{"must": [{"key": "pos", "match": {"value": "v"}}]}"#;
    let hits: serde_json::Value = serde_json::from_str(&ok(&quiver(
        d,
        &["search", "wn", "--text", text, "--filter", filter, "--json"],
    )))
    .unwrap();
    assert!(!hits.as_array().unwrap().is_empty());
    for h in hits.as_array().unwrap() {
        assert_eq!(h["payload"]["pos"], "v");
        assert!(h["payload"]["text"].is_string());
    }
}

#[test]
fn bad_document_input_is_reported_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = d.join("docs.jsonl");
    std::fs::write(
        &f,
        "{\"id\": 1, \"text\": \"fine\"}\n{\"id\": 2, \"body\": \"no text field\"}\n",
    )
    .unwrap();
    // Importing the file as documents into a new collection must fail; returns stderr.
    let import_fails = || {
        fails(&quiver(
            d,
            &[
                "import",
                "t",
                f.to_str().unwrap(),
                "--text-field",
                "text",
                "--create",
            ],
        ))
    };
    let err = import_fails();
    assert!(err.contains("line 2") && err.contains("`text`"), "{err}");
    std::fs::write(&f, "{\"id\": 1, \"text\": 7}\n").unwrap();
    let err = import_fails();
    assert!(
        err.contains("line 1") && err.contains("must be a string"),
        "{err}"
    );
    std::fs::write(&f, b"{\"id\": 1, \"text\": \"caf\xe9\"}\n").unwrap();
    let err = import_fails();
    assert!(err.contains("line 1") && err.contains("UTF-8"), "{err}");
    let err = fails(&quiver(
        d,
        &[
            "import",
            "t",
            f.to_str().unwrap(),
            "--text-field",
            "text",
            "--create",
            "--payload-index",
            "pos:keyword",
        ],
    ));
    assert!(err.contains("FIELD=TYPE"), "{err}");
    // Nothing was created.
    assert_eq!(ok(&quiver(d, &["list"])).trim(), "");

    // A text query on a vector that is not embedded from text.
    ok(&quiver(d, &["create", "plain", "--dim", "3"]));
    let err = fails(&quiver(d, &["search", "plain", "--text", "hello"]));
    assert!(err.contains("not embedded from text"), "{err}");
    let err = fails(&quiver(
        d,
        &[
            "import",
            "plain",
            f.to_str().unwrap(),
            "--text-field",
            "text",
        ],
    ));
    assert!(err.contains("not embedded from text"), "{err}");
}

#[test]
fn the_demo_answers_questions_over_the_documentation() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&quiver(dir.path(), &["demo", "-k", "2"]));
    assert_eq!(out.matches("question:").count(), 3, "{out}");
    // The filtered question's answers all come from ARCHITECTURE.md.
    let filtered = out.rsplit("filter:").next().unwrap();
    let answers: Vec<&str> = filtered
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()) && l.contains('›'))
        .collect();
    assert_eq!(answers.len(), 2, "{out}");
    assert!(
        answers.iter().all(|l| l.contains("ARCHITECTURE.md")),
        "{out}"
    );
}
