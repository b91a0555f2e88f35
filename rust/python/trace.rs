//! Tracing Python functions for `wg.compile`: `_Traced` stands in for each argument
//! element and records every operation into the trace's [`Graph`]; comparisons give a
//! `_Cond`, a condition for `wg.where` (combined with `&`, `|`, `~`). A trace made from
//! the numbers of one row (its witness) answers a condition's truth value with that row's
//! outcome and records it as a guard (see [`crate::compile::guard`]); without a row it cannot.

use super::compiled::PyCompiled;
use super::number::{binary_any, method_result, number_arith, number_result, plain_number, Number};
use crate::compile::graph::{Graph, GraphError, MAX_NODES};
use crate::compile::guard::{self, Guard, MAX_DECISIONS};
use crate::compiled::Compiled;
use crate::op::{Binary, Cmp, Unary};
use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The graph of one trace, shared by its values.
pub(super) struct Shared {
    id: u64,
    graph: Mutex<Graph>,
    branches: Mutex<Branches>,
    /// The source site of each new node (see `wengert._debug`), when the trace keeps them.
    sites: Option<Mutex<FxHashMap<u32, i64>>>,
}

/// The branch decisions of one trace.
#[derive(Default)]
struct Branches {
    /// The witness row's inputs and each node's value on it; `None` when tracing without
    /// numbers.
    witness: Option<(Vec<f64>, Vec<f64>)>,
    /// Without a witness: whether the caller can trace again from a row (`wg.compile`),
    /// rather than raise (the traces of nested transforms).
    deferrable: bool,
    /// A truth value was asked for without a witness: the trace is void.
    needs_row: bool,
    guards: Vec<Guard>,
    seen: FxHashSet<Guard>,
    decisions: usize,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Shared {
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut Graph) -> R) -> R {
        f(&mut self.graph.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn branches(&self) -> std::sync::MutexGuard<'_, Branches> {
        self.branches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The truth value of `x cmp y` on the witness row, recorded as a guard.
    fn decide(&self, cmp: Cmp, x: u32, y: u32) -> PyResult<bool> {
        let mut b = self.branches();
        b.decisions += 1;
        if b.decisions > MAX_DECISIONS {
            return Err(PyRuntimeError::new_err(format!(
                "wg.compile: tracing the function on one row took more than {MAX_DECISIONS} \
                 branch decisions: a while loop that does not end on that row? (The row is \
                 the first one whose branches had not been traced.)"
            )));
        }
        let Some((_, vals)) = &b.witness else {
            if b.deferrable {
                b.needs_row = true;
                return Err(PyTypeError::new_err(NEEDS_ROW));
            }
            return Err(PyTypeError::new_err(TRUTH));
        };
        let g = Guard::seen(cmp, x, y, vals);
        if b.seen.insert(g) {
            b.guards.push(g);
        }
        Ok(g.outcome)
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
            let before = g.len();
            let node = f(g);
            if let Some((inputs, vals)) = &mut self.branches().witness {
                guard::extend_values(g, vals, inputs);
            }
            Ok((before, node))
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

const TRUTH: &str = "the truth value of a traced comparison is unknown here: a transform \
    nested in another one (wg.grad(f) inside wg.compile, or inside another transform given \
    traced numbers) traces f without the numbers of a row, so f cannot branch on its inputs \
    there. Compile f itself and use F.grad / F.jacobian / F.hessian, which follow branches \
    row by row, or write the branch as wg.where(cond, a, b) (and wg.maximum/wg.minimum \
    for max/min)";

/// Raised (and caught by `wengert._compile`, which traces again from a row) when a
/// function branches while it is traced without numbers.
const NEEDS_ROW: &str = "wg.compile: the function branches on its inputs, so it is traced \
    from the numbers of a row at its first call (this error escapes only if the function \
    catches it)";

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
            e: Expr::Cmp(cmp, self.idx, y),
        }))
    }
    /// `x != 0` on the witness row (a guard), as for a float.
    fn __bool__(&self) -> PyResult<bool> {
        let zero = self.g.record(|g| g.constant(0.0))?;
        self.g.decide(Cmp::Ne, self.idx, zero)
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
    fn rfmod(&self, x: &Bound<'_, PyAny>) -> PyResult<Self> {
        method_result::<Self>("fmod", x, binary_any(self, Binary::Fmod, x, true)?)
    }
    fn rremainder(&self, x: &Bound<'_, PyAny>) -> PyResult<Self> {
        method_result::<Self>(
            "remainder",
            x,
            binary_any(self, Binary::Remainder, x, true)?,
        )
    }
    fn rcopysign(&self, x: &Bound<'_, PyAny>) -> PyResult<Self> {
        method_result::<Self>("copysign", x, binary_any(self, Binary::Copysign, x, true)?)
    }
    fn rlogaddexp(&self, x: &Bound<'_, PyAny>) -> PyResult<Self> {
        method_result::<Self>(
            "logaddexp",
            x,
            binary_any(self, Binary::Logaddexp, x, true)?,
        )
    }
}

