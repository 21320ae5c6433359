//! File-system discipline: every durable publish goes through here.
//!
//! Atomic replacement is "write a temporary file, fsync it, rename it over the target, fsync the
//! directory": after a crash either the old or the new file is visible, never a mix.

use crate::error::{IoContext, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Makes a directory's entries (created, renamed, removed files) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Creates `dir` (and parents) and fsyncs it and its parent so the entry survives a crash.
pub fn create_dir_durable(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).at(dir)?;
    sync_dir(dir)?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically and durably (temp file, fsync, rename, directory fsync).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .at(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    fs::rename(&tmp, path).at(path)?;
    sync_dir(dir)
}

/// Removes a file if it exists.
pub fn remove_file_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r.at(path),
    }
}

/// Total size in bytes of the regular files under `dir`, recursively (0 if it does not exist).
///
/// Files may come and go during the walk (a concurrent seal or compaction): an entry that
/// vanished is skipped, so the figure is approximate while maintenance runs.
pub fn disk_usage(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).at(dir),
    };
    for entry in entries {
        let entry = entry.at(dir)?;
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).at(entry.path()),
        };
        if meta.is_dir() {
            total += disk_usage(&entry.path())?;
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}
