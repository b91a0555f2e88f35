//! Strong zero in every sweep of the Rust API (a contribution whose adjoint or tangent is
//! exactly zero adds nothing, whatever the partial), every output slot written on every
//! call, and Hessian blocks computed alone.

use wengert::compiled::Compiled;
use wengert::exec::hessian::hessian_at;
use wengert::exec::jit::{self, Kernel};
use wengert::exec::{self, Arg, BatchError, Isa, Job, Layout, Reduce};
use wengert::{Real, Tape};

#[test]
fn an_unrelated_nan_partial_does_not_poison_the_tape_gradient() {
    let t = Tape::new();
    let x = t.var(-1.0);
    let s = x.sqrt(); // partial 0.5 / sqrt(-1) = nan, adjoint 0
    let y = 2.0 * x;
    assert!(s.value().is_nan());
    assert_eq!(y.grad()[x], 2.0);
}

#[test]
fn logging_sqrt_of_a_square_at_zero_keeps_the_tape_gradient() {
    let t = Tape::new();
    let b = t.var(0.0);
    let s = (b * b).sqrt(); // partial 0.5 / 0 = inf, adjoint 0
    let y = 3.0 * b;
    assert_eq!(s.value(), 0.0);
    assert_eq!(y.grad()[b], 3.0);
    // Still IEEE where the adjoint is not zero: d sqrt(b * b) / db at 0 is inf * 0.
    assert!(s.grad()[b].is_nan());
}

/// `where(x > 0, sqrt(x), 0)`.
fn where_sqrt() -> Compiled {
    Compiled::trace(&[1], |v| {
        let (x, zero) = (v[0], Real::cst(0.0));
        vec![Real::sel_gt(x, zero, x.sqrt(), zero)]
    })
}

/// The ISAs this machine can run.
fn isas() -> Vec<Isa> {
    [Isa::Portable, Isa::Avx2Fma, Isa::Avx512]
        .into_iter()
        .filter(|&i| i <= exec::isa::best_isa())
        .collect()
}

/// `job` over `args` by every engine (interpreter and, where the job allows, native code)
/// and every ISA: all must agree bit for bit (any NaN counting as one); returns the
/// interpreter's portable result.
fn every_engine(c: &Compiled, args: &[Arg], n: usize, job: &Job) -> exec::Output {
    let p = match job {
        Job::Values => c.program(),
        _ => c.gradient_program(),
    };
    let layout = Layout::new(c.arg_sizes());
    let kern =
        exec::native_pass(job).and_then(|pass| Kernel::new(p, pass, jit::block_groups(p, pass)));
    if exec::native_pass(job).is_some() {
        assert!(kern.is_some(), "this host builds native code");
    }
    let mut want: Option<exec::Output> = None;
    for isa in isas() {
        for native in [None, kern.as_ref()] {
            let got = exec::run(p, &layout, args, n, job, Reduce::None, isa, native).unwrap();
            let bits = |o: &exec::Output| {
                let mut all = o.values.clone();
                all.extend(o.tangents.iter().chain(&o.jacobian));
                o.grads.iter().for_each(|g| all.extend(g));
                // A NaN's payload and sign are not part of the result (as in NumPy): the
                // builds propagate different NaN operands' bits.
                let bits = |v: &f64| {
                    if v.is_nan() {
                        f64::NAN.to_bits()
                    } else {
                        v.to_bits()
                    }
                };
                all.iter().map(bits).collect::<Vec<_>>()
            };
            match &want {
                None => want = Some(got),
                Some(w) => assert_eq!(bits(w), bits(&got), "{isa:?}, native {}", native.is_some()),
            }
        }
    }
    want.unwrap()
}

