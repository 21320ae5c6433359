//! The state every handler shares, and the bridge from async handlers to the synchronous
//! engine.

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
}
