//! From a function to a program: [`trace`] records a [`Graph`] (simplified as it is
//! built), [`derive`] differentiates graphs symbolically, and [`Program`] compiles one into
//! slot-allocated instructions with a reverse plan; [`codec`] is its pickle format.

pub mod codec;
pub mod derive;
pub mod graph;
pub mod guard;
pub mod program;
pub mod trace;

pub use codec::DecodeError;
pub use graph::Graph;
pub use program::Program;
pub use trace::{trace, Traced};
