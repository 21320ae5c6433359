//! The query path: nearest-neighbour search per segment, merged.

use super::*;
use crate::planner::Strategy;
use crate::schema::Modifier;
use crate::segment::{LeanVecCodes, ReducedCodes, SparseRows};
use quiver_index::hnsw::{Scorer, Traversal};
use quiver_index::sparse::format::PostingsView;
use quiver_index::sparse::{QueryTerm, maxscore};

impl Collection {
    /// A dense query checked and normalised; its vector's position.
    pub(super) fn prepare_query(&self, req: &SearchRequest) -> Result<(usize, Vec<f32>)> {
        let v = match &req.vector {
            QueryVector::Dense(v) => v,
            QueryVector::Sparse(_) | QueryVector::Multi(_) => {
                return Err(self.invalid(format!(
                    "a sparse or multi-vector query on vector `{}` cannot be searched with dense vectors",
                    req.vector_name
                )));
            }
        };
        let mut q = v.clone();
        let position = self.prepare_vector(None, &req.vector_name, &mut q)?;
        Ok((position, q))
    }

    /// The `k` nearest points to one query (after the first `offset`), best first.
    pub fn search(&self, req: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        self.check_usable()?;
        match &req.vector {
            QueryVector::Sparse(query) => return self.search_sparse(req, query),
            QueryVector::Multi(tokens) => return self.search_multi(req, tokens),
            QueryVector::Dense(_) => {}
        }
        let (position, query) = self.prepare_query(req)?;
        let settings = self.settings();
        let kind = &settings.schema.vectors[&req.vector_name];
        let snap = self.snapshot();
        let segments = &snap.segments;
        // No result list is longer than the collection: this bounds allocation for huge k.
        let depth = req.depth().min(segments.iter().map(|s| s.rows()).sum());
        let mut per_segment = Vec::with_capacity(segments.len());
        let mut dist = 0;
        let ef = req.ef.unwrap_or(DEFAULT_EF);
        let filter = req.filter.as_ref();
        for seg in segments.iter() {
            let (hits, stats) = search_segment(
                seg,
                snap.seq,
                position,
                kind,
                &query,
                depth,
                ef,
                filter,
                settings.config.filter_scan_fraction,
                req.exact,
            );
            dist += stats.distance_computations;
            per_segment.push(hits);
        }
        self.distance_computations
            .fetch_add(dist, Ordering::Relaxed);
        self.merge(req, segments, snap.seq, per_segment)
    }

