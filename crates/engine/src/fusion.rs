//! Fusion of ranked candidate lists into one ranking: reciprocal rank fusion (RRF) and
//! distribution-based score fusion (DBSF), with Qdrant's formulas.
//!
//! Every list is best first. A point's fused score is the sum of its contributions over the
//! lists that hold it. Equal fused scores keep the order in which the points were first met
//! (list by list, best first): Qdrant's server leaves ties unordered, and this is the order
//! qdrant-client's local mode (the reference of the end-to-end test) gives them. Sums are in
//! `f64` and rounded to `f32` once, at the end.

use std::collections::HashMap;
use std::hash::Hash;

/// Qdrant's default RRF `k` (`DEFAULT_RRF_K`): the first of a list contributes 1/2.
pub const DEFAULT_RRF_K: usize = 2;

/// Reciprocal rank fusion: the point at 0-based position `p` of list `i` contributes
/// `1 / ((p + 1) / w_i + k − 1)`, which is `1 / (p + k)` at the default weight 1; a weight
/// ≤ 0 contributes 0. `weights` (one per list) are checked by the caller. Only the order of
/// each list matters, not its scores. All fused points are returned, best first.
pub fn rrf<K: Eq + Hash + Copy>(
    lists: &[Vec<(K, f32)>],
    k: usize,
    weights: Option<&[f32]>,
) -> Vec<(K, f32)> {
    let k = k as f64;
    let mut fused = Fused::default();
    for (i, list) in lists.iter().enumerate() {
        let w = weights
            .and_then(|w| w.get(i))
            .map_or(1.0, |&w| f64::from(w));
        for (p, &(id, _)) in list.iter().enumerate() {
            let contribution = match w > 0.0 {
                true => 1.0 / ((p as f64 + 1.0) / w + k - 1.0),
                false => 0.0,
            };
            fused.add(id, contribution);
        }
    }
    fused.ranked()
}

/// Distribution-based score fusion: each list's scores are mapped by
/// `(s − (μ − 3σ)) / 6σ` (μ the mean, σ the sample standard deviation, over n − 1), then
/// summed per point. A list of one point, or whose scores are all equal, gives each of its
/// points 0.5. A list whose scores ascend (first < last: a distance, smaller is better) is
/// mapped to `1 − x`, so that its best point still gets the most (Qdrant's server does
/// this; qdrant-client 1.20's local mode does not). All fused points are returned, best first.
pub fn dbsf<K: Eq + Hash + Copy>(lists: &[Vec<(K, f32)>]) -> Vec<(K, f32)> {
    let mut fused = Fused::default();
    for list in lists {
        for (id, x) in list.iter().map(|&(id, _)| id).zip(normalize(list)) {
            fused.add(id, x);
        }
    }
    fused.ranked()
}

/// The DBSF normalisation of one best-first list, in its order.
fn normalize<K>(list: &[(K, f32)]) -> Vec<f64> {
    let scores: Vec<f64> = list.iter().map(|&(_, s)| f64::from(s)).collect();
    let n = scores.len() as f64;
    if scores.len() < 2 {
        return vec![0.5; scores.len()];
    }
    let mean = scores.iter().sum::<f64>() / n;
    let variance = scores.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / (n - 1.0);
    if variance == 0.0 {
        return vec![0.5; scores.len()];
    }
    let sigma = variance.sqrt();
    let low = mean - 3.0 * sigma;
    let ascending = scores.first() < scores.last();
    scores
        .iter()
        .map(|s| {
            let x = (s - low) / (6.0 * sigma);
            if ascending { 1.0 - x } else { x }
        })
        .collect()
}

/// Fused scores by point, remembering the order points were first met in.
struct Fused<K> {
    slot: HashMap<K, usize>,
    points: Vec<(K, f64)>,
}

impl<K> Default for Fused<K> {
    fn default() -> Self {
        Fused {
            slot: HashMap::new(),
            points: Vec::new(),
        }
    }
}

impl<K: Eq + Hash + Copy> Fused<K> {
    fn add(&mut self, id: K, score: f64) {
        match self.slot.get(&id) {
            Some(&i) => {
                if let Some(p) = self.points.get_mut(i) {
                    p.1 += score;
                }
            }
            None => {
                self.slot.insert(id, self.points.len());
                self.points.push((id, score));
            }
        }
    }

