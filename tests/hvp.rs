//! The lane Hessians and HVPs of `wengert::hvp` against the dual-number Hessian.

use wengert::compile::derive::Products;
use wengert::compile::program::Program;
use wengert::compile::trace::Traced;
use wengert::compiled::Compiled;
use wengert::exec::hessian::hessian_at;
use wengert::exec::{Arg, BatchError, Reduce};
use wengert::hvp::{graph_of, hessian_graph, hvp_graph};
use wengert::op::Cmp;
use wengert::Real;

fn c(x: f64) -> Traced {
    Traced::cst(x)
}

fn rosen(n: usize) -> Compiled {
    Compiled::trace(&[n], |x| {
        let mut s = c(0.0);
        for i in 0..n - 1 {
            let a = x[i + 1] - x[i] * x[i];
            let b = c(1.0) - x[i];
            s = s + c(100.0) * a * a + b * b;
        }
        vec![s]
    })
}

fn points(n: usize, rows: usize) -> Vec<f64> {
    (0..n * rows)
        .map(|i| ((i * 7919) % 401) as f64 / 100.0 - 2.0)
        .collect()
}

#[test]
fn a_program_read_back_as_a_graph_computes_the_same() {
    let f = Compiled::trace(&[3], |x| {
        vec![(x[0] * x[1]).sin() + x[2].sqrt() / x[0] - x[1] * x[1]]
    });
    let (g, outs) = graph_of(f.program());
    let p = Program::new(&g, &outs);
    assert_eq!(p.instrs().len(), f.program().instrs().len());
    let x = [0.3, -1.2, 2.5];
    assert_eq!(p.eval(&x), f.program().eval(&x));
}

#[test]
fn lane_hessians_are_the_dual_hessians_bit_for_bit() {
    for (n, rows) in [(2, 1), (4, 5), (16, 131), (40, 9)] {
        let f = rosen(n);
        let x = points(n, rows);
        let h = f.hessian_block(&[Arg::rows(&x, n)], rows, &[true]).unwrap();
        let (_, _, want) = f
            .hessian_wrt_rows(&[Arg::rows(&x, n)], rows, &[true])
            .unwrap();
        assert_eq!(h, want, "n = {n}");
        let (_, _, at) = hessian_at(f.gradient_program(), &x[..n]);
        assert_eq!(&h[..n * n], &at[..]);
    }
}

#[test]
fn hvp_is_the_hessian_times_v() {
    let (n, rows) = (16, 67);
    let f = rosen(n);
    let x = points(n, rows);
    let v: Vec<f64> = (0..n).map(|i| i as f64 - 7.5).collect();
    let h = f.hessian_block(&[Arg::rows(&x, n)], rows, &[true]).unwrap();
    let hv = f
        .hvp(
            &[Arg::rows(&x, n)],
            rows,
            &[true],
            &[Arg::shared(&v)],
            Reduce::None,
        )
        .unwrap();
    for r in 0..rows {
        for i in 0..n {
            let want: f64 = (0..n).map(|j| h[r * n * n + i * n + j] * v[j]).sum();
            let got = hv[r * n + i];
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{got} {want}"
            );
        }
    }
    let summed = f
        .hvp(
            &[Arg::rows(&x, n)],
            rows,
            &[true],
            &[Arg::shared(&v)],
            Reduce::Sum,
        )
        .unwrap();
    assert_eq!(summed.len(), n);
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let f = rosen(4);
    let x = points(4, 3);
    let e = f.hvp(
        &[Arg::rows(&x, 4)],
        3,
        &[true],
        &[Arg::shared(&[1.0; 3])],
        Reduce::None,
    );
    assert!(matches!(e, Err(BatchError::Invalid(_))), "{e:?}");
    let e = f.hvp(&[Arg::rows(&x, 4)], 3, &[true], &[], Reduce::None);
    assert!(matches!(e, Err(BatchError::Invalid(_))), "{e:?}");
    let e = f.hessian_block(&[Arg::rows(&x, 4)], 3, &[true, false]);
    assert!(matches!(e, Err(BatchError::Invalid(_))), "{e:?}");
    let two = Compiled::trace(&[1], |x| vec![x[0], x[0] * x[0]]);
    assert!(two
        .hessian_block(&[Arg::rows(&[1.0], 1)], 1, &[true])
        .is_err());
    let wide = Compiled::trace(&[200_000], |x| vec![x[0] * x[1]]);
    let big = vec![0.0; 200_000];
    let e = wide.hessian_block(&[Arg::rows(&big, 200_000)], 1, &[true]);
    assert!(matches!(e, Err(BatchError::Memory(_))), "{e:?}");
}

