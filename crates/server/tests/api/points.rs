//! Points: upserts, queries, scroll, count, delete, and their bad inputs.

use super::common::*;
use axum::http::{Method, StatusCode};
use serde_json::json;
use std::sync::Arc;
#[tokio::test]
async fn bad_points_are_400_and_change_nothing() {
    let s = server();
    s.create().await;
    let upsert = |body: &'static str, needle: &'static str| {
        let s = &s;
        async move {
            s.fails(
                Method::PUT,
                "/collections/c/points",
                body,
                StatusCode::BAD_REQUEST,
                needle,
            )
            .await
        }
    };
    // A good point first in each batch: the whole batch must be refused.
    let good = r#"{"id": 10, "vector": [1, 1, 1]}"#;
    let cases: [(String, &str); 8] = [
        (
            format!(r#"{{"points": [{good}, {{"id": 11, "vector": [1, 2]}}]}}"#),
            "dimension 2",
        ),
        (
            format!(r#"{{"points": [{good}, {{"id": 11, "vector": [1, "x", 3]}}]}}"#),
            "points[1].vector[1]",
        ),
        (
            format!(r#"{{"points": [{good}, {{"id": -1, "vector": [1, 2, 3]}}]}}"#),
            "points[1].id",
        ),
        (
            format!(r#"{{"points": [{good}, {{"id": 11, "vector": [1e39, 2, 3]}}]}}"#),
            "non-finite",
        ),
        (
            format!(r#"{{"points": [{good}, {{"id": 11, "vector": [1, 2, 3], "payload": [1]}}]}}"#),
            "points[1].payload",
        ),
        (
            format!(r#"{{"points": [{good}, {{"id": 11, "vector": {{"other": [1, 2, 3]}}}}]}}"#),
            "other",
        ),
        (
            r#"{"batch": {"ids": [10, 11], "vectors": [[1, 1, 1]]}}"#.to_string(),
            "batch.vectors has 1",
        ),
        (
            format!(r#"{{"points": [{good}], "extra": 1}}"#),
            "unknown field `extra`",
        ),
    ];
    for (body, needle) in cases {
        let body: &'static str = Box::leak(body.into_boxed_str());
        upsert(body, needle).await;
    }
    upsert(
        r#"{"points": [{"id": 10, "vector": [1, 1, 1]}"#,
        "Format error in JSON body",
    )
    .await;
    assert_eq!(s.count().await, 3, "nothing was written");
}

#[tokio::test]
async fn bad_queries_and_filters_are_400() {
    let s = server();
    s.create().await;
    let q = |body: &'static str, needle: &'static str| {
        let s = &s;
        async move {
            s.fails(
                Method::POST,
                "/collections/c/points/query",
                body,
                StatusCode::BAD_REQUEST,
                needle,
            )
            .await
        }
    };
    q(r#"{"query": [1, 2]}"#, "dimension 2").await;
    q(
        r#"{"query": [1, 0, 0], "filter": {"must": [{"key": "n", "range": {"gte": "x"}}]}}"#,
        "must[0].range.gte",
    )
    .await;
    q(r#"{"query": [1, 0, 0], "filter": {"mustt": []}}"#, "mustt").await;
    q(r#"{"query": [1, 0, 0], "using": "nope"}"#, "nope").await;
    q(r#"{"query": [1, 0, 0], "with_payload": 3}"#, "with_payload").await;
    q(
        r#"{"query": {"text": "hello", "model": "clip"}}"#,
        "sentence-transformers/all-MiniLM-L6-v2",
    )
    .await;
    q(r#"{"query": {"fusion": "rrf"}}"#, "fusion needs `prefetch`").await;
    q(r#"{"query": [1, 0, 0], "limit": -1}"#, "limit").await;
    s.fails(
        Method::POST,
        "/collections/c/points/scroll",
        r#"{"filter": {"must": [{"key": "n"}]}}"#,
        StatusCode::BAD_REQUEST,
        "must[0]",
    )
    .await;
    s.fails(
        Method::POST,
        "/collections/c/points/count",
        r#"{"filter": 3}"#,
        StatusCode::BAD_REQUEST,
        "filter",
    )
    .await;
    // A document query without a text model configured.
    q(
        r#"{"query": {"text": "hello", "model": "sentence-transformers/all-MiniLM-L6-v2"}}"#,
        "text model",
    )
    .await;
}

#[tokio::test]
async fn queries_return_qdrant_shapes() {
    let s = server();
    s.create().await;
    let r = s
        .ok(
            Method::POST,
            "/collections/c/points/query",
            json!({"query": [1.0, 0.1, 0.0], "limit": 2, "with_payload": true}),
        )
        .await;
    let points = r["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[0]["id"], 1);
    assert_eq!(points[0]["payload"], json!({"color": "red", "n": 1}));
    assert!(points[0]["score"].as_f64().unwrap() > points[1]["score"].as_f64().unwrap());
    // Filter, offset, payload selection, query by id (which leaves the point out).
    let r = s
        .ok(
            Method::POST,
            "/collections/c/points/query",
            json!({"query": 1, "filter": {"must": [{"key": "color", "match": {"value": "red"}}]}, "with_payload": ["n"]}),
        )
        .await;
    assert_eq!(r["points"].as_array().unwrap().len(), 1);
    assert_eq!(r["points"][0]["id"], "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
    assert_eq!(r["points"][0]["payload"], json!({"n": 3}));
    let r = s
        .ok(
            Method::POST,
            "/collections/c/points/search",
            json!({"vector": [1.0, 0.1, 0.0], "limit": 1, "offset": 1}),
        )
        .await;
    assert_eq!(r.as_array().unwrap().len(), 1);
    assert_eq!(r[0]["id"], 2);
    let r = s
        .ok(Method::POST, "/collections/c/points/query/batch", json!({"searches": [{"query": [1, 0, 0], "limit": 1}, {"query": [0, 1, 0], "limit": 1}]}))
        .await;
    assert_eq!(r[0]["points"][0]["id"], 1);
    assert_eq!(r[1]["points"][0]["id"], 2);
}

#[tokio::test]
async fn scroll_count_retrieve_and_delete() {
    let s = server();
    s.create().await;
    let page = s
        .ok(
            Method::POST,
            "/collections/c/points/scroll",
            json!({"limit": 2, "with_vector": true}),
        )
        .await;
    assert_eq!(page["points"].as_array().unwrap().len(), 2);
    assert_eq!(
        page["next_page_offset"],
        "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"
    );
    assert_eq!(page["points"][0]["vector"], json!([1.0, 0.0, 0.0]));
    let got = s
        .ok(
            Method::POST,
            "/collections/c/points",
            json!({"ids": [2, 99]}),
        )
        .await;
    assert_eq!(
        got,
        json!([{"id": 2, "payload": {"color": "blue", "n": 2}, "vector": null, "shard_key": null, "order_value": null}])
    );
    let red = json!({"filter": {"must": [{"key": "color", "match": {"value": "red"}}]}});
    assert_eq!(
        s.ok(Method::POST, "/collections/c/points/count", red.clone())
            .await["count"],
        2
    );
    s.ok(Method::POST, "/collections/c/points/delete?wait=true", red)
        .await;
    assert_eq!(s.count().await, 1);
    s.ok(
        Method::POST,
        "/collections/c/points/delete",
        json!({"points": [2]}),
    )
    .await;
    assert_eq!(s.count().await, 0);
}

/// Many requests at once through one router (more tasks than cores, on a multi-thread
/// runtime): every acknowledged upsert is found, queries keep answering, and the metrics
/// count every request exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_readers_through_one_router() {
    let s = Arc::new(server());
    s.ok(
        Method::PUT,
        "/collections/c",
        json!({"vectors": {"size": 3, "distance": "Dot"}}),
    )
    .await;
    const WRITERS: u64 = 8;
    const WRITES: u64 = 25;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            for i in 0..WRITES {
                let id = w * 1_000 + i;
                let body = json!({"points": [{"id": id, "vector": [1.0, w as f32, i as f32], "payload": {"w": w}}]});
                s.ok(Method::PUT, "/collections/c/points?wait=true", body).await;
                let hits = s
                    .ok(
                        Method::POST,
                        "/collections/c/points/query",
                        json!({"query": [0.0, 0.0, 1.0], "limit": 3}),
                    )
                    .await;
                assert!(!hits["points"].as_array().unwrap().is_empty());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.count().await, WRITERS * WRITES);
    for w in 0..WRITERS {
        let filter = json!({"filter": {"must": [{"key": "w", "match": {"value": w}}]}});
        let n = s
            .ok(Method::POST, "/collections/c/points/count", filter)
            .await;
        assert_eq!(n["count"], WRITES, "writer {w}");
    }
    let (_, metrics) = s.call(Method::GET, "/metrics", None, None).await;
    let text = metrics.as_str().unwrap();
    let line = format!(
        "quiver_http_requests_total{{method=\"PUT\",endpoint=\"/collections/{{name}}/points\",status=\"200\"}} {}",
        WRITERS * WRITES
    );
    assert!(text.contains(&line), "{text}");
}
