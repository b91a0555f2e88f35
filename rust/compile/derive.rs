//! Derivatives as graphs: the forward (JVP) and reverse (VJP) sweeps of a traced graph,
//! written out as a new [`Graph`] rather than run.
//!
//! This is what makes transforms compose. A derivative graph is an ordinary graph, so it
//! can be evaluated on any numbers (floats, the eager tape's `Var`s, `Dual`s, the values
//! of an enclosing trace) and differentiated again, to any order. Every partial comes from
//! the one statement of each rule in [`crate::op`], evaluated on [`Traced`] values, so no
//! rule is restated here.
//!
//! **Strong zero.** A contribution `t * d` of a tangent (or adjoint) `t` through a partial
//! `d` adds nothing when `t` is exactly zero, whatever `d` is (the unchosen side of a
//! `where` never leaks NaN). Written as `t * sel(t == 0, finite(d), d)` rather than
//! `sel(t == 0, 0, t * d)`: both have the same value, but the first keeps the derivative
//! of the contribution with respect to whatever `t` depends on (`t' * d` where `t` passes
//! through zero), which the second would drop when differentiated again. `finite(d)` is
//! `d` where `d` is finite (`d - d == 0`), else 0: where `t` is zero and `d` is not finite, the second-order
//! term is zero, strong zero one order up.
//!
//! **Plain products** ([`Products::Plain`]) write `t * d` instead, for the batch engine's
//! derived programs ([`crate::hvp`]), which re-run the rows that came out NaN with the
//! strong graph, as batch gradients re-run their NaN blocks with strong products. That is
//! exact: every node of a plain graph either has the strong graph's value or is NaN. The
//! nodes that hold tangents or adjoints are products, sums and selects whose conditions
//! are values of `g` (the same in both graphs); a product or sum with a NaN argument is
//! NaN, and the strong product differs from the plain one only where the plain one is
//! `0 * inf` or `0 * nan`. So an output that is not NaN is the strong graph's, bit for
//! bit. The strong graph's `t == 0` and `d - d == 0` selects are four instructions per
//! contribution where the plain graph has one (`tests/hvp.rs`,
//! `plain_products_give_the_strong_programs_numbers_in_a_fraction_of_the_instructions`).

use crate::compile::graph::{Graph, Node};
use crate::compile::trace::{trace, Traced};
use crate::op::Cmp;
use crate::scalar::real::Real;

/// What to seed a sweep with, per input (forward) or per output (reverse).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Seed {
    /// A known constant (0 means nothing flows from here).
    Const(f64),
    /// A new input of the derivative graph, placed after the original inputs in seed
    /// order.
    Input,
}

/// How a derivative graph multiplies a tangent or adjoint into a partial (see the module
/// documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Products {
    /// `t * d`, but nothing where `t` is zero: the semantics every mode states.
    Strong,
    /// `t * d` as IEEE has it: exact wherever the result is not NaN, for callers that
    /// redo NaN results with [`Products::Strong`].
    Plain,
}

/// `t * d` under strong zero (or plainly, as `products` says), `None` when nothing flows.
#[allow(
    clippy::redundant_guards,
    reason = "`c == 0.0` says that -0.0 counts too, which a `0.0` pattern leaves implicit"
)]
fn contribution(t: Option<Traced>, d: Traced, products: Products) -> Option<Traced> {
    let t = t?;
    match t.constant() {
        Some(c) if c == 0.0 => return None,
        Some(_) => return Some(t * d),
        None => {}
    }
    if products == Products::Plain || d.constant().is_some_and(f64::is_finite) {
        return Some(t * d);
    }
    let zero = Traced::cst(0.0);
    // `d - d == 0` exactly when `d` is finite (inf - inf and nan - nan are nan): a
    // subtraction, where `|d| < inf` took an `abs` that native code calls out for (19%
    // of Rosenbrock-16's batch HVP).
    #[allow(clippy::eq_op)] // `d - d` is the finiteness test, not a zero
    let finite = Cmp::Eq.select(d - d, zero, d, zero);
    Some(t * Cmp::Eq.select(t, zero, finite, d))
}

fn add(a: Option<Traced>, b: Option<Traced>) -> Option<Traced> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The partials of node `n` with respect to its arguments, as traced values, next to its
/// value: `(value, [(argument, partial)])`. A select has no partials; its sweeps route
/// through the condition instead.
fn replay(n: &Node, vals: &[Traced], inputs: &[Traced]) -> (Traced, Vec<(u32, Traced)>) {
    match *n {
        Node::Input(i) => (inputs[i as usize], vec![]),
        Node::Const(c) => (Traced::cst(c), vec![]),
        Node::Unary(op, a) => {
            let (v, d) = op.rule(vals[a as usize]);
            // Derivative 0 (the steps, stop_gradient): no partial at all, so nothing
            // flows through, to any order, even from an infinite tangent or adjoint.
            if op.constant_partial() == Some(0.0) {
                (v, vec![])
            } else {
                (v, vec![(a, d)])
            }
        }
        Node::Binary(op, a, b) => {
            let (v, da, db) = op.rule(vals[a as usize], vals[b as usize]);
            (v, vec![(a, da), (b, db)])
        }
        Node::Select(cmp, [x, y, a, b]) => {
            let v = cmp.select(
                vals[x as usize],
                vals[y as usize],
                vals[a as usize],
                vals[b as usize],
            );
            (v, vec![])
        }
    }
}