#[test]
fn where_sqrt_has_zero_gradient_on_the_unchosen_side_in_every_engine() {
    let c = where_sqrt();
    // Long enough for whole blocks and a partial lane group, zeros and special values in.
    let mut x = vec![
        -1.0,
        4.0,
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -1e-300,
    ];
    x.extend((0..1001).map(|i| (i as f64 - 500.0) / 100.0));
    let n = x.len();
    let ones = vec![1.0; n];
    let job = Job::Vjp {
        cotangent: Arg::rows(&ones, 1),
        wrt: vec![true],
    };
    let out = every_engine(&c, &[Arg::rows(&x, 1)], n, &job);
    let g = &out.grads[0];
    assert_eq!(g[0].to_bits(), 0.0f64.to_bits());
    assert_eq!(g[1], 0.25);
    for (xi, gi) in x.iter().zip(g) {
        if *xi > 0.0 {
            assert_eq!(*gi, 0.5 / xi.sqrt(), "x = {xi}");
        } else {
            assert_eq!(gi.to_bits(), 0.0f64.to_bits(), "x = {xi}");
        }
    }
    // Forward sweeps: the Jacobian (one column) and a JVP.
    let jac = every_engine(
        &c,
        &[Arg::rows(&x, 1)],
        n,
        &Job::Jacobian { wrt: vec![true] },
    );
    let jvp = every_engine(
        &c,
        &[Arg::rows(&x, 1)],
        n,
        &Job::Jvp {
            tangents: vec![Arg::rows(&ones, 1)],
        },
    );
    assert_eq!(&jac.jacobian, g);
    assert_eq!(&jvp.tangents, g);
    // Forward over reverse.
    let (_, gh, h) = hessian_at(c.gradient_program(), &[-1.0]);
    assert_eq!((gh, h), (vec![0.0], vec![0.0]));
    let (_, _, h) = hessian_at(c.gradient_program(), &[4.0]);
    assert_eq!(h, vec![-0.25 / 8.0]);
}

#[test]
fn pow_forward_sweeps_ignore_the_nan_partial_of_a_still_exponent() {
    // d/dy (-2) ** y is (-2) ** 2 * ln(-2) = nan, but y does not move.
    let c = Compiled::trace(&[1, 1], |v| vec![v[0].powf(v[1])]);
    let (x, y) = ([-2.0], [2.0]);
    let args = [Arg::rows(&x, 1), Arg::rows(&y, 1)];
    let jvp = every_engine(
        &c,
        &args,
        1,
        &Job::Jvp {
            tangents: vec![Arg::rows(&[1.0], 1), Arg::rows(&[0.0], 1)],
        },
    );
    assert_eq!(jvp.tangents, vec![-4.0]);
    let jac = every_engine(
        &c,
        &args,
        1,
        &Job::Jacobian {
            wrt: vec![true, false],
        },
    );
    assert_eq!(jac.jacobian, vec![-4.0]);
    let (_, g) = c.value_and_grad(&args, 1, Reduce::None).unwrap();
    assert_eq!(g[0], vec![-4.0]);
    let (_, g, h) = c.hessian_wrt(&args, 1, &[true, false]).unwrap();
    assert_eq!((g, h), (vec![-4.0], vec![2.0]));
}

/// Runs other compiled functions so every worker's scratch holds large numbers.
fn dirty_scratch() {
    let x: Vec<f64> = (1..=2000).map(|i| i as f64 * 1e3).collect();
    let c = Compiled::trace(&[1, 1], |v| {
        vec![
            v[0] * v[1] * Real::cst(7.0),
            v[0] + v[1],
            (v[0] * Real::cst(1e-6)).exp(),
        ]
    });
    let args = [Arg::rows(&x, 1), Arg::rows(&x, 1)];
    for job in [
        Job::Jacobian {
            wrt: vec![true, true],
        },
        Job::Jvp {
            tangents: vec![Arg::rows(&x, 1), Arg::rows(&x, 1)],
        },
    ] {
        c.run(&args, 2000, &job, Reduce::None).unwrap();
    }
}

#[test]
fn constant_outputs_have_zero_tangents_and_jacobian_columns() {
    let c = Compiled::trace(&[1, 1], |v| vec![v[0] * v[1], Real::cst(2.0), v[0], v[0]]);
    let x: Vec<f64> = (1..=5).map(f64::from).collect();
    let args = [Arg::rows(&x, 1), Arg::rows(&x, 1)];
    for _ in 0..2 {
        dirty_scratch();
        let jac = every_engine(
            &c,
            &args,
            5,
            &Job::Jacobian {
                wrt: vec![true, true],
            },
        );
        for (r, row) in jac.jacobian.chunks(8).enumerate() {
            let xr = x[r];
            assert_eq!(row, [xr, xr, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0], "row {r}");
        }
        dirty_scratch();
        let ones = vec![1.0; 5];
        let job = Job::Jvp {
            tangents: vec![Arg::rows(&ones, 1), Arg::rows(&ones, 1)],
        };
        let t = every_engine(&c, &args, 5, &job).tangents;
        for (r, row) in t.chunks(4).enumerate() {
            assert_eq!(row, [2.0 * x[r], 0.0, 1.0, 1.0], "row {r}");
        }
    }
    // A constant function: its input has no slot at all.
    let k = Compiled::trace(&[1], |_| vec![Real::cst(3.0)]);
    for _ in 0..2 {
        dirty_scratch();
        let job = Job::Jvp {
            tangents: vec![Arg::rows(&x, 1)],
        };
        let out = every_engine(&k, &[Arg::rows(&x, 1)], 5, &job);
        assert_eq!(out.values, vec![3.0; 5]);
        assert_eq!(out.tangents, vec![0.0; 5]);
        let out = every_engine(
            &k,
            &[Arg::rows(&x, 1)],
            5,
            &Job::Jacobian { wrt: vec![true] },
        );
        assert_eq!(out.jacobian, vec![0.0; 5]);
    }
}