    /// Many queries at once, spread over the current rayon pool. Results in request order.
    pub fn search_batch(&self, reqs: &[SearchRequest]) -> Result<Vec<Vec<ScoredPoint>>> {
        self.check_usable()?;
        if reqs
            .iter()
            .any(|r| r.filter.is_some() || !matches!(r.vector, QueryVector::Dense(_)))
        {
            // Filtered searches are planned per query and segment, sparse ones walk
            // postings, multi-vector ones re-score: one query per task.
            return reqs.par_iter().map(|r| self.search(r)).collect();
        }
        let settings = self.settings();
        let snap = self.snapshot();
        let segments = &snap.segments;
        let mut out = vec![Vec::new(); reqs.len()];
        // Group requests by vector (and exact or not) so that each group is one matrix of
        // queries.
        let mut groups: BTreeMap<(&str, bool), Vec<usize>> = BTreeMap::new();
        for (i, r) in reqs.iter().enumerate() {
            groups
                .entry((r.vector_name.as_str(), r.exact))
                .or_default()
                .push(i);
        }
        for ((name, exact), members) in groups {
            let mut position = 0;
            let mut matrix = Vec::new();
            for &i in &members {
                let (p, q) = self.prepare_query(&reqs[i])?;
                position = p;
                matrix.extend_from_slice(&q);
            }
            let kind = &settings.schema.vectors[name];
            let rows: usize = segments.iter().map(|s| s.rows()).sum();
            let k = members
                .iter()
                .map(|&i| reqs[i].depth())
                .max()
                .unwrap_or(0)
                .min(rows);
            let mut per_query: Vec<Vec<Vec<Hit>>> =
                vec![Vec::with_capacity(segments.len()); members.len()];
            let mut dist = 0;
            for seg in segments.iter() {
                let graph = !exact && seg.graphs.get(position).is_some_and(Option::is_some);
                let (hits, stats) = if graph {
                    // Graph search: one query per task.
                    let per: Vec<(Vec<Hit>, SearchStats)> = members
                        .par_iter()
                        .zip(matrix.par_chunks(kind.dim()))
                        .map(|(&i, q)| {
                            let ef = reqs[i].ef.unwrap_or(DEFAULT_EF);
                            search_segment(
                                seg,
                                snap.seq,
                                position,
                                kind,
                                q,
                                reqs[i].depth().min(k),
                                ef,
                                None,
                                settings.config.filter_scan_fraction,
                                false,
                            )
                        })
                        .collect();
                    let mut stats = SearchStats::default();
                    let hits = per
                        .into_iter()
                        .map(|(h, s)| {
                            stats.add(s);
                            h
                        })
                        .collect();
                    (hits, stats)
                } else {
                    // Blocks of queries in parallel, each taking the segment's view itself:
                    // no lock is held across the parallel section.
                    let per: Vec<(Vec<Vec<Hit>>, SearchStats)> = matrix
                        .par_chunks(flat::QUERY_BLOCK * kind.dim())
                        .map(|block| {
                            seg.view_at(snap.seq, |v| {
                                let deleted = &v.deleted;
                                flat::search_batch_sequential(
                                    v.vectors[position],
                                    kind.dim(),
                                    kind.distance().metric(),
                                    block,
                                    k,
                                    &|o| !deleted.is_deleted(o),
                                )
                            })
                        })
                        .collect();
                    let mut stats = SearchStats::default();
                    let mut hits = Vec::with_capacity(members.len());
                    for (h, s) in per {
                        hits.extend(h);
                        stats.add(s);
                    }
                    (hits, stats)
                };
                dist += stats.distance_computations;
                for (slot, h) in per_query.iter_mut().zip(hits) {
                    slot.push(h);
                }
            }
            self.distance_computations
                .fetch_add(dist, Ordering::Relaxed);
            for (&i, hits) in members.iter().zip(per_query) {
                out[i] = self.merge(&reqs[i], segments, snap.seq, hits)?;
            }
        }
        Ok(out)
    }

    /// Merges per-segment hits (parallel to `segments`) into the final top-k, skips the first
    /// `offset`, applies the score threshold and fetches what was asked for.
    pub(super) fn merge(
        &self,
        req: &SearchRequest,
        segments: &[Arc<Segment>],
        seq: u64,
        per_segment: Vec<Vec<Hit>>,
    ) -> Result<Vec<ScoredPoint>> {
        // Sparse vectors score by dot product.
        let distance = self
            .schema()
            .vectors
            .get(&req.vector_name)
            .map_or(Distance::Dot, VectorKind::distance);
        // Each segment's hits are best first: a k-way merge keeps the k best. Packing
        // (segment index, offset) into the id breaks ties by segment, then offset.
        let runs: Vec<Vec<(f32, u64)>> = per_segment
            .into_iter()
            .enumerate()
            .map(|(s, hits)| {
                hits.into_iter()
                    .map(|h| (h.score, ((s as u64) << 32) | u64::from(h.offset)))
                    .collect()
            })
            .collect();
        quiver_kernels::merge_best_first(&runs, req.depth())
            .into_iter()
            .skip(req.offset)
            .filter_map(|(score, packed)| {
                let (s, offset) = ((packed >> 32) as usize, packed as u32);
                let score = distance.external(score);
                if let Some(t) = req.score_threshold
                    && !distance.passes(score, t)
                {
                    return None;
                }
                Some(segments[s].view_at(seq, |v| {
                    let r = self.record(v, offset, req.with)?;
                    Ok(ScoredPoint {
                        id: r.id,
                        score,
                        payload: r.payload,
                        vectors: r.vectors,
                        sparse: r.sparse,
                        multi: r.multi,
                    })
                }))
            })
            .collect()
    }

