//! Collection schemas: which vectors a point carries and how they are compared.
//!
//! Persisted as JSON in the manifest with an explicit `kind` tag per vector, so that new dense
//! kinds (multi-vector) can be added as new variants without touching stored ones. A manifest
//! naming a kind this build does not know fails to open with an error that says it may have
//! been written by a newer version. Sparse vectors have a map of their own
//! (`sparse_vectors`, as in Qdrant's collection config): they have no dimension and no row in
//! the dense vector files. Multi-vectors are a `VectorKind` instead: their row in the dense
//! vector files is their MUVERA encoding, which graphs index like any dense vector, and their
//! tokens are stored beside it.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How dense vectors are compared. Scores follow Qdrant: cosine and dot, higher is better;
/// euclid reports the distance, lower is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distance {
    /// Vectors are normalised at insert and searched by inner product.
    Cosine,
    Dot,
    Euclid,
}

impl Distance {
    pub fn parse(s: &str) -> Option<Distance> {
        match s.to_ascii_lowercase().as_str() {
            "cosine" | "cos" => Some(Distance::Cosine),
            "dot" | "ip" => Some(Distance::Dot),
            "euclid" | "euclidean" | "l2" => Some(Distance::Euclid),
            _ => None,
        }
    }

    pub(crate) fn metric(self) -> quiver_index::Metric {
        match self {
            Distance::Cosine | Distance::Dot => quiver_index::Metric::Dot,
            Distance::Euclid => quiver_index::Metric::L2,
        }
    }

    /// Internal "higher is better" score to the user-facing value.
    pub(crate) fn external(self, internal: f32) -> f32 {
        match self {
            Distance::Cosine | Distance::Dot => internal,
            Distance::Euclid => (-internal).max(0.0).sqrt(),
        }
    }

    /// Whether a user-facing score passes a score threshold (Qdrant's semantics).
    pub(crate) fn passes(self, score: f32, threshold: f32) -> bool {
        match self {
            Distance::Cosine | Distance::Dot => score >= threshold,
            Distance::Euclid => score <= threshold,
        }
    }
}

/// How sealed segments index a dense vector. The mutable segment is always searched exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum IndexKind {
    /// Exact search: every row is scored.
    #[default]
    Flat,
    /// An HNSW graph built when a segment is sealed (segments under
    /// [`MIN_GRAPH_ROWS`] rows are searched exactly instead).
    Hnsw {
        m: usize,
        ef_construction: usize,
        /// What the graph search scores while it traverses. Absent in manifests written
        /// before quantization existed: `None` (their segments have no codes).
        #[serde(default)]
        quantization: Quantization,
    },
}

/// Compact codes a graph search traverses on; the best candidates are then re-scored with
/// the `f32` rows, which stay stored, or with LVQ-4x8's residual codes (see
/// `quiver_index::lvq` and `quiver_index::lvq4`). Stored in the manifest by name: a build
/// that does not know a name refuses the collection (`docs/format.md`, schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Quantization {
    /// Traverse on the `f32` rows themselves.
    #[default]
    None,
    /// LVQ-8: one byte per dimension, scaled per row (a quarter of the memory traffic).
    Lvq8,
    /// LVQ-4: half a byte per dimension (an eighth of the traffic); the search re-scores its
    /// whole beam with the `f32` rows, since 4-bit scores order it loosely.
    Lvq4,
    /// LVQ-4x8: LVQ-4 codes for the traversal, plus the 4-bit codes' residual in 8 bits
    /// (1.5 bytes per dimension in all), on which the whole beam is re-scored: the `f32` rows
    /// are not read by a search. Scores are those of the two-level reconstruction, within
    /// `step / 510` per coordinate of the original.
    Lvq4x8,
    /// LeanVec: the graph is built and traversed on LVQ codes of the rows projected to
    /// `dims < dim` dimensions by a projection learned at seal time, and the whole beam is
    /// re-scored at full dimension (see [`LeanVec`]). Stored in the manifest as
    /// `{"leanvec": {...}}`.
    #[serde(rename = "leanvec")]
    LeanVec(LeanVec),
}

/// LeanVec storage of a vector (`quiver_index::leanvec`): what the projection is learned
/// from, its output dimension, and the codes on each side of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeanVec {
    /// Dimensions `d'` of the projected rows, `1 ≤ d' ≤ dim`.
    pub dims: usize,
    pub fit: LeanVecFit,
    /// The codes of the projected rows the graph is built and traversed on.
    pub primary: LeanVecPrimary,
    /// What the beam is re-scored on, at full dimension.
    pub secondary: LeanVecSecondary,
}

