//! The one place that decides which instruction set runs.
//!
//! [`Kernels`] is a table of safe function pointers for one instruction set. A table for a
//! SIMD set can only be built by a constructor that first checks the CPU supports it, and
//! the safe wrappers that call the `#[target_feature]` kernels are nested inside that
//! constructor, so nothing else can reach them. The best table is chosen on first use and
//! cached for the life of the process.

use std::sync::OnceLock;

use crate::{matrix, scalar};

/// Instruction set chosen at first use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Portable code in [`crate::scalar`].
    Scalar,
    /// x86-64 AVX2 with FMA.
    Avx2,
    /// x86-64 AVX-512 Foundation (code kernels also need AVX-512BW, else AVX2's run).
    Avx512,
    /// x86-64 AVX-512 with BW and VNNI: [`Isa::Avx512`]'s float kernels, code kernels on
    /// `vpdpwssd`.
    Avx512Vnni,
    /// aarch64 Advanced SIMD (present on all common aarch64 targets).
    Neon,
}

impl Isa {
    /// Every variant, best first: the order in which [`isa`] tries them.
    pub const ALL: [Isa; 5] = [
        Isa::Avx512Vnni,
        Isa::Avx512,
        Isa::Avx2,
        Isa::Neon,
        Isa::Scalar,
    ];
}

/// A kernel over two slices of equal length, such as [`dot`] (an alias, so plain
/// `fn(&[f32], &[f32]) -> f32`).
pub type PairKernel = fn(&[f32], &[f32]) -> f32;
/// A kernel over one slice, such as [`norm_squared`].
pub type NormKernel = fn(&[f32]) -> f32;
/// A kernel over 16-bit integers and their codes, such as [`dot_u8_i16`] (8-bit codes, as
/// many as integers) and [`dot_u4_i16`] (4-bit codes, two per byte).
pub type CodeKernel = fn(&[i16], &[u8]) -> i32;
/// A matrix kernel with the signature and contract of [`crate::dot_matrix`]:
/// `(queries, nq, base, nb, dim, out)`.
pub type MatrixKernel = fn(&[f32], usize, &[f32], usize, usize, &mut [f32]);

/// The kernels of one instruction set; every entry checks its slice lengths itself.
#[derive(Clone, Copy)]
struct Kernels {
    isa: Isa,
    dot: PairKernel,
    l2_squared: PairKernel,
    norm_squared: NormKernel,
    dot_u8_i16: CodeKernel,
    dot_u4_i16: CodeKernel,
    dot_matrix: MatrixKernel,
}

const SCALAR: Kernels = Kernels {
    isa: Isa::Scalar,
    dot: scalar::dot,
    l2_squared: scalar::l2_squared,
    norm_squared: scalar::norm_squared,
    dot_u8_i16: scalar::dot_u8_i16_i32,
    dot_u4_i16: scalar::dot_u4_i16_i32,
    dot_matrix: matrix::sgemm,
};

