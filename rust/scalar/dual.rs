//! Dual numbers: forward mode. A dual carries a value and a tangent; every function maps
//! the tangent through its derivative, taken from the rules in [`crate::op`].
//!
//! `Dual<T>` is itself [`Real`], so duals nest: `Dual<Dual<f64>>` gives second
//! derivatives, and a reverse sweep run over `Dual<f64>` gives Hessian-vector products.

use crate::op::{Binary, Unary};
use crate::scalar::real::{strong_mul, Real};
use std::ops::{Add, Div, Mul, Neg, Sub};

/// A value with a tangent (first-order dual number).
///
/// ```
/// use wengert::{Dual, Real};
/// // d/dx (x*x*exp(x) + 3x) at 1 is 3e + 3.
/// let x = Dual::variable(1.0);
/// let y = x * x * x.exp() + Dual::constant(3.0) * x;
/// assert!((y.eps - (3.0 * std::f64::consts::E + 3.0)).abs() < 1e-14);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Dual<T = f64> {
    /// The value.
    pub re: T,
    /// The tangent: the derivative along the seeded direction.
    pub eps: T,
}

impl<T: Real> Dual<T> {
    pub fn new(re: T, eps: T) -> Self {
        Dual { re, eps }
    }
    /// A constant: tangent zero.
    pub fn constant(re: T) -> Self {
        Dual {
            re,
            eps: T::cst(0.0),
        }
    }
    /// The independent variable: tangent one.
    pub fn variable(re: T) -> Self {
        Dual {
            re,
            eps: T::cst(1.0),
        }
    }
    #[inline(always)]
    pub fn unary(self, op: Unary) -> Self {
        let (v, d) = op.rule(self.re);
        // Derivative 0 (the steps, stop_gradient): tangent 0 whatever comes in, an
        // infinite or NaN tangent included, as every other mode gives.
        let eps = if op.constant_partial() == Some(0.0) {
            T::cst(0.0)
        } else {
            chain(d, self.eps)
        };
        Dual { re: v, eps }
    }
    #[inline(always)]
    pub fn binary(self, op: Binary, y: Self) -> Self {
        let (v, dx, dy) = op.rule(self.re, y.re);
        Dual {
            re: v,
            eps: chain(dx, self.eps) + chain(dy, y.eps),
        }
    }
}

/// `d * eps` under strong zero ([`strong_mul`]): an argument that does not vary
/// contributes zero, even where its partial is inf or nan (d/dy of `(-2) ** y`).
#[inline(always)]
fn chain<T: Real>(d: T, eps: T) -> T {
    strong_mul(d, eps)
}

impl<T: Real> Add for Dual<T> {
    type Output = Self;
    #[inline(always)]
    fn add(self, y: Self) -> Self {
        Dual {
            re: self.re + y.re,
            eps: self.eps + y.eps,
        }
    }
}
impl<T: Real> Sub for Dual<T> {
    type Output = Self;
    #[inline(always)]
    fn sub(self, y: Self) -> Self {
        Dual {
            re: self.re - y.re,
            eps: self.eps - y.eps,
        }
    }
}
impl<T: Real> Mul for Dual<T> {
    type Output = Self;
    /// The product rule under strong zero, as [`Dual::binary`] gives it: a factor whose
    /// tangent is 0 contributes nothing, so `Dual(1, 0) * Dual(inf, 1)` has tangent 1, not
    /// `0 * inf + 1 = nan`.
    #[inline(always)]
    fn mul(self, y: Self) -> Self {
        Dual {
            re: self.re * y.re,
            eps: chain(y.re, self.eps) + chain(self.re, y.eps),
        }
    }
}
impl<T: Real> Div for Dual<T> {
    type Output = Self;
    #[inline(always)]
    fn div(self, y: Self) -> Self {
        self.binary(Binary::Div, y)
    }
}
impl<T: Real> Neg for Dual<T> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        Dual {
            re: -self.re,
            eps: -self.eps,
        }
    }
}

macro_rules! dual_unary {
    ($($method:ident => $op:ident),* $(,)?) => {
        $(#[inline(always)] fn $method(self) -> Self { self.unary(Unary::$op) })*
    };
}

impl<T: Real> Real for Dual<T> {
    #[inline(always)]
    fn cst(c: f64) -> Self {
        Dual::constant(T::cst(c))
    }
    #[inline(always)]
    fn sel_gt(x: Self, y: Self, a: Self, b: Self) -> Self {
        Dual {
            re: T::sel_gt(x.re, y.re, a.re, b.re),
            eps: T::sel_gt(x.re, y.re, a.eps, b.eps),
        }
    }
    #[inline(always)]
    fn sel_eq(x: Self, y: Self, a: Self, b: Self) -> Self {
        Dual {
            re: T::sel_eq(x.re, y.re, a.re, b.re),
            eps: T::sel_eq(x.re, y.re, a.eps, b.eps),
        }
    }
    dual_unary!(
        sin => Sin, cos => Cos, tan => Tan, asin => Asin, acos => Acos, atan => Atan,
        sinh => Sinh, cosh => Cosh, tanh => Tanh, asinh => Asinh, acosh => Acosh,
        atanh => Atanh, exp => Exp, exp2 => Exp2, exp_m1 => Expm1, ln => Log,
        log2 => Log2, log10 => Log10, ln_1p => Log1p, sqrt => Sqrt, cbrt => Cbrt,
        abs => Abs, erf => Erf, floor => Floor, ceil => Ceil, rint => Round, trunc => Trunc,
        sign => Sign, erfc => Erfc, lgamma => Lgamma, digamma => Digamma,
        trigamma => Trigamma, sinc => Sinc, stop_gradient => StopGradient,
    );
    #[inline(always)]
    fn fmod(self, y: Self) -> Self {
        self.binary(Binary::Fmod, y)
    }
    #[inline(always)]
    fn remainder(self, y: Self) -> Self {
        self.binary(Binary::Remainder, y)
    }
    #[inline(always)]
    fn copysign(self, y: Self) -> Self {
        self.binary(Binary::Copysign, y)
    }
    #[inline(always)]
    fn logaddexp(self, y: Self) -> Self {
        self.binary(Binary::Logaddexp, y)
    }
    #[inline(always)]
    fn powf(self, y: Self) -> Self {
        self.binary(Binary::Pow, y)
    }
    #[inline(always)]
    fn atan2(self, x: Self) -> Self {
        self.binary(Binary::Atan2, x)
    }
    #[inline(always)]
    fn hypot(self, y: Self) -> Self {
        self.binary(Binary::Hypot, y)
    }
}
