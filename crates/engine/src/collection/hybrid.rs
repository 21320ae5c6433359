//! Executes a hybrid query tree (`hybrid.rs`): leaves are single searches, fusion stages
//! fuse their prefetches' lists (`fusion.rs`), nearest stages over prefetches re-score the
//! union of the prefetched candidates exactly.

use super::*;
use crate::fusion;
use crate::hybrid::{Fusion, HybridQuery, QueryStage, Rank, merge_filters};
use quiver_filter::Condition;
use std::collections::BTreeSet;

/// A stage's ranked result: ids and scores, best first.
type Ranked = Vec<(PointId, f32)>;

impl Collection {
    /// Runs a query tree: the root's best `limit` after the first `offset`, carrying what
    /// `with` asks for. Each search in the tree takes its own snapshot.
    pub fn query(&self, q: &HybridQuery) -> Result<Vec<ScoredPoint>> {
        self.check_usable()?;
        self.check_stage(&q.root, "query")?;
        self.run_stage(&q.root, q.offset, q.with)
    }

    /// One stage, its filter already merged with its parents': its best `limit` after the
    /// first `offset`.
    fn run_stage(&self, stage: &QueryStage, offset: usize, with: With) -> Result<Vec<ScoredPoint>> {
        let sources: Vec<Ranked> = stage
            .prefetch
            .iter()
            .map(|p| {
                let filter = merge_filters(stage.filter.as_ref(), p.filter.as_ref());
                let hits = self.run_stage(
                    &QueryStage {
                        filter,
                        ..p.clone()
                    },
                    0,
                    With::default(),
                )?;
                Ok(hits.into_iter().map(|h| (h.id, h.score)).collect())
            })
            .collect::<Result<_>>()?;
        match &stage.rank {
            Rank::Nearest {
                vector_name,
                vector,
            } => {
                let mut req = SearchRequest {
                    vector_name: vector_name.clone(),
                    vector: vector.clone(),
                    k: stage.limit,
                    score_threshold: stage.score_threshold,
                    with,
                    ef: stage.ef,
                    filter: stage.filter.clone(),
                    exact: stage.exact,
                    offset,
                };
                if !stage.prefetch.is_empty() {
                    // Re-score only the prefetched candidates, all of them: exactly.
                    let ids: BTreeSet<PointId> = sources.iter().flatten().map(|p| p.0).collect();
                    if ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    req.filter
                        .get_or_insert_with(Filter::default)
                        .must
                        .push(Condition::HasId(ids));
                    req.exact = true;
                }
                self.search(&req)
            }
            Rank::Fusion(f) => {
                let mut fused = match f {
                    Fusion::Rrf { k, weights } => fusion::rrf(&sources, *k, weights.as_deref()),
                    Fusion::Dbsf => fusion::dbsf(&sources),
                };
                fused.truncate(stage.limit.saturating_add(offset));
                if let Some(t) = stage.score_threshold {
                    fused.retain(|p| p.1 >= t);
                }
                let page = fused.into_iter().skip(offset).collect();
                self.fetch(page, with)
            }
        }
    }

    /// Checks what the engine cannot leave to the searches it runs: fusion needs prefetches,
    /// an RRF `k` of at least 1 and one finite weight per prefetch. `at` names the stage
    /// (`query`, `query.prefetch[1]`, ...).
    fn check_stage(&self, stage: &QueryStage, at: &str) -> Result<()> {
        if let Rank::Fusion(f) = &stage.rank {
            if stage.prefetch.is_empty() {
                return Err(self.invalid(format!("{at}: fusion needs at least one prefetch")));
            }
            if let Fusion::Rrf { k, weights } = f {
                if *k == 0 {
                    return Err(self.invalid(format!("{at}: the RRF k must be at least 1")));
                }
                if let Some(w) = weights {
                    if w.len() != stage.prefetch.len() {
                        return Err(self.invalid(format!(
                            "{at}: {} RRF weights for {} prefetches; give one per prefetch",
                            w.len(),
                            stage.prefetch.len()
                        )));
                    }
                    if let Some(i) = w.iter().position(|x| !x.is_finite()) {
                        return Err(self.invalid(format!("{at}: RRF weight {i} is not finite")));
                    }
                }
            }
        }
        for (i, p) in stage.prefetch.iter().enumerate() {
            self.check_stage(p, &format!("{at}.prefetch[{i}]"))?;
        }
        Ok(())
    }

    /// The records of fused points, in the given order with their fused scores; a point
    /// deleted since it was found is left out (unless only ids and scores are wanted).
    fn fetch(&self, fused: Ranked, with: With) -> Result<Vec<ScoredPoint>> {
        if with == With::default() {
            return Ok(fused
                .into_iter()
                .map(|(id, score)| ScoredPoint {
                    id,
                    score,
                    payload: None,
                    vectors: None,
                    sparse: None,
                    multi: None,
                })
                .collect());
        }
        let ids: Vec<PointId> = fused.iter().map(|p| p.0).collect();
        let mut records: HashMap<PointId, Record> = self
            .retrieve(&ids, with)?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        Ok(fused
            .into_iter()
            .filter_map(|(id, score)| {
                let r = records.remove(&id)?;
                Some(ScoredPoint {
                    id,
                    score,
                    payload: r.payload,
                    vectors: r.vectors,
                    sparse: r.sparse,
                    multi: r.multi,
                })
            })
            .collect())
    }
}
