//! LVQ-4 and LVQ-4x8 (Aguerrebere et al., VLDB 2023, §4 "multi-level LVQ"): rows centred
//! on the segment's mean, as in [`crate::lvq`], quantized to 4 bits per dimension (the
//! primary codes, 15 steps between the row's own minimum and maximum), and optionally the
//! primary's residual quantized to 8 more bits (the residual codes).
//!
//! A graph search traverses on the primary codes alone: half the bytes of LVQ-8 (192 bytes,
//! 3 cache lines, per 384-dimension row), so fewer waits on memory per hop. Its best
//! candidates are then re-scored on the two-level reconstruction (LVQ-4x8, almost the
//! precision of 12 bits), or on the `f32` rows when there are no residual codes (LVQ-4).
//!
//! With `Δ = (max − min) / 15` the primary step of a row and `c` its primary codes, the
//! residual `r = x − μ − lo − Δ·c` lies in `[−Δ/2, Δ/2]`, which is cut into 255 steps of
//! `δ = Δ / 255` (no further per-row constants). A row is reconstructed as
//!
//! ```text
//! primary     x̂₄  = μ + lo + Δ·c                     |xᵢ − x̂₄ᵢ| ≤ Δ/2
//! two-level   x̂₄₈ = μ + (lo − Δ/2) + Δ·c + δ·e       |xᵢ − x̂₄₈ᵢ| ≤ δ/2 = Δ/510
//! ```
//!
//! and scored as in [`crate::lvq`]: one integer inner product per level
//! ([`quiver_kernels::dot_u4_i16`], [`quiver_kernels::dot_u8_i16`]) plus per-query
//! constants. The primary codes use the kernels' 4-bit layout
//! ([`quiver_kernels::scalar::pack_u4`]), `⌈dim / 2⌉` bytes per row.

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use crate::hnsw::{Quantized, Scorer};
use crate::huge::HugeArray;
use crate::lvq::{RowParams, ScaledQuery, column_mean};
use crate::{Error, Metric};
use quiver_kernels::scalar::{pack_u4, u4_len};
use rayon::prelude::*;

/// Rows encoded in parallel per task.
const CHUNK: usize = 1024;

/// Largest primary code.
const LEVELS4: f32 = 15.0;
/// Largest residual code.
const LEVELS8: f32 = 255.0;

/// Bit 0 of the header's flags: residual codes follow the primary ones.
const FLAG_RESIDUAL: u32 = 1;

/// The 4-bit codes (and, for LVQ-4x8, the 8-bit residual codes) of one segment's rows for one
/// vector.
#[derive(Debug, Clone)]
pub struct Lvq4 {
    dim: usize,
    mean: Vec<f32>,
    /// `n · ⌈dim/2⌉` packed primary codes, page-aligned, on huge pages where possible.
    codes: HugeArray<u8>,
    /// Per row: `lo`, `Δ` and `‖x̂₄‖²`.
    params: Vec<RowParams>,
    residual: Option<Residual>,
}

/// The second level of LVQ-4x8.
#[derive(Debug, Clone, PartialEq)]
struct Residual {
    /// `n · dim` codes, one byte per dimension.
    codes: HugeArray<u8>,
    /// `‖x̂₄₈‖²` per row (for L2).
    norms: Vec<f32>,
}

