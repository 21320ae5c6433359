//! LeanVec (Tepper et al., "LeanVec: Searching vectors faster by making them fit", TMLR
//! 2024): a linear projection `P` (`d' × d`, orthonormal rows) learned from the data, so that a
//! graph search can traverse on `d'`-dimension codes of `P·x` scored against `P·q`, and
//! re-score its beam at full dimension. A 384-dimension row projected to 160 and coded in LVQ-8
//! is 160 bytes per hop instead of 384.
//!
//! Scores in the reduced space approximate the full ones: `⟨Pq, Px⟩ = ⟨q, PᵀP x⟩`, which is
//! `⟨q, x⟩` up to the part of `x` outside the span of `P`'s rows. Two ways to choose that span:
//!
//! - **LeanVec-ID** ([`Projection::learn_id`]): queries are assumed to look like the base
//!   rows, and `P` holds the top `d'` eigenvectors of the base's second moment. For inner
//!   product the moment is *not* centred: the mean is part of every score (`⟨q, μ⟩` is large
//!   for embedding models whose vectors share a common direction) and centring would throw
//!   that direction away first. For L2 it *is* centred on the base mean: distances only see
//!   differences `q − x`, whose second moment for in-distribution queries is twice the
//!   covariance.
//! - **LeanVec-OOD** ([`Projection::learn_ood`]): queries differ from the base (text
//!   questions against passages, sentences against glosses), so the span is chosen for the
//!   query–row pairs actually scored. The paper's loss for `P` is
//!   `E_q E_x (⟨q, x⟩ − ⟨Pq, Px⟩)² = tr(M K_q M K_x)` with `M = I − PᵀP` and `K_q`, `K_x`
//!   the second moments of a query sample and of the base. Its eigen-search variant, used here,
//!   takes for `P` the top `d'` eigenvectors of `(1 − β)·K_x / tr K_x + β·K_q / tr K_q` and
//!   chooses the mixing weight `β ∈ [0, 1]` that minimises the loss; `β = 0` is LeanVec-ID,
//!   so the chosen `P` never does worse than it on the sample. For L2 both moments are
//!   centred on the base mean, which changes no distance.
//!
//! Both use at most [`MAX_SAMPLE`] rows (evenly spaced) of the base and of the queries for
//! the moments: the `d × d` moment of 20,000 rows is within a fraction of a percent of the
//! full one and costs `20,000 · d²/2` multiply-adds.

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use crate::Metric;
use crate::eigen::symmetric_eigen;
use rayon::prelude::*;

/// Most rows (of the base, and of the query sample) the second moments are computed from.
pub const MAX_SAMPLE: usize = 20_000;

/// Mixing weights tried first by [`Projection::learn_ood`]; the best is then refined by
/// [`REFINE`] on each side.
const BETA_GRID: [f64; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
/// Step of the refinement around the best grid weight.
const REFINE: f64 = 0.1;

/// Bytes of the header of [`Projection::to_bytes`].
const HEADER: usize = 32;

/// How a projection was learned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fit {
    /// From the base alone (LeanVec-ID).
    Id,
    /// From the base and `queries` sample queries, with mixing weight `beta` (LeanVec-OOD).
    Ood { beta: f32, queries: u32 },
}

/// A `dims × dim` matrix with orthonormal rows, and how it was learned.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    dim: usize,
    dims: usize,
    /// Row-major, `dims × dim`.
    matrix: Vec<f32>,
    fit: Fit,
}

