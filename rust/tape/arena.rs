//! The Wengert list: an arena of recorded operations.
//!
//! Node `i` stores its op code, its (at most two) arguments and the local partial
//! derivatives with respect to them, computed when the node was recorded. Values live in
//! the handles, not here: the reverse sweep needs only partials. Arguments always precede
//! their users, so index order is a topological order and the sweep is one backward scan
//! of multiply-adds.
//!
//! Node 0 is a sink: leaves and unary nodes have no (second) argument, recorded as the
//! sink with partial 0, so every node has two and the sweep needs no branch on the kind.
//!
//! Storage is a list of fixed-size chunks of [`Arena::CHUNK`] nodes, each chunk two
//! arrays: op codes, and the pairs of sweep targets and partials the sweep reads. Node `i`
//! lives in chunk `i / CHUNK` at `i % CHUNK` (a shift and a mask). Recording past a full
//! chunk starts the next one at its final size; a full chunk is never reallocated or
//! copied. So the heap held is the payload ([`Arena::BYTES_PER_NODE`] per node), plus
//! the unused part of the top chunk, plus a small vector of chunk headers. Only the first
//! chunk grows by doubling (up to `CHUNK` nodes, copying as it goes), so a small tape
//! stays small; past it the heap never briefly holds an old and a new copy of a buffer.
//! [`Arena::truncate`] frees chunks that become empty, keeping one as a spare so that a
//! loop which records and drops a graph across a chunk boundary does not allocate and
//! free a chunk every step.
//!
//! # Sweep targets
//!
//! A node does not store its arguments' indices as such but where the sweep adds its two
//! contributions, in a buffer of adjoints that holds node `k`'s at `k + `[`ADJ_OFFSET`]
//! and, below it, a few throwaway slots. Recording decides, once, what the sweep would
//! otherwise decide at every node with selects:
//!
//! - A missing argument (the sink) adds its contribution, `0 * adjoint`, into a throwaway
//!   slot picked by node index, not into the sink's adjoint: one slot for all of them would
//!   chain every leaf and unary node of the sweep into one series of read-modify-writes of
//!   a single address, each waiting for the last.
//! - When one argument is the node just below (a chain `y = f(y)`, `s = s + t`) and the
//!   other is not, that contribution is the last the node below receives (every other user
//!   of it is higher, so swept earlier). The sweep carries it in a register and adds it
//!   when it reaches that node, a store and a reload fewer on the critical path; its own
//!   target is a throwaway slot of a range that tells the sweep to carry. When that
//!   argument is the second one, the pair is stored swapped (a range of its own says so,
//!   for [`Arena::node`]).
//!
//! [`Arena::node`] decodes the targets back to argument indices.

use crate::op::{Binary, Unary};
use std::cell::Cell;
use std::mem;

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

/// How many throwaway slots of each kind; a node uses the one of its index modulo this.
const ROT: u32 = 8;
/// Throwaway slots: first argument carried, second argument carried (pair stored
/// swapped), first argument the sink, second argument the sink.
const CARRY_FIRST: u32 = 0;
const CARRY_SECOND: u32 = ROT;
const SINK_FIRST: u32 = 2 * ROT;
const SINK_SECOND: u32 = 3 * ROT;
/// Targets below this are carried contributions.
const CARRIED: u32 = 2 * ROT;

/// Where node 0's adjoint sits in the buffer of [`Arena::sweep_shifted`]: below it are the
/// throwaway slots.
pub const ADJ_OFFSET: usize = 4 * ROT as usize;

/// log2 of [`Arena::CHUNK`].
const CHUNK_BITS: u32 = 12;
const CHUNK_MASK: usize = (1 << CHUNK_BITS) - 1;
/// The highest node index: its sweep target, index + [`ADJ_OFFSET`], still fits a `u32`.
const MAX_NODE: usize = u32::MAX as usize - ADJ_OFFSET;
/// Index of the chunk holding [`MAX_NODE`]: it holds fewer nodes than the others.
const LAST_CHUNK: usize = MAX_NODE >> CHUNK_BITS;
/// Capacity of a new arena's first chunk, before it grows.
const FIRST_CAP: usize = 16;

/// What the sweep reads of one node: where its two contributions go, and the partials
/// they are the adjoint times.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Node {
    to: [u32; 2],
    partials: [f64; 2],
}

