//! `exp`, `exp_m1`, `ln`, `ln_1p`, `sin`, `cos` and `tanh` on four lanes at once, written
//! as straight-line lane-wise code that LLVM turns into AVX2 instructions inside the batch
//! kernels (see `crate::exec::driver`). Each lane's result depends on that lane alone.
//!
//! The algorithms are the classic ones (Cody-Waite range reduction, then the fdlibm
//! polynomials), without `mul_add`, so the AVX2 and the portable builds agree bit for bit.
//! `tests/vmath.rs` bounds the error against libm and high-precision references.
//! sin/cos arguments outside the fast range (|x| >= 2^20, inf, NaN) go through libm, lane
//! by lane.

#![allow(
    clippy::excessive_precision,
    reason = "coefficients keep the digits of their source (fdlibm), so they can be checked against it"
)]

type L = [f64; 4];

// Each step below is a short loop-free function applied to the four lanes side by side,
// the shape LLVM's SLP vectoriser turns into one 256-bit instruction per operation; a
// loop inside a per-lane function (a polynomial, say) would keep the lanes scalar.

#[inline(always)]
fn map(x: L, f: impl Fn(f64) -> f64) -> L {
    [f(x[0]), f(x[1]), f(x[2]), f(x[3])]
}

#[inline(always)]
fn lanes(f: impl Fn(usize) -> f64) -> L {
    [f(0), f(1), f(2), f(3)]
}

/// `a` where `c` holds, else `b`, as a select (both sides computed): an `if` would let
/// LLVM move the costly side into a branch per lane, which keeps the lanes scalar.
#[inline(always)]
fn sel(c: bool, a: f64, b: f64) -> f64 {
    std::hint::select_unpredictable(c, a, b)
}

/// Lane-wise `x * x`.
#[inline(always)]
fn square(x: L) -> L {
    lanes(|l| x[l] * x[l])
}

/// One level of Estrin's scheme for polynomials: neighbours paired as `t[2i] + t[2i+1] p`
/// (an odd last one kept), with `p` the power of `x` that separates them. Applied with
/// `x`, `x^2`, `x^4`, ... it evaluates a polynomial as a tree of depth log2(terms), where
/// Horner's rule is a chain of one multiply-add per term: for `exp`'s 14 terms, 13
/// dependent multiply-then-adds of about 8 cycles each, which the loop over lane groups
/// cannot hide. `M` is half of `N`,
/// rounded up (checked at compile time); constant sizes let LLVM keep every term in a
/// register, where a loop over a shrinking array went through the stack. Measured by
/// `benches/elementwise.py` (ns/row, Horner's rule vs this): `exp` 3.7 vs 2.6, `expm1`
/// 6.1 vs 3.7, `tanh` 7.1 vs 4.7.
#[inline(always)]
fn pairs<const N: usize, const M: usize>(t: [L; N], p: L) -> [L; M] {
    const { assert!(M == N.div_ceil(2)) };
    std::array::from_fn(|i| {
        if 2 * i + 1 < N {
            lanes(|l| t[2 * i][l] + t[2 * i + 1][l] * p[l])
        } else {
            t[2 * i]
        }
    })
}

/// The polynomial `c[0] + c[1] x + c[2] x^2 + ...` at each lane of `x`, for `N + 2`
/// coefficients with `N` from 9 to 16: the terms from `x^2` on by Estrin's scheme (four
/// levels of [`pairs`]; `A` and `B` are the sizes of the middle two), then the two lowest
/// terms added last, as in Horner's rule: the constant term, much the largest, meets the
/// rest in one final rounding.
#[inline(always)]
fn poly<const N: usize, const A: usize, const B: usize>(x: L, c: &[f64]) -> L {
    assert_eq!(c.len(), N + 2, "coefficients");
    let x2 = square(x);
    let t: [L; A] = pairs(std::array::from_fn::<L, N, _>(|i| [c[i + 2]; 4]), x);
    let t: [L; B] = pairs(t, x2);
    let x4 = square(x2);
    let [q] = pairs::<2, 1>(pairs::<B, 2>(t, x4), square(x4));
    lanes(|l| c[0] + (c[1] * x[l] + x2[l] * q[l]))
}

const LN2_HI: f64 = 6.93147180369123816490e-01;
const LN2_LO: f64 = 1.90821492927058770002e-10;
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// Beyond these, exp overflows to inf or underflows to 0.
const EXP_HI: f64 = 7.09782712893383973096e+02;
const EXP_LO: f64 = -7.45133219101941108420e+02;
/// Within this, e^x is a normal number and n = round(x / ln2) is in [-1021, 1021].
const EXP_NORMAL: f64 = 708.0;

