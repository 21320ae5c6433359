//! Exact MaxSim: `Σ over query tokens q of max over document tokens p of ⟨q, p⟩` (ColBERT's
//! late interaction). The reference a MUVERA search is measured against, and its re-scorer.

/// Scores documents against one query's tokens, reusing a buffer for the `query × document`
/// matrix of dot products. One per thread.
pub struct MaxSim<'q> {
    query: &'q [f32],
    dim: usize,
    /// `query tokens × document tokens` dot products of the last document.
    products: Vec<f32>,
}

impl<'q> MaxSim<'q> {
    /// `query` is `tokens × dim` row-major; a trailing partial token is ignored.
    pub fn new(query: &'q [f32], dim: usize) -> MaxSim<'q> {
        let tokens = query.len().checked_div(dim).unwrap_or(0);
        MaxSim {
            query: query.get(..tokens * dim).unwrap_or_default(),
            dim,
            products: Vec::new(),
        }
    }

    /// The MaxSim score of `doc` (`tokens × dim` row-major, a trailing partial token
    /// ignored): one [`quiver_kernels::dot_matrix`] call (the SIMD micro-kernel, `f32`
    /// accumulation; see its error bound), then a row maximum per query token, summed in
    /// `f32`. A document without tokens scores 0 (the engine stores none such).
    pub fn score(&mut self, doc: &[f32]) -> f32 {
        let dim = self.dim;
        let nq = self.query.len().checked_div(dim).unwrap_or(0);
        let nt = doc.len().checked_div(dim).unwrap_or(0);
        if nq == 0 || nt == 0 {
            return 0.0;
        }
        let doc = doc.get(..nt * dim).unwrap_or_default();
        self.products.clear();
        self.products.resize(nq * nt, 0.0);
        quiver_kernels::dot_matrix(self.query, nq, doc, nt, dim, &mut self.products);
        self.products
            .chunks_exact(nt)
            .map(|row| row.iter().copied().fold(f32::NEG_INFINITY, f32::max))
            .sum()
    }
}

/// The MaxSim score of one document (see [`MaxSim::score`]); for many documents, keep a
/// [`MaxSim`].
pub fn max_sim(query: &[f32], doc: &[f32], dim: usize) -> f32 {
    MaxSim::new(query, dim).score(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// MaxSim in `f64` by loops, and the sum of the absolute products of each chosen pair
    /// bounded over all pairs (`Σ_q max_p Σ|q_i p_i|`) for the error budget.
    fn reference(query: &[f32], doc: &[f32], dim: usize) -> (f64, f64) {
        let mut score = 0.0;
        let mut budget = 0.0;
        for q in query.chunks_exact(dim) {
            let mut best = f64::NEG_INFINITY;
            let mut abs = 0.0f64;
            for p in doc.chunks_exact(dim) {
                let dot: f64 = q
                    .iter()
                    .zip(p)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                let a: f64 = q
                    .iter()
                    .zip(p)
                    .map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs())
                    .sum();
                best = best.max(dot);
                abs = abs.max(a);
            }
            score += best;
            budget += abs;
        }
        (score, budget)
    }

    fn tokens(dim: usize, max: usize) -> impl Strategy<Value = Vec<f32>> {
        prop::collection::vec(prop::collection::vec(-4.0f32..4.0, dim), 1..max)
            .prop_map(|t| t.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// The kernel-based score equals the scalar reference within `f32` accumulation
        /// error: `(dim + 2) · 2⁻²⁴` per product (the `dot_matrix` bound) plus the sum's
        /// rounding over the query tokens.
        #[test]
        fn equals_scalar_reference(
            (dim, query, doc) in (1usize..40).prop_flat_map(|d| (Just(d), tokens(d, 12), tokens(d, 30)))
        ) {
            let got = max_sim(&query, &doc, dim);
            let (want, abs) = reference(&query, &doc, dim);
            let nq = (query.len() / dim) as f64;
            let tolerance = (dim as f64 + 2.0 + nq) * f64::from(f32::EPSILON) * abs + 1e-5;
            prop_assert!((f64::from(got) - want).abs() <= tolerance, "got {got}, want {want}");
        }
    }

    #[test]
    fn empty_sides_score_zero() {
        assert_eq!(max_sim(&[], &[1.0, 2.0], 2), 0.0);
        assert_eq!(max_sim(&[1.0, 2.0], &[], 2), 0.0);
        assert_eq!(max_sim(&[1.0], &[1.0], 0), 0.0);
    }

    /// A hand-checked case: each query token picks a different document token.
    #[test]
    fn picks_the_best_token_per_query_token() {
        let query = [1.0, 0.0, 0.0, 1.0];
        let doc = [0.5, 0.5, 2.0, -1.0, -1.0, 3.0];
        // q0: max(0.5, 2, -1) = 2; q1: max(0.5, -1, 3) = 3.
        assert_eq!(max_sim(&query, &doc, 2), 5.0);
    }
}
