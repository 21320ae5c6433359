//! Building an HNSW graph, multi-threaded.
//!
//! Levels are drawn up front from a seeded hash of each node's offset (level = ⌊−ln U · mL⌋,
//! mL = 1/ln M), so they do not depend on threads or order. Nodes are inserted in the given
//! order by worker threads taking the next index from a shared counter (as hnswlib does), so
//! the order is kept up to the few nodes in flight at once. With more than one thread the
//! graph is not deterministic: which concurrent insertion sees which link depends on timing.
//!
//! During the build, link lists are `AtomicU32` slots: a node's list is changed only under
//! that node's mutex, and readers (other insertions searching the graph) read slots without
//! the lock — they may see a list mid-update, but every slot always holds a valid node id.

use super::heap::{Candidates, Results, Scored};
use super::{DenseScorer, HnswGraph, Scorer, VisitedSet};
use crate::Metric;
use crate::huge::HugeArray;
use crate::lvq::Lvq8;
use std::cmp::Reverse;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

/// Build settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildParams {
    /// Links per node on levels ≥ 1; level 0 keeps up to `2 · m`.
    pub m: usize,
    /// Beam width while inserting.
    pub ef_construction: usize,
    /// Seed of the level draw.
    pub seed: u64,
    /// Worker threads (≥ 1).
    pub threads: usize,
}

