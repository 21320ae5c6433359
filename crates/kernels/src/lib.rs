//! Distance kernels with runtime SIMD dispatch, and top-k selection.
//!
//! # Contract
//!
//! - [`dot`], [`l2_squared`] and [`norm_squared`] take `f32` slices and accumulate in `f32`
//!   (no widening), in several independent accumulators: the scalar kernel keeps 8 lanes,
//!   AVX2 4 × 8 lanes, AVX-512 4 × 16 lanes and NEON 4 × 4 lanes; the lanes are summed
//!   pairwise at the end and the remainder (`len % lanes`) is added either scalar or, on
//!   AVX-512, through a masked load. Any length works, including 0 (the result is 0.0).
//! - Because the summation order differs between instruction sets, results differ in the
//!   last bits across machines. The error budget, checked against an `f64` reference by the
//!   tests for lengths up to 1030, is `|got - exact| <= 1e-5 · Σ|aᵢ·bᵢ| + 1e-6` (for
//!   `l2_squared` the sum runs over `(aᵢ - bᵢ)²`). This covers the classical worst-case
//!   bound `m · 2⁻²⁴ · Σ|aᵢ·bᵢ|`, where `m` is the longest chain of dependent roundings
//!   (about 140 for the 8-lane scalar kernel at length 1030, fewer for the SIMD kernels).
//! - Both slices must have the same length: a mismatch is a programming error and panics
//!   before any `unsafe` code runs.
//! - NaN and infinities follow IEEE 754; nothing is filtered.
//! - The code kernels [`dot_u8_i16`] (8-bit codes) and [`dot_u4_i16`] (4-bit codes, two per
//!   byte in the layout of [`scalar::pack_u4`]) multiply a query scaled to `i16` with
//!   unsigned codes and accumulate in `i32`: every instruction set returns the same exact
//!   integer as long as `255 · Σ|qᵢ|` (resp. `15 · Σ|qᵢ|`) stays below 2³¹, which the LVQ
//!   scorers ensure when they scale the query. AVX2 uses `vpmaddwd`, AVX-512BW the same on
//!   512 bits with a masked tail, AVX-512 VNNI `vpdpwssd` (`avx512vnni.rs` says why not
//!   `vpdpbusd`); NEON has none yet and runs the portable code.
//!
//! # Why the instruction set is chosen once
//!
//! CPU feature detection is cheap but not free, and re-detecting inside a kernel that runs
//! millions of times per query puts a branch and an atomic load in every call (qdrant's
//! `spaces/simple.rs` does this). Here the first call detects the best supported set
//! (AVX-512 with BW and VNNI, AVX-512F, then AVX2 + FMA, then NEON, then scalar), fills a table of function pointers,
//! and every later call goes straight through that table. Choosing once also means one
//! process never mixes summation orders, so the same query gives bit-identical scores for
//! the whole lifetime of the process. [`dot_for`] and [`l2_squared_for`] expose each
//! supported instruction set separately so tests can compare them.
//!
//! # Layout
//!
//! One file per instruction set (`scalar.rs`, `avx2.rs`, `avx512.rs`, `neon.rs`); the x86
//! files only compile on `x86_64`, `neon.rs` only on `aarch64`. `dispatch.rs` is the only
//! place that decides which of them may run. `matrix.rs` holds [`dot_matrix`], many dot
//! products at once: a register-tiled kernel in `avx2.rs` on x86-64 with AVX2 + FMA (also
//! used on AVX-512 CPUs), `matrixmultiply::sgemm` elsewhere. `topk.rs` keeps the best
//! results of a scan.

#![deny(unsafe_code)]

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod avx512vnni;
mod dispatch;
mod matrix;
#[cfg(target_arch = "aarch64")]
mod neon;
mod prefetch;
pub mod scalar;
mod topk;

pub use dispatch::{
    CodeKernel, Isa, MatrixKernel, NormKernel, PairKernel, dot, dot_for, dot_matrix_for,
    dot_u4_i16, dot_u4_i16_for, dot_u8_i16, dot_u8_i16_for, isa, l2_squared, l2_squared_for,
    norm_squared, norm_squared_for,
};
pub use matrix::dot_matrix;
pub use prefetch::prefetch;
pub use topk::{TopK, merge_best_first};
