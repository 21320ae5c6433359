//! The fused CPU kernels of the encoder: everything but the matrix products.
//!
//! Each kernel makes one pass over its rows and fuses what PyTorch runs as separate
//! operators: bias + residual + LayerNorm, bias + GELU, and the whole attention of one
//! sequence (bias of Q, K and V, scores, softmax, weighted sum of V) over packed, unpadded
//! sequences. All arithmetic is `f32`, as in PyTorch.
//!
//! # Vectorisation
//!
//! The kernels work on [`V8`] values, `[f32; 8]`: an element-wise loop over one unrolls
//! into a single AVX instruction, reductions keep independent 8-lane accumulators (four of
//! them where an FMA chain would otherwise wait on its latency), and `exp` and `erf` are
//! branch-free polynomials. The entry points ([`Kernels`]) run them through [`pulp::Arch::dispatch`], which calls
//! them from a function compiled for AVX2+FMA (x86-64-v3) when the CPU has it and for the
//! baseline otherwise; CPU features are detected once, when [`Kernels`] is made, with no
//! `unsafe` here. Everything below an entry point is `#[inline(always)]`: an out-of-line
//! function (a closure, say) would be compiled for the baseline, where `mul_add` is a
//! library call.

use pulp::{Simd, WithSimd};

/// Accumulators per reduction: one AVX register of `f32`.
pub(crate) const LANES: usize = 8;

/// The kernels, dispatched to the best instruction set of this CPU.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kernels {
    arch: pulp::Arch,
}

/// Runs a closure-free operation inside the dispatched function; the closure-free part
/// matters, see the module documentation.
macro_rules! dispatched {
    ($name:ident<$lt:lifetime> { $($field:ident: $ty:ty),* $(,)? } => $body:expr) => {
        struct $name<$lt> { $($field: $ty),* }
        impl<$lt> WithSimd for $name<$lt> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: Simd>(self, _simd: S) {
                let $name { $($field),* } = self;
                $body
            }
        }
    };
}

dispatched!(LayerNormOp<'a> {
    x: &'a mut [f32], residual: Option<&'a [f32]>, bias: &'a [f32], gamma: &'a [f32],
    beta: &'a [f32], eps: f32,
} => add_layer_norm(x, residual, bias, gamma, beta, eps));

dispatched!(BiasGeluOp<'a> { x: &'a mut [f32], bias: &'a [f32] } => bias_gelu(x, bias));

dispatched!(AttentionOp<'a> {
    qkv: &'a [f32], qkv_bias: &'a [f32], lens: &'a [usize], heads: Heads,
    scratch: &'a mut AttentionScratch, out: &'a mut [f32],
} => attend_packed(qkv, qkv_bias, lens, heads, scratch, out));

dispatched!(PoolOp<'a> { x: &'a [f32], lens: &'a [usize], out: &'a mut [f32] }
    => mean_pool_packed(x, lens, out));

impl Kernels {
    /// Detects the CPU's instruction sets.
    pub(crate) fn detect() -> Kernels {
        Kernels {
            arch: pulp::Arch::new(),
        }
    }

    /// [`add_layer_norm`].
    pub(crate) fn add_layer_norm(
        self,
        x: &mut [f32],
        residual: Option<&[f32]>,
        bias: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
    ) {
        self.arch.dispatch(LayerNormOp {
            x,
            residual,
            bias,
            gamma,
            beta,
            eps,
        });
    }

    /// [`bias_gelu`].
    pub(crate) fn bias_gelu(self, x: &mut [f32], bias: &[f32]) {
        self.arch.dispatch(BiasGeluOp { x, bias });
    }

    /// [`attend`] for each of the sequences of `lens` tokens laid end to end in `qkv` and
    /// `out`.
    pub(crate) fn attention(
        self,
        qkv: &[f32],
        qkv_bias: &[f32],
        lens: &[usize],
        heads: Heads,
        scratch: &mut AttentionScratch,
        out: &mut [f32],
    ) {
        self.arch.dispatch(AttentionOp {
            qkv,
            qkv_bias,
            lens,
            heads,
            scratch,
            out,
        });
    }