/// Second moment `E[(x − c)(x − c)ᵀ]` of a sample of rows, `d × d` row-major, in `f64`.
fn second_moment(rows: &[f32], dim: usize, center: Option<&[f64]>) -> Vec<f64> {
    let n = rows.len() / dim.max(1);
    let picked = sample(n, MAX_SAMPLE);
    let count = picked.len().max(1) as f64;
    let mut m = picked
        .par_chunks(256)
        .map(|chunk| {
            let mut acc = vec![0.0f64; dim * dim];
            let mut x = vec![0.0f64; dim];
            for &r in chunk {
                let row = rows.get(r * dim..(r + 1) * dim).unwrap_or_default();
                for (j, (xj, &v)) in x.iter_mut().zip(row).enumerate() {
                    *xj = f64::from(v) - center.and_then(|c| c.get(j)).copied().unwrap_or(0.0);
                }
                // Upper triangle only; mirrored below.
                for (i, &xi) in x.iter().enumerate() {
                    let line = acc.get_mut(i * dim + i..(i + 1) * dim).unwrap_or_default();
                    for (a, &xj) in line.iter_mut().zip(x.get(i..).unwrap_or_default()) {
                        *a += xi * xj;
                    }
                }
            }
            acc
        })
        .reduce(
            || vec![0.0f64; dim * dim],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(&b) {
                    *x += y;
                }
                a
            },
        );
    for i in 0..dim {
        for j in 0..i {
            let v = m.get(j * dim + i).copied().unwrap_or(0.0) / count;
            if let Some(x) = m.get_mut(i * dim + j) {
                *x = v;
            }
            if let Some(x) = m.get_mut(j * dim + i) {
                *x = v;
            }
        }
        if let Some(x) = m.get_mut(i * dim + i) {
            *x /= count;
        }
    }
    m
}

/// Up to `max` row indices out of `n`, evenly spaced (all of them when `n ≤ max`).
fn sample(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    (0..max).map(|i| i * n / max).collect()
}

/// Column mean of `rows` in `f64`.
fn mean(rows: &[f32], dim: usize) -> Vec<f64> {
    let n = rows.len() / dim.max(1);
    let picked = sample(n, MAX_SAMPLE);
    let mut m = vec![0.0f64; dim];
    for &r in &picked {
        for (s, &v) in m
            .iter_mut()
            .zip(rows.get(r * dim..(r + 1) * dim).unwrap_or_default())
        {
            *s += f64::from(v);
        }
    }
    let count = picked.len().max(1) as f64;
    m.iter_mut().for_each(|s| *s /= count);
    m
}

fn trace(m: &[f64], d: usize) -> f64 {
    (0..d)
        .map(|i| m.get(i * d + i).copied().unwrap_or(0.0))
        .sum()
}

/// `P·K` for `P` (`k × d`) and symmetric `K` (`d × d`), both row-major: `k × d`.
fn times(p: &[f64], k: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; p.len()];
    for (o, row) in out.chunks_exact_mut(d).zip(p.chunks_exact(d)) {
        for (&pj, krow) in row.iter().zip(k.chunks_exact(d)) {
            for (x, &kv) in o.iter_mut().zip(krow) {
                *x += pj * kv;
            }
        }
    }
    out
}

/// `A·Bᵀ` for `A`, `B` (`k × d`): `k × k`.
fn times_t(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity((a.len() / d.max(1)).pow(2));
    for ra in a.chunks_exact(d) {
        for rb in b.chunks_exact(d) {
            out.push(ra.iter().zip(rb).map(|(x, y)| x * y).sum());
        }
    }
    out
}

fn frobenius_dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The paper's loss `E_q E_x (⟨q, x⟩ − ⟨Pq, Px⟩)² = tr(M K_q M K_x)`, `M = I − PᵀP`, for
/// `P` with orthonormal rows (`k × d`): expanded as
/// `⟨K_q, K_x⟩ − 2⟨P K_q, P K_x⟩ + ⟨P K_q Pᵀ, P K_x Pᵀ⟩` (Frobenius products), `O(k·d²)`.
fn loss(p: &[f64], kq: &[f64], kx: &[f64], d: usize) -> f64 {
    let (pq, px) = (times(p, kq, d), times(p, kx, d));
    let (pqp, pxp) = (times_t(&pq, p, d), times_t(&px, p, d));
    frobenius_dot(kq, kx) - 2.0 * frobenius_dot(&pq, &px) + frobenius_dot(&pqp, &pxp)
}