#[test]
fn a_hessian_block_is_the_full_hessian_restricted() {
    // f(v, t) = sin(v0 t) + v1^2 v2 t + exp(v2 - t), at a few rows.
    let c = Compiled::trace(&[3, 1], |x| {
        let (v0, v1, v2, t) = (x[0], x[1], x[2], x[3]);
        vec![(v0 * t).sin() + v1 * v1 * v2 * t + (v2 - t).exp()]
    });
    let v: Vec<f64> = (0..21).map(|i| (i as f64 * 0.37).sin()).collect();
    let t: Vec<f64> = (0..7).map(|i| (i as f64 * 0.71).cos()).collect();
    let args = [Arg::rows(&v, 3), Arg::rows(&t, 1)];
    let (fv, fg, fh) = c.hessian(&args, 7).unwrap();
    for (wrt, cols) in [
        ([true, false], vec![0, 1, 2]),
        ([false, true], vec![3]),
        ([true, true], vec![0, 1, 2, 3]),
        ([false, false], vec![]),
    ] {
        let (bv, bg, bh) = c.hessian_wrt(&args, 7, &wrt).unwrap();
        assert_eq!(bv, fv);
        let k = cols.len();
        for r in 0..7 {
            for (i, &ci) in cols.iter().enumerate() {
                assert_eq!(bg[r * k + i], fg[r * 4 + ci]);
                for (j, &cj) in cols.iter().enumerate() {
                    assert_eq!(bh[r * k * k + i * k + j], fh[r * 16 + ci * 4 + cj]);
                }
            }
        }
    }
}

#[test]
fn a_scalar_block_of_a_long_vector_function_is_cheap() {
    // The full Hessian would be 1001 x 1001 per row, 8 GB for these 1000 rows.
    let c = Compiled::trace(&[1000, 1], |x| {
        let s = x[..1000].iter().fold(Real::cst(0.0), |s, &v| s + v);
        vec![x[1000] * x[1000] * s]
    });
    let v = vec![1.0; 1000 * 1000];
    let t: Vec<f64> = (0..1000).map(f64::from).collect();
    let (_, g, h) = c
        .hessian_wrt(
            &[Arg::rows(&v, 1000), Arg::rows(&t, 1)],
            1000,
            &[false, true],
        )
        .unwrap();
    assert_eq!(h, vec![2000.0; 1000]);
    assert_eq!(g, t.iter().map(|t| 2000.0 * t).collect::<Vec<_>>());
}

#[test]
fn an_absurd_hessian_is_refused_before_allocating() {
    let c = Compiled::trace(&[100_000], |x| vec![x[0] * x[1]]);
    let v = vec![0.0; 100_000];
    // 10^10 numbers for one row (80 GB), and 2^64 with more rows.
    let err = c.hessian(&[Arg::shared(&v)], 1).unwrap_err();
    assert!(matches!(err, BatchError::Memory(_)), "{err}");
    assert!(err.to_string().contains("80000000000 bytes"), "{err}");
    let err = c.hessian(&[Arg::shared(&v)], usize::MAX / 2).unwrap_err();
    assert!(matches!(err, BatchError::Memory(_)), "{err}");
    let err = c.hessian_wrt(&[Arg::shared(&v)], 1, &[]).unwrap_err();
    assert!(matches!(err, BatchError::Invalid(_)), "{err}");
}

