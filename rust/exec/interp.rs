//! The passes of a [`Program`] over one block of rows.
//!
//! A block holds `k` groups of lanes (`T` is a lane type such as [`crate::scalar::lanes::F64x4`],
//! or `f64`); slot `s` of group `j` lives at `s * k + j`. Each pass walks the instructions
//! once and, per instruction, loops over the `k` groups with the op fixed, so the op's
//! dispatch is paid once per block and the inner loop is straight-line lane code.
//!
//! - [`values`]: outputs only.
//! - [`partials`]: values plus each instruction's local partials (two per instruction).
//! - [`reverse`]: adjoints from stored partials (one seeded output row of a VJP).
//! - [`tangents`]: tangents from stored partials (one direction of a JVP).
//!
//! # Strong zero
//!
//! Both sweeps multiply a partial by an adjoint (reverse) or a tangent (forward) with
//! [`Sweep::strong_mul`]: when the adjoint or tangent is exactly zero and the IEEE product
//! is NaN (the partial is infinite or NaN), the product is `+0.0`; every other product is
//! IEEE's, signed zeros included. So an instruction no output depends on, or the unchosen
//! side of a `where`, adds nothing: `where(x > 0, sqrt(x), 0)` has gradient 0 at `x = -1`,
//! where IEEE products would add `0 * nan`. That is the one difference from plain IEEE
//! arithmetic; a NaN or infinite adjoint still propagates.
//!
//! Because strong products differ from plain ones only where the plain product is NaN,
//! and a NaN adjoint reaches a gradient, a reverse sweep with plain products whose
//! gradients hold no NaN has exactly the strong sweep's result. The batch driver
//! ([`crate::exec::driver`]) runs plain sweeps (`strong = false` in [`reverse`], and native code,
//! which has no other kind) and re-runs only the blocks whose gradients hold a NaN with
//! strong products: strong zero costs nothing on rows without NaN. Partials known to be
//! finite in every row (see [`Program::finite_partials`]: the ±1 of add, sub and neg, and
//! `c` in `x * c`) keep plain products in strong sweeps too; for them the two agree.

use crate::compile::program::{Adjoint, Instr, Program};
use crate::op::{with_binary, with_cmp, with_unary};
use crate::scalar::dual::Dual;
use crate::scalar::lanes::F64x4;
use crate::scalar::real::Real;

/// A number type the sweeps run on: [`Real`] with the strong-zero product.
pub trait Sweep: Real {
    /// `p * g`, but `+0.0` where `g` (the adjoint or tangent) is exactly zero and the
    /// product is NaN (`p` infinite or NaN), lane by lane (see the module documentation).
    fn strong_mul(p: Self, g: Self) -> Self;
}

impl Sweep for f64 {
    #[inline(always)]
    fn strong_mul(p: f64, g: f64) -> f64 {
        crate::scalar::real::strong_mul(p, g)
    }
}

impl Sweep for F64x4 {
    #[inline(always)]
    fn strong_mul(p: F64x4, g: F64x4) -> F64x4 {
        F64x4(std::array::from_fn(|l| f64::strong_mul(p.0[l], g.0[l])))
    }
}

/// Forward over reverse (Hessians): the product rule, each term strong in its adjoint
/// part, so a value adjoint of 0 with a nonzero tangent still passes `p * g.eps` on.
impl<T: Sweep> Sweep for Dual<T> {
    #[inline(always)]
    fn strong_mul(p: Self, g: Self) -> Self {
        Dual {
            re: T::strong_mul(p.re, g.re),
            eps: T::strong_mul(p.eps, g.re) + T::strong_mul(p.re, g.eps),
        }
    }
}

/// Splits `s` into the mutable `k` elements at `d` and shared views of the `k` elements at
/// each of `args`, which must not overlap `d` (a program's destination never aliases its
/// arguments). Bounds are checked here, once per instruction, not per element.
#[inline(always)]
fn dst_and_args<T, const N: usize>(
    s: &mut [T],
    d: usize,
    args: [usize; N],
    k: usize,
) -> (&mut [T], [&[T]; N]) {
    let (lo, rest) = s.split_at_mut(d);
    let (dst, hi) = rest.split_at_mut(k);
    let (lo, hi) = (&*lo, &*hi);
    let views = args.map(|a| {
        if a < d {
            &lo[a..a + k]
        } else {
            &hi[a - d - k..a - d]
        }
    });
    (dst, views)
}

