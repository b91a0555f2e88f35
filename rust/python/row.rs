//! Python `_RowCall`: one-row calls of a compiled function without the batch path's
//! argument handling (the SciPy-optimiser case, `F.value_and_grad(x)` in a loop).
//!
//! `wengert._compile` makes one for a method and `wrt` after a call of that method on one
//! row went through the full checks, and tries it first on later calls. It serves a call
//! only when every argument is, exactly, what the batch path would read in place: a Python
//! float or int (or a NumPy float64 scalar) for a scalar argument, a native-order, aligned,
//! C-contiguous float64 `ndarray` of exactly the declared shape for an array argument.
//! Anything else (lists, other dtypes, strides, subclasses, batches, Var or Dual numbers,
//! the non-finite check on) returns `None`, and the caller takes the batch path, which
//! checks and converts as it always did; so does an engine error, whose message the batch
//! path gives. Results are the batch path's for the same row, bit for bit: the same core
//! call on one row.

use super::compiled::{guarded, PyCompiled};
use crate::exec::{Arg, Job, Reduce};
use numpy::ndarray::{ArrayViewD, IxDyn};
use numpy::{PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods, ToPyArray};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyTuple};

/// Work (rows times [`crate::compile::guard::cost`], about one addition per unit) from
/// which a call releases the GIL while the engine runs. Releasing and taking it back cost
/// 0.3-0.8 us a call (a build that always released it, one-row `value_and_grad` of
/// Rosenbrock-16 and of a two-argument function: 6.4 vs 6.1 us and 4.9 vs 4.1 us, best of
/// 7 x 5000 calls, loaded machine), a tenth of a one-row call; from this much work on the
/// call takes tens of microseconds, and the release is a few percent of it.
pub(super) const DETACH_COST: usize = 20_000;

/// What a `_RowCall` computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Values,
    ValueAndGrad,
    Grad,
    Jacobian,
    Hessian,
}

/// A one-row call of one method (see the module documentation).
#[pyclass(name = "_RowCall", module = "wengert", frozen)]
pub struct RowCall {
    compiled: Py<PyCompiled>,
    /// Each argument's declared shape.
    shapes: Vec<Vec<usize>>,
    /// The function's output shape.
    out_shape: Vec<usize>,
    kind: Kind,
    /// The `wrt` arguments, in the caller's order (JAX's argnums, normalised).
    wrt: Vec<usize>,
    /// One flag per argument: in `wrt`.
    flags: Vec<bool>,
    /// `wrt` was one index (results not in a tuple).
    single: bool,
    /// Release the GIL while the engine runs (a costly row, see [`DETACH_COST`]).
    detach: bool,
    ndarray: Py<PyAny>,
    float64: Py<PyAny>,
}

