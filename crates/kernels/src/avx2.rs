//! AVX2 + FMA kernels.
//!
//! The pair kernels ([`dot`], [`l2_squared`], [`norm_squared`]) keep 4 accumulators × 8
//! lanes (32 floats per iteration, 12 iterations at dimension 384), then spread the
//! remaining 8-float blocks over the accumulators, then add a scalar tail of fewer than 8
//! elements. [`dot_matrix`] is a register-tiled matrix product, described at its section
//! below.
//!
//! Every function here is `#[target_feature(enable = "avx2,fma")]`: calling one is sound
//! only on a CPU with both, which `dispatch.rs` checks once before handing them out. Loads
//! and stores go through whole `[f32; N]` arrays, so they stay in bounds whatever the slice
//! lengths; callers still assert the lengths, since a mismatch would silently ignore the
//! longer tail.

use std::arch::x86_64::{
    __m128, __m128d, __m256, __m256i, _MM_HINT_T0, _mm_add_epi32, _mm_add_ps, _mm_add_ss,
    _mm_cvtsi128_si32, _mm_cvtss_f32, _mm_loadu_si128, _mm_movehdup_ps, _mm_movehl_ps,
    _mm_prefetch, _mm_shuffle_epi32, _mm_storel_pd, _mm_storeu_ps, _mm_unpackhi_pd,
    _mm256_add_epi32, _mm256_add_ps, _mm256_and_si256, _mm256_castpd256_pd128, _mm256_castps_pd,
    _mm256_castps256_ps128, _mm256_castsi256_si128, _mm256_cvtepu8_epi16, _mm256_extractf128_pd,
    _mm256_extractf128_ps, _mm256_extracti128_si256, _mm256_fmadd_ps, _mm256_loadu_ps,
    _mm256_loadu_si256, _mm256_madd_epi16, _mm256_permute2f128_ps, _mm256_set1_epi16,
    _mm256_set1_ps, _mm256_setzero_ps, _mm256_setzero_si256, _mm256_shuffle_ps, _mm256_srli_epi16,
    _mm256_storeu_ps, _mm256_sub_ps, _mm256_unpackhi_ps, _mm256_unpacklo_ps,
};
use std::cell::RefCell;

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

/// `Σ qᵢ·cᵢ` of 16-bit integers and 8-bit codes in `i32` lanes: 16 codes are widened to
/// `i16` and multiplied pairwise into 8 `i32` sums (`vpmaddwd`), two accumulators, then a
/// scalar tail. Exact while `255 · Σ|qᵢ| < 2³¹` (each pair sum is at most 2·32767·255).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_u8_i16(q: &[i16], codes: &[u8]) -> i32 {
    let (q_blocks, q_tail) = q.as_chunks::<16>();
    let (c_blocks, c_tail) = codes.as_chunks::<16>();
    let (q_pairs, q_rest) = q_blocks.as_chunks::<2>();
    let (c_pairs, c_rest) = c_blocks.as_chunks::<2>();
    let mut acc = [_mm256_setzero_si256(); 2];
    for (qs, cs) in q_pairs.iter().zip(c_pairs) {
        for ((s, q), c) in acc.iter_mut().zip(qs).zip(cs) {
            *s = _mm256_add_epi32(*s, _mm256_madd_epi16(load_i16(q), widen_u8(c)));
        }
    }
    for (q, c) in q_rest.iter().zip(c_rest) {
        acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(load_i16(q), widen_u8(c)));
    }
    let v = _mm256_add_epi32(acc[0], acc[1]);
    let quad = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let pair = _mm_add_epi32(quad, _mm_shuffle_epi32::<0b01_00_11_10>(quad));
    let one = _mm_add_epi32(pair, _mm_shuffle_epi32::<0b10_11_00_01>(pair));
    let mut sum = _mm_cvtsi128_si32(one);
    for (&a, &c) in q_tail.iter().zip(c_tail) {
        sum = sum.wrapping_add(i32::from(a) * i32::from(c));
    }
    sum
}

