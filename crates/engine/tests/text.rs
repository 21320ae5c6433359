//! Text-embedded vectors with the built-in model (`quiver_embed::LazyEmbedder`, a
//! dev-dependency: the engine itself only knows the `TextEmbedder` trait): documents upserted
//! with their text and no vector, text queries, checked against the embedder itself. Needs the
//! model (`scripts/fetch-model`, which `.ci/run` runs first). The engine's side of the trait
//! with embedders that need no model is in `tests/embedder.rs`.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use quiver_embed::{EmbedOptions, LazyEmbedder};
use quiver_engine::{
    Collection, Database, DatabaseOptions, Distance, Error, IndexKind, Payload, Point, Schema,
    SearchRequest, TextEmbedder, VectorKind, With,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn model_dir() -> PathBuf {
    quiver_embed::locate_model(None).unwrap_or_else(|e| {
        panic!("these tests need the text model (run scripts/fetch-model): {e}")
    })
}

const DOCS: [&str; 8] = [
    "the cat sat on the mat and purred",
    "stock markets fell sharply after the interest rate decision",
    "a recipe for bread: flour, water, salt and yeast",
    "the goalkeeper saved a penalty in the final minute of the match",
    "volcanoes erupt when magma rises through the crust",
    "she practised the violin every morning before school",
    "the compiler rejected the program because of a type error",
    "",
];

fn open(dir: &Path, model_dir: PathBuf) -> Database {
    let options = EmbedOptions {
        threads: 1,
        ..EmbedOptions::default()
    };
    Database::open(
        dir,
        DatabaseOptions {
            text_embedder: Some(Arc::new(LazyEmbedder::new(Some(model_dir), options))),
            ..DatabaseOptions::default()
        },
    )
    .unwrap()
}

fn text_collection(db: &Database, dim: usize) -> Arc<Collection> {
    let schema = Schema {
        sparse_vectors: Default::default(),
        vectors: BTreeMap::from([(
            String::new(),
            VectorKind::text("body", dim, Distance::Cosine, IndexKind::Flat),
        )]),
    };
    db.create_collection("docs", schema, Default::default())
        .unwrap()
}

fn doc(id: u64, body: serde_json::Value) -> Point {
    let mut payload = Payload::new();
    payload.insert("body".into(), body);
    payload.insert("n".into(), json!(id));
    Point::from_payload(id, payload)
}

fn docs() -> Vec<Point> {
    DOCS.iter()
        .enumerate()
        .map(|(i, t)| doc(i as u64, json!(t)))
        .collect()
}

/// The embedder's own vectors for `texts`, cut to `dim` values.
fn reference(texts: &[&str], dim: usize) -> Vec<Vec<f32>> {
    let e = quiver_embed::Embedder::load(&model_dir(), Default::default()).unwrap();
    let mut out = e.embed(texts).unwrap();
    if dim < out.dim {
        out.truncate_dims(dim).unwrap();
    }
    out.vectors.chunks(dim).map(<[f32]>::to_vec).collect()
}

fn stored(c: &Collection, id: u64) -> Vec<f32> {
    let r = c.retrieve(&[id.into()], With::ALL).unwrap();
    r[0].vectors.as_ref().unwrap()[""].clone()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn top(c: &Collection, query: &str) -> (u64, f32) {
    let v = c.embed_text("", &[query]).unwrap().pop().unwrap();
    let hits = c.search(&SearchRequest::new(v, 1)).unwrap();
    let quiver_engine::PointId::Num(id) = hits[0].id else {
        panic!("numeric ids only")
    };
    (id, hits[0].score)
}

#[test]
fn documents_are_embedded_from_their_payload_and_found_by_text() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), model_dir());
    let c = text_collection(&db, 384);
    c.upsert(docs()).unwrap();
    assert_eq!(c.count(), DOCS.len() as u64);

    let expected = reference(&DOCS, 384);
    for (i, e) in expected.iter().enumerate() {
        let got = stored(&c, i as u64);
        assert!(max_diff(&got, e) < 1e-5, "doc {i}: stored vector differs");
    }
    assert_eq!(top(&c, "which animal purred on the mat?").0, 0);
    assert_eq!(top(&c, "ingredients for baking a loaf").0, 2);
    assert_eq!(top(&c, "a football game").0, 3);
    let (id, score) = top(&c, DOCS[4]);
    assert_eq!(id, 4);
    assert!(score > 0.999, "the same text scores {score}");

    // A point that brings its own vector keeps it.
    let mut own = vec![0.0; 384];
    own[7] = 1.0;
    c.upsert(vec![
        doc(100, json!("ignored for the vector")).with_vector("", own.clone()),
    ])
    .unwrap();
    assert_eq!(stored(&c, 100), own);
}

