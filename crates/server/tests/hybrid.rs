//! Hybrid queries through `points/query`: prefetch (one or a list, nested), RRF and DBSF
//! fusion, re-scoring on another vector, filters in and above prefetches, batches, and each
//! bad input a 400 naming its JSON position. The engine's own tests check the tree against
//! brute force; these check that the JSON means what Qdrant's does.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use quiver_engine::{Database, DatabaseOptions};
use quiver_server::{ServerOptions, router};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use tower::ServiceExt;

struct Server {
    _dir: tempfile::TempDir,
    router: Router,
}

impl Server {
    async fn call(&self, method: Method, path: &str, body: &Value) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, v) = self.call(method, path, &body).await;
        assert_eq!(status, StatusCode::OK, "{path} {body}: {v}");
        v["result"].clone()
    }

    async fn query(&self, body: Value) -> Vec<(u64, f64)> {
        let r = self
            .ok(Method::POST, "/collections/c/points/query", body)
            .await;
        points(&r)
    }

    /// A query that must be a 400 whose message contains `needle`.
    async fn refused(&self, body: Value, needle: &str) {
        let (status, v) = self
            .call(Method::POST, "/collections/c/points/query", &body)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        let message = v["status"]["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{body}: `{message}` lacks `{needle}`"
        );
    }
}

fn points(r: &Value) -> Vec<(u64, f64)> {
    r["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_u64().unwrap(), p["score"].as_f64().unwrap()))
        .collect()
}

/// 40 points: dense `d` (3-dim, Dot), dense `r` (2-dim, Dot), sparse `s`, payload `g`.
async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let s = Server {
        router: router(Arc::new(db), &ServerOptions::default()),
        _dir: dir,
    };
    s.ok(
        Method::PUT,
        "/collections/c",
        json!({
            "vectors": {"d": {"size": 3, "distance": "Dot"}, "r": {"size": 2, "distance": "Dot"}},
            "sparse_vectors": {"s": {}},
        }),
    )
    .await;
    let pts: Vec<Value> = (0..40u64)
        .map(|i| {
            let x = i as f32;
            json!({
                "id": i,
                "vector": {
                    "d": [(x * 0.37).sin(), (x * 0.71).cos(), (x * 0.13).sin()],
                    "r": [(x * 1.3).cos(), (x * 0.9).sin()],
                    "s": {"indices": [i % 7, 7 + i % 5], "values": [1.0 + x / 40.0, 0.5 + x / 80.0]},
                },
                "payload": {"g": i % 4},
            })
        })
        .collect();
    s.ok(
        Method::PUT,
        "/collections/c/points?wait=true",
        json!({"points": pts}),
    )
    .await;
    s
}

fn dense() -> Value {
    json!({"query": [0.2, 0.9, -0.3], "using": "d", "limit": 12})
}

fn sparse() -> Value {
    json!({"query": {"indices": [3, 9], "values": [1.0, 2.0]}, "using": "s", "limit": 8})
}