/// `Σ qᵢ·cᵢ` of 16-bit integers and 4-bit codes in the layout of
/// [`crate::scalar::pack_u4`]: per 64-dimension block, each half of its 32 bytes is widened
/// to 16 `i16` lanes, whose low nibbles are 16 consecutive dimensions and high nibbles the
/// 16 dimensions 32 further, each multiplied pairwise into `i32` sums (`vpmaddwd`); the tail
/// is added by the scalar code. Exact while `15 · Σ|qᵢ| < 2³¹`.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_u4_i16(q: &[i16], codes: &[u8]) -> i32 {
    let (q_blocks, q_tail) = q.as_chunks::<64>();
    let (c_full, c_tail) = codes.split_at(q_blocks.len() * 32);
    let (c_blocks, _) = c_full.as_chunks::<32>();
    let low = _mm256_set1_epi16(0x0F);
    let mut acc = [_mm256_setzero_si256(); 2];
    for (qb, cb) in q_blocks.iter().zip(c_blocks) {
        // Quarters of the block's query: dimensions 0.., 16.., 32.., 48...
        let (quarters, _) = qb.as_chunks::<16>();
        let (halves, _) = cb.as_chunks::<16>();
        // Bytes half `h` hold dimensions 16h.. (low nibbles) and 32 + 16h.. (high).
        for (h, (s, c)) in acc.iter_mut().zip(halves).enumerate() {
            if let (Some(lo), Some(hi)) = (quarters.get(h), quarters.get(2 + h)) {
                let w = widen_u8(c);
                let prod_lo = _mm256_madd_epi16(load_i16(lo), _mm256_and_si256(w, low));
                let prod_hi = _mm256_madd_epi16(load_i16(hi), _mm256_srli_epi16::<4>(w));
                *s = _mm256_add_epi32(*s, _mm256_add_epi32(prod_lo, prod_hi));
            }
        }
    }
    let v = _mm256_add_epi32(acc[0], acc[1]);
    let quad = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let pair = _mm_add_epi32(quad, _mm_shuffle_epi32::<0b01_00_11_10>(quad));
    let one = _mm_add_epi32(pair, _mm_shuffle_epi32::<0b10_11_00_01>(pair));
    // The tail's exact sum, wrapped like the lanes.
    let rest = crate::scalar::dot_u4_tail(q_tail, c_tail) as i32;
    _mm_cvtsi128_si32(one).wrapping_add(rest)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
#[expect(unsafe_code, reason = "unaligned 256-bit load through a raw pointer")]
fn load_i16(x: &[i16; 16]) -> __m256i {
    // SAFETY: `x` refers to 16 initialised, contiguous `i16` (32 bytes), exactly the bytes
    // `_mm256_loadu_si256` reads; it needs no alignment.
    unsafe { _mm256_loadu_si256(x.as_ptr().cast()) }
}

