//! AVX-512 VNNI code kernels: [`crate::avx512`]'s integer kernels with `vpdpwssd` (a
//! 16-bit multiply, pairwise add and accumulate in one instruction) in place of
//! `vpmaddwd` + `vpaddd`.
//!
//! Why `vpdpwssd` on an `i16` query and not `vpdpbusd` on an `i8` one, as the LVQ paper
//! does: an `i8` query carries a rounding error of up to `max|qᵢ| / 254` per coordinate,
//! as large as the LVQ-8 codes' own (`step / 2`, a 510th of the row's range), which would
//! double the traversal's error and make the result depend on the instruction set. With
//! `i16` every instruction set returns the same exact integer, and the half throughput of
//! `vpdpwssd` does not show: a graph search waits on memory (6 cache lines per 384-byte
//! row against 12 `vpdpwssd`).
//!
//! Every function here is `#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]`,
//! handed out by `dispatch.rs` only after it found all three.

use crate::avx512::{load_i16, load_i16_partial, widen_u8, widen_u8_partial};
use std::arch::x86_64::{
    _mm512_add_epi32, _mm512_and_si512, _mm512_dpwssd_epi32, _mm512_reduce_add_epi32,
    _mm512_set1_epi16, _mm512_setzero_si512, _mm512_srli_epi16,
};

/// [`crate::avx512::dot_u8_i16`] with `vpdpwssd`; the same contract.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(crate) fn dot_u8_i16(q: &[i16], codes: &[u8]) -> i32 {
    let (q_blocks, q_tail) = q.as_chunks::<32>();
    let (c_blocks, c_tail) = codes.as_chunks::<32>();
    let mut acc = [_mm512_setzero_si512(); 2];
    for (i, (qb, cb)) in q_blocks.iter().zip(c_blocks).enumerate() {
        let s = &mut acc[i % 2];
        *s = _mm512_dpwssd_epi32(*s, load_i16(qb), widen_u8(cb));
    }
    if !q_tail.is_empty() {
        let [s, ..] = &mut acc;
        // Masked-out lanes load as 0 and add nothing.
        *s = _mm512_dpwssd_epi32(*s, load_i16_partial(q_tail), widen_u8_partial(c_tail));
    }
    _mm512_reduce_add_epi32(_mm512_add_epi32(acc[0], acc[1]))
}

/// [`crate::avx512::dot_u4_i16`] with `vpdpwssd`; the same layout and contract.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
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
            acc_lo = _mm512_dpwssd_epi32(acc_lo, load_i16(lo), _mm512_and_si512(w, low));
            acc_hi = _mm512_dpwssd_epi32(acc_hi, load_i16(hi), _mm512_srli_epi16::<4>(w));
        }
    }
    let sum = _mm512_reduce_add_epi32(_mm512_add_epi32(acc_lo, acc_hi));
    // The tail's exact sum, wrapped like the lanes.
    sum.wrapping_add(crate::scalar::dot_u4_tail(q_tail, c_tail) as i32)
}