/// Nodes that `outputs` depend on, as a mask over `g`'s nodes.
fn needed(g: &Graph, outputs: &[u32]) -> Vec<bool> {
    let mut keep = vec![false; g.len()];
    for &o in outputs {
        keep[o as usize] = true;
    }
    for i in (0..g.len()).rev() {
        if keep[i] {
            for a in g.nodes()[i].args() {
                keep[a as usize] = true;
            }
        }
    }
    keep
}

fn check_seeds(what: &str, seeds: &[Seed], want: usize) {
    assert_eq!(
        seeds.len(),
        want,
        "{what}: expected {want} seeds, got {}",
        seeds.len()
    );
}

/// The forward sweep of `g` as a graph: its inputs are `g`'s inputs followed by one tangent
/// input per [`Seed::Input`] in `seeds` (one seed per input of `g`); its outputs are
/// `outputs` followed by their tangents.
///
/// ```
/// use wengert::compile::derive::{jvp_graph, Seed};
/// use wengert::compile::graph::Graph;
/// use wengert::op::Unary;
/// let mut g = Graph::new(1);
/// let y = g.unary(Unary::Sin, 0);
/// let (d, outs) = jvp_graph(&g, &[y], &[Seed::Const(1.0)]);
/// let program = wengert::compile::program::Program::new(&d, &outs);
/// assert_eq!(program.eval(&[0.5]), vec![0.5_f64.sin(), 0.5_f64.cos()]);
/// ```
#[allow(
    clippy::redundant_guards,
    reason = "`c == 0.0` says that -0.0 counts too, which a `0.0` pattern leaves implicit"
)]
pub fn jvp_graph(g: &Graph, outputs: &[u32], seeds: &[Seed]) -> (Graph, Vec<u32>) {
    jvp_graph_many(g, outputs, std::slice::from_ref(&seeds.to_vec()))
}

/// Several forward sweeps of `g` in one graph, sharing its values: one per seed set in
/// `seed_sets` (each as for [`jvp_graph`], one seed per input of `g`). The tangent inputs
/// of all sets follow `g`'s inputs, set after set; the outputs are `outputs`, then their
/// tangents under the first set, then under the second, and so on. A tangent seeded with
/// `Seed::Const(0.0)` is structurally zero and costs nothing, so seeding unit vectors
/// gives the columns of a Jacobian with each column's sparsity folded in.
///
/// ```
/// use wengert::compile::derive::{jvp_graph_many, Seed};
/// use wengert::compile::graph::Graph;
/// use wengert::op::Binary;
/// let mut g = Graph::new(2);
/// let y = g.binary(Binary::Mul, 0, 1);
/// let unit = |i| (0..2).map(|j| Seed::Const((i == j) as u8 as f64)).collect::<Vec<_>>();
/// let (d, outs) = jvp_graph_many(&g, &[y], &[unit(0), unit(1)]);
/// let program = wengert::compile::program::Program::new(&d, &outs);
/// assert_eq!(program.eval(&[3.0, 4.0]), vec![12.0, 4.0, 3.0]);
/// ```
pub fn jvp_graph_many(g: &Graph, outputs: &[u32], seed_sets: &[Vec<Seed>]) -> (Graph, Vec<u32>) {
    jvp_graph_many_with(g, outputs, seed_sets, Products::Strong)
}