/// 16 codes widened to 16 `i16` lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
#[expect(unsafe_code, reason = "unaligned 128-bit load through a raw pointer")]
fn widen_u8(c: &[u8; 16]) -> __m256i {
    // SAFETY: `c` refers to 16 initialised bytes, exactly what `_mm_loadu_si128` reads; it
    // needs no alignment.
    let bytes = unsafe { _mm_loadu_si128(c.as_ptr().cast()) };
    _mm256_cvtepu8_epi16(bytes)
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

// ---------------------------------------------------------------------------------------
// dot_matrix: `queries × baseᵀ` with a 16 × 6 register tile.
//
// Each chunk of up to 64 queries is packed into panels of 16, interleaved by dimension
// (step `k` of a panel holds dimension `k` of its 16 queries: one cache line). The base
// rows are read in place, 6 at a time. For every panel, the micro-kernel keeps the 16 × 6
// products in 12 registers; per dimension it loads the 16 query values (2 registers),
// broadcasts one value of each of the 6 rows and issues 12 FMAs, so the two FMA pipes stay
// busy while the loads stay under two per cycle. The 6 rows (9 KiB at dimension 384) are
// reused by every panel of the chunk from L1 or L2, and the packed chunk (96 KiB) from L2
// by every group of rows. While it works on one group, the micro-kernel prefetches the
// next one, spread over its loop, so rows streamed from memory arrive in time (without
// it, streaming 64 MiB of rows ran about 10% slower than a cached tile).
//
// Why this orientation: packing the queries (64 rows per call) costs an eighth of packing
// a 512-row base tile, and the transposed stores it needs instead take about 60
// instructions per 4,608 FMAs (a tile at dimension 384). Why no blocking over dimensions:
// measured up to dimension 4096, splitting `dim` into stretches that fit L1 was never
// faster, since L2 easily feeds one cache line per 6 cycles; without it every product is
// one chain of FMAs in order of dimension, so its value does not depend on `nq`, `nb` or
// its position in the inputs.
// ---------------------------------------------------------------------------------------

/// Queries per packed panel: two registers of 8 lanes.
const PANEL: usize = 2 * LANES;
/// Base rows per micro-tile: 6 rows × 2 registers = 12 accumulators, plus 2 query
/// registers and 1 broadcast, 15 of the 16 ymm registers.
const GROUP: usize = 6;
/// Dimensions per iteration of the micro-kernel loop.
const UNROLL: usize = 4;
/// Queries packed at once: 4 panels.
const QUERY_CHUNK: usize = 4 * PANEL;
/// Floats per cache line, the prefetch stride.
const LINE: usize = 16;

/// One dimension of a packed panel: `0[h][l]` is query `8h + l` of the panel (zero past
/// the last query). Aligned to a cache line, so each step is one line.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct PanelStep([[f32; LANES]; 2]);

const ZERO_STEP: PanelStep = PanelStep([[0.0; LANES]; 2]);

thread_local! {
    /// Packed queries, reused across calls on this thread (at most `4 * dim` steps of 64
    /// bytes: 96 KiB at dimension 384).
    static PACKED: RefCell<Vec<PanelStep>> = const { RefCell::new(Vec::new()) };
}

/// [`crate::dot_matrix`]; the caller has checked the shapes (`queries.len() == nq * dim`,
/// `base.len() == nb * dim`, `out.len() == nq * nb`). Product `(i, j)` is
/// `fma(q[dim - 1], b[dim - 1], … fma(q[0], b[0], 0.0))`, bit for bit whatever the shape.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_matrix(
    queries: &[f32],
    nq: usize,
    base: &[f32],
    nb: usize,
    dim: usize,
    out: &mut [f32],
) {
    debug_assert!(queries.len() == nq * dim && base.len() == nb * dim);
    if out.is_empty() {
        return;
    }
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    PACKED.with_borrow_mut(|packed| {
        for (chunk, out) in queries
            .chunks(QUERY_CHUNK * dim)
            .zip(out.chunks_mut(QUERY_CHUNK * nb))
        {
            pack(chunk, dim, packed);
            let packed = Packed {
                panels: packed,
                dim,
                queries: chunk.len() / dim,
                nb,
            };
            let groups = base.chunks(GROUP * dim);
            let next = base.chunks(GROUP * dim).skip(1).chain([&[][..]]);
            for (g, (rows, next)) in groups.zip(next).enumerate() {
                let out = &mut out[g * GROUP..];
                match rows.len() / dim {
                    6 => packed.group::<6>(rows, next, out),
                    5 => packed.group::<5>(rows, next, out),
                    4 => packed.group::<4>(rows, next, out),
                    3 => packed.group::<3>(rows, next, out),
                    2 => packed.group::<2>(rows, next, out),
                    _ => packed.group::<1>(rows, next, out),
                }
            }
        }
    });
}

/// One chunk of queries, packed: panel `p` is `panels[p * dim..][..dim]`.
struct Packed<'a> {
    panels: &'a [PanelStep],
    dim: usize,
    /// Queries in the chunk (the last panel may be partial).
    queries: usize,
    nb: usize,
}

impl Packed<'_> {
    /// Products of every query of the chunk with the `R` rows of `rows`: query `i` and
    /// row `r` go to `out[i * nb + r]`. Prefetches `next`, the following rows.
    #[target_feature(enable = "avx2,fma")]
    fn group<const R: usize>(&self, rows: &[f32], next: &[f32], out: &mut [f32]) {
        let rows: [&[f32]; R] = std::array::from_fn(|r| &rows[r * self.dim..][..self.dim]);
        let rows = Rows::<R> {
            unrolled: std::array::from_fn(|r| rows[r].as_chunks::<UNROLL>().0),
            tail: std::array::from_fn(|r| rows[r].as_chunks::<UNROLL>().1),
        };
        let panels = self.panels.len() / self.dim;
        // Each panel's micro-kernel prefetches an equal share of the next group.
        let share = next.len().div_ceil(panels * LINE) * LINE;
        let mut ahead = next.chunks(share.max(LINE));
        for (p, panel) in self.panels.chunks_exact(self.dim).enumerate() {
            let acc = tile::<R>(panel, &rows, ahead.next().unwrap_or_default());
            let queries = PANEL.min(self.queries - p * PANEL);
            let out = &mut out[p * PANEL * self.nb..];
            match <&[[__m256; 2]; GROUP]>::try_from(&acc[..]) {
                Ok(full) if queries == PANEL => store_full(full, out, self.nb),
                _ => store_partial(&acc, out, self.nb, queries),
            }
        }
    }
}

