//! The derivative rules, each stated once.
//!
//! A rule returns the value together with the local partial derivatives. The eager tape
//! stores those partials at record time, [`crate::Dual`] multiplies them by tangents, and
//! compiled tapes re-evaluate them per row. The matches have no catch-all arm: a new
//! operation does not compile until it has its rule.

use super::{Binary, Unary};
use crate::scalar::real::Real;

/// |x| for the rules that fold a symmetric formula onto x >= 0 (so `exp(-|x|)` never
/// overflows): `x` where `x > 0`, else `-x`, the same value as `abs` (nan included). Unlike
/// `abs`, whose derivative at 0 is the subgradient 0, each side is smooth on the half-line
/// it serves, so a partial built on it differentiates right at 0 too: with `abs`,
/// softplus''(0) came out 0, not 1/4 (found by tests/test_fuzz.py).
#[inline(always)]
fn fold<T: Real>(x: T) -> T {
    T::sel_gt(x, T::cst(0.0), x, -x)
}

/// `x` where it is finite, else 0.
#[inline(always)]
fn finite<T: Real>(x: T) -> T {
    T::sel_gt(T::cst(f64::INFINITY), x.abs(), x, T::cst(0.0))
}

impl Unary {
    /// Value and derivative of `self` at `x`.
    ///
    /// ```
    /// use wengert::op::Unary;
    /// let (v, d) = Unary::Sin.rule(0.0_f64);
    /// assert_eq!((v, d), (0.0, 1.0));
    /// ```
    #[inline(always)]
    pub fn rule<T: Real>(self, x: T) -> (T, T) {
        let one = T::cst(1.0);
        let zero = T::cst(0.0);
        match self {
            Unary::Neg => (-x, -one),
            Unary::Sin => (x.sin(), x.cos()),
            Unary::Cos => (x.cos(), -x.sin()),
            Unary::Tan => {
                let v = x.tan();
                (v, one + v * v)
            }
            // (1-x)(1+x), not 1 - x*x: no cancellation near +-1.
            Unary::Asin => (x.asin(), one / ((one - x) * (one + x)).sqrt()),
            Unary::Acos => (x.acos(), -one / ((one - x) * (one + x)).sqrt()),
            Unary::Atan => (x.atan(), one / (one + x * x)),
            Unary::Sinh => (x.sinh(), x.cosh()),
            Unary::Cosh => (x.cosh(), x.sinh()),
            // sech^2 x = 4e/(1+e)^2 with e = exp(-2|x|): 1 - tanh^2 would cancel to 0 in
            // the tails, where the derivative is tiny but not 0. |x| is `fold(x)`, not
            // abs: see there.
            Unary::Tanh => {
                let e = (T::cst(-2.0) * fold(x)).exp();
                let s = one + e;
                (x.tanh(), T::cst(4.0) * e / (s * s))
            }
            // hypot, not sqrt(x*x + 1): x*x overflows above 1.3e154.
            Unary::Asinh => (x.asinh(), one / x.hypot(one)),
            // sqrt(x-1)*sqrt(x+1) rather than sqrt(x*x-1): no cancellation near 1.
            Unary::Acosh => (x.acosh(), one / ((x - one).sqrt() * (x + one).sqrt())),
            Unary::Atanh => (x.atanh(), one / ((one - x) * (one + x))),
            Unary::Exp => {
                let v = x.exp();
                (v, v)
            }
            Unary::Exp2 => {
                let v = x.exp2();
                (v, v * T::cst(std::f64::consts::LN_2))
            }
            // exp(x), not expm1(x) + 1, which cancels for large negative x.
            Unary::Expm1 => (x.exp_m1(), x.exp()),
            Unary::Log => (x.ln(), one / x),
            Unary::Log2 => (x.log2(), one / (x * T::cst(std::f64::consts::LN_2))),
            Unary::Log10 => (x.log10(), one / (x * T::cst(std::f64::consts::LN_10))),
            Unary::Log1p => (x.ln_1p(), one / (one + x)),
            Unary::Sqrt => {
                let v = x.sqrt();
                (v, T::cst(0.5) / v)
            }
            Unary::Cbrt => {
                // 1/(3 v^2) rather than v/(3x): gives inf, not nan, at 0.
                let v = x.cbrt();
                (v, one / (T::cst(3.0) * v * v))
            }
            // Subgradient 0 at the kink, as in PyTorch and JAX.
            Unary::Abs => (
                x.abs(),
                T::sel_gt(x, zero, one, T::sel_gt(zero, x, -one, zero)),
            ),
            Unary::Sigmoid => {
                // exp(-|x|) never overflows, so both tails stay accurate.
                let e = (-fold(x)).exp();
                let v = T::sel_gt(x, zero, one / (one + e), e / (one + e));
                // e/(1+e)^2, the same for x and -x: v(1 - v) would cancel for large x.
                (v, e / ((one + e) * (one + e)))
            }
            // relu(nan) is nan, as np.maximum(nan, 0) is; derivative 0 at the kink.
            Unary::Relu => (
                T::sel_gt(x, zero, x, T::sel_eq(x, x, zero, x)),
                T::sel_gt(x, zero, one, zero),
            ),
            Unary::Softplus => {
                let e = (-fold(x)).exp();
                let v = T::sel_gt(x, zero, x, zero) + e.ln_1p();
                let s = T::sel_gt(x, zero, one / (one + e), e / (one + e));
                (v, s)
            }
            Unary::Erf => (
                x.erf(),
                T::cst(std::f64::consts::FRAC_2_SQRT_PI) * (-(x * x)).exp(),
            ),
            // The steps: derivative 0 wherever it exists, and 0 at the jumps too (where
            // there is none), as JAX and PyTorch give: a piecewise-constant function passes
            // no gradient. Round is half to even, as np.round and np.rint.
            Unary::Floor => (x.floor(), zero),
            Unary::Ceil => (x.ceil(), zero),
            Unary::Round => (x.rint(), zero),
            Unary::Trunc => (x.trunc(), zero),
            Unary::Sign => (x.sign(), zero),
            Unary::Square => (x * x, T::cst(2.0) * x),
            Unary::Reciprocal => {
                let r = one / x;
                (r, -(r * r))
            }
            Unary::Erfc => (
                x.erfc(),
                T::cst(-std::f64::consts::FRAC_2_SQRT_PI) * (-(x * x)).exp(),
            ),
            Unary::Lgamma => (x.lgamma(), x.digamma()),
            Unary::Digamma => (x.digamma(), x.trigamma()),
            // Tetragamma is not an op: the derivative of trigamma (the third of digamma,
            // the fourth of lgamma) is NaN, never a finite wrong number. `x * NaN`, not a
            // constant NaN, so that its own derivative is NaN too (a constant's is 0).
            Unary::Trigamma => (x.trigamma(), x * T::cst(f64::NAN)),
            Unary::Sinc => {
                let v = x.sinc();
                (v, crate::scalar::special::sinc_derivative_of(x, v))
            }
            // The value passes through with derivative 0, in every mode and to every order
            // (JAX's `stop_gradient`): the value of a derivative graph keeps the node.
            Unary::StopGradient => (x.stop_gradient(), zero),
        }
    }

