//! AVX2 + FMA kernels: 4 accumulators × 8 lanes (32 floats per iteration, 12 iterations at
//! dimension 384), then the remaining 8-float blocks spread over the accumulators, then a
//! scalar tail of fewer than 8 elements.
//!
//! Every function here is `#[target_feature(enable = "avx2,fma")]`: calling one is sound
//! only on a CPU with both, which `dispatch.rs` checks once before handing them out. Loads
//! read whole `[f32; 8]` arrays, so they stay in bounds whatever the slice lengths; callers
//! still assert equal lengths, since a mismatch would silently ignore the longer tail.

use std::arch::x86_64::{
    __m256, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehdup_ps, _mm_movehl_ps, _mm256_add_ps,
    _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_loadu_ps,
    _mm256_setzero_ps, _mm256_sub_ps,
};

const LANES: usize = 8;
const ACCUMULATORS: usize = 4;

/// `Σ aᵢ·bᵢ`; see the module docs for the accumulation order.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a_blocks, a_tail) = a.as_chunks::<LANES>();
    let (b_blocks, b_tail) = b.as_chunks::<LANES>();
    let (a_groups, a_rest) = a_blocks.as_chunks::<ACCUMULATORS>();
    let (b_groups, b_rest) = b_blocks.as_chunks::<ACCUMULATORS>();
    let mut acc = [_mm256_setzero_ps(); ACCUMULATORS];
    for (xs, ys) in a_groups.iter().zip(b_groups) {
        for ((s, x), y) in acc.iter_mut().zip(xs).zip(ys) {
            *s = _mm256_fmadd_ps(load(x), load(y), *s);
        }
    }
    for ((s, x), y) in acc.iter_mut().zip(a_rest).zip(b_rest) {
        *s = _mm256_fmadd_ps(load(x), load(y), *s);
    }
    let mut sum = reduce(acc);
    for (x, y) in a_tail.iter().zip(b_tail) {
        sum += x * y;
    }
    sum
}

/// `Σ (aᵢ - bᵢ)²`; same structure as [`dot`].
#[target_feature(enable = "avx2,fma")]
pub(crate) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let (a_blocks, a_tail) = a.as_chunks::<LANES>();
    let (b_blocks, b_tail) = b.as_chunks::<LANES>();
    let (a_groups, a_rest) = a_blocks.as_chunks::<ACCUMULATORS>();
    let (b_groups, b_rest) = b_blocks.as_chunks::<ACCUMULATORS>();
    let mut acc = [_mm256_setzero_ps(); ACCUMULATORS];
    for (xs, ys) in a_groups.iter().zip(b_groups) {
        for ((s, x), y) in acc.iter_mut().zip(xs).zip(ys) {
            let d = _mm256_sub_ps(load(x), load(y));
            *s = _mm256_fmadd_ps(d, d, *s);
        }
    }
    for ((s, x), y) in acc.iter_mut().zip(a_rest).zip(b_rest) {
        let d = _mm256_sub_ps(load(x), load(y));
        *s = _mm256_fmadd_ps(d, d, *s);
    }
    let mut sum = reduce(acc);
    for (x, y) in a_tail.iter().zip(b_tail) {
        let d = x - y;
        sum += d * d;
    }
    sum
}

/// `Σ aᵢ²`.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn norm_squared(a: &[f32]) -> f32 {
    dot(a, a)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
#[expect(unsafe_code, reason = "unaligned 256-bit load through a raw pointer")]
fn load(x: &[f32; LANES]) -> __m256 {
    // SAFETY: `x` refers to 8 initialised, contiguous `f32` (32 bytes), exactly the bytes
    // `_mm256_loadu_ps` reads; it needs no alignment.
    unsafe { _mm256_loadu_ps(x.as_ptr()) }
}

/// Sums the 4 accumulators pairwise, then the 8 lanes pairwise (5 dependent additions).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn reduce(acc: [__m256; ACCUMULATORS]) -> f32 {
    let [a0, a1, a2, a3] = acc;
    let v = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let odd = _mm_movehdup_ps(quad);
    let pairs = _mm_add_ps(quad, odd);
    let high = _mm_movehl_ps(odd, pairs);
    _mm_cvtss_f32(_mm_add_ss(pairs, high))
}
