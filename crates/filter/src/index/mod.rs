//! Payload field indexes over one segment's rows: which rows hold which value of a field.
//!
//! - `build.rs`: [`FieldIndexBuilder`], from `(row, payload)` pairs.
//! - `postings.rs`: the rows of each distinct value (array plus bitmaps for frequent values).
//! - `answer.rs`: what an index can tell about a field test.
//! - `format.rs`: [`FieldIndex::encode`] / [`FieldIndex::decode`]; spec in `docs/filters.md`.
//!
//! # What is indexed
//!
//! A key selects values in each payload (see [`KeyPath`]); a selected array contributes its
//! elements. Each element is then one of:
//! - a value of the index's [`IndexKind`]: indexed under that value;
//! - `null`: ignored (it never passes a match or range);
//! - anything else (a value of another type, an object, an array inside the array): not
//!   indexed, but the row is remembered as holding "other" values, so conditions that such
//!   values could pass are checked per point for those rows only.
//!
//! Besides, each index records exactly which rows `is_empty` and `is_null` hold for, so both
//! are always answered from the index.
//!
//! Rows the builder never saw (rows past [`FieldIndex::rows`]) are treated as unknown by
//! [`crate::evaluate`] (checked per point).

mod answer;
mod build;
mod format;
mod postings;

use std::collections::BTreeMap;
use std::fmt;

use roaring::RoaringBitmap;
use serde_json::{Map, Value};

pub(crate) use answer::{Inside, Outside};
pub use build::FieldIndexBuilder;
pub(crate) use format::FORMAT_VERSION;
pub(crate) use postings::{Postings, ValueSet};

use crate::error::Result;
use crate::key::KeyPath;

/// The value type a field index is declared with, and the conditions it answers exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// JSON strings; answers `match` `value` / `any` / `except` with strings.
    Keyword,
    /// JSON numbers that are integers within `i64`; answers `match` with integers, and
    /// `range` (exactly when the field holds no other numbers).
    Integer,
    /// Every JSON number, as `f64`; answers `range`.
    Float,
    /// JSON booleans; answers `match` `value` with a boolean.
    Bool,
}

impl IndexKind {
    pub fn name(self) -> &'static str {
        match self {
            IndexKind::Keyword => "keyword",
            IndexKind::Integer => "integer",
            IndexKind::Float => "float",
            IndexKind::Bool => "bool",
        }
    }

    /// Reads `keyword`, `integer`, `float` or `bool`.
    pub fn from_name(name: &str) -> Option<IndexKind> {
        match name {
            "keyword" => Some(IndexKind::Keyword),
            "integer" => Some(IndexKind::Integer),
            "float" => Some(IndexKind::Float),
            "bool" => Some(IndexKind::Bool),
            _ => None,
        }
    }
}

impl fmt::Display for IndexKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The distinct indexed values of a field, strictly ascending (floats: no NaN, no -0).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Values {
    Keyword(Vec<Box<str>>),
    Integer(Vec<i64>),
    Float(Vec<f64>),
    Bool(Vec<bool>),
}

impl Values {
    fn kind(&self) -> IndexKind {
        match self {
            Values::Keyword(_) => IndexKind::Keyword,
            Values::Integer(_) => IndexKind::Integer,
            Values::Float(_) => IndexKind::Float,
            Values::Bool(_) => IndexKind::Bool,
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::Keyword(v) => v.len(),
            Values::Integer(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Bool(v) => v.len(),
        }
    }
}

/// The distinct values of a numeric field index, ascending (see [`FieldIndex::numeric_values`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumericValues<'a> {
    Integer(&'a [i64]),
    /// No NaN, no -0.
    Float(&'a [f64]),
}

/// One field's index over the rows of a segment. Immutable once built; see the module docs
/// for what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldIndex {
    key: KeyPath,
    /// Rows `0..rows` were given to the builder; later rows are unknown to the index.
    rows: u32,
    values: Values,
    postings: Postings,
    /// Rows holding at least one non-null value that is not of the index's kind.
    other: RoaringBitmap,
    /// Rows for which `is_empty` is false.
    filled: RoaringBitmap,
    /// Rows for which `is_null` is true.
    null: RoaringBitmap,
    /// Derived: rows holding at least one indexed value.
    typed: RoaringBitmap,
    /// Derived: no row holds two indexed values, so posting counts are row counts.
    single_valued: bool,
}

impl FieldIndex {
    /// Builds the index of `key` from `(row, payload)` pairs, each row at most once.
    pub fn build<'p, I>(key: KeyPath, kind: IndexKind, payloads: I) -> FieldIndex
    where
        I: IntoIterator<Item = (u32, &'p Map<String, Value>)>,
    {
        let mut builder = FieldIndexBuilder::new(key, kind);
        for (row, payload) in payloads {
            builder.add(row, payload);
        }
        builder.finish()
    }

    /// Assembles an index from checked parts (the builder's output or decoded bytes).
    fn from_parts(
        key: KeyPath,
        rows: u32,
        values: Values,
        postings: Postings,
        sets: RowSets,
    ) -> FieldIndex {
        let typed = postings.union(&ValueSet::Span(0..postings.values()));
        let single_valued =
            typed.len() == postings.pairs(&ValueSet::Span(0..postings.values())) as u64;
        FieldIndex {
            key,
            rows,
            values,
            postings,
            other: sets.other,
            filled: sets.filled,
            null: sets.null,
            typed,
            single_valued,
        }
    }

    pub fn key(&self) -> &KeyPath {
        &self.key
    }

    pub fn kind(&self) -> IndexKind {
        self.values.kind()
    }

    /// The rows the index covers: `0..rows()`.
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// Number of distinct indexed values.
    pub fn distinct_values(&self) -> usize {
        self.values.len()
    }

    /// Rows holding at least one indexed value.
    pub fn indexed_rows(&self) -> &RoaringBitmap {
        &self.typed
    }

    /// An integer or float index's distinct values, ascending (`None` for keyword and bool
    /// indexes): with [`FieldIndex::value_rows`], the rows in value order, for reading points
    /// ordered by the field.
    pub fn numeric_values(&self) -> Option<NumericValues<'_>> {
        match &self.values {
            Values::Integer(v) => Some(NumericValues::Integer(v)),
            Values::Float(v) => Some(NumericValues::Float(v)),
            Values::Keyword(_) | Values::Bool(_) => None,
        }
    }