impl Lvq4 {
    /// Encodes `rows` (row-major, `dim` wide), with residual codes when `residual` is set
    /// (LVQ-4x8). `dim` must be positive and divide the length. Refuses more than
    /// [`MAX_ROWS`](crate::MAX_ROWS) rows ([`Error::TooManyRows`]).
    pub fn encode(rows: &[f32], dim: usize, residual: bool) -> Result<Lvq4, Error> {
        assert!(
            dim > 0 && rows.len().is_multiple_of(dim),
            "rows are not a multiple of dim"
        );
        let n = crate::row_count(rows.len(), dim)? as usize;
        let mean = column_mean(rows, dim, n);
        let mut lvq = Lvq4::zeroed(dim, mean, n, residual);
        let bytes = u4_len(dim);
        let Lvq4 {
            codes,
            params,
            mean,
            residual,
            ..
        } = &mut lvq;
        let chunks = n.div_ceil(CHUNK);
        let second: Vec<Option<(&mut [u8], &mut [f32])>> = match residual {
            Some(r) => r
                .codes
                .as_mut_slice()
                .chunks_mut(CHUNK * dim)
                .zip(r.norms.chunks_mut(CHUNK))
                .map(Some)
                .collect(),
            None => (0..chunks).map(|_| None).collect(),
        };
        codes
            .as_mut_slice()
            .par_chunks_mut(CHUNK * bytes)
            .zip(params.par_chunks_mut(CHUNK))
            .zip(rows.par_chunks(CHUNK * dim))
            .zip(second)
            .for_each_init(
                || vec![0u8; dim],
                |unpacked, (((codes, params), rows), mut second)| {
                    for (i, ((c, p), x)) in codes
                        .chunks_exact_mut(bytes)
                        .zip(params.iter_mut())
                        .zip(rows.chunks_exact(dim))
                        .enumerate()
                    {
                        let residual = second.as_mut().and_then(|(codes, norms)| {
                            Some((codes.get_mut(i * dim..(i + 1) * dim)?, norms.get_mut(i)?))
                        });
                        *p = encode_row(x, mean, unpacked, residual);
                        pack_u4(unpacked, c);
                    }
                },
            );
        Ok(lvq)
    }

