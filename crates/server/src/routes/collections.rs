//! Collections: create, get, list, exists, delete, update, and payload indexes.

use crate::app::AppState;
use crate::convert::kind;
use crate::error::{ApiError, ApiResult};
use crate::json::{Body, Reply, Started};
use axum::extract::{Path, State};
use quiver_engine::{
    CollectionConfig, CollectionInfo, Distance, FieldIndexKind, IndexKind, Modifier, Quantization,
    Schema, SparseKind, VectorKind,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Qdrant's defaults for a new collection's graph.
const DEFAULT_M: usize = 16;
const DEFAULT_EF_CONSTRUCT: usize = 100;

/// `PUT /collections/{name}`. Members Quiver has no use for on one node (sharding,
/// replication, WAL and storage tuning) are accepted and ignored; see docs/server.md.
#[allow(
    dead_code,
    reason = "members accepted for compatibility and ignored: docs/server.md"
)]
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollection {
    vectors: Option<Value>,
    shard_number: Option<u32>,
    sharding_method: Option<Value>,
    replication_factor: Option<u32>,
    write_consistency_factor: Option<u32>,
    on_disk_payload: Option<bool>,
    payload: Option<Value>,
    id_tracker: Option<Value>,
    hnsw_config: Option<HnswDiff>,
    wal_config: Option<Value>,
    optimizers_config: Option<OptimizersDiff>,
    init_from: Option<Value>,
    quantization_config: Option<Value>,
    sparse_vectors: Option<Value>,
    strict_mode_config: Option<Value>,
    metadata: Option<Value>,
}

#[allow(
    dead_code,
    reason = "members accepted for compatibility and ignored: docs/server.md"
)]
#[derive(Debug, Default, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HnswDiff {
    m: Option<usize>,
    ef_construct: Option<usize>,
    full_scan_threshold: Option<u64>,
    max_indexing_threads: Option<u64>,
    on_disk: Option<bool>,
    payload_m: Option<usize>,
    inline_storage: Option<bool>,
}

#[allow(
    dead_code,
    reason = "members accepted for compatibility and ignored: docs/server.md"
)]
#[derive(Debug, Default, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptimizersDiff {
    deleted_threshold: Option<f64>,
    vacuum_min_vector_number: Option<u64>,
    default_segment_number: Option<u64>,
    /// Kilobytes.
    max_segment_size: Option<u64>,
    memmap_threshold: Option<u64>,
    /// Kilobytes.
    indexing_threshold: Option<u64>,
    flush_interval_sec: Option<u64>,
    max_optimization_threads: Option<Value>,
    prevent_unoptimized: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorParams {
    size: usize,
    distance: String,
    hnsw_config: Option<HnswDiff>,
    quantization_config: Option<Value>,
    on_disk: Option<bool>,
    memory: Option<Value>,
    datatype: Option<String>,
    multivector_config: Option<Value>,
}

fn distance(s: &str, at: &str) -> ApiResult<Distance> {
    match s {
        "Cosine" => Ok(Distance::Cosine),
        "Dot" => Ok(Distance::Dot),
        "Euclid" => Ok(Distance::Euclid),
        other => Err(ApiError::bad_request(format!(
            "Wrong input: {at}: distance `{other}` is not supported; use Cosine, Dot or Euclid"
        ))),
    }
}

/// A quantization config as Quiver's traversal codes: scalar int8 is LVQ-8 (per-vector
/// scale, re-scored with the stored `f32` rows).
fn quantization(v: Option<&Value>, at: &str) -> ApiResult<Option<Quantization>> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Some(o) = v.as_object() else {
        return Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}: expected an object, found {}",
            kind(v)
        )));
    };
    if let Some(scalar) = o.get("scalar") {
        let ty = scalar.get("type").and_then(Value::as_str).unwrap_or("int8");
        if ty != "int8" {
            return Err(ApiError::bad_request(format!(
                "Wrong input: {at}.scalar.type: `{ty}` is not supported; use int8"
            )));
        }
        return Ok(Some(Quantization::Lvq8));
    }
    let which = o.keys().next().map_or("", String::as_str);
    Err(ApiError::bad_request(format!(
        "Wrong input: {at}: {which} quantization is not supported; Quiver offers scalar int8 (LVQ-8 codes re-scored with the original vectors)"
    )))
}

