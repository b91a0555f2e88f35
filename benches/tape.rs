//! Recording + reverse sweep on the Rust tape, reported per recorded op, next to Rust
//! peers from crates.io doing the same job.
//!
//! `cargo bench --bench tape` times, per iteration, recording an expression and sweeping it
//! once (criterion prints elements/s: ns per op = 1e9 / that; the op count is wengert's
//! nodes, leaves included, the same for every peer since they compute the same function).
//! `fresh_tape` starts every iteration from a new tape (`iter_batched_ref`: making and
//! dropping the empty tape is not timed, its growth is); `reused_tape` records on one tape
//! emptied between iterations, as the Python front's per-thread tape is.
//!
//! Peers, each checked against wengert's value and derivatives before anything is timed
//! (the bench panics on a disagreement):
//!
//! - `echidna` (`echidna::grad`, an Adept-style two-stack tape kept per thread and reused);
//! - `reverse` (a `Vec` of nodes behind a `RefCell`, as wengert's `Tape` is; its `-` and `/`
//!   record two nodes each);
//! - `num_dual` (`Dual64`, forward mode: one pass per input);
//! - `plain_f64`: the function alone, no derivative, the floor of the math itself.
//!
//! Workloads:
//!
//! - `chain`: `y = y * 0.999 + sin(y)`, 333 steps from one input (1000 nodes): the eager
//!   chain of `benches/eager.py`. Each step calls `sin`, and the tapes `cos` too.
//! - `griewank`: Griewank's example `f = (sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))`
//!   as his book evaluates it (`v1 = x1/x2`, `v4 = v1 - exp(x2)`, `f = (sin(v1) + v4) * v4`:
//!   2 inputs and 6 ops, 8 nodes), value and both partials per evaluation.
//! - `arithmetic`: `s = s + x_i x_{i+1} + x_i / 3` over 1000 inputs (4996 nodes), where the
//!   tape's own cost dominates; forward mode would need 1000 passes, so `num_dual` sits it
//!   out.
//! - `transcendental`: a chain of `+ * / sin` (5 ops a step, 50002 nodes), wengert only.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use echidna::Scalar;
use num_dual::{Dual64, DualNum};
use num_traits::Float;
use reverse::Gradient;
use std::hint::black_box;
use wengert::Tape;

/// Panics unless `got` agrees with wengert's `want` to a few ulps (the peers' rules round
/// differently: `reverse` divides through a reciprocal).
fn check(peer: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{peer}: wrong number of results");
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * w.abs().max(1.0),
            "{peer} disagrees with wengert at result {k}: {g} against {w}"
        );
    }
}

/// The body of `chain` for any number type with `* f64`, `+` and `sin`.
macro_rules! chain {
    ($x:expr) => {{
        let mut y = $x;
        for _ in 0..STEPS {
            y = y * 0.999 + y.sin();
        }
        y
    }};
}

const STEPS: usize = 333;
const CHAIN_OPS: u64 = 1 + 3 * STEPS as u64;

fn chain_wengert(t: &Tape, x0: f64) -> [f64; 2] {
    let x = t.var(x0);
    let y = chain!(x);
    [y.value(), y.grad()[x]]
}

fn chain_reverse(t: &reverse::Tape, x0: f64) -> [f64; 2] {
    let x = t.add_var(x0);
    let y = chain!(x);
    [y.val(), y.grad().wrt(&x)]
}

fn chain_echidna(x0: f64) -> [f64; 2] {
    let mut value = 0.0;
    let g = echidna::grad(
        |x| {
            let y = chain!(x[0]);
            value = y.value();
            y
        },
        &[x0],
    );
    [value, g[0]]
}

fn chain_num_dual(x0: f64) -> [f64; 2] {
    let y = chain!(Dual64::new(x0, 1.0));
    [y.re, y.eps]
}

/// Griewank's example as his book evaluates it, for any number type.
macro_rules! griewank {
    ($x1:expr, $x2:expr) => {{
        let (x1, x2) = ($x1, $x2);
        let v1 = x1 / x2;
        let v4 = v1 - x2.exp();
        (v1.sin() + v4) * v4
    }};
}

const GRIEWANK_OPS: u64 = 8;

