//! The passes of a [`Program`] over one block of rows.
//!
//! A block holds `k` groups of lanes (`T` is a lane type such as [`crate::lanes::F64x4`],
//! or `f64`); slot `s` of group `j` lives at `s * k + j`. Each pass walks the instructions
//! once and, per instruction, loops over the `k` groups with the op fixed, so the op's
//! dispatch is paid once per block and the inner loop is straight-line lane code.
//!
//! - [`values`]: outputs only.
//! - [`partials`]: values plus each instruction's local partials (two per instruction).
//! - [`reverse`]: adjoints from stored partials (one seeded output row of a VJP).
//! - [`tangents`]: tangents from stored partials (one direction of a JVP).

use crate::graph::Cmp;
use crate::op::{Binary, Unary};
use crate::program::{Instr, Program};
use crate::real::Real;

/// Runs `$body` with `$c` bound to a constant equal to `$op`, one arm per variant and no
/// catch-all: inside each arm the rule's own `match` folds away, and a new op does not
/// compile until it is listed here.
macro_rules! with_unary {
    ($op:expr, $c:ident => $body:expr) => {
        with_unary!(@arms $op, $c, $body; Neg Sin Cos Tan Asin Acos Atan Sinh Cosh Tanh Asinh
            Acosh Atanh Exp Exp2 Expm1 Log Log2 Log10 Log1p Sqrt Cbrt Abs Sigmoid Relu
            Softplus Erf)
    };
    (@arms $op:expr, $c:ident, $body:expr; $($v:ident)*) => {
        match $op {
            $(Unary::$v => {
                const $c: Unary = Unary::$v;
                $body
            })*
        }
    };
}

/// The binary counterpart of `with_unary!`.
macro_rules! with_binary {
    ($op:expr, $c:ident => $body:expr) => {
        with_binary!(@arms $op, $c, $body; Add Sub Mul Div Pow Atan2 Hypot Max Min)
    };
    (@arms $op:expr, $c:ident, $body:expr; $($v:ident)*) => {
        match $op {
            $(Binary::$v => {
                const $c: Binary = Binary::$v;
                $body
            })*
        }
    };
}

/// The comparison counterpart of `with_unary!`.
macro_rules! with_cmp {
    ($cmp:expr, $c:ident => $body:expr) => {
        match $cmp {
            Cmp::Lt => {
                const $c: Cmp = Cmp::Lt;
                $body
            }
            Cmp::Le => {
                const $c: Cmp = Cmp::Le;
                $body
            }
            Cmp::Gt => {
                const $c: Cmp = Cmp::Gt;
                $body
            }
            Cmp::Ge => {
                const $c: Cmp = Cmp::Ge;
                $body
            }
            Cmp::Eq => {
                const $c: Cmp = Cmp::Eq;
                $body
            }
            Cmp::Ne => {
                const $c: Cmp = Cmp::Ne;
                $body
            }
        }
    };
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
                let (d, a) = (dst as usize * k, a as usize * k);
                with_unary!(op, OP => for j in 0..k {
                    slots[d + j] = OP.rule(slots[a + j]).0;
                })
            }
            Instr::Binary { op, dst, a, b } => {
                let (d, a, b) = (dst as usize * k, a as usize * k, b as usize * k);
                with_binary!(op, OP => for j in 0..k {
                    slots[d + j] = OP.rule(slots[a + j], slots[b + j]).0;
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
                let [d, x, y, a, b] = [dst, x, y, a, b].map(|s| s as usize * k);
                with_cmp!(cmp, C => for j in 0..k {
                    slots[d + j] = C.select(slots[x + j], slots[y + j], slots[a + j], slots[b + j]);
                })
            }
        }
    }
}

