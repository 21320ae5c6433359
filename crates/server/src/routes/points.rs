//! Points: upsert, retrieve, delete, payload and vector updates, batches, scroll and count.

use crate::app::{App, AppState};
use crate::convert::{
    self, PayloadSelector, VectorInput, VectorSelector, kind, point_id, point_ids,
};
use crate::error::{ApiError, ApiResult};
use crate::json::{Body, Reply, Started};
use axum::extract::{Path, Query, State};
use quiver_engine::{Collection, Point, PointId, With};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

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

/// A point to upsert, its vectors not yet embedded.
struct RawPoint {
    id: PointId,
    vectors: Vec<(String, VectorInput)>,
    payload: quiver_engine::Payload,
}

/// `PointInsertOperations`: `{"points": [...]}` or `{"batch": {"ids", "vectors", "payloads"}}`.
fn insert_operations(body: &Value, at: &str) -> ApiResult<Vec<RawPoint>> {
    let Some(o) = body.as_object() else {
        return Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}: expected an object with `points` or `batch`, found {}",
            kind(body)
        )));
    };
    for key in o.keys() {
        if !matches!(
            key.as_str(),
            "points" | "batch" | "shard_key" | "update_filter" | "update_mode"
        ) {
            return Err(ApiError::bad_request(format!(
                "Format error in JSON body: {at}: unknown field `{key}`, expected `points` or `batch`"
            )));
        }
    }
    if o.get("update_filter").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request(format!(
            "Wrong input: {at}.update_filter is not supported by this server yet"
        )));
    }
    if let Some(mode) = o.get("update_mode").filter(|v| !v.is_null())
        && mode.as_str() != Some("upsert")
    {
        return Err(ApiError::bad_request(format!(
            "Wrong input: {at}.update_mode: only `upsert` is supported"
        )));
    }
    match (o.get("points"), o.get("batch")) {
        (Some(points), None) => {
            let Some(points) = points.as_array() else {
                return Err(ApiError::bad_request(format!(
                    "Format error in JSON body: {at}.points: expected a list of points"
                )));
            };
            points
                .iter()
                .enumerate()
                .map(|(i, p)| point_struct(p, &format!("{at}.points[{i}]")))
                .collect()
        }
        (None, Some(batch)) => batch_struct(batch, &format!("{at}.batch")),
        _ => Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}: give either `points` or `batch`"
        ))),
    }
}

fn point_struct(p: &Value, at: &str) -> ApiResult<RawPoint> {
    let Some(o) = p.as_object() else {
        return Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}: expected a point object, found {}",
            kind(p)
        )));
    };
    for key in o.keys() {
        if !matches!(key.as_str(), "id" | "vector" | "payload") {
            return Err(ApiError::bad_request(format!(
                "Format error in JSON body: {at}: unknown field `{key}`, expected `id`, `vector` or `payload`"
            )));
        }
    }
    let id = point_id(
        o.get("id").ok_or_else(|| {
            ApiError::bad_request(format!(
                "Format error in JSON body: {at}: missing field `id`"
            ))
        })?,
        &format!("{at}.id"),
    )?;
    let vectors = match o.get("vector") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => convert::vector_struct(v, &format!("{at}.vector"))?,
    };
    Ok(RawPoint {
        id,
        vectors,
        payload: convert::payload(o.get("payload"), &format!("{at}.payload"))?,
    })
}

