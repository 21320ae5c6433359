//! Quiver's shared value types, in a leaf crate so that crates which need only them (filters)
//! do not depend on the storage layer.
//!
//! - [`point_id`]: a point's external id, its text and JSON forms, and its 17-byte encoding
//!   (`docs/format.md` §3.9).

pub mod point_id;

pub use point_id::PointId;
