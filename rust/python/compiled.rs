//! Python `_Compiled`: the batch engine behind `wg.compile`. Arguments arrive as flat
//! float64 arrays already checked and broadcast by `wengert._compile`; each call converts,
//! runs one core function with the GIL released, and returns flat arrays.

use crate::compiled::{self, Compiled};
use crate::exec::{self, Arg, BatchError, Job, Output, Reduce};
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes};

/// A compiled function (the engine of `wg.compile`; use that instead).
#[pyclass(name = "_Compiled", module = "wengert", frozen)]
pub struct PyCompiled(pub(crate) Compiled);

impl From<Compiled> for PyCompiled {
    fn from(c: Compiled) -> Self {
        PyCompiled(c)
    }
}

pub(super) fn value_error(e: BatchError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Runs `f`, turning a Rust panic into RuntimeError: the last resort behind the checks
/// below, since pyo3 would raise PanicException, a BaseException that `except Exception`
/// does not catch. (Allocation failure aborts rather than panics: sizes are checked
/// before anything is allocated.)
pub(crate) fn guarded<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(PyRuntimeError::new_err(format!(
            "internal error in wengert (please report it): {msg}"
        )))
    })
}

/// One flag per argument, as `wrt` lists in the Python layer are.
pub(super) fn check_flags(what: &str, flags: &[bool], n_args: usize) -> PyResult<()> {
    if flags.len() != n_args {
        return Err(PyValueError::new_err(format!(
            "{what}: expected one flag per argument ({n_args}), got {}",
            flags.len()
        )));
    }
    Ok(())
}

pub(super) fn reduce_of(s: &str) -> PyResult<Reduce> {
    match s {
        "none" => Ok(Reduce::None),
        "sum" => Ok(Reduce::Sum),
        "mean" => Ok(Reduce::Mean),
        _ => Err(PyValueError::new_err(format!(
            "reduce must be None, \"sum\" or \"mean\", got {s:?}"
        ))),
    }
}

/// Borrowed slices of the argument arrays (`what` names them in errors: the Python layer
/// hands over aligned, contiguous float64 copies, so these are internal errors).
pub(super) fn slices<'a>(
    arrays: &'a [PyReadonlyArray1<'_, f64>],
    what: &str,
) -> PyResult<Vec<&'a [f64]>> {
    arrays
        .iter()
        .enumerate()
        .map(|(i, a)| {
            a.as_slice()
                .map_err(|e| PyValueError::new_err(format!("{what} {i}: {e}")))
        })
        .collect()
}

pub(super) fn arg_list<'a>(data: &[&'a [f64]], sizes: &[usize], per_row: &[bool]) -> Vec<Arg<'a>> {
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

/// Result buffers up to this many numbers are allocated (and zeroed) through NumPy's C
/// API; larger ones with `np.empty`, which skips a zeroing pass the engine makes useless.
pub(super) const SMALL_BUFFER: usize = 4096;

type Arrays<'py> = Vec<Bound<'py, PyArray1<f64>>>;

/// One fresh NumPy array per result buffer.
type Buffers<'py> = exec::Buffers<Bound<'py, PyArray1<f64>>>;

/// Values, and the gradient of each argument in `wrt` (None for the others).
type VjpResult<'py> = (
    Bound<'py, PyArray1<f64>>,
    Vec<Option<Bound<'py, PyArray1<f64>>>>,
);

/// Values, gradients (as [`VjpResult`]) and the flag's sum over the rows.
type FlaggedVjp<'py> = (
    Bound<'py, PyArray1<f64>>,
    Vec<Option<Bound<'py, PyArray1<f64>>>>,
    f64,
);

/// Values, tangents and the flag's sum over the rows.
type FlaggedJvp<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>, f64);

/// Per-row results in fresh NumPy arrays, the reduced ones, and (for a flagged program)
/// the flag's sum over the rows.
struct Results<'py> {
    reduced: Output,
    arrays: Buffers<'py>,
    flag: f64,
}