fn batch_struct(b: &Value, at: &str) -> ApiResult<Vec<RawPoint>> {
    let Some(o) = b.as_object() else {
        return Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}: expected an object with `ids`, `vectors`, `payloads`"
        )));
    };
    let ids = match o.get("ids") {
        Some(Value::Array(ids)) => point_ids(ids, &format!("{at}.ids"))?,
        _ => {
            return Err(ApiError::bad_request(format!(
                "Format error in JSON body: {at}.ids: expected a list of point ids"
            )));
        }
    };
    let n = ids.len();
    let count_error = |what: &str, got: usize| {
        ApiError::bad_request(format!(
            "Wrong input: {at}.{what} has {got} entries but there are {n} ids"
        ))
    };
    // One list per vector name.
    let mut columns: Vec<(String, Vec<VectorInput>)> = Vec::new();
    let list = |v: &Value, at: &str| -> ApiResult<Vec<VectorInput>> {
        let Some(items) = v.as_array() else {
            return Err(ApiError::bad_request(format!(
                "Format error in JSON body: {at}: expected a list with one vector per id"
            )));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| convert::vector_input(v, &format!("{at}[{i}]")))
            .collect()
    };
    match o.get("vectors") {
        Some(Value::Object(named)) => {
            for (name, v) in named {
                columns.push((name.clone(), list(v, &format!("{at}.vectors.{name}"))?));
            }
        }
        Some(v @ Value::Array(_)) => {
            columns.push((String::new(), list(v, &format!("{at}.vectors"))?))
        }
        None | Some(Value::Null) => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Format error in JSON body: {at}.vectors: expected a list of vectors or an object of named lists, found {}",
                kind(other)
            )));
        }
    }
    for (name, column) in &columns {
        if column.len() != n {
            let what = if name.is_empty() {
                "vectors".to_string()
            } else {
                format!("vectors.{name}")
            };
            return Err(count_error(&what, column.len()));
        }
    }
    let payloads = match o.get("payloads") {
        None | Some(Value::Null) => vec![Value::Null; n],
        Some(Value::Array(p)) if p.len() == n => p.clone(),
        Some(Value::Array(p)) => return Err(count_error("payloads", p.len())),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Format error in JSON body: {at}.payloads: expected a list, found {}",
                kind(other)
            )));
        }
    };
    let mut columns: Vec<(String, std::vec::IntoIter<VectorInput>)> = columns
        .into_iter()
        .map(|(name, c)| (name, c.into_iter()))
        .collect();
    ids.into_iter()
        .zip(payloads)
        .enumerate()
        .map(|(i, (id, payload))| {
            let vectors = columns
                .iter_mut()
                .filter_map(|(name, c)| c.next().map(|v| (name.clone(), v)))
                .collect();
            Ok(RawPoint {
                id,
                vectors,
                payload: convert::payload(Some(&payload), &format!("{at}.payloads[{i}]"))?,
            })
        })
        .collect()
}

/// Turns vector inputs into vectors, embedding every document of the request in one call.
pub fn embed_inputs(app: &App, inputs: Vec<VectorInput>) -> ApiResult<Vec<Vec<f32>>> {
    let texts: Vec<&str> = inputs
        .iter()
        .filter_map(|v| match v {
            VectorInput::Document { text, .. } => Some(text.as_str()),
            VectorInput::Dense(_) => None,
        })
        .collect();
    let mut embedded = if texts.is_empty() {
        Vec::new()
    } else {
        let embedder = app.embedder.as_ref().ok_or_else(|| {
            ApiError::bad_request(
                "Wrong input: this server was started without a text model, so documents cannot be embedded; send vectors",
            )
        })?;
        let dim = embedder.dim();
        let out = embedder.embed(&texts, dim).map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("Service unavailable: the text model failed: {e}"),
            )
        })?;
        if out.len() != texts.len() {
            return Err(ApiError::internal(
                "Service internal error: the text model returned the wrong number of vectors",
            ));
        }
        out
    }
    .into_iter();
    inputs
        .into_iter()
        .map(|v| match v {
            VectorInput::Dense(v) => Ok(v),
            VectorInput::Document { .. } => embedded
                .next()
                .ok_or_else(|| ApiError::internal("Service internal error: embedding lost")),
        })
        .collect()
}

