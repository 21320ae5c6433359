//! What the dashboard needs from the server, through the router (no socket): its files served
//! without a key and with a strict Content-Security-Policy, and Quiver's read-only endpoints
//! (`/quiver/collections/{name}`, `explain`, `access`) with the key rules. The page itself is
//! tested in a browser by `crates/cli/tests/dashboard/`.

#![allow(clippy::unwrap_used, reason = "tests")]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use quiver_engine::{Database, DatabaseOptions};
use quiver_server::{Keys, ServerOptions, router};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

const RW: &str = "rw-key";
const RO: &str = "ro-key";

struct Server {
    _dir: tempfile::TempDir,
    router: Router,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let options = ServerOptions {
        keys: Keys {
            read_write: Some(RW.into()),
            read_only: Some(RO.into()),
        },
        ..ServerOptions::default()
    };
    Server {
        router: router(Arc::new(db), &options),
        _dir: dir,
    }
}

impl Server {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Answer {
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
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>, key: &str) -> Value {
        let a = self.call(method, path, body, Some(key)).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        a.json()["result"].clone()
    }
}

#[tokio::test]
async fn the_page_and_its_files_need_no_key_and_load_nothing_else() {
    let s = server();
    for (path, kind) in [
        ("/dashboard", "text/html"),
        ("/dashboard/", "text/html"),
        ("/dashboard/index.html", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
        ("/dashboard/icon.svg", "image/svg+xml"),
    ] {
        let a = s.call(Method::GET, path, None, None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        let ct = a.headers["content-type"].to_str().unwrap();
        assert!(ct.starts_with(kind), "{path}: content type {ct}");
        let csp = a.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(!a.text.is_empty());
    }
    let page = s.call(Method::GET, "/dashboard", None, None).await.text;
    assert!(page.contains("/dashboard/app.js") && page.contains("/dashboard/style.css"));

    let missing = s
        .call(Method::GET, "/dashboard/secrets.json", None, None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.json()["status"]["error"]
            .as_str()
            .unwrap()
            .contains("secrets.json")
    );
    // Only the dashboard is open: the API next to it still wants a key.
    for path in ["/dashboardx", "/collections", "/quiver/access"] {
        let a = s.call(Method::GET, path, None, None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}: {}", a.text);
    }
}

#[tokio::test]
async fn access_tells_the_keys_apart() {
    let s = server();
    let rw = s.ok(Method::GET, "/quiver/access", None, RW).await;
    assert_eq!(rw, json!({"access": "read-write", "keys_required": true}));
    let ro = s.ok(Method::GET, "/quiver/access", None, RO).await;
    assert_eq!(ro["access"], "read-only");
    let wrong = s
        .call(Method::GET, "/quiver/access", None, Some("nope"))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    // Without keys everyone may write.
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let open = Server {
        router: router(Arc::new(db), &ServerOptions::default()),
        _dir: dir,
    };
    let a = open.call(Method::GET, "/quiver/access", None, None).await;
    assert_eq!(
        a.json()["result"],
        json!({"access": "read-write", "keys_required": false})
    );
}

async fn collection(s: &Server) {
    s.ok(
        Method::PUT,
        "/collections/c",
        Some(json!({"vectors": {"size": 3, "distance": "Dot"}, "hnsw_config": {"m": 8}})),
        RW,
    )
    .await;
    s.ok(
        Method::PUT,
        "/collections/c/index",
        Some(json!({"field_name": "color", "field_schema": "keyword"})),
        RW,
    )
    .await;
    s.ok(
        Method::PUT,
        "/collections/c/points?wait=true",
        Some(json!({"points": [
            {"id": 1, "vector": [1.0, 0.0, 0.0], "payload": {"color": "red"}},
            {"id": 2, "vector": [0.0, 1.0, 0.0], "payload": {"color": "blue"}},
            {"id": 3, "vector": [0.0, 0.0, 1.0], "payload": {"color": "red"}},
        ]})),
        RW,
    )
    .await;
    s.ok(
        Method::POST,
        "/collections/c/points/delete?wait=true",
        Some(json!({"points": [2]})),
        RW,
    )
    .await;
}

#[tokio::test]
async fn collection_details_show_segments_memory_and_maintenance() {
    let s = server();
    collection(&s).await;
    // The read-only key may read them.
    let d = s.ok(Method::GET, "/quiver/collections/c", None, RO).await;
    assert_eq!(d["name"], "c");
    assert_eq!(d["points"], 2);
    assert_eq!(
        d["vectors"][""],
        json!({"size": 3, "distance": "Dot", "index": "hnsw", "m": 8, "ef_construct": 100, "quantization": "lvq8"})
    );
    assert_eq!(d["payload_indexes"], json!({"color": "keyword"}));
    let segments = d["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 1);
    let seg = &segments[0];
    assert_eq!(seg["sealed"], false);
    assert_eq!(
        (seg["rows"].as_u64(), seg["deleted"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(seg["graphs"], 0);
    // Three rows of 3 floats at least, all in memory: nothing is sealed yet.
    let bytes = seg["bytes"].as_u64().unwrap();
    assert!(bytes >= 36, "{seg}");
    assert_eq!(d["memory_bytes"], bytes);
    assert_eq!(d["mapped_bytes"], 0);
    assert!(d["disk_bytes"].as_u64().unwrap() >= d["wal_bytes"].as_u64().unwrap());
    assert!(d["wal_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        d["maintenance"],
        json!({"frozen": 0, "working": false, "failed": null})
    );
    assert!(d["last_seq"].as_u64().unwrap() >= 2, "{d}");

    let missing = s
        .call(Method::GET, "/quiver/collections/nope", None, Some(RO))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
}

#[tokio::test]
async fn explain_is_a_read_and_names_a_bad_filter() {
    let s = server();
    collection(&s).await;
    let filter = json!({"must": [{"key": "color", "match": {"value": "red"}}]});
    let e = s
        .ok(
            Method::POST,
            "/quiver/collections/c/explain",
            Some(json!({"filter": filter})),
            RO,
        )
        .await;
    let lines = e["segments"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{e}");
    let line = lines[0].as_str().unwrap();
    assert!(
        line.starts_with("segment ") && line.contains("3 rows") && line.contains("strategy"),
        "{line}"
    );

    let bad = s
        .call(
            Method::POST,
            "/quiver/collections/c/explain",
            Some(json!({"filter": {"must": [{"key": "n", "range": {"gte": "x"}}]}})),
            Some(RO),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    let msg = bad.json()["status"]["error"].as_str().unwrap().to_string();
    assert!(msg.contains("filter: must[0]"), "{msg}");
    let none = s
        .call(
            Method::POST,
            "/quiver/collections/c/explain",
            Some(json!({})),
            Some(RO),
        )
        .await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST, "{}", none.text);

    // The read-only key still cannot write through the same prefix.
    let write = s
        .call(Method::DELETE, "/quiver/collections/c", None, Some(RO))
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.text);
}
