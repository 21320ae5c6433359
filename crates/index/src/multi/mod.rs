//! Multi-vector (late-interaction) scoring: a point's value is a list of token vectors of one
//! dimension, compared by MaxSim ([`maxsim`]), and approximated for graph search by MUVERA's
//! fixed-dimensional encodings ([`fde`]), whose inner product tracks MaxSim.
//!
//! Token lists are row-major `f32` slices, `tokens × dim` long, as the engine stores them.

pub mod fde;
pub mod maxsim;
mod rng;

pub use fde::{Fde, FdeError, FdeParams};
pub use maxsim::{MaxSim, max_sim};
