//! Point ids live in `quiver-types`; re-exported so `quiver_storage::point_id` keeps working.

pub use quiver_types::point_id::{ENCODED_LEN, PointId};
