//! `exp`, `sin` and `cos` on four lanes at once, written as straight-line lane-wise code
//! that LLVM turns into AVX2 instructions inside the batch kernels (see `crate::batch`).
//!
//! The algorithms are the classic ones (Cody-Waite range reduction, then the fdlibm
//! polynomials), without `mul_add`, so the AVX2 and the portable builds agree bit for bit.
//! `tests/vmath.rs` bounds the error against libm and high-precision references.
//! Arguments outside the fast range (|x| > 2^20 for sin/cos) go through libm per lane.

type L = [f64; 4];

#[inline(always)]
fn map(x: L, f: impl Fn(f64) -> f64) -> L {
    [f(x[0]), f(x[1]), f(x[2]), f(x[3])]
}

const LN2_HI: f64 = 6.93147180369123816490e-01;
const LN2_LO: f64 = 1.90821492927058770002e-10;
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// Beyond these, exp overflows to inf or underflows to 0.
const EXP_HI: f64 = 7.09782712893383973096e+02;
const EXP_LO: f64 = -7.45133219101941108420e+02;

/// 1.5 * 2^52: adding it to an integral double k with |k| < 2^51 puts k + 2^51 in the low
/// bits (the sum stays where the ulp is 1),
/// a float-to-integer conversion that vectorises without AVX-512.
const MAGIC: f64 = 6755399441055744.0;

/// 1/k! for k = 0..=13, the Taylor coefficients of e^r.
const EXP_TAYLOR: [f64; 14] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362880.0,
    1.0 / 3628800.0,
    1.0 / 39916800.0,
    1.0 / 479001600.0,
    1.0 / 6227020800.0,
];

/// `2^n` for integral `n` in [-1022, 1023], built from its bits.
#[inline(always)]
fn pow2(n: f64) -> f64 {
    f64::from_bits((n + 1023.0 + MAGIC).to_bits() << 52)
}

/// e^x, within 1 ulp of libm (2 in the subnormal range).
///
/// ```
/// let y = wengert::vmath::exp([0.0, 1.0, -1.0, 710.0]);
/// assert_eq!(y[0], 1.0);
/// assert!((y[1] - std::f64::consts::E).abs() <= f64::EPSILON * 3.0);
/// assert_eq!(y[3], f64::INFINITY);
/// ```
#[inline(always)]
pub fn exp(x: L) -> L {
    map(x, |x| {
        // x = n ln2 + r, |r| <= ln2/2, r in two parts so it is exact to ~1e-20.
        let n = (x * LOG2_E).round();
        let r = (x - n * LN2_HI) - n * LN2_LO;
        // Taylor to degree 13: the remainder is below 1e-17 relative on |r| <= 0.347.
        let mut p = EXP_TAYLOR[13];
        for &c in EXP_TAYLOR[..13].iter().rev() {
            p = p * r + c;
        }
        // 2^n in two halves, so results down in the subnormals are scaled without
        // overflowing the exponent on the way.
        let n = n.clamp(-2044.0, 2046.0);
        let h = (n * 0.5).floor();
        let y = p * pow2(h.clamp(-1022.0, 1023.0)) * pow2((n - h).clamp(-1022.0, 1023.0));
        if x > EXP_HI {
            f64::INFINITY
        } else if x < EXP_LO {
            0.0
        } else if x.is_nan() {
            x
        } else {
            y
        }
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
    let k = (x * TWO_OVER_PI).round();
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

/// Lane-wise `(sin, cos)`, with libm for lanes outside the fast range (and non-finite).
#[inline(always)]
fn sincos(x: L) -> (L, L) {
    if x.iter().all(|v| v.abs() < TRIG_FAST) {
        let r = [
            sincos_fast(x[0]),
            sincos_fast(x[1]),
            sincos_fast(x[2]),
            sincos_fast(x[3]),
        ];
        (
            [r[0].0, r[1].0, r[2].0, r[3].0],
            [r[0].1, r[1].1, r[2].1, r[3].1],
        )
    } else {
        (map(x, f64::sin), map(x, f64::cos))
    }
}

/// sin x, within 2 ulp of libm for |x| < 2^20 (libm's result beyond).
///
/// ```
/// let y = wengert::vmath::sin([0.0, 1.0, -0.0, 1e300]);
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
#[inline(always)]
pub fn cos(x: L) -> L {
    sincos(x).1
}
