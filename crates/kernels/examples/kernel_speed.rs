//! Nanoseconds per kernel call at dimension 384, for each instruction set this CPU supports.
//!
//! Run with `cargo run --release -p quiver-kernels --example kernel_speed`. The base
//! vectors (256 × 384 floats, 384 KiB) stay in L2 on most CPUs, so this measures the
//! kernels rather than memory bandwidth. Each figure is the fastest of many short runs
//! (about 4,000 calls each), which filters out preemption on a busy machine.

use std::hint::black_box;
use std::time::Instant;

use quiver_kernels::{Isa, PairKernel, dot, dot_for, dot_matrix, isa, l2_squared_for};

const DIM: usize = 384;
const BASE: usize = 256;
/// Passes over the base vectors per timed run.
const ROUNDS: usize = 16;
/// Timed runs; the fastest counts.
const RUNS: usize = 300;

/// Deterministic values in [-1, 1).
fn values(n: usize, mut state: u64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 40) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// Fastest of `RUNS` runs, in nanoseconds per call.
fn ns_per_call(kernel: PairKernel, query: &[f32], base: &[f32]) -> f64 {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let mut sink = 0.0f32;
            for _ in 0..ROUNDS {
                for vector in base.chunks_exact(DIM) {
                    sink += kernel(black_box(query), black_box(vector));
                }
            }
            black_box(sink);
            start.elapsed().as_nanos() as f64 / (ROUNDS * BASE) as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let query = values(DIM, 1);
    let base = values(DIM * BASE, 2);
    println!(
        "dim {DIM}, {BASE} base vectors, best of {RUNS} runs; selected ISA: {:?}",
        isa()
    );
    println!("{:<10} {:>10} {:>10}", "isa", "dot ns", "l2 ns");
    for candidate in [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon] {
        match (dot_for(candidate), l2_squared_for(candidate)) {
            (Some(d), Some(l2)) => println!(
                "{:<10} {:>10.1} {:>10.1}",
                format!("{candidate:?}"),
                ns_per_call(d, &query, &base),
                ns_per_call(l2, &query, &base)
            ),
            _ => println!("{:<10} {:>10} {:>10}", format!("{candidate:?}"), "-", "-"),
        }
    }
    println!(
        "{:<10} {:>10.1}",
        "dispatched",
        ns_per_call(dot, &query, &base)
    );

    // dot_matrix: 16 queries against the same base, reported per (query, vector) pair.
    let queries = values(DIM * 16, 3);
    let mut out = vec![0.0f32; 16 * BASE];
    let matrix_ns = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            dot_matrix(
                black_box(&queries),
                16,
                black_box(&base),
                BASE,
                DIM,
                &mut out,
            );
            black_box(&out);
            start.elapsed().as_nanos() as f64 / (16 * BASE) as f64
        })
        .fold(f64::INFINITY, f64::min);
    println!(
        "{:<10} {:>10.1}  (per pair, 16 queries × {BASE} vectors per call)",
        "dot_matrix", matrix_ns
    );
}
