//! Many dot products at once: `queries × baseᵀ` through `matrixmultiply::sgemm`.

/// Fills `out[i * nb + j]` with the inner product of query `i` (`queries[i * dim..][..dim]`)
/// and base vector `j` (`base[j * dim..][..dim]`), for `i < nq` and `j < nb`.
///
/// Both inputs are row-major; the transpose of `base` is expressed through strides, so
/// nothing is copied. Runs on the calling thread only (callers parallelise over blocks of
/// queries or base vectors). Accumulation is in `f32` in sgemm's blocked order, with one
/// chain of up to `dim` additions per output, so the error bound is about
/// `(dim + 2) · 2⁻²⁴ · Σ|qₖ·bₖ|`: looser than [`crate::dot`] for large `dim`, and results
/// differ from it in the last bits.
///
/// # Panics
/// If `queries.len() != nq * dim`, `base.len() != nb * dim` or `out.len() != nq * nb`.
#[expect(unsafe_code, reason = "sgemm takes raw pointers and strides")]
pub fn dot_matrix(
    queries: &[f32],
    nq: usize,
    base: &[f32],
    nb: usize,
    dim: usize,
    out: &mut [f32],
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
    // The three lengths were asserted above. β = 0, so C's old contents are not read.
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
    use crate::scalar;
    use proptest::prelude::*;

    /// `(nq, nb, dim, queries, base)` with values in [-10, 10].
    fn problem() -> impl Strategy<Value = (usize, usize, usize, Vec<f32>, Vec<f32>)> {
        (0usize..5, 0usize..7, 0usize..=400).prop_flat_map(|(nq, nb, dim)| {
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Budget: sgemm's `(dim + 2) · 2⁻²⁴ · Σ|qₖ·bₖ|` (see `dot_matrix`) plus the
        /// scalar kernel's `1e-5 · Σ|qₖ·bₖ| + 1e-6`, since both deviate from the exact value.
        #[test]
        fn dot_matrix_matches_scalar_dot((nq, nb, dim, queries, base) in problem()) {
            let mut out = vec![f32::NAN; nq * nb];
            dot_matrix(&queries, nq, &base, nb, dim, &mut out);
            for i in 0..nq {
                for j in 0..nb {
                    let q = &queries[i * dim..][..dim];
                    let b = &base[j * dim..][..dim];
                    let want = scalar::dot(q, b);
                    let abs_sum: f64 =
                        q.iter().zip(b).map(|(&x, &y)| (f64::from(x) * f64::from(y)).abs()).sum();
                    let budget = ((dim + 2) as f64 * f64::from(f32::EPSILON) / 2.0 + 1e-5)
                        * abs_sum
                        + 1e-6;
                    let got = out[i * nb + j];
                    prop_assert!(
                        (f64::from(got) - f64::from(want)).abs() <= budget,
                        "out[{i}][{j}] = {got}, scalar dot {want}, dim {dim}"
                    );
                }
            }
        }
    }

    #[test]
    fn zero_dimension_gives_zeros() {
        let mut out = [f32::NAN; 6];
        dot_matrix(&[], 2, &[], 3, 0, &mut out);
        assert_eq!(out, [0.0; 6]);
    }

    #[test]
    #[should_panic(expected = "out.len() != nq * nb")]
    fn wrong_output_length_panics() {
        let mut out = [0.0; 5];
        dot_matrix(&[1.0; 4], 2, &[1.0; 6], 3, 2, &mut out);
    }
}
