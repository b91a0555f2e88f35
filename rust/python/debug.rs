//! The binding side of `wg.debug_nans` (the rest is `wengert._debug`): the switch eager
//! ops read, the source sites of eager nodes while the check is on, and the exports the
//! Python layer re-runs rows from (a compiled function's instruction list, the site of
//! each instruction). When the check is off, an eager op pays one relaxed atomic load.

use super::compiled::PyCompiled;
use super::trace::PyTrace;
use crate::compile::program::Instr;
use crate::tape::arena::{Arena, Op};
use crate::tape::managed::{ManagedTape, Slot};
use crate::tape::nonfinite::{first_bad_adjoint, first_nonfinite};
use pyo3::prelude::*;
use pyo3::types::PyList;
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether `wg.debug_nans` is on (process-wide, like NumPy's error state is per thread
/// and JAX's flag global: a switch set around a block of code).
static ON: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Nesting depth of `wengert._debug.suspended()`: a transform runs its fast path with
    /// eager checks suspended and diagnoses afterwards, where `wg.where` is visible.
    static SUSPENDED: Cell<u32> = const { Cell::new(0) };
    /// Per eager node recorded while the check was on: its source site and operands, and
    /// its op and partials to tell a reused node index from the node the note was for.
    static NOTES: RefCell<FxHashMap<u32, Note>> = RefCell::new(FxHashMap::default());
}

/// Notes kept at most; past it they start afresh (an unknown site is reported as such).
const MAX_NOTES: usize = 1 << 20;

struct Note {
    site: i64,
    op: Op,
    partials: [u64; 2],
    operands: [f64; 2],
    n_operands: u8,
}

/// Whether the check is on at all: the one load an eager op pays.
#[inline(always)]
pub(super) fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Whether the check is on and not suspended on this thread.
pub(super) fn active() -> bool {
    on() && SUSPENDED.with(|s| s.get() == 0)
}

fn module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import("wengert._debug")
}

/// `wengert._debug._site`, looked up once: tracing calls it for every recorded op.
static SITE_FN: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();

/// The id of the Python source line running now (`wengert._debug._site`), or -1.
pub(super) fn site() -> i64 {
    Python::attach(|py| {
        let f = SITE_FN.get_or_try_init(py, || module(py)?.getattr("_site").map(Bound::unbind));
        f.and_then(|f| f.bind(py).call0()?.extract::<i64>())
            .unwrap_or(-1)
    })
}

/// Checks an eager op whose operands are `operands` (with tangents `tangents` for a Dual)
/// and whose result is `value` (and `tangent`): a FloatingPointError when the result is
/// not finite although every operand is. Call only when [`on`].
pub(super) fn check_eager(
    op: &str,
    operands: &[f64],
    tangents: &[f64],
    value: f64,
    tangent: f64,
) -> PyResult<()> {
    let finite_in = operands.iter().chain(tangents).all(|x| x.is_finite());
    if !finite_in || (value.is_finite() && tangent.is_finite()) || !active() {
        return Ok(());
    }
    Python::attach(|py| {
        let e = module(py)?.getattr("_eager_error")?.call1((
            op,
            operands.to_vec(),
            tangents.to_vec(),
            value,
            tangent,
        ))?;
        Err(PyErr::from_value(e))
    })
}

/// Notes the node of `slot` with its source site and operands (call when [`active`],
/// after the op was checked).
pub(super) fn note_slot(t: &ManagedTape, slot: Slot, site: i64, operands: &[f64]) {
    let (arena, idx) = t.arena_node(slot);
    let (op, _, partials) = arena.node(idx);
    note(idx, site, op, partials, operands);
}

fn note(idx: u32, site: i64, op: Op, partials: [f64; 2], operands: &[f64]) {
    NOTES.with_borrow_mut(|m| {
        if m.len() >= MAX_NOTES {
            m.clear();
        }
        let mut ops = [0.0; 2];
        ops[..operands.len()].copy_from_slice(operands);
        m.insert(
            idx,
            Note {
                site,
                op,
                partials: partials.map(f64::to_bits),
                operands: ops,
                n_operands: operands.len() as u8,
            },
        );
    });
}

/// What [`scan`] found: the node's op, its note (site and operands) when it has one,
/// the adjoint and the partial.
pub(super) struct Found {
    op: Op,
    site: i64,
    operands: Vec<f64>,
    adjoint: f64,
    partial: f64,
    arg: i64,
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Leaf => "leaf",
        Op::Unary(u) => u.name(),
        Op::Binary(b) => b.name(),
    }
}

/// After `backward()` from `y` (`stored`: its adjoints are the tape's), or a gradient
/// (swept again here, only when the check is active): where an adjoint became
/// non-finite, if one did.
pub(super) fn scan_slot(t: &ManagedTape, y: Slot, stored: bool) -> Option<Found> {
    if !active() {
        return None;
    }
    let (arena, out) = t.arena_node(y);
    if stored {
        return scan(arena, t.adjoints(), out);
    }
    let mut adj = Vec::new();
    arena.sweep(out, &mut adj);
    scan(arena, &adj, out)
}

