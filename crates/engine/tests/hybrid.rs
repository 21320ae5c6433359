//! Hybrid queries (prefetch trees with RRF/DBSF fusion and re-scoring) against a brute-force
//! interpreter of the same tree over a model of the collection: random dense and sparse data
//! over several segments, deletions, filters at every level, nesting, offsets, thresholds.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

mod common;
use common::Rng;
use proptest::prelude::*;
use quiver_engine::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// A live point of the model: vector `""` (4-dim), vector `r` (3-dim), sparse `s`, payload.
struct Row {
    dense: Vec<f32>,
    r: Vec<f32>,
    s: SparseVector,
    payload: Payload,
}

type Model = BTreeMap<u64, Row>;

fn schema() -> Schema {
    let mut s =
        Schema::dense(4, Distance::Dot).with_sparse("s", SparseKind::with_modifier(Modifier::None));
    s.vectors
        .insert("r".into(), VectorKind::dense(3, Distance::Dot));
    s
}

/// Uniform in [-1, 1) on a grid of 2^-30: `Rng::f32`'s grid of 1e-4 makes equal scores
/// common (a one-term query ties any two points with equal values), and the engine orders
/// ties by storage position, which the reference cannot know.
fn fine(rng: &mut Rng) -> f32 {
    (rng.next() as f64 / f64::from(1u32 << 30) - 1.0) as f32
}

fn vector(rng: &mut Rng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| fine(rng)).collect()
}

fn sparse(rng: &mut Rng) -> SparseVector {
    let mut entries = BTreeMap::new();
    for _ in 0..1 + rng.below(6) {
        entries.insert(rng.below(24) as u32, fine(rng) * 2.0 + 0.5);
    }
    let (indices, values) = entries.into_iter().unzip();
    SparseVector::new(indices, values)
}

fn write_round(c: &Collection, model: &mut Model, rng: &mut Rng) {
    let mut points = Vec::new();
    for _ in 0..120 {
        let id = rng.below(300);
        let row = Row {
            dense: vector(rng, 4),
            r: vector(rng, 3),
            s: sparse(rng),
            payload: json!({"g": rng.below(5)}).as_object().unwrap().clone(),
        };
        points.push(
            Point::new(id, row.dense.clone())
                .with_vector("r", row.r.clone())
                .with_sparse("s", row.s.clone())
                .with_payload(row.payload.clone()),
        );
        model.insert(id, row);
    }
    for batch in points.chunks(30) {
        c.upsert(batch.to_vec()).unwrap();
    }
    let gone: Vec<u64> = (0..15).map(|_| rng.below(300)).collect();
    for id in &gone {
        model.remove(id);
    }
    c.delete(&gone.iter().map(|&i| PointId::Num(i)).collect::<Vec<_>>())
        .unwrap();
}

/// A `must` filter on `g` (so Qdrant's merge of nested filters is their conjunction).
fn filter(rng: &mut Rng) -> Option<Filter> {
    let f = match rng.below(4) {
        0 => json!({"must": [{"key": "g", "match": {"any": [0, 1, 3]}}]}),
        1 => json!({"must_not": [{"key": "g", "match": {"value": 2}}]}),
        _ => return None,
    };
    Some(Filter::from_json(&f).unwrap())
}

fn leaf(rng: &mut Rng) -> QueryStage {
    let (name, vector) = match rng.below(3) {
        0 => ("", QueryVector::Dense(vector(rng, 4))),
        1 => ("r", QueryVector::Dense(vector(rng, 3))),
        _ => ("s", QueryVector::Sparse(sparse(rng))),
    };
    let mut s = QueryStage::nearest(name, vector, 1 + rng.below(25) as usize);
    s.filter = filter(rng);
    s.exact = true;
    s
}

fn fusion(rng: &mut Rng, prefetch: usize) -> Fusion {
    match rng.below(3) {
        0 => Fusion::Dbsf,
        1 => Fusion::Rrf {
            k: DEFAULT_RRF_K,
            weights: None,
        },
        _ => Fusion::Rrf {
            k: 1 + rng.below(60) as usize,
            weights: Some((0..prefetch).map(|_| rng.below(4) as f32 * 0.5).collect()),
        },
    }
}

