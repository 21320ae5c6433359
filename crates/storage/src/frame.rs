//! The envelope shared by every non-log file Quiver writes (see `docs/format.md`).
//!
//! ```text
//! offset  size  field
//!      0     8  magic        one per file kind
//!      8     4  version      format version of this file kind (u32 LE)
//!     12     4  flags        reserved, 0
//!     16     8  body_len     bytes of body (u64 LE)
//!     24    32  meta         four u64 LE, meaning set by the file kind (dimension, rows, ...)
//!     56     4  reserved     0
//!     60     4  header_crc   CRC32C of bytes 0..60
//!     64     n  body         starts 64-byte aligned, so an mmap of it is aligned for SIMD
//!   64+n     4  body_crc     CRC32C of the body
//! ```
//! All numbers are little-endian. A reader checks magic, version (refusing newer ones), both
//! checksums and that the file length is exactly `68 + body_len`.

use crate::error::{Error, IoContext, Result};
use memmap2::Mmap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const HEADER_LEN: usize = 64;
const FOOTER_LEN: u64 = 4;

/// A kind of framed file: its magic and the newest format version this build writes and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKind {
    pub magic: [u8; 8],
    pub version: u32,
}

/// The header fields a reader hands back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub body_len: u64,
    pub meta: [u64; 4],
}

fn encode_header(kind: FileKind, body_len: u64, meta: [u64; 4]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&kind.magic);
    h[8..12].copy_from_slice(&kind.version.to_le_bytes());
    h[16..24].copy_from_slice(&body_len.to_le_bytes());
    for (i, m) in meta.iter().enumerate() {
        h[24 + 8 * i..32 + 8 * i].copy_from_slice(&m.to_le_bytes());
    }
    let crc = crc32c::crc32c(&h[0..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Decodes and checks a header against `kind`. `h` must be exactly `HEADER_LEN` bytes.
pub fn decode_header(path: &Path, kind: FileKind, h: &[u8; HEADER_LEN]) -> Result<Header> {
    if h[0..8] != kind.magic {
        return Err(Error::corrupt(
            path,
            0,
            format!(
                "bad magic {:?}, expected {:?}: not a file of this kind",
                String::from_utf8_lossy(&h[0..8]),
                String::from_utf8_lossy(&kind.magic)
            ),
        ));
    }
    let stored = u32_at(h, 60);
    let actual = crc32c::crc32c(&h[0..60]);
    if stored != actual {
        return Err(Error::corrupt(
            path,
            60,
            format!("header checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"),
        ));
    }
    let version = u32_at(h, 8);
    if version > kind.version {
        return Err(Error::NewerFormat {
            path: path.to_path_buf(),
            found: version,
            supported: kind.version,
        });
    }
    if version == 0 {
        return Err(Error::corrupt(path, 8, "format version 0 is invalid"));
    }
    let mut meta = [0u64; 4];
    for (i, m) in meta.iter_mut().enumerate() {
        *m = u64_at(h, 24 + 8 * i);
    }
    Ok(Header {
        version,
        body_len: u64_at(h, 16),
        meta,
    })
}

/// Streams a framed file's body to disk; `finish` writes the header and checksum and fsyncs.
///
/// The file is not durable (nor its directory entry) until `finish` returns and the caller
/// fsyncs the directory.
pub struct FramedWriter {
    path: PathBuf,
    kind: FileKind,
    out: BufWriter<File>,
    crc: u32,
    len: u64,
}

impl FramedWriter {
    pub fn create(path: &Path, kind: FileKind) -> Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .at(path)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&[0u8; HEADER_LEN]).at(path)?;
        Ok(FramedWriter {
            path: path.to_path_buf(),
            kind,
            out,
            crc: 0,
            len: 0,
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.len += bytes.len() as u64;
        self.out.write_all(bytes).at(&self.path)
    }

    /// Writes header and footer and fsyncs the file. Returns the file's total size.
    pub fn finish(mut self, meta: [u64; 4]) -> Result<u64> {
        let path = self.path;
        self.out.write_all(&self.crc.to_le_bytes()).at(&path)?;
        let mut file = self.out.into_inner().map_err(|e| Error::Io {
            path: path.clone(),
            source: e.into_error(),
        })?;
        file.seek(SeekFrom::Start(0)).at(&path)?;
        file.write_all(&encode_header(self.kind, self.len, meta))
            .at(&path)?;
        file.sync_all().at(&path)?;
        Ok(HEADER_LEN as u64 + self.len + FOOTER_LEN)
    }
}

/// Writes a whole framed file and fsyncs it (not its directory).
pub fn write_file(path: &Path, kind: FileKind, meta: [u64; 4], body: &[u8]) -> Result<u64> {
    let mut w = FramedWriter::create(path, kind)?;
    w.write(body)?;
    w.finish(meta)
}

/// Encodes a framed file in memory, for atomic replacement (`fs::atomic_write`).
pub fn encode(kind: FileKind, meta: [u64; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + 4);
    out.extend_from_slice(&encode_header(kind, body.len() as u64, meta));
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out
}

/// Checks the length and the body checksum; `actual` is the CRC32C computed over the body.
fn check_body(
    path: &Path,
    header: &Header,
    file_len: u64,
    actual: u32,
    footer: &[u8],
) -> Result<()> {
    let expected = (HEADER_LEN as u64)
        .saturating_add(header.body_len)
        .saturating_add(FOOTER_LEN);
    if file_len != expected {
        return Err(Error::corrupt(
            path,
            file_len.min(expected),
            format!("file is {file_len} bytes, header says {expected} (truncated or extended)"),
        ));
    }
    let stored = u32_at(footer, 0);
    if stored != actual {
        return Err(Error::corrupt(
            path,
            HEADER_LEN as u64,
            format!("body checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"),
        ));
    }
    Ok(())
}

/// Reads and verifies a whole framed file into memory. Returns the header and the body.
pub fn read_file(path: &Path, kind: FileKind) -> Result<(Header, Vec<u8>)> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .at(path)?;
    let header_bytes: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| {
        Error::corrupt(
            path,
            bytes.len() as u64,
            "file shorter than its 64-byte header",
        )
    })?;
    let header = decode_header(path, kind, header_bytes)?;
    let file_len = bytes.len() as u64;
    let body_end = (HEADER_LEN as u64).saturating_add(header.body_len);
    if file_len != body_end.saturating_add(FOOTER_LEN) {
        return Err(Error::corrupt(
            path,
            file_len.min(body_end),
            format!(
                "file is {file_len} bytes, header says {} (truncated or extended)",
                body_end.saturating_add(FOOTER_LEN)
            ),
        ));
    }
    let (body, footer) = bytes[HEADER_LEN..].split_at(header.body_len as usize);
    check_body(path, &header, file_len, crc32c::crc32c(body), footer)?;
    bytes.truncate(body_end as usize);
    bytes.drain(..HEADER_LEN);
    Ok((header, bytes))
}

