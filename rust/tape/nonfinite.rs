//! Where a non-finite adjoint was born on the eager tape: the scan behind `wg.debug_nans`
//! for `backward()`. It runs only when the check is on, after the ordinary sweep, so the
//! sweep itself stays as it is.

use crate::tape::arena::{Arena, Op, SINK};

/// A contribution `adjoint * partial` of node `node` to its argument `arg` (0 or 1) that
/// is not finite although the adjoint is: the first such, walking backwards as the sweep
/// does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BadAdjoint {
    pub node: u32,
    pub op: Op,
    pub arg: usize,
    pub adjoint: f64,
    pub partial: f64,
}

/// The first node (from `out` down) whose finite adjoint, through one of its partials,
/// makes a non-finite contribution, given the adjoints `adj` that [`Arena::sweep`] left.
/// Strong zero: a zero adjoint contributes nothing, whatever the partial, so it is never
/// blamed. `None` when every contribution is finite (an adjoint can still overflow as a
/// sum of finite ones: see [`first_nonfinite`]).
///
/// ```
/// use wengert::tape::arena::{Arena, Op};
/// use wengert::tape::nonfinite::first_bad_adjoint;
/// use wengert::op::Unary;
/// let mut a = Arena::new();
/// let x = a.leaf();
/// let y = a.unary(Op::Unary(Unary::Sqrt), x, f64::INFINITY); // sqrt at 0
/// let mut adj = Vec::new();
/// a.sweep(y, &mut adj);
/// let bad = first_bad_adjoint(&a, &adj, y).unwrap();
/// assert_eq!((bad.node, bad.arg, bad.partial), (y, 0, f64::INFINITY));
/// ```
pub fn first_bad_adjoint(arena: &Arena, adj: &[f64], out: u32) -> Option<BadAdjoint> {
    let top = (out as usize).min(adj.len().saturating_sub(1));
    for i in (1..=top).rev() {
        let g = adj[i];
        if g == 0.0 || !g.is_finite() {
            continue;
        }
        let (op, args, partials) = arena.node(i as u32);
        if op == Op::Leaf {
            continue;
        }
        for k in 0..2 {
            if args[k] == SINK && k == 1 {
                continue;
            }
            if !(g * partials[k]).is_finite() {
                return Some(BadAdjoint {
                    node: i as u32,
                    op,
                    arg: k,
                    adjoint: g,
                    partial: partials[k],
                });
            }
        }
    }
    None
}

/// The highest node at or below `out` whose adjoint is not finite.
pub fn first_nonfinite(adj: &[f64], out: u32) -> Option<u32> {
    let top = (out as usize).min(adj.len().saturating_sub(1));
    (1..=top)
        .rev()
        .find(|&i| !adj[i].is_finite())
        .map(|i| i as u32)
}
