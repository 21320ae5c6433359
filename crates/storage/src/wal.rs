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

/// Bytes read per system call during recovery, and the most a reader holds besides the
/// payload it returns. Not measured: a size at which the system calls cost little next to
/// checksumming and decoding the records.
const READ_BUFFER: usize = 1 << 18;

/// A record header's fields: payload length, stored CRC, seq bytes.
fn decode_record_header(head: &[u8; RECORD_HEADER]) -> (usize, u32, [u8; 8]) {
    let [l0, l1, l2, l3, c0, c1, c2, c3, seq @ ..] = *head;
    let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    (len, u32::from_le_bytes([c0, c1, c2, c3]), seq)
}

fn read_some(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

/// Checks the record starting at byte `at` of `file` (of length `file_len`) without holding
/// its payload: `Some(seq)` if it is complete and its checksum holds. `scratch` is any
/// non-empty buffer.
fn check_record_at(
    file: &mut File,
    at: u64,
    file_len: u64,
    scratch: &mut [u8],
) -> std::io::Result<Option<u64>> {
    let Some(room) = file_len
        .checked_sub(at)
        .and_then(|r| r.checked_sub(RECORD_HEADER as u64))
    else {
        return Ok(None);
    };
    file.seek(SeekFrom::Start(at))?;
    let mut head = [0u8; RECORD_HEADER];
    file.read_exact(&mut head)?;
    let (len, crc, seq_bytes) = decode_record_header(&head);
    if len > MAX_RECORD || len as u64 > room {
        return Ok(None);
    }
    let mut actual = crc32c::crc32c(&seq_bytes);
    let mut payload = file.take(len as u64);
    loop {
        let n = read_some(&mut payload, scratch)?;
        let Some(bytes) = scratch.get(..n).filter(|b| !b.is_empty()) else {
            break;
        };
        actual = crc32c::crc32c_append(actual, bytes);
    }
    Ok((actual == crc).then_some(u64::from_le_bytes(seq_bytes)))
}

/// Reads the log during recovery, one record at a time, in sequence order.
///
/// Files are streamed: the reader holds one read buffer and the record it returns, never a
/// whole file.
pub struct WalReader {
    dir: PathBuf,
    files: Vec<(u64, PathBuf)>,
    /// Index into `files` of the file being read.
    current: usize,
    /// The file being read, positioned at `pos`.
    reader: Option<BufReader<File>>,
    /// Length of the file being read, taken when it was opened (nothing writes it meanwhile).
    len: u64,
    pos: u64,
    next_seq: Option<u64>,
    truncated_bytes: u64,
    done: bool,
}

impl WalReader {
    /// Opens the log in `dir` for recovery. The caller checks that the log starts at or before
    /// the first sequence number it needs.
    pub fn open(dir: &Path) -> Result<Self> {
        let files = list_files(dir)?;
        let mut r = WalReader {
            dir: dir.to_path_buf(),
            files,
            current: 0,
            reader: None,
            len: 0,
            pos: 0,
            next_seq: None,
            truncated_bytes: 0,
            done: false,
        };
        r.load_current()?;
        Ok(r)
    }

    fn is_last(&self) -> bool {
        self.current + 1 >= self.files.len()
    }

    fn load_current(&mut self) -> Result<()> {
        self.reader = None;
        let Some((first_seq, path)) = self.files.get(self.current).cloned() else {
            self.done = true;
            return Ok(());
        };
        let mut file = File::open(&path).at(&path)?;
        let len = file.metadata().at(&path)?.len();
        let mut head = [0u8; HEADER_LEN];
        let header = if len >= HEADER_LEN as u64 {
            file.read_exact(&mut head).at(&path)?;
            Some(frame::decode_header(&path, WAL_KIND, &head))
        } else {
            None
        };
        match header {
            Some(Ok(h)) if h.meta[0] == first_seq => {}
            Some(Err(e @ Error::NewerFormat { .. })) => return Err(e),
            Some(Ok(h)) => {
                return Err(Error::corrupt(
                    &path,
                    24,
                    format!(
                        "header says first sequence {}, file name says {first_seq}",
                        h.meta[0]
                    ),
                ));
            }
            // A header that never became durable: the file was being created at a crash, so
            // nothing in it was acknowledged. (A file longer than its header had its header
            // fsynced before any record was appended: damage there is corruption, below.)
            _ if self.is_last() && len <= HEADER_LEN as u64 => {
                log::warn!(
                    "{}: incomplete header of the newest log file (crash while creating it); removing it",
                    path.display()
                );
                self.truncated_bytes += len;
                fs::remove_file(&path).at(&path)?;
                sync_dir(&self.dir)?;
                self.files.pop();
                self.done = true;
                return Ok(());
            }
            Some(Err(e)) => return Err(e),
            None => {
                return Err(Error::corrupt(&path, 0, "log file shorter than its header"));
            }
        }
        match self.next_seq {
            Some(expected) if expected != first_seq => {
                return Err(Error::corrupt(
                    &path,
                    0,
                    format!(
                        "log file starts at sequence {first_seq}, expected {expected}: a log file is missing"
                    ),
                ));
            }
            _ => self.next_seq = Some(first_seq),
        }
        self.reader = Some(BufReader::with_capacity(READ_BUFFER, file));
        self.len = len;
        self.pos = HEADER_LEN as u64;
        Ok(())
    }

    /// The next record, or `None` at the end of the log.
    pub fn next_record(&mut self) -> Result<Option<WalRecord>> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.pos == self.len {
                self.current += 1;
                self.load_current()?;
                continue;
            }
            let (path, expected) = match (self.files.get(self.current), self.next_seq) {
                (Some((_, p)), Some(s)) => (p.clone(), s),
                _ => return Ok(None),
            };
            match self.read_record(&path)? {
                Some((seq, payload)) if seq == expected => {
                    self.pos += (RECORD_HEADER + payload.len()) as u64;
                    self.next_seq = Some(seq + 1);
                    return Ok(Some(WalRecord { seq, payload }));
                }
                Some((seq, _)) => {
                    return Err(Error::corrupt(
                        &path,
                        self.pos,
                        format!("record has sequence {seq}, expected {expected}"),
                    ));
                }
                None => {
                    if self.is_last() && !self.any_valid_record_after(&path, self.pos)? {
                        self.cut_torn_tail(&path)?;
                        self.done = true;
                        return Ok(None);
                    }
                    return Err(Error::corrupt(
                        &path,
                        self.pos,
                        "damaged log record followed by valid ones (not a torn tail): refusing to guess",
                    ));
                }
            }
        }
    }

    /// Reads the record at `pos` if it is complete and its checksum holds: (seq, payload).
    /// After `None` the reader's position is unspecified; reading stops there.
    fn read_record(&mut self, path: &Path) -> Result<Option<(u64, Vec<u8>)>> {
        let room = self.len.saturating_sub(self.pos);
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        if room < RECORD_HEADER as u64 {
            return Ok(None);
        }
        let mut head = [0u8; RECORD_HEADER];
        reader.read_exact(&mut head).at(path)?;
        let (len, crc, seq_bytes) = decode_record_header(&head);
        // The length is checked against the file before anything is allocated for it.
        if len > MAX_RECORD || len as u64 > room - RECORD_HEADER as u64 {
            return Ok(None);
        }
        let mut payload = vec![0u8; len];
        reader.read_exact(&mut payload).at(path)?;
        let actual = crc32c::crc32c_append(crc32c::crc32c(&seq_bytes), &payload);
        if actual != crc {
            return Ok(None);
        }
        Ok(Some((u64::from_le_bytes(seq_bytes), payload)))
    }

    /// Whether a checksum-valid record starts anywhere after `from` in the current file (a
    /// torn tail has none). Candidates are first screened by a plausible sequence number, so
    /// that scanning a long torn tail does not checksum garbage at every offset. The rest of
    /// the file is streamed through a window of `READ_BUFFER` bytes; a candidate's checksum is
    /// verified with a second handle, also streamed.
    fn any_valid_record_after(&self, path: &Path, from: u64) -> Result<bool> {
        let expected = self.next_seq.unwrap_or(0);
        let plausible = |seq: u64| seq >= expected && seq - expected < (1 << 32);
        let mut base = from + 1; // file offset of window[0]
        let mut scan = File::open(path).at(path)?;
        scan.seek(SeekFrom::Start(base)).at(path)?;
        let mut scan = scan.take(self.len.saturating_sub(base));
        let mut check = File::open(path).at(path)?;
        let mut chunk = vec![0u8; READ_BUFFER];
        let mut scratch = vec![0u8; READ_BUFFER];
        let mut window: Vec<u8> = Vec::with_capacity(READ_BUFFER + RECORD_HEADER);
        loop {
            let n = read_some(&mut scan, &mut chunk).at(path)?;
            let Some(read) = chunk.get(..n).filter(|b| !b.is_empty()) else {
                return Ok(false);
            };
            window.extend_from_slice(read);
            // Offsets whose whole record header is in the window; the last RECORD_HEADER - 1
            // bytes wait for the next chunk.
            let starts = window.len().saturating_sub(RECORD_HEADER - 1);
            for i in 0..starts {
                let seq = window
                    .get(i + 8..i + 16)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_le_bytes);
                if seq.is_some_and(plausible)
                    && check_record_at(&mut check, base + i as u64, self.len, &mut scratch)
                        .at(path)?
                        .is_some()
                {
                    return Ok(true);
                }
            }
            window.drain(..starts);
            base += starts as u64;
        }
    }

    fn cut_torn_tail(&mut self, path: &Path) -> Result<()> {
        let cut = self.len - self.pos;
        log::warn!(
            "{}: torn tail of {cut} bytes at offset {} (a write in flight at a crash, never acknowledged); truncating",
            path.display(),
            self.pos
        );
        self.reader = None;
        let f = OpenOptions::new().write(true).open(path).at(path)?;
        f.set_len(self.pos).at(path)?;
        f.sync_all().at(path)?;
        self.truncated_bytes += cut;
        self.len = self.pos;
        Ok(())
    }

    /// Reads to the end (if not done yet) and reports where appends continue. If the log is
    /// empty, appends continue at `default_next`.
    pub fn finish(mut self, default_next: u64) -> Result<WalEnd> {
        while self.next_record()?.is_some() {}
        Ok(WalEnd {
            next_seq: self.next_seq.unwrap_or(default_next).max(default_next),
            truncated_bytes: self.truncated_bytes,
        })
    }
}