#[test]
fn a_missing_or_non_text_field_rejects_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), model_dir());
    let c = text_collection(&db, 384);
    let mut no_text = doc(2, json!("x"));
    no_text.payload.remove("body");
    let err = c
        .upsert(vec![doc(1, json!("fine")), no_text])
        .unwrap_err()
        .to_string();
    assert!(err.contains("point 2") && err.contains("`body`"), "{err}");
    let err = c
        .upsert(vec![doc(1, json!("fine")), doc(3, json!(42))])
        .unwrap_err()
        .to_string();
    assert!(err.contains("point 3") && err.contains("a number"), "{err}");
    assert_eq!(c.count(), 0);
}

#[test]
fn fewer_dimensions_keep_the_models_first_values_rescaled() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), model_dir());
    let c = text_collection(&db, 128);
    c.upsert(docs()).unwrap();
    let expected = reference(&DOCS, 128);
    for (i, e) in expected.iter().enumerate() {
        let got = stored(&c, i as u64);
        assert_eq!(got.len(), 128);
        assert!(max_diff(&got, e) < 1e-5, "doc {i}: stored vector differs");
    }
    assert_eq!(top(&c, "which animal purred on the mat?").0, 0);
}

#[test]
fn the_schema_names_a_known_model_and_at_most_its_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), model_dir());
    let bad = |kind: VectorKind| {
        let schema = Schema {
            sparse_vectors: Default::default(),
            vectors: BTreeMap::from([(String::new(), kind)]),
        };
        match db.create_collection("bad", schema, Default::default()) {
            Err(Error::InvalidSchema { reason }) => reason,
            other => panic!("expected an invalid schema, got {other:?}"),
        }
    };
    let r = bad(VectorKind::text(
        "t",
        385,
        Distance::Cosine,
        IndexKind::Flat,
    ));
    assert!(r.contains("385"), "{r}");
    let r = bad(VectorKind::Text {
        dim: 384,
        distance: Distance::Cosine,
        index: IndexKind::Flat,
        model: "no-such-model".into(),
        field: "t".into(),
    });
    assert!(r.contains("no-such-model"), "{r}");
    assert!(db.list_collections().is_empty());
}

#[test]
fn recovery_needs_no_model_and_a_missing_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let query = {
        let db = open(dir.path(), model_dir());
        let c = text_collection(&db, 384);
        c.upsert(docs()).unwrap();
        c.embed_text("", &[DOCS[1]]).unwrap().pop().unwrap()
    };
    // Reopen (the log is replayed) with a model directory that does not exist.
    let nowhere = dir.path().join("no-model-here");
    let db = open(dir.path(), nowhere);
    let c = db.collection("docs").unwrap();
    assert_eq!(c.count(), DOCS.len() as u64);
    let hits = c.search(&SearchRequest::new(query.clone(), 1)).unwrap();
    assert_eq!(hits[0].id, 1u64.into());
    let err = c.upsert(vec![doc(50, json!("new text"))]).unwrap_err();
    let Error::Embed { error, .. } = &err else {
        panic!("expected an embedding error, got {err:?}")
    };
    // The embedder's own error comes through whole.
    assert!(
        error.downcast_ref::<quiver_embed::Error>().is_some(),
        "{error:?}"
    );
    assert!(err.to_string().contains("no-model-here"), "{err}");
    assert_eq!(c.count(), DOCS.len() as u64);

    // A plain vector is not embedded from text.
    let plain = db
        .create_collection("plain", Schema::dense(4, Distance::Dot), Default::default())
        .unwrap();
    let err = plain.embed_text("", &["text"]).unwrap_err().to_string();
    assert!(err.contains("not embedded from text"), "{err}");
    drop((c, plain, db));

    // Without any text embedder: the collection opens and answers vector queries; a text
    // to embed is an error that says no model is configured.
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let c = db.collection("docs").unwrap();
    assert_eq!(c.count(), DOCS.len() as u64);
    let hits = c.search(&SearchRequest::new(query, 1)).unwrap();
    assert_eq!(hits[0].id, 1u64.into());
    let err = c.upsert(vec![doc(50, json!("new text"))]).unwrap_err();
    assert!(matches!(err, Error::NoTextEmbedder { .. }), "{err:?}");
    assert!(err.to_string().contains("no text model"), "{err}");
    assert_eq!(c.count(), DOCS.len() as u64);
}

#[test]
fn the_engine_names_the_built_in_model_as_quiver_embed_does() {
    // The engine keeps its own copy of the name, so that it does not link the model.
    assert_eq!(quiver_engine::TEXT_MODEL, quiver_embed::MODEL_NAME);
    assert_eq!(quiver_engine::TEXT_MODEL_DIM, quiver_embed::MODEL_DIM);
    let builtin = LazyEmbedder::default();
    assert_eq!(
        (builtin.model(), builtin.dim()),
        (quiver_embed::MODEL_NAME, quiver_embed::MODEL_DIM)
    );
}