    /// A sparse query: exact top-k by dot product per segment (block-max MaxScore over a
    /// sealed segment's postings, term at a time over the mutable one's), merged.
    fn search_sparse(&self, req: &SearchRequest, query: &SparseVector) -> Result<Vec<ScoredPoint>> {
        let mut query = query.clone();
        let j = self.prepare_sparse(None, &req.vector_name, &mut query)?;
        let settings = self.settings();
        if let Some(spec) = settings
            .schema
            .sparse_vectors
            .get(&req.vector_name)
            .and_then(|k| k.bm25.as_ref())
        {
            return self.search_bm25(req, &query, j, spec);
        }
        let modifier = settings
            .schema
            .sparse_vectors
            .get(&req.vector_name)
            .map_or(Modifier::None, |k| k.modifier);
        let snap = self.snapshot();
        let segments = &snap.segments;
        let mut terms: Vec<QueryTerm> = query
            .indices
            .iter()
            .zip(&query.values)
            .map(|(&term, &weight)| QueryTerm { term, weight })
            .collect();
        if modifier == Modifier::Idf {
            let points: u64 = segments.iter().map(|s| s.live_at(snap.seq) as u64).sum();
            let mut holding = vec![0u64; terms.len()];
            for seg in segments.iter() {
                for (n, df) in holding
                    .iter_mut()
                    .zip(document_frequencies(seg, snap.seq, j, &terms))
                {
                    *n += df;
                }
            }
            for (t, &n) in terms.iter_mut().zip(&holding) {
                t.weight = (f64::from(t.weight) * idf(points, n)) as f32;
            }
        }
        let depth = req.depth().min(segments.iter().map(|s| s.rows()).sum());
        let mut work = 0;
        let per_segment: Vec<Vec<Hit>> = segments
            .iter()
            .map(|seg| {
                let (hits, stats) =
                    search_sparse_segment(seg, snap.seq, j, &terms, depth, req.filter.as_ref());
                work += stats.distance_computations;
                hits
            })
            .collect();
        self.distance_computations
            .fetch_add(work, Ordering::Relaxed);
        self.merge(req, segments, snap.seq, per_segment)
    }

