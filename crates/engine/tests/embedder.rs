//! The engine's side of the `TextEmbedder` trait, with small embedders written here (no model
//! files): text vectors are computed by the database's embedder, checked against it when a
//! collection is created, never computed by another model, never needed to open or recover,
//! and an embedder that fails or breaks its promise rejects the whole batch. The built-in
//! model is tested in `tests/text.rs`.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use quiver_engine::{
    BoxError, Database, DatabaseOptions, Distance, Error, IndexKind, Payload, Point, Schema,
    SearchRequest, TextEmbedder, VectorKind, With,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a [`Letters`] embedder misbehaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// One vector fewer than texts.
    TooFew,
    /// The first vector one value too long.
    WrongDim,
    /// A NaN in the first vector.
    NonFinite,
    /// Fails with [`Refused`].
    Fails,
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the letters model refuses")
    }
}

impl std::error::Error for Refused {}

/// A 4-dimensional "model": 1 + the counts of `a`, `e`, `o` and of other characters, cut to
/// the first `dim` values and scaled to unit length.
fn letters(text: &str, dim: usize) -> Vec<f32> {
    let mut v = vec![1.0f32; 4];
    for c in text.chars() {
        let slot = match c {
            'a' => 0,
            'e' => 1,
            'o' => 2,
            _ => 3,
        };
        v[slot] += 1.0;
    }
    v.truncate(dim);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

struct Letters {
    name: &'static str,
    fault: Fault,
    /// Calls of `embed`.
    calls: AtomicUsize,
}

impl Letters {
    fn new(name: &'static str, fault: Fault) -> Arc<Letters> {
        Arc::new(Letters {
            name,
            fault,
            calls: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl TextEmbedder for Letters {
    fn model(&self) -> &str {
        self.name
    }

    fn dim(&self) -> usize {
        4
    }

    fn embed(&self, texts: &[&str], dim: usize) -> Result<Vec<Vec<f32>>, BoxError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut out: Vec<Vec<f32>> = texts.iter().map(|t| letters(t, dim)).collect();
        match self.fault {
            Fault::None => {}
            Fault::TooFew => {
                out.pop();
            }
            Fault::WrongDim => out[0].push(0.0),
            Fault::NonFinite => out[0][0] = f32::NAN,
            Fault::Fails => return Err(Box::new(Refused)),
        }
        Ok(out)
    }
}

fn open(dir: &Path, embedder: Option<Arc<Letters>>) -> Database {
    let text_embedder = embedder.map(|e| e as Arc<dyn TextEmbedder>);
    Database::open(
        dir,
        DatabaseOptions {
            text_embedder,
            ..DatabaseOptions::default()
        },
    )
    .unwrap()
}

fn text_schema(model: &str, dim: usize) -> Schema {
    Schema {
        sparse_vectors: Default::default(),
        vectors: BTreeMap::from([(
            String::new(),
            VectorKind::Text {
                dim,
                distance: Distance::Dot,
                index: IndexKind::Flat,
                model: model.into(),
                field: "body".into(),
            },
        )]),
    }
}

fn doc(id: u64, body: &str) -> Point {
    let mut payload = Payload::new();
    payload.insert("body".into(), json!(body));
    Point::from_payload(id, payload)
}

const BODIES: [&str; 4] = ["banana", "free tree", "foo boo zoo", "xyz"];

fn docs() -> Vec<Point> {
    BODIES
        .iter()
        .enumerate()
        .map(|(i, b)| doc(i as u64, b))
        .collect()
}

fn stored(c: &quiver_engine::Collection, id: u64) -> Vec<f32> {
    let r = c.retrieve(&[id.into()], With::ALL).unwrap();
    r[0].vectors.as_ref().unwrap()[""].clone()
}

#[test]
fn the_databases_embedder_fills_text_vectors_and_text_queries() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = Letters::new("letters", Fault::None);
    let db = open(dir.path(), Some(Arc::clone(&embedder)));
    // Fewer dimensions than the model's: the embedder is asked for 3.
    let c = db
        .create_collection("docs", text_schema("letters", 3), Default::default())
        .unwrap();
    c.upsert(docs()).unwrap();
    assert_eq!(embedder.calls(), 1, "one call for the batch");
    for (i, body) in BODIES.iter().enumerate() {
        assert_eq!(stored(&c, i as u64), letters(body, 3), "doc {i}");
    }
    let query = c.embed_text("", &["aaaa"]).unwrap().pop().unwrap();
    assert_eq!(query, letters("aaaa", 3));
    let hits = c.search(&SearchRequest::new(query, 1)).unwrap();
    assert_eq!(hits[0].id, 0u64.into(), "banana has the most a's");

    // A point that brings its own vector is not embedded.
    let calls = embedder.calls();
    c.upsert(vec![doc(9, "ignored").with_vector("", vec![0.0, 1.0, 0.0])])
        .unwrap();
    assert_eq!(embedder.calls(), calls);
    assert_eq!(stored(&c, 9), vec![0.0, 1.0, 0.0]);
}

#[test]
fn creating_a_collection_checks_its_text_vectors_against_the_embedder() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Some(Letters::new("letters", Fault::None)));
    let reason = |schema: Schema| match db.create_collection("bad", schema, Default::default()) {
        Err(Error::InvalidSchema { reason }) => reason,
        other => panic!("expected an invalid schema, got {other:?}"),
    };
    let r = reason(text_schema("other-model", 4));
    assert!(r.contains("other-model") && r.contains("letters"), "{r}");
    let r = reason(text_schema("letters", 5));
    assert!(r.contains('5') && r.contains('4'), "{r}");
    let r = reason(text_schema("", 4));
    assert!(r.contains("model name is empty"), "{r}");
    // The built-in model is not this database's.
    let r = reason(Schema {
        sparse_vectors: Default::default(),
        vectors: BTreeMap::from([(
            String::new(),
            VectorKind::text("body", 4, Distance::Cosine, IndexKind::Flat),
        )]),
    });
    assert!(r.contains(quiver_engine::TEXT_MODEL), "{r}");
    assert!(db.list_collections().is_empty());
    db.create_collection("good", text_schema("letters", 4), Default::default())
        .unwrap();
}

#[test]
fn without_an_embedder_text_vectors_must_be_given() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), None);
    // Nothing to check the model against: accepted, and embedding is the error.
    let c = db
        .create_collection("docs", text_schema("letters", 4), Default::default())
        .unwrap();
    c.upsert(vec![
        doc(1, "own").with_vector("", vec![1.0, 0.0, 0.0, 0.0]),
    ])
    .unwrap();
    let err = c.upsert(vec![doc(2, "to embed")]).unwrap_err();
    assert!(
        matches!(&err, Error::NoTextEmbedder { model, .. } if model == "letters"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("no text model is configured"),
        "{err}"
    );
    let err = c.embed_text("", &["query"]).unwrap_err();
    assert!(matches!(err, Error::NoTextEmbedder { .. }), "{err:?}");
    assert_eq!(c.count(), 1);
}

