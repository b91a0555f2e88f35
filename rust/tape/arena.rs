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
//!
//! Storage is a list of fixed-size chunks of [`Arena::CHUNK`] nodes, each chunk its own
//! struct of arrays (op codes, argument pairs, partial pairs). Node `i` lives in chunk
//! `i / CHUNK` at `i % CHUNK` (a shift and a mask). Recording past a full chunk starts the
//! next one at its final size; a full chunk is never reallocated or copied. So the heap
//! held is the payload ([`Arena::BYTES_PER_NODE`] per node), plus the unused part of the
//! top chunk, plus a small vector of chunk headers. Only the first chunk grows by doubling
//! (up to `CHUNK` nodes, copying as it goes), so a small tape stays small; past it the heap
//! never briefly holds an old and a new copy of a buffer. [`Arena::truncate`] frees chunks
//! that become empty, keeping one as a spare so that a loop which records and drops a
//! graph across a chunk boundary does not allocate and free a chunk every step.

use crate::op::{Binary, Unary};
use crate::scalar::real::strong_mul;
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

/// log2 of [`Arena::CHUNK`].
const CHUNK_BITS: u32 = 12;
const CHUNK_MASK: usize = (1 << CHUNK_BITS) - 1;
/// Index of the last chunk node indices can reach: node `u32::MAX` does not exist (the
/// tape holds at most 2^32 - 1 nodes), so that chunk holds one node less.
const LAST_CHUNK: usize = (u32::MAX as usize) >> CHUNK_BITS;
/// Throwaway adjoint slots [`Arena::sweep`] keeps past the end, for each argument slot
/// (a power of two).
const SCRATCH: usize = 8;
/// Capacity of a new arena's first chunk, before it grows.
const FIRST_CAP: usize = 16;

/// One chunk of nodes, struct-of-arrays. Every chunk but the top one of an [`Arena`] is
/// full.
///
/// The capacity of `ops` is exactly the number of nodes the chunk may hold (see
/// [`exact_vec`]): recording compares the length of `ops` with it, the one check on the
/// hot path besides the vectors' own, and moves on to the next chunk when they meet. The
/// other two vectors have at least that capacity, so no push into a chunk reallocates.
#[derive(Debug)]
struct Chunk {
    ops: Vec<Op>,
    args: Vec<[u32; 2]>,
    partials: Vec<[f64; 2]>,
}

/// An empty vector whose capacity is exactly `cap`.
///
/// `Vec::with_capacity` gives exactly what it is asked for today, but documents only "at
/// least"; should it give more, a boxed slice (whose length is its capacity) is made
/// instead.
fn exact_vec<T: Copy>(cap: usize, fill: T) -> Vec<T> {
    let v = Vec::with_capacity(cap);
    if v.capacity() == cap {
        return v;
    }
    let mut v = vec![fill; cap].into_boxed_slice().into_vec();
    v.clear();
    v
}

impl Chunk {
    fn with_capacity(cap: usize) -> Self {
        Chunk {
            ops: exact_vec(cap, Op::Leaf),
            args: Vec::with_capacity(cap),
            partials: Vec::with_capacity(cap),
        }
    }

    /// How many nodes the chunk may hold.
    #[inline(always)]
    fn cap(&self) -> usize {
        self.ops.capacity()
    }

    /// A copy of the nodes with room for `cap` of them.
    fn copy_with_capacity(&self, cap: usize) -> Self {
        let mut c = Chunk::with_capacity(cap.max(self.ops.len()));
        c.ops.extend_from_slice(&self.ops);
        c.args.extend_from_slice(&self.args);
        c.partials.extend_from_slice(&self.partials);
        c
    }

    /// Moves the nodes to buffers with room for `cap` nodes, one vector at a time, so at
    /// most one old buffer is held beside the new ones.
    fn grow_to(&mut self, cap: usize) {
        let mut ops = exact_vec(cap, Op::Leaf);
        ops.extend_from_slice(&self.ops);
        self.ops = ops;
        self.args.reserve_exact(cap - self.args.len());
        self.partials.reserve_exact(cap - self.partials.len());
    }

    fn truncate(&mut self, len: usize) {
        self.ops.truncate(len);
        self.args.truncate(len);
        self.partials.truncate(len);
    }