    /// The ascending rows holding the `i`-th distinct value (in value order); empty past the
    /// last value.
    pub fn value_rows(&self, i: usize) -> &[u32] {
        self.postings.run(i)
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        let values = match &self.values {
            Values::Keyword(v) => v.iter().map(|s| s.len() + 16).sum(),
            Values::Integer(v) => v.len() * 8,
            Values::Float(v) => v.len() * 8,
            Values::Bool(v) => v.len(),
        };
        values
            + self.postings.heap_bytes()
            + [&self.other, &self.filled, &self.null, &self.typed]
                .iter()
                .map(|b| b.serialized_size())
                .sum::<usize>()
    }

    pub(crate) fn postings(&self) -> &Postings {
        &self.postings
    }

    pub(crate) fn other(&self) -> &RoaringBitmap {
        &self.other
    }

    pub(crate) fn filled(&self) -> &RoaringBitmap {
        &self.filled
    }

    pub(crate) fn null(&self) -> &RoaringBitmap {
        &self.null
    }

    pub(crate) fn single_valued(&self) -> bool {
        self.single_valued
    }
}

/// The row sets every index keeps besides its postings.
#[derive(Debug, Default)]
struct RowSets {
    other: RoaringBitmap,
    filled: RoaringBitmap,
    null: RoaringBitmap,
}

/// The field indexes of one segment, by key (the key's canonical text, as in filters).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldIndexes {
    by_key: BTreeMap<String, FieldIndex>,
}

impl FieldIndexes {
    pub fn new() -> FieldIndexes {
        FieldIndexes::default()
    }

    /// Builds one index per `(key, kind)` in a single pass over `(row, payload)` pairs.
    /// A key given twice keeps the last kind.
    pub fn build<'p, I>(fields: &[(KeyPath, IndexKind)], payloads: I) -> FieldIndexes
    where
        I: IntoIterator<Item = (u32, &'p Map<String, Value>)>,
    {
        let mut builders: Vec<FieldIndexBuilder> = fields
            .iter()
            .map(|(key, kind)| FieldIndexBuilder::new(key.clone(), *kind))
            .collect();
        for (row, payload) in payloads {
            for b in &mut builders {
                b.add(row, payload);
            }
        }
        let mut out = FieldIndexes::new();
        for b in builders {
            out.insert(b.finish());
        }
        out
    }

    /// Adds an index, returning the one it replaces for the same key.
    pub fn insert(&mut self, index: FieldIndex) -> Option<FieldIndex> {
        self.by_key.insert(index.key.as_str().to_string(), index)
    }

    pub fn remove(&mut self, key: &str) -> Option<FieldIndex> {
        self.by_key.remove(key)
    }

    /// The index of a key, by its canonical text ([`KeyPath::as_str`]).
    pub fn get(&self, key: &str) -> Option<&FieldIndex> {
        self.by_key.get(key)
    }

    /// The indexes in key order.
    pub fn iter(&self) -> impl Iterator<Item = &FieldIndex> {
        self.by_key.values()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Encodes every index (see `docs/filters.md`).
    pub fn encode(&self) -> Vec<u8> {
        format::encode_all(self)
    }

    /// Decodes [`FieldIndexes::encode`]'s bytes; damaged bytes give an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<FieldIndexes> {
        format::decode_all(bytes)
    }
}

impl FieldIndex {
    /// Encodes the index (see `docs/filters.md`).
    pub fn encode(&self) -> Vec<u8> {
        format::encode(self)
    }

    /// Decodes [`FieldIndex::encode`]'s bytes; damaged bytes give an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<FieldIndex> {
        format::decode(bytes)
    }
}
