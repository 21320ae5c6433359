//! NumPy `.npy` files, format versions 1.0, 2.0 and 3.0, holding a 2-D float array.
//!
//! # Format
//!
//! Numbers are little-endian. The header is ASCII/latin-1 text in versions 1 and 2, UTF-8
//! in version 3:
//!
//! ```text
//! byte 0          6       7       8                  8 + w          8 + w + L
//! +---------------+-------+-------+------------------+--------------+------------------+
//! | \x93NUMPY     | major | minor | L: header length | header text  | data: n · d      |
//! |   (6 bytes)   |  u8   |  u8   | w = 2 bytes (v1) | (L bytes,    | items, row-major |
//! |               |       |       | w = 4 bytes (v2+)| ends '\n')   |                  |
//! +---------------+-------+-------+------------------+--------------+------------------+
//! ```
//!
//! The header text is a Python dict literal, space-padded, such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 384), }`. It is parsed by hand
//! (`npy/literal.rs`) as a small subset of Python literals, with any whitespace between
//! tokens. Keys other than these three are ignored.
//!
//! # What the reader accepts
//!
//! - `descr` `'<f4'` (read as is) or `'<f8'` (each value rounded to the nearest `f32`;
//!   magnitudes beyond `f32::MAX` become infinities). Big-endian, half-precision, integer
//!   and structured dtypes are [`Error::Unsupported`].
//! - `fortran_order` `False`.
//! - `shape` `(n, d)`: `n` rows of dimension `d`; `(d,)`: one row. `d` must be positive.
//! - The data must be exactly `n · d · itemsize` bytes: less is [`Error::Truncated`] (naming
//!   the first incomplete row), more is [`Error::Malformed`]. Both are checked at open.
//!
//! # Writer
//!
//! [`NpyWriter`] always writes a version 1.0 header of [`WRITTEN_HEADER_LEN`] bytes with
//! dtype `'<f4'`, so that [`NpyWriter::finish`] can overwrite the row count in place once it
//! is known.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Location};

mod literal;

use literal::{Literal, Parser};

/// The first six bytes of every `.npy` file.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Headers longer than this are rejected before being read (NumPy itself refuses headers
/// over 10,000 bytes by default).
pub const MAX_HEADER_LEN: u32 = 1 << 20;

/// Total size of the header [`NpyWriter`] writes (magic, version, length and text): a
/// multiple of 64, as NumPy recommends, and long enough for any `u64` row count and `usize`
/// dimension.
pub const WRITTEN_HEADER_LEN: usize = 128;

const READ_BUFFER: usize = 256 * 1024;

/// Element type of the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32,
    F64,
}

impl Dtype {
    fn size(self) -> u64 {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
}

/// What the header says, validated against the file size.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    dtype: Dtype,
    rows: u64,
    dim: usize,
    /// Byte offset of the first row.
    data_offset: u64,
}

/// Streams the rows of a `.npy` file in order, as `f32`. After an error it is finished.
pub(crate) struct NpyReader {
    path: PathBuf,
    file: BufReader<File>,
    header: Header,
    file_len: u64,
    next_row: u64,
    row: Vec<u8>,
    failed: bool,
}