fn griewank_wengert(t: &Tape, a: f64, b: f64) -> [f64; 3] {
    let (x1, x2) = (t.var(a), t.var(b));
    let y = griewank!(x1, x2);
    let g = y.grad();
    [y.value(), g[x1], g[x2]]
}

fn griewank_reverse(t: &reverse::Tape, a: f64, b: f64) -> [f64; 3] {
    let (x1, x2) = (t.add_var(a), t.add_var(b));
    let y = griewank!(x1, x2);
    let g = y.grad();
    [y.val(), g.wrt(&x1), g.wrt(&x2)]
}

fn griewank_echidna(a: f64, b: f64) -> [f64; 3] {
    let mut value = 0.0;
    let g = echidna::grad(
        |x| {
            let y = griewank!(x[0], x[1]);
            value = y.value();
            y
        },
        &[a, b],
    );
    [value, g[0], g[1]]
}

/// Two forward passes, one per input.
fn griewank_num_dual(a: f64, b: f64) -> [f64; 3] {
    let d1 = griewank!(Dual64::new(a, 1.0), Dual64::new(b, 0.0));
    let d2 = griewank!(Dual64::new(a, 0.0), Dual64::new(b, 1.0));
    [d1.re, d1.eps, d2.eps]
}

const LEAVES: usize = 1000;
/// Nodes of `arithmetic`: the leaves, then 4 per term.
const SUM_OPS: u64 = (LEAVES + 4 * (LEAVES - 1)) as u64;

/// The body of `arithmetic` over a slice of numbers; the first `s` is a recorded `0 * x_0`.
macro_rules! sum {
    ($v:expr) => {{
        let v = $v;
        let mut s = v[0] * 0.0;
        for w in v.windows(2) {
            s = s + w[0] * w[1] + w[0] / 3.0;
        }
        s
    }};
}

/// The sum of the gradient's components, as one number to compare and to keep alive.
fn sum_wengert(t: &Tape, xs: &[f64]) -> [f64; 2] {
    let v: Vec<_> = xs.iter().map(|&x| t.var(x)).collect();
    let s = sum!(&v);
    let g = s.grad();
    [s.value(), v.iter().map(|&x| g[x]).sum()]
}

fn sum_reverse(t: &reverse::Tape, xs: &[f64]) -> [f64; 2] {
    let v = t.add_vars(xs);
    let s = sum!(&v);
    let g = s.grad();
    [s.val(), g.wrt(&v).iter().sum()]
}

fn sum_echidna(xs: &[f64]) -> [f64; 2] {
    let mut value = 0.0;
    let g = echidna::grad(
        |v| {
            let s = sum!(v);
            value = s.value();
            s
        },
        xs,
    );
    [value, g.iter().sum()]
}

fn sum_f64(xs: &[f64]) -> f64 {
    sum!(xs)
}

const TERMS: usize = 10_000;
/// Nodes of `transcendental`: 2 leaves + 5 per term.
const TRANS_OPS: u64 = 2 + 5 * TERMS as u64;

fn trans_f64(a: f64, b: f64) -> f64 {
    let (x, y) = (a, b);
    let mut acc = x * y;
    for i in 0..TERMS {
        let u = acc * 0.999 + y;
        acc = u.sin() / x + (i as f64) * 1e-6;
    }
    acc
}

fn trans_wengert(t: &Tape, a: f64, b: f64) -> f64 {
    let x = t.var(a);
    let y = t.var(b);
    let mut acc = x * y;
    for i in 0..TERMS {
        // 5 ops a term: mul, add, sin, div, add.
        let u = acc * 0.999 + y;
        acc = u.sin() / x + (i as f64) * 1e-6;
    }
    let g = acc.grad();
    g[x] + g[y]
}

/// Times `f` on a fresh wengert tape and on one reused tape.
fn wengert_pair<R>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    f: impl Fn(&Tape) -> R,
) {
    group.bench_function("wengert_fresh_tape", |b| {
        b.iter_batched_ref(Tape::new, |t| black_box(f(t)), BatchSize::SmallInput)
    });
    group.bench_function("wengert_reused_tape", |b| {
        let mut t = Tape::new();
        b.iter(|| {
            let r = black_box(f(&t));
            t.clear();
            r
        })
    });
}