/// 1.5 * 2^52: adding it to an integral double k with |k| < 2^51 puts k + 2^51 in the low
/// bits (the sum stays where the ulp is 1),
/// a float-to-integer conversion that vectorises without AVX-512.
const MAGIC: f64 = 6755399441055744.0;

/// 1/k! for k = 0..=18: Taylor coefficients of e^x (k <= 13) and of (e^x - 1)/x (k >= 1).
/// Every k! here is exact in f64, so each entry is the correctly rounded 1/k!.
const INV_FACTORIAL: [f64; 19] = {
    let mut t = [1.0; 19];
    let mut f = 1.0;
    let mut k = 1;
    while k < 19 {
        f *= k as f64;
        t[k] = 1.0 / f;
        k += 1;
    }
    t
};

/// `2^n` for integral `n` in [-1022, 1023], built from its bits.
#[inline(always)]
fn pow2(n: f64) -> f64 {
    f64::from_bits((n + 1023.0 + MAGIC).to_bits() << 52)
}

/// e^x, within 1 ulp of libm (2 in the subnormal range).
///
/// ```
/// let y = wengert::scalar::vmath::exp([0.0, 1.0, -1.0, 710.0]);
/// assert_eq!(y[0], 1.0);
/// assert!((y[1] - std::f64::consts::E).abs() <= f64::EPSILON * 3.0);
/// assert_eq!(y[3], f64::INFINITY);
/// ```
#[inline(always)]
pub fn exp(x: L) -> L {
    // x = n ln2 + r, |r| <= ln2/2, r in two parts so it is exact to ~1e-20.
    let n = map(x, |v| (v * LOG2_E).round_ties_even());
    let r = lanes(|l| (x[l] - n[l] * LN2_HI) - n[l] * LN2_LO);
    // Taylor to degree 13: the remainder is below 1e-17 relative on |r| <= 0.347.
    let p = poly::<12, 6, 3>(r, &INV_FACTORIAL[..14]);
    // Where every result is normal, one power of two does; the two halves below give the
    // same bits there (scaling by a power of two is exact), at twice the work: `exp`
    // 2.6 -> 2.1 ns/row in `benches/elementwise.py`.
    if x.iter().all(|v| v.abs() <= EXP_NORMAL) {
        return lanes(|l| p[l] * pow2(n[l]));
    }
    lanes(|l| {
        // 2^n in two halves, so results down in the subnormals are scaled without
        // overflowing the exponent on the way.
        let n = n[l].clamp(-2044.0, 2046.0);
        let h = (n * 0.5).floor();
        let y = p[l] * pow2(h.clamp(-1022.0, 1023.0)) * pow2((n - h).clamp(-1022.0, 1023.0));
        let x = x[l];
        sel(
            x > EXP_HI,
            f64::INFINITY,
            sel(x < EXP_LO, 0.0, sel(x.is_nan(), x, y)),
        )
    })
}

// pi/2 in three parts of 33 bits (fdlibm's PIO2_1, PIO2_2, PIO2_3 and the tail), so k *
// part is exact for |k| < 2^20.
const PIO2_1: f64 = 1.57079632673412561417e+00;
const PIO2_2: f64 = 6.07710050630396597660e-11;
const PIO2_3: f64 = 2.02226624871116645580e-21;
const PIO2_3T: f64 = 8.47842766036889956997e-32;
const TWO_OVER_PI: f64 = std::f64::consts::FRAC_2_PI;
/// |x| below this reduces exactly enough with the three-part pi/2.
const TRIG_FAST: f64 = 1048576.0;

const S1: f64 = -1.66666666666666324348e-01;
const S2: f64 = 8.33333333332248946124e-03;
const S3: f64 = -1.98412698298579493134e-04;
const S4: f64 = 2.75573137070700676789e-06;
const S5: f64 = -2.50507602534068634195e-08;
const S6: f64 = 1.58969099521155010221e-10;
const C1: f64 = 4.16666666666666019037e-02;
const C2: f64 = -1.38888888888741095749e-03;
const C3: f64 = 2.48015872894767294178e-05;
const C4: f64 = -2.75573143513906633035e-07;
const C5: f64 = 2.08757232129817482790e-09;
const C6: f64 = -1.13596475577881948265e-11;

/// sin and cos of `r` in [-pi/4, pi/4] (fdlibm's kernels, without the tail term).
#[inline(always)]
fn kernels(r: f64) -> (f64, f64) {
    let z = r * r;
    let s = r + r * z * (S1 + z * (S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)))));
    let hz = 0.5 * z;
    let w = 1.0 - hz;
    let c =
        w + (((1.0 - w) - hz) + z * z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6))))));
    (s, c)
}

