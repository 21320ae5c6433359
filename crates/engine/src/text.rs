//! Text-embedded vectors: the database's [`TextEmbedder`] (given in
//! [`crate::DatabaseOptions::text_embedder`]), shared by its collections. The engine knows
//! only the trait; the built-in model is `quiver_embed::LazyEmbedder`, which reads its
//! weights on first use, so a database without text vectors never loads them.
//!
//! Vectors are embedded before an upsert is logged: the write-ahead log holds the vectors,
//! so recovery and replay never need the embedder.

use crate::error::{Error, Result};
use crate::schema::Schema;
use quiver_embed_api::{BoxError, TextEmbedder};
use std::sync::Arc;

/// The text embedder of a database, if it has one.
pub(crate) struct TextModels {
    embedder: Option<Arc<dyn TextEmbedder>>,
}

impl TextModels {
    pub(crate) fn new(embedder: Option<Arc<dyn TextEmbedder>>) -> TextModels {
        TextModels { embedder }
    }

    /// Checks, when a collection is created, that its text vectors name the configured
    /// embedder's model and at most its dimension. Without an embedder there is nothing to
    /// check against: embedding will fail with [`Error::NoTextEmbedder`] until one is given.
    pub(crate) fn check_schema(&self, schema: &Schema) -> Result<()> {
        let Some(embedder) = &self.embedder else {
            return Ok(());
        };
        let (model, model_dim) = (embedder.model(), embedder.dim());
        for (name, kind) in &schema.vectors {
            let Some(e) = kind.embedding() else {
                continue;
            };
            if e.model != model {
                return Err(Error::InvalidSchema {
                    reason: format!(
                        "vector `{name}`: unknown text model `{}` (this database's text embedder is `{model}`)",
                        e.model
                    ),
                });
            }
            if kind.dim() > model_dim {
                return Err(Error::InvalidSchema {
                    reason: format!(
                        "vector `{name}`: dimension {} is more than the {model_dim} of {model}",
                        kind.dim()
                    ),
                });
            }
        }
        Ok(())
    }

    /// One vector of `dim` values per text, in order, for vector `vector` of collection
    /// `collection`, declared as embedded by `model`. The embedder's output is checked (one
    /// vector per text, `dim` finite values each), so a faulty embedder fails the call
    /// instead of reaching the log.
    pub(crate) fn embed(
        &self,
        collection: &str,
        vector: &str,
        model: &str,
        texts: &[&str],
        dim: usize,
    ) -> Result<Vec<Vec<f32>>> {
        let failed = |error: BoxError| Error::Embed {
            collection: collection.to_string(),
            vector: vector.to_string(),
            error,
        };
        let Some(embedder) = &self.embedder else {
            return Err(Error::NoTextEmbedder {
                collection: collection.to_string(),
                vector: vector.to_string(),
                model: model.to_string(),
            });
        };
        if embedder.model() != model {
            return Err(Error::TextModelMismatch {
                collection: collection.to_string(),
                vector: vector.to_string(),
                declared: model.to_string(),
                configured: embedder.model().to_string(),
            });
        }
        if dim == 0 || dim > embedder.dim() {
            return Err(failed(
                format!(
                    "dimension {dim} is not in 1..={} for text model `{model}`",
                    embedder.dim()
                )
                .into(),
            ));
        }
        let vectors = embedder.embed(texts, dim).map_err(failed)?;
        let broken = |what: String| {
            failed(format!("the text embedder for `{model}` returned {what}").into())
        };
        if vectors.len() != texts.len() {
            return Err(broken(format!(
                "{} vectors for {} texts",
                vectors.len(),
                texts.len()
            )));
        }
        for (i, v) in vectors.iter().enumerate() {
            if v.len() != dim {
                return Err(broken(format!(
                    "{} values for text {i}, not {dim}",
                    v.len()
                )));
            }
            if let Some(index) = v.iter().position(|x| !x.is_finite()) {
                return Err(broken(format!(
                    "a non-finite value for text {i} at index {index}"
                )));
            }
        }
        Ok(vectors)
    }
}
