//! Files of one sealed segment, `segments/<id>/`:
//!
//! ```text
//! vectors-<i>   magic QVVECT\x1a\n  meta [dim, rows]   body: rows × dim f32 LE, row-major, 64-byte aligned
//! ids           magic QVIDS\x1a\n\0 meta [rows]        body: rows × 17 bytes (PointId::encode)
//! payloads      magic QVPAYLD\n     meta [rows]        body: (rows + 1) u64 LE offsets into the bytes
//!                                                             that follow, then JSON objects back to back
//! deleted-<g>   magic QVDELET\n     meta [rows, count] body: ceil(rows / 64) u64 LE words, bit r = row r deleted
//! hnsw-<i>      magic QVHNSW\x1a\n  meta [rows]        body: the graph over vector <i> (quiver_index::hnsw)
//! lvq8-<i>      magic QVLVQ8\x1a\n  meta [rows, dim]   body: LVQ-8 codes of vector <i> (quiver_index::lvq)
//! lvq4-<i>      magic QVLVQ4\x1a\n  meta [rows, dim, residual]   body: LVQ-4 codes (quiver_index::lvq4)
//! leanvec-<i>   magic QVLEANV\n     meta [dim, dims]   body: LeanVec projection (quiver_index::leanvec);
//!                                                             lvq8-<i>/lvq4-<i> then code the
//!                                                             projected rows, dims wide
//! rescore-<i>   magic QVLVQ8\x1a\n  meta [rows, dim]   body: LVQ-8 codes of the full rows (LeanVec's
//!                                                             secondary)
//! fields        magic QVFIELD\n     meta [rows]        body: payload field indexes (quiver_filter::FieldIndexes)
//! sparse-<j>    magic QVSPARS\n     meta [rows, nnz]   body: (rows + 1) u64 LE entry offsets, nnz u32 LE
//!                                                             indices, nnz f32 LE values; a row's
//!                                                             indices strictly ascending
//! postings-<j>  magic QVPOSTG\n     meta [rows]        body: the inverted index of sparse vector <j>
//!                                                             (quiver_index::sparse::format)
//! multi-<j>     magic QVMULTI\n     meta [rows, tokens, dim]  body: multi-vector <j>'s tokens, then
//!                                                             (rows + 1) u64 LE token offsets
//!                                                             (`crate::multi`)
//! ```
//! `<j>` is a sparse vector's position among the schema's sparse vectors (for `multi-<j>`, a
//! multi-vector's among the multi-vectors).
//! `<i>` is the vector's position in the schema. Everything but `deleted-<g>` is written once
//! when the segment is built (in `<id>.tmp/`, then fsynced and renamed); deleted bitmaps get a
//! new generation each time the manifest is published with changed deletions.

use crate::error::{Error, IoContext, Result};
use crate::frame::{self, FileKind, FramedWriter, MappedFile};
use crate::fs::sync_dir;
use crate::multi::{MultiFile, MultiWriter, multi_file, open_multi};
use crate::point_id::{ENCODED_LEN, PointId};
use std::path::{Path, PathBuf};

pub const VECTORS_KIND: FileKind = FileKind {
    magic: *b"QVVECT\x1a\n",
    version: 1,
};
pub const IDS_KIND: FileKind = FileKind {
    magic: *b"QVIDS\x1a\n\0",
    version: 1,
};
pub const PAYLOADS_KIND: FileKind = FileKind {
    magic: *b"QVPAYLD\n",
    version: 1,
};
pub const DELETED_KIND: FileKind = FileKind {
    magic: *b"QVDELET\n",
    version: 1,
};

/// A graph index over vector `<i>` (body format: `quiver_index::hnsw::encode`).
pub const HNSW_KIND: FileKind = FileKind {
    magic: *b"QVHNSW\x1a\n",
    version: 1,
};

pub fn hnsw_file(i: usize) -> String {
    format!("hnsw-{i}")
}

/// LVQ-8 codes of vector `<i>` (body format: `quiver_index::lvq::Lvq8::to_bytes`).
pub const LVQ8_KIND: FileKind = FileKind {
    magic: *b"QVLVQ8\x1a\n",
    version: 1,
};

pub fn lvq8_file(i: usize) -> String {
    format!("lvq8-{i}")
}

/// LVQ-4 or LVQ-4x8 codes of vector `<i>` (body format: `quiver_index::lvq4::Lvq4::to_bytes`;
/// `meta = [rows, dim, 1 if residual codes, 0]`).
pub const LVQ4_KIND: FileKind = FileKind {
    magic: *b"QVLVQ4\x1a\n",
    version: 1,
};

