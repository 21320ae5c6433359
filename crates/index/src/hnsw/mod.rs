//! HNSW (Malkov & Yashunin, 2016): a hierarchy of proximity graphs searched greedily from the
//! top level down, then with a beam of width `ef` on level 0.
//!
//! - `build.rs` builds a graph over a segment's rows (multi-threaded, in a given order);
//! - this file holds the finished graph and its search;
//! - `format.rs` turns a graph into bytes and back (the engine writes and maps the file).
//!
//! Links are flat `u32` arrays: level 0 has `1 + m0` slots per node (count, then neighbours),
//! upper levels `1 + m` per node per level, only for nodes that reach them.

mod build;
mod format;
mod heap;
mod visited;

pub use build::{BuildParams, build, build_with_codes};
pub use format::{FormatError, decode, encode};
pub use visited::VisitedSet;

use crate::huge::HugeArray;
use crate::{Hit, Metric, SearchStats};
use heap::{Candidates, Results, Scored};
use std::cell::RefCell;
use std::cmp::Reverse;

/// Scores stored rows against one query; "higher is better".
pub trait Scorer {
    fn score(&self, node: u32) -> f32;
    /// Starts loading what `score(node)` will read.
    fn prefetch(&self, _node: u32) {}
}

/// Compact codes of a segment's rows ([`crate::lvq`]) that score a query against them, so
/// that a build's insertions can search on them instead of the `f32` rows.
pub trait Quantized: Sync {
    type Scorer<'a>: Scorer
    where
        Self: 'a;
    /// A scorer of `query` with the scores of `metric` (approximations of
    /// [`Metric::score`] on the original rows).
    fn scorer<'a>(&'a self, query: &'a [f32], metric: Metric) -> Self::Scorer<'a>;
}

/// Exact `f32` rows, row-major.
pub struct DenseScorer<'a> {
    pub rows: &'a [f32],
    pub dim: usize,
    pub metric: Metric,
    pub query: &'a [f32],
}

impl Scorer for DenseScorer<'_> {
    #[inline]
    fn score(&self, node: u32) -> f32 {
        let start = node as usize * self.dim;
        match self.rows.get(start..start + self.dim) {
            Some(row) => self.metric.score(self.query, row),
            None => f32::NEG_INFINITY,
        }
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        let start = node as usize * self.dim;
        if let Some(row) = self.rows.get(start..start + self.dim) {
            // The first lines: the hardware prefetcher follows the rest of the row.
            quiver_kernels::prefetch(row, 8);
        }
    }
}

/// Re-scores `hits` with `exact` (counted in `stats`) and keeps the best `k`, best first
/// (ties: lower offset first): the second step of every search on approximate scores.
pub(crate) fn rescore<E: Scorer>(
    hits: &mut Vec<Hit>,
    exact: &E,
    k: usize,
    stats: &mut SearchStats,
) {
    for h in hits.iter() {
        exact.prefetch(h.offset);
    }
    for h in hits.iter_mut() {
        h.score = exact.score(h.offset);
    }
    stats.distance_computations += hits.len() as u64;
    hits.sort_by(|a, b| crate::best_first(a.score, b.score).then(a.offset.cmp(&b.offset)));
    hits.truncate(k);
}

/// A finished graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HnswGraph {
    pub(crate) m: usize,
    pub(crate) m0: usize,
    pub(crate) entry: Option<u32>,
    pub(crate) max_level: usize,
    pub(crate) levels: Vec<u8>,
    /// `n × (1 + m0)`: count, then neighbour ids.
    pub(crate) links0: HugeArray<u32>,
    /// `n + 1` block offsets into `upper`: node i's levels 1..=levels[i] are blocks
    /// `upper_start[i]..upper_start[i + 1]`.
    pub(crate) upper_start: Vec<u32>,
    /// Blocks of `1 + m`: count, then neighbour ids.
    pub(crate) upper: Vec<u32>,
}

/// What a search does with a node its `accept` predicate rejects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Traversal {
    /// Scores it and traverses it like an accepted node (never returning it): the graph stays
    /// navigable exactly as built. Right when most nodes pass.
    #[default]
    Through,
    /// Never scores it: its neighbours that pass take its place among the expanded node's
    /// neighbours, up to `m0` of them (two hops, as ACORN's search, Patel et al., SIGMOD 2024).
    /// When a filter keeps a minority of the nodes, distance computations go to nodes that
    /// pass and the graph stays connected through the ones that do not.
    TwoHop,
}