/// A random tree of depth ≤ `depth` whose root ranks by fusion or by a vector.
fn tree(rng: &mut Rng, depth: u32) -> QueryStage {
    if depth == 0 || rng.below(3) == 0 {
        return leaf(rng);
    }
    let prefetch: Vec<QueryStage> = (0..1 + rng.below(3))
        .map(|_| tree(rng, depth - 1))
        .collect();
    let mut s = match rng.below(3) {
        0 => leaf(rng).with_prefetch(prefetch),
        _ => QueryStage::fused(
            fusion(rng, prefetch.len()),
            prefetch,
            1 + rng.below(20) as usize,
        ),
    };
    s.filter = filter(rng);
    if rng.below(4) == 0 {
        s.score_threshold = Some(match s.rank {
            Rank::Fusion(_) => 0.3,
            Rank::Nearest { .. } => 0.0,
        });
    }
    s
}

fn score(row: &Row, name: &str, q: &QueryVector) -> Option<f64> {
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum();
    match (name, q) {
        ("", QueryVector::Dense(q)) => Some(dot(&row.dense, q)),
        ("r", QueryVector::Dense(q)) => Some(dot(&row.r, q)),
        (_, QueryVector::Sparse(q)) => {
            let shared: Vec<f64> = q
                .indices
                .iter()
                .zip(&q.values)
                .filter_map(|(i, w)| {
                    let at = row.s.indices.iter().position(|j| j == i)?;
                    Some(f64::from(w * row.s.values[at]))
                })
                .collect();
            (!shared.is_empty()).then(|| shared.iter().sum())
        }
        _ => unreachable!(),
    }
}

/// The tree evaluated by brute force: `keep` is the conjunction of the filters above.
fn reference(
    model: &Model,
    stage: &QueryStage,
    keep: &dyn Fn(u64) -> bool,
    offset: usize,
) -> Vec<(u64, f64)> {
    let passes = |id: u64| {
        keep(id)
            && stage
                .filter
                .as_ref()
                .is_none_or(|f| f.matches(PointId::Num(id), &model[&id].payload))
    };
    let sources: Vec<Vec<(u64, f64)>> = stage
        .prefetch
        .iter()
        .map(|p| reference(model, p, &passes, 0))
        .collect();
    let candidates: BTreeSet<u64> = sources.iter().flatten().map(|p| p.0).collect();
    let mut out = match &stage.rank {
        Rank::Nearest {
            vector_name,
            vector,
        } => {
            let mut all: Vec<(u64, f64)> = model
                .iter()
                .filter(|(id, _)| stage.prefetch.is_empty() || candidates.contains(id))
                .filter(|(id, _)| passes(**id))
                .filter_map(|(&id, row)| Some((id, score(row, vector_name, vector)?)))
                .filter(|p| stage.score_threshold.is_none_or(|t| p.1 as f32 >= t))
                .collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1));
            all
        }
        Rank::Fusion(f) => {
            let mut order: Vec<u64> = Vec::new();
            for &(id, _) in sources.iter().flatten() {
                if !order.contains(&id) {
                    order.push(id);
                }
            }
            let mut fused: Vec<(u64, f64)> = order
                .iter()
                .map(|&id| {
                    let mut total = 0.0;
                    for (li, l) in sources.iter().enumerate() {
                        let Some(pos) = l.iter().position(|p| p.0 == id) else {
                            continue;
                        };
                        total += match f {
                            Fusion::Rrf { k, weights } => {
                                let w = weights.as_ref().map_or(1.0, |w| f64::from(w[li]));
                                if w <= 0.0 {
                                    0.0
                                } else {
                                    1.0 / ((pos as f64 + 1.0) / w + *k as f64 - 1.0)
                                }
                            }
                            Fusion::Dbsf => {
                                let n = l.len() as f64;
                                let mean = l.iter().map(|p| p.1).sum::<f64>() / n;
                                let var =
                                    l.iter().map(|p| (p.1 - mean).powi(2)).sum::<f64>() / (n - 1.0);
                                if l.len() == 1 || var == 0.0 {
                                    0.5
                                } else {
                                    let sd = var.sqrt();
                                    (l[pos].1 - (mean - 3.0 * sd)) / (6.0 * sd)
                                }
                            }
                        };
                    }
                    (id, total)
                })
                .collect();
            fused.sort_by(|a, b| b.1.total_cmp(&a.1));
            fused.truncate(stage.limit + offset);
            // The engine compares its f32 scores with the threshold.
            fused.retain(|p| stage.score_threshold.is_none_or(|t| p.1 as f32 >= t));
            fused
        }
    };
    out.truncate(stage.limit + offset);
    out.drain(..offset.min(out.len()));
    out
}

