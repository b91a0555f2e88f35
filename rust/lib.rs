//! wengert: exact derivatives of scalar code.
//!
//! - [`Tape`] and [`Var`]: reverse mode on an arena tape (the Wengert list).
//! - [`Dual`]: forward mode, generic over [`Real`] so duals nest.
//! - [`op`]: every elementary operation with its derivative rule, stated once.
//! - [`Compiled`]: trace once, then values and derivatives over many rows.
//!
//! # The pipeline
//!
//! Dependencies run one way: [`scalar`] <- [`op`] <- {[`tape`], [`compile`]} <- [`exec`]
//! <- [`compiled`] (the facade) <- the Python binding (feature `python`).
//!
//! - [`scalar`]: numbers without AD state ([`Real`], [`Dual`], SIMD lanes, vectorised math).
//! - [`op`]: the op registry (enums, names, codec bytes, dispatch generated from one list)
//!   and the derivative rules.
//! - [`tape`]: eager reverse mode: the arena and its sweep, [`Tape`], and the managed tape
//!   that reclaims unreachable nodes (Python's `Var`).
//! - [`compile`]: tracing a function into a graph, compiling the graph into a program of
//!   slots with a reverse plan, and the program's codec.
//! - [`exec`]: running a program over rows: request types, the driver (chunks, threads,
//!   blocks), the interpreter, native code (`exec::jit`), Hessians, the thread pool.
//! - [`compiled`]: [`Compiled`], a traced function with its value and gradient programs.
//!
//! ```
//! use wengert::Tape;
//! let t = Tape::new();
//! let x = t.var(2.0);
//! let y = x * x.sin();
//! assert_eq!(y.grad()[x], 2.0_f64.sin() + 2.0 * 2.0_f64.cos());
//! ```

pub mod compile;
pub mod compiled;
pub mod exec;
pub mod hvp;
pub mod op;
pub mod scalar;
pub mod tape;

#[cfg(feature = "python")]
mod python;

pub use compiled::Compiled;
pub use exec::{Arg, BatchError, Job, Output, Reduce};
pub use scalar::{Dual, Real};
pub use tape::{Gradients, Tape, Var};
