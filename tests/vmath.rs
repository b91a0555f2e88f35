//! The lane functions of `wengert::scalar::vmath` against libm (std) over many points, and against
//! high-precision values at a few: errors in ulps of the correctly rounded result.

#![allow(
    clippy::approx_constant,
    reason = "reference values as mpmath prints them, e and ln 2 among them"
)]

use wengert::scalar::vmath;

/// Distance in ulps between two finite doubles of the same sign (or both zero).
fn ulps(a: f64, b: f64) -> u64 {
    if a == b {
        return 0;
    }
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u64::MAX
        };
    }
    let key = |x: f64| {
        let i = x.to_bits() as i64;
        if i < 0 {
            i64::MIN - i
        } else {
            i
        }
    };
    key(a).abs_diff(key(b))
}

/// Points spread uniformly over [lo, hi], plus +-1.2345 * 10^e for every e with 10^e < hi
/// (a logarithmic sweep of small magnitudes of both signs, whatever `lo` is).
fn points(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let mut s = 0x9E3779B97F4A7C15u64;
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * (s >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect();
    for e in -300..3 {
        let m = 10f64.powi(e);
        if m < hi {
            v.push(m * 1.2345);
            v.push(-m * 1.2345);
        }
    }
    v
}

fn worst(f: fn([f64; 4]) -> [f64; 4], reference: fn(f64) -> f64, xs: &[f64]) -> (u64, f64) {
    let mut w = (0, 0.0);
    for c in xs.chunks_exact(4) {
        let y = f([c[0], c[1], c[2], c[3]]);
        for (l, &x) in c.iter().enumerate() {
            let e = ulps(y[l], reference(x));
            if e > w.0 {
                w = (e, x);
            }
        }
    }
    w
}

#[test]
fn exp_within_one_ulp_of_libm_and_ieee_at_the_edges() {
    let (e, at) = worst(vmath::exp, f64::exp, &points(-708.0, 709.0, 2_000_000));
    assert!(e <= 1, "exp: {e} ulp at {at}");
    // Subnormal results: 2 ulp of a subnormal is still far below the smallest normal.
    let (e, at) = worst(vmath::exp, f64::exp, &points(-745.0, -708.0, 200_000));
    assert!(e <= 2, "exp (subnormal): {e} ulp at {at}");
    let y = vmath::exp([f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 709.79]);
    assert_eq!(y[0], f64::INFINITY);
    assert_eq!(y[1], 0.0);
    assert!(y[2].is_nan());
    assert_eq!(y[3], f64::INFINITY);
    assert_eq!(
        vmath::exp([-746.0, 0.0, -0.0, 1e-300]),
        [0.0, 1.0, 1.0, 1.0]
    );
}

#[test]
fn sin_cos_within_two_ulp_of_libm() {
    for (lo, hi) in [(-10.0, 10.0), (-1e5, 1e5), (-1048575.0, 1048575.0)] {
        let xs = points(lo, hi, 1_000_000);
        let (e, at) = worst(vmath::sin, f64::sin, &xs);
        assert!(e <= 2, "sin: {e} ulp at {at}");
        let (e, at) = worst(vmath::cos, f64::cos, &xs);
        assert!(e <= 2, "cos: {e} ulp at {at}");
    }
    // Beyond the fast range, and non-finite: libm's own results.
    let big = [1e7, -3e300, f64::INFINITY, f64::NAN];
    let (s, c) = (vmath::sin(big), vmath::cos(big));
    for l in 0..4 {
        assert_eq!(ulps(s[l], big[l].sin()), 0);
        assert_eq!(ulps(c[l], big[l].cos()), 0);
    }
    let z = vmath::sin([-0.0, 0.0, -0.0, 0.0]);
    assert!(z[0] == 0.0 && z[0].is_sign_negative() && z[1].is_sign_positive());
}

#[test]
fn against_high_precision_values() {
    // Printed by: python -c "import mpmath; mpmath.mp.dps = 40; print(float(mpmath.exp(x)))"
    // (and mpmath.sin, mpmath.cos) for each x below.
    let exp_cases = [
        (1.0, 2.718281828459045),
        (-1.0, 0.36787944117144233),
        (0.5, 1.6487212707001282),
        (100.0, 2.6881171418161356e+43),
        (-700.0, 9.85967654375977e-305),
    ];
    for (x, want) in exp_cases {
        let got = vmath::exp([x; 4])[0];
        assert!(ulps(got, want) <= 1, "exp({x}) = {got:e}, want {want:e}");
    }
    let trig_cases = [
        (1.0, 0.8414709848078965, 0.5403023058681398),
        (3.0, 0.1411200080598672, -0.9899924966004454),
        (1e5, 0.03574879797201651, -0.9993608074382124),
        (-2.5, -0.5984721441039565, -0.8011436155469337),
    ];
    for (x, s, c) in trig_cases {
        let (gs, gc) = (vmath::sin([x; 4])[0], vmath::cos([x; 4])[0]);
        assert!(ulps(gs, s) <= 1, "sin({x}) = {gs:e}, want {s:e}");
        assert!(ulps(gc, c) <= 1, "cos({x}) = {gc:e}, want {c:e}");
    }
}

#[test]
fn logarithms_within_one_or_two_ulp_of_libm() {
    // Positive arguments over the whole range, subnormals included.
    let xs: Vec<f64> = points(-745.0, 709.0, 2_000_000)
        .into_iter()
        .map(f64::exp)
        .chain(points(0.5, 2.0, 1_000_000))
        .chain(points(1e-320, 1e-300, 100_000))
        .collect();
    let (e, at) = worst(vmath::ln, f64::ln, &xs);
    assert!(e <= 1, "ln: {e} ulp at {at}");
    for (lo, hi) in [(-0.999, 1.0), (-1e-3, 1e-3), (1.0, 1e6)] {
        let (e, at) = worst(vmath::ln_1p, f64::ln_1p, &points(lo, hi, 1_000_000));
        assert!(e <= 2, "ln_1p: {e} ulp at {at}");
    }
    let y = vmath::ln([0.0, -0.0, -1.0, f64::INFINITY]);
    assert_eq!(&y[..2], &[f64::NEG_INFINITY; 2]);
    assert!(y[2].is_nan());
    assert_eq!(y[3], f64::INFINITY);
    assert!(vmath::ln([f64::NAN; 4])[0].is_nan());
    let y = vmath::ln_1p([-1.0, -2.0, f64::INFINITY, -0.0]);
    assert_eq!(y[0], f64::NEG_INFINITY);
    assert!(y[1].is_nan());
    assert_eq!(y[2], f64::INFINITY);
    assert!(y[3] == 0.0 && y[3].is_sign_negative());
    assert!(vmath::ln_1p([f64::NAN; 4])[0].is_nan());
}

#[test]
fn exp_m1_and_tanh_within_a_few_ulp_of_libm() {
    for (lo, hi) in [(-1.0, 1.0), (-1e-5, 1e-5), (-40.0, 709.0)] {
        let (e, at) = worst(vmath::exp_m1, f64::exp_m1, &points(lo, hi, 1_000_000));
        assert!(e <= 2, "exp_m1: {e} ulp at {at}");
    }
    for (lo, hi) in [(-1.0, 1.0), (-0.2, 0.2), (-1e-5, 1e-5), (-30.0, 30.0)] {
        let (e, at) = worst(vmath::tanh, f64::tanh, &points(lo, hi, 1_000_000));
        assert!(e <= 4, "tanh: {e} ulp at {at}");
    }
    let y = vmath::exp_m1([f64::INFINITY, f64::NEG_INFINITY, 710.0, -0.0]);
    assert_eq!(&y[..3], &[f64::INFINITY, -1.0, f64::INFINITY]);
    assert!(y[3] == 0.0 && y[3].is_sign_negative());
    let y = vmath::tanh([f64::INFINITY, f64::NEG_INFINITY, 1e300, f64::NAN]);
    assert_eq!(&y[..3], &[1.0, -1.0, 1.0]);
    assert!(y[3].is_nan());
    assert!(vmath::exp_m1([f64::NAN; 4])[0].is_nan());
}

#[test]
fn logarithms_exp_m1_tanh_against_high_precision_values() {
    // Printed by: python -c "import mpmath; mpmath.mp.dps = 40;
    // print(float(mpmath.log(mpmath.mpf(x))))" (and log1p, expm1, tanh) for each x.
    type Case = (
        fn([f64; 4]) -> [f64; 4],
        &'static str,
        &'static [(f64, f64)],
    );
    let cases: [Case; 4] = [
        (
            vmath::ln,
            "ln",
            &[
                (2.0, 0.6931471805599453),
                (0.5, -0.6931471805599453),
                (1e-300, -690.7755278982137),
                (1e300, 690.7755278982137),
                (7.5, 2.0149030205422647),
                (5e-324, -744.4400719213812),
            ],
        ),
        (
            vmath::ln_1p,
            "ln_1p",
            &[
                (1e-10, 9.999999999500001e-11),
                (-0.5, -0.6931471805599453),
                (0.75, 0.5596157879354227),
                (3.0, 1.3862943611198906),
                (-0.999, -6.907755278982136),
            ],
        ),
        (
            vmath::exp_m1,
            "exp_m1",
            &[
                (1e-10, 1.00000000005e-10),
                (-0.5, -0.3934693402873666),
                (0.75, 1.1170000166126746),
                (3.0, 19.085536923187668),
                (-0.9, -0.5934303402594009),
            ],
        ),
        (
            vmath::tanh,
            "tanh",
            &[
                (1e-10, 1e-10),
                (-0.5, -0.46211715726000974),
                (0.75, 0.6351489523872873),
                (3.0, 0.9950547536867305),
                (0.01, 0.00999966667999946),
            ],
        ),
    ];
    for (f, name, pairs) in cases {
        for &(x, want) in pairs {
            let got = f([x; 4])[0];
            assert!(ulps(got, want) <= 2, "{name}({x}) = {got:e}, want {want:e}");
        }
    }
}

/// A lane's result depends on that lane alone: the same x gives the same bits whatever
/// sits in the other lanes (out-of-range, non-finite or ordinary numbers).
#[test]
fn lanes_do_not_depend_on_their_neighbours() {
    let fs: [(&str, LaneFn); 7] = [
        ("exp", vmath::exp),
        ("exp_m1", vmath::exp_m1),
        ("ln", vmath::ln),
        ("ln_1p", vmath::ln_1p),
        ("sin", vmath::sin),
        ("cos", vmath::cos),
        ("tanh", vmath::tanh),
    ];
    let neighbours = [
        [1.0, 2.0, 3.0],
        [1e7, 2.0, 3.0],
        [f64::NAN, -1.0, f64::INFINITY],
        [f64::NEG_INFINITY, 1e300, -0.0],
    ];
    for (name, f) in fs {
        for x in points(-30.0, 30.0, 20_000) {
            let alone = f([x; 4])[0];
            for [a, b, c] in neighbours {
                for (l, lanes) in [[x, a, b, c], [a, x, b, c], [a, b, c, x]]
                    .iter()
                    .enumerate()
                {
                    let at = [0, 1, 3][l];
                    let got = f(*lanes)[at];
                    assert!(
                        got.to_bits() == alone.to_bits() || (got.is_nan() && alone.is_nan()),
                        "{name}({x}) = {got:e} beside {lanes:?}, {alone:e} alone"
                    );
                }
            }
        }
    }
    // exp takes a shorter path when all four results are normal: the same bits as beside
    // a lane that is not, over the whole range of finite nonzero results, densely at its
    // ends.
    let mut xs = points(-746.0, 710.0, 200_000);
    xs.extend(points(700.0, 710.0, 20_000));
    xs.extend(points(-746.0, -700.0, 20_000));
    xs.extend([
        708.0,
        -708.0,
        707.9999999999999,
        -707.9999999999999,
        0.0,
        -0.0,
    ]);
    for x in xs {
        let (fast, slow) = (
            vmath::exp([x; 4])[0],
            vmath::exp([x, 709.5, -740.0, 2.0])[0],
        );
        assert_eq!(
            fast.to_bits(),
            slow.to_bits(),
            "exp({x}): {fast:e} vs {slow:e}"
        );
    }
    // The case that once differed: sin(0.18631) by the fast path and by libm.
    let x = 0.18631;
    assert_eq!(vmath::sin([x, 1.0, 2.0, 1e7])[0], vmath::sin([x; 4])[0]);
}

/// Arguments at the edges of each function's ranges and at its worst-case points.
#[test]
fn hard_points_against_libm() {
    type Case = (
        &'static str,
        fn([f64; 4]) -> [f64; 4],
        fn(f64) -> f64,
        u64,
        Vec<f64>,
    );
    let near = |x: f64| -> Vec<f64> {
        (-20..20)
            .map(|d| f64::from_bits((x.to_bits() as i64 + d) as u64))
            .collect()
    };
    let cases: Vec<Case> = vec![
        (
            "ln",
            vmath::ln,
            f64::ln,
            1,
            [
                near(1.0),
                near(1.0 + 1e-8),
                near(0.9999999999),
                near(std::f64::consts::SQRT_2),
                near(f64::MIN_POSITIVE),
                near(f64::MAX),
            ]
            .concat(),
        ),
        (
            "exp",
            vmath::exp,
            f64::exp,
            1,
            [
                near(709.782712893384),
                near(-708.3964185322641),
                near(-745.1332191019411),
            ]
            .concat(),
        ),
        (
            "ln_1p",
            vmath::ln_1p,
            f64::ln_1p,
            2,
            [near(-0.9999999), near(-1e-16), near(1e6), near(1e300)].concat(),
        ),
        (
            "exp_m1",
            vmath::exp_m1,
            f64::exp_m1,
            2,
            [
                near(1.0),
                near(-1.0),
                near(1.0182689240771077),
                near(1e-300),
            ]
            .concat(),
        ),
        (
            "tanh",
            vmath::tanh,
            f64::tanh,
            4,
            [
                near(-0.25317319788412007),
                near(0.5493),
                near(22.0),
                near(1e-300),
            ]
            .concat(),
        ),
        (
            "sin",
            vmath::sin,
            f64::sin,
            2,
            [
                near(std::f64::consts::FRAC_PI_2),
                near(std::f64::consts::PI),
                near(1048575.9),
            ]
            .concat(),
        ),
        (
            "cos",
            vmath::cos,
            f64::cos,
            2,
            [
                near(std::f64::consts::FRAC_PI_2),
                near(std::f64::consts::PI),
                near(1048575.9),
            ]
            .concat(),
        ),
    ];
    for (name, f, reference, bound, xs) in cases {
        let (e, at) = worst(f, reference, &xs);
        assert!(e <= bound, "{name}: {e} ulp at {at}");
    }
}

/// The AVX2+FMA build of the lane code gives the same bits as the portable one (no
/// `mul_add`, so FMA contraction cannot change results).
#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_build_agrees_bit_for_bit() {
    #[target_feature(enable = "avx2,fma")]
    fn all_avx2(x: [f64; 4]) -> [[f64; 4]; 7] {
        all_portable(x)
    }
    #[inline(always)]
    fn all_portable(x: [f64; 4]) -> [[f64; 4]; 7] {
        let a = x.map(f64::abs);
        [
            vmath::exp(x),
            vmath::sin(x),
            vmath::cos(x),
            vmath::exp_m1(x.map(|v| v / 100.0)),
            vmath::ln(a),
            vmath::ln_1p(a),
            vmath::tanh(x.map(|v| v / 100.0)),
        ]
    }
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
        return;
    }
    for c in points(-700.0, 700.0, 400_000).chunks_exact(4) {
        let x = [c[0], c[1], c[2], c[3]];
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        let a = unsafe { all_avx2(x) };
        let p = all_portable(x);
        for (u, v) in a.iter().flatten().zip(p.iter().flatten()) {
            assert_eq!(u.to_bits(), v.to_bits(), "at {x:?}");
        }
    }
}

/// A vectorised function of [`vmath`].
type LaneFn = fn([f64; 4]) -> [f64; 4];
