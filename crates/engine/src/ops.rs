//! Operations as logged in the WAL: a compact binary encoding, little-endian.
//!
//! ```text
//! op        u8     1 = upsert, 2 = delete, 3 = upsert with sparse vectors, 4 = upsert with
//!                  sparse vectors and multi-vectors
//! upsert:   count u32, then per point:
//!             id        17 bytes (PointId::encode)
//!             nvec      u16, then per vector: name_len u16, name (UTF-8), dim u32, dim × f32
//!             (op 3, 4) nsparse u16, then per sparse vector: name_len u16, name (UTF-8),
//!                       nnz u32, nnz × u32 indices (strictly ascending), nnz × f32 values
//!             (op 4)  nmulti u16, then per multi-vector: name_len u16, name (UTF-8),
//!                       len u32, len × f32 (its tokens back to back, len = tokens × dim)
//!             payload   len u32, JSON object bytes (0 = empty payload)
//! delete:   count u32, then count × 17-byte ids
//! ```
//! Op 3 is written only for collections with sparse vectors, op 4 for those with
//! multi-vectors, whose manifests (versions 3 and 4) older builds refuse before they read the
//! log. A multi-vector's MUVERA encoding is logged as its dense vector, so replay does not
//! recompute it.
//! Vectors are logged after validation and cosine normalisation, so replay re-applies exactly
//! what was acknowledged.
//! Payload and vector updates are logged as upserts of the resulting whole points (no op code
//! of their own): replay never needs the row they replaced (`collection/update.rs`).

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use crate::point::SparseVector;
use quiver_storage::PointId;
use quiver_storage::point_id::ENCODED_LEN;

const UPSERT: u8 = 1;
const DELETE: u8 = 2;
const UPSERT_SPARSE: u8 = 3;
const UPSERT_MULTI: u8 = 4;

/// A validated point ready to apply: vectors and sparse vectors in schema order (every
/// sparse vector present, maybe empty, indices ascending), multi-vectors in schema order
/// (tokens back to back, cosine ones normalised; their encodings are in `vectors`), payload
/// as JSON bytes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PreparedPoint {
    pub id: PointId,
    pub vectors: Vec<(String, Vec<f32>)>,
    pub sparse: Vec<(String, SparseVector)>,
    pub multi: Vec<(String, Vec<f32>)>,
    pub payload: Vec<u8>,
}

