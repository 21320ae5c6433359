//! Scroll (in id order, or by a payload key with `order_by`) and count.

use crate::app::AppState;
use crate::convert::{self, PayloadSelector, VectorSelector, kind, point_id};
use crate::error::{ApiError, ApiResult};
use crate::json::{Body, Reply, Started};
use crate::routes::points::ReadParams;
use crate::updates::only_keys;
use axum::extract::{Path, Query, State};
use quiver_engine::With;
use serde::Deserialize;
use serde_json::{Value, json};

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