#[test]
fn every_isa_of_this_machine_gives_the_same_bits() {
    // Ops the interpreter runs as vector code (exp, log, tanh, sin) and the rest.
    let c = Compiled::trace(&[1, 1], |v| {
        let (x, y) = (v[0], v[1]);
        vec![x.tanh() * y.exp() + (x * x).ln_1p() / y.cosh() + x.sin().atan2(y) + x.powf(y)]
    });
    every_isa_same_bits(&c);
    // The functions real code calls (issue 15): steps, special functions, NumPy's binary
    // ones; sinc and logaddexp run on vmath's lanes, the gamma family lane by lane.
    let c = Compiled::trace(&[1, 1], |v| {
        let (x, y) = (v[0], v[1]);
        let steps = x.floor() + y.ceil() * x.rint() - (x * y).trunc() + x.sign() * y;
        let special = (x * y).sinc()
            + x.erfc() * y
            + (x * x + Real::cst(0.5)).lgamma()
            + (y * y + Real::cst(0.25)).digamma() * x.sinc();
        let binary =
            x.fmod(y) + y.remainder(x) * x.copysign(y) + x.logaddexp(y * y) + x.stop_gradient() * y;
        vec![steps * x + special + binary * y]
    });
    every_isa_same_bits(&c);
}

fn every_isa_same_bits(c: &Compiled) {
    let x: Vec<f64> = (0..4099).map(|i| -5.0 + 10.0 * i as f64 / 4098.0).collect();
    let y: Vec<f64> = x.iter().map(|v| -0.6 * v).collect();
    let args = [Arg::rows(&x, 1), Arg::rows(&y, 1)];
    let ones = vec![1.0; 4099];
    every_engine(c, &args, 4099, &Job::Values);
    every_engine(
        c,
        &args,
        4099,
        &Job::Vjp {
            cotangent: Arg::rows(&ones, 1),
            wrt: vec![true, true],
        },
    );
    every_engine(
        c,
        &args,
        4099,
        &Job::Jacobian {
            wrt: vec![true, true],
        },
    );
}

#[test]
fn a_product_with_an_infinite_constant_keeps_strong_zero() {
    // d(x * inf)/dx is the constant inf: not known to be finite, so its zero adjoint on
    // the unchosen side must still add nothing (a finite constant's product may stay
    // plain: see Program::finite_partials).
    let c = Compiled::trace(&[1], |v| {
        let (x, zero) = (v[0], Real::cst(0.0));
        let big = x * Real::cst(f64::INFINITY);
        vec![Real::sel_gt(x, zero, big, zero) + x * Real::cst(2.0)]
    });
    let x = [-1.0, 2.0, -3.0, 0.5, -0.0];
    let ones = [1.0; 5];
    let job = Job::Vjp {
        cotangent: Arg::rows(&ones, 1),
        wrt: vec![true],
    };
    let g = every_engine(&c, &[Arg::rows(&x, 1)], 5, &job)
        .grads
        .remove(0);
    assert_eq!(g, vec![2.0, f64::INFINITY, 2.0, f64::INFINITY, 2.0]);
    let jac = every_engine(
        &c,
        &[Arg::rows(&x, 1)],
        5,
        &Job::Jacobian { wrt: vec![true] },
    );
    assert_eq!(jac.jacobian, g);
}

#[test]
fn strong_zero_changes_only_products_that_would_be_nan() {
    // Off the chosen side of `where(x > 0, y * y, 0)` the adjoint of `y * y` is +0.0, so
    // IEEE products give y's two contributions `-1 * +0 = -0.0`: no NaN, nothing for strong
    // zero to change, and the sweep's result is IEEE's to the sign of its zero (the
    // interpreter's fast path and native code run plain products; see `kernel`).
    let c = Compiled::trace(&[1, 1], |v| {
        let (x, y, zero) = (v[0], v[1], Real::cst(0.0));
        vec![Real::sel_gt(x, zero, y * y, zero) + (x * y).sqrt()]
    });
    // Row 0: no NaN anywhere. Row 1: sqrt(x * y) = sqrt(-2)... its partial is NaN and its
    // adjoint 1, so the gradient is NaN (IEEE, not strong zero's business). Row 2: the
    // sqrt's partial is inf at x * y = 0, but its adjoint is 1: inf * 0 = NaN in y's sum.
    let x = [-1.0, -2.0, 0.0];
    let y = [-1.0, 1.0, -1.0];
    let ones = [1.0; 3];
    let job = Job::Vjp {
        cotangent: Arg::rows(&ones, 1),
        wrt: vec![true, true],
    };
    let out = every_engine(&c, &[Arg::rows(&x, 1), Arg::rows(&y, 1)], 3, &job);
    // Row 0: d/dy = -0.0 (IEEE) + sqrt's 0.5 / sqrt(1) * x = -0.5; d/dx = 0.5 * y = -0.5.
    assert_eq!((out.grads[0][0], out.grads[1][0]), (-0.5, -0.5));
    assert!(out.grads[0][1].is_nan() && out.grads[1][1].is_nan());
    let d = Compiled::trace(&[1, 1], |v| {
        let (x, y, zero) = (v[0], v[1], Real::cst(0.0));
        vec![Real::sel_gt(x, zero, y * y, zero)]
    });
    let out = every_engine(&d, &[Arg::rows(&x, 1), Arg::rows(&y, 1)], 3, &job);
    assert_eq!(
        out.grads[1][0].to_bits(),
        (-0.0f64).to_bits(),
        "IEEE's -1 * +0 + -1 * +0"
    );
    assert_eq!(out.grads[1][1].to_bits(), 0.0f64.to_bits());
}

