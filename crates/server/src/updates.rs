//! Qdrant's update operations (upsert, delete, payload and vector updates, and the
//! operations of `points/batch`): each is parsed in full before anything runs, so a bad one
//! changes nothing, then applied to a collection on the calling (blocking) thread.

use crate::app::App;
use crate::convert::{self, VectorInput, kind, point_id, point_ids};
use crate::error::{ApiError, ApiResult};
use quiver_engine::{Collection, Point, PointId};
use serde_json::Value;
use std::collections::BTreeMap;

/// A point to upsert, its vectors not yet embedded.
pub(crate) struct RawPoint {
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

fn resolve_points(app: &App, c: &Collection, raw: Vec<RawPoint>) -> ApiResult<Vec<Point>> {
    let mut slots = Vec::new();
    let mut inputs = Vec::new();
    let schema = c.schema();
    let mut points: Vec<Point> = raw
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut sparse = BTreeMap::new();
            for (name, input) in p.vectors {
                match input {
                    VectorInput::Sparse(v) => {
                        sparse.insert(name, v);
                    }
                    VectorInput::Bm25(doc) => {
                        let at = format!("points[{i}].vector.{name}");
                        let v = crate::bm25::document(&schema, &name, &doc, &at)?;
                        sparse.insert(name, v);
                    }
                    input => {
                        slots.push((i, name));
                        inputs.push(input);
                    }
                }
            }
            Ok(Point {
                sparse,
                multi: BTreeMap::new(),
                id: p.id,
                vectors: BTreeMap::new(),
                payload: p.payload,
            })
        })
        .collect::<ApiResult<_>>()?;
    for ((i, name), v) in slots.into_iter().zip(app.embed(inputs)?) {
        if let Some(p) = points.get_mut(i) {
            p.vectors.insert(name, v);
        }
    }
    Ok(points)
}

/// `PointsSelector`: `{"points": [...]}` or `{"filter": {...}}`.
pub(crate) enum Selector {
    Ids(Vec<PointId>),
    Filter(quiver_engine::Filter),
}

fn selector(o: &serde_json::Map<String, Value>, at: &str) -> ApiResult<Selector> {
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

pub(crate) fn object<'v>(v: &'v Value, at: &str) -> ApiResult<&'v serde_json::Map<String, Value>> {
    v.as_object().ok_or_else(|| {
        ApiError::bad_request(format!(
            "Format error in JSON body: {at}: expected an object, found {}",
            kind(v)
        ))
    })
}

pub(crate) fn only_keys(
    o: &serde_json::Map<String, Value>,
    allowed: &[&str],
    at: &str,
) -> ApiResult<()> {
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
pub(crate) enum Update {
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
    let keys = convert::strings(
        o.get("keys").unwrap_or(&Value::Null),
        &format!("{at}.keys"),
        "payload key",
    )?;
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
        // The engine's vector update replaces dense vectors only.
        if let Some((name, _)) = vectors
            .iter()
            .find(|(_, v)| matches!(v, VectorInput::Sparse(_) | VectorInput::Bm25(_)))
        {
            return Err(ApiError::bad_request(format!(
                "Wrong input: {at}.vector.{name}: updating the sparse vector of an existing point is not supported yet; upsert the point with all of its vectors"
            )));
        }
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

pub(crate) fn update_operation(v: &Value, at: &str) -> ApiResult<Update> {
    let o = object(v, at)?;
    let (Some((op, body)), 1) = (o.iter().next(), o.len()) else {
        return Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}: expected an object with exactly one operation"
        )));
    };
    parse(op, body, &format!("{at}.{op}"))
}

/// One operation by its name in `points/batch` (`upsert`, `set_payload`, ...); the single
/// endpoints parse their body with the same names.
pub(crate) fn parse(op: &str, body: &Value, at: &str) -> ApiResult<Update> {
    match op {
        "upsert" => Ok(Update::Upsert(insert_operations(body, at)?)),
        "delete" => Ok(Update::Delete(points_selector(body, at)?)),
        "set_payload" => payload_update(body, at, false),
        "overwrite_payload" => payload_update(body, at, true),
        "delete_payload" => delete_payload(body, at),
        "clear_payload" => Ok(Update::Payload(
            points_selector(body, at)?,
            quiver_engine::PayloadUpdate::Clear,
        )),
        "update_vectors" => update_vectors(body, at),
        "delete_vectors" => delete_vectors(body, at),
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

pub(crate) fn apply(app: &App, c: &Collection, update: Update) -> ApiResult<u64> {
    Ok(match update {
        Update::Upsert(raw) => c.upsert(resolve_points(app, c, raw)?)?,
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
            let mut out: Vec<(PointId, BTreeMap<String, Vec<f32>>)> = Vec::new();
            for (i, (id, vectors)) in points.into_iter().enumerate() {
                for (name, input) in vectors {
                    slots.push((i, name));
                    inputs.push(input);
                }
                out.push((id, BTreeMap::new()));
            }
            for ((i, name), v) in slots.into_iter().zip(app.embed(inputs)?) {
                if let Some((_, map)) = out.get_mut(i) {
                    map.insert(name, v);
                }
            }
            c.update_vectors(out)?
        }
    })
}