/// A condition: comparisons of traced values combined with `&`, `|` and `~`.
#[derive(Clone, Debug)]
enum Expr {
    Const(bool),
    Cmp(Cmp, u32, u32),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// A traced condition: the condition of `wg.where`, or (in a trace made from a row) a
/// branch decision when Python asks for its truth value.
#[pyclass(name = "_Cond", module = "wengert", frozen)]
pub struct PyCond {
    g: Arc<Shared>,
    e: Expr,
}

impl PyCond {
    /// `o` as a condition of this trace: a `_Cond` of the same trace or a bool.
    fn other(&self, o: &Bound<'_, PyAny>) -> PyResult<Option<Expr>> {
        if let Ok(c) = o.cast::<PyCond>() {
            let c = c.get();
            if c.g.id != self.g.id {
                return Err(PyValueError::new_err(
                    "a condition from another wg.compile trace was used: values cannot leak \
                     out of the function being compiled",
                ));
            }
            return Ok(Some(c.e.clone()));
        }
        // A bool or NumPy's bool_ (not an int: `c & 1` is no condition).
        Ok(o.extract::<bool>().ok().map(Expr::Const))
    }

    fn with(&self, e: Expr) -> PyCond {
        PyCond {
            g: self.g.clone(),
            e,
        }
    }

    fn truth(&self, e: &Expr) -> PyResult<bool> {
        // Short-circuit: a row whose first operand decides needs no guard on the second.
        Ok(match e {
            Expr::Const(b) => *b,
            Expr::Cmp(c, x, y) => self.g.decide(*c, *x, *y)?,
            Expr::Not(e) => !self.truth(e)?,
            Expr::And(p, q) => self.truth(p)? && self.truth(q)?,
            Expr::Or(p, q) => self.truth(p)? || self.truth(q)?,
        })
    }

    /// The node of `if e { a } else { b }`, as nested selects.
    fn select(&self, e: &Expr, a: u32, b: u32) -> PyResult<u32> {
        match e {
            Expr::Const(c) => Ok(if *c { a } else { b }),
            Expr::Cmp(c, x, y) => self.g.record(|g| g.select(*c, *x, *y, a, b)),
            Expr::Not(e) => self.select(e, b, a),
            Expr::And(p, q) => {
                let inner = self.select(q, a, b)?;
                self.select(p, inner, b)
            }
            Expr::Or(p, q) => {
                let inner = self.select(q, a, b)?;
                self.select(p, a, inner)
            }
        }
    }

