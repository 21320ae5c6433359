//! AVX-512F kernels: 4 accumulators × 16 lanes (64 floats per iteration, 6 iterations at
//! dimension 384), then the remaining 16-float blocks spread over the accumulators, then
//! one masked load for the last `len % 16` elements.
//!
//! The code kernels ([`dot_u8_i16`], [`dot_u4_i16`]) need AVX-512BW as well (16-bit lanes
//! in 512-bit registers); `avx512vnni.rs` has the same kernels with fused multiply-adds.
//!
//! Every function here is `#[target_feature(enable = "avx512f")]` (and `avx512bw` for the
//! code kernels): calling one is sound only on a CPU with those, which `dispatch.rs` checks
//! once before handing them out. Full loads read whole arrays (`[f32; 16]`, `[i16; 32]`,
//! `[u8; 32]`) and masked loads read only lanes inside their slice, so every access stays in
//! bounds whatever the slice lengths.

use std::arch::x86_64::{
    __m512, __m512i, __mmask16, _mm256_loadu_si256, _mm512_add_epi32, _mm512_add_ps,
    _mm512_and_si512, _mm512_castsi512_si256, _mm512_cvtepu8_epi16, _mm512_fmadd_ps,
    _mm512_loadu_ps, _mm512_loadu_si512, _mm512_madd_epi16, _mm512_maskz_loadu_epi8,
    _mm512_maskz_loadu_epi16, _mm512_maskz_loadu_ps, _mm512_reduce_add_epi32, _mm512_reduce_add_ps,
    _mm512_set1_epi16, _mm512_setzero_ps, _mm512_setzero_si512, _mm512_srli_epi16, _mm512_sub_ps,
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

/// `Σ qᵢ·cᵢ` of 16-bit integers and 8-bit codes in `i32` lanes: 32 codes widened to `i16`
/// and multiplied pairwise into 16 `i32` sums (`vpmaddwd`), two accumulators, then one
/// masked step for the last `len % 32`. Exact while `255 · Σ|qᵢ| < 2³¹`; wraps beyond.
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn dot_u8_i16(q: &[i16], codes: &[u8]) -> i32 {
    let (q_blocks, q_tail) = q.as_chunks::<32>();
    let (c_blocks, c_tail) = codes.as_chunks::<32>();
    let mut acc = [_mm512_setzero_si512(); 2];
    for (i, (qb, cb)) in q_blocks.iter().zip(c_blocks).enumerate() {
        let s = &mut acc[i % 2];
        *s = _mm512_add_epi32(*s, _mm512_madd_epi16(load_i16(qb), widen_u8(cb)));
    }
    if !q_tail.is_empty() {
        let [s, ..] = &mut acc;
        // Masked-out lanes load as 0 and add nothing.
        let prod = _mm512_madd_epi16(load_i16_partial(q_tail), widen_u8_partial(c_tail));
        *s = _mm512_add_epi32(*s, prod);
    }
    _mm512_reduce_add_epi32(_mm512_add_epi32(acc[0], acc[1]))
}

/// `Σ qᵢ·cᵢ` of 16-bit integers and 4-bit codes in the layout of
/// [`crate::scalar::pack_u4`]: a 64-dimension block's 32 bytes are widened to 32 `i16`
/// lanes whose low nibbles are dimensions 0..32 and high nibbles 32..64, each multiplied
/// pairwise (`vpmaddwd`); the tail is added by the scalar code. Exact while
/// `15 · Σ|qᵢ| < 2³¹`.
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn dot_u4_i16(q: &[i16], codes: &[u8]) -> i32 {
    let (q_blocks, q_tail) = q.as_chunks::<64>();
    let (c_full, c_tail) = codes.split_at(q_blocks.len() * 32);
    let (c_blocks, _) = c_full.as_chunks::<32>();
    let low = _mm512_set1_epi16(0x0F);
    let (mut acc_lo, mut acc_hi) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    for (qb, cb) in q_blocks.iter().zip(c_blocks) {
        let (halves, _) = qb.as_chunks::<32>();
        if let [lo, hi] = halves {
            let w = widen_u8(cb);
            let prod_lo = _mm512_madd_epi16(load_i16(lo), _mm512_and_si512(w, low));
            let prod_hi = _mm512_madd_epi16(load_i16(hi), _mm512_srli_epi16::<4>(w));
            acc_lo = _mm512_add_epi32(acc_lo, prod_lo);
            acc_hi = _mm512_add_epi32(acc_hi, prod_hi);
        }
    }
    let sum = _mm512_reduce_add_epi32(_mm512_add_epi32(acc_lo, acc_hi));
    // The tail's exact sum, wrapped like the lanes.
    sum.wrapping_add(crate::scalar::dot_u4_tail(q_tail, c_tail) as i32)
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
#[expect(unsafe_code, reason = "unaligned 512-bit load through a raw pointer")]
pub(crate) fn load_i16(x: &[i16; 32]) -> __m512i {
    // SAFETY: `x` refers to 32 initialised, contiguous `i16` (64 bytes), exactly the bytes
    // `_mm512_loadu_si512` reads; it needs no alignment.
    unsafe { _mm512_loadu_si512(x.as_ptr().cast()) }
}

/// 32 codes widened to 32 `i16` lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
#[expect(unsafe_code, reason = "unaligned 256-bit load through a raw pointer")]
pub(crate) fn widen_u8(c: &[u8; 32]) -> __m512i {
    // SAFETY: `c` refers to 32 initialised bytes, exactly what `_mm256_loadu_si256` reads;
    // it needs no alignment.
    let bytes = unsafe { _mm256_loadu_si256(c.as_ptr().cast()) };
    _mm512_cvtepu8_epi16(bytes)
}

/// The first `min(x.len(), 32)` values of `x`; the other lanes are 0.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
#[expect(unsafe_code, reason = "masked 512-bit load through a raw pointer")]
pub(crate) fn load_i16_partial(x: &[i16]) -> __m512i {
    let len = x.len().min(32);
    let mask = ((1u64 << len) - 1) as u32;
    // SAFETY: a masked load accesses only the lanes whose mask bit is set (masked-out lanes
    // are neither read nor able to fault); the mask selects lanes `0..len` and
    // `len <= x.len()`, so every byte read lies inside `x`. No alignment is required.
    unsafe { _mm512_maskz_loadu_epi16(mask, x.as_ptr()) }
}

/// The first `min(c.len(), 32)` codes of `c` widened to `i16` lanes; the other lanes are 0.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
#[expect(unsafe_code, reason = "masked 512-bit load through a raw pointer")]
pub(crate) fn widen_u8_partial(c: &[u8]) -> __m512i {
    let len = c.len().min(32);
    let mask = (1u64 << len) - 1;
    // SAFETY: as in `load_i16_partial`: the mask selects bytes `0..len`, all inside `c`.
    let bytes = unsafe { _mm512_maskz_loadu_epi8(mask, c.as_ptr().cast()) };
    _mm512_cvtepu8_epi16(_mm512_castsi512_si256(bytes))
}
