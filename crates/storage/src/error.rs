use std::path::PathBuf;

/// Errors of the storage layer. I/O errors always name their path; corruption names the file
/// and, where it is known, the byte offset.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt file {path} at byte {offset}: {message}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        message: String,
    },
    #[error(
        "{path} was written by a newer Quiver (format version {found}; this build reads up to {supported}): upgrade Quiver to open it"
    )]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path} is locked by another process: {source}")]
    Locked {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the write-ahead log in {path} failed earlier and accepts no more writes; reopen the collection"
    )]
    Poisoned { path: PathBuf },
    #[error(
        "a log record of {len} bytes exceeds the limit of {max} bytes (log in {path}); nothing was written"
    )]
    RecordTooLarge {
        path: PathBuf,
        len: usize,
        max: usize,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        message: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            path: path.into(),
            offset,
            message: message.into(),
        }
    }
}

/// Attaches a path to an `io::Result`.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}
