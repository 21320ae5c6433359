//! The bytes of a field index (spec: `docs/filters.md`, "Encoding"). The decoder checks
//! everything it reads: no panic, no unchecked slicing, no allocation larger than the input.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use roaring::RoaringBitmap;

use super::{FieldIndex, FieldIndexes, IndexKind, Postings, RowSets, Values};
use crate::error::{Error, Result};
use crate::index::postings::sorted_bitmap;
use crate::key::KeyPath;

/// The format version this build writes and the newest it reads.
pub(crate) const FORMAT_VERSION: u8 = 1;

fn kind_byte(kind: IndexKind) -> u8 {
    match kind {
        IndexKind::Keyword => 0,
        IndexKind::Integer => 1,
        IndexKind::Float => 2,
        IndexKind::Bool => 3,
    }
}

pub(super) fn encode(index: &FieldIndex) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    encode_body(index, &mut out);
    out
}

fn encode_body(index: &FieldIndex, out: &mut Vec<u8>) {
    out.push(kind_byte(index.kind()));
    put_bytes(out, index.key.as_str().as_bytes());
    put_varint(out, u64::from(index.rows));
    put_varint(out, index.values.len() as u64);
    match &index.values {
        Values::Keyword(v) => v.iter().for_each(|s| put_bytes(out, s.as_bytes())),
        Values::Integer(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Values::Float(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Values::Bool(v) => v.iter().for_each(|b| out.push(u8::from(*b))),
    }
    for run in index.postings.runs() {
        put_rows(out, run.len(), run.iter().copied());
    }
    for set in [&index.other, &index.filled, &index.null] {
        put_rows(out, set.len() as usize, set.iter());
    }
}

pub(super) fn encode_all(indexes: &FieldIndexes) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    put_varint(&mut out, indexes.len() as u64);
    let mut body = Vec::new();
    for index in indexes.iter() {
        body.clear();
        encode_body(index, &mut body);
        put_bytes(&mut out, &body);
    }
    out
}

pub(super) fn decode(bytes: &[u8]) -> Result<FieldIndex> {
    let mut r = Reader::new(bytes);
    r.version()?;
    let index = decode_body(&mut r)?;
    r.finish()?;
    Ok(index)
}

pub(super) fn decode_all(bytes: &[u8]) -> Result<FieldIndexes> {
    let mut r = Reader::new(bytes);
    r.version()?;
    let count = r.count("index count", 1)?;
    let mut out = FieldIndexes::new();
    for _ in 0..count {
        let len = r.count("index length", 1)?;
        let start = r.pos;
        let mut inner = Reader {
            bytes: r.take(len, "index")?,
            pos: 0,
            base: start,
        };
        let index = decode_body(&mut inner)?;
        inner.finish()?;
        let key = index.key.as_str().to_string();
        if out.insert(index).is_some() {
            return Err(Error::Corrupt {
                offset: start,
                message: format!("index of key \"{key}\" appears twice"),
            });
        }
    }
    r.finish()?;
    Ok(out)
}

fn decode_body(r: &mut Reader<'_>) -> Result<FieldIndex> {
    let kind = match r.u8("index kind")? {
        0 => IndexKind::Keyword,
        1 => IndexKind::Integer,
        2 => IndexKind::Float,
        3 => IndexKind::Bool,
        k => return Err(r.corrupt_before(1, format!("unknown index kind {k}"))),
    };
    let key = r.key()?;
    let rows = r.varint("row count")?;
    let rows = u32::try_from(rows).map_err(|_| r.corrupt("row count exceeds u32"))?;
    let n = r.count("value count", 1)?;
    let values = match kind {
        IndexKind::Keyword => {
            let mut v: Vec<Box<str>> = Vec::with_capacity(n);
            for _ in 0..n {
                let s = r.str("keyword")?;
                if v.last().is_some_and(|last| **last >= *s) {
                    return Err(r.corrupt("keywords not strictly ascending"));
                }
                v.push(s.into());
            }
            Values::Keyword(v)
        }
        IndexKind::Integer => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let x = i64::from_le_bytes(r.array("integer")?);
                if v.last().is_some_and(|last| *last >= x) {
                    return Err(r.corrupt("integers not strictly ascending"));
                }
                v.push(x);
            }
            Values::Integer(v)
        }
        IndexKind::Float => {
            let mut v: Vec<f64> = Vec::with_capacity(n);
            for _ in 0..n {
                let x = f64::from_le_bytes(r.array("float")?);
                // Rejects NaN, infinities, -0 and disorder.
                if !x.is_finite() || (x == 0.0 && x.is_sign_negative()) {
                    return Err(r.corrupt("float value is not finite or is -0"));
                }
                if v.last().is_some_and(|last| *last >= x) {
                    return Err(r.corrupt("floats not strictly ascending"));
                }
                v.push(x);
            }
            Values::Float(v)
        }
        IndexKind::Bool => {
            let mut v: Vec<bool> = Vec::with_capacity(n.min(2));
            for _ in 0..n {
                let b = match r.u8("bool")? {
                    0 => false,
                    1 => true,
                    x => return Err(r.corrupt_before(1, format!("bool byte {x}"))),
                };
                if v.last().is_some_and(|last| *last >= b) {
                    return Err(r.corrupt("bools not strictly ascending"));
                }
                v.push(b);
            }
            Values::Bool(v)
        }
    };
    let mut lens = Vec::with_capacity(n);
    let mut all_rows = Vec::new();
    for _ in 0..n {
        let before = all_rows.len();
        r.rows(&mut all_rows, rows)?;
        if all_rows.len() == before {
            return Err(r.corrupt("a value without rows"));
        }
        lens.push(all_rows.len() - before);
    }
    let mut sets = [
        RoaringBitmap::new(),
        RoaringBitmap::new(),
        RoaringBitmap::new(),
    ];
    let mut scratch = Vec::new();
    for set in &mut sets {
        scratch.clear();
        r.rows(&mut scratch, rows)?;
        *set = sorted_bitmap(&scratch);
    }
    let [other, filled, null] = sets;
    let index = FieldIndex::from_parts(
        key,
        rows,
        values,
        Postings::new(&lens, all_rows),
        RowSets {
            other,
            filled,
            null,
        },
    );
    if !(&index.typed | &index.other).is_subset(&index.filled) {
        return Err(r.corrupt("rows with values are not all marked non-empty"));
    }
    Ok(index)
}

fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A row list: count, then the first row and the gaps minus one between later rows.
fn put_rows(out: &mut Vec<u8>, count: usize, rows: impl Iterator<Item = u32>) {
    put_varint(out, count as u64);
    let mut prev: Option<u32> = None;
    for row in rows {
        let gap = match prev {
            None => row,
            Some(p) => row - p - 1,
        };
        put_varint(out, u64::from(gap));
        prev = Some(row);
    }
}

/// A cursor over untrusted bytes; every read is checked. `base` is the offset of `bytes`
/// in the whole input, for error messages.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            bytes,
            pos: 0,
            base: 0,
        }
    }

    fn corrupt(&self, message: impl Into<String>) -> Error {
        Error::Corrupt {
            offset: self.base + self.pos,
            message: message.into(),
        }
    }

    /// An error about the `back` bytes just read.
    fn corrupt_before(&self, back: usize, message: impl Into<String>) -> Error {
        Error::Corrupt {
            offset: (self.base + self.pos).saturating_sub(back),
            message: message.into(),
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn version(&mut self) -> Result<()> {
        match self.u8("format version")? {
            0 => Err(self.corrupt_before(1, "format version 0")),
            v if v > FORMAT_VERSION => Err(Error::NewerFormat {
                found: v,
                supported: FORMAT_VERSION,
            }),
            _ => Ok(()),
        }
    }

    fn finish(&self) -> Result<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.corrupt(format!("{} trailing bytes", self.remaining())))
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.bytes.get(self.pos..end)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.corrupt(format!("truncated {what}"))),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        s.try_into()
            .map_err(|_| self.corrupt(format!("truncated {what}")))
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        let [b] = self.array::<1>(what)?;
        Ok(b)
    }

    fn varint(&mut self, what: &str) -> Result<u64> {
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.corrupt_before(1, format!("{what} overflows 64 bits")));
            }
            x |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(x);
            }
        }
        Err(self.corrupt(format!("{what} overflows 64 bits")))
    }

    /// A count of items of at least `min_bytes` bytes each, so bounded by what is left.
    fn count(&mut self, what: &str, min_bytes: usize) -> Result<usize> {
        let n = self.varint(what)?;
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(min_bytes) <= self.remaining() => Ok(n),
            _ => Err(self.corrupt(format!("{what} {n} exceeds the remaining bytes"))),
        }
    }

    fn str(&mut self, what: &str) -> Result<&'a str> {
        let len = self.count(what, 1)?;
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes)
            .map_err(|_| self.corrupt_before(len, format!("{what} is not UTF-8")))
    }

    fn key(&mut self) -> Result<KeyPath> {
        let text = self.str("key")?;
        match KeyPath::parse(text) {
            Ok(key) if key.as_str() == text => Ok(key),
            _ => Err(self.corrupt(format!("key \"{text}\" is not a canonical key path"))),
        }
    }

    /// Appends a row list to `out`: strictly ascending rows below `limit`.
    fn rows(&mut self, out: &mut Vec<u32>, limit: u32) -> Result<()> {
        let n = self.count("row count", 1)?;
        out.reserve(n);
        let mut prev: Option<u32> = None;
        for _ in 0..n {
            let gap = self.varint("row")?;
            let row = match prev {
                None => Some(gap),
                Some(p) => u64::from(p).checked_add(gap).and_then(|x| x.checked_add(1)),
            };
            let row = match row.and_then(|r| u32::try_from(r).ok()) {
                Some(r) if r < limit => r,
                _ => return Err(self.corrupt(format!("row past the index's {limit} rows"))),
            };
            out.push(row);
            prev = Some(row);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_overflow_is_caught() {
        for x in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, x);
            let mut r = Reader::new(&out);
            assert_eq!(r.varint("x").unwrap(), x);
            assert!(r.finish().is_ok());
        }
        let eleven = [0xffu8; 11];
        assert!(Reader::new(&eleven).varint("x").is_err());
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&too_big).varint("x").is_err());
    }
}
