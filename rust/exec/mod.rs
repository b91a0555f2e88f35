//! Running a [`Program`](crate::compile::Program) over rows: blocks of rows as SIMD lanes,
//! chunks of blocks across threads, on the interpreter ([`interp`]) or native code
//! ([`jit`]); Hessians forward over reverse ([`hessian`]).

pub mod driver;
pub mod hessian;
pub mod interp;
pub mod jit;
pub mod pool;
pub mod transpose;

pub use driver::{
    buffer_lens, detect_isa, groups_per_block, native_pass, run, run_into, Arg, BatchError, Isa,
    Job, Layout, Output, Reduce,
};