/// [`jvp_graph_many`] with the products `products` (strong, or plain for callers that
/// redo NaN results: see the module documentation).
pub fn jvp_graph_many_with(
    g: &Graph,
    outputs: &[u32],
    seed_sets: &[Vec<Seed>],
    products: Products,
) -> (Graph, Vec<u32>) {
    let n = g.n_inputs() as usize;
    for seeds in seed_sets {
        check_seeds("jvp_graph", seeds, n);
    }
    let extra: usize = seed_sets
        .iter()
        .map(|s| s.iter().filter(|s| **s == Seed::Input).count())
        .sum();
    let keep = needed(g, outputs);
    let (graph, outs) = trace((n + extra) as u32, |x| {
        let (inputs, tangent_inputs) = x.split_at(n);
        let mut next = tangent_inputs.iter();
        let zero = Traced::cst(0.0);
        let mut vals = Vec::with_capacity(g.len());
        for (i, node) in g.nodes().iter().enumerate() {
            vals.push(if keep[i] {
                replay(node, &vals, inputs).0
            } else {
                zero
            });
        }
        let mut out: Vec<Traced> = outputs.iter().map(|&o| vals[o as usize]).collect();
        for seeds in seed_sets {
            let seed: Vec<Option<Traced>> = seeds
                .iter()
                .map(|s| match *s {
                    Seed::Const(c) => (c != 0.0).then(|| Traced::cst(c)),
                    Seed::Input => next.next().copied(),
                })
                .collect();
            let mut tans: Vec<Option<Traced>> = Vec::with_capacity(g.len());
            for (i, node) in g.nodes().iter().enumerate() {
                if !keep[i] {
                    tans.push(None);
                    continue;
                }
                let t = match *node {
                    Node::Input(k) => seed[k as usize],
                    Node::Select(cmp, [cx, cy, a, b]) => {
                        let (ta, tb) = (tans[a as usize], tans[b as usize]);
                        if ta.is_none() && tb.is_none() {
                            None
                        } else {
                            let (cx, cy) = (vals[cx as usize], vals[cy as usize]);
                            Some(cmp.select(cx, cy, ta.unwrap_or(zero), tb.unwrap_or(zero)))
                        }
                    }
                    // Only nodes a tangent reaches need their partials (replayed: the
                    // values are shared, the graph already holds them).
                    _ if node.args().iter().all(|&a| tans[a as usize].is_none()) => None,
                    _ => replay(node, &vals, inputs)
                        .1
                        .iter()
                        .fold(None, |acc, &(a, d)| {
                            add(acc, contribution(tans[a as usize], d, products))
                        }),
                };
                tans.push(t);
            }
            out.extend(outputs.iter().map(|&o| tans[o as usize].unwrap_or(zero)));
        }
        out
    });
    (graph, outs)
}

/// The reverse sweep of `g` as a graph: its inputs are `g`'s inputs followed by one
/// cotangent input per [`Seed::Input`] in `seeds` (one seed per output); its outputs are
/// `outputs` followed by the adjoint of each of `g`'s inputs.
///
/// ```
/// use wengert::compile::derive::{vjp_graph, Seed};
/// use wengert::compile::graph::Graph;
/// use wengert::op::Binary;
/// let mut g = Graph::new(2);
/// let y = g.binary(Binary::Mul, 0, 1);
/// let (d, outs) = vjp_graph(&g, &[y], &[Seed::Const(1.0)]);
/// let program = wengert::compile::program::Program::new(&d, &outs);
/// assert_eq!(program.eval(&[3.0, 4.0]), vec![12.0, 4.0, 3.0]);
/// ```
pub fn vjp_graph(g: &Graph, outputs: &[u32], seeds: &[Seed]) -> (Graph, Vec<u32>) {
    vjp_graph_with(g, outputs, seeds, Products::Strong)
}

/// [`vjp_graph`] with the products `products`, as [`jvp_graph_many_with`].
#[allow(
    clippy::redundant_guards,
    reason = "`c == 0.0` says that -0.0 counts too, which a `0.0` pattern leaves implicit"
)]
pub fn vjp_graph_with(
    g: &Graph,
    outputs: &[u32],
    seeds: &[Seed],
    products: Products,
) -> (Graph, Vec<u32>) {
    let n = g.n_inputs() as usize;
    check_seeds("vjp_graph", seeds, outputs.len());
    let extra = seeds.iter().filter(|s| **s == Seed::Input).count();
    let keep = needed(g, outputs);
    let (graph, outs) = trace((n + extra) as u32, |x| {
        let (inputs, cotangent_inputs) = x.split_at(n);
        let zero = Traced::cst(0.0);
        let mut vals = Vec::with_capacity(g.len());
        let mut parts = Vec::with_capacity(g.len());
        for (i, node) in g.nodes().iter().enumerate() {
            if !keep[i] {
                vals.push(zero);
                parts.push(vec![]);
                continue;
            }
            let (v, p) = replay(node, &vals, inputs);
            vals.push(v);
            parts.push(p);
        }
        let mut adj: Vec<Option<Traced>> = vec![None; g.len()];
        let mut next = cotangent_inputs.iter();
        for (&o, s) in outputs.iter().zip(seeds) {
            let ct = match *s {
                Seed::Const(c) if c == 0.0 => None,
                Seed::Const(c) => Some(Traced::cst(c)),
                Seed::Input => next.next().copied(),
            };
            adj[o as usize] = add(adj[o as usize], ct);
        }
        for i in (0..g.len()).rev() {
            let Some(a_i) = adj[i] else { continue };
            match g.nodes()[i] {
                Node::Select(cmp, [cx, cy, a, b]) => {
                    let (cx, cy) = (vals[cx as usize], vals[cy as usize]);
                    let to_a = cmp.select(cx, cy, a_i, zero);
                    let to_b = cmp.select(cx, cy, zero, a_i);
                    adj[a as usize] = add(adj[a as usize], Some(to_a));
                    adj[b as usize] = add(adj[b as usize], Some(to_b));
                }
                _ => {
                    for &(a, d) in &parts[i] {
                        adj[a as usize] =
                            add(adj[a as usize], contribution(Some(a_i), d, products));
                    }
                }
            }
        }
        let mut out: Vec<Traced> = outputs.iter().map(|&o| vals[o as usize]).collect();
        out.extend((0..n).map(|k| adj[k].unwrap_or(zero)));
        out
    });
    (graph, outs)
}
