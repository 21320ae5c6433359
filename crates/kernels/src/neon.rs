//! NEON kernels: 4 accumulators × 4 lanes (16 floats per iteration, 24 iterations at
//! dimension 384), then the remaining 4-float blocks spread over the accumulators, then a
//! scalar tail of fewer than 4 elements.
//!
//! Every function here is `#[target_feature(enable = "neon")]`: NEON is part of the usual
//! aarch64 baseline, but not of every aarch64 target (`aarch64-unknown-none-softfloat`
//! lacks it), so `dispatch.rs` still checks it once before handing these out. Loads read
//! whole `[f32; 4]` arrays, so they stay in bounds whatever the slice lengths.

use core::arch::aarch64::{
    float32x4_t, vaddq_f32, vaddvq_f32, vdupq_n_f32, vfmaq_f32, vld1q_f32, vsubq_f32,
};

const LANES: usize = 4;
const ACCUMULATORS: usize = 4;

/// `Σ aᵢ·bᵢ`; see the module docs for the accumulation order.
#[target_feature(enable = "neon")]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a_blocks, a_tail) = a.as_chunks::<LANES>();
    let (b_blocks, b_tail) = b.as_chunks::<LANES>();
    let (a_groups, a_rest) = a_blocks.as_chunks::<ACCUMULATORS>();
    let (b_groups, b_rest) = b_blocks.as_chunks::<ACCUMULATORS>();
    let mut acc = [vdupq_n_f32(0.0); ACCUMULATORS];
    for (xs, ys) in a_groups.iter().zip(b_groups) {
        for ((s, x), y) in acc.iter_mut().zip(xs).zip(ys) {
            *s = vfmaq_f32(*s, load(x), load(y));
        }
    }
    for ((s, x), y) in acc.iter_mut().zip(a_rest).zip(b_rest) {
        *s = vfmaq_f32(*s, load(x), load(y));
    }
    let mut sum = reduce(acc);
    for (x, y) in a_tail.iter().zip(b_tail) {
        sum += x * y;
    }
    sum
}

/// `Σ (aᵢ - bᵢ)²`; same structure as [`dot`].
#[target_feature(enable = "neon")]
pub(crate) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let (a_blocks, a_tail) = a.as_chunks::<LANES>();
    let (b_blocks, b_tail) = b.as_chunks::<LANES>();
    let (a_groups, a_rest) = a_blocks.as_chunks::<ACCUMULATORS>();
    let (b_groups, b_rest) = b_blocks.as_chunks::<ACCUMULATORS>();
    let mut acc = [vdupq_n_f32(0.0); ACCUMULATORS];
    for (xs, ys) in a_groups.iter().zip(b_groups) {
        for ((s, x), y) in acc.iter_mut().zip(xs).zip(ys) {
            let d = vsubq_f32(load(x), load(y));
            *s = vfmaq_f32(*s, d, d);
        }
    }
    for ((s, x), y) in acc.iter_mut().zip(a_rest).zip(b_rest) {
        let d = vsubq_f32(load(x), load(y));
        *s = vfmaq_f32(*s, d, d);
    }
    let mut sum = reduce(acc);
    for (x, y) in a_tail.iter().zip(b_tail) {
        let d = x - y;
        sum += d * d;
    }
    sum
}

/// `Σ aᵢ²`.
#[target_feature(enable = "neon")]
pub(crate) fn norm_squared(a: &[f32]) -> f32 {
    dot(a, a)
}

#[inline]
#[target_feature(enable = "neon")]
#[expect(unsafe_code, reason = "128-bit load through a raw pointer")]
fn load(x: &[f32; LANES]) -> float32x4_t {
    // SAFETY: `x` refers to 4 initialised, contiguous `f32` (16 bytes), exactly the bytes
    // `vld1q_f32` reads; it needs only `f32` alignment, which a `&[f32; 4]` has.
    unsafe { vld1q_f32(x.as_ptr()) }
}

/// Sums the 4 accumulators pairwise, then the 4 lanes.
#[inline]
#[target_feature(enable = "neon")]
fn reduce(acc: [float32x4_t; ACCUMULATORS]) -> f32 {
    let [a0, a1, a2, a3] = acc;
    vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)))
}