/// Buffers reused across searches: no allocation per query once warm ([`HnswGraph::search`]
/// keeps one per thread).
#[derive(Debug, Default)]
pub struct SearchScratch {
    visited: VisitedSet,
    candidates: Candidates,
    results: Results,
    /// Unvisited neighbours of the node being expanded.
    fresh: Vec<u32>,
    /// Rejected neighbours whose own neighbours stand in for them ([`Traversal::TwoHop`]).
    bridges: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<SearchScratch> = RefCell::new(SearchScratch::default());
}

impl HnswGraph {
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Bytes held in memory: levels and the links of every level.
    pub fn memory_bytes(&self) -> usize {
        self.levels.len()
            + size_of_val(self.links0.as_slice())
            + size_of_val(self.upper_start.as_slice())
            + size_of_val(self.upper.as_slice())
    }

    pub fn m(&self) -> usize {
        self.m
    }

    /// Where every search starts (`None` for an empty graph).
    pub fn entry(&self) -> Option<u32> {
        self.entry
    }

    /// Nodes reachable on level 0 from the entry point: a node that is not can never be
    /// returned, so this measures the build's connectivity.
    pub fn reachable(&self) -> usize {
        let Some(entry) = self.entry else { return 0 };
        let mut seen = vec![false; self.len()];
        let mut stack = vec![entry];
        seen[entry as usize] = true;
        let mut count = 1;
        while let Some(node) = stack.pop() {
            for &nb in self.neighbors(node, 0) {
                if let Some(s) = seen.get_mut(nb as usize)
                    && !*s
                {
                    *s = true;
                    count += 1;
                    stack.push(nb);
                }
            }
        }
        count
    }

    /// Neighbours of `node` on `level` (empty if the node does not reach that level).
    #[inline]
    pub fn neighbors(&self, node: u32, level: usize) -> &[u32] {
        let node = node as usize;
        let (block, width) = if level == 0 {
            (
                self.links0
                    .get(node * (1 + self.m0)..(node + 1) * (1 + self.m0)),
                self.m0,
            )
        } else {
            let first = self.upper_start.get(node).copied().unwrap_or(0) as usize;
            let b = first + level - 1;
            let end = self.upper_start.get(node + 1).copied().unwrap_or(0) as usize;
            if b >= end {
                return &[];
            }
            (
                self.upper.get(b * (1 + self.m)..(b + 1) * (1 + self.m)),
                self.m,
            )
        };
        match block {
            Some(b) => {
                let count = (b[0] as usize).min(width);
                &b[1..1 + count]
            }
            None => &[],
        }
    }