pub fn lvq4_file(i: usize) -> String {
    format!("lvq4-{i}")
}

/// A LeanVec projection of vector `<i>` (body format:
/// `quiver_index::leanvec::Projection::to_bytes`; `meta = [dim, dims, 0, 0]`). Beside it,
/// `lvq8-<i>` or `lvq4-<i>` hold the codes of the *projected* rows (`dims` wide), and
/// `rescore-<i>` the LVQ-8 codes of the full rows when they are the secondary.
pub const LEANVEC_KIND: FileKind = FileKind {
    magic: *b"QVLEANV\n",
    version: 1,
};

pub fn leanvec_file(i: usize) -> String {
    format!("leanvec-{i}")
}

/// LVQ-8 codes of the full rows of vector `<i>` that a LeanVec search re-scores on (kind
/// [`LVQ8_KIND`], `meta = [rows, dim, 0, 0]`).
pub fn rescore_file(i: usize) -> String {
    format!("rescore-{i}")
}

/// Adds an index file to a segment directory that is not yet named by a manifest, and fsyncs
/// the file and the directory.
pub fn write_index_file(
    dir: &Path,
    name: &str,
    kind: FileKind,
    meta: [u64; 4],
    body: &[u8],
) -> Result<()> {
    frame::write_file(&dir.join(name), kind, meta, body)?;
    sync_dir(dir)
}

/// Reads and verifies an index file of a segment.
pub fn read_index_file(dir: &Path, name: &str, kind: FileKind) -> Result<(frame::Header, Vec<u8>)> {
    frame::read_file(&dir.join(name), kind)
}

/// Payload field indexes of a segment (body format: `quiver_filter::FieldIndexes::encode`).
/// Derived from the payloads: the only segment file that may be replaced after publishing
/// (atomically, when an index is declared on an existing collection), and whose loss loses
/// nothing (the engine rebuilds what is missing from the payloads).
pub const FIELDS_KIND: FileKind = FileKind {
    magic: *b"QVFIELD\n",
    version: 1,
};

pub const FIELDS_FILE: &str = "fields";

/// Replaces a published segment's `fields` file atomically and durably.
pub fn replace_fields_file(dir: &Path, rows: u64, body: &[u8]) -> Result<()> {
    crate::fs::atomic_write(
        &dir.join(FIELDS_FILE),
        &frame::encode(FIELDS_KIND, [rows, 0, 0, 0], body),
    )
}

/// Sparse vector `<j>` of every row: the source of truth its inverted index is built from.
pub const SPARSE_KIND: FileKind = FileKind {
    magic: *b"QVSPARS\n",
    version: 1,
};

pub fn sparse_file(j: usize) -> String {
    format!("sparse-{j}")
}

/// The inverted index of sparse vector `<j>` (body format: `quiver_index::sparse::format`).
/// Derived from `sparse-<j>`, like a graph from its vectors.
pub const POSTINGS_KIND: FileKind = FileKind {
    magic: *b"QVPOSTG\n",
    version: 1,
};

pub fn postings_file(j: usize) -> String {
    format!("postings-{j}")
}

pub fn vectors_file(i: usize) -> String {
    format!("vectors-{i}")
}

pub fn deleted_file(generation: u64) -> String {
    format!("deleted-{generation}")
}

/// Builds a segment directory under a temporary name; `finish` publishes it.
///
/// Rows are appended in offset order: `push_row` once per row, with one vector per schema
/// vector (in schema order) and the payload's JSON bytes.
pub struct SegmentWriter {
    tmp_dir: PathBuf,
    final_dir: PathBuf,
    dims: Vec<usize>,
    vectors: Vec<FramedWriter>,
    ids: FramedWriter,
    payload_offsets: Vec<u64>,
    payload_bytes: Vec<u8>,
    /// Per sparse vector: entry offsets, indices, values (kept in memory, as payloads are).
    sparse: Vec<SparseColumn>,
    /// Per multi-vector, its `multi-<j>` being streamed.
    multi: Vec<MultiWriter>,
    rows: u64,
}

