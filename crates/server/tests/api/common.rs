//! The test server: a router over a fresh database in a temporary directory, with
//! helpers that send one request and check its status.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use quiver_engine::{Database, DatabaseOptions};
use quiver_server::{ServerOptions, router};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

pub struct Server {
    _dir: tempfile::TempDir,
    pub router: Router,
}

pub fn server_with(options: ServerOptions) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    Server {
        router: router(Arc::new(db), &options),
        _dir: dir,
    }
}

pub fn server() -> Server {
    server_with(ServerOptions::default())
}

impl Server {
    pub async fn call(
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

    pub async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, v) = self.call(method, path, Some(&body.to_string()), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {v}");
        assert_eq!(v["status"], "ok", "{v}");
        v["result"].clone()
    }

    /// A request that must fail with `status` and a message containing `needle`.
    pub async fn fails(
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

    pub async fn count(&self) -> u64 {
        self.ok(Method::POST, "/collections/c/points/count", json!({}))
            .await["count"]
            .as_u64()
            .unwrap()
    }

    pub async fn create(&self) {
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
