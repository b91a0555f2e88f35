//! The number type every derivative rule is written against.
//!
//! Rules in [`crate::op`] are generic over [`Real`], so one statement of each rule serves
//! plain `f64` (the eager tape), [`crate::Dual`] (forward mode, and nested duals for
//! higher order) and, later, SIMD lanes. Comparisons are expressed as selects because a
//! lane type has no single truth value.

use std::ops::{Add, Div, Mul, Neg, Sub};

/// A real scalar (or a vector of lanes) with the elementary functions.
///
/// ```
/// use wengert::Real;
/// fn square_plus_sin<T: Real>(x: T) -> T { x * x + x.sin() }
/// assert_eq!(square_plus_sin(0.0_f64), 0.0);
/// ```
pub trait Real:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    fn cst(c: f64) -> Self;
    /// `if x > y { a } else { b }`, lane-wise; the comparison looks at values only.
    fn sel_gt(x: Self, y: Self, a: Self, b: Self) -> Self;
    /// `if x == y { a } else { b }`, lane-wise.
    fn sel_eq(x: Self, y: Self, a: Self, b: Self) -> Self;

    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn tan(self) -> Self;
    fn asin(self) -> Self;
    fn acos(self) -> Self;
    fn atan(self) -> Self;
    fn sinh(self) -> Self;
    fn cosh(self) -> Self;
    fn tanh(self) -> Self;
    fn asinh(self) -> Self;
    fn acosh(self) -> Self;
    fn atanh(self) -> Self;
    fn exp(self) -> Self;
    fn exp2(self) -> Self;
    fn exp_m1(self) -> Self;
    fn ln(self) -> Self;
    fn log2(self) -> Self;
    fn log10(self) -> Self;
    fn ln_1p(self) -> Self;
    fn sqrt(self) -> Self;
    fn cbrt(self) -> Self;
    fn abs(self) -> Self;
    fn erf(self) -> Self;
    fn powf(self, y: Self) -> Self;
    fn atan2(self, x: Self) -> Self;
    fn hypot(self, y: Self) -> Self;

    /// The largest integer not above `self`.
    fn floor(self) -> Self;
    /// The smallest integer not below `self`.
    fn ceil(self) -> Self;
    /// The nearest integer, halves to even (NumPy's `round` and `rint`).
    fn rint(self) -> Self;
    /// The integer part, toward zero.
    fn trunc(self) -> Self;
    /// NumPy's `sign`: -1, +0 or 1 (nan for nan).
    fn sign(self) -> Self;
    /// `1 - erf(self)`, accurate where it is tiny.
    fn erfc(self) -> Self;
    /// `ln |Gamma(self)|`.
    fn lgamma(self) -> Self;
    /// The digamma function, the derivative of [`Real::lgamma`].
    fn digamma(self) -> Self;
    /// The trigamma function, the derivative of [`Real::digamma`].
    fn trigamma(self) -> Self;
    /// NumPy's normalised `sinc`, `sin(pi x) / (pi x)`, 1 at 0.
    fn sinc(self) -> Self;
    /// The same value, with no derivative: only types that carry derivatives
    /// (duals, traced values) make it differ from the identity.
    fn stop_gradient(self) -> Self {
        self
    }
    /// C's `fmod`: the remainder with the sign of `self`.
    fn fmod(self, y: Self) -> Self;
    /// NumPy's `remainder` (Python's `%`): the remainder with the sign of `y`.
    fn remainder(self, y: Self) -> Self;
    /// The magnitude of `self` with the sign (bit) of `y`.
    fn copysign(self, y: Self) -> Self;
    /// `ln(exp(self) + exp(y))`, without overflow (NumPy's `logaddexp`).
    fn logaddexp(self, y: Self) -> Self {
        crate::scalar::special::logaddexp_of(self, y)
    }
}