/// The top `dims` eigenvectors of `k` (`d × d`), row-major.
fn top_eigenvectors(k: Vec<f64>, d: usize, dims: usize) -> Vec<f64> {
    let (_, mut vectors) = symmetric_eigen(k, d);
    vectors.truncate(dims * d);
    vectors
}

impl Projection {
    /// LeanVec-ID: the top `dims` principal directions of `rows` (`dim` wide; see the module
    /// docs for what is centred). `1 ≤ dims ≤ dim`, `rows` non-empty and a multiple of
    /// `dim`.
    pub fn learn_id(rows: &[f32], dim: usize, dims: usize, metric: Metric) -> Projection {
        check(rows, dim, dims);
        let center = (metric == Metric::L2).then(|| mean(rows, dim));
        let kx = second_moment(rows, dim, center.as_deref());
        Projection::from_f64(dim, dims, &top_eigenvectors(kx, dim, dims), Fit::Id)
    }

    /// LeanVec-OOD: the projection for queries like `queries` (a sample, `dim` wide) against
    /// `rows`, by the eigen-search of the module docs. With no queries it is LeanVec-ID.
    pub fn learn_ood(
        rows: &[f32],
        queries: &[f32],
        dim: usize,
        dims: usize,
        metric: Metric,
    ) -> Projection {
        check(rows, dim, dims);
        if queries.len() < dim || !queries.len().is_multiple_of(dim) {
            return Projection::learn_id(rows, dim, dims, metric);
        }
        let center = (metric == Metric::L2).then(|| mean(rows, dim));
        let kx = second_moment(rows, dim, center.as_deref());
        let kq = second_moment(queries, dim, center.as_deref());
        let (tx, tq) = (trace(&kx, dim), trace(&kq, dim));
        let (tx, tq) = (
            if tx > 0.0 { tx } else { 1.0 },
            if tq > 0.0 { tq } else { 1.0 },
        );
        let candidate = |beta: f64| -> (f64, Vec<f64>) {
            let mix: Vec<f64> = kx
                .iter()
                .zip(&kq)
                .map(|(x, q)| (1.0 - beta) * x / tx + beta * q / tq)
                .collect();
            let p = top_eigenvectors(mix, dim, dims);
            (loss(&p, &kq, &kx, dim), p)
        };
        let mut best: Option<(f64, f64, Vec<f64>)> = None;
        let consider = |beta: f64, best: &mut Option<(f64, f64, Vec<f64>)>| {
            let (l, p) = candidate(beta);
            // Ties go to the smaller weight: the one closer to LeanVec-ID.
            if best.as_ref().is_none_or(|(bl, _, _)| l < *bl) {
                *best = Some((l, beta, p));
            }
        };
        for beta in BETA_GRID {
            consider(beta, &mut best);
        }
        let centre = best.as_ref().map_or(0.0, |(_, b, _)| *b);
        for beta in [centre - REFINE, centre + REFINE] {
            if (0.0..=1.0).contains(&beta) {
                consider(beta, &mut best);
            }
        }
        let (_, beta, p) = best.unwrap_or_default();
        let queries = (queries.len() / dim).min(u32::MAX as usize) as u32;
        Projection::from_f64(
            dim,
            dims,
            &p,
            Fit::Ood {
                beta: beta as f32,
                queries,
            },
        )
    }

    fn from_f64(dim: usize, dims: usize, p: &[f64], fit: Fit) -> Projection {
        Projection {
            dim,
            dims,
            matrix: p.iter().map(|&x| x as f32).collect(),
            fit,
        }
    }

    /// Dimension of the rows it projects.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Dimension of the projected rows (`d'`).
    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn fit(&self) -> Fit {
        self.fit
    }

    /// Row `i` of the matrix (empty if out of range).
    pub fn row(&self, i: usize) -> &[f32] {
        self.matrix
            .get(i * self.dim..(i + 1) * self.dim)
            .unwrap_or_default()
    }

    /// `P·x` (`dims` wide) of one `dim`-wide row.
    pub fn project(&self, x: &[f32]) -> Vec<f32> {
        self.matrix
            .chunks_exact(self.dim)
            .map(|p| quiver_kernels::dot(p, x))
            .collect()
    }