struct Writer {
    file: Arc<File>,
    path: PathBuf,
    /// Sequence number of the current file's first record.
    first_seq: u64,
    next_seq: u64,
    /// Bytes in the current file (header and records).
    file_bytes: u64,
    buf: Vec<u8>,
    poisoned: bool,
}

impl Writer {
    /// Ends the current file and starts `<next_seq>.wal`: the current file is fsynced first,
    /// then the new one is created with its header fsynced, and `wal/` is fsynced. Any failure
    /// poisons the log: a successor may already exist, and a record appended to the old file
    /// after it would leave two files claiming the same sequence numbers.
    fn start_next_file(&mut self, dir: &Path) -> Result<()> {
        if let Err(e) = self.file.sync_data() {
            self.poisoned = true;
            return Err(e).at(&self.path);
        }
        match create_file(dir, self.next_seq) {
            Ok((file, path)) => {
                self.file = Arc::new(file);
                self.path = path;
                self.first_seq = self.next_seq;
                self.file_bytes = HEADER_LEN as u64;
                Ok(())
            }
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }
}

/// The appendable log. Shared by reference between writer threads.
pub struct Wal {
    dir: PathBuf,
    writer: Mutex<Writer>,
    /// Highest sequence number known durable. Held while fsyncing, which is what batches
    /// concurrent callers into one fsync (group commit).
    synced: Mutex<u64>,
    /// `append` starts a new file rather than take the current one past this many bytes.
    max_file_bytes: u64,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal").field("dir", &self.dir).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; the poisoned flag in `Writer`
    // is what guards the log's consistency.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn create_file(dir: &Path, first_seq: u64) -> Result<(File, PathBuf)> {
    let path = dir.join(file_name(first_seq));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .at(&path)?;
    f.write_all(&frame::encode(WAL_KIND, [first_seq, 0, 0, 0], &[])[..HEADER_LEN])
        .at(&path)?;
    f.sync_all().at(&path)?;
    sync_dir(dir)?;
    Ok((f, path))
}

impl Wal {
    /// Opens the log for appending after recovery (`WalReader::finish`) returned `end`.
    /// Appends go to a fresh file starting at `end.next_seq`, so a recovered file is never
    /// written again.
    pub fn resume(dir: &Path, end: &WalEnd) -> Result<Wal> {
        fs::create_dir_all(dir).at(dir)?;
        let existing = list_files(dir)?;
        // Records recovered from the page cache after a process crash may not be on disk yet:
        // make them durable before anything new is acknowledged after them.
        for (_, p) in &existing {
            File::open(p).and_then(|f| f.sync_all()).at(p)?;
        }
        let (file, path) = match existing.last() {
            // A file holding no records yet (e.g. created just before a crash) is reused.
            Some((first, p)) if *first == end.next_seq => {
                let f = OpenOptions::new().append(true).open(p).at(p)?;
                (f, p.clone())
            }
            _ => create_file(dir, end.next_seq)?,
        };
        let file_bytes = file.metadata().at(&path)?.len();
        let first_seq = end.next_seq;
        Ok(Wal {
            dir: dir.to_path_buf(),
            writer: Mutex::new(Writer {
                file: Arc::new(file),
                path,
                first_seq,
                next_seq: end.next_seq,
                file_bytes,
                buf: Vec::new(),
                poisoned: false,
            }),
            synced: Mutex::new(end.next_seq.saturating_sub(1)),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        })
    }