    /// The partial when it is the same constant everywhere (`-x`), so a compiled reverse
    /// sweep need not store it; tested against [`Unary::rule`].
    pub fn constant_partial(self) -> Option<f64> {
        match self {
            Unary::Neg => Some(-1.0),
            Unary::Sin
            | Unary::Cos
            | Unary::Tan
            | Unary::Asin
            | Unary::Acos
            | Unary::Atan
            | Unary::Sinh
            | Unary::Cosh
            | Unary::Tanh
            | Unary::Asinh
            | Unary::Acosh
            | Unary::Atanh
            | Unary::Exp
            | Unary::Exp2
            | Unary::Expm1
            | Unary::Log
            | Unary::Log2
            | Unary::Log10
            | Unary::Log1p
            | Unary::Sqrt
            | Unary::Cbrt
            | Unary::Abs
            | Unary::Sigmoid
            | Unary::Relu
            | Unary::Softplus
            | Unary::Erf
            | Unary::Square
            | Unary::Reciprocal
            | Unary::Erfc
            | Unary::Lgamma
            | Unary::Digamma
            | Unary::Trigamma
            | Unary::Sinc => None,
            Unary::Floor
            | Unary::Ceil
            | Unary::Round
            | Unary::Trunc
            | Unary::Sign
            | Unary::StopGradient => Some(0.0),
        }
    }
}

