//! Guards: Python control flow in compiled functions, one branch pattern per trace.
//!
//! While `wg.compile` traces a function on the numbers of one row (the witness), the truth
//! value of a traced comparison is the outcome on that row; it is recorded as a [`Guard`]
//! and Python goes on down that branch. The trace is then exact for every row whose
//! guards come out the same, and [`flag`] records the check as one more (value-only)
//! output: 1 where every guard holds as recorded, 0 elsewhere. Rows that fail are
//! evaluated by a trace of their own pattern (see `wengert._compile`).
//!
//! The witness values are computed here node by node with the batch engine's own lane
//! arithmetic ([`F64x4`], the interpreter's number type, which native code matches bit for
//! bit), so the outcome seen while tracing is the one the engine computes for that row:
//! a row always passes the guards of the trace made from it.

use crate::compile::graph::{Graph, Node};
use crate::compile::program::{Instr, Program};
use crate::op::{Binary, Cmp, Unary};
use crate::scalar::lanes::F64x4;

/// One recorded branch decision: `x cmp y` came out `outcome` on the witness row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Guard {
    pub cmp: Cmp,
    pub x: u32,
    pub y: u32,
    pub outcome: bool,
}

impl Guard {
    /// The guard on the witness values `vals` (one per graph node).
    pub fn seen(cmp: Cmp, x: u32, y: u32, vals: &[f64]) -> Guard {
        Guard {
            cmp,
            x,
            y,
            outcome: cmp.holds(vals[x as usize], vals[y as usize]),
        }
    }
}

/// The most branch decisions (truth values asked for) one trace may take. A `while` loop
/// that never ends on the witness row would otherwise trace forever; this is far
/// past any loop whose trace is worth compiling (each trip is unrolled into the program:
/// a hundred thousand trips make a program of at least as many instructions).
pub const MAX_DECISIONS: usize = 100_000;

/// The value the batch engine computes for `node` of a graph, given the values of the
/// earlier nodes (`vals`) and the witness inputs (`inputs`).
pub fn node_value(node: &Node, vals: &[f64], inputs: &[f64]) -> f64 {
    let v = |i: u32| F64x4::splat(vals[i as usize]);
    let lane = match *node {
        Node::Input(i) => return inputs[i as usize],
        Node::Const(c) => return c,
        Node::Unary(op, a) => op.rule(v(a)).0,
        Node::Binary(op, a, b) => op.rule(v(a), v(b)).0,
        Node::Select(cmp, [x, y, a, b]) => cmp.select(v(x), v(y), v(a), v(b)),
    };
    lane.0[0]
}

/// Extends `vals` with the witness values of the graph's nodes it does not cover yet.
pub fn extend_values(graph: &Graph, vals: &mut Vec<f64>, inputs: &[f64]) {
    for node in &graph.nodes()[vals.len()..] {
        let x = node_value(node, vals, inputs);
        vals.push(x);
    }
}

/// Records the check of `guards` into `graph`: a node that is 1 in a row where every
/// guard comes out as recorded and 0 where any does not (a chain of selects, one per
/// guard, so a row's check costs a comparison and a select per guard).
pub fn flag(graph: &mut Graph, guards: &[Guard]) -> u32 {
    let zero = graph.constant(0.0);
    let mut acc = graph.constant(1.0);
    for g in guards {
        acc = if g.outcome {
            graph.select(g.cmp, g.x, g.y, acc, zero)
        } else {
            graph.select(g.cmp, g.x, g.y, zero, acc)
        };
    }
    acc
}

/// A rough cost of one row of `p`, in units of an addition: calls (transcendentals,
/// divisions, roots, powers) count ten, as they take about ten times as long. Used to
/// tell whether checking a trace's guards costs little next to evaluating it.
pub fn cost(p: &Program) -> usize {
    p.instrs()
        .iter()
        .map(|ins| match ins {
            Instr::Unary { op, .. } => {
                if matches!(op, Unary::Neg | Unary::Abs | Unary::Relu) {
                    1
                } else {
                    10
                }
            }
            Instr::Binary { op, .. } => {
                if matches!(
                    op,
                    Binary::Add | Binary::Sub | Binary::Mul | Binary::Max | Binary::Min
                ) {
                    1
                } else {
                    10
                }
            }
            Instr::Select { .. } => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiled::Compiled;
    use crate::op::Unary;
    use crate::Real;

    #[test]
    fn the_witness_passes_its_own_guards_and_others_fail() {
        let mut g = Graph::new(1);
        let s = g.unary(Unary::Sin, 0);
        let inputs = [0.5];
        let mut vals = Vec::new();
        extend_values(&g, &mut vals, &inputs);
        assert_eq!(vals[s as usize], F64x4::splat(0.5).sin().0[0]);
        let c = g.constant(0.25);
        extend_values(&g, &mut vals, &inputs);
        let guard = Guard::seen(Cmp::Gt, s, c, &vals);
        assert!(guard.outcome);
        let f = flag(&mut g, &[guard]);
        let c = Compiled::new(&g, &[s, f], &[1]);
        let x = [0.5, -1.0, 0.2, 3.0];
        let v = c
            .values(
                &[crate::exec::Arg::rows(&x, 1)],
                4,
                crate::exec::Reduce::None,
            )
            .unwrap();
        let flags: Vec<f64> = v.chunks(2).map(|r| r[1]).collect();
        assert_eq!(flags, [1.0, 0.0, 0.0, 0.0]);
    }
}