#[test]
fn a_collection_is_never_embedded_by_another_model_and_reopens_without_one() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path(), Some(Letters::new("letters", Fault::None)));
        let c = db
            .create_collection("docs", text_schema("letters", 4), Default::default())
            .unwrap();
        c.upsert(docs()).unwrap();
    }
    // Reopened (the log replayed) with another model of the same shape.
    let other = Letters::new("other", Fault::None);
    let db = open(dir.path(), Some(Arc::clone(&other)));
    let c = db.collection("docs").unwrap();
    assert_eq!(c.count(), BODIES.len() as u64);
    let hits = c.search(&SearchRequest::new(letters("xyz", 4), 1)).unwrap();
    assert_eq!(hits[0].id, 3u64.into());
    let err = c.upsert(vec![doc(7, "new")]).unwrap_err();
    let Error::TextModelMismatch {
        declared,
        configured,
        ..
    } = &err
    else {
        panic!("expected a model mismatch, got {err:?}")
    };
    assert_eq!(
        (declared.as_str(), configured.as_str()),
        ("letters", "other")
    );
    assert!(c.embed_text("", &["q"]).is_err());
    assert_eq!(
        other.calls(),
        0,
        "recovery and refusals never call the embedder"
    );
    assert_eq!(c.count(), BODIES.len() as u64);
}

#[test]
fn an_embedder_that_fails_or_breaks_its_promise_rejects_the_whole_batch() {
    for (fault, expect) in [
        (Fault::Fails, "the letters model refuses"),
        (Fault::TooFew, "3 vectors for 4 texts"),
        (Fault::WrongDim, "5 values for text 0, not 4"),
        (Fault::NonFinite, "non-finite value for text 0 at index 0"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), Some(Letters::new("letters", fault)));
        let c = db
            .create_collection("docs", text_schema("letters", 4), Default::default())
            .unwrap();
        let err = c.upsert(docs()).unwrap_err();
        let Error::Embed { error, .. } = &err else {
            panic!("{fault:?}: expected an embedding error, got {err:?}")
        };
        assert!(err.to_string().contains(expect), "{fault:?}: {err}");
        assert_eq!(
            error.downcast_ref::<Refused>().is_some(),
            fault == Fault::Fails,
            "{fault:?}: the embedder's own error comes through whole"
        );
        assert_eq!(c.count(), 0, "{fault:?}");
        assert!(c.embed_text("", &["q"]).is_err(), "{fault:?}");
    }
}