impl PreparedPoint {
    /// Bytes the point takes in an encoded upsert.
    pub fn encoded_len(&self) -> usize {
        let vectors: usize = self
            .vectors
            .iter()
            .map(|(name, v)| 2 + name.len() + 4 + 4 * v.len())
            .sum();
        let sparse: usize = self
            .sparse
            .iter()
            .map(|(name, v)| 2 + name.len() + 4 + 4 * v.indices.len() + 4 * v.values.len())
            .sum();
        let multi: usize = self
            .multi
            .iter()
            .map(|(name, v)| 2 + name.len() + 4 + 4 * v.len())
            .sum();
        let headers = match (self.sparse.is_empty(), self.multi.is_empty()) {
            (_, false) => 4,
            (false, true) => 2,
            (true, true) => 0,
        };
        ENCODED_LEN + 2 + vectors + headers + sparse + multi + 4 + self.payload.len()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Upsert(Vec<PreparedPoint>),
    Delete(Vec<PointId>),
}

impl Op {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Op::Upsert(points) => {
                let with_multi = points.iter().any(|p| !p.multi.is_empty());
                let with_sparse = with_multi || points.iter().any(|p| !p.sparse.is_empty());
                out.push(match (with_sparse, with_multi) {
                    (_, true) => UPSERT_MULTI,
                    (true, false) => UPSERT_SPARSE,
                    (false, false) => UPSERT,
                });
                out.extend_from_slice(&(points.len() as u32).to_le_bytes());
                for p in points {
                    out.extend_from_slice(&p.id.encode());
                    out.extend_from_slice(&(p.vectors.len() as u16).to_le_bytes());
                    for (name, v) in &p.vectors {
                        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
                        out.extend_from_slice(name.as_bytes());
                        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                        for x in v {
                            out.extend_from_slice(&x.to_le_bytes());
                        }
                    }
                    if with_sparse {
                        out.extend_from_slice(&(p.sparse.len() as u16).to_le_bytes());
                        for (name, v) in &p.sparse {
                            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
                            out.extend_from_slice(name.as_bytes());
                            out.extend_from_slice(&(v.indices.len() as u32).to_le_bytes());
                            for i in &v.indices {
                                out.extend_from_slice(&i.to_le_bytes());
                            }
                            for x in &v.values {
                                out.extend_from_slice(&x.to_le_bytes());
                            }
                        }
                    }
                    if with_multi {
                        out.extend_from_slice(&(p.multi.len() as u16).to_le_bytes());
                        for (name, v) in &p.multi {
                            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
                            out.extend_from_slice(name.as_bytes());
                            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                            for x in v {
                                out.extend_from_slice(&x.to_le_bytes());
                            }
                        }
                    }
                    out.extend_from_slice(&(p.payload.len() as u32).to_le_bytes());
                    out.extend_from_slice(&p.payload);
                }
            }
            Op::Delete(ids) => {
                out.push(DELETE);
                out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
                for id in ids {
                    out.extend_from_slice(&id.encode());
                }
            }
        }
        out
    }

    /// Decodes a logged operation; the error says what is wrong and at which byte.
    pub fn decode(bytes: &[u8]) -> Result<Op, String> {
        let mut c = Cursor { bytes, at: 0 };
        let op = match c.u8()? {
            tag @ (UPSERT | UPSERT_SPARSE | UPSERT_MULTI) => {
                let n = c.u32()? as usize;
                let mut points = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    let id = c.id()?;
                    let nvec = c.u16()? as usize;
                    let mut vectors = Vec::with_capacity(nvec);
                    for _ in 0..nvec {
                        let name = c.name()?;
                        let dim = c.u32()? as usize;
                        vectors.push((name, c.f32s(dim)?));
                    }
                    let mut sparse = Vec::new();
                    if tag != UPSERT {
                        let nsparse = c.u16()? as usize;
                        sparse.reserve(nsparse);
                        for _ in 0..nsparse {
                            let name = c.name()?;
                            let nnz = c.u32()? as usize;
                            let indices = c.u32s(nnz)?;
                            let values = c.f32s(nnz)?;
                            sparse.push((name, SparseVector { indices, values }));
                        }
                    }
                    let mut multi = Vec::new();
                    if tag == UPSERT_MULTI {
                        let nmulti = c.u16()? as usize;
                        multi.reserve(nmulti);
                        for _ in 0..nmulti {
                            let name = c.name()?;
                            let len = c.u32()? as usize;
                            multi.push((name, c.f32s(len)?));
                        }
                    }
                    let plen = c.u32()? as usize;
                    let payload = c.take(plen)?.to_vec();
                    points.push(PreparedPoint {
                        id,
                        vectors,
                        sparse,
                        multi,
                        payload,
                    });
                }
                Op::Upsert(points)
            }
            DELETE => {
                let n = c.u32()? as usize;
                let mut ids = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    ids.push(c.id()?);
                }
                Op::Delete(ids)
            }
            other => return Err(format!("unknown operation code {other} at byte 0")),
        };
        if c.at != bytes.len() {
            return Err(c.err("trailing bytes after the operation"));
        }
        Ok(op)
    }
}