fn index_kind(
    collection: Option<&HnswDiff>,
    vector: Option<&HnswDiff>,
    quant: Option<Quantization>,
    at: &str,
) -> ApiResult<IndexKind> {
    let pick =
        |f: fn(&HnswDiff) -> Option<usize>| vector.and_then(f).or_else(|| collection.and_then(f));
    let m = pick(|h| h.m).unwrap_or(DEFAULT_M);
    let ef_construction = pick(|h| h.ef_construct).unwrap_or(DEFAULT_EF_CONSTRUCT);
    if m == 0 {
        // Qdrant's way to ask for no graph.
        return Ok(IndexKind::Flat);
    }
    if !(2..=512).contains(&m) || !(1..=10_000).contains(&ef_construction) {
        return Err(ApiError::bad_request(format!(
            "Wrong input: {at}: hnsw m = {m} must be 0 (no graph) or in 2..=512, and ef_construct = {ef_construction} in 1..=10000"
        )));
    }
    Ok(IndexKind::Hnsw {
        m,
        ef_construction,
        quantization: quant.unwrap_or(Quantization::Lvq8),
    })
}

fn vector_kind(params: VectorParams, req: &CreateCollection, at: &str) -> ApiResult<VectorKind> {
    if params
        .multivector_config
        .as_ref()
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::bad_request(format!(
            "Wrong input: {at}.multivector_config: multi-vectors are not supported by this server yet"
        )));
    }
    if let Some(dt) = params.datatype.as_deref().filter(|d| *d != "float32") {
        return Err(ApiError::bad_request(format!(
            "Wrong input: {at}.datatype: `{dt}` is not supported; vectors are stored as float32"
        )));
    }
    let _ = (params.on_disk, &params.memory);
    let quant = match quantization(
        params.quantization_config.as_ref(),
        &format!("{at}.quantization_config"),
    )? {
        Some(q) => Some(q),
        None => quantization(req.quantization_config.as_ref(), "quantization_config")?,
    };
    let index = index_kind(
        req.hnsw_config.as_ref(),
        params.hnsw_config.as_ref(),
        quant,
        at,
    )?;
    Ok(VectorKind::dense_indexed(
        params.size,
        distance(&params.distance, &format!("{at}.distance"))?,
        index,
    ))
}

/// `SparseVectorParams`: `{"modifier": "idf" | "none", "index": {...}}`. The index options
/// are Qdrant's storage choices; Quiver's sparse index is always exact with `f32` weights, so
/// `full_scan_threshold` and `on_disk` are ignored and only `datatype: float32` is accepted.
#[allow(
    dead_code,
    reason = "members accepted for compatibility and ignored: docs/server.md"
)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SparseParams {
    modifier: Option<String>,
    index: Option<SparseIndexParams>,
}

#[allow(
    dead_code,
    reason = "members accepted for compatibility and ignored: docs/server.md"
)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SparseIndexParams {
    full_scan_threshold: Option<u64>,
    on_disk: Option<bool>,
    datatype: Option<String>,
}

