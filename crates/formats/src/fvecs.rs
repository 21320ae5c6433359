//! TEXMEX `.fvecs` / `.ivecs` files, the format of the SIFT, GIST and Deep1B benchmark sets.
//!
//! # Format
//!
//! No header, no footer; numbers are little-endian. Row `r` starts at byte `r · (4 + 4·d)`:
//!
//! ```text
//! +--------+--------+--------+-----+----------+
//! | d: i32 |   x0   |   x1   | ... |  x(d-1)  |
//! +--------+--------+--------+-----+----------+
//!  4 bytes  4 bytes each: f32 in .fvecs, i32 in .ivecs
//! ```
//!
//! # What the reader checks
//!
//! - `d > 0`, and every row repeats the `d` of row 0 ([`Error::DimMismatch`] names the row).
//! - The file size is a whole number of rows; otherwise [`Error::Truncated`] names the first
//!   incomplete row. Both are checked when the file is opened, so the row count is exact
//!   before the first row is returned and no row of a bad file is ever returned, except
//!   when dimensions differ in a file whose size happens to be a whole number of rows of
//!   row 0's dimension: then rows before the differing one are returned first.
//! - An empty file has no rows and no dimension.
//!
//! Values are not checked (NaN and infinities pass through).

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use crate::error::{Error, Location};

/// Size of the read buffer: large enough that a row of a few thousand dimensions is one copy.
const READ_BUFFER: usize = 256 * 1024;

/// A 4-byte little-endian number type stored in a `*vecs` file: `f32` (`.fvecs`) or `i32`
/// (`.ivecs`). Sealed.
pub trait VecsElement: Copy + sealed::Sealed {
    /// Decodes one value from its little-endian bytes.
    fn from_le_bytes(bytes: [u8; 4]) -> Self;
    /// Encodes one value as little-endian bytes.
    fn to_le_bytes(self) -> [u8; 4];
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i32 {}
}

impl VecsElement for f32 {
    fn from_le_bytes(bytes: [u8; 4]) -> Self {
        f32::from_le_bytes(bytes)
    }
    fn to_le_bytes(self) -> [u8; 4] {
        f32::to_le_bytes(self)
    }
}

impl VecsElement for i32 {
    fn from_le_bytes(bytes: [u8; 4]) -> Self {
        i32::from_le_bytes(bytes)
    }
    fn to_le_bytes(self) -> [u8; 4] {
        i32::to_le_bytes(self)
    }
}

/// Streams the rows of a `*vecs` file in order. After an error it is finished.
pub(crate) struct VecsReader<T> {
    path: PathBuf,
    file: BufReader<File>,
    /// `None` exactly when the file is empty.
    dim: Option<usize>,
    rows: u64,
    next_row: u64,
    /// `4 + 4 · dim`.
    row_bytes: u64,
    file_len: u64,
    body: Vec<u8>,
    failed: bool,
    element: PhantomData<T>,
}

