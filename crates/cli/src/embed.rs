//! `quiver embed`: texts in, a vector file out (all-MiniLM-L6-v2, see docs/embedding.md).
//!
//! The input is read twice: a checking pass (UTF-8, JSON, the text field; it also counts
//! the texts for the progress line), then the embedding pass, in windows of texts that are
//! length-sorted into batches and written back in input order. The output is written to
//! `<output>.partial` and renamed when complete, so a failed run leaves no truncated file.

use crate::progress::Progress;
use crate::texts::{Text, TextReader};
use anyhow::{Context, Result, bail};
use quiver_embed::{EmbedOptions, Embedder};
use quiver_formats::{Format, FvecsWriter, NpyWriter};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct EmbedArgs {
    /// Texts: JSON Lines (.jsonl, .ndjson) with the text in --text-field, else plain text
    /// with one text per line (an empty line is an empty text).
    pub input: PathBuf,
    /// Output: .fvecs, .npy or .jsonl (`{"id": <input id, if any>, "vector": [...]}` per
    /// line), chosen by extension. Row i is the i-th text.
    #[arg(long, short)]
    pub output: PathBuf,
    /// JSON Lines field holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Model directory (config.json, tokenizer.json, model.safetensors) [default:
    /// $QUIVER_MODEL_DIR, else searched: ~/.cache/quiver/models/all-MiniLM-L6-v2,
    /// site-packages, the Hugging Face cache; scripts/fetch-model puts it in the first].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Worker threads [default: one per CPU].
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Texts per batch (texts are sorted by length into batches).
    #[arg(long, default_value_t = quiver_embed::DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
    /// Keep the first D dimensions and rescale to unit length (Matryoshka truncation).
    #[arg(long)]
    pub dims: Option<usize>,
    /// Write every token's output vector instead of one vector per text (late interaction,
    /// multi-vectors): the output (.fvecs or .npy) holds the tokens of all texts back to
    /// back, one row per token (`[CLS]` and `[SEP]` included, not normalised), and
    /// `<output>.counts` each text's token count, one per line.
    #[arg(long)]
    pub tokens: bool,
}

/// The output file, written as `<output>.partial` until [`Output::finish`].
enum Writer {
    Fvecs(FvecsWriter),
    Npy(NpyWriter),
    Jsonl(BufWriter<File>),
}

struct Output {
    path: PathBuf,
    partial: PathBuf,
    writer: Writer,
}

impl Output {
    fn create(path: &Path, format: Format, dim: usize) -> Result<Output> {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        let partial = path.with_file_name(name);
        let writer = match format {
            Format::Fvecs => Writer::Fvecs(FvecsWriter::create(&partial, dim)?),
            Format::Npy => Writer::Npy(NpyWriter::create(&partial, dim)?),
            Format::JsonLines => Writer::Jsonl(BufWriter::new(
                File::create(&partial)
                    .with_context(|| format!("cannot create {}", partial.display()))?,
            )),
        };
        Ok(Output {
            path: path.to_path_buf(),
            partial,
            writer,
        })
    }

    fn write(&mut self, texts: &[Text], vectors: &[f32], dim: usize) -> Result<()> {
        match &mut self.writer {
            Writer::Fvecs(w) => w.write_rows(vectors)?,
            Writer::Npy(w) => w.write_rows(vectors)?,
            Writer::Jsonl(w) => {
                for (t, v) in texts.iter().zip(vectors.chunks_exact(dim)) {
                    let mut o = serde_json::Map::new();
                    if let Some(id) = &t.id {
                        o.insert("id".into(), id.clone());
                    }
                    o.insert("vector".into(), serde_json::json!(v));
                    serde_json::to_writer(&mut *w, &o)?;
                    w.write_all(b"\n")
                        .with_context(|| format!("cannot write {}", self.partial.display()))?;
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self.writer {
            Writer::Fvecs(w) => w.finish()?,
            Writer::Npy(w) => w.finish()?,
            Writer::Jsonl(w) => w
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_data())
                .with_context(|| format!("cannot write {}", self.partial.display()))?,
        }
        std::fs::rename(&self.partial, &self.path).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.partial.display(),
                self.path.display()
            )
        })
    }
}