    /// Best first; a stable sort keeps ties in first-met order.
    fn ranked(mut self) -> Vec<(K, f32)> {
        self.points.sort_by(|a, b| b.1.total_cmp(&a.1));
        self.points
            .into_iter()
            .map(|(id, s)| (id, s as f32))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;
    use proptest::prelude::*;

    fn list(ids: &[u32]) -> Vec<(u32, f32)> {
        ids.iter()
            .enumerate()
            .map(|(i, &id)| (id, 1.0 - i as f32 / 10.0))
            .collect()
    }

    #[test]
    fn rrf_matches_qdrant_worked_example() {
        // Qdrant's own unit test of `rrf_scoring`: 1 is at ranks 1, 0 and 2.
        let fused = rrf(
            &[list(&[2, 1]), list(&[1, 2, 3]), list(&[5, 3, 1])],
            2,
            None,
        );
        let ids: Vec<u32> = fused.iter().map(|p| p.0).collect();
        assert_eq!(ids, vec![1, 2, 3, 5]);
        let want = [
            0.5 + 1.0 / 3.0 + 0.25,
            1.0 / 3.0 + 0.5,
            0.25 + 1.0 / 3.0,
            0.5,
        ];
        for (got, want) in fused.iter().zip(want) {
            assert!((f64::from(got.1) - want).abs() < 1e-6, "{fused:?}");
        }
    }

    #[test]
    fn rrf_ties_keep_first_met_order_and_weights_compress_positions() {
        let fused = rrf(&[list(&[7]), list(&[3])], 2, None);
        assert_eq!(fused, vec![(7, 0.5), (3, 0.5)]);
        // Weight 3 on the first list: its second point (position 1) counts as position 1/3.
        let fused = rrf(&[list(&[1, 2]), list(&[2, 1])], 2, Some(&[3.0, 1.0]));
        assert_eq!(fused[0].0, 2);
        let two = 1.0 / (2.0 / 3.0 + 1.0) + 1.0 / 2.0;
        assert!((f64::from(fused[0].1) - two).abs() < 1e-6);
        // A weight of 0 contributes nothing but keeps the point.
        let fused = rrf(&[list(&[1]), list(&[2])], 2, Some(&[1.0, 0.0]));
        assert_eq!(fused, vec![(1, 0.5), (2, 0.0)]);
    }

    #[test]
    fn dbsf_edge_cases() {
        // One point: 0.5. All equal: 0.5 each. Empty lists add nothing.
        assert_eq!(dbsf(&[vec![(1u32, 9.0)], vec![]]), vec![(1, 0.5)]);
        assert_eq!(
            dbsf(&[vec![(1u32, 2.0), (2, 2.0)]]),
            vec![(1, 0.5), (2, 0.5)]
        );
        // Two points a, b: mean m, sigma |a - b| / sqrt 2; the best maps to 0.5 + 1/(6 sqrt 2)
        // in either direction of score.
        let top = 0.5 + 1.0 / (6.0 * 2f64.sqrt());
        for pair in [vec![(1u32, 3.0), (2, 1.0)], vec![(1u32, 1.0), (2, 3.0)]] {
            let fused = dbsf(&[pair]);
            assert_eq!(fused[0].0, 1);
            assert!((f64::from(fused[0].1) - top).abs() < 1e-6, "{fused:?}");
        }
    }

    /// The formulas written out directly, over ids in first-met order (quadratic).
    fn reference(lists: &[Vec<(u32, f32)>], method: Option<(usize, &[f32])>) -> Vec<(u32, f64)> {
        let mut order: Vec<u32> = Vec::new();
        for l in lists {
            for &(id, _) in l {
                if !order.contains(&id) {
                    order.push(id);
                }
            }
        }
        let contribution = |li: usize, pos: usize| -> f64 {
            let l = &lists[li];
            match method {
                Some((k, weights)) => {
                    let w = f64::from(weights[li]);
                    if w <= 0.0 {
                        0.0
                    } else {
                        1.0 / ((pos as f64 + 1.0) / w + k as f64 - 1.0)
                    }
                }
                None => {
                    let s: Vec<f64> = l.iter().map(|p| f64::from(p.1)).collect();
                    if s.len() == 1 {
                        return 0.5;
                    }
                    let mean = s.iter().sum::<f64>() / s.len() as f64;
                    let var =
                        s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (s.len() - 1) as f64;
                    if var == 0.0 {
                        return 0.5;
                    }
                    let (lo, hi) = (mean - 3.0 * var.sqrt(), mean + 3.0 * var.sqrt());
                    let x = (s[pos] - lo) / (hi - lo);
                    if s[0] < s[s.len() - 1] { 1.0 - x } else { x }
                }
            }
        };
        let mut out: Vec<(u32, f64)> = order
            .iter()
            .map(|&id| {
                let total = (0..lists.len())
                    .filter_map(|li| {
                        let pos = lists[li].iter().position(|p| p.0 == id)?;
                        Some(contribution(li, pos))
                    })
                    .sum();
                (id, total)
            })
            .collect();
        out.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
        out
    }

    /// Up to 4 lists of distinct ids from a small range (so lists overlap), each sorted by
    /// score, best first: descending, or ascending for a distance-like list.
    fn lists() -> impl Strategy<Value = Vec<Vec<(u32, f32)>>> {
        let one = (
            prop::collection::btree_map(0u32..30, -100i32..100, 0..12),
            any::<bool>(),
        )
            .prop_map(|(m, ascending)| {
                let mut l: Vec<(u32, f32)> = m.into_iter().map(|(id, s)| (id, s as f32)).collect();
                l.sort_by(|a, b| b.1.total_cmp(&a.1));
                if ascending {
                    l.reverse();
                }
                l
            });
        prop::collection::vec(one, 0..5)
    }

    fn check(got: &[(u32, f32)], want: &[(u32, f64)]) -> Result<(), TestCaseError> {
        prop_assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            prop_assert!((f64::from(g.1) - w.1).abs() <= 1e-6 * w.1.abs().max(1.0));
        }
        // Ids agree except where reference scores tie (within rounding to f32).
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            if g.0 != w.0 {
                let tied = want
                    .iter()
                    .filter(|o| (o.1 - w.1).abs() <= 1e-6)
                    .any(|o| o.0 == g.0);
                prop_assert!(tied, "position {i}: {:?} vs {:?}", got, want);
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn rrf_equals_reference(
            lists in lists(),
            k in 1usize..100,
            weights in prop::collection::vec(prop_oneof![Just(0.0f32), Just(1.0), 0.1f32..5.0], 5),
            weighted in any::<bool>(),
        ) {
            let ones = [1.0f32; 5];
            let w: &[f32] = if weighted { &weights[..lists.len()] } else { &ones[..lists.len()] };
            let got = rrf(&lists, k, weighted.then_some(w));
            check(&got, &reference(&lists, Some((k, w))))?;
        }

        #[test]
        fn dbsf_equals_reference(lists in lists()) {
            check(&dbsf(&lists), &reference(&lists, None))?;
        }
    }
}