    /// Sets the size past which `append` starts a new file (default `DEFAULT_MAX_FILE_BYTES`).
    /// A file exceeds it only when it holds a single record larger than the limit.
    pub fn with_max_file_bytes(mut self, bytes: u64) -> Wal {
        self.max_file_bytes = bytes;
        self
    }

    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one record (written to the OS, not yet durable). Returns its sequence number.
    /// A payload over `MAX_RECORD` bytes is refused (`RecordTooLarge`) before anything is
    /// written: recovery would read its length field as damage.
    ///
    /// If the current file holds a record and this one would take it past `max_file_bytes`,
    /// a new file is started first, exactly as `rotate` does.
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        let mut w = lock(&self.writer);
        if w.poisoned {
            return Err(Error::Poisoned {
                path: w.path.clone(),
            });
        }
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&l| l as usize <= MAX_RECORD)
            .ok_or_else(|| Error::RecordTooLarge {
                path: self.dir.clone(),
                len: payload.len(),
                max: MAX_RECORD,
            })?;
        let record_bytes = RECORD_HEADER as u64 + u64::from(len);
        if w.next_seq > w.first_seq
            && w.file_bytes.saturating_add(record_bytes) > self.max_file_bytes
        {
            // `synced` stays as it is: it is locked before the writer, never after. That is
            // still correct: the old file was fsynced whole, and the next `sync_to` fsyncs the
            // new one.
            w.start_next_file(&self.dir)?;
        }
        let seq = w.next_seq;
        let mut buf = std::mem::take(&mut w.buf);
        encode_record(seq, payload, len, &mut buf);
        let file = Arc::clone(&w.file);
        let written = (&*file).write_all(&buf);
        w.buf = buf;
        if let Err(e) = written {
            // A partial record may be on disk: nothing may be appended after it.
            w.poisoned = true;
            return Err(e).at(&w.path);
        }
        w.next_seq += 1;
        w.file_bytes += record_bytes;
        Ok(seq)
    }

    /// Sequence number of the last appended record (0 if none ever).
    pub fn last_seq(&self) -> u64 {
        lock(&self.writer).next_seq - 1
    }

    /// Returns once every record up to `seq` is durable. Concurrent callers share fsyncs.
    pub fn sync_to(&self, seq: u64) -> Result<()> {
        let mut synced = lock(&self.synced);
        if *synced >= seq {
            return Ok(());
        }
        let (file, path, upto) = {
            let w = lock(&self.writer);
            if w.poisoned {
                return Err(Error::Poisoned {
                    path: w.path.clone(),
                });
            }
            (Arc::clone(&w.file), w.path.clone(), w.next_seq - 1)
        };
        if let Err(e) = file.sync_data() {
            // After a failed fsync the kernel may have dropped dirty pages: the log can no
            // longer promise anything, so it refuses further writes.
            lock(&self.writer).poisoned = true;
            return Err(e).at(path);
        }
        *synced = upto;
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub fn sync_all(&self) -> Result<()> {
        self.sync_to(self.last_seq())
    }

    /// Starts a new log file; the old one is fsynced first. Returns the first sequence number
    /// of the new file: every record below it is in older files. A failure poisons the log.
    pub fn rotate(&self) -> Result<u64> {
        let mut synced = lock(&self.synced);
        let mut w = lock(&self.writer);
        if w.poisoned {
            return Err(Error::Poisoned {
                path: w.path.clone(),
            });
        }
        if w.first_seq == w.next_seq {
            // The current file holds no record yet: it already is the new file.
            return Ok(w.next_seq);
        }
        w.start_next_file(&self.dir)?;
        *synced = w.next_seq - 1;
        Ok(w.next_seq)
    }

    /// Deletes log files whose records all have sequence numbers `<= seq` (already captured by
    /// a published manifest). The file being appended to is never deleted.
    pub fn remove_through(&self, seq: u64) -> Result<()> {
        let current = lock(&self.writer).path.clone();
        let files = list_files(&self.dir)?;
        let mut removed = false;
        for pair in files.windows(2) {
            let [(_, path), (next_first, _)] = pair else {
                continue;
            };
            if *next_first <= seq + 1 && *path != current {
                fs::remove_file(path).at(path)?;
                removed = true;
            }
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Bytes currently held by log files.
    pub fn disk_bytes(&self) -> Result<u64> {
        crate::fs::disk_usage(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recover(dir: &Path) -> Result<(Vec<WalRecord>, WalEnd)> {
        let mut r = WalReader::open(dir)?;
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            out.push(rec);
        }
        Ok((out, r.finish(1)?))
    }

    fn fresh(dir: &Path) -> Wal {
        let (_, end) = recover(dir).unwrap();
        Wal::resume(dir, &end).unwrap()
    }

    #[test]
    fn append_rotate_recover() {
        let d = tempfile::tempdir().unwrap();
        let wal = fresh(d.path());
        for i in 0..10u8 {
            let seq = wal.append(&[i; 5]).unwrap();
            assert_eq!(seq, i as u64 + 1);
            if i == 4 {
                assert_eq!(wal.rotate().unwrap(), 6);
            }
        }
        wal.sync_all().unwrap();
        drop(wal);
        let (recs, end) = recover(d.path()).unwrap();
        assert_eq!(recs.len(), 10);
        assert_eq!(recs[7].payload, vec![7u8; 5]);
        assert_eq!(end.next_seq, 11);
        // Appending resumes in sequence.
        let wal = Wal::resume(d.path(), &end).unwrap();
        assert_eq!(wal.append(b"x").unwrap(), 11);
        wal.remove_through(5).unwrap();
        drop(wal);
        let (recs, _) = recover(d.path()).unwrap();
        assert_eq!(recs.first().map(|r| r.seq), Some(6));
        assert_eq!(recs.len(), 6);
    }

    #[test]
    fn torn_tail_is_cut_at_every_length() {
        let d = tempfile::tempdir().unwrap();
        let wal = fresh(d.path());
        for i in 0..3u8 {
            wal.append(&[i; 100]).unwrap();
        }
        wal.sync_all().unwrap();
        drop(wal);
        let path = list_files(d.path()).unwrap()[0].1.clone();
        let full = fs::read(&path).unwrap();
        let two = HEADER_LEN + 2 * (RECORD_HEADER + 100);
        for cut in two + 1..full.len() {
            fs::write(&path, &full[..cut]).unwrap();
            let (recs, end) = recover(d.path()).unwrap();
            assert_eq!(recs.len(), 2, "cut at {cut}");
            assert_eq!(end.next_seq, 3);
            assert_eq!(end.truncated_bytes, (cut - two) as u64);
            assert_eq!(fs::metadata(&path).unwrap().len() as usize, two);
        }
    }

    #[test]
    fn damage_before_valid_records_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let wal = fresh(d.path());
        for i in 0..3u8 {
            wal.append(&[i; 100]).unwrap();
        }
        drop(wal);
        let path = list_files(d.path()).unwrap()[0].1.clone();
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER_LEN + RECORD_HEADER + 10] ^= 1; // payload of the first record
        fs::write(&path, &bytes).unwrap();
        let err = recover(d.path()).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { offset, .. } if *offset == HEADER_LEN as u64),
            "{err}"
        );
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn damaged_header_of_a_file_with_records_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let wal = fresh(d.path());
        wal.append(b"acknowledged").unwrap();
        wal.sync_all().unwrap();
        drop(wal);
        let path = list_files(d.path()).unwrap()[0].1.clone();
        let mut bytes = fs::read(&path).unwrap();
        bytes[3] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(recover(d.path()), Err(Error::Corrupt { .. })));
        assert!(path.exists(), "the file is kept for inspection");
        // A header cut short by a crash while creating the file is removed.
        fs::write(&path, &bytes[..40]).unwrap();
        let (recs, _) = recover(d.path()).unwrap();
        assert!(recs.is_empty());
        assert!(!path.exists());
    }

    #[test]
    fn missing_middle_file_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let wal = fresh(d.path());
        wal.append(b"a").unwrap();
        wal.rotate().unwrap();
        wal.append(b"b").unwrap();
        wal.rotate().unwrap();
        wal.append(b"c").unwrap();
        drop(wal);
        fs::remove_file(d.path().join(file_name(2))).unwrap();
        assert!(recover(d.path()).is_err());
    }

    /// A payload of `len` bytes that differs with `seq`.
    fn payload_for(seq: u64, len: usize) -> Vec<u8> {
        (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
    }

    #[test]
    fn replay_streams_a_log_larger_than_the_buffer() {
        let d = tempfile::tempdir().unwrap();
        let wal = fresh(d.path());
        // Varied sizes put record boundaries at many offsets of the read buffer; one record
        // is larger than the buffer.
        let mut sizes: Vec<usize> = (0..600).map(|i| (i * 397) % 1500).collect();
        sizes.insert(300, 2 * READ_BUFFER + 3);
        for (i, &len) in sizes.iter().enumerate() {
            let seq = i as u64 + 1;
            assert_eq!(wal.append(&payload_for(seq, len)).unwrap(), seq);
        }
        wal.sync_all().unwrap();
        drop(wal);
        let path = list_files(d.path()).unwrap()[0].1.clone();
        let full_len = fs::metadata(&path).unwrap().len();
        assert!(full_len > 3 * READ_BUFFER as u64);
        let (recs, end) = recover(d.path()).unwrap();
        assert_eq!(recs.len(), sizes.len());
        for (i, (rec, &len)) in recs.iter().zip(&sizes).enumerate() {
            let seq = i as u64 + 1;
            assert_eq!(rec.seq, seq);
            assert!(
                rec.payload == payload_for(seq, len),
                "payload of record {seq}"
            );
        }
        let next = sizes.len() as u64 + 1;
        assert_eq!(
            end,
            WalEnd {
                next_seq: next,
                truncated_bytes: 0
            }
        );

        // A torn tail longer than the buffer: part of a record larger than the buffer.
        let mut torn = Vec::new();
        let torn_payload = payload_for(next, 3 * READ_BUFFER);
        encode_record(next, &torn_payload, torn_payload.len() as u32, &mut torn);
        torn.truncate(2 * READ_BUFFER);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&torn))
            .unwrap();
        let (recs, end) = recover(d.path()).unwrap();
        assert_eq!(recs.len(), sizes.len());
        assert_eq!(end.truncated_bytes, torn.len() as u64);
        assert_eq!(fs::metadata(&path).unwrap().len(), full_len);
    }

    #[test]
    fn damage_a_buffer_before_a_valid_record_is_an_error() {
        // The search for a valid record after a damaged one streams the file too. Here the
        // next record starts a buffer later, its header straddling two chunks of that scan.
        let d = tempfile::tempdir().unwrap();
        let wal = fresh(d.path());
        let big = READ_BUFFER - 20;
        for (seq, len) in [(1, 100), (2, big), (3, 100)] {
            wal.append(&payload_for(seq, len)).unwrap();
        }
        drop(wal);
        let path = list_files(d.path()).unwrap()[0].1.clone();
        let mut bytes = fs::read(&path).unwrap();
        let at = HEADER_LEN + RECORD_HEADER + 100; // start of record 2
        bytes[at + RECORD_HEADER + 5] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let err = recover(d.path()).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { offset, message, .. }
                if *offset == at as u64 && message.contains("followed by valid ones")),
            "{err}"
        );
        // Without record 3, the same damage is a torn tail.
        let end_of_2 = at + RECORD_HEADER + big;
        fs::write(&path, &bytes[..end_of_2]).unwrap();
        let (recs, end) = recover(d.path()).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(end.truncated_bytes, (RECORD_HEADER + big) as u64);
        assert_eq!(fs::metadata(&path).unwrap().len(), at as u64);
    }

    #[test]
    fn oversized_record_is_refused_before_writing() {
        let d = tempfile::tempdir().unwrap();
        let wal = fresh(d.path());
        wal.append(b"a").unwrap();
        let err = wal.append(&vec![0u8; MAX_RECORD + 1]).unwrap_err();
        assert!(
            matches!(err, Error::RecordTooLarge { len, .. } if len == MAX_RECORD + 1),
            "{err}"
        );
        // The log is not poisoned and holds nothing of the refused record.
        assert_eq!(wal.append(b"b").unwrap(), 2);
        drop(wal);
        let (recs, end) = recover(d.path()).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(end.truncated_bytes, 0);
    }

    /// Bytes of a file holding `records` records of `payload` bytes each.
    fn file_len(records: u64, payload: u64) -> u64 {
        HEADER_LEN as u64 + records * (RECORD_HEADER as u64 + payload)
    }

    #[test]
    fn append_starts_a_new_file_past_the_size_limit() {
        let d = tempfile::tempdir().unwrap();
        let wal = fresh(d.path()).with_max_file_bytes(300);
        assert_eq!(wal.max_file_bytes(), 300);
        for seq in 1..=10 {
            assert_eq!(wal.append(&payload_for(seq, 50)).unwrap(), seq);
        }
        // Three 66-byte records fit in 300 bytes (262 with the header); a fourth would not.
        let files = list_files(d.path()).unwrap();
        let starts: Vec<u64> = files.iter().map(|(s, _)| *s).collect();
        assert_eq!(starts, [1, 4, 7, 10]);
        for (_, p) in &files[..3] {
            assert_eq!(fs::metadata(p).unwrap().len(), file_len(3, 50));
        }
        assert_eq!(wal.last_seq(), 10);
        // A record larger than the limit goes alone into a new file, and the next record
        // starts another.
        assert_eq!(wal.append(&payload_for(11, 400)).unwrap(), 11);
        assert_eq!(wal.append(&payload_for(12, 50)).unwrap(), 12);
        // `rotate` still starts a file only when the current one holds records...
        assert_eq!(wal.rotate().unwrap(), 13);
        assert_eq!(wal.rotate().unwrap(), 13);
        // ...and a first record larger than the limit stays in the fresh file.
        assert_eq!(wal.append(&payload_for(13, 400)).unwrap(), 13);
        let starts: Vec<u64> = list_files(d.path()).unwrap().iter().map(|f| f.0).collect();
        assert_eq!(starts, [1, 4, 7, 10, 11, 12, 13]);
        wal.sync_all().unwrap();
        assert_eq!(
            wal.disk_bytes().unwrap(),
            3 * file_len(3, 50) + 2 * file_len(1, 50) + 2 * file_len(1, 400)
        );
        drop(wal);
        let (recs, end) = recover(d.path()).unwrap();
        let sizes = [50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 400, 50, 400];
        assert_eq!(recs.len(), sizes.len());
        for (i, (rec, &len)) in recs.iter().zip(&sizes).enumerate() {
            let seq = i as u64 + 1;
            assert_eq!(rec.seq, seq);
            assert!(
                rec.payload == payload_for(seq, len),
                "payload of record {seq}"
            );
        }
        assert_eq!(end.next_seq, 14);

        // Recovery rules hold across the files: a torn tail of the newest is cut...
        let newest = d.path().join(file_name(13));
        let cut = file_len(1, 400) - 100;
        OpenOptions::new()
            .write(true)
            .open(&newest)
            .and_then(|f| f.set_len(cut))
            .unwrap();
        let (recs, end) = recover(d.path()).unwrap();
        assert_eq!((recs.len(), end.next_seq), (12, 13));
        assert_eq!(end.truncated_bytes, cut - HEADER_LEN as u64);
        // ...and the same damage in an older file is an error.
        let older = d.path().join(file_name(11));
        OpenOptions::new()
            .write(true)
            .open(&older)
            .and_then(|f| f.set_len(file_len(1, 400) - 100))
            .unwrap();
        let err = recover(d.path()).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { path, .. } if *path == older),
            "{err}"
        );
    }

    #[test]
    fn failed_rotation_poisons_the_log() {
        // A file already named for the next sequence number makes creating it fail.
        let d = tempfile::tempdir().unwrap();
        let wal = fresh(d.path()).with_max_file_bytes(300);
        for seq in 1..=3 {
            wal.append(&payload_for(seq, 50)).unwrap();
        }
        fs::write(d.path().join(file_name(4)), b"in the way").unwrap();
        let fourth = payload_for(4, 50);
        assert!(matches!(wal.append(&fourth), Err(Error::Io { .. })));
        assert!(matches!(wal.append(&fourth), Err(Error::Poisoned { .. })));
        assert_eq!(wal.last_seq(), 3);

        let d = tempfile::tempdir().unwrap();
        let wal = fresh(d.path());
        wal.append(b"1").unwrap();
        fs::write(d.path().join(file_name(2)), b"in the way").unwrap();
        assert!(matches!(wal.rotate(), Err(Error::Io { .. })));
        assert!(matches!(wal.append(b"2"), Err(Error::Poisoned { .. })));
        assert!(matches!(wal.sync_all(), Err(Error::Poisoned { .. })));
    }

    #[test]
    fn remove_through_keeps_every_file_holding_a_record_above_the_watermark() {
        let d = tempfile::tempdir().unwrap();
        let wal = fresh(d.path()).with_max_file_bytes(300);
        for seq in 1..=20 {
            wal.append(&payload_for(seq, 50)).unwrap();
        }
        // Three records per file, as above.
        let starts: Vec<u64> = list_files(d.path()).unwrap().iter().map(|f| f.0).collect();
        assert_eq!(starts, [1, 4, 7, 10, 13, 16, 19]);
        let records_in = |first: u64| (first + 3).min(21) - first;
        // Watermarks in ascending order, as publishes raise them.
        for w in 0..=25 {
            wal.remove_through(w).unwrap();
            // The oldest file kept is the one holding w + 1, or the newest: every file whose
            // records are all <= w is gone, and no other.
            let oldest = starts.iter().copied().filter(|&s| s <= w + 1).max();
            let kept: Vec<u64> = starts
                .iter()
                .copied()
                .filter(|&s| Some(s) >= oldest)
                .collect();
            let left: Vec<u64> = list_files(d.path()).unwrap().iter().map(|f| f.0).collect();
            assert_eq!(left, kept, "watermark {w}");
            let (recs, _) = recover(d.path()).unwrap();
            let seqs: Vec<u64> = recs.iter().map(|r| r.seq).collect();
            assert_eq!(seqs, (kept[0]..=20).collect::<Vec<_>>(), "watermark {w}");
            let bytes: u64 = kept.iter().map(|&s| file_len(records_in(s), 50)).sum();
            assert_eq!(wal.disk_bytes().unwrap(), bytes, "watermark {w}");
        }
        // A lower watermark later removes nothing; appends continue in sequence.
        wal.remove_through(3).unwrap();
        assert_eq!(list_files(d.path()).unwrap().len(), 1);
        assert_eq!(wal.append(b"x").unwrap(), 21);
        assert_eq!(wal.last_seq(), 21);
    }

    #[test]
    fn size_rotation_under_concurrent_group_commit() {
        let d = tempfile::tempdir().unwrap();
        let max = 256;
        let wal = Arc::new(fresh(d.path()).with_max_file_bytes(max));
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let wal = Arc::clone(&wal);
                std::thread::spawn(move || {
                    for i in 0..50u8 {
                        let mut payload = vec![t, i];
                        payload.resize(40, 0xAB);
                        let seq = wal.append(&payload).unwrap();
                        wal.sync_to(seq).unwrap();
                        if i % 10 == 9 {
                            wal.rotate().unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(wal.last_seq(), 200);
        drop(wal);
        let files = list_files(d.path()).unwrap();
        assert!(files.len() >= 200 / 3, "{} files", files.len());
        for (_, p) in &files {
            assert!(fs::metadata(p).unwrap().len() <= max, "{}", p.display());
        }
        let (recs, end) = recover(d.path()).unwrap();
        assert_eq!(end.next_seq, 201);
        let seqs: Vec<u64> = recs.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
        let mut writes: Vec<(u8, u8)> = recs.iter().map(|r| (r.payload[0], r.payload[1])).collect();
        writes.sort_unstable();
        let all: Vec<(u8, u8)> = (0..4).flat_map(|t| (0..50).map(move |i| (t, i))).collect();
        assert_eq!(writes, all);
    }

    #[test]
    fn group_commit_from_many_threads() {
        let d = tempfile::tempdir().unwrap();
        let wal = Arc::new(fresh(d.path()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let wal = Arc::clone(&wal);
                std::thread::spawn(move || {
                    for i in 0..50u8 {
                        let seq = wal.append(&[t, i]).unwrap();
                        wal.sync_to(seq).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(wal);
        let (recs, _) = recover(d.path()).unwrap();
        assert_eq!(recs.len(), 200);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Arbitrary bytes after a valid header never panic recovery.
        #[test]
        fn arbitrary_log_bytes_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let d = tempfile::tempdir().unwrap();
            let mut bytes = frame::encode(WAL_KIND, [1, 0, 0, 0], &[])[..HEADER_LEN].to_vec();
            bytes.extend_from_slice(&body);
            fs::write(d.path().join(file_name(1)), &bytes).unwrap();
            let _ = recover(d.path());
        }
    }
}