    /// [`mean_pool_normalize`] for each of the sequences of `lens` rows laid end to end in
    /// `x`; `out` gets one row per sequence.
    pub(crate) fn mean_pool(self, x: &[f32], lens: &[usize], out: &mut [f32]) {
        self.arch.dispatch(PoolOp { x, lens, out });
    }
}

#[inline(always)]
fn attend_packed(
    qkv: &[f32],
    qkv_bias: &[f32],
    lens: &[usize],
    heads: Heads,
    scratch: &mut AttentionScratch,
    out: &mut [f32],
) {
    let hidden = heads.hidden();
    let mut start = 0;
    for &n in lens {
        let rows = qkv.get(start * 3 * hidden..(start + n) * 3 * hidden);
        let out = out.get_mut(start * hidden..(start + n) * hidden);
        if let (Some(rows), Some(out)) = (rows, out) {
            attend(rows, qkv_bias, heads, scratch, out);
        }
        start += n;
    }
}

#[inline(always)]
fn mean_pool_packed(x: &[f32], lens: &[usize], out: &mut [f32]) {
    let Some(width) = out.len().checked_div(lens.len()) else {
        return;
    };
    let mut start = 0;
    for (&n, out) in lens.iter().zip(out.chunks_exact_mut(width)) {
        if let Some(rows) = x.get(start * width..(start + n) * width) {
            mean_pool_normalize(rows, out);
        }
        start += n;
    }
}

/// One AVX register of `f32`, the unit of the loops below: an operation on it is a loop
/// over its lanes, fully unrolled into one vector instruction.
pub(crate) type V8 = [f32; LANES];

#[inline(always)]
fn splat(x: f32) -> V8 {
    [x; LANES]
}

#[inline(always)]
fn add8(a: V8, b: V8) -> V8 {
    let mut r = [0.0; LANES];
    for l in 0..LANES {
        r[l] = a[l] + b[l];
    }
    r
}

#[inline(always)]
fn mul8(a: V8, b: V8) -> V8 {
    let mut r = [0.0; LANES];
    for l in 0..LANES {
        r[l] = a[l] * b[l];
    }
    r
}

/// `a·b + c`, fused.
#[inline(always)]
fn fma8(a: V8, b: V8, c: V8) -> V8 {
    let mut r = [0.0; LANES];
    for l in 0..LANES {
        r[l] = a[l].mul_add(b[l], c[l]);
    }
    r
}

#[inline(always)]
fn min8(a: V8, b: V8) -> V8 {
    let mut r = [0.0; LANES];
    for l in 0..LANES {
        r[l] = a[l].min(b[l]);
    }
    r
}

#[inline(always)]
fn max8(a: V8, b: V8) -> V8 {
    let mut r = [0.0; LANES];
    for l in 0..LANES {
        r[l] = a[l].max(b[l]);
    }
    r
}

#[inline(always)]
fn hsum(acc: V8) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `Σ a[i]·b[i]` over the common length, with [`LANES`] partial sums (so not
/// bit-identical to a sequential sum).
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let ((a8, a_rest), (b8, b_rest)) = (a.as_chunks::<LANES>(), b.as_chunks::<LANES>());
    let mut acc = splat(0.0);
    for (x, y) in a8.iter().zip(b8) {
        acc = fma8(*x, *y, acc);
    }
    a_rest
        .iter()
        .zip(b_rest)
        .fold(hsum(acc), |s, (x, y)| x.mul_add(*y, s))
}

/// `Σ a[i]` with [`LANES`] partial sums.
#[inline(always)]
fn sum(a: &[f32]) -> f32 {
    let (a8, rest) = a.as_chunks::<LANES>();
    let acc = a8.iter().fold(splat(0.0), |acc, x| add8(acc, *x));
    rest.iter().fold(hsum(acc), |s, x| s + x)
}