/// Like [`values`], and stores instruction `i`'s partials with respect to its two
/// differentiable arguments at `parts[(2i) * k + j]` and `parts[(2i + 1) * k + j]`.
#[inline(always)]
pub fn partials<T: Real>(p: &Program, slots: &mut [T], parts: &mut [T], k: usize) {
    for (i, ins) in p.instrs().iter().enumerate() {
        let (p0, p1) = (2 * i * k, (2 * i + 1) * k);
        match *ins {
            Instr::Unary { op, dst, a } => {
                let (d, a) = (dst as usize * k, a as usize * k);
                with_unary!(op, OP => for j in 0..k {
                    let (v, da) = OP.rule(slots[a + j]);
                    slots[d + j] = v;
                    parts[p0 + j] = da;
                })
            }
            Instr::Binary { op, dst, a, b } => {
                let (d, a, b) = (dst as usize * k, a as usize * k, b as usize * k);
                with_binary!(op, OP => for j in 0..k {
                    let (v, da, db) = OP.rule(slots[a + j], slots[b + j]);
                    slots[d + j] = v;
                    parts[p0 + j] = da;
                    parts[p1 + j] = db;
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
                let [d, x, y, a, b] = [dst, x, y, a, b].map(|s| s as usize * k);
                let (one, zero) = (T::cst(1.0), T::cst(0.0));
                with_cmp!(cmp, C => for j in 0..k {
                    let (xv, yv) = (slots[x + j], slots[y + j]);
                    slots[d + j] = C.select(xv, yv, slots[a + j], slots[b + j]);
                    parts[p0 + j] = C.select(xv, yv, one, zero);
                    parts[p1 + j] = C.select(xv, yv, zero, one);
                })
            }
        }
    }
}

/// One reverse sweep over stored partials. `adj` must hold the output seeds in the output
/// slots and zeros elsewhere; afterwards each input's slot holds its adjoint.
#[inline(always)]
pub fn reverse<T: Real>(p: &Program, parts: &[T], adj: &mut [T], k: usize) {
    let zero = T::cst(0.0);
    for (i, ins) in p.instrs().iter().enumerate().rev() {
        let (p0, p1) = (2 * i * k, (2 * i + 1) * k);
        match *ins {
            Instr::Unary { dst, a, .. } => {
                let (d, a) = (dst as usize * k, a as usize * k);
                for j in 0..k {
                    let g = adj[d + j];
                    // The slot next holds an earlier value's adjoint, which starts at 0.
                    adj[d + j] = zero;
                    adj[a + j] = adj[a + j] + parts[p0 + j] * g;
                }
            }
            Instr::Binary { dst, a, b, .. } | Instr::Select { dst, a, b, .. } => {
                let (d, a, b) = (dst as usize * k, a as usize * k, b as usize * k);
                for j in 0..k {
                    let g = adj[d + j];
                    adj[d + j] = zero;
                    adj[a + j] = adj[a + j] + parts[p0 + j] * g;
                    adj[b + j] = adj[b + j] + parts[p1 + j] * g;
                }
            }
        }
    }
}

/// One forward tangent sweep over stored partials. `tan` must hold the input tangents in
/// the input slots and zeros in the constant slots; afterwards the output slots hold the
/// output tangents.
#[inline(always)]
pub fn tangents<T: Real>(p: &Program, parts: &[T], tan: &mut [T], k: usize) {
    for (i, ins) in p.instrs().iter().enumerate() {
        let (p0, p1) = (2 * i * k, (2 * i + 1) * k);
        match *ins {
            Instr::Unary { dst, a, .. } => {
                let (d, a) = (dst as usize * k, a as usize * k);
                for j in 0..k {
                    tan[d + j] = parts[p0 + j] * tan[a + j];
                }
            }
            Instr::Binary { dst, a, b, .. } | Instr::Select { dst, a, b, .. } => {
                let (d, a, b) = (dst as usize * k, a as usize * k, b as usize * k);
                for j in 0..k {
                    tan[d + j] = parts[p0 + j] * tan[a + j] + parts[p1 + j] * tan[b + j];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Graph;

    /// Griewank's example, built by hand.
    fn seed() -> Program {
        let mut g = Graph::new(2);
        let (x1, x2) = (g.input(0), g.input(1));
        let a = g.binary(Binary::Div, x1, x2);
        let b = g.unary(Unary::Exp, x2);
        let s = g.unary(Unary::Sin, a);
        let l = g.binary(Binary::Add, s, a);
        let l = g.binary(Binary::Sub, l, b);
        let r = g.binary(Binary::Sub, a, b);
        let y = g.binary(Binary::Mul, l, r);
        Program::new(&g, &[y])
    }

    #[test]
    fn reverse_and_tangents_give_the_seed_gradient() {
        let p = seed();
        let k = 1;
        let mut slots = vec![0.0; p.n_slots()];
        let mut parts = vec![0.0; 2 * p.instrs().len()];
        load_consts(&p, &mut slots, k);
        for (i, v) in [1.5, 0.5].into_iter().enumerate() {
            slots[p.inputs()[i].unwrap() as usize] = v;
        }
        partials(&p, &mut slots, &mut parts, k);
        assert!((slots[p.outputs()[0] as usize] - 2.016647).abs() < 1e-6);
        let mut adj = vec![0.0; p.n_slots()];
        adj[p.outputs()[0] as usize] = 1.0;
        reverse(&p, &parts, &mut adj, k);
        let g: Vec<f64> = (0..2)
            .map(|i| adj[p.inputs()[i].unwrap() as usize])
            .collect();
        assert!((g[0] - 3.011843327673907).abs() < 1e-13);
        assert!((g[1] + 13.723961509314076).abs() < 1e-12);
        for (i, gi) in g.iter().enumerate() {
            let mut tan = vec![0.0; p.n_slots()];
            tan[p.inputs()[i].unwrap() as usize] = 1.0;
            tangents(&p, &parts, &mut tan, k);
            // Same partials, other summation order: equal up to rounding.
            assert!((tan[p.outputs()[0] as usize] - gi).abs() <= 4.0 * f64::EPSILON * gi.abs());
        }
    }
}