fn scan(arena: &Arena, adj: &[f64], out: u32) -> Option<Found> {
    if !active() {
        return None;
    }
    let (node, op, adjoint, partial, arg) = match first_bad_adjoint(arena, adj, out) {
        Some(b) => (b.node, b.op, b.adjoint, b.partial, b.arg as i64),
        None => {
            let i = first_nonfinite(adj, out)?;
            (i, arena.node(i).0, adj[i as usize], f64::NAN, -1)
        }
    };
    let (_, _, partials) = arena.node(node);
    let (site, operands) = NOTES.with_borrow(|m| match m.get(&node) {
        Some(n) if n.op == op && n.partials == partials.map(f64::to_bits) => {
            (n.site, n.operands[..n.n_operands as usize].to_vec())
        }
        _ => (-1, vec![]),
    });
    Some(Found {
        op,
        site,
        operands,
        adjoint,
        partial,
        arg,
    })
}

/// The FloatingPointError for what [`scan`] found.
pub(super) fn raise(found: Option<Found>) -> PyResult<()> {
    let Some(f) = found else { return Ok(()) };
    Python::attach(|py| {
        let e = module(py)?.getattr("_adjoint_error")?.call1((
            op_name(f.op),
            f.site,
            f.operands,
            f.adjoint,
            f.partial,
            f.arg,
        ))?;
        Err(PyErr::from_value(e))
    })
}

/// Turns the check on or off; returns the previous setting (`wg.set_debug_nans`).
#[pyfunction]
pub fn _set_debug_nans(flag: bool) -> bool {
    ON.swap(flag, Ordering::Relaxed)
}

/// Whether the check is on (`wg.debug_nans_enabled`).
#[pyfunction]
pub fn _debug_nans_enabled() -> bool {
    on()
}

/// Suspends (`+1`) or resumes (`-1`) eager checks on this thread.
#[pyfunction]
pub fn _suspend_debug_nans(delta: i32) {
    SUSPENDED.with(|s| s.set(s.get().saturating_add_signed(delta)));
}

#[pymethods]
impl PyCompiled {
    /// The value program as data, for re-running one row in Python:
    /// `(input slots (None: unused), [(slot, constant)], instructions, output slots)`;
    /// an instruction is `(2, name, dst, a)`, `(3, name, dst, a, b)` or
    /// `(4, symbol, dst, x, y, a, b)` (a select).
    #[allow(clippy::type_complexity)]
    fn _instructions<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(
        Vec<Option<u32>>,
        Vec<(u32, f64)>,
        Bound<'py, PyList>,
        Vec<u32>,
    )> {
        let p = self.0.program();
        let list = PyList::empty(py);
        for ins in p.instrs() {
            let item = match *ins {
                Instr::Unary { op, dst, a } => (2usize, op.name(), dst, a).into_pyobject(py)?,
                Instr::Binary { op, dst, a, b } => {
                    (3usize, op.name(), dst, a, b).into_pyobject(py)?
                }
                Instr::Select {
                    cmp,
                    dst,
                    x,
                    y,
                    a,
                    b,
                } => (4usize, cmp.symbol(), dst, x, y, a, b).into_pyobject(py)?,
            };
            list.append(item)?;
        }
        Ok((
            p.inputs().to_vec(),
            p.consts().to_vec(),
            list,
            p.outputs().to_vec(),
        ))
    }
}

#[pymethods]
impl PyTrace {
    /// The source site (`wengert._debug` ids, -1 unknown) of each instruction that
    /// compiling `outputs` gives: the operations the outputs depend on, in recording
    /// order, as [`crate::compile::program::Program`] emits them. Empty when sites were not kept.
    fn _instruction_sites(&self, outputs: Vec<Bound<'_, PyAny>>) -> PyResult<Vec<i64>> {
        let outs = self.output_nodes(&outputs, "wg.compile")?;
        let Some(sites) = self.g.sites() else {
            return Ok(vec![]);
        };
        Ok(self.g.with(|g| {
            let nodes = g.nodes();
            let mut live = vec![false; nodes.len()];
            for &o in &outs {
                live[o as usize] = true;
            }
            for i in (0..nodes.len()).rev() {
                if live[i] {
                    for a in nodes[i].args() {
                        live[a as usize] = true;
                    }
                }
            }
            nodes
                .iter()
                .enumerate()
                .filter(|&(i, n)| {
                    live[i]
                        && matches!(
                            n,
                            crate::compile::graph::Node::Unary(..)
                                | crate::compile::graph::Node::Binary(..)
                                | crate::compile::graph::Node::Select(..)
                        )
                })
                .map(|(i, _)| sites.get(&(i as u32)).copied().unwrap_or(-1))
                .collect()
        }))
    }
}

/// For an eager `Var` op (call when [`on`]): checks the value, and returns the source
/// site to note the new node with when the check is active.
pub(super) fn eager_var(op: &str, operands: &[f64], value: f64) -> PyResult<Option<i64>> {
    check_eager(op, operands, &[], value, 0.0)?;
    Ok(active().then(site))
}
