//! Sentences per second of the embedder on the `text` field of a JSON Lines file.
//!
//! ```text
//! cargo run --release -p quiver-embed --example throughput -- FILE.jsonl [N] [THREADS] [BATCH] [REPEATS]
//! ```
//!
//! Embeds the first N texts (default 10,000) REPEATS times (default 3) after one warm-up
//! batch and prints, per run, the wall time and the CPU time of the process (user + system,
//! from `/proc/self/stat`, so Linux only), and the best rates;
//! `scripts/embed_torch_bench.py` measures sentence-transformers the same way.

use std::io::BufRead;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        Ok(match args.get(i) {
            Some(s) => s.parse()?,
            None => default,
        })
    };
    let path = args
        .first()
        .ok_or("usage: throughput FILE.jsonl [N] [THREADS] [BATCH] [REPEATS]")?;
    let (n, threads, batch_size, repeats) = (arg(1, 10_000)?, arg(2, 1)?, arg(3, 32)?, arg(4, 3)?);
    let mut texts = Vec::with_capacity(n);
    for line in std::io::BufReader::new(std::fs::File::open(path)?)
        .lines()
        .take(n)
    {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        texts.push(v["text"].as_str().ok_or("no text field")?.to_string());
    }
    let dir = quiver_embed::locate_model(None)?;
    let options = quiver_embed::EmbedOptions {
        threads,
        batch_size,
        ..Default::default()
    };
    let embedder = quiver_embed::Embedder::load(&dir, options)?;
    embedder.embed(&texts[..batch_size.min(texts.len())])?;
    let (mut best, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
    let mut tokens = 0;
    let n = texts.len() as f64;
    for run in 0..repeats {
        let (t, cpu) = (Instant::now(), cpu_seconds());
        let e = embedder.embed(&texts)?;
        let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        tokens = e.tokens;
        eprintln!(
            "run {run}: {secs:.3} s, {:.1} sentences/s; {cpu:.2} CPU s, {:.1} sentences per CPU s",
            n / secs,
            n / cpu
        );
        best = best.min(secs);
        best_cpu = best_cpu.min(cpu);
    }
    println!(
        "{path}: {n} texts, {tokens} tokens, threads {threads}, batch {batch_size}: best {best:.3} s, {:.1} sentences/s; {:.1} sentences per CPU s",
        n / best,
        n / best_cpu
    );
    Ok(())
}

/// User + system CPU time of this process so far (Linux: fields 14 and 15 of
/// `/proc/self/stat`, in clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) is parenthesised and may hold spaces: count after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}
