//! Python `Dual`: forward mode. A thin wrapper over [`crate::Dual`]; every rule comes from
//! [`crate::op`] through it.

use super::number::{binary_any, number_methods, number_result, plain_number, Number};
use super::var::short;
use crate::op::{Binary, Unary};
use crate::scalar::dual::Dual;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

/// A value with a tangent: `f(Dual(x, 1.0))` carries `f'(x)` along.
///
/// >>> import wengert as wg
/// >>> y = wg.Dual(2.0).deriv() ** 3
/// >>> y.value, y.tangent
/// (8.0, 12.0)
#[pyclass(name = "Dual", module = "wengert", frozen)]
#[derive(Clone, Copy)]
pub struct PyDual {
    pub d: Dual<f64>,
    /// Whose perturbation the tangent is: 0 for a Dual the user made, else the call of a
    /// transform (`wg.jvp`, `wg.derivative`, a forward `wg.jacobian`) that seeded it.
    pub tag: u64,
}

impl PyDual {
    fn new(d: Dual<f64>, tag: u64) -> Self {
        PyDual { d, tag }
    }

    /// The tag of `op(self, y)`. Tangents of two perturbations must not be added: a Dual
    /// made outside a transform that meets the transform's own (a closure over it) would
    /// mix its tangent into the derivative, the perturbation confusion of nested forward
    /// mode. A Dual with tangent exactly 0 made by the user is a constant of any
    /// perturbation.
    fn join(&self, y: &Self) -> PyResult<u64> {
        if self.tag == y.tag || (y.tag == 0 && y.d.eps == 0.0) {
            Ok(self.tag)
        } else if self.tag == 0 && self.d.eps == 0.0 {
            Ok(y.tag)
        } else {
            Err(PyTypeError::new_err(
                "a Dual made outside this transform met one the transform seeded (a closure \
                 over it?): its tangent would be mixed into the derivative. Pass that number \
                 to the function as an argument, or use its .value as a constant",
            ))
        }
    }
}

impl Number for PyDual {
    const NAME: &'static str = "Dual";
    fn val(&self) -> f64 {
        self.d.re
    }
    fn unary(&self, op: Unary) -> PyResult<Self> {
        let r = self.d.unary(op);
        if super::debug::on() {
            super::debug::check_eager(op.name(), &[self.d.re], &[self.d.eps], r.re, r.eps)?;
        }
        Ok(PyDual::new(r, self.tag))
    }
    fn binary(&self, op: Binary, y: &Self) -> PyResult<Self> {
        let r = self.d.binary(op, y.d);
        if super::debug::on() {
            super::debug::check_eager(
                op.name(),
                &[self.d.re, y.d.re],
                &[self.d.eps, y.d.eps],
                r.re,
                r.eps,
            )?;
        }
        Ok(PyDual::new(r, self.join(y)?))
    }
    fn binary_const(&self, op: Binary, c: f64, const_first: bool) -> PyResult<Self> {
        // A constant is a Dual with tangent zero: the core rule's strong-zero chain drops
        // its partial (inf or nan for d/dy of (-2)**y), so both forms give the same bits.
        let c = Dual::constant(c);
        let (d, operands) = if const_first {
            (c.binary(op, self.d), [c.re, self.d.re])
        } else {
            (self.d.binary(op, c), [self.d.re, c.re])
        };
        if super::debug::on() {
            super::debug::check_eager(op.name(), &operands, &[self.d.eps], d.re, d.eps)?;
        }
        Ok(PyDual::new(d, self.tag))
    }
}

number_methods!(PyDual);

fn real(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    plain_number(ob)?.ok_or_else(|| {
        let got = ob
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        PyTypeError::new_err(format!(
            "Dual(value, tangent): {what} must be a real number, got {got}"
        ))
    })
}

#[pymethods]
impl PyDual {
    #[new]
    #[pyo3(signature = (value, tangent=None))]
    fn py_new(value: &Bound<'_, PyAny>, tangent: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let t = match tangent {
            Some(t) => real(t, "tangent")?,
            None => 0.0,
        };
        Ok(PyDual::new(Dual::new(real(value, "value")?, t), 0))
    }

    /// The value.
    #[getter]
    fn value(&self) -> f64 {
        self.d.re
    }

    /// The derivative along the seeded direction.
    #[getter]
    fn tangent(&self) -> f64 {
        self.d.eps
    }

    /// A new Dual with the same value and tangent 1.0: the variable to differentiate by.
    fn deriv(&self) -> Self {
        PyDual::new(Dual::variable(self.d.re), self.tag)
    }

    /// A Dual seeded by a transform's call `tag` (see [`PyDual::join`]).
    #[staticmethod]
    fn _seeded(value: f64, tangent: f64, tag: u64) -> Self {
        PyDual::new(Dual::new(value, tangent), tag)
    }

    /// The seeding transform call's tag; 0 for a Dual the user made.
    #[getter]
    fn _tag(&self) -> u64 {
        self.tag
    }

    fn __repr__(&self) -> String {
        format!("Dual({}, {})", short(self.d.re), short(self.d.eps))
    }

    fn __reduce__(&self, py: Python<'_>) -> PyResult<(Py<PyAny>, (f64, f64))> {
        Ok((
            py.get_type::<PyDual>().into_any().unbind(),
            (self.d.re, self.d.eps),
        ))
    }
}