/// `Σ (a[i] − mean)²` with [`LANES`] partial sums.
#[inline(always)]
fn sum_sq_dev(a: &[f32], mean: f32) -> f32 {
    let (a8, rest) = a.as_chunks::<LANES>();
    let m = splat(-mean);
    let acc = a8.iter().fold(splat(0.0), |acc, x| {
        let d = add8(*x, m);
        fma8(d, d, acc)
    });
    rest.iter()
        .fold(hsum(acc), |s, x| (x - mean).mul_add(x - mean, s))
}

/// `e^x` per lane for `x ≤ 88`, branch-free (Cephes `expf`: range reduction by `ln 2`,
/// degree-6 polynomial). Relative error below 2e-7; inputs below −87 give about 1.6e-38,
/// not 0.
#[inline(always)]
pub(crate) fn exp8(x: V8) -> V8 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2^23 rounds to an integer, which lands in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = min8(max8(x, splat(-87.0)), splat(88.0));
    let t = fma8(x, splat(LOG2E), splat(ROUND));
    let n = add8(t, splat(-ROUND));
    let r = fma8(n, splat(-LN2_HI), x);
    let r = fma8(n, splat(-LN2_LO), r);
    let mut p = splat(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = fma8(p, r, splat(c));
    }
    let y = add8(fma8(mul8(p, r), r, r), splat(1.0));
    // 2^n: n in [-126, 127], so n + 127 is a valid biased exponent.
    let mut scale = [0.0; LANES];
    for l in 0..LANES {
        let k = t[l]
            .to_bits()
            .wrapping_sub(ROUND.to_bits())
            .wrapping_add(127);
        scale[l] = f32::from_bits(k << 23);
    }
    mul8(y, scale)
}

/// `erf(x)` per lane, branch-free: Eigen's rational approximation on [−4, 4]
/// (|error| < 5e-7; beyond ±4 erf is ±1 in `f32`).
#[inline(always)]
pub(crate) fn erf8(x: V8) -> V8 {
    let mut y = [0.0; LANES];
    for l in 0..LANES {
        let x = x[l].clamp(-4.0, 4.0);
        let x2 = x * x;
        let mut p: f32 = -2.726_142_3e-10;
        p = p.mul_add(x2, 2.770_681_4e-8);
        p = p.mul_add(x2, -2.101_024e-6);
        p = p.mul_add(x2, -5.692_506_4e-5);
        p = p.mul_add(x2, -7.349_906_3e-4);
        p = p.mul_add(x2, -2.954_6e-3);
        p = p.mul_add(x2, -1.609_603_3e-2);
        let mut q: f32 = -1.456_607_2e-5;
        q = q.mul_add(x2, -2.133_740_6e-4);
        q = q.mul_add(x2, -1.682_827e-3);
        q = q.mul_add(x2, -7.373_329e-3);
        q = q.mul_add(x2, -1.426_474e-2);
        y[l] = x * p / q;
    }
    y
}

/// The exact (erf) GELU of BERT per lane: `x/2 · (1 + erf(x/√2))`.
#[inline(always)]
pub(crate) fn gelu8(x: V8) -> V8 {
    let e = erf8(mul8(x, splat(std::f32::consts::FRAC_1_SQRT_2)));
    let mut y = [0.0; LANES];
    for l in 0..LANES {
        y[l] = 0.5 * x[l] * (1.0 + e[l]);
    }
    y
}

