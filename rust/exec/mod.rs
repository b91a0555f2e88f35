//! Running a [`Program`](crate::compile::Program) over rows: blocks of rows as SIMD lanes,
//! chunks of blocks across threads, on the interpreter ([`interp`]) or native code
//! ([`jit`]); Hessians forward over reverse ([`hessian`]).
//!
//! A call is a [`request`] ([`Arg`]s, a [`Job`], a [`Reduce`]) checked up front
//! (`check`), then run by the [`driver`]: chunks of rows across the [`pool`], blocks of
//! lane groups within a chunk, rows moved in and out by `gather`, reductions summed by
//! `sums` in an order fixed by the rows alone, on the build [`isa`] picks.
//!
//! The public surface is [`request`]'s types (also at the crate root) and [`pool`]'s thread
//! count; [`compiled::Compiled`](crate::compiled::Compiled) drives the rest. The engine
//! modules below are `pub` but hidden from the docs: the integration tests and benchmarks
//! (`tests/jit.rs`, `tests/strong_zero.rs`, `benches/batch.rs`) run the interpreter and
//! native code side by side on one program, which no public call can ask for. They are
//! not part of the semver surface.

mod check;
#[doc(hidden)]
pub mod driver;
mod gather;
pub mod hessian;
#[doc(hidden)]
pub mod interp;
#[doc(hidden)]
pub mod isa;
#[doc(hidden)]
pub mod jit;
#[doc(hidden)]
pub mod layout;
pub mod pool;
pub mod request;
pub mod settings;
#[doc(hidden)]
pub mod stream;
mod sums;
#[doc(hidden)]
pub mod transpose;

pub(crate) use check::check_args;
#[doc(hidden)]
pub use driver::{
    block_groups, buffer_lens, flagged_buffer_lens, native_pass, run, run_flagged_into, run_into,
    single_chunk,
};
#[doc(hidden)]
pub use isa::{detect_isa, Isa};
#[doc(hidden)]
pub use layout::Layout;
pub use request::{Arg, BatchError, Buffers, Job, Output, Reduce};