/// What a LeanVec projection is learned from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeanVecFit {
    /// LeanVec-ID: the base rows alone (queries look like them).
    Id,
    /// LeanVec-OOD: the base rows and a sample of queries
    /// ([`crate::Collection::set_query_sample`]); without a sample, as ID.
    Ood,
}

/// Codes of the projected rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeanVecPrimary {
    Lvq8,
    Lvq4,
}

/// What the beam is re-scored on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeanVecSecondary {
    /// LVQ-8 codes of the full rows (a quarter of the `f32` rows; the rows are not read).
    Lvq8,
    /// The `f32` rows themselves.
    F32,
}

impl Quantization {
    /// Every name [`Quantization::parse`] accepts, for error messages.
    pub const NAMES: &str = "none, lvq8, lvq4, lvq4x8, leanvec-id:<dims> or leanvec-ood:<dims> \
        (optionally followed by :<primary lvq8|lvq4>:<secondary lvq8|f32>, default :lvq8:lvq8)";

    pub fn parse(s: &str) -> Option<Quantization> {
        let s = s.to_ascii_lowercase();
        match s.as_str() {
            "none" | "f32" => Some(Quantization::None),
            "lvq8" | "lvq" => Some(Quantization::Lvq8),
            "lvq4" => Some(Quantization::Lvq4),
            "lvq4x8" => Some(Quantization::Lvq4x8),
            _ => LeanVec::parse(&s).map(Quantization::LeanVec),
        }
    }

    /// The kind's name: what [`Quantization::parse`] reads back for every kind but LeanVec,
    /// whose parameters follow the name in the [`std::fmt::Display`] form.
    pub fn name(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::Lvq8 => "lvq8",
            Quantization::Lvq4 => "lvq4",
            Quantization::Lvq4x8 => "lvq4x8",
            Quantization::LeanVec(_) => "leanvec",
        }
    }
}

/// The form [`Quantization::parse`] reads back, parameters included.
impl std::fmt::Display for Quantization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quantization::LeanVec(l) => write!(f, "{l}"),
            other => f.write_str(other.name()),
        }
    }
}

impl LeanVec {
    /// `leanvec-id:<dims>` or `leanvec-ood:<dims>`, optionally followed by
    /// `:<primary>:<secondary>` (default `:lvq8:lvq8`). Lower case.
    fn parse(s: &str) -> Option<LeanVec> {
        let mut parts = s.split(':');
        let fit = match parts.next()? {
            "leanvec-id" => LeanVecFit::Id,
            "leanvec-ood" => LeanVecFit::Ood,
            _ => return None,
        };
        let dims = parts.next()?.parse().ok()?;
        let primary = match parts.next() {
            None | Some("lvq8") => LeanVecPrimary::Lvq8,
            Some("lvq4") => LeanVecPrimary::Lvq4,
            Some(_) => return None,
        };
        let secondary = match parts.next() {
            None | Some("lvq8") => LeanVecSecondary::Lvq8,
            Some("f32") => LeanVecSecondary::F32,
            Some(_) => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(LeanVec {
            dims,
            fit,
            primary,
            secondary,
        })
    }
}

impl std::fmt::Display for LeanVec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fit = match self.fit {
            LeanVecFit::Id => "id",
            LeanVecFit::Ood => "ood",
        };
        let primary = match self.primary {
            LeanVecPrimary::Lvq8 => "lvq8",
            LeanVecPrimary::Lvq4 => "lvq4",
        };
        let secondary = match self.secondary {
            LeanVecSecondary::Lvq8 => "lvq8",
            LeanVecSecondary::F32 => "f32",
        };
        write!(f, "leanvec-{fit}:{}:{primary}:{secondary}", self.dims)
    }
}

/// Segments smaller than this are searched exactly even when the vector has a graph index:
/// a scan of a few thousand rows is as fast as a graph search and needs no build.
pub const MIN_GRAPH_ROWS: usize = 2048;

impl IndexKind {
    /// An HNSW index traversing LVQ-8 codes (the default: see BENCHMARKS.md).
    pub fn hnsw(m: usize, ef_construction: usize) -> IndexKind {
        IndexKind::Hnsw {
            m,
            ef_construction,
            quantization: Quantization::Lvq8,
        }
    }
}

