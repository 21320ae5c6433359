//! `quiver demo`: the main job end to end on generated data.
//!
//! Writes a JSON Lines file of "documents" (vectors drawn around topic centres, with a topic and
//! a title in the payload), imports it with `quiver import`'s code path, and answers a query
//! near one topic, showing how many results share its topic.

use crate::import::{self, ImportArgs};
use anyhow::{Context, Result};
use quiver_engine::{Distance, SearchRequest, With};
use std::io::{BufWriter, Write};
use std::path::Path;

const TOPICS: [&str; 12] = [
    "astronomy",
    "botany",
    "cooking",
    "geology",
    "music",
    "medicine",
    "sailing",
    "chess",
    "poetry",
    "finance",
    "weather",
    "architecture",
];

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Points to generate.
    #[arg(long, default_value_t = 20_000)]
    pub points: u64,
    /// Dimension of the generated vectors.
    #[arg(long, default_value_t = 64)]
    pub dim: usize,
}

/// xorshift64*: a small deterministic generator, so the demo is the same on every machine.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Roughly normal (sum of uniforms).
    fn gauss(&mut self) -> f32 {
        (0..4)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32)
            .sum::<f32>()
            - 2.0
    }
}

pub fn run(data: &Path, a: DemoArgs) -> Result<()> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let centres: Vec<Vec<f32>> = TOPICS
        .iter()
        .map(|_| (0..a.dim).map(|_| rng.gauss()).collect())
        .collect();
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    let file = data.join("demo.jsonl");
    {
        let f = std::fs::File::create(&file)
            .with_context(|| format!("cannot create {}", file.display()))?;
        let mut w = BufWriter::new(f);
        for id in 0..a.points {
            let t = (rng.next() % TOPICS.len() as u64) as usize;
            let v: Vec<f32> = centres[t].iter().map(|c| c + 0.8 * rng.gauss()).collect();
            let line = serde_json::json!({
                "id": id, "vector": v,
                "payload": {"topic": TOPICS[t], "title": format!("{} note #{id}", TOPICS[t])},
            });
            writeln!(w, "{line}").with_context(|| format!("cannot write {}", file.display()))?;
        }
        w.flush()
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    eprintln!(
        "demo: wrote {} generated documents to {}",
        a.points,
        file.display()
    );

    {
        let db = crate::open_db(data)?;
        if db.collection("demo").is_ok() {
            db.drop_collection("demo")?;
        }
    }
    import::run(
        data,
        ImportArgs {
            collection: "demo".into(),
            file: file.clone(),
            format: None,
            batch: 1000,
            vector_name: String::new(),
            start_id: 0,
            id_field: "id".into(),
            vector_field: "vector".into(),
            payload_field: "payload".into(),
            bulk: false,
            create: true,
            distance: Distance::Cosine,
            no_check: false,
            index: crate::IndexArgs {
                index: "hnsw".into(),
                m: 16,
                ef_construction: 200,
                quantization: "lvq8".into(),
            },
        },
    )?;

    let db = crate::open_db(data)?;
    let c = db.collection("demo")?;
    let topic = 2;
    let query: Vec<f32> = centres[topic]
        .iter()
        .map(|c| c + 0.3 * rng.gauss())
        .collect();
    let hits = c.search(&SearchRequest {
        with: With::PAYLOAD,
        ..SearchRequest::new(query.clone(), 5)
    })?;
    println!(
        "query: a vector near the `{}` topic; top 5 of {} points:",
        TOPICS[topic],
        c.count()
    );
    for (i, h) in hits.iter().enumerate() {
        let title = h
            .payload
            .as_ref()
            .and_then(|p| p.get("title"))
            .and_then(|t| t.as_str())
            .unwrap_or("");
        println!(
            "  {}. id {:>6}  cosine {:.4}  {title}",
            i + 1,
            h.id.to_string(),
            h.score
        );
    }
    let on_topic = hits
        .iter()
        .filter(|h| {
            h.payload
                .as_ref()
                .and_then(|p| p.get("topic"))
                .and_then(|t| t.as_str())
                == Some(TOPICS[topic])
        })
        .count();
    println!(
        "{on_topic} of {} results are about {}. Data directory: {}",
        hits.len(),
        TOPICS[topic],
        data.display()
    );
    Ok(())
}
