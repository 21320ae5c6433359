use quiver_embed_api::BoxError;
use quiver_storage::PointId;
use std::path::PathBuf;

/// Errors of the engine. User mistakes, missing things, corruption and I/O are distinct
/// variants and each names what it is about.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] quiver_storage::Error),
    #[error("collection `{collection}`: cannot build an index: {error}")]
    Index {
        collection: String,
        error: quiver_index::Error,
    },
    #[error("collection `{name}` does not exist")]
    CollectionNotFound { name: String },
    #[error(
        "collection `{name}` could not be opened ({reason}); drop it, or repair its files and reopen"
    )]
    CollectionDamaged { name: String, reason: String },
    #[error("collection `{name}` already exists")]
    CollectionExists { name: String },
    /// Renaming an alias that does not exist.
    #[error("alias `{alias}` does not exist")]
    AliasNotFound { alias: String },
    /// Creating a collection under a name an alias has.
    #[error(
        "`{alias}` is an alias of collection `{collection}`: delete the alias before creating a collection of that name"
    )]
    AliasExists { alias: String, collection: String },
    #[error("invalid collection name `{name}`: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("invalid schema: {reason}")]
    InvalidSchema { reason: String },
    #[error(
        "{}: vector `{vector}` has dimension {got}, the collection expects {expected}",
        at(collection, point)
    )]
    DimensionMismatch {
        collection: String,
        point: Option<PointId>,
        vector: String,
        expected: usize,
        got: usize,
    },
    #[error(
        "{}: vector `{vector}` has a non-finite value ({value}) at index {index}",
        at(collection, point)
    )]
    NonFinite {
        collection: String,
        point: Option<PointId>,
        vector: String,
        index: usize,
        value: f32,
    },
    /// A sparse vector that breaks the rules (equal lengths, distinct indices, finite
    /// values), or a vector given in the wrong form (dense for a sparse one or the reverse).
    #[error("{}: vector `{vector}`: {reason}", at(collection, point))]
    InvalidSparseVector {
        collection: String,
        point: Option<PointId>,
        vector: String,
        reason: String,
    },
    /// A multi-vector that breaks the rules (tokens of the declared dimension, finite
    /// values, between one and `max_tokens` tokens), or one given in the wrong form; the
    /// reason names the token and value.
    #[error("{}: multi-vector `{vector}`: {reason}", at(collection, point))]
    InvalidMultiVector {
        collection: String,
        point: Option<PointId>,
        vector: String,
        reason: String,
    },
    #[error("collection `{collection}` has no vector named `{name}` (it has: {known})")]
    UnknownVector {
        collection: String,
        name: String,
        known: String,
    },
    #[error("{}: vector `{name}` is missing (every point needs all of the collection's vectors)", at(collection, &Some(*point)))]
    MissingVector {
        collection: String,
        point: PointId,
        name: String,
    },
    /// An update named a point that does not exist (Qdrant answers 404 "No point with id X
    /// found").
    #[error("collection `{collection}`: no point with id {point} found")]
    PointNotFound { collection: String, point: PointId },
    /// The text embedder failed (model files missing, a text it could not take), or returned
    /// something other than it promised.
    #[error("collection `{collection}`, vector `{vector}`: cannot embed text: {error}")]
    Embed {
        collection: String,
        vector: String,
        /// The embedder's own error (downcast it to, for the built-in model,
        /// `quiver_embed::Error`), or the engine's account of a broken promise.
        error: BoxError,
    },
    /// A text needs embedding but the database was opened without a text embedder
    /// ([`crate::DatabaseOptions::text_embedder`]).
    #[error(
        "collection `{collection}`, vector `{vector}`: no text model is configured to embed text with `{model}` (open the database with DatabaseOptions::text_embedder set, or give the vector with each point)"
    )]
    NoTextEmbedder {
        collection: String,
        vector: String,
        model: String,
    },
    /// The vector was declared as embedded by one model and the database's text embedder is
    /// another: their vectors would not compare.
    #[error(
        "collection `{collection}`, vector `{vector}`: declared as embedded by text model `{declared}`, but this database's text embedder is `{configured}`"
    )]
    TextModelMismatch {
        collection: String,
        vector: String,
        declared: String,
        configured: String,
    },
    #[error("invalid request on collection `{collection}`: {message}")]
    InvalidRequest { collection: String, message: String },
    #[error("corrupt data in {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("collection `{collection}` is unavailable: {reason}")]
    Unavailable { collection: String, reason: String },
}

fn at(collection: &str, point: &Option<PointId>) -> String {
    match point {
        Some(p) => format!("collection `{collection}`, point {p}"),
        None => format!("collection `{collection}`"),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