/// One named vector of a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum VectorKind {
    /// A fixed-dimension `f32` vector.
    Dense {
        dim: usize,
        distance: Distance,
        /// Absent in manifests written before indexes existed: flat.
        #[serde(default)]
        index: IndexKind,
    },
    /// A dense vector a text model computes from text: at upsert, a point that does not
    /// carry the vector gets it by embedding the string in its payload field `field` with the
    /// database's [`crate::TextEmbedder`]; queries can be text too
    /// ([`crate::Collection::embed_text`]). `dim` may be below the model's: the embedder
    /// shortens its vectors (for the built-in model: the first `dim` values, rescaled to unit
    /// length; Matryoshka truncation).
    /// Stored like `Dense`; a kind of its own so that a build without it refuses the
    /// collection instead of dropping the text setting.
    Text {
        dim: usize,
        distance: Distance,
        #[serde(default)]
        index: IndexKind,
        /// The model, as [`crate::TextEmbedder::model`] names it; [`TEXT_MODEL`] for the
        /// built-in one.
        model: String,
        /// The payload field holding the text.
        field: String,
    },
    /// A list of token vectors per point (late interaction, Qdrant's `multivector_config`),
    /// compared by [`Comparator::MaxSim`]. The segment's dense row for it is the token
    /// list's MUVERA encoding ([`Muvera`]), which the vector's `index` indexes like any dense
    /// vector; the tokens are stored beside it (`multi-<j>`). Collections with one are
    /// written as manifest version 4, which older builds refuse.
    MultiVector {
        /// Dimension of every token vector.
        dim: usize,
        /// Cosine normalises every token; euclid is not supported.
        distance: Distance,
        #[serde(default)]
        comparator: Comparator,
        /// Most token vectors a point may carry.
        #[serde(default = "default_max_tokens")]
        max_tokens: usize,
        #[serde(default)]
        muvera: Muvera,
        #[serde(default)]
        index: IndexKind,
    },
}

/// How a multi-vector's token lists are compared (Qdrant's `comparator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Comparator {
    /// Σ over query tokens of the best inner product with any of the point's tokens.
    #[default]
    MaxSim,
}

/// Default of a multi-vector's `max_tokens`: MiniLM's longest input is 256 word pieces and
/// ColBERT pads documents to 180-300; ColPali pages have 1,030 patches. Qdrant has no limit.
pub const DEFAULT_MAX_TOKENS: usize = 2048;

/// Largest `max_tokens` accepted: one point's tokens must fit a WAL record.
pub const MAX_MAX_TOKENS: usize = 1 << 16;

fn default_max_tokens() -> usize {
    DEFAULT_MAX_TOKENS
}

/// MUVERA's parameters for a multi-vector (`quiver_index::multi::fde`). All but `rescore`
/// fix the stored encodings and cannot change after creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Muvera {
    /// SimHash bits per repetition (2^k_sim buckets).
    pub k_sim: u32,
    /// Width of each bucket's block (0: the token dimension).
    pub d_proj: usize,
    pub repetitions: usize,
    /// Width of the final Count-Sketch projection (0: none).
    pub d_final: usize,
    /// Seed of the random draws.
    pub seed: u64,
    /// How many graph candidates a search re-scores by exact MaxSim (at least `k`).
    pub rescore: usize,
}

impl Default for Muvera {
    /// Provisional: k_sim 3 suits MiniLM's short texts (10-20 tokens: more buckets stay
    /// mostly empty); see BENCHMARKS.md for the measured table.
    fn default() -> Self {
        Muvera {
            k_sim: 3,
            d_proj: 16,
            repetitions: 20,
            d_final: 0,
            seed: 0x4D55_5645_5241,
            rescore: 100,
        }
    }
}

impl Muvera {
    pub fn fde_params(&self) -> quiver_index::multi::FdeParams {
        quiver_index::multi::FdeParams {
            k_sim: self.k_sim,
            d_proj: self.d_proj,
            repetitions: self.repetitions,
            d_final: self.d_final,
            seed: self.seed,
        }
    }
}

/// How a [`VectorKind::Text`] vector is computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextEmbedding {
    /// The model, as [`crate::TextEmbedder::model`] names it; [`TEXT_MODEL`] for the
    /// built-in one.
    pub model: String,
    /// The payload field holding the text.
    pub field: String,
}

/// The built-in text model's name (the `quiver-embed` crate's `LazyEmbedder`; its tests check
/// that the two agree). The engine does not link the model: see [`crate::TextEmbedder`].
pub const TEXT_MODEL: &str = "all-MiniLM-L6-v2";

/// Dimensions of the built-in text model's vectors.
pub const TEXT_MODEL_DIM: usize = 384;

