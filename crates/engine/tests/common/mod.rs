//! Helpers shared by the engine's integration tests.

#![allow(dead_code, reason = "each test binary uses a subset")]

use quiver_engine::{Collection, Database, DatabaseOptions, Durability, PointId, With};
use std::path::Path;
use std::time::Duration;

/// A small seeded generator (64-bit LCG, high bits): reproducible data without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in [-1, 1], in steps of 1e-4.
    pub fn f32(&mut self) -> f32 {
        (self.next() % 20_001) as f32 / 10_000.0 - 1.0
    }

    pub fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.f32()).collect()
    }

    /// One of `xs` (not empty).
    pub fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize].clone()
    }
}

/// Every live id, by scrolling page after page.
pub fn scroll_all(c: &Collection, page: usize) -> Vec<PointId> {
    let mut ids = Vec::new();
    let mut from = None;
    loop {
        let p = c
            .scroll(from, page, With::default())
            .unwrap_or_else(|e| panic!("scroll: {e}"));
        ids.extend(p.points.iter().map(|r| r.id));
        match p.next {
            Some(n) => from = Some(n),
            None => return ids,
        }
    }
}

/// A database whose writes are fsynced every `every` rather than one by one: for tests about
/// concurrency, where per-write fsyncs only slow the run down.
pub fn open_periodic(dir: &Path, every: Duration) -> Database {
    Database::open(
        dir,
        DatabaseOptions {
            durability: Durability::Periodic(every),
            ..DatabaseOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}