impl<'py> Results<'py> {
    /// The result `pick` chooses: the per-row array, or the reduced numbers when the call
    /// reduced it.
    fn take(
        &self,
        py: Python<'py>,
        pick: impl for<'b> FnOnce(&'b Buffers<'py>) -> &'b Bound<'py, PyArray1<f64>>,
        reduced: &[f64],
    ) -> Bound<'py, PyArray1<f64>> {
        let a = pick(&self.arrays);
        if a.len() == 0 && !reduced.is_empty() {
            reduced.to_vec().into_pyarray(py)
        } else {
            a.clone()
        }
    }
}

impl PyCompiled {
    /// [`PyCompiled::values`], and [`PyCompiled::values_flagged`] with `flagged`.
    fn values_impl<'py>(
        &self,
        py: Python<'py>,
        args: Vec<PyReadonlyArray1<'py, f64>>,
        per_row: Vec<bool>,
        n: usize,
        reduce: &str,
        flagged: bool,
    ) -> PyResult<(Bound<'py, PyArray1<f64>>, f64)> {
        guarded(|| {
            let data = slices(&args, "argument")?;
            let r = self.run(
                py,
                &data,
                &per_row,
                n,
                &Job::Values,
                reduce_of(reduce)?,
                flagged,
            )?;
            Ok((r.take(py, |b| &b.values, &r.reduced.values), r.flag))
        })
    }

    /// [`PyCompiled::vjp`], and [`PyCompiled::vjp_flagged`] with `flagged`.
    #[allow(clippy::too_many_arguments)]
    fn vjp_impl<'py>(
        &self,
        py: Python<'py>,
        args: Vec<PyReadonlyArray1<'py, f64>>,
        per_row: Vec<bool>,
        n: usize,
        cotangent: PyReadonlyArray1<'py, f64>,
        cotangent_per_row: bool,
        wrt: Vec<bool>,
        reduce: &str,
        flagged: bool,
    ) -> PyResult<(VjpResult<'py>, f64)> {
        guarded(|| {
            check_flags("vjp: wrt", &wrt, self.0.arg_sizes().len())?;
            let data = slices(&args, "argument")?;
            let ct = cotangent
                .as_slice()
                .map_err(|e| PyValueError::new_err(format!("cotangent: {e}")))?;
            // A flag takes no cotangent.
            let m = self
                .0
                .program()
                .n_outputs()
                .saturating_sub(usize::from(flagged));
            let cotangent = Arg {
                data: ct,
                size: m,
                per_row: cotangent_per_row,
            };
            let job = Job::Vjp {
                cotangent,
                wrt: wrt.clone(),
            };
            let r = self.run(py, &data, &per_row, n, &job, reduce_of(reduce)?, flagged)?;
            let grads = (0..wrt.len())
                .map(|a| wrt[a].then(|| r.take(py, |b| &b.grads[a], &r.reduced.grads[a])))
                .collect();
            Ok((
                (r.take(py, |b| &b.values, &r.reduced.values), grads),
                r.flag,
            ))
        })
    }

    /// [`PyCompiled::jvp`], and [`PyCompiled::jvp_flagged`] with `flagged`.
    #[allow(clippy::too_many_arguments)]
    fn jvp_impl<'py>(
        &self,
        py: Python<'py>,
        args: Vec<PyReadonlyArray1<'py, f64>>,
        per_row: Vec<bool>,
        n: usize,
        tangents: Vec<PyReadonlyArray1<'py, f64>>,
        tangents_per_row: Vec<bool>,
        reduce: &str,
        flagged: bool,
    ) -> PyResult<(Arrays<'py>, f64)> {
        guarded(|| {
            let data = slices(&args, "argument")?;
            let tan = slices(&tangents, "tangent")?;
            check_flags("jvp: tangents", &tangents_per_row, self.0.arg_sizes().len())?;
            if tan.len() != tangents_per_row.len() {
                return Err(PyValueError::new_err("jvp needs one tangent per argument"));
            }
            let job = Job::Jvp {
                tangents: arg_list(&tan, self.0.arg_sizes(), &tangents_per_row),
            };
            let r = self.run(py, &data, &per_row, n, &job, reduce_of(reduce)?, flagged)?;
            let arrays = vec![
                r.take(py, |b| &b.values, &r.reduced.values),
                r.take(py, |b| &b.tangents, &r.reduced.tangents),
            ];
            Ok((arrays, r.flag))
        })
    }

    /// Refuses a row count whose widest result (the Jacobian: outputs x inputs per row)
    /// could not be addressed, before any buffer length is computed from it.
    fn check_rows(&self, n: usize) -> PyResult<()> {
        let width = (self.0.arg_sizes().iter().sum::<usize>() + 1)
            .checked_mul(self.0.program().n_outputs().max(1));
        let bytes = width
            .and_then(|w| w.checked_mul(n))
            .and_then(|x| x.checked_mul(8));
        match bytes {
            Some(b) if b <= isize::MAX as usize => Ok(()),
            _ => Err(PyMemoryError::new_err(format!(
                "{n} rows: the results would not fit in memory"
            ))),
        }
    }

    /// Runs `job`, writing per-row results straight into NumPy arrays (allocated with
    /// `np.empty`: no zeroing pass over memory the engine overwrites anyway). With
    /// `flagged`, the program's last output is a guard flag, summed and not stored (see
    /// [`Compiled::run_flagged_into`]).
    #[allow(clippy::too_many_arguments)]
    fn run<'py>(
        &self,
        py: Python<'py>,
        data: &[&[f64]],
        per_row: &[bool],
        n: usize,
        job: &Job,
        reduce: Reduce,
        flagged: bool,
    ) -> PyResult<Results<'py>> {
        if data.len() != per_row.len() || data.len() != self.0.arg_sizes().len() {
            return Err(PyValueError::new_err(format!(
                "expected {} arguments with one per_row flag each, got {} and {}",
                self.0.arg_sizes().len(),
                data.len(),
                per_row.len()
            )));
        }
        self.check_rows(n)?;
        let args = arg_list(data, self.0.arg_sizes(), per_row);
        let mut empty = None;
        if flagged && self.0.program().n_outputs() == 0 {
            return Err(PyValueError::new_err(
                "a flagged program needs its flag as the last output",
            ));
        }
        let lens = if flagged {
            self.0.flagged_buffer_lens(&args, n, job, reduce)
        } else {
            self.0.buffer_lens(&args, n, job, reduce)
        };
        let arrays: Buffers<'py> = lens.try_map(|len| -> PyResult<_> {
            if len <= SMALL_BUFFER {
                // Through the C API: np.empty from Rust is a module lookup and a
                // Python call per buffer, most of a small call's buffers' cost.
                return Ok(PyArray1::zeros(py, len, false));
            }
            let empty = match &empty {
                Some(e) => e,
                None => empty.insert(py.import("numpy")?.getattr("empty")?),
            };
            Ok(empty.call1((len,))?.cast_into::<PyArray1<f64>>()?)
        })?;
        let mut guards = arrays.as_ref().map(|a| a.readwrite());
        let bufs = guards.as_mut().try_map(|g| {
            g.as_slice_mut()
                .map_err(|e| PyValueError::new_err(e.to_string()))
        })?;
        let work = || {
            if flagged {
                self.0.run_flagged_into(&args, n, job, reduce, bufs)
            } else {
                self.0
                    .run_into(&args, n, job, reduce, bufs)
                    .map(|o| (o, 0.0))
            }
        };
        let costly =
            n.saturating_mul(self.0.program_for_job(job).instrs().len()) >= super::row::DETACH_COST;
        let (reduced, flag) = if costly { py.detach(work) } else { work() }.map_err(value_error)?;
        drop(guards);
        Ok(Results {
            reduced,
            arrays,
            flag,
        })
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
        Ok(self.values_impl(py, args, per_row, n, reduce, false)?.0)
    }

    /// For a program whose last output is a guard flag: the values of the other outputs
    /// (as `values` gives them) and the flag's sum over the rows, from one pass.
    fn values_flagged<'py>(
        &self,
        py: Python<'py>,
        args: Vec<PyReadonlyArray1<'py, f64>>,
        per_row: Vec<bool>,
        n: usize,
        reduce: &str,
    ) -> PyResult<(Bound<'py, PyArray1<f64>>, f64)> {
        self.values_impl(py, args, per_row, n, reduce, true)
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
    ) -> PyResult<VjpResult<'py>> {
        Ok(self
            .vjp_impl(
                py,
                args,
                per_row,
                n,
                cotangent,
                cotangent_per_row,
                wrt,
                reduce,
                false,
            )?
            .0)
    }

    /// `vjp` for a program whose last output is a guard flag: the cotangent leaves the
    /// flag out; also returned, the flag's sum over the rows, from the same pass.
    #[allow(clippy::too_many_arguments)]
    fn vjp_flagged<'py>(
        &self,
        py: Python<'py>,
        args: Vec<PyReadonlyArray1<'py, f64>>,
        per_row: Vec<bool>,
        n: usize,
        cotangent: PyReadonlyArray1<'py, f64>,
        cotangent_per_row: bool,
        wrt: Vec<bool>,
        reduce: &str,
    ) -> PyResult<FlaggedVjp<'py>> {
        let ((v, g), f) = self.vjp_impl(
            py,
            args,
            per_row,
            n,
            cotangent,
            cotangent_per_row,
            wrt,
            reduce,
            true,
        )?;
        Ok((v, g, f))
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
        Ok(self
            .jvp_impl(
                py,
                args,
                per_row,
                n,
                tangents,
                tangents_per_row,
                reduce,
                false,
            )?
            .0)
    }

    /// `jvp` for a program whose last output is a guard flag: values and tangents of the
    /// other outputs, and the flag's sum over the rows, from one pass.
    #[allow(clippy::too_many_arguments)]
    fn jvp_flagged<'py>(
        &self,
        py: Python<'py>,
        args: Vec<PyReadonlyArray1<'py, f64>>,
        per_row: Vec<bool>,
        n: usize,
        tangents: Vec<PyReadonlyArray1<'py, f64>>,
        tangents_per_row: Vec<bool>,
        reduce: &str,
    ) -> PyResult<FlaggedJvp<'py>> {
        let (mut a, f) = self.jvp_impl(
            py,
            args,
            per_row,
            n,
            tangents,
            tangents_per_row,
            reduce,
            true,
        )?;
        let t = a.pop().expect("values and tangents");
        let v = a.pop().expect("values and tangents");
        Ok((v, t, f))
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
        guarded(|| {
            check_flags("jacobian: wrt", &wrt, self.0.arg_sizes().len())?;
            let data = slices(&args, "argument")?;
            let r = self.run(
                py,
                &data,
                &per_row,
                n,
                &Job::Jacobian { wrt },
                Reduce::None,
                false,
            )?;
            Ok(vec![
                r.take(py, |b| &b.values, &[]),
                r.take(py, |b| &b.jacobian, &[]),
            ])
        })
    }

    /// Per row: value, gradient (`K` numbers) and Hessian block (`K x K`) with respect to
    /// the `K` inputs of the `wrt` arguments (all when `None`), forward over reverse.
    #[pyo3(signature = (args, per_row, n, wrt=None))]
    fn hessian<'py>(
        &self,
        py: Python<'py>,
        args: Vec<PyReadonlyArray1<'py, f64>>,
        per_row: Vec<bool>,
        n: usize,
        wrt: Option<Vec<bool>>,
    ) -> PyResult<Arrays<'py>> {
        let data = slices(&args, "argument")?;
        if data.len() != per_row.len() {
            return Err(PyValueError::new_err("one per_row flag per argument"));
        }
        let args = arg_list(&data, self.0.arg_sizes(), &per_row);
        let wrt = wrt.unwrap_or_else(|| vec![true; self.0.arg_sizes().len()]);
        let (v, g, h) = py
            .detach(|| self.0.hessian_wrt(&args, n, &wrt))
            .map_err(|e| match e {
                BatchError::Memory(s) => pyo3::exceptions::PyMemoryError::new_err(s),
                e => value_error(e),
            })?;
        Ok(vec![
            v.into_pyarray(py),
            g.into_pyarray(py),
            h.into_pyarray(py),
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
    /// A rough cost of one row (see `crate::compile::guard::cost`).
    #[getter]
    fn cost(&self) -> usize {
        crate::compile::guard::cost(self.0.program())
    }
    #[getter]
    fn n_slots(&self) -> usize {
        self.0.program().n_slots()
    }
    /// Graphviz DOT text of the optimised program.
    fn to_dot(&self) -> String {
        self.0.program().to_dot()
    }
    /// The serialized programs (see `from_bytes`).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.to_bytes())
    }
    #[staticmethod]
    fn from_bytes(data: &[u8], arg_sizes: Vec<usize>) -> PyResult<Self> {
        // Every input takes a 4-byte slot in each serialized program, so sizes adding up
        // to more than the bytes could hold are refused before they become allocations.
        let total = arg_sizes
            .iter()
            .try_fold(0usize, |acc, &s| acc.checked_add(s));
        match total {
            Some(t) if t <= data.len() / 4 => {}
            _ => {
                return Err(PyValueError::new_err(format!(
                    "not a serialized wengert function: argument sizes {arg_sizes:?} give more \
                     inputs than its {} bytes can hold",
                    data.len()
                )))
            }
        }
        guarded(|| {
            Ok(PyCompiled(
                Compiled::from_bytes(data, &arg_sizes).map_err(value_error)?,
            ))
        })
    }
}

