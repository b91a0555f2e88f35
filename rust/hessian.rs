//! Exact Hessians of a compiled function, forward over reverse: the gradient program runs
//! on dual numbers seeded with one unit direction, and the tangents of the adjoints are
//! one Hessian column. `n` sweeps give the whole matrix: about `n` gradient evaluations.

use crate::batch::{Arg, BatchError};
use crate::compiled::Compiled;
use crate::dual::Dual;
use crate::kernel;
use crate::program::Program;

use rayon::prelude::*;

/// Value, gradient and Hessian of a scalar program at one point `x`.
///
/// ```
/// use wengert::compiled::Compiled;
/// use wengert::hessian::hessian_at;
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
    let zero = Dual::constant(0.0);
    let mut slots = vec![zero; p.n_slots()];
    let mut parts = vec![zero; 2 * p.instrs().len()];
    let mut adj = vec![zero; p.n_slots()];
    let (mut value, mut grad, mut hess) = (0.0, vec![0.0; n], vec![0.0; n * n]);
    kernel::load_consts(p, &mut slots, 1);
    for col in 0..n {
        for (i, s) in p.inputs().iter().enumerate() {
            if let Some(s) = *s {
                slots[s as usize] = Dual::new(x[i], if i == col { 1.0 } else { 0.0 });
            }
        }
        kernel::partials(p, &mut slots, &mut parts, 1);
        let out = p.outputs()[0] as usize;
        value = slots[out].re;
        adj[out] = Dual::constant(1.0);
        kernel::reverse(p, &parts, &slots, &mut adj, 1);
        for (i, s) in p.inputs().iter().enumerate() {
            // Inputs nothing depends on differentiably keep gradient and Hessian 0.
            if let Some(s) = s.filter(|_| p.has_gradient(i)) {
                let a = adj[s as usize];
                grad[i] = a.re;
                hess[i * n + col] = a.eps;
            }
        }
    }
    (value, grad, hess)
}

impl Compiled {
    /// Per row: the value, the gradient (`N` numbers) and the Hessian (`N x N`, row-major)
    /// with respect to all `N` inputs, for a scalar output. Rows are split across the
    /// thread pool.
    pub fn hessian(
        &self,
        args: &[Arg],
        n: usize,
    ) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>), BatchError> {
        let p = self.gradient_program();
        if p.n_outputs() != 1 {
            return Err(BatchError::Invalid(format!(
                "hessian needs a scalar output, this function has {}; use jacobian",
                p.n_outputs()
            )));
        }
        let sizes = self.arg_sizes();
        crate::batch::check_args(&sizes, args, n)?;
        let m = p.n_inputs();
        let rows: Vec<(f64, Vec<f64>, Vec<f64>)> = self.pool_install(|| {
            (0..n)
                .into_par_iter()
                .map(|r| {
                    let mut x = Vec::with_capacity(m);
                    for a in args {
                        let at = if a.per_row { r * a.size } else { 0 };
                        x.extend_from_slice(&a.data[at..at + a.size]);
                    }
                    hessian_at(p, &x)
                })
                .collect()
        });
        let (mut v, mut g, mut h) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n * m),
            Vec::with_capacity(n * m * m),
        );
        for (rv, rg, rh) in rows {
            v.push(rv);
            g.extend(rg);
            h.extend(rh);
        }
        Ok((v, g, h))
    }
}
