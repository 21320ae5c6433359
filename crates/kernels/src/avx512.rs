//! AVX-512F kernels: 4 accumulators × 16 lanes (64 floats per iteration, 6 iterations at
//! dimension 384), then the remaining 16-float blocks spread over the accumulators, then
//! one masked load for the last `len % 16` elements.
//!
//! Every function here is `#[target_feature(enable = "avx512f")]`: calling one is sound
//! only on a CPU with AVX-512F, which `dispatch.rs` checks once before handing them out.
//! Full loads read whole `[f32; 16]` arrays and the masked load reads only lanes inside its
//! slice, so every access stays in bounds whatever the slice lengths.

use std::arch::x86_64::{
    __m512, __mmask16, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
    _mm512_reduce_add_ps, _mm512_setzero_ps, _mm512_sub_ps,
};

const LANES: usize = 16;
const ACCUMULATORS: usize = 4;

/// `Σ aᵢ·bᵢ`; see the module docs for the accumulation order.
#[target_feature(enable = "avx512f")]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a_blocks, a_tail) = a.as_chunks::<LANES>();
    let (b_blocks, b_tail) = b.as_chunks::<LANES>();
    let (a_groups, a_rest) = a_blocks.as_chunks::<ACCUMULATORS>();
    let (b_groups, b_rest) = b_blocks.as_chunks::<ACCUMULATORS>();
    let mut acc = [_mm512_setzero_ps(); ACCUMULATORS];
    for (xs, ys) in a_groups.iter().zip(b_groups) {
        for ((s, x), y) in acc.iter_mut().zip(xs).zip(ys) {
            *s = _mm512_fmadd_ps(load(x), load(y), *s);
        }
    }
    for ((s, x), y) in acc.iter_mut().zip(a_rest).zip(b_rest) {
        *s = _mm512_fmadd_ps(load(x), load(y), *s);
    }
    if !a_tail.is_empty() {
        // Masked-out lanes load as 0.0 and add nothing.
        let [s, ..] = &mut acc;
        *s = _mm512_fmadd_ps(load_partial(a_tail), load_partial(b_tail), *s);
    }
    reduce(acc)
}

/// `Σ (aᵢ - bᵢ)²`; same structure as [`dot`].
#[target_feature(enable = "avx512f")]
pub(crate) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let (a_blocks, a_tail) = a.as_chunks::<LANES>();
    let (b_blocks, b_tail) = b.as_chunks::<LANES>();
    let (a_groups, a_rest) = a_blocks.as_chunks::<ACCUMULATORS>();
    let (b_groups, b_rest) = b_blocks.as_chunks::<ACCUMULATORS>();
    let mut acc = [_mm512_setzero_ps(); ACCUMULATORS];
    for (xs, ys) in a_groups.iter().zip(b_groups) {
        for ((s, x), y) in acc.iter_mut().zip(xs).zip(ys) {
            let d = _mm512_sub_ps(load(x), load(y));
            *s = _mm512_fmadd_ps(d, d, *s);
        }
    }
    for ((s, x), y) in acc.iter_mut().zip(a_rest).zip(b_rest) {
        let d = _mm512_sub_ps(load(x), load(y));
        *s = _mm512_fmadd_ps(d, d, *s);
    }
    if !a_tail.is_empty() {
        // Masked-out lanes load as 0.0 in both operands, so their difference adds nothing.
        let [s, ..] = &mut acc;
        let d = _mm512_sub_ps(load_partial(a_tail), load_partial(b_tail));
        *s = _mm512_fmadd_ps(d, d, *s);
    }
    reduce(acc)
}

/// `Σ aᵢ²`.
#[target_feature(enable = "avx512f")]
pub(crate) fn norm_squared(a: &[f32]) -> f32 {
    dot(a, a)
}

#[inline]
#[target_feature(enable = "avx512f")]
#[expect(unsafe_code, reason = "unaligned 512-bit load through a raw pointer")]
fn load(x: &[f32; LANES]) -> __m512 {
    // SAFETY: `x` refers to 16 initialised, contiguous `f32` (64 bytes), exactly the bytes
    // `_mm512_loadu_ps` reads; it needs no alignment.
    unsafe { _mm512_loadu_ps(x.as_ptr()) }
}

/// Loads the first `min(x.len(), 16)` elements of `x`; the other lanes are 0.0.
#[inline]
#[target_feature(enable = "avx512f")]
#[expect(unsafe_code, reason = "masked 512-bit load through a raw pointer")]
fn load_partial(x: &[f32]) -> __m512 {
    let len = x.len().min(LANES);
    // `len <= 16`, so the mask has at most the low 16 bits set and fits `__mmask16`.
    let mask = ((1u32 << len) - 1) as __mmask16;
    // SAFETY: a masked load accesses only the lanes whose mask bit is set (masked-out lanes
    // are neither read nor able to fault); the mask selects lanes `0..len`, and
    // `len <= x.len()`, so every byte read lies inside `x`. No alignment is required.
    unsafe { _mm512_maskz_loadu_ps(mask, x.as_ptr()) }
}

/// Sums the 4 accumulators pairwise, then the 16 lanes as a tree.
#[inline]
#[target_feature(enable = "avx512f")]
fn reduce(acc: [__m512; ACCUMULATORS]) -> f32 {
    let [a0, a1, a2, a3] = acc;
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)))
}
