//! The `quiver` binary end to end: the main job on the committed WordNet sample, and bad input
//! that must produce a clear error, a non-zero exit, no panic, and no change.

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

/// Runs a command that must fail; returns its stderr.
fn fails(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "command should have failed");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    stderr
}

/// The shared wordnet sample: the tests need it (it sits beside the project).
fn sample() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/wordnet/sample");
    assert!(
        p.join("base.fvecs").exists(),
        "{} is absent: these tests need the shared wordnet sample beside the project",
        p.display()
    );
    p
}

fn points(data: &Path, collection: &str) -> u64 {
    let info: serde_json::Value =
        serde_json::from_str(&ok(&quiver(data, &["info", collection, "--json"]))).unwrap();
    info["points"].as_u64().unwrap()
}

#[test]
fn import_and_search_the_wordnet_sample_exactly() {
    let sample = sample();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&quiver(
        d,
        &["create", "wn", "--dim", "384", "--distance", "cosine"],
    ));
    let base = sample.join("base.fvecs");
    ok(&quiver(d, &["import", "wn", base.to_str().unwrap()]));
    assert_eq!(points(d, "wn"), 500);
    let (rows, n, dim) = quiver_formats::read_fvecs(&base).unwrap();
    let (queries, nq, _) = quiver_formats::read_fvecs(&sample.join("query.fvecs")).unwrap();
    for q in [0usize, 17, nq - 1] {
        let out = ok(&quiver(
            d,
            &[
                "search",
                "wn",
                "--vector-file",
                sample.join("query.fvecs").to_str().unwrap(),
                "--row",
                &q.to_string(),
                "-k",
                "10",
                "--json",
            ],
        ));
        let hits: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        let got: Vec<u64> = hits.iter().map(|h| h["id"].as_u64().unwrap()).collect();
        // Brute force over the same (unit-length) vectors: row i has id i.
        let qv = &queries[q * dim..(q + 1) * dim];
        let mut all: Vec<(f32, u64)> = (0..n)
            .map(|i| {
                (
                    rows[i * dim..(i + 1) * dim]
                        .iter()
                        .zip(qv)
                        .map(|(a, b)| a * b)
                        .sum(),
                    i as u64,
                )
            })
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        let want: Vec<u64> = all.iter().take(10).map(|x| x.1).collect();
        assert_eq!(got, want, "query {q}");
    }
    // Delete, compact, reopen.
    ok(&quiver(d, &["delete", "wn", "0", "1", "2"]));
    assert_eq!(points(d, "wn"), 497);
    ok(&quiver(d, &["compact", "wn"]));
    assert_eq!(points(d, "wn"), 497);
}

#[test]
fn json_lines_with_payloads_and_uuids() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("points.jsonl");
    std::fs::write(
        &file,
        "{\"id\": 1, \"vector\": [1, 0, 0], \"payload\": {\"name\": \"x\"}}\n\n\
         {\"id\": \"550e8400-e29b-41d4-a716-446655440000\", \"vector\": [0, 1, 0], \"payload\": {\"name\": \"y\"}}\n",
    )
    .unwrap();
    ok(&quiver(
        d,
        &[
            "import",
            "p",
            file.to_str().unwrap(),
            "--create",
            "--distance",
            "dot",
        ],
    ));
    let out = ok(&quiver(
        d,
        &["search", "p", "--vector", "0, 1, 0", "-k", "1", "--json"],
    ));
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hits[0]["id"], "550e8400-e29b-41d4-a716-446655440000");
    assert_eq!(hits[0]["payload"]["name"], "y");
    let got = ok(&quiver(d, &["get", "p", "1"]));
    assert!(got.contains("\"name\":\"x\""), "{got}");
}

#[test]
fn bad_input_gives_clear_errors_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&quiver(d, &["create", "c", "--dim", "3"]));

    let err = fails(&quiver(d, &["create", "c", "--dim", "3"]));
    assert!(err.contains("already exists"), "{err}");
    let err = fails(&quiver(d, &["search", "nope", "--vector", "1,2,3"]));
    assert!(err.contains("`nope` does not exist"), "{err}");
    let err = fails(&quiver(d, &["search", "c", "--vector", "1,2"]));
    assert!(
        err.contains("dimension 2") && err.contains("expects 3"),
        "{err}"
    );
    let err = fails(&quiver(d, &["search", "c", "--vector", "1,x,3"]));
    assert!(err.contains("element 1"), "{err}");

    // A malformed line near the end: reported with its line number, nothing imported.
    let jsonl = d.join("bad.jsonl");
    std::fs::write(&jsonl, "{\"id\":1,\"vector\":[1,2,3]}\n{\"id\":2,\"vector\":[1,2,3]}\n{\"id\":3,\"vector\":[1,2,\n").unwrap();
    let err = fails(&quiver(d, &["import", "c", jsonl.to_str().unwrap()]));
    assert!(err.contains("line 3"), "{err}");
    assert_eq!(points(d, "c"), 0);

    // NaN (as a huge number overflowing f32) and a wrong dimension, with their line.
    std::fs::write(
        &jsonl,
        "{\"id\":1,\"vector\":[1,2,3]}\n{\"id\":2,\"vector\":[1,1e39,3]}\n",
    )
    .unwrap();
    let err = fails(&quiver(d, &["import", "c", jsonl.to_str().unwrap()]));
    assert!(
        err.contains("line 2") && err.contains("not finite"),
        "{err}"
    );
    std::fs::write(
        &jsonl,
        "{\"id\":1,\"vector\":[1,2,3]}\n{\"id\":2,\"vector\":[1,2,3,4]}\n",
    )
    .unwrap();
    let err = fails(&quiver(d, &["import", "c", jsonl.to_str().unwrap()]));
    assert!(err.contains("line 2"), "{err}");
    assert_eq!(points(d, "c"), 0);

    // A truncated fvecs file.
    let fvecs = d.join("t.fvecs");
    quiver_formats::write_fvecs(&fvecs, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3).unwrap();
    let bytes = std::fs::read(&fvecs).unwrap();
    std::fs::write(&fvecs, &bytes[..bytes.len() - 2]).unwrap();
    let err = fails(&quiver(d, &["import", "c", fvecs.to_str().unwrap()]));
    assert!(err.contains("truncated") && err.contains("row 1"), "{err}");

    // A missing file names its path.
    let err = fails(&quiver(d, &["import", "c", "/nonexistent/x.fvecs"]));
    assert!(err.contains("/nonexistent/x.fvecs"), "{err}");
    assert_eq!(points(d, "c"), 0);
}