fn resolve_points(app: &App, raw: Vec<RawPoint>) -> ApiResult<Vec<Point>> {
    let mut slots = Vec::new();
    let mut inputs = Vec::new();
    let mut points: Vec<Point> = raw
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            for (name, input) in p.vectors {
                slots.push((i, name));
                inputs.push(input);
            }
            Point {
                id: p.id,
                vectors: BTreeMap::new(),
                payload: p.payload,
            }
        })
        .collect();
    for ((i, name), v) in slots.into_iter().zip(embed_inputs(app, inputs)?) {
        if let Some(p) = points.get_mut(i) {
            p.vectors.insert(name, v);
        }
    }
    Ok(points)
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
    let raw = insert_operations(&body, "body")?;
    let c = app.collection(&name)?;
    let app2 = app.clone();
    let seq = app
        .blocking(move || {
            let points = resolve_points(&app2, raw)?;
            Ok(c.upsert(points)?)
        })
        .await?;
    Ok(Reply::ok(&started, completed(seq, wait(&params))))
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

/// `PointsSelector`: `{"points": [...]}` or `{"filter": {...}}`.
pub enum Selector {
    Ids(Vec<PointId>),
    Filter(quiver_engine::Filter),
}

pub fn selector(o: &serde_json::Map<String, Value>, at: &str) -> ApiResult<Selector> {
    match (
        o.get("points").filter(|v| !v.is_null()),
        o.get("filter").filter(|v| !v.is_null()),
    ) {
        (Some(Value::Array(ids)), None) => {
            Ok(Selector::Ids(point_ids(ids, &format!("{at}.points"))?))
        }
        (Some(other), None) => Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}.points: expected a list of point ids, found {}",
            kind(other)
        ))),
        (None, Some(f)) => Ok(Selector::Filter(
            convert::filter(Some(f), &format!("{at}.filter"))?.ok_or_else(|| {
                ApiError::bad_request(format!("Wrong input: {at}.filter is empty"))
            })?,
        )),
        (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
            "Wrong input: {at}: give either `points` or `filter`, not both"
        ))),
        (None, None) => Err(ApiError::bad_request(format!(
            "Wrong input: {at}: select points with `points` (a list of ids) or `filter`"
        ))),
    }
}

fn object<'v>(v: &'v Value, at: &str) -> ApiResult<&'v serde_json::Map<String, Value>> {
    v.as_object().ok_or_else(|| {
        ApiError::bad_request(format!(
            "Format error in JSON body: {at}: expected an object, found {}",
            kind(v)
        ))
    })
}

fn only_keys(o: &serde_json::Map<String, Value>, allowed: &[&str], at: &str) -> ApiResult<()> {
    for key in o.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Format error in JSON body: {at}: unknown field `{key}`, expected one of: {}",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

/// One update operation, parsed before anything runs so that a bad operation changes
/// nothing.
enum Update {
    Upsert(Vec<RawPoint>),
    Delete(Selector),
    Payload(Selector, quiver_engine::PayloadUpdate),
    Vectors(Vec<(PointId, Vec<(String, VectorInput)>)>),
}

fn payload_update(v: &Value, at: &str, overwrite: bool) -> ApiResult<Update> {
    let o = object(v, at)?;
    only_keys(o, &["payload", "points", "filter", "shard_key", "key"], at)?;
    let payload = convert::payload(o.get("payload"), &format!("{at}.payload"))?;
    let key = match o.get("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Format error in JSON body: {at}.key: expected a string, found {}",
                kind(other)
            )));
        }
    };
    let update = if overwrite {
        if key.is_some() {
            return Err(ApiError::bad_request(format!(
                "Wrong input: {at}.key: overwrite replaces the whole payload; use set_payload to write under a key"
            )));
        }
        quiver_engine::PayloadUpdate::Overwrite(payload)
    } else {
        quiver_engine::PayloadUpdate::Set { payload, key }
    };
    Ok(Update::Payload(selector(o, at)?, update))
}

fn delete_payload(v: &Value, at: &str) -> ApiResult<Update> {
    let o = object(v, at)?;
    only_keys(o, &["keys", "points", "filter", "shard_key"], at)?;
    let keys = match o.get("keys") {
        Some(Value::Array(keys)) => keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                k.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Format error in JSON body: {at}.keys[{i}]: expected a string"
                    ))
                })
            })
            .collect::<ApiResult<Vec<_>>>()?,
        _ => {
            return Err(ApiError::bad_request(format!(
                "Format error in JSON body: {at}.keys: expected a list of payload keys"
            )));
        }
    };
    Ok(Update::Payload(
        selector(o, at)?,
        quiver_engine::PayloadUpdate::DeleteKeys(keys),
    ))
}