/// One chunk of nodes. Both arrays have the chunk's capacity as their length; the arena
/// keeps how many of the top chunk's are recorded. Every chunk but the top one of an
/// [`Arena`] is full.
#[derive(Clone, Debug)]
struct Chunk {
    ops: Box<[Op]>,
    nodes: Box<[Node]>,
}

impl Chunk {
    fn with_capacity(cap: usize) -> Self {
        Chunk {
            ops: vec![Op::Leaf; cap].into_boxed_slice(),
            nodes: vec![Node::default(); cap].into_boxed_slice(),
        }
    }

    /// How many nodes the chunk may hold.
    #[inline(always)]
    fn cap(&self) -> usize {
        self.nodes.len()
    }

    /// The first `len` nodes in a chunk of capacity `cap`, one array at a time, so at most
    /// one old array is held beside the new ones.
    fn grow_to(&mut self, len: usize, cap: usize) {
        let mut ops = vec![Op::Leaf; cap].into_boxed_slice();
        ops[..len].copy_from_slice(&self.ops[..len]);
        self.ops = ops;
        let mut nodes = vec![Node::default(); cap].into_boxed_slice();
        nodes[..len].copy_from_slice(&self.nodes[..len]);
        self.nodes = nodes;
    }
}

/// The recorded operations of one tape.
///
/// ```
/// use wengert::tape::arena::Arena;
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
#[derive(Debug)]
pub struct Arena {
    /// Chunks `0..full.len()`, each holding exactly [`Arena::CHUNK`] nodes.
    full: Vec<Chunk>,
    /// The chunk being filled: chunk number `full.len()`, never empty (the sink is node 0).
    top: Chunk,
    /// How many nodes `top` holds: recording runs [`Arena::grow`] when it reaches
    /// `top.cap()`.
    top_len: usize,
    /// Index of `top`'s first node: `full.len() * CHUNK`.
    top_base: usize,
    /// An emptied whole chunk kept by [`Arena::truncate`] for the next chunk boundary.
    spare: Option<Chunk>,
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for Arena {
    /// A copy of the nodes; the copy's top chunk has the same room left as the original's.
    fn clone(&self) -> Self {
        Arena {
            full: self.full.clone(),
            top: self.top.clone(),
            top_len: self.top_len,
            top_base: self.top_base,
            spare: None,
        }
    }
}

/// Where a contribution to argument `arg` of node `i` goes when it is not carried:
/// `sink_slot`'s throwaway slot for the sink, else the argument's adjoint.
#[inline(always)]
fn target(arg: u32, i: u32, sink_slot: u32) -> u32 {
    if arg == SINK {
        sink_slot + (i & (ROT - 1))
    } else {
        arg + ADJ_OFFSET as u32
    }
}

/// The argument a non-carried target stands for.
#[inline]
fn argument(t: u32) -> u32 {
    t.checked_sub(ADJ_OFFSET as u32).unwrap_or(SINK)
}

impl Arena {
    /// Nodes per chunk of storage (a power of two).
    ///
    /// ```
    /// use wengert::tape::arena::Arena;
    /// let mut a = Arena::new();
    /// for _ in 0..Arena::CHUNK {
    ///     a.leaf();
    /// }
    /// // The sink and CHUNK leaves: the second chunk has one node.
    /// assert_eq!(a.len(), Arena::CHUNK + 1);
    /// a.truncate(Arena::CHUNK); // back to exactly one full chunk
    /// assert_eq!(a.leaf() as usize, Arena::CHUNK);
    /// ```
    pub const CHUNK: usize = 1 << CHUNK_BITS;

    /// An arena holding only the sink.
    pub fn new() -> Self {
        let mut top = Chunk::with_capacity(FIRST_CAP);
        top.nodes[0].to = [SINK_FIRST, SINK_SECOND];
        Arena {
            full: Vec::new(),
            top,
            top_len: 1,
            top_base: 0,
            spare: None,
        }
    }

    /// Number of nodes, the sink included.
    #[inline]
    pub fn len(&self) -> usize {
        self.top_base + self.top_len
    }

    /// True when only the sink is recorded.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 1
    }

    /// How many nodes chunk `k` may hold.
    fn chunk_cap(k: usize) -> usize {
        if k == LAST_CHUNK {
            (MAX_NODE & CHUNK_MASK) + 1
        } else {
            Self::CHUNK
        }
    }

