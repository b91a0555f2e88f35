//! Property tests of the surfaces that take untrusted or arbitrary input: decoding
//! (pickles cross trust boundaries, so `Program::from_bytes` and `Compiled::from_bytes`
//! must reject garbage with an error, never panic, and whatever they accept must run), and
//! the eager `Tape` (any sequence of ops sweeps without panicking, and agrees with forward
//! mode). Case counts are proptest's defaults; `PROPTEST_CASES=100000 cargo test --release
//! --test fuzz` is the long run.

use proptest::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use wengert::compile::program::Program;
use wengert::compiled::Compiled;
use wengert::exec::{Arg, Reduce};
use wengert::op::{Binary, Unary};
use wengert::{Dual, Real, Tape};

/// A few compiled functions whose encodings the mutations start from.
fn seeds() -> Vec<Vec<u8>> {
    let fs: Vec<Compiled> = vec![
        Compiled::trace(&[1, 1], |x| vec![x[0] * x[1].sin() + Real::cst(1.0)]),
        Compiled::trace(&[2], |x| vec![(x[0] / x[1]).exp(), x[0].hypot(x[1])]),
        Compiled::trace(&[1], |x| {
            vec![Real::sel_gt(
                x[0],
                Real::cst(0.0),
                x[0].sqrt(),
                Real::cst(0.0),
            )]
        }),
    ];
    fs.iter().map(|c| c.to_bytes()).collect()
}

/// Runs every pass of a decoded function on a few rows; none may panic.
fn exercise(c: &Compiled, sizes: &[usize]) {
    let rows = 5;
    let data: Vec<Vec<f64>> = sizes
        .iter()
        .map(|&s| (0..s * rows).map(|i| i as f64 * 0.37 - 1.0).collect())
        .collect();
    let args: Vec<Arg> = data
        .iter()
        .zip(sizes)
        .map(|(d, &s)| Arg::rows(d, s))
        .collect();
    let _ = c.values(&args, rows, Reduce::None);
    let _ = c.value_and_grad(&args, rows, Reduce::None);
}

fn no_panic<R>(what: &str, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{what} panicked: {msg}")
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(p) = no_panic("Program::from_bytes", || Program::from_bytes(&b)) {
            // Whatever decodes re-encodes to a program that decodes the same.
            let again = Program::from_bytes(&p.to_bytes()).expect("re-decoding");
            prop_assert_eq!(again.to_bytes(), p.to_bytes());
        }
        for sizes in [&[1usize, 1][..], &[2][..], &[1][..]] {
            if let Ok(c) = no_panic("Compiled::from_bytes", || Compiled::from_bytes(&b, sizes)) {
                no_panic("running a decoded function", || exercise(&c, sizes));
            }
        }
    }

    #[test]
    fn mutated_encodings_are_rejected_or_run(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let sizes: &[&[usize]] = &[&[1, 1], &[2], &[1]];
        let mut b = seeds()[which].clone();
        for (at, byte, kind) in edits {
            let at = at as usize % (b.len() + 1);
            match kind {
                0 if at < b.len() => b[at] = byte,
                1 => b.insert(at, byte),
                _ if at < b.len() => { b.remove(at); }
                _ => {}
            }
        }
        if let Ok(c) = no_panic("Compiled::from_bytes", || Compiled::from_bytes(&b, sizes[which])) {
            no_panic("running a mutated function", || exercise(&c, sizes[which]));
        }
    }

    /// One byte replaced: the length and layout stay, so many more edits decode, and
    /// what decodes (a changed constant, op, slot or count) must run without panicking.
    #[test]
    fn one_replaced_byte_is_rejected_or_runs(which in 0usize..3, at in any::<u16>(), byte in any::<u8>()) {
        let sizes: &[&[usize]] = &[&[1, 1], &[2], &[1]];
        let mut b = seeds()[which].clone();
        let at = at as usize % b.len();
        b[at] = byte;
        if let Ok(c) = no_panic("Compiled::from_bytes", || Compiled::from_bytes(&b, sizes[which])) {
            no_panic("running an edited function", || exercise(&c, sizes[which]));
        }
    }

    /// Any op sequence on the eager tape: the reverse sweep equals forward mode (to
    /// rounding) where both are finite, and a node the output does not use changes
    /// nothing (strong zero).
    #[test]
    fn tape_reverse_agrees_with_forward(
        ops in proptest::collection::vec((0usize..40, any::<u16>(), any::<u16>()), 1..12),
        x0 in -2.0f64..2.0,
        y0 in -2.0f64..2.0,
    ) {
        let (g, fwd) = tape_program(&ops, x0, y0, false);
        for i in 0..2 {
            let (rev, fwd) = (g[i], fwd[i]);
            if rev.is_finite() && fwd.is_finite() {
                let scale = rev.abs().max(fwd.abs()).max(1.0);
                prop_assert!((rev - fwd).abs() <= 1e-9 * scale, "input {}: reverse {} forward {}", i, rev, fwd);
            }
        }
        // A node with an infinite partial, recorded first and never used.
        let (g2, fwd2) = tape_program(&ops, x0, y0, true);
        for i in 0..2 {
            for (a, b) in [(g[i], g2[i]), (fwd[i], fwd2[i])] {
                prop_assert!(a == b || (a.is_nan() && b.is_nan()), "a dead node changed {} to {}", a, b);
            }
        }
    }
}

