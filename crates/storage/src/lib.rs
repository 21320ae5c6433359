//! Quiver's on-disk formats and the discipline that makes them crash-safe.
//!
//! - [`frame`]: the envelope of every file (magic, version, checksums), streamed or mapped.
//! - [`wal`]: the write-ahead log with group commit and torn-tail recovery.
//! - [`fs`]: atomic replacement and directory fsyncs.
//! - [`segment`]: the files of a sealed segment (vectors, sparse vectors, ids, payloads,
//!   deleted bitmaps).
//! - [`multi`]: a segment's multi-vector token lists.
//! - [`manifest`]: the collection's root of truth, replaced atomically.
//!
//! This crate knows bytes and files, not collections: the engine decides what goes in them.
//! Every format is described in `docs/format.md`. Little-endian hosts only.

#[cfg(target_endian = "big")]
compile_error!("Quiver's file formats are little-endian and are mapped directly into memory");

pub mod error;
pub mod frame;
pub mod fs;
pub mod manifest;
pub mod multi;
pub mod point_id;
pub mod segment;
pub mod wal;

pub use error::{Error, IoContext, Result};
pub use quiver_types::PointId;