#[derive(Default)]
struct SparseColumn {
    offsets: Vec<u64>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

/// One row's sparse vector: indices strictly ascending, one value each.
pub type SparseRow<'a> = (&'a [u32], &'a [f32]);

impl SegmentWriter {
    /// Starts segment `id` with one vector file per entry of `dims`, `sparse` sparse vector
    /// files, and one token file per entry of `multi` (the token dimensions).
    pub fn create(
        segments_dir: &Path,
        id: u64,
        dims: &[usize],
        sparse: usize,
        multi: &[usize],
    ) -> Result<Self> {
        let final_dir = segments_dir.join(id.to_string());
        let tmp_dir = segments_dir.join(format!("{id}.tmp"));
        if tmp_dir.exists() {
            std::fs::remove_dir_all(&tmp_dir).at(&tmp_dir)?;
        }
        std::fs::create_dir_all(&tmp_dir).at(&tmp_dir)?;
        let vectors = (0..dims.len())
            .map(|i| FramedWriter::create(&tmp_dir.join(vectors_file(i)), VECTORS_KIND))
            .collect::<Result<Vec<_>>>()?;
        let ids = FramedWriter::create(&tmp_dir.join("ids"), IDS_KIND)?;
        let multi = multi
            .iter()
            .enumerate()
            .map(|(j, &dim)| MultiWriter::create(&tmp_dir.join(multi_file(j)), dim))
            .collect::<Result<Vec<_>>>()?;
        Ok(SegmentWriter {
            tmp_dir,
            final_dir,
            dims: dims.to_vec(),
            vectors,
            ids,
            payload_offsets: vec![0],
            payload_bytes: Vec::new(),
            sparse: (0..sparse)
                .map(|_| SparseColumn {
                    offsets: vec![0],
                    ..SparseColumn::default()
                })
                .collect(),
            multi,
            rows: 0,
        })
    }

