//! Hybrid queries: a tree of stages, Qdrant's universal query with `prefetch`. A leaf stage
//! is a nearest-neighbour search; a stage with prefetches either fuses their ranked lists
//! ([`Fusion`]) or re-scores the union of their candidates on a vector of its own. Executed
//! by `collection/hybrid.rs`; the fusion formulas are in `fusion.rs`.

use crate::point::{QueryVector, With};
use quiver_filter::{Filter, MinShould};

/// A query tree and what to return from its root.
#[derive(Debug, Clone, PartialEq)]
pub struct HybridQuery {
    pub root: QueryStage,
    /// Skip this many of the root's best results (prefetches have no offset).
    pub offset: usize,
    /// What the root's results carry; prefetch results are only ids and scores.
    pub with: With,
}

/// One stage of a query tree.
///
/// A stage's filter is merged into the filters of all stages below it (Qdrant's
/// `Filter::merge`: the `must`, `should` and `must_not` lists are concatenated), so every
/// limit counts only points that pass every filter on the way to the root.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryStage {
    /// The sub-queries whose results this stage ranks; none for a leaf.
    pub prefetch: Vec<QueryStage>,
    pub rank: Rank,
    pub filter: Option<Filter>,
    /// A nearest stage keeps what its vector's distance passes (as in a single search); a
    /// fusion stage keeps fused scores ≥ the threshold.
    pub score_threshold: Option<f32>,
    /// How many results the stage passes up (at the root: the page size).
    pub limit: usize,
    /// Graph search beam width of a nearest leaf; `None` = the default.
    pub ef: Option<usize>,
    /// Score a nearest leaf exactly, as [`crate::SearchRequest::exact`]. A nearest stage
    /// over prefetches is always exact: it scores only the prefetched candidates.
    pub exact: bool,
}

/// How a stage ranks points.
#[derive(Debug, Clone, PartialEq)]
pub enum Rank {
    /// By similarity to `vector` on vector `vector_name` (`""` = the unnamed one): over the
    /// whole collection in a leaf, over the union of the prefetched candidates otherwise.
    Nearest {
        vector_name: String,
        vector: QueryVector,
    },
    /// By fusing the prefetches' ranked lists; needs at least one prefetch.
    Fusion(Fusion),
}

/// How ranked lists are fused (formulas in `fusion.rs`).
#[derive(Debug, Clone, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion with constant `k` (≥ 1; Qdrant's default is
    /// [`crate::DEFAULT_RRF_K`]) and optional per-prefetch weights (finite, one per prefetch).
    Rrf { k: usize, weights: Option<Vec<f32>> },
    /// Distribution-based score fusion.
    Dbsf,
}

impl QueryStage {
    /// A leaf: the `limit` nearest points to `vector` on vector `vector_name`.
    pub fn nearest(vector_name: &str, vector: QueryVector, limit: usize) -> QueryStage {
        QueryStage {
            prefetch: Vec::new(),
            rank: Rank::Nearest {
                vector_name: vector_name.to_string(),
                vector,
            },
            filter: None,
            score_threshold: None,
            limit,
            ef: None,
            exact: false,
        }
    }

    /// The best `limit` of `prefetch` fused by `fusion`.
    pub fn fused(fusion: Fusion, prefetch: Vec<QueryStage>, limit: usize) -> QueryStage {
        QueryStage {
            prefetch,
            rank: Rank::Fusion(fusion),
            filter: None,
            score_threshold: None,
            limit,
            ef: None,
            exact: false,
        }
    }

    pub fn with_filter(mut self, filter: Filter) -> QueryStage {
        self.filter = Some(filter);
        self
    }

    pub fn with_prefetch(mut self, prefetch: Vec<QueryStage>) -> QueryStage {
        self.prefetch = prefetch;
        self
    }
}

/// Qdrant's merge of a parent stage's filter into a child's: each clause list is the
/// parent's followed by the child's; `min_should` joins the condition lists and keeps the
/// larger count. (Two `should` lists thus become alternatives of one another, as in Qdrant.)
pub(crate) fn merge_filters(outer: Option<&Filter>, inner: Option<&Filter>) -> Option<Filter> {
    let (outer, inner) = match (outer, inner) {
        (None, None) => return None,
        (Some(f), None) | (None, Some(f)) => return Some(f.clone()),
        (Some(o), Some(i)) => (o, i),
    };
    let join = |a: &[_], b: &[_]| [a, b].concat();
    let min_should = match (&outer.min_should, &inner.min_should) {
        (None, None) => None,
        (Some(m), None) | (None, Some(m)) => Some(m.clone()),
        (Some(a), Some(b)) => Some(MinShould {
            conditions: join(&a.conditions, &b.conditions),
            min_count: a.min_count.max(b.min_count),
        }),
    };
    Some(Filter {
        must: join(&outer.must, &inner.must),
        should: join(&outer.should, &inner.should),
        must_not: join(&outer.must_not, &inner.must_not),
        min_should,
    })
}
