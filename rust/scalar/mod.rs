//! Numbers without AD state: the [`Real`] trait every rule is written against, [`Dual`]
//! numbers, SIMD lanes ([`lanes::F64x4`]) and the vectorised math they use ([`vmath`]).

pub mod dual;
/// SIMD lanes and their math: `pub` for the engine tests (`tests/jit.rs`,
/// `tests/vmath.rs`), hidden from the docs and not part of the semver surface.
#[doc(hidden)]
pub mod lanes;
pub mod real;
pub mod special;
#[doc(hidden)]
pub mod vmath;

pub use dual::Dual;
pub use real::Real;
