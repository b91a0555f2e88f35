//! Tracing Python functions for `wg.compile`: `_Traced` stands in for each argument
//! element and records every operation into the trace's [`Graph`]; comparisons give a
//! `_Cond` whose only use is `wg.where` (its truth value is unknown while tracing).

use super::compiled::PyCompiled;
use super::number::{binary_any, method_result, number_arith, number_result, plain_number, Number};
use crate::compile::graph::{Graph, GraphError, MAX_NODES};
use crate::compiled::Compiled;
use crate::op::{Binary, Cmp, Unary};
use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The graph of one trace, shared by its values.
pub(super) struct Shared {
    id: u64,
    graph: Mutex<Graph>,
    /// The source site of each new node (see `wengert._debug`), when the trace keeps them.
    sites: Option<Mutex<FxHashMap<u32, i64>>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Shared {
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut Graph) -> R) -> R {
        f(&mut self.graph.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// `f`, which records at most two nodes (an operation and a constant), unless the
    /// graph is full: a MemoryError rather than growing past [`MAX_NODES`].
    fn record(&self, f: impl FnOnce(&mut Graph) -> u32) -> PyResult<u32> {
        let (before, idx) = self.with(|g| {
            if g.len() + 2 > MAX_NODES {
                return Err(PyMemoryError::new_err(format!(
                    "wg.compile: the trace has reached {MAX_NODES} nodes, the most a compiled \
                     function holds"
                )));
            }
            Ok((g.len(), f(g)))
        })?;
        if let (Some(sites), true) = (&self.sites, idx as usize >= before) {
            let site = super::debug::site();
            sites
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(idx, site);
        }
        Ok(idx)
    }

    /// The source sites of the nodes recorded, when the trace keeps them.
    pub(super) fn sites(&self) -> Option<FxHashMap<u32, i64>> {
        let s = self.sites.as_ref()?;
        Some(s.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

const TRUTH: &str = "the truth value of a traced comparison is unknown while wg.compile traces \
    the function (it would bake one branch into every row): use wg.where(cond, a, b) for a \
    branch-free select, and wg.maximum/wg.minimum/wg.abs instead of max/min/abs branches";

/// A traced number: a node of the graph `wg.compile` is recording.
#[pyclass(name = "_Traced", module = "wengert", frozen)]
pub struct PyTraced {
    pub(super) g: Arc<Shared>,
    pub(super) idx: u32,
}

impl PyTraced {
    fn node(&self, idx: u32) -> Self {
        PyTraced {
            g: self.g.clone(),
            idx,
        }
    }

    /// The node of `ob` in this trace: a traced value of the same trace or a constant.
    pub(super) fn operand(&self, ob: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
        if let Ok(t) = ob.cast::<PyTraced>() {
            let t = t.get();
            self.same_trace(t)?;
            return Ok(Some(t.idx));
        }
        plain_number(ob)?
            .map(|c| self.g.record(|g| g.constant(c)))
            .transpose()
    }

    fn same_trace(&self, o: &PyTraced) -> PyResult<()> {
        if o.g.id != self.g.id {
            return Err(PyValueError::new_err(
                "a traced value from another wg.compile trace was used: values cannot leak \
                 out of the function being compiled",
            ));
        }
        Ok(())
    }
}

impl Number for PyTraced {
    const NAME: &'static str = "traced value";
    fn val(&self) -> f64 {
        f64::NAN // unknown while tracing; never read, since comparisons record instead
    }
    fn unary(&self, op: Unary) -> PyResult<Self> {
        Ok(self.node(self.g.record(|g| g.unary(op, self.idx))?))
    }
    fn binary(&self, op: Binary, y: &Self) -> PyResult<Self> {
        self.same_trace(y)?;
        Ok(self.node(self.g.record(|g| g.binary(op, self.idx, y.idx))?))
    }
    fn binary_const(&self, op: Binary, c: f64, const_first: bool) -> PyResult<Self> {
        let idx = self.g.record(|g| {
            let c = g.constant(c);
            if const_first {
                g.binary(op, c, self.idx)
            } else {
                g.binary(op, self.idx, c)
            }
        })?;
        Ok(self.node(idx))
    }
}

number_arith!(PyTraced);

#[pymethods]
impl PyTraced {
    fn __richcmp__(&self, o: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Option<PyCond>> {
        let Some(y) = self.operand(o)? else {
            return Ok(None);
        };
        let cmp = super::number::cmp_of(op);
        Ok(Some(PyCond {
            g: self.g.clone(),
            cmp,
            x: self.idx,
            y,
        }))
    }
    fn __bool__(&self) -> PyResult<bool> {
        Err(PyTypeError::new_err(TRUTH))
    }
    fn __float__(&self) -> PyResult<f64> {
        Err(PyTypeError::new_err(
            "a traced value has no float value while wg.compile traces the function: use \
             wg.sin etc. instead of math.sin, and keep values as numbers, not floats",
        ))
    }
    fn __hash__(slf: &Bound<'_, Self>) -> isize {
        slf.as_ptr() as isize
    }
    fn __repr__(&self) -> String {
        format!("_Traced(#{})", self.idx)
    }
    // Reflected forms, so wg.atan2(1.0, traced) finds its way here.
    fn ratan2(&self, x: &Bound<'_, PyAny>) -> PyResult<Self> {
        method_result::<Self>("atan2", x, binary_any(self, Binary::Atan2, x, true)?)
    }
    fn rhypot(&self, x: &Bound<'_, PyAny>) -> PyResult<Self> {
        method_result::<Self>("hypot", x, binary_any(self, Binary::Hypot, x, true)?)
    }
    fn rpow(&self, x: &Bound<'_, PyAny>) -> PyResult<Self> {
        method_result::<Self>("pow", x, binary_any(self, Binary::Pow, x, true)?)
    }
    fn rmaximum(&self, x: &Bound<'_, PyAny>) -> PyResult<Self> {
        method_result::<Self>("maximum", x, binary_any(self, Binary::Max, x, true)?)
    }
    fn rminimum(&self, x: &Bound<'_, PyAny>) -> PyResult<Self> {
        method_result::<Self>("minimum", x, binary_any(self, Binary::Min, x, true)?)
    }
}

/// A traced comparison: the condition of `wg.where`.
#[pyclass(name = "_Cond", module = "wengert", frozen)]
pub struct PyCond {
    g: Arc<Shared>,
    cmp: Cmp,
    x: u32,
    y: u32,
}

#[pymethods]
impl PyCond {
    fn __bool__(&self) -> PyResult<bool> {
        Err(PyTypeError::new_err(TRUTH))
    }
    /// `a` where the condition holds, else `b`, recorded as a select.
    fn _where(&self, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<PyTraced> {
        let x = PyTraced {
            g: self.g.clone(),
            idx: self.x,
        };
        let node = |v: &Bound<'_, PyAny>, name: &str| {
            x.operand(v)?.ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "wg.where(cond, a, b): {name} must be a number or a traced value, got {}",
                    v.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })
        };
        let (a, b) = (node(a, "a")?, node(b, "b")?);
        let idx = self
            .g
            .record(|g| g.select(self.cmp, self.x, self.y, a, b))?;
        Ok(x.node(idx))
    }
    fn __repr__(&self) -> String {
        format!("_Cond(#{} {} #{})", self.x, self.cmp.symbol(), self.y)
    }
}

/// One trace in progress: hands out the inputs, then compiles the outputs.
#[pyclass(name = "_Trace", module = "wengert", frozen)]
pub struct PyTrace {
    pub(super) g: Arc<Shared>,
    sizes: Vec<usize>,
}

impl PyTrace {
    /// The graph nodes of a function's flattened outputs (traced values of this trace, or
    /// numbers); `what` names the caller in the error for anything else.
    pub(super) fn output_nodes(
        &self,
        outputs: &[Bound<'_, PyAny>],
        what: &str,
    ) -> PyResult<Vec<u32>> {
        let probe = PyTraced {
            g: self.g.clone(),
            idx: 0,
        };
        let mut nodes = Vec::with_capacity(outputs.len());
        for (i, o) in outputs.iter().enumerate() {
            nodes.push(probe.operand(o)?.ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "{what}: output {i} of the function is a {}, expected a number or \
                     traced value (or a sequence of them)",
                    o.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?);
        }
        Ok(nodes)
    }
}

#[pymethods]
impl PyTrace {
    /// The most nodes a trace holds, inputs included (`graph::MAX_NODES`).
    #[classattr]
    const MAX_NODES: usize = MAX_NODES;

    /// A trace of a function whose arguments have these numbers of elements: at most
    /// `MAX_NODES` in all (ValueError past it, checked before anything is allocated;
    /// MemoryError when the allocator refuses). With `sites`, each recorded operation
    /// keeps the Python source line that recorded it (for `wg.debug_nans`).
    #[new]
    #[pyo3(signature = (sizes, sites = false))]
    fn new(sizes: Vec<usize>, sites: bool) -> PyResult<Self> {
        let n = sizes
            .iter()
            .try_fold(0usize, |acc, &s| acc.checked_add(s))
            .unwrap_or(usize::MAX);
        let graph = Graph::try_new(n).map_err(|e| match e {
            GraphError::TooManyNodes(_) => PyValueError::new_err(format!(
                "wg.compile: argument shapes with {n} elements in all: {e}"
            )),
            GraphError::OutOfMemory(_) => PyMemoryError::new_err(format!("wg.compile: {e}")),
        })?;
        let g = Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            graph: Mutex::new(graph),
            sites: sites.then(|| Mutex::new(FxHashMap::default())),
        });
        Ok(PyTrace { g, sizes })
    }

    /// The traced inputs, flattened in argument order.
    fn inputs(&self) -> Vec<PyTraced> {
        let n: usize = self.sizes.iter().sum();
        (0..n as u32)
            .map(|idx| PyTraced {
                g: self.g.clone(),
                idx,
            })
            .collect()
    }

    /// Compiles the flattened outputs (traced values or numbers).
    fn compile(&self, outputs: Vec<Bound<'_, PyAny>>) -> PyResult<PyCompiled> {
        let nodes = self.output_nodes(&outputs, "wg.compile")?;
        super::compiled::guarded(|| {
            Ok(PyCompiled::from(
                self.g.with(|g| Compiled::new(g, &nodes, &self.sizes)),
            ))
        })
    }

    /// Nodes recorded so far.
    fn __len__(&self) -> usize {
        self.g.with(|g| g.len())
    }
}
