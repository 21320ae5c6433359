//! Many dot products at once: `queries × baseᵀ`.
//!
//! [`dot_matrix`] checks the shapes and goes through the table `dispatch.rs` chose: on
//! x86-64 with AVX2 + FMA that is the packed micro-kernel in `avx2.rs`, elsewhere
//! [`sgemm`] here (matrixmultiply picks its own SIMD kernel at run time).

/// Fills `out[i * nb + j]` with the inner product of query `i` (`queries[i * dim..][..dim]`)
/// and base vector `j` (`base[j * dim..][..dim]`), for `i < nq` and `j < nb`.
///
/// Both inputs are row-major. Runs on the calling thread only (callers parallelise over
/// blocks of queries or base vectors). Accumulation is in `f32`, one chain of `dim`
/// roundings per output, so the error bound is about `(dim + 2) · 2⁻²⁴ · Σ|qₖ·bₖ|`: looser
/// than [`crate::dot`] for large `dim`, and results differ from it in the last bits. On
/// AVX2 (and AVX-512) CPUs each output is exactly `fma(q[dim - 1], b[dim - 1], …
/// fma(q[0], b[0], 0.0))`, so it does not depend on `nq`, `nb` or where the pair sits in
/// the inputs; elsewhere sgemm's blocked order applies. Any shape works, including `nq`,
/// `nb` or `dim` of 0; `dim == 0` gives zeros.
///
/// On AVX2 the kernel keeps its packed queries in a thread-local buffer that grows to
/// `256 · dim` bytes and is reused by later calls on the same thread.
///
/// # Panics
/// If `queries.len() != nq * dim`, `base.len() != nb * dim` or `out.len() != nq * nb`.
#[inline]
pub fn dot_matrix(
    queries: &[f32],
    nq: usize,
    base: &[f32],
    nb: usize,
    dim: usize,
    out: &mut [f32],
) {
    check_shapes(queries, nq, base, nb, dim, out);
    (crate::dispatch::selected_dot_matrix())(queries, nq, base, nb, dim, out);
}

/// Panics unless the slice lengths match `nq`, `nb` and `dim` as [`dot_matrix`] requires;
/// every matrix kernel calls it before anything else.
pub(crate) fn check_shapes(
    queries: &[f32],
    nq: usize,
    base: &[f32],
    nb: usize,
    dim: usize,
    out: &[f32],
) {
    assert_eq!(
        Some(queries.len()),
        nq.checked_mul(dim),
        "dot_matrix: queries.len() != nq * dim"
    );
    assert_eq!(
        Some(base.len()),
        nb.checked_mul(dim),
        "dot_matrix: base.len() != nb * dim"
    );
    assert_eq!(
        Some(out.len()),
        nq.checked_mul(nb),
        "dot_matrix: out.len() != nq * nb"
    );
}

