//! JSON Lines (`.jsonl`, `.ndjson`): one JSON object per line.
//!
//! # Format
//!
//! ```text
//! {"id": 17, "vector": [0.1, -0.2, 0.3], "payload": {"lang": "en"}}
//! {"id": "5f0c6b3e-8d5a-4c1e-9f3a-2b7d1e0c4a96", "vector": [0.4, 0.5, 0.6]}
//! ```
//!
//! Each non-blank line is an object. The names of the three fields are configurable
//! ([`JsonFields`]); other fields are ignored.
//!
//! - vector (required): a non-empty array of JSON numbers, converted to `f32` (rounded to
//!   nearest; magnitudes beyond `f32::MAX` become infinities, which the engine rejects).
//!   Every record of a file must have the dimension of the first one.
//! - id (optional): an unsigned integer or a string (meant to be a UUID, which the engine
//!   checks), kept as the JSON value. `null` counts as absent.
//! - payload (optional): an object. `null` counts as absent.
//!
//! Lines end with `\n` or `\r\n`; lines of only whitespace are skipped; a UTF-8 byte order
//! mark before the first line is ignored. Lines longer than [`MAX_LINE_BYTES`] are
//! rejected. Line numbers in errors are 1-based and count blank lines;
//! [`Record::position`] is the 0-based line index.
//!
//! # Errors
//!
//! A bad line (malformed JSON, wrong field type, dimension mismatch) is reported with its
//! line number and the reader then stands at the next line, so a caller may skip bad lines
//! and continue. An I/O error or an over-long line ends the stream.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Location};
use crate::{JsonFields, Record};

/// The longest line accepted, in bytes (64 MiB; a 4,096-dimension vector takes about
/// 100 KiB of text).
pub const MAX_LINE_BYTES: u64 = 64 << 20;

const READ_BUFFER: usize = 256 * 1024;

/// Streams records from a JSON Lines file.
pub(crate) struct JsonLinesReader {
    path: PathBuf,
    file: BufReader<File>,
    fields: JsonFields,
    file_len: u64,
    /// Lines consumed so far, blank ones included.
    lines: u64,
    /// Bytes consumed so far.
    offset: u64,
    dim: Option<usize>,
    line: Vec<u8>,
    finished: bool,
}

impl JsonLinesReader {
    pub(crate) fn open(path: &Path, fields: &JsonFields) -> Result<Self, Error> {
        let file = File::open(path).map_err(Error::io(path))?;
        let file_len = file.metadata().map_err(Error::io(path))?.len();
        Ok(JsonLinesReader {
            path: path.to_path_buf(),
            file: BufReader::with_capacity(READ_BUFFER, file),
            fields: fields.clone(),
            file_len,
            lines: 0,
            offset: 0,
            dim: None,
            line: Vec::new(),
            finished: false,
        })
    }

    /// Dimension of the first record, once it has been read.
    pub(crate) fn dim(&self) -> Option<usize> {
        self.dim
    }

    pub(crate) fn file_len(&self) -> u64 {
        self.file_len
    }

    pub(crate) fn bytes_read(&self) -> u64 {
        self.offset
    }

