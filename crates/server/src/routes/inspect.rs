//! Quiver's own read-only endpoints, under `/quiver/`: what Qdrant's collection info has no
//! member for (segments with their sizes and graphs, disk and memory use, the maintenance
//! thread's state), how a filter would be answered (`explain`), and what the presented key may
//! do. The dashboard reads them; any client may.

use crate::app::AppState;
use crate::auth::Access;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::{Body, Reply, Started};
use axum::Extension;
use axum::extract::{Path, State};
use quiver_engine::{
    CollectionInfo, Distance, IndexKind, MIN_GRAPH_ROWS, MaintenanceStatus, Modifier, Quantization,
    VectorKind,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `GET /quiver/collections/{name}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Details {
    name: String,
    points: u64,
    /// Dense vectors by name (`""`: the unnamed one).
    vectors: BTreeMap<String, VectorDetails>,
    /// Sparse vectors by name, with their modifier (`idf` or `none`).
    sparse_vectors: BTreeMap<String, &'static str>,
    /// Oldest first; the mutable segment last.
    segments: Vec<SegmentDetails>,
    /// Sealed segments with fewer rows are searched exactly and get no graph.
    min_graph_rows: usize,
    /// Segments, manifest and log, in bytes.
    disk_bytes: u64,
    wal_bytes: u64,
    /// Held in memory by the mutable segments (rows not yet sealed).
    memory_bytes: u64,
    /// Dense vectors of sealed segments, memory-mapped (in memory as the OS keeps them).
    mapped_bytes: u64,
    /// Payload field indexes: key → keyword, integer, float or bool.
    payload_indexes: BTreeMap<String, &'static str>,
    maintenance: Maintenance,
    last_seq: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
struct VectorDetails {
    size: usize,
    distance: &'static str,
    /// `hnsw` or `flat` (exact search).
    index: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    m: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ef_construct: Option<usize>,
    /// What a graph search traverses on: `none` (the `f32` rows), `lvq8`, `lvq4`, `lvq4x8`.
    quantization: &'static str,
    /// The payload field the built-in model embeds this vector from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    embedded_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct SegmentDetails {
    id: u64,
    sealed: bool,
    rows: u64,
    deleted: u64,
    /// Mutable: bytes in memory; sealed: bytes of its dense vectors (mapped).
    bytes: u64,
    /// Dense vectors of the segment with a graph.
    graphs: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Maintenance {
    /// Segments frozen and waiting for their seal.
    frozen: usize,
    /// A seal or merge is running now.
    working: bool,
    /// Why the collection stopped accepting writes, if one failed.
    failed: Option<String>,
}

fn distance_name(d: Distance) -> &'static str {
    match d {
        Distance::Cosine => "Cosine",
        Distance::Dot => "Dot",
        Distance::Euclid => "Euclid",
    }
}

fn vector_details(kind: &VectorKind) -> VectorDetails {
    let (index, m, ef_construct, quantization) = match kind.index() {
        IndexKind::Hnsw {
            m,
            ef_construction,
            quantization,
        } => ("hnsw", Some(m), Some(ef_construction), quantization),
        IndexKind::Flat => ("flat", None, None, Quantization::None),
        _ => ("other", None, None, Quantization::None),
    };
    let embedding = kind.embedding();
    VectorDetails {
        size: kind.dim(),
        distance: distance_name(kind.distance()),
        index,
        m,
        ef_construct,
        quantization: quantization.name(),
        embedded_from: embedding.as_ref().map(|e| e.field.clone()),
        model: embedding.map(|e| e.model),
    }
}

fn details(info: CollectionInfo, maintenance: MaintenanceStatus) -> Details {
    let (mut memory_bytes, mut mapped_bytes) = (0, 0);
    let segments = info
        .segments
        .iter()
        .map(|s| {
            if s.sealed {
                mapped_bytes += s.bytes;
            } else {
                memory_bytes += s.bytes;
            }
            SegmentDetails {
                id: s.id,
                sealed: s.sealed,
                rows: s.rows,
                deleted: s.deleted,
                bytes: s.bytes,
                graphs: s.graphs,
            }
        })
        .collect();
    Details {
        points: info.points,
        vectors: info
            .schema
            .vectors
            .iter()
            .map(|(name, kind)| (name.clone(), vector_details(kind)))
            .collect(),
        sparse_vectors: info
            .schema
            .sparse_vectors
            .iter()
            .map(|(name, kind)| {
                let modifier = match kind.modifier {
                    Modifier::Idf => "idf",
                    _ => "none",
                };
                (name.clone(), modifier)
            })
            .collect(),
        segments,
        min_graph_rows: MIN_GRAPH_ROWS,
        disk_bytes: info.disk_bytes,
        wal_bytes: info.wal_bytes,
        memory_bytes,
        mapped_bytes,
        payload_indexes: info
            .payload_indexes
            .iter()
            .map(|(k, v)| (k.clone(), super::collections::field_kind_name(*v)))
            .collect(),
        maintenance: Maintenance {
            frozen: maintenance.frozen,
            working: maintenance.working,
            failed: maintenance.failed,
        },
        last_seq: info.last_seq,
        name: info.name,
    }
}

#[utoipa::path(
    get,
    path = "/quiver/collections/{name}",
    tag = "quiver",
    summary = "Segments, disk and memory use, maintenance status (Quiver only)",
    params(("name" = String, Path, description = "Collection name or alias")),
    responses((status = 200, description = "Qdrant's envelope around `Details`", body = Details), (status = 401, description = "No or wrong API key"), (status = 404, description = "No such collection or alias"))
)]
pub async fn collection(
    State(app): State<AppState>,
    Path(name): Path<String>,
    started: Started,
) -> ApiResult<Reply> {
    let c = app.collection(&name)?;
    let (info, maintenance) = app
        .blocking(move || Ok((c.info()?, c.maintenance_status())))
        .await?;
    Ok(Reply::ok(&started, details(info, maintenance)))
}

/// `POST /quiver/collections/{name}/explain`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// A filter in Qdrant's language, as `points/query` takes it.
    filter: Value,
}

#[derive(Serialize)]
struct Explained {
    /// One line per segment: rows, the estimate, candidates, how each condition is answered
    /// (field index or checked per point) and the search strategy of each vector.
    segments: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/quiver/collections/{name}/explain",
    tag = "quiver",
    summary = "How a filtered search would be answered, per segment (Quiver only; a read)",
    request_body = ExplainRequest,
    params(("name" = String, Path, description = "Collection name or alias")),
    responses((status = 200, description = "Qdrant's envelope around `{\"segments\": [line, ...]}`"), (status = 400, description = "A bad filter: the message names the position"), (status = 401, description = "No or wrong API key"), (status = 404, description = "No such collection or alias"))
)]
pub async fn explain(
    State(app): State<AppState>,
    Path(name): Path<String>,
    started: Started,
    Body(req): Body<ExplainRequest>,
) -> ApiResult<Reply> {
    let filter = convert::filter(Some(&req.filter), "filter")?
        .ok_or_else(|| ApiError::bad_request("Wrong input: filter: give a filter to explain"))?;
    let c = app.collection(&name)?;
    let text = app.blocking(move || Ok(c.explain(&filter)?)).await?;
    let segments = text.lines().map(str::to_string).collect();
    Ok(Reply::ok(&started, Explained { segments }))
}

#[derive(Serialize)]
struct AccessReply {
    /// `read-write` or `read-only`: what the presented key (or no key, on a server without
    /// keys) may do.
    access: &'static str,
    /// Whether the server asks for a key at all.
    keys_required: bool,
}

#[utoipa::path(
    get,
    path = "/quiver/access",
    tag = "quiver",
    summary = "What the presented API key may do (Quiver only)",
    responses((status = 200, description = "Qdrant's envelope around `{\"access\": \"read-write\" | \"read-only\", \"keys_required\": bool}`"), (status = 401, description = "No or wrong API key"))
)]
pub async fn access(
    State(app): State<AppState>,
    Extension(access): Extension<Access>,
    started: Started,
) -> ApiResult<Reply> {
    let access = match access {
        Access::ReadWrite => "read-write",
        Access::ReadOnly => "read-only",
    };
    Ok(Reply::ok(
        &started,
        AccessReply {
            access,
            keys_required: app.keys.enabled(),
        },
    ))
}
