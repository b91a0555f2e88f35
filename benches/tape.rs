//! Recording + reverse sweep on the Rust tape, reported per recorded op.
//!
//! `cargo bench --bench tape` times, per iteration, recording a long expression on a fresh
//! tape and sweeping it once (criterion prints elements/s; ns per op = 1e9 / that), next to
//! the same expression on plain `f64`, so the cost of differentiation shows as the
//! difference. `record_and_sweep` starts every iteration from `Tape::new()` (allocation and
//! page faults included); `record_and_sweep_reused_tape` records on one tape emptied with
//! `Tape::clear` between iterations, as the Python front's per-thread tape is. Two
//! expressions:
//!
//! - `transcendental`: a dependent chain mixing +, *, / and sin (5 ops a term), where the
//!   math itself (sin, div) costs about as much as recording and sweeping;
//! - `arithmetic`: a sum of products of 1000 leaves (sum x_i x_{i+1} + x_i / 3, 4 ops a
//!   term), where the tape's own cost dominates.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use wengert::Tape;

const TERMS: usize = 10_000;
/// Ops recorded per iteration of `transcendental`: 2 leaves + 5 per term.
const CHAIN_OPS: u64 = 2 + 5 * TERMS as u64;

fn chain_f64(a: f64, b: f64) -> f64 {
    let (x, y) = (a, b);
    let mut acc = x * y;
    for i in 0..TERMS {
        let u = acc * 0.999 + y;
        acc = u.sin() / x + (i as f64) * 1e-6;
    }
    acc
}

fn chain_tape(t: &Tape, a: f64, b: f64) -> f64 {
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

const LEAVES: usize = 1000;
/// Ops recorded per iteration of `arithmetic`: the leaves, then 4 per term.
const SUM_OPS: u64 = (LEAVES + 4 * (LEAVES - 1)) as u64;

fn sum_f64(xs: &[f64]) -> f64 {
    let mut s = 0.0;
    for w in xs.windows(2) {
        s = s + w[0] * w[1] + w[0] / 3.0;
    }
    s
}

fn sum_tape(t: &Tape, xs: &[f64]) -> f64 {
    let v: Vec<_> = xs.iter().map(|&x| t.var(x)).collect();
    let mut s = v[0] * 0.0;
    for w in v.windows(2) {
        // 4 ops a term: mul, add, div, add (the first term's s is a recorded 0 * x_0).
        s = s + w[0] * w[1] + w[0] / 3.0;
    }
    let g = s.grad();
    v.iter().map(|&x| g[x]).sum()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("transcendental");
    group.throughput(Throughput::Elements(CHAIN_OPS));
    group.bench_function("record_and_sweep", |b| {
        b.iter_batched_ref(
            Tape::new,
            |t| black_box(chain_tape(t, black_box(1.5), black_box(0.5))),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("record_and_sweep_reused_tape", |b| {
        let mut t = Tape::new();
        b.iter(|| {
            let r = black_box(chain_tape(&t, black_box(1.5), black_box(0.5)));
            t.clear();
            r
        })
    });
    group.bench_function("plain_f64", |b| {
        b.iter(|| black_box(chain_f64(black_box(1.5), black_box(0.5))))
    });
    group.finish();

    let xs: Vec<f64> = (0..LEAVES).map(|i| 1.0 + (i as f64) * 1e-3).collect();
    let mut group = c.benchmark_group("arithmetic");
    group.throughput(Throughput::Elements(SUM_OPS));
    group.bench_function("record_and_sweep", |b| {
        b.iter_batched_ref(
            Tape::new,
            |t| black_box(sum_tape(t, black_box(&xs))),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("record_and_sweep_reused_tape", |b| {
        let mut t = Tape::new();
        b.iter(|| {
            let r = black_box(sum_tape(&t, black_box(&xs)));
            t.clear();
            r
        })
    });
    group.bench_function("plain_f64", |b| {
        b.iter(|| black_box(sum_f64(black_box(&xs))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