impl Kernels {
    /// The table for `isa`, or `None` if this CPU (or this build target) lacks it.
    fn for_isa(isa: Isa) -> Option<Kernels> {
        match isa {
            Isa::Scalar => Some(SCALAR),
            Isa::Avx2 => Self::avx2(),
            Isa::Avx512 => Self::avx512(),
            Isa::Avx512Vnni => Self::avx512_vnni(),
            Isa::Neon => Self::neon(),
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn avx2() -> Option<Kernels> {
        use crate::avx2;

        // The wrappers below are visible only inside this function, and the only path to
        // them is the table returned after the feature check.
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            assert_eq!(a.len(), b.len(), "dot: slices differ in length");
            // SAFETY: reachable only through the table built below after AVX2 and FMA were
            // detected on this CPU.
            unsafe { avx2::dot(a, b) }
        }
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
            assert_eq!(a.len(), b.len(), "l2_squared: slices differ in length");
            // SAFETY: as in `dot` above.
            unsafe { avx2::l2_squared(a, b) }
        }
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn norm_squared(a: &[f32]) -> f32 {
            // SAFETY: as in `dot` above.
            unsafe { avx2::norm_squared(a) }
        }
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn dot_u8_i16(q: &[i16], codes: &[u8]) -> i32 {
            assert_eq!(q.len(), codes.len(), "dot_u8_i16: slices differ in length");
            // SAFETY: as in `dot` above.
            unsafe { avx2::dot_u8_i16(q, codes) }
        }
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn dot_u4_i16(q: &[i16], codes: &[u8]) -> i32 {
            check_u4(q, codes);
            // SAFETY: as in `dot` above.
            unsafe { avx2::dot_u4_i16(q, codes) }
        }
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn dot_matrix(
            queries: &[f32],
            nq: usize,
            base: &[f32],
            nb: usize,
            dim: usize,
            out: &mut [f32],
        ) {
            matrix::check_shapes(queries, nq, base, nb, dim, out);
            // SAFETY: as in `dot` above.
            unsafe { avx2::dot_matrix(queries, nq, base, nb, dim, out) }
        }

        let supported =
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        supported.then_some(Kernels {
            isa: Isa::Avx2,
            dot,
            l2_squared,
            norm_squared,
            dot_u8_i16,
            dot_u4_i16,
            dot_matrix,
        })
    }

    #[cfg(target_arch = "x86_64")]
    fn avx512() -> Option<Kernels> {
        use crate::avx512;

        // The wrappers below are visible only inside this function, and the only path to
        // them is the table returned after the feature check.
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            assert_eq!(a.len(), b.len(), "dot: slices differ in length");
            // SAFETY: reachable only through the table built below after AVX-512F was
            // detected on this CPU.
            unsafe { avx512::dot(a, b) }
        }
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
            assert_eq!(a.len(), b.len(), "l2_squared: slices differ in length");
            // SAFETY: as in `dot` above.
            unsafe { avx512::l2_squared(a, b) }
        }
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn norm_squared(a: &[f32]) -> f32 {
            // SAFETY: as in `dot` above.
            unsafe { avx512::norm_squared(a) }
        }
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn dot_u8_i16(q: &[i16], codes: &[u8]) -> i32 {
            assert_eq!(q.len(), codes.len(), "dot_u8_i16: slices differ in length");
            // SAFETY: reachable only through the table built below after AVX-512F and
            // AVX-512BW were detected on this CPU.
            unsafe { avx512::dot_u8_i16(q, codes) }
        }
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn dot_u4_i16(q: &[i16], codes: &[u8]) -> i32 {
            check_u4(q, codes);
            // SAFETY: as in `dot_u8_i16` above.
            unsafe { avx512::dot_u4_i16(q, codes) }
        }

        if !std::is_x86_feature_detected!("avx512f") {
            return None;
        }
        // No AVX-512 matrix kernel yet, and no code kernels without BW: the AVX2 ones, which
        // every AVX-512 CPU can run (the check is repeated anyway, so the table stays sound
        // on any CPU).
        let avx2 = Self::avx2();
        let bw = std::is_x86_feature_detected!("avx512bw");
        Some(Kernels {
            isa: Isa::Avx512,
            dot,
            l2_squared,
            norm_squared,
            dot_u8_i16: match (bw, avx2) {
                (true, _) => dot_u8_i16,
                (false, Some(avx2)) => avx2.dot_u8_i16,
                (false, None) => scalar::dot_u8_i16_i32,
            },
            dot_u4_i16: match (bw, avx2) {
                (true, _) => dot_u4_i16,
                (false, Some(avx2)) => avx2.dot_u4_i16,
                (false, None) => scalar::dot_u4_i16_i32,
            },
            dot_matrix: avx2.map_or(matrix::sgemm, |avx2| avx2.dot_matrix),
        })
    }

    #[cfg(target_arch = "x86_64")]
    fn avx512_vnni() -> Option<Kernels> {
        use crate::avx512vnni;

        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn dot_u8_i16(q: &[i16], codes: &[u8]) -> i32 {
            assert_eq!(q.len(), codes.len(), "dot_u8_i16: slices differ in length");
            // SAFETY: reachable only through the table built below after AVX-512F, BW and
            // VNNI were detected on this CPU.
            unsafe { avx512vnni::dot_u8_i16(q, codes) }
        }
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn dot_u4_i16(q: &[i16], codes: &[u8]) -> i32 {
            check_u4(q, codes);
            // SAFETY: as in `dot_u8_i16` above.
            unsafe { avx512vnni::dot_u4_i16(q, codes) }
        }

        let vnni = std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vnni");
        // The float kernels are AVX-512F's, whose table checks that feature itself.
        let base = Self::avx512().filter(|_| vnni)?;
        Some(Kernels {
            isa: Isa::Avx512Vnni,
            dot_u8_i16,
            dot_u4_i16,
            ..base
        })
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn avx2() -> Option<Kernels> {
        None
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn avx512() -> Option<Kernels> {
        None
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn avx512_vnni() -> Option<Kernels> {
        None
    }

    #[cfg(target_arch = "aarch64")]
    fn neon() -> Option<Kernels> {
        use crate::neon;

        // The wrappers below are visible only inside this function, and the only path to
        // them is the table returned after the feature check.
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            assert_eq!(a.len(), b.len(), "dot: slices differ in length");
            // SAFETY: reachable only through the table built below after NEON was detected
            // on this CPU.
            unsafe { neon::dot(a, b) }
        }
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
            assert_eq!(a.len(), b.len(), "l2_squared: slices differ in length");
            // SAFETY: as in `dot` above.
            unsafe { neon::l2_squared(a, b) }
        }
        #[expect(unsafe_code, reason = "calls a #[target_feature] kernel")]
        fn norm_squared(a: &[f32]) -> f32 {
            // SAFETY: as in `dot` above.
            unsafe { neon::norm_squared(a) }
        }

        let supported = std::arch::is_aarch64_feature_detected!("neon");
        supported.then_some(Kernels {
            isa: Isa::Neon,
            dot,
            l2_squared,
            norm_squared,
            // No NEON code kernels yet; the portable ones auto-vectorise reasonably.
            dot_u8_i16: scalar::dot_u8_i16_i32,
            dot_u4_i16: scalar::dot_u4_i16_i32,
            dot_matrix: matrix::sgemm,
        })
    }

    #[cfg(not(target_arch = "aarch64"))]
    fn neon() -> Option<Kernels> {
        None
    }
}