fn sparse_vectors(v: Option<&Value>) -> ApiResult<BTreeMap<String, SparseKind>> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(BTreeMap::new());
    };
    let Some(o) = v.as_object() else {
        return Err(ApiError::bad_request(format!(
            "Format error in JSON body: sparse_vectors: expected an object of named sparse vectors, found {}",
            kind(v)
        )));
    };
    let mut out = BTreeMap::new();
    for (name, params) in o {
        let at = format!("sparse_vectors.{name}");
        let params: SparseParams = if params.is_null() {
            SparseParams {
                modifier: None,
                index: None,
            }
        } else {
            serde_json::from_value(params.clone()).map_err(|e| {
                ApiError::bad_request(format!("Format error in JSON body: {at}: {e}"))
            })?
        };
        let modifier = match params.modifier.as_deref() {
            None | Some("none") => Modifier::None,
            Some("idf") => Modifier::Idf,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Wrong input: {at}.modifier: `{other}` is not a modifier; use idf or none"
                )));
            }
        };
        if let Some(dt) = params
            .index
            .as_ref()
            .and_then(|i| i.datatype.as_deref())
            .filter(|d| *d != "float32")
        {
            return Err(ApiError::bad_request(format!(
                "Wrong input: {at}.index.datatype: `{dt}` is not supported; sparse values are stored as float32"
            )));
        }
        out.insert(name.clone(), SparseKind::with_modifier(modifier));
    }
    Ok(out)
}

fn schema(req: &CreateCollection) -> ApiResult<Schema> {
    let sparse_vectors = sparse_vectors(req.sparse_vectors.as_ref())?;
    let none = Value::Object(Map::new());
    let vectors = match req.vectors.as_ref().filter(|v| !v.is_null()) {
        Some(v) => v,
        // A collection of sparse vectors only (Qdrant's clients send `vectors: {}` then).
        None if !sparse_vectors.is_empty() => &none,
        None => {
            return Err(ApiError::bad_request(
                "Wrong input: vectors: a collection needs at least one vector (`vectors`: {\"size\", \"distance\"}, or `sparse_vectors`)",
            ));
        }
    };
    let Some(o) = vectors.as_object() else {
        return Err(ApiError::bad_request(format!(
            "Format error in JSON body: vectors: expected an object, found {}",
            kind(vectors)
        )));
    };
    let params = |v: &Value, at: &str| -> ApiResult<VectorParams> {
        serde_json::from_value(v.clone())
            .map_err(|e| ApiError::bad_request(format!("Format error in JSON body: {at}: {e}")))
    };
    let mut out = BTreeMap::new();
    if o.contains_key("size") || o.contains_key("distance") {
        out.insert(
            String::new(),
            vector_kind(params(vectors, "vectors")?, req, "vectors")?,
        );
    } else {
        if o.is_empty() && sparse_vectors.is_empty() {
            return Err(ApiError::bad_request(
                "Wrong input: vectors: a collection needs at least one vector (dense in `vectors` or in `sparse_vectors`)",
            ));
        }
        for (name, v) in o {
            let at = format!("vectors.{name}");
            out.insert(name.clone(), vector_kind(params(v, &at)?, req, &at)?);
        }
    }
    Ok(Schema {
        vectors: out,
        sparse_vectors,
    })
}

fn config(opt: Option<&OptimizersDiff>) -> ApiResult<CollectionConfig> {
    let mut c = CollectionConfig::default();
    if let Some(o) = opt {
        apply_optimizers(&mut c, o)?;
    }
    Ok(c)
}

fn apply_optimizers(c: &mut CollectionConfig, o: &OptimizersDiff) -> ApiResult<()> {
    if let Some(t) = o.deleted_threshold {
        c.compact_deleted_fraction = t;
    }
    if let Some(kb) = o.max_segment_size {
        c.max_segment_bytes = kb.saturating_mul(1024);
    }
    if let Some(kb) = o.indexing_threshold {
        if kb == 0 {
            return Err(ApiError::bad_request(
                "Wrong input: optimizers_config.indexing_threshold: 0 (never index) is not supported; Quiver seals and indexes the in-memory segment once it reaches this size",
            ));
        }
        c.seal_threshold_bytes = kb.saturating_mul(1024);
    }
    Ok(())
}