    /// How a filter would be answered, one line per segment: rows, the estimate, how each
    /// condition is answered (field index or checked per point), and the search strategy.
    pub fn explain(&self, filter: &Filter) -> Result<String> {
        self.check_usable()?;
        let mut out = String::new();
        let settings = self.settings();
        let snap = self.snapshot();
        for seg in snap.segments.iter() {
            let line = seg.view_at(snap.seq, |v| {
                let fields = seg.fields();
                let rows = v.rows() as u32;
                let plan = quiver_filter::describe(filter, &fields, rows);
                let rf = RowFilter::new(filter, seg, v);
                let candidates = rf.candidate_count();
                let strategies: Vec<String> = settings
                    .schema
                    .vectors
                    .keys()
                    .zip(&seg.graphs)
                    .map(|(name, graph)| {
                        let strategy = Strategy::choose(
                            graph.is_some(),
                            graph.as_ref().is_some_and(|g| g.codes.is_some()),
                            candidates,
                            u64::from(rows),
                            settings.config.filter_scan_fraction,
                        );
                        let label = if settings.schema.vectors.len() > 1 {
                            format!("vector `{name}`: ")
                        } else {
                            String::new()
                        };
                        format!("{label}{}", strategy.describe(candidates))
                    })
                    .collect();
                let strategy = strategies.join("; ");
                format!(
                    "segment {} ({}, {rows} rows): estimate {}; candidates {candidates} ({} sure, {} checked per point); {plan}; strategy: {strategy}",
                    seg.id,
                    if seg.is_mutable() { "mutable, no field indexes" } else { "sealed" },
                    plan.estimate,
                    rf.eval.matched.len(),
                    rf.eval.unsure.len(),
                )
            });
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }
}

/// How many of a quantized graph search's best candidates are re-scored with the `f32` rows:
/// 2k reached the recall of `f32` traversal at every ef on wordnet (BENCHMARKS.md).
pub(super) fn rerank_count(k: usize) -> usize {
    (2 * k).max(10)
}

/// A search on a segment's codes, run by [`on_codes`] with the scorers of their kind.
trait CodeSearch {
    /// Traverses or scans on `approx`, then re-scores the best `rerank` on `exact`.
    fn run<A: Scorer, E: Scorer>(
        &self,
        approx: &A,
        exact: &E,
        rerank: usize,
    ) -> (Vec<Hit>, SearchStats);
}

struct GraphOnCodes<'a, F: Fn(u32) -> bool + ?Sized> {
    graph: &'a quiver_index::hnsw::HnswGraph,
    k: usize,
    ef: usize,
    accept: &'a F,
    traversal: Traversal,
}

impl<F: Fn(u32) -> bool + ?Sized> CodeSearch for GraphOnCodes<'_, F> {
    fn run<A: Scorer, E: Scorer>(
        &self,
        approx: &A,
        exact: &E,
        rerank: usize,
    ) -> (Vec<Hit>, SearchStats) {
        let accept = |o: u32| (self.accept)(o);
        self.graph.search_reranked(
            approx,
            exact,
            self.k,
            self.ef,
            rerank,
            accept,
            self.traversal,
        )
    }
}

struct ScanOnCodes<'a, F: Fn(u32) -> bool> {
    k: usize,
    rows: &'a quiver_filter::Evaluation,
    accept: &'a F,
}

impl<F: Fn(u32) -> bool> CodeSearch for ScanOnCodes<'_, F> {
    fn run<A: Scorer, E: Scorer>(
        &self,
        approx: &A,
        exact: &E,
        rerank: usize,
    ) -> (Vec<Hit>, SearchStats) {
        let candidates = self.rows.candidates();
        flat::search_subset_reranked(approx, exact, self.k, rerank, candidates, self.accept)
    }
}

/// Runs `search` with the scorers of `codes`: LVQ-8 traverses on its codes and re-scores the
/// best [`rerank_count`] with the `f32` rows (`rows`); LVQ-4 traverses on its 4-bit codes and
/// re-scores the whole beam (at least `ef`: 4-bit scores order it too loosely to keep only
/// the best 2k, see the index crate's hnsw tests) with the `f32` rows, or, for LVQ-4x8, on
/// its two-level codes. LeanVec projects the query once, traverses on the codes of the
/// projected rows and re-scores the whole beam at full dimension (the reduced scores miss
/// whatever lies outside the projection, so they order the beam loosely too).
fn on_codes(
    codes: &Codes,
    query: &[f32],
    metric: quiver_index::Metric,
    rows: &DenseScorer,
    k: usize,
    ef: usize,
    search: &impl CodeSearch,
) -> (Vec<Hit>, SearchStats) {
    match codes {
        Codes::Lvq8(c) => search.run(&c.scorer(query, metric), rows, rerank_count(k)),
        Codes::Lvq4(c) => {
            let approx = c.scorer(query, metric);
            let rerank = rerank_count(k).max(ef);
            match c.rescorer(query, metric) {
                Some(two_level) => search.run(&approx, &two_level, rerank),
                None => search.run(&approx, rows, rerank),
            }
        }
        Codes::LeanVec(lean) => {
            let reduced = lean.projection.project(query);
            let rerank = rerank_count(k).max(ef);
            match &lean.primary {
                ReducedCodes::Lvq8(c) => rescore_leanvec(
                    lean,
                    &c.scorer(&reduced, metric),
                    query,
                    metric,
                    rows,
                    rerank,
                    search,
                ),
                ReducedCodes::Lvq4(c) => rescore_leanvec(
                    lean,
                    &c.scorer(&reduced, metric),
                    query,
                    metric,
                    rows,
                    rerank,
                    search,
                ),
            }
        }
    }
}

