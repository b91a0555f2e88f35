//! The managed tape: one [`Arena`] per thread that reclaims the nodes no handle can reach.
//! Python's `Var` is a handle to it.
//!
//! A handle owns exactly one node; when the last handle at the top of the arena is
//! released, the top is truncated down to the highest node still owned. Nodes only point
//! backwards, so nothing above a live node is ever needed by it. Dead nodes below a live
//! one (last step's graph under this step's loss) are dropped by compaction once the arena
//! has doubled, so a training loop that builds a fresh graph each step over persistent
//! leaves stays flat.
//!
//! A handle names its node through a [`Slot`], not by index, so the arena can be
//! compacted: a training loop keeps its new loss alive while the next graph is built above
//! it, so the top is never free and dead graphs would pile up below live ones.

use super::arena::{Arena, Op, SINK};
use crate::op::{Binary, Unary};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a handle keeps to find its node on a [`ManagedTape`]: stable across compaction.
pub type Slot = u32;

/// A handle used on a thread whose tape did not record it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForeignTape;

impl std::fmt::Display for ForeignTape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a handle used on another thread than the one whose tape recorded it")
    }
}

impl std::error::Error for ForeignTape {}

static NEXT_TAPE_ID: AtomicU64 = AtomicU64::new(1);

/// Slots of handles released away from their tape's thread (a queue handing results to
/// another thread, Python's cyclic collector running there): the owner releases them at
/// its next tape operation, so their nodes do not stay live forever.
#[derive(Default)]
struct Pending {
    /// Set when `slots` is not empty: the owner's per-operation check is one load.
    any: AtomicBool,
    slots: Mutex<Vec<Slot>>,
}

/// The pending list of every live tape, by tape id. A tape leaves it when its thread
/// exits; a handle released after that has nothing left to release.
static PENDING: Mutex<Option<FxHashMap<u64, Arc<Pending>>>> = Mutex::new(None);

fn pending_registry<R>(f: impl FnOnce(&mut FxHashMap<u64, Arc<Pending>>) -> R) -> R {
    let mut g = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(FxHashMap::default))
}

/// Hands `slot` of tape `tape` to its owner thread, if that thread still runs.
fn release_elsewhere(tape: u64, slot: Slot) {
    if let Some(p) = pending_registry(|r| r.get(&tape).cloned()) {
        p.slots.lock().unwrap_or_else(|e| e.into_inner()).push(slot);
        p.any.store(true, Ordering::Release);
    }
}

/// A thread's reclaiming tape (see the module documentation). Reach the calling thread's
/// with [`with_thread_tape`].
pub struct ManagedTape {
    id: u64,
    arena: Arena,
    /// `slot_at[i]`: the slot of the live handle owning node i, or [`NO_SLOT`].
    slot_at: Vec<Slot>,
    /// `node_of[slot]`: the node a live handle refers to.
    node_of: Vec<u32>,
    free_slots: Vec<Slot>,
    /// Adjoints left by the last [`ManagedTape::backward`]; shorter than the arena when it
    /// ran lower.
    grads: Vec<f64>,
    /// Arena length after the last compaction: the next one runs once the arena has grown
    /// well past it, so compaction costs O(1) amortized per node.
    compacted_len: usize,
    /// Slots released by other threads, drained by [`ManagedTape::drain`].
    pending: Arc<Pending>,
}

impl Drop for ManagedTape {
    fn drop(&mut self) {
        pending_registry(|r| r.remove(&self.id));
    }
}

const NO_SLOT: Slot = u32::MAX;
/// The sink's owner: it is never released.
const SINK_SLOT: Slot = u32::MAX - 1;

impl Default for ManagedTape {
    fn default() -> Self {
        Self::new()
    }
}