pub fn run(args: EmbedArgs) -> Result<()> {
    let format = Format::from_path(&args.output).map_err(|_| {
        anyhow::anyhow!(
            "{}: unknown output format: use .fvecs, .npy or .jsonl",
            args.output.display()
        )
    })?;
    if args.dims == Some(0) {
        bail!("--dims must be at least 1");
    }
    if args.tokens && (args.dims.is_some() || format == Format::JsonLines) {
        bail!("--tokens writes .fvecs or .npy at the model's full width (no --dims)");
    }

    // Pass 1: check the input and count the texts.
    let mut reader = TextReader::open(&args.input)?;
    let mut total = 0u64;
    while reader.next_text(&args.text_field)?.is_some() {
        total += 1;
    }

    let dir = quiver_embed::locate_model(args.model.as_deref())?;
    let options = EmbedOptions {
        threads: args.threads,
        batch_size: args.batch_size,
        ..EmbedOptions::default()
    };
    let embedder = Embedder::load(&dir, options)
        .with_context(|| format!("cannot load the model from {}", dir.display()))?;
    let dim = args.dims.unwrap_or(embedder.dim());
    if dim > embedder.dim() {
        bail!("--dims {dim} is more than the model's {}", embedder.dim());
    }
    let threads = embedder.options().threads;
    eprintln!(
        "embedding {total} texts from {} with {} on {threads} thread(s), batches of {}",
        args.input.display(),
        dir.display(),
        args.batch_size
    );

    // Pass 2: embed window by window, in input order.
    let window = (args.batch_size * threads * 16).clamp(1024, 16384);
    let mut reader = TextReader::open(&args.input)?;
    let mut output = Output::create(&args.output, format, dim)?;
    let mut progress = Progress::new("embedding", Some(total), "texts");
    let start = Instant::now();
    let (mut done, mut tokens) = (0u64, 0usize);
    let mut truncated_lines = Vec::new();
    let mut truncated = 0usize;
    let mut counts = String::new();
    let result = (|| -> Result<()> {
        loop {
            let mut texts = Vec::with_capacity(window);
            while texts.len() < window {
                match reader.next_text(&args.text_field)? {
                    Some(t) => texts.push(t),
                    None => break,
                }
            }
            if texts.is_empty() {
                return Ok(());
            }
            let strs: Vec<&str> = texts.iter().map(|t| t.text.as_str()).collect();
            if args.tokens {
                let per_text = embedder.embed_tokens(&strs)?;
                for t in &per_text {
                    counts.push_str(&format!("{}\n", t.len() / dim));
                    tokens += t.len() / dim;
                }
                output.write(&[], &per_text.concat(), dim)?;
                done += texts.len() as u64;
                let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
                progress.update(done, &format!("{rate:.0} texts/s"));
                continue;
            }
            let mut e = embedder.embed(&strs)?;
            if dim != e.dim {
                e.truncate_dims(dim)?;
            }
            truncated += e.truncated.len();
            for &i in &e.truncated {
                if truncated_lines.len() < 5
                    && let Some(t) = texts.get(i)
                {
                    truncated_lines.push(t.line);
                }
            }
            output.write(&texts, &e.vectors, dim)?;
            done += texts.len() as u64;
            tokens += e.tokens;
            let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
            progress.update(done, &format!("{rate:.0} texts/s"));
        }
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&output.partial);
        return Err(e);
    }
    if args.tokens {
        let mut name = args.output.file_name().unwrap_or_default().to_os_string();
        name.push(".counts");
        let path = args.output.with_file_name(name);
        std::fs::write(&path, &counts)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    output.finish()?;
    let secs = start.elapsed().as_secs_f64();
    progress.finish(
        done,
        &format!("{:.0} texts/s", done as f64 / secs.max(1e-9)),
    );
    if truncated > 0 {
        let lines: Vec<String> = truncated_lines.iter().map(u64::to_string).collect();
        eprintln!(
            "note: {truncated} text(s) longer than {} tokens were truncated (line {}{})",
            quiver_embed::DEFAULT_MAX_TOKENS,
            lines.join(", "),
            if truncated > lines.len() { ", ..." } else { "" }
        );
    }
    let rows = if args.tokens { tokens as u64 } else { done };
    eprintln!(
        "embedded {done} texts ({tokens} tokens) in {secs:.2}s ({:.1} texts/s); wrote {} ({format}, {rows} × {dim})",
        done as f64 / secs.max(1e-9),
        args.output.display()
    );
    Ok(())
}