/// `(x / s, y / s, s)` with `s = max(|x|, |y|)`, so the larger scaled argument has
/// magnitude 1; `s = 1` where that maximum is 0, infinite or NaN, which leaves those
/// cases to IEEE arithmetic on the arguments themselves.
#[inline(always)]
fn scaled<T: Real>(x: T, y: T) -> (T, T, T) {
    let one = T::cst(1.0);
    let (ax, ay) = (x.abs(), y.abs());
    let m = T::sel_gt(ax, ay, ax, ay);
    let s = T::sel_gt(
        m,
        T::cst(0.0),
        T::sel_gt(T::cst(f64::INFINITY), m, m, one),
        one,
    );
    (x / s, y / s, s)
}

impl Binary {
    /// Value and the two partial derivatives of `self` at `(x, y)`.
    ///
    /// ```
    /// use wengert::op::Binary;
    /// assert_eq!(Binary::Mul.rule(3.0_f64, 4.0), (12.0, 4.0, 3.0));
    /// ```
    #[inline(always)]
    pub fn rule<T: Real>(self, x: T, y: T) -> (T, T, T) {
        let one = T::cst(1.0);
        let zero = T::cst(0.0);
        let half = T::cst(0.5);
        match self {
            Binary::Add => (x + y, one, one),
            Binary::Sub => (x - y, one, -one),
            Binary::Mul => (x * y, y, x),
            Binary::Div => {
                let v = x / y;
                let r = one / y;
                (v, r, -v * r)
            }
            Binary::Pow => {
                let v = x.powf(y);
                // x**0 is constant in x, and 0**y is constant in y (as JAX decides):
                // without the selects both would come out 0*inf = nan. Where y is 0, dx
                // is y times the finite part of x**(y-1), +0 as a constant 0 would be,
                // but keeping its derivative in y (x**-1: the Hessian's mixed term at
                // y = 0, which a constant 0 dropped; found by tests/test_fuzz.py).
                let p = x.powf(y - one);
                let dx = T::sel_eq(y, zero, y * finite(p) + zero, y * p);
                let dy = T::sel_eq(x, zero, zero, v * x.ln());
                (v, dx, dy)
            }
            // From the arguments divided by the larger magnitude s: x*x + y*y, and even
            // hypot(x, y), overflow for huge arguments (atan2(-1.7e308, 1e308)) where the
            // partials are representable, and a subnormal hypot has few significant bits.
            Binary::Atan2 => {
                let (xs, ys, s) = scaled(x, y);
                let r = xs.hypot(ys);
                (x.atan2(y), ys / r / r / s, -xs / r / r / s)
            }
            // Likewise: 1/hypot overflows for subnormal arguments, where the partials are
            // at most 1.
            Binary::Hypot => {
                let (xs, ys, _) = scaled(x, y);
                let r = xs.hypot(ys);
                let dx = T::sel_eq(r, zero, zero, xs / r);
                let dy = T::sel_eq(r, zero, zero, ys / r);
                (x.hypot(y), dx, dy)
            }
            // NaN in either argument gives NaN, as np.maximum does; ties split the
            // gradient evenly, as PyTorch and JAX do.
            Binary::Max => {
                let v = T::sel_eq(y, y, T::sel_gt(y, x, y, x), y);
                let dx = T::sel_gt(x, y, one, T::sel_eq(x, y, half, zero));
                (v, dx, one - dx)
            }
            Binary::Min => {
                let v = T::sel_eq(y, y, T::sel_gt(x, y, y, x), y);
                let dx = T::sel_gt(y, x, one, T::sel_eq(x, y, half, zero));
                (v, dx, one - dx)
            }
            // x - y * q with q = trunc(x / y) for fmod, floor(x / y) for remainder: d/dy is
            // -q, the integer quotient, recovered exactly as (x - v) / y rounded (x / y
            // itself may round across an integer).
            Binary::Fmod => {
                let v = x.fmod(y);
                (v, one, -((x - v) / y).rint())
            }
            Binary::Remainder => {
                let v = x.remainder(y);
                (v, one, -((x - v) / y).rint())
            }
            // |x| with y's sign: d/dx is +1 where the signs (bits) agree, -1 where they
            // differ, at x = +-0 too (by the sign bit); d/dy is 0.
            Binary::Copysign => (x.copysign(y), one.copysign(x) * one.copysign(y), zero),
            // The partials are the softmax weights sigmoid(x - y) and sigmoid(y - x), from
            // exp(-|x - y|) as in the sigmoid rule (both tails accurate, 1/2 each at ties).
            Binary::Logaddexp => {
                let d = x - y;
                let e = (-fold(d)).exp();
                let (hi, lo) = (one / (one + e), e / (one + e));
                (
                    x.logaddexp(y),
                    T::sel_gt(d, zero, hi, lo),
                    T::sel_gt(d, zero, lo, hi),
                )
            }
        }
    }

