/// How rows are compared, as seen by an index.
///
/// Cosine is not here: the engine normalises cosine vectors at insert and searches them with
/// `Dot`. Scores are "higher is better": `Dot` is the inner product, `L2` the negated squared
/// Euclidean distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Dot,
    L2,
}

impl Metric {
    #[inline]
    pub fn score(self, query: &[f32], row: &[f32]) -> f32 {
        match self {
            Metric::Dot => quiver_kernels::dot(query, row),
            Metric::L2 => -quiver_kernels::l2_squared(query, row),
        }
    }
}
