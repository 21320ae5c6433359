//! MUVERA's fixed-dimensional encodings (Dhulipala et al., "MUVERA: Multi-Vector Retrieval
//! via Fixed Dimensional Encodings", 2024): one vector per token list such that
//! `⟨FDE_q(Q), FDE_d(P)⟩` approximates MaxSim(Q, P), so that an ordinary inner-product graph
//! finds MaxSim candidates.
//!
//! Per repetition `r` (of `repetitions`), with independent random draws:
//! 1. SimHash partition: `k_sim` Gaussian vectors `g_1..g_k`; token `x` falls in bucket
//!    `φ(x) = Σ_i [⟨g_i, x⟩ > 0] · 2^(i-1)`, one of `B = 2^k_sim`.
//! 2. Inner projection `ψ(x) = S x / √d_proj` with `S` a `d_proj × dim` matrix of random ±1
//!    (`d_proj = 0`: no projection, `ψ(x) = x`).
//! 3. Block `k` of the query's encoding is `Σ_{q: φ(q)=k} ψ(q)`; of a document's, the mean
//!    `ψ(p̄_k)` of its tokens in bucket `k`, or, when none falls there ("fill empty
//!    buckets"), `ψ(p)` of the token whose bucket is nearest to `k` in Hamming distance (the
//!    first such token).
//!
//! The encoding concatenates the `B` blocks of every repetition (`repetitions · B · d'`
//! values, `d' = d_proj` or `dim`), so `⟨FDE_q, FDE_d⟩ = Σ_r Σ_q ⟨ψ_r(q), ψ_r(p̄_{r,φ_r(q)})⟩`.
//! An optional final projection (`d_final > 0`) maps it by a Count-Sketch: coordinate `i`
//! is added, times a random sign, to output `h(i)` — unbiased for inner products and linear
//! in the input, as the paper's final projection.
//!
//! Every draw comes from [`SplitMix64`] seeded by `seed`: the same parameters and seed give
//! the same encodings in every process, so stored document encodings stay comparable with
//! new queries.

use super::rng::SplitMix64;

/// MUVERA's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdeParams {
    /// SimHash bits per repetition: `2^k_sim` buckets (0 to [`MAX_K_SIM`]).
    pub k_sim: u32,
    /// Width of a bucket's block (the inner projection); 0 keeps the token dimension.
    pub d_proj: usize,
    /// Independent partitions concatenated (at least 1).
    pub repetitions: usize,
    /// Width of the final Count-Sketch projection; 0 for none.
    pub d_final: usize,
    pub seed: u64,
}

impl FdeParams {
    /// Values of an encoding of tokens of dimension `dim`: `d_final` if set, else
    /// `repetitions · 2^k_sim · block` (`block` = `d_proj`, or `dim` without inner
    /// projection); an error if the parameters make no encoding.
    pub fn output_dim(&self, dim: usize) -> Result<usize, FdeError> {
        let raw = self.raw_dim(dim)?;
        Ok(if self.d_final == 0 { raw } else { self.d_final })
    }

    /// Checks the parameters; the values of an encoding before the final projection.
    fn raw_dim(&self, dim: usize) -> Result<usize, FdeError> {
        if self.k_sim > MAX_K_SIM {
            return Err(FdeError::KSim(self.k_sim));
        }
        if self.repetitions == 0 {
            return Err(FdeError::NoRepetitions);
        }
        if dim == 0 {
            return Err(FdeError::NoDimension);
        }
        let block = if self.d_proj == 0 { dim } else { self.d_proj };
        let raw = self
            .repetitions
            .saturating_mul(1 << self.k_sim)
            .saturating_mul(block);
        if raw > MAX_RAW_DIM {
            return Err(FdeError::TooLarge(raw));
        }
        let matrix = (self.k_sim as usize + self.d_proj)
            .saturating_mul(self.repetitions)
            .saturating_mul(dim);
        if matrix > MAX_MATRIX {
            return Err(FdeError::MatrixTooLarge(matrix));
        }
        Ok(raw)
    }
}

/// Most SimHash bits per repetition: 2^10 buckets is far beyond the paper's best settings
/// (k_sim ≤ 6), and bounds the encoding's size before the other limits apply.
pub const MAX_K_SIM: u32 = 10;

/// Most values of an encoding before the final projection (4 MiB of `f32`).
pub const MAX_RAW_DIM: usize = 1 << 20;

/// Most values of the random matrices (64 MiB of `f32`), which every query encodes with.
pub const MAX_MATRIX: usize = 1 << 24;

