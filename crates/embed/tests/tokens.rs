//! Per-token outputs (`Embedder::embed_tokens`, for late interaction): one row per token of
//! the tokenizer's sequence, whose normalised mean is the sentence vector, whatever the
//! batching. Needs the model (`scripts/fetch-model`), like `wordnet_sample.rs`.

#![allow(clippy::unwrap_used, reason = "tests")]

use quiver_embed::{EmbedOptions, Embedder};

#[test]
fn token_rows_pool_to_the_sentence_vector() {
    let dir = quiver_embed::locate_model(None).unwrap_or_else(|e| {
        panic!("{e}\nThis test needs the model: run scripts/fetch-model (see docs/embedding.md).")
    });
    // Batches of 2 (sorted by length): texts of different lengths share batches.
    let e = Embedder::load(
        &dir,
        EmbedOptions {
            batch_size: 2,
            ..EmbedOptions::default()
        },
    )
    .unwrap();
    let texts = [
        "a dog",
        "the quick brown fox jumps over the lazy dog",
        "",
        "late interaction scores every token",
        "wordnet gloss",
    ];
    let tokens = e.embed_tokens(&texts).unwrap();
    let ids = e.token_ids(&texts).unwrap();
    let sentences = e.embed(&texts).unwrap();
    let dim = e.dim();
    for (i, t) in tokens.iter().enumerate() {
        assert_eq!(t.len(), ids[i].len() * dim, "text {i}: one row per token");
        let mut mean = vec![0.0f64; dim];
        for row in t.chunks_exact(dim) {
            for (m, x) in mean.iter_mut().zip(row) {
                *m += f64::from(*x);
            }
        }
        let norm = mean.iter().map(|x| x * x).sum::<f64>().sqrt();
        for (m, s) in mean.iter().zip(sentences.row(i).unwrap()) {
            assert!((m / norm - f64::from(*s)).abs() < 1e-4, "text {i}");
        }
    }
}
