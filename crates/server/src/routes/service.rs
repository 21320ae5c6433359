//! Service endpoints: version, health probes, metrics.

use crate::app::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

/// The Qdrant API version whose shapes this server follows (its clients compare it with
/// their own version and warn when they differ).
pub const QDRANT_API_VERSION: &str = "1.20.0";

#[utoipa::path(
    get,
    path = "/",
    tag = "service",
    summary = "Title and version",
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"))
)]
pub async fn root() -> impl IntoResponse {
    axum::Json(json!({
        "title": "quiver - vector database (Qdrant REST dialect)",
        "version": QDRANT_API_VERSION,
        "quiver_version": env!("CARGO_PKG_VERSION"),
    }))
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    summary = "Health probe (no key needed)",
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"))
)]
pub async fn healthz() -> &'static str {
    "healthz check passed"
}

#[utoipa::path(
    get,
    path = "/livez",
    tag = "service",
    summary = "Liveness probe (no key needed)",
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"))
)]
pub async fn livez() -> &'static str {
    "healthz check passed"
}

/// Ready once the database is open, which happens before the server listens.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    summary = "Readiness probe (no key needed)",
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"))
)]
pub async fn readyz() -> &'static str {
    "all shards are ready"
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"))
)]
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let collections: Vec<(String, u64, usize)> = app
        .db
        .list_collections()
        .into_iter()
        .filter_map(|name| {
            let c = app.db.collection(&name).ok()?;
            let (points, segments) = c.size();
            Some((name, points, segments))
        })
        .collect();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(&collections),
    )
}