#[test]
fn filtered_search_count_index_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("points.jsonl");
    let lines: String = (0..40)
        .map(|i| {
            let pos = ["n", "v", "a"][i % 3];
            format!(
                "{{\"id\": {i}, \"vector\": [{}, {}, 1], \"payload\": {{\"pos\": \"{pos}\", \"len\": {}}}}}\n",
                i % 7,
                i % 5,
                i % 10
            )
        })
        .collect();
    std::fs::write(&file, lines).unwrap();
    ok(&quiver(
        d,
        &[
            "import",
            "p",
            file.to_str().unwrap(),
            "--create",
            "--distance",
            "dot",
        ],
    ));
    let verbs = r#"{"must": [{"key": "pos", "match": {"value": "v"}}]}"#;
    let search = |d: &Path| -> serde_json::Value {
        let out = ok(&quiver(
            d,
            &[
                "search", "p", "--vector", "1, 1, 1", "-k", "5", "--json", "--filter", verbs,
            ],
        ));
        serde_json::from_str(&out).unwrap()
    };
    let hits = search(d);
    assert_eq!(hits.as_array().unwrap().len(), 5);
    for h in hits.as_array().unwrap() {
        assert_eq!(h["payload"]["pos"], "v", "{h}");
    }
    assert_eq!(
        ok(&quiver(d, &["count", "p", "--filter", verbs])).trim(),
        "13"
    );
    assert_eq!(ok(&quiver(d, &["count", "p"])).trim(), "40");

    // Declaring an index changes the plan, not the answer.
    ok(&quiver(d, &["compact", "p"]));
    let out = quiver(d, &["count", "p", "--filter", verbs, "--explain"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("pos: not indexed"));
    ok(&quiver(d, &["index", "p", "pos", "--type", "keyword"]));
    let out = quiver(d, &["count", "p", "--filter", verbs, "--explain"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("pos: keyword index"));
    assert_eq!(search(d), hits);
    let info = ok(&quiver(d, &["info", "p", "--json"]));
    assert!(
        info.contains("\"payload_indexes\":{\"pos\":\"keyword\"}"),
        "{info}"
    );

    // Malformed filters and index types are clear errors that say where.
    let err = fails(&quiver(
        d,
        &[
            "search",
            "p",
            "--vector",
            "1,1,1",
            "--filter",
            r#"{"must": [{"key": "len", "range": {"gte": "x"}}]}"#,
        ],
    ));
    assert!(err.contains("--filter: must[0].range.gte"), "{err}");
    let err = fails(&quiver(d, &["count", "p", "--filter", "{\"must\": ["]));
    assert!(err.contains("--filter"), "{err}");
    let err = fails(&quiver(d, &["index", "p", "pos", "--type", "text"]));
    assert!(err.contains("keyword, integer, float or bool"), "{err}");

    // Scroll: pages in id order, the filter applied, --all follows every page.
    let scroll = |args: &[&str]| -> (Vec<u64>, String) {
        let out = quiver(d, &[&["scroll", "p"], args].concat());
        let stdout = ok(&out);
        let ids = stdout
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        (ids, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (first, more) = scroll(&["--filter", verbs, "--limit", "4"]);
    assert_eq!(first, [1, 4, 7, 10]);
    assert!(more.contains("--from 13"), "{more}");
    let (next, _) = scroll(&["--filter", verbs, "--limit", "4", "--from", "13"]);
    assert_eq!(next, [13, 16, 19, 22]);
    let (all, _) = scroll(&["--filter", verbs, "--limit", "4", "--all"]);
    assert_eq!(all, (1..40).step_by(3).collect::<Vec<u64>>());
    let (everything, _) = scroll(&["--all", "--limit", "7"]);
    assert_eq!(everything, (0..40).collect::<Vec<u64>>());

    ok(&quiver(d, &["delete", "p", "--filter", verbs]));
    assert_eq!(
        ok(&quiver(d, &["count", "p", "--filter", verbs])).trim(),
        "0"
    );
    assert_eq!(points(d, "p"), 27);
}

#[test]
fn a_damaged_collection_is_listed_and_can_be_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&quiver(d, &["create", "good", "--dim", "2"]));
    ok(&quiver(d, &["create", "bad", "--dim", "2"]));
    let manifest = d.join("collections/bad/manifest");
    let mut bytes = std::fs::read(&manifest).unwrap();
    let at = bytes.len() - 2;
    bytes[at] ^= 0x55;
    std::fs::write(&manifest, bytes).unwrap();
    let listed = ok(&quiver(d, &["list"]));
    assert!(listed.contains("good\n"), "{listed}");
    assert!(listed.contains("bad\tdamaged:"), "{listed}");
    let err = fails(&quiver(d, &["info", "bad"]));
    assert!(err.contains("could not be opened"), "{err}");
    ok(&quiver(d, &["drop", "bad"]));
    assert_eq!(ok(&quiver(d, &["list"])), "good\n");
}
