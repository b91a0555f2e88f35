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
