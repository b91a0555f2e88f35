//! The Python number protocol shared by `Var` and `Dual`: operand classification and one
//! macro that writes the operators and math methods for both classes, so the two cannot
//! drift apart. Every method forwards to the class's [`Number`] impl: no math here.

use crate::op::{Binary, Unary};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyFloat, PyInt};

/// A class of differentiable Python numbers.
pub(crate) trait Number: Sized {
    /// The Python class name, for error messages.
    const NAME: &'static str;
    /// The plain value.
    fn val(&self) -> f64;
    fn unary(&self, op: Unary) -> PyResult<Self>;
    fn binary(&self, op: Binary, y: &Self) -> PyResult<Self>;
    /// `op(self, c)`, or `op(c, self)` when `const_first`.
    fn binary_const(&self, op: Binary, c: f64, const_first: bool) -> PyResult<Self>;
}

/// `numpy.number` and `numpy.bool_`, looked up once: [`plain_number`] runs for every
/// operand of every operation that is not a float or int.
static NUMPY_SCALARS: PyOnceLock<[Py<PyAny>; 2]> = PyOnceLock::new();

/// A plain real number from Python: float (and its subclasses, `np.float64` among them),
/// int, bool, or a NumPy integer/float scalar. Anything else, a `Dual` or `Var` among
/// them, is not a plain number: converting it with `__float__` would drop its derivative.
pub(crate) fn plain_number(ob: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    if let Ok(f) = ob.cast::<PyFloat>() {
        return Ok(Some(f.value()));
    }
    if ob.is_instance_of::<PyInt>() {
        return ob.extract::<f64>().map(Some);
    }
    let py = ob.py();
    let [numpy_number, numpy_bool] = NUMPY_SCALARS.get_or_try_init(py, || -> PyResult<_> {
        let np = py.import("numpy")?;
        Ok([
            np.getattr("number")?.unbind(),
            np.getattr("bool_")?.unbind(),
        ])
    })?;
    if ob.is_instance(numpy_number.bind(py))? || ob.is_instance(numpy_bool.bind(py))? {
        let v = ob.call_method0("__float__")?;
        return Ok(Some(v.cast::<PyFloat>()?.value()));
    }
    Ok(None)
}

/// `op(x, other)` (or `op(other, x)` when `reflected`); `None` when `other` is of a kind
/// this class does not combine with, so the caller returns NotImplemented.
pub(crate) fn binary_any<T>(
    x: &T,
    op: Binary,
    other: &Bound<'_, PyAny>,
    reflected: bool,
) -> PyResult<Option<T>>
where
    T: Number + pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync,
{
    if let Ok(y) = other.cast::<T>() {
        let y = y.get();
        return if reflected {
            y.binary(op, x)
        } else {
            x.binary(op, y)
        }
        .map(Some);
    }
    match plain_number(other)? {
        Some(c) => x.binary_const(op, c, reflected).map(Some),
        None => Ok(None),
    }
}

/// Writes every operator and math method for `$ty`: [`number_arith`] plus
/// [`number_compare`] (eager comparisons).
macro_rules! number_methods {
    ($ty:ty) => {
        $crate::python::number::number_arith!($ty);
        $crate::python::number::number_compare!($ty);
    };
}
pub(crate) use number_methods;

/// Eager comparisons, `float()`, truth and identity hash for `$ty`. A traced class writes
/// its own, since its comparisons record instead of answering.
macro_rules! number_compare {
    ($ty:ty) => {
        #[pyo3::pymethods]
        impl $ty {
            fn __float__(&self) -> f64 {
                self.val()
            }
            fn __bool__(&self) -> bool {
                self.val() != 0.0
            }
            fn __hash__(slf: &Bound<'_, Self>) -> isize {
                slf.as_ptr() as isize
            }
            fn __richcmp__(
                &self,
                py: Python<'_>,
                o: &Bound<'_, PyAny>,
                cmp: pyo3::basic::CompareOp,
            ) -> PyResult<Py<PyAny>> {
                let y = if let Ok(y) = o.cast::<Self>() {
                    y.get().val()
                } else if let Some(c) = $crate::python::number::plain_number(o)? {
                    c
                } else {
                    return Ok(py.NotImplemented());
                };
                // IEEE comparisons, as float's own: every comparison with nan is False but !=.
                let r = $crate::python::number::cmp_of(cmp).holds(self.val(), y);
                Ok(pyo3::types::PyBool::new(py, r)
                    .to_owned()
                    .into_any()
                    .unbind())
            }
        }
    };
}
pub(crate) use number_compare;