    pub fn push_row(
        &mut self,
        id: PointId,
        vectors: &[&[f32]],
        sparse: &[SparseRow<'_>],
        multi: &[&[f32]],
        payload: &[u8],
    ) -> Result<()> {
        assert_eq!(
            vectors.len(),
            self.dims.len(),
            "one vector per schema vector"
        );
        assert_eq!(
            sparse.len(),
            self.sparse.len(),
            "one sparse vector per schema sparse vector"
        );
        assert_eq!(
            multi.len(),
            self.multi.len(),
            "one token list per schema multi-vector"
        );
        for (w, tokens) in self.multi.iter_mut().zip(multi) {
            w.push(tokens)?;
        }
        for (column, (indices, values)) in self.sparse.iter_mut().zip(sparse) {
            assert_eq!(indices.len(), values.len(), "one value per sparse index");
            column.indices.extend_from_slice(indices);
            column.values.extend_from_slice(values);
            column.offsets.push(column.indices.len() as u64);
        }
        for ((w, v), &dim) in self.vectors.iter_mut().zip(vectors).zip(&self.dims) {
            assert_eq!(v.len(), dim, "vector dimension matches the schema");
            let mut bytes = Vec::with_capacity(dim * 4);
            for x in *v {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
            w.write(&bytes)?;
        }
        self.ids.write(&id.encode())?;
        self.payload_bytes.extend_from_slice(payload);
        self.payload_offsets.push(self.payload_bytes.len() as u64);
        self.rows += 1;
        Ok(())
    }

    /// Writes and fsyncs every file, renames the directory to its final name and fsyncs the
    /// parent. Returns the segment's directory and its size in bytes.
    pub fn finish(self) -> Result<(PathBuf, u64)> {
        let mut bytes = 0;
        for (w, &dim) in self.vectors.into_iter().zip(&self.dims) {
            bytes += w.finish([dim as u64, self.rows, 0, 0])?;
        }
        bytes += self.ids.finish([self.rows, 0, 0, 0])?;
        let mut payloads = FramedWriter::create(&self.tmp_dir.join("payloads"), PAYLOADS_KIND)?;
        let mut offsets = Vec::with_capacity(self.payload_offsets.len() * 8);
        for o in &self.payload_offsets {
            offsets.extend_from_slice(&o.to_le_bytes());
        }
        payloads.write(&offsets)?;
        payloads.write(&self.payload_bytes)?;
        bytes += payloads.finish([self.rows, 0, 0, 0])?;
        for (j, column) in self.sparse.iter().enumerate() {
            let mut w = FramedWriter::create(&self.tmp_dir.join(sparse_file(j)), SPARSE_KIND)?;
            let mut buf = Vec::with_capacity(column.offsets.len() * 8);
            for o in &column.offsets {
                buf.extend_from_slice(&o.to_le_bytes());
            }
            w.write(&buf)?;
            buf.clear();
            for i in &column.indices {
                buf.extend_from_slice(&i.to_le_bytes());
            }
            w.write(&buf)?;
            buf.clear();
            for v in &column.values {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            w.write(&buf)?;
            bytes += w.finish([self.rows, column.indices.len() as u64, 0, 0])?;
        }
        for w in self.multi {
            bytes += w.finish()?;
        }
        sync_dir(&self.tmp_dir)?;
        if self.final_dir.exists() {
            // Left over from a crash after the rename but before the manifest named it.
            std::fs::remove_dir_all(&self.final_dir).at(&self.final_dir)?;
        }
        std::fs::rename(&self.tmp_dir, &self.final_dir).at(&self.final_dir)?;
        if let Some(parent) = self.final_dir.parent() {
            sync_dir(parent)?;
        }
        Ok((self.final_dir, bytes))
    }
}

/// A mapped vector file: `rows × dim` f32 values.
#[derive(Debug)]
pub struct VectorFile {
    file: MappedFile,
    pub dim: usize,
    pub rows: usize,
}

impl VectorFile {
    pub fn as_f32(&self) -> &[f32] {
        let body = self.file.body();
        // SAFETY: f32 has no invalid bit patterns; `align_to` only yields a middle slice of
        // correctly aligned f32s. The body starts 64-byte aligned (page-aligned mapping + 64),
        // so prefix and suffix are empty, which `open_segment` checks once.
        #[expect(unsafe_code, reason = "reinterpreting mapped little-endian f32 bytes")]
        let (_, floats, _) = unsafe { body.align_to::<f32>() };
        floats
    }
}

/// The immutable files of a published segment, verified and mapped.
#[derive(Debug)]
pub struct SegmentFiles {
    pub dir: PathBuf,
    pub rows: usize,
    pub vectors: Vec<VectorFile>,
    /// Per sparse vector of the schema, its rows.
    pub sparse: Vec<SparseFile>,
    /// Per multi-vector of the schema, its rows' tokens.
    pub multi: Vec<MultiFile>,
    pub ids: Vec<PointId>,
    payloads: MappedFile,
    /// Bytes of the payload offset table, `8 × (rows + 1)`, checked at open.
    payload_table_len: usize,
}

/// Opens a published segment, checking every file against the expected row count and dims.
///
/// Sizes derived from the row count and dimensions (`rows × dim × 4`, `rows × 17`,
/// `8 × (rows + 1)`) are computed with checked arithmetic: a count too large for them is
/// `Corrupt`, naming the file and the quantity, never a wrapped size.
pub fn open_segment(
    dir: &Path,
    rows: u64,
    dims: &[usize],
    sparse: usize,
    multi: &[usize],
) -> Result<SegmentFiles> {
    let rows_usize = usize::try_from(rows)
        .map_err(|_| Error::corrupt(dir, 0, format!("row count {rows} too large")))?;
    let vectors = dims
        .iter()
        .enumerate()
        .map(|(i, &dim)| open_vectors(&dir.join(vectors_file(i)), rows, dim))
        .collect::<Result<Vec<_>>>()?;
    let sparse = (0..sparse)
        .map(|j| open_sparse(&dir.join(sparse_file(j)), rows_usize))
        .collect::<Result<Vec<_>>>()?;
    let multi = multi
        .iter()
        .enumerate()
        .map(|(j, &dim)| open_multi(&dir.join(multi_file(j)), rows_usize, dim))
        .collect::<Result<Vec<_>>>()?;
    let ids = read_ids(&dir.join("ids"), rows)?;
    let payload_path = dir.join("payloads");
    let payloads = frame::map_file(&payload_path, PAYLOADS_KIND)?;
    if payloads.header.meta[0] != rows {
        return Err(Error::corrupt(
            &payload_path,
            24,
            "offset table does not match the row count",
        ));
    }
    // Validated once here so that `payload` can trust the table.
    let payload_table_len = check_payload_table(&payload_path, rows_usize, payloads.body())?;
    Ok(SegmentFiles {
        dir: dir.to_path_buf(),
        rows: rows_usize,
        vectors,
        sparse,
        multi,
        ids,
        payloads,
        payload_table_len,
    })
}

/// Maps `vectors-<i>` and checks it holds `rows × dim` f32 values, aligned.
fn open_vectors(path: &Path, rows: u64, dim: usize) -> Result<VectorFile> {
    let file = frame::map_file(path, VECTORS_KIND)?;
    let [fdim, frows, ..] = file.header.meta;
    if fdim != dim as u64 || frows != rows {
        return Err(Error::corrupt(
            path,
            24,
            format!("holds {frows} rows of dimension {fdim}, manifest expects {rows} of {dim}"),
        ));
    }
    let overflow = || {
        Error::corrupt(
            path,
            24,
            format!("size of {rows} rows × dimension {dim} × 4 bytes overflows"),
        )
    };
    let rows_usize = usize::try_from(rows).map_err(|_| overflow())?;
    let values = rows_usize.checked_mul(dim).ok_or_else(overflow)?;
    let body_len = values.checked_mul(4).ok_or_else(overflow)?;
    if file.body().len() != body_len {
        return Err(Error::corrupt(
            path,
            64,
            "body length does not match rows × dim",
        ));
    }
    let v = VectorFile {
        file,
        dim,
        rows: rows_usize,
    };
    if v.as_f32().len() != values {
        return Err(Error::corrupt(
            path,
            64,
            "vector body is not 4-byte aligned",
        ));
    }
    Ok(v)
}

/// A mapped `sparse-<j>` file, checked at open: every row's indices strictly ascending and
/// its values finite, so [`SparseFile::row`] hands out what an upsert accepted.
#[derive(Debug)]
pub struct SparseFile {
    file: MappedFile,
    rows: usize,
    nnz: usize,
}

/// Maps `sparse-<j>` and checks the offset table, the sizes and every row.
fn open_sparse(path: &Path, rows: usize) -> Result<SparseFile> {
    let file = frame::map_file(path, SPARSE_KIND)?;
    let [frows, fnnz, ..] = file.header.meta;
    if frows != rows as u64 {
        return Err(Error::corrupt(
            path,
            24,
            format!("holds {frows} rows, the manifest says {rows}"),
        ));
    }
    let overflow = || {
        Error::corrupt(
            path,
            24,
            format!("size of {rows} rows and {fnnz} entries overflows"),
        )
    };
    let nnz = usize::try_from(fnnz).map_err(|_| overflow())?;
    let expected = rows
        .checked_add(1)
        .and_then(|r| r.checked_mul(8))
        .and_then(|t| t.checked_add(nnz.checked_mul(8)?))
        .ok_or_else(overflow)?;
    if file.body().len() != expected {
        return Err(Error::corrupt(
            path,
            64,
            format!(
                "body is {} bytes, {rows} rows and {nnz} entries take {expected}",
                file.body().len()
            ),
        ));
    }
    let s = SparseFile { file, rows, nnz };
    let mut prev = 0u64;
    for r in 0..=rows {
        let o = s
            .offset(r)
            .ok_or_else(|| Error::corrupt(path, 64, "offset table ends early"))?;
        if o < prev || o > fnnz || (r == 0 && o != 0) || (r == rows && o != fnnz) {
            return Err(Error::corrupt(
                path,
                64 + 8 * r as u64,
                format!("entry offset {o} of row {r} out of order or not ending at {fnnz}"),
            ));
        }
        prev = o;
    }
    for r in 0..rows {
        let (indices, values) = s
            .row(r)
            .ok_or_else(|| Error::corrupt(path, 64, format!("row {r} out of bounds")))?;
        if indices.windows(2).any(|w| matches!(w, [a, b] if a >= b)) {
            return Err(Error::corrupt(
                path,
                64,
                format!("row {r}: indices not strictly ascending"),
            ));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::corrupt(
                path,
                64,
                format!("row {r}: a value is not finite"),
            ));
        }
    }
    Ok(s)
}

impl SparseFile {
    fn offset(&self, r: usize) -> Option<u64> {
        let at = r.checked_mul(8)?;
        let b = self.file.body().get(at..at.checked_add(8)?)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    /// Rows in the file.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row `r`'s indices and values (`None` past the rows).
    pub fn row(&self, r: usize) -> Option<(Vec<u32>, Vec<f32>)> {
        if r >= self.rows {
            return None;
        }
        let start = usize::try_from(self.offset(r)?).ok()?;
        let end = usize::try_from(self.offset(r + 1)?).ok()?;
        let table = self.rows.checked_add(1)?.checked_mul(8)?;
        let body = self.file.body();
        let words =
            |base: usize| body.get(base.checked_add(start * 4)?..base.checked_add(end * 4)?);
        let indices = words(table)?
            .chunks_exact(4)
            .map(|c| c.try_into().map(u32::from_le_bytes).unwrap_or(0))
            .collect();
        let values = words(table.checked_add(self.nnz.checked_mul(4)?)?)?
            .chunks_exact(4)
            .map(|c| c.try_into().map(f32::from_le_bytes).unwrap_or(f32::NAN))
            .collect();
        Some((indices, values))
    }
}

/// Reads `ids` and checks it holds exactly `rows` valid ids.
fn read_ids(path: &Path, rows: u64) -> Result<Vec<PointId>> {
    let (h, body) = frame::read_file(path, IDS_KIND)?;
    let expected_len = usize::try_from(rows)
        .ok()
        .and_then(|r| r.checked_mul(ENCODED_LEN))
        .ok_or_else(|| {
            Error::corrupt(
                path,
                24,
                format!("size of {rows} rows × {ENCODED_LEN}-byte ids overflows"),
            )
        })?;
    if h.meta[0] != rows || body.len() != expected_len {
        return Err(Error::corrupt(
            path,
            24,
            "row count does not match the manifest",
        ));
    }
    // The capacity is bounded by the bytes actually read, not by a number from the header.
    let mut ids = Vec::with_capacity(body.len() / ENCODED_LEN);
    for (r, chunk) in body.chunks_exact(ENCODED_LEN).enumerate() {
        let at = 64 + (r * ENCODED_LEN) as u64;
        let enc: &[u8; ENCODED_LEN] = chunk
            .try_into()
            .map_err(|_| Error::corrupt(path, at, "id record of the wrong size"))?;
        let id = PointId::decode(enc).ok_or_else(|| Error::corrupt(path, at, "unknown id tag"))?;
        ids.push(id);
    }
    Ok(ids)
}

/// Checks the payload offset table at the start of `body`: `rows + 1` offsets, the first 0,
/// none decreasing, none beyond the data that follows the table. Returns the table's length
/// in bytes.
fn check_payload_table(path: &Path, rows: usize, body: &[u8]) -> Result<usize> {
    let table_len = rows
        .checked_add(1)
        .and_then(|n| n.checked_mul(8))
        .ok_or_else(|| {
            Error::corrupt(
                path,
                24,
                format!("size of the offset table ({rows} + 1 rows × 8 bytes) overflows"),
            )
        })?;
    let Some((table, data)) = body.split_at_checked(table_len) else {
        return Err(Error::corrupt(
            path,
            64,
            "offset table does not match the row count",
        ));
    };
    let data_len = data.len() as u64;
    let mut prev = 0;
    for (r, entry) in table.chunks_exact(8).enumerate() {
        let at = 64 + 8 * r as u64;
        let o = <[u8; 8]>::try_from(entry)
            .map(u64::from_le_bytes)
            .map_err(|_| Error::corrupt(path, at, "offset entry of the wrong size"))?;
        if o < prev || o > data_len || (r == 0 && o != 0) {
            return Err(Error::corrupt(
                path,
                at,
                format!("payload offset {o} out of order or beyond the data ({data_len} bytes)"),
            ));
        }
        prev = o;
    }
    Ok(table_len)
}

impl SegmentFiles {
    fn payload_offset(&self, r: usize) -> Option<usize> {
        let at = r.checked_mul(8)?;
        let b = self.payloads.body().get(at..at.checked_add(8)?)?;
        usize::try_from(u64::from_le_bytes(b.try_into().ok()?)).ok()
    }

    /// JSON bytes of row `r`'s payload (empty when the point has none, or `r` is out of range).
    pub fn payload(&self, r: usize) -> &[u8] {
        if r >= self.rows {
            return &[];
        }
        let range = || {
            let start = self
                .payload_table_len
                .checked_add(self.payload_offset(r)?)?;
            let end = self
                .payload_table_len
                .checked_add(self.payload_offset(r + 1)?)?;
            self.payloads.body().get(start..end)
        };
        range().unwrap_or(&[])
    }
}

/// Writes deleted bitmap generation `generation` into a segment directory and fsyncs it.
pub fn write_deleted(dir: &Path, generation: u64, rows: u64, words: &[u64]) -> Result<()> {
    let mut body = Vec::with_capacity(words.len() * 8);
    let mut count = 0u64;
    for w in words {
        body.extend_from_slice(&w.to_le_bytes());
        count += u64::from(w.count_ones());
    }
    let path = dir.join(deleted_file(generation));
    frame::write_file(&path, DELETED_KIND, [rows, count, 0, 0], &body)?;
    sync_dir(dir)
}

/// Reads a deleted bitmap, checking it covers exactly `rows` rows.
pub fn read_deleted(dir: &Path, generation: u64, rows: u64) -> Result<Vec<u64>> {
    let path = dir.join(deleted_file(generation));
    let (h, body) = frame::read_file(&path, DELETED_KIND)?;
    // Cannot overflow (at most 2^61 bytes), but checked like every size taken from disk.
    let expected_len = usize::try_from(rows.div_ceil(64))
        .ok()
        .and_then(|w| w.checked_mul(8))
        .ok_or_else(|| {
            Error::corrupt(
                &path,
                24,
                format!("size of a bitmap of {rows} rows overflows"),
            )
        })?;
    if h.meta[0] != rows || body.len() != expected_len {
        return Err(Error::corrupt(
            &path,
            24,
            "bitmap size does not match the segment's rows",
        ));
    }
    let words: Vec<u64> = body
        .chunks_exact(8)
        .map(|c| c.try_into().map(u64::from_le_bytes).unwrap_or(0))
        .collect();
    let count: u64 = words.iter().map(|w| u64::from(w.count_ones())).sum();
    let stray = !rows.is_multiple_of(64) && words.last().is_some_and(|w| w >> (rows % 64) != 0);
    if count != h.meta[1] || stray {
        return Err(Error::corrupt(
            &path,
            24,
            "bitmap contents do not match its header",
        ));
    }
    Ok(words)
}

/// Removes every `deleted-<g>` file in `dir` except generation `keep`.
pub fn remove_other_deleted(dir: &Path, keep: u64) -> Result<()> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(g) = name
            .strip_prefix("deleted-")
            .and_then(|g| g.parse::<u64>().ok())
            && g != keep
        {
            std::fs::remove_file(&path).at(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_open_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(d.path(), 3, &[2, 3], 1, &[2]).unwrap();
        for r in 0..5u64 {
            let a = [r as f32, 1.0];
            let b = [0.5, r as f32, 2.0];
            let idx: Vec<u32> = (0..r as u32).map(|i| i * 3).collect();
            let val: Vec<f32> = idx.iter().map(|&i| i as f32 + 0.5).collect();
            let payload = if r % 2 == 0 {
                format!("{{\"r\":{r}}}")
            } else {
                String::new()
            };
            let tokens: Vec<f32> = (0..2 * r).map(|i| i as f32).collect();
            w.push_row(
                PointId::Num(r * 10),
                &[&a, &b],
                &[(&idx, &val)],
                &[&tokens],
                payload.as_bytes(),
            )
            .unwrap();
        }
        let (dir, _) = w.finish().unwrap();
        assert_eq!(dir, d.path().join("3"));
        let s = open_segment(&dir, 5, &[2, 3], 1, &[2]).unwrap();
        assert_eq!(s.multi[0].row(3).unwrap(), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!(s.multi[0].row(0).unwrap().is_empty());
        assert_eq!(
            s.sparse[0].row(3).unwrap(),
            (vec![0, 3, 6], vec![0.5, 3.5, 6.5])
        );
        assert_eq!(s.sparse[0].row(0).unwrap(), (vec![], vec![]));
        assert!(s.sparse[0].row(5).is_none());
        assert_eq!(s.ids[4], PointId::Num(40));
        assert_eq!(&s.vectors[1].as_f32()[3..6], &[0.5, 1.0, 2.0]);
        assert_eq!(s.payload(2), b"{\"r\":2}");
        assert_eq!(s.payload(1), b"");
        assert_eq!(s.payload(5), b"", "row beyond the segment");
        assert_eq!(s.payload(usize::MAX), b"", "row beyond the segment");
        assert!(open_segment(&dir, 6, &[2, 3], 1, &[2]).is_err());
        assert!(open_segment(&dir, 5, &[2, 4], 1, &[2]).is_err());
        assert!(
            open_segment(&dir, 5, &[2, 3], 2, &[2]).is_err(),
            "a sparse file is missing"
        );
        assert!(
            open_segment(&dir, 5, &[2, 3], 1, &[2, 2]).is_err(),
            "a multi-vector file is missing"
        );
        assert!(
            open_segment(&dir, 5, &[2, 3], 1, &[3]).is_err(),
            "token dim"
        );

        write_deleted(&dir, 1, 5, &[0b10010]).unwrap();
        assert_eq!(read_deleted(&dir, 1, 5).unwrap(), vec![0b10010]);
        write_deleted(&dir, 2, 5, &[0b100000]).unwrap(); // bit beyond the rows
        assert!(read_deleted(&dir, 2, 5).is_err());
        remove_other_deleted(&dir, 1).unwrap();
        assert!(!dir.join(deleted_file(2)).exists());
    }

    /// `err` is `Corrupt`, names `path` and says a size overflowed.
    fn assert_overflow(err: Error, path: &Path) {
        match &err {
            Error::Corrupt {
                path: p, message, ..
            } => {
                assert_eq!(p, path, "{err}");
                assert!(message.contains("overflows"), "{err}");
            }
            other => panic!("expected Corrupt, got {other}"),
        }
    }

    #[test]
    fn vector_size_overflow_is_corrupt() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(vectors_file(0));
        // Each pair's rows × dim × 4 exceeds 2^64; (2^62, 4) wraps to exactly 0, which an
        // empty body would match.
        for (rows, dim) in [(1u64 << 62, 4usize), (u64::MAX, 1), (1 << 40, 1 << 24)] {
            frame::write_file(&path, VECTORS_KIND, [dim as u64, rows, 0, 0], &[]).unwrap();
            let err = open_segment(d.path(), rows, &[dim], 0, &[]).unwrap_err();
            assert_overflow(err, &path);
        }
    }

    #[test]
    fn id_count_overflow_is_corrupt() {
        // 17 × ROWS wraps to 1 (mod 2^64): a 1-byte body would match a wrapped product.
        const ROWS: u64 = 0xf0f0_f0f0_f0f0_f0f1;
        assert_eq!(ROWS.wrapping_mul(ENCODED_LEN as u64), 1);
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("ids");
        frame::write_file(&path, IDS_KIND, [ROWS, 0, 0, 0], &[0]).unwrap();
        let err = open_segment(d.path(), ROWS, &[], 0, &[]).unwrap_err();
        assert_overflow(err, &path);
    }

    #[test]
    fn payload_table_overflow_is_corrupt() {
        let path = Path::new("payloads");
        // 8 × (usize::MAX / 8 + 1) wraps to 0 and 8 × (usize::MAX + 1) overflows at the +1.
        for rows in [usize::MAX / 8, usize::MAX] {
            let err = check_payload_table(path, rows, &[0; 8]).unwrap_err();
            assert_overflow(err, path);
        }
        assert_eq!(check_payload_table(path, 0, &[0; 8]).unwrap(), 8);
    }

    /// A sparse file whose frame is intact but whose rows break the rules is refused with
    /// the file and the row named.
    #[test]
    fn bad_sparse_rows_are_corrupt() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(sparse_file(0));
        let body = |offsets: &[u64], indices: &[u32], values: &[f32]| {
            let mut b = Vec::new();
            offsets
                .iter()
                .for_each(|o| b.extend_from_slice(&o.to_le_bytes()));
            indices
                .iter()
                .for_each(|i| b.extend_from_slice(&i.to_le_bytes()));
            values
                .iter()
                .for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
            b
        };
        /// Offsets, indices, values, and what the error says.
        type Case<'a> = (&'a [u64], &'a [u32], &'a [f32], &'a str);
        let cases: [Case<'_>; 4] = [
            (&[0, 2], &[4, 4], &[1.0, 2.0], "ascending"),
            (&[0, 2], &[1, 4], &[1.0, f32::NAN], "finite"),
            (&[0, 1], &[1, 4], &[1.0, 2.0], "not ending"),
            (&[1, 2], &[1, 4], &[1.0, 2.0], "out of order"),
        ];
        for (offsets, indices, values, says) in cases {
            frame::write_file(
                &path,
                SPARSE_KIND,
                [1, indices.len() as u64, 0, 0],
                &body(offsets, indices, values),
            )
            .unwrap();
            let err = open_sparse(&path, 1).unwrap_err();
            assert!(
                matches!(&err, Error::Corrupt { path: p, message, .. } if *p == path && message.contains(says)),
                "{says}: {err}"
            );
        }
        frame::write_file(
            &path,
            SPARSE_KIND,
            [1, 2, 0, 0],
            &body(&[0, 2], &[1, 4], &[1.0, 2.0]),
        )
        .unwrap();
        assert_eq!(
            open_sparse(&path, 1).unwrap().row(0).unwrap(),
            (vec![1, 4], vec![1.0, 2.0])
        );
    }

    #[test]
    fn huge_bitmap_row_count_is_corrupt() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(deleted_file(1));
        frame::write_file(&path, DELETED_KIND, [u64::MAX, 0, 0, 0], &[]).unwrap();
        let err = read_deleted(d.path(), 1, u64::MAX).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { path: p, .. } if *p == path),
            "{err}"
        );
    }
}
