//! Compiled functions: trace once, then evaluate values and derivatives over many rows.

use crate::batch::{self, Arg, BatchError, Job, Layout, Output, Reduce};
use crate::graph::Graph;
use crate::jit::{Kernel, Pass};
use crate::program::Program;
use crate::trace::{trace, Traced};
use std::sync::{Arc, Mutex, OnceLock};

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
    /// Laid out for values only (slots reused as early as possible).
    program: Program,
    /// Laid out for derivatives (see [`Program::for_gradients`]).
    gradients: Program,
    layout: Layout,
    natives: Natives,
    /// Hessian and HVP programs derived from `program` (see [`crate::hvp`]).
    pub(crate) derived: crate::hvp::Cache,
}

/// Native code for the two programs (see [`crate::jit`]), built on first use: values for
/// `program`, values and gradients for `gradients`. A cache, not part of the function's
/// identity.
#[derive(Clone, Default)]
struct Natives([OnceLock<Option<Arc<Kernel>>>; 2]);

impl PartialEq for Natives {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Natives {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Natives")
    }
}

/// When compiled functions run native code (see [`crate::jit`]), from `WENGERT_JIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JitMode {
    /// `0`: always interpret (to compare, or on a host where code generation misbehaves).
    Off,
    /// `1`: native code whenever the host and the program allow it.
    On,
    /// Unset (or anything else): native code where [`crate::jit::worthwhile`] says it pays.
    Auto,
}

/// The [`JitMode`] `WENGERT_JIT` asks for.
pub fn jit_mode() -> JitMode {
    match std::env::var("WENGERT_JIT").as_deref() {
        Ok("0") => JitMode::Off,
        Ok("1") => JitMode::On,
        _ => JitMode::Auto,
    }
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
            gradients: Program::for_gradients(graph, outputs),
            layout,
            natives: Natives::default(),
            derived: Default::default(),
        }
    }

    /// A self-contained encoding of both programs (what `pickle` stores); the argument
    /// sizes travel separately.
    pub fn to_bytes(&self) -> Vec<u8> {
        let a = self.program.to_bytes();
        let mut w = (a.len() as u64).to_le_bytes().to_vec();
        w.extend_from_slice(&a);
        w.extend_from_slice(&self.gradients.to_bytes());
        w
    }

    /// Decodes [`Compiled::to_bytes`] for arguments of the given sizes.
    pub fn from_bytes(b: &[u8], arg_sizes: &[usize]) -> Result<Self, BatchError> {
        let bad = |e: crate::program::DecodeError| BatchError::Invalid(e.to_string());
        let short = || BatchError::Invalid("not a serialized wengert function: truncated".into());
        let len = u64::from_le_bytes(b.get(..8).ok_or_else(short)?.try_into().unwrap()) as usize;
        let a = b.get(8..8usize.saturating_add(len)).ok_or_else(short)?;
        let program = Program::from_bytes(a).map_err(bad)?;
        let gradients = Program::from_bytes(&b[8 + len..]).map_err(bad)?;
        let layout = Layout::new(arg_sizes);
        for p in [&program, &gradients] {
            if layout.n_inputs() != p.n_inputs() || p.n_outputs() != program.n_outputs() {
                return Err(BatchError::Invalid(format!(
                    "argument sizes give {} inputs, the program has {}",
                    layout.n_inputs(),
                    p.n_inputs()
                )));
            }
        }
        Ok(Compiled {
            program,
            gradients,
            layout,
            natives: Natives::default(),
            derived: Default::default(),
        })
    }

    /// Traces `f` (which sees the arguments' elements flattened in order) and compiles it.
    pub fn trace(arg_sizes: &[usize], f: impl FnOnce(&[Traced]) -> Vec<Traced>) -> Self {
        let n: usize = arg_sizes.iter().sum();
        let (graph, outputs) = trace(n as u32, f);
        Compiled::new(&graph, &outputs, arg_sizes)
    }

    /// The program values are computed with.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The program derivatives are computed with.
    pub fn gradient_program(&self) -> &Program {
        &self.gradients
    }

    fn program_for(&self, job: &Job) -> &Program {
        match job {
            Job::Values => &self.program,
            _ => &self.gradients,
        }
    }

    /// The native code that serves `job`, compiled on first use; `None` when the job
    /// needs the interpreter, native code is off or does not pay (see [`jit_mode`]), or
    /// it is unavailable.
    pub fn native(&self, job: &Job) -> Option<&Kernel> {
        let pass = batch::native_pass(job)?;
        let (p, i) = match pass {
            Pass::Values => (&self.program, 0),
            Pass::Gradient => (&self.gradients, 1),
        };
        match jit_mode() {
            JitMode::Off => return None,
            JitMode::Auto if !crate::jit::worthwhile(p) => return None,
            _ => {}
        }
        self.natives.0[i]
            .get_or_init(|| Kernel::new(p, pass, crate::jit::block_groups(p, pass)).map(Arc::new))
            .as_deref()
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
        pool().install(|| {
            batch::run(
                self.program_for(job),
                &self.layout,
                args,
                n,
                job,
                reduce,
                isa,
                self.native(job),
            )
        })
    }

    /// Runs `f` on the wengert thread pool.
    pub(crate) fn pool_install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        pool().install(f)
    }

    /// Lengths of the per-row result buffers of [`Compiled::run_into`].
    pub fn buffer_lens(&self, args: &[Arg], n: usize, job: &Job, reduce: Reduce) -> Vec<usize> {
        batch::buffer_lens(self.program_for(job), &self.layout, args, n, job, reduce)
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
            batch::run_into(
                self.program_for(job),
                &self.layout,
                args,
                n,
                job,
                reduce,
                isa,
                self.native(job),
                bufs,
            )
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

/// The most threads [`set_num_threads`] starts. A CPU-bound engine gains nothing past a
/// few threads per core; the bound keeps a mistaken count from spawning OS threads until
/// the machine stalls.
pub const MAX_THREADS: usize = 1024;

/// Threads used when none were set: `WENGERT_NUM_THREADS` when it is a count in
/// `1..=MAX_THREADS`, else (unset, garbage or out of range) every core.
fn default_threads() -> usize {
    std::env::var("WENGERT_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| (1..=MAX_THREADS).contains(n))
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
        })
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

/// Sets the number of threads batch evaluation uses, clamped to `1..=MAX_THREADS`.
///
/// ```
/// wengert::compiled::set_num_threads(2);
/// assert_eq!(wengert::compiled::num_threads(), 2);
/// ```
pub fn set_num_threads(n: usize) {
    let n = n.clamp(1, MAX_THREADS);
    *POOL.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(build_pool(n)));
}

/// The number of threads batch evaluation uses.
pub fn num_threads() -> usize {
    pool().current_num_threads()
}