/// Parameters that make no encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FdeError {
    #[error("k_sim = {0} is above the largest, {MAX_K_SIM}")]
    KSim(u32),
    #[error("repetitions must be at least 1")]
    NoRepetitions,
    #[error("the token dimension must be at least 1")]
    NoDimension,
    #[error(
        "repetitions × 2^k_sim × block width is {0} values, above the largest encoding, {MAX_RAW_DIM}"
    )]
    TooLarge(usize),
    #[error(
        "repetitions × (k_sim + d_proj) × dimension is {0} random values, above the largest, {MAX_MATRIX}"
    )]
    MatrixTooLarge(usize),
}

/// The random draws of one parameter set, for a token dimension.
#[derive(Debug, Clone)]
pub struct Fde {
    params: FdeParams,
    dim: usize,
    /// Per repetition, `k_sim` Gaussian rows then `d_proj` ±1 rows, each `dim` wide: one
    /// matrix so that one [`quiver_kernels::dot_matrix`] call maps a token list.
    rows: Vec<f32>,
    /// Count-Sketch of the final projection: per raw coordinate, its output and sign.
    sketch: Vec<(u32, f32)>,
}

impl Fde {
    pub fn new(dim: usize, params: FdeParams) -> Result<Fde, FdeError> {
        let raw = params.raw_dim(dim)?;
        let per_rep = params.k_sim as usize + params.d_proj;
        let mut rng = SplitMix64::new(params.seed);
        let mut rows = Vec::with_capacity(per_rep * params.repetitions * dim);
        for _ in 0..params.repetitions {
            rows.extend((0..params.k_sim as usize * dim).map(|_| rng.gaussian()));
            rows.extend((0..params.d_proj * dim).map(|_| rng.sign()));
        }
        let sketch = match params.d_final {
            0 => Vec::new(),
            d => (0..raw)
                .map(|_| (rng.below(d) as u32, rng.sign()))
                .collect(),
        };
        Ok(Fde {
            params,
            dim,
            rows,
            sketch,
        })
    }

    pub fn params(&self) -> FdeParams {
        self.params
    }

    /// Width of one bucket's block.
    fn block(&self) -> usize {
        if self.params.d_proj == 0 {
            self.dim
        } else {
            self.params.d_proj
        }
    }

    fn buckets(&self) -> usize {
        1 << self.params.k_sim
    }

    /// Values of the encoding before the final projection.
    fn raw_dim(&self) -> usize {
        self.params.repetitions * self.buckets() * self.block()
    }

    /// Values of an encoding: `d_final` if set, else `repetitions · 2^k_sim · block`.
    pub fn output_dim(&self) -> usize {
        match self.params.d_final {
            0 => self.raw_dim(),
            d => d,
        }
    }

    /// A query's encoding: per repetition and bucket, the sum of its tokens' projections.
    /// `tokens` is `n × dim` row-major (a trailing partial token is ignored).
    pub fn encode_query(&self, tokens: &[f32]) -> Vec<f32> {
        self.encode(tokens, false)
    }

    /// A document's encoding: per repetition and bucket, the mean of its tokens'
    /// projections, empty buckets filled from the token of the nearest bucket.
    pub fn encode_document(&self, tokens: &[f32]) -> Vec<f32> {
        self.encode(tokens, true)
    }