#[utoipa::path(
    put,
    path = "/collections/{name}",
    tag = "collections",
    summary = "Create a collection",
    request_body = CreateCollection,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn create(
    State(app): State<AppState>,
    Path(name): Path<String>,
    started: Started,
    Body(req): Body<CreateCollection>,
) -> ApiResult<Reply> {
    if req.init_from.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request(
            "Wrong input: init_from is not supported; copy points with scroll and upsert",
        ));
    }
    let schema = schema(&req)?;
    let config = config(req.optimizers_config.as_ref())?;
    let db = app.db.clone();
    app.blocking(move || {
        db.create_collection(&name, schema, config)?;
        Ok(())
    })
    .await?;
    Ok(Reply::ok(&started, true))
}

#[utoipa::path(
    get,
    path = "/collections",
    tag = "collections",
    summary = "List collections",
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"))
)]
pub async fn list(State(app): State<AppState>, started: Started) -> ApiResult<Reply> {
    let names = app.db.list_collections();
    let collections: Vec<Value> = names.into_iter().map(|n| json!({"name": n})).collect();
    Ok(Reply::ok(&started, json!({"collections": collections})))
}

#[utoipa::path(
    get,
    path = "/collections/{name}/exists",
    tag = "collections",
    summary = "Whether a collection exists",
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn exists(
    State(app): State<AppState>,
    Path(name): Path<String>,
    started: Started,
) -> ApiResult<Reply> {
    let exists = app.db.collection(&name).is_ok();
    Ok(Reply::ok(&started, json!({"exists": exists})))
}

#[utoipa::path(
    delete,
    path = "/collections/{name}",
    tag = "collections",
    summary = "Delete a collection",
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn delete(
    State(app): State<AppState>,
    Path(name): Path<String>,
    started: Started,
) -> ApiResult<Reply> {
    let db = app.db.clone();
    let deleted = app
        .blocking(move || match db.drop_collection(&name) {
            Ok(()) => Ok(true),
            Err(quiver_engine::Error::CollectionNotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        })
        .await?;
    Ok(Reply::ok(&started, deleted))
}

#[utoipa::path(
    get,
    path = "/collections/{name}",
    tag = "collections",
    summary = "Collection info",
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn get(
    State(app): State<AppState>,
    Path(name): Path<String>,
    started: Started,
) -> ApiResult<Reply> {
    let c = app.collection(&name)?;
    let info = app
        .blocking(move || {
            let info = c.info()?;
            let mut indexed = BTreeMap::new();
            for key in info.payload_indexes.keys() {
                let has = quiver_engine::Filter::from_json(&json!({
                    "must_not": [{"is_empty": {"key": key}}]
                }))?;
                indexed.insert(key.clone(), c.count_filtered(&has)?);
            }
            Ok((info, indexed))
        })
        .await?;
    Ok(Reply::ok(&started, info_json(&info.0, &info.1)))
}

fn distance_name(d: Distance) -> &'static str {
    match d {
        Distance::Cosine => "Cosine",
        Distance::Dot => "Dot",
        Distance::Euclid => "Euclid",
    }
}

fn hnsw_json(index: IndexKind) -> Value {
    let (m, ef) = match index {
        IndexKind::Hnsw {
            m, ef_construction, ..
        } => (m, ef_construction),
        _ => (0, DEFAULT_EF_CONSTRUCT),
    };
    json!({
        "m": m,
        "ef_construct": ef,
        "full_scan_threshold": 10000,
        "max_indexing_threads": 0,
        "on_disk": false,
    })
}

fn quantization_json(index: IndexKind) -> Value {
    match index {
        IndexKind::Hnsw {
            quantization: Quantization::Lvq8,
            ..
        } => json!({"scalar": {"type": "int8", "always_ram": true}}),
        _ => Value::Null,
    }
}

fn vector_json(kind: &VectorKind) -> Value {
    // A multi-vector's size is its tokens' (its stored row, the MUVERA encoding, is internal).
    match kind.multi_config() {
        Some((dim, ..)) => json!({
            "size": dim,
            "distance": distance_name(kind.distance()),
            "on_disk": false,
            "multivector_config": {"comparator": "max_sim"},
        }),
        None => json!({
            "size": kind.dim(),
            "distance": distance_name(kind.distance()),
            "on_disk": false,
        }),
    }
}

