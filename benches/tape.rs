//! Recording + reverse sweep on the Rust tape, reported per recorded op.
//!
//! `cargo bench --bench tape` prints time per iteration; each iteration records
//! `OPS` ops (a long expression mixing +, *, / and sin/exp) and sweeps once, so
//! ns per op = time / OPS.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use wengert::Tape;

const TERMS: usize = 10_000;
/// Ops recorded per iteration: 2 leaves + 5 per term.
const OPS: u64 = 2 + 5 * TERMS as u64;

fn long_expression(t: &Tape, a: f64, b: f64) -> f64 {
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

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("tape");
    group.throughput(Throughput::Elements(OPS));
    group.bench_function("record_and_sweep", |b| {
        b.iter_batched_ref(
            Tape::new,
            |t| black_box(long_expression(t, black_box(1.5), black_box(0.5))),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