/// Runs `search` traversing on `approx` and re-scoring on LeanVec's secondary: its
/// full-dimension LVQ-8 codes, or the `f32` rows.
fn rescore_leanvec<A: Scorer>(
    lean: &LeanVecCodes,
    approx: &A,
    query: &[f32],
    metric: quiver_index::Metric,
    rows: &DenseScorer,
    rerank: usize,
    search: &impl CodeSearch,
) -> (Vec<Hit>, SearchStats) {
    match &lean.secondary {
        Some(full) => search.run(approx, &full.scorer(query, metric), rerank),
        None => search.run(approx, rows, rerank),
    }
}

/// Searches one segment: its graph for `position` if it has one and `exact` is false, else
/// exactly on the `f32` rows. With a filter, the planner (`planner.rs`) picks exact search over
/// the candidate rows or graph search with the filter checked during traversal; with `exact`,
/// always the former on the `f32` rows.
#[allow(clippy::too_many_arguments)]
pub(super) fn search_segment(
    seg: &Segment,
    seq: u64,
    position: usize,
    kind: &VectorKind,
    query: &[f32],
    k: usize,
    ef: usize,
    filter: Option<&Filter>,
    scan_fraction: f64,
    exact: bool,
) -> (Vec<Hit>, SearchStats) {
    seg.view_at(seq, |v| {
        let rows = v.vectors[position];
        let (dim, metric) = (kind.dim(), kind.distance().metric());
        // Without a graph (nor its codes) every path below scores the f32 rows.
        let graph = match exact {
            true => None,
            false => seg.graphs.get(position).and_then(Option::as_ref),
        };
        let exact_scorer = DenseScorer {
            rows,
            dim,
            metric,
            query,
        };
        let graph_search = |index: &GraphIndex,
                            accept: &dyn Fn(u32) -> bool,
                            traversal: Traversal| match &index.codes {
            Some(codes) => on_codes(
                codes,
                query,
                metric,
                &exact_scorer,
                k,
                ef,
                &GraphOnCodes {
                    graph: &index.graph,
                    k,
                    ef,
                    accept,
                    traversal,
                },
            ),
            None => index.graph.search(&exact_scorer, k, ef, accept, traversal),
        };
        let Some(filter) = filter else {
            let deleted = &v.deleted;
            let accept = |o: u32| !deleted.is_deleted(o);
            return match graph {
                Some(index) => graph_search(index, &accept, Traversal::Through),
                None => flat::search(rows, dim, metric, query, k, accept),
            };
        };
        let rf = RowFilter::new(filter, seg, v);
        let accept = |o: u32| rf.accepts(o);
        // A scan visits only the candidates: when none needs a payload check they all match,
        // and only deletion is left to test (the bitmap lookups of `accepts` were 40 % of a
        // scan on codes).
        let exact_answer = rf.eval.unsure.is_empty();
        let scan_accept = |o: u32| {
            if exact_answer {
                !v.deleted.is_deleted(o)
            } else {
                rf.accepts(o)
            }
        };
        let candidates = rf.candidate_count();
        let codes = graph.and_then(|g| g.codes.as_ref());
        let scan = |use_codes: bool| match codes {
            // Large sets on the graph's LVQ codes (a quarter of the bytes or less, on huge
            // pages), the best re-scored.
            Some(codes) if use_codes => on_codes(
                codes,
                query,
                metric,
                &exact_scorer,
                k,
                ef,
                &ScanOnCodes {
                    k,
                    rows: &rf.eval,
                    accept: &scan_accept,
                },
            ),
            _ => flat::search_subset(
                rows,
                dim,
                metric,
                query,
                k,
                rf.eval.candidates(),
                scan_accept,
            ),
        };
        let strategy = Strategy::choose(
            graph.is_some(),
            codes.is_some(),
            candidates,
            v.rows() as u64,
            scan_fraction,
        );
        match (strategy, graph) {
            (Strategy::Graph { traversal }, Some(index)) => {
                // Rows whose payload must be checked are checked up front only when they are
                // few: a graph search checks a few thousand rows, not a whole segment.
                let (hits, stats) = if rf.eval.unsure.len() <= planner::EAGER_CHECKS {
                    let passing = rf.passing_bits();
                    graph_search(index, &|o| passing.contains(o), traversal)
                } else {
                    graph_search(index, &accept, traversal)
                };
                if hits.len() >= k {
                    return (hits, stats);
                }
                // Fewer accepted nodes reachable than asked for: finish exactly, so the
                // result holds min(k, matching points).
                let (hits, mut more) = scan(candidates >= planner::CODE_SCAN_MIN_ROWS);
                more.add(stats);
                (hits, more)
            }
            (Strategy::ScanCodes { .. }, _) => scan(true),
            _ => scan(false),
        }
    })
}