/// Times `f` on a fresh `reverse` tape and on one reused tape.
fn reverse_pair<R>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    f: impl Fn(&reverse::Tape) -> R,
) {
    group.bench_function("reverse_fresh_tape", |b| {
        b.iter_batched_ref(
            reverse::Tape::new,
            |t| black_box(f(t)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("reverse_reused_tape", |b| {
        let t = reverse::Tape::new();
        b.iter(|| {
            let r = black_box(f(&t));
            t.clear();
            r
        })
    });
}

fn bench(c: &mut Criterion) {
    let x0 = 0.7;
    let want = chain_wengert(&Tape::new(), x0);
    check("reverse", &chain_reverse(&reverse::Tape::new(), x0), &want);
    check("echidna", &chain_echidna(x0), &want);
    check("num_dual", &chain_num_dual(x0), &want);
    check("plain_f64", &[chain!(x0)], &want[..1]);
    let mut group = c.benchmark_group("chain");
    group.throughput(Throughput::Elements(CHAIN_OPS));
    wengert_pair(&mut group, |t| chain_wengert(t, black_box(x0)));
    reverse_pair(&mut group, |t| chain_reverse(t, black_box(x0)));
    group.bench_function("echidna", |b| {
        b.iter(|| black_box(chain_echidna(black_box(x0))))
    });
    group.bench_function("num_dual", |b| {
        b.iter(|| black_box(chain_num_dual(black_box(x0))))
    });
    group.bench_function("plain_f64", |b| b.iter(|| black_box(chain!(black_box(x0)))));
    group.finish();

    let (a, b) = (1.5, 0.5);
    let want = griewank_wengert(&Tape::new(), a, b);
    check(
        "reverse",
        &griewank_reverse(&reverse::Tape::new(), a, b),
        &want,
    );
    check("echidna", &griewank_echidna(a, b), &want);
    check("num_dual", &griewank_num_dual(a, b), &want);
    check("plain_f64", &[griewank!(a, b)], &want[..1]);
    let mut group = c.benchmark_group("griewank");
    group.throughput(Throughput::Elements(GRIEWANK_OPS));
    wengert_pair(&mut group, |t| {
        griewank_wengert(t, black_box(a), black_box(b))
    });
    reverse_pair(&mut group, |t| {
        griewank_reverse(t, black_box(a), black_box(b))
    });
    group.bench_function("echidna", |bch| {
        bch.iter(|| black_box(griewank_echidna(black_box(a), black_box(b))))
    });
    group.bench_function("num_dual", |bch| {
        bch.iter(|| black_box(griewank_num_dual(black_box(a), black_box(b))))
    });
    group.bench_function("plain_f64", |bch| {
        bch.iter(|| black_box(griewank!(black_box(a), black_box(b))))
    });
    group.finish();

    let xs: Vec<f64> = (0..LEAVES).map(|i| 1.0 + (i as f64) * 1e-3).collect();
    let want = sum_wengert(&Tape::new(), &xs);
    check("reverse", &sum_reverse(&reverse::Tape::new(), &xs), &want);
    check("echidna", &sum_echidna(&xs), &want);
    check("plain_f64", &[sum_f64(&xs)], &want[..1]);
    let mut group = c.benchmark_group("arithmetic");
    group.throughput(Throughput::Elements(SUM_OPS));
    wengert_pair(&mut group, |t| sum_wengert(t, black_box(&xs)));
    reverse_pair(&mut group, |t| sum_reverse(t, black_box(&xs)));
    group.bench_function("echidna", |b| {
        b.iter(|| black_box(sum_echidna(black_box(&xs))))
    });
    group.bench_function("plain_f64", |b| {
        b.iter(|| black_box(sum_f64(black_box(&xs))))
    });
    group.finish();

    let mut group = c.benchmark_group("transcendental");
    group.throughput(Throughput::Elements(TRANS_OPS));
    wengert_pair(&mut group, |t| {
        trans_wengert(t, black_box(1.5), black_box(0.5))
    });
    group.bench_function("plain_f64", |b| {
        b.iter(|| black_box(trans_f64(black_box(1.5), black_box(0.5))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