static SELECTED: OnceLock<Kernels> = OnceLock::new();

/// The table chosen on first use: the first supported entry of [`Isa::ALL`].
fn selected() -> &'static Kernels {
    SELECTED.get_or_init(|| {
        Isa::ALL
            .into_iter()
            .find_map(Kernels::for_isa)
            .unwrap_or(SCALAR)
    })
}

/// The matrix kernel of the selected table, for [`crate::dot_matrix`].
pub(crate) fn selected_dot_matrix() -> MatrixKernel {
    selected().dot_matrix
}

/// The instruction set selected for this process (detected on the first call, then cached).
pub fn isa() -> Isa {
    selected().isa
}

/// Inner product `Σ aᵢ·bᵢ` with the selected instruction set; accumulation in `f32` (see
/// the crate docs for the error budget).
///
/// # Panics
/// If `a.len() != b.len()`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: slices differ in length");
    (selected().dot)(a, b)
}

/// Squared Euclidean distance `Σ (aᵢ - bᵢ)²` with the selected instruction set.
///
/// # Panics
/// If `a.len() != b.len()`.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "l2_squared: slices differ in length");
    (selected().l2_squared)(a, b)
}

/// Squared Euclidean norm `Σ aᵢ²` with the selected instruction set.
#[inline]
pub fn norm_squared(a: &[f32]) -> f32 {
    (selected().norm_squared)(a)
}

