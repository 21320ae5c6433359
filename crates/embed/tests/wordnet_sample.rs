//! The embedder against sentence-transformers: the committed WordNet sample (500 base and
//! 500 query texts embedded with all-MiniLM-L6-v2 by sentence-transformers' semantics), and
//! reference vectors for the edge cases (empty text, truncation) taken from
//! sentence-transformers 6.2.0 / torch 2.15.0.
//!
//! These tests need the model. Without it they fail (they do not skip) and say how to get
//! it: `scripts/fetch-model`.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use quiver_embed::{EmbedOptions, Embedder};

fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        let dir = quiver_embed::locate_model(None).unwrap_or_else(|e| {
            panic!(
                "{e}\nThese tests need the model: run scripts/fetch-model (see docs/embedding.md)."
            )
        });
        Embedder::load(&dir, EmbedOptions::default())
            .unwrap_or_else(|e| panic!("cannot load the model from {}: {e}", dir.display()))
    })
}

fn sample_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/wordnet/sample");
    assert!(
        dir.join("base.jsonl").is_file(),
        "the WordNet sample is missing from {}",
        dir.display()
    );
    dir
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

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn wordnet_sample_matches_sentence_transformers() {
    let dir = sample_dir();
    let mut cosines = Vec::new();
    for part in ["base", "query"] {
        let texts = texts(&dir.join(format!("{part}.jsonl")));
        let (want, rows, dim) =
            quiver_formats::read_fvecs(&dir.join(format!("{part}.fvecs"))).unwrap();
        assert_eq!((texts.len(), rows, dim), (500, 500, 384));
        let got = embedder().embed(&texts).unwrap();
        assert_eq!((got.len(), got.dim), (500, 384));
        assert!(got.truncated.is_empty());
        for i in 0..rows {
            let c = cosine(got.row(i).unwrap(), &want[i * dim..(i + 1) * dim]);
            assert!(c >= 0.999, "{part} row {i} ({:?}): cosine {c}", texts[i]);
            cosines.push(c);
        }
    }
    let min = cosines.iter().cloned().fold(f64::INFINITY, f64::min);
    let mean = cosines.iter().sum::<f64>() / cosines.len() as f64;
    eprintln!(
        "{} rows: min cosine 1 - {:.2e}, mean 1 - {:.2e}",
        cosines.len(),
        1.0 - min,
        1.0 - mean
    );
}

#[test]
fn rows_come_back_in_input_order_whatever_the_batching() {
    let texts = texts(&sample_dir().join("query.jsonl"));
    let texts = &texts[..100];
    let all = embedder().embed(texts).unwrap();
    // One at a time: no other text shares the batch.
    for i in [0, 37, 99] {
        let one = embedder().embed(&texts[i..=i]).unwrap();
        assert!(cosine(one.row(0).unwrap(), all.row(i).unwrap()) > 1.0 - 1e-6);
    }
    // Reversed input, batches of 7 on one thread.
    let dir = embedder().model_dir().to_path_buf();
    let small = Embedder::load(
        &dir,
        EmbedOptions {
            threads: 1,
            batch_size: 7,
            ..EmbedOptions::default()
        },
    )
    .unwrap();
    let reversed: Vec<&String> = texts.iter().rev().collect();
    let got = small.embed(&reversed).unwrap();
    for i in 0..texts.len() {
        let c = cosine(got.row(texts.len() - 1 - i).unwrap(), all.row(i).unwrap());
        assert!(c > 1.0 - 1e-6, "text {i}: {c}");
    }
}

/// The first four values of sentence-transformers' vectors.
fn assert_starts_with(v: &[f32], want: [f32; 4]) {
    for (g, w) in v.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "{:?} vs {want:?}", &v[..4]);
    }
}

#[test]
fn empty_and_blank_texts_embed_cls_sep() {
    let e = embedder();
    assert_eq!(
        e.token_ids(&["", " \t\n "]).unwrap(),
        vec![vec![101, 102]; 2]
    );
    let got = e.embed(&["", " \t\n "]).unwrap();
    let want = [
        -0.118_838_42,
        0.048_298_664,
        -0.002_548_069_2,
        -0.011_011_181,
    ];
    assert_starts_with(got.row(0).unwrap(), want);
    assert_eq!(got.row(0), got.row(1));
}

#[test]
fn long_texts_are_truncated_at_256_tokens_and_reported() {
    let long = ["the quick brown fox jumps over the lazy dog"; 60].join(" ");
    let longer = format!("{long} and then some more words at the end");
    let texts = [
        "short".to_string(),
        long,
        longer,
        "héllo wörld ☃ 日本語".to_string(),
    ];
    let e = embedder();
    let ids = e.token_ids(&texts).unwrap();
    assert_eq!(ids[1].len(), 256);
    assert_eq!((ids[1].first(), ids[1].last()), (Some(&101), Some(&102)));
    let got = e.embed(&texts).unwrap();
    assert_eq!(got.truncated, vec![1, 2]);
    assert_eq!(got.row(1), got.row(2), "the same first 254 word pieces");
    assert_starts_with(
        got.row(1).unwrap(),
        [0.052_868_854, -0.037_107_155, 0.071_427_75, 0.004_930_481_3],
    );
    assert_starts_with(
        got.row(3).unwrap(),
        [-0.024_414_925, 0.019_023_256, 0.094_979_69, -0.067_396_34],
    );
}

#[test]
fn bad_options_are_refused() {
    let dir = embedder().model_dir().to_path_buf();
    for options in [
        EmbedOptions {
            batch_size: 0,
            ..EmbedOptions::default()
        },
        EmbedOptions {
            max_tokens: 513,
            ..EmbedOptions::default()
        },
        EmbedOptions {
            max_tokens: 1,
            ..EmbedOptions::default()
        },
    ] {
        assert!(matches!(
            Embedder::load(&dir, options),
            Err(quiver_embed::Error::InvalidOption { .. })
        ));
    }
}

#[test]
fn damaged_model_files_are_reported_with_their_path() {
    let src = embedder().model_dir();
    let tmp = tempfile::tempdir().unwrap();
    for f in quiver_embed::MODEL_FILES {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    let weights = tmp.path().join("model.safetensors");
    std::fs::write(&weights, b"not a safetensors file").unwrap();
    let err = Embedder::load(tmp.path(), EmbedOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, quiver_embed::Error::CorruptModel { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    std::fs::remove_file(&weights).unwrap();
    let err = Embedder::load(tmp.path(), EmbedOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            quiver_embed::Error::MissingModelFile {
                file: "model.safetensors",
                ..
            }
        ),
        "{err}"
    );
}
