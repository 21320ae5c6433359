//! Sparse vectors: definitions, upserts, exact sparse search and bad sparse input.

use super::common::*;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
/// A small deterministic generator for the sparse tests (no test depends on its exact values).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// In 0.1..2.1, so that scores rarely tie.
    fn weight(&mut self) -> f32 {
        0.1 + (self.next() % 1_000_000) as f32 / 500_000.0
    }

    /// A sparse vector with 1 to 5 distinct indices below `vocabulary`, in random order.
    fn sparse(&mut self, vocabulary: u64) -> (Vec<u32>, Vec<f32>) {
        let mut entries = std::collections::BTreeMap::new();
        for _ in 0..1 + self.below(5) {
            entries.insert(self.below(vocabulary) as u32, self.weight());
        }
        let (mut indices, mut values): (Vec<u32>, Vec<f32>) = entries.into_iter().unzip();
        if self.below(2) == 0 {
            indices.reverse();
            values.reverse();
        }
        (indices, values)
    }
}

/// `got` is `{"indices", "values"}` equal to `want` sorted by index (values within f32
/// rounding: the server writes them as f32).
fn assert_sparse(got: &Value, want: &(Vec<u32>, Vec<f32>), what: &str) {
    let mut pairs: Vec<(u32, f32)> = want.0.iter().copied().zip(want.1.iter().copied()).collect();
    pairs.sort_by_key(|p| p.0);
    let indices: Vec<u64> = got["indices"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: {got}"))
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    let want_indices: Vec<u64> = pairs.iter().map(|p| u64::from(p.0)).collect();
    assert_eq!(indices, want_indices, "{what}: {got}");
    let values = got["values"].as_array().unwrap();
    assert_eq!(values.len(), pairs.len(), "{what}: {got}");
    for (v, p) in values.iter().zip(&pairs) {
        let v = v.as_f64().unwrap();
        assert!((v - f64::from(p.1)).abs() < 1e-6, "{what}: {got}");
    }
}

fn sparse_json(v: &(Vec<u32>, Vec<f32>)) -> Value {
    json!({"indices": v.0, "values": v.1})
}

/// Dot product over shared indices; `None` when none is shared (such points are not hits).
fn sparse_dot(q: &(Vec<u32>, Vec<f32>), p: &(Vec<u32>, Vec<f32>), weights: &[f64]) -> Option<f64> {
    let mut score = None;
    for (qi, (i, w)) in q.0.iter().zip(&q.1).enumerate() {
        if let Some(j) = p.0.iter().position(|x| x == i) {
            *score.get_or_insert(0.0) += f64::from(*w) * weights[qi] * f64::from(p.1[j]);
        }
    }
    score
}

/// Checks hits against brute force: as many as the reference's top `limit`, each hit's score
/// its own brute-force score, and rank by rank the reference's scores (ties may pick either).
fn check_hits(
    hits: &Value,
    reference: &std::collections::BTreeMap<u64, f64>,
    limit: usize,
    what: &str,
) {
    let mut want: Vec<f64> = reference.values().copied().collect();
    want.sort_by(|a, b| b.total_cmp(a));
    want.truncate(limit);
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), want.len(), "{what}: {hits:?}");
    for (rank, (hit, want)) in hits.iter().zip(&want).enumerate() {
        let id = hit["id"].as_u64().unwrap();
        let score = hit["score"].as_f64().unwrap();
        let own = reference
            .get(&id)
            .unwrap_or_else(|| panic!("{what}: {id} is not a candidate"));
        let tolerance = 1e-4 * (1.0 + want.abs());
        assert!(
            (score - own).abs() < tolerance,
            "{what}: {id} scored {score}, not {own}"
        );
        assert!(
            (score - want).abs() < tolerance,
            "{what}: rank {rank}: {score}, not {want}"
        );
    }
}