    /// The `k` best accepted nodes, best first. Nodes `accept` rejects are still traversed
    /// (they keep the graph connected) but never returned. `ef` is raised to `k`.
    ///
    /// Uses this thread's [`SearchScratch`]; a search started while another holds it on the
    /// same thread (from `accept` or `scorer`, or a rayon job run while one of them waits)
    /// allocates its own instead.
    pub fn search<S: Scorer>(
        &self,
        scorer: &S,
        k: usize,
        ef: usize,
        accept: impl Fn(u32) -> bool,
        traversal: Traversal,
    ) -> (Vec<Hit>, SearchStats) {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.search_with(scorer, k, ef, accept, traversal, &mut s),
            Err(_) => self.search_with(
                scorer,
                k,
                ef,
                accept,
                traversal,
                &mut SearchScratch::default(),
            ),
        })
    }

    pub fn search_with<S: Scorer>(
        &self,
        scorer: &S,
        k: usize,
        ef: usize,
        accept: impl Fn(u32) -> bool,
        traversal: Traversal,
        scratch: &mut SearchScratch,
    ) -> (Vec<Hit>, SearchStats) {
        let mut stats = SearchStats::default();
        let Some(entry) = self.entry else {
            return (Vec::new(), stats);
        };
        if k == 0 {
            return (Vec::new(), stats);
        }
        let mut cur = Scored {
            score: scorer.score(entry),
            id: entry,
        };
        stats.distance_computations += 1;
        for level in (1..=self.max_level).rev() {
            cur = self.greedy(scorer, cur, level, &mut stats);
        }
        let ef = ef.max(k);
        scratch.visited.reset(self.len());
        self.search_level(scorer, cur, ef, &accept, traversal, scratch, &mut stats);
        let mut hits: Vec<Hit> = scratch
            .results
            .drain()
            .map(|Reverse(s)| Hit {
                score: s.score,
                offset: s.id,
            })
            .collect();
        hits.sort_by(|a, b| crate::best_first(a.score, b.score).then(a.offset.cmp(&b.offset)));
        hits.truncate(k);
        (hits, stats)
    }

    /// Graph search scored by `approx` (cheap, e.g. [`crate::lvq`] codes) that keeps `ef`
    /// candidates, then the best `rerank` of them (at least `k`) re-scored by `exact`; returns
    /// the best `k` by exact score. Counts both kinds of score in the stats.
    #[allow(clippy::too_many_arguments)]
    pub fn search_reranked<A: Scorer, E: Scorer>(
        &self,
        approx: &A,
        exact: &E,
        k: usize,
        ef: usize,
        rerank: usize,
        accept: impl Fn(u32) -> bool,
        traversal: Traversal,
    ) -> (Vec<Hit>, SearchStats) {
        let ef = ef.max(k);
        let (mut hits, mut stats) = self.search(approx, ef, ef, accept, traversal);
        hits.truncate(rerank.max(k));
        rescore(&mut hits, exact, k, &mut stats);
        (hits, stats)
    }

    /// Moves to the best neighbour until none is better (ef = 1).
    fn greedy<S: Scorer>(
        &self,
        scorer: &S,
        mut cur: Scored,
        level: usize,
        stats: &mut SearchStats,
    ) -> Scored {
        loop {
            let mut changed = false;
            for &nb in self.neighbors(cur.id, level) {
                let score = scorer.score(nb);
                stats.distance_computations += 1;
                if score > cur.score {
                    cur = Scored { score, id: nb };
                    changed = true;
                }
            }
            if !changed {
                return cur;
            }
        }
    }

    /// Beam search on level 0 from `start`; leaves up to `ef` accepted nodes in
    /// `scratch.results`. The caller resets `scratch.visited`.
    #[allow(clippy::too_many_arguments)]
    fn search_level<S: Scorer>(
        &self,
        scorer: &S,
        start: Scored,
        ef: usize,
        accept: &impl Fn(u32) -> bool,
        traversal: Traversal,
        scratch: &mut SearchScratch,
        stats: &mut SearchStats,
    ) {
        let SearchScratch {
            visited,
            candidates,
            results,
            fresh,
            bridges,
        } = scratch;
        candidates.clear();
        results.clear();
        visited.insert(start.id);
        candidates.push(start);
        if accept(start.id) {
            results.push(Reverse(start));
        }
        let w = 1 + self.m0;
        while let Some(c) = candidates.pop() {
            if results.len() >= ef
                && let Some(Reverse(worst)) = results.peek()
                && c.score < worst.score
            {
                break;
            }
            // The next candidate to expand is probably the current best: start loading its
            // links while this one is processed.
            if let Some(next) = candidates.peek() {
                let at = next.id as usize * w;
                if let Some(block) = self.links0.get(at..at + w) {
                    quiver_kernels::prefetch(block, 2);
                }
            }
            // Collect the unvisited neighbours to score and start loading all their rows
            // before scoring the first, so that the memory accesses overlap.
            fresh.clear();
            match traversal {
                Traversal::Through => {
                    for &nb in self.neighbors(c.id, 0) {
                        if visited.insert(nb) {
                            scorer.prefetch(nb);
                            fresh.push(nb);
                        }
                    }
                }
                Traversal::TwoHop => {
                    bridges.clear();
                    for &nb in self.neighbors(c.id, 0) {
                        if visited.insert(nb) {
                            if accept(nb) {
                                scorer.prefetch(nb);
                                fresh.push(nb);
                            } else {
                                let at = nb as usize * w;
                                if let Some(block) = self.links0.get(at..at + w) {
                                    quiver_kernels::prefetch(block, 2);
                                }
                                bridges.push(nb);
                            }
                        }
                    }
                    'bridges: for &b in bridges.iter() {
                        for &nb in self.neighbors(b, 0) {
                            if fresh.len() >= self.m0 {
                                break 'bridges;
                            }
                            // A rejected second-hop node stays unvisited: it may still be
                            // reached as a bridge from a better node.
                            if !visited.contains(nb) && accept(nb) {
                                visited.insert(nb);
                                scorer.prefetch(nb);
                                fresh.push(nb);
                            }
                        }
                    }
                }
            }
            for &nb in fresh.iter() {
                let score = scorer.score(nb);
                stats.distance_computations += 1;
                let worst = results
                    .peek()
                    .map_or(f32::NEG_INFINITY, |Reverse(w)| w.score);
                if results.len() < ef || score > worst {
                    let s = Scored { score, id: nb };
                    candidates.push(s);
                    // Under `TwoHop` every fresh node passed already.
                    if traversal == Traversal::TwoHop || accept(nb) {
                        results.push(Reverse(s));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
    }
}
