//! Derivative graphs for nested transforms: `_Trace._derive` turns a finished trace into
//! the graph of its forward or reverse sweep ([`crate::compile::derive`]) and hands it to Python
//! as a node list, which `wengert._nested` evaluates on whatever numbers the enclosing
//! transform passed in.

use super::trace::PyTrace;
use crate::compile::derive::{jvp_graph, vjp_graph, Seed};
use crate::compile::graph::{Graph, Node};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

/// One node for Python: `(0, k)` input k, `(1, c)` constant, `(2, name, a)`,
/// `(3, name, a, b)`, `(4, symbol, x, y, a, b)`. Arguments index earlier entries.
fn export<'py>(
    py: Python<'py>,
    g: &Graph,
    outputs: &[u32],
) -> PyResult<(Bound<'py, PyList>, Vec<usize>)> {
    let nodes = g.nodes();
    let mut keep = vec![false; nodes.len()];
    for &o in outputs {
        keep[o as usize] = true;
    }
    for i in (0..nodes.len()).rev() {
        if keep[i] {
            for a in nodes[i].args() {
                keep[a as usize] = true;
            }
        }
    }
    let mut at = vec![usize::MAX; nodes.len()];
    let list = PyList::empty(py);
    for (i, n) in nodes.iter().enumerate() {
        if !keep[i] {
            continue;
        }
        at[i] = list.len();
        let r = |a: u32| at[a as usize];
        let item = match *n {
            Node::Input(k) => (0usize, k).into_pyobject(py)?,
            Node::Const(c) => (1usize, c).into_pyobject(py)?,
            Node::Unary(op, a) => (2usize, op.name(), r(a)).into_pyobject(py)?,
            Node::Binary(op, a, b) => (3usize, op.name(), r(a), r(b)).into_pyobject(py)?,
            Node::Select(cmp, [x, y, a, b]) => {
                (4usize, cmp.symbol(), r(x), r(y), r(a), r(b)).into_pyobject(py)?
            }
        };
        list.append(item)?;
    }
    Ok((list, outputs.iter().map(|&o| at[o as usize]).collect()))
}

fn seeds(raw: Vec<Option<f64>>) -> Vec<Seed> {
    raw.into_iter()
        .map(|s| s.map_or(Seed::Input, Seed::Const))
        .collect()
}

#[pymethods]
impl PyTrace {
    /// The derivative graph of this trace with outputs `outputs` (traced values or
    /// numbers): `mode` "jvp" (one seed per input) or "vjp" (one seed per output); a seed
    /// is a float, or None for a new input of the derivative graph. Returns
    /// `(nodes, output positions)`: the outputs, then their tangents (jvp) or the adjoint
    /// of every input (vjp).
    fn _derive<'py>(
        &self,
        py: Python<'py>,
        outputs: Vec<Bound<'py, PyAny>>,
        mode: &str,
        seed: Vec<Option<f64>>,
    ) -> PyResult<(Bound<'py, PyList>, Vec<usize>)> {
        let outs = self.output_nodes(&outputs, "a nested transform")?;
        let graph = self.g.with(|g| g.clone());
        let n_inputs = graph.n_inputs() as usize;
        let want = if mode == "jvp" { n_inputs } else { outs.len() };
        if seed.len() != want {
            return Err(PyValueError::new_err(format!(
                "_derive: expected {want} seeds, got {}",
                seed.len()
            )));
        }
        let (d, d_outs) = match mode {
            "jvp" => jvp_graph(&graph, &outs, &seeds(seed)),
            "vjp" => vjp_graph(&graph, &outs, &seeds(seed)),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "_derive: mode must be 'jvp' or 'vjp', got {mode:?}"
                )))
            }
        };
        export(py, &d, &d_outs)
    }
}
