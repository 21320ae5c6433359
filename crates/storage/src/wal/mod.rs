//! The write-ahead log: every acknowledged write is here before it is anywhere else.
//!
//! ```text
//! wal/<first_seq, 20 digits>.wal
//!   header   64 bytes: the frame header of `frame.rs` with magic "QVWAL\x1a\n\0", version,
//!            body_len 0 and meta[0] = sequence number of the file's first record
//!   records  repeated until the end of the file:
//!            len  u32 LE   payload bytes
//!            crc  u32 LE   CRC32C of the 8 seq bytes followed by the payload
//!            seq  u64 LE   strictly consecutive across records and files
//!            payload
//! ```
//! Appends go to the newest file; `rotate` starts a new file (the old one is fsynced first),
//! and so does `append` when the record would take the newest file past `max_file_bytes`.
//! `Wal::sync_to` implements group commit: one `fdatasync` covers every record appended before
//! it started, and callers arriving during it wait for the next one.
//!
//! Recovery (`WalReader`) reads files in order. A record that fails its checks in the last file,
//! with no valid record anywhere after it, is a torn tail (a write in flight at a crash, never
//! acknowledged): it is cut off with a warning. Any other damage is an error naming file and
//! offset.

use crate::error::{Error, IoContext, Result};
use crate::frame::{self, FileKind, HEADER_LEN};
use crate::fs::sync_dir;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub const WAL_KIND: FileKind = FileKind {
    magic: *b"QVWAL\x1a\n\0",
    version: 1,
};

const RECORD_HEADER: usize = 16;
/// Largest payload accepted; a length field above it is damage, not data.
pub const MAX_RECORD: usize = 1 << 30;

/// Default size past which `append` starts a new log file (`Wal::with_max_file_bytes`).
/// Chosen, not measured: the log is truncated by whole files, so files well below the default
/// seal threshold (256 MiB of segment data) let a publish free most of the log, while
/// rotations (three fsyncs each) stay rare.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;

fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

/// WAL files in `dir`, sorted by first sequence number.
fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e).at(dir),
    };
    for entry in entries {
        let path = entry.at(dir)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(stem) = name.strip_suffix(".wal")
            && let Ok(seq) = stem.parse::<u64>()
        {
            files.push((seq, path));
        }
    }
    files.sort();
    Ok(files)
}

/// One record read back during recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// What recovery found at the end of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalEnd {
    /// Sequence number the next append gets.
    pub next_seq: u64,
    /// Bytes cut off a torn tail (0 when the log ended cleanly).
    pub truncated_bytes: u64,
}

/// Encodes a record. `len` is the payload's length, at most `MAX_RECORD` (checked by the caller).
fn encode_record(seq: u64, payload: &[u8], len: u32, out: &mut Vec<u8>) {
    out.clear();
    let seq_bytes = seq.to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&seq_bytes), payload);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&seq_bytes);
    out.extend_from_slice(payload);
}

mod reader;
#[cfg(test)]
mod tests;
mod writer;

pub use reader::WalReader;
pub use writer::Wal;
