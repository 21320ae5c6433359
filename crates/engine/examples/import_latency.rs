//! Imports an `.fvecs` file in batches through the embedded API and reports each batch's
//! latency: what a writer waits for while segments are sealed (BENCHMARKS.md).
//!
//! ```sh
//! cargo run --release -p quiver-engine --example import_latency -- BASE.fvecs DATA_DIR [BATCH] [SEAL_MB] [RATE]
//! ```
//! `RATE`: points per second the writer offers (batches start on schedule; 0, the default: as
//! fast as the engine takes them).

use quiver_engine::*;
use std::io::Read;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(fvecs), Some(data)) = (args.get(1), args.get(2)) else {
        return Err("usage: import_latency BASE.fvecs DATA_DIR [BATCH] [SEAL_MB] [RATE]".into());
    };
    let batch: usize = args.get(3).map_or(Ok(1000), |s| s.parse())?;
    let seal_mb: u64 = args.get(4).map_or(Ok(64), |s| s.parse())?;
    let rate: f64 = args.get(5).map_or(Ok(0.0), |s| s.parse())?;
    let mut bytes = Vec::new();
    std::fs::File::open(fvecs)?.read_to_end(&mut bytes)?;
    let dim = u32::from_le_bytes(bytes.get(..4).ok_or("empty file")?.try_into()?) as usize;
    let row = 4 + 4 * dim;
    let vectors: Vec<Vec<f32>> = bytes
        .chunks_exact(row)
        .map(|r| {
            r[4..]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect();
    let db = Database::open(data, DatabaseOptions::default())?;
    let schema = Schema {
        sparse_vectors: Default::default(),
        vectors: [(
            String::new(),
            VectorKind::dense_indexed(dim, Distance::Cosine, IndexKind::hnsw(16, 200)),
        )]
        .into(),
    };
    let config = CollectionConfig {
        seal_threshold_bytes: seal_mb << 20,
        ..CollectionConfig::default()
    };
    let c = db.create_collection("import", schema, config)?;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for (b, chunk) in vectors.chunks(batch).enumerate() {
        let points = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| Point::new((b * batch + i) as u64, v.clone()))
            .collect();
        if rate > 0.0 {
            let due = started + std::time::Duration::from_secs_f64((b * batch) as f64 / rate);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let t = Instant::now();
        c.upsert(points)?;
        latencies.push(t.elapsed().as_secs_f64());
    }
    let imported = started.elapsed().as_secs_f64();
    let t = Instant::now();
    c.flush()?;
    let flushed = t.elapsed().as_secs_f64();
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let pick = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize] * 1e3;
    let slowest: Vec<String> = {
        let mut idx: Vec<usize> = (0..latencies.len()).collect();
        idx.sort_by(|&a, &b| latencies[b].total_cmp(&latencies[a]));
        idx.iter()
            .take(5)
            .map(|&i| format!("batch {i}: {:.0} ms", latencies[i] * 1e3))
            .collect()
    };
    println!(
        "{{\"rows\": {}, \"batch\": {batch}, \"seal_mb\": {seal_mb}, \"rate\": {rate}, \"import_s\": {imported:.1}, \"flush_s\": {flushed:.1}, \"p50_ms\": {:.1}, \"p99_ms\": {:.1}, \"max_ms\": {:.0}, \"count\": {}}}",
        vectors.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0),
        c.count()
    );
    eprintln!("slowest: {}", slowest.join(", "));
    Ok(())
}