impl TextEmbedding {
    /// The built-in model reading payload field `field`.
    pub fn new(field: &str) -> TextEmbedding {
        TextEmbedding {
            model: TEXT_MODEL.to_string(),
            field: field.to_string(),
        }
    }
}

impl VectorKind {
    /// A dense vector searched exactly.
    pub fn dense(dim: usize, distance: Distance) -> VectorKind {
        VectorKind::Dense {
            dim,
            distance,
            index: IndexKind::Flat,
        }
    }

    /// A dense vector with the given index.
    pub fn dense_indexed(dim: usize, distance: Distance, index: IndexKind) -> VectorKind {
        VectorKind::Dense {
            dim,
            distance,
            index,
        }
    }

    /// A dense vector the built-in text model ([`TEXT_MODEL`]) fills from payload field
    /// `field`, with [`TEXT_MODEL_DIM`] dimensions or fewer (Matryoshka truncation).
    pub fn text(field: &str, dim: usize, distance: Distance, index: IndexKind) -> VectorKind {
        VectorKind::Text {
            dim,
            distance,
            index,
            model: TEXT_MODEL.to_string(),
            field: field.to_string(),
        }
    }

    /// A multi-vector of `dim`-dimensional tokens compared by MaxSim, with default limits
    /// and MUVERA settings.
    pub fn multi(dim: usize, distance: Distance, index: IndexKind) -> VectorKind {
        VectorKind::MultiVector {
            dim,
            distance,
            comparator: Comparator::MaxSim,
            max_tokens: DEFAULT_MAX_TOKENS,
            muvera: Muvera::default(),
            index,
        }
    }

    /// For a multi-vector: its token dimension, token limit and MUVERA settings.
    pub fn multi_config(&self) -> Option<(usize, usize, Muvera)> {
        match self {
            VectorKind::MultiVector {
                dim,
                max_tokens,
                muvera,
                ..
            } => Some((*dim, *max_tokens, *muvera)),
            _ => None,
        }
    }

    /// How the vector is computed from text, if it is.
    pub fn embedding(&self) -> Option<TextEmbedding> {
        match self {
            VectorKind::Dense { .. } | VectorKind::MultiVector { .. } => None,
            VectorKind::Text { model, field, .. } => Some(TextEmbedding {
                model: model.clone(),
                field: field.clone(),
            }),
        }
    }

    pub fn index(&self) -> IndexKind {
        match self {
            VectorKind::Dense { index, .. }
            | VectorKind::Text { index, .. }
            | VectorKind::MultiVector { index, .. } => *index,
        }
    }

    /// Values of the vector's row in a segment: a dense vector's dimension, a
    /// multi-vector's MUVERA encoding's (0 if its parameters make none, which
    /// [`Schema::validate`] refuses). A multi-vector's token dimension is in
    /// [`VectorKind::multi_config`].
    pub fn dim(&self) -> usize {
        match self {
            VectorKind::Dense { dim, .. } | VectorKind::Text { dim, .. } => *dim,
            VectorKind::MultiVector { dim, muvera, .. } => {
                muvera.fde_params().output_dim(*dim).unwrap_or(0)
            }
        }
    }

    /// How rows are compared: for a multi-vector, its tokens (and, as inner products, its
    /// encodings).
    pub fn distance(&self) -> Distance {
        match self {
            VectorKind::Dense { distance, .. }
            | VectorKind::Text { distance, .. }
            | VectorKind::MultiVector { distance, .. } => *distance,
        }
    }

    fn index_mut(&mut self) -> &mut IndexKind {
        match self {
            VectorKind::Dense { index, .. }
            | VectorKind::Text { index, .. }
            | VectorKind::MultiVector { index, .. } => index,
        }
    }
}

/// How a sparse vector's query values are weighted (Qdrant's `modifier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Modifier {
    /// Query values are used as they are.
    #[default]
    None,
    /// Each query value is multiplied by its index's inverse document frequency over the
    /// collection's live points, Qdrant's `ln(1 + (N − n + 0.5) / (n + 0.5))` (N points, n
    /// of them holding the index): with term-frequency values this is BM25.
    Idf,
}

/// One named sparse vector of a collection (Qdrant's `sparse_vectors` entry). Its own map in
/// the schema, not a [`VectorKind`]: dense vectors have a dimension and a row in every
/// vector file, sparse ones neither.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SparseKind {
    #[serde(default)]
    pub modifier: Modifier,
    /// Set for a BM25 vector, which the engine fills from a payload text field (see
    /// [`Bm25`]); its modifier is then [`Modifier::Idf`]. Absent from the manifest otherwise;
    /// a manifest holding it is version 4 (builds without BM25 refuse the collection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bm25: Option<Bm25>,
}

