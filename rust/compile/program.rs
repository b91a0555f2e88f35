//! A compiled function: the optimised instruction list of a traced [`Graph`].
//!
//! Compiling keeps only what the outputs depend on (dead code goes), emits one instruction
//! per remaining operation in graph order (already topological), and gives every value a
//! *slot* by liveness: a slot is reused once the value in it has no later reader, so the
//! working set of a block of rows stays small. Constants keep their slots for the whole
//! run; an instruction's destination never shares a slot with its own arguments, which is
//! what lets the reverse sweep reuse the same slots for adjoints (a value's adjoint is live
//! exactly while the value was, walked backwards).

use crate::compile::graph::{Graph, Node};
use crate::op::{Binary, Cmp, Unary};

/// One instruction; operands are slot numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Instr {
    Unary {
        op: Unary,
        dst: u32,
        a: u32,
    },
    Binary {
        op: Binary,
        dst: u32,
        a: u32,
        b: u32,
    },
    /// `dst = if x cmp y { a } else { b }`; differentiable in `a` and `b` only.
    Select {
        cmp: Cmp,
        dst: u32,
        x: u32,
        y: u32,
        a: u32,
        b: u32,
    },
}

impl Instr {
    /// The destination slot.
    pub fn dst(&self) -> u32 {
        match *self {
            Instr::Unary { dst, .. } | Instr::Binary { dst, .. } | Instr::Select { dst, .. } => dst,
        }
    }

    /// The destination and the two differentiable arguments (a unary op's twice): the
    /// slots a reverse or tangent sweep connects.
    pub fn sweep_slots(&self) -> (u32, u32, u32) {
        match *self {
            Instr::Unary { dst, a, .. } => (dst, a, a),
            Instr::Binary { dst, a, b, .. } | Instr::Select { dst, a, b, .. } => (dst, a, b),
        }
    }
}

/// An optimised, slot-allocated instruction list with `n_inputs` scalar inputs and
/// `outputs.len()` scalar outputs.
///
/// ```
/// use wengert::compile::graph::Graph;
/// use wengert::op::{Binary, Unary};
/// use wengert::compile::program::Program;
/// let mut g = Graph::new(2);
/// let (x, y) = (g.input(0), g.input(1));
/// let s = g.unary(Unary::Sin, x);
/// let _dead = g.unary(Unary::Exp, y); // nothing reads it: not compiled
/// let out = g.binary(Binary::Mul, s, y);
/// let p = Program::new(&g, &[out]);
/// assert_eq!(p.instrs().len(), 2);
/// assert_eq!(p.eval(&[1.0, 2.0]), vec![2.0 * 1.0_f64.sin()]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    n_slots: u32,
    /// The slot of each input, `None` when no output depends on it.
    inputs: Vec<Option<u32>>,
    /// Constants and their (permanent) slots.
    consts: Vec<(u32, f64)>,
    instrs: Vec<Instr>,
    /// The slot of each output.
    outputs: Vec<u32>,
    /// The graph nodes behind the instructions, for DOT export.
    labels: Vec<String>,
    /// Per instruction, what the reverse sweep does with each argument's adjoint.
    plan: Vec<[Adjoint; 2]>,
    /// Per input, whether a reverse sweep leaves its adjoint in its slot.
    has_gradient: Vec<bool>,
    /// Per instruction, its partials when they are constants (see
    /// [`Binary::constant_partials`]): not stored, used as they are.
    fixed_partials: Vec<Option<[f64; 2]>>,
    /// Per instruction, whether sweeps recompute its partials from its (pinned) argument
    /// values instead of reading stored ones; only in a program built `for_gradients`.
    recomputed: Vec<bool>,
    for_gradients: bool,
    /// Output slots that hold constants, once each: no instruction writes them, so the
    /// tangent sweep zeroes their tangents itself.
    const_outputs: Vec<u32>,
    /// Per instruction and argument, whether the partial is finite for every row (see
    /// [`Program::finite_partials`]).
    finite_partials: Vec<[bool; 2]>,
}

/// How the reverse sweep treats one argument of an instruction. Adjoint slots are never
/// zeroed: the first contribution to a value's adjoint (its last use, walking backwards
/// from the end) stores, later ones add, and constants get none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adjoint {
    /// No contribution: a constant, a non-differentiable argument, or an instruction no
    /// output depends on differentiably.
    Skip,
    /// The first contribution: `adj[a] = p * g`.
    Set,
    /// A later contribution: `adj[a] += p * g`.
    Add,
}