/// The dot kernel of `isa`, if this CPU supports it; for tests and benchmarks that compare
/// instruction sets (it detects features on every call, so fetch it once). The returned
/// function panics on slices of different lengths.
pub fn dot_for(isa: Isa) -> Option<PairKernel> {
    Kernels::for_isa(isa).map(|k| k.dot)
}

/// The squared-L2 kernel of `isa`, if this CPU supports it; see [`dot_for`].
pub fn l2_squared_for(isa: Isa) -> Option<PairKernel> {
    Kernels::for_isa(isa).map(|k| k.l2_squared)
}

/// `Σ qᵢ·cᵢ` of 16-bit integers and 8-bit codes with the selected instruction set, in `i32`:
/// exact (equal to [`crate::scalar::dot_u8_i16`]) whenever `255 · Σ|qᵢ| < 2³¹`; beyond
/// that the sum wraps.
///
/// # Panics
/// If `q.len() != codes.len()`.
#[inline]
pub fn dot_u8_i16(q: &[i16], codes: &[u8]) -> i32 {
    assert_eq!(q.len(), codes.len(), "dot_u8_i16: slices differ in length");
    (selected().dot_u8_i16)(q, codes)
}

/// The code kernel of `isa`, if this CPU supports it; see [`dot_for`].
pub fn dot_u8_i16_for(isa: Isa) -> Option<CodeKernel> {
    Kernels::for_isa(isa).map(|k| k.dot_u8_i16)
}

/// Panics unless `codes` holds `q.len()` 4-bit codes (see [`crate::scalar::u4_len`]).
#[inline]
fn check_u4(q: &[i16], codes: &[u8]) {
    assert_eq!(
        codes.len(),
        scalar::u4_len(q.len()),
        "dot_u4_i16: {} codes bytes for {} dimensions",
        codes.len(),
        q.len()
    );
}

/// `Σ qᵢ·cᵢ` of 16-bit integers and 4-bit codes packed by [`crate::scalar::pack_u4`] with
/// the selected instruction set, in `i32`: exact (equal to [`crate::scalar::dot_u4_i16`])
/// whenever `15 · Σ|qᵢ| < 2³¹`; beyond that the sum wraps.
///
/// # Panics
/// If `codes.len() != u4_len(q.len())`.
#[inline]
pub fn dot_u4_i16(q: &[i16], codes: &[u8]) -> i32 {
    check_u4(q, codes);
    (selected().dot_u4_i16)(q, codes)
}

/// The 4-bit code kernel of `isa`, if this CPU supports it; see [`dot_for`].
pub fn dot_u4_i16_for(isa: Isa) -> Option<CodeKernel> {
    Kernels::for_isa(isa).map(|k| k.dot_u4_i16)
}

/// The squared-norm kernel of `isa`, if this CPU supports it; see [`dot_for`].
pub fn norm_squared_for(isa: Isa) -> Option<NormKernel> {
    Kernels::for_isa(isa).map(|k| k.norm_squared)
}