impl ManagedTape {
    /// An empty tape with an id of its own.
    pub fn new() -> Self {
        let id = NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed);
        let pending = Arc::new(Pending::default());
        pending_registry(|r| r.insert(id, pending.clone()));
        ManagedTape {
            id,
            arena: Arena::new(),
            slot_at: vec![SINK_SLOT],
            node_of: Vec::new(),
            free_slots: Vec::new(),
            grads: Vec::new(),
            compacted_len: 0,
            pending,
        }
    }

    /// The id handles carry to say which tape their slot belongs to.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Number of recorded nodes (the sink included).
    pub fn len(&self) -> usize {
        self.arena.len()
    }

    /// True when nothing but the sink is recorded.
    pub fn is_empty(&self) -> bool {
        self.arena.is_empty()
    }

    /// Releases the slots other threads released since the last call.
    fn drain(&mut self) {
        if !self.pending.any.load(Ordering::Acquire) {
            return;
        }
        let slots = {
            let mut v = self.pending.slots.lock().unwrap_or_else(|e| e.into_inner());
            self.pending.any.store(false, Ordering::Release);
            std::mem::take(&mut *v)
        };
        for slot in slots {
            self.release(slot);
        }
    }

    /// The node of `slot`.
    fn at(&self, slot: Slot) -> u32 {
        self.node_of[slot as usize]
    }

    /// Gives the new node `idx` (just pushed on the arena) a slot.
    fn own(&mut self, idx: u32) -> Slot {
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.node_of[s as usize] = idx;
                s
            }
            None => {
                self.node_of.push(idx);
                (self.node_of.len() - 1) as u32
            }
        };
        self.slot_at.push(slot);
        slot
    }

    /// Records an independent variable.
    pub fn leaf(&mut self) -> Slot {
        let idx = self.arena.leaf();
        self.own(idx)
    }

    /// Records `op(x)` where `x` (of value `xv`) is the node of `slot`: the new node's
    /// slot and value.
    pub fn unary(&mut self, op: Unary, x: Slot, xv: f64) -> (Slot, f64) {
        let (idx, v) = self.arena.record_unary(op, self.at(x), xv);
        (self.own(idx), v)
    }

    /// Records `op(x, y)`.
    pub fn binary(&mut self, op: Binary, x: Slot, xv: f64, y: Slot, yv: f64) -> (Slot, f64) {
        let (idx, v) = self.arena.record_binary(op, self.at(x), xv, self.at(y), yv);
        (self.own(idx), v)
    }

    /// Records `op(x, c)`, or `op(c, x)` when `const_first`, for a constant `c`.
    pub fn binary_const(
        &mut self,
        op: Binary,
        x: Slot,
        xv: f64,
        c: f64,
        const_first: bool,
    ) -> (Slot, f64) {
        let (idx, v) = self
            .arena
            .record_binary_const(op, self.at(x), xv, c, const_first);
        (self.own(idx), v)
    }

    /// Gives up the node of `slot`: truncates the top, or compacts once dead nodes have
    /// piled up below live ones.
    pub fn release(&mut self, slot: Slot) {
        let idx = self.node_of[slot as usize] as usize;
        self.slot_at[idx] = NO_SLOT;
        self.free_slots.push(slot);
        if idx + 1 == self.slot_at.len() {
            let mut n = idx;
            while self.slot_at[n - 1] == NO_SLOT {
                n -= 1;
            }
            self.arena.truncate(n);
            self.slot_at.truncate(n);
            self.grads.truncate(n);
            self.compacted_len = self.compacted_len.min(n);
        } else if self.arena.len() > 2 * self.compacted_len + 256 {
            self.compact();
        }
    }

    /// Drops every node no live handle can reach and renumbers the rest, in order (so
    /// index order stays topological).
    fn compact(&mut self) {
        let n = self.arena.len();
        let mut keep: Vec<bool> = self.slot_at.iter().map(|&s| s != NO_SLOT).collect();
        for i in (1..n).rev() {
            if keep[i] {
                let (_, args, _) = self.arena.node(i as u32);
                keep[args[0] as usize] = true;
                keep[args[1] as usize] = true;
            }
        }
        let mut new_index = vec![SINK; n];
        let mut arena = Arena::new();
        let mut slot_at = vec![SINK_SLOT];
        let mut grads = Vec::new();
        for i in 1..n {
            if !keep[i] {
                continue;
            }
            let (op, [a, b], [da, db]) = self.arena.node(i as u32);
            let (a, b) = (new_index[a as usize], new_index[b as usize]);
            let j = match op {
                Op::Leaf => arena.leaf(),
                Op::Binary(bop) if b != SINK => arena.binary(bop, a, b, da, db),
                Op::Binary(_) | Op::Unary(_) => arena.unary(op, a, da),
            };
            new_index[i] = j;
            let slot = self.slot_at[i];
            if slot != NO_SLOT {
                self.node_of[slot as usize] = j;
            }
            slot_at.push(slot);
            if let Some(&g) = self.grads.get(i) {
                grads.resize(j as usize, 0.0);
                grads.push(g);
            }
        }
        self.arena = arena;
        self.slot_at = slot_at;
        self.grads = grads;
        self.compacted_len = self.arena.len();
    }

    /// d(node of `y`)/d(node of each of `wrt`), by one sweep that leaves the stored
    /// gradients untouched.
    pub fn gradient(&self, y: Slot, wrt: &[Slot]) -> Vec<f64> {
        let mut adj = Vec::new();
        self.arena.sweep(self.at(y), &mut adj);
        wrt.iter()
            .map(|&v| adj.get(self.at(v) as usize).copied().unwrap_or(0.0))
            .collect()
    }

    /// The arena and the node of `slot`: for `wg.debug_nans`, which looks at the nodes
    /// behind a non-finite adjoint.
    pub fn arena_node(&self, slot: Slot) -> (&Arena, u32) {
        (&self.arena, self.at(slot))
    }

    /// The adjoints the last [`ManagedTape::backward`] left, by node.
    pub fn adjoints(&self) -> &[f64] {
        &self.grads
    }

    /// Stores d(node of `y`)/d(every node), for [`ManagedTape::grad`].
    pub fn backward(&mut self, y: Slot) {
        let mut adj = std::mem::take(&mut self.grads);
        self.arena.sweep(self.at(y), &mut adj);
        self.grads = adj;
    }

    /// The stored gradient of `slot`'s node: 0 before a [`ManagedTape::backward`] reached it.
    pub fn grad(&self, slot: Slot) -> f64 {
        self.grads
            .get(self.at(slot) as usize)
            .copied()
            .unwrap_or(0.0)
    }

    /// Overwrites the stored gradient of `slot`'s node.
    pub fn set_grad(&mut self, slot: Slot, g: f64) {
        let i = self.at(slot) as usize;
        if self.grads.len() <= i {
            self.grads.resize(i + 1, 0.0);
        }
        self.grads[i] = g;
    }

    /// Graphviz DOT text of the graph `slot`'s node depends on.
    pub fn to_dot(&self, slot: Slot) -> String {
        self.arena.to_dot(self.at(slot))
    }
}