impl NpyReader {
    /// Opens `path`, parses and validates the header (see the module documentation).
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        let mut file = File::open(path).map_err(Error::io(path))?;
        let file_len = file.metadata().map_err(Error::io(path))?.len();
        let header = read_header(path, &mut file, file_len)?;
        Ok(NpyReader {
            path: path.to_path_buf(),
            file: BufReader::with_capacity(READ_BUFFER, file),
            header,
            file_len,
            next_row: 0,
            row: Vec::new(),
            failed: false,
        })
    }

    pub(crate) fn dim(&self) -> usize {
        self.header.dim
    }

    pub(crate) fn rows(&self) -> u64 {
        self.header.rows
    }

    pub(crate) fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Bytes of the file consumed so far: the header and whole rows.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.header.data_offset + self.next_row * self.row_bytes()
    }

    fn row_bytes(&self) -> u64 {
        self.header.dim as u64 * self.header.dtype.size()
    }

    /// Appends the next row's values to `out` and returns its 0-based index, or `None` at the
    /// end of the array. On error nothing is appended.
    pub(crate) fn read_row_into(&mut self, out: &mut Vec<f32>) -> Result<Option<u64>, Error> {
        if self.failed || self.next_row >= self.header.rows {
            return Ok(None);
        }
        // The row fits in the file (checked at open), so its size fits in memory.
        self.row
            .resize(self.header.dim * self.header.dtype.size() as usize, 0);
        if let Err(source) = self.file.read_exact(&mut self.row) {
            self.failed = true;
            return Err(Error::Io {
                path: self.path.clone(),
                source,
            });
        }
        match self.header.dtype {
            Dtype::F32 => {
                let (values, _) = self.row.as_chunks::<4>();
                out.extend(values.iter().map(|b| f32::from_le_bytes(*b)));
            }
            Dtype::F64 => {
                let (values, _) = self.row.as_chunks::<8>();
                out.extend(values.iter().map(|b| f64::from_le_bytes(*b) as f32));
            }
        }
        let row = self.next_row;
        self.next_row += 1;
        Ok(Some(row))
    }
}