/// In place, per row of width `gamma.len()`: `v = x + bias (+ residual)`, then
/// `x = (v − mean) / sqrt(var + eps) · gamma + beta` with the biased variance, as
/// `torch.nn.LayerNorm`. `residual`, when given, has `x`'s length.
#[inline(always)]
pub(crate) fn add_layer_norm(
    x: &mut [f32],
    residual: Option<&[f32]>,
    bias: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let width = gamma.len();
    let (bias8, bias_rest) = bias.as_chunks::<LANES>();
    let (gamma8, gamma_rest) = gamma.as_chunks::<LANES>();
    let (beta8, beta_rest) = beta.as_chunks::<LANES>();
    for (r, o) in x.chunks_exact_mut(width).enumerate() {
        let res = residual.and_then(|res| res.get(r * width..(r + 1) * width));
        {
            let (o8, o_rest) = o.as_chunks_mut::<LANES>();
            for (o, b) in o8.iter_mut().zip(bias8) {
                *o = add8(*o, *b);
            }
            for (o, b) in o_rest.iter_mut().zip(bias_rest) {
                *o += b;
            }
            if let Some(res) = res {
                let (res8, res_rest) = res.as_chunks::<LANES>();
                for (o, r) in o8.iter_mut().zip(res8) {
                    *o = add8(*o, *r);
                }
                for (o, r) in o_rest.iter_mut().zip(res_rest) {
                    *o += r;
                }
            }
        }
        let mean = sum(o) / width as f32;
        let var = sum_sq_dev(o, mean) / width as f32;
        let inv = 1.0 / (var + eps).sqrt();
        let (o8, o_rest) = o.as_chunks_mut::<LANES>();
        let (shift, scale) = (splat(-mean), splat(inv));
        for ((o, g), b) in o8.iter_mut().zip(gamma8).zip(beta8) {
            *o = fma8(mul8(add8(*o, shift), scale), *g, *b);
        }
        for ((o, g), b) in o_rest.iter_mut().zip(gamma_rest).zip(beta_rest) {
            *o = ((*o - mean) * inv).mul_add(*g, *b);
        }
    }
}

/// In place, per row of width `bias.len()`: `x = gelu(x + bias)`.
#[inline(always)]
pub(crate) fn bias_gelu(x: &mut [f32], bias: &[f32]) {
    let width = bias.len();
    let (bias8, bias_rest) = bias.as_chunks::<LANES>();
    for row in x.chunks_exact_mut(width) {
        let (x8, x_rest) = row.as_chunks_mut::<LANES>();
        for (x, b) in x8.iter_mut().zip(bias8) {
            *x = gelu8(add8(*x, *b));
        }
        for (x, b) in x_rest.iter_mut().zip(bias_rest) {
            *x = gelu8(splat(*x + b))[0];
        }
    }
}

/// The shape of multi-head attention: `count` heads of `dim` values, `dim` 32 (MiniLM) or
/// 64 (BERT-base); the kernels are specialised for these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Heads {
    count: usize,
    dim: usize,
}

impl Heads {
    /// `None` for a head width the kernels do not support.
    pub(crate) fn new(count: usize, dim: usize) -> Option<Heads> {
        matches!(dim, 32 | 64).then_some(Heads { count, dim })
    }

    pub(crate) fn hidden(self) -> usize {
        self.count * self.dim
    }
}

/// Reusable buffers of [`attend`].
#[derive(Default)]
pub(crate) struct AttentionScratch {
    /// One head's keys, transposed by blocks of [`LANES`] keys: block `b` is `dim` vectors,
    /// vector `c` holding value `c` of keys `8b..8b+8` (zero past the last key).
    kt: Vec<V8>,
    /// One head's values: `n` rows of `dim / 8` vectors.
    v: Vec<V8>,
    /// One query's scores, in blocks of [`LANES`] keys.
    scores: Vec<V8>,
}

/// Self-attention within one sequence of `n` tokens, every token attending to every token
/// (no padding: the sequence is exactly its tokens).
///
/// `qkv` holds `n` rows `[q | k | v]` of width `3·hidden` before their bias `qkv_bias`;
/// head `h` is columns `h·dim..(h+1)·dim` of each part. `out` receives `n` rows of width
/// `hidden`: per head, `softmax(q·kᵀ/√dim) · v`.
#[inline(always)]
pub(crate) fn attend(
    qkv: &[f32],
    qkv_bias: &[f32],
    heads: Heads,
    scratch: &mut AttentionScratch,
    out: &mut [f32],
) {
    match heads.dim {
        32 => attend_d::<4>(qkv, qkv_bias, heads.count, scratch, out),
        64 => attend_d::<8>(qkv, qkv_bias, heads.count, scratch, out),
        // Heads::new admits no other width.
        _ => {}
    }
}

