//! Python `_Compiled.hvp`, `_Compiled.hessian_block` and `_Compiled._hessian_rows`: the
//! lane Hessians and Hessian-vector products of [`crate::hvp`], and the dual-number
//! Hessian they are tested against.

use super::compiled::{
    arg_list, check_flags, guarded, reduce_of, slices, value_error, PyCompiled, SMALL_BUFFER,
};
use crate::exec::{BatchError, Reduce};
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::prelude::*;

fn error(e: BatchError) -> PyErr {
    match e {
        BatchError::Memory(s) => PyMemoryError::new_err(s),
        e => value_error(e),
    }
}

/// A fresh array of `len` numbers for a result the engine writes whole: zeroed through
/// NumPy's C API when small, else `np.empty` (no zeroing pass, as for batch results).
fn fresh<'py>(py: Python<'py>, len: usize) -> PyResult<Bound<'py, PyArray1<f64>>> {
    if len <= SMALL_BUFFER {
        return Ok(PyArray1::zeros(py, len, false));
    }
    let empty = py.import("numpy")?.getattr("empty")?;
    Ok(empty.call1((len,))?.cast_into::<PyArray1<f64>>()?)
}

#[pymethods]
impl PyCompiled {
    /// Per row, `H v` for the elements of the `wrt` arguments (`K` numbers per row, or
    /// `K` in all when reduced); `v` holds one flat array per `wrt` argument.
    #[allow(clippy::too_many_arguments)]
    fn hvp<'py>(
        &self,
        py: Python<'py>,
        args: Vec<PyReadonlyArray1<'py, f64>>,
        per_row: Vec<bool>,
        n: usize,
        wrt: Vec<bool>,
        v: Vec<PyReadonlyArray1<'py, f64>>,
        v_per_row: Vec<bool>,
        reduce: &str,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        guarded(|| {
            let sizes = self.0.arg_sizes();
            check_flags("hvp: wrt", &wrt, sizes.len())?;
            check_flags("hvp: per_row", &per_row, sizes.len())?;
            let data = slices(&args, "argument")?;
            let tan = slices(&v, "v")?;
            let v_sizes: Vec<usize> = sizes
                .iter()
                .zip(&wrt)
                .filter(|(_, &on)| on)
                .map(|(&s, _)| s)
                .collect();
            if tan.len() != v_sizes.len() || v_per_row.len() != v_sizes.len() {
                return Err(PyValueError::new_err(format!(
                    "hvp: v needs one array (and one per_row flag) per wrt argument ({}), got {} and {}",
                    v_sizes.len(),
                    tan.len(),
                    v_per_row.len()
                )));
            }
            let args = arg_list(&data, sizes, &per_row);
            let vs = arg_list(&tan, &v_sizes, &v_per_row);
            let r = reduce_of(reduce)?;
            let k: usize = v_sizes.iter().sum();
            // Per row into a fresh array, when its length is one the engine accepts
            // (otherwise the engine's own call reports what is wrong).
            let len = n.checked_mul(k).filter(|&l| l <= crate::hvp::MAX_ELEMENTS);
            if let (Reduce::None, Some(len)) = (r, len) {
                let out = fresh(py, len)?;
                let mut guard = out.readwrite();
                let buf = guard
                    .as_slice_mut()
                    .map_err(|e| PyValueError::new_err(e.to_string()))?;
                py.detach(|| self.0.hvp_into(&args, n, &wrt, &vs, buf))
                    .map_err(error)?;
                drop(guard);
                return Ok(out);
            }
            let out = py
                .detach(|| self.0.hvp(&args, n, &wrt, &vs, r))
                .map_err(error)?;
            Ok(out.into_pyarray(py))
        })
    }

    /// Per row, the Hessian block (`K x K`, row-major) of the `wrt` arguments, on lanes.
    fn hessian_block<'py>(
        &self,
        py: Python<'py>,
        args: Vec<PyReadonlyArray1<'py, f64>>,
        per_row: Vec<bool>,
        n: usize,
        wrt: Vec<bool>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        guarded(|| {
            let sizes = self.0.arg_sizes();
            check_flags("hessian: wrt", &wrt, sizes.len())?;
            check_flags("hessian: per_row", &per_row, sizes.len())?;
            let data = slices(&args, "argument")?;
            let args = arg_list(&data, sizes, &per_row);
            let h = py
                .detach(|| self.0.hessian_block(&args, n, &wrt))
                .map_err(error)?;
            Ok(h.into_pyarray(py))
        })
    }

    /// The Hessian block on dual numbers, one row at a time (the reference for tests).
    fn _hessian_rows<'py>(
        &self,
        py: Python<'py>,
        args: Vec<PyReadonlyArray1<'py, f64>>,
        per_row: Vec<bool>,
        n: usize,
        wrt: Vec<bool>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        guarded(|| {
            let sizes = self.0.arg_sizes();
            check_flags("hessian: wrt", &wrt, sizes.len())?;
            check_flags("hessian: per_row", &per_row, sizes.len())?;
            let data = slices(&args, "argument")?;
            let args = arg_list(&data, sizes, &per_row);
            let (_, _, h) = py
                .detach(|| self.0.hessian_wrt_rows(&args, n, &wrt))
                .map_err(error)?;
            Ok(h.into_pyarray(py))
        })
    }
}
