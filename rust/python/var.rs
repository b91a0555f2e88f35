//! Python `Var`: a handle to a node on the calling thread's tape.
//!
//! Each thread has one [`Arena`]. A `Var` owns exactly one node; when the last `Var` at
//! the top of the arena is dropped, the top is truncated down to the highest node still
//! owned. Nodes only point backwards, so nothing above a live node is ever needed by it.
//! Dead nodes below a live one (last step's graph under this step's loss) are dropped by
//! compaction once the arena has doubled, so a training loop that builds a fresh graph
//! each step over persistent leaves stays flat.

use super::debug;
use super::number::{binary_any, method_result, number_methods, number_result, Number};
use crate::arena::{Arena, Op, SINK};
use crate::op::{Binary, Unary};
use pyo3::exceptions::{PyAttributeError, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

static NEXT_TAPE_ID: AtomicU64 = AtomicU64::new(1);

/// Slots of Vars dropped away from their tape's thread (a queue handing results to
/// another thread, the cyclic collector running there): the owner releases them at its
/// next tape operation, so their nodes do not stay live forever.
#[derive(Default)]
struct Pending {
    /// Set when `slots` is not empty: the owner's per-operation check is one load.
    any: AtomicBool,
    slots: Mutex<Vec<u32>>,
}

/// The pending list of every live tape, by tape id. A tape leaves it when its thread
/// exits; a Var dropped after that has nothing left to release.
static PENDING: Mutex<Option<FxHashMap<u64, Arc<Pending>>>> = Mutex::new(None);

fn pending_registry<R>(f: impl FnOnce(&mut FxHashMap<u64, Arc<Pending>>) -> R) -> R {
    let mut g = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(FxHashMap::default))
}

/// Hands `slot` of tape `tape` to its owner thread, if that thread still runs.
fn release_elsewhere(tape: u64, slot: u32) {
    if let Some(p) = pending_registry(|r| r.get(&tape).cloned()) {
        p.slots.lock().unwrap_or_else(|e| e.into_inner()).push(slot);
        p.any.store(true, Ordering::Release);
    }
}

/// The calling thread's tape and what the Python layer keeps beside it.
///
/// A `Var` names its node through a slot (`node_of[slot]`), not by index, so the arena can
/// be compacted: a training loop keeps its new loss alive while the next graph is built
/// above it, so the top is never free and dead graphs would pile up below live ones.
struct ThreadTape {
    id: u64,
    arena: Arena,
    /// `slot_at[i]`: the slot of the live `Var` owning node i, or [`NO_SLOT`].
    slot_at: Vec<u32>,
    /// `node_of[slot]`: the node a live `Var` refers to.
    node_of: Vec<u32>,
    free_slots: Vec<u32>,
    /// Adjoints left by the last `backward()`; shorter than the arena when it ran lower.
    grads: Vec<f64>,
    /// Arena length after the last compaction: the next one runs once the arena has grown
    /// well past it, so compaction costs O(1) amortized per node.
    compacted_len: usize,
    /// Slots released by other threads, drained by [`ThreadTape::drain`].
    pending: Arc<Pending>,
}

impl Drop for ThreadTape {
    fn drop(&mut self) {
        pending_registry(|r| r.remove(&self.id));
    }
}

const NO_SLOT: u32 = u32::MAX;
/// The sink's owner: it is never released.
const SINK_SLOT: u32 = u32::MAX - 1;

