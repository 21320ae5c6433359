//! The REST API through the router (no socket): shapes, status codes and every bad-input
//! case, each checked to change nothing.

#![allow(clippy::unwrap_used, reason = "tests")]

mod collections;
mod common;
mod limits;
mod points;
mod sparse;