pub fn field_kind_name(k: FieldIndexKind) -> &'static str {
    match k {
        FieldIndexKind::Keyword => "keyword",
        FieldIndexKind::Integer => "integer",
        FieldIndexKind::Float => "float",
        FieldIndexKind::Bool => "bool",
    }
}

fn info_json(info: &CollectionInfo, indexed: &BTreeMap<String, u64>) -> Value {
    let schema = &info.schema;
    let vectors = match schema.vectors.get("") {
        Some(kind) if schema.vectors.len() == 1 => vector_json(kind),
        _ => Value::Object(
            schema
                .vectors
                .iter()
                .map(|(name, kind)| (name.clone(), vector_json(kind)))
                .collect(),
        ),
    };
    let sparse: Map<String, Value> = schema
        .sparse_vectors
        .iter()
        .map(|(name, kind)| {
            let params = match kind.modifier {
                Modifier::Idf => json!({"modifier": "idf"}),
                _ => json!({}),
            };
            (name.clone(), params)
        })
        .collect();
    let first = schema.vectors.values().next().map(VectorKind::index);
    let first = first.unwrap_or_default();
    let payload_schema: Map<String, Value> = info
        .payload_indexes
        .iter()
        .map(|(key, kind)| {
            (
                key.clone(),
                json!({
                    "data_type": field_kind_name(*kind),
                    "points": indexed.get(key).copied().unwrap_or(0),
                }),
            )
        })
        .collect();
    let indexed_vectors: u64 = info
        .segments
        .iter()
        .filter(|s| s.sealed)
        .map(|s| s.rows - s.deleted)
        .sum();
    let c = &info.config;
    let mut params = json!({
        "vectors": vectors,
        "shard_number": 1,
        "replication_factor": 1,
        "write_consistency_factor": 1,
        "on_disk_payload": false,
    });
    // Qdrant leaves `sparse_vectors` out when a collection has none.
    if !sparse.is_empty()
        && let Some(p) = params.as_object_mut()
    {
        p.insert("sparse_vectors".into(), Value::Object(sparse));
    }
    json!({
        "status": "green",
        "optimizer_status": "ok",
        "indexed_vectors_count": indexed_vectors,
        "points_count": info.points,
        "segments_count": info.segments.len(),
        "config": {
            "params": params,
            "hnsw_config": hnsw_json(first),
            "optimizer_config": {
                "deleted_threshold": c.compact_deleted_fraction,
                "vacuum_min_vector_number": 0,
                "default_segment_number": 0,
                "max_segment_size": c.max_segment_bytes / 1024,
                "memmap_threshold": null,
                "indexing_threshold": c.seal_threshold_bytes / 1024,
                "flush_interval_sec": 0,
                "max_optimization_threads": 1,
            },
            "wal_config": {"wal_capacity_mb": 64, "wal_segments_ahead": 0},
            "quantization_config": quantization_json(first),
        },
        "payload_schema": payload_schema,
    })
}

/// `PUT /collections/{name}/index`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFieldIndex {
    field_name: String,
    field_schema: Option<Value>,
}

fn field_kind(v: Option<&Value>) -> ApiResult<FieldIndexKind> {
    let name = match v {
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request(
                "Wrong input: field_schema: give the index type: keyword, integer, float or bool",
            ));
        }
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(o)) => o.get("type").and_then(Value::as_str).unwrap_or(""),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Format error in JSON body: field_schema: expected a type name or an object with `type`, found {}",
                kind(other)
            )));
        }
    };
    match name {
        "keyword" | "uuid" => Ok(FieldIndexKind::Keyword),
        "integer" => Ok(FieldIndexKind::Integer),
        "float" => Ok(FieldIndexKind::Float),
        "bool" => Ok(FieldIndexKind::Bool),
        other => Err(ApiError::bad_request(format!(
            "Wrong input: field_schema: index type `{other}` is not supported; use keyword, integer, float or bool"
        ))),
    }
}