    /// `P·x` of every row of `rows` (row-major, `dim` wide), row-major, `dims` wide; in
    /// parallel.
    pub fn project_rows(&self, rows: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; rows.len() / self.dim * self.dims];
        out.par_chunks_mut(self.dims * 256)
            .zip(rows.par_chunks(self.dim * 256))
            .for_each(|(out, rows)| {
                for (o, x) in out
                    .chunks_exact_mut(self.dims)
                    .zip(rows.chunks_exact(self.dim))
                {
                    for (v, p) in o.iter_mut().zip(self.matrix.chunks_exact(self.dim)) {
                        *v = quiver_kernels::dot(p, x);
                    }
                }
            });
        out
    }

    /// The loss of the module docs on samples of queries and rows (relative to the loss of
    /// projecting to nothing, `tr(K_q K_x)`; 0 is perfect), uncentred: for tests and
    /// diagnostics.
    pub fn relative_loss(&self, rows: &[f32], queries: &[f32]) -> f64 {
        let d = self.dim;
        let kx = second_moment(rows, d, None);
        let kq = second_moment(queries, d, None);
        let p: Vec<f64> = self.matrix.iter().map(|&x| f64::from(x)).collect();
        let none = frobenius_dot(&kq, &kx);
        loss(&p, &kq, &kx, d) / if none > 0.0 { none } else { 1.0 }
    }

    /// The bytes of [`Projection::from_bytes`]: little-endian
    ///
    /// ```text
    /// dim u32, dims u32, fit u32 (0 ID, 1 OOD), beta f32, queries u32, 12 zero bytes
    /// matrix  dims × dim f32, row-major (the rows orthonormal)
    /// ```
    ///
    /// `beta` and `queries` are OOD's mixing weight and sample size (0 for ID).
    pub fn to_bytes(&self) -> Vec<u8> {
        let (fit, beta, queries) = match self.fit {
            Fit::Id => (0u32, 0.0f32, 0u32),
            Fit::Ood { beta, queries } => (1, beta, queries),
        };
        let mut out = Vec::with_capacity(HEADER + 4 * self.matrix.len());
        // Both fit in u32: `from_bytes` read them so, or `learn_*` took them from a schema
        // whose dimensions are at most 65,536.
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        out.extend_from_slice(&(self.dims as u32).to_le_bytes());
        out.extend_from_slice(&fit.to_le_bytes());
        out.extend_from_slice(&beta.to_le_bytes());
        out.extend_from_slice(&queries.to_le_bytes());
        out.resize(HEADER, 0);
        for v in &self.matrix {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Parses [`Projection::to_bytes`]: every size and value checked, so damaged bytes give
    /// an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Projection, String> {
        let word = |at: usize| crate::word_at(bytes, at);
        let (dim, dims) = (word(0)? as usize, word(4)? as usize);
        if dims == 0 || dims > dim {
            return Err(format!(
                "projects dimension {dim} to {dims}: needs 1 ≤ d' ≤ d"
            ));
        }
        let fit = match (word(8)?, f32::from_bits(word(12)?), word(16)?) {
            (0, 0.0, 0) => Fit::Id,
            (1, beta, queries) if (0.0..=1.0).contains(&beta) => Fit::Ood { beta, queries },
            (f, b, q) => return Err(format!("bad fit {f} (beta {b}, {q} queries)")),
        };
        if bytes
            .get(20..HEADER)
            .is_none_or(|r| r.iter().any(|&b| b != 0))
        {
            return Err("reserved header bytes are not zero".into());
        }
        let expected = dims
            .checked_mul(dim)
            .and_then(|v| v.checked_mul(4))
            .and_then(|v| v.checked_add(HEADER))
            .ok_or_else(|| "size overflows".to_string())?;
        if bytes.len() != expected {
            return Err(format!(
                "a {dims} × {dim} projection needs {expected} bytes, found {}",
                bytes.len()
            ));
        }
        let matrix: Vec<f32> = bytes
            .get(HEADER..)
            .unwrap_or_default()
            .as_chunks::<4>()
            .0
            .iter()
            .map(|b| f32::from_le_bytes(*b))
            .collect();
        if let Some(i) = matrix.iter().position(|v| !v.is_finite()) {
            return Err(format!("entry {i} of the matrix is not finite"));
        }
        Ok(Projection {
            dim,
            dims,
            matrix,
            fit,
        })
    }
}

