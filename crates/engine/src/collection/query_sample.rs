//! A sample of queries per dense vector, from which LeanVec-OOD learns its projection at
//! every later seal and compaction (`quiver_index::leanvec`). Kept as a collection file,
//! `query-sample-<i>`, replaced atomically: a seal reads whichever whole sample is there.

use super::*;
use quiver_storage::frame::FileKind;

/// The query sample of vector `<i>`: `meta = [count, dim, 0, 0]`, body `count × dim` f32 LE,
/// row-major (normalised for cosine vectors, like stored rows).
pub(crate) const QUERY_SAMPLE_KIND: FileKind = FileKind {
    magic: *b"QVQSMPL\n",
    version: 1,
};

pub(super) fn query_sample_file(i: usize) -> String {
    format!("query-sample-{i}")
}

impl Collection {
    /// Stores `queries` as the query sample of dense vector `vector` (replacing any earlier
    /// one), for LeanVec-OOD: segments sealed or compacted from then on learn their projection
    /// from it; existing ones keep theirs. Each query is checked and normalised like a search
    /// query; more than [`quiver_index::leanvec::MAX_SAMPLE`] are thinned to that many, evenly
    /// spaced (the projection reads no more). Returns how many were stored. A bad query
    /// stores nothing.
    pub fn set_query_sample(&self, vector: &str, queries: &[Vec<f32>]) -> Result<usize> {
        self.check_usable()?;
        if queries.is_empty() {
            return Err(self.invalid(format!("the query sample of vector `{vector}` is empty")));
        }
        let max = quiver_index::leanvec::MAX_SAMPLE;
        let picked: Vec<&Vec<f32>> = match queries.len() <= max {
            true => queries.iter().collect(),
            false => (0..max)
                .filter_map(|k| queries.get(k * queries.len() / max))
                .collect(),
        };
        let mut body = Vec::new();
        let mut position = 0;
        let mut dim = 0;
        for (n, q) in picked.iter().enumerate() {
            let mut q = (*q).clone();
            position = self
                .prepare_vector(None, vector, &mut q)
                .map_err(|e| self.invalid(format!("query {n} of the sample: {e}")))?;
            dim = q.len();
            for v in &q {
                body.extend_from_slice(&v.to_le_bytes());
            }
        }
        qfs::atomic_write(
            &self.dir.join(query_sample_file(position)),
            &quiver_storage::frame::encode(
                QUERY_SAMPLE_KIND,
                [picked.len() as u64, dim as u64, 0, 0],
                &body,
            ),
        )?;
        Ok(picked.len())
    }
}

/// The query sample of vector `i` (`dim` wide) in collection directory `dir`, or `None` if
/// none was stored. A sample that does not verify or has another width is an error.
pub(super) fn read_query_sample(dir: &Path, i: usize, dim: usize) -> Result<Option<Vec<f32>>> {
    let path = dir.join(query_sample_file(i));
    if !path.exists() {
        return Ok(None);
    }
    let (header, body) = quiver_storage::frame::read_file(&path, QUERY_SAMPLE_KIND)?;
    let [count, width, ..] = header.meta;
    if width != dim as u64 || Some(body.len() as u64) != count.checked_mul(4 * width) {
        return Err(Error::Corrupt {
            path,
            message: format!(
                "{count} queries of dimension {width} in {} bytes, for a vector of dimension {dim}",
                body.len()
            ),
        });
    }
    Ok(Some(
        body.as_chunks::<4>()
            .0
            .iter()
            .map(|b| f32::from_le_bytes(*b))
            .collect(),
    ))
}
