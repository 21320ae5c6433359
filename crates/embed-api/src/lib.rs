//! The interface between Quiver's engine and text embedders.
//!
//! A collection may declare a vector as embedded from a payload text field by a named model
//! (`quiver_engine::VectorKind::Text`). The engine computes such vectors through a
//! [`TextEmbedder`] given when the database is opened; it never links a model itself, so an
//! application that stores only vectors does not build a tensor library, and one that wants
//! another model (or a remote embedding service) implements this trait.
//!
//! This crate is the contract alone, with no dependencies (as tantivy's `tokenizer-api`): the
//! engine and the embedders (`quiver-embed`, the built-in all-MiniLM-L6-v2) depend on it and
//! not on each other, so they build in parallel and an embedder need not follow the engine's
//! versions.

/// The error of a failed [`TextEmbedder::embed`]: any error, kept whole so callers can show
/// its chain or downcast it to the embedder's own type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Turns texts into vectors, for the vectors a collection declares as embedded from text.
///
/// One embedder serves every collection of a database, from several threads at once.
/// [`model`](TextEmbedder::model) and [`dim`](TextEmbedder::dim) must be cheap and must not
/// load the model: the engine asks them when a collection is created, and a database that
/// never embeds should never pay for loading weights.
pub trait TextEmbedder: Send + Sync {
    /// The model's name as schemas refer to it (`"all-MiniLM-L6-v2"`). A collection's text
    /// vector names its model when it is created; the engine embeds its texts only with an
    /// embedder of that name, since vectors of two models do not compare.
    fn model(&self) -> &str;

    /// Values per vector the model produces; a collection's text vector may declare this
    /// many or fewer.
    fn dim(&self) -> usize;

    /// One vector of `dim` values per text, in the order of `texts`, of unit length (L2).
    ///
    /// `dim` is between 1 and [`dim`](TextEmbedder::dim); below it, the embedder shortens its
    /// vectors as the model intends (for a model trained with Matryoshka loss: the first
    /// `dim` values, rescaled to unit length). `texts` may be empty, and a text may be empty.
    /// Either every text is embedded or the call fails; the engine checks the count and
    /// length of the vectors and that their values are finite, and rejects the whole write if
    /// they are not as promised.
    fn embed(&self, texts: &[&str], dim: usize) -> Result<Vec<Vec<f32>>, BoxError>;
}
