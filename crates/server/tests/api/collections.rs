//! Collections: create, describe, patch, delete, aliases, and the service endpoints.

use super::common::*;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
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
