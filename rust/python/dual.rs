//! Python `Dual`: forward mode. A thin wrapper over [`crate::Dual`]; every rule comes from
//! [`crate::op`] through it.

use super::number::{
    binary_any, method_result, number_methods, number_result, plain_number, Number,
};
use super::var::short;
use crate::dual::Dual;
use crate::op::{Binary, Unary};
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
pub struct PyDual(pub Dual<f64>);

impl Number for PyDual {
    const NAME: &'static str = "Dual";
    fn val(&self) -> f64 {
        self.0.re
    }
    fn unary(&self, op: Unary) -> PyResult<Self> {
        Ok(PyDual(self.0.unary(op)))
    }
    fn binary(&self, op: Binary, y: &Self) -> PyResult<Self> {
        Ok(PyDual(self.0.binary(op, y.0)))
    }
    fn binary_const(&self, op: Binary, c: f64, const_first: bool) -> PyResult<Self> {
        // A constant is a Dual with tangent zero: the core rule's strong-zero chain drops
        // its partial (inf or nan for d/dy of (-2)**y), so both forms give the same bits.
        let c = Dual::constant(c);
        Ok(PyDual(if const_first {
            c.binary(op, self.0)
        } else {
            self.0.binary(op, c)
        }))
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
        Ok(PyDual(Dual::new(real(value, "value")?, t)))
    }

    /// The value.
    #[getter]
    fn value(&self) -> f64 {
        self.0.re
    }

    /// The derivative along the seeded direction.
    #[getter]
    fn tangent(&self) -> f64 {
        self.0.eps
    }

    /// A new Dual with the same value and tangent 1.0: the variable to differentiate by.
    fn deriv(&self) -> Self {
        PyDual(Dual::variable(self.0.re))
    }

    fn __repr__(&self) -> String {
        format!("Dual({}, {})", short(self.0.re), short(self.0.eps))
    }

    fn __reduce__(&self, py: Python<'_>) -> PyResult<(Py<PyAny>, (f64, f64))> {
        Ok((
            py.get_type::<PyDual>().into_any().unbind(),
            (self.0.re, self.0.eps),
        ))
    }
}