impl SparseKind {
    /// A sparse vector with the given modifier.
    pub fn with_modifier(modifier: Modifier) -> SparseKind {
        SparseKind {
            modifier,
            bm25: None,
        }
    }

    /// A BM25 vector filled from payload field `field`.
    pub fn bm25(bm25: Bm25) -> SparseKind {
        SparseKind {
            modifier: Modifier::Idf,
            bm25: Some(bm25),
        }
    }
}

/// A BM25 vector: at upsert, a point that does not carry it gets it by analysing the text in
/// its payload field `field` (`quiver_analyzer`: words, lowercase, stop words if
/// `stop_words`, Snowball stems in `language`) into term ids with their counts in the text;
/// the row's length is the sum of its counts. A search scores
/// `Σ idf(t) · q_t · tf·(k1+1) / (tf + k1·(1 − b + b·dl/avgdl))` with the collection's live
/// statistics at that moment (see `collection/bm25.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bm25 {
    /// The payload field holding the text.
    pub field: String,
    /// The stemmer's language, as [`quiver_analyzer::Language::parse`] reads it.
    #[serde(default = "default_language")]
    pub language: String,
    /// Whether the language's stop words are dropped (a list exists for English only).
    #[serde(default = "default_true")]
    pub stop_words: bool,
    #[serde(default = "default_k1")]
    pub k1: f32,
    #[serde(default = "default_b")]
    pub b: f32,
}

fn default_language() -> String {
    "english".into()
}

fn default_true() -> bool {
    true
}

fn default_k1() -> f32 {
    1.2
}

fn default_b() -> f32 {
    0.75
}

impl Bm25 {
    /// English, stop words dropped, k1 = 1.2, b = 0.75, reading payload field `field`.
    pub fn new(field: &str) -> Bm25 {
        Bm25 {
            field: field.to_string(),
            language: default_language(),
            stop_words: true,
            k1: default_k1(),
            b: default_b(),
        }
    }

    /// The analyzer this vector's texts and queries go through.
    pub fn analyzer(&self) -> std::result::Result<quiver_analyzer::Analyzer, String> {
        let language = quiver_analyzer::Language::parse(&self.language).ok_or_else(|| {
            quiver_analyzer::Error::UnknownLanguage {
                name: self.language.clone(),
            }
            .to_string()
        })?;
        quiver_analyzer::Analyzer::new(language, self.stop_words).map_err(|e| e.to_string())
    }

    pub(crate) fn params(&self) -> quiver_index::sparse::bm25::Bm25Params {
        quiver_index::sparse::bm25::Bm25Params {
            k1: f64::from(self.k1),
            b: f64::from(self.b),
        }
    }

    fn validate(&self, name: &str) -> Result<()> {
        let invalid = |reason: String| {
            Err(Error::InvalidSchema {
                reason: format!("bm25 vector `{name}`: {reason}"),
            })
        };
        if self.field.is_empty() {
            return invalid("the text payload field name is empty".into());
        }
        if !(self.k1.is_finite() && (0.0..=1000.0).contains(&self.k1)) {
            return invalid(format!("k1 = {} must be between 0 and 1000", self.k1));
        }
        if !(self.b.is_finite() && (0.0..=1.0).contains(&self.b)) {
            return invalid(format!("b = {} must be between 0 and 1", self.b));
        }
        if let Err(reason) = self.analyzer() {
            return invalid(reason);
        }
        Ok(())
    }
}

/// The vectors of a collection, by name. The name `""` is the unnamed default vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    pub vectors: BTreeMap<String, VectorKind>,
    /// Sparse vectors by name (no name is both dense and sparse). Absent from the manifest
    /// when empty; a manifest holding it is written as version 3 (see
    /// [`Schema::manifest_version`]), which builds without sparse vectors refuse.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sparse_vectors: BTreeMap<String, SparseKind>,
}

/// Largest dimension accepted (Qdrant's limit).
pub const MAX_DIM: usize = 65_536;

impl Schema {
    /// A schema with one unnamed dense vector.
    pub fn dense(dim: usize, distance: Distance) -> Schema {
        Schema {
            vectors: BTreeMap::from([(String::new(), VectorKind::dense(dim, distance))]),
            sparse_vectors: BTreeMap::new(),
        }
    }