/// A verified framed file mapped read-only into memory.
///
/// Files are immutable once published, which is what makes the mapping sound; see `map_file`.
#[derive(Debug)]
pub struct MappedFile {
    pub header: Header,
    map: Mmap,
}

impl MappedFile {
    /// The body, starting 64-byte aligned relative to the page-aligned mapping.
    pub fn body(&self) -> &[u8] {
        &self.map[HEADER_LEN..HEADER_LEN + self.header.body_len as usize]
    }
}

/// The CRC32C of a file's body, read with `read` rather than through a mapping: pages read
/// this way stay in the page cache without entering the process's page tables, so a mapped
/// file costs resident memory only for the parts a search touches (the f32 rows of an LVQ
/// collection are not touched at all; checksumming them through the mapping made all of
/// them resident at open).
fn body_crc(mut file: &File, header: &Header, path: &Path) -> Result<u32> {
    file.seek(SeekFrom::Start(HEADER_LEN as u64)).at(path)?;
    let mut left = header.body_len;
    let mut crc = 0u32;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let chunk = buf.get_mut(..want).unwrap_or_default();
        file.read_exact(chunk).at(path)?;
        crc = crc32c::crc32c_append(crc, chunk);
        left -= want as u64;
    }
    Ok(crc)
}

/// Maps a framed file and verifies it (magic, version, length, both checksums).
pub fn map_file(path: &Path, kind: FileKind) -> Result<MappedFile> {
    let file = File::open(path).at(path)?;
    let file_len = file.metadata().at(path)?.len();
    if file_len < HEADER_LEN as u64 + FOOTER_LEN {
        return Err(Error::corrupt(
            path,
            file_len,
            "file shorter than header and footer",
        ));
    }
    // SAFETY: Quiver never modifies a published segment file: writers create new files under
    // temporary names and readers only map published ones. Another process truncating the file
    // under us is outside the contract (the data directory is locked against other Quiver
    // processes).
    #[expect(unsafe_code, reason = "memory-mapping an immutable, published file")]
    let map = unsafe { Mmap::map(&file) }.at(path)?;
    let header_bytes: &[u8; HEADER_LEN] = map
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| Error::corrupt(path, 0, "file shorter than its header"))?;
    let header = decode_header(path, kind, header_bytes)?;
    let body_end = (HEADER_LEN as u64).saturating_add(header.body_len);
    if body_end.checked_add(FOOTER_LEN) != Some(file_len) {
        return Err(Error::corrupt(
            path,
            file_len.min(body_end),
            format!(
                "file is {file_len} bytes, header says {} (truncated or extended)",
                body_end.saturating_add(FOOTER_LEN)
            ),
        ));
    }
    let footer = map
        .get(HEADER_LEN + header.body_len as usize..)
        .unwrap_or_default();
    check_body(
        path,
        &header,
        file_len,
        body_crc(&file, &header, path)?,
        footer,
    )?;
    Ok(MappedFile { header, map })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: FileKind = FileKind {
        magic: *b"QVTEST\x1a\n",
        version: 2,
    };

    #[test]
    fn round_trip_streamed_and_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut w = FramedWriter::create(&p, KIND).unwrap();
        w.write(b"hello ").unwrap();
        w.write(b"world").unwrap();
        w.finish([1, 2, 3, 4]).unwrap();
        let (h, body) = read_file(&p, KIND).unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(h.meta, [1, 2, 3, 4]);
        let m = map_file(&p, KIND).unwrap();
        assert_eq!(m.body(), b"hello world");
        assert_eq!(m.body().as_ptr() as usize % 64, 0);
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let good = encode(KIND, [7, 0, 0, 0], b"some body bytes");
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            std::fs::write(&p, &bad).unwrap();
            assert!(
                read_file(&p, KIND).is_err(),
                "flip at byte {i} not detected"
            );
            assert!(map_file(&p, KIND).is_err(), "flip at byte {i} not detected");
        }
        for cut in 0..good.len() {
            std::fs::write(&p, &good[..cut]).unwrap();
            assert!(
                read_file(&p, KIND).is_err(),
                "truncation at {cut} not detected"
            );
            assert!(
                map_file(&p, KIND).is_err(),
                "truncation at {cut} not detected"
            );
        }
    }

    #[test]
    fn newer_version_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let newer = FileKind { version: 3, ..KIND };
        std::fs::write(&p, encode(newer, [0; 4], b"x")).unwrap();
        let err = read_file(&p, KIND).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NewerFormat {
                    found: 3,
                    supported: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("newer"));
    }
}
