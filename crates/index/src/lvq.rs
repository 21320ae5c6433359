//! LVQ-8, Locally-adaptive Vector Quantization (Aguerrebere et al., "Similarity search in
//! the blink of an eye with compressed indices", VLDB 2023): rows are centred on the
//! segment's mean, then each row is scaled to its own `[lo, lo + 255·step]` and rounded to
//! one byte per dimension.
//!
//! Graph search spends its time waiting for rows to arrive from memory, not computing: a
//! 384-dimension row is 1,536 bytes as `f32` (24 cache lines) and 384 bytes as codes (6).
//! Searching on codes and re-scoring the few best with the exact rows ([`crate::hnsw`]'s
//! `search_reranked`) trades a small, bounded error in the traversal for a quarter of the
//! memory traffic.
//!
//! A row `x` is reconstructed as `x̂ = μ + lo + step·c`, so for a query `q`
//!
//! ```text
//! ⟨q, x̂⟩ = ⟨q, μ⟩ + lo·Σq + step·⟨q, c⟩          (⟨q, μ⟩ and Σq once per query)
//! ‖q − x̂‖² = ‖q‖² − 2⟨q, x̂⟩ + ‖x̂‖²              (‖x̂‖² stored per row)
//! ```
//!
//! and the only per-row work is one inner product `⟨q, c⟩`. It runs in integers
//! ([`quiver_kernels::dot_u8_i16`]): the query is scaled to `i16` once (relative error about
//! 1e-5, far below the codes' own), which halves the instructions per dimension against
//! widening the codes to `f32`. Per row the error of each coordinate is at most `step / 2`.
//!
//! Layout: codes are row-major, `dim` bytes per row, the first row 64-byte aligned (at
//! `dim = 384` a row is exactly 6 cache lines); the per-row `(lo, step, ‖x̂‖²)` live in a
//! separate array (12 bytes per row, 1.4 MB for 117k rows: it stays in cache).

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use crate::hnsw::Scorer;
use crate::huge::HugeArray;
use crate::{Error, Metric};
use rayon::prelude::*;

/// Rows encoded in parallel per task.
const CHUNK: usize = 1024;

/// Per-row constants of the reconstruction.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RowParams {
    pub lo: f32,
    pub step: f32,
    /// `‖x̂‖²` of the reconstructed row (for L2).
    pub norm_sq: f32,
}

/// The codes of one segment's rows for one vector.
#[derive(Debug, Clone)]
pub struct Lvq8 {
    dim: usize,
    mean: Vec<f32>,
    /// `n·dim` codes, page-aligned (so 64-byte aligned), on huge pages where possible.
    codes: HugeArray<u8>,
    params: Vec<RowParams>,
}

impl Lvq8 {
    /// Encodes `rows` (row-major, `dim` wide). `dim` must be positive and divide the length.
    /// Refuses more than [`MAX_ROWS`](crate::MAX_ROWS) rows ([`Error::TooManyRows`]), which
    /// `u32` offsets could not score and [`Lvq8::to_bytes`] could not count.
    pub fn encode(rows: &[f32], dim: usize) -> Result<Lvq8, Error> {
        assert!(
            dim > 0 && rows.len().is_multiple_of(dim),
            "rows are not a multiple of dim"
        );
        let n = crate::row_count(rows.len(), dim)? as usize;
        let mean = column_mean(rows, dim, n);
        let mut lvq = Lvq8::zeroed(dim, mean, n);
        let Lvq8 {
            codes,
            params,
            mean,
            ..
        } = &mut lvq;
        codes
            .as_mut_slice()
            .par_chunks_mut(CHUNK * dim)
            .zip(params.par_chunks_mut(CHUNK))
            .zip(rows.par_chunks(CHUNK * dim))
            .for_each(|((codes, params), rows)| {
                for ((c, p), x) in codes
                    .chunks_exact_mut(dim)
                    .zip(params.iter_mut())
                    .zip(rows.chunks_exact(dim))
                {
                    *p = encode_row(x, mean, c);
                }
            });
        Ok(lvq)
    }