/// Sets the number of threads batch evaluation uses: an int in `1..=1024`
/// ([`compiled::MAX_THREADS`]); anything else is a ValueError (TypeError for a non-int).
#[pyfunction]
pub fn set_num_threads(n: &Bound<'_, PyAny>) -> PyResult<()> {
    let max = compiled::MAX_THREADS;
    let got = n
        .get_type()
        .name()
        .map(|t| t.to_string())
        .unwrap_or_default();
    if n.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "set_num_threads(n): n must be an int, got {got}"
        )));
    }
    // operator.index: ints and NumPy integers, not floats.
    let n = n
        .py()
        .import("operator")?
        .call_method1("index", (n,))
        .map_err(|_| {
            PyTypeError::new_err(format!("set_num_threads(n): n must be an int, got {got}"))
        })?;
    if n.lt(1)? {
        return Err(PyValueError::new_err(format!(
            "set_num_threads(n): n must be at least 1, got {n}"
        )));
    }
    if n.gt(max)? {
        return Err(PyValueError::new_err(format!(
            "set_num_threads(n): n must be at most {max} (wengert's cap on worker threads), got {n}"
        )));
    }
    let n: usize = n.extract()?;
    // Starting threads can still fail (a process limit): RuntimeError, not a panic.
    guarded(|| {
        compiled::set_num_threads(n);
        Ok(())
    })
}

