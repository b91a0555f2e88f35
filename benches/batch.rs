//! Compiled batch evaluation in Rust, one thread and all threads: Griewank's example and
//! Rosenbrock's function in 16 dimensions, values and full gradients; and Rosenbrock with
//! native code in blocks of several sizes.
//!
//! `cargo bench --bench batch` reports rows per second (criterion's throughput).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use wengert::compile::trace::Traced;
use wengert::compiled::{set_num_threads, Compiled};
use wengert::exec::jit::{Kernel, Pass};
use wengert::exec::{self, Arg, Job, Layout, Reduce};
use wengert::Real;

fn griewank<T: Real>(x: &[T]) -> T {
    let (a, b) = (x[0] / x[1], x[1].exp());
    (a.sin() + a - b) * (a - b)
}

fn rosenbrock<T: Real>(x: &[T]) -> T {
    let (hundred, one) = (T::cst(100.0), T::cst(1.0));
    let mut s = T::cst(0.0);
    for i in 0..x.len() - 1 {
        let d = x[i + 1] - x[i] * x[i];
        let e = one - x[i];
        s = s + hundred * (d * d) + e * e;
    }
    s
}

/// Deterministic inputs in [lo, hi).
fn data(n: usize, lo: f64, hi: f64) -> Vec<f64> {
    let mut s = 0x2545F4914F6CDD1Du64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * (s >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = 200_000;
    let g = Compiled::trace(&[1, 1], |x| vec![griewank(x)]);
    let (x1, x2) = (data(n, 1.0, 2.0), data(n, 0.5, 1.0));
    let r = Compiled::trace(&[16], |x| vec![rosenbrock(x)]);
    let x = data(16 * n, -2.0, 2.0);
    for t in [1, threads] {
        set_num_threads(t);
        let mut group = c.benchmark_group(format!("batch/{t}threads"));
        group.throughput(Throughput::Elements(n as u64));
        group.sample_size(20);
        let gargs = [Arg::rows(&x1, 1), Arg::rows(&x2, 1)];
        group.bench_function("griewank/value", |b| {
            b.iter(|| black_box(g.values(&gargs, n, Reduce::None).unwrap()))
        });
        group.bench_function("griewank/value_and_grad", |b| {
            b.iter(|| black_box(g.value_and_grad(&gargs, n, Reduce::None).unwrap()))
        });
        let rargs = [Arg::rows(&x, 16)];
        group.bench_function("rosenbrock16/value", |b| {
            b.iter(|| black_box(r.values(&rargs, n, Reduce::None).unwrap()))
        });
        group.bench_function("rosenbrock16/value_and_grad", |b| {
            b.iter(|| black_box(r.value_and_grad(&rargs, n, Reduce::None).unwrap()))
        });
        group.finish();
    }
}

/// Native code in blocks of 4, 8, 16 and 32 lane groups at one thread: Rosenbrock's
/// value and gradient, its value, and `x * 3` (a program too short to notice its block's
/// working set, but not each block's cost). The figures behind `jit::block_groups`.
fn native_blocks(c: &mut Criterion) {
    set_num_threads(1);
    let n = 200_000;
    let rosen = Compiled::trace(&[16], |x| vec![rosenbrock(x)]);
    let triple = Compiled::trace(&[1], |x| vec![x[0] * Traced::cst(3.0)]);
    let x16 = data(16 * n, -2.0, 2.0);
    let seeds = vec![1.0; n];
    let gradient = Job::Vjp {
        cotangent: Arg::rows(&seeds, 1),
        wrt: vec![true],
    };
    let cases = [
        ("rosenbrock16/value_and_grad", &rosen, 16, Pass::Gradient),
        ("rosenbrock16/value", &rosen, 16, Pass::Values),
        ("x_times_3/value", &triple, 1, Pass::Values),
    ];
    let isa = exec::detect_isa();
    let mut group = c.benchmark_group("native_blocks/1thread");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(20);
    for (name, r, size, pass) in cases {
        let (p, job) = match pass {
            Pass::Values => (r.program(), &Job::Values),
            Pass::Gradient => (r.gradient_program(), &gradient),
        };
        let (args, layout) = ([Arg::rows(&x16[..size * n], size)], Layout::new(&[size]));
        for k in [4, 8, 16, 32] {
            let Some(kern) = Kernel::new(p, pass, k) else {
                return; // no Cranelift backend on this host
            };
            group.bench_function(format!("{name}/{k}groups"), |b| {
                b.iter(|| {
                    let out = exec::run(p, &layout, &args, n, job, Reduce::None, isa, Some(&kern));
                    black_box(out.unwrap())
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench, native_blocks);
criterion_main!(benches);