impl Program {
    /// Compiles the part of `graph` that `outputs` (node indices) depend on.
    pub fn new(graph: &Graph, outputs: &[u32]) -> Program {
        Program::build(graph, outputs, false)
    }

    /// Like [`Program::new`], laid out for derivatives: the arguments of instructions
    /// whose partials are cheaper to recompute than to store and reload (`x * y`, whose
    /// partials are its arguments, and `where`) keep their slots to the end, so the
    /// reverse and tangent sweeps recompute those partials from the values instead.
    pub fn for_gradients(graph: &Graph, outputs: &[u32]) -> Program {
        Program::build(graph, outputs, true)
    }

    fn build(graph: &Graph, outputs: &[u32], for_gradients: bool) -> Program {
        let nodes = graph.nodes();
        let n = nodes.len();
        // Dead code: mark what the outputs reach; args precede users, so one backward scan.
        let mut live = vec![false; n];
        for &o in outputs {
            live[o as usize] = true;
        }
        for i in (0..n).rev() {
            if live[i] {
                for a in nodes[i].args() {
                    live[a as usize] = true;
                }
            }
        }
        // Last reader of every node; outputs are read at the end.
        let end = n;
        let mut last = vec![0usize; n];
        for i in 0..n {
            if live[i] {
                for a in nodes[i].args() {
                    last[a as usize] = i;
                }
            }
        }
        for &o in outputs {
            last[o as usize] = end;
        }
        if for_gradients {
            for (i, node) in nodes.iter().enumerate() {
                let pinned = match *node {
                    Node::Binary(op, a, b) if op.recompute_partials() => [a, b, a, b],
                    Node::Select(_, [x, y, ..]) => [x, y, x, y],
                    _ => continue,
                };
                if live[i] {
                    pinned.iter().for_each(|&a| last[a as usize] = end);
                }
            }
        }

        let mut slot = vec![u32::MAX; n];
        let mut n_slots = 0u32;
        let mut free: Vec<u32> = Vec::new();
        let mut consts = Vec::new();
        // Constants first, permanently: no instruction writes them, so every block keeps them.
        for (i, node) in nodes.iter().enumerate() {
            if let (true, Node::Const(c)) = (live[i], node) {
                slot[i] = n_slots;
                consts.push((n_slots, *c));
                n_slots += 1;
            }
        }
        let mut inputs = vec![None; graph.n_inputs() as usize];
        let mut instrs = Vec::new();
        let mut labels = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            if !live[i] || matches!(node, Node::Const(_)) {
                continue;
            }
            // The destination is taken before the arguments' slots are released, so it
            // never aliases one of them.
            let dst = free.pop().unwrap_or_else(|| {
                n_slots += 1;
                n_slots - 1
            });
            slot[i] = dst;
            let s = |a: u32| slot[a as usize];
            match *node {
                Node::Input(k) => inputs[k as usize] = Some(dst),
                Node::Const(_) => unreachable!("constants have slots already"),
                Node::Unary(op, a) => {
                    instrs.push(Instr::Unary { op, dst, a: s(a) });
                    labels.push(op.name().to_string());
                }
                Node::Binary(op, a, b) => {
                    instrs.push(Instr::Binary {
                        op,
                        dst,
                        a: s(a),
                        b: s(b),
                    });
                    labels.push(op.name().to_string());
                }
                Node::Select(cmp, [x, y, a, b]) => {
                    instrs.push(Instr::Select {
                        cmp,
                        dst,
                        x: s(x),
                        y: s(y),
                        a: s(a),
                        b: s(b),
                    });
                    labels.push(format!("where {}", cmp.symbol()));
                }
            }
            let mut args = node.args();
            args.sort_unstable();
            args.dedup();
            for a in args {
                if last[a as usize] == i && !matches!(nodes[a as usize], Node::Const(_)) {
                    free.push(slot[a as usize]);
                }
            }
        }
        let outputs = outputs.iter().map(|&o| slot[o as usize]).collect();
        Program::planned(
            n_slots,
            inputs,
            consts,
            instrs,
            outputs,
            labels,
            for_gradients,
        )
    }

    /// Completes a program with its reverse plan (see [`Adjoint`]), derived from the
    /// instructions alone so a decoded program gets the same one.
    pub(super) fn planned(
        n_slots: u32,
        inputs: Vec<Option<u32>>,
        consts: Vec<(u32, f64)>,
        instrs: Vec<Instr>,
        outputs: Vec<u32>,
        labels: Vec<String>,
        for_gradients: bool,
    ) -> Program {
        let mut is_const = vec![false; n_slots as usize];
        for &(s, _) in &consts {
            is_const[s as usize] = true;
        }
        // Walking backwards: does the slot hold an adjoint that later code has written?
        let mut has = vec![false; n_slots as usize];
        for &o in &outputs {
            has[o as usize] = true;
        }
        let mut plan = vec![[Adjoint::Skip; 2]; instrs.len()];
        for (i, ins) in instrs.iter().enumerate().rev() {
            let (d, args) = match *ins {
                Instr::Unary { dst, a, .. } => (dst, [Some(a), None]),
                Instr::Binary { dst, a, b, .. } | Instr::Select { dst, a, b, .. } => {
                    (dst, [Some(a), Some(b)])
                }
            };
            // Before its definition the slot held something else, whose adjoint starts afresh.
            let live = std::mem::replace(&mut has[d as usize], false);
            if !live {
                continue; // no differentiable path to an output: contributes nothing
            }
            // Derivative 0 (the steps, stop_gradient): nothing flows to the argument, not
            // even a NaN adjoint or tangent times 0, as in the eager modes.
            let zero_partial =
                matches!(*ins, Instr::Unary { op, .. } if op.constant_partial() == Some(0.0));
            for (k, a) in args.into_iter().enumerate() {
                let Some(a) = a else { continue };
                plan[i][k] = if is_const[a as usize] || zero_partial {
                    Adjoint::Skip
                } else if std::mem::replace(&mut has[a as usize], true) {
                    Adjoint::Add
                } else {
                    Adjoint::Set
                };
            }
        }
        let grad_inputs = inputs
            .iter()
            .map(|s| s.is_some_and(|s| has[s as usize]))
            .collect();
        let fixed: Vec<Option<[f64; 2]>> = instrs
            .iter()
            .map(|ins| match *ins {
                Instr::Unary { op, .. } => op.constant_partial().map(|c| [c, 0.0]),
                Instr::Binary { op, .. } => op.constant_partials(),
                Instr::Select { .. } => None,
            })
            .collect();
        let recompute = instrs
            .iter()
            .map(|ins| {
                for_gradients
                    && match *ins {
                        Instr::Binary { op, .. } => op.recompute_partials(),
                        Instr::Select { .. } => true,
                        Instr::Unary { .. } => false,
                    }
            })
            .collect();
        let mut finite_slot = vec![false; n_slots as usize];
        for &(s, c) in &consts {
            finite_slot[s as usize] = c.is_finite();
        }
        let finite_const = |s: u32| finite_slot[s as usize];
        let finite = instrs
            .iter()
            .zip(&fixed)
            .map(|(ins, fixed)| match (fixed, *ins) {
                (Some(c), _) => c.map(f64::is_finite),
                (
                    None,
                    Instr::Binary {
                        op: Binary::Mul,
                        a,
                        b,
                        ..
                    },
                ) => [finite_const(b), finite_const(a)],
                (None, _) => [false; 2],
            })
            .collect();
        let mut const_outputs: Vec<u32> = outputs
            .iter()
            .copied()
            .filter(|&o| is_const.get(o as usize).copied().unwrap_or(false))
            .collect();
        const_outputs.sort_unstable();
        const_outputs.dedup();
        Program {
            const_outputs,
            finite_partials: finite,
            n_slots,
            inputs,
            consts,
            instrs,
            outputs,
            labels,
            plan,
            has_gradient: grad_inputs,
            fixed_partials: fixed,
            recomputed: recompute,
            for_gradients,
        }
    }

    /// Per instruction, whether each of its two partials is finite in every row: the
    /// constant partials of add, sub and neg, and the partial of `x * c` with respect to
    /// `x` for a finite constant `c`. The sweeps leave strong zero (see [`crate::exec::interp`])
    /// off those products: a zero adjoint makes them ±0 anyway.
    pub fn finite_partials(&self) -> &[[bool; 2]] {
        &self.finite_partials
    }

    /// Whether a reverse sweep has a product that strong zero can change: a partial not
    /// known to be finite (see [`Program::finite_partials`]) passed to an argument.
    pub fn strong_terms(&self) -> bool {
        self.plan
            .iter()
            .zip(&self.finite_partials)
            .any(|(plan, fin)| (0..2).any(|j| plan[j] != Adjoint::Skip && !fin[j]))
    }

    /// The output slots that hold constants (each once).
    pub fn const_outputs(&self) -> &[u32] {
        &self.const_outputs
    }

    /// Per instruction, whether its partials are recomputed from argument values.
    pub fn recomputed(&self) -> &[bool] {
        &self.recomputed
    }

    /// Per instruction, its partials when they are the same constants for every row.
    pub fn fixed_partials(&self) -> &[Option<[f64; 2]>] {
        &self.fixed_partials
    }

    /// What the reverse sweep does with each instruction's two partials.
    pub fn plan(&self) -> &[[Adjoint; 2]] {
        &self.plan
    }

    /// Whether input `i`'s slot holds its adjoint after a reverse sweep; when not, no
    /// output depends on it differentiably and its gradient is 0.
    pub fn has_gradient(&self, i: usize) -> bool {
        self.has_gradient[i]
    }

    /// Number of scalar inputs.
    pub fn n_inputs(&self) -> usize {
        self.inputs.len()
    }

    /// Number of scalar outputs.
    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Whether the slots were laid out for derivatives (see [`Program::for_gradients`]).
    pub fn is_for_gradients(&self) -> bool {
        self.for_gradients
    }

    /// Number of value slots one row needs.
    pub fn n_slots(&self) -> usize {
        self.n_slots as usize
    }

    /// The slot of each input (`None` for inputs no output depends on).
    pub fn inputs(&self) -> &[Option<u32>] {
        &self.inputs
    }

    /// The constant slots and their values.
    pub fn consts(&self) -> &[(u32, f64)] {
        &self.consts
    }

    pub fn instrs(&self) -> &[Instr] {
        &self.instrs
    }

    /// The slot of each output.
    pub fn outputs(&self) -> &[u32] {
        &self.outputs
    }

    /// Evaluates one point, scalar by scalar: the reference the batch engine is tested
    /// against, and a convenience for single points.
    pub fn eval(&self, x: &[f64]) -> Vec<f64> {
        assert_eq!(
            x.len(),
            self.n_inputs(),
            "expected {} inputs",
            self.n_inputs()
        );
        let mut s = vec![0.0; self.n_slots()];
        for &(k, c) in &self.consts {
            s[k as usize] = c;
        }
        for (i, slot) in self.inputs.iter().enumerate() {
            if let Some(k) = slot {
                s[*k as usize] = x[i];
            }
        }
        for ins in &self.instrs {
            let (d, v) = match *ins {
                Instr::Unary { op, dst, a } => (dst, op.rule(s[a as usize]).0),
                Instr::Binary { op, dst, a, b } => (dst, op.rule(s[a as usize], s[b as usize]).0),
                Instr::Select {
                    cmp,
                    dst,
                    x,
                    y,
                    a,
                    b,
                } => {
                    let g = |k: u32| s[k as usize];
                    (dst, cmp.select(g(x), g(y), g(a), g(b)))
                }
            };
            s[d as usize] = v;
        }
        self.outputs.iter().map(|&o| s[o as usize]).collect()
    }

    /// Graphviz DOT text of the optimised program: one node per input, constant and
    /// instruction, edges from arguments to users.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph wengert {\n  rankdir=BT;\n");
        // Slots are reused, so name values by their defining position instead.
        let mut current: Vec<String> = vec![String::new(); self.n_slots()];
        for (i, slot) in self.inputs.iter().enumerate() {
            if let Some(k) = slot {
                s.push_str(&format!("  x{i} [label=\"input {i}\", shape=box];\n"));
                current[*k as usize] = format!("x{i}");
            }
        }
        for (j, &(k, c)) in self.consts.iter().enumerate() {
            s.push_str(&format!("  c{j} [label=\"{c}\", shape=plaintext];\n"));
            current[k as usize] = format!("c{j}");
        }
        for (i, ins) in self.instrs.iter().enumerate() {
            let args: Vec<u32> = match *ins {
                Instr::Unary { a, .. } => vec![a],
                Instr::Binary { a, b, .. } => vec![a, b],
                Instr::Select { x, y, a, b, .. } => vec![x, y, a, b],
            };
            s.push_str(&format!("  n{i} [label=\"{}\"];\n", self.labels[i]));
            for a in args {
                s.push_str(&format!("  {} -> n{i};\n", current[a as usize]));
            }
            current[ins.dst() as usize] = format!("n{i}");
        }
        for (j, &o) in self.outputs.iter().enumerate() {
            s.push_str(&format!("  out{j} [label=\"output {j}\", shape=box];\n"));
            s.push_str(&format!("  {} -> out{j};\n", current[o as usize]));
        }
        s.push_str("}\n");
        s
    }
}