impl Default for BuildParams {
    fn default() -> Self {
        BuildParams {
            m: 16,
            ef_construction: 200,
            seed: 0x5eed,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn draw_level(seed: u64, node: u32, ml: f64) -> u8 {
    let u = ((splitmix(seed ^ u64::from(node).wrapping_mul(0x2545_F491_4F6C_DD1D)) >> 11) as f64
        + 0.5)
        / (1u64 << 53) as f64;
    ((-u.ln() * ml).floor() as usize).min(31) as u8
}

struct Builder<'a> {
    rows: &'a [f32],
    /// When set, insertions search the graph on these codes (see [`build_with_codes`]).
    codes: Option<&'a Lvq8>,
    dim: usize,
    metric: Metric,
    m: usize,
    m0: usize,
    ef: usize,
    levels: Vec<u8>,
    links0: Vec<AtomicU32>,
    upper_start: Vec<u32>,
    upper: Vec<AtomicU32>,
    locks: Vec<Mutex<()>>,
    /// (entry node, max level); `None` until the first insertion.
    entry: RwLock<Option<(u32, usize)>>,
    /// Held by an insertion that will raise the max level, for its whole duration.
    grow: Mutex<()>,
}

struct Scratch {
    visited: VisitedSet,
    candidates: Candidates,
    results: Results,
    neighbors: Vec<u32>,
    /// Unvisited neighbours of the node being expanded.
    fresh: Vec<u32>,
}

impl Builder<'_> {
    fn row(&self, i: u32) -> &[f32] {
        let s = i as usize * self.dim;
        &self.rows[s..s + self.dim]
    }

    fn sim(&self, a: u32, b: u32) -> f32 {
        self.metric.score(self.row(a), self.row(b))
    }

    fn slots(&self, node: u32, level: usize) -> &[AtomicU32] {
        let node = node as usize;
        if level == 0 {
            &self.links0[node * (1 + self.m0)..(node + 1) * (1 + self.m0)]
        } else {
            let b = self.upper_start[node] as usize + level - 1;
            &self.upper[b * (1 + self.m)..(b + 1) * (1 + self.m)]
        }
    }

    /// Copies a node's current neighbours into `out`.
    fn read_links(&self, node: u32, level: usize, out: &mut Vec<u32>) {
        out.clear();
        let slots = self.slots(node, level);
        let count = (slots[0].load(Ordering::Acquire) as usize).min(slots.len() - 1);
        out.extend(
            slots[1..1 + count]
                .iter()
                .map(|s| s.load(Ordering::Relaxed)),
        );
    }

    fn write_links(&self, node: u32, level: usize, links: &[u32]) {
        let slots = self.slots(node, level);
        for (slot, &l) in slots[1..].iter().zip(links) {
            slot.store(l, Ordering::Relaxed);
        }
        slots[0].store(links.len() as u32, Ordering::Release);
    }

    /// Beam search on one level for the node being inserted, scored by `scorer`; leaves the
    /// best `ef` in `s.results`. As at query time, the unvisited neighbours of a node are
    /// collected and their rows prefetched before the first is scored, so the loads overlap.
    fn search_level<S: Scorer>(&self, scorer: &S, entry: Scored, level: usize, s: &mut Scratch) {
        s.visited.reset(self.levels.len());
        s.candidates.clear();
        s.results.clear();
        s.visited.insert(entry.id);
        s.candidates.push(entry);
        s.results.push(Reverse(entry));
        let mut links = std::mem::take(&mut s.neighbors);
        while let Some(c) = s.candidates.pop() {
            if let Some(Reverse(worst)) = s.results.peek()
                && s.results.len() >= self.ef
                && c.score < worst.score
            {
                break;
            }
            self.read_links(c.id, level, &mut links);
            s.fresh.clear();
            for &nb in &links {
                if s.visited.insert(nb) {
                    scorer.prefetch(nb);
                    s.fresh.push(nb);
                }
            }
            for &nb in &s.fresh {
                let score = scorer.score(nb);
                let worst = s
                    .results
                    .peek()
                    .map_or(f32::NEG_INFINITY, |Reverse(w)| w.score);
                if s.results.len() < self.ef || score > worst {
                    let sc = Scored { score, id: nb };
                    s.candidates.push(sc);
                    s.results.push(Reverse(sc));
                    if s.results.len() > self.ef {
                        s.results.pop();
                    }
                }
            }
        }
        s.neighbors = links;
    }

    /// The neighbour-selection heuristic: walk candidates best first and keep one only if it
    /// is closer to the base than to every neighbour kept so far (so links spread out in
    /// direction instead of clustering). `candidates` holds (similarity to base, id).
    fn select(&self, candidates: &mut [Scored], max: usize, out: &mut Vec<u32>) {
        candidates.sort_by(|a, b| b.cmp(a));
        out.clear();
        if candidates.len() < max {
            // Room for all: pruning would only cost connectivity (as hnswlib does).
            out.extend(candidates.iter().map(|c| c.id));
            return;
        }
        for c in candidates.iter() {
            if out.len() >= max {
                break;
            }
            if out.iter().all(|&r| self.sim(c.id, r) <= c.score) {
                out.push(c.id);
            }
        }
    }

    fn insert(&self, q: u32, s: &mut Scratch) {
        match self.codes {
            Some(codes) => self.insert_scored(q, &codes.scorer(self.row(q), self.metric), s),
            None => {
                let exact = DenseScorer {
                    rows: self.rows,
                    dim: self.dim,
                    metric: self.metric,
                    query: self.row(q),
                };
                self.insert_scored(q, &exact, s);
            }
        }
    }

    /// Inserts `q`, finding its neighbours with `scorer` (which scores rows against `q`).
    fn insert_scored<S: Scorer>(&self, q: u32, scorer: &S, s: &mut Scratch) {
        let level = self.levels[q as usize] as usize;
        let grow_guard;
        let (entry, max_level) = {
            let e = *self.entry.read().unwrap_or_else(|e| e.into_inner());
            match e {
                None => {
                    let mut w = self.entry.write().unwrap_or_else(|e| e.into_inner());
                    if w.is_none() {
                        *w = Some((q, level));
                        return;
                    }
                    w.unwrap_or((q, level))
                }
                Some((ep, ml)) if level > ml => {
                    grow_guard = self.grow.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = &grow_guard;
                    // Re-read: another insertion may have raised the level meanwhile.
                    self.entry
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .unwrap_or((ep, ml))
                }
                Some(e) => e,
            }
        };
        let mut cur = Scored {
            score: scorer.score(entry),
            id: entry,
        };
        let mut links = Vec::new();
        for l in (level + 1..=max_level).rev() {
            loop {
                let mut changed = false;
                self.read_links(cur.id, l, &mut links);
                for &nb in &links {
                    let score = scorer.score(nb);
                    if score > cur.score {
                        cur = Scored { score, id: nb };
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
        }
        // Phase 1, top level down: choose q's neighbours and write q's own lists. Nobody
        // links to q yet, so no other insertion can reach q (and read a list not yet written)
        // or add a link to q (that this write would overwrite).
        let top = level.min(max_level);
        let mut chosen: Vec<Vec<u32>> = vec![Vec::new(); top + 1];
        let mut pool: Vec<Scored> = Vec::with_capacity(self.ef.max(self.m0 + 1));
        for l in (0..=top).rev() {
            self.search_level(scorer, cur, l, s);
            pool.clear();
            pool.extend(s.results.drain().map(|Reverse(x)| x));
            if self.codes.is_some() {
                // The heuristic compares these with exact scores between rows: make them
                // exact too.
                for p in &mut pool {
                    p.score = self.sim(q, p.id);
                }
            }
            if let Some(best) = pool.iter().max() {
                cur = *best;
            }
            self.select(&mut pool, self.m, &mut chosen[l]);
            let _g = self.locks[q as usize]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.write_links(q, l, &chosen[l]);
        }
        // Phase 2: link back, which makes q reachable.
        for (l, chosen) in chosen.iter().enumerate() {
            let cap = if l == 0 { self.m0 } else { self.m };
            for &nb in chosen {
                let _g = self.locks[nb as usize]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                self.read_links(nb, l, &mut links);
                if links.contains(&q) {
                    continue;
                }
                if links.len() < cap {
                    links.push(q);
                    self.write_links(nb, l, &links);
                } else {
                    let mut cands: Vec<Scored> = links
                        .iter()
                        .chain(std::iter::once(&q))
                        .map(|&x| Scored {
                            score: self.sim(nb, x),
                            id: x,
                        })
                        .collect();
                    let mut kept = Vec::with_capacity(cap);
                    self.select(&mut cands, cap, &mut kept);
                    self.write_links(nb, l, &kept);
                }
            }
        }
        if level > max_level {
            *self.entry.write().unwrap_or_else(|e| e.into_inner()) = Some((q, level));
        }
    }
}

/// Builds a graph over `rows` (row-major, `dim` columns), inserting nodes in `order` (every
/// row exactly once; `None` = offset order). `progress(done)` is called from time to time.
pub fn build(
    rows: &[f32],
    dim: usize,
    metric: Metric,
    params: BuildParams,
    order: Option<&[u32]>,
    progress: &(dyn Fn(usize) + Sync),
) -> HnswGraph {
    build_with_codes(rows, dim, metric, params, order, None, progress)
}

/// [`build`], searching the graph during insertions on `codes` (LVQ-8 codes of the same
/// rows: a quarter of the memory traffic) when given; each insertion's candidate list is
/// re-scored with the `f32` rows before the neighbour heuristic, which uses `f32` scores.
pub fn build_with_codes(
    rows: &[f32],
    dim: usize,
    metric: Metric,
    params: BuildParams,
    order: Option<&[u32]>,
    codes: Option<&Lvq8>,
    progress: &(dyn Fn(usize) + Sync),
) -> HnswGraph {
    let n = rows.len().checked_div(dim).unwrap_or(0);
    let m = params.m.max(2);
    let m0 = 2 * m;
    let ml = 1.0 / (m as f64).ln();
    let levels: Vec<u8> = (0..n as u32)
        .map(|i| draw_level(params.seed, i, ml))
        .collect();
    let mut upper_start = Vec::with_capacity(n + 1);
    let mut total = 0u32;
    for &l in &levels {
        upper_start.push(total);
        total += u32::from(l);
    }
    upper_start.push(total);
    let builder = Builder {
        rows,
        codes,
        dim,
        metric,
        m,
        m0,
        ef: params.ef_construction.max(m),
        links0: (0..n * (1 + m0)).map(|_| AtomicU32::new(0)).collect(),
        upper: (0..total as usize * (1 + m))
            .map(|_| AtomicU32::new(0))
            .collect(),
        upper_start,
        levels,
        locks: (0..n).map(|_| Mutex::new(())).collect(),
        entry: RwLock::new(None),
        grow: Mutex::new(()),
    };
    let identity: Vec<u32>;
    let order = match order {
        Some(o) => o,
        None => {
            identity = (0..n as u32).collect();
            &identity
        }
    };
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let step = (n / 100).max(1000);
    std::thread::scope(|scope| {
        for _ in 0..params.threads.max(1) {
            scope.spawn(|| {
                let mut s = Scratch {
                    visited: VisitedSet::new(n),
                    candidates: Candidates::new(),
                    results: Results::new(),
                    neighbors: Vec::new(),
                    fresh: Vec::new(),
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&q) = order.get(i) else { break };
                    builder.insert(q, &mut s);
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if d.is_multiple_of(step) {
                        progress(d);
                    }
                }
            });
        }
    });
    let (entry, max_level) = match *builder.entry.read().unwrap_or_else(|e| e.into_inner()) {
        Some((e, l)) => (Some(e), l),
        None => (None, 0),
    };
    HnswGraph {
        m,
        m0,
        entry,
        max_level,
        links0: HugeArray::from_slice(
            &builder
                .links0
                .into_iter()
                .map(AtomicU32::into_inner)
                .collect::<Vec<u32>>(),
        ),
        upper: builder
            .upper
            .into_iter()
            .map(AtomicU32::into_inner)
            .collect(),
        upper_start: builder.upper_start,
        levels: builder.levels,
    }
}
