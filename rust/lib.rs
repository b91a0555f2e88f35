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

pub mod compile;
pub mod compiled;
pub mod exec;
pub mod op;
pub mod scalar;
pub mod tape;

#[cfg(feature = "python")]
mod python;

pub use scalar::{Dual, Real};
pub use tape::{Gradients, Tape, Var};