impl ThreadTape {
    fn new() -> Self {
        let id = NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed);
        let pending = Arc::new(Pending::default());
        pending_registry(|r| r.insert(id, pending.clone()));
        ThreadTape {
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

    /// Releases the slots other threads dropped since the last call.
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
    fn at(&self, slot: u32) -> u32 {
        self.node_of[slot as usize]
    }

    /// Gives the new node `idx` (just pushed on the arena) a slot.
    fn own(&mut self, idx: u32) -> u32 {
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

    fn release(&mut self, slot: u32) {
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

    /// Drops every node no live `Var` can reach and renumbers the rest, in order (so index
    /// order stays topological).
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
                _ => arena.unary(op, a, da),
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
}

thread_local! {
    static TAPE: RefCell<ThreadTape> = RefCell::new(ThreadTape::new());
}

/// Runs `f` on this thread's tape after checking that every `Var` in `vars` belongs to it.
fn with_tape<R>(vars: &[&PyVar], f: impl FnOnce(&mut ThreadTape) -> R) -> PyResult<R> {
    TAPE.with_borrow_mut(|t| {
        t.drain();
        for v in vars {
            if v.tape != t.id {
                return Err(PyRuntimeError::new_err(
                    "this Var was made on another thread: a Var belongs to the thread that \
                     created it; build the graph and call backward() on one thread",
                ));
            }
        }
        Ok(f(t))
    })
}

/// A differentiable real number recorded on the calling thread's tape (reverse mode).
///
/// >>> import wengert as wg
/// >>> x = wg.Var(3.0)
/// >>> y = x * x + wg.sin(x)
/// >>> y.backward()
/// >>> round(x.grad, 6)
/// 5.010008
#[pyclass(name = "Var", module = "wengert", frozen)]
pub struct PyVar {
    tape: u64,
    /// Index into the tape's `node_of`: the node moves when the tape is compacted.
    slot: u32,
    leaf: bool,
    value: AtomicU64,
}

impl PyVar {
    fn node(tape: &mut ThreadTape, idx: u32, value: f64, leaf: bool) -> PyVar {
        PyVar {
            tape: tape.id,
            slot: tape.own(idx),
            leaf,
            value: AtomicU64::new(value.to_bits()),
        }
    }

    /// Makes a leaf on this thread's tape.
    pub(crate) fn leaf(value: f64) -> PyVar {
        TAPE.with_borrow_mut(|t| {
            t.drain();
            let idx = t.arena.leaf();
            PyVar::node(t, idx, value, true)
        })
    }

    /// d(self)/d(each of `wrt`), by one sweep that leaves `.grad` untouched.
    pub(crate) fn gradient(&self, wrt: &[&PyVar]) -> PyResult<Vec<f64>> {
        let mut all: Vec<&PyVar> = wrt.to_vec();
        all.push(self);
        let (grads, found) = with_tape(&all, |t| {
            let mut adj = Vec::new();
            let out = t.at(self.slot);
            t.arena.sweep(out, &mut adj);
            let found = debug::on()
                .then(|| debug::scan(&t.arena, &adj, out))
                .flatten();
            let grads: Vec<f64> = wrt
                .iter()
                .map(|v| adj.get(t.at(v.slot) as usize).copied().unwrap_or(0.0))
                .collect();
            (grads, found)
        })?;
        debug::raise(found)?;
        Ok(grads)
    }
}

impl Drop for PyVar {
    fn drop(&mut self) {
        // On its own thread the node is released at once; anywhere else (another thread,
        // the cyclic collector running there, this thread while its tape is borrowed or
        // being destroyed) the slot goes to the owner's pending list, never touching
        // another thread's tape from here.
        let released = TAPE
            .try_with(|t| match t.try_borrow_mut() {
                Ok(mut t) if t.id == self.tape => {
                    t.release(self.slot);
                    true
                }
                _ => false,
            })
            .unwrap_or(false);
        if !released {
            release_elsewhere(self.tape, self.slot);
        }
    }
}

impl Number for PyVar {
    const NAME: &'static str = "Var";

    fn val(&self) -> f64 {
        f64::from_bits(self.value.load(Ordering::Relaxed))
    }

    fn unary(&self, op: Unary) -> PyResult<Self> {
        let (v, d) = op.rule(self.val());
        let site = debug_site(op.name(), &[self.val()], v)?;
        with_tape(&[self], |t| {
            let idx = t.arena.unary(Op::Unary(op), t.at(self.slot), d);
            if let Some(s) = site {
                debug::note(idx, s, Op::Unary(op), [d, 0.0], &[self.val()]);
            }
            PyVar::node(t, idx, v, false)
        })
    }

    fn binary(&self, op: Binary, y: &Self) -> PyResult<Self> {
        let (v, dx, dy) = op.rule(self.val(), y.val());
        let site = debug_site(op.name(), &[self.val(), y.val()], v)?;
        with_tape(&[self, y], |t| {
            let (a, b) = (t.at(self.slot), t.at(y.slot));
            let idx = t.arena.binary(op, a, b, dx, dy);
            if let Some(s) = site {
                debug::note(idx, s, Op::Binary(op), [dx, dy], &[self.val(), y.val()]);
            }
            PyVar::node(t, idx, v, false)
        })
    }

    fn binary_const(&self, op: Binary, c: f64, const_first: bool) -> PyResult<Self> {
        let (v, d) = if const_first {
            let (v, _, d) = op.rule(c, self.val());
            (v, d)
        } else {
            let (v, d, _) = op.rule(self.val(), c);
            (v, d)
        };
        let operands = if const_first {
            [c, self.val()]
        } else {
            [self.val(), c]
        };
        let site = debug_site(op.name(), &operands, v)?;
        with_tape(&[self], |t| {
            let idx = t.arena.unary(Op::Binary(op), t.at(self.slot), d);
            if let Some(s) = site {
                debug::note(idx, s, Op::Binary(op), [d, 0.0], &operands);
            }
            PyVar::node(t, idx, v, false)
        })
    }
}

number_methods!(PyVar);

/// `wg.debug_nans` for an eager op: nothing but one load when the check is off.
#[inline(always)]
fn debug_site(op: &str, operands: &[f64], value: f64) -> PyResult<Option<i64>> {
    if debug::on() {
        debug::eager_var(op, operands, value)
    } else {
        Ok(None)
    }
}

/// The value of a new leaf: a real number, and not a `Var` or `Dual`, whose derivative
/// information would silently be dropped.
fn leaf_value(value: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    if let Some(v) = super::number::plain_number(value)? {
        return Ok(v);
    }
    let got = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    Err(PyTypeError::new_err(format!(
        "{what} must be a real number (float or int), got {got}"
    )))
}

#[pymethods]
impl PyVar {
    #[new]
    fn py_new(value: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyVar::leaf(leaf_value(value, "Var(value): value")?))
    }

    /// The value computed when this Var was made (settable on leaves).
    #[getter]
    fn value(&self) -> f64 {
        self.val()
    }

    #[setter]
    fn set_value(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        if !self.leaf {
            return Err(PyAttributeError::new_err(
                "only a leaf Var (one made by wg.Var(x)) can have its value set; this Var was \
                 computed by an operation: make a new leaf with wg.Var(x)",
            ));
        }
        let v = leaf_value(value, "Var.value")?;
        self.value.store(v.to_bits(), Ordering::Relaxed);
        Ok(())
    }

    /// Alias of `value`, as in micrograd.
    #[getter]
    fn data(&self) -> f64 {
        self.val()
    }

    #[setter]
    fn set_data(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.set_value(value)
    }

    /// d(output)/d(self) from the last `backward()`; 0.0 before one or when unreached.
    #[getter]
    fn grad(&self) -> PyResult<f64> {
        with_tape(&[self], |t| {
            t.grads
                .get(t.at(self.slot) as usize)
                .copied()
                .unwrap_or(0.0)
        })
    }

    #[setter]
    fn set_grad(&self, g: f64) -> PyResult<()> {
        with_tape(&[self], |t| {
            let i = t.at(self.slot) as usize;
            if t.grads.len() <= i {
                t.grads.resize(i + 1, 0.0);
            }
            t.grads[i] = g;
        })
    }

    /// True for a Var made by `Var(x)` rather than computed.
    #[getter]
    fn is_leaf(&self) -> bool {
        self.leaf
    }

    /// Sets `.grad` of every Var this one depends on to d(self)/d(that Var).
    fn backward(&self) -> PyResult<()> {
        let found = with_tape(&[self], |t| {
            let mut adj = std::mem::take(&mut t.grads);
            let out = t.at(self.slot);
            t.arena.sweep(out, &mut adj);
            let found = debug::on()
                .then(|| debug::scan(&t.arena, &adj, out))
                .flatten();
            t.grads = adj;
            found
        })?;
        debug::raise(found)
    }

    /// Graphviz DOT text of the graph this Var depends on.
    fn to_dot(&self) -> PyResult<String> {
        with_tape(&[self], |t| t.arena.to_dot(t.at(self.slot)))
    }

    fn __repr__(&self) -> PyResult<String> {
        let g = self.grad()?;
        Ok(format!("Var({}, grad={})", short(self.val()), short(g)))
    }
}

/// A number as Python prints it rounded to 6 decimals: `2.016647`, `0.0`, `nan`, `inf`.
pub(crate) fn short(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        let r = (x * 1e6).round() / 1e6;
        if r.is_finite() {
            format!("{r:?}")
        } else {
            format!("{x:?}")
        }
    }
}

/// Number of nodes on the calling thread's tape (the sink included): for memory tests.
#[pyfunction]
pub fn tape_size() -> usize {
    TAPE.with_borrow_mut(|t| {
        t.drain();
        t.arena.len()
    })
}

/// d(y)/d(each of `wrt`) without touching `.grad`: the core of `wg.grad(y, wrt)`.
#[pyfunction]
pub fn var_gradient(y: PyRef<'_, PyVar>, wrt: Vec<PyRef<'_, PyVar>>) -> PyResult<Vec<f64>> {
    let wrt: Vec<&PyVar> = wrt.iter().map(|v| &**v).collect();
    y.gradient(&wrt)
}