    fn show(&self, e: &Expr) -> String {
        match e {
            Expr::Const(b) => (if *b { "True" } else { "False" }).to_string(),
            Expr::Cmp(c, x, y) => format!("#{x} {} #{y}", c.symbol()),
            Expr::Not(e) => format!("~({})", self.show(e)),
            Expr::And(p, q) => format!("({}) & ({})", self.show(p), self.show(q)),
            Expr::Or(p, q) => format!("({}) | ({})", self.show(p), self.show(q)),
        }
    }
}

#[pymethods]
impl PyCond {
    /// In a trace made from a row: the outcome on that row, recorded as a guard.
    fn __bool__(&self) -> PyResult<bool> {
        self.truth(&self.e)
    }
    fn __and__(&self, o: &Bound<'_, PyAny>) -> PyResult<Option<PyCond>> {
        Ok(self
            .other(o)?
            .map(|q| self.with(Expr::And(Box::new(self.e.clone()), Box::new(q)))))
    }
    fn __rand__(&self, o: &Bound<'_, PyAny>) -> PyResult<Option<PyCond>> {
        Ok(self
            .other(o)?
            .map(|p| self.with(Expr::And(Box::new(p), Box::new(self.e.clone())))))
    }
    fn __or__(&self, o: &Bound<'_, PyAny>) -> PyResult<Option<PyCond>> {
        Ok(self
            .other(o)?
            .map(|q| self.with(Expr::Or(Box::new(self.e.clone()), Box::new(q)))))
    }
    fn __ror__(&self, o: &Bound<'_, PyAny>) -> PyResult<Option<PyCond>> {
        Ok(self
            .other(o)?
            .map(|p| self.with(Expr::Or(Box::new(p), Box::new(self.e.clone())))))
    }
    fn __invert__(&self) -> PyCond {
        self.with(Expr::Not(Box::new(self.e.clone())))
    }
    /// `a` where the condition holds, else `b`, recorded as a select.
    fn _where(&self, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<PyTraced> {
        let x = PyTraced {
            g: self.g.clone(),
            idx: 0,
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
        let idx = self.select(&self.e, a, b)?;
        Ok(x.node(idx))
    }
    fn __repr__(&self) -> String {
        format!("_Cond({})", self.show(&self.e))
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
    /// MemoryError when the allocator refuses). With `witness` (the flattened inputs of
    /// one row), truth values of conditions are that row's outcomes, recorded as guards;
    /// without it they raise TypeError, and with `deferrable` also mark the trace as
    /// needing a row (`needs_row`). With `sites`, each recorded operation keeps the Python
    /// source line that recorded it (for `wg.debug_nans`).
    #[new]
    #[pyo3(signature = (sizes, witness=None, deferrable=false, sites=false))]
    fn new(
        sizes: Vec<usize>,
        witness: Option<Vec<f64>>,
        deferrable: bool,
        sites: bool,
    ) -> PyResult<Self> {
        let n = sizes
            .iter()
            .try_fold(0usize, |acc, &s| acc.checked_add(s))
            .unwrap_or(usize::MAX);
        if let Some(w) = &witness {
            if w.len() != n {
                return Err(PyValueError::new_err(format!(
                    "wg.compile: a witness row of {} numbers for {n} inputs",
                    w.len()
                )));
            }
        }
        let graph = Graph::try_new(n).map_err(|e| match e {
            GraphError::TooManyNodes(_) => PyValueError::new_err(format!(
                "wg.compile: argument shapes with {n} elements in all: {e}"
            )),
            GraphError::OutOfMemory(_) => PyMemoryError::new_err(format!("wg.compile: {e}")),
        })?;
        let branches = Branches {
            witness: witness.map(|w| (w.clone(), w)),
            deferrable,
            ..Branches::default()
        };
        let g = Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            graph: Mutex::new(graph),
            branches: Mutex::new(branches),
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

    /// Compiles the flattened outputs (traced values or numbers); with `guarded`, one
    /// more output follows them: 1 in a row whose guards come out as recorded, else 0.
    #[pyo3(signature = (outputs, guarded=false))]
    fn compile(&self, outputs: Vec<Bound<'_, PyAny>>, guarded: bool) -> PyResult<PyCompiled> {
        let mut nodes = self.output_nodes(&outputs, "wg.compile")?;
        let guards = self.g.branches().guards.clone();
        super::compiled::guarded(|| {
            Ok(PyCompiled::from(self.g.with(|g| {
                if guarded {
                    nodes.push(guard::flag(g, &guards));
                }
                Compiled::new(g, &nodes, &self.sizes)
            })))
        })
    }

    /// Branch decisions recorded (distinct guards).
    #[getter]
    fn n_guards(&self) -> usize {
        self.g.branches().guards.len()
    }

    /// Whether a truth value was asked for without a witness row (the trace is void).
    #[getter]
    fn needs_row(&self) -> bool {
        self.g.branches().needs_row
    }

    /// Nodes recorded so far.
    fn __len__(&self) -> usize {
        self.g.with(|g| g.len())
    }
}
