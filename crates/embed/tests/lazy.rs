//! [`LazyEmbedder`], the built-in model as the engine's `TextEmbedder`: nothing is read before
//! the first embedding, a failed load is tried again, and its vectors are the embedder's.
//!
//! These tests need the model. Without it they fail (they do not skip) and say how to get
//! it: `scripts/fetch-model`.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::PathBuf;

use quiver_embed::{
    EmbedOptions, Embedder, Error, LazyEmbedder, MODEL_DIM, MODEL_FILES, MODEL_NAME,
};
use quiver_embed_api::TextEmbedder;

fn model_dir() -> PathBuf {
    quiver_embed::locate_model(None).unwrap_or_else(|e| {
        panic!("{e}\nThese tests need the model: run scripts/fetch-model (see docs/embedding.md).")
    })
}

fn one_thread() -> EmbedOptions {
    EmbedOptions {
        threads: 1,
        ..EmbedOptions::default()
    }
}

const TEXTS: [&str; 3] = [
    "the dog barked all night",
    "",
    "a quiet morning by the lake",
];

#[test]
fn nothing_is_read_before_the_first_embedding_and_a_failed_load_is_tried_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    let lazy = LazyEmbedder::new(Some(dir.clone()), one_thread());
    // Name and width come without the files.
    assert_eq!((lazy.model(), lazy.dim()), (MODEL_NAME, MODEL_DIM));

    let err = lazy.embed(&TEXTS, MODEL_DIM).unwrap_err();
    let own = err.downcast_ref::<Error>();
    assert!(
        matches!(own, Some(Error::MissingModelFile { dir: d, .. }) if *d == dir),
        "{err:?}"
    );

    // The files arrive: the next call loads them.
    let real = model_dir();
    for file in MODEL_FILES {
        std::fs::copy(real.join(file), dir.join(file)).unwrap();
    }
    let got = lazy.embed(&TEXTS, MODEL_DIM).unwrap();
    let expected = Embedder::load(&real, one_thread())
        .unwrap()
        .embed(&TEXTS)
        .unwrap();
    assert_eq!(got.len(), TEXTS.len());
    for (i, row) in got.iter().enumerate() {
        assert_eq!(Some(row.as_slice()), expected.row(i), "text {i}");
    }
}

#[test]
fn fewer_dimensions_are_the_first_values_rescaled_and_others_are_refused() {
    let lazy = LazyEmbedder::new(Some(model_dir()), one_thread());
    let got = lazy.embed(&TEXTS, 128).unwrap();
    let mut expected = Embedder::load(&model_dir(), one_thread())
        .unwrap()
        .embed(&TEXTS)
        .unwrap();
    expected.truncate_dims(128).unwrap();
    for (i, row) in got.iter().enumerate() {
        assert_eq!(Some(row.as_slice()), expected.row(i), "text {i}");
    }
    assert!(lazy.embed(&[], MODEL_DIM).unwrap().is_empty());
    for dim in [0, MODEL_DIM + 1] {
        let err = lazy.embed(&TEXTS, dim).unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<Error>(),
                Some(Error::InvalidOption { got, .. }) if *got == dim
            ),
            "dim {dim}: {err:?}"
        );
    }
}