    /// The index the next node gets, after making room for it.
    #[inline(always)]
    fn next_index(&mut self) -> u32 {
        // A loop, so that past it the compiler knows both arrays have room and drops the
        // bounds checks of `push`: this is the one check on the hot path.
        while self.top_len >= self.top.nodes.len() || self.top_len >= self.top.ops.len() {
            self.grow();
        }
        (self.top_base + self.top_len) as u32
    }

    /// Appends node `i` (from [`Arena::next_index`]).
    #[inline(always)]
    fn push(&mut self, i: u32, op: Op, to: [u32; 2], partials: [f64; 2]) -> u32 {
        let j = self.top_len;
        debug_assert_eq!(i as usize, self.top_base + j);
        self.top.nodes[j] = Node { to, partials };
        self.top.ops[j] = op;
        self.top_len = j + 1;
        i
    }

    /// Makes room for one more node: doubles a top chunk that is not yet whole (the first
    /// chunk of a small tape), or starts the next chunk (the spare if there is one).
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let len = self.top_len;
        let k = self.full.len();
        let cap = Self::chunk_cap(k);
        if len < cap {
            self.top.grow_to(len, (2 * len).clamp(FIRST_CAP, cap));
        } else {
            assert!(
                k < LAST_CHUNK,
                "wengert: a tape holds at most 2^32 - {ADJ_OFFSET} nodes"
            );
            let next = match self.spare.take() {
                Some(c) if k + 1 < LAST_CHUNK => c,
                _ => Chunk::with_capacity(Self::chunk_cap(k + 1)),
            };
            self.full.push(mem::replace(&mut self.top, next));
            self.top_len = 0;
            self.top_base += Self::CHUNK;
        }
    }

    /// Records a node with arguments `a` and `b` (either may be the sink), choosing its
    /// sweep targets (see the module documentation).
    #[inline(always)]
    fn record(&mut self, op: Op, a: u32, b: u32, da: f64, db: f64) -> u32 {
        let i = self.next_index();
        let r = i & (ROT - 1);
        let (to, partials) = if a.wrapping_add(1) == i && b != a {
            ([CARRY_FIRST + r, target(b, i, SINK_SECOND)], [da, db])
        } else if b.wrapping_add(1) == i && a != b {
            ([CARRY_SECOND + r, target(a, i, SINK_SECOND)], [db, da])
        } else {
            (
                [target(a, i, SINK_FIRST), target(b, i, SINK_SECOND)],
                [da, db],
            )
        };
        self.push(i, op, to, partials)
    }

    /// Records a node with no arguments (a leaf, or an op whose derivative is 0).
    #[inline(always)]
    fn record_unlinked(&mut self, op: Op) -> u32 {
        let i = self.next_index();
        let r = i & (ROT - 1);
        self.push(i, op, [SINK_FIRST + r, SINK_SECOND + r], [0.0, 0.0])
    }

    /// Records a node with the one argument `a`, never the sink (a [`crate::Var`]'s node):
    /// the path of every recorded op.
    #[inline(always)]
    fn record_one(&mut self, op: Op, a: u32, da: f64) -> u32 {
        let i = self.next_index();
        let r = i & (ROT - 1);
        let first = if a + 1 == i {
            CARRY_FIRST + r
        } else {
            a + ADJ_OFFSET as u32
        };
        self.push(i, op, [first, SINK_SECOND + r], [da, 0.0])
    }

    /// Records an independent variable.
    #[inline(always)]
    pub fn leaf(&mut self) -> u32 {
        self.record_unlinked(Op::Leaf)
    }

    /// Records a node with one argument `a` and partial `da` (a unary op, or a binary op
    /// whose other operand was a constant).
    #[inline(always)]
    pub fn unary(&mut self, op: Op, a: u32, da: f64) -> u32 {
        self.record(op, a, SINK, da, 0.0)
    }

    /// Records a binary node.
    #[inline(always)]
    pub fn binary(&mut self, op: Binary, a: u32, b: u32, da: f64, db: f64) -> u32 {
        self.record(Op::Binary(op), a, b, da, db)
    }

    /// Evaluates `op`'s rule at `x` (the value of node `a`, not the sink) and records the
    /// node: its index and value. Every tape records through these three.
    #[inline(always)]
    pub fn record_unary(&mut self, op: Unary, a: u32, x: f64) -> (u32, f64) {
        debug_assert!(a != SINK, "an op of the sink");
        let (v, d) = op.rule(x);
        if op.constant_partial() == Some(0.0) {
            // Derivative 0 (the steps, stop_gradient): not linked to its argument, so
            // nothing flows back, not even a NaN adjoint times 0 (JAX's symbolic zero;
            // the compiled plan skips these arguments alike).
            return (self.record_unlinked(Op::Unary(op)), v);
        }
        (self.record_one(Op::Unary(op), a, d), v)
    }

    /// As [`Arena::record_unary`], for `op(x, y)` of nodes `a` and `b`.
    #[inline(always)]
    pub fn record_binary(&mut self, op: Binary, a: u32, x: f64, b: u32, y: f64) -> (u32, f64) {
        debug_assert!(a != SINK && b != SINK, "an op of the sink");
        let (v, dx, dy) = op.rule(x, y);
        let i = self.next_index();
        let off = ADJ_OFFSET as u32;
        // Exactly one argument the node below: carried, the pair swapped when it is `b`.
        // Selects, not branches: which case applies follows the data.
        let below = i - 1;
        let carry = (a == below) != (b == below);
        let swap = carry && b == below;
        let slot = (i & (ROT - 1)) + if swap { CARRY_SECOND } else { CARRY_FIRST };
        let first = if carry { slot } else { a + off };
        let second = if swap { a } else { b } + off;
        let partials = if swap { [dy, dx] } else { [dx, dy] };
        (self.push(i, Op::Binary(op), [first, second], partials), v)
    }

    /// As [`Arena::record_unary`], for `op(x, c)` (or `op(c, x)` when `const_first`) with
    /// a constant `c`: one argument, the partial in `x`.
    #[inline(always)]
    pub fn record_binary_const(
        &mut self,
        op: Binary,
        a: u32,
        x: f64,
        c: f64,
        const_first: bool,
    ) -> (u32, f64) {
        debug_assert!(a != SINK, "an op of the sink");
        let (v, d) = if const_first {
            let (v, _, d) = op.rule(c, x);
            (v, d)
        } else {
            let (v, d, _) = op.rule(x, c);
            (v, d)
        };
        (self.record_one(Op::Binary(op), a, d), v)
    }

    /// Drops every node from `len` on (the sink always stays).
    ///
    /// Chunks left empty are freed, except one, kept as a spare for the next time recording
    /// crosses a chunk boundary: a loop that records a graph and drops it again each step
    /// allocates no chunk after its first step when the graph crosses at most one boundary
    /// (wherever it falls); a larger graph reuses the spare and allocates the rest.
    ///
    /// ```
    /// use wengert::tape::arena::Arena;
    /// use wengert::op::Binary;
    /// let mut a = Arena::new();
    /// let x = a.leaf();
    /// let mut adj = Vec::new();
    /// for _ in 0..3 {
    ///     // y = x + x + ... (10,000 additions), recorded above x, then dropped.
    ///     let mut y = x;
    ///     for _ in 0..10_000 {
    ///         y = a.binary(Binary::Add, y, x, 1.0, 1.0);
    ///     }
    ///     assert_eq!(a.len(), 10_002);
    ///     a.sweep(y, &mut adj);
    ///     assert_eq!(adj[x as usize], 10_001.0);
    ///     a.truncate(x as usize + 1);
    ///     assert_eq!(a.len(), 2);
    /// }
    /// ```
    pub fn truncate(&mut self, len: usize) {
        let len = len.max(1);
        if len >= self.len() {
            return;
        }
        // The chunk that will hold the new last node.
        let k = (len - 1) >> CHUNK_BITS;
        while self.full.len() > k {
            let below = self.full.pop().expect("k < full.len()");
            let emptied = mem::replace(&mut self.top, below);
            if self.spare.is_none() && emptied.cap() == Self::CHUNK {
                self.spare = Some(emptied);
            }
        }
        self.top_base = k << CHUNK_BITS;
        self.top_len = len - self.top_base;
    }

    /// Chunk number `k` and how many nodes it holds; panics past the top chunk.
    #[inline]
    fn chunk(&self, k: usize) -> (&Chunk, usize) {
        match k.cmp(&self.full.len()) {
            std::cmp::Ordering::Less => (&self.full[k], Self::CHUNK),
            std::cmp::Ordering::Equal => (&self.top, self.top_len),
            std::cmp::Ordering::Greater => panic!("wengert: node index past the end of the arena"),
        }
    }

    /// The reverse sweep: fills `adj` with d(node `out`)/d(node i) for every i <= out.
    ///
    /// Every adjoint receives the same additions in the same order as the textbook loop
    ///
    /// ```text
    /// for i in (1..n).rev() {
    ///     if adj[i] != 0 { adj[a_i] += adj[i] * da_i; adj[b_i] += adj[i] * db_i; }
    /// }
    /// ```
    ///
    /// so results are bit-for-bit those of that loop (the throwaway slots and the carried
    /// contribution of the module documentation change only where an addition is made,
    /// not which, nor in what order; adding a carry of `0.0` changes nothing, since an
    /// adjoint starts at `+0.0` and a sum starting there is never `-0.0`).
    ///
    /// Strong zero: a node whose adjoint is exactly zero (`+0.0` or `-0.0`) contributes a
    /// zero to its arguments, whatever its partials. A node the output does not depend on,
    /// such as a logged `sqrt(x)` at `x = -1` (partial NaN) or `sqrt(b * b)` at `b = 0`
    /// (partial inf), so leaves every gradient as it was. This is the one place the result
    /// differs from the IEEE products of the loop above: there `0 * inf` and `0 * nan` add
    /// a NaN. A NaN or infinite adjoint still propagates.
    pub fn sweep(&self, out: u32, adj: &mut Vec<f64>) {
        self.sweep_shifted(out, adj);
        adj.drain(..ADJ_OFFSET);
    }

    /// [`Arena::sweep`], leaving node `i`'s adjoint at `adj[i + ADJ_OFFSET]` (and zeros
    /// below `ADJ_OFFSET`): no move of the adjoints to the front.
    pub fn sweep_shifted(&self, out: u32, adj: &mut Vec<f64>) {
        let n = out as usize + 1;
        assert!(
            n <= self.len(),
            "wengert: node index past the end of the arena"
        );
        adj.clear();
        adj.resize(ADJ_OFFSET + n, 0.0);
        adj[ADJ_OFFSET + n - 1] = 1.0;
        // Cells: the sweep reads and writes adjoints below the one it walks over.
        let cells = Cell::from_mut(&mut adj[..]).as_slice_of_cells();
        let mut carry = 0.0;
        for k in (0..=(n - 1) >> CHUNK_BITS).rev() {
            let (c, len) = self.chunk(k);
            let base = ADJ_OFFSET + (k << CHUNK_BITS);
            let m = (n + ADJ_OFFSET - base).min(len);
            let own = &cells[base..base + m];
            for (node, cell) in c.nodes[..m].iter().zip(own).rev() {
                let g = cell.get() + carry;
                cell.set(g);
                if g == 0.0 {
                    // Strong zero: nothing flows back (adding 0 would change nothing).
                    carry = 0.0;
                    continue;
                }
                let [ta, tb] = node.to;
                let [da, db] = node.partials;
                let (ga, gb) = (da * g, db * g);
                let (ca, cb) = (&cells[ta as usize], &cells[tb as usize]);
                ca.set(ca.get() + ga);
                cb.set(cb.get() + gb);
                carry = if ta < CARRIED { ga } else { 0.0 };
            }
        }
        adj[..ADJ_OFFSET].fill(0.0);
        adj[ADJ_OFFSET + SINK as usize] = 0.0;
    }

    /// The op, arguments and partials of node `i`.
    pub fn node(&self, i: u32) -> (Op, [u32; 2], [f64; 2]) {
        let (c, len) = self.chunk(i as usize >> CHUNK_BITS);
        let j = i as usize & CHUNK_MASK;
        assert!(j < len, "wengert: node index past the end of the arena");
        let Node {
            to: [ta, tb],
            partials: [pa, pb],
        } = c.nodes[j];
        let (args, partials) = if ta < CARRY_SECOND {
            ([i - 1, argument(tb)], [pa, pb])
        } else if ta < CARRIED {
            ([argument(tb), i - 1], [pb, pa])
        } else {
            ([argument(ta), argument(tb)], [pa, pb])
        };
        (c.ops[j], args, partials)
    }

    /// Bytes of recorded state per node (op code, sweep targets, partials).
    pub const BYTES_PER_NODE: usize = std::mem::size_of::<Op>() + std::mem::size_of::<Node>();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flat layout the chunks replace: the reference for every test below.
    #[derive(Default)]
    struct Flat {
        ops: Vec<Op>,
        args: Vec<[u32; 2]>,
        partials: Vec<[f64; 2]>,
    }

    impl Flat {
        fn new() -> Self {
            Flat {
                ops: vec![Op::Leaf],
                args: vec![[SINK, SINK]],
                partials: vec![[0.0, 0.0]],
            }
        }

        fn sweep(&self, out: u32) -> Vec<f64> {
            let n = out as usize + 1;
            let mut adj = vec![0.0; n];
            adj[n - 1] = 1.0;
            for i in (1..n).rev() {
                let g = adj[i];
                let [a, b] = self.args[i];
                let [da, db] = self.partials[i];
                // Strong zero: a zero adjoint times an infinite or NaN partial adds 0.
                let strong = |d: f64| {
                    if g == 0.0 && (g * d).is_nan() {
                        0.0
                    } else {
                        g * d
                    }
                };
                adj[a as usize] += strong(da);
                adj[b as usize] += strong(db);
            }
            adj[0] = 0.0;
            adj
        }
    }

    /// xorshift64*: deterministic and dependency-free.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn partial(&mut self) -> f64 {
            // Small integers over 8: sums of products stay exact, so results compare with ==.
            (self.below(17) as f64 - 8.0) / 8.0
        }
    }

    /// Records one random node on both and checks the index it got.
    fn record(a: &mut Arena, f: &mut Flat, rng: &mut Rng) {
        let n = f.ops.len() as u32;
        let (x, y) = (rng.below(n as usize) as u32, rng.below(n as usize) as u32);
        let (dx, dy) = (rng.partial(), rng.partial());
        let (i, op, args, partials) = match rng.below(3) {
            0 => (a.leaf(), Op::Leaf, [SINK, SINK], [0.0, 0.0]),
            1 => {
                let op = Op::Unary(Unary::Sin);
                (a.unary(op, x, dx), op, [x, SINK], [dx, 0.0])
            }
            _ => (
                a.binary(Binary::Mul, x, y, dx, dy),
                Op::Binary(Binary::Mul),
                [x, y],
                [dx, dy],
            ),
        };
        assert_eq!(i, n);
        f.ops.push(op);
        f.args.push(args);
        f.partials.push(partials);
    }

    fn assert_same(a: &Arena, f: &Flat) {
        assert_eq!(a.len(), f.ops.len());
        assert_eq!(a.is_empty(), f.ops.len() == 1);
        for i in 0..f.ops.len() {
            assert_eq!(
                a.node(i as u32),
                (f.ops[i], f.args[i], f.partials[i]),
                "node {i}"
            );
        }
        // Every chunk below the top is full and the top is not empty.
        assert!(a
            .full
            .iter()
            .all(|c| c.ops.len() == Arena::CHUNK && c.nodes.len() == Arena::CHUNK));
        assert!(a.top_len > 0 && a.top_len <= a.top.cap());
        assert_eq!(a.top_base, a.full.len() * Arena::CHUNK);
        assert!(a.top.cap() <= Arena::CHUNK && a.top.ops.len() == a.top.cap());
    }

    #[test]
    fn matches_the_flat_layout_through_records_and_truncations() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut a, mut f) = (Arena::new(), Flat::new());
        let mut adj = Vec::new();
        for round in 0..40 {
            // Grow by up to ~3 chunks, then cut back somewhere, often right at a boundary.
            for _ in 0..rng.below(3 * Arena::CHUNK + 2) {
                record(&mut a, &mut f, &mut rng);
            }
            assert_same(&a, &f);
            for _ in 0..4 {
                let out = rng.below(f.ops.len()) as u32;
                a.sweep(out, &mut adj);
                assert_eq!(adj, f.sweep(out), "round {round}, out {out}");
            }
            let top = f.ops.len() as u32 - 1;
            a.sweep(top, &mut adj);
            assert_eq!(adj, f.sweep(top));
            let len = match rng.below(4) {
                0 => (rng.below(f.ops.len() / Arena::CHUNK + 1) * Arena::CHUNK).max(1),
                1 => rng.below(f.ops.len() / Arena::CHUNK + 1) * Arena::CHUNK + 1,
                2 => 0,
                _ => rng.below(f.ops.len() + 10),
            };
            a.truncate(len);
            let len = len.clamp(1, f.ops.len());
            f.ops.truncate(len);
            f.args.truncate(len);
            f.partials.truncate(len);
            assert_same(&a, &f);
        }
    }

    #[test]
    fn sweep_is_bit_for_bit_the_textbook_loop_on_chains() {
        // Arguments are often the node just below (the carried case), sometimes both
        // slots (x * x of the node below, which is not carried), sometimes the sink; the
        // partials are inexact, a few infinite, NaN or -0.0, so any change in the order of
        // the additions, or a lost -0.0 or NaN, would show in the bits. (Any NaN compares
        // equal to any NaN: Rust leaves the sign and payload of a NaN result unspecified.)
        let mut rng = Rng(7);
        let (mut a, mut f) = (Arena::new(), Flat::new());
        for _ in 0..3 * Arena::CHUNK + 77 {
            let n = f.ops.len();
            let pick = |rng: &mut Rng| match rng.below(5) {
                0 | 1 => n - 1,
                2 => SINK as usize,
                _ => rng.below(n),
            } as u32;
            let (x, y) = (pick(&mut rng), pick(&mut rng));
            let y = if rng.below(4) == 0 { x } else { y };
            let partial = |rng: &mut Rng| match rng.below(1000) {
                0 => f64::INFINITY,
                1 => f64::NAN,
                2 => -0.0,
                _ => (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0,
            };
            let (dx, dy) = (partial(&mut rng), partial(&mut rng));
            assert_eq!(a.binary(Binary::Mul, x, y, dx, dy) as usize, n);
            f.ops.push(Op::Binary(Binary::Mul));
            f.args.push([x, y]);
            f.partials.push([dx, dy]);
        }
        let mut adj = Vec::new();
        for out in [
            f.ops.len() - 1,
            f.ops.len() - 2,
            Arena::CHUNK,
            Arena::CHUNK - 1,
            5,
            1,
        ] {
            a.sweep(out as u32, &mut adj);
            let bits = |v: &f64| if v.is_nan() { u64::MAX } else { v.to_bits() };
            let want: Vec<u64> = f.sweep(out as u32).iter().map(bits).collect();
            let got: Vec<u64> = adj.iter().map(bits).collect();
            assert!(want.iter().filter(|&&w| w == u64::MAX).count() < want.len() / 2);
            assert_eq!(got, want, "out {out}");
        }
    }

    #[test]
    fn the_recording_paths_of_handles_store_the_textbook_nodes() {
        // record_unary, record_binary and record_binary_const choose sweep targets with
        // their own code (no sink arguments, selects instead of branches): the nodes they
        // store must decode to the textbook's, and sweep to its adjoints bit for bit, in
        // every case: first or second argument the node below, both, neither, x * x.
        let mut rng = Rng(11);
        let (mut a, mut f) = (Arena::new(), Flat::new());
        let mut vals = vec![0.0];
        for v in [0.5, -0.75] {
            a.leaf();
            f.ops.push(Op::Leaf);
            f.args.push([SINK, SINK]);
            f.partials.push([0.0, 0.0]);
            vals.push(v);
        }
        for _ in 0..3 * Arena::CHUNK + 50 {
            let n = f.ops.len();
            let pick = |rng: &mut Rng| match rng.below(3) {
                0 => n - 1,
                _ => 1 + rng.below(n - 1),
            };
            let (x, y) = (pick(&mut rng), pick(&mut rng));
            let y = if rng.below(6) == 0 { x } else { y };
            let (vx, vy) = (vals[x], vals[y]);
            let (xi, yi) = (x as u32, y as u32);
            let (i, v, op, args, partials) = match rng.below(5) {
                0 => {
                    let v = rng.partial();
                    (a.leaf(), v, Op::Leaf, [SINK, SINK], [0.0, 0.0])
                }
                1 => {
                    let (i, v) = a.record_unary(Unary::Sin, xi, vx);
                    (i, v, Op::Unary(Unary::Sin), [xi, SINK], [vx.cos(), 0.0])
                }
                2 => {
                    let (i, v) = a.record_unary(Unary::Floor, xi, vx);
                    (i, v, Op::Unary(Unary::Floor), [SINK, SINK], [0.0, 0.0])
                }
                3 => {
                    let (i, v) = a.record_binary(Binary::Mul, xi, vx, yi, vy);
                    (i, v, Op::Binary(Binary::Mul), [xi, yi], [vy, vx])
                }
                _ => {
                    let first = rng.below(2) == 0;
                    let (i, v) = a.record_binary_const(Binary::Sub, xi, vx, 0.25, first);
                    let d = if first { -1.0 } else { 1.0 };
                    (i, v, Op::Binary(Binary::Sub), [xi, SINK], [d, 0.0])
                }
            };
            assert_eq!(i as usize, n);
            vals.push(v);
            f.ops.push(op);
            f.args.push(args);
            f.partials.push(partials);
        }
        assert_same(&a, &f);
        let mut adj = Vec::new();
        for out in [f.ops.len() - 1, f.ops.len() - 2, Arena::CHUNK, 7] {
            a.sweep(out as u32, &mut adj);
            let bits = |v: &f64| v.to_bits();
            let want: Vec<u64> = f.sweep(out as u32).iter().map(bits).collect();
            assert_eq!(adj.iter().map(bits).collect::<Vec<_>>(), want, "out {out}");
        }
    }

    #[test]
    fn a_clone_is_independent_and_keeps_recording() {
        let mut rng = Rng(42);
        let (mut a, mut f) = (Arena::new(), Flat::new());
        for _ in 0..Arena::CHUNK + 100 {
            record(&mut a, &mut f, &mut rng);
        }
        let mut b = a.clone();
        let mut g = Flat {
            ops: f.ops.clone(),
            args: f.args.clone(),
            partials: f.partials.clone(),
        };
        a.truncate(3);
        f.ops.truncate(3);
        f.args.truncate(3);
        f.partials.truncate(3);
        for _ in 0..2 * Arena::CHUNK {
            record(&mut b, &mut g, &mut rng);
        }
        assert_same(&a, &f);
        assert_same(&b, &g);
    }

    #[test]
    fn a_loop_across_a_chunk_boundary_reuses_one_spare_chunk() {
        let mut a = Arena::new();
        // The persistent part ends just below the boundary, each step's graph crosses it.
        while a.len() < Arena::CHUNK - 3 {
            a.leaf();
        }
        let keep = a.len();
        let mut seen = None;
        for step in 0..50 {
            let x = a.leaf();
            let mut y = x;
            for _ in 0..10 {
                y = a.binary(Binary::Mul, y, x, 2.0, 1.0);
            }
            assert_eq!(a.full.len(), 1);
            // The second chunk's buffers are the same allocation every step.
            let ptr = a.top.nodes.as_ptr();
            assert_eq!(*seen.get_or_insert(ptr), ptr, "step {step}");
            a.truncate(keep);
            assert!(a.full.is_empty() && a.spare.is_some());
        }
    }

    #[test]
    fn truncation_frees_emptied_chunks_but_one() {
        let mut a = Arena::new();
        while a.len() < 10 * Arena::CHUNK + 5 {
            a.leaf();
        }
        assert_eq!(a.full.len(), 10);
        a.truncate(2 * Arena::CHUNK + 1);
        assert_eq!((a.full.len(), a.top_len), (2, 1));
        assert!(a.spare.as_ref().is_some_and(|c| c.cap() == Arena::CHUNK));
        a.truncate(0);
        assert_eq!(a.len(), 1);
        assert!(a.full.is_empty() && a.spare.is_some());
        assert_eq!(a.node(0), (Op::Leaf, [SINK, SINK], [0.0, 0.0]));
    }

    #[test]
    fn chunk_capacities_double_up_to_a_whole_chunk() {
        for cap in [1, FIRST_CAP, 1000, Arena::CHUNK - 1, Arena::CHUNK] {
            let c = Chunk::with_capacity(cap);
            assert_eq!((c.cap(), c.ops.len()), (cap, cap));
        }
        // The first chunk doubles up to a whole chunk, then recording moves on.
        let mut a = Arena::new();
        let mut caps = vec![a.top.cap()];
        while a.full.is_empty() {
            a.leaf();
            if a.full.is_empty() && a.top.cap() != *caps.last().unwrap() {
                caps.push(a.top.cap());
            }
        }
        let doubling: Vec<usize> = (4..=CHUNK_BITS).map(|b| 1 << b).collect();
        assert_eq!(caps, doubling);
        assert_eq!((a.top_len, a.top.cap()), (1, Arena::CHUNK));
    }

    #[test]
    #[should_panic(expected = "past the end")]
    fn a_node_past_the_end_panics() {
        let mut a = Arena::new();
        while a.len() < Arena::CHUNK + 1 {
            a.leaf();
        }
        a.node((2 * Arena::CHUNK) as u32);
    }
}
