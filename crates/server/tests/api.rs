//! The REST API through the router (no socket): shapes, status codes and every bad-input
//! case, each checked to change nothing.

#![allow(clippy::unwrap_used, reason = "tests")]

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use quiver_engine::{Database, DatabaseOptions};
use quiver_server::{Keys, ServerOptions, router};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

struct Server {
    _dir: tempfile::TempDir,
    router: Router,
}

fn server_with(options: ServerOptions) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    Server {
        router: router(Arc::new(db), &options),
        _dir: dir,
    }
}

fn server() -> Server {
    server_with(ServerOptions::default())
}

impl Server {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header("api-key", k);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, v) = self.call(method, path, Some(&body.to_string()), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {v}");
        assert_eq!(v["status"], "ok", "{v}");
        v["result"].clone()
    }

    /// A request that must fail with `status` and a message containing `needle`.
    async fn fails(
        &self,
        method: Method,
        path: &str,
        body: &str,
        status: StatusCode,
        needle: &str,
    ) {
        let (got, v) = self.call(method, path, Some(body), None).await;
        assert_eq!(got, status, "{path} {body}: {v}");
        let message = v["status"]["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{path} {body}: `{message}` lacks `{needle}`"
        );
    }

    async fn count(&self) -> u64 {
        self.ok(Method::POST, "/collections/c/points/count", json!({}))
            .await["count"]
            .as_u64()
            .unwrap()
    }

    async fn create(&self) {
        self.ok(
            Method::PUT,
            "/collections/c",
            json!({"vectors": {"size": 3, "distance": "Cosine"}}),
        )
        .await;
        self.ok(
            Method::PUT,
            "/collections/c/points?wait=true",
            json!({"points": [
                {"id": 1, "vector": [1.0, 0.0, 0.0], "payload": {"color": "red", "n": 1}},
                {"id": 2, "vector": [0.0, 1.0, 0.0], "payload": {"color": "blue", "n": 2}},
                {"id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "vector": [0.0, 0.0, 1.0], "payload": {"color": "red", "n": 3}},
            ]}),
        )
        .await;
    }
}

#[tokio::test]
async fn service_endpoints_answer() {
    let s = server();
    let (status, v) = s.call(Method::GET, "/", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["version"].as_str().is_some_and(|v| v.starts_with("1.")));
    for probe in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(
            s.call(Method::GET, probe, None, None).await.0,
            StatusCode::OK
        );
    }
    s.create().await;
    let (status, metrics) = s.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("quiver_collection_points{collection=\"c\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("endpoint=\"/collections/{name}/points\""),
        "{text}"
    );
}

#[tokio::test]
async fn collections_are_created_listed_described_and_deleted() {
    let s = server();
    s.create().await;
    let list = s.ok(Method::GET, "/collections", Value::Null).await;
    assert_eq!(list, json!({"collections": [{"name": "c"}]}));
    let exists = s
        .ok(Method::GET, "/collections/c/exists", Value::Null)
        .await;
    assert_eq!(exists, json!({"exists": true}));
    let info = s.ok(Method::GET, "/collections/c", Value::Null).await;
    assert_eq!(info["points_count"], 3);
    assert_eq!(
        info["config"]["params"]["vectors"],
        json!({"size": 3, "distance": "Cosine", "on_disk": false})
    );
    assert_eq!(info["status"], "green");
    assert_eq!(
        s.ok(Method::DELETE, "/collections/c", Value::Null).await,
        json!(true)
    );
    let exists = s
        .ok(Method::GET, "/collections/c/exists", Value::Null)
        .await;
    assert_eq!(exists, json!({"exists": false}));
}