    /// Adds sparse vector `name`.
    pub fn with_sparse(mut self, name: &str, kind: SparseKind) -> Schema {
        self.sparse_vectors.insert(name.to_string(), kind);
        self
    }

    /// The manifest format version that holds this schema: 4 with multi-vectors or a BM25
    /// vector, 3 with other sparse vectors (builds reading only up to an older version refuse
    /// the collection as written by a newer version, instead of failing on the first upsert
    /// they cannot decode), else 2.
    pub(crate) fn manifest_version(&self) -> u32 {
        if self.vectors.values().any(|k| k.multi_config().is_some())
            || self.sparse_vectors.values().any(|k| k.bm25.is_some())
        {
            4
        } else if self.sparse_vectors.is_empty() {
            2
        } else {
            3
        }
    }

    /// Position of a multi-vector among the multi-vectors (the order of `multi-<j>` files).
    pub(crate) fn multi_position(&self, name: &str) -> Option<usize> {
        self.multi_vectors().position(|(k, _)| k == name)
    }

    /// The multi-vectors in schema order, with their position among all vectors.
    pub(crate) fn multi_vectors(&self) -> impl Iterator<Item = (&String, usize)> + '_ {
        self.vectors
            .iter()
            .enumerate()
            .filter(|(_, (_, k))| k.multi_config().is_some())
            .map(|(i, (name, _))| (name, i))
    }

    /// Token dimensions of the multi-vectors, in schema order.
    pub(crate) fn multi_dims(&self) -> Vec<usize> {
        self.vectors
            .values()
            .filter_map(|k| k.multi_config().map(|(dim, ..)| dim))
            .collect()
    }

    /// Position of a sparse vector among the sparse vectors (the order of `sparse-<j>` files).
    pub(crate) fn sparse_position(&self, name: &str) -> Option<usize> {
        self.sparse_vectors.keys().position(|k| k == name)
    }

    /// Checks what holds whatever the database: at least one vector, dimensions, graph
    /// parameters, names, and a text vector's model and field names not empty. That a text
    /// vector's model is the database's and at most as wide is checked by
    /// [`crate::Database::create_collection`].
    pub fn validate(&self) -> Result<()> {
        if self.vectors.is_empty() && self.sparse_vectors.is_empty() {
            return Err(Error::InvalidSchema {
                reason: "a collection needs at least one vector".into(),
            });
        }
        for (name, kind) in &self.sparse_vectors {
            if let Some(bm25) = &kind.bm25 {
                bm25.validate(name)?;
                if kind.modifier != Modifier::Idf {
                    return Err(Error::InvalidSchema {
                        reason: format!(
                            "bm25 vector `{name}` weighs terms by IDF: its modifier must be idf"
                        ),
                    });
                }
            }
            if self.vectors.contains_key(name) {
                return Err(Error::InvalidSchema {
                    reason: format!("`{name}` is declared both as a dense and a sparse vector"),
                });
            }
            if name.len() > 255 || name.chars().any(char::is_control) {
                return Err(Error::InvalidSchema {
                    reason: format!(
                        "sparse vector name {name:?} is longer than 255 bytes or has control characters"
                    ),
                });
            }
        }
        for (name, kind) in &self.vectors {
            if let Some((dim, max_tokens, muvera)) = kind.multi_config() {
                validate_multi(name, dim, kind.distance(), max_tokens, &muvera)?;
            }
            let dim = kind.dim();
            if dim == 0 || dim > MAX_DIM {
                return Err(Error::InvalidSchema {
                    reason: format!("vector `{name}`: dimension {dim} is not in 1..={MAX_DIM}"),
                });
            }
            if let IndexKind::Hnsw {
                m, ef_construction, ..
            } = kind.index()
                && !((2..=512).contains(&m) && (1..=10_000).contains(&ef_construction))
            {
                return Err(Error::InvalidSchema {
                    reason: format!(
                        "vector `{name}`: hnsw m = {m} must be in 2..=512 and ef_construction = {ef_construction} in 1..=10000"
                    ),
                });
            }
            if let IndexKind::Hnsw {
                quantization: Quantization::LeanVec(l),
                ..
            } = kind.index()
                && !(1..=dim).contains(&l.dims)
            {
                return Err(Error::InvalidSchema {
                    reason: format!(
                        "vector `{name}`: leanvec dims = {} must be in 1..={dim} (the vector's dimension)",
                        l.dims
                    ),
                });
            }
            // Whether the model exists and is that wide is checked against the database's
            // text embedder when a collection is created, not here: opening a collection
            // never needs the model.
            if let Some(e) = kind.embedding() {
                if e.model.is_empty() {
                    return Err(Error::InvalidSchema {
                        reason: format!("vector `{name}`: the text model name is empty"),
                    });
                }
                if e.field.is_empty() {
                    return Err(Error::InvalidSchema {
                        reason: format!("vector `{name}`: the text payload field name is empty"),
                    });
                }
            }
            if name.len() > 255 || name.chars().any(char::is_control) {
                return Err(Error::InvalidSchema {
                    reason: format!(
                        "vector name {name:?} is longer than 255 bytes or has control characters"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Position of a vector in schema order (the order of segment vector files).
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.vectors.keys().position(|k| k == name)
    }

    pub(crate) fn dims(&self) -> Vec<usize> {
        self.vectors.values().map(VectorKind::dim).collect()
    }

    /// Every vector's name, for messages (sparse ones marked).
    pub(crate) fn names(&self) -> String {
        let dense = self.vectors.keys().map(|k| {
            if k.is_empty() {
                "\"\" (default)".to_string()
            } else {
                format!("`{k}`")
            }
        });
        let sparse = self
            .sparse_vectors
            .keys()
            .map(|k| format!("`{k}` (sparse)"));
        dense.chain(sparse).collect::<Vec<_>>().join(", ")
    }
}

/// Checks a multi-vector's settings: token dimension, distance, token limit, and MUVERA
/// parameters that make an encoding no wider than a dense vector may be.
fn validate_multi(
    name: &str,
    dim: usize,
    distance: Distance,
    max_tokens: usize,
    muvera: &Muvera,
) -> Result<()> {
    let invalid = |reason: String| {
        Err(Error::InvalidSchema {
            reason: format!("multi-vector `{name}`: {reason}"),
        })
    };
    if dim == 0 || dim > MAX_DIM {
        return invalid(format!("token dimension {dim} is not in 1..={MAX_DIM}"));
    }
    if distance == Distance::Euclid {
        return invalid("MaxSim compares tokens by cosine or dot, not euclid".into());
    }
    if !(1..=MAX_MAX_TOKENS).contains(&max_tokens) {
        return invalid(format!(
            "max_tokens = {max_tokens} is not in 1..={MAX_MAX_TOKENS}"
        ));
    }
    if !(1..=100_000).contains(&muvera.rescore) {
        return invalid(format!(
            "muvera rescore = {} is not in 1..=100000",
            muvera.rescore
        ));
    }
    match muvera.fde_params().output_dim(dim) {
        Err(e) => invalid(format!("muvera: {e}")),
        Ok(out) if out > MAX_DIM => invalid(format!(
            "muvera encodings would have {out} values (repetitions × 2^k_sim × d_proj, or d_final), above {MAX_DIM}"
        )),
        Ok(_) => Ok(()),
    }
}

/// Default of [`CollectionConfig::filter_scan_fraction`]. On WordNet (117,659 rows, m = 16,
/// ef = 64, one thread): a filter keeping 9.9 % of the rows ran at 1,086 queries/s scanned
/// (on codes) and 773 by graph; one keeping 15.4 % at 787 scanned and 1,198 by graph.
pub const DEFAULT_FILTER_SCAN_FRACTION: f64 = 0.10;

/// Settings of a collection, persisted with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectionConfig {
    /// The mutable segment is frozen and sealed in the background once its ids, vectors and
    /// payloads take this many bytes in memory.
    pub seal_threshold_bytes: u64,
    /// After a seal, sealed segments with at least this fraction of deleted rows are compacted.
    pub compact_deleted_fraction: f64,
    /// Sealed segments of about the same size are merged once this many have accumulated
    /// (0 or 1: never merged for size). See `collection/compaction.rs`.
    pub merge_factor: usize,
    /// No merge makes a segment whose vectors take more than this many bytes.
    pub max_segment_bytes: u64,
    /// A filtered search scans the rows that may match instead of searching the graph when
    /// they are at most this fraction of a segment's rows (sets of up to 1,000 rows are always
    /// scanned). Like Qdrant's `full_scan_threshold`; see `planner.rs` for how it was chosen.
    pub filter_scan_fraction: f64,
}

impl Default for CollectionConfig {
    fn default() -> Self {
        CollectionConfig {
            seal_threshold_bytes: 256 << 20,
            compact_deleted_fraction: 0.3,
            merge_factor: 8,
            max_segment_bytes: 2 << 30,
            filter_scan_fraction: DEFAULT_FILTER_SCAN_FRACTION,
        }
    }
}

/// Largest seal threshold accepted: the mutable segment lives in memory.
const MAX_SEAL_THRESHOLD: u64 = 1 << 40;

impl CollectionConfig {
    /// Checks every setting's range; [`crate::Database::create_collection`] and
    /// [`crate::Collection::update_settings`] both call it, so the two accept the same values.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(Error::InvalidSchema { reason });
        if !(1..=MAX_SEAL_THRESHOLD).contains(&self.seal_threshold_bytes) {
            return invalid(format!(
                "seal_threshold_bytes must be between 1 and {MAX_SEAL_THRESHOLD}, not {}",
                self.seal_threshold_bytes
            ));
        }
        if self.merge_factor == 1 || self.merge_factor > 1000 {
            return invalid(format!(
                "merge_factor must be 0 (no size merges) or 2 to 1000, not {}",
                self.merge_factor
            ));
        }
        if self.max_segment_bytes == 0 {
            return invalid("max_segment_bytes must be above 0".into());
        }
        for (name, value) in [
            ("compact_deleted_fraction", self.compact_deleted_fraction),
            ("filter_scan_fraction", self.filter_scan_fraction),
        ] {
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                return invalid(format!("{name} must be between 0 and 1, not {value}"));
            }
        }
        Ok(())
    }
}

/// Changes to a collection's settings ([`crate::Collection::update_settings`]); `None` keeps
/// a setting as it is. Values are checked as at creation ([`Schema::validate`],
/// [`CollectionConfig::validate`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsPatch {
    /// `m` of every vector with an HNSW index. Segments sealed or merged from then on are
    /// built with it; existing graphs stay as they are.
    pub hnsw_m: Option<usize>,
    /// `ef_construction` of every vector with an HNSW index, like `hnsw_m`.
    pub hnsw_ef_construction: Option<usize>,
    /// `muvera.rescore` of every multi-vector: graph candidates a search re-scores by exact
    /// MaxSim, from the next search (the encodings do not depend on it).
    pub muvera_rescore: Option<usize>,
    pub seal_threshold_bytes: Option<u64>,
    pub compact_deleted_fraction: Option<f64>,
    pub merge_factor: Option<usize>,
    pub max_segment_bytes: Option<u64>,
    pub filter_scan_fraction: Option<f64>,
}

