//! Recovery: reading the log back, streaming, telling a torn tail from damage.

use super::*;

/// Bytes read per system call during recovery, and the most a reader holds besides the
/// payload it returns. Not measured: a size at which the system calls cost little next to
/// checksumming and decoding the records.
pub(super) const READ_BUFFER: usize = 1 << 18;

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