    /// An all-zero encoding of `n` rows.
    fn zeroed(dim: usize, mean: Vec<f32>, n: usize) -> Lvq8 {
        Lvq8 {
            dim,
            mean,
            codes: HugeArray::zeroed(n * dim),
            params: vec![RowParams::default(); n],
        }
    }

    pub fn len(&self) -> usize {
        self.params.len()
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes held in memory: codes, per-row parameters and the mean.
    pub fn memory_bytes(&self) -> usize {
        self.codes.len() + size_of_val(self.params.as_slice()) + size_of_val(self.mean.as_slice())
    }

    /// The codes of row `i` (empty if out of range).
    #[inline]
    pub fn codes(&self, i: u32) -> &[u8] {
        let start = i as usize * self.dim;
        self.codes
            .as_slice()
            .get(start..start + self.dim)
            .unwrap_or_default()
    }

    /// The reconstruction `x̂` of row `i`.
    pub fn decode_row(&self, i: u32) -> Vec<f32> {
        let p = self.params.get(i as usize).copied().unwrap_or_default();
        self.codes(i)
            .iter()
            .zip(&self.mean)
            .map(|(&c, m)| m + p.lo + p.step * f32::from(c))
            .collect()
    }

    /// A scorer of `query` against the codes, with the scores of `metric` ("higher is
    /// better"; approximations of [`Metric::score`] on the original rows).
    pub fn scorer<'a>(&'a self, query: &'a [f32], metric: Metric) -> Lvq8Scorer<'a> {
        assert_eq!(query.len(), self.dim, "query has the wrong dimension");
        Lvq8Scorer {
            lvq: self,
            query: ScaledQuery::new(query, &self.mean),
            metric,
        }
    }

    /// The bytes of [`Lvq8::from_bytes`]: little-endian
    ///
    /// ```text
    /// dim u32, n u32, 56 zero bytes        (64-byte header, so the codes stay aligned)
    /// codes   n × dim bytes, zero-padded to a multiple of 4
    /// mean    dim × f32
    /// params  n × (lo f32, step f32, norm_sq f32)
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.len();
        let mut out = Vec::with_capacity(64 + n * self.dim + 4 * self.dim + 12 * n + 4);
        // `n` ≤ `MAX_ROWS` (see `encode`; `from_bytes` reads it as `u32`); a `dim` past
        // `u32::MAX` would need a 16 GiB row.
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        out.extend_from_slice(&(n as u32).to_le_bytes());
        out.resize(64, 0);
        out.extend_from_slice(self.codes.as_slice());
        out.resize(out.len().next_multiple_of(4), 0);
        for m in &self.mean {
            out.extend_from_slice(&m.to_le_bytes());
        }
        for p in &self.params {
            for v in [p.lo, p.step, p.norm_sq] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// Parses [`Lvq8::to_bytes`]; every size is checked, so damaged bytes give an error,
    /// never a panic or a scorer reading out of bounds.
    pub fn from_bytes(bytes: &[u8]) -> Result<Lvq8, String> {
        let word = |at: usize| crate::word_at(bytes, at);
        let dim = word(0)? as usize;
        let n = word(4)? as usize;
        if dim == 0 {
            return Err("dimension is 0".into());
        }
        let code_len = n
            .checked_mul(dim)
            .ok_or_else(|| "code size overflows".to_string())?;
        let padded = code_len.next_multiple_of(4);
        let expected = 64usize
            .checked_add(padded)
            .and_then(|v| v.checked_add(4 * dim))
            .and_then(|v| v.checked_add(n.checked_mul(12)?))
            .ok_or_else(|| "size overflows".to_string())?;
        if bytes.len() != expected {
            return Err(format!(
                "{n} rows of dimension {dim} need {expected} bytes, found {}",
                bytes.len()
            ));
        }
        let floats = |from: usize, count: usize| -> Vec<f32> {
            bytes
                .get(from..from + 4 * count)
                .unwrap_or_default()
                .as_chunks::<4>()
                .0
                .iter()
                .map(|b| f32::from_le_bytes(*b))
                .collect()
        };
        let mean = floats(64 + padded, dim);
        let raw = floats(64 + padded + 4 * dim, 3 * n);
        let mut lvq = Lvq8::zeroed(dim, mean, n);
        for (p, &[lo, step, norm_sq]) in lvq.params.iter_mut().zip(raw.as_chunks::<3>().0) {
            *p = RowParams { lo, step, norm_sq };
        }
        if let Some(src) = bytes.get(64..64 + code_len) {
            lvq.codes.as_mut_slice().copy_from_slice(src);
        }
        Ok(lvq)
    }
}

impl PartialEq for Lvq8 {
    /// Equal codes, mean and row constants.
    fn eq(&self, other: &Lvq8) -> bool {
        self.dim == other.dim
            && self.mean == other.mean
            && self.params == other.params
            && self.codes.as_slice() == other.codes.as_slice()
    }
}

impl crate::hnsw::Quantized for Lvq8 {
    type Scorer<'a> = Lvq8Scorer<'a>;

    fn scorer<'a>(&'a self, query: &'a [f32], metric: Metric) -> Lvq8Scorer<'a> {
        Lvq8::scorer(self, query, metric)
    }
}

/// A query prepared for the code kernels: scaled to `i16` and its per-query constants.
pub(crate) struct ScaledQuery {
    /// The query times `1 / inv_scale`, rounded.
    pub scaled: Vec<i16>,
    pub inv_scale: f32,
    /// `⟨q, μ⟩`, `Σq` and `‖q‖²`.
    pub q_mean: f32,
    pub q_sum: f32,
    pub q_norm: f32,
}

impl ScaledQuery {
    /// Scales so that `|q̂ᵢ| ≤ 32767` and `255·Σ|q̂ᵢ|` stays below 2³¹: the code kernels
    /// are then exact for codes up to 8 bits (4-bit codes share the bound, which costs them
    /// nothing visible: the rounding error stays near 1e-5 of the largest coordinate).
    pub fn new(query: &[f32], mean: &[f32]) -> ScaledQuery {
        let max = query.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let l1: f32 = query.iter().map(|x| x.abs()).sum();
        let scale = if max > 0.0 {
            (32767.0 / max).min(2.0e9 / (255.0 * l1))
        } else {
            1.0
        };
        ScaledQuery {
            scaled: query.iter().map(|x| (x * scale).round() as i16).collect(),
            inv_scale: 1.0 / scale,
            q_mean: quiver_kernels::dot(query, mean),
            q_sum: query.iter().sum(),
            q_norm: quiver_kernels::norm_squared(query),
        }
    }

    /// The score of a row `x̂ = μ + offset + Σ stepⱼ·cⱼ` given `Σ stepⱼ·⟨q̂, cⱼ⟩` (the
    /// integer dots already weighted) and `‖x̂‖²`.
    #[inline]
    pub fn score(&self, metric: Metric, offset: f32, weighted_dots: f32, norm_sq: f32) -> f32 {
        let dot = self.q_mean + offset * self.q_sum + weighted_dots * self.inv_scale;
        match metric {
            Metric::Dot => dot,
            Metric::L2 => -(self.q_norm - 2.0 * dot + norm_sq),
        }
    }
}

pub(crate) fn column_mean(rows: &[f32], dim: usize, n: usize) -> Vec<f32> {
    let mut sum = vec![0.0f64; dim];
    for row in rows.chunks_exact(dim) {
        for (s, &x) in sum.iter_mut().zip(row) {
            *s += f64::from(x);
        }
    }
    let n = n.max(1) as f64;
    sum.into_iter().map(|s| (s / n) as f32).collect()
}

/// Quantizes one row into `codes` and returns its constants.
fn encode_row(x: &[f32], mean: &[f32], codes: &mut [u8]) -> RowParams {
    let (lo, hi) = x
        .iter()
        .zip(mean)
        .map(|(a, m)| a - m)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), r| {
            (lo.min(r), hi.max(r))
        });
    if !lo.is_finite() || !hi.is_finite() {
        // An empty row (dim 0 cannot happen) or non-finite values, which the engine refuses
        // at insert: encode as the mean.
        codes.fill(0);
        return RowParams::default();
    }
    let step = (hi - lo) / 255.0;
    let inv = if step > 0.0 { 1.0 / step } else { 0.0 };
    let mut norm_sq = 0.0f32;
    for ((c, a), m) in codes.iter_mut().zip(x).zip(mean) {
        let q = ((a - m - lo) * inv).round().clamp(0.0, 255.0);
        *c = q as u8;
        let r = m + lo + step * q;
        norm_sq += r * r;
    }
    RowParams { lo, step, norm_sq }
}

