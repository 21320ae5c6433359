//! The crate's one error type: malformed filters (user input), invalid field keys, and damaged
//! index bytes (corruption) are distinct variants.

/// Errors of parsing filters and keys and of decoding field indexes.
///
/// Filter errors carry `path`, the place in the filter JSON where the problem is, written as
/// `must[1].range.gte` (`filter` for the filter object itself).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The filter text is not JSON.
    #[error("filter is not valid JSON (line {line}, column {column}): {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// A JSON value of the wrong type, e.g. a string where a range bound needs a number.
    /// `got` is the value as JSON (shortened), or `an array` / `an object`.
    #[error("{path}: expected {expected}, got {got}")]
    WrongType {
        path: String,
        expected: String,
        got: String,
    },
    /// An object member the filter language does not have (often a typo).
    #[error("{path}: unknown key \"{key}\" (expected {expected})")]
    UnknownKey {
        path: String,
        key: String,
        expected: &'static str,
    },
    /// A Qdrant filter feature Quiver does not implement (geo, full text, nested, ...).
    #[error("{path}: {feature} is not supported")]
    Unsupported { path: String, feature: String },
    /// A structurally wrong filter part, e.g. a field condition with neither `match` nor `range`.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// A payload key that is not a valid key path (`a.b`, `a[].b`, `a[0]`). `path` is where
    /// the key appeared in a filter, or `None` for a key given on its own.
    #[error("{}invalid key \"{key}\": {reason}", path_prefix(.path))]
    InvalidKey {
        path: Option<String>,
        key: String,
        reason: String,
    },
    /// Field index bytes that do not decode: truncated, damaged or not an index.
    #[error("corrupt field index at byte {offset}: {message}")]
    Corrupt { offset: usize, message: String },
    /// Field index bytes written by a newer format version than this build reads.
    #[error(
        "field index format version {found} is newer than this build reads (up to {supported}): upgrade Quiver"
    )]
    NewerFormat { found: u8, supported: u8 },
}

fn path_prefix(path: &Option<String>) -> String {
    path.as_ref().map(|p| format!("{p}: ")).unwrap_or_default()
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
