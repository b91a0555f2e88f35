//! Python `_Compiled`: the batch engine behind `wg.compile`. Arguments arrive as flat
//! float64 arrays already checked and broadcast by `wengert._compile`; each call converts,
//! runs one core function with the GIL released, and returns flat arrays.

use crate::batch::{Arg, BatchError, Job, Output, Reduce};
use crate::compiled::{self, Compiled};
use crate::program::Program;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// A compiled function (the engine of `wg.compile`; use that instead).
#[pyclass(name = "_Compiled", module = "wengert", frozen)]
pub struct PyCompiled(Compiled);

impl From<Compiled> for PyCompiled {
    fn from(c: Compiled) -> Self {
        PyCompiled(c)
    }
}

fn value_error(e: BatchError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn reduce_of(s: &str) -> PyResult<Reduce> {
    match s {
        "none" => Ok(Reduce::None),
        "sum" => Ok(Reduce::Sum),
        "mean" => Ok(Reduce::Mean),
        _ => Err(PyValueError::new_err(format!(
            "reduce must be None, \"sum\" or \"mean\", got {s:?}"
        ))),
    }
}

/// Borrowed slices of the argument arrays.
fn slices<'a>(arrays: &'a [PyReadonlyArray1<'_, f64>]) -> PyResult<Vec<&'a [f64]>> {
    arrays
        .iter()
        .map(|a| {
            a.as_slice()
                .map_err(|e| PyValueError::new_err(e.to_string()))
        })
        .collect()
}

fn arg_list<'a>(data: &[&'a [f64]], sizes: &[usize], per_row: &[bool]) -> Vec<Arg<'a>> {
    data.iter()
        .zip(sizes)
        .zip(per_row)
        .map(|((d, &size), &per_row)| Arg {
            data: d,
            size,
            per_row,
        })
        .collect()
}

type Arrays<'py> = Vec<Bound<'py, PyArray1<f64>>>;

impl PyCompiled {
    fn run<'py>(
        &self,
        py: Python<'py>,
        data: &[&[f64]],
        per_row: &[bool],
        n: usize,
        job: &Job,
        reduce: Reduce,
    ) -> PyResult<Output> {
        if data.len() != per_row.len() {
            return Err(PyValueError::new_err("one per_row flag per argument"));
        }
        let args = arg_list(data, self.0.arg_sizes(), per_row);
        py.detach(|| self.0.run(&args, n, job, reduce))
            .map_err(value_error)
    }
}

#[pymethods]
impl PyCompiled {
    /// Values over `n` rows: `n * n_outputs` numbers (`n_outputs` when reduced).
    fn values<'py>(
        &self,
        py: Python<'py>,
        args: Vec<PyReadonlyArray1<'py, f64>>,
        per_row: Vec<bool>,
        n: usize,
        reduce: &str,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let data = slices(&args)?;
        let out = self.run(py, &data, &per_row, n, &Job::Values, reduce_of(reduce)?)?;
        Ok(out.values.into_pyarray(py))
    }

    /// Values and the vector-Jacobian product; gradients of arguments not in `wrt` are None.
    #[allow(clippy::too_many_arguments)]
    fn vjp<'py>(
        &self,
        py: Python<'py>,
        args: Vec<PyReadonlyArray1<'py, f64>>,
        per_row: Vec<bool>,
        n: usize,
        cotangent: PyReadonlyArray1<'py, f64>,
        cotangent_per_row: bool,
        wrt: Vec<bool>,
        reduce: &str,
    ) -> PyResult<(
        Bound<'py, PyArray1<f64>>,
        Vec<Option<Bound<'py, PyArray1<f64>>>>,
    )> {
        let data = slices(&args)?;
        let ct = cotangent
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let m = self.0.program().n_outputs();
        let cotangent = Arg {
            data: ct,
            size: m,
            per_row: cotangent_per_row,
        };
        let job = Job::Vjp {
            cotangent,
            wrt: wrt.clone(),
        };
        let out = self.run(py, &data, &per_row, n, &job, reduce_of(reduce)?)?;
        let grads = out
            .grads
            .into_iter()
            .zip(&wrt)
            .map(|(g, &w)| w.then(|| g.into_pyarray(py)))
            .collect();
        Ok((out.values.into_pyarray(py), grads))
    }

    /// Values and the Jacobian-vector product with one tangent per argument.
    #[allow(clippy::too_many_arguments)]
    fn jvp<'py>(
        &self,
        py: Python<'py>,
        args: Vec<PyReadonlyArray1<'py, f64>>,
        per_row: Vec<bool>,
        n: usize,
        tangents: Vec<PyReadonlyArray1<'py, f64>>,
        tangents_per_row: Vec<bool>,
        reduce: &str,
    ) -> PyResult<Arrays<'py>> {
        let data = slices(&args)?;
        let tan = slices(&tangents)?;
        if tan.len() != tangents_per_row.len() {
            return Err(PyValueError::new_err("one per_row flag per tangent"));
        }
        let job = Job::Jvp {
            tangents: arg_list(&tan, self.0.arg_sizes(), &tangents_per_row),
        };
        let out = self.run(py, &data, &per_row, n, &job, reduce_of(reduce)?)?;
        Ok(vec![
            out.values.into_pyarray(py),
            out.tangents.into_pyarray(py),
        ])
    }

    /// Values and the Jacobian with respect to the `wrt` arguments: per row, `n_outputs`
    /// rows of as many columns as those arguments have elements.
    fn jacobian<'py>(
        &self,
        py: Python<'py>,
        args: Vec<PyReadonlyArray1<'py, f64>>,
        per_row: Vec<bool>,
        n: usize,
        wrt: Vec<bool>,
    ) -> PyResult<Arrays<'py>> {
        let data = slices(&args)?;
        let out = self.run(py, &data, &per_row, n, &Job::Jacobian { wrt }, Reduce::None)?;
        Ok(vec![
            out.values.into_pyarray(py),
            out.jacobian.into_pyarray(py),
        ])
    }

    #[getter]
    fn n_outputs(&self) -> usize {
        self.0.program().n_outputs()
    }
    #[getter]
    fn arg_sizes(&self) -> Vec<usize> {
        self.0.arg_sizes().to_vec()
    }
    #[getter]
    fn n_instructions(&self) -> usize {
        self.0.program().instrs().len()
    }
    #[getter]
    fn n_slots(&self) -> usize {
        self.0.program().n_slots()
    }
    /// Graphviz DOT text of the optimised program.
    fn to_dot(&self) -> String {
        self.0.program().to_dot()
    }
    /// The serialized program (see `from_bytes`).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.program().to_bytes())
    }
    #[staticmethod]
    fn from_bytes(data: &[u8], arg_sizes: Vec<usize>) -> PyResult<Self> {
        let p = Program::from_bytes(data).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyCompiled(
            Compiled::from_program(p, &arg_sizes).map_err(value_error)?,
        ))
    }
}

/// Sets the number of threads batch evaluation uses.
#[pyfunction]
pub fn set_num_threads(n: usize) -> PyResult<()> {
    if n == 0 {
        return Err(PyValueError::new_err(
            "set_num_threads(n): n must be at least 1",
        ));
    }
    compiled::set_num_threads(n);
    Ok(())
}

/// The number of threads batch evaluation uses.
#[pyfunction]
pub fn get_num_threads() -> usize {
    compiled::num_threads()
}