/// The plain and strong HVP programs of `f` on `cols`, evaluated at one point each.
fn both_hvps(f: &Compiled, cols: &[usize]) -> (Program, Program) {
    let plain = hvp_graph(f.program(), cols, Products::Plain);
    let strong = hvp_graph(f.program(), cols, Products::Strong);
    (
        Program::new(&plain.0, &plain.1),
        Program::new(&strong.0, &strong.1),
    )
}

#[test]
fn plain_products_give_the_strong_programs_numbers_in_a_fraction_of_the_instructions() {
    let f = rosen(16);
    let cols: Vec<usize> = (0..16).collect();
    let (plain, strong) = both_hvps(&f, &cols);
    // Rosenbrock-16: 314 instructions against 494.
    assert!(
        3 * plain.instrs().len() < 2 * strong.instrs().len(),
        "{} against {}",
        plain.instrs().len(),
        strong.instrs().len()
    );
    let x = points(16, 3);
    for r in 0..3 {
        let at: Vec<f64> = x[r * 16..(r + 1) * 16]
            .iter()
            .chain(&x[..16])
            .copied()
            .collect();
        let (p, s) = (plain.eval(&at), strong.eval(&at));
        assert_eq!(
            p.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            s.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
    let (g, o) = hessian_graph(f.program(), &cols, &cols, Products::Plain);
    let (gs, os) = hessian_graph(f.program(), &cols, &cols, Products::Strong);
    let (p, s) = (Program::new(&g, &o), Program::new(&gs, &os));
    assert!(3 * p.instrs().len() < 2 * s.instrs().len());
    assert_eq!(p.eval(&x[..16]), s.eval(&x[..16]));
}

#[test]
fn rows_that_plain_products_make_nan_get_the_strong_programs_numbers() {
    // where(x > 0, sqrt(x) * y, x * y * y) at x <= 0: the unchosen sqrt has adjoint 0 and
    // an infinite or NaN partial, which a plain product turns into NaN.
    let f = Compiled::trace(&[1, 1], |x| {
        vec![Cmp::Gt.select(x[0], c(0.0), x[0].sqrt() * x[1], x[0] * x[1] * x[1])]
    });
    let xs = [-1.0, 0.0, 4.0, -2.0, 0.25, 9.0];
    let ys = [3.0, 2.0, -1.0, 0.5, 2.0, 0.0];
    let n = xs.len();
    let args = [Arg::rows(&xs, 1), Arg::rows(&ys, 1)];
    let (plain, strong) = both_hvps(&f, &[0, 1]);
    let v = [0.5, -2.0];
    let hv = f
        .hvp(
            &args,
            n,
            &[true, true],
            &[Arg::shared(&v[..1]), Arg::shared(&v[1..])],
            Reduce::None,
        )
        .unwrap();
    let (_, _, dual) = f.hessian_wrt_rows(&args, n, &[true, true]).unwrap();
    let (mut by_strong, mut by_dual) = (0, 0);
    for r in 0..n {
        let at = [xs[r], ys[r], v[0], v[1]];
        let (p, s) = (plain.eval(&at), strong.eval(&at));
        for i in 0..2 {
            let want = if !p[i].is_nan() {
                p[i]
            } else if !s[i].is_nan() {
                by_strong += 1;
                s[i]
            } else {
                // At x = 0 the strong program's second order lets a NaN through
                // (see rust/hvp.rs): the dual Hessian's `sum_j H_ij v_j`.
                by_dual += 1;
                (0..2).fold(0.0, |acc, j| acc + dual[4 * r + 2 * i + j] * v[j])
            };
            assert_eq!(
                hv[2 * r + i].to_bits(),
                want.to_bits(),
                "row {r}, entry {i}"
            );
            assert!(!want.is_nan(), "row {r}");
        }
    }
    assert!(by_strong > 0 && by_dual > 0, "{by_strong} {by_dual}");
    let h = f.hessian_block(&args, n, &[true, true]).unwrap();
    assert_eq!(h, dual);
    assert!(h.iter().all(|x| !x.is_nan()));
}

#[test]
fn wide_outputs_reach_every_row_at_row_counts_straddling_lane_groups() {
    // The batch engine writes many outputs row by row (the HVP's 16, a Hessian chunk's
    // live entries): outputs in any slot order, one slot twice, a constant, any rows.
    let f = Compiled::trace(&[2, 1], |x| {
        let a = x[0] * x[2];
        let b = (x[1] * x[1] + c(1.0)).sqrt() - a;
        vec![b, c(2.5), a, x[1], b * b, a, x[0] + x[1] + x[2]]
    });
    for rows in [1, 2, 3, 4, 5, 7, 8, 9, 31, 33, 130, 1029] {
        let x: Vec<f64> = points(2, rows);
        let t: Vec<f64> = (0..rows).map(|r| r as f64 * 0.25 - 3.0).collect();
        let got = f
            .values(&[Arg::rows(&x, 2), Arg::rows(&t, 1)], rows, Reduce::None)
            .unwrap();
        for r in 0..rows {
            let want = f.program().eval(&[x[2 * r], x[2 * r + 1], t[r]]);
            assert_eq!(&got[r * 7..(r + 1) * 7], &want[..], "rows {rows}, row {r}");
        }
    }
}

#[test]
fn hessians_and_hvps_over_many_tasks_and_streamed_blocks_are_the_dual_ones() {
    // Rosenbrock-16 at row counts around the 1024 rows of a task and past the 8 MiB
    // from which a block is streamed out (4096 rows of 16 x 16), with a NaN row in a
    // later task (redone: the dual Hessian's NaN).
    let f = rosen(16);
    for rows in [1023, 1024, 1025, 4097] {
        let mut x = points(16, rows);
        x[16 * (rows - 2) + 5] = f64::NAN;
        let args = [Arg::rows(&x, 16)];
        let h = f.hessian_block(&args, rows, &[true]).unwrap();
        let (_, _, want) = f.hessian_wrt_rows(&args, rows, &[true]).unwrap();
        assert_eq!(h.len(), want.len());
        // The same numbers (up to the sign of a zero, see `wengert::hvp`), but in the
        // NaN row: there a structurally zero entry stays 0 where the dual sweep
        // multiplies a zero tangent into the NaN (strong zero).
        for (r, (a, b)) in h.chunks(256).zip(want.chunks(256)).enumerate() {
            let same = a.iter().zip(b).all(|(a, b)| {
                a == b || (a.is_nan() && b.is_nan()) || (r == rows - 2 && b.is_nan())
            });
            assert!(same, "rows {rows}, row {r}");
        }
        assert!(h[256 * (rows - 2)..256 * (rows - 1)]
            .iter()
            .any(|v| v.is_nan()));
        let v: Vec<f64> = (0..16 * rows).map(|i| (i % 13) as f64 - 6.0).collect();
        let hv = f
            .hvp(&args, rows, &[true], &[Arg::rows(&v, 16)], Reduce::None)
            .unwrap();
        // Every entry written, whatever the buffer held.
        let mut into = vec![f64::NAN; rows * 16];
        f.hvp_into(&args, rows, &[true], &[Arg::rows(&v, 16)], &mut into)
            .unwrap();
        let bits = |a: &[f64]| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&hv), bits(&into), "rows {rows}");
        for r in (0..rows).filter(|&r| r != rows - 2) {
            for i in 0..16 {
                let want: f64 = (0..16)
                    .map(|j| h[r * 256 + i * 16 + j] * v[r * 16 + j])
                    .sum();
                let got = hv[r * 16 + i];
                assert!(
                    (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "{got} {want}"
                );
            }
        }
    }
}

#[test]
fn hvp_into_refuses_a_buffer_of_the_wrong_length() {
    let f = rosen(4);
    let x = points(4, 3);
    let v = [1.0; 4];
    for len in [0, 11, 13] {
        let mut out = vec![0.0; len];
        let e = f
            .hvp_into(
                &[Arg::rows(&x, 4)],
                3,
                &[true],
                &[Arg::shared(&v)],
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(e, BatchError::Invalid(_)), "{e:?}");
    }
}