/// Writes the constants into their slots; inputs are the caller's business.
#[inline(always)]
pub fn load_consts<T: Real>(p: &Program, slots: &mut [T], k: usize) {
    for &(s, c) in p.consts() {
        slots[s as usize * k..(s as usize + 1) * k].fill(T::cst(c));
    }
}

/// Evaluates every instruction, leaving each output in its slot.
#[inline(always)]
pub fn values<T: Real>(p: &Program, slots: &mut [T], k: usize) {
    for ins in p.instrs() {
        match *ins {
            Instr::Unary { op, dst, a } => {
                let (d, [x]) = dst_and_args(slots, dst as usize * k, [a as usize * k], k);
                with_unary!(op, OP => for j in 0..k {
                    d[j] = OP.rule(x[j]).0;
                })
            }
            Instr::Binary { op, dst, a, b } => {
                let (d, [x, y]) =
                    dst_and_args(slots, dst as usize * k, [a, b].map(|s| s as usize * k), k);
                with_binary!(op, OP => for j in 0..k {
                    d[j] = OP.rule(x[j], y[j]).0;
                })
            }
            Instr::Select {
                cmp,
                dst,
                x,
                y,
                a,
                b,
            } => {
                let (d, [x, y, a, b]) = dst_and_args(
                    slots,
                    dst as usize * k,
                    [x, y, a, b].map(|s| s as usize * k),
                    k,
                );
                with_cmp!(cmp, C => for j in 0..k {
                    d[j] = C.select(x[j], y[j], a[j], b[j]);
                })
            }
        }
    }
}

/// Like [`values`], and stores instruction `i`'s partials with respect to its two
/// differentiable arguments at `parts[(2i) * k + j]` and `parts[(2i + 1) * k + j]`; only
/// those the reverse plan uses (see [`Adjoint`]) are stored.
#[inline(always)]
pub fn partials<T: Real>(p: &Program, slots: &mut [T], parts: &mut [T], k: usize) {
    for (i, (ins, plan)) in p.instrs().iter().zip(p.plan()).enumerate() {
        let (p0, p1) = parts[2 * i * k..(2 * i + 2) * k].split_at_mut(k);
        let keep = match (p.fixed_partials()[i], p.recomputed()[i]) {
            (None, false) => plan.map(|m| m != Adjoint::Skip),
            _ => [false; 2], // constants, or recomputed in the sweeps
        };
        match *ins {
            Instr::Unary { op, dst, a } => {
                let (d, [x]) = dst_and_args(slots, dst as usize * k, [a as usize * k], k);
                with_unary!(op, OP => if keep[0] {
                    for j in 0..k {
                        let (v, da) = OP.rule(x[j]);
                        d[j] = v;
                        p0[j] = da;
                    }
                } else {
                    for j in 0..k {
                        d[j] = OP.rule(x[j]).0;
                    }
                })
            }
            Instr::Binary { op, dst, a, b } => {
                let (d, [x, y]) =
                    dst_and_args(slots, dst as usize * k, [a, b].map(|s| s as usize * k), k);
                with_binary!(op, OP => match keep {
                    [true, true] => for j in 0..k {
                        let (v, da, db) = OP.rule(x[j], y[j]);
                        d[j] = v;
                        p0[j] = da;
                        p1[j] = db;
                    },
                    [true, false] => for j in 0..k {
                        let (v, da, _) = OP.rule(x[j], y[j]);
                        d[j] = v;
                        p0[j] = da;
                    },
                    [false, true] => for j in 0..k {
                        let (v, _, db) = OP.rule(x[j], y[j]);
                        d[j] = v;
                        p1[j] = db;
                    },
                    [false, false] => for j in 0..k {
                        d[j] = OP.rule(x[j], y[j]).0;
                    },
                })
            }
            Instr::Select {
                cmp,
                dst,
                x,
                y,
                a,
                b,
            } => {
                let (d, [x, y, a, b]) = dst_and_args(
                    slots,
                    dst as usize * k,
                    [x, y, a, b].map(|s| s as usize * k),
                    k,
                );
                let (one, zero) = (T::cst(1.0), T::cst(0.0));
                with_cmp!(cmp, C => if keep == [false; 2] {
                    for j in 0..k {
                        d[j] = C.select(x[j], y[j], a[j], b[j]);
                    }
                } else {
                    for j in 0..k {
                        d[j] = C.select(x[j], y[j], a[j], b[j]);
                        p0[j] = C.select(x[j], y[j], one, zero);
                        p1[j] = C.select(x[j], y[j], zero, one);
                    }
                })
            }
        }
    }
}

