//! Points: upsert, retrieve, delete, payload and vector updates, and batches of them. The
//! operations themselves are parsed and applied in `updates.rs`.

use crate::app::AppState;
use crate::convert::{self, PayloadSelector, VectorSelector, point_ids};
use crate::error::{ApiError, ApiResult};
use crate::json::{Body, Reply, Started};
use crate::updates::{self, object, only_keys};
use axum::extract::{Path, Query, State};
use quiver_engine::With;
use serde::Deserialize;
use serde_json::{Value, json};

/// Query parameters of writes. Every acknowledged write is already durable (the engine
/// fsyncs before it answers), so `wait` changes only the reported status.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteParams {
    wait: Option<bool>,
    ordering: Option<String>,
    timeout: Option<u64>,
}

/// Query parameters of reads (`consistency` and `timeout` are accepted on one node).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadParams {
    consistency: Option<String>,
    timeout: Option<u64>,
}

impl ReadParams {
    pub fn ignore(&self) {
        let _ = (&self.consistency, self.timeout);
    }
}

pub fn completed(operation_id: u64, wait: bool) -> Value {
    json!({
        "operation_id": operation_id,
        "status": if wait { "completed" } else { "acknowledged" },
    })
}

fn wait(p: &WriteParams) -> bool {
    let _ = (&p.ordering, p.timeout);
    p.wait.unwrap_or(false)
}

/// Parses the body as the update operation `op` (as `points/batch` names it), then applies it
/// on the blocking pool.
async fn run_update(
    app: &AppState,
    name: &str,
    params: &WriteParams,
    started: &Started,
    op: &str,
    body: &Value,
) -> ApiResult<Reply> {
    let update = updates::parse(op, body, "body")?;
    let c = app.collection(name)?;
    let app2 = app.clone();
    let seq = app
        .blocking(move || updates::apply(&app2, &c, update))
        .await?;
    Ok(Reply::ok(started, completed(seq, wait(params))))
}

#[utoipa::path(
    put,
    path = "/collections/{name}/points",
    tag = "points",
    summary = "Upsert points (`{\"points\": [...]}` or `{\"batch\": {...}}`)",
    request_body = Object,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)"), ("wait" = Option<bool>, Query, description = "Report `completed` (true) or `acknowledged`; the write is durable before the answer either way")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn upsert(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<WriteParams>,
    started: Started,
    Body(body): Body<Value>,
) -> ApiResult<Reply> {
    run_update(&app, &name, &params, &started, "upsert", &body).await
}

/// `POST /collections/{name}/points`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retrieve {
    ids: Vec<Value>,
    with_payload: Option<Value>,
    with_vector: Option<Value>,
    shard_key: Option<Value>,
}

#[utoipa::path(
    post,
    path = "/collections/{name}/points",
    tag = "points",
    summary = "Retrieve points by id",
    request_body = Retrieve,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn retrieve(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<ReadParams>,
    started: Started,
    Body(req): Body<Retrieve>,
) -> ApiResult<Reply> {
    params.ignore();
    let _ = &req.shard_key;
    let ids = point_ids(&req.ids, "ids")?;
    let payload = PayloadSelector::parse(req.with_payload.as_ref(), true, "with_payload")?;
    let vectors = VectorSelector::parse(req.with_vector.as_ref(), "with_vector")?;
    let c = app.collection(&name)?;
    convert::check_vector_names(&c.schema(), &vectors, "with_vector")?;
    let points = app
        .blocking(move || {
            let with = With {
                payload: payload.wanted(),
                vectors: vectors.wanted(),
            };
            let records = c.retrieve(&ids, with)?;
            Ok(records
                .into_iter()
                .map(|r| convert::record_json(&c.schema(), r, &payload, &vectors))
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(Reply::ok(&started, points))
}

#[utoipa::path(
    get,
    path = "/collections/{name}/points/{id}",
    tag = "points",
    summary = "Retrieve one point",
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)"), ("id" = String, Path, description = "Point id: an unsigned integer or a UUID")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn get_point(
    State(app): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    started: Started,
) -> ApiResult<Reply> {
    let id = convert::point_id_text(&id)?;
    let c = app.collection(&name)?;
    let record = app
        .blocking(move || {
            let mut records = c.retrieve(&[id], With::ALL)?;
            let record = records.pop().ok_or_else(|| {
                ApiError::not_found(format!("Not found: No point with id {id} found"))
            })?;
            Ok(convert::record_json(
                &c.schema(),
                record,
                &PayloadSelector::All,
                &VectorSelector::All,
            ))
        })
        .await?;
    Ok(Reply::ok(&started, record))
}

#[utoipa::path(
    post,
    path = "/collections/{name}/points/delete",
    tag = "points",
    summary = "Delete points by id (`points`) or by `filter`",
    request_body = Object,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)"), ("wait" = Option<bool>, Query, description = "Report `completed` (true) or `acknowledged`; the write is durable before the answer either way")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn delete(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<WriteParams>,
    started: Started,
    Body(body): Body<Value>,
) -> ApiResult<Reply> {
    run_update(&app, &name, &params, &started, "delete", &body).await
}