/// Reads the magic, version and header of `file` (positioned at its start) and leaves it
/// positioned at the first row.
fn read_header(path: &Path, file: &mut File, file_len: u64) -> Result<Header, Error> {
    let at = |offset| Location::Header { offset };
    let mut prefix = [0u8; 8];
    if file_len < prefix.len() as u64 {
        return Err(Error::malformed(
            path,
            at(0),
            format!("file is {file_len} bytes, too short for a .npy header"),
        ));
    }
    file.read_exact(&mut prefix).map_err(Error::io(path))?;
    let [m0, m1, m2, m3, m4, m5, major, minor] = prefix;
    if [m0, m1, m2, m3, m4, m5] != *MAGIC {
        return Err(Error::malformed(
            path,
            at(0),
            format!(
                "not a .npy file: the first bytes are {:02x?}, expected {:02x?} (\"\\x93NUMPY\")",
                [m0, m1, m2, m3, m4, m5],
                MAGIC
            ),
        ));
    }
    let (header_len, text_offset) = match major {
        1 => {
            let mut len = [0u8; 2];
            read_exact_or_short(path, file, &mut len, 8, file_len)?;
            (u32::from(u16::from_le_bytes(len)), 10u64)
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            read_exact_or_short(path, file, &mut len, 8, file_len)?;
            (u32::from_le_bytes(len), 12u64)
        }
        _ => {
            return Err(Error::unsupported(
                path,
                at(6),
                format!(".npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)"),
            ));
        }
    };
    if header_len > MAX_HEADER_LEN {
        return Err(Error::unsupported(
            path,
            at(8),
            format!("a header of {header_len} bytes (the limit is {MAX_HEADER_LEN})"),
        ));
    }
    let mut raw = vec![0u8; header_len as usize];
    read_exact_or_short(path, file, &mut raw, text_offset, file_len)?;
    let text = if major == 3 {
        String::from_utf8(raw).map_err(|e| {
            Error::malformed(
                path,
                at(text_offset + e.utf8_error().valid_up_to() as u64),
                "header text is not valid UTF-8",
            )
        })?
    } else {
        // Versions 1 and 2 are latin-1: every byte is the code point of the same value.
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let literal = Parser::new(&text)
        .header()
        .map_err(|e| Error::malformed(path, at(text_offset + e.offset as u64), e.message))?;
    let data_offset = text_offset + u64::from(header_len);
    let fields = HeaderFields::from_literal(literal)
        .map_err(|message| Error::malformed(path, at(text_offset), message))?;
    fields.validate(path, text_offset, data_offset, file_len)
}

/// `read_exact` at `offset`, reporting a file that ends before `buf` is filled as malformed.
fn read_exact_or_short(
    path: &Path,
    file: &mut File,
    buf: &mut [u8],
    offset: u64,
    file_len: u64,
) -> Result<(), Error> {
    let need = buf.len() as u64;
    if file_len.saturating_sub(offset) < need {
        return Err(Error::malformed(
            path,
            Location::Header { offset },
            format!(
                "file ends inside the header: {need} more bytes needed, {} present",
                file_len.saturating_sub(offset)
            ),
        ));
    }
    file.read_exact(buf).map_err(Error::io(path))
}

/// The three keys of the header dict, before validation.
struct HeaderFields {
    descr: Literal,
    fortran_order: Literal,
    shape: Literal,
}

impl HeaderFields {
    fn from_literal(literal: Literal) -> Result<Self, String> {
        let Literal::Dict(entries) = literal else {
            return Err(format!(
                "header is {}, expected a dict",
                literal.kind_with_article()
            ));
        };
        let mut descr = None;
        let mut fortran_order = None;
        let mut shape = None;
        for (key, value) in entries {
            match key.as_str() {
                "descr" => descr = Some(value),
                "fortran_order" => fortran_order = Some(value),
                "shape" => shape = Some(value),
                _ => {}
            }
        }
        let missing = |key: &str| format!("header dict has no '{key}' key");
        Ok(HeaderFields {
            descr: descr.ok_or_else(|| missing("descr"))?,
            fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
            shape: shape.ok_or_else(|| missing("shape"))?,
        })
    }

    fn validate(
        self,
        path: &Path,
        text_offset: u64,
        data_offset: u64,
        file_len: u64,
    ) -> Result<Header, Error> {
        let at = Location::Header {
            offset: text_offset,
        };
        let dtype = match &self.descr {
            Literal::Str(s) if s == "<f4" => Dtype::F32,
            Literal::Str(s) if s == "<f8" => Dtype::F64,
            Literal::Str(s) if s.starts_with('>') => {
                return Err(Error::unsupported(
                    path,
                    at,
                    format!("big-endian dtype '{s}' (expected '<f4' or '<f8')"),
                ));
            }
            Literal::Str(s) => {
                return Err(Error::unsupported(
                    path,
                    at,
                    format!("dtype '{s}' (expected '<f4' float32 or '<f8' float64)"),
                ));
            }
            Literal::List(_) => {
                return Err(Error::unsupported(
                    path,
                    at,
                    "a structured dtype (expected '<f4' or '<f8')",
                ));
            }
            other => {
                return Err(Error::malformed(
                    path,
                    at,
                    format!(
                        "'descr' is {}, expected a string",
                        other.kind_with_article()
                    ),
                ));
            }
        };
        match self.fortran_order {
            Literal::Bool(false) => {}
            Literal::Bool(true) => {
                return Err(Error::unsupported(
                    path,
                    at,
                    "Fortran (column-major) order; save the array with fortran_order=False, \
                     e.g. numpy.ascontiguousarray",
                ));
            }
            other => {
                return Err(Error::malformed(
                    path,
                    at,
                    format!(
                        "'fortran_order' is {}, expected True or False",
                        other.kind_with_article()
                    ),
                ));
            }
        }
        let shape = match self.shape {
            Literal::Tuple(items) | Literal::List(items) => items
                .into_iter()
                .map(|item| match item {
                    Literal::Int(n) => Ok(n),
                    other => Err(Error::malformed(
                        path,
                        at,
                        format!(
                            "'shape' holds {}, expected integers",
                            other.kind_with_article()
                        ),
                    )),
                })
                .collect::<Result<Vec<u64>, Error>>()?,
            other => {
                return Err(Error::malformed(
                    path,
                    at,
                    format!("'shape' is {}, expected a tuple", other.kind_with_article()),
                ));
            }
        };
        let (rows, dim) = match shape.as_slice() {
            [d] => (1, *d),
            [n, d] => (*n, *d),
            other => {
                return Err(Error::unsupported(
                    path,
                    at,
                    format!(
                        "a {}-dimensional array (expected shape (n, d) or (d,))",
                        other.len()
                    ),
                ));
            }
        };
        if dim == 0 {
            return Err(Error::malformed(
                path,
                at,
                "'shape' gives vectors of dimension 0",
            ));
        }
        let too_large = || {
            Error::malformed(
                path,
                at,
                format!("'shape' ({rows}, {dim}) is too large for this machine"),
            )
        };
        let row_bytes = dim.checked_mul(dtype.size()).ok_or_else(too_large)?;
        let dim = usize::try_from(dim).map_err(|_| too_large())?;
        let data_len = file_len.saturating_sub(data_offset);
        let need = match rows.checked_mul(row_bytes) {
            Some(need) if need <= data_len => need,
            _ => {
                let row = data_len / row_bytes;
                let offset = data_offset + row * row_bytes;
                return Err(Error::Truncated {
                    path: path.to_path_buf(),
                    row,
                    offset,
                    expected: row_bytes,
                    actual: file_len.saturating_sub(offset),
                });
            }
        };
        if data_len > need {
            return Err(Error::malformed(
                path,
                Location::Row {
                    row: rows,
                    offset: data_offset + need,
                },
                format!(
                    "{} bytes follow the last row of the ({rows}, {dim}) array",
                    data_len - need
                ),
            ));
        }
        Ok(Header {
            dtype,
            rows,
            dim,
            data_offset,
        })
    }
}

/// Writes a 2-D `'<f4'` `.npy` file row by row.
///
/// [`NpyWriter::create`] writes a header claiming zero rows; [`NpyWriter::finish`] rewrites
/// it with the real row count and flushes. A file whose writer was dropped without
/// `finish` is rejected by this crate's reader (data after the last row), though NumPy
/// would read it as an empty array. The file is written in place, not atomically.
pub struct NpyWriter {
    path: PathBuf,
    file: BufWriter<File>,
    dim: usize,
    rows: u64,
    row: Vec<u8>,
}

impl NpyWriter {
    /// Creates `path` for rows of dimension `dim` (`dim > 0`).
    pub fn create(path: &Path, dim: usize) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::InvalidShape {
                path: path.to_path_buf(),
                len: 0,
                dim,
                reason: "the dimension must be positive",
            });
        }
        let file = File::create(path).map_err(Error::io(path))?;
        let mut writer = NpyWriter {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(READ_BUFFER, file),
            dim,
            rows: 0,
            row: Vec::with_capacity(4 * dim),
        };
        writer
            .file
            .write_all(&header_bytes(0, dim))
            .map_err(Error::io(path))?;
        Ok(writer)
    }

    /// Appends `rows`, row-major; its length must be a multiple of the dimension.
    pub fn write_rows(&mut self, rows: &[f32]) -> Result<(), Error> {
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

    /// Writes the final header, flushes and closes the file.
    pub fn finish(self) -> Result<(), Error> {
        let NpyWriter {
            path,
            file,
            dim,
            rows,
            ..
        } = self;
        let mut file = file.into_inner().map_err(|e| Error::Io {
            path: path.clone(),
            source: e.into_error(),
        })?;
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(&header_bytes(rows, dim)))
            .and_then(|()| file.sync_data())
            .map_err(Error::io(&path))
    }
}