/// `p * g`, strong (see [`Sweep::strong_mul`]) unless the partial is known to be finite.
#[inline(always)]
fn product<T: Sweep>(p: T, g: T, strong: bool) -> T {
    if strong {
        T::strong_mul(p, g)
    } else {
        p * g
    }
}

/// Passes `p * g` to an argument's adjoint `x` as the plan says; `p(j)` is the partial
/// of group `j` (stored, constant or recomputed), and `strong` is false when it is known
/// to be finite (see [`Program::finite_partials`]).
#[inline(always)]
fn contribute<T: Sweep>(x: &mut [T], p: impl Fn(usize) -> T, g: &[T], how: Adjoint, strong: bool) {
    // `strong` is tested outside the loops, so each loop is straight-line lane code.
    match (how, strong) {
        (Adjoint::Skip, _) => {}
        (Adjoint::Set, true) => {
            for j in 0..x.len() {
                x[j] = product(p(j), g[j], true);
            }
        }
        (Adjoint::Set, false) => {
            for j in 0..x.len() {
                x[j] = product(p(j), g[j], false);
            }
        }
        (Adjoint::Add, true) => {
            for j in 0..x.len() {
                x[j] = x[j] + product(p(j), g[j], true);
            }
        }
        (Adjoint::Add, false) => {
            for j in 0..x.len() {
                x[j] = x[j] + product(p(j), g[j], false);
            }
        }
    }
}

/// Runs `$body` with `$q0`, `$q1` bound to closures `j -> partial of lane group j` for
/// instruction `$i`: constants (see [`Program::fixed_partials`]), partials recomputed
/// from the argument values in `$slots` (see [`Program::recomputed`]), or stored ones.
macro_rules! with_partials {
    ($p:expr, $i:expr, $parts:expr, $slots:expr, $k:expr, |$q0:ident, $q1:ident| $body:expr) => {{
        let (i, k) = ($i, $k);
        let ins = &$p.instrs()[i];
        let recomputed = $p.recomputed()[i] && !matches!(ins, Instr::Unary { .. });
        if let Some([c0, c1]) = $p.fixed_partials()[i] {
            let (c0, c1) = (T::cst(c0), T::cst(c1));
            let ($q0, $q1) = (|_: usize| c0, |_: usize| c1);
            $body
        } else if recomputed {
            let group = |s: u32| &$slots[s as usize * k..s as usize * k + k];
            match *ins {
                Instr::Binary { op, a, b, .. } => {
                    let (xv, yv) = (group(a), group(b));
                    with_binary!(op, OP => {
                        let $q0 = |j: usize| OP.rule(xv[j], yv[j]).1;
                        let $q1 = |j: usize| OP.rule(xv[j], yv[j]).2;
                        $body
                    })
                }
                Instr::Select { cmp, x, y, .. } => {
                    let (xv, yv) = (group(x), group(y));
                    let (one, zero) = (T::cst(1.0), T::cst(0.0));
                    with_cmp!(cmp, C => {
                        let $q0 = |j: usize| C.select(xv[j], yv[j], one, zero);
                        let $q1 = |j: usize| C.select(xv[j], yv[j], zero, one);
                        $body
                    })
                }
                Instr::Unary { .. } => unreachable!("unary partials are never recomputed"),
            }
        } else {
            let (s0, s1) = $parts[2 * i * k..(2 * i + 2) * k].split_at(k);
            let ($q0, $q1) = (|j: usize| s0[j], |j: usize| s1[j]);
            $body
        }
    }};
}

