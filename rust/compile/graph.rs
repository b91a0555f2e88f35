//! The recording tape of `compile`: a graph of symbolic operations built while tracing a
//! function once. Building already simplifies: constants fold, identical subexpressions are
//! shared (hash-consing), and exact identities (`x + (-0.0)`, `x - 0.0`, `x * 1`,
//! `x ** 2 -> x * x`) are applied. Every simplification keeps values and derivatives bit-for-bit the same
//! (IEEE), so the compiled function gives what the eager one gives.

use crate::op::{Binary, Cmp, Unary};
use rustc_hash::FxHashMap;

/// One operation of a traced function. Arguments are indices of earlier nodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Node {
    /// Element `i` of the flattened inputs.
    Input(u32),
    Const(f64),
    Unary(Unary, u32),
    Binary(Binary, u32, u32),
    /// `if x cmp y { a } else { b }`: `[x, y, a, b]`.
    Select(Cmp, [u32; 4]),
}

impl Node {
    fn key(&self) -> (u8, u8, u64, [u32; 4]) {
        match *self {
            Node::Input(i) => (0, 0, i as u64, [0; 4]),
            Node::Const(c) => (1, 0, c.to_bits(), [0; 4]),
            Node::Unary(op, a) => (2, op as u8, 0, [a, 0, 0, 0]),
            Node::Binary(op, a, b) => (3, op as u8, 0, [a, b, 0, 0]),
            Node::Select(c, args) => (4, c as u8, 0, args),
        }
    }

    /// The node indices this node reads.
    pub fn args(&self) -> Vec<u32> {
        match *self {
            Node::Input(_) | Node::Const(_) => vec![],
            Node::Unary(_, a) => vec![a],
            Node::Binary(_, a, b) => vec![a, b],
            Node::Select(_, args) => args.to_vec(),
        }
    }
}

/// A traced function under construction.
///
/// ```
/// use wengert::compile::graph::Graph;
/// use wengert::op::Binary;
/// let mut g = Graph::new(2);
/// let (x, y) = (g.input(0), g.input(1));
/// let a = g.binary(Binary::Mul, x, y);
/// let b = g.binary(Binary::Mul, x, y);
/// assert_eq!(a, b); // shared, not recorded twice
/// let one = g.constant(1.0);
/// assert_eq!(g.binary(Binary::Mul, a, one), a); // x * 1 is x
/// ```
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    n_inputs: u32,
    memo: FxHashMap<(u8, u8, u64, [u32; 4]), u32>,
}

/// The most nodes (inputs included) a graph may hold. Node indices and slots are `u32`
/// everywhere downstream, and a trace this long (minutes of Python) is a mistake better
/// refused than run until memory runs out. Callers that take sizes from users check
/// against it before allocating (see [`Graph::try_new`]).
pub const MAX_NODES: usize = 1 << 26;

/// Why [`Graph::try_new`] refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphError {
    /// More inputs than [`MAX_NODES`].
    TooManyNodes(usize),
    /// The allocator could not provide room for the inputs.
    OutOfMemory(usize),
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::TooManyNodes(n) => write!(
                f,
                "{n} inputs: a traced function holds at most {MAX_NODES} nodes"
            ),
            GraphError::OutOfMemory(n) => write!(f, "no memory for a trace of {n} inputs"),
        }
    }
}

impl std::error::Error for GraphError {}

impl Graph {
    /// Like [`Graph::new`], but refuses more than [`MAX_NODES`] inputs, and reports
    /// allocation failure instead of aborting.
    pub fn try_new(n_inputs: usize) -> Result<Self, GraphError> {
        if n_inputs > MAX_NODES {
            return Err(GraphError::TooManyNodes(n_inputs));
        }
        let mut g = Graph::default();
        g.nodes
            .try_reserve(n_inputs)
            .and_then(|()| g.memo.try_reserve(n_inputs))
            .map_err(|_| GraphError::OutOfMemory(n_inputs))?;
        g.n_inputs = n_inputs as u32;
        for i in 0..n_inputs as u32 {
            g.intern(Node::Input(i));
        }
        Ok(g)
    }

    /// A graph with `n_inputs` inputs, nodes `0..n_inputs`.
    pub fn new(n_inputs: u32) -> Self {
        let mut g = Graph {
            nodes: Vec::new(),
            n_inputs,
            memo: FxHashMap::default(),
        };
        for i in 0..n_inputs {
            g.intern(Node::Input(i));
        }
        g
    }

    pub fn n_inputs(&self) -> u32 {
        self.n_inputs
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn intern(&mut self, n: Node) -> u32 {
        let key = n.key();
        if let Some(&i) = self.memo.get(&key) {
            return i;
        }
        let i = self.nodes.len() as u32;
        self.nodes.push(n);
        self.memo.insert(key, i);
        i
    }

    fn as_const(&self, i: u32) -> Option<f64> {
        match self.nodes[i as usize] {
            Node::Const(c) => Some(c),
            _ => None,
        }
    }

    /// The node of input element `i`.
    pub fn input(&self, i: u32) -> u32 {
        assert!(i < self.n_inputs, "input {i} out of range");
        i
    }

    pub fn constant(&mut self, c: f64) -> u32 {
        self.intern(Node::Const(c))
    }

    pub fn unary(&mut self, op: Unary, a: u32) -> u32 {
        if let Some(c) = self.as_const(a) {
            return self.constant(op.rule(c).0);
        }
        if let (Unary::Neg, Node::Unary(Unary::Neg, inner)) = (op, self.nodes[a as usize]) {
            return inner;
        }
        self.intern(Node::Unary(op, a))
    }

    pub fn binary(&mut self, op: Binary, a: u32, b: u32) -> u32 {
        let (ca, cb) = (self.as_const(a), self.as_const(b));
        if let (Some(x), Some(y)) = (ca, cb) {
            return self.constant(op.rule(x, y).0);
        }
        // Identities that hold exactly for every x, signed zeros, nan and inf included,
        // with the same derivative (up to the sign of a zero). Only -0.0 is the identity
        // of addition (-0.0 + 0.0 is +0.0), so x + 0.0 and x - (-0.0) are kept.
        let is = |c: f64, z: f64| c.to_bits() == z.to_bits();
        match (op, ca, cb) {
            (Binary::Add, Some(z), _) if is(z, -0.0) => return b,
            (Binary::Add, _, Some(z)) if is(z, -0.0) => return a,
            (Binary::Sub, _, Some(z)) if is(z, 0.0) => return a,
            (Binary::Mul, Some(1.0), _) => return b,
            (Binary::Mul | Binary::Div | Binary::Pow, _, Some(1.0)) => return a,
            // powf(x, 2) is correctly rounded x*x, and x*x's rule gives 2x*g as pow's does
            // (to the bit, except where g*x is subnormal or 2x overflows).
            (Binary::Pow, _, Some(2.0)) => return self.binary(Binary::Mul, a, a),
            _ => {}
        }
        // Commutative ops: one order, so x*y and y*x are shared.
        let (a, b) = match op {
            Binary::Add | Binary::Mul | Binary::Hypot if a > b => (b, a),
            _ => (a, b),
        };
        self.intern(Node::Binary(op, a, b))
    }

    pub fn select(&mut self, cmp: Cmp, x: u32, y: u32, a: u32, b: u32) -> u32 {
        if a == b {
            return a;
        }
        if let (Some(cx), Some(cy)) = (self.as_const(x), self.as_const(y)) {
            return if cmp.holds(cx, cy) { a } else { b };
        }
        self.intern(Node::Select(cmp, [x, y, a, b]))
    }
}