/// RRF over ranked lists, written out (k, no weights); ties in first-met order.
fn rrf(lists: &[Vec<(u64, f64)>], k: f64) -> Vec<(u64, f64)> {
    let mut out: Vec<(u64, f64)> = Vec::new();
    for l in lists {
        for (pos, (id, _)) in l.iter().enumerate() {
            let c = 1.0 / (pos as f64 + k);
            match out.iter_mut().find(|p| p.0 == *id) {
                Some(p) => p.1 += c,
                None => out.push((*id, c)),
            }
        }
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

fn dbsf(lists: &[Vec<(u64, f64)>]) -> Vec<(u64, f64)> {
    let mut out: Vec<(u64, f64)> = Vec::new();
    for l in lists {
        let n = l.len() as f64;
        let mean = l.iter().map(|p| p.1).sum::<f64>() / n;
        let sd = (l.iter().map(|p| (p.1 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        for (id, s) in l {
            let c = (s - (mean - 3.0 * sd)) / (6.0 * sd);
            match out.iter_mut().find(|p| p.0 == *id) {
                Some(p) => p.1 += c,
                None => out.push((*id, c)),
            }
        }
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

fn same(got: &[(u64, f64)], want: &[(u64, f64)], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g.1 - w.1).abs() < 1e-5, "{what}: {got:?} vs {want:?}");
        let tied = want.iter().any(|o| o.0 == g.0 && (o.1 - w.1).abs() < 1e-9);
        assert!(tied, "{what}: {got:?} vs {want:?}");
    }
}

#[tokio::test]
async fn rrf_and_dbsf_fuse_what_the_prefetches_find() {
    let s = server().await;
    let lists = vec![s.query(dense()).await, s.query(sparse()).await];
    assert_eq!(lists[0].len(), 12);
    assert!(!lists[1].is_empty());

    let got = s
        .query(json!({"prefetch": [dense(), sparse()], "query": {"fusion": "rrf"}, "limit": 7}))
        .await;
    let want = rrf(&lists, 2.0);
    same(&got, &want[..7], "rrf");

    let got = s
        .query(json!({"prefetch": [dense(), sparse()], "query": {"rrf": {"k": 60}}, "limit": 30}))
        .await;
    same(&got, &rrf(&lists, 60.0), "rrf k 60");

    let got = s
        .query(json!({"prefetch": [dense(), sparse()], "query": {"fusion": "dbsf"}, "offset": 2, "limit": 5}))
        .await;
    same(&got, &dbsf(&lists)[2..7], "dbsf, offset 2");

    // One prefetch as an object, not a list.
    let got = s
        .query(json!({"prefetch": dense(), "query": {"fusion": "rrf"}}))
        .await;
    same(&got, &rrf(&lists[..1], 2.0)[..10], "one prefetch object");

    // A score threshold on the fused scores.
    let got = s
        .query(json!({"prefetch": [dense(), sparse()], "query": {"fusion": "rrf"}, "score_threshold": 0.3}))
        .await;
    let want: Vec<(u64, f64)> = rrf(&lists, 2.0)
        .into_iter()
        .filter(|p| p.1 >= 0.3)
        .collect();
    same(&got, &want, "threshold");
}

#[tokio::test]
async fn nested_prefetch_filters_and_rescoring() {
    let s = server().await;
    let g_in = |gs: &[u64]| json!({"must": [{"key": "g", "match": {"any": gs}}]});

    // A filter inside a prefetch applies there only; the outer filter reaches every prefetch.
    let mut filtered = dense();
    filtered["filter"] = g_in(&[0, 1]);
    let mut outer_d = dense();
    outer_d["filter"] = json!({"must": [{"key": "g", "match": {"any": [0, 1]}}, {"key": "g", "match": {"any": [1, 2]}}]});
    let mut outer_s = sparse();
    outer_s["filter"] = g_in(&[1, 2]);
    let lists = vec![s.query(outer_d).await, s.query(outer_s).await];
    let got = s
        .query(json!({"prefetch": [filtered, sparse()], "query": {"fusion": "rrf"}, "filter": g_in(&[1, 2])}))
        .await;
    same(
        &got,
        &rrf(&lists, 2.0)[..10.min(rrf(&lists, 2.0).len())],
        "filters",
    );
    assert!(got.iter().all(|p| p.0 % 4 == 1 || p.0 % 4 == 2), "{got:?}");

    // Nested: DBSF of (RRF of dense and sparse) and a query on `r`, then re-scored on `d`.
    let inner = json!({"prefetch": [dense(), sparse()], "query": {"fusion": "rrf"}, "limit": 9});
    let on_r = json!({"query": [1.0, -0.5], "using": "r", "limit": 6});
    let nested = json!({"prefetch": [inner.clone(), on_r.clone()], "query": {"fusion": "dbsf"}, "limit": 10});
    let fused_inner = s.query(inner).await;
    let lists = vec![fused_inner, s.query(on_r).await];
    let want = dbsf(&lists);
    let got = s.query(nested.clone()).await;
    same(&got, &want[..10.min(want.len())], "nested dbsf");

    let rescored = s
        .query(json!({"prefetch": nested, "query": [1.0, 0.0, 0.0], "using": "d", "limit": 4, "with_payload": true}))
        .await;
    let ids: Vec<u64> = got.iter().map(|p| p.0).collect();
    let mut want = s
        .query(json!({"query": [1.0, 0.0, 0.0], "using": "d", "limit": 4, "filter": {"must": [{"has_id": ids}]}}))
        .await;
    want.truncate(4);
    same(&rescored, &want, "re-score on d");
    let ids: BTreeSet<u64> = rescored.iter().map(|p| p.0).collect();
    assert!(ids.iter().all(|id| got.iter().any(|p| p.0 == *id)));

    // The batch form, and a re-score by a point's own vector (which leaves the point out).
    let r = s
        .ok(
            Method::POST,
            "/collections/c/points/query/batch",
            json!({"searches": [
                {"prefetch": [dense(), sparse()], "query": {"fusion": "rrf"}, "limit": 3},
                {"prefetch": [dense()], "query": 5, "using": "d", "limit": 3},
            ]}),
        )
        .await;
    let first = points(&r[0]);
    assert_eq!(first.len(), 3);
    let second = points(&r[1]);
    assert_eq!(second.len(), 3);
    assert!(second.iter().all(|p| p.0 != 5), "{second:?}");
}

#[tokio::test]
async fn bad_hybrid_queries_are_400s_naming_the_position() {
    let s = server().await;
    s.refused(
        json!({"query": {"fusion": "rrf"}}),
        "fusion needs `prefetch`",
    )
    .await;
    s.refused(
        json!({"prefetch": [dense()], "query": {"fusion": "rrff"}}),
        "query.fusion: expected \"rrf\" or \"dbsf\"",
    )
    .await;
    s.refused(
        json!({"prefetch": [dense()], "query": {"rrf": {"k": 0}}}),
        "query.rrf.k: expected an integer ≥ 1",
    )
    .await;
    s.refused(
        json!({"prefetch": [dense(), sparse()], "query": {"rrf": {"weights": [1.0]}}}),
        "query.rrf.weights: 1 weights for 2 prefetches",
    )
    .await;
    s.refused(
        json!({"prefetch": [dense(), {"using": "d", "limit": 3}], "query": {"fusion": "rrf"}}),
        "prefetch[1].query: a prefetch needs a query",
    )
    .await;
    s.refused(
        json!({"prefetch": [dense(), {"query": [1, 2, 3], "using": "d", "limitt": 3}], "query": {"fusion": "rrf"}}),
        "prefetch[1].limitt",
    )
    .await;
    s.refused(
        json!({"prefetch": {"prefetch": [{"query": [1, 2, 3], "using": "s"}], "query": {"fusion": "dbsf"}}, "query": {"fusion": "rrf"}}),
        "prefetch.prefetch[0].query: vector `s` is sparse",
    )
    .await;
    s.refused(
        json!({"prefetch": [{"query": [1, 2, 3], "using": "nope"}], "query": {"fusion": "rrf"}}),
        "prefetch[0].using",
    )
    .await;
    s.refused(
        json!({"prefetch": [{"query": [1, 2, 3], "using": "d", "filter": {"must": [{"key": "g"}]}}], "query": {"fusion": "rrf"}}),
        "prefetch[0].filter",
    )
    .await;
    s.refused(
        json!({"prefetch": [{"query": [1, 2, 3], "using": "d", "lookup_from": {"collection": "x"}}], "query": {"fusion": "rrf"}}),
        "prefetch[0].lookup_from",
    )
    .await;
    s.refused(
        json!({"prefetch": [dense()], "using": "d"}),
        "query: a query with prefetch needs `query`",
    )
    .await;
    let (status, v) = s
        .call(
            Method::POST,
            "/collections/c/points/query/batch",
            &json!({"searches": [{"query": [1, 2, 3], "using": "d"}, {"prefetch": [{"query": [1, 2], "using": "d"}], "query": {"fusion": "dbsf"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let message = v["status"]["error"].as_str().unwrap();
    assert!(
        message.contains("searches[1].prefetch[0].query: a vector of dimension 2"),
        "{message}"
    );
}
