//! The binding side of `wg.debug_nans` (the switch, notes and scan are
//! [`crate::tape::nonfinite`]'s; the reports are `wengert._debug`'s): source sites from
//! Python, the errors raised, and the exports the Python layer re-runs rows from (a
//! compiled function's instruction list, the site of each instruction).

use super::compiled::PyCompiled;
use super::trace::PyTrace;
use crate::compile::program::Instr;
use crate::tape::arena::Op;
use crate::tape::managed::{ManagedTape, Slot};
use crate::tape::nonfinite::{self, Found};
use pyo3::prelude::*;
use pyo3::types::PyList;

pub(super) use crate::tape::nonfinite::{active, on};

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
    nonfinite::note(arena, idx, site, operands);
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
        return nonfinite::scan(arena, t.adjoints(), out);
    }
    let mut adj = Vec::new();
    arena.sweep(out, &mut adj);
    nonfinite::scan(arena, &adj, out)
}

/// The FloatingPointError for what [`scan_slot`] found.
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
    nonfinite::set_on(flag)
}

/// Whether the check is on (`wg.debug_nans_enabled`).
#[pyfunction]
pub fn _debug_nans_enabled() -> bool {
    on()
}

/// Suspends (`+1`) or resumes (`-1`) eager checks on this thread.
#[pyfunction]
pub fn _suspend_debug_nans(delta: i32) {
    nonfinite::suspend(delta)
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