/// The gradient of a drawn program by the tape's reverse sweep, and by forward mode.
fn tape_program(ops: &[(usize, u16, u16)], x0: f64, y0: f64, poison: bool) -> ([f64; 2], [f64; 2]) {
    let binary = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Pow,
        Binary::Hypot,
        Binary::Atan2,
        Binary::Max,
        Binary::Min,
        Binary::Fmod,
        Binary::Remainder,
        Binary::Copysign,
        Binary::Logaddexp,
    ];
    let t = Tape::new();
    let (x, y) = (t.var(x0), t.var(y0));
    let mut ds: [Vec<Dual>; 2] = [
        vec![Dual::new(x0, 1.0), Dual::new(y0, 0.0)],
        vec![Dual::new(x0, 0.0), Dual::new(y0, 1.0)],
    ];
    if poison {
        let _dead = (-(x.abs()) - 1.0).sqrt() * y;
        for d in ds.iter_mut() {
            let _dead = (-(d[0].abs()) - Dual::constant(1.0)).sqrt() * d[1];
        }
    }
    let mut vs = vec![x, y];
    for &(k, a, b) in ops {
        let (a, b) = (a as usize % vs.len(), b as usize % vs.len());
        if k < UNARY.len() * 2 && k % 2 == 0 {
            let (op, f) = UNARY[(k / 2) % UNARY.len()];
            vs.push(f(vs[a]));
            for d in ds.iter_mut() {
                let v = d[a].unary(op);
                d.push(v);
            }
        } else {
            let op = binary[k % binary.len()];
            vs.push(binary_var(op, vs[a], vs[b]));
            for d in ds.iter_mut() {
                let v = d[a].binary(op, d[b]);
                d.push(v);
            }
        }
    }
    let g = vs.last().unwrap().grad();
    (
        [g[x], g[y]],
        [ds[0].last().unwrap().eps, ds[1].last().unwrap().eps],
    )
}

type UnaryFn = for<'t> fn(wengert::Var<'t>) -> wengert::Var<'t>;

/// The drawn unary ops with their `Var` methods.
const UNARY: [(Unary, UnaryFn); 17] = [
    (Unary::Sin, |x| x.sin()),
    (Unary::Exp, |x| x.exp()),
    (Unary::Tanh, |x| x.tanh()),
    (Unary::Sqrt, |x| x.sqrt()),
    (Unary::Log, |x| x.ln()),
    (Unary::Abs, |x| x.abs()),
    (Unary::Atan, |x| x.atan()),
    (Unary::Sigmoid, |x| x.sigmoid()),
    (Unary::Neg, |x| -x),
    (Unary::Cbrt, |x| x.cbrt()),
    (Unary::Floor, |x| x.floor()),
    (Unary::Sign, |x| x.sign()),
    (Unary::Sinc, |x| x.sinc()),
    (Unary::Erfc, |x| x.erfc()),
    (Unary::Lgamma, |x| x.lgamma()),
    (Unary::Reciprocal, |x| x.reciprocal()),
    (Unary::StopGradient, |x| x.stop_gradient()),
];

fn binary_var<'t>(op: Binary, x: wengert::Var<'t>, y: wengert::Var<'t>) -> wengert::Var<'t> {
    match op {
        Binary::Add => x + y,
        Binary::Sub => x - y,
        Binary::Mul => x * y,
        Binary::Div => x / y,
        Binary::Pow => x.pow(y),
        Binary::Hypot => x.hypot(y),
        Binary::Atan2 => x.atan2(y),
        Binary::Max => x.max(y),
        Binary::Min => x.min(y),
        Binary::Fmod => x.fmod(y),
        Binary::Remainder => x.remainder(y),
        Binary::Copysign => x.copysign(y),
        Binary::Logaddexp => x.logaddexp(y),
    }
}
