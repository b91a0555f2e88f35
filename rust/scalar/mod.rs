//! Numbers without AD state: the [`Real`] trait every rule is written against, [`Dual`]
//! numbers, SIMD lanes ([`lanes::F64x4`]) and the vectorised math they use ([`vmath`]).

pub mod dual;
pub mod lanes;
pub mod real;
pub mod vmath;

pub use dual::Dual;
pub use real::Real;
