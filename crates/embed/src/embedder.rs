//! [`Embedder`]: texts in, unit vectors out, with sentence-transformers' semantics.
//!
//! # What one call does
//!
//! 1. Each text is trimmed of surrounding whitespace (sentence-transformers' `str.strip()`)
//!    and tokenized with the model's `tokenizer.json`, overriding its settings: no padding
//!    and truncation at [`EmbedOptions::max_tokens`] tokens including `[CLS]` and `[SEP]`
//!    (the file says 128 and fixed padding to 128; sentence-transformers uses the model's
//!    `max_seq_length`, 256). An empty text is `[CLS] [SEP]`, as in sentence-transformers.
//! 2. Texts are ordered by token count and cut into batches of
//!    [`EmbedOptions::batch_size`], so a batch holds texts of similar length.
//! 3. Batches run on the embedder's own thread pool, one batch per task (no padding; see
//!    `bert.rs`); the matrix products may also split across idle threads.
//! 4. Rows are put back in input order.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::bert::Bert;
use crate::error::Error;

/// The window sentence-transformers uses for all-MiniLM-L6-v2 (`max_seq_length`).
pub const DEFAULT_MAX_TOKENS: usize = 256;

/// Texts per batch by default (sentence-transformers' default `batch_size`).
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// How an [`Embedder`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedOptions {
    /// Worker threads; 0 means one per available CPU.
    pub threads: usize,
    /// Texts per batch (at least 1).
    pub batch_size: usize,
    /// Longest token sequence, `[CLS]` and `[SEP]` included (2 to the model's
    /// `max_position_embeddings`); longer texts are cut at the end.
    pub max_tokens: usize,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            threads: 0,
            batch_size: DEFAULT_BATCH_SIZE,
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

/// The vectors of one [`Embedder::embed`] call.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// Row-major, one unit-length row of [`Embeddings::dim`] values per input text, in
    /// input order.
    pub vectors: Vec<f32>,
    /// Values per row: the model's hidden size (384).
    pub dim: usize,
    /// Indices (into the input) of the texts that were longer than the window and were
    /// truncated, ascending.
    pub truncated: Vec<usize>,
    /// Tokens fed to the model, `[CLS]` and `[SEP]` included.
    pub tokens: usize,
}

impl Embeddings {
    /// Row `i`, if there is one.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        self.vectors.get(i * self.dim..(i + 1) * self.dim)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.vectors.len().checked_div(self.dim).unwrap_or(0)
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Keeps the first `dim` values of every row and scales each row back to unit length
    /// (Matryoshka truncation; all-MiniLM-L6-v2 was not trained for it, so quality drops
    /// faster than for Matryoshka models). `dim` must be between 1 and the current
    /// dimension.
    pub fn truncate_dims(&mut self, dim: usize) -> Result<(), Error> {
        if dim == 0 || dim > self.dim {
            return Err(Error::InvalidOption {
                name: "dims",
                got: dim,
                expected: "between 1 and the model's dimension",
            });
        }
        let mut out = Vec::with_capacity(self.len() * dim);
        for row in self.vectors.chunks_exact(self.dim) {
            let start = out.len();
            out.extend_from_slice(row.get(..dim).unwrap_or_default());
            if let Some(kept) = out.get_mut(start..) {
                crate::ops::normalize(kept);
            }
        }
        self.vectors = out;
        self.dim = dim;
        Ok(())
    }
}

/// all-MiniLM-L6-v2 loaded and ready: tokenizer, weights and a thread pool. Embedding takes
/// `&self`; calls from several threads share the pool.
pub struct Embedder {
    dir: PathBuf,
    tokenizer: Tokenizer,
    bert: Bert,
    options: EmbedOptions,
    pool: rayon::ThreadPool,
}

