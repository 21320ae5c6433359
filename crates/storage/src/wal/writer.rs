//! Appending, group commit, rotation and truncation.

use super::*;

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