    fn encode(&self, tokens: &[f32], document: bool) -> Vec<f32> {
        let dim = self.dim;
        let n = tokens.len() / dim;
        let tokens = tokens.get(..n * dim).unwrap_or_default();
        let (k_sim, d_proj) = (self.params.k_sim as usize, self.params.d_proj);
        let per_rep = k_sim + d_proj;
        let reps = self.params.repetitions;
        // products[t * reps * per_rep + r * per_rep + j] = ⟨row j of repetition r, token t⟩.
        let mut products = vec![0.0; n * reps * per_rep];
        quiver_kernels::dot_matrix(tokens, n, &self.rows, reps * per_rep, dim, &mut products);
        let (buckets, block) = (self.buckets(), self.block());
        let scale = if d_proj == 0 {
            1.0
        } else {
            1.0 / (d_proj as f32).sqrt()
        };
        let mut out = vec![0.0f32; self.raw_dim()];
        let mut counts = vec![0u32; buckets];
        let mut bucket_of = vec![0usize; n];
        for r in 0..reps {
            let base = r * buckets * block;
            counts.iter_mut().for_each(|c| *c = 0);
            for t in 0..n {
                let p = &products[(t * reps + r) * per_rep..][..per_rep];
                let k = p[..k_sim]
                    .iter()
                    .enumerate()
                    .fold(0, |k, (i, &x)| k | (usize::from(x > 0.0) << i));
                bucket_of[t] = k;
                counts[k] += 1;
                let dst = &mut out[base + k * block..][..block];
                let src = if d_proj == 0 {
                    &tokens[t * dim..][..dim]
                } else {
                    &p[k_sim..]
                };
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d += s * scale;
                }
            }
            if !document {
                continue;
            }
            for k in 0..buckets {
                let dst = &mut out[base + k * block..][..block];
                match counts[k] {
                    0 if n > 0 => {
                        // The first token whose bucket is nearest to k in Hamming distance.
                        let t = (0..n)
                            .min_by_key(|&t| (bucket_of[t] ^ k).count_ones())
                            .unwrap_or(0);
                        let src = if d_proj == 0 {
                            &tokens[t * dim..][..dim]
                        } else {
                            &products[(t * reps + r) * per_rep + k_sim..][..d_proj]
                        };
                        for (d, &s) in dst.iter_mut().zip(src) {
                            *d = s * scale;
                        }
                    }
                    0 => {}
                    c => {
                        let inv = 1.0 / c as f32;
                        dst.iter_mut().for_each(|d| *d *= inv);
                    }
                }
            }
        }
        if self.sketch.is_empty() {
            return out;
        }
        let mut projected = vec![0.0f32; self.params.d_final];
        for (&x, &(h, s)) in out.iter().zip(&self.sketch) {
            projected[h as usize] += s * x;
        }
        projected
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The paper's definition computed token by token, in `f64`, from the same draws:
    /// `Σ_r Σ_q ⟨ψ_r(q), c_r(φ_r(q))⟩`, where `c_r(k)` is the mean of `ψ_r(p)` over the
    /// document tokens with `φ_r(p) = k`, or `ψ_r(p)` of the first token with the bucket
    /// nearest to `k` in Hamming distance.
    fn reference_inner(fde: &Fde, query: &[f32], doc: &[f32]) -> f64 {
        let dim = fde.dim;
        let p = fde.params;
        let per_rep = p.k_sim as usize + p.d_proj;
        let row = |r: usize, j: usize| &fde.rows[(r * per_rep + j) * dim..][..dim];
        let dot = |a: &[f32], b: &[f32]| -> f64 {
            a.iter()
                .zip(b)
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .sum()
        };
        let phi = |r: usize, x: &[f32]| -> usize {
            (0..p.k_sim as usize).fold(0, |k, i| k | (usize::from(dot(row(r, i), x) > 0.0) << i))
        };
        let psi = |r: usize, x: &[f32]| -> Vec<f64> {
            if p.d_proj == 0 {
                x.iter().map(|&v| f64::from(v)).collect()
            } else {
                (0..p.d_proj)
                    .map(|j| dot(row(r, p.k_sim as usize + j), x) / (p.d_proj as f64).sqrt())
                    .collect()
            }
        };
        let mut total = 0.0;
        for r in 0..p.repetitions {
            let doc_buckets: Vec<usize> = doc.chunks_exact(dim).map(|x| phi(r, x)).collect();
            for q in query.chunks_exact(dim) {
                let k = phi(r, q);
                let members: Vec<&[f32]> = doc
                    .chunks_exact(dim)
                    .zip(&doc_buckets)
                    .filter(|&(_, &b)| b == k)
                    .map(|(x, _)| x)
                    .collect();
                let centre: Vec<f64> = if members.is_empty() {
                    let t = (0..doc_buckets.len())
                        .min_by_key(|&t| (doc_buckets[t] ^ k).count_ones())
                        .unwrap();
                    psi(r, &doc[t * dim..][..dim])
                } else {
                    let mut c = vec![0.0; psi(r, members[0]).len()];
                    for m in &members {
                        for (c, v) in c.iter_mut().zip(psi(r, m)) {
                            *c += v / members.len() as f64;
                        }
                    }
                    c
                };
                total += psi(r, q)
                    .iter()
                    .zip(&centre)
                    .map(|(a, b)| a * b)
                    .sum::<f64>();
            }
        }
        total
    }

    fn tokens(dim: usize, max: usize) -> impl Strategy<Value = Vec<f32>> {
        prop::collection::vec(prop::collection::vec(-2.0f32..2.0, dim), 1..max)
            .prop_map(|t| t.concat())
    }

