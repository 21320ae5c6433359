//! Qdrant's server-side BM25: `{"text": ..., "model": "qdrant/bm25"}` documents in upserts
//! and queries, turned into sparse vectors here, as Qdrant does for a client that sends
//! `models.Document(text, model="qdrant/bm25")` with `cloud_inference=True`.
//!
//! - On a plain sparse vector (created through this API, normally with `modifier: idf`): a
//!   document becomes fastembed's `qdrant/bm25` embedding, each term's value
//!   `tf·(k+1) / (tf + k·(1 − b + b·dl/avg_len))` with k = 1.2, b = 0.75 and a fixed
//!   `avg_len` = 256 (fastembed's defaults, overridable by the document's `options`); a
//!   query becomes its distinct terms with value 1, and the vector's IDF modifier supplies
//!   the IDF at search time. This is Qdrant's BM25: the length normalisation uses the fixed
//!   `avg_len`, not the collection's.
//! - On a BM25 vector (`quiver_engine::Bm25`, created with the CLI or the library): a
//!   document becomes its term counts (the engine's own form) and a query its distinct terms;
//!   the engine scores true BM25 with the collection's statistics.
//!
//! Both use the engine's analyzer (`quiver_analyzer`, English with stop words for plain
//! sparse vectors, the vector's own settings for a BM25 vector) and fastembed's term ids.

use crate::error::{ApiError, ApiResult};
use quiver_analyzer::{Analyzer, Language};
use quiver_engine::{Schema, SparseVector};
use serde_json::{Map, Value};

/// The model name, as Qdrant's clients spell it (matched without regard to case).
pub const MODEL: &str = "qdrant/bm25";

/// fastembed's `qdrant/bm25` parameters, read from a document's `options` (`k`, `b`,
/// `avg_len`) when given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    k: f64,
    b: f64,
    avg_len: f64,
}

impl Options {
    pub fn parse(options: Option<&Value>, at: &str) -> ApiResult<Options> {
        let mut o = Options {
            k: 1.2,
            b: 0.75,
            avg_len: 256.0,
        };
        let Some(options) = options else {
            return Ok(o);
        };
        let Value::Object(map) = options else {
            return Err(ApiError::bad_request(format!(
                "Format error in JSON body: {at}.options: expected an object"
            )));
        };
        let number = |map: &Map<String, Value>, key: &str, ok: fn(f64) -> bool| {
            map.get(key)
                .map(|v| match v.as_f64() {
                    Some(x) if x.is_finite() && ok(x) => Ok(x),
                    _ => Err(ApiError::bad_request(format!(
                        "Wrong input: {at}.options.{key}: {v} is out of range"
                    ))),
                })
                .transpose()
        };
        if let Some(k) = number(map, "k", |x| x >= 0.0)? {
            o.k = k;
        }
        if let Some(b) = number(map, "b", |x| (0.0..=1.0).contains(&x))? {
            o.b = b;
        }
        if let Some(avg_len) = number(map, "avg_len", |x| x > 0.0)? {
            o.avg_len = avg_len;
        }
        Ok(o)
    }
}

/// A `qdrant/bm25` document or query text, and its options.
#[derive(Debug, Clone)]
pub struct Bm25Text {
    pub text: String,
    pub options: Options,
}

/// The analyzer for sparse vector `vector` of `schema`, and whether it is a BM25 vector;
/// a 400 naming `at` when the vector is dense or unknown.
fn analyzer(schema: &Schema, vector: &str, at: &str) -> ApiResult<(Analyzer, bool)> {
    let Some(kind) = schema.sparse_vectors.get(vector) else {
        return Err(ApiError::bad_request(format!(
            "Wrong input: {at}: model {MODEL} makes sparse vectors, and {} is not a sparse vector of the collection",
            if vector.is_empty() {
                "the unnamed vector".to_string()
            } else {
                format!("`{vector}`")
            }
        )));
    };
    match &kind.bm25 {
        Some(spec) => spec
            .analyzer()
            .map(|a| (a, true))
            .map_err(|e| ApiError::bad_request(format!("Wrong input: {at}: {e}"))),
        None => Analyzer::new(Language::English, true)
            .map(|a| (a, false))
            .map_err(|e| ApiError::internal(format!("Service internal error: {e}"))),
    }
}

/// A document for sparse vector `vector`, as stored (see the module documentation).
pub fn document(
    schema: &Schema,
    vector: &str,
    doc: &Bm25Text,
    at: &str,
) -> ApiResult<SparseVector> {
    let (analyzer, counts_only) = analyzer(schema, vector, at)?;
    let counts = analyzer.count(&doc.text);
    let dl = f64::from(counts.length);
    let Options { k, b, avg_len } = doc.options;
    let (indices, values) = counts
        .terms
        .into_iter()
        .map(|(id, n)| {
            let tf = f64::from(n);
            let value = match counts_only {
                true => tf,
                false => tf * (k + 1.0) / (tf + k * (1.0 - b + b * dl / avg_len)),
            };
            (id, value as f32)
        })
        .unzip();
    Ok(SparseVector { indices, values })
}

/// A query for sparse vector `vector`: the text's distinct terms, each of value 1.
pub fn query(schema: &Schema, vector: &str, text: &str, at: &str) -> ApiResult<SparseVector> {
    let (analyzer, _) = analyzer(schema, vector, at)?;
    let indices = analyzer.query_terms(text);
    let values = vec![1.0; indices.len()];
    Ok(SparseVector { indices, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_engine::{Bm25, Distance, Modifier, SparseKind};

    #[test]
    fn plain_sparse_vectors_get_fastembeds_values_bm25_vectors_counts() {
        let schema = Schema::dense(2, Distance::Dot)
            .with_sparse("s", SparseKind::with_modifier(Modifier::Idf))
            .with_sparse("b", SparseKind::bm25(Bm25::new("t")));
        let doc = Bm25Text {
            text: "Dogs chase dogs".into(),
            options: Options::parse(None, "x").unwrap(),
        };
        let dog = quiver_analyzer::term_id("dog");
        let s = document(&schema, "s", &doc, "x").unwrap();
        let at = s.indices.iter().position(|&i| i == dog).unwrap();
        // tf 2, dl 3: 2·2.2 / (2 + 1.2·(0.25 + 0.75·3/256)).
        let want = 2.0 * 2.2 / (2.0 + 1.2 * (0.25 + 0.75 * 3.0 / 256.0));
        assert!((f64::from(s.values[at]) - want).abs() < 1e-6);
        let b = document(&schema, "b", &doc, "x").unwrap();
        assert_eq!(b.indices, s.indices);
        assert_eq!(b.values[at], 2.0);
        let q = query(&schema, "s", "dog DOGS chase", "x").unwrap();
        assert_eq!(q.values, vec![1.0, 1.0]);
        let e = document(&schema, "", &doc, "points[0].vector").unwrap_err();
        assert!(e.message.contains("points[0].vector"), "{}", e.message);
        let opts = Options::parse(Some(&serde_json::json!({"b": 2})), "q").unwrap_err();
        assert!(opts.message.contains("q.options.b"), "{}", opts.message);
    }
}
