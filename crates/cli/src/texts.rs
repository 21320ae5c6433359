//! Reading texts and documents: plain text (one text per line) or JSON Lines (one object per
//! line), with the file and line number in every error.

use anyhow::{Context, Result, bail};
use quiver_formats::MAX_LINE_BYTES;
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// One text and where it came from.
pub(crate) struct Text {
    /// 1-based line number.
    pub line: u64,
    pub text: String,
    /// The JSON Lines record's `id`, if any.
    pub id: Option<Value>,
}

/// Whether `path` names JSON Lines (`.jsonl`, `.ndjson`); anything else is plain text.
pub(crate) fn is_jsonl(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("jsonl" | "ndjson")
    )
}

/// Streams lines of a text or JSON Lines file.
pub(crate) struct TextReader {
    path: PathBuf,
    file: BufReader<File>,
    jsonl: bool,
    /// Lines read so far, blank ones included.
    line: u64,
    bytes_read: u64,
    total_bytes: u64,
    buf: Vec<u8>,
}

impl TextReader {
    /// Opens `path`; `.jsonl` and `.ndjson` files are JSON Lines, anything else plain text.
    pub fn open(path: &Path) -> Result<TextReader> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        let jsonl = is_jsonl(path);
        Ok(TextReader {
            path: path.to_path_buf(),
            file: BufReader::with_capacity(1 << 20, file),
            jsonl,
            line: 0,
            bytes_read: 0,
            total_bytes,
            buf: Vec::new(),
        })
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// `FILE: line N` for the line last read.
    pub fn here(&self) -> String {
        format!("{}: line {}", self.path.display(), self.line)
    }

    /// The next line, checked to be UTF-8, without its line end (and without a byte order
    /// mark on the first line); `None` at the end of the file.
    fn next_line(&mut self) -> Result<Option<String>> {
        self.buf.clear();
        let n = (&mut self.file)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut self.buf)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        self.bytes_read += n as u64;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        } else if n as u64 > MAX_LINE_BYTES {
            bail!("{}: longer than {} MiB", self.here(), MAX_LINE_BYTES >> 20);
        }
        let mut bytes = self.buf.as_slice();
        if self.line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Some(text.to_string())),
            Err(e) => bail!(
                "{}: invalid UTF-8 at byte {} of the line",
                self.here(),
                e.valid_up_to() + 1
            ),
        }
    }

    /// The next JSON object and its 1-based line number; blank lines are skipped.
    pub fn next_object(&mut self) -> Result<Option<(u64, Map<String, Value>)>> {
        while let Some(text) = self.next_line()? {
            if text.trim().is_empty() {
                continue;
            }
            let object: Map<String, Value> = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a JSON object", self.here()))?;
            return Ok(Some((self.line, object)));
        }
        Ok(None)
    }

    /// The next text: a whole line of a plain text file (an empty line is an empty text),
    /// or the string in `field` of the next JSON Lines record.
    pub fn next_text(&mut self, field: &str) -> Result<Option<Text>> {
        if !self.jsonl {
            return Ok(self.next_line()?.map(|text| Text {
                line: self.line,
                text,
                id: None,
            }));
        }
        let Some((line, mut record)) = self.next_object()? else {
            return Ok(None);
        };
        let Some(Value::String(text)) = record.remove(field) else {
            bail!(
                "{}: no string field `{field}` (see --text-field)",
                self.here()
            );
        };
        Ok(Some(Text {
            line,
            text,
            id: record.remove("id").filter(|v| !v.is_null()),
        }))
    }
}
