//! Python `Var`: a handle to a node on the calling thread's managed tape
//! ([`crate::tape::managed`], which reclaims the nodes no `Var` can reach).

use super::debug;
use super::number::{binary_any, number_methods, number_result, Number};
use crate::op::{Binary, Unary};
use crate::tape::managed::{self, ManagedTape, Slot};
use pyo3::exceptions::{PyAttributeError, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// Runs `f` on this thread's tape after checking that every `Var` in `vars` belongs to it.
fn with_tape<R>(vars: &[&PyVar], f: impl FnOnce(&mut ManagedTape) -> R) -> PyResult<R> {
    let ids: Vec<u64> = vars.iter().map(|v| v.tape).collect();
    managed::with_thread_tape(&ids, f).map_err(|_| {
        PyRuntimeError::new_err(
            "this Var was made on another thread: a Var belongs to the thread that \
             created it; build the graph and call backward() on one thread",
        )
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
    fn node(tape: &ManagedTape, slot: Slot, value: f64, leaf: bool) -> PyVar {
        PyVar {
            tape: tape.id(),
            slot,
            leaf,
            value: AtomicU64::new(value.to_bits()),
        }
    }

    /// Makes a leaf on this thread's tape.
    pub(crate) fn leaf(value: f64) -> PyVar {
        managed::with_thread_tape(&[], |t| {
            let slot = t.leaf();
            PyVar::node(t, slot, value, true)
        })
        .expect("no Var to check")
    }

    /// d(self)/d(each of `wrt`), by one sweep that leaves `.grad` untouched.
    pub(crate) fn gradient(&self, wrt: &[&PyVar]) -> PyResult<Vec<f64>> {
        let mut all: Vec<&PyVar> = wrt.to_vec();
        all.push(self);
        let slots: Vec<Slot> = wrt.iter().map(|v| v.slot).collect();
        let (grads, found) = with_tape(&all, |t| {
            let grads = t.gradient(self.slot, &slots);
            let found = debug::on()
                .then(|| debug::scan_slot(t, self.slot, false))
                .flatten();
            (grads, found)
        })?;
        debug::raise(found)?;
        Ok(grads)
    }
}

impl Drop for PyVar {
    fn drop(&mut self) {
        managed::release(self.tape, self.slot);
    }
}

impl Number for PyVar {
    const NAME: &'static str = "Var";

    fn val(&self) -> f64 {
        f64::from_bits(self.value.load(Ordering::Relaxed))
    }

    fn unary(&self, op: Unary) -> PyResult<Self> {
        let x = self.val();
        let site = debug_site(op.name(), &[x], || op.rule(x).0)?;
        with_tape(&[self], |t| {
            let (slot, v) = t.unary(op, self.slot, x);
            if let Some(s) = site {
                debug::note_slot(t, slot, s, &[x]);
            }
            PyVar::node(t, slot, v, false)
        })
    }

    fn binary(&self, op: Binary, y: &Self) -> PyResult<Self> {
        let (x, yv) = (self.val(), y.val());
        let site = debug_site(op.name(), &[x, yv], || op.rule(x, yv).0)?;
        with_tape(&[self, y], |t| {
            let (slot, v) = t.binary(op, self.slot, x, y.slot, yv);
            if let Some(s) = site {
                debug::note_slot(t, slot, s, &[x, yv]);
            }
            PyVar::node(t, slot, v, false)
        })
    }

    fn binary_const(&self, op: Binary, c: f64, const_first: bool) -> PyResult<Self> {
        let x = self.val();
        let operands = if const_first { [c, x] } else { [x, c] };
        let site = debug_site(op.name(), &operands, || op.rule(operands[0], operands[1]).0)?;
        with_tape(&[self], |t| {
            let (slot, v) = t.binary_const(op, self.slot, x, c, const_first);
            if let Some(s) = site {
                debug::note_slot(t, slot, s, &operands);
            }
            PyVar::node(t, slot, v, false)
        })
    }
}

number_methods!(PyVar);

/// `wg.debug_nans` for an eager op (`value` computes its result): nothing but one load
/// when the check is off.
#[inline(always)]
fn debug_site(op: &str, operands: &[f64], value: impl FnOnce() -> f64) -> PyResult<Option<i64>> {
    if debug::on() {
        debug::eager_var(op, operands, value())
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
        with_tape(&[self], |t| t.grad(self.slot))
    }

    #[setter]
    fn set_grad(&self, g: f64) -> PyResult<()> {
        with_tape(&[self], |t| t.set_grad(self.slot, g))
    }

    /// True for a Var made by `Var(x)` rather than computed.
    #[getter]
    fn is_leaf(&self) -> bool {
        self.leaf
    }

    /// Sets `.grad` of every Var this one depends on to d(self)/d(that Var).
    fn backward(&self) -> PyResult<()> {
        let found = with_tape(&[self], |t| {
            t.backward(self.slot);
            debug::on()
                .then(|| debug::scan_slot(t, self.slot, true))
                .flatten()
        })?;
        debug::raise(found)
    }

    /// Graphviz DOT text of the graph this Var depends on.
    fn to_dot(&self) -> PyResult<String> {
        with_tape(&[self], |t| t.to_dot(self.slot))
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
    managed::with_thread_tape(&[], |t| t.len()).expect("no Var to check")
}

/// d(y)/d(each of `wrt`) without touching `.grad`: the core of `wg.grad(y, wrt)`.
#[pyfunction]
pub fn var_gradient(y: PyRef<'_, PyVar>, wrt: Vec<PyRef<'_, PyVar>>) -> PyResult<Vec<f64>> {
    let wrt: Vec<&PyVar> = wrt.iter().map(|v| &**v).collect();
    y.gradient(&wrt)
}