/// The [`crate::dot_matrix`] kernel of `isa`, if this CPU supports it; see [`dot_for`].
/// AVX2 has its own micro-kernel, AVX-512 reuses it, and scalar and NEON go through
/// `matrixmultiply::sgemm` (which picks its own SIMD kernel at run time, so the scalar
/// entry is the old path rather than a scalar loop). The returned function panics on
/// inconsistent shapes, as [`crate::dot_matrix`] does.
pub fn dot_matrix_for(isa: Isa) -> Option<MatrixKernel> {
    Kernels::for_isa(isa).map(|k| k.dot_matrix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The error budget of the crate docs: `|got - exact| <= 1e-5 · Σ|termᵢ| + 1e-6`, with
    /// `exact` and `Σ|termᵢ|` computed in `f64`. For lengths up to 1030 it covers the
    /// worst-case bound `m · 2⁻²⁴ · Σ|termᵢ|` of every kernel here (m ≈ 140 dependent
    /// roundings for the 8-lane scalar kernel, fewer for the SIMD ones); the `1e-6` absorbs
    /// the rounding of the final result when `Σ|termᵢ|` is tiny.
    fn within_budget(got: f32, exact: f64, abs_sum: f64) -> bool {
        (f64::from(got) - exact).abs() <= 1e-5 * abs_sum + 1e-6
    }

    /// `(Σ aᵢ·bᵢ, Σ |aᵢ·bᵢ|)` in `f64`.
    fn dot_f64(a: &[f32], b: &[f32]) -> (f64, f64) {
        a.iter().zip(b).fold((0.0, 0.0), |(sum, abs), (&x, &y)| {
            let p = f64::from(x) * f64::from(y);
            (sum + p, abs + p.abs())
        })
    }

    /// `Σ (aᵢ - bᵢ)²` in `f64`; its terms are non-negative, so it is also `Σ|termᵢ|`.
    fn l2_f64(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum()
    }

    fn available() -> Vec<Isa> {
        Isa::ALL
            .into_iter()
            .filter(|&isa| dot_for(isa).is_some())
            .collect()
    }

    /// Checks every available instruction set, and the dispatched functions, on `(a, b)`.
    fn check_all(a: &[f32], b: &[f32]) -> Result<(), TestCaseError> {
        let (dot_exact, dot_abs) = dot_f64(a, b);
        let l2_exact = l2_f64(a, b);
        let (norm_exact, _) = dot_f64(a, a);
        for isa in available() {
            let got = dot_for(isa).unwrap()(a, b);
            prop_assert!(
                within_budget(got, dot_exact, dot_abs),
                "{isa:?} dot, len {}: got {got}, exact {dot_exact}",
                a.len()
            );
            let got = l2_squared_for(isa).unwrap()(a, b);
            prop_assert!(
                within_budget(got, l2_exact, l2_exact),
                "{isa:?} l2_squared, len {}: got {got}, exact {l2_exact}",
                a.len()
            );
            let got = norm_squared_for(isa).unwrap()(a);
            prop_assert!(
                within_budget(got, norm_exact, norm_exact),
                "{isa:?} norm_squared, len {}: got {got}, exact {norm_exact}",
                a.len()
            );
        }
        let selected = selected();
        prop_assert_eq!(dot(a, b).to_bits(), (selected.dot)(a, b).to_bits());
        prop_assert_eq!(
            l2_squared(a, b).to_bits(),
            (selected.l2_squared)(a, b).to_bits()
        );
        prop_assert_eq!(
            norm_squared(a).to_bits(),
            (selected.norm_squared)(a).to_bits()
        );
        Ok(())
    }

    /// Every available code kernel, and the dispatched one, equal the exact sum.
    fn check_dot_u8_i16(q: &[i16], codes: &[u8]) -> Result<(), TestCaseError> {
        let exact = scalar::dot_u8_i16(q, codes);
        for isa in available() {
            let got = dot_u8_i16_for(isa).unwrap()(q, codes);
            prop_assert_eq!(
                i64::from(got),
                exact,
                "{:?} dot_u8_i16, len {}",
                isa,
                q.len()
            );
        }
        prop_assert_eq!(i64::from(dot_u8_i16(q, codes)), exact);
        Ok(())
    }

    /// Every available 4-bit code kernel, and the dispatched one, equal the exact sum of the
    /// unpacked codes (wrapped to `i32`, as the lanes wrap: the products never overflow, so
    /// the wrapped sums agree even past the exactness bound).
    fn check_dot_u4_i16(q: &[i16], codes: &[u8]) -> Result<(), TestCaseError> {
        let mut packed = vec![0u8; scalar::u4_len(codes.len())];
        scalar::pack_u4(codes, &mut packed);
        let mut back = vec![0u8; codes.len()];
        scalar::unpack_u4(&packed, &mut back);
        let masked: Vec<u8> = codes.iter().map(|c| c & 0x0F).collect();
        prop_assert_eq!(&back, &masked, "pack/unpack, len {}", codes.len());
        let exact: i64 = q
            .iter()
            .zip(&masked)
            .map(|(&a, &c)| i64::from(a) * i64::from(c))
            .sum();
        prop_assert_eq!(scalar::dot_u4_i16(q, &packed), exact);
        for isa in available() {
            let got = dot_u4_i16_for(isa).unwrap()(q, &packed);
            prop_assert_eq!(got, exact as i32, "{:?} dot_u4_i16, len {}", isa, q.len());
        }
        prop_assert_eq!(dot_u4_i16(q, &packed), exact as i32);
        Ok(())
    }

    /// [`check_dot_u8_i16`] without the exactness bound: the wrapped sums agree.
    fn check_dot_u8_i16_wrapping(q: &[i16], codes: &[u8]) -> Result<(), TestCaseError> {
        let exact = scalar::dot_u8_i16(q, codes) as i32;
        for isa in available() {
            let got = dot_u8_i16_for(isa).unwrap()(q, codes);
            prop_assert_eq!(got, exact, "{:?} dot_u8_i16, len {}", isa, q.len());
        }
        Ok(())
    }

    fn split(pairs: Vec<(f32, f32)>) -> (Vec<f32>, Vec<f32>) {
        pairs.into_iter().unzip()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn kernels_match_f64_reference(
            pairs in prop::collection::vec((-10.0f32..=10.0, -10.0f32..=10.0), 0..=1030)
        ) {
            let (a, b) = split(pairs);
            check_all(&a, &b)?;
        }

        #[test]
        fn code_kernels_are_exact(
            pairs in prop::collection::vec((any::<i16>(), any::<u8>()), 0..=1030)
        ) {
            // Within the exactness bound at any length up to 1030: 255 · 1030 · 6554 < 2³¹.
            let (q, codes): (Vec<i16>, Vec<u8>) =
                pairs.into_iter().map(|(a, c)| (a / 5, c)).unzip();
            check_dot_u8_i16(&q, &codes)?;
        }

        /// Any `i16` and any code, up to 4,200 dimensions (past the exactness bound, where
        /// the sums wrap alike), 4-bit codes from the low nibbles.
        #[test]
        fn code_kernels_agree_on_any_values(
            pairs in prop::collection::vec((any::<i16>(), any::<u8>()), 0..=4200)
        ) {
            let (q, codes): (Vec<i16>, Vec<u8>) = pairs.into_iter().unzip();
            check_dot_u8_i16_wrapping(&q, &codes)?;
            check_dot_u4_i16(&q, &codes)?;
        }

        /// All-equal rows and queries (every lane the same, extremes included).
        #[test]
        fn code_kernels_on_constant_inputs(
            a in prop_oneof![Just(i16::MIN), Just(i16::MAX), Just(0i16), Just(-1i16), any::<i16>()],
            c in prop_oneof![Just(0u8), Just(15u8), Just(255u8), any::<u8>()],
            len in 0usize..=1100,
        ) {
            let (q, codes) = (vec![a; len], vec![c; len]);
            check_dot_u8_i16_wrapping(&q, &codes)?;
            check_dot_u4_i16(&q, &codes)?;
        }

        /// Same-sign inputs: no cancellation, so rounding errors pile up the most.
        #[test]
        fn kernels_match_f64_reference_same_sign(
            pairs in prop::collection::vec((0.0f32..=10.0, 0.0f32..=10.0), 0..=1030)
        ) {
            let (a, b) = split(pairs);
            check_all(&a, &b)?;
        }
    }

    /// Every length from 0 to 1030, so every tail of every kernel is exercised.
    #[test]
    fn every_length_up_to_1030() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            // 24 random bits mapped onto [-10, 10].
            (f64::from((state >> 40) as u32) / f64::from(1u32 << 24) * 20.0 - 10.0) as f32
        };
        let a: Vec<f32> = (0..1030).map(|_| next()).collect();
        let b: Vec<f32> = (0..1030).map(|_| next()).collect();
        for len in 0..=a.len() {
            check_all(&a[..len], &b[..len]).unwrap();
        }
    }

    /// Every code length from 0 to 1030 (every tail and block boundary of every kernel),
    /// with extreme values.
    #[test]
    fn code_kernels_at_every_length_up_to_1030() {
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 32) as u32
        };
        let q: Vec<i16> = (0..1030).map(|_| next() as i16).collect();
        let codes: Vec<u8> = (0..1030).map(|_| next() as u8).collect();
        let q_max = vec![i16::MIN; 1030];
        let c_max = vec![255u8; 1030];
        for len in 0..=q.len() {
            check_dot_u8_i16(&q[..len], &codes[..len]).unwrap();
            check_dot_u8_i16_wrapping(&q_max[..len], &c_max[..len]).unwrap();
            check_dot_u4_i16(&q[..len], &codes[..len]).unwrap();
            check_dot_u4_i16(&q_max[..len], &c_max[..len]).unwrap();
        }
    }

    #[test]
    fn code_kernels_refuse_wrong_lengths() {
        let q = [1i16; 65];
        for isa in available() {
            let u8_kernel = dot_u8_i16_for(isa).unwrap();
            assert!(std::panic::catch_unwind(|| u8_kernel(&q, &[1u8; 64])).is_err());
            let u4_kernel = dot_u4_i16_for(isa).unwrap();
            assert!(std::panic::catch_unwind(|| u4_kernel(&q, &[1u8; 32])).is_err());
            assert_eq!(u4_kernel(&q, &[0x11u8; 33]), 65, "{isa:?}");
        }
    }

    #[test]
    fn small_integers_are_exact() {
        let a: Vec<f32> = (1..=37).map(|i| i as f32).collect();
        let b: Vec<f32> = (1..=37).map(|i| (40 - i) as f32).collect();
        let (dot_exact, _) = dot_f64(&a, &b);
        let l2_exact = l2_f64(&a, &b);
        for isa in available() {
            assert_eq!(
                f64::from(dot_for(isa).unwrap()(&a, &b)),
                dot_exact,
                "{isa:?}"
            );
            assert_eq!(
                f64::from(l2_squared_for(isa).unwrap()(&a, &b)),
                l2_exact,
                "{isa:?}"
            );
            assert_eq!(dot_for(isa).unwrap()(&[], &[]), 0.0, "{isa:?}");
        }
    }

    #[test]
    fn selected_isa_is_the_best_supported() {
        let isa = isa();
        assert!(dot_for(isa).is_some(), "{isa:?} selected but not supported");
        assert_eq!(Some(isa), available().first().copied());
        assert!(dot_for(Isa::Scalar).is_some());
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512bw") && std::is_x86_feature_detected!("avx512vnni")
        {
            // The kernels above then ran on every x86 table.
            assert_eq!(
                available(),
                [Isa::Avx512Vnni, Isa::Avx512, Isa::Avx2, Isa::Scalar]
            );
        }
        if cfg!(target_arch = "x86_64") {
            assert!(dot_for(Isa::Neon).is_none());
        } else {
            assert!(dot_for(Isa::Avx2).is_none() && dot_for(Isa::Avx512).is_none());
            assert!(dot_for(Isa::Avx512Vnni).is_none());
        }
    }

    #[test]
    fn length_mismatch_panics_in_every_kernel() {
        let (a, b) = ([1.0f32; 17], [1.0f32; 16]);
        let mut kernels: Vec<(String, PairKernel)> =
            vec![("dot".into(), dot), ("l2_squared".into(), l2_squared)];
        for isa in available() {
            kernels.push((format!("{isa:?} dot"), dot_for(isa).unwrap()));
            kernels.push((format!("{isa:?} l2_squared"), l2_squared_for(isa).unwrap()));
        }
        for (name, kernel) in kernels {
            let result = std::panic::catch_unwind(|| kernel(&a, &b));
            assert!(
                result.is_err(),
                "{name} accepted slices of lengths 17 and 16"
            );
        }
    }
}
