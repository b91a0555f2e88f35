//! `F64x4`: four rows evaluated at once, the lane type of compiled tapes.
//!
//! Plain arrays with lane-wise code: inside a function compiled for AVX2+FMA (see
//! `crate::compiled`), LLVM turns the lane loops into 256-bit instructions; elsewhere the
//! same code runs as scalar loops. No intrinsics, so no `unsafe` here.

use crate::scalar::real::Real;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// Number of lanes.
pub const LANES: usize = 4;

/// Four `f64` lanes.
///
/// ```
/// use wengert::scalar::lanes::F64x4;
/// use wengert::Real;
/// let x = F64x4([0.0, 1.0, 2.0, 3.0]);
/// assert_eq!((x * x).0, [0.0, 1.0, 4.0, 9.0]);
/// assert_eq!(x.exp().0[0], 1.0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(32))]
pub struct F64x4(pub [f64; LANES]);

impl F64x4 {
    #[inline(always)]
    pub fn splat(x: f64) -> Self {
        F64x4([x; LANES])
    }
    #[inline(always)]
    fn map(self, f: impl Fn(f64) -> f64) -> Self {
        let a = self.0;
        F64x4([f(a[0]), f(a[1]), f(a[2]), f(a[3])])
    }
    #[inline(always)]
    fn zip(self, o: Self, f: impl Fn(f64, f64) -> f64) -> Self {
        let (a, b) = (self.0, o.0);
        F64x4([f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2]), f(a[3], b[3])])
    }
}

macro_rules! lane_operator {
    ($($trait:ident $method:ident $op:tt),*) => {
        $(impl $trait for F64x4 {
            type Output = Self;
            #[inline(always)]
            fn $method(self, o: Self) -> Self { self.zip(o, |a, b| a $op b) }
        })*
    };
}
lane_operator!(Add add +, Sub sub -, Mul mul *, Div div /);

impl Neg for F64x4 {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        self.map(|a| -a)
    }
}

macro_rules! lane_functions {
    ($($method:ident),* $(,)?) => {
        $(#[inline(always)] fn $method(self) -> Self { self.map(<f64 as Real>::$method) })*
    };
}

impl Real for F64x4 {
    #[inline(always)]
    fn cst(c: f64) -> Self {
        F64x4::splat(c)
    }
    #[inline(always)]
    fn sel_gt(x: Self, y: Self, a: Self, b: Self) -> Self {
        let mut r = b;
        for i in 0..LANES {
            if x.0[i] > y.0[i] {
                r.0[i] = a.0[i];
            }
        }
        r
    }
    #[inline(always)]
    fn sel_eq(x: Self, y: Self, a: Self, b: Self) -> Self {
        let mut r = b;
        for i in 0..LANES {
            if x.0[i] == y.0[i] {
                r.0[i] = a.0[i];
            }
        }
        r
    }
    lane_functions!(
        tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh, exp2, log2, log10, sqrt, cbrt, abs,
        erf, floor, ceil, rint, trunc, sign,
        // Not vectorised: libm's and crate::scalar::special's scalar functions, lane by lane.
        erfc, lgamma, digamma, trigamma,
    );
    // From the generic statement in crate::scalar::special, on lanes: vectorised through
    // vmath's sin.
    #[inline(always)]
    fn sinc(self) -> Self {
        crate::scalar::special::sinc_of(self)
    }
    #[inline(always)]
    fn fmod(self, y: Self) -> Self {
        self.zip(y, <f64 as Real>::fmod)
    }
    #[inline(always)]
    fn remainder(self, y: Self) -> Self {
        self.zip(y, <f64 as Real>::remainder)
    }
    #[inline(always)]
    fn copysign(self, y: Self) -> Self {
        self.zip(y, f64::copysign)
    }
    // Vectorised (crate::scalar::vmath); the rest call libm lane by lane.
    #[inline(always)]
    fn exp(self) -> Self {
        F64x4(crate::scalar::vmath::exp(self.0))
    }
    #[inline(always)]
    fn exp_m1(self) -> Self {
        F64x4(crate::scalar::vmath::exp_m1(self.0))
    }
    #[inline(always)]
    fn ln(self) -> Self {
        F64x4(crate::scalar::vmath::ln(self.0))
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        F64x4(crate::scalar::vmath::ln_1p(self.0))
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        F64x4(crate::scalar::vmath::tanh(self.0))
    }
    #[inline(always)]
    fn sin(self) -> Self {
        F64x4(crate::scalar::vmath::sin(self.0))
    }
    #[inline(always)]
    fn cos(self) -> Self {
        F64x4(crate::scalar::vmath::cos(self.0))
    }
    #[inline(always)]
    fn powf(self, y: Self) -> Self {
        self.zip(y, f64::powf)
    }
    #[inline(always)]
    fn atan2(self, x: Self) -> Self {
        self.zip(x, f64::atan2)
    }
    #[inline(always)]
    fn hypot(self, y: Self) -> Self {
        self.zip(y, f64::hypot)
    }
}
