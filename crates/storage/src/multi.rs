//! `multi-<j>`: the token vectors of multi-vector `<j>` of a sealed segment (`<j>` is its
//! position among the schema's multi-vectors), all rows' tokens back to back.
//!
//! ```text
//! magic QVMULTI\n   meta [rows, tokens, dim, 0]
//! body: tokens × dim f32 LE, row-major (64-byte aligned: mapped and read in place),
//!       then (rows + 1) u64 LE token offsets: row r's tokens are offsets[r]..offsets[r + 1]
//! ```
//! The tokens come first so that they start at the body's 64-byte alignment; the offset
//! table after them is read byte-wise. [`open_multi`] checks the sizes, the table (starting
//! at 0, never decreasing, ending at `tokens`) and that every value is finite, so
//! [`MultiFile::row`] hands out what an upsert accepted.

use crate::error::{Error, Result};
use crate::frame::{self, FileKind, FramedWriter, MappedFile};
use std::path::Path;

pub const MULTI_KIND: FileKind = FileKind {
    magic: *b"QVMULTI\n",
    version: 1,
};

pub fn multi_file(j: usize) -> String {
    format!("multi-{j}")
}

/// Streams one multi-vector's rows into `multi-<j>`: tokens to disk as they come, offsets
/// kept in memory (8 bytes a row) and written at the end.
pub(crate) struct MultiWriter {
    file: FramedWriter,
    dim: usize,
    offsets: Vec<u64>,
    tokens: u64,
}

impl MultiWriter {
    pub fn create(path: &Path, dim: usize) -> Result<MultiWriter> {
        Ok(MultiWriter {
            file: FramedWriter::create(path, MULTI_KIND)?,
            dim,
            offsets: vec![0],
            tokens: 0,
        })
    }

    /// Appends one row: `tokens.len()` must be a multiple of the dimension (the caller's
    /// contract, asserted).
    pub fn push(&mut self, tokens: &[f32]) -> Result<()> {
        assert!(
            self.dim > 0 && tokens.len().is_multiple_of(self.dim),
            "a whole number of tokens of the declared dimension"
        );
        let mut bytes = Vec::with_capacity(tokens.len() * 4);
        for x in tokens {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        self.file.write(&bytes)?;
        self.tokens += (tokens.len() / self.dim) as u64;
        self.offsets.push(self.tokens);
        Ok(())
    }

    /// Writes the offset table and finishes the file; returns its size in bytes.
    pub fn finish(mut self) -> Result<u64> {
        let rows = (self.offsets.len() - 1) as u64;
        let mut table = Vec::with_capacity(self.offsets.len() * 8);
        for o in &self.offsets {
            table.extend_from_slice(&o.to_le_bytes());
        }
        self.file.write(&table)?;
        self.file.finish([rows, self.tokens, self.dim as u64, 0])
    }
}

/// A mapped `multi-<j>` file, checked at open.
#[derive(Debug)]
pub struct MultiFile {
    file: MappedFile,
    rows: usize,
    tokens: usize,
    dim: usize,
}

/// Maps `multi-<j>` and checks it against the expected rows and token dimension.
pub fn open_multi(path: &Path, rows: usize, dim: usize) -> Result<MultiFile> {
    let file = frame::map_file(path, MULTI_KIND)?;
    let [frows, ftokens, fdim, _] = file.header.meta;
    if frows != rows as u64 || fdim != dim as u64 {
        return Err(Error::corrupt(
            path,
            24,
            format!("holds {frows} rows of dimension {fdim}, the manifest says {rows} of {dim}"),
        ));
    }
    let overflow = || {
        Error::corrupt(
            path,
            24,
            format!("size of {rows} rows and {ftokens} tokens of dimension {dim} overflows"),
        )
    };
    let tokens = usize::try_from(ftokens).map_err(|_| overflow())?;
    let expected = tokens
        .checked_mul(dim)
        .and_then(|v| v.checked_mul(4))
        .and_then(|v| v.checked_add(rows.checked_add(1)?.checked_mul(8)?))
        .ok_or_else(overflow)?;
    if file.body().len() != expected {
        return Err(Error::corrupt(
            path,
            64,
            format!(
                "body is {} bytes, {rows} rows and {tokens} tokens of dimension {dim} take {expected}",
                file.body().len()
            ),
        ));
    }
    let m = MultiFile {
        file,
        rows,
        tokens,
        dim,
    };
    if m.values().len() != tokens * dim {
        return Err(Error::corrupt(path, 64, "token body is not 4-byte aligned"));
    }
    let table_at = 64 + (tokens * dim * 4) as u64;
    let mut prev = 0u64;
    for r in 0..=rows {
        let o = m
            .offset(r)
            .ok_or_else(|| Error::corrupt(path, table_at, "offset table ends early"))?;
        if o < prev || (r == 0 && o != 0) || (r == rows && o != ftokens) {
            return Err(Error::corrupt(
                path,
                table_at + 8 * r as u64,
                format!("token offset {o} of row {r} out of order or not ending at {ftokens}"),
            ));
        }
        prev = o;
    }
    if let Some(i) = m.values().iter().position(|x| !x.is_finite()) {
        return Err(Error::corrupt(
            path,
            64 + 4 * i as u64,
            format!("token {} has a value that is not finite", i / dim),
        ));
    }
    Ok(m)
}

impl MultiFile {
    /// Every token, row-major.
    fn values(&self) -> &[f32] {
        let body = self.file.body();
        let len = (self.tokens * self.dim * 4).min(body.len());
        let Some(values) = body.get(..len) else {
            return &[];
        };
        // SAFETY: f32 has no invalid bit patterns; `align_to` yields only a correctly aligned
        // middle slice. The body starts 64-byte aligned (page-aligned mapping + 64), so the
        // prefix is empty, which `open_multi` checks once.
        #[expect(unsafe_code, reason = "reinterpreting mapped little-endian f32 bytes")]
        let (_, floats, _) = unsafe { values.align_to::<f32>() };
        floats
    }