fn points_selector(v: &Value, at: &str) -> ApiResult<Selector> {
    let o = object(v, at)?;
    only_keys(o, &["points", "filter", "shard_key"], at)?;
    selector(o, at)
}

fn update_vectors(v: &Value, at: &str) -> ApiResult<Update> {
    let o = object(v, at)?;
    only_keys(o, &["points", "shard_key", "update_filter"], at)?;
    if o.get("update_filter").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request(format!(
            "Wrong input: {at}.update_filter is not supported by this server yet"
        )));
    }
    let Some(Value::Array(points)) = o.get("points") else {
        return Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}.points: expected a list of {{\"id\", \"vector\"}}"
        )));
    };
    let mut out = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        let at = format!("{at}.points[{i}]");
        let po = object(p, &at)?;
        only_keys(po, &["id", "vector"], &at)?;
        let id = point_id(po.get("id").unwrap_or(&Value::Null), &format!("{at}.id"))?;
        let vectors = convert::vector_struct(
            po.get("vector").unwrap_or(&Value::Null),
            &format!("{at}.vector"),
        )?;
        out.push((id, vectors));
    }
    Ok(Update::Vectors(out))
}

fn delete_vectors(v: &Value, at: &str) -> ApiResult<Update> {
    let o = object(v, at)?;
    only_keys(o, &["points", "filter", "vector", "shard_key"], at)?;
    Err(ApiError::bad_request(format!(
        "Wrong input: {at}: deleting vectors is not supported: every point in Quiver carries all of its collection's vectors (update them, or delete the point)"
    )))
}

fn update_operation(v: &Value, at: &str) -> ApiResult<Update> {
    let o = object(v, at)?;
    let (Some((op, body)), 1) = (o.iter().next(), o.len()) else {
        return Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}: expected an object with exactly one operation"
        )));
    };
    let at = format!("{at}.{op}");
    match op.as_str() {
        "upsert" => Ok(Update::Upsert(insert_operations(body, &at)?)),
        "delete" => Ok(Update::Delete(points_selector(body, &at)?)),
        "set_payload" => payload_update(body, &at, false),
        "overwrite_payload" => payload_update(body, &at, true),
        "delete_payload" => delete_payload(body, &at),
        "clear_payload" => Ok(Update::Payload(
            points_selector(body, &at)?,
            quiver_engine::PayloadUpdate::Clear,
        )),
        "update_vectors" => update_vectors(body, &at),
        "delete_vectors" => delete_vectors(body, &at),
        other => Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}: unknown operation `{other}`, expected upsert, delete, set_payload, overwrite_payload, delete_payload, clear_payload, update_vectors or delete_vectors"
        ))),
    }
}

fn engine_selector(s: Selector) -> quiver_engine::PointSelector {
    match s {
        Selector::Ids(ids) => quiver_engine::PointSelector::Ids(ids),
        Selector::Filter(f) => quiver_engine::PointSelector::Filter(f),
    }
}

fn apply(app: &App, c: &Collection, update: Update) -> ApiResult<u64> {
    Ok(match update {
        Update::Upsert(raw) => c.upsert(resolve_points(app, raw)?)?,
        Update::Delete(Selector::Ids(ids)) => {
            c.delete(&ids)?;
            c.last_seq()
        }
        Update::Delete(Selector::Filter(f)) => {
            c.delete_by_filter(&f)?;
            c.last_seq()
        }
        Update::Payload(s, update) => c.update_payload(&engine_selector(s), &update)?,
        Update::Vectors(points) => {
            let mut slots = Vec::new();
            let mut inputs = Vec::new();
            for (i, (_, vectors)) in points.iter().enumerate() {
                for (name, input) in vectors {
                    slots.push((i, name.clone()));
                    inputs.push(input.clone());
                }
            }
            let mut out: Vec<(PointId, BTreeMap<String, Vec<f32>>)> = points
                .iter()
                .map(|(id, _)| (*id, BTreeMap::new()))
                .collect();
            for ((i, name), v) in slots.into_iter().zip(embed_inputs(app, inputs)?) {
                if let Some((_, map)) = out.get_mut(i) {
                    map.insert(name, v);
                }
            }
            c.update_vectors(out)?
        }
    })
}