/// One reverse sweep. `slots` holds the values a [`partials`] pass left, `parts` its
/// stored partials, and `adj` the output seeds in the output slots (nothing else needs
/// clearing: see [`Adjoint`]); afterwards the slot of each input with
/// [`Program::has_gradient`] holds its adjoint. With `strong` false every product is
/// IEEE's: the fast path of the batch driver, exact wherever no gradient is NaN (see the
/// module documentation).
#[inline(always)]
pub fn reverse<T: Sweep>(
    p: &Program,
    parts: &[T],
    slots: &[T],
    adj: &mut [T],
    k: usize,
    strong: bool,
) {
    for (i, (ins, plan)) in p.instrs().iter().zip(p.plan()).enumerate().rev() {
        if *plan == [Adjoint::Skip; 2] {
            continue;
        }
        let (d, a, b) = ins.sweep_slots();
        let [d, a, b] = [d, a, b].map(|s| s as usize * k);
        let range = |s: usize| s..s + k;
        let strong = p.finite_partials()[i].map(|f| strong && !f);
        with_partials!(p, i, parts, slots, k, |q0, q1| {
            if a != b {
                let [g, x, y] = adj
                    .get_disjoint_mut([range(d), range(a), range(b)])
                    .expect("aliased slots");
                contribute(x, q0, g, plan[0], strong[0]);
                contribute(y, q1, g, plan[1], strong[1]);
            } else {
                // x * x, or a unary op (whose second plan entry is Skip).
                let [g, x] = adj
                    .get_disjoint_mut([range(d), range(a)])
                    .expect("aliased slots");
                contribute(x, q0, g, plan[0], strong[0]);
                contribute(x, q1, g, plan[1], strong[1]);
            }
        })
    }
}

/// Whether any lane of `v[lo..hi]`, over `ranges`, is NaN: the batch driver's test for
/// re-running a block with strong products (see the module documentation). Their sum is
/// tested, in four chains that stay in vector registers (`inf + -inf` re-runs a block
/// that needed none, which changes no result); the chains must stay in registers: kept
/// in memory, the test cost as many instructions as the strong products it spares ("Strong
/// zero" in benches/README.md).
#[inline(always)]
pub fn any_nan(v: &[F64x4], ranges: &[(usize, usize)]) -> bool {
    let z = F64x4::default();
    let (mut a, mut b, mut c, mut d) = (z, z, z, z);
    for &(lo, hi) in ranges {
        let mut quads = v[lo..hi].chunks_exact(4);
        for q in &mut quads {
            a = a + q[0];
            b = b + q[1];
            c = c + q[2];
            d = d + q[3];
        }
        for x in quads.remainder() {
            a = a + *x;
        }
    }
    ((a + b) + (c + d)).0.iter().any(|x| x.is_nan())
}

/// One forward tangent sweep (values and partials as for [`reverse`]). `tan` must hold
/// the input tangents in the input slots; afterwards the output slots hold the output
/// tangents, every one written (a constant output's tangent is 0). Other constants (and
/// values no output depends on) have tangent 0 and are never read.
#[inline(always)]
pub fn tangents<T: Sweep>(p: &Program, parts: &[T], slots: &[T], tan: &mut [T], k: usize) {
    for &s in p.const_outputs() {
        tan[s as usize * k..(s as usize + 1) * k].fill(T::cst(0.0));
    }
    for (i, (ins, plan)) in p.instrs().iter().zip(p.plan()).enumerate() {
        let (dst, a, b) = ins.sweep_slots();
        let (d, [x, y]) = dst_and_args(tan, dst as usize * k, [a, b].map(|s| s as usize * k), k);
        let on = plan.map(|m| m != Adjoint::Skip);
        if let (Instr::Select { .. }, [true, _] | [_, true]) = (ins, on) {
            // The tangent of a select is the chosen side's, not 1 * t_a + 0 * t_b: the
            // unchosen side's tangent may be NaN (sqrt at -1 in `where(x > 0, sqrt(x),
            // 0)`), and strong zero only covers a zero tangent. Its partial with respect
            // to `a` is exactly 1 or 0 and says which side was chosen.
            let (zero, one) = (T::cst(0.0), T::cst(1.0));
            with_partials!(p, i, parts, slots, k, |q0, _q1| for j in 0..k {
                let ta = if on[0] { x[j] } else { zero };
                let tb = if on[1] { y[j] } else { zero };
                d[j] = T::sel_eq(q0(j), one, ta, tb);
            })
        } else {
            let strong = p.finite_partials()[i].map(|f| !f);
            with_partials!(p, i, parts, slots, k, |q0, q1| tangent(
                d, x, y, q0, q1, on, strong
            ))
        }
    }
}