/// The arithmetic operators and math methods for `$ty`.
macro_rules! number_arith {
    ($ty:ty) => {
        #[pyo3::pymethods]
        impl $ty {
            fn __add__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                number_result(py, binary_any(self, Binary::Add, o, false)?)
            }
            fn __radd__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                number_result(py, binary_any(self, Binary::Add, o, true)?)
            }
            fn __sub__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                number_result(py, binary_any(self, Binary::Sub, o, false)?)
            }
            fn __rsub__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                number_result(py, binary_any(self, Binary::Sub, o, true)?)
            }
            fn __mul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                number_result(py, binary_any(self, Binary::Mul, o, false)?)
            }
            fn __rmul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                number_result(py, binary_any(self, Binary::Mul, o, true)?)
            }
            fn __truediv__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                number_result(py, binary_any(self, Binary::Div, o, false)?)
            }
            fn __rtruediv__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                number_result(py, binary_any(self, Binary::Div, o, true)?)
            }
            /// `x % y`: NumPy's `remainder` (the sign of `y`, as Python's `%`).
            fn __mod__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                number_result(py, binary_any(self, Binary::Remainder, o, false)?)
            }
            fn __rmod__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                number_result(py, binary_any(self, Binary::Remainder, o, true)?)
            }
            fn __pow__(
                &self,
                py: Python<'_>,
                o: &Bound<'_, PyAny>,
                modulo: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<Py<PyAny>> {
                if modulo.is_some() {
                    return Ok(py.NotImplemented());
                }
                number_result(py, binary_any(self, Binary::Pow, o, false)?)
            }
            fn __rpow__(
                &self,
                py: Python<'_>,
                o: &Bound<'_, PyAny>,
                modulo: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<Py<PyAny>> {
                if modulo.is_some() {
                    return Ok(py.NotImplemented());
                }
                number_result(py, binary_any(self, Binary::Pow, o, true)?)
            }
            fn __neg__(&self) -> PyResult<Self> {
                self.unary(Unary::Neg)
            }
            fn __pos__(slf: Py<Self>) -> Py<Self> {
                slf
            }
            fn __abs__(&self) -> PyResult<Self> {
                self.unary(Unary::Abs)
            }
            // NumPy ufuncs on these numbers (np.sin(x), np.add(x, arr)) come here instead of
            // converting them with __float__ (which drops the derivative): those with a
            // wengert rule are dispatched to it, any other raises TypeError naming it.
            #[pyo3(signature = (ufunc, method, *inputs, **kwargs))]
            fn __array_ufunc__<'py>(
                slf: &Bound<'py, Self>,
                ufunc: &Bound<'py, PyAny>,
                method: &Bound<'py, PyAny>,
                inputs: &Bound<'py, pyo3::types::PyTuple>,
                kwargs: Option<&Bound<'py, pyo3::types::PyDict>>,
            ) -> PyResult<Bound<'py, PyAny>> {
                slf.py()
                    .import("wengert._dispatch")?
                    .getattr("array_ufunc")?
                    .call1((slf, ufunc, method, inputs, kwargs))
            }
            // math.floor and friends, which np.floor, np.ceil and np.trunc call on object
            // arrays: the step ops (derivative 0), not __float__, which would return a
            // number without a derivative.
            fn __floor__(&self) -> PyResult<Self> {
                self.unary(Unary::Floor)
            }
            fn __ceil__(&self) -> PyResult<Self> {
                self.unary(Unary::Ceil)
            }
            fn __trunc__(&self) -> PyResult<Self> {
                self.unary(Unary::Trunc)
            }
            /// `round(x)`: half to even, as Python's and NumPy's; `round(x, n)` has no rule.
            #[pyo3(signature = (ndigits=None))]
            fn __round__(
                slf: &Bound<'_, Self>,
                ndigits: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<Self> {
                match ndigits {
                    Some(n) if !n.is_none() => Err($crate::python::number::no_rule(
                        slf.as_any(),
                        "round(x, ndigits)",
                    )),
                    _ => slf.borrow().unary(Unary::Round),
                }
            }
        }
        $crate::op::unary_ops!($crate::python::number::unary_methods($ty));
        $crate::op::binary_ops!($crate::python::number::binary_methods($ty));
    };
}
pub(crate) use number_arith;

