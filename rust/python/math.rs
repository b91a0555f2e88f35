//! Module-level math (`wg.sin(x)`, `wg.atan2(y, x)`): one entry point per operation that
//! takes floats, `Var` and `Dual` alike. Other objects (NumPy arrays, user types) go to
//! the Python fallback in `wengert._dispatch`; traced values (`wg.compile`) take a fast
//! path here too, since tracing calls these once per operation.

use super::dual::PyDual;
use super::number::{binary_any, plain_number, Number};
use super::trace::PyTraced;
use super::var::PyVar;
use crate::op::{Binary, Unary};
use pyo3::prelude::*;
use pyo3::types::PyFloat;

fn unary_any<'py>(op: Unary, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = x.py();
    if let Ok(v) = x.cast::<PyVar>() {
        return Ok(Bound::new(py, v.get().unary(op)?)?.into_any());
    }
    if let Ok(d) = x.cast::<PyDual>() {
        return Ok(Bound::new(py, d.get().unary(op)?)?.into_any());
    }
    if let Ok(t) = x.cast::<PyTraced>() {
        return Ok(Bound::new(py, t.get().unary(op)?)?.into_any());
    }
    if let Some(c) = plain_number(x)? {
        return Ok(PyFloat::new(py, op.rule(c).0).into_any());
    }
    py.import("wengert._dispatch")?
        .getattr("unary_fallback")?
        .call1((op.name(), x))
}

fn binary_any_args<'py>(
    op: Binary,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = x.py();
    if let Ok(v) = x.cast::<PyVar>() {
        if let Some(r) = binary_any(v.get(), op, y, false)? {
            return Ok(Bound::new(py, r)?.into_any());
        }
    } else if let Ok(v) = y.cast::<PyVar>() {
        if let Some(r) = binary_any(v.get(), op, x, true)? {
            return Ok(Bound::new(py, r)?.into_any());
        }
    } else if let Ok(d) = x.cast::<PyDual>() {
        if let Some(r) = binary_any(d.get(), op, y, false)? {
            return Ok(Bound::new(py, r)?.into_any());
        }
    } else if let Ok(d) = y.cast::<PyDual>() {
        if let Some(r) = binary_any(d.get(), op, x, true)? {
            return Ok(Bound::new(py, r)?.into_any());
        }
    } else if let Ok(t) = x.cast::<PyTraced>() {
        if let Some(r) = binary_any(t.get(), op, y, false)? {
            return Ok(Bound::new(py, r)?.into_any());
        }
    } else if let Ok(t) = y.cast::<PyTraced>() {
        if let Some(r) = binary_any(t.get(), op, x, true)? {
            return Ok(Bound::new(py, r)?.into_any());
        }
    } else if let (Some(a), Some(b)) = (plain_number(x)?, plain_number(y)?) {
        return Ok(PyFloat::new(py, op.rule(a, b).0).into_any());
    }
    py.import("wengert._dispatch")?
        .getattr("binary_fallback")?
        .call1((op.name(), x, y))
}

/// One `#[pyfunction]` per op of kind `func` in the registry ([`crate::op::unary_ops!`]),
/// and `add_unary` to register them.
macro_rules! unary_functions {
    (() $($v:ident $name:ident $kind:ident [$($alias:ident)*];)*) => {
        $(unary_function!($kind $v $name);)*
        pub fn add_unary(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $(register!($kind m $name);)*
            Ok(())
        }
    };
}

macro_rules! unary_function {
    (func $v:ident $name:ident) => {
        #[doc = concat!("`", stringify!($name), "(x)` for a float, Var, Dual or array.")]
        #[pyfunction]
        pub fn $name<'py>(x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
            unary_any(Unary::$v, x)
        }
    };
    (op $v:ident $name:ident) => {};
}

/// The binary counterpart of `unary_functions!`.
macro_rules! binary_functions {
    (() $($v:ident $name:ident $kind:ident $param:tt [$($alias:ident)*];)*) => {
        $(binary_function!($kind $v $name);)*
        pub fn add_binary(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $(register!($kind m $name);)*
            Ok(())
        }
    };
}

macro_rules! binary_function {
    (func $v:ident $name:ident) => {
        #[doc = concat!("`", stringify!($name), "(x, y)` for floats, Vars, Duals or arrays.")]
        #[pyfunction]
        pub fn $name<'py>(
            x: &Bound<'py, PyAny>,
            y: &Bound<'py, PyAny>,
        ) -> PyResult<Bound<'py, PyAny>> {
            binary_any_args(Binary::$v, x, y)
        }
    };
    (op $v:ident $name:ident) => {};
}

macro_rules! register {
    (func $m:ident $name:ident) => {
        $m.add_function(wrap_pyfunction!($name, $m)?)?;
    };
    (op $m:ident $name:ident) => {};
}

crate::op::unary_ops!(unary_functions);
crate::op::binary_ops!(binary_functions);