thread_local! {
    static TAPE: RefCell<ManagedTape> = RefCell::new(ManagedTape::new());
}

/// Runs `f` on the calling thread's tape, after releasing what other threads released,
/// and after checking that every id in `tapes` is this tape's.
pub fn with_thread_tape<R>(
    tapes: &[u64],
    f: impl FnOnce(&mut ManagedTape) -> R,
) -> Result<R, ForeignTape> {
    TAPE.with_borrow_mut(|t| {
        t.drain();
        if tapes.iter().any(|&id| id != t.id) {
            return Err(ForeignTape);
        }
        Ok(f(t))
    })
}

/// Releases `slot` of tape `tape` from wherever the handle dies: on its own thread the
/// node is released at once; anywhere else (another thread, this thread while its tape is
/// borrowed or being destroyed) the slot goes to the owner's pending list, never touching
/// another thread's tape from here.
pub fn release(tape: u64, slot: Slot) {
    let released = TAPE
        .try_with(|t| match t.try_borrow_mut() {
            Ok(mut t) if t.id == tape => {
                t.release(slot);
                true
            }
            _ => false,
        })
        .unwrap_or(false);
    if !released {
        release_elsewhere(tape, slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releasing_the_top_truncates() {
        let mut t = ManagedTape::new();
        let x = t.leaf();
        let (y, _) = t.unary(Unary::Sin, x, 1.0);
        let (z, _) = t.binary(Binary::Mul, y, 1.0_f64.sin(), x, 1.0);
        assert_eq!(t.len(), 4);
        t.release(z);
        t.release(y);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn dead_graphs_below_a_live_one_are_compacted() {
        let mut t = ManagedTape::new();
        let x = t.leaf();
        let mut loss = None;
        for _ in 0..100 {
            // A fresh graph per step over a persistent leaf; the previous loss dies only
            // once the new one exists, so the top is never free.
            let mut y = x;
            let mut v = 2.0;
            let mut made = Vec::new();
            for _ in 0..10 {
                let (s, w) = t.binary(Binary::Mul, y, v, x, 2.0);
                made.push(s);
                (y, v) = (s, w);
            }
            made.pop();
            for s in made {
                t.release(s);
            }
            if let Some(old) = loss.replace(y) {
                t.release(old);
            }
        }
        let y = loss.unwrap();
        assert!(t.len() < 600, "tape grew to {}", t.len());
        // 2^11 = x^11 at x = 2: d/dx = 11 x^10.
        assert_eq!(t.gradient(y, &[x]), vec![11.0 * 1024.0]);
    }

    #[test]
    fn handles_of_another_thread_are_refused_and_released_by_their_owner() {
        let (id, slot) = with_thread_tape(&[], |t| {
            let x = t.leaf();
            (t.id(), x)
        })
        .unwrap();
        let len = with_thread_tape(&[id], |t| t.len()).unwrap();
        std::thread::spawn(move || {
            assert_eq!(with_thread_tape(&[id], |_| ()), Err(ForeignTape));
            release(id, slot);
        })
        .join()
        .unwrap();
        assert_eq!(with_thread_tape(&[id], |t| t.len()).unwrap(), len - 1);
    }
}