/// [`dot_matrix`] through `matrixmultiply::sgemm`: the kernel of every table without a
/// micro-kernel of its own.
#[expect(unsafe_code, reason = "sgemm takes raw pointers and strides")]
pub(crate) fn sgemm(
    queries: &[f32],
    nq: usize,
    base: &[f32],
    nb: usize,
    dim: usize,
    out: &mut [f32],
) {
    check_shapes(queries, nq, base, nb, dim, out);
    if out.is_empty() {
        return;
    }
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    // `dim <= queries.len()` and `nb <= out.len()`, and slice lengths fit in `isize`.
    let dim_stride = isize::try_from(dim).expect("slice length fits in isize");
    let nb_stride = isize::try_from(nb).expect("slice length fits in isize");
    // SAFETY: with m = nq, k = dim, n = nb (all non-zero here):
    // - A = queries as an nq × dim row-major matrix (row stride dim, column stride 1): its
    //   last element is at (nq - 1) * dim + dim - 1 = queries.len() - 1;
    // - B = baseᵀ, a dim × nb matrix whose element (k, j) is base[j * dim + k] (row stride
    //   1, column stride dim): its last element is at (nb - 1) * dim + dim - 1 =
    //   base.len() - 1;
    // - C = out as an nq × nb row-major matrix (row stride nb, column stride 1): its last
    //   element is at nq * nb - 1 = out.len() - 1, no two of its elements alias, and `out`
    //   is an exclusive borrow, so it aliases neither A nor B.
    // The three lengths were checked by `check_shapes`. β = 0, so C's old contents are not
    // read.
    unsafe {
        matrixmultiply::sgemm(
            nq,
            dim,
            nb,
            1.0,
            queries.as_ptr(),
            dim_stride,
            1,
            base.as_ptr(),
            1,
            dim_stride,
            0.0,
            out.as_mut_ptr(),
            nb_stride,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{Isa, dot_matrix_for};
    use crate::scalar;
    use proptest::prelude::*;

    /// `(nq, nb, dim)` covering every tail of the AVX2 kernel: partial panels of 16
    /// queries, partial groups of 6 base rows, and every `dim % 4`.
    fn shape() -> impl Strategy<Value = (usize, usize, usize)> {
        (0usize..=20, 0usize..=40, 1usize..=400)
    }

    /// `(nq, nb, dim, queries, base)` with values in [-10, 10].
    fn problem() -> impl Strategy<Value = (usize, usize, usize, Vec<f32>, Vec<f32>)> {
        shape().prop_flat_map(|(nq, nb, dim)| {
            let values = |n| prop::collection::vec(-10.0f32..=10.0, n);
            (
                Just(nq),
                Just(nb),
                Just(dim),
                values(nq * dim),
                values(nb * dim),
            )
        })
    }

    /// Like [`problem`], with integers in [-8, 8]: every product and partial sum is an
    /// integer below 2²⁴ in magnitude (400 · 64 < 2²⁴), so every summation order is exact.
    fn exact_problem() -> impl Strategy<Value = (usize, usize, usize, Vec<f32>, Vec<f32>)> {
        shape().prop_flat_map(|(nq, nb, dim)| {
            let values = |n| prop::collection::vec((-8i8..=8).prop_map(f32::from), n);
            (
                Just(nq),
                Just(nb),
                Just(dim),
                values(nq * dim),
                values(nb * dim),
            )
        })
    }

    /// The dispatched [`dot_matrix`] and every instruction set's own kernel, by name.
    fn kernels() -> Vec<(String, crate::MatrixKernel)> {
        let mut kernels: Vec<(String, crate::MatrixKernel)> =
            vec![("dispatched".into(), dot_matrix)];
        for isa in Isa::ALL {
            if let Some(kernel) = dot_matrix_for(isa) {
                kernels.push((format!("{isa:?}"), kernel));
            }
        }
        kernels
    }

    /// Runs `kernel` on an output pre-filled with NaN, so a missed element shows.
    fn run(
        kernel: crate::MatrixKernel,
        (nq, nb, dim, queries, base): (usize, usize, usize, &[f32], &[f32]),
    ) -> Vec<f32> {
        let mut out = vec![f32::NAN; nq * nb];
        kernel(queries, nq, base, nb, dim, &mut out);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Budget: one chain of `dim` roundings, `(dim + 2) · 2⁻²⁴ · Σ|qₖ·bₖ|` (see
        /// `dot_matrix`), plus the scalar kernel's `1e-5 · Σ|qₖ·bₖ| + 1e-6`, since both
        /// deviate from the exact value.
        #[test]
        fn dot_matrix_matches_scalar_dot((nq, nb, dim, queries, base) in problem()) {
            for (name, kernel) in kernels() {
                let out = run(kernel, (nq, nb, dim, &queries, &base));
                for i in 0..nq {
                    for j in 0..nb {
                        let q = &queries[i * dim..][..dim];
                        let b = &base[j * dim..][..dim];
                        let want = scalar::dot(q, b);
                        let abs_sum: f64 = q
                            .iter()
                            .zip(b)
                            .map(|(&x, &y)| (f64::from(x) * f64::from(y)).abs())
                            .sum();
                        let budget = ((dim + 2) as f64 * f64::from(f32::EPSILON) / 2.0 + 1e-5)
                            * abs_sum
                            + 1e-6;
                        let got = out[i * nb + j];
                        prop_assert!(
                            (f64::from(got) - f64::from(want)).abs() <= budget,
                            "{name}: out[{i}][{j}] = {got}, scalar dot {want}, \
                             nq {nq}, nb {nb}, dim {dim}"
                        );
                    }
                }
            }
        }

        /// Small integers: every kernel must give the exact products, element by element.
        #[test]
        fn dot_matrix_is_exact_on_small_integers(
            (nq, nb, dim, queries, base) in exact_problem()
        ) {
            let want: Vec<f32> = (0..nq * nb)
                .map(|ij| {
                    let q = &queries[ij / nb * dim..][..dim];
                    let b = &base[ij % nb * dim..][..dim];
                    q.iter().zip(b).map(|(x, y)| x * y).sum()
                })
                .collect();
            for (name, kernel) in kernels() {
                let out = run(kernel, (nq, nb, dim, &queries, &base));
                prop_assert_eq!(
                    &out, &want, "{}: nq {}, nb {}, dim {}", name, nq, nb, dim
                );
            }
        }
    }

    /// What the AVX2 kernel computes for every product, whatever the shape: one chain of
    /// fused multiply-adds in order of dimension, starting from 0.
    fn fma_chain(q: &[f32], b: &[f32]) -> f32 {
        q.iter().zip(b).fold(0.0, |acc, (&x, &y)| x.mul_add(y, acc))
    }

    /// Checks `kernel` bit for bit against [`fma_chain`].
    fn check_fma_chain(
        kernel: crate::MatrixKernel,
        (nq, nb, dim, queries, base): (usize, usize, usize, &[f32], &[f32]),
    ) -> Result<(), TestCaseError> {
        let out = run(kernel, (nq, nb, dim, queries, base));
        for i in 0..nq {
            for j in 0..nb {
                let want = fma_chain(&queries[i * dim..][..dim], &base[j * dim..][..dim]);
                let got = out[i * nb + j];
                prop_assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "out[{}][{}] = {}, FMA chain {}, nq {}, nb {}, dim {}",
                    i,
                    j,
                    got,
                    want,
                    nq,
                    nb,
                    dim
                );
            }
        }
        Ok(())
    }

    /// The AVX2 kernel, if this CPU has it (`None` elsewhere, checked to be consistent).
    fn avx2() -> Option<crate::MatrixKernel> {
        let kernel = dot_matrix_for(Isa::Avx2);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            kernel.is_some(),
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
        );
        kernel
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The AVX2 kernel directly: every product equals [`fma_chain`] bit for bit, on
        /// shapes with partial panels of queries, partial groups of rows and every tail of
        /// `dim`.
        #[test]
        fn avx2_dot_matrix_is_one_fma_chain((nq, nb, dim, queries, base) in problem()) {
            if let Some(avx2) = avx2() {
                check_fma_chain(avx2, (nq, nb, dim, &queries, &base))?;
            }
        }
    }

    /// The AVX2 kernel on the flat search's shape and on shapes with several chunks of
    /// queries (more than 64) and every tail at once.
    #[test]
    fn avx2_dot_matrix_on_large_shapes() {
        let Some(avx2) = avx2() else { return };
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            // 24 random bits mapped onto [-1, 1).
            (f64::from((state >> 40) as u32) / f64::from(1u32 << 23) - 1.0) as f32
        };
        for (nq, nb, dim) in [(64, 512, 384), (150, 37, 1030), (129, 7, 9), (1, 1, 1)] {
            let queries: Vec<f32> = (0..nq * dim).map(|_| next()).collect();
            let base: Vec<f32> = (0..nb * dim).map(|_| next()).collect();
            check_fma_chain(avx2, (nq, nb, dim, &queries, &base)).unwrap();
        }
    }

    #[test]
    fn dispatched_dot_matrix_is_the_selected_kernel() {
        let (nq, nb, dim) = (19, 23, 37);
        let queries: Vec<f32> = (0..nq * dim)
            .map(|i| (i % 13) as f32 * 0.37 - 2.0)
            .collect();
        let base: Vec<f32> = (0..nb * dim)
            .map(|i| (i % 11) as f32 * 0.53 - 2.5)
            .collect();
        let selected = dot_matrix_for(crate::isa()).expect("the selected set is supported");
        let got = run(dot_matrix, (nq, nb, dim, &queries, &base));
        let want = run(selected, (nq, nb, dim, &queries, &base));
        assert_eq!(
            got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn zero_dimension_gives_zeros() {
        for (name, kernel) in kernels() {
            let mut out = [f32::NAN; 6];
            kernel(&[], 2, &[], 3, 0, &mut out);
            assert_eq!(out, [0.0; 6], "{name}");
        }
    }

    #[test]
    fn empty_shapes_are_accepted() {
        for (_, kernel) in kernels() {
            kernel(&[], 0, &[1.0; 6], 3, 2, &mut []);
            kernel(&[1.0; 4], 2, &[], 0, 2, &mut []);
            kernel(&[], 0, &[], 0, 0, &mut []);
        }
    }

    #[test]
    fn wrong_shapes_panic_in_every_kernel() {
        // nq 2, nb 3, dim 2 need lengths (4, 6, 6); each case gets one of them wrong.
        let (nq, nb, dim) = (2, 3, 2);
        for (name, kernel) in kernels() {
            for (queries, base, out) in [(4, 6, 5), (5, 6, 6), (4, 7, 6), (3, 6, 6)] {
                let result = std::panic::catch_unwind(|| {
                    let mut out = vec![0.0; out];
                    kernel(&vec![1.0; queries], nq, &vec![1.0; base], nb, dim, &mut out);
                });
                assert!(
                    result.is_err(),
                    "{name} accepted lengths ({queries}, {base}, {out})"
                );
            }
        }
    }

    #[test]
    #[should_panic(expected = "out.len() != nq * nb")]
    fn wrong_output_length_panics() {
        let mut out = [0.0; 5];
        dot_matrix(&[1.0; 4], 2, &[1.0; 6], 3, 2, &mut out);
    }
}
