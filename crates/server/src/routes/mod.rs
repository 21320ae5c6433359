//! Handlers, one file per part of Qdrant's API.

pub mod aliases;
pub mod collections;
mod hybrid;
pub mod inspect;
pub mod points;
pub mod query;
pub mod scroll;
pub mod service;