    /// The next record, or `None` at the end of the file.
    pub(crate) fn next_record(&mut self) -> Result<Option<Record>, Error> {
        loop {
            if self.finished {
                return Ok(None);
            }
            let start = self.offset;
            self.line.clear();
            let read = Read::take(&mut self.file, MAX_LINE_BYTES + 1)
                .read_until(b'\n', &mut self.line)
                .map_err(|source| {
                    self.finished = true;
                    Error::Io {
                        path: self.path.clone(),
                        source,
                    }
                })?;
            if read == 0 {
                self.finished = true;
                return Ok(None);
            }
            self.offset += read as u64;
            self.lines += 1;
            let location = Location::Line {
                line: self.lines,
                offset: start,
            };
            let mut text = self.line.as_slice();
            if let Some(rest) = text.strip_suffix(b"\n") {
                text = rest.strip_suffix(b"\r").unwrap_or(rest);
            } else if read as u64 > MAX_LINE_BYTES {
                self.finished = true;
                return Err(Error::malformed(
                    &self.path,
                    location,
                    format!("line is longer than {MAX_LINE_BYTES} bytes"),
                ));
            }
            if self.lines == 1 {
                text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
            }
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record = parse_line(text, &self.fields, self.lines - 1)
                .map_err(|message| Error::malformed(&self.path, location, message))?;
            match self.dim {
                None => self.dim = Some(record.vector.len()),
                Some(expected) if expected != record.vector.len() => {
                    return Err(Error::DimMismatch {
                        path: self.path.clone(),
                        location,
                        expected,
                        got: record.vector.len(),
                    });
                }
                Some(_) => {}
            }
            return Ok(Some(record));
        }
    }
}

/// Decodes one non-blank line into a record at `position`, or says what is wrong with it.
fn parse_line(text: &[u8], fields: &JsonFields, position: u64) -> Result<Record, String> {
    let value: Value = serde_json::from_slice(text).map_err(|e| describe_json_error(&e, text))?;
    let Value::Object(mut object) = value else {
        let hint = if value.is_array() {
            "; a file that is one JSON array is not JSON Lines: write one object per line"
        } else {
            ""
        };
        return Err(format!(
            "expected a JSON object, found {}{hint}",
            describe(&value)
        ));
    };
    let vector = match object.remove(&fields.vector) {
        None => return Err(format!("field \"{}\" is missing", fields.vector)),
        Some(Value::Array(items)) => parse_vector(&items, &fields.vector)?,
        Some(other) => {
            return Err(format!(
                "field \"{}\" must be an array of numbers, found {}",
                fields.vector,
                describe(&other)
            ));
        }
    };
    let id = match object.remove(&fields.id) {
        None | Some(Value::Null) => None,
        Some(id @ Value::String(_)) => Some(id),
        Some(Value::Number(n)) if n.is_u64() => Some(Value::Number(n)),
        Some(other) => {
            return Err(format!(
                "field \"{}\" must be an unsigned integer or a UUID string, found {}",
                fields.id,
                describe(&other)
            ));
        }
    };
    let payload = match object.remove(&fields.payload) {
        None | Some(Value::Null) => None,
        Some(Value::Object(payload)) => Some(payload),
        Some(other) => {
            return Err(format!(
                "field \"{}\" must be an object, found {}",
                fields.payload,
                describe(&other)
            ));
        }
    };
    Ok(Record {
        id,
        vector,
        payload,
        position,
    })
}

fn parse_vector(items: &[Value], name: &str) -> Result<Vec<f32>, String> {
    if items.is_empty() {
        return Err(format!("field \"{name}\" is an empty array"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_f64().map(|x| x as f32).ok_or_else(|| {
                format!(
                    "field \"{name}\" must be an array of numbers, but element {i} is {}",
                    describe(item)
                )
            })
        })
        .collect()
}

/// serde_json's message without its "at line 1 column N" suffix (the line is always 1
/// here), and the column restated in bytes from the start of the line.
fn describe_json_error(error: &serde_json::Error, text: &[u8]) -> String {
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full);
    let hint = if text.starts_with(b"[") || text.starts_with(b"]") {
        " (a file that is one JSON array is not JSON Lines: write one object per line)"
    } else {
        ""
    };
    format!(
        "malformed JSON at column {}: {message}{hint}",
        error.column()
    )
}

/// A value's JSON type and, for short values, the value itself: `a string "abc"`.
fn describe(value: &Value) -> String {
    const SHOWN: usize = 40;
    let kind = match value {
        Value::Null => return "null".into(),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let text = value.to_string();
    if text.chars().count() <= SHOWN {
        format!("{kind} {text}")
    } else {
        let shown: String = text.chars().take(SHOWN).collect();
        format!("{kind} {shown}…")
    }
}