    /// Whether a compiled sweep should recompute the partials from the arguments rather
    /// than store them: true where the partials are the arguments themselves (`x * y`),
    /// so recomputing costs no arithmetic. A performance choice, not a rule.
    pub fn recompute_partials(self) -> bool {
        match self {
            Binary::Mul => true,
            Binary::Add
            | Binary::Sub
            | Binary::Div
            | Binary::Pow
            | Binary::Atan2
            | Binary::Hypot
            | Binary::Max
            | Binary::Min
            | Binary::Fmod
            | Binary::Remainder
            | Binary::Copysign
            | Binary::Logaddexp => false,
        }
    }

    /// The partials when they are the same constants everywhere (`x + y`, `x - y`), so a
    /// compiled reverse sweep need not store them; tested against [`Binary::rule`].
    pub fn constant_partials(self) -> Option<[f64; 2]> {
        match self {
            Binary::Add => Some([1.0, 1.0]),
            Binary::Sub => Some([1.0, -1.0]),
            Binary::Mul
            | Binary::Div
            | Binary::Pow
            | Binary::Atan2
            | Binary::Hypot
            | Binary::Max
            | Binary::Min
            | Binary::Fmod
            | Binary::Remainder
            | Binary::Copysign
            | Binary::Logaddexp => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINTS: [f64; 9] = [-7.5, -1.0, -0.3, 0.0, 0.2, 0.9, 1.0, 3.7, 1e3];

    #[test]
    fn constant_partials_agree_with_the_rules() {
        for op in Unary::ALL {
            if let Some(c) = op.constant_partial() {
                for x in POINTS {
                    assert_eq!(op.rule(x).1, c, "{op:?} at {x}");
                }
            }
        }
        for op in Binary::ALL {
            if let Some([a, b]) = op.constant_partials() {
                for x in POINTS {
                    for y in POINTS {
                        let (_, da, db) = op.rule(x, y);
                        assert_eq!((da, db), (a, b), "{op:?} at ({x}, {y})");
                    }
                }
            }
        }
    }
}