#[tokio::test]
async fn bad_collection_definitions_are_400_and_create_nothing() {
    let s = server();
    let put = |body: &'static str, needle: &'static str| {
        let s = &s;
        async move {
            s.fails(
                Method::PUT,
                "/collections/x",
                body,
                StatusCode::BAD_REQUEST,
                needle,
            )
            .await
        }
    };
    put(
        r#"{"vectors": {"size": 3, "distance": "Manhattan"}}"#,
        "Manhattan",
    )
    .await;
    put(
        r#"{"vectors": {"size": 0, "distance": "Dot"}}"#,
        "dimension",
    )
    .await;
    put(
        r#"{"vectors": {"size": 3, "distance": "Dot"}, "hnsw_config": {"m": 1}}"#,
        "m = 1",
    )
    .await;
    put(
        r#"{"vectors": {"size": 3, "distance": "Dot", "quantization_config": {"binary": {}}}}"#,
        "binary",
    )
    .await;
    put(
        r#"{"vectors": {"size": "3", "distance": "Dot"}}"#,
        "vectors",
    )
    .await;
    put(
        r#"{"vectors": {"size": 3, "distance": "Dot"}, "colour": 1}"#,
        "unknown field `colour`",
    )
    .await;
    put(
        r#"{"vectors": {"size": 3, "distance": "Dot""#,
        "Format error in JSON body",
    )
    .await;
    put(r#"{}"#, "at least one").await;
    s.fails(
        Method::PUT,
        "/collections/bad%20name",
        r#"{"vectors": {"size": 3, "distance": "Dot"}}"#,
        StatusCode::BAD_REQUEST,
        "name",
    )
    .await;
    assert_eq!(
        s.ok(Method::GET, "/collections", Value::Null).await,
        json!({"collections": []})
    );
    s.create().await;
    s.fails(
        Method::PUT,
        "/collections/c",
        r#"{"vectors": {"size": 3, "distance": "Dot"}}"#,
        StatusCode::BAD_REQUEST,
        "already exists",
    )
    .await;
}

#[tokio::test]
async fn unknown_collections_and_points_are_404() {
    let s = server();
    s.fails(
        Method::GET,
        "/collections/nope",
        "",
        StatusCode::NOT_FOUND,
        "nope",
    )
    .await;
    s.fails(
        Method::POST,
        "/collections/nope/points/query",
        r#"{"query": [1, 2, 3]}"#,
        StatusCode::NOT_FOUND,
        "nope",
    )
    .await;
    s.fails(
        Method::GET,
        "/nowhere",
        "",
        StatusCode::NOT_FOUND,
        "/nowhere",
    )
    .await;
    s.create().await;
    s.fails(
        Method::GET,
        "/collections/c/points/77",
        "",
        StatusCode::NOT_FOUND,
        "77",
    )
    .await;
    s.fails(
        Method::POST,
        "/collections/c/points/query",
        r#"{"query": 77}"#,
        StatusCode::NOT_FOUND,
        "77",
    )
    .await;
}

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

#[tokio::test]
async fn api_keys_guard_reads_and_writes() {
    let s = server_with(ServerOptions {
        keys: Keys {
            read_write: Some("rw".into()),
            read_only: Some("ro".into()),
        },
        ..ServerOptions::default()
    });
    let create = r#"{"vectors": {"size": 3, "distance": "Dot"}}"#;
    assert_eq!(
        s.call(Method::PUT, "/collections/c", Some(create), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.call(Method::PUT, "/collections/c", Some(create), Some("wrong"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.call(Method::PUT, "/collections/c", Some(create), Some("ro"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call(Method::GET, "/collections", None, Some("ro"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        s.call(Method::PUT, "/collections/c", Some(create), Some("rw"))
            .await
            .0,
        StatusCode::OK
    );
    let query = r#"{"query": [1, 0, 0]}"#;
    assert_eq!(
        s.call(
            Method::POST,
            "/collections/c/points/query",
            Some(query),
            Some("ro")
        )
        .await
        .0,
        StatusCode::OK
    );
    let upsert = r#"{"points": [{"id": 1, "vector": [1, 0, 0]}]}"#;
    assert_eq!(
        s.call(
            Method::PUT,
            "/collections/c/points",
            Some(upsert),
            Some("ro")
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call(Method::GET, "/healthz", None, None).await.0,
        StatusCode::OK
    );
    let req = Request::builder()
        .method(Method::GET)
        .uri("/collections")
        .header("authorization", "Bearer rw")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        s.router.clone().oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let s = server_with(ServerOptions {
        body_limit: 1024,
        ..ServerOptions::default()
    });
    s.create().await;
    let big = format!(
        r#"{{"points": [{{"id": 1, "vector": [1, 0, 0], "payload": {{"x": "{}"}}}}]}}"#,
        "a".repeat(4096)
    );
    let (status, _) = s
        .call(Method::PUT, "/collections/c/points", Some(&big), None)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.count().await, 3);
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint() {
    let s = server();
    let (status, doc) = s.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/collections/{name}", "put"),
        ("/collections/{name}", "patch"),
        ("/collections/{name}/points", "put"),
        ("/collections/{name}/points", "post"),
        ("/collections/{name}/points/query", "post"),
        ("/collections/{name}/points/scroll", "post"),
        ("/collections/{name}/points/payload", "post"),
        ("/collections/{name}/points/batch", "post"),
        ("/collections/aliases", "post"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path}"
        );
    }
    assert!(doc["components"]["schemas"]["QueryRequest"].is_object());
}

/// A text model that panics or sleeps, to reach the server's failure paths.
struct Faulty {
    sleep: std::time::Duration,
}

impl quiver_engine::TextEmbedder for Faulty {
    fn model(&self) -> &str {
        "all-MiniLM-L6-v2"
    }
    fn dim(&self) -> usize {
        3
    }
    fn embed(&self, texts: &[&str], _: usize) -> Result<Vec<Vec<f32>>, quiver_engine::BoxError> {
        std::thread::sleep(self.sleep);
        if texts.contains(&"panic") {
            panic!("the model broke on purpose");
        }
        Ok(texts.iter().map(|_| vec![1.0, 0.0, 0.0]).collect())
    }
}

const DOCUMENT_QUERY: &str =
    r#"{"query": {"text": "panic", "model": "sentence-transformers/all-MiniLM-L6-v2"}}"#;

#[tokio::test]
async fn a_panic_under_a_request_is_a_500_and_the_server_keeps_serving() {
    let s = server_with(ServerOptions {
        embedder: Some(Arc::new(Faulty {
            sleep: std::time::Duration::ZERO,
        })),
        ..ServerOptions::default()
    });
    s.create().await;
    s.fails(
        Method::POST,
        "/collections/c/points/query",
        DOCUMENT_QUERY,
        StatusCode::INTERNAL_SERVER_ERROR,
        "logged",
    )
    .await;
    let ok = DOCUMENT_QUERY.replace("panic", "fine");
    let (status, v) = s
        .call(Method::POST, "/collections/c/points/query", Some(&ok), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["result"]["points"][0]["id"], 1);
    assert_eq!(s.count().await, 3);
}

#[tokio::test]
async fn a_request_over_the_timeout_is_a_408() {
    let s = server_with(ServerOptions {
        embedder: Some(Arc::new(Faulty {
            sleep: std::time::Duration::from_millis(500),
        })),
        request_timeout: std::time::Duration::from_millis(100),
        ..ServerOptions::default()
    });
    s.create().await;
    let slow = DOCUMENT_QUERY.replace("panic", "slow");
    let (status, v) = s
        .call(
            Method::POST,
            "/collections/c/points/query",
            Some(&slow),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    let message = v["status"]["error"].as_str().unwrap_or_default();
    assert!(message.contains("0.1 s"), "{v}");
}

#[tokio::test]
async fn patch_changes_graph_and_optimizer_settings() {
    let s = server();
    s.create().await;
    let patch = json!({"hnsw_config": {"m": 8, "ef_construct": 64}, "optimizers_config": {"indexing_threshold": 2048, "deleted_threshold": 0.5}});
    assert_eq!(
        s.ok(Method::PATCH, "/collections/c", patch).await,
        json!(true)
    );
    let info = s.ok(Method::GET, "/collections/c", Value::Null).await;
    assert_eq!(info["config"]["hnsw_config"]["m"], 8);
    assert_eq!(info["config"]["hnsw_config"]["ef_construct"], 64);
    assert_eq!(
        info["config"]["optimizer_config"]["indexing_threshold"],
        2048
    );
    assert_eq!(info["config"]["optimizer_config"]["deleted_threshold"], 0.5);
    s.fails(
        Method::PATCH,
        "/collections/c",
        r#"{"hnsw_config": {"m": 1}}"#,
        StatusCode::BAD_REQUEST,
        "m",
    )
    .await;
    s.fails(
        Method::PATCH,
        "/collections/c",
        r#"{"vectors": {"": {"on_disk": true}}}"#,
        StatusCode::BAD_REQUEST,
        "alias",
    )
    .await;
    s.fails(
        Method::PATCH,
        "/collections/c",
        r#"{"optimizers_config": {"deleted_threshold": 7}}"#,
        StatusCode::BAD_REQUEST,
        "7",
    )
    .await;
    let info = s.ok(Method::GET, "/collections/c", Value::Null).await;
    assert_eq!(
        info["config"]["hnsw_config"]["m"], 8,
        "a rejected patch changes nothing"
    );
    assert_eq!(info["config"]["optimizer_config"]["deleted_threshold"], 0.5);
}

#[tokio::test]
async fn aliases_and_payload_updates_through_the_api() {
    let s = server();
    s.create().await;
    let actions =
        json!({"actions": [{"create_alias": {"collection_name": "c", "alias_name": "live"}}]});
    assert_eq!(
        s.ok(Method::POST, "/collections/aliases", actions).await,
        json!(true)
    );
    assert_eq!(
        s.ok(Method::GET, "/aliases", Value::Null).await,
        json!({"aliases": [{"alias_name": "live", "collection_name": "c"}]})
    );
    s.ok(
        Method::POST,
        "/collections/live/points/payload",
        json!({"payload": {"seen": true}, "points": [1]}),
    )
    .await;
    s.ok(
        Method::POST,
        "/collections/live/points/payload/delete",
        json!({"keys": ["n"], "filter": {"must": [{"key": "color", "match": {"value": "red"}}]}}),
    )
    .await;
    let got = s
        .ok(Method::POST, "/collections/c/points", json!({"ids": [1]}))
        .await;
    assert_eq!(got[0]["payload"], json!({"color": "red", "seen": true}));
    s.fails(
        Method::POST,
        "/collections/c/points/payload",
        r#"{"payload": {"a": 1}, "points": [1, 404]}"#,
        StatusCode::NOT_FOUND,
        "404",
    )
    .await;
    let got = s
        .ok(Method::POST, "/collections/c/points", json!({"ids": [1]}))
        .await;
    assert_eq!(
        got[0]["payload"],
        json!({"color": "red", "seen": true}),
        "nothing changed"
    );
    let bad = r#"{"actions": [{"create_alias": {"collection_name": "c", "alias_name": "x"}}, {"create_alias": {"collection_name": "nope", "alias_name": "y"}}]}"#;
    s.fails(
        Method::POST,
        "/collections/aliases",
        bad,
        StatusCode::NOT_FOUND,
        "nope",
    )
    .await;
    assert_eq!(
        s.ok(Method::GET, "/aliases", Value::Null).await["aliases"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
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