/// `d = p0 * x + p1 * y` (strong products where `strong` says, as in [`contribute`]),
/// leaving out the terms that are off.
#[inline(always)]
fn tangent<T: Sweep>(
    d: &mut [T],
    x: &[T],
    y: &[T],
    p0: impl Fn(usize) -> T,
    p1: impl Fn(usize) -> T,
    on: [bool; 2],
    strong: [bool; 2],
) {
    let [s0, s1] = strong;
    match on {
        [true, true] => {
            for j in 0..d.len() {
                d[j] = product(p0(j), x[j], s0) + product(p1(j), y[j], s1);
            }
        }
        [true, false] => {
            for j in 0..d.len() {
                d[j] = product(p0(j), x[j], s0);
            }
        }
        [false, true] => {
            for j in 0..d.len() {
                d[j] = product(p1(j), y[j], s1);
            }
        }
        [false, false] => d.fill(T::cst(0.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::graph::Graph;
    use crate::op::{Binary, Unary};

    /// Griewank's example, built by hand.
    fn seed() -> [Program; 2] {
        let mut g = Graph::new(2);
        let (x1, x2) = (g.input(0), g.input(1));
        let a = g.binary(Binary::Div, x1, x2);
        let b = g.unary(Unary::Exp, x2);
        let s = g.unary(Unary::Sin, a);
        let l = g.binary(Binary::Add, s, a);
        let l = g.binary(Binary::Sub, l, b);
        let r = g.binary(Binary::Sub, a, b);
        let y = g.binary(Binary::Mul, l, r);
        [Program::new(&g, &[y]), Program::for_gradients(&g, &[y])]
    }

    #[test]
    fn reverse_and_tangents_give_the_seed_gradient() {
        for p in seed() {
            check_seed(p);
        }
    }

    fn check_seed(p: Program) {
        let k = 1;
        let mut slots = vec![0.0; p.n_slots()];
        let mut parts = vec![0.0; 2 * p.instrs().len()];
        load_consts(&p, &mut slots, k);
        for (i, v) in [1.5, 0.5].into_iter().enumerate() {
            slots[p.inputs()[i].unwrap() as usize] = v;
        }
        partials(&p, &mut slots, &mut parts, k);
        assert!((slots[p.outputs()[0] as usize] - 2.016647).abs() < 1e-6);
        let mut adj = vec![f64::NAN; p.n_slots()]; // stale contents must not matter
        adj[p.outputs()[0] as usize] = 1.0;
        reverse(&p, &parts, &slots, &mut adj, k, true);
        let g: Vec<f64> = (0..2)
            .map(|i| adj[p.inputs()[i].unwrap() as usize])
            .collect();
        assert!((g[0] - 3.011843327673907).abs() < 1e-13);
        assert!((g[1] + 13.723961509314076).abs() < 1e-12);
        for (i, gi) in g.iter().enumerate() {
            let mut tan = vec![f64::NAN; p.n_slots()];
            tan[p.inputs()[0].unwrap() as usize] = (i == 0) as u8 as f64;
            tan[p.inputs()[1].unwrap() as usize] = (i == 1) as u8 as f64;
            tangents(&p, &parts, &slots, &mut tan, k);
            // Same partials, other summation order: equal up to rounding.
            assert!((tan[p.outputs()[0] as usize] - gi).abs() <= 4.0 * f64::EPSILON * gi.abs());
        }
    }
}