    /// True when the chunk may hold a whole [`Arena::CHUNK`] nodes.
    fn is_whole(&self) -> bool {
        self.cap() == Arena::CHUNK
            && self.args.capacity() >= Arena::CHUNK
            && self.partials.capacity() >= Arena::CHUNK
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
    /// Its `ops` capacity is where [`Arena::grow`] runs next.
    top: Chunk,
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
            full: self
                .full
                .iter()
                .map(|c| c.copy_with_capacity(Arena::CHUNK))
                .collect(),
            top: self.top.copy_with_capacity(self.top.cap()),
            spare: None,
        }
    }
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
        top.ops.push(Op::Leaf);
        top.args.push([SINK, SINK]);
        top.partials.push([0.0, 0.0]);
        Arena {
            full: Vec::new(),
            top,
            spare: None,
        }
    }

    /// Number of nodes, the sink included.
    #[inline]
    pub fn len(&self) -> usize {
        (self.full.len() << CHUNK_BITS) + self.top.ops.len()
    }

    /// True when only the sink is recorded.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 1
    }

    /// How many nodes chunk `k` may hold.
    fn chunk_cap(k: usize) -> usize {
        if k == LAST_CHUNK {
            Self::CHUNK - 1
        } else {
            Self::CHUNK
        }
    }

    #[inline(always)]
    fn push(&mut self, op: Op, args: [u32; 2], partials: [f64; 2]) -> u32 {
        // The same comparison as `ops.push`'s own capacity check, which it then subsumes.
        if self.top.ops.len() == self.top.cap() {
            self.grow();
        }
        let j = self.top.ops.len();
        self.top.ops.push(op);
        self.top.args.push(args);
        self.top.partials.push(partials);
        ((self.full.len() << CHUNK_BITS) + j) as u32
    }

    /// Makes room for one more node: doubles a top chunk that is not yet whole (the first
    /// chunk of a small tape), or starts the next chunk (the spare if there is one).
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let len = self.top.ops.len();
        let k = self.full.len();
        let cap = Self::chunk_cap(k);
        if len < cap {
            self.top.grow_to((2 * len).clamp(FIRST_CAP, cap));
        } else {
            assert!(
                k < LAST_CHUNK,
                "wengert: a tape holds at most 2^32 - 1 nodes"
            );
            let next = match self.spare.take() {
                Some(c) if k + 1 < LAST_CHUNK => c,
                _ => Chunk::with_capacity(Self::chunk_cap(k + 1)),
            };
            self.full.push(mem::replace(&mut self.top, next));
        }
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

    /// Evaluates `op`'s rule at `x` (the value of node `a`) and records the node: its
    /// index and value. Every tape records through these three.
    #[inline(always)]
    pub fn record_unary(&mut self, op: Unary, a: u32, x: f64) -> (u32, f64) {
        let (v, d) = op.rule(x);
        if op.constant_partial() == Some(0.0) {
            // Derivative 0 (the steps, stop_gradient): not linked to its argument, so
            // nothing flows back, not even a NaN adjoint times 0 (JAX's symbolic zero;
            // the compiled plan skips these arguments alike).
            return (self.push(Op::Unary(op), [SINK, SINK], [0.0, 0.0]), v);
        }
        (self.unary(Op::Unary(op), a, d), v)
    }

    /// As [`Arena::record_unary`], for `op(x, y)` of nodes `a` and `b`.
    #[inline(always)]
    pub fn record_binary(&mut self, op: Binary, a: u32, x: f64, b: u32, y: f64) -> (u32, f64) {
        let (v, dx, dy) = op.rule(x, y);
        (self.binary(op, a, b, dx, dy), v)
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
        let (v, d) = if const_first {
            let (v, _, d) = op.rule(c, x);
            (v, d)
        } else {
            let (v, d, _) = op.rule(x, c);
            (v, d)
        };
        (self.unary(Op::Binary(op), a, d), v)
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
            let mut emptied = mem::replace(&mut self.top, below);
            if self.spare.is_none() && emptied.is_whole() {
                emptied.truncate(0);
                self.spare = Some(emptied);
            }
        }
        self.top.truncate(len - (k << CHUNK_BITS));
    }

    /// Chunk number `k`; panics past the top chunk.
    #[inline]
    fn chunk(&self, k: usize) -> &Chunk {
        match k.cmp(&self.full.len()) {
            std::cmp::Ordering::Less => &self.full[k],
            std::cmp::Ordering::Equal => &self.top,
            std::cmp::Ordering::Greater => panic!("wengert: node index past the end of the arena"),
        }
    }

    /// The reverse sweep: fills `adj` with d(node `out`)/d(node i) for every i <= out.
    ///
    /// One backward scan, chunk by chunk, each chunk a plain loop over its slices. Every
    /// adjoint receives the same additions in the same order as the textbook loop
    ///
    /// ```text
    /// for i in (1..n).rev() {
    ///     if adj[i] != 0 { adj[a_i] += adj[i] * da_i; adj[b_i] += adj[i] * db_i; }
    /// }
    /// ```
    ///
    /// so results are bit-for-bit those of that loop; two changes only shorten the chains
    /// of dependent memory operations the CPU has to wait for:
    ///
    /// - The sink's adjoint is thrown away, so an argument slot pointing at the sink adds
    ///   into one of a few throwaway slots past the end of `adj` instead, picked by
    ///   node index. Leaves and unary nodes no longer form one long chain of
    ///   read-modify-writes of `adj[0]`.
    /// - When node `i`'s first argument is node `i - 1` (a chain `y = f(x)`, `s = s + t`)
    ///   and its second is not, that contribution is the last one node `i - 1` receives, so
    ///   it is carried in a register and added when node `i - 1` is reached (a store and a
    ///   reload fewer on the critical path). Its slot in `adj` is left untouched meanwhile
    ///   (the contribution goes to a scratch slot), and adding a carry of `0.0` changes
    ///   nothing, since an adjoint starts at `+0.0` and a sum starting there is never
    ///   `-0.0`.
    ///
    /// Strong zero ([`strong_mul`]): a node whose adjoint is exactly zero (`+0.0` or
    /// `-0.0`) contributes a zero to its arguments, whatever its partials. A node the
    /// output does not depend on, such as a logged `sqrt(x)` at `x = -1` (partial NaN) or
    /// `sqrt(b * b)` at `b = 0` (partial inf), so leaves every gradient as it was. This is
    /// the one place the result differs from the IEEE products of the loop above: there
    /// `0 * inf` and `0 * nan` add a NaN. A NaN or infinite adjoint still propagates.
    pub fn sweep(&self, out: u32, adj: &mut Vec<f64>) {
        let n = out as usize + 1;
        assert!(
            n <= self.len(),
            "wengert: node index past the end of the arena"
        );
        adj.clear();
        adj.resize(n + 2 * SCRATCH, 0.0);
        adj[n - 1] = 1.0;
        let mut carry = 0.0;
        for k in (0..=(n - 1) >> CHUNK_BITS).rev() {
            let c = self.chunk(k);
            let base = k << CHUNK_BITS;
            let m = (n - base).min(Self::CHUNK);
            let nodes = c.args[..m].iter().zip(&c.partials[..m]);
            for (j, (&[a, b], &[da, db])) in nodes.enumerate().rev() {
                let i = base + j;
                let (a, b) = (a as usize, b as usize);
                debug_assert!(a < i.max(1) && b < i.max(1), "arguments precede their node");
                let g = adj[i] + carry;
                adj[i] = g;
                let chained = a + 1 == i && b != a;
                let scratch = n + (i & (SCRATCH - 1));
                let ta = if a == SINK as usize || chained {
                    scratch
                } else {
                    a
                };
                let tb = if b == SINK as usize {
                    scratch + SCRATCH
                } else {
                    b
                };
                // Selects, not branches: whether g is 0 follows the data.
                let (ga, gb) = (strong_mul(da, g), strong_mul(db, g));
                adj[ta] += ga;
                adj[tb] += gb;
                carry = if chained { ga } else { 0.0 };
            }
        }
        adj.truncate(n);
        adj[SINK as usize] = 0.0;
    }

    /// The op, arguments and partials of node `i`.
    pub fn node(&self, i: u32) -> (Op, [u32; 2], [f64; 2]) {
        let i = i as usize;
        let c = self.chunk(i >> CHUNK_BITS);
        let j = i & CHUNK_MASK;
        (c.ops[j], c.args[j], c.partials[j])
    }

    /// Bytes of recorded state per node (op code, argument indices, partials).
    pub const BYTES_PER_NODE: usize = std::mem::size_of::<Op>()
        + std::mem::size_of::<[u32; 2]>()
        + std::mem::size_of::<[f64; 2]>();
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
        assert!(a.full.iter().all(|c| c.ops.len() == Arena::CHUNK
            && c.args.len() == Arena::CHUNK
            && c.partials.len() == Arena::CHUNK));
        assert!(!a.top.ops.is_empty() && a.top.ops.len() <= a.top.cap());
        assert!(a.top.cap() <= Arena::CHUNK);
        assert!(a.top.args.capacity() >= a.top.cap() && a.top.partials.capacity() >= a.top.cap());
        assert!(a.full.iter().all(|c| c.cap() == Arena::CHUNK));
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
            let ptr = a.top.partials.as_ptr();
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
        assert_eq!((a.full.len(), a.top.ops.len()), (2, 1));
        assert!(a
            .spare
            .as_ref()
            .is_some_and(|c| c.ops.is_empty() && c.is_whole()));
        a.truncate(0);
        assert_eq!(a.len(), 1);
        assert!(a.full.is_empty() && a.spare.is_some());
        assert_eq!(a.node(0), (Op::Leaf, [SINK, SINK], [0.0, 0.0]));
    }

    #[test]
    fn chunk_capacities_are_exact() {
        for cap in [1, FIRST_CAP, 1000, Arena::CHUNK - 1, Arena::CHUNK] {
            assert_eq!(exact_vec(cap, 0u8).capacity(), cap);
            assert_eq!(Chunk::with_capacity(cap).cap(), cap);
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
        assert_eq!((a.top.ops.len(), a.top.cap()), (1, Arena::CHUNK));
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
