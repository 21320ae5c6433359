//! Streaming readers and writers for the vector files users bring to Quiver: TEXMEX
//! `.fvecs`/`.ivecs`, NumPy `.npy` and JSON Lines. Used by `quiver import`, `quiver bench`
//! and `quiver embed`.
//!
//! # Contract
//!
//! - The input is untrusted: no byte sequence makes a reader panic or allocate more than the
//!   file's size (plus one line of at most [`MAX_LINE_BYTES`] for JSON Lines). Every error
//!   names the file and, when it concerns the content, the row or line and byte offset
//!   ([`Location`]).
//! - [`VectorReader`] yields [`Record`]s in file order. All vectors of one file share a
//!   dimension; the first vector fixes it and a differing one is [`Error::DimMismatch`].
//! - Values are not checked: NaN and infinities pass through, and no dimension is compared
//!   with a collection's. The engine does both.
//! - Binary layouts (size, header, shape) are checked when the file is opened, so a
//!   truncated `.fvecs` or `.npy` fails before its first row is returned.
//!
//! # Layout
//!
//! One module per format, each holding that format's reader, writer and a spec of its
//! bytes: `fvecs.rs` (also `.ivecs`), `npy.rs`, `jsonl.rs`. `error.rs` has the one error
//! type. This file dispatches [`VectorReader`] to the format readers. The decoder modules
//! deny `clippy::unwrap_used` and `clippy::indexing_slicing`.

#![forbid(unsafe_code)]

mod error;
mod fvecs;
mod jsonl;
mod npy;

use std::fmt;
use std::path::Path;

pub use error::{Error, Location};
pub use fvecs::{VecsElement, VecsWriter};
pub use jsonl::MAX_LINE_BYTES;
pub use npy::NpyWriter;

use fvecs::VecsReader;
use jsonl::JsonLinesReader;
use npy::NpyReader;

/// Writes `.fvecs` files row by row.
pub type FvecsWriter = VecsWriter<f32>;
/// Writes `.ivecs` files row by row.
pub type IvecsWriter = VecsWriter<i32>;

/// Upper bound on the capacity [`VectorReader::next_batch`] reserves up front, whatever
/// `max` the caller passes.
const MAX_BATCH_RESERVE: usize = 4096;

/// A vector file format [`VectorReader`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// TEXMEX `.fvecs`: rows of little-endian `i32` dimension then `f32` values.
    Fvecs,
    /// NumPy `.npy` v1–v3 holding a `(n, d)` or `(d,)` array of `'<f4'` or `'<f8'`.
    Npy,
    /// JSON Lines: one object per line with a vector field and optional id and payload.
    JsonLines,
}

impl Format {
    /// The format for a file name's extension, compared case-insensitively: `.fvecs`,
    /// `.npy`, `.jsonl`, `.ndjson` or `.json` (read as JSON Lines).
    pub fn from_path(path: &Path) -> Result<Format, Error> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("fvecs") => Ok(Format::Fvecs),
            Some("npy") => Ok(Format::Npy),
            Some("jsonl" | "ndjson" | "json") => Ok(Format::JsonLines),
            _ => Err(Error::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }

    /// The format's short name, as a command-line flag would spell it: `fvecs`, `npy` or
    /// `jsonl`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Fvecs => "fvecs",
            Format::Npy => "npy",
            Format::JsonLines => "jsonl",
        }
    }

    /// The format with this short name ([`Format::name`]; `ndjson` is also accepted), if any.
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "fvecs" => Some(Format::Fvecs),
            "npy" => Some(Format::Npy),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One vector read from a file, with what came with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The id as written in the file (JSON Lines only): an unsigned integer or a string,
    /// which the engine parses as a UUID. `None` for binary formats and records without one.
    pub id: Option<serde_json::Value>,
    /// The vector; its length is the file's dimension.
    pub vector: Vec<f32>,
    /// The payload object (JSON Lines only).
    pub payload: Option<serde_json::Map<String, serde_json::Value>>,
    /// 0-based row index (`.fvecs`, `.npy`) or 0-based line index (JSON Lines, counting
    /// blank lines, so it is the 1-based line number minus one).
    pub position: u64,
}

/// Names of the JSON Lines fields holding the id, the vector and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonFields {
    /// Field holding the id; default `"id"`.
    pub id: String,
    /// Field holding the vector; default `"vector"`.
    pub vector: String,
    /// Field holding the payload; default `"payload"`.
    pub payload: String,
}

impl Default for JsonFields {
    fn default() -> Self {
        JsonFields {
            id: "id".into(),
            vector: "vector".into(),
            payload: "payload".into(),
        }
    }
}

/// Opens any supported file; yields Records in file order, in batches.
///
/// Also an [`Iterator`] over `Result<Record, Error>`.
///
/// # Errors and resumption
///
/// When a read fails, the records already decoded for that batch are dropped and the
/// error names the offending row or line. For `.fvecs` and `.npy` an error ends the
/// stream: later calls return no records. For JSON Lines, an error confined to one line
/// (bad JSON, wrong field type, dimension mismatch) leaves the reader at the next line, so
/// a caller that wants to skip bad lines can keep calling [`VectorReader::next_record`];
/// an I/O error or an over-long line ends the stream.
pub struct VectorReader {
    source: Source,
}