/// (sin x, cos x) for |x| < 2^20: quadrant k and remainder r with x = k pi/2 + r.
#[inline(always)]
fn sincos_fast(x: f64) -> (f64, f64) {
    let k = (x * TWO_OVER_PI).round_ties_even();
    let r = ((x - k * PIO2_1) - k * PIO2_2) - k * (PIO2_3 + PIO2_3T);
    let (s, c) = kernels(r);
    // k mod 4 from the low bits (k + 2^52 keeps k's residue mod 4, negative k too).
    let q = (k + MAGIC).to_bits() & 3;
    let (a, b) = if q & 1 == 1 { (c, -s) } else { (s, c) };
    let sign = if q & 2 == 2 { -1.0 } else { 1.0 };
    // sin(-0) is -0: the reduction would give +0.
    let a = if x == 0.0 { x } else { a * sign };
    (a, b * sign)
}

/// Lane-wise `(sin, cos)`: the fast path on every lane (a stand-in 0 for the lanes
/// outside its range, and non-finite ones), then libm's result for those lanes only, so a
/// lane's result never depends on its neighbours.
#[inline(always)]
fn sincos(x: L) -> (L, L) {
    let fast = x.map(|v| v.abs() < TRIG_FAST);
    let xf = lanes(|l| sel(fast[l], x[l], 0.0));
    let r = [
        sincos_fast(xf[0]),
        sincos_fast(xf[1]),
        sincos_fast(xf[2]),
        sincos_fast(xf[3]),
    ];
    let (s, c) = (
        [r[0].0, r[1].0, r[2].0, r[3].0],
        [r[0].1, r[1].1, r[2].1, r[3].1],
    );
    if fast.iter().all(|&f| f) {
        (s, c)
    } else {
        (
            lanes(|l| sel(fast[l], s[l], x[l].sin())),
            lanes(|l| sel(fast[l], c[l], x[l].cos())),
        )
    }
}

/// sin x, within 2 ulp of libm for |x| < 2^20 (libm's result beyond).
///
/// ```
/// let y = wengert::scalar::vmath::sin([0.0, 1.0, -0.0, 1e300]);
/// assert_eq!(y[0], 0.0);
/// assert!((y[1] - 1.0_f64.sin()).abs() <= f64::EPSILON);
/// assert!(y[2] == 0.0 && y[2].is_sign_negative());
/// assert_eq!(y[3], 1e300_f64.sin());
/// ```
#[inline(always)]
pub fn sin(x: L) -> L {
    sincos(x).0
}

/// cos x, within 2 ulp of libm for |x| < 2^20 (libm's result beyond).
///
/// ```
/// let y = wengert::scalar::vmath::cos([0.0, 1.0, 1e7, f64::NAN]);
/// assert_eq!(y[0], 1.0);
/// assert!((y[1] - 1.0_f64.cos()).abs() <= f64::EPSILON);
/// assert_eq!(y[2], 1e7_f64.cos());
/// assert!(y[3].is_nan());
/// ```
#[inline(always)]
pub fn cos(x: L) -> L {
    sincos(x).1
}

/// `v` as a double, for `v < 2^52`: the bits of 2^52 + v, minus 2^52. Unlike `as f64`,
/// this vectorises without AVX-512.
#[inline(always)]
fn small_int_to_f64(v: u64) -> f64 {
    f64::from_bits(0x4330_0000_0000_0000 | v) - 4503599627370496.0
}

const LG1: f64 = 6.666666666666735130e-01;
const LG2: f64 = 3.999999999940941908e-01;
const LG3: f64 = 2.857142874366239149e-01;
const LG4: f64 = 2.222219843214978396e-01;
const LG5: f64 = 1.818357216161805012e-01;
const LG6: f64 = 1.531383769920937332e-01;
const LG7: f64 = 1.479819860511658591e-01;
/// 2^54, to lift subnormal arguments into the normal range.
const TWO54: f64 = 18014398509481984.0;