fn check(rows: &[f32], dim: usize, dims: usize) {
    assert!(
        (1..=dim).contains(&dims) && !rows.is_empty() && rows.len().is_multiple_of(dim),
        "LeanVec needs 1 ≤ d' ≤ d and whole rows"
    );
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A deterministic normal-ish generator (sum of uniforms), so tests need no crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> f32 {
            let mut s = 0.0;
            for _ in 0..4 {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s += (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
            s * 1.7
        }
    }

    /// `n` rows in `dim` dimensions: `rank` latent factors on the given basis directions
    /// (coordinates), scaled down by position, plus `noise`.
    fn low_rank(
        n: usize,
        dim: usize,
        basis: &[usize],
        noise: f32,
        offset: f32,
        rng: &mut Rng,
    ) -> Vec<f32> {
        let mut rows = vec![0.0f32; n * dim];
        for row in rows.chunks_exact_mut(dim) {
            for (k, &b) in basis.iter().enumerate() {
                row[b] += rng.next() * (3.0 - k as f32 * 0.1) + offset;
            }
            for x in row.iter_mut() {
                *x += noise * rng.next();
            }
        }
        rows
    }

    fn assert_orthonormal(p: &Projection) {
        for i in 0..p.dims() {
            for j in 0..p.dims() {
                let dot: f32 = p.row(i).iter().zip(p.row(j)).map(|(a, b)| a * b).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-4, "rows {i}, {j}: {dot}");
            }
        }
    }

    /// Energy of unit basis vector `e_b` inside the span of `P`'s rows: `‖P e_b‖²`.
    fn captured(p: &Projection, b: usize) -> f32 {
        (0..p.dims()).map(|i| p.row(i)[b].powi(2)).sum()
    }

    #[test]
    fn id_recovers_a_low_rank_subspace_with_orthonormal_rows() {
        let mut rng = Rng(7);
        let (dim, basis) = (48, [3usize, 17, 5, 40, 22, 9]);
        let rows = low_rank(3000, dim, &basis, 0.05, 0.0, &mut rng);
        for metric in [Metric::Dot, Metric::L2] {
            let p = Projection::learn_id(&rows, dim, basis.len(), metric);
            assert_orthonormal(&p);
            assert_eq!(p.fit(), Fit::Id);
            for &b in &basis {
                let c = captured(&p, b);
                assert!(c > 0.99, "{metric:?}: direction {b} captured {c}");
            }
        }
    }

    /// Inner product, uncentred: a shared offset on one direction is the largest component
    /// and must be kept; with L2 the offset does not matter and the varying directions win.
    #[test]
    fn id_keeps_the_mean_direction_for_inner_product_only() {
        let mut rng = Rng(11);
        let dim = 16;
        let mut rows = low_rank(2000, dim, &[0, 1], 0.01, 0.0, &mut rng);
        for row in rows.chunks_exact_mut(dim) {
            row[9] += 20.0;
        }
        let dot = Projection::learn_id(&rows, dim, 2, Metric::Dot);
        assert!(captured(&dot, 9) > 0.99);
        let l2 = Projection::learn_id(&rows, dim, 2, Metric::L2);
        assert!(captured(&l2, 9) < 0.01);
        assert!(captured(&l2, 0) > 0.99 && captured(&l2, 1) > 0.99);
    }

    /// Queries and base on different directions: the base's top directions miss what the
    /// queries ask about, OOD finds it, and its loss is clearly below ID's.
    #[test]
    fn ood_loss_is_below_id_loss_when_queries_differ() {
        let mut rng = Rng(3);
        let dim = 32;
        // Base: strong on 0..4, weaker on 10..14; queries only on 10..14.
        let mut rows = low_rank(4000, dim, &[0, 1, 2, 3], 0.05, 0.0, &mut rng);
        let weak = low_rank(4000, dim, &[10, 11, 12, 13], 0.0, 0.0, &mut rng);
        for (r, w) in rows.iter_mut().zip(&weak) {
            *r += 0.3 * w;
        }
        let queries = low_rank(500, dim, &[10, 11, 12, 13], 0.05, 0.0, &mut rng);
        let id = Projection::learn_id(&rows, dim, 4, Metric::Dot);
        let ood = Projection::learn_ood(&rows, &queries, dim, 4, Metric::Dot);
        assert_orthonormal(&ood);
        let (lid, lood) = (
            id.relative_loss(&rows, &queries),
            ood.relative_loss(&rows, &queries),
        );
        assert!(lood <= lid, "OOD {lood} vs ID {lid}");
        assert!(lood < 0.5 * lid, "OOD {lood} vs ID {lid}");
        let Fit::Ood { beta, queries: nq } = ood.fit() else {
            panic!("not OOD: {:?}", ood.fit());
        };
        assert!(beta > 0.0);
        assert_eq!(nq, 500);
    }

    /// The closed form of the loss equals its definition averaged over the sample pairs.
    #[test]
    fn loss_matches_its_definition() {
        let mut rng = Rng(5);
        let dim = 12;
        let rows = low_rank(60, dim, &[0, 4, 7], 0.3, 0.5, &mut rng);
        let queries = low_rank(40, dim, &[1, 4, 9], 0.3, -0.2, &mut rng);
        let p = Projection::learn_ood(&rows, &queries, dim, 3, Metric::Dot);
        let (px, pq) = (p.project_rows(&rows), p.project_rows(&queries));
        let mut sum = 0.0f64;
        let mut none = 0.0f64;
        for (q, pq) in queries.chunks_exact(dim).zip(pq.chunks_exact(3)) {
            for (x, px) in rows.chunks_exact(dim).zip(px.chunks_exact(3)) {
                let full: f64 = q.iter().zip(x).map(|(a, b)| f64::from(a * b)).sum();
                let red: f64 = pq.iter().zip(px).map(|(a, b)| f64::from(a * b)).sum();
                sum += (full - red).powi(2);
                none += full * full;
            }
        }
        let want = sum / none;
        let got = p.relative_loss(&rows, &queries);
        assert!((got - want).abs() < 1e-4 * (1.0 + want), "{got} vs {want}");
    }

    #[test]
    fn project_rows_equals_project() {
        let mut rng = Rng(9);
        let rows = low_rank(700, 20, &[1, 2, 3], 0.2, 0.1, &mut rng);
        let p = Projection::learn_id(&rows, 20, 5, Metric::Dot);
        let all = p.project_rows(&rows);
        for (x, px) in rows.chunks_exact(20).zip(all.chunks_exact(5)) {
            assert_eq!(p.project(x), px);
        }
    }

    proptest! {
        #[test]
        fn bytes_round_trip_and_damage_is_an_error(
            dim in 1usize..12,
            seed in any::<u64>(),
            ood in any::<bool>(),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let mut rng = Rng(seed);
            let rows: Vec<f32> = (0..30 * dim).map(|_| rng.next()).collect();
            let queries: Vec<f32> = (0..10 * dim).map(|_| rng.next()).collect();
            let dims = 1 + (seed as usize % dim);
            let p = match ood {
                true => Projection::learn_ood(&rows, &queries, dim, dims, Metric::Dot),
                false => Projection::learn_id(&rows, dim, dims, Metric::L2),
            };
            let bytes = p.to_bytes();
            prop_assert_eq!(Projection::from_bytes(&bytes), Ok(p));
            let mut damaged = bytes.clone();
            let i = flip.index(damaged.len());
            damaged[i] ^= 0xA5;
            let _ = Projection::from_bytes(&damaged);
            let mut short = bytes;
            short.truncate(cut.index(short.len()));
            prop_assert!(Projection::from_bytes(&short).is_err());
        }
    }
}
