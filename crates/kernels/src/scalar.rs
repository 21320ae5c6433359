//! Portable kernels: the reference the SIMD kernels are tested against, and the fallback
//! when the CPU has no supported vector extension.
//!
//! Each kernel keeps 8 independent `f32` lanes (so the compiler can keep them in one or
//! two vector registers of the baseline target), sums them pairwise, then adds the last
//! `len % 8` products one by one.

const LANES: usize = 8;

/// Inner product `Σ aᵢ·bᵢ`, accumulated in `f32`.
///
/// # Panics
/// If `a.len() != b.len()`.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: slices differ in length");
    let (a_blocks, a_tail) = a.as_chunks::<LANES>();
    let (b_blocks, b_tail) = b.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    let mut sum = reduce(acc);
    for (x, y) in a_tail.iter().zip(b_tail) {
        sum += x * y;
    }
    sum
}

/// Squared Euclidean distance `Σ (aᵢ - bᵢ)²`, accumulated in `f32`.
///
/// # Panics
/// If `a.len() != b.len()`.
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "l2_squared: slices differ in length");
    let (a_blocks, a_tail) = a.as_chunks::<LANES>();
    let (b_blocks, b_tail) = b.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            let d = x - y;
            *s += d * d;
        }
    }
    let mut sum = reduce(acc);
    for (x, y) in a_tail.iter().zip(b_tail) {
        let d = x - y;
        sum += d * d;
    }
    sum
}

/// Squared Euclidean norm `Σ aᵢ²`, accumulated in `f32`; equal to `dot(a, a)`.
pub fn norm_squared(a: &[f32]) -> f32 {
    dot(a, a)
}

/// `Σ qᵢ·cᵢ` of 16-bit integers and 8-bit codes, exactly, in `i64`: the inner loop of
/// scoring quantized rows (LVQ) against a query scaled to integers. The SIMD kernels
/// accumulate in `i32` and equal this whenever `255 · Σ|qᵢ| < 2³¹`, which callers keep.
///
/// # Panics
/// If `q.len() != codes.len()`.
pub fn dot_u8_i16(q: &[i16], codes: &[u8]) -> i64 {
    assert_eq!(q.len(), codes.len(), "dot_u8_i16: slices differ in length");
    q.iter()
        .zip(codes)
        .map(|(&a, &c)| i64::from(a) * i64::from(c))
        .sum()
}

/// [`dot_u8_i16`] in `i32` with wrapping, the contract of the SIMD kernels.
pub(crate) fn dot_u8_i16_i32(q: &[i16], codes: &[u8]) -> i32 {
    dot_u8_i16(q, codes) as i32
}

/// Pairwise sum of the lanes, so the reduction adds at most 3 dependent roundings.
fn reduce(acc: [f32; LANES]) -> f32 {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
}
