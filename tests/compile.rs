//! The Rust compile-and-batch path (reverse sweeps) against forward-mode dual numbers,
//! on many rows.

use wengert::compile::program::Program;
use wengert::compiled::{self, Compiled};
use wengert::exec::{Arg, BatchError, Job, Reduce};
use wengert::op::{Binary, Unary};
use wengert::{Dual, Real};

/// A function with every kind of instruction the tracer records, generic over the number type.
fn f<T: Real>(x: &[T]) -> T {
    let a = x[0] / x[1];
    let s = T::sel_gt(x[0], x[1], a.sin(), x[1].exp());
    (s + a.tanh()) * x[2].hypot(x[0]) + x[1].powf(x[2]).ln_1p()
}

fn rows(n: usize) -> Vec<f64> {
    // A fixed pseudo-random sequence (no dependency needed for a test).
    let mut s = 0x9E3779B97F4A7C15u64;
    (0..3 * n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            0.3 + 2.0 * (s >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

#[test]
fn batch_gradients_equal_forward_mode() {
    let n = 1001;
    let c = Compiled::trace(&[3], |x| vec![f(x)]);
    let data = rows(n);
    let (v, g) = c
        .value_and_grad(&[Arg::rows(&data, 3)], n, Reduce::None)
        .unwrap();
    for r in 0..n {
        let x = &data[3 * r..3 * r + 3];
        for i in 0..3 {
            let d: Vec<Dual> = (0..3)
                .map(|j| Dual::new(x[j], if i == j { 1.0 } else { 0.0 }))
                .collect();
            let y = f(&d);
            // The lanes use crate::scalar::vmath (exp, sin, tanh, ln_1p here), a few ulp from libm.
            assert!(
                (v[r] - y.re).abs() <= 8.0 * f64::EPSILON * y.re.abs(),
                "row {r}: {} vs {}",
                v[r],
                y.re
            );
            let (got, want) = (g[0][3 * r + i], y.eps);
            assert!(
                (got - want).abs() <= 1e-14 * (1.0 + want.abs()),
                "row {r} input {i}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn reduced_sums_do_not_depend_on_threads() {
    let n = 200_003;
    let c = Compiled::trace(&[3], |x| vec![f(x)]);
    let data = rows(n);
    let mut results = Vec::new();
    for t in [1, 2, 4] {
        compiled::set_num_threads(t);
        results.push(
            c.value_and_grad(&[Arg::rows(&data, 3)], n, Reduce::Sum)
                .unwrap(),
        );
    }
    assert!(results.iter().all(|r| *r == results[0]));
}

#[test]
fn jvp_matches_vjp() {
    let n = 64;
    let c = Compiled::trace(&[3], |x| vec![f(x)]);
    let data = rows(n);
    let tangent = [0.25, -1.0, 2.0];
    let jvp = c
        .run(
            &[Arg::rows(&data, 3)],
            n,
            &Job::Jvp {
                tangents: vec![Arg::shared(&tangent)],
            },
            Reduce::None,
        )
        .unwrap();
    let (_, g) = c
        .value_and_grad(&[Arg::rows(&data, 3)], n, Reduce::None)
        .unwrap();
    for r in 0..n {
        let dot: f64 = (0..3).map(|i| g[0][3 * r + i] * tangent[i]).sum();
        assert!((jvp.tangents[r] - dot).abs() <= 1e-13 * (1.0 + dot.abs()));
    }
}

#[test]
fn wrong_sizes_are_errors_not_panics() {
    let c = Compiled::trace(&[3], |x| vec![f(x)]);
    let data = rows(4);
    let err = c
        .values(&[Arg::rows(&data[..11], 3)], 4, Reduce::None)
        .unwrap_err();
    assert_eq!(
        err,
        BatchError::Shape {
            arg: 0,
            expected: 12,
            got: 11
        }
    );
    assert!(c.values(&[], 4, Reduce::None).is_err());
}

#[test]
fn programs_survive_serialisation_and_reject_garbage() {
    let c = Compiled::trace(&[3], |x| vec![f(x), x[0] * x[0]]);
    let bytes = c.program().to_bytes();
    assert_eq!(&Program::from_bytes(&bytes).unwrap(), c.program());
    for cut in [0, 8, 20, bytes.len() - 1] {
        assert!(Program::from_bytes(&bytes[..cut]).is_err());
    }
    let mut bad = bytes.clone();
    bad[17] = 0xff; // first input slot far out of range
    assert!(Program::from_bytes(&bad).is_err());
    let whole = c.to_bytes();
    assert_eq!(Compiled::from_bytes(&whole, &[3]).unwrap(), c);
    assert!(Compiled::from_bytes(&whole, &[2]).is_err());
    assert!(Compiled::from_bytes(&whole[..whole.len() / 2], &[3]).is_err());
}

/// A program in the format of `Program::to_bytes` (values layout), slots chosen by hand:
/// inputs (`u32::MAX` for none), constants, instructions (unary Neg or binary op `code`
/// with its destination and arguments) and outputs.
fn encode(
    n_slots: u32,
    inputs: &[u32],
    consts: &[(u32, f64)],
    instrs: &[(u8, u8, &[u32])],
    outputs: &[u32],
) -> Vec<u8> {
    let mut b = b"wengert2".to_vec();
    b.push(0);
    let u = |b: &mut Vec<u8>, w: u32| b.extend(w.to_le_bytes());
    u(&mut b, n_slots);
    u(&mut b, inputs.len() as u32);
    inputs.iter().for_each(|&s| u(&mut b, s));
    u(&mut b, consts.len() as u32);
    for &(s, c) in consts {
        u(&mut b, s);
        b.extend(c.to_le_bytes());
    }
    u(&mut b, instrs.len() as u32);
    for &(tag, code, slots) in instrs {
        b.extend([tag, code]);
        slots.iter().for_each(|&s| u(&mut b, s));
    }
    u(&mut b, outputs.len() as u32);
    outputs.iter().for_each(|&s| u(&mut b, s));
    b
}

#[test]
fn decoded_programs_must_use_slots_as_compiled_ones_do() {
    const NEG: (u8, u8) = (0, Unary::Neg as u8);
    const ADD: (u8, u8) = (1, Binary::Add as u8);
    const MUL: (u8, u8) = (1, Binary::Mul as u8);
    let neg = |slots: &'static [u32]| (NEG.0, NEG.1, slots);
    assert!(Program::from_bytes(&encode(2, &[0], &[], &[neg(&[1, 0])], &[1])).is_ok());
    // Slot 2^24 is 2 GiB into a block of 4 lane groups: past a 32-bit offset in native
    // code (this program once crashed the process from a pickle).
    const FAR: u32 = 1 << 24;
    let cases = [
        (
            encode(FAR + 1, &[0], &[], &[neg(&[FAR, 0])], &[FAR]),
            "more slots than values",
        ),
        (
            encode(1, &[0], &[], &[neg(&[0, 0])], &[0]),
            "writes a slot it reads",
        ),
        (
            encode(2, &[u32::MAX], &[], &[neg(&[0, 1])], &[0]),
            "reads a slot before",
        ),
        (
            encode(2, &[0, u32::MAX], &[], &[], &[1]),
            "output slot is never written",
        ),
        (
            encode(2, &[0, 0], &[], &[], &[1]),
            "two inputs or constants in one slot",
        ),
        // Once accepted: the interpreter loads constants once per chunk, so every block
        // after the first read the sum where the constant 2 should be.
        (
            encode(
                3,
                &[0],
                &[(1, 2.0)],
                &[(MUL.0, MUL.1, &[2, 0, 1]), (ADD.0, ADD.1, &[1, 0, 0])],
                &[2],
            ),
            "writes a constant's slot",
        ),
    ];
    for (bad, why) in cases {
        let e = Program::from_bytes(&bad).unwrap_err();
        assert!(e.0.contains(why), "{why}: got {}", e.0);
        let mut whole = (bad.len() as u64).to_le_bytes().to_vec();
        whole.extend(&bad);
        whole.extend(&bad);
        assert!(Compiled::from_bytes(&whole, &[1]).is_err());
    }
}

/// Scalar (one number per row) arguments and a one-column output take the contiguous
/// copy paths of the batch loader and writer; every row count around the lane width and
/// a partial last block must give the same rows as forward mode.
#[test]
fn scalar_arguments_at_every_row_count() {
    let c = Compiled::trace(&[1, 1], |x| vec![(x[0] / x[1]).sin() * x[1].exp()]);
    let h = |a: f64, b: f64, da: f64, db: f64| {
        let (a, b) = (Dual::new(a, da), Dual::new(b, db));
        (a / b).sin() * b.exp()
    };
    for n in (1..=9).chain([127, 128, 129, 1001, 40_003]) {
        let all = rows(n);
        let (x1, x2) = (&all[..n], &all[n..2 * n]);
        let args = [Arg::rows(x1, 1), Arg::rows(x2, 1)];
        let (v, g) = c.value_and_grad(&args, n, Reduce::None).unwrap();
        assert_eq!((v.len(), g[0].len(), g[1].len()), (n, n, n));
        for r in 0..n {
            let (d1, d2) = (h(x1[r], x2[r], 1.0, 0.0), h(x1[r], x2[r], 0.0, 1.0));
            let close = |got: f64, want: f64| (got - want).abs() <= 1e-14 * (1.0 + want.abs());
            assert!(close(v[r], d1.re), "n {n} row {r}: {} vs {}", v[r], d1.re);
            assert!(close(g[0][r], d1.eps), "n {n} row {r}: d/dx1");
            assert!(close(g[1][r], d2.eps), "n {n} row {r}: d/dx2");
        }
    }
}

/// Reduced sums (values, and gradients of a shared argument) equal the per-row results
/// added up, at row counts that leave partial lane groups and partial blocks.
#[test]
fn reduced_sums_equal_summed_rows() {
    // theta shared by all rows, x one number per row.
    let c = Compiled::trace(&[2, 1], |a| {
        let r = a[0] * a[2].sin() + a[1] - a[2];
        vec![r * r]
    });
    let theta = [0.7, -0.3];
    for n in [1, 3, 5, 127, 129, 1001, 70_001] {
        let x = &rows(n)[..n];
        let args = [Arg::shared(&theta), Arg::rows(x, 1)];
        let (v, g) = c.value_and_grad(&args, n, Reduce::Sum).unwrap();
        let (mut want_v, mut want_g) = (0.0, [0.0; 2]);
        for &xr in x {
            let r = theta[0] * xr.sin() + theta[1] - xr;
            want_v += r * r;
            want_g[0] += 2.0 * r * xr.sin();
            want_g[1] += 2.0 * r;
        }
        let close = |got: f64, want: f64| (got - want).abs() <= 1e-12 * want.abs().max(1.0);
        assert!(close(v[0], want_v), "n {n}: {} vs {want_v}", v[0]);
        for i in 0..2 {
            assert!(
                close(g[0][i], want_g[i]),
                "n {n} theta {i}: {} vs {}",
                g[0][i],
                want_g[i]
            );
        }
    }
}
