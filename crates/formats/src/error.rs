//! The crate's one error type, and the [`Location`] every decoding error carries.
//!
//! Bad user input (a file that is not what it claims to be) is [`Error::Truncated`],
//! [`Error::Malformed`], [`Error::DimMismatch`] or [`Error::Unsupported`]; a failing
//! operating system call is [`Error::Io`]; a caller passing arguments that do not describe a
//! matrix is [`Error::InvalidShape`]. Every variant names the file.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Where in a file a problem was found. Offsets count bytes from the start of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// Inside the file header (`.npy`), at byte `offset`.
    Header {
        /// Byte offset of the offending text or field.
        offset: u64,
    },
    /// A row of a binary file (`.fvecs`, `.ivecs`, `.npy`).
    Row {
        /// 0-based row index.
        row: u64,
        /// Byte offset at which the row starts.
        offset: u64,
    },
    /// A line of a text file (JSON Lines).
    Line {
        /// 1-based line number, counting blank lines.
        line: u64,
        /// Byte offset at which the line starts.
        offset: u64,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Header { offset } => write!(f, "header (byte offset {offset})"),
            Location::Row { row, offset } => write!(f, "row {row} (byte offset {offset})"),
            Location::Line { line, offset } => write!(f, "line {line} (byte offset {offset})"),
        }
    }
}

/// Everything that can go wrong reading or writing a vector file.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum Error {
    /// An operating system call on the file failed (open, read, write, seek, metadata).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The file name's extension maps to no supported format (see `Format::from_path`).
    #[error(
        "{}: cannot tell the format from the file name; expected the extension .fvecs, .npy, \
         .jsonl, .ndjson or .json",
        path.display()
    )]
    UnknownFormat {
        /// The file whose name was examined.
        path: PathBuf,
    },

    /// The file ends inside row `row`: the row needs `expected` bytes from `offset` on, but
    /// only `actual` bytes are left. Detected when the file is opened, before any row is
    /// returned.
    #[error(
        "{}: truncated at row {row} (byte offset {offset}): expected {expected} bytes, \
         found {actual}",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// 0-based index of the incomplete row.
        row: u64,
        /// Byte offset at which the incomplete row starts.
        offset: u64,
        /// Bytes a complete row takes.
        expected: u64,
        /// Bytes actually present from `offset` to the end of the file.
        actual: u64,
    },

    /// The bytes at `location` do not follow the format; `message` says what is wrong.
    #[error("{}: {location}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Where the problem is.
        location: Location,
        /// What is wrong, for a human.
        message: String,
    },

    /// A row or record has a different dimension than the first one of the same file.
    #[error(
        "{}: {location}: vector has dimension {got}, but earlier vectors in this file have \
         dimension {expected}",
        path.display()
    )]
    DimMismatch {
        /// The file.
        path: PathBuf,
        /// The row or line whose dimension differs.
        location: Location,
        /// Dimension of the first vector of the file.
        expected: usize,
        /// Dimension found at `location`.
        got: usize,
    },

    /// The file is well formed but uses a feature this crate does not read, such as a
    /// big-endian or integer `.npy` dtype, Fortran order or a 3-D array.
    #[error("{}: {location}: {feature} is not supported", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Where the feature is declared.
        location: Location,
        /// The feature, with a hint at what is supported.
        feature: String,
    },

    /// A writer was given `len` values that do not form whole rows of dimension `dim`.
    #[error(
        "{}: cannot write {len} values as rows of dimension {dim}: {reason}",
        path.display()
    )]
    InvalidShape {
        /// The file being written.
        path: PathBuf,
        /// Number of values passed.
        len: usize,
        /// Dimension passed.
        dim: usize,
        /// Which constraint is violated.
        reason: &'static str,
    },
}

impl Error {
    /// Builds a closure turning an [`io::Error`] into [`Error::Io`] for `path`, for `map_err`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn malformed(path: &Path, location: Location, message: impl Into<String>) -> Error {
        Error::Malformed {
            path: path.to_path_buf(),
            location,
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(
        path: &Path,
        location: Location,
        feature: impl Into<String>,
    ) -> Error {
        Error::Unsupported {
            path: path.to_path_buf(),
            location,
            feature: feature.into(),
        }
    }

    /// The location in the file this error refers to, if it refers to one.
    pub fn location(&self) -> Option<Location> {
        match self {
            Error::Truncated { row, offset, .. } => Some(Location::Row {
                row: *row,
                offset: *offset,
            }),
            Error::Malformed { location, .. }
            | Error::DimMismatch { location, .. }
            | Error::Unsupported { location, .. } => Some(*location),
            Error::Io { .. } | Error::UnknownFormat { .. } | Error::InvalidShape { .. } => None,
        }
    }
}