impl Real for f64 {
    #[inline(always)]
    fn cst(c: f64) -> Self {
        c
    }
    #[inline(always)]
    fn sel_gt(x: Self, y: Self, a: Self, b: Self) -> Self {
        if x > y {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn sel_eq(x: Self, y: Self, a: Self, b: Self) -> Self {
        if x == y {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn sin(self) -> Self {
        f64::sin(self)
    }
    #[inline(always)]
    fn cos(self) -> Self {
        f64::cos(self)
    }
    #[inline(always)]
    fn tan(self) -> Self {
        f64::tan(self)
    }
    #[inline(always)]
    fn asin(self) -> Self {
        f64::asin(self)
    }
    #[inline(always)]
    fn acos(self) -> Self {
        f64::acos(self)
    }
    #[inline(always)]
    fn atan(self) -> Self {
        f64::atan(self)
    }
    #[inline(always)]
    fn sinh(self) -> Self {
        f64::sinh(self)
    }
    #[inline(always)]
    fn cosh(self) -> Self {
        f64::cosh(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    #[inline(always)]
    fn asinh(self) -> Self {
        f64::asinh(self)
    }
    #[inline(always)]
    fn acosh(self) -> Self {
        // libm's, not std's: std's loses ~30 ulp just above 1.
        libm::acosh(self)
    }
    #[inline(always)]
    fn atanh(self) -> Self {
        // libm's, not std's: std's loses ~90 ulp near -1.
        libm::atanh(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn exp2(self) -> Self {
        f64::exp2(self)
    }
    #[inline(always)]
    fn exp_m1(self) -> Self {
        f64::exp_m1(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn log2(self) -> Self {
        f64::log2(self)
    }
    #[inline(always)]
    fn log10(self) -> Self {
        f64::log10(self)
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        f64::ln_1p(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn cbrt(self) -> Self {
        f64::cbrt(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        libm::erf(self)
    }
    #[inline(always)]
    fn powf(self, y: Self) -> Self {
        f64::powf(self, y)
    }
    #[inline(always)]
    fn atan2(self, x: Self) -> Self {
        f64::atan2(self, x)
    }
    #[inline(always)]
    fn hypot(self, y: Self) -> Self {
        f64::hypot(self, y)
    }
    #[inline(always)]
    fn floor(self) -> Self {
        f64::floor(self)
    }
    #[inline(always)]
    fn ceil(self) -> Self {
        f64::ceil(self)
    }
    #[inline(always)]
    fn rint(self) -> Self {
        f64::round_ties_even(self)
    }
    #[inline(always)]
    fn trunc(self) -> Self {
        f64::trunc(self)
    }
    #[inline(always)]
    fn sign(self) -> Self {
        crate::scalar::special::sign(self)
    }
    #[inline(always)]
    fn erfc(self) -> Self {
        libm::erfc(self)
    }
    #[inline(always)]
    fn lgamma(self) -> Self {
        libm::lgamma(self)
    }
    #[inline(always)]
    fn digamma(self) -> Self {
        crate::scalar::special::digamma(self)
    }
    #[inline(always)]
    fn trigamma(self) -> Self {
        crate::scalar::special::trigamma(self)
    }
    #[inline(always)]
    fn sinc(self) -> Self {
        crate::scalar::special::sinc_of(self)
    }
    #[inline(always)]
    fn fmod(self, y: Self) -> Self {
        self % y
    }
    #[inline(always)]
    fn remainder(self, y: Self) -> Self {
        crate::scalar::special::remainder(self, y)
    }
    #[inline(always)]
    fn copysign(self, y: Self) -> Self {
        f64::copysign(self, y)
    }
}

/// `p * g` under strong zero: `+0.0` where `g` (an adjoint or a tangent) is exactly zero
/// and the IEEE product is NaN (`p` infinite or NaN); elsewhere the IEEE product, signed
/// zeros included. So a zero adjoint never turns a sum into NaN, and where the partial is
/// finite this is the plain product: the one difference from IEEE arithmetic every sweep
/// makes (the design's "strong zero").
///
/// ```
/// use wengert::scalar::real::strong_mul;
/// assert_eq!(strong_mul(f64::INFINITY, 0.0), 0.0);
/// assert!(strong_mul(f64::NAN, 1.0).is_nan());
/// assert!(strong_mul(-3.0, 0.0).is_sign_negative()); // -0.0, as IEEE
/// ```
#[inline(always)]
pub fn strong_mul<T: Real>(p: T, g: T) -> T {
    let t = p * g;
    let zero = T::cst(0.0);
    T::sel_eq(g, zero, T::sel_eq(t, t, t, zero), t)
}
