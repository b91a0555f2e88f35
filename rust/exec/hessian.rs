//! Exact Hessians of a compiled function, forward over reverse: the gradient program runs
//! on dual numbers seeded with one unit direction, and the tangents of the adjoints are
//! one Hessian column. `n` sweeps give the whole matrix: about `n` gradient evaluations.

use crate::compile::program::Program;
use crate::exec::check::check_args;
use crate::exec::interp;
use crate::exec::{Arg, BatchError};
use crate::scalar::dual::Dual;

use rayon::prelude::*;

/// Value, gradient and Hessian of a scalar program at one point `x`.
///
/// ```
/// use wengert::compiled::Compiled;
/// use wengert::exec::hessian::hessian_at;
/// use wengert::Real;
/// // f(x, y) = x^2 y + sin(y): H = [[2y, 2x], [2x, -sin y]].
/// let c = Compiled::trace(&[2], |v| vec![v[0] * v[0] * v[1] + v[1].sin()]);
/// let (_, g, h) = hessian_at(c.gradient_program(), &[3.0, 0.5]);
/// assert_eq!(g, vec![3.0, 9.0 + 0.5_f64.cos()]);
/// assert_eq!(h, vec![1.0, 6.0, 6.0, -(0.5_f64.sin())]);
/// ```
pub fn hessian_at(p: &Program, x: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
    let n = x.len();
    assert_eq!(n, p.n_inputs(), "expected {} inputs", p.n_inputs());
    assert_eq!(p.n_outputs(), 1, "a Hessian needs a scalar output");
    let cols: Vec<usize> = (0..n).collect();
    let (mut grad, mut hess) = (vec![0.0; n], vec![0.0; n * n]);
    let value = Scratch::new(p).block(p, x, &cols, &mut grad, &mut hess);
    (value, grad, hess)
}

/// One row's dual state, reused across the rows a thread computes.
struct Scratch {
    slots: Vec<Dual>,
    parts: Vec<Dual>,
    adj: Vec<Dual>,
}

impl Scratch {
    fn new(p: &Program) -> Self {
        let zero = Dual::constant(0.0);
        let mut slots = vec![zero; p.n_slots()];
        interp::load_consts(p, &mut slots, 1);
        Scratch {
            slots,
            parts: vec![zero; 2 * p.instrs().len()],
            adj: vec![zero; p.n_slots()],
        }
    }

    /// The value at `x`, the gradient entries of the inputs `cols` into `grad` and the
    /// `cols x cols` block of the Hessian into `hess` (row-major): one dual sweep per
    /// entry of `cols`, whatever the number of inputs.
    fn block(
        &mut self,
        p: &Program,
        x: &[f64],
        cols: &[usize],
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        let k = cols.len();
        debug_assert!(grad.len() == k && hess.len() == k * k);
        let Scratch { slots, parts, adj } = self;
        let out = p.outputs()[0] as usize;
        // Every entry is written below, gradients and Hessians of inputs nothing depends
        // on differentiably as 0: the buffers may hold anything.
        grad.fill(0.0);
        hess.fill(0.0);
        let seed = |slots: &mut [Dual], col: Option<usize>| {
            for (i, s) in p.inputs().iter().enumerate() {
                if let Some(s) = *s {
                    let t = if Some(i) == col { 1.0 } else { 0.0 };
                    slots[s as usize] = Dual::new(x[i], t);
                }
            }
        };
        if k == 0 {
            seed(slots, None);
            interp::values(p, slots, 1);
            return slots[out].re;
        }
        let mut value = 0.0;
        for (c, &col) in cols.iter().enumerate() {
            seed(slots, Some(col));
            interp::partials(p, slots, parts, 1);
            value = slots[out].re;
            adj[out] = Dual::constant(1.0);
            interp::reverse(p, parts, slots, adj, 1, true);
            for (r, &i) in cols.iter().enumerate() {
                if let Some(s) = p.inputs()[i].filter(|_| p.has_gradient(i)) {
                    let a = adj[s as usize];
                    grad[r] = a.re;
                    hess[r * k + c] = a.eps;
                }
            }
        }
        value
    }
}

/// Per-row values, gradients and Hessians (or blocks of them), row-major, of
/// [`hessian_wrt`].
pub type Hessians = (Vec<f64>, Vec<f64>, Vec<f64>);