/// Scores rows through their codes; see the module docs for the arithmetic.
pub struct Lvq8Scorer<'a> {
    lvq: &'a Lvq8,
    query: ScaledQuery,
    metric: Metric,
}

impl Scorer for Lvq8Scorer<'_> {
    #[inline]
    fn score(&self, node: u32) -> f32 {
        let Some(p) = self.lvq.params.get(node as usize) else {
            return f32::NEG_INFINITY;
        };
        let codes = quiver_kernels::dot_u8_i16(&self.query.scaled, self.lvq.codes(node));
        self.query
            .score(self.metric, p.lo, p.step * codes as f32, p.norm_sq)
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        quiver_kernels::prefetch(self.lvq.codes(node), 8);
        if let Some(p) = self.lvq.params.get(node as usize..node as usize + 1) {
            quiver_kernels::prefetch(p, 1);
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows_strategy() -> impl Strategy<Value = (usize, Vec<f32>)> {
        (1usize..40, 1usize..30).prop_flat_map(|(dim, n)| {
            (
                Just(dim),
                prop::collection::vec(-3.0f32..3.0, dim * n..=dim * n),
            )
        })
    }

    proptest! {
        /// Every coordinate is reconstructed within half a step, and the scorer equals the
        /// exact score of the reconstruction.
        #[test]
        fn reconstruction_and_scores_are_exact_for_the_reconstruction(
            (dim, rows) in rows_strategy(),
            seed in any::<u64>(),
        ) {
            let lvq = Lvq8::encode(&rows, dim).unwrap();
            let n = rows.len() / dim;
            prop_assert_eq!(lvq.len(), n);
            let query: Vec<f32> = (0..dim)
                .map(|i| ((seed.wrapping_mul(i as u64 + 1) % 1000) as f32 / 500.0) - 1.0)
                .collect();
            for (i, row) in rows.chunks_exact(dim).enumerate() {
                let p = lvq.params[i];
                let x_hat = lvq.decode_row(i as u32);
                for (a, b) in row.iter().zip(&x_hat) {
                    prop_assert!((a - b).abs() <= p.step * 0.5 + 1e-5, "row {i}: {a} vs {b}");
                }
                for metric in [Metric::Dot, Metric::L2] {
                    let got = lvq.scorer(&query, metric).score(i as u32);
                    let want = metric.score(&query, &x_hat);
                    let scale = 1.0 + want.abs() + quiver_kernels::norm_squared(&query);
                    prop_assert!((got - want).abs() <= 1e-4 * scale, "{metric:?} row {i}: {got} vs {want}");
                }
            }
        }

        #[test]
        fn bytes_round_trip((dim, rows) in rows_strategy()) {
            let lvq = Lvq8::encode(&rows, dim).unwrap();
            prop_assert_eq!(Lvq8::from_bytes(&lvq.to_bytes()), Ok(lvq));
        }

        #[test]
        fn damaged_bytes_never_panic(
            (dim, rows) in rows_strategy(),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let mut bytes = Lvq8::encode(&rows, dim).unwrap().to_bytes();
            let i = flip.index(bytes.len());
            bytes[i] ^= 0xA5;
            if let Ok(lvq) = Lvq8::from_bytes(&bytes) {
                let q = vec![0.5; lvq.dim()];
                for r in 0..lvq.len() as u32 + 2 {
                    let _ = lvq.scorer(&q, Metric::L2).score(r);
                }
            }
            bytes.truncate(cut.index(bytes.len()));
            prop_assert!(Lvq8::from_bytes(&bytes).is_err());
        }
    }

    #[test]
    fn codes_are_64_byte_aligned() {
        let rows = vec![0.25f32; 384 * 10];
        let lvq = Lvq8::encode(&rows, 384).unwrap();
        assert_eq!(lvq.codes(0).as_ptr().align_offset(64), 0);
        let back = Lvq8::from_bytes(&lvq.to_bytes()).unwrap();
        assert_eq!(back.codes(3).as_ptr().align_offset(64), 0);
    }
}