#[utoipa::path(
    post,
    path = "/collections/{name}/points/payload",
    tag = "points",
    summary = "Set payload keys (optionally under `key`)",
    request_body = Object,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)"), ("wait" = Option<bool>, Query, description = "Report `completed` (true) or `acknowledged`; the write is durable before the answer either way")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn set_payload(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<WriteParams>,
    started: Started,
    Body(body): Body<Value>,
) -> ApiResult<Reply> {
    run_update(&app, &name, &params, &started, "set_payload", &body).await
}

#[utoipa::path(
    put,
    path = "/collections/{name}/points/payload",
    tag = "points",
    summary = "Replace payloads",
    request_body = Object,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)"), ("wait" = Option<bool>, Query, description = "Report `completed` (true) or `acknowledged`; the write is durable before the answer either way")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn overwrite_payload(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<WriteParams>,
    started: Started,
    Body(body): Body<Value>,
) -> ApiResult<Reply> {
    run_update(&app, &name, &params, &started, "overwrite_payload", &body).await
}

#[utoipa::path(
    post,
    path = "/collections/{name}/points/payload/delete",
    tag = "points",
    summary = "Delete payload keys",
    request_body = Object,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)"), ("wait" = Option<bool>, Query, description = "Report `completed` (true) or `acknowledged`; the write is durable before the answer either way")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn delete_payload_keys(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<WriteParams>,
    started: Started,
    Body(body): Body<Value>,
) -> ApiResult<Reply> {
    run_update(&app, &name, &params, &started, "delete_payload", &body).await
}

#[utoipa::path(
    post,
    path = "/collections/{name}/points/payload/clear",
    tag = "points",
    summary = "Clear payloads",
    request_body = Object,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)"), ("wait" = Option<bool>, Query, description = "Report `completed` (true) or `acknowledged`; the write is durable before the answer either way")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn clear_payload(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<WriteParams>,
    started: Started,
    Body(body): Body<Value>,
) -> ApiResult<Reply> {
    run_update(&app, &name, &params, &started, "clear_payload", &body).await
}

#[utoipa::path(
    put,
    path = "/collections/{name}/points/vectors",
    tag = "points",
    summary = "Update named vectors of existing points",
    request_body = Object,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)"), ("wait" = Option<bool>, Query, description = "Report `completed` (true) or `acknowledged`; the write is durable before the answer either way")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn put_vectors(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<WriteParams>,
    started: Started,
    Body(body): Body<Value>,
) -> ApiResult<Reply> {
    run_update(&app, &name, &params, &started, "update_vectors", &body).await
}

#[utoipa::path(
    post,
    path = "/collections/{name}/points/vectors/delete",
    tag = "points",
    summary = "Delete named vectors (refused: points carry all vectors)",
    request_body = Object,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)"), ("wait" = Option<bool>, Query, description = "Report `completed` (true) or `acknowledged`; the write is durable before the answer either way")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn delete_vectors_route(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<WriteParams>,
    started: Started,
    Body(body): Body<Value>,
) -> ApiResult<Reply> {
    run_update(&app, &name, &params, &started, "delete_vectors", &body).await
}

/// `POST /collections/{name}/points/batch`: every operation is parsed first (a bad one
/// changes nothing), then they are applied in order; the first that fails stops the batch
/// and is reported with its index.
#[utoipa::path(
    post,
    path = "/collections/{name}/points/batch",
    tag = "points",
    summary = "Apply update operations in order",
    request_body = Object,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)"), ("wait" = Option<bool>, Query, description = "Report `completed` (true) or `acknowledged`; the write is durable before the answer either way")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn batch(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<WriteParams>,
    started: Started,
    Body(body): Body<Value>,
) -> ApiResult<Reply> {
    let o = object(&body, "body")?;
    only_keys(o, &["operations"], "body")?;
    let Some(Value::Array(ops)) = o.get("operations") else {
        return Err(ApiError::bad_request(
            "Format error in JSON body: operations: expected a list of update operations",
        ));
    };
    let updates = ops
        .iter()
        .enumerate()
        .map(|(i, op)| updates::update_operation(op, &format!("operations[{i}]")))
        .collect::<ApiResult<Vec<_>>>()?;
    let c = app.collection(&name)?;
    let app2 = app.clone();
    let w = wait(&params);
    let results = app
        .blocking(move || {
            let mut out = Vec::new();
            for (i, u) in updates.into_iter().enumerate() {
                let seq = updates::apply(&app2, &c, u).map_err(|mut e| {
                    e.message = format!(
                        "{} (operations[{i}]; the operations before it were applied)",
                        e.message
                    );
                    e
                })?;
                out.push(completed(seq, w));
            }
            Ok(out)
        })
        .await?;
    Ok(Reply::ok(&started, results))
}