/// Packs `chunk` (at most [`QUERY_CHUNK`] whole rows of `dim` floats) into panels of
/// [`PANEL`] queries, with zeros past the last query. Blocks of 8 queries × 8 dimensions
/// are transposed in registers; the rest is copied one float at a time.
#[target_feature(enable = "avx2,fma")]
fn pack(chunk: &[f32], dim: usize, packed: &mut Vec<PanelStep>) {
    let queries = chunk.len() / dim;
    // Every lane of a present query is overwritten below, so only the lanes past the last
    // query need zeros; `resize` keeps the old contents instead of clearing them all.
    packed.resize(queries.div_ceil(PANEL) * dim, ZERO_STEP);
    for (p, panel) in packed.chunks_exact_mut(dim).enumerate() {
        for h in 0..2 {
            let first = p * PANEL + h * LANES;
            let count = LANES.min(queries.saturating_sub(first));
            let rows = chunk.get(first * dim..).unwrap_or_default();
            let mut done = 0;
            if count == LANES {
                for (b, steps) in panel.as_chunks_mut::<LANES>().0.iter_mut().enumerate() {
                    let block: [__m256; LANES] = std::array::from_fn(|q| {
                        let (row, _) = rows[q * dim..][..dim].as_chunks::<LANES>();
                        load(&row[b])
                    });
                    for (step, column) in steps.iter_mut().zip(transpose(block)) {
                        store(&mut step.0[h], column);
                    }
                }
                done = dim / LANES * LANES;
            }
            for (k, step) in panel.iter_mut().enumerate().skip(done) {
                for (q, lane) in step.0[h].iter_mut().enumerate() {
                    *lane = if q < count { rows[q * dim + k] } else { 0.0 };
                }
            }
        }
    }
}

/// `R` base rows of the same length, split like `panel.as_chunks::<UNROLL>()`.
struct Rows<'a, const R: usize> {
    unrolled: [&'a [[f32; UNROLL]]; R],
    tail: [&'a [f32]; R],
}

/// The `R × PANEL` products of one packed panel with `R` rows of the same length:
/// `acc[r][h]` lane `l` is the product of row `r` and query `8h + l`. One chain of fused
/// multiply-adds per product, in order of dimension. Prefetches `ahead` into L1, spread
/// over the loop.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn tile<const R: usize>(
    panel: &[PanelStep],
    rows: &Rows<'_, R>,
    ahead: &[f32],
) -> [[__m256; 2]; R] {
    let (unrolled, tail) = panel.as_chunks::<UNROLL>();
    // Lets the compiler drop the bounds checks on the rows below.
    assert!(rows.unrolled.iter().all(|row| row.len() == unrolled.len()));
    assert!(rows.tail.iter().all(|row| row.len() == tail.len()));
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    let step = |acc: &mut [[__m256; 2]; R], s: &PanelStep, b: [f32; R]| {
        let lo = load(&s.0[0]);
        let hi = load(&s.0[1]);
        for (a, b) in acc.iter_mut().zip(b) {
            let b = _mm256_set1_ps(b);
            a[0] = _mm256_fmadd_ps(lo, b, a[0]);
            a[1] = _mm256_fmadd_ps(hi, b, a[1]);
        }
    };
    let per_iteration = ahead.len().div_ceil(unrolled.len().max(1) * LINE) * LINE;
    let mut ahead = ahead.chunks(per_iteration.max(LINE));
    for (c, steps) in unrolled.iter().enumerate() {
        for line in ahead.next().unwrap_or_default().iter().step_by(LINE) {
            _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(line).cast());
        }
        for (u, s) in steps.iter().enumerate() {
            step(&mut acc, s, std::array::from_fn(|r| rows.unrolled[r][c][u]));
        }
    }
    for (u, s) in tail.iter().enumerate() {
        step(&mut acc, s, std::array::from_fn(|r| rows.tail[r][u]));
    }
    acc
}

/// Transposes an 8 × 8 block: lane `j` of `rows[i]` becomes lane `i` of the result's
/// vector `j`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn transpose(rows: [__m256; LANES]) -> [__m256; LANES] {
    let [r0, r1, r2, r3, r4, r5, r6, r7] = rows;
    let t0 = _mm256_unpacklo_ps(r0, r1);
    let t1 = _mm256_unpackhi_ps(r0, r1);
    let t2 = _mm256_unpacklo_ps(r2, r3);
    let t3 = _mm256_unpackhi_ps(r2, r3);
    let t4 = _mm256_unpacklo_ps(r4, r5);
    let t5 = _mm256_unpackhi_ps(r4, r5);
    let t6 = _mm256_unpacklo_ps(r6, r7);
    let t7 = _mm256_unpackhi_ps(r6, r7);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}