/// The number of threads batch evaluation uses.
#[pyfunction]
pub fn get_num_threads() -> PyResult<usize> {
    guarded(|| Ok(compiled::num_threads()))
}

/// Reads `WENGERT_JIT`, `WENGERT_ISA` and `WENGERT_PORTABLE` again (they are read once, at first use).
#[pyfunction]
pub fn _reload_settings() -> PyResult<()> {
    guarded(|| {
        crate::exec::settings::reload();
        Ok(())
    })
}

/// The settings batch calls use now: (`"off"`, `"on"` or `"auto"` from `WENGERT_JIT`;
/// the kernel build, `"portable"`, `"avx2"` or `"avx512"`: the CPU's best, capped by
/// `WENGERT_ISA` and `WENGERT_PORTABLE`).
#[pyfunction]
pub fn _engine_settings() -> PyResult<(&'static str, &'static str)> {
    use crate::exec::isa::{detect_isa, Isa};
    use crate::exec::settings::{self, JitMode};
    guarded(|| {
        let jit = match settings::jit_mode() {
            JitMode::Off => "off",
            JitMode::On => "on",
            JitMode::Auto => "auto",
        };
        let isa = match detect_isa() {
            Isa::Portable => "portable",
            Isa::Avx2Fma => "avx2",
            Isa::Avx512 => "avx512",
        };
        Ok((jit, isa))
    })
}