/// Qdrant's IDF of a term held by `n` of `points` live points:
/// `ln(1 + (N − n + 0.5) / (n + 0.5))`.
pub(super) fn idf(points: u64, n: u64) -> f64 {
    let (big_n, n) = (points as f64, n.min(points) as f64);
    (1.0 + (big_n - n + 0.5) / (n + 0.5)).ln()
}

/// Per query term, the live rows of one segment holding it at snapshot `seq`.
pub(super) fn document_frequencies(
    seg: &Segment,
    seq: u64,
    j: usize,
    terms: &[QueryTerm],
) -> Vec<u64> {
    let none_deleted = seg.deleted.count_at(seq) == 0;
    seg.view_at(seq, |v| {
        let live = |r: u32| !v.deleted.is_deleted(r);
        terms
            .iter()
            .map(|t| match v.sparse.get(j) {
                Some(SparseRows::Mutable(c)) => c.postings.count(t.term, v.rows() as u32, live),
                Some(SparseRows::Sealed { postings, .. }) => {
                    let Ok(view) = PostingsView::new(postings.body()) else {
                        return 0;
                    };
                    match none_deleted {
                        true => view.term(t.term).map_or(0, |e| u64::from(e.len)),
                        false => view.count(t.term, live),
                    }
                }
                None => 0,
            })
            .collect()
    })
}

/// Searches sparse vector `j` of one segment: the `k` best live rows that pass `filter`
/// (the same per-segment evaluation as dense search: field indexes, then per-point checks).
fn search_sparse_segment(
    seg: &Segment,
    seq: u64,
    j: usize,
    terms: &[QueryTerm],
    k: usize,
    filter: Option<&Filter>,
) -> (Vec<Hit>, SearchStats) {
    seg.view_at(seq, |v| {
        let rf = filter.map(|f| RowFilter::new(f, seg, v));
        let accept = |o: u32| match &rf {
            Some(rf) => rf.accepts(o),
            None => !v.deleted.is_deleted(o),
        };
        match v.sparse.get(j) {
            Some(SparseRows::Mutable(c)) => c.postings.search(terms, v.rows() as u32, k, accept),
            // Verified when the segment was opened or built.
            Some(SparseRows::Sealed { postings, .. }) => match PostingsView::new(postings.body()) {
                Ok(view) => maxscore::search(&view, terms, k, accept),
                Err(_) => Default::default(),
            },
            None => Default::default(),
        }
    })
}