impl RowCall {
    /// The row's inputs, flattened in argument order, or `None` when an argument is not
    /// one the batch path reads as it is.
    fn inputs(&self, args: &Bound<'_, PyTuple>) -> PyResult<Option<Vec<f64>>> {
        let py = args.py();
        if args.len() != self.shapes.len() {
            return Ok(None);
        }
        let total: usize = self.compiled.get().0.arg_sizes().iter().sum();
        let mut row = Vec::with_capacity(total);
        for (a, shape) in args.iter().zip(&self.shapes) {
            let ty = a.get_type();
            if shape.is_empty() {
                if ty.is(self.float64.bind(py)) || a.is_exact_instance_of::<PyFloat>() {
                    row.push(a.cast::<PyFloat>()?.value());
                } else if a.is_exact_instance_of::<PyInt>() {
                    // What np.asarray reads: an int64, converted once (round to nearest).
                    match a.extract::<i64>() {
                        Ok(i) => row.push(i as f64),
                        Err(_) => return Ok(None),
                    }
                } else {
                    return Ok(None);
                }
                continue;
            }
            if !ty.is(self.ndarray.bind(py)) {
                return Ok(None);
            }
            let Ok(x) = a.cast::<PyArrayDyn<f64>>() else {
                return Ok(None);
            };
            if x.shape() != shape.as_slice()
                || !x.is_c_contiguous()
                || x.dtype().is_native_byteorder() == Some(false)
                || !(x.data() as usize).is_multiple_of(std::mem::align_of::<f64>())
            {
                return Ok(None);
            }
            match x.to_vec() {
                Ok(v) => row.extend_from_slice(&v),
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(row))
    }

    /// `data` (row-major, `dims` when there are any) as the batch path returns one row
    /// of a result: a NumPy float64 scalar for shape (), else an array.
    fn result<'py>(
        &self,
        py: Python<'py>,
        data: &[f64],
        dims: &[usize],
    ) -> PyResult<Bound<'py, PyAny>> {
        if dims.is_empty() {
            return self.float64.bind(py).call1((data[0],));
        }
        let view = ArrayViewD::from_shape(IxDyn(dims), data)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(view.to_pyarray(py).into_any())
    }

    /// The results of `wrt` (one object, or a tuple when `wrt` was a tuple).
    fn per_wrt<'py>(
        &self,
        py: Python<'py>,
        mut each: impl FnMut(usize) -> PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if self.single {
            return each(self.wrt[0]);
        }
        let items = self
            .wrt
            .iter()
            .map(|&i| each(i))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyTuple::new(py, items)?.into_any())
    }

    fn run<'py>(&self, py: Python<'py>, row: &[f64]) -> PyResult<Option<Bound<'py, PyAny>>> {
        let c = &self.compiled.get().0;
        let sizes = c.arg_sizes();
        let mut args = Vec::with_capacity(sizes.len());
        let mut at = 0;
        for &s in sizes {
            args.push(Arg::shared(&row[at..at + s]));
            at += s;
        }
        let engine = || match self.kind {
            Kind::Values => c
                .run(&args, 1, &Job::Values, Reduce::None)
                .map(|o| (o, Vec::new())),
            Kind::ValueAndGrad | Kind::Grad => {
                let job = Job::Vjp {
                    cotangent: Arg::shared(&[1.0]),
                    wrt: self.flags.clone(),
                };
                c.run(&args, 1, &job, Reduce::None).map(|o| (o, Vec::new()))
            }
            Kind::Jacobian => {
                let job = Job::Jacobian {
                    wrt: self.flags.clone(),
                };
                c.run(&args, 1, &job, Reduce::None).map(|o| (o, Vec::new()))
            }
            Kind::Hessian => c
                .hessian_block(&args, 1, &self.flags)
                .map(|h| (Default::default(), h)),
        };
        let got = if self.detach {
            py.detach(engine)
        } else {
            engine()
        };
        // An engine error: the batch path raises it, with its own message.
        let Ok((out, h)) = got else { return Ok(None) };
        let shape = |i: usize| self.shapes[i].as_slice();
        let res = match self.kind {
            Kind::Values => self.result(py, &out.values, &self.out_shape)?,
            Kind::ValueAndGrad | Kind::Grad => {
                let grads = self.per_wrt(py, |i| self.result(py, &out.grads[i], shape(i)))?;
                if self.kind == Kind::Grad {
                    grads
                } else {
                    let v = self.result(py, &out.values, &[])?;
                    PyTuple::new(py, [v, grads])?.into_any()
                }
            }
            Kind::Jacobian => {
                // One row of m outputs by the wrt arguments' columns, in argument order.
                let cols: usize = (0..sizes.len())
                    .filter(|&i| self.flags[i])
                    .map(|i| sizes[i])
                    .sum();
                let m = c.program().n_outputs();
                let start = |i: usize| {
                    (0..i)
                        .filter(|&j| self.flags[j])
                        .map(|j| sizes[j])
                        .sum::<usize>()
                };
                self.per_wrt(py, |i| {
                    let (c0, k) = (start(i), sizes[i]);
                    let block: Vec<f64> = (0..m)
                        .flat_map(|r| {
                            out.jacobian[r * cols + c0..r * cols + c0 + k]
                                .iter()
                                .copied()
                        })
                        .collect();
                    let dims: Vec<usize> = self.out_shape.iter().chain(shape(i)).copied().collect();
                    self.result(py, &block, &dims)
                })?
            }
            Kind::Hessian => {
                let total: usize = (0..sizes.len())
                    .filter(|&i| self.flags[i])
                    .map(|i| sizes[i])
                    .sum();
                let start = |i: usize| {
                    (0..i)
                        .filter(|&j| self.flags[j])
                        .map(|j| sizes[j])
                        .sum::<usize>()
                };
                let block = |i: usize, j: usize| {
                    let (r0, c0) = (start(i), start(j));
                    let data: Vec<f64> = (r0..r0 + sizes[i])
                        .flat_map(|r| h[r * total + c0..r * total + c0 + sizes[j]].iter().copied())
                        .collect();
                    let dims: Vec<usize> = shape(i).iter().chain(shape(j)).copied().collect();
                    self.result(py, &data, &dims)
                };
                if self.single {
                    block(self.wrt[0], self.wrt[0])?
                } else {
                    let rows = self
                        .wrt
                        .iter()
                        .map(|&i| {
                            let r = self
                                .wrt
                                .iter()
                                .map(|&j| block(i, j))
                                .collect::<PyResult<Vec<_>>>()?;
                            Ok(PyTuple::new(py, r)?.into_any())
                        })
                        .collect::<PyResult<Vec<_>>>()?;
                    PyTuple::new(py, rows)?.into_any()
                }
            }
        };
        Ok(Some(res))
    }
}