/// Writes a full 6 × 16 tile: query `l`'s 6 products go to `out[l * nb..][..6]`,
/// transposed in registers and stored as 4 + 2 floats.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store_full(acc: &[[__m256; 2]; GROUP], out: &mut [f32], nb: usize) {
    for h in 0..2 {
        let [r0, r1, r2, r3, r4, r5] = acc.map(|a| a[h]);
        let t0 = _mm256_unpacklo_ps(r0, r1);
        let t1 = _mm256_unpackhi_ps(r0, r1);
        let t2 = _mm256_unpacklo_ps(r2, r3);
        let t3 = _mm256_unpackhi_ps(r2, r3);
        // Rows 0..4 of queries (0, 4), (1, 5), (2, 6), (3, 7) of this half.
        let quads = [
            _mm256_shuffle_ps::<0x44>(t0, t2),
            _mm256_shuffle_ps::<0xEE>(t0, t2),
            _mm256_shuffle_ps::<0x44>(t1, t3),
            _mm256_shuffle_ps::<0xEE>(t1, t3),
        ];
        // Rows 4..6 of queries (0, 1, 4, 5) and (2, 3, 6, 7), as pairs.
        let pairs = [
            _mm256_castps_pd(_mm256_unpacklo_ps(r4, r5)),
            _mm256_castps_pd(_mm256_unpackhi_ps(r4, r5)),
        ];
        for (l, quad) in quads.into_iter().enumerate() {
            let pair = pairs[l / 2];
            let halves = [
                (_mm256_castps256_ps128(quad), _mm256_castpd256_pd128(pair)),
                (
                    _mm256_extractf128_ps::<1>(quad),
                    _mm256_extractf128_pd::<1>(pair),
                ),
            ];
            for (offset, (quad, pair)) in [0, 4].into_iter().zip(halves) {
                let pair = if l % 2 == 0 {
                    pair
                } else {
                    _mm_unpackhi_pd(pair, pair)
                };
                let q = h * LANES + offset + l;
                let (four, two) = out[q * nb..][..GROUP].split_at_mut(4);
                store_quad(four.try_into().expect("4 floats"), quad);
                store_pair(two.try_into().expect("2 floats"), pair);
            }
        }
    }
}

/// Writes the products of the first `queries` queries of a tile of `R` rows, one float
/// at a time (the last group of rows, the last panel of queries).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store_partial<const R: usize>(
    acc: &[[__m256; 2]; R],
    out: &mut [f32],
    nb: usize,
    queries: usize,
) {
    let mut lanes = [[[0f32; LANES]; 2]; R];
    for (lane, a) in lanes.iter_mut().zip(acc) {
        store(&mut lane[0], a[0]);
        store(&mut lane[1], a[1]);
    }
    for q in 0..queries {
        for (o, lane) in out[q * nb..][..R].iter_mut().zip(&lanes) {
            *o = lane[q / LANES][q % LANES];
        }
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
#[expect(unsafe_code, reason = "unaligned 256-bit store through a raw pointer")]
fn store(x: &mut [f32; LANES], v: __m256) {
    // SAFETY: `x` is 8 contiguous `f32` (32 bytes) borrowed exclusively, exactly the
    // bytes `_mm256_storeu_ps` writes; it needs no alignment.
    unsafe { _mm256_storeu_ps(x.as_mut_ptr(), v) }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
#[expect(unsafe_code, reason = "unaligned 128-bit store through a raw pointer")]
fn store_quad(x: &mut [f32; 4], v: __m128) {
    // SAFETY: `x` is 4 contiguous `f32` (16 bytes) borrowed exclusively, exactly the bytes
    // `_mm_storeu_ps` writes; it needs no alignment.
    unsafe { _mm_storeu_ps(x.as_mut_ptr(), v) }
}

/// Stores the low 64 bits of `v` (two `f32`, reinterpreted as one `f64`) into `x`.
#[inline]
#[target_feature(enable = "avx2,fma")]
#[expect(unsafe_code, reason = "unaligned 64-bit store through a raw pointer")]
fn store_pair(x: &mut [f32; 2], v: __m128d) {
    // SAFETY: `x` is 2 contiguous `f32` (8 bytes) borrowed exclusively, exactly the bytes
    // `_mm_storel_pd` writes (a bit copy, no arithmetic); it needs no alignment.
    unsafe { _mm_storel_pd(x.as_mut_ptr().cast::<f64>(), v) }
}