/// Scores agree within f32 rounding; ids agree wherever the reference's scores do not tie.
fn same(got: &[ScoredPoint], want: &[(u64, f64)], what: &str) {
    let ids: Vec<(u64, f32)> = got
        .iter()
        .map(|p| match p.id {
            PointId::Num(n) => (n, p.score),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got.len(), want.len(), "{what}: {ids:?} vs {want:?}");
    for (i, (p, w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-4 * w.1.abs().max(1.0);
        assert!(
            (f64::from(p.score) - w.1).abs() <= tol,
            "{what}: position {i}: {ids:?} vs {want:?}"
        );
        let tied = |a: f64| (a - w.1).abs() <= tol;
        assert!(
            ids[i].0 == w.0 || want.iter().any(|o| o.0 == ids[i].0 && tied(o.1)),
            "{what}: position {i}: {ids:?} vs {want:?}"
        );
    }
}

fn check(c: &Collection, model: &Model, rng: &mut Rng, when: &str) {
    for _ in 0..20 {
        let root = tree(rng, 3);
        let offset = rng.below(3) as usize;
        let with = if rng.below(2) == 0 {
            With::PAYLOAD
        } else {
            With::default()
        };
        let got = c
            .query(&HybridQuery {
                root: root.clone(),
                offset,
                with,
            })
            .unwrap();
        let want = reference(model, &root, &|_| true, offset);
        same(&got, &want, &format!("{when}: {root:?} offset {offset}"));
        for p in &got {
            let PointId::Num(n) = p.id else {
                unreachable!()
            };
            let payload = with.payload.then(|| model[&n].payload.clone());
            assert_eq!(p.payload, payload, "{when}: payload of {n}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    #[test]
    fn hybrid_query_equals_brute_force(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
        let config = CollectionConfig {
            seal_threshold_bytes: 4 << 10,
            merge_factor: 0,
            ..CollectionConfig::default()
        };
        let c = db.create_collection("c", schema(), config).unwrap();
        let mut model = Model::new();
        write_round(&c, &mut model, &mut rng);
        check(&c, &model, &mut rng, "mutable");
        c.flush().unwrap();
        write_round(&c, &mut model, &mut rng);
        check(&c, &model, &mut rng, "sealed and mutable, deletions");
    }
}

#[test]
fn fusion_without_prefetch_and_bad_weights_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
    let c = db
        .create_collection("c", schema(), CollectionConfig::default())
        .unwrap();
    let run = |root: QueryStage| {
        c.query(&HybridQuery {
            root,
            offset: 0,
            with: With::default(),
        })
        .unwrap_err()
        .to_string()
    };
    let rrf = |k, weights| Fusion::Rrf { k, weights };
    let e = run(QueryStage::fused(Fusion::Dbsf, vec![], 10));
    assert!(
        e.contains("query: fusion needs at least one prefetch"),
        "{e}"
    );
    let dense = QueryStage::nearest("", QueryVector::Dense(vec![1.0; 4]), 5);
    let e = run(QueryStage::fused(rrf(0, None), vec![dense.clone()], 10));
    assert!(e.contains("k must be at least 1"), "{e}");
    let e = run(QueryStage::fused(
        rrf(2, Some(vec![1.0, 2.0])),
        vec![dense.clone()],
        10,
    ));
    assert!(e.contains("2 RRF weights for 1 prefetches"), "{e}");
    let nested = QueryStage::fused(Fusion::Dbsf, vec![], 3);
    let e = run(QueryStage::fused(
        Fusion::Dbsf,
        vec![dense.clone(), nested],
        10,
    ));
    assert!(e.contains("query.prefetch[1]: fusion needs"), "{e}");
    // A prefetch on a vector of the wrong form names the vector.
    let wrong = QueryStage::nearest("s", QueryVector::Dense(vec![1.0; 4]), 5);
    let e = run(QueryStage::fused(Fusion::Dbsf, vec![dense, wrong], 10));
    assert!(e.contains("`s`"), "{e}");
}
