//! Compiled functions: trace once, then evaluate values and derivatives over many rows.

use crate::compile::graph::Graph;
use crate::compile::program::Program;
use crate::compile::trace::{trace, Traced};
use crate::exec::hessian::{self, Hessians};
use crate::exec::jit::{Kernel, Pass};
use crate::exec::pool::pool;
use crate::exec::{self, Arg, BatchError, Buffers, Job, Layout, Output, Reduce};
use std::sync::{Arc, OnceLock};

pub use crate::exec::pool::{num_threads, set_num_threads, MAX_THREADS};

/// A function compiled for batch evaluation: its [`Program`] and the sizes of its
/// arguments (the program's inputs are the arguments' elements, flattened in order).
///
/// ```
/// use wengert::exec::{Arg, Reduce};
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

/// Native code for the two programs (see [`crate::exec::jit`]), built on first use: values for
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

/// Runs the batch work `f` over `n` rows on the thread pool, or on the calling thread when
/// the rows make one chunk (see [`exec::single_chunk`]): handing a small batch to a worker
/// and waking it was most of a one-row call (about 15 us of 20).
fn on_pool<R: Send>(n: usize, f: impl FnOnce() -> R + Send) -> R {
    if exec::single_chunk(n) {
        f()
    } else {
        pool().install(f)
    }
}

pub use crate::exec::settings::{jit_mode, JitMode};

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
        let bad = |e: crate::compile::DecodeError| BatchError::Invalid(e.to_string());
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

    /// The program that runs `job` (values, or the gradient layout for every job with
    /// derivatives).
    pub fn program_for_job(&self, job: &Job) -> &Program {
        self.program_for(job)
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
        let pass = exec::native_pass(job)?;
        let (p, i) = match pass {
            Pass::Values => (&self.program, 0),
            Pass::Gradient => (&self.gradients, 1),
        };
        match jit_mode() {
            JitMode::Off => return None,
            JitMode::Auto if !crate::exec::jit::worthwhile(p) => return None,
            _ => {}
        }
        self.natives.0[i]
            .get_or_init(|| {
                Kernel::new(p, pass, crate::exec::jit::block_groups(p, pass)).map(Arc::new)
            })
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
        let isa = exec::detect_isa();
        on_pool(n, || {
            exec::run(
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

    /// Lengths of the per-row result buffers of [`Compiled::run_into`].
    pub fn buffer_lens(&self, args: &[Arg], n: usize, job: &Job, reduce: Reduce) -> Buffers<usize> {
        exec::buffer_lens(self.program_for(job), &self.layout, args, n, job, reduce)
    }

    /// Like [`Compiled::run`], writing per-row results into caller-owned buffers (see
    /// [`exec::run_into`]).
    pub fn run_into(
        &self,
        args: &[Arg],
        n: usize,
        job: &Job,
        reduce: Reduce,
        bufs: Buffers<&mut [f64]>,
    ) -> Result<Output, BatchError> {
        let isa = exec::detect_isa();
        on_pool(n, || {
            exec::run_into(
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

    /// Lengths of the per-row result buffers of [`Compiled::run_flagged_into`].
    pub fn flagged_buffer_lens(
        &self,
        args: &[Arg],
        n: usize,
        job: &Job,
        reduce: Reduce,
    ) -> Buffers<usize> {
        exec::flagged_buffer_lens(self.program_for(job), &self.layout, args, n, job, reduce)
    }

    /// Like [`Compiled::run_into`] for a function whose last output is a guard flag: the
    /// other outputs as usual, and the flag's sum over the rows, computed in the same
    /// pass (see [`exec::run_flagged_into`]).
    pub fn run_flagged_into(
        &self,
        args: &[Arg],
        n: usize,
        job: &Job,
        reduce: Reduce,
        bufs: Buffers<&mut [f64]>,
    ) -> Result<(Output, f64), BatchError> {
        let isa = exec::detect_isa();
        on_pool(n, || {
            exec::run_flagged_into(
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

    /// Per row: the value, the gradient (`N` numbers) and the Hessian (`N x N`, row-major)
    /// with respect to all `N` inputs, for a scalar output, on lanes (see
    /// [`crate::hvp`]). See [`Compiled::hessian_wrt`] for a block of it.
    pub fn hessian(&self, args: &[Arg], n: usize) -> Result<Hessians, BatchError> {
        self.hessian_wrt(args, n, &vec![true; self.arg_sizes().len()])
    }

    /// Per row: the value, the gradient entries and the Hessian block (row-major) of the
    /// program inputs of the arguments marked in `wrt` (one flag per argument; inputs in
    /// argument order), for a scalar output, on dual numbers one row at a time: the
    /// reference the lane Hessians of [`crate::hvp`] are tested against, and the
    /// engine for blocks too wide for them. One dual sweep per input in the block, and
    /// only the block's rows are kept. A result beyond 2^34 numbers (128 GiB), or one the
    /// allocator refuses, is [`BatchError::Memory`], checked before the work.
    ///
    /// ```
    /// use wengert::exec::Arg;
    /// use wengert::compiled::Compiled;
    /// use wengert::Real;
    /// // f(v, t) = t^2 (v0 + v1): d2f/dt2 = 2 (v0 + v1).
    /// let c = Compiled::trace(&[2, 1], |x| vec![x[2] * x[2] * (x[0] + x[1])]);
    /// let (v, g, h) = c
    ///     .hessian_wrt_rows(&[Arg::rows(&[1.0, 2.0], 2), Arg::rows(&[3.0], 1)], 1, &[false, true])
    ///     .unwrap();
    /// assert_eq!((v, g, h), (vec![27.0], vec![18.0], vec![6.0]));
    /// ```
    pub fn hessian_wrt_rows(
        &self,
        args: &[Arg],
        n: usize,
        wrt: &[bool],
    ) -> Result<Hessians, BatchError> {
        let p = self.gradient_program();
        pool().install(|| hessian::hessian_wrt(p, self.arg_sizes(), args, n, wrt))
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