impl<T: VecsElement> VecsReader<T> {
    /// Opens `path` and validates its layout (see the module documentation).
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        let mut file = File::open(path).map_err(Error::io(path))?;
        let file_len = file.metadata().map_err(Error::io(path))?.len();
        let (dim, rows, row_bytes) = if file_len == 0 {
            (None, 0, 0)
        } else {
            let first = read_dim_at(&mut file, path, 0, 0, file_len)?;
            let dim = positive_dim(path, first, 0, 0)?;
            let row_bytes = 4 + 4 * dim as u64;
            if !file_len.is_multiple_of(row_bytes) {
                return Err(diagnose_size(&mut file, path, file_len, dim, row_bytes));
            }
            file.seek(SeekFrom::Start(0)).map_err(Error::io(path))?;
            (Some(dim), file_len / row_bytes, row_bytes)
        };
        Ok(VecsReader {
            path: path.to_path_buf(),
            file: BufReader::with_capacity(READ_BUFFER, file),
            dim,
            rows,
            next_row: 0,
            row_bytes,
            file_len,
            body: Vec::new(),
            failed: false,
            element: PhantomData,
        })
    }

    pub(crate) fn dim(&self) -> Option<usize> {
        self.dim
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    pub(crate) fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Bytes of the file consumed so far (whole rows).
    pub(crate) fn bytes_read(&self) -> u64 {
        self.next_row * self.row_bytes
    }

    /// Appends the next row's `dim` values to `out` and returns its 0-based index, or `None`
    /// at the end of the file. On error nothing is appended.
    pub(crate) fn read_row_into(&mut self, out: &mut Vec<T>) -> Result<Option<u64>, Error> {
        if self.failed {
            return Ok(None);
        }
        let result = self.read_row_inner(out);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn read_row_inner(&mut self, out: &mut Vec<T>) -> Result<Option<u64>, Error> {
        let Some(dim) = self.dim else {
            return Ok(None);
        };
        if self.next_row >= self.rows {
            return Ok(None);
        }
        let row = self.next_row;
        let offset = row * self.row_bytes;
        let mut head = [0u8; 4];
        self.file
            .read_exact(&mut head)
            .map_err(Error::io(&self.path))?;
        let got = positive_dim(&self.path, i32::from_le_bytes(head), row, offset)?;
        if got != dim {
            return Err(Error::DimMismatch {
                path: self.path.clone(),
                location: Location::Row { row, offset },
                expected: dim,
                got,
            });
        }
        self.body.resize(4 * dim, 0);
        self.file
            .read_exact(&mut self.body)
            .map_err(Error::io(&self.path))?;
        let (values, _) = self.body.as_chunks::<4>();
        out.extend(values.iter().map(|bytes| T::from_le_bytes(*bytes)));
        self.next_row += 1;
        Ok(Some(row))
    }
}

/// Reads the 4-byte dimension field of row `row`, which starts at `offset`, or reports the
/// file as truncated there if fewer than 4 bytes are left.
fn read_dim_at(
    file: &mut File,
    path: &Path,
    row: u64,
    offset: u64,
    file_len: u64,
) -> Result<i32, Error> {
    let left = file_len.saturating_sub(offset);
    if left < 4 {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            row,
            offset,
            expected: 4,
            actual: left,
        });
    }
    let mut head = [0u8; 4];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut head))
        .map_err(Error::io(path))?;
    Ok(i32::from_le_bytes(head))
}

/// Checks a dimension field read at row `row`, byte `offset`.
fn positive_dim(path: &Path, d: i32, row: u64, offset: u64) -> Result<usize, Error> {
    usize::try_from(d).ok().filter(|&d| d > 0).ok_or_else(|| {
        Error::malformed(
            path,
            Location::Row { row, offset },
            format!("dimension field is {d}; it must be positive"),
        )
    })
}

/// Explains why a file's size is not a whole number of rows of row 0's dimension: either a
/// later row declares another dimension (the first such row is reported), or the file is
/// cut inside its last row. Reads only the 4-byte header of each row, so it costs one seek
/// per row; it runs only for files already known to be bad.
fn diagnose_size(file: &mut File, path: &Path, file_len: u64, dim: usize, row_bytes: u64) -> Error {
    let whole_rows = file_len / row_bytes;
    for row in 1..=whole_rows {
        let offset = row * row_bytes;
        if file_len - offset < 4 {
            break;
        }
        let d = match read_dim_at(file, path, row, offset, file_len) {
            Ok(d) => d,
            Err(e) => return e,
        };
        match positive_dim(path, d, row, offset) {
            Ok(got) if got == dim => {}
            Ok(got) => {
                return Error::DimMismatch {
                    path: path.to_path_buf(),
                    location: Location::Row { row, offset },
                    expected: dim,
                    got,
                };
            }
            Err(e) => return e,
        }
    }
    let offset = whole_rows * row_bytes;
    Error::Truncated {
        path: path.to_path_buf(),
        row: whole_rows,
        offset,
        expected: row_bytes,
        actual: file_len - offset,
    }
}

