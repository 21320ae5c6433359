//! Guards: api keys, body size, timeouts, panics under a request, and the OpenAPI document.

use super::common::*;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use quiver_server::{Keys, ServerOptions};
use std::sync::Arc;
use tower::ServiceExt;
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