/// Runs one parsed update on the blocking pool.
async fn run_update(
    app: &AppState,
    name: &str,
    params: &WriteParams,
    started: &Started,
    update: Update,
) -> ApiResult<Reply> {
    let c = app.collection(name)?;
    let app2 = app.clone();
    let seq = app.blocking(move || apply(&app2, &c, update)).await?;
    Ok(Reply::ok(started, completed(seq, wait(params))))
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
    let update = Update::Delete(points_selector(&body, "body")?);
    run_update(&app, &name, &params, &started, update).await
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
    let update = payload_update(&body, "body", false)?;
    run_update(&app, &name, &params, &started, update).await
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
    let update = payload_update(&body, "body", true)?;
    run_update(&app, &name, &params, &started, update).await
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
    let update = delete_payload(&body, "body")?;
    run_update(&app, &name, &params, &started, update).await
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
    let update = Update::Payload(
        points_selector(&body, "body")?,
        quiver_engine::PayloadUpdate::Clear,
    );
    run_update(&app, &name, &params, &started, update).await
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
    let update = update_vectors(&body, "body")?;
    run_update(&app, &name, &params, &started, update).await
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
    let update = delete_vectors(&body, "body")?;
    run_update(&app, &name, &params, &started, update).await
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
        .map(|(i, op)| update_operation(op, &format!("operations[{i}]")))
        .collect::<ApiResult<Vec<_>>>()?;
    let c = app.collection(&name)?;
    let app2 = app.clone();
    let w = wait(&params);
    let results = app
        .blocking(move || {
            let mut out = Vec::new();
            for (i, u) in updates.into_iter().enumerate() {
                let seq = apply(&app2, &c, u).map_err(|mut e| {
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

/// `POST /collections/{name}/points/scroll`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scroll {
    offset: Option<Value>,
    limit: Option<usize>,
    filter: Option<Value>,
    with_payload: Option<Value>,
    with_vector: Option<Value>,
    order_by: Option<Value>,
    shard_key: Option<Value>,
}

/// The most points one scroll page may ask for.
const MAX_SCROLL_LIMIT: usize = 100_000;

#[utoipa::path(
    post,
    path = "/collections/{name}/points/scroll",
    tag = "points",
    summary = "Page through points in id order (or by a payload key with `order_by`)",
    request_body = Scroll,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn scroll(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<ReadParams>,
    started: Started,
    Body(req): Body<Scroll>,
) -> ApiResult<Reply> {
    params.ignore();
    let _ = &req.shard_key;
    let limit = req.limit.unwrap_or(10);
    if limit > MAX_SCROLL_LIMIT {
        return Err(ApiError::bad_request(format!(
            "Wrong input: limit: {limit} is over the maximum of {MAX_SCROLL_LIMIT} points per page"
        )));
    }
    let offset = match req.offset.as_ref().filter(|v| !v.is_null()) {
        Some(v) => Some(point_id(v, "offset")?),
        None => None,
    };
    let filter = convert::filter(req.filter.as_ref(), "filter")?;
    let payload = PayloadSelector::parse(req.with_payload.as_ref(), true, "with_payload")?;
    let vectors = VectorSelector::parse(req.with_vector.as_ref(), "with_vector")?;
    let order = match req.order_by.as_ref().filter(|v| !v.is_null()) {
        Some(v) => Some(order_by(v)?),
        None => None,
    };
    let c = app.collection(&name)?;
    convert::check_vector_names(&c.schema(), &vectors, "with_vector")?;
    let result = app
        .blocking(move || {
            let with = With {
                payload: payload.wanted(),
                vectors: vectors.wanted(),
            };
            let schema = c.schema();
            let (points, next): (Vec<Value>, _) = match order {
                Some(o) => {
                    if offset.is_some() {
                        return Err(ApiError::bad_request(
                            "Wrong input: offset cannot be combined with order_by; page with order_by.start_from",
                        ));
                    }
                    let records = c.scroll_ordered(
                        &o.key,
                        o.descending,
                        o.start_from,
                        limit,
                        filter.as_ref(),
                        with,
                    )?;
                    let points = records
                        .into_iter()
                        .map(|(value, r)| {
                            let mut v = convert::record_json(&schema, r, &payload, &vectors);
                            if let Some(o) = v.as_object_mut() {
                                o.insert("order_value".into(), order_value(value));
                            }
                            v
                        })
                        .collect();
                    (points, None)
                }
                None => {
                    let page = c.scroll_filtered(offset, limit, with, filter.as_ref())?;
                    let points = page
                        .points
                        .into_iter()
                        .map(|r| convert::record_json(&schema, r, &payload, &vectors))
                        .collect();
                    (points, page.next)
                }
            };
            Ok(json!({
                "points": points,
                "next_page_offset": next.map(convert::id_json),
            }))
        })
        .await?;
    Ok(Reply::ok(&started, result))
}

fn order_value(v: quiver_engine::OrderValue) -> Value {
    match v {
        quiver_engine::OrderValue::Int(i) => json!(i),
        quiver_engine::OrderValue::Float(f) => json!(f),
    }
}

struct OrderBy {
    key: String,
    descending: bool,
    start_from: Option<f64>,
}

fn order_by(v: &Value) -> ApiResult<OrderBy> {
    let at = "order_by";
    match v {
        Value::String(key) => Ok(OrderBy {
            key: key.clone(),
            descending: false,
            start_from: None,
        }),
        Value::Object(o) => {
            only_keys(o, &["key", "direction", "start_from"], at)?;
            let key = o.get("key").and_then(Value::as_str).ok_or_else(|| {
                ApiError::bad_request(
                    "Format error in JSON body: order_by.key: expected a payload key",
                )
            })?;
            let descending = match o.get("direction") {
                None | Some(Value::Null) => false,
                Some(Value::String(d)) if d == "asc" => false,
                Some(Value::String(d)) if d == "desc" => true,
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "Format error in JSON body: order_by.direction: expected \"asc\" or \"desc\", found {other}"
                    )));
                }
            };
            let start_from = match o.get("start_from") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => n.as_f64(),
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "Wrong input: order_by.start_from: expected a number, found {}",
                        kind(other)
                    )));
                }
            };
            Ok(OrderBy {
                key: key.to_string(),
                descending,
                start_from,
            })
        }
        other => Err(ApiError::bad_request(format!(
            "Format error in JSON body: order_by: expected a key or {{\"key\", \"direction\", \"start_from\"}}, found {}",
            kind(other)
        ))),
    }
}

/// `POST /collections/{name}/points/count`. Counts are always exact.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Count {
    filter: Option<Value>,
    exact: Option<bool>,
    shard_key: Option<Value>,
}

#[utoipa::path(
    post,
    path = "/collections/{name}/points/count",
    tag = "points",
    summary = "Count points (exact)",
    request_body = Count,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn count(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<ReadParams>,
    started: Started,
    Body(req): Body<Count>,
) -> ApiResult<Reply> {
    params.ignore();
    let _ = (req.exact, &req.shard_key);
    let filter = convert::filter(req.filter.as_ref(), "filter")?;
    let c = app.collection(&name)?;
    let count = app
        .blocking(move || {
            Ok(match filter {
                Some(f) => c.count_filtered(&f)?,
                None => c.count_checked()?,
            })
        })
        .await?;
    Ok(Reply::ok(&started, json!({"count": count})))
}
