//! Scalar special functions behind the ops that `std` and `libm` do not provide as NumPy
//! defines them: round half to even, NumPy's `sign`, `remainder` and `logaddexp`, the
//! normalised `sinc`, and the digamma and trigamma functions.
//!
//! The generic ones (`*_of`) are written against [`Real`], so one statement serves plain
//! `f64` and the SIMD lanes (which then use the vectorised `sin`, `cos`, `exp` and `ln_1p`
//! of [`crate::scalar::vmath`]); the rest are `f64` only and lanes apply them lane by lane.

use crate::scalar::real::Real;
use std::f64::consts::{LN_2, PI};

/// `x` where `x > 0`, else `-x` (the same as `|x|`, nan included), selects only.
#[inline(always)]
fn fold<T: Real>(x: T) -> T {
    T::sel_gt(x, T::cst(0.0), x, -x)
}

/// NumPy's `sign`: 1 for positive, -1 for negative, `+0` for both zeros, nan for nan.
#[inline(always)]
pub fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else if x == 0.0 {
        0.0
    } else {
        x
    }
}

/// NumPy's `remainder` (Python's `%`): the result has the sign of `y`, as `npy_divmod`
/// computes it (`fmod`, then `y` added where the signs differ; a zero takes `y`'s sign).
#[inline(always)]
pub fn remainder(x: f64, y: f64) -> f64 {
    let m = x % y;
    if y == 0.0 {
        return m;
    }
    if m != 0.0 {
        if (y < 0.0) != (m < 0.0) {
            m + y
        } else {
            m
        }
    } else {
        0.0_f64.copysign(y)
    }
}

/// `sin(pi x)` with the argument reduced exactly (`x - 2 round(x / 2)`, then reflected into
/// `[-1/2, 1/2]`), so it is accurate for large `x` and exactly 0 at integers, where
/// `sin(pi * x)` is not.
#[inline(always)]
pub fn sinpi_of<T: Real>(x: T) -> T {
    let (half, one) = (T::cst(0.5), T::cst(1.0));
    let r = x - T::cst(2.0) * (x * half).rint();
    let s = T::sel_gt(fold(r), half, one.copysign(r) - r, r);
    (T::cst(PI) * s).sin()
}

/// `cos(pi x)`, reduced as [`sinpi_of`]: near the zeros at half-integers it is computed as
/// a sine of the exact distance to them.
#[inline(always)]
pub fn cospi_of<T: Real>(x: T) -> T {
    let (half, one, quarter) = (T::cst(0.5), T::cst(1.0), T::cst(0.25));
    let t = fold(x - T::cst(2.0) * (x * half).rint());
    let pi = T::cst(PI);
    T::sel_gt(
        quarter,
        t,
        (pi * t).cos(),
        T::sel_gt(
            T::cst(0.75),
            t,
            (pi * (half - t)).sin(),
            -(pi * (one - t)).cos(),
        ),
    )
}

/// Below this `|x|`, `sinc` and its derivative are evaluated by their Taylor series.
const SINC_SERIES: f64 = 0.25;

/// NumPy's normalised `sinc`, `sin(pi x) / (pi x)`, exactly 1 at 0. Near 0 from its series
/// (`sin(pi x)` and `pi x` both lose bits there once subnormal).
#[inline(always)]
pub fn sinc_of<T: Real>(x: T) -> T {
    let one = T::cst(1.0);
    let y = T::cst(PI) * x;
    let y2 = y * y;
    // 1 - y^2/6 + y^4/120 - y^6/5040: the next term is below 2^-53 for |x| < 1e-3.
    let series =
        one - y2 * (T::cst(1.0 / 6.0) - y2 * (T::cst(1.0 / 120.0) - y2 * T::cst(1.0 / 5040.0)));
    T::sel_gt(T::cst(1e-3), fold(x), series, sinpi_of(x) / y)
}