#[utoipa::path(
    put,
    path = "/collections/{name}/index",
    tag = "collections",
    summary = "Create a payload field index",
    request_body = CreateFieldIndex,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)"), ("wait" = Option<bool>, Query, description = "Report `completed` (true) or `acknowledged`; the write is durable before the answer either way")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn create_index(
    State(app): State<AppState>,
    Path(name): Path<String>,
    started: Started,
    Body(req): Body<CreateFieldIndex>,
) -> ApiResult<Reply> {
    let kind = field_kind(req.field_schema.as_ref())?;
    let c = app.collection(&name)?;
    app.blocking(move || {
        c.create_field_index(&req.field_name, kind)?;
        Ok(())
    })
    .await?;
    Ok(Reply::ok(
        &started,
        crate::routes::points::completed(0, true),
    ))
}

#[utoipa::path(
    delete,
    path = "/collections/{name}/index/{field}",
    tag = "collections",
    summary = "Delete a payload field index",
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)"), ("field" = String, Path, description = "Payload key"), ("wait" = Option<bool>, Query, description = "Report `completed` (true) or `acknowledged`; the write is durable before the answer either way")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn delete_index(
    State(app): State<AppState>,
    Path((name, field)): Path<(String, String)>,
    started: Started,
) -> ApiResult<Reply> {
    let c = app.collection(&name)?;
    app.blocking(move || {
        c.drop_field_index(&field)?;
        Ok(())
    })
    .await?;
    Ok(Reply::ok(
        &started,
        crate::routes::points::completed(0, true),
    ))
}

/// `PATCH /collections/{name}`: the graph and optimizer settings Quiver has; they apply to
/// segments built from now on.
#[allow(
    dead_code,
    reason = "members accepted for compatibility and ignored: docs/server.md"
)]
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCollection {
    vectors: Option<Value>,
    optimizers_config: Option<OptimizersDiff>,
    params: Option<Value>,
    hnsw_config: Option<HnswDiff>,
    quantization_config: Option<Value>,
    sparse_vectors: Option<Value>,
    strict_mode_config: Option<Value>,
    metadata: Option<Value>,
}

#[utoipa::path(
    patch,
    path = "/collections/{name}",
    tag = "collections",
    summary = "Update HNSW and optimizer settings",
    request_body = UpdateCollection,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn update(
    State(app): State<AppState>,
    Path(name): Path<String>,
    started: Started,
    Body(req): Body<UpdateCollection>,
) -> ApiResult<Reply> {
    for (present, what) in [
        (req.vectors.as_ref(), "vectors"),
        (req.quantization_config.as_ref(), "quantization_config"),
        (req.sparse_vectors.as_ref(), "sparse_vectors"),
    ] {
        if present.is_some_and(|v| !v.is_null()) {
            return Err(ApiError::bad_request(format!(
                "Wrong input: {what}: changing this on an existing collection is not supported; create a new collection and switch an alias to it"
            )));
        }
    }
    let mut patch = quiver_engine::SettingsPatch::default();
    if let Some(h) = &req.hnsw_config {
        patch.hnsw_m = h.m;
        patch.hnsw_ef_construction = h.ef_construct;
    }
    let c = app.collection(&name)?;
    if let Some(o) = &req.optimizers_config {
        let mut config = c.config();
        apply_optimizers(&mut config, o)?;
        patch.seal_threshold_bytes = Some(config.seal_threshold_bytes);
        patch.compact_deleted_fraction = Some(config.compact_deleted_fraction);
        patch.max_segment_bytes = Some(config.max_segment_bytes);
    }
    app.blocking(move || Ok(c.update_settings(&patch)?)).await?;
    Ok(Reply::ok(&started, true))
}