/// The math methods (`x.sin()`, and NumPy's spellings such as `x.arcsin()`) for `$ty`, one
/// per op of kind `func` in the registry ([`crate::op::unary_ops!`]). A muncher: it
/// collects the `func` entries first, because `#[pymethods]` sees its body before any
/// macro in it expands.
macro_rules! unary_methods {
    (@keep ($ty:ty) [$($acc:tt)*] $v:ident $name:ident func [$($alias:ident)*]; $($rest:tt)*) => {
        $crate::python::number::unary_methods!(@keep ($ty) [$($acc)* ($v $name $($alias)*)] $($rest)*);
    };
    (@keep ($ty:ty) [$($acc:tt)*] $v:ident $name:ident op [$($alias:ident)*]; $($rest:tt)*) => {
        $crate::python::number::unary_methods!(@keep ($ty) [$($acc)*] $($rest)*);
    };
    (@keep ($ty:ty) [$(($v:ident $name:ident $($alias:ident)*))*]) => {
        #[pyo3::pymethods]
        impl $ty {
            $(
                fn $name(&self) -> PyResult<Self> {
                    self.unary($crate::op::Unary::$v)
                }
                $(
                    fn $alias(&self) -> PyResult<Self> {
                        self.unary($crate::op::Unary::$v)
                    }
                )*
            )*
        }
    };
    (($ty:ty) $($entries:tt)*) => {
        $crate::python::number::unary_methods!(@keep ($ty) [] $($entries)*);
    };
}
pub(crate) use unary_methods;

/// The binary math methods (`x.atan2(other)`) for `$ty`, as [`unary_methods!`]: unlike an
/// operator, a method cannot return NotImplemented, so an unsupported argument is a
/// TypeError (see [`method_result`]).
macro_rules! binary_methods {
    (@keep ($ty:ty) [$($acc:tt)*] $v:ident $name:ident func $param:ident [$($alias:ident)*]; $($rest:tt)*) => {
        $crate::python::number::binary_methods!(@keep ($ty) [$($acc)* ($v $name $param $($alias)*)] $($rest)*);
    };
    (@keep ($ty:ty) [$($acc:tt)*] $v:ident $name:ident op $param:tt [$($alias:ident)*]; $($rest:tt)*) => {
        $crate::python::number::binary_methods!(@keep ($ty) [$($acc)*] $($rest)*);
    };
    (@keep ($ty:ty) [$(($v:ident $name:ident $param:ident $($alias:ident)*))*]) => {
        #[pyo3::pymethods]
        impl $ty {
            $(
                fn $name(&self, $param: &Bound<'_, PyAny>) -> PyResult<Self> {
                    $crate::python::number::method_result::<Self>(
                        stringify!($name),
                        $param,
                        $crate::python::number::binary_any(self, $crate::op::Binary::$v, $param, false)?,
                    )
                }
                $(
                    fn $alias(&self, $param: &Bound<'_, PyAny>) -> PyResult<Self> {
                        $crate::python::number::method_result::<Self>(
                            stringify!($alias),
                            $param,
                            $crate::python::number::binary_any(self, $crate::op::Binary::$v, $param, false)?,
                        )
                    }
                )*
            )*
        }
    };
    (($ty:ty) $($entries:tt)*) => {
        $crate::python::number::binary_methods!(@keep ($ty) [] $($entries)*);
    };
}
pub(crate) use binary_methods;

/// The core comparison a Python rich comparison stands for.
pub(crate) fn cmp_of(op: pyo3::basic::CompareOp) -> crate::op::Cmp {
    use crate::op::Cmp;
    use pyo3::basic::CompareOp;
    match op {
        CompareOp::Lt => Cmp::Lt,
        CompareOp::Le => Cmp::Le,
        CompareOp::Gt => Cmp::Gt,
        CompareOp::Ge => Cmp::Ge,
        CompareOp::Eq => Cmp::Eq,
        CompareOp::Ne => Cmp::Ne,
    }
}

/// The TypeError for a rounding function (`math.floor(x)`, `np.floor` on an object array),
/// which has no wengert rule: it would drop the derivative.
pub(crate) fn no_rule(x: &Bound<'_, PyAny>, name: &str) -> PyErr {
    let kind = x
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let (kind, hint) = if kind == "_Traced" {
        ("traced value".to_string(), "")
    } else {
        (kind, "; use .value for the plain number")
    };
    pyo3::exceptions::PyTypeError::new_err(format!(
        "np.{name} (or math.{name}) has no wengert rule for {kind}: it would drop the \
         derivative{hint}"
    ))
}

/// The Python result of a binary method: the new number, or NotImplemented.
pub(crate) fn number_result<T>(py: Python<'_>, r: Option<T>) -> PyResult<Py<PyAny>>
where
    T: pyo3::PyClass + Into<pyo3::PyClassInitializer<T>>,
{
    match r {
        Some(v) => Ok(Bound::new(py, v)?.into_any().unbind()),
        None => Ok(py.NotImplemented()),
    }
}

/// The result of a binary math method: unlike an operator, a method cannot return
/// NotImplemented, so an unsupported argument is a TypeError naming what was expected.
pub(crate) fn method_result<T: Number>(
    method: &str,
    arg: &Bound<'_, PyAny>,
    r: Option<T>,
) -> PyResult<T> {
    r.ok_or_else(|| {
        let got = arg
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{}.{method}(other): other must be a {} or a real number, got {got}",
            T::NAME,
            T::NAME
        ))
    })
}