/// [`attend`] for heads of `D8` vectors (`8·D8` values). The scores of a block of 8 keys
/// are `Σ_c q[c] · kᵀ[c]` (two accumulators, no horizontal sums); the weighted sum of
/// values keeps the head's `D8` vectors in registers.
#[inline(always)]
fn attend_d<const D8: usize>(
    qkv: &[f32],
    qkv_bias: &[f32],
    count: usize,
    scratch: &mut AttentionScratch,
    out: &mut [f32],
) {
    let d = D8 * LANES;
    let hidden = count * d;
    let width = 3 * hidden;
    let n = qkv.len() / width;
    if n == 0 {
        return;
    }
    let blocks = n.div_ceil(LANES);
    let scale = splat(1.0 / (d as f32).sqrt());
    let AttentionScratch { kt, v, scores } = scratch;
    let vectors = |row: &'_ [f32], start: usize| -> [V8; D8] {
        let mut out = [splat(0.0); D8];
        let (x8, _) = row
            .get(start..start + d)
            .unwrap_or_default()
            .as_chunks::<LANES>();
        for (o, x) in out.iter_mut().zip(x8) {
            *o = *x;
        }
        out
    };
    for h in 0..count {
        let col = h * d;
        let [q_bias, k_bias, v_bias] = [0, 1, 2].map(|p| vectors(qkv_bias, p * hidden + col));
        // This head's keys (transposed by blocks of 8 keys) and values, with their bias.
        kt.clear();
        kt.resize(blocks * d, splat(0.0));
        v.clear();
        for (j, row) in qkv.chunks_exact(width).enumerate() {
            let (lane, block) = (j % LANES, j / LANES);
            let kr = row.get(hidden + col..hidden + col + d).unwrap_or_default();
            let block = kt.get_mut(block * d..(block + 1) * d).unwrap_or_default();
            let (block, _) = block.as_chunks_mut::<LANES>();
            for ((kc, x), b) in block.iter_mut().zip(kr.as_chunks::<LANES>().0).zip(&k_bias) {
                for l in 0..LANES {
                    if let Some(slot) = kc[l].get_mut(lane) {
                        *slot = x[l] + b[l];
                    }
                }
            }
            let vr = row
                .get(2 * hidden + col..2 * hidden + col + d)
                .unwrap_or_default();
            for (x, b) in vr.as_chunks::<LANES>().0.iter().zip(&v_bias) {
                v.push(add8(*x, *b));
            }
        }
        let (v_rows, _) = v.as_chunks::<D8>();
        for (row, out_row) in qkv.chunks_exact(width).zip(out.chunks_exact_mut(hidden)) {
            let mut q = [splat(0.0); D8];
            let qr = row.get(col..col + d).unwrap_or_default();
            for ((q, x), b) in q.iter_mut().zip(qr.as_chunks::<LANES>().0).zip(&q_bias) {
                *q = mul8(add8(*x, *b), scale);
            }
            scores.clear();
            for block in kt.chunks_exact(d) {
                let (block, _) = block.as_chunks::<LANES>();
                // Four independent chains: an FMA's latency is four times its throughput.
                let mut acc = [splat(0.0); 4];
                for (qc, kc) in q.iter().zip(block) {
                    for l in (0..LANES).step_by(4) {
                        for a in 0..4 {
                            acc[a] = fma8(splat(qc[l + a]), kc[l + a], acc[a]);
                        }
                    }
                }
                scores.push(add8(add8(acc[0], acc[1]), add8(acc[2], acc[3])));
            }
            // Keys past the last one are not keys: out of the max, weight 0.
            let live_in_last = n - (blocks - 1) * LANES;
            if let Some(last) = scores.last_mut() {
                for s in last.iter_mut().skip(live_in_last) {
                    *s = f32::NEG_INFINITY;
                }
            }
            let m = scores
                .iter()
                .fold(splat(f32::NEG_INFINITY), |m, s| max8(m, *s));
            let m = m.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b));
            for s in scores.iter_mut() {
                *s = exp8(add8(*s, splat(-m)));
            }
            if let Some(last) = scores.last_mut() {
                for s in last.iter_mut().skip(live_in_last) {
                    *s = 0.0;
                }
            }
            let total = hsum(scores.iter().fold(splat(0.0), |t, s| add8(t, *s)));
            let mut ctx = [splat(0.0); D8];
            for (p, vj) in scores.as_flattened().iter().zip(v_rows) {
                let p = splat(*p);
                for (c, x) in ctx.iter_mut().zip(vj) {
                    *c = fma8(p, *x, *c);
                }
            }
            let inv = splat(1.0 / total);
            let (o8, _) = out_row
                .get_mut(col..col + d)
                .unwrap_or_default()
                .as_chunks_mut::<LANES>();
            for (o, c) in o8.iter_mut().zip(&ctx) {
                *o = mul8(*c, inv);
            }
        }
    }
}

