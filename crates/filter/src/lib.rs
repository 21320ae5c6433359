//! Payload filters in Qdrant's JSON language, and payload field indexes that answer them
//! over one segment's rows.
//!
//! # Filters
//!
//! ```
//! use quiver_filter::Filter;
//!
//! let f = Filter::parse(r#"{
//!     "must": [{"key": "pos", "match": {"value": "v"}}],
//!     "must_not": [{"key": "has_example", "match": {"value": true}}]
//! }"#).unwrap();
//! let payload = serde_json::json!({"pos": "v", "has_example": false});
//! assert!(f.matches(7.into(), payload.as_object().unwrap()));
//! ```
//!
//! A [`Filter`] has `must` (all hold), `should` (at least one holds; ignored when empty),
//! `must_not` (none holds) and `min_should` (at least `min_count` of its conditions hold);
//! `{}` matches everything. A [`Condition`] is one of
//! - `{"key": K, "match": {"value": V}}` with `V` a string, integer or boolean;
//!   `{"match": {"any": [...]}}`, `{"match": {"except": [...]}}` with strings or integers;
//! - `{"key": K, "range": {"gt", "gte", "lt", "lte"}}` with numbers;
//! - `{"is_empty": {"key": K}}`, `{"is_null": {"key": K}}`;
//! - `{"has_id": [ids]}` with non-negative integers or UUID strings;
//! - a nested filter (an object with `must` / `should` / `must_not` / `min_should`).
//!
//! Semantics ([`Filter::matches`] is the reference):
//! - A key ([`KeyPath`]: `a`, `a.b`, `a[].b`, `a[0]`) selects zero or more values; a field
//!   condition holds when *any* selected value passes, and a selected array passes when any
//!   element does. So `match` and `range` on an array field mean "some element".
//! - `match value/any` compares strings with strings, booleans with booleans, and integers
//!   with JSON numbers that are integers within `i64` (`3.0` is not the integer 3).
//! - `except` passes any non-null value that is not in the list: values of another type
//!   pass. A missing key, `null` or `[]` fail `except`, as they fail every `match`/`range`.
//! - `range` compares any JSON number as `f64`.
//! - `is_empty` holds when the key selects nothing, or only `null`s and `[]`s; `is_null`
//!   when it selects a `null` (`[null]` is neither empty nor null).
//!
//! Parsing ([`Filter::parse`], [`Filter::from_json`]) rejects unknown members, wrong types
//! and unsupported Qdrant features with an [`Error`] naming the place, e.g.
//! `must[1].range.gte: expected a number, got "x"`. It never panics.
//!
//! # Field indexes
//!
//! A [`FieldIndex`] maps the values of one key, of one [`IndexKind`] (keyword, integer, float,
//! bool), to the rows holding them, and records which rows `is_empty` / `is_null` hold for;
//! [`FieldIndexes`] is a segment's set of them by key. Values of other types are not indexed
//! (a keyword index ignores numbers): rows holding them are remembered, and conditions they
//! could pass are checked per point on those rows only. Indexes encode to bytes with a
//! version byte ([`FieldIndex::encode`]); the layout is in `docs/filters.md`.
//!
//! # Planning
//!
//! For a segment of `rows` rows: [`estimate`] gives a [`Cardinality`] from index statistics,
//! [`evaluate`] gives an [`Evaluation`] (rows that surely match and rows to check with
//! [`Filter::matches`]), and [`describe`] a [`Plan`] that reads like
//! `lexname: keyword index (341 rows); gloss_words: not indexed, checked per point`.

#![deny(unsafe_code)]

mod check;
mod error;
mod filter;
mod index;
mod key;
mod parse;
mod plan;

pub use error::{Error, Result};
pub use filter::{
    Condition, FieldCondition, FieldTest, Filter, Match, MinShould, Range, Scalar, ScalarList,
};
pub use index::{FieldIndex, FieldIndexBuilder, FieldIndexes, IndexKind, NumericValues};
pub use key::{KeyPath, MAX_KEY_STEPS};
pub use parse::MAX_DEPTH;
pub use plan::{
    Access, Cardinality, Evaluation, Plan, RowIds, Step, UNINDEXED_SELECTIVITY, Verdict,
    dense_words, describe, estimate, evaluate,
};
pub use quiver_types::PointId;
pub use roaring::RoaringBitmap;

/// The field index format version this build writes and the newest it reads.
pub const INDEX_FORMAT_VERSION: u8 = index::FORMAT_VERSION;
