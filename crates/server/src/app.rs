//! The state every handler shares, and the bridge from async handlers to the synchronous
//! engine.

use crate::convert::VectorInput;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use quiver_embed_api::TextEmbedder;
use quiver_engine::{Collection, Database};
use std::sync::Arc;

/// Shared by every request.
pub struct App {
    pub db: Arc<Database>,
    /// Embeds `Document` texts in upserts and queries; `None`: such requests are a 400.
    pub embedder: Option<Arc<dyn TextEmbedder>>,
    pub keys: crate::auth::Keys,
    pub metrics: Metrics,
}

pub type AppState = Arc<App>;

impl App {
    /// Runs engine work on the blocking pool, so that a long search or an fsync never holds
    /// an async worker. A panic in it is answered with a 500 and logged.
    pub async fn blocking<T, F>(&self, work: F) -> ApiResult<T>
    where
        F: FnOnce() -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        match tokio::task::spawn_blocking(work).await {
            Ok(result) => result,
            Err(e) => Err(ApiError::internal(format!(
                "Service internal error: the request failed unexpectedly ({e}); it was logged"
            ))),
        }
    }

    /// A collection by name or alias.
    pub fn collection(&self, name: &str) -> ApiResult<Arc<Collection>> {
        Ok(self.db.collection(name)?)
    }

    /// Turns dense vector inputs into vectors, embedding every document of the request in one
    /// call. Sparse inputs are not for it.
    pub fn embed(&self, inputs: Vec<VectorInput>) -> ApiResult<Vec<Vec<f32>>> {
        let texts: Vec<&str> = inputs
            .iter()
            .filter_map(|v| match v {
                VectorInput::Document { text, .. } => Some(text.as_str()),
                VectorInput::Dense(_) | VectorInput::Sparse(_) | VectorInput::Bm25(_) => None,
            })
            .collect();
        let mut embedded = if texts.is_empty() {
            Vec::new()
        } else {
            let embedder = self.embedder.as_ref().ok_or_else(|| {
                ApiError::bad_request(
                    "Wrong input: this server was started without a text model, so documents cannot be embedded; send vectors",
                )
            })?;
            let dim = embedder.dim();
            let out = embedder.embed(&texts, dim).map_err(|e| {
                ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    format!("Service unavailable: the text model failed: {e}"),
                )
            })?;
            if out.len() != texts.len() {
                return Err(ApiError::internal(
                    "Service internal error: the text model returned the wrong number of vectors",
                ));
            }
            out
        }
        .into_iter();
        inputs
            .into_iter()
            .map(|v| match v {
                VectorInput::Dense(v) => Ok(v),
                // Callers take sparse vectors out first: they are not embedded.
                VectorInput::Sparse(_) | VectorInput::Bm25(_) => Err(ApiError::internal(
                    "Service internal error: a sparse vector was sent to the text model",
                )),
                VectorInput::Document { .. } => embedded
                    .next()
                    .ok_or_else(|| ApiError::internal("Service internal error: embedding lost")),
            })
            .collect()
    }
}
