//! Built-in text embeddings: sentence-transformers' all-MiniLM-L6-v2 (a 6-layer BERT,
//! 384 dimensions) on the CPU, with the tensor library candle and the Hugging Face
//! tokenizer.
//!
//! Results match sentence-transformers: mean pooling over each text's tokens, L2
//! normalisation, truncation at 256 tokens (cosine ≥ 0.999 against its vectors is a test;
//! measured: 1 − 1.2e-12, see `tests/wordnet_sample.rs`).
//!
//! ```no_run
//! # fn main() -> Result<(), quiver_embed::Error> {
//! let dir = quiver_embed::locate_model(None)?;
//! let embedder = quiver_embed::Embedder::load(&dir, Default::default())?;
//! let e = embedder.embed(&["the dog barked all night", ""])?;
//! assert_eq!((e.len(), e.dim), (2, 384));
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! `locate.rs` finds the model files; `embedder.rs` tokenizes, batches and schedules;
//! `bert.rs` loads the weights and runs the encoder over packed (unpadded) batches;
//! `ops.rs` holds the fused CPU kernels; `error.rs` the one error type; `lazy.rs` the
//! [`LazyEmbedder`], the model loaded on first use behind `quiver_embed_api::TextEmbedder`,
//! which is how the engine embeds the text of collections.

mod bert;
mod embedder;
mod error;
mod lazy;
mod locate;
mod ops;

pub use bert::BertConfig;
pub use embedder::{DEFAULT_BATCH_SIZE, DEFAULT_MAX_TOKENS, EmbedOptions, Embedder, Embeddings};
pub use error::{Error, Searched};
pub use lazy::LazyEmbedder;
pub use locate::{
    MODEL_DIM, MODEL_FILES, MODEL_NAME, SearchEnv, is_model_dir, locate_model, locate_model_in,
};
