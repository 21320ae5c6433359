//! Eigen-decomposition of small symmetric matrices (a vector's `d × d` second moment, `d` up
//! to a few thousand) for [`crate::leanvec`], in plain Rust: a linear-algebra crate would cost
//! more build time than these few lines.
//!
//! Cyclic Jacobi (Golub & Van Loan, §8.5): sweeps of plane rotations, each zeroing one
//! off-diagonal entry, until the off-diagonal part is negligible. It converges quadratically
//! once the matrix is near diagonal (5 to 10 sweeps in practice) and gives eigenvectors
//! orthonormal to rounding, which is what a projection needs. At `d = 384` one sweep is
//! about 73,000 rotations of `O(d)` each: well under a second per decomposition, run once per
//! seal (a few times for LeanVec-OOD's search over mixing weights).

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

/// Sweeps before giving up on convergence (never reached in the tests: 5 to 10 suffice).
const MAX_SWEEPS: usize = 60;

/// Eigenvalues (descending) and eigenvectors of the symmetric `d × d` matrix `a` (row-major;
/// only its symmetric part is meaningful). The eigenvectors are the rows of the second
/// result (`d × d`, row-major), in the order of the eigenvalues.
pub(crate) fn symmetric_eigen(mut a: Vec<f64>, d: usize) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(a.len(), d * d, "matrix is not d × d");
    // Vᵀ: row k is the k-th eigenvector being accumulated.
    let mut vt = vec![0.0f64; d * d];
    for (k, row) in vt.chunks_exact_mut(d.max(1)).enumerate() {
        if let Some(x) = row.get_mut(k) {
            *x = 1.0;
        }
    }
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _ in 0..MAX_SWEEPS {
        let off: f64 = (0..d)
            .flat_map(|p| (0..d).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| at(&a, d, p, q).powi(2))
            .sum();
        if off <= 1e-26 * total || off == 0.0 {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                rotate(&mut a, &mut vt, d, p, q);
            }
        }
    }
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&i, &j| at(&a, d, j, j).total_cmp(&at(&a, d, i, i)));
    let values = order.iter().map(|&i| at(&a, d, i, i)).collect();
    let mut vectors = Vec::with_capacity(d * d);
    for &i in &order {
        vectors.extend_from_slice(vt.get(i * d..(i + 1) * d).unwrap_or_default());
    }
    (values, vectors)
}

#[inline]
fn at(a: &[f64], d: usize, i: usize, j: usize) -> f64 {
    a.get(i * d + j).copied().unwrap_or(0.0)
}

#[inline]
fn set(a: &mut [f64], d: usize, i: usize, j: usize, v: f64) {
    if let Some(x) = a.get_mut(i * d + j) {
        *x = v;
    }
}

/// One Jacobi rotation in the `(p, q)` plane that zeroes `a[p][q]` (Numerical Recipes'
/// stable form: the smaller rotation angle, `t = tan θ` from `θ = (a_qq − a_pp) / 2a_pq`).
fn rotate(a: &mut [f64], vt: &mut [f64], d: usize, p: usize, q: usize) {
    let apq = at(a, d, p, q);
    if apq == 0.0 {
        return;
    }
    let (app, aqq) = (at(a, d, p, p), at(a, d, q, q));
    let theta = (aqq - app) / (2.0 * apq);
    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
    let c = 1.0 / (t * t + 1.0).sqrt();
    let s = t * c;
    for k in 0..d {
        if k == p || k == q {
            continue;
        }
        // Rows p and q hold columns p and q too (symmetry): update both copies.
        let (akp, akq) = (at(a, d, p, k), at(a, d, q, k));
        let (np, nq) = (c * akp - s * akq, s * akp + c * akq);
        set(a, d, p, k, np);
        set(a, d, k, p, np);
        set(a, d, q, k, nq);
        set(a, d, k, q, nq);
    }
    set(a, d, p, p, app - t * apq);
    set(a, d, q, q, aqq + t * apq);
    set(a, d, p, q, 0.0);
    set(a, d, q, p, 0.0);
    // Columns p and q of V are rows p and q of Vᵀ.
    let (rp, rq) = (p * d, q * d);
    for k in 0..d {
        let (vp, vq) = (
            vt.get(rp + k).copied().unwrap_or(0.0),
            vt.get(rq + k).copied().unwrap_or(0.0),
        );
        if let Some(x) = vt.get_mut(rp + k) {
            *x = c * vp - s * vq;
        }
        if let Some(x) = vt.get_mut(rq + k) {
            *x = s * vp + c * vq;
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `A = Σ λₖ vₖ vₖᵀ` with orthonormal `vₖ` and descending `λₖ`, on random symmetric
        /// matrices, some with repeated eigenvalues (a diagonal block of equal values).
        #[test]
        fn decomposition_reconstructs_the_matrix(
            d in 1usize..24,
            values in prop::collection::vec(-5.0f64..5.0, 24 * 24),
            repeated in any::<bool>(),
        ) {
            let mut a = vec![0.0; d * d];
            for i in 0..d {
                for j in 0..=i {
                    let v = if repeated { if i == j { 2.0 } else { 0.0 } } else { values[i * 24 + j] };
                    a[i * d + j] = v;
                    a[j * d + i] = v;
                }
            }
            let (lambda, v) = symmetric_eigen(a.clone(), d);
            for w in lambda.windows(2) {
                prop_assert!(w[0] >= w[1]);
            }
            let scale = 1.0 + a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            for i in 0..d {
                for j in 0..d {
                    let dot: f64 = (0..d).map(|k| v[i * d + k] * v[j * d + k]).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    prop_assert!((dot - want).abs() < 1e-9, "vectors {i}, {j}: {dot}");
                    let rec: f64 = (0..d).map(|k| lambda[k] * v[k * d + i] * v[k * d + j]).sum();
                    prop_assert!((rec - a[i * d + j]).abs() < 1e-9 * scale, "entry {i},{j}: {rec} vs {}", a[i * d + j]);
                }
            }
        }
    }
}
