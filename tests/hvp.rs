//! The lane Hessians and HVPs of `wengert::hvp` against the dual-number Hessian.

use wengert::compile::program::Program;
use wengert::compile::trace::Traced;
use wengert::compiled::Compiled;
use wengert::exec::hessian::hessian_at;
use wengert::exec::{Arg, BatchError, Reduce};
use wengert::hvp::graph_of;
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