enum Source {
    Fvecs(VecsReader<f32>),
    Npy(NpyReader),
    JsonLines(JsonLinesReader),
}

impl VectorReader {
    /// Opens `path` as `format`. Binary formats are validated here (size, header, shape,
    /// dimension of every row for a `.fvecs` whose size is wrong); JSON Lines lines are
    /// checked as they are read. `fields` matters for JSON Lines only.
    pub fn open(path: &Path, format: Format, fields: &JsonFields) -> Result<Self, Error> {
        let source = match format {
            Format::Fvecs => Source::Fvecs(VecsReader::open(path)?),
            Format::Npy => Source::Npy(NpyReader::open(path)?),
            Format::JsonLines => Source::JsonLines(JsonLinesReader::open(path, fields)?),
        };
        Ok(VectorReader { source })
    }

    /// The format being read.
    pub fn format(&self) -> Format {
        match self.source {
            Source::Fvecs(_) => Format::Fvecs,
            Source::Npy(_) => Format::Npy,
            Source::JsonLines(_) => Format::JsonLines,
        }
    }

    /// The dimension of the file's vectors: known at open for `.fvecs` (`None` for an empty
    /// file) and `.npy`; for JSON Lines, known once the first record has been read.
    pub fn dim(&self) -> Option<usize> {
        match &self.source {
            Source::Fvecs(r) => r.dim(),
            Source::Npy(r) => Some(r.dim()),
            Source::JsonLines(r) => r.dim(),
        }
    }

    /// The exact number of rows for `.fvecs` and `.npy`; `None` for JSON Lines.
    pub fn rows_hint(&self) -> Option<u64> {
        match &self.source {
            Source::Fvecs(r) => Some(r.rows()),
            Source::Npy(r) => Some(r.rows()),
            Source::JsonLines(_) => None,
        }
    }

    /// Size of the file in bytes when it was opened.
    pub fn total_bytes(&self) -> u64 {
        match &self.source {
            Source::Fvecs(r) => r.file_len(),
            Source::Npy(r) => r.file_len(),
            Source::JsonLines(r) => r.file_len(),
        }
    }

    /// Bytes consumed so far, for a progress bar: equals [`VectorReader::total_bytes`] once
    /// the end has been reached.
    pub fn bytes_read(&self) -> u64 {
        match &self.source {
            Source::Fvecs(r) => r.bytes_read(),
            Source::Npy(r) => r.bytes_read(),
            Source::JsonLines(r) => r.bytes_read(),
        }
    }

    /// The next record, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record>, Error> {
        let binary_row = |vector: Vec<f32>, position: Option<u64>| {
            position.map(|position| Record {
                id: None,
                vector,
                payload: None,
                position,
            })
        };
        match &mut self.source {
            Source::Fvecs(r) => {
                let mut vector = Vec::with_capacity(r.dim().unwrap_or(0));
                let position = r.read_row_into(&mut vector)?;
                Ok(binary_row(vector, position))
            }
            Source::Npy(r) => {
                let mut vector = Vec::with_capacity(r.dim());
                let position = r.read_row_into(&mut vector)?;
                Ok(binary_row(vector, position))
            }
            Source::JsonLines(r) => r.next_record(),
        }
    }

    /// Up to `max` next records (at least one if any are left, even for `max == 0`). An
    /// empty batch means the end of the file.
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<Record>, Error> {
        let max = max.max(1);
        let mut batch = Vec::with_capacity(max.min(MAX_BATCH_RESERVE));
        while batch.len() < max {
            match self.next_record()? {
                Some(record) => batch.push(record),
                None => break,
            }
        }
        Ok(batch)
    }
}

impl Iterator for VectorReader {
    type Item = Result<Record, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// Reads a whole `.fvecs` file: `(values, rows, dim)`, values row-major. An empty file gives
/// `(vec![], 0, 0)`. Memory is the file's size.
pub fn read_fvecs(path: &Path) -> Result<(Vec<f32>, usize, usize), Error> {
    fvecs::read_file(path)
}

/// Reads a whole `.ivecs` file (e.g. benchmark ground truth): `(values, rows, dim)`, values
/// row-major. An empty file gives `(vec![], 0, 0)`.
pub fn read_ivecs(path: &Path) -> Result<(Vec<i32>, usize, usize), Error> {
    fvecs::read_file(path)
}

/// Writes `rows` (row-major, a multiple of `dim` values, `0 < dim ≤ i32::MAX`) as a new
/// `.fvecs` file, replacing any existing one.
pub fn write_fvecs(path: &Path, rows: &[f32], dim: usize) -> Result<(), Error> {
    fvecs::write_file(path, rows, dim)
}

/// Writes `rows` (row-major, a multiple of `dim` values, `0 < dim ≤ i32::MAX`) as a new
/// `.ivecs` file, replacing any existing one.
pub fn write_ivecs(path: &Path, rows: &[i32], dim: usize) -> Result<(), Error> {
    fvecs::write_file(path, rows, dim)
}

/// Writes `rows` (row-major, exactly `n · dim` values, `dim > 0`) as a new `.npy` file
/// holding a `(n, dim)` `'<f4'` array, replacing any existing one.
pub fn write_npy_f32(path: &Path, rows: &[f32], n: usize, dim: usize) -> Result<(), Error> {
    npy::write_file(path, rows, n, dim)
}
