//! Multi-vectors in the write and query paths: token lists checked, normalised and encoded
//! (MUVERA) at upsert; MaxSim queries answered per segment from the encodings' graph, the
//! best candidates re-scored exactly, or by an exact MaxSim scan.

use super::write::normalize;
use super::*;
use crate::schema::Muvera;
use quiver_index::multi::{Fde, MaxSim};
use quiver_kernels::TopK;

/// The MUVERA encoders of a schema's multi-vectors, by name. Built once when a collection
/// opens: the draws depend only on parameters that cannot change after creation, and drawing
/// them per query would cost more than the query.
pub(super) fn encoders(schema: &Schema) -> Result<BTreeMap<String, Arc<Fde>>> {
    schema
        .vectors
        .iter()
        .filter_map(|(name, kind)| Some((name, kind.multi_config()?)))
        .map(|(name, (dim, _, muvera))| {
            let fde = Fde::new(dim, muvera.fde_params()).map_err(|e| Error::InvalidSchema {
                reason: format!("multi-vector `{name}`: muvera: {e}"),
            })?;
            Ok((name.clone(), Arc::new(fde)))
        })
        .collect()
}

/// A multi-vector's settings as a search or an upsert needs them.
pub(super) struct MultiTarget {
    /// Position among all vectors (the encoding's row and graph).
    pub position: usize,
    /// Position among the multi-vectors (the token lists).
    pub j: usize,
    pub dim: usize,
    pub max_tokens: usize,
    pub muvera: Muvera,
    pub distance: Distance,
    pub fde: Arc<Fde>,
}

impl Collection {
    fn multi_error(&self, point: Option<PointId>, vector: &str, reason: String) -> Error {
        Error::InvalidMultiVector {
            collection: self.name.clone(),
            point,
            vector: vector.to_string(),
            reason,
        }
    }

    /// The multi-vector `name`, or an error saying what `name` is instead.
    pub(super) fn multi_target(&self, point: Option<PointId>, name: &str) -> Result<MultiTarget> {
        let schema = self.schema();
        let Some(kind) = schema.vectors.get(name) else {
            if schema.sparse_vectors.contains_key(name) {
                return Err(self.multi_error(
                    point,
                    name,
                    "it is a sparse vector, not a multi-vector".into(),
                ));
            }
            return Err(Error::UnknownVector {
                collection: self.name.clone(),
                name: name.to_string(),
                known: schema.names(),
            });
        };
        let (Some((dim, max_tokens, muvera)), Some(fde)) =
            (kind.multi_config(), self.encoders.get(name))
        else {
            return Err(self.multi_error(
                point,
                name,
                "it is a dense vector: give one vector, not a list of token vectors".into(),
            ));
        };
        Ok(MultiTarget {
            position: schema.position(name).unwrap_or(0),
            j: schema.multi_position(name).unwrap_or(0),
            dim,
            max_tokens,
            muvera,
            distance: kind.distance(),
            fde: Arc::clone(fde),
        })
    }