impl Op {
    /// Checks a decoded operation against the schema (replay trusts nothing from disk).
    pub fn check_against(&self, schema: &crate::schema::Schema) -> Result<(), String> {
        let Op::Upsert(points) = self else {
            return Ok(());
        };
        for p in points {
            if p.vectors.len() != schema.vectors.len() {
                return Err(format!(
                    "point {} has {} vectors, the schema {}",
                    p.id,
                    p.vectors.len(),
                    schema.vectors.len()
                ));
            }
            for ((name, v), (sname, kind)) in p.vectors.iter().zip(&schema.vectors) {
                if name != sname || v.len() != kind.dim() || v.iter().any(|x| !x.is_finite()) {
                    return Err(format!(
                        "point {}: vector `{name}` does not match the schema",
                        p.id
                    ));
                }
            }
            if p.sparse.len() != schema.sparse_vectors.len() {
                return Err(format!(
                    "point {} has {} sparse vectors, the schema {}",
                    p.id,
                    p.sparse.len(),
                    schema.sparse_vectors.len()
                ));
            }
            for ((name, v), sname) in p.sparse.iter().zip(schema.sparse_vectors.keys()) {
                let ascending = v.indices.windows(2).all(|w| matches!(w, [a, b] if a < b));
                if name != sname
                    || v.indices.len() != v.values.len()
                    || !ascending
                    || v.values.iter().any(|x| !x.is_finite())
                {
                    return Err(format!(
                        "point {}: sparse vector `{name}` does not match the schema or is not valid",
                        p.id
                    ));
                }
            }
            let multi: Vec<_> = schema
                .vectors
                .iter()
                .filter_map(|(name, k)| Some((name, k.multi_config()?)))
                .collect();
            if p.multi.len() != multi.len() {
                return Err(format!(
                    "point {} has {} multi-vectors, the schema {}",
                    p.id,
                    p.multi.len(),
                    multi.len()
                ));
            }
            for ((name, v), (sname, (dim, max_tokens, _))) in p.multi.iter().zip(multi) {
                let tokens = v.len() / dim;
                if name != sname
                    || !v.len().is_multiple_of(dim)
                    || !(1..=max_tokens).contains(&tokens)
                    || v.iter().any(|x| !x.is_finite())
                {
                    return Err(format!(
                        "point {}: multi-vector `{name}` does not match the schema or is not valid",
                        p.id
                    ));
                }
            }
        }
        Ok(())
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn err(&self, what: &str) -> String {
        format!("{what} at byte {}", self.at)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .ok_or_else(|| self.err("length overflows"))?;
        let s = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| self.err("record ends early"))?;
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let b = self.take(N)?;
        <[u8; N]>::try_from(b).map_err(|_| self.err("record ends early"))
    }

    fn u8(&mut self) -> Result<u8, String> {
        self.array::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Result<u16, String> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }

