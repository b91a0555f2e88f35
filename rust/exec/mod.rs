//! Running a [`Program`](crate::compile::Program) over rows: blocks of rows as SIMD lanes,
//! chunks of blocks across threads, on the interpreter ([`interp`]) or native code
//! ([`jit`]); Hessians forward over reverse ([`hessian`]).
//!
//! A call is a [`request`] ([`Arg`]s, a [`Job`], a [`Reduce`]) checked up front
//! (`check`), then run by the [`driver`]: chunks of rows across the [`pool`], blocks of
//! lane groups within a chunk, rows moved in and out by `gather`, reductions summed by
//! `sums` in an order fixed by the rows alone, on the build [`isa`] picks.

mod check;
pub mod driver;
mod gather;
pub mod hessian;
pub mod interp;
pub mod isa;
pub mod jit;
pub mod layout;
pub mod pool;
pub mod request;
mod sums;
pub mod transpose;

pub use driver::{block_groups, buffer_lens, native_pass, run, run_into};
pub use isa::{detect_isa, Isa};
pub use layout::Layout;
pub use request::{Arg, BatchError, Job, Output, Reduce};