    /// An all-zero encoding of `n` rows.
    fn zeroed(dim: usize, mean: Vec<f32>, n: usize, residual: bool) -> Lvq4 {
        Lvq4 {
            dim,
            mean,
            codes: HugeArray::zeroed(n * u4_len(dim)),
            params: vec![RowParams::default(); n],
            residual: residual.then(|| Residual {
                codes: HugeArray::zeroed(n * dim),
                norms: vec![0.0; n],
            }),
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

    /// Whether residual codes are present (LVQ-4x8).
    pub fn has_residual(&self) -> bool {
        self.residual.is_some()
    }

    /// Bytes held in memory: primary codes with their per-row parameters, the mean, and the
    /// residual codes with their norms for LVQ-4x8.
    pub fn memory_bytes(&self) -> usize {
        let residual = self
            .residual
            .as_ref()
            .map_or(0, |r| r.codes.len() + size_of_val(r.norms.as_slice()));
        self.codes.len()
            + size_of_val(self.params.as_slice())
            + size_of_val(self.mean.as_slice())
            + residual
    }

    /// Bytes of codes a search may touch per row: primary and residual.
    pub fn bytes_per_row(&self) -> usize {
        u4_len(self.dim) + self.residual.as_ref().map_or(0, |_| self.dim)
    }

    /// The packed primary codes of row `i` (empty if out of range).
    #[inline]
    fn codes(&self, i: u32) -> &[u8] {
        let bytes = u4_len(self.dim);
        let start = i as usize * bytes;
        self.codes
            .as_slice()
            .get(start..start + bytes)
            .unwrap_or_default()
    }

    /// The residual codes of row `i` (empty if out of range or absent).
    #[inline]
    fn residual_codes(&self, i: u32) -> &[u8] {
        let start = i as usize * self.dim;
        self.residual
            .as_ref()
            .and_then(|r| r.codes.as_slice().get(start..start + self.dim))
            .unwrap_or_default()
    }

    /// The primary reconstruction `x̂₄` of row `i`.
    pub fn decode_primary(&self, i: u32) -> Vec<f32> {
        let p = self.params.get(i as usize).copied().unwrap_or_default();
        let mut c = vec![0u8; self.dim];
        if self.codes(i).len() == u4_len(self.dim) {
            quiver_kernels::scalar::unpack_u4(self.codes(i), &mut c);
        }
        c.iter()
            .zip(&self.mean)
            .map(|(&c, m)| m + p.lo + p.step * f32::from(c))
            .collect()
    }

    /// The two-level reconstruction `x̂₄₈` of row `i`, or `None` without residual codes.
    pub fn decode(&self, i: u32) -> Option<Vec<f32>> {
        self.residual.as_ref()?;
        let p = self.params.get(i as usize).copied().unwrap_or_default();
        let fine = p.step / LEVELS8;
        let primary = self.decode_primary(i);
        let residual = self.residual_codes(i);
        Some(
            primary
                .iter()
                .zip(residual)
                .map(|(x, &e)| x - 0.5 * p.step + fine * f32::from(e))
                .collect(),
        )
    }

    /// A scorer of `query` against the primary codes (graph traversal), with the scores of
    /// `metric`.
    pub fn scorer<'a>(&'a self, query: &'a [f32], metric: Metric) -> Lvq4Scorer<'a> {
        assert_eq!(query.len(), self.dim, "query has the wrong dimension");
        Lvq4Scorer {
            lvq: self,
            query: ScaledQuery::new(query, &self.mean),
            metric,
        }
    }

    /// A scorer of `query` against the two-level reconstruction (re-scoring), or `None`
    /// without residual codes.
    pub fn rescorer<'a>(&'a self, query: &'a [f32], metric: Metric) -> Option<Lvq4x8Scorer<'a>> {
        assert_eq!(query.len(), self.dim, "query has the wrong dimension");
        let residual = self.residual.as_ref()?;
        Some(Lvq4x8Scorer {
            lvq: self,
            residual,
            query: ScaledQuery::new(query, &self.mean),
            metric,
        })
    }

    /// The bytes of [`Lvq4::from_bytes`]: little-endian
    ///
    /// ```text
    /// dim u32, n u32, flags u32, 52 zero bytes   (64-byte header; flags bit 0: residual)
    /// primary   n × ⌈dim/2⌉ bytes (quiver_kernels::scalar::pack_u4), zero-padded to 4
    /// residual  n × dim bytes, zero-padded to 4                       (if flags bit 0)
    /// mean      dim × f32
    /// params    n × (lo f32, Δ f32, ‖x̂₄‖² f32)
    /// norms     n × ‖x̂₄₈‖² f32                                        (if flags bit 0)
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.len();
        let mut out = Vec::with_capacity(64 + n * (self.bytes_per_row() + 16) + 4 * self.dim);
        // `n` ≤ `MAX_ROWS` (see `encode`); a `dim` past `u32::MAX` would need a 16 GiB row.
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        out.extend_from_slice(&(n as u32).to_le_bytes());
        let flags = if self.residual.is_some() {
            FLAG_RESIDUAL
        } else {
            0
        };
        out.extend_from_slice(&flags.to_le_bytes());
        out.resize(64, 0);
        out.extend_from_slice(self.codes.as_slice());
        out.resize(out.len().next_multiple_of(4), 0);
        if let Some(r) = &self.residual {
            out.extend_from_slice(r.codes.as_slice());
            out.resize(out.len().next_multiple_of(4), 0);
        }
        for m in &self.mean {
            out.extend_from_slice(&m.to_le_bytes());
        }
        for p in &self.params {
            for v in [p.lo, p.step, p.norm_sq] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        if let Some(r) = &self.residual {
            for v in &r.norms {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// Parses [`Lvq4::to_bytes`]; every size is checked, so damaged bytes give an error,
    /// never a panic or a scorer reading out of bounds.
    pub fn from_bytes(bytes: &[u8]) -> Result<Lvq4, String> {
        let word = |at: usize| crate::word_at(bytes, at);
        let dim = word(0)? as usize;
        let n = word(4)? as usize;
        let flags = word(8)?;
        if dim == 0 {
            return Err("dimension is 0".into());
        }
        if flags & !FLAG_RESIDUAL != 0 {
            return Err(format!("unknown flags {flags:#x}"));
        }
        let residual = flags & FLAG_RESIDUAL != 0;
        let overflow = || "size overflows".to_string();
        let primary_len = n.checked_mul(u4_len(dim)).ok_or_else(overflow)?;
        let residual_len = match residual {
            true => n.checked_mul(dim).ok_or_else(overflow)?,
            false => 0,
        };
        let residual_at = 64 + primary_len.next_multiple_of(4);
        let mean_at = residual_at
            .checked_add(residual_len.next_multiple_of(4))
            .ok_or_else(overflow)?;
        let params_at = mean_at.checked_add(4 * dim).ok_or_else(overflow)?;
        let norms_at = params_at
            .checked_add(n.checked_mul(12).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
        let expected = norms_at
            .checked_add(if residual { 4 * n } else { 0 })
            .ok_or_else(overflow)?;
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
        let mean = floats(mean_at, dim);
        let raw = floats(params_at, 3 * n);
        let mut lvq = Lvq4::zeroed(dim, mean, n, residual);
        for (p, &[lo, step, norm_sq]) in lvq.params.iter_mut().zip(raw.as_chunks::<3>().0) {
            *p = RowParams { lo, step, norm_sq };
        }
        if let Some(src) = bytes.get(64..64 + primary_len) {
            lvq.codes.as_mut_slice().copy_from_slice(src);
        }
        if let Some(r) = &mut lvq.residual {
            if let Some(src) = bytes.get(residual_at..residual_at + residual_len) {
                r.codes.as_mut_slice().copy_from_slice(src);
            }
            r.norms = floats(norms_at, n);
        }
        Ok(lvq)
    }
}

impl PartialEq for Lvq4 {
    /// Equal codes, mean and row constants.
    fn eq(&self, other: &Lvq4) -> bool {
        self.dim == other.dim
            && self.mean == other.mean
            && self.params == other.params
            && self.codes == other.codes
            && self.residual == other.residual
    }
}

impl Quantized for Lvq4 {
    type Scorer<'a> = Lvq4Scorer<'a>;

    /// The primary codes' scorer: what a search traverses on, so the build sees the same.
    fn scorer<'a>(&'a self, query: &'a [f32], metric: Metric) -> Lvq4Scorer<'a> {
        Lvq4::scorer(self, query, metric)
    }
}

/// Quantizes one row: its primary codes, one per dimension, into `codes` (packed by the
/// caller), its residual codes and `‖x̂₄₈‖²` into `residual` if given; returns the primary
/// constants.
fn encode_row(
    x: &[f32],
    mean: &[f32],
    codes: &mut [u8],
    residual: Option<(&mut [u8], &mut f32)>,
) -> RowParams {
    let (lo, hi) = x
        .iter()
        .zip(mean)
        .map(|(a, m)| a - m)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), r| {
            (lo.min(r), hi.max(r))
        });
    if !lo.is_finite() || !hi.is_finite() {
        // Non-finite values, which the engine refuses at insert: encode as the mean.
        codes.fill(0);
        if let Some((codes, norm)) = residual {
            codes.fill(0);
            *norm = 0.0;
        }
        return RowParams::default();
    }
    let step = (hi - lo) / LEVELS4;
    let inv = if step > 0.0 { 1.0 / step } else { 0.0 };
    let mut norm_sq = 0.0f32;
    for ((c, a), m) in codes.iter_mut().zip(x).zip(mean) {
        let q = ((a - m - lo) * inv).round().clamp(0.0, LEVELS4);
        *c = q as u8;
        let r = m + lo + step * q;
        norm_sq += r * r;
    }
    if let Some((fine_codes, fine_norm)) = residual {
        let fine = step / LEVELS8;
        let inv_fine = if fine > 0.0 { 1.0 / fine } else { 0.0 };
        let mut norm = 0.0f32;
        for (((e, &c), a), m) in fine_codes.iter_mut().zip(codes.iter()).zip(x).zip(mean) {
            let primary = lo + step * f32::from(c);
            let q = ((a - m - primary + 0.5 * step) * inv_fine)
                .round()
                .clamp(0.0, LEVELS8);
            *e = q as u8;
            let r = m + primary - 0.5 * step + fine * q;
            norm += r * r;
        }
        *fine_norm = norm;
    }
    RowParams { lo, step, norm_sq }
}

/// Scores rows through their primary codes; see the module docs.
pub struct Lvq4Scorer<'a> {
    lvq: &'a Lvq4,
    query: ScaledQuery,
    metric: Metric,
}

impl Scorer for Lvq4Scorer<'_> {
    #[inline]
    fn score(&self, node: u32) -> f32 {
        let Some(p) = self.lvq.params.get(node as usize) else {
            return f32::NEG_INFINITY;
        };
        let codes = quiver_kernels::dot_u4_i16(&self.query.scaled, self.lvq.codes(node));
        self.query
            .score(self.metric, p.lo, p.step * codes as f32, p.norm_sq)
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        quiver_kernels::prefetch(self.lvq.codes(node), 4);
        if let Some(p) = self.lvq.params.get(node as usize..node as usize + 1) {
            quiver_kernels::prefetch(p, 1);
        }
    }
}

/// Scores rows through their two-level reconstruction; see the module docs.
pub struct Lvq4x8Scorer<'a> {
    lvq: &'a Lvq4,
    residual: &'a Residual,
    query: ScaledQuery,
    metric: Metric,
}

impl Scorer for Lvq4x8Scorer<'_> {
    #[inline]
    fn score(&self, node: u32) -> f32 {
        let (Some(p), Some(&norm)) = (
            self.lvq.params.get(node as usize),
            self.residual.norms.get(node as usize),
        ) else {
            return f32::NEG_INFINITY;
        };
        let q = &self.query.scaled;
        let coarse = quiver_kernels::dot_u4_i16(q, self.lvq.codes(node)) as f32;
        let fine = quiver_kernels::dot_u8_i16(q, self.lvq.residual_codes(node)) as f32;
        let weighted = p.step * coarse + (p.step / LEVELS8) * fine;
        self.query
            .score(self.metric, p.lo - 0.5 * p.step, weighted, norm)
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        quiver_kernels::prefetch(self.lvq.codes(node), 4);
        quiver_kernels::prefetch(self.lvq.residual_codes(node), 8);
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Rows of any dimension up to 140 (past two 64-dimension blocks, odd tails), with
    /// values from tiny to huge ranges, and some rows all equal.
    fn rows_strategy() -> impl Strategy<Value = (usize, Vec<f32>)> {
        (
            1usize..140,
            1usize..20,
            prop_oneof![Just(1e-3f32), Just(3.0f32), Just(1e4f32)],
        )
            .prop_flat_map(|(dim, n, range)| {
                let row = prop_oneof![
                    3 => prop::collection::vec(-range..range, dim..=dim),
                    1 => (-range..range).prop_map(move |v| vec![v; dim]),
                ];
                (Just(dim), prop::collection::vec(row, n..=n))
            })
            .prop_map(|(dim, rows)| (dim, rows.concat()))
    }

    /// `(⟨q, x⟩, ‖q − x‖²)` in `f64`.
    fn exact(q: &[f32], x: &[f32]) -> (f64, f64) {
        q.iter().zip(x).fold((0.0, 0.0), |(dot, l2), (&a, &b)| {
            let (a, b) = (f64::from(a), f64::from(b));
            (dot + a * b, l2 + (a - b) * (a - b))
        })
    }

    /// Scores of a reconstruction `x̂` match the scorer's within the rounding of `f32`
    /// arithmetic on numbers the size of the terms involved: `terms` is the size of what the
    /// scorer adds up besides `q·x̂` (the query against the mean and the per-row constants),
    /// which can dwarf the score when the mean is large and the row small.
    fn check_score(
        got: f32,
        metric: Metric,
        q: &[f32],
        x_hat: &[f32],
        terms: f64,
    ) -> Result<(), String> {
        let (dot, l2) = exact(q, x_hat);
        let want = match metric {
            Metric::Dot => dot,
            Metric::L2 => -l2,
        };
        let size: f64 = q
            .iter()
            .zip(x_hat)
            .map(|(&a, &b)| f64::from(a * b).abs())
            .sum::<f64>()
            + exact(q, q).0
            + exact(x_hat, x_hat).0
            + terms;
        if (f64::from(got) - want).abs() <= 2e-4 * size + 1e-4 {
            Ok(())
        } else {
            Err(format!(
                "{metric:?}: scorer {got}, reconstruction {want} (size {size})"
            ))
        }
    }

    proptest! {
        /// Every coordinate within half a step of its level, and each scorer equal to the
        /// exact score of the reconstruction it stands for.
        #[test]
        fn reconstruction_within_bound_and_scores_exact_for_it(
            (dim, rows) in rows_strategy(),
            query in prop::collection::vec(-2.0f32..2.0, 140),
        ) {
            let q = &query[..dim];
            for residual in [false, true] {
                let lvq = Lvq4::encode(&rows, dim, residual).unwrap();
                prop_assert_eq!(lvq.len(), rows.len() / dim);
                prop_assert_eq!(lvq.has_residual(), residual);
                for (i, row) in rows.chunks_exact(dim).enumerate() {
                    let p = lvq.params[i];
                    let range = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                    let slack = 4.0 * f32::EPSILON * (range + lvq.mean.iter().fold(0.0f32, |m, x| m.max(x.abs())));
                    let primary = lvq.decode_primary(i as u32);
                    let q_abs: f64 = q.iter().map(|x| f64::from(x.abs())).sum();
                    let terms = q
                        .iter()
                        .zip(&lvq.mean)
                        .map(|(a, b)| f64::from((a * b).abs()))
                        .sum::<f64>()
                        + q_abs * f64::from(p.lo.abs() + 16.0 * p.step);
                    for (a, b) in row.iter().zip(&primary) {
                        prop_assert!((a - b).abs() <= p.step * 0.5 + slack, "row {i}: {a} vs {b}, step {}", p.step);
                    }
                    for metric in [Metric::Dot, Metric::L2] {
                        let got = lvq.scorer(q, metric).score(i as u32);
                        check_score(got, metric, q, &primary, terms).map_err(TestCaseError::fail)?;
                    }
                    match lvq.decode(i as u32) {
                        None => prop_assert!(!residual),
                        Some(two_level) => {
                            for (a, b) in row.iter().zip(&two_level) {
                                prop_assert!((a - b).abs() <= p.step / 510.0 + slack, "row {i}: {a} vs {b}, step {}", p.step);
                            }
                            for metric in [Metric::Dot, Metric::L2] {
                                let got = lvq.rescorer(q, metric).unwrap().score(i as u32);
                                check_score(got, metric, q, &two_level, terms).map_err(TestCaseError::fail)?;
                            }
                        }
                    }
                }
            }
        }

        #[test]
        fn bytes_round_trip((dim, rows) in rows_strategy(), residual in any::<bool>()) {
            let lvq = Lvq4::encode(&rows, dim, residual).unwrap();
            prop_assert_eq!(Lvq4::from_bytes(&lvq.to_bytes()), Ok(lvq));
        }

        #[test]
        fn damaged_bytes_never_panic(
            (dim, rows) in rows_strategy(),
            residual in any::<bool>(),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let mut bytes = Lvq4::encode(&rows, dim, residual).unwrap().to_bytes();
            let i = flip.index(bytes.len());
            bytes[i] ^= 0xA5;
            if let Ok(lvq) = Lvq4::from_bytes(&bytes) {
                let q = vec![0.5; lvq.dim()];
                for r in 0..lvq.len() as u32 + 2 {
                    let _ = lvq.scorer(&q, Metric::L2).score(r);
                    if let Some(s) = lvq.rescorer(&q, Metric::Dot) {
                        let _ = s.score(r);
                    }
                }
            }
            bytes.truncate(cut.index(bytes.len()));
            prop_assert!(Lvq4::from_bytes(&bytes).is_err());
        }
    }

    #[test]
    fn unknown_flags_are_refused() {
        let mut bytes = Lvq4::encode(&[1.0, 2.0], 2, true).unwrap().to_bytes();
        bytes[8] |= 2;
        assert_eq!(
            Lvq4::from_bytes(&bytes),
            Err("unknown flags 0x3".to_string())
        );
    }

    #[test]
    fn codes_are_64_byte_aligned_and_half_a_byte_per_dimension() {
        let rows = vec![0.25f32; 384 * 10];
        let lvq = Lvq4::encode(&rows, 384, true).unwrap();
        assert_eq!(lvq.codes(0).as_ptr().align_offset(64), 0);
        assert_eq!(lvq.codes(1).len(), 192);
        assert_eq!(lvq.bytes_per_row(), 192 + 384);
        let back = Lvq4::from_bytes(&lvq.to_bytes()).unwrap();
        assert_eq!(back.codes(3).as_ptr().align_offset(64), 0);
        assert_eq!(back.residual_codes(3).as_ptr().align_offset(64), 0);
    }
}
