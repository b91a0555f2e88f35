//! Compiled functions: trace once, then evaluate values and derivatives over many rows.

use crate::batch::{self, Arg, BatchError, Job, Layout, Output, Reduce};
use crate::graph::Graph;
use crate::program::Program;
use crate::trace::{trace, Traced};
use std::sync::{Arc, Mutex};

/// A function compiled for batch evaluation: its [`Program`] and the sizes of its
/// arguments (the program's inputs are the arguments' elements, flattened in order).
///
/// ```
/// use wengert::batch::{Arg, Reduce};
/// use wengert::compiled::Compiled;
/// use wengert::Real;
/// // Griewank's example, generic over the number type.
/// fn f<T: Real>(x1: T, x2: T) -> T {
///     let (a, b) = (x1 / x2, x2.exp());
///     (a.sin() + a - b) * (a - b)
/// }
/// let c = Compiled::trace(&[1, 1], |x| vec![f(x[0], x[1])]);
/// let (x1, x2) = ([1.5, 2.0], [0.5, 1.0]);
/// let (values, grads) = c
///     .value_and_grad(&[Arg::rows(&x1, 1), Arg::rows(&x2, 1)], 2, Reduce::None)
///     .unwrap();
/// assert!((values[0] - 2.016647).abs() < 1e-6);
/// assert!((grads[0][0] - 3.011843327673907).abs() < 1e-13);
/// assert!((grads[1][0] + 13.723961509314076).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    program: Program,
    layout: Layout,
}

impl Compiled {
    /// Compiles `outputs` (nodes of `graph`) for arguments of the given sizes.
    pub fn new(graph: &Graph, outputs: &[u32], arg_sizes: &[usize]) -> Self {
        let layout = Layout::new(arg_sizes);
        assert_eq!(
            layout.n_inputs(),
            graph.n_inputs() as usize,
            "argument sizes and graph inputs differ"
        );
        Compiled {
            program: Program::new(graph, outputs),
            layout,
        }
    }

    /// Reassembles a compiled function from its program (see [`Program::from_bytes`]).
    pub fn from_program(program: Program, arg_sizes: &[usize]) -> Result<Self, BatchError> {
        let layout = Layout::new(arg_sizes);
        if layout.n_inputs() != program.n_inputs() {
            return Err(BatchError::Invalid(format!(
                "argument sizes give {} inputs, the program has {}",
                layout.n_inputs(),
                program.n_inputs()
            )));
        }
        Ok(Compiled { program, layout })
    }

    /// Traces `f` (which sees the arguments' elements flattened in order) and compiles it.
    pub fn trace(arg_sizes: &[usize], f: impl FnOnce(&[Traced]) -> Vec<Traced>) -> Self {
        let n: usize = arg_sizes.iter().sum();
        let (graph, outputs) = trace(n as u32, f);
        Compiled::new(&graph, &outputs, arg_sizes)
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The size of each argument.
    pub fn arg_sizes(&self) -> &[usize] {
        &self.layout.sizes
    }

    /// Runs `job` over `n` rows on the wengert thread pool.
    pub fn run(
        &self,
        args: &[Arg],
        n: usize,
        job: &Job,
        reduce: Reduce,
    ) -> Result<Output, BatchError> {
        let isa = batch::detect_isa();
        pool().install(|| batch::run(&self.program, &self.layout, args, n, job, reduce, isa))
    }

    /// Lengths of the per-row result buffers of [`Compiled::run_into`].
    pub fn buffer_lens(&self, args: &[Arg], n: usize, job: &Job, reduce: Reduce) -> Vec<usize> {
        batch::buffer_lens(&self.program, &self.layout, args, n, job, reduce)
    }

    /// Like [`Compiled::run`], writing per-row results into caller-owned buffers (see
    /// [`batch::run_into`]).
    pub fn run_into(
        &self,
        args: &[Arg],
        n: usize,
        job: &Job,
        reduce: Reduce,
        bufs: &mut [&mut [f64]],
    ) -> Result<Output, BatchError> {
        let isa = batch::detect_isa();
        pool().install(|| {
            batch::run_into(&self.program, &self.layout, args, n, job, reduce, isa, bufs)
        })
    }

    /// Values, `n_outputs` per row (one row when reduced).
    pub fn values(&self, args: &[Arg], n: usize, reduce: Reduce) -> Result<Vec<f64>, BatchError> {
        Ok(self.run(args, n, &Job::Values, reduce)?.values)
    }

    /// Values and gradients with respect to every argument, for a scalar output.
    pub fn value_and_grad(
        &self,
        args: &[Arg],
        n: usize,
        reduce: Reduce,
    ) -> Result<(Vec<f64>, Vec<Vec<f64>>), BatchError> {
        if self.program.n_outputs() != 1 {
            return Err(BatchError::Invalid(format!(
                "value_and_grad needs a scalar output, this function has {}; use jacobian or vjp",
                self.program.n_outputs()
            )));
        }
        let job = Job::Vjp {
            cotangent: Arg::shared(&[1.0]),
            wrt: vec![true; args.len()],
        };
        let out = self.run(args, n, &job, reduce)?;
        Ok((out.values, out.grads))
    }
}

/// The pool batch calls run on; replaced by [`set_num_threads`].
static POOL: Mutex<Option<Arc<rayon::ThreadPool>>> = Mutex::new(None);

/// Threads used when none were set: `WENGERT_NUM_THREADS`, else every core.
fn default_threads() -> usize {
    std::env::var("WENGERT_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn pool() -> Arc<rayon::ThreadPool> {
    let mut p = POOL.lock().unwrap_or_else(|e| e.into_inner());
    p.get_or_insert_with(|| Arc::new(build_pool(default_threads())))
        .clone()
}

fn build_pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("wengert-{i}"))
        .build()
        .expect("cannot start wengert's worker threads")
}

/// Sets the number of threads batch evaluation uses (at least 1).
///
/// ```
/// wengert::compiled::set_num_threads(2);
/// assert_eq!(wengert::compiled::num_threads(), 2);
/// ```
pub fn set_num_threads(n: usize) {
    let n = n.max(1);
    *POOL.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(build_pool(n)));
}

/// The number of threads batch evaluation uses.
pub fn num_threads() -> usize {
    pool().current_num_threads()
}
