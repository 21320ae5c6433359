//! BM25 vectors at the collection level: filling them from payload text at upsert, turning
//! query text into terms, and the search with the collection's statistics (`crate::bm25`
//! holds the per-segment part).
//!
//! Statistics are those of the query's snapshot: `N` is the number of live points whose BM25
//! vector has at least one term, `avgdl` their mean length, and a term's document frequency
//! the number of live points holding it. A deleted point leaves all three at once; an
//! overwritten point is a deletion and an insert, so it counts once, with its new text.

use super::*;
use crate::bm25::{self, Statistics};
use crate::point::Payload;
use crate::schema::Bm25;
use quiver_index::sparse::QueryTerm;

impl Collection {
    /// Fills the BM25 vectors the points do not carry by analysing their payload text.
    /// A point lacking the field, or holding something else than a string there, is an error
    /// (as for a text-embedded vector); an empty text gives an empty vector.
    pub(super) fn analyze_missing(&self, points: &mut [Point]) -> Result<()> {
        for (name, kind) in &self.schema().sparse_vectors {
            let Some(spec) = &kind.bm25 else {
                continue;
            };
            let analyzer = spec.analyzer().map_err(|m| self.invalid(m))?;
            for p in points.iter_mut() {
                if p.sparse.contains_key(name) {
                    continue;
                }
                let v = match p.payload.get(&spec.field) {
                    Some(serde_json::Value::String(text)) => counted(&analyzer, text),
                    other => {
                        let found = match other {
                            None => "it has no such field".to_string(),
                            Some(v) => format!("it holds {}", write::json_kind(v)),
                        };
                        return Err(self.invalid(format!(
                            "point {}: bm25 vector `{name}` is computed from the text in payload field `{}`, but {found}",
                            p.id, spec.field
                        )));
                    }
                };
                p.sparse.insert(name.clone(), v);
            }
        }
        Ok(())
    }

    /// Recomputes a point's BM25 vectors from its new payload (payload updates keep BM25
    /// vectors in step with their text; a point whose field is gone or not a string gets an
    /// empty vector).
    pub(super) fn reanalyze(&self, p: &mut PreparedPoint, payload: &Payload) -> Result<()> {
        let schema = self.schema();
        for (name, v) in p.sparse.iter_mut() {
            let Some(spec) = schema
                .sparse_vectors
                .get(name)
                .and_then(|k| k.bm25.as_ref())
            else {
                continue;
            };
            let analyzer = spec.analyzer().map_err(|m| self.invalid(m))?;
            *v = match payload.get(&spec.field) {
                Some(serde_json::Value::String(text)) => counted(&analyzer, text),
                _ => SparseVector::default(),
            };
        }
        Ok(())
    }

    /// The query for a text on BM25 vector `vector_name`: its distinct terms, each of weight
    /// 1 (a term repeated in the query counts once). Search it as a sparse query on that
    /// vector.
    pub fn bm25_query(&self, vector_name: &str, text: &str) -> Result<SparseVector> {
        let schema = self.schema();
        let kind = schema.sparse_vectors.get(vector_name).ok_or_else(|| {
            if schema.vectors.contains_key(vector_name) {
                self.invalid(format!(
                    "vector `{vector_name}` is dense, not a bm25 vector: search it with a vector or, if it is embedded from text, with the text's embedding"
                ))
            } else {
                Error::UnknownVector {
                    collection: self.name.clone(),
                    name: vector_name.to_string(),
                    known: schema.names(),
                }
            }
        })?;
        let Some(spec) = &kind.bm25 else {
            return Err(self.invalid(format!(
                "sparse vector `{vector_name}` is not a bm25 vector: search it with indices and values"
            )));
        };
        let analyzer = spec.analyzer().map_err(|m| self.invalid(m))?;
        let indices = analyzer.query_terms(text);
        let values = vec![1.0; indices.len()];
        Ok(SparseVector { indices, values })
    }

    /// A sparse query on BM25 vector `j` (checked, sorted): exact top-k by BM25 with the
    /// collection's statistics at the snapshot, per segment, merged.
    pub(super) fn search_bm25(
        &self,
        req: &SearchRequest,
        query: &SparseVector,
        j: usize,
        spec: &Bm25,
    ) -> Result<Vec<ScoredPoint>> {
        let snap = self.snapshot();
        let segments = &snap.segments;
        let mut stats = Statistics::default();
        for seg in segments.iter() {
            stats.add(bm25::statistics(seg, snap.seq, j));
        }
        let mut terms: Vec<QueryTerm> = query
            .indices
            .iter()
            .zip(&query.values)
            .map(|(&term, &weight)| QueryTerm { term, weight })
            .collect();
        let mut holding = vec![0u64; terms.len()];
        for seg in segments.iter() {
            for (n, df) in holding
                .iter_mut()
                .zip(search::document_frequencies(seg, snap.seq, j, &terms))
            {
                *n += df;
            }
        }
        for (t, &n) in terms.iter_mut().zip(&holding) {
            t.weight = (f64::from(t.weight) * search::idf(stats.documents, n)) as f32;
        }
        let depth = req.depth().min(segments.iter().map(|s| s.rows()).sum());
        let (params, avgdl) = (spec.params(), stats.average_length());
        let mut work = 0;
        let per_segment: Vec<Vec<Hit>> = segments
            .iter()
            .map(|seg| {
                let (hits, s) = bm25::search_segment(
                    seg,
                    snap.seq,
                    j,
                    &terms,
                    depth,
                    req.filter.as_ref(),
                    params,
                    avgdl,
                );
                work += s.distance_computations;
                hits
            })
            .collect();
        self.distance_computations
            .fetch_add(work, Ordering::Relaxed);
        self.merge(req, segments, snap.seq, per_segment)
    }
}

/// A text's BM25 vector: its term ids and how often each occurs.
fn counted(analyzer: &quiver_analyzer::Analyzer, text: &str) -> SparseVector {
    let counts = analyzer.count(text);
    let (indices, values) = counts
        .terms
        .into_iter()
        .map(|(id, n)| (id, n as f32))
        .unzip();
    SparseVector { indices, values }
}