    fn offset(&self, r: usize) -> Option<u64> {
        let at = (self.tokens * self.dim * 4).checked_add(r.checked_mul(8)?)?;
        let b = self.file.body().get(at..at.checked_add(8)?)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Token vectors in the file.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Row `r`'s tokens, `n × dim` row-major (`None` past the rows).
    pub fn row(&self, r: usize) -> Option<&[f32]> {
        if r >= self.rows {
            return None;
        }
        let start = usize::try_from(self.offset(r)?).ok()?;
        let end = usize::try_from(self.offset(r + 1)?).ok()?;
        self.values()
            .get(start.checked_mul(self.dim)?..end.checked_mul(self.dim)?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn write(path: &Path, dim: usize, rows: &[Vec<f32>]) -> u64 {
        let mut w = MultiWriter::create(path, dim).unwrap();
        for r in rows {
            w.push(r).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn round_trip() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(multi_file(0));
        let rows = vec![
            vec![1.0, 2.0, 3.0, 4.0],
            vec![],
            vec![5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
        ];
        write(&path, 2, &rows);
        let m = open_multi(&path, 3, 2).unwrap();
        assert_eq!((m.rows(), m.tokens()), (3, 5));
        for (r, want) in rows.iter().enumerate() {
            assert_eq!(m.row(r).unwrap(), &want[..]);
        }
        assert!(m.row(3).is_none());
        assert!(open_multi(&path, 4, 2).is_err(), "row count");
        assert!(open_multi(&path, 3, 3).is_err(), "dimension");
    }

    /// A file whose frame is intact but whose table or values break the rules is refused,
    /// naming the problem.
    #[test]
    fn bad_contents_are_corrupt() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(multi_file(0));
        let body = |tokens: &[f32], offsets: &[u64]| {
            let mut b = Vec::new();
            for x in tokens {
                b.extend_from_slice(&x.to_le_bytes());
            }
            for o in offsets {
                b.extend_from_slice(&o.to_le_bytes());
            }
            b
        };
        let cases: [(&[f32], &[u64], u64, &str); 4] = [
            (&[1.0, 2.0], &[0, 2, 1], 2, "out of order"),
            (&[1.0, 2.0], &[1, 2], 2, "out of order"),
            (&[1.0, f32::NAN], &[0, 2], 2, "not finite"),
            (&[1.0, 2.0], &[0, 2], 3, "take"),
        ];
        for (tokens, offsets, meta_tokens, want) in cases {
            let rows = offsets.len() as u64 - 1;
            crate::frame::write_file(
                &path,
                MULTI_KIND,
                [rows, meta_tokens, 1, 0],
                &body(tokens, offsets),
            )
            .unwrap();
            let err = open_multi(&path, rows as usize, 1).unwrap_err().to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
    }
}
