//! Text-embedded vectors: the built-in model (`quiver_embed`), shared by the collections of a
//! database and loaded on first use, so that a database without text vectors never reads the
//! 90 MB of weights.
//!
//! Vectors are embedded before an upsert is logged: the write-ahead log holds the vectors,
//! so recovery and replay never need the model.

use parking_lot::Mutex;
use quiver_embed::{EmbedOptions, Embedder};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the model is and how it runs, and the model once loaded.
pub(crate) struct TextModels {
    /// `None`: found by [`quiver_embed::locate_model`] (`QUIVER_MODEL_DIR`, the Quiver cache,
    /// site-packages, the Hugging Face cache).
    model_dir: Option<PathBuf>,
    threads: usize,
    loaded: Mutex<Option<Arc<Embedder>>>,
}

impl TextModels {
    pub(crate) fn new(model_dir: Option<PathBuf>, threads: usize) -> TextModels {
        TextModels {
            model_dir,
            threads,
            loaded: Mutex::new(None),
        }
    }

    /// The embedder, loaded by the first caller (others wait rather than load it twice).
    fn embedder(&self) -> Result<Arc<Embedder>, quiver_embed::Error> {
        let mut loaded = self.loaded.lock();
        if let Some(e) = loaded.as_ref() {
            return Ok(Arc::clone(e));
        }
        let dir = quiver_embed::locate_model(self.model_dir.as_deref())?;
        let options = EmbedOptions {
            threads: self.threads,
            ..EmbedOptions::default()
        };
        let embedder = Arc::new(Embedder::load(&dir, options)?);
        log::info!("loaded text model from {}", dir.display());
        *loaded = Some(Arc::clone(&embedder));
        Ok(embedder)
    }

    /// One unit-length vector of `dim` values per text, in order (the model's first `dim`
    /// values rescaled when `dim` is below its dimension).
    pub(crate) fn embed(
        &self,
        texts: &[&str],
        dim: usize,
    ) -> Result<Vec<Vec<f32>>, quiver_embed::Error> {
        let mut out = self.embedder()?.embed(texts)?;
        if !out.truncated.is_empty() {
            log::info!(
                "{} of {} texts were longer than the model's window and were truncated",
                out.truncated.len(),
                texts.len()
            );
        }
        if dim < out.dim {
            out.truncate_dims(dim)?;
        }
        Ok(out
            .vectors
            .chunks_exact(out.dim.max(1))
            .map(<[f32]>::to_vec)
            .collect())
    }
}
