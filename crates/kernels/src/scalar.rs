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

/// Dimensions per block of the 4-bit layout: 32 bytes, byte `j` holding dimension `j` in
/// its low nibble and dimension `j + 32` in its high one. With that split a SIMD kernel
/// takes the low nibbles of 16 or 32 consecutive bytes as consecutive dimensions, so the
/// query stays in its natural order and needs no shuffle.
pub const U4_BLOCK: usize = 64;

/// Bytes of `dim` 4-bit codes in the layout of [`pack_u4`]: `⌈dim / 2⌉`.
pub const fn u4_len(dim: usize) -> usize {
    dim.div_ceil(2)
}

/// Packs one code per dimension (each `0..=15`; higher bits are dropped) into `out`
/// (`u4_len(codes.len())` bytes): full blocks of [`U4_BLOCK`] dimensions split in halves as
/// described there, then the last `dim % 64` dimensions in pairs (byte `j` of the tail:
/// dimension `2j` low, `2j + 1` high, the last high nibble 0 for an odd tail).
///
/// # Panics
/// If `out.len() != u4_len(codes.len())`.
pub fn pack_u4(codes: &[u8], out: &mut [u8]) {
    assert_eq!(
        out.len(),
        u4_len(codes.len()),
        "pack_u4: wrong output length"
    );
    let (blocks, tail) = codes.as_chunks::<U4_BLOCK>();
    let (out_blocks, out_tail) = out.split_at_mut(blocks.len() * U4_BLOCK / 2);
    for (block, bytes) in blocks.iter().zip(out_blocks.chunks_exact_mut(U4_BLOCK / 2)) {
        let (lo, hi) = block.split_at(U4_BLOCK / 2);
        for ((b, &l), &h) in bytes.iter_mut().zip(lo).zip(hi) {
            *b = (l & 0x0F) | (h << 4);
        }
    }
    for (b, pair) in out_tail.iter_mut().zip(tail.chunks(2)) {
        let hi = pair.get(1).copied().unwrap_or(0);
        *b = (pair.first().copied().unwrap_or(0) & 0x0F) | (hi << 4);
    }
}

/// The codes [`pack_u4`] packed, one per dimension, into `out` (`dim` long).
///
/// # Panics
/// If `packed.len() != u4_len(out.len())`.
pub fn unpack_u4(packed: &[u8], out: &mut [u8]) {
    assert_eq!(
        packed.len(),
        u4_len(out.len()),
        "unpack_u4: wrong input length"
    );
    let (blocks, tail) = out.as_chunks_mut::<U4_BLOCK>();
    let (in_blocks, in_tail) = packed.split_at(blocks.len() * U4_BLOCK / 2);
    for (block, bytes) in blocks.iter_mut().zip(in_blocks.chunks_exact(U4_BLOCK / 2)) {
        let (lo, hi) = block.split_at_mut(U4_BLOCK / 2);
        for ((&b, l), h) in bytes.iter().zip(lo).zip(hi) {
            *l = b & 0x0F;
            *h = b >> 4;
        }
    }
    for (&b, pair) in in_tail.iter().zip(tail.chunks_mut(2)) {
        for (slot, v) in pair.iter_mut().zip([b & 0x0F, b >> 4]) {
            *slot = v;
        }
    }
}

/// `Σ qᵢ·cᵢ` of 16-bit integers and 4-bit codes packed by [`pack_u4`], exactly, in `i64`.
/// The SIMD kernels accumulate in `i32` and equal this whenever `15 · Σ|qᵢ| < 2³¹`.
///
/// # Panics
/// If `codes.len() != u4_len(q.len())`.
pub fn dot_u4_i16(q: &[i16], codes: &[u8]) -> i64 {
    assert_eq!(
        codes.len(),
        u4_len(q.len()),
        "dot_u4_i16: wrong code length"
    );
    let (blocks, tail) = q.as_chunks::<U4_BLOCK>();
    let (code_blocks, code_tail) = codes.split_at(blocks.len() * U4_BLOCK / 2);
    let mut sum = 0i64;
    for (block, bytes) in blocks.iter().zip(code_blocks.chunks_exact(U4_BLOCK / 2)) {
        let (lo, hi) = block.split_at(U4_BLOCK / 2);
        for ((&b, &l), &h) in bytes.iter().zip(lo).zip(hi) {
            sum += i64::from(l) * i64::from(b & 0x0F) + i64::from(h) * i64::from(b >> 4);
        }
    }
    sum + dot_u4_tail(tail, code_tail)
}

/// [`dot_u4_i16`] in `i32` with wrapping, the contract of the SIMD kernels.
pub(crate) fn dot_u4_i16_i32(q: &[i16], codes: &[u8]) -> i32 {
    dot_u4_i16(q, codes) as i32
}

/// The tail of the 4-bit layout (fewer than [`U4_BLOCK`] dimensions, packed in pairs),
/// shared by every kernel.
pub(crate) fn dot_u4_tail(q: &[i16], codes: &[u8]) -> i64 {
    q.chunks(2)
        .zip(codes)
        .map(|(pair, &b)| {
            let lo = pair
                .first()
                .map_or(0, |&x| i64::from(x) * i64::from(b & 0x0F));
            let hi = pair.get(1).map_or(0, |&x| i64::from(x) * i64::from(b >> 4));
            lo + hi
        })
        .sum()
}
