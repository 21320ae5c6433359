//! [`LazyEmbedder`]: the built-in model behind the engine's [`TextEmbedder`] trait, loaded
//! on first use.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};

use quiver_embed_api::{BoxError, TextEmbedder};

use crate::embedder::{EmbedOptions, Embedder};
use crate::error::Error;
use crate::locate::{MODEL_DIM, MODEL_NAME, locate_model};

/// all-MiniLM-L6-v2 as a database's text embedder. Creating one reads nothing: the model is
/// found and loaded by the first [`TextEmbedder::embed`] (others wait for it rather than load
/// it twice), so a database without text vectors never reads the 90 MB of weights. A failed
/// load is not remembered: the next call tries again.
pub struct LazyEmbedder {
    /// `None`: found by [`locate_model`] (`QUIVER_MODEL_DIR`, the Quiver cache,
    /// site-packages, the Hugging Face cache).
    model_dir: Option<PathBuf>,
    options: EmbedOptions,
    loaded: OnceLock<Embedder>,
    /// Held while loading.
    loading: Mutex<()>,
}

impl std::fmt::Debug for LazyEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyEmbedder")
            .field("model_dir", &self.model_dir)
            .field("options", &self.options)
            .field("loaded", &self.loaded.get().is_some())
            .finish()
    }
}

impl Default for LazyEmbedder {
    /// The model found by [`locate_model`], one thread per CPU.
    fn default() -> Self {
        LazyEmbedder::new(None, EmbedOptions::default())
    }
}

impl LazyEmbedder {
    /// The model in `model_dir` (`None`: wherever [`locate_model`] finds it), run with
    /// `options`. Neither is looked at before the first embedding.
    pub fn new(model_dir: Option<PathBuf>, options: EmbedOptions) -> LazyEmbedder {
        LazyEmbedder {
            model_dir,
            options,
            loaded: OnceLock::new(),
            loading: Mutex::new(()),
        }
    }

    /// The embedder, loaded by the first caller.
    fn embedder(&self) -> Result<&Embedder, Error> {
        if let Some(e) = self.loaded.get() {
            return Ok(e);
        }
        // A panic while loading leaves nothing half-made behind: the guard protects no data.
        let _loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = self.loaded.get() {
            return Ok(e);
        }
        let dir = locate_model(self.model_dir.as_deref())?;
        let embedder = Embedder::load(&dir, self.options.clone())?;
        // The engine was told MODEL_DIM before loading; another BERT in the directory would
        // break that promise.
        if embedder.dim() != MODEL_DIM {
            return Err(Error::UnsupportedModel {
                path: dir.join("config.json"),
                field: "hidden_size",
                got: embedder.dim().to_string(),
                expected: format!("{MODEL_DIM} ({MODEL_NAME})"),
            });
        }
        log::info!("loaded text model from {}", dir.display());
        Ok(self.loaded.get_or_init(|| embedder))
    }

    /// One unit-length vector of `dim` values per text, in order (the model's first `dim`
    /// values rescaled when `dim` is below [`MODEL_DIM`]).
    pub fn embed_rows(&self, texts: &[&str], dim: usize) -> Result<Vec<Vec<f32>>, Error> {
        let mut out = self.embedder()?.embed(texts)?;
        if !out.truncated.is_empty() {
            log::info!(
                "{} of {} texts were longer than the model's window and were truncated",
                out.truncated.len(),
                texts.len()
            );
        }
        if dim != out.dim {
            out.truncate_dims(dim)?;
        }
        Ok(out
            .vectors
            .chunks_exact(out.dim.max(1))
            .map(<[f32]>::to_vec)
            .collect())
    }
}

impl TextEmbedder for LazyEmbedder {
    fn model(&self) -> &str {
        MODEL_NAME
    }

    fn dim(&self) -> usize {
        MODEL_DIM
    }

    /// Errors are [`Error`]s, boxed (downcast to read them).
    fn embed(&self, texts: &[&str], dim: usize) -> Result<Vec<Vec<f32>>, BoxError> {
        Ok(self.embed_rows(texts, dim)?)
    }
}