/// The [`WRITTEN_HEADER_LEN`]-byte version 1.0 header for a `(rows, dim)` `'<f4'` array.
fn header_bytes(rows: u64, dim: usize) -> Vec<u8> {
    const PREFIX_LEN: usize = 10;
    let text = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    let mut bytes = Vec::with_capacity(WRITTEN_HEADER_LEN);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&[1, 0]);
    bytes.extend_from_slice(&((WRITTEN_HEADER_LEN - PREFIX_LEN) as u16).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
    // The text is at most 105 bytes (two 20-digit numbers), so padding always fits.
    bytes.resize(WRITTEN_HEADER_LEN - 1, b' ');
    bytes.push(b'\n');
    bytes
}

/// Writes `rows` (row-major, exactly `n · dim` values) as a `(n, dim)` `'<f4'` array.
pub(crate) fn write_file(path: &Path, rows: &[f32], n: usize, dim: usize) -> Result<(), Error> {
    if n.checked_mul(dim) != Some(rows.len()) {
        return Err(Error::InvalidShape {
            path: path.to_path_buf(),
            len: rows.len(),
            dim,
            reason: "the number of values is not rows × dimension",
        });
    }
    let mut writer = NpyWriter::create(path, dim)?;
    writer.write_rows(rows)?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_header_fits_extreme_shapes() {
        let bytes = header_bytes(u64::MAX, usize::MAX);
        assert_eq!(bytes.len(), WRITTEN_HEADER_LEN);
        assert_eq!(bytes.last(), Some(&b'\n'));
    }
}