#[pymethods]
impl RowCall {
    /// A one-row call of `kind` (`"values"`, `"value_and_grad"`, `"grad"`, `"jacobian"`,
    /// `"hessian"`) of `compiled`, whose arguments have `shapes` and whose output has
    /// `out_shape`, for the normalised `wrt` (ignored for values).
    #[new]
    fn new(
        py: Python<'_>,
        compiled: Py<PyCompiled>,
        shapes: Vec<Vec<usize>>,
        out_shape: Vec<usize>,
        kind: &str,
        wrt: Vec<usize>,
        single: bool,
    ) -> PyResult<Self> {
        let kind = match kind {
            "values" => Kind::Values,
            "value_and_grad" => Kind::ValueAndGrad,
            "grad" => Kind::Grad,
            "jacobian" => Kind::Jacobian,
            "hessian" => Kind::Hessian,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "_RowCall: unknown kind {kind:?}"
                )))
            }
        };
        let c = &compiled.get().0;
        let sizes = c.arg_sizes();
        let ok_shapes = shapes.len() == sizes.len()
            && shapes
                .iter()
                .zip(sizes)
                .all(|(s, &n)| s.iter().product::<usize>() == n);
        if !ok_shapes || out_shape.iter().product::<usize>() != c.program().n_outputs() {
            return Err(PyValueError::new_err(
                "_RowCall: shapes do not match the program",
            ));
        }
        if wrt.iter().any(|&i| i >= sizes.len()) || (kind != Kind::Values && wrt.is_empty()) {
            return Err(PyValueError::new_err("_RowCall: wrt out of range"));
        }
        let scalar = c.program().n_outputs() == 1 && out_shape.is_empty();
        if matches!(kind, Kind::ValueAndGrad | Kind::Grad | Kind::Hessian) && !scalar {
            return Err(PyValueError::new_err("_RowCall: needs a scalar output"));
        }
        let flags = (0..sizes.len()).map(|i| wrt.contains(&i)).collect();
        let per_row = crate::compile::guard::cost(c.gradient_program());
        let per_row = if kind == Kind::Hessian {
            per_row * (sizes.iter().sum::<usize>() + 1)
        } else {
            per_row
        };
        let np = py.import("numpy")?;
        Ok(RowCall {
            detach: per_row >= DETACH_COST,
            compiled,
            shapes,
            out_shape,
            kind,
            wrt,
            flags,
            single,
            ndarray: np.getattr("ndarray")?.unbind(),
            float64: np.getattr("float64")?.unbind(),
        })
    }

    /// The call on `args` (the method's positional arguments), or `None` when the batch
    /// path must take it (see the module documentation).
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        if super::debug::on() {
            return Ok(None);
        }
        guarded(|| match self.inputs(args)? {
            Some(row) => self.run(py, &row),
            None => Ok(None),
        })
    }
}
