//! Points as the API sees them.

use quiver_storage::PointId;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub type Payload = Map<String, Value>;

/// A sparse vector (Qdrant's `{"indices": [...], "values": [...]}`): `values[i]` is the
/// weight of term `indices[i]`. At upsert the indices must be distinct, the lengths equal and
/// the values finite; pairs are stored sorted by index, which is how they come back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVector {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseVector {
    pub fn new(indices: Vec<u32>, values: Vec<f32>) -> SparseVector {
        SparseVector { indices, values }
    }

    /// Whether it has no entry.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty() && self.values.is_empty()
    }
}

/// A point to upsert: an id, one vector per schema vector, its sparse vectors, and a JSON
/// object payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub id: PointId,
    pub vectors: BTreeMap<String, Vec<f32>>,
    /// Sparse vectors by name; one the point does not carry is empty (as in Qdrant, where a
    /// point without it is simply not in that index).
    pub sparse: BTreeMap<String, SparseVector>,
    /// Multi-vectors by name: each a list of token vectors of the declared dimension (at
    /// least one, at most the vector's `max_tokens`). Every multi-vector of the schema is
    /// required, as dense vectors are.
    pub multi: BTreeMap<String, Vec<Vec<f32>>>,
    pub payload: Payload,
}

impl Point {
    /// A point with only the unnamed default vector and no payload.
    pub fn new(id: impl Into<PointId>, vector: Vec<f32>) -> Point {
        Point {
            id: id.into(),
            vectors: BTreeMap::from([(String::new(), vector)]),
            sparse: BTreeMap::new(),
            multi: BTreeMap::new(),
            payload: Payload::new(),
        }
    }

    /// A point without vectors, for a collection whose vectors are all embedded from text in
    /// the payload (see [`crate::TextEmbedding`]).
    pub fn from_payload(id: impl Into<PointId>, payload: Payload) -> Point {
        Point {
            id: id.into(),
            vectors: BTreeMap::new(),
            sparse: BTreeMap::new(),
            multi: BTreeMap::new(),
            payload,
        }
    }

    pub fn with_payload(mut self, payload: Payload) -> Point {
        self.payload = payload;
        self
    }

    pub fn with_vector(mut self, name: &str, vector: Vec<f32>) -> Point {
        self.vectors.insert(name.to_string(), vector);
        self
    }

    pub fn with_sparse(mut self, name: &str, vector: SparseVector) -> Point {
        self.sparse.insert(name.to_string(), vector);
        self
    }

    pub fn with_multi(mut self, name: &str, tokens: Vec<Vec<f32>>) -> Point {
        self.multi.insert(name.to_string(), tokens);
        self
    }
}

/// What to return with each point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct With {
    pub payload: bool,
    pub vectors: bool,
}

impl With {
    pub const PAYLOAD: With = With {
        payload: true,
        vectors: false,
    };
    pub const ALL: With = With {
        payload: true,
        vectors: true,
    };
}

/// A stored point, as returned by retrieve and scroll.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: PointId,
    pub payload: Option<Payload>,
    pub vectors: Option<BTreeMap<String, Vec<f32>>>,
    /// With the vectors: the point's non-empty sparse vectors.
    pub sparse: Option<BTreeMap<String, SparseVector>>,
    /// With the vectors: the point's multi-vectors (as stored: cosine ones normalised).
    pub multi: Option<BTreeMap<String, Vec<Vec<f32>>>>,
}

/// The payload value [`crate::Collection::scroll_ordered`] placed a point at (Qdrant's
/// `order_value`): an integer index's values stay exact integers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OrderValue {
    Int(i64),
    Float(f64),
}

/// A search result. `score`: cosine and dot, higher is better; euclid, the distance.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPoint {
    pub id: PointId,
    pub score: f32,
    pub payload: Option<Payload>,
    pub vectors: Option<BTreeMap<String, Vec<f32>>>,
    /// With the vectors: the point's non-empty sparse vectors.
    pub sparse: Option<BTreeMap<String, SparseVector>>,
    /// With the vectors: the point's multi-vectors (as stored: cosine ones normalised).
    pub multi: Option<BTreeMap<String, Vec<Vec<f32>>>>,
}

/// What a search compares the points with.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryVector {
    /// A dense vector, for a dense (or text) vector of the schema.
    Dense(Vec<f32>),
    /// A sparse vector, for a sparse vector of the schema: points are scored by the dot
    /// product over the indices they share with it (each query value multiplied by the
    /// index's IDF when the vector has `modifier: idf`); points sharing none are not
    /// returned. Graph and `ef` settings do not apply: the search is always exact.
    Sparse(SparseVector),
    /// Token vectors, for a multi-vector of the schema: points are scored by MaxSim. A
    /// search retrieves candidates by the tokens' MUVERA encoding from the graph (when the
    /// segment has one) and re-scores the best `muvera.rescore` (at least `depth`) exactly;
    /// an `exact` search scores every point by MaxSim.
    Multi(Vec<Vec<f32>>),
}

impl From<Vec<f32>> for QueryVector {
    fn from(v: Vec<f32>) -> QueryVector {
        QueryVector::Dense(v)
    }
}

/// A top-k query.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// Which vector to search (`""` = the unnamed default one).
    pub vector_name: String,
    pub vector: QueryVector,
    pub k: usize,
    /// Cosine/dot: keep scores >= threshold; euclid: keep distances <= threshold.
    pub score_threshold: Option<f32>,
    pub with: With,
    /// Beam width of graph search (raised to `offset + k`); `None` = [`DEFAULT_EF`]. Ignored
    /// by exact search.
    pub ef: Option<usize>,
    /// Only points whose payload passes; `None` = every point.
    pub filter: Option<quiver_filter::Filter>,
    /// Score every live row of every segment on its stored `f32` vector (no graph, no
    /// codes): the true top-k, at the cost of a full scan (Qdrant's `params.exact`).
    pub exact: bool,
    /// Skip this many of the best results: return ranks `offset..offset + k` (for paging;
    /// the search looks for the best `offset + k`).
    pub offset: usize,
}

/// Graph search beam width when a request does not set one.
pub const DEFAULT_EF: usize = 64;

impl SearchRequest {
    /// A dense query on the unnamed default vector.
    pub fn new(vector: Vec<f32>, k: usize) -> SearchRequest {
        SearchRequest {
            vector_name: String::new(),
            vector: QueryVector::Dense(vector),
            k,
            score_threshold: None,
            with: With::default(),
            ef: None,
            filter: None,
            exact: false,
            offset: 0,
        }
    }

    /// A MaxSim query on multi-vector `name`.
    pub fn multi(name: &str, tokens: Vec<Vec<f32>>, k: usize) -> SearchRequest {
        SearchRequest {
            vector_name: name.to_string(),
            vector: QueryVector::Multi(tokens),
            ..SearchRequest::new(Vec::new(), k)
        }
    }

    /// A sparse query on sparse vector `name`.
    pub fn sparse(name: &str, vector: SparseVector, k: usize) -> SearchRequest {
        SearchRequest {
            vector_name: name.to_string(),
            vector: QueryVector::Sparse(vector),
            ..SearchRequest::new(Vec::new(), k)
        }
    }

    /// How many of the best results the search must find: `offset + k`.
    pub(crate) fn depth(&self) -> usize {
        self.k.saturating_add(self.offset)
    }
}

/// One page of a scroll through points in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrollPage {
    pub points: Vec<Record>,
    /// Pass as `from` to get the next page; `None` at the end.
    pub next: Option<PointId>,
}
