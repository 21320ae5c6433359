//! Nanoseconds per kernel call at dimension 384, for each instruction set this CPU supports,
//! then `dot_matrix` in GFLOP/s on the flat search's shape.
//!
//! Run with `cargo run --release -p quiver-kernels --example kernel_speed`. The base
//! vectors of the pair kernels (256 × 384 floats, 384 KiB) stay in L2 on most CPUs, so this
//! measures the kernels rather than memory bandwidth. Each figure is the fastest of many
//! short runs (about 4,000 calls each), which filters out preemption on a busy machine.

use std::hint::black_box;
use std::time::Instant;

use quiver_kernels::{
    Isa, MatrixKernel, PairKernel, dot, dot_for, dot_matrix, dot_matrix_for, isa, l2_squared_for,
};

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

    println!();
    matrix_speed();
}

/// `dot_matrix` in GFLOP/s (2 · nq · nb · dim per call) on the flat search's shape, for the
/// dispatched kernel and for the `matrixmultiply::sgemm` path (the scalar table's entry).
///
/// "cached" repeats one call on the same inputs (the 768 KiB base tile lives in L2/L3);
/// "streaming" walks 64 MiB of base vectors in tiles of `MATRIX_NB` rows, as the flat
/// search does, so the base comes from memory. Each figure is the best of `MATRIX_RUNS`
/// runs of about 50 ms (about 1 s in all); the gap between best and median shows how much
/// other work on the machine got in the way.
fn matrix_speed() {
    let queries = values(MATRIX_NQ * DIM, 3);
    let tile = values(MATRIX_NB * DIM, 4);
    let stream = values(STREAM_ROWS * DIM, 5);
    let mut kernels: Vec<(String, MatrixKernel)> = vec![("dispatched".into(), dot_matrix)];
    for candidate in [Isa::Avx512, Isa::Avx2, Isa::Scalar] {
        if let Some(kernel) = dot_matrix_for(candidate) {
            let name = match candidate {
                Isa::Scalar => "sgemm (old)".to_string(),
                other => format!("{other:?}"),
            };
            kernels.push((name, kernel));
        }
    }
    println!(
        "dot_matrix, nq {MATRIX_NQ}, nb {MATRIX_NB}, dim {DIM}: GFLOP/s, best (median) of \
         {MATRIX_RUNS} runs"
    );
    println!("{:<12} {:>16} {:>16}", "kernel", "cached", "streaming");
    for (name, kernel) in kernels {
        let cached = gflops(1, |out| {
            kernel(
                black_box(&queries),
                MATRIX_NQ,
                black_box(&tile),
                MATRIX_NB,
                DIM,
                out,
            );
        });
        let streaming = gflops(STREAM_ROWS / MATRIX_NB, |out| {
            for tile in stream.chunks_exact(MATRIX_NB * DIM) {
                kernel(
                    black_box(&queries),
                    MATRIX_NQ,
                    black_box(tile),
                    MATRIX_NB,
                    DIM,
                    out,
                );
                black_box(&mut *out);
            }
        });
        println!(
            "{name:<12} {:>7.1} ({:>5.1}) {:>8.1} ({:>5.1})",
            cached.0, cached.1, streaming.0, streaming.1
        );
    }
}

const MATRIX_NQ: usize = 64;
const MATRIX_NB: usize = 512;
/// 64 MiB of base vectors at dimension 384, more than the last-level cache.
const STREAM_ROWS: usize = 43_520;
const MATRIX_RUNS: usize = 20;
const MATRIX_RUN_SECONDS: f64 = 0.05;

/// `(best, median)` GFLOP/s of `pass`, which performs `calls` calls of the matrix shape;
/// each run repeats it for about `MATRIX_RUN_SECONDS`.
fn gflops(calls: usize, mut pass: impl FnMut(&mut [f32])) -> (f64, f64) {
    let flops = (2 * MATRIX_NQ * MATRIX_NB * DIM * calls) as f64;
    let mut out = vec![0.0f32; MATRIX_NQ * MATRIX_NB];
    let start = Instant::now();
    pass(&mut out);
    let repeats = (MATRIX_RUN_SECONDS / start.elapsed().as_secs_f64()).ceil() as usize;
    let mut rates: Vec<f64> = (0..MATRIX_RUNS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..repeats {
                pass(&mut out);
            }
            black_box(&out);
            flops * repeats as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    (rates[MATRIX_RUNS - 1], rates[MATRIX_RUNS / 2])
}
