//! wengert: exact derivatives of scalar code.
//!
//! - [`Tape`] and [`Var`]: reverse mode on an arena tape (the Wengert list).
//! - [`Dual`]: forward mode, generic over [`Real`] so duals nest.
//! - [`op`]: every elementary operation with its derivative rule, stated once.
//!
//! ```
//! use wengert::Tape;
//! let t = Tape::new();
//! let x = t.var(2.0);
//! let y = x * x.sin();
//! assert_eq!(y.grad()[x], 2.0_f64.sin() + 2.0 * 2.0_f64.cos());
//! ```

pub mod arena;
pub mod batch;
pub mod compiled;
pub mod derive;
pub mod dual;
pub mod graph;
pub mod guard;
pub mod hessian;
pub mod jit;
pub mod kernel;
pub mod lanes;
pub mod op;
pub mod program;
pub mod real;
pub mod tape;
pub mod trace;
pub mod transpose;
pub mod vmath;

#[cfg(feature = "python")]
mod python;

pub use dual::Dual;
pub use real::Real;
pub use tape::{Gradients, Tape, Var};