async fn create_sparse(s: &Server) {
    s.ok(
        Method::PUT,
        "/collections/s",
        json!({
            "vectors": {"dense": {"size": 2, "distance": "Dot"}},
            "sparse_vectors": {
                "text": {"index": {"on_disk": true, "full_scan_threshold": 5000}},
                "bm": {"modifier": "idf"},
            },
        }),
    )
    .await;
}

#[tokio::test]
async fn sparse_collections_are_created_and_described() {
    let s = server();
    create_sparse(&s).await;
    let info = s.ok(Method::GET, "/collections/s", Value::Null).await;
    assert_eq!(
        info["config"]["params"]["sparse_vectors"],
        json!({"text": {}, "bm": {"modifier": "idf"}}),
        "{info}"
    );
    assert_eq!(info["config"]["params"]["vectors"]["dense"]["size"], 2);
    // Sparse vectors only, with `vectors` absent or empty; `modifier: none`.
    for (name, body) in [
        (
            "only",
            json!({"sparse_vectors": {"t": {"modifier": "none"}}}),
        ),
        ("only2", json!({"vectors": {}, "sparse_vectors": {"t": {}}})),
    ] {
        s.ok(Method::PUT, &format!("/collections/{name}"), body)
            .await;
        let info = s
            .ok(Method::GET, &format!("/collections/{name}"), Value::Null)
            .await;
        assert_eq!(info["config"]["params"]["sparse_vectors"], json!({"t": {}}));
        assert_eq!(info["config"]["params"]["vectors"], json!({}));
    }
    // A collection without sparse vectors has no `sparse_vectors` member, as in Qdrant.
    s.create().await;
    let info = s.ok(Method::GET, "/collections/c", Value::Null).await;
    assert!(
        info["config"]["params"].get("sparse_vectors").is_none(),
        "{info}"
    );
    for (body, needle) in [
        (
            r#"{"vectors": {}, "sparse_vectors": {"t": {"modifier": "bm25"}}}"#,
            "sparse_vectors.t.modifier",
        ),
        (
            r#"{"sparse_vectors": {"t": {"index": {"datatype": "uint8"}}}}"#,
            "sparse_vectors.t.index.datatype",
        ),
        (
            r#"{"sparse_vectors": {"t": {"colour": 1}}}"#,
            "unknown field `colour`",
        ),
        (r#"{"sparse_vectors": [1]}"#, "sparse_vectors"),
        (
            r#"{"vectors": {"t": {"size": 2, "distance": "Dot"}}, "sparse_vectors": {"t": {}}}"#,
            "both",
        ),
        (r#"{"vectors": {}, "sparse_vectors": {}}"#, "at least one"),
    ] {
        s.fails(
            Method::PUT,
            "/collections/x",
            body,
            StatusCode::BAD_REQUEST,
            needle,
        )
        .await;
    }
    let (_, exists) = s
        .call(Method::GET, "/collections/x/exists", None, None)
        .await;
    assert_eq!(exists["result"], json!({"exists": false}));
}

#[tokio::test]
async fn sparse_points_are_upserted_returned_and_searched_exactly() {
    let s = server();
    create_sparse(&s).await;
    let mut rng = Lcg(17);
    let n = 80u64;
    type Sparse = (Vec<u32>, Vec<f32>);
    let mut text: std::collections::BTreeMap<u64, Sparse> = Default::default();
    let mut bm: std::collections::BTreeMap<u64, Sparse> = Default::default();
    let mut points = Vec::new();
    for id in 0..n {
        let t = rng.sparse(30);
        let b = rng.sparse(12);
        let mut vector = json!({"dense": [rng.weight(), rng.weight()], "bm": sparse_json(&b)});
        // Every fifth point has no `text` vector.
        if id % 5 != 0 {
            vector["text"] = sparse_json(&t);
            text.insert(id, t);
        }
        bm.insert(id, b);
        points.push(json!({"id": id, "vector": vector, "payload": {"g": id % 3}}));
    }
    // The first half in the list form, the second in the batch form.
    s.ok(
        Method::PUT,
        "/collections/s/points?wait=true",
        json!({"points": points[..40]}),
    )
    .await;
    let batch_ids: Vec<u64> = (40..n).filter(|id| id % 5 != 0).collect();
    assert_eq!(batch_ids.len(), 32);
    // The batch form needs one entry per id: points without `text` go in a list form call.
    let with_text: Vec<&Value> = points[40..]
        .iter()
        .filter(|p| p["id"].as_u64().unwrap() % 5 != 0)
        .collect();
    let without_text: Vec<&Value> = points[40..]
        .iter()
        .filter(|p| p["id"].as_u64().unwrap() % 5 == 0)
        .collect();
    let pick = |list: &[&Value], name: &str| -> Vec<Value> {
        list.iter().map(|p| p["vector"][name].clone()).collect()
    };
    s.ok(
        Method::PUT,
        "/collections/s/points?wait=true",
        json!({"batch": {
            "ids": batch_ids,
            "vectors": {
                "dense": pick(&with_text, "dense"),
                "text": pick(&with_text, "text"),
                "bm": pick(&with_text, "bm"),
            },
            "payloads": with_text.iter().map(|p| p["payload"].clone()).collect::<Vec<_>>(),
        }}),
    )
    .await;
    s.ok(
        Method::PUT,
        "/collections/s/points?wait=true",
        json!({"points": without_text}),
    )
    .await;
    assert_eq!(
        s.ok(Method::POST, "/collections/s/points/count", json!({}))
            .await["count"],
        n
    );

    // Retrieve: sparse vectors come back sorted by index, under the point's `vector`.
    let got = s
        .ok(
            Method::POST,
            "/collections/s/points",
            json!({"ids": [1, 5, 41], "with_vector": true}),
        )
        .await;
    assert_sparse(&got[0]["vector"]["text"], &text[&1], "retrieve 1 text");
    assert_sparse(&got[0]["vector"]["bm"], &bm[&1], "retrieve 1 bm");
    assert_eq!(got[0]["vector"]["dense"].as_array().unwrap().len(), 2);
    assert!(
        got[1]["vector"].get("text").is_none(),
        "point 5 has no text: {got}"
    );
    assert_sparse(&got[2]["vector"]["text"], &text[&41], "retrieve 41");
    let got = s
        .ok(
            Method::POST,
            "/collections/s/points",
            json!({"ids": [2], "with_vector": ["text"]}),
        )
        .await;
    assert_eq!(got[0]["vector"].as_object().unwrap().len(), 1, "{got}");
    assert_sparse(&got[0]["vector"]["text"], &text[&2], "with_vector text");
    let one = s
        .ok(Method::GET, "/collections/s/points/3", Value::Null)
        .await;
    assert_sparse(&one["vector"]["bm"], &bm[&3], "GET 3");
    let page = s
        .ok(
            Method::POST,
            "/collections/s/points/scroll",
            json!({"limit": 2, "with_vector": ["bm"]}),
        )
        .await;
    assert_eq!(page["points"][1]["vector"].as_object().unwrap().len(), 1);
    assert_sparse(&page["points"][1]["vector"]["bm"], &bm[&1], "scroll");

    // Queries against brute force: with and without a filter, both query forms, the old
    // search API; IDF on `bm`.
    let ones = vec![1.0; 8];
    for round in 0..6 {
        let q = rng.sparse(30);
        let limit = 1 + rng.below(15) as usize;
        let filtered = round % 2 == 1;
        let keep = |id: u64| !filtered || id % 3 != 1;
        let reference: std::collections::BTreeMap<u64, f64> = text
            .iter()
            .filter(|(id, _)| keep(**id))
            .filter_map(|(&id, p)| sparse_dot(&q, p, &ones).map(|s| (id, s)))
            .collect();
        let filter = if filtered {
            json!({"must_not": [{"key": "g", "match": {"value": 1}}]})
        } else {
            Value::Null
        };
        let query = if round % 3 == 0 {
            json!({"nearest": sparse_json(&q)})
        } else {
            sparse_json(&q)
        };
        let r = s
            .ok(
                Method::POST,
                "/collections/s/points/query",
                json!({"query": query, "using": "text", "limit": limit, "filter": filter}),
            )
            .await;
        check_hits(&r["points"], &reference, limit, &format!("query {round}"));
        let r = s
            .ok(
                Method::POST,
                "/collections/s/points/search",
                json!({"vector": {"name": "text", "vector": sparse_json(&q)}, "limit": limit, "filter": filter}),
            )
            .await;
        check_hits(&r, &reference, limit, &format!("search {round}"));
    }
    // IDF: each query value times ln(1 + (N - n + 0.5) / (n + 0.5)) over the live points.
    for round in 0..4 {
        let q = rng.sparse(12);
        let weights: Vec<f64> =
            q.0.iter()
                .map(|i| {
                    let holding = bm.values().filter(|p| p.0.contains(i)).count() as f64;
                    let big_n = n as f64;
                    (1.0 + (big_n - holding + 0.5) / (holding + 0.5)).ln()
                })
                .collect();
        let reference: std::collections::BTreeMap<u64, f64> = bm
            .iter()
            .filter_map(|(&id, p)| sparse_dot(&q, p, &weights).map(|s| (id, s)))
            .collect();
        let r = s
            .ok(
                Method::POST,
                "/collections/s/points/query",
                json!({"query": sparse_json(&q), "using": "bm", "limit": 10}),
            )
            .await;
        check_hits(&r["points"], &reference, 10, &format!("idf query {round}"));
    }
    // A query by point id on a sparse vector uses the point's sparse vector and leaves the
    // point out; `with_vector` returns the sparse vectors of hits.
    let r = s
        .ok(
            Method::POST,
            "/collections/s/points/query",
            json!({"query": 1, "using": "text", "limit": 3, "with_vector": ["text"]}),
        )
        .await;
    let hits = r["points"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h["id"] != 1), "{r}");
    let first = hits[0]["id"].as_u64().unwrap();
    assert_eq!(hits[0]["vector"].as_object().unwrap().len(), 1);
    assert_sparse(&hits[0]["vector"]["text"], &text[&first], "query hit");
}

#[tokio::test]
async fn bad_sparse_input_is_400_and_changes_nothing() {
    let s = server();
    create_sparse(&s).await;
    s.ok(
        Method::PUT,
        "/collections/s/points?wait=true",
        json!({"points": [{"id": 1, "vector": {"dense": [1, 0], "text": {"indices": [1, 2], "values": [0.5, 1]}}}]}),
    )
    .await;
    let good =
        r#"{"id": 10, "vector": {"dense": [1, 1], "text": {"indices": [3], "values": [1]}}}"#;
    let cases: Vec<(String, &str)> = vec![
        (
            format!(r#"{{"points": [{good}, {{"id": 11, "vector": {{"dense": [1, 1], "nope": {{"indices": [1], "values": [1]}}}}}}]}}"#),
            "nope",
        ),
        (
            format!(r#"{{"points": [{good}, {{"id": 11, "vector": {{"dense": {{"indices": [1], "values": [1]}}}}}}]}}"#),
            "dense vector, not a sparse one",
        ),
        (
            format!(r#"{{"points": [{good}, {{"id": 11, "vector": {{"dense": [1, 1], "text": [1, 2]}}}}]}}"#),
            "sparse vector",
        ),
        (
            format!(r#"{{"points": [{good}, {{"id": 11, "vector": {{"dense": [1, 1], "text": {{"indices": [4, 5, 4], "values": [1, 2, 3]}}}}}}]}}"#),
            "points[1].vector.text.indices[2]",
        ),
        (
            format!(r#"{{"points": [{good}, {{"id": 11, "vector": {{"dense": [1, 1], "text": {{"indices": [4, 5], "values": [1]}}}}}}]}}"#),
            "points[1].vector.text: 2 indices but 1 values",
        ),
        (
            format!(r#"{{"points": [{good}, {{"id": 11, "vector": {{"dense": [1, 1], "text": {{"indices": [4], "values": [1e39]}}}}}}]}}"#),
            "points[1].vector.text.values[0]",
        ),
        (
            format!(r#"{{"points": [{good}, {{"id": 11, "vector": {{"dense": [1, 1], "text": {{"indices": [-4], "values": [1]}}}}}}]}}"#),
            "points[1].vector.text.indices[0]",
        ),
        (
            format!(r#"{{"points": [{good}, {{"id": 11, "vector": {{"dense": [1, 1], "text": {{"indices": [4]}}}}}}]}}"#),
            "missing field `values`",
        ),
        (
            r#"{"batch": {"ids": [10, 11], "vectors": {"dense": [[1, 1], [1, 1]], "text": [{"indices": [1], "values": [1]}, {"indices": [7, 7], "values": [1, 1]}]}}}"#.to_string(),
            "batch.vectors.text[1].indices[1]",
        ),
    ];
    for (body, needle) in cases {
        s.fails(
            Method::PUT,
            "/collections/s/points",
            &body,
            StatusCode::BAD_REQUEST,
            needle,
        )
        .await;
    }
    s.fails(
        Method::PUT,
        "/collections/s/points/vectors",
        r#"{"points": [{"id": 1, "vector": {"text": {"indices": [9], "values": [1]}}}]}"#,
        StatusCode::BAD_REQUEST,
        "points[0].vector.text",
    )
    .await;
    assert_eq!(
        s.ok(Method::POST, "/collections/s/points/count", json!({}))
            .await["count"],
        1,
        "nothing was written"
    );
    let got = s
        .ok(
            Method::POST,
            "/collections/s/points",
            json!({"ids": [1], "with_vector": ["text"]}),
        )
        .await;
    assert_eq!(
        got[0]["vector"],
        json!({"text": {"indices": [1, 2], "values": [0.5, 1.0]}})
    );
    for (body, needle) in [
        (
            r#"{"query": {"indices": [1], "values": [1]}, "using": "dense"}"#,
            "cannot search vector `dense`",
        ),
        (
            r#"{"query": {"indices": [1], "values": [1]}}"#,
            "no vector named ``",
        ),
        (r#"{"query": [1, 0], "using": "text"}"#, "is sparse"),
        (
            r#"{"query": {"indices": [1], "values": [1]}, "using": "nope"}"#,
            "`text` (sparse)",
        ),
        (
            r#"{"query": {"indices": [1, 1], "values": [1, 2]}, "using": "text"}"#,
            "query.indices[1]",
        ),
        (
            r#"{"query": {"nearest": {"indices": [1], "values": [1, 2]}}, "using": "text"}"#,
            "query.nearest: 1 indices but 2 values",
        ),
    ] {
        s.fails(
            Method::POST,
            "/collections/s/points/query",
            body,
            StatusCode::BAD_REQUEST,
            needle,
        )
        .await;
    }
    s.fails(
        Method::POST,
        "/collections/s/points/search",
        r#"{"vector": {"name": "text", "vector": {"indices": [1], "values": [1e39]}}, "limit": 3}"#,
        StatusCode::BAD_REQUEST,
        "vector.vector.values[0]",
    )
    .await;
    s.fails(
        Method::POST,
        "/collections/s/points/search",
        r#"{"vector": {"name": "dense", "vector": {"indices": [1], "values": [1]}}, "limit": 3}"#,
        StatusCode::BAD_REQUEST,
        "dense",
    )
    .await;
}