/// ln x for one lane (fdlibm's `__ieee754_log` without its branches): x = 2^k (1 + f)
/// with sqrt(2)/2 < 1 + f < sqrt(2), then ln(1 + f) = f - s (f - R) in terms of
/// s = f / (2 + f).
#[inline(always)]
fn ln_lane(x: f64) -> f64 {
    let sub = x < f64::MIN_POSITIVE;
    let (y, k0) = (sel(sub, x * TWO54, x), sel(sub, -54.0, 0.0));
    let bits = y.to_bits();
    let hx = bits >> 32;
    let m = hx & 0x000f_ffff;
    // i is 2^20 when the mantissa is above sqrt(2): then use x/2 and k + 1.
    let i = (m + 0x95f64) & 0x10_0000;
    let hi = m | (i ^ 0x3ff0_0000);
    let norm = f64::from_bits((hi << 32) | (bits & 0xffff_ffff));
    let k = small_int_to_f64(((hx >> 20) & 0x7ff) + (i >> 20)) - 1023.0 + k0;
    let f = norm - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let v = k * LN2_HI - ((hfsq - (s * (hfsq + r) + k * LN2_LO)) - f);
    let special = x == f64::INFINITY || x.is_nan();
    sel(
        x == 0.0,
        f64::NEG_INFINITY,
        sel(x < 0.0, f64::NAN, sel(special, x, v)),
    )
}

/// ln x, within 1 ulp of libm; IEEE results at 0, negative numbers, inf and NaN.
///
/// ```
/// let y = wengert::scalar::vmath::ln([1.0, std::f64::consts::E, 0.0, -1.0]);
/// assert_eq!(y[0], 0.0);
/// assert!((y[1] - 1.0).abs() <= f64::EPSILON);
/// assert_eq!(y[2], f64::NEG_INFINITY);
/// assert!(y[3].is_nan());
/// ```
#[inline(always)]
pub fn ln(x: L) -> L {
    map(x, ln_lane)
}

/// ln(1 + x), within 2 ulp of libm: ln u corrected by the rounding of u = 1 + x.
///
/// ```
/// let y = wengert::scalar::vmath::ln_1p([1e-20, 0.0, -1.0, 1.0]);
/// assert_eq!(y[0], 1e-20);
/// assert_eq!(y[2], f64::NEG_INFINITY);
/// assert!((y[3] - std::f64::consts::LN_2).abs() <= f64::EPSILON);
/// ```
#[inline(always)]
pub fn ln_1p(x: L) -> L {
    map(x, |x| {
        let u = 1.0 + x;
        // ln(1 + x) = ln u + ln(1 + ((1 + x) - u)/u), and the second term is its first
        // order: (x - (u - 1)) / u, exact enough since u - 1 is exact here.
        let v = ln_lane(u) + (x - (u - 1.0)) / u;
        // u == 1: |x| is below half an ulp of 1, and ln(1 + x) rounds to x.
        let keep_x = u == 1.0 || x == f64::INFINITY || x.is_nan();
        sel(u == 0.0, f64::NEG_INFINITY, sel(keep_x, x, v))
    })
}

/// e^x - 1, within 2 ulp of libm (and exact near 0, where it is x).
///
/// ```
/// let y = wengert::scalar::vmath::exp_m1([1e-20, 0.0, -800.0, 1.0]);
/// assert_eq!(y[0], 1e-20);
/// assert_eq!(y[2], -1.0);
/// assert!((y[3] - (std::f64::consts::E - 1.0)).abs() <= 2.0 * f64::EPSILON);
/// ```
#[inline(always)]
pub fn exp_m1(x: L) -> L {
    // Taylor on |x| < 1 (no cancellation), e^x - 1 beyond (where the subtraction loses at
    // most a factor of e / (e - 1) in relative error).
    let e = exp(x);
    let p = poly::<16, 8, 4>(x, &INV_FACTORIAL[1..]);
    lanes(|l| {
        let taylor = x[l] * p[l];
        sel(x[l].abs() < 1.0, taylor, e[l] - 1.0)
    })
}

/// tanh x = e / (e + 2) with e = expm1(2|x|), sign restored; 1 beyond |x| = 22, where
/// tanh rounds to 1. Within 4 ulp of libm.
///
/// ```
/// let y = wengert::scalar::vmath::tanh([0.5, -0.0, 30.0, -1.0]);
/// assert!((y[0] - 0.5_f64.tanh()).abs() <= 2.0 * f64::EPSILON);
/// assert!(y[1] == 0.0 && y[1].is_sign_negative());
/// assert_eq!(y[2], 1.0);
/// ```
#[inline(always)]
pub fn tanh(x: L) -> L {
    let a = map(x, |x| 2.0 * x.abs());
    let e = exp_m1(a);
    [0, 1, 2, 3].map(|l| {
        let q = e[l] / (e[l] + 2.0);
        let t = sel(x[l].abs() > 22.0, 1.0, q);
        t.copysign(x[l])
    })
}