impl Embedder {
    /// Loads the model from `dir` (see [`crate::locate_model`] to find it).
    pub fn load(dir: &Path, options: EmbedOptions) -> Result<Embedder, Error> {
        if options.batch_size == 0 {
            return Err(Error::InvalidOption {
                name: "batch_size",
                got: 0,
                expected: "at least 1",
            });
        }
        for file in crate::MODEL_FILES {
            if !dir.join(file).is_file() {
                return Err(Error::MissingModelFile {
                    dir: dir.to_path_buf(),
                    file,
                });
            }
        }
        let bert = Bert::load(dir)?;
        let max_positions = bert.config().max_position_embeddings;
        if options.max_tokens < 2 || options.max_tokens > max_positions {
            return Err(Error::InvalidOption {
                name: "max_tokens",
                got: options.max_tokens,
                expected: "between 2 and the model's max_position_embeddings (512)",
            });
        }
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = load_tokenizer(&tokenizer_path, options.max_tokens)?;
        let vocab = bert.config().vocab_size;
        if tokenizer.get_vocab_size(true) > vocab {
            return Err(Error::corrupt(
                &tokenizer_path,
                format!(
                    "{} tokens, more than the model's vocab_size {vocab}",
                    tokenizer.get_vocab_size(true)
                ),
            ));
        }
        let threads = match options.threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("quiver-embed-{i}"))
            .build()
            .map_err(|e| Error::ThreadPool {
                threads,
                detail: e.to_string(),
            })?;
        Ok(Embedder {
            dir: dir.to_path_buf(),
            tokenizer,
            bert,
            options: EmbedOptions { threads, ..options },
            pool,
        })
    }

    /// The directory the model was loaded from.
    pub fn model_dir(&self) -> &Path {
        &self.dir
    }

    /// Values per vector (384).
    pub fn dim(&self) -> usize {
        self.bert.config().hidden_size
    }

    /// The options in force (`threads` resolved to the actual count).
    pub fn options(&self) -> &EmbedOptions {
        &self.options
    }

    /// Embeds `texts`; row `i` of the result is text `i`'s unit vector.
    pub fn embed<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Embeddings, Error> {
        let tokenized = self.tokenize(texts)?;
        let truncated = tokenized
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.truncated.then_some(i))
            .collect();
        let tokens = tokenized.iter().map(|t| t.ids.len()).sum();
        let batches = length_sorted_batches(&tokenized, self.options.batch_size);
        let dim = self.dim();
        let results = self.run_batches(&tokenized, &batches, |seqs| self.bert.embed_batch(seqs));
        let mut vectors = vec![0.0f32; texts.len() * dim];
        for (batch, rows) in batches.iter().zip(results) {
            for (&i, row) in batch.iter().zip(rows?.chunks_exact(dim)) {
                if let Some(out) = vectors.get_mut(i * dim..(i + 1) * dim) {
                    out.copy_from_slice(row);
                }
            }
        }
        Ok(Embeddings {
            vectors,
            dim,
            truncated,
            tokens,
        })
    }

    /// Runs `model` on each batch of token sequences in the embedder's pool, one result per
    /// batch in batch order.
    fn run_batches<F>(
        &self,
        tokenized: &[Tokenized],
        batches: &[Vec<usize>],
        model: F,
    ) -> Vec<Result<Vec<f32>, Error>>
    where
        F: Fn(&[&[u32]]) -> Result<Vec<f32>, Error> + Sync,
    {
        self.pool.install(|| {
            batches
                .par_iter()
                .map(|batch| {
                    let seqs: Vec<&[u32]> = batch
                        .iter()
                        .filter_map(|&i| tokenized.get(i).map(|t| t.ids.as_slice()))
                        .collect();
                    model(&seqs)
                })
                .collect()
        })
    }

    /// Every token's output vector (late interaction): per text, its tokens (`[CLS]` … `[SEP]`
    /// included, truncated to the window as [`Embedder::embed`] does) × [`Embedder::dim`]
    /// values, row-major, not normalised. [`Embedder::embed`]'s vector is their normalised
    /// mean.
    pub fn embed_tokens<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, Error> {
        let tokenized = self.tokenize(texts)?;
        let batches = length_sorted_batches(&tokenized, self.options.batch_size);
        let dim = self.dim();
        let results = self.run_batches(&tokenized, &batches, |seqs| self.bert.token_batch(seqs));
        let mut out = vec![Vec::new(); texts.len()];
        for (batch, values) in batches.iter().zip(results) {
            let values = values?;
            let mut at = 0;
            for &i in batch {
                let len = tokenized.get(i).map_or(0, |t| t.ids.len()) * dim;
                if let (Some(slot), Some(v)) = (out.get_mut(i), values.get(at..at + len)) {
                    *slot = v.to_vec();
                }
                at += len;
            }
        }
        Ok(out)
    }

    /// Token ids of each text (trimmed, `[CLS]` … `[SEP]`, truncated to the window).
    pub fn token_ids<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>, Error> {
        Ok(self.tokenize(texts)?.into_iter().map(|t| t.ids).collect())
    }

    fn tokenize<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Tokenized>, Error> {
        self.pool.install(|| {
            texts
                .par_iter()
                .enumerate()
                .map(|(index, text)| {
                    let encoding = self
                        .tokenizer
                        .encode_fast(text.as_ref().trim(), true)
                        .map_err(|e| Error::Tokenize {
                            index,
                            detail: e.to_string(),
                        })?;
                    Ok(Tokenized {
                        truncated: !encoding.get_overflowing().is_empty(),
                        ids: encoding.get_ids().to_vec(),
                    })
                })
                .collect()
        })
    }
}

struct Tokenized {
    ids: Vec<u32>,
    truncated: bool,
}

/// Reads `tokenizer.json` and replaces its padding and truncation settings: no padding,
/// truncation of the end at `max_tokens` tokens (special tokens included).
fn load_tokenizer(path: &Path, max_tokens: usize) -> Result<Tokenizer, Error> {
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| Error::corrupt(path, e))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length: max_tokens,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(|e| Error::corrupt(path, e))?;
    Ok(tokenizer)
}

/// Input indices grouped into batches of at most `batch_size`, by ascending token count
/// (ties in input order).
fn length_sorted_batches(tokenized: &[Tokenized], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..tokenized.len()).collect();
    order.sort_by_key(|&i| tokenized.get(i).map_or(0, |t| t.ids.len()));
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(lens: &[usize]) -> Vec<Tokenized> {
        lens.iter()
            .map(|&n| Tokenized {
                ids: vec![0; n],
                truncated: false,
            })
            .collect()
    }

    #[test]
    fn truncate_dims_renormalises() {
        let mut e = Embeddings {
            vectors: vec![0.6, 0.8, 0.0, 0.0, 0.0, 1.0],
            dim: 3,
            truncated: vec![],
            tokens: 0,
        };
        assert!(e.truncate_dims(4).is_err());
        assert!(e.truncate_dims(0).is_err());
        e.truncate_dims(1).unwrap();
        // A row whose kept part is zero stays zero.
        assert_eq!(
            (e.vectors.as_slice(), e.dim, e.len()),
            (&[1.0, 0.0][..], 1, 2)
        );
    }

    #[test]
    fn batches_are_length_sorted_and_cover_every_index_once() {
        let t = tok(&[5, 2, 9, 2, 7, 3, 1]);
        let batches = length_sorted_batches(&t, 3);
        assert_eq!(batches, vec![vec![6, 1, 3], vec![5, 0, 4], vec![2]]);
        assert!(length_sorted_batches(&[], 3).is_empty());
    }
}