    /// Checks a token list (at least one token and at most `max_tokens`, each of the
    /// declared dimension, finite; errors name the token and value), normalises each token
    /// for cosine, and returns the tokens back to back.
    pub(super) fn prepare_tokens(
        &self,
        point: Option<PointId>,
        name: &str,
        target: &MultiTarget,
        tokens: &[Vec<f32>],
    ) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Err(self.multi_error(point, name, "it has no token vector".into()));
        }
        if tokens.len() > target.max_tokens {
            return Err(self.multi_error(
                point,
                name,
                format!(
                    "{} token vectors, above the limit of {} (max_tokens)",
                    tokens.len(),
                    target.max_tokens
                ),
            ));
        }
        let mut flat = Vec::with_capacity(tokens.len() * target.dim);
        for (t, token) in tokens.iter().enumerate() {
            if token.len() != target.dim {
                return Err(self.multi_error(
                    point,
                    name,
                    format!(
                        "token vector [{t}] has {} values, the dimension is {}",
                        token.len(),
                        target.dim
                    ),
                ));
            }
            if let Some((i, x)) = token.iter().enumerate().find(|(_, x)| !x.is_finite()) {
                return Err(self.multi_error(
                    point,
                    name,
                    format!("token vector [{t}] has {x} at index {i}, not a finite number"),
                ));
            }
            let start = flat.len();
            flat.extend_from_slice(token);
            if target.distance == Distance::Cosine
                && let Some(v) = flat.get_mut(start..)
            {
                normalize(v);
            }
        }
        Ok(flat)
    }

    /// A point's multi-vector checked: its tokens back to back and its document encoding.
    pub(super) fn prepare_multi(
        &self,
        point: PointId,
        name: &str,
        tokens: &[Vec<f32>],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let target = self.multi_target(Some(point), name)?;
        let flat = self.prepare_tokens(Some(point), name, &target, tokens)?;
        let fde = target.fde.encode_document(&flat);
        Ok((flat, fde))
    }

    /// A MaxSim query: per segment, graph candidates by the query's encoding re-scored by
    /// MaxSim (or every point scored by MaxSim, without a graph or with `exact`), merged.
    pub(super) fn search_multi(
        &self,
        req: &SearchRequest,
        tokens: &[Vec<f32>],
    ) -> Result<Vec<ScoredPoint>> {
        let target = self.multi_target(None, &req.vector_name)?;
        let query = self.prepare_tokens(None, &req.vector_name, &target, tokens)?;
        let fde = target.fde.encode_query(&query);
        let settings = self.settings();
        let kind = &settings.schema.vectors[&req.vector_name];
        let snap = self.snapshot();
        let segments = &snap.segments;
        let depth = req.depth().min(segments.iter().map(|s| s.rows()).sum());
        let plan = MultiPlan {
            target: &target,
            kind,
            query: &query,
            fde: &fde,
            k: depth,
            ef: req.ef.unwrap_or(DEFAULT_EF),
            filter: req.filter.as_ref(),
            scan_fraction: settings.config.filter_scan_fraction,
            exact: req.exact,
        };
        let mut work = 0;
        let per_segment: Vec<Vec<Hit>> = segments
            .iter()
            .map(|seg| {
                let (hits, stats) = plan.search(seg, snap.seq);
                work += stats.distance_computations;
                hits
            })
            .collect();
        self.distance_computations
            .fetch_add(work, Ordering::Relaxed);
        self.merge(req, segments, snap.seq, per_segment)
    }

    /// A point's multi-vectors, as stored.
    pub(super) fn multi_of(&self, view: &View<'_>, row: u32) -> BTreeMap<String, Vec<Vec<f32>>> {
        let schema = self.schema();
        schema
            .vectors
            .iter()
            .filter_map(|(name, kind)| Some((name, kind.multi_config()?.0)))
            .zip(&view.multi)
            .map(|((name, dim), rows)| {
                let tokens = rows.row(row).chunks_exact(dim).map(<[f32]>::to_vec);
                (name.clone(), tokens.collect())
            })
            .collect()
    }
}

/// One MaxSim query, prepared, as each segment runs it.
struct MultiPlan<'a> {
    target: &'a MultiTarget,
    kind: &'a VectorKind,
    /// The query's tokens, back to back (normalised for cosine).
    query: &'a [f32],
    /// The query's encoding.
    fde: &'a [f32],
    k: usize,
    ef: usize,
    filter: Option<&'a Filter>,
    scan_fraction: f64,
    exact: bool,
}

impl MultiPlan<'_> {
    /// The `k` best rows of one segment by MaxSim. With a graph (and not `exact`), the
    /// dense path (`search_segment`, which plans filters as for any dense vector) finds the
    /// best `max(rescore, k)` rows by encoding, which are re-scored by MaxSim; otherwise
    /// every live row that passes the filter is. `distance_computations` counts encoding
    /// comparisons plus MaxSim evaluations (one per row scored).
    fn search(&self, seg: &Segment, seq: u64) -> (Vec<Hit>, SearchStats) {
        let graph = !self.exact
            && seg
                .graphs
                .get(self.target.position)
                .is_some_and(Option::is_some);
        if self.k == 0 {
            return Default::default();
        }
        if graph {
            let candidates = self.target.muvera.rescore.max(self.k);
            let (hits, mut stats) = search::search_segment(
                seg,
                seq,
                self.target.position,
                self.kind,
                self.fde,
                candidates,
                self.ef.max(candidates),
                self.filter,
                self.scan_fraction,
                false,
            );
            let rescored = seg.view_at(seq, |v| {
                self.rescore(v, hits.iter().map(|h| h.offset), &mut stats)
            });
            return (rescored, stats);
        }
        seg.view_at(seq, |v| {
            let mut stats = SearchStats::default();
            let rows = 0..v.rows() as u32;
            let hits = match self.filter {
                Some(filter) => {
                    let rf = RowFilter::new(filter, seg, v);
                    self.rescore(v, rows.filter(|&o| rf.accepts(o)), &mut stats)
                }
                None => self.rescore(v, rows.filter(|&o| !v.deleted.is_deleted(o)), &mut stats),
            };
            (hits, stats)
        })
    }

    /// The `k` best of `rows` by MaxSim, best first (ties: lower offset first).
    fn rescore(
        &self,
        v: &View<'_>,
        rows: impl Iterator<Item = u32>,
        stats: &mut SearchStats,
    ) -> Vec<Hit> {
        let Some(lists) = v.multi.get(self.target.j) else {
            return Vec::new();
        };
        let mut scorer = MaxSim::new(self.query, self.target.dim);
        let mut top = TopK::new(self.k);
        for o in rows {
            top.push(scorer.score(lists.row(o)), u64::from(o));
            stats.distance_computations += 1;
        }
        top.into_sorted_vec()
            .into_iter()
            .map(|(score, o)| Hit {
                score,
                offset: o as u32,
            })
            .collect()
    }
}