impl SettingsPatch {
    /// The schema and settings with the patch applied, checked. Graph parameters on a schema
    /// without an HNSW vector are an error: nothing would use them.
    pub(crate) fn apply(
        &self,
        schema: &Schema,
        config: &CollectionConfig,
    ) -> Result<(Schema, CollectionConfig)> {
        let mut schema = schema.clone();
        if self.hnsw_m.is_some() || self.hnsw_ef_construction.is_some() {
            let mut graphs = 0;
            for kind in schema.vectors.values_mut() {
                if let IndexKind::Hnsw {
                    m, ef_construction, ..
                } = kind.index_mut()
                {
                    *m = self.hnsw_m.unwrap_or(*m);
                    *ef_construction = self.hnsw_ef_construction.unwrap_or(*ef_construction);
                    graphs += 1;
                }
            }
            if graphs == 0 {
                return Err(Error::InvalidSchema {
                    reason: "hnsw m and ef_construction apply to vectors with an hnsw index, and the collection has none".into(),
                });
            }
        }
        if let Some(rescore) = self.muvera_rescore {
            let mut multi = 0;
            for kind in schema.vectors.values_mut() {
                if let VectorKind::MultiVector { muvera, .. } = kind {
                    muvera.rescore = rescore;
                    multi += 1;
                }
            }
            if multi == 0 {
                return Err(Error::InvalidSchema {
                    reason: "muvera rescore applies to multi-vectors, and the collection has none"
                        .into(),
                });
            }
        }
        let old = config;
        let config = CollectionConfig {
            seal_threshold_bytes: self
                .seal_threshold_bytes
                .unwrap_or(old.seal_threshold_bytes),
            compact_deleted_fraction: self
                .compact_deleted_fraction
                .unwrap_or(old.compact_deleted_fraction),
            merge_factor: self.merge_factor.unwrap_or(old.merge_factor),
            max_segment_bytes: self.max_segment_bytes.unwrap_or(old.max_segment_bytes),
            filter_scan_fraction: self
                .filter_scan_fraction
                .unwrap_or(old.filter_scan_fraction),
        };
        schema.validate()?;
        config.validate()?;
        Ok((schema, config))
    }
}