    fn name(&mut self) -> Result<String, String> {
        let len = self.u16()? as usize;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| self.err("vector name is not UTF-8"))
    }

    /// `n` little-endian 4-byte words (the length is checked against the record before
    /// anything is allocated).
    fn words(&mut self, n: usize) -> Result<impl Iterator<Item = [u8; 4]> + 'a, String> {
        let len = n
            .checked_mul(4)
            .ok_or_else(|| self.err("length overflows"))?;
        Ok(self
            .take(len)?
            .chunks_exact(4)
            .map(|b| <[u8; 4]>::try_from(b).unwrap_or([0xff; 4])))
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, String> {
        Ok(self.words(n)?.map(f32::from_le_bytes).collect())
    }

    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, String> {
        Ok(self.words(n)?.map(u32::from_le_bytes).collect())
    }

    fn id(&mut self) -> Result<PointId, String> {
        let b = self.array::<ENCODED_LEN>()?;
        PointId::decode(&b).ok_or_else(|| self.err("invalid point id"))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let op = Op::Upsert(vec![
            PreparedPoint {
                id: PointId::Num(3),
                vectors: vec![(String::new(), vec![1.0, -2.5]), ("img".into(), vec![0.25])],
                sparse: vec![],
                multi: vec![],
                payload: b"{\"a\":1}".to_vec(),
            },
            PreparedPoint {
                id: PointId::Uuid(77),
                vectors: vec![],
                sparse: vec![],
                multi: vec![],
                payload: vec![],
            },
        ]);
        assert_eq!(Op::decode(&op.encode()).unwrap(), op);
        let Op::Upsert(points) = &op else {
            unreachable!()
        };
        let lens: usize = points.iter().map(PreparedPoint::encoded_len).sum();
        assert_eq!(1 + 4 + lens, op.encode().len());
        let del = Op::Delete(vec![PointId::Num(1), PointId::Uuid(u128::MAX)]);
        assert_eq!(Op::decode(&del.encode()).unwrap(), del);
    }

    #[test]
    fn sparse_round_trip() {
        let op = Op::Upsert(vec![PreparedPoint {
            id: PointId::Num(5),
            vectors: vec![(String::new(), vec![1.0])],
            sparse: vec![
                (
                    "bm25".into(),
                    SparseVector::new(vec![2, 9, 40], vec![0.5, -1.0, 3.0]),
                ),
                ("splade".into(), SparseVector::default()),
            ],
            multi: vec![],
            payload: vec![],
        }]);
        let bytes = op.encode();
        assert_eq!(bytes[0], UPSERT_SPARSE);
        assert_eq!(Op::decode(&bytes).unwrap(), op);
        let Op::Upsert(points) = &op else {
            unreachable!()
        };
        assert_eq!(1 + 4 + points[0].encoded_len(), bytes.len());
        for cut in 0..bytes.len() {
            assert!(Op::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // Replay refuses what validation would have: unsorted or duplicate indices.
        let schema = crate::schema::Schema::dense(1, crate::schema::Distance::Dot)
            .with_sparse("bm25", Default::default())
            .with_sparse("splade", Default::default());
        assert!(op.check_against(&schema).is_ok());
        for bad in [vec![9, 2, 40], vec![2, 2, 40]] {
            let mut p = points[0].clone();
            p.sparse[0].1.indices = bad;
            let err = Op::Upsert(vec![p]).check_against(&schema).unwrap_err();
            assert!(err.contains("sparse vector `bm25`"), "{err}");
        }
    }

    #[test]
    fn multi_round_trip() {
        use crate::schema::{Distance, IndexKind, Schema, VectorKind};
        let mut schema = Schema::dense(1, Distance::Dot);
        let kind = VectorKind::multi(2, Distance::Dot, IndexKind::Flat);
        let fde_dim = kind.dim();
        schema.vectors.insert("colbert".into(), kind);
        let op = Op::Upsert(vec![PreparedPoint {
            id: PointId::Num(5),
            vectors: vec![
                (String::new(), vec![1.0]),
                ("colbert".into(), vec![0.5; fde_dim]),
            ],
            sparse: vec![],
            multi: vec![("colbert".into(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])],
            payload: b"{}".to_vec(),
        }]);
        let bytes = op.encode();
        assert_eq!(bytes[0], UPSERT_MULTI);
        assert_eq!(Op::decode(&bytes).unwrap(), op);
        let Op::Upsert(points) = &op else {
            unreachable!()
        };
        assert_eq!(1 + 4 + points[0].encoded_len(), bytes.len());
        for cut in 0..bytes.len() {
            assert!(Op::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(op.check_against(&schema).is_ok());
        // Replay refuses what validation would have: a partial token, no token, NaN.
        for bad in [vec![1.0, 2.0, 3.0], vec![], vec![1.0, f32::NAN]] {
            let mut p = points[0].clone();
            p.multi[0].1 = bad;
            let err = Op::Upsert(vec![p]).check_against(&schema).unwrap_err();
            assert!(err.contains("multi-vector `colbert`"), "{err}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Op::decode(&bytes);
        }

        #[test]
        fn every_truncation_is_an_error(cut in 0usize..60) {
            let op = Op::Upsert(vec![PreparedPoint {
                id: PointId::Num(9),
                vectors: vec![("v".into(), vec![1.0, 2.0, 3.0])],
                sparse: vec![],
                multi: vec![],
                payload: b"{}".to_vec(),
            }]);
            let bytes = op.encode();
            prop_assume!(cut < bytes.len());
            prop_assert!(Op::decode(&bytes[..cut]).is_err());
        }
    }
}
