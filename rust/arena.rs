//! The Wengert list: an arena of recorded operations in struct-of-arrays form.
//!
//! Node `i` stores its op code, the indices of its (at most two) arguments and the local
//! partial derivatives with respect to them, computed when the node was recorded. Values
//! live in the handles, not here: the reverse sweep needs only partials. Arguments always
//! precede their users, so index order is a topological order and the sweep is one
//! backward scan of multiply-adds.
//!
//! Node 0 is a sink: leaves and unary nodes point their unused argument slots at it with
//! partial 0, so the sweep needs no branch.

use crate::op::{Binary, Unary};

/// What a node computes. Kept for graph export; the sweep never looks at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// An independent variable (or the sink, node 0).
    Leaf,
    Unary(Unary),
    /// A binary op; when one operand was a plain number only the other is an argument.
    Binary(Binary),
}

/// Index of the sink node.
pub const SINK: u32 = 0;

/// The recorded operations of one tape.
///
/// ```
/// use wengert::arena::Arena;
/// use wengert::op::Binary;
/// let mut a = Arena::new();
/// let x = a.leaf();
/// let y = a.leaf();
/// // z = x * y at (3, 4): partials (4, 3).
/// let z = a.binary(Binary::Mul, x, y, 4.0, 3.0);
/// let mut adj = Vec::new();
/// a.sweep(z, &mut adj);
/// assert_eq!((adj[x as usize], adj[y as usize]), (4.0, 3.0));
/// ```
#[derive(Clone, Debug)]
pub struct Arena {
    ops: Vec<Op>,
    args: Vec<[u32; 2]>,
    partials: Vec<[f64; 2]>,
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena {
    /// An arena holding only the sink.
    pub fn new() -> Self {
        Arena {
            ops: vec![Op::Leaf],
            args: vec![[SINK, SINK]],
            partials: vec![[0.0, 0.0]],
        }
    }

    /// Number of nodes, the sink included.
    #[inline]
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when only the sink is recorded.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ops.len() == 1
    }

    #[inline(always)]
    fn push(&mut self, op: Op, args: [u32; 2], partials: [f64; 2]) -> u32 {
        let i = self.ops.len();
        assert!(
            i < u32::MAX as usize,
            "wengert: a tape holds at most 2^32 - 1 nodes"
        );
        self.ops.push(op);
        self.args.push(args);
        self.partials.push(partials);
        i as u32
    }

    /// Records an independent variable.
    #[inline(always)]
    pub fn leaf(&mut self) -> u32 {
        self.push(Op::Leaf, [SINK, SINK], [0.0, 0.0])
    }

    /// Records a node with one argument `a` and partial `da` (a unary op, or a binary op
    /// whose other operand was a constant).
    #[inline(always)]
    pub fn unary(&mut self, op: Op, a: u32, da: f64) -> u32 {
        self.push(op, [a, SINK], [da, 0.0])
    }

    /// Records a binary node.
    #[inline(always)]
    pub fn binary(&mut self, op: Binary, a: u32, b: u32, da: f64, db: f64) -> u32 {
        self.push(Op::Binary(op), [a, b], [da, db])
    }

    /// Drops every node from `len` on (the sink always stays).
    pub fn truncate(&mut self, len: usize) {
        let len = len.max(1);
        self.ops.truncate(len);
        self.args.truncate(len);
        self.partials.truncate(len);
    }

    /// The reverse sweep: fills `adj` with d(node `out`)/d(node i) for every i <= out.
    pub fn sweep(&self, out: u32, adj: &mut Vec<f64>) {
        let n = out as usize + 1;
        adj.clear();
        adj.resize(n, 0.0);
        adj[n - 1] = 1.0;
        for i in (1..n).rev() {
            let g = adj[i];
            let [a, b] = self.args[i];
            let [da, db] = self.partials[i];
            adj[a as usize] += g * da;
            adj[b as usize] += g * db;
        }
        adj[SINK as usize] = 0.0;
    }

    /// The op, arguments and partials of node `i`.
    pub fn node(&self, i: u32) -> (Op, [u32; 2], [f64; 2]) {
        let i = i as usize;
        (self.ops[i], self.args[i], self.partials[i])
    }

    /// Bytes of recorded state per node (op code, argument indices, partials).
    pub const BYTES_PER_NODE: usize = std::mem::size_of::<Op>()
        + std::mem::size_of::<[u32; 2]>()
        + std::mem::size_of::<[f64; 2]>();

    /// Graphviz DOT text of the nodes `out` depends on.
    pub fn to_dot(&self, out: u32) -> String {
        let mut reach = vec![false; out as usize + 1];
        reach[out as usize] = true;
        let mut s = String::from("digraph wengert {\n  rankdir=BT;\n");
        for i in (1..=out as usize).rev() {
            if !reach[i] {
                continue;
            }
            let label = match self.ops[i] {
                Op::Leaf => "input".to_string(),
                Op::Unary(u) => u.name().to_string(),
                Op::Binary(b) => b.name().to_string(),
            };
            s.push_str(&format!("  n{i} [label=\"{label} #{i}\"];\n"));
            for (k, &a) in self.args[i].iter().enumerate() {
                if a != SINK {
                    reach[a as usize] = true;
                    let p = self.partials[i][k];
                    s.push_str(&format!("  n{a} -> n{i} [label=\"{p:.6}\"];\n"));
                }
            }
        }
        s.push_str("}\n");
        s
    }
}