    fn params() -> impl Strategy<Value = FdeParams> {
        (
            0u32..4,
            prop_oneof![Just(0usize), 1usize..6],
            1usize..4,
            any::<u64>(),
        )
            .prop_map(|(k_sim, d_proj, repetitions, seed)| FdeParams {
                k_sim,
                d_proj,
                repetitions,
                d_final: 0,
                seed,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// ⟨FDE_q, FDE_d⟩ equals the paper's definition computed token by token. The
        /// SimHash sign is taken from the kernel's dot product in one and from an `f64` sum
        /// in the other; a token within rounding of a hyperplane may fall on different
        /// sides, which the test tells apart by skipping such draws (they have probability
        /// near zero with random inputs).
        #[test]
        fn inner_product_is_the_papers_definition(
            (dim, query, doc) in (1usize..8).prop_flat_map(|d| (Just(d), tokens(d, 6), tokens(d, 10))),
            params in params(),
        ) {
            let fde = Fde::new(dim, params).unwrap();
            let q = fde.encode_query(&query);
            let d = fde.encode_document(&doc);
            prop_assert_eq!(q.len(), fde.output_dim());
            prop_assert_eq!(d.len(), fde.output_dim());
            let got: f64 = q.iter().zip(&d).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
            let want = reference_inner(&fde, &query, &doc);
            let scale: f64 = 1.0 + q.iter().map(|x| f64::from(x.abs())).sum::<f64>()
                * d.iter().map(|x| f64::from(x.abs())).fold(0.0, f64::max);
            prop_assert!((got - want).abs() <= 1e-4 * scale, "got {got}, want {want}");
        }

        /// The final projection is the Count-Sketch of the raw encoding (linear, so the
        /// inner-product definition above carries over in expectation).
        #[test]
        fn final_projection_is_the_count_sketch(
            (dim, doc) in (1usize..6).prop_flat_map(|d| (Just(d), tokens(d, 8))),
            params in params(),
            d_final in 1usize..20,
        ) {
            let raw = Fde::new(dim, params).unwrap().encode_document(&doc);
            let fde = Fde::new(dim, FdeParams { d_final, ..params }).unwrap();
            let got = fde.encode_document(&doc);
            let mut want = vec![0.0f64; d_final];
            for (x, &(h, s)) in raw.iter().zip(&fde.sketch) {
                want[h as usize] += f64::from(s) * f64::from(*x);
            }
            for (g, w) in got.iter().zip(&want) {
                prop_assert!((f64::from(*g) - w).abs() <= 1e-4 * (1.0 + w.abs()));
            }
        }
    }

    /// One bucket, one repetition, no projection: ⟨Σ q, mean p⟩, by hand.
    #[test]
    fn one_bucket_is_sum_against_mean() {
        let fde = Fde::new(
            2,
            FdeParams {
                k_sim: 0,
                d_proj: 0,
                repetitions: 1,
                d_final: 0,
                seed: 1,
            },
        )
        .unwrap();
        assert_eq!(fde.encode_query(&[1.0, 2.0, 3.0, 4.0]), vec![4.0, 6.0]);
        assert_eq!(fde.encode_document(&[1.0, 2.0, 3.0, 4.0]), vec![2.0, 3.0]);
    }

    /// The same seed gives the same encoding (what reopening a collection relies on); another
    /// seed another one.
    #[test]
    fn seeded_and_deterministic() {
        let params = FdeParams {
            k_sim: 3,
            d_proj: 4,
            repetitions: 2,
            d_final: 0,
            seed: 42,
        };
        let doc: Vec<f32> = (0..30).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        let a = Fde::new(5, params).unwrap().encode_document(&doc);
        let b = Fde::new(5, params).unwrap().encode_document(&doc);
        let c = Fde::new(5, FdeParams { seed: 43, ..params })
            .unwrap()
            .encode_document(&doc);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn bad_parameters_are_refused() {
        let ok = FdeParams {
            k_sim: 2,
            d_proj: 8,
            repetitions: 2,
            d_final: 0,
            seed: 0,
        };
        assert!(Fde::new(4, ok).is_ok());
        assert_eq!(Fde::new(0, ok).unwrap_err(), FdeError::NoDimension);
        assert_eq!(
            Fde::new(
                4,
                FdeParams {
                    repetitions: 0,
                    ..ok
                }
            )
            .unwrap_err(),
            FdeError::NoRepetitions
        );
        assert_eq!(
            Fde::new(4, FdeParams { k_sim: 11, ..ok }).unwrap_err(),
            FdeError::KSim(11)
        );
        assert!(matches!(
            Fde::new(
                4,
                FdeParams {
                    k_sim: 10,
                    d_proj: 2048,
                    ..ok
                }
            ),
            Err(FdeError::TooLarge(_))
        ));
    }
}