/// Elements of a Hessian result past which [`hessian_wrt`] refuses before
/// allocating: 2^34 numbers (128 GiB), beyond any machine this runs on, yet far from
/// overflowing a byte count.
const MAX_ELEMENTS: usize = 1 << 34;

/// Per row: the value, the gradient entries and the Hessian block (row-major) of the
/// program inputs (of a gradient program `p`, for arguments of sizes `sizes`) of the
/// arguments marked in `wrt`, for a scalar output; rows split across the current rayon
/// pool. See [`Compiled::hessian_wrt`](crate::compiled::Compiled::hessian_wrt).
pub fn hessian_wrt(
    p: &Program,
    sizes: &[usize],
    args: &[Arg],
    n: usize,
    wrt: &[bool],
) -> Result<Hessians, BatchError> {
    if p.n_outputs() != 1 {
        return Err(BatchError::Invalid(format!(
            "hessian needs a scalar output, this function has {}; use jacobian",
            p.n_outputs()
        )));
    }
    check_args(sizes, args, n)?;
    if wrt.len() != sizes.len() {
        return Err(BatchError::Invalid(format!(
            "wrt needs one flag per argument: {} arguments, {} flags",
            sizes.len(),
            wrt.len()
        )));
    }
    let mut cols = Vec::new();
    let mut first = 0;
    for (&size, &on) in sizes.iter().zip(wrt) {
        if on {
            cols.extend(first..first + size);
        }
        first += size;
    }
    let k = cols.len();
    let elements = k
        .checked_mul(k)
        .and_then(|kk| kk.checked_mul(n))
        .filter(|&e| e <= MAX_ELEMENTS);
    let Some(elements) = elements else {
        return Err(BatchError::Memory(format!(
            "hessian: {n} rows of a {k} x {k} block is {} bytes, more than can be \
             allocated; ask for fewer rows or a smaller wrt",
            (n as u128) * (k as u128) * (k as u128) * 8
        )));
    };
    let alloc = |len: usize| -> Result<Vec<f64>, BatchError> {
        let mut v = Vec::new();
        v.try_reserve_exact(len).map_err(|_| {
            BatchError::Memory(format!(
                "hessian: cannot allocate {} bytes ({n} rows of a {k} x {k} block)",
                len as u128 * 8
            ))
        })?;
        v.resize(len, 0.0);
        Ok(v)
    };
    let (mut v, mut g, mut h) = (alloc(n)?, alloc(n * k)?, alloc(elements)?);
    let m = p.n_inputs();
    let row = |r: usize, x: &mut Vec<f64>| {
        x.clear();
        for a in args {
            let at = if a.per_row { r * a.size } else { 0 };
            x.extend_from_slice(&a.data[at..at + a.size]);
        }
        debug_assert_eq!(x.len(), m);
    };
    // Rows in groups, so that zero-width gradient and Hessian rows (k = 0) still pair
    // up with their values.
    const ROWS: usize = 16;
    {
        let (gw, hw) = (ROWS * k, ROWS * k * k);
        let mut gs: Vec<&mut [f64]> = Vec::new();
        let mut hs: Vec<&mut [f64]> = Vec::new();
        let (mut gr, mut hr) = (g.as_mut_slice(), h.as_mut_slice());
        for vs in v.chunks(ROWS) {
            let (ga, gb) = std::mem::take(&mut gr).split_at_mut(gw.min(vs.len() * k));
            let (ha, hb) = std::mem::take(&mut hr).split_at_mut(hw.min(vs.len() * k * k));
            gs.push(ga);
            hs.push(ha);
            (gr, hr) = (gb, hb);
        }
        v.par_chunks_mut(ROWS)
            .zip(gs)
            .zip(hs)
            .enumerate()
            .for_each_init(
                || (Scratch::new(p), Vec::with_capacity(m)),
                |(scratch, x), (c, ((vs, gs), hs))| {
                    for (j, value) in vs.iter_mut().enumerate() {
                        row(c * ROWS + j, x);
                        *value = scratch.block(
                            p,
                            x,
                            &cols,
                            &mut gs[j * k..(j + 1) * k],
                            &mut hs[j * k * k..(j + 1) * k * k],
                        );
                    }
                },
            );
    }
    Ok((v, g, h))
}