/// The derivative of `sinc`, `(cos(pi x) - sinc(x)) / x`, given `v = sinc(x)`; for
/// `|x| < 1/4` from its Taylor series instead, which has no cancellation and is exact at
/// 0 (derivative 0), and whose own derivatives are those of `sinc` (so second derivatives
/// at and near 0 are right too, which a select of the constant 0 at `x = 0` would not be).
#[inline(always)]
pub fn sinc_derivative_of<T: Real>(x: T, v: T) -> T {
    // sinc'(x) = pi * sum_{k>=1} (-1)^k 2k y^(2k-1) / (2k+1)!, y = pi x; terms up to k = 11
    // (the next is below 2^-60 of the first for |y| < pi/4).
    let y = T::cst(PI) * x;
    let y2 = y * y;
    let mut acc = T::cst(0.0);
    let mut coef = [0.0_f64; 11];
    let mut fact = 1.0_f64; // (2k+1)!
    for (k, c) in coef.iter_mut().enumerate() {
        let k1 = (k + 1) as f64;
        fact *= (2.0 * k1) * (2.0 * k1 + 1.0);
        let sgn = if k % 2 == 0 { -1.0 } else { 1.0 };
        *c = sgn * 2.0 * k1 / fact;
    }
    for &c in coef.iter().rev() {
        acc = acc * y2 + T::cst(c);
    }
    let series = T::cst(PI) * y * acc;
    T::sel_gt(T::cst(SINC_SERIES), fold(x), series, (cospi_of(x) - v) / x)
}

/// NumPy's `logaddexp`, `log(exp(x) + exp(y))` without overflow: the larger argument plus
/// `log1p(exp(-|x - y|))`, and `x + log 2` where `x == y` (infinities included).
#[inline(always)]
pub fn logaddexp_of<T: Real>(x: T, y: T) -> T {
    let d = x - y;
    let a = T::sel_gt(d, T::cst(0.0), x, y);
    T::sel_eq(x, y, x + T::cst(LN_2), a + (-fold(d)).exp().ln_1p())
}

/// The digamma function psi(x) = d/dx ln|Gamma(x)|: nan at the poles (0 and the negative
/// integers), reflection `psi(1-x) - pi cot(pi x)` below 0, then the recurrence up to 10
/// and the asymptotic series.
pub fn digamma(x: f64) -> f64 {
    if x.is_nan() || x == f64::NEG_INFINITY {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return x;
    }
    if x <= 0.0 {
        if x == x.floor() {
            return f64::NAN;
        }
        return digamma(1.0 - x) - PI * cospi_of(x) / sinpi_of(x);
    }
    let mut x = x;
    let mut acc = 0.0;
    while x < 10.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let r = 1.0 / (x * x);
    // B_2k / (2k): 1/12, -1/120, 1/252, -1/240, 1/132, -691/32760, 1/12.
    let tail = r
        * (1.0 / 12.0
            - r * (1.0 / 120.0
                - r * (1.0 / 252.0
                    - r * (1.0 / 240.0 - r * (1.0 / 132.0 - r * (691.0 / 32760.0 - r / 12.0))))));
    acc + x.ln() - 0.5 / x - tail
}

/// The trigamma function psi'(x): nan at the poles, reflection
/// `pi^2 / sin^2(pi x) - psi'(1 - x)` below 0, then the recurrence up to 10 and the
/// asymptotic series.
pub fn trigamma(x: f64) -> f64 {
    if x.is_nan() || x == f64::NEG_INFINITY {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return 0.0;
    }
    if x <= 0.0 {
        if x == x.floor() {
            return f64::NAN;
        }
        let s = sinpi_of(x);
        return PI * PI / (s * s) - trigamma(1.0 - x);
    }
    let mut x = x;
    let mut acc = 0.0;
    while x < 10.0 {
        acc += 1.0 / (x * x);
        x += 1.0;
    }
    let r = 1.0 / (x * x);
    // B_2k / x^(2k+1): 1/6, -1/30, 1/42, -1/30, 5/66, -691/2730, 7/6.
    let tail = r
        * (1.0 / 6.0
            - r * (1.0 / 30.0
                - r * (1.0 / 42.0
                    - r * (1.0 / 30.0 - r * (5.0 / 66.0 - r * (691.0 / 2730.0 - r * 7.0 / 6.0))))));
    acc + (1.0 + 0.5 / x + tail) / x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digamma_and_trigamma_at_known_points() {
        // psi(1) = -gamma, psi'(1) = pi^2/6, psi(1/2) = -gamma - 2 ln 2.
        let euler = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + euler).abs() < 1e-15);
        assert!((digamma(0.5) + euler + 2.0 * LN_2).abs() < 4e-15);
        assert!((trigamma(1.0) - PI * PI / 6.0).abs() < 1e-15);
        assert!(digamma(0.0).is_nan() && digamma(-3.0).is_nan() && trigamma(-2.0).is_nan());
    }

    #[test]
    fn sinpi_is_exact_at_integers_and_halves() {
        for k in [-3.0, -1.0, 0.0, 2.0, 1e20] {
            assert_eq!(sinpi_of(k), 0.0, "{k}");
        }
        assert_eq!(sinpi_of(0.5), 1.0);
        assert_eq!(cospi_of(0.5), 0.0);
        assert_eq!(cospi_of(1.0), -1.0);
    }
}