/// Writes a `*vecs` file row by row: `.fvecs` for `VecsWriter<f32>`, `.ivecs` for
/// `VecsWriter<i32>`.
///
/// The file is created (or truncated) by [`VecsWriter::create`]. Call
/// [`VecsWriter::finish`] to flush and learn about write errors; dropping the writer
/// flushes too but ignores errors. The file is written in place, not atomically.
pub struct VecsWriter<T> {
    path: PathBuf,
    file: BufWriter<File>,
    dim: usize,
    head: [u8; 4],
    row: Vec<u8>,
    rows: u64,
    element: PhantomData<T>,
}

impl<T: VecsElement> VecsWriter<T> {
    /// Creates `path` for rows of dimension `dim` (`0 < dim ≤ i32::MAX`).
    pub fn create(path: &Path, dim: usize) -> Result<Self, Error> {
        let shape_error = |reason| Error::InvalidShape {
            path: path.to_path_buf(),
            len: 0,
            dim,
            reason,
        };
        if dim == 0 {
            return Err(shape_error("the dimension must be positive"));
        }
        let head = i32::try_from(dim)
            .map_err(|_| shape_error("the dimension must fit in an i32"))?
            .to_le_bytes();
        let file = File::create(path).map_err(Error::io(path))?;
        Ok(VecsWriter {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(READ_BUFFER, file),
            dim,
            head,
            row: Vec::with_capacity(4 * dim),
            rows: 0,
            element: PhantomData,
        })
    }

    /// Appends `rows`, row-major; its length must be a multiple of the dimension.
    pub fn write_rows(&mut self, rows: &[T]) -> Result<(), Error> {
        if !rows.len().is_multiple_of(self.dim) {
            return Err(Error::InvalidShape {
                path: self.path.clone(),
                len: rows.len(),
                dim: self.dim,
                reason: "the number of values is not a multiple of the dimension",
            });
        }
        for values in rows.chunks_exact(self.dim) {
            self.row.clear();
            self.row.extend_from_slice(&self.head);
            for value in values {
                self.row.extend_from_slice(&value.to_le_bytes());
            }
            self.file
                .write_all(&self.row)
                .map_err(Error::io(&self.path))?;
            self.rows += 1;
        }
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes the file and closes it.
    pub fn finish(self) -> Result<(), Error> {
        let VecsWriter { path, file, .. } = self;
        file.into_inner()
            .map_err(|e| Error::Io {
                path: path.clone(),
                source: e.into_error(),
            })?
            .sync_data()
            .map_err(Error::io(&path))
    }
}

/// Reads a whole `*vecs` file into one row-major buffer: `(values, rows, dim)`. An empty file
/// gives `(vec![], 0, 0)`.
pub(crate) fn read_file<T: VecsElement>(path: &Path) -> Result<(Vec<T>, usize, usize), Error> {
    let mut reader = VecsReader::<T>::open(path)?;
    let dim = reader.dim().unwrap_or(0);
    // The row count comes from the file size, so the capacity is bounded by the file size.
    let rows = usize::try_from(reader.rows()).map_err(|_| {
        Error::unsupported(
            path,
            Location::Row { row: 0, offset: 0 },
            "a file with more rows than fit in memory",
        )
    })?;
    let mut values = Vec::with_capacity(rows.saturating_mul(dim));
    while reader.read_row_into(&mut values)?.is_some() {}
    Ok((values, rows, dim))
}

/// Writes `rows` (row-major, `rows.len()` a multiple of `dim`) to a new `*vecs` file.
pub(crate) fn write_file<T: VecsElement>(path: &Path, rows: &[T], dim: usize) -> Result<(), Error> {
    let mut writer = VecsWriter::<T>::create(path, dim)?;
    writer.write_rows(rows)?;
    writer.finish()
}