#[test]
fn a_nan_in_any_gradient_column_of_a_block_re_runs_it() {
    // Gradient columns apart in the slots (b has none: not in wrt), the NaN trap in the
    // third, rows of every lane and lane group of a block with the trap on and off.
    let c = Compiled::trace(&[1, 1, 1, 1], |v| {
        let (a, b, x, d) = (v[0], v[1], v[2], v[3]);
        let zero = Real::cst(0.0);
        vec![a * b + Real::sel_gt(x, zero, x.sqrt(), zero) + d * d]
    });
    let n = 203;
    let col = |f: &dyn Fn(usize) -> f64| (0..n).map(f).collect::<Vec<f64>>();
    let a = col(&|i| i as f64 * 0.5);
    let b = col(&|i| 1.0 + i as f64);
    let x = col(&|i| {
        if (i * 7) % 11 < 4 {
            -(i as f64) - 1.0
        } else {
            i as f64 + 1.0
        }
    });
    let d = col(&|i| i as f64 - 100.0);
    let ones = vec![1.0; n];
    let job = Job::Vjp {
        cotangent: Arg::rows(&ones, 1),
        wrt: vec![true, false, true, true],
    };
    let args = [&a, &b, &x, &d].map(|v| Arg::rows(v, 1));
    let out = every_engine(&c, &args, n, &job);
    for i in 0..n {
        assert_eq!(out.grads[0][i], b[i]);
        let want = if x[i] > 0.0 { 0.5 / x[i].sqrt() } else { 0.0 };
        assert_eq!(out.grads[2][i].to_bits(), want.to_bits(), "row {i}");
        assert_eq!(out.grads[3][i], 2.0 * d[i]);
    }
}

#[test]
fn every_op_gives_the_same_bits_on_every_isa_and_engine() {
    use wengert::compile::graph::Graph;
    use wengert::op::{Binary, Unary};
    // Ordinary values, both signs of zero, subnormals, huge values, infinities and NaN:
    // each ISA's build must agree with the others lane for lane on all of them.
    let special = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -2.5,
        1e-310,
        -1e-310,
        1e300,
        -1e300,
        710.0,
        -745.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    let mut x: Vec<f64> = (0..203).map(|i| -7.0 + 14.0 * i as f64 / 202.0).collect();
    x.extend(special);
    let mut y: Vec<f64> = x.iter().rev().map(|v| 0.75 * v + 0.1).collect();
    y.extend(special.iter().rev());
    x.extend(special);
    x.extend(special);
    y.extend(special);
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let ones = vec![1.0; n];
    let programs = Unary::ALL
        .iter()
        .map(|&op| {
            let mut g = Graph::new(2);
            let a = g.input(0);
            let out = g.unary(op, a);
            (format!("{op:?}"), g, out)
        })
        .chain(Binary::ALL.iter().map(|&op| {
            let mut g = Graph::new(2);
            let (a, b) = (g.input(0), g.input(1));
            let out = g.binary(op, a, b);
            (format!("{op:?}"), g, out)
        }));
    for (name, g, out) in programs {
        let c = Compiled::new(&g, &[out], &[1, 1]);
        let args = [Arg::rows(x, 1), Arg::rows(y, 1)];
        for job in [
            Job::Values,
            Job::Vjp {
                cotangent: Arg::rows(&ones, 1),
                wrt: vec![true, true],
            },
            Job::Jvp {
                tangents: vec![Arg::rows(&ones, 1), Arg::rows(&ones, 1)],
            },
        ] {
            eprintln!("{name}: {job:?}"); // printed with a failing assertion
            every_engine(&c, &args, n, &job);
        }
    }
}
