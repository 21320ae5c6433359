//! Quiver's engine and embedded API.
//!
//! ```no_run
//! use quiver_engine::{Database, DatabaseOptions, Distance, Point, Schema, SearchRequest};
//! let db = Database::open("data", DatabaseOptions::default())?;
//! let docs = db.create_collection("docs", Schema::dense(3, Distance::Cosine), Default::default())?;
//! docs.upsert(vec![Point::new(1, vec![0.1, 0.2, 0.3])])?;
//! let hits = docs.search(&SearchRequest::new(vec![0.1, 0.2, 0.25], 10))?;
//! # Ok::<(), quiver_engine::Error>(())
//! ```
//!
//! A collection may declare a vector that a text model fills from a payload field
//! ([`VectorKind::text`]): upsert points with the text in their payload and no vector, and
//! turn a text query into a vector with [`Collection::embed_text`]. The engine does not link
//! a model: it embeds through the [`TextEmbedder`] given in
//! [`DatabaseOptions::text_embedder`] (the built-in all-MiniLM-L6-v2 is
//! `quiver_embed::LazyEmbedder`).
//!
//! A [`Database`] is a data directory; a [`Collection`] holds points (an id, named vectors, a
//! JSON payload). Writes are logged and (by default) fsynced before they return; see
//! `ARCHITECTURE.md` for the write and query paths.

mod aliases;
mod bm25;
mod collection;
mod database;
mod error;
mod fusion;
mod hybrid;
mod ops;
mod planner;
mod point;
mod schema;
mod segment;
mod text;
mod update;

pub use aliases::{ALIASES_KIND, AliasAction};
pub use collection::{
    Collection, CollectionInfo, CompactionReport, Durability, MaintenanceStatus, MemoryUsage,
    RecoveryReport, SegmentInfo,
};
pub use database::{DATA_DIR_KIND, Database, DatabaseOptions};
pub use error::{Error, Result};
pub use fusion::DEFAULT_RRF_K;
pub use hybrid::{Fusion, HybridQuery, QueryStage, Rank};
pub use point::{
    DEFAULT_EF, OrderValue, Payload, Point, QueryVector, Record, ScoredPoint, ScrollPage,
    SearchRequest, SparseVector, With,
};
pub use quiver_embed_api::{BoxError, TextEmbedder};
pub use quiver_filter::{Filter, IndexKind as FieldIndexKind};
pub use quiver_storage::PointId;
pub use schema::{
    Bm25, CollectionConfig, Comparator, DEFAULT_FILTER_SCAN_FRACTION, DEFAULT_MAX_TOKENS, Distance,
    IndexKind, LeanVec, LeanVecFit, LeanVecPrimary, LeanVecSecondary, MAX_DIM, MIN_GRAPH_ROWS,
    Modifier, Muvera, Quantization, Schema, SettingsPatch, SparseKind, TEXT_MODEL, TEXT_MODEL_DIM,
    TextEmbedding, VectorKind,
};
pub use update::{PayloadUpdate, PointSelector};