/// Mean of `rows` (row-major, width `out.len()`, at least one row) written to `out`, then
/// `out` scaled to unit L2 norm (a zero vector stays zero; norms are clamped at 1e-12 as
/// `torch.nn.functional.normalize` does).
#[inline(always)]
pub(crate) fn mean_pool_normalize(rows: &[f32], out: &mut [f32]) {
    let width = out.len();
    out.fill(0.0);
    let mut n = 0usize;
    for r in rows.chunks_exact(width) {
        for (o, x) in out.iter_mut().zip(r) {
            *o += x;
        }
        n += 1;
    }
    let inv_n = 1.0 / (n.max(1) as f32);
    for o in out.iter_mut() {
        *o *= inv_n;
    }
    normalize(out);
}

/// Scales `v` to unit L2 norm, dividing by `max(‖v‖, 1e-12)`.
#[inline(always)]
pub(crate) fn normalize(v: &mut [f32]) {
    let norm = dot(v, v).sqrt().max(1e-12);
    for x in v.iter_mut() {
        *x /= norm;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_within_2e7_relative() {
        let exp = |x: f32| exp8([x, 0.0, 1.0, -1.0, 2.0, 3.0, 4.0, 5.0])[0];
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = (x as f64).exp();
            let rel = ((exp(x) as f64 - want) / want).abs();
            worst = worst.max(rel);
            x += 0.001_37;
        }
        assert!(worst < 2e-7, "worst relative error {worst}");
        assert!(exp(-1e30) < 1e-37 && exp(-1e30) >= 0.0);
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn erf_matches_libm_within_5e7() {
        let erf = |x: f32| erf8(splat(x))[3];
        let mut worst = 0.0f64;
        let mut x = -6.0f32;
        while x <= 6.0 {
            worst = worst.max((erf(x) as f64 - libm::erf(x as f64)).abs());
            x += 0.000_71;
        }
        assert!(worst < 5e-7, "worst absolute error {worst}");
    }

    #[test]
    fn gelu_reference_points() {
        // PyTorch's exact GELU at a few points, in f64.
        for (x, want) in [
            (0.0f32, 0.0f64),
            (1.0, 0.841_344_746_068_542_9),
            (-1.0, -0.158_655_253_931_457_05),
            (3.0, 2.995_950_177_065_804),
            (-3.0, -0.004_049_822_934_196_045),
        ] {
            let got = gelu8(splat(x))[5];
            assert!((got as f64 - want).abs() < 1e-6, "gelu({x}) = {got}");
        }
    }

    #[test]
    fn layer_norm_with_residual_and_bias() {
        let x = [1.0f32, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0];
        let res = [0.0f32, 0.0, 0.0, 0.0, 5.0, 5.0, 5.0, 9.0];
        let bias = [1.0f32, 1.0, 1.0, 1.0];
        let gamma = [1.0f32, 2.0, 1.0, 1.0];
        let beta = [0.0f32, 0.0, 0.0, 0.5];
        let mut out = x;
        add_layer_norm(&mut out, Some(&res), &bias, &gamma, &beta, 1e-12);
        // Row 0: v = 2, 3, 4, 5; mean 3.5; var 1.25.
        let s = 1.25f32.sqrt();
        let want0 = [-1.5 / s, 2.0 * -0.5 / s, 0.5 / s, 1.5 / s + 0.5];
        for (o, w) in out.iter().zip(want0) {
            assert!((o - w).abs() < 1e-6, "{out:?}");
        }
        // Row 1: v = 6, 6, 6, 10; mean 7; var 3.
        let s = 3.0f32.sqrt();
        let want1 = [-1.0 / s, -2.0 / s, -1.0 / s, 3.0 / s + 0.5];
        for (o, w) in out[4..].iter().zip(want1) {
            assert!((o - w).abs() < 1e-6, "{out:?}");
        }
    }

    /// Attention by the textbook formula in f64, padded batch with an additive mask, the
    /// way PyTorch runs BERT.
    fn attention_reference(qkv: &[f32], bias: &[f32], heads: Heads) -> Vec<f64> {
        let hidden = heads.hidden();
        let n = qkv.len() / (3 * hidden);
        let at = |t: usize, part: usize, c: usize| {
            (qkv[t * 3 * hidden + part * hidden + c] + bias[part * hidden + c]) as f64
        };
        let mut out = vec![0.0; n * hidden];
        for h in 0..heads.count {
            for i in 0..n {
                let s: Vec<f64> = (0..n)
                    .map(|j| {
                        (0..heads.dim)
                            .map(|c| at(i, 0, h * heads.dim + c) * at(j, 1, h * heads.dim + c))
                            .sum::<f64>()
                            / (heads.dim as f64).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for c in 0..heads.dim {
                    out[i * hidden + h * heads.dim + c] =
                        (0..n).map(|j| e[j] / z * at(j, 2, h * heads.dim + c)).sum();
                }
            }
        }
        out
    }

    #[test]
    fn attention_matches_the_reference() {
        // One scratch for all: buffers are reused across sequence lengths and head widths.
        let mut scratch = AttentionScratch::default();
        for (heads, n) in [(3, 1), (3, 2), (2, 7), (2, 8), (1, 9), (2, 17)] {
            let heads = Heads::new(heads, if n % 2 == 0 { 64 } else { 32 }).unwrap();
            let hidden = heads.hidden();
            let mut seed = 12345u64 + n as u64;
            let mut rnd = || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            };
            let qkv: Vec<f32> = (0..n * 3 * hidden).map(|_| rnd()).collect();
            let bias: Vec<f32> = (0..3 * hidden).map(|_| rnd()).collect();
            let mut out = vec![0.0f32; n * hidden];
            attend(&qkv, &bias, heads, &mut scratch, &mut out);
            let want = attention_reference(&qkv, &bias, heads);
            for (o, w) in out.iter().zip(&want) {
                assert!((*o as f64 - w).abs() < 1e-5, "n={n}: {o} vs {w}");
            }
        }
    }

    #[test]
    fn mean_pool_then_unit_norm() {
        let rows = [1.0f32, 0.0, 3.0, 4.0];
        let mut out = [0.0f32; 2];
        mean_pool_normalize(&rows, &mut out);
        // mean (2, 2) -> (1/√2, 1/√2)
        let r = std::f32::consts::FRAC_1_SQRT_2;
        assert!((out[0] - r).abs() < 1e-7 && (out[1] - r).abs() < 1e-7);
        let mut zero = [0.0f32; 3];
        normalize(&mut zero);
        assert_eq!(zero, [0.0; 3]);
    }

    #[test]
    fn dot_handles_remainders() {
        for len in [0usize, 1, 7, 8, 9, 33] {
            let a: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let want: f32 = a.iter().map(|x| x * x).sum();
            assert_eq!(dot(&a, &a), want, "len {len}");
        }
    }
}
