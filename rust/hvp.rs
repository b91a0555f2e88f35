//! Hessian-vector products and Hessians over rows, on SIMD lanes: forward over reverse
//! written out as programs instead of run on dual numbers.
//!
//! The value program of a compiled function is read back as a graph ([`graph_of`]), its
//! reverse sweep written out as a graph ([`vjp_graph`]) and that graph's forward sweep as
//! another ([`jvp_graph_many`]), every partial from the one statement of each rule in
//! [`crate::op`] and strong zero as [`crate::compile::derive`] states it. The result is an ordinary
//! [`Program`]: the batch engine runs it like any function, on lanes, across threads and
//! as native code where that pays (see [`crate::exec::jit`]), and interpreter and native code
//! agree bit for bit as they do for values.
//!
//! - An HVP program takes the function's arguments and then `v` (one tangent per element
//!   of the `wrt` arguments) and returns `H v` for those elements: one sweep of each kind
//!   per row, the Hessian never formed.
//! - A Hessian program seeds the forward sweep with unit vectors, folded as constants, so
//!   a tangent that is structurally zero costs nothing: each column only computes what
//!   depends on its input (for Rosenbrock-16, whose Hessian is tridiagonal, a few
//!   instructions per column), where a dual sweep per column carries every tangent.
//!   Columns go `COLS` to a program.
//!
//! Against the dual-number Hessian of [`crate::exec::hessian`] (one row at a time, kept as
//! [`Compiled::hessian_wrt_rows`]): where every intermediate is finite, the same
//! operations on the same numbers, so the same bits for programs of arithmetic, `sqrt`
//! and `where` (checked by `tests/test_fuzz.py`), up to the sign of a zero; the functions
//! that lanes compute with [`crate::scalar::vmath`] (exp, log, sin, cos, tanh, expm1, log1p)
//! differ from libm's by an ulp or so, as the lanes' values and gradients already do.
//! Where an adjoint is infinite or NaN, a structurally zero tangent adds nothing here,
//! where a dual number multiplies its zero tangent into it (`0 * inf`); that is strong
//! zero one order up, as the nested transforms (`wg.hessian` of a function of `Var`s)
//! already have it.
//!
//! The programs run first with plain products ([`Products::Plain`]: one multiplication
//! per term, where strong zero takes four instructions), which give the strong programs'
//! numbers wherever they are not NaN (see [`crate::compile::derive`]). The rows with a NaN
//! run again on the strong programs, and entries still NaN there on dual numbers (the
//! two differ in where they let a NaN through; the entry is the lanes' unless it is NaN).

use crate::compile::derive::{jvp_graph_many_with, vjp_graph_with, Products, Seed};
use crate::compile::graph::Graph;
use crate::compile::program::{Instr, Program};
use crate::compiled::{jit_mode, Compiled, JitMode};
use crate::exec::jit::{Kernel, Pass};
use crate::exec::{self as batch, Arg, BatchError, Job, Layout, Reduce};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex, OnceLock};

/// Hessian columns per program: one program for blocks up to this wide (Rosenbrock-16's
/// whole Hessian), so the values and the reverse sweep are shared by every column.
pub const COLS: usize = 32;

/// Blocks wider than this run on dual numbers one row at a time
/// ([`Compiled::hessian_wrt_rows`]): their cost is the `K^2` numbers per row either way,
/// and `K / COLS` programs to build would cost more than they save.
pub const MAX_LANE_COLS: usize = 256;

/// Rows of a Hessian block built at a time in a task's tile before they are streamed out
/// (32 KiB for Rosenbrock-16's 16 x 16 block).
const FILL_ROWS: usize = 16;

/// Rows per task of the thread pool for lane Hessians and HVPs: one chunk of the batch
/// driver (which runs it on the worker itself), whose entries are searched for a NaN and
/// for a Hessian written into the block while they are in cache. A slab over all the
/// rows, written in one pass and read in another, cost a calloc and a trip through
/// memory each way.
const TASK_ROWS: usize = 1024;

/// Lane Hessian blocks of at least this many bytes are written with streaming stores
/// (see [`crate::exec::stream`]): well past the L2 cache, where ordinary stores read each
/// line before writing it.
const STREAM_BYTES: usize = 8 << 20;

/// Results past this many numbers are refused before allocating: 2^34 (128 GiB), beyond
/// any machine this runs on, yet far from overflowing a byte count.
pub const MAX_ELEMENTS: usize = 1 << 34;

/// Derived programs kept per compiled function (HVPs and Hessian blocks by `wrt`).
const MAX_CACHED: usize = 64;

/// The graph a program computes, read back from its instructions: slots renamed to
/// nodes in program order (a slot reused by liveness starts a new node). The graph's
/// simplifications were applied when the program was built, so they change nothing.
///
/// ```
/// use wengert::compiled::Compiled;
/// use wengert::hvp::graph_of;
/// use wengert::compile::program::Program;
/// use wengert::Real;
/// let c = Compiled::trace(&[2], |x| vec![x[0].sin() * x[1] + x[1]]);
/// let (g, outs) = graph_of(c.program());
/// assert_eq!(Program::new(&g, &outs).eval(&[1.0, 2.0]), c.program().eval(&[1.0, 2.0]));
/// ```
pub fn graph_of(p: &Program) -> (Graph, Vec<u32>) {
    let mut g = Graph::new(p.n_inputs() as u32);
    let mut node = vec![u32::MAX; p.n_slots()];
    for &(s, c) in p.consts() {
        node[s as usize] = g.constant(c);
    }
    for (i, s) in p.inputs().iter().enumerate() {
        if let Some(s) = *s {
            node[s as usize] = g.input(i as u32);
        }
    }
    for ins in p.instrs() {
        let at = |s: u32| node[s as usize];
        let (dst, v) = match *ins {
            Instr::Unary { op, dst, a } => (dst, g.unary(op, at(a))),
            Instr::Binary { op, dst, a, b } => (dst, g.binary(op, at(a), at(b))),
            Instr::Select {
                cmp,
                dst,
                x,
                y,
                a,
                b,
            } => (dst, g.select(cmp, at(x), at(y), at(a), at(b))),
        };
        node[dst as usize] = v;
    }
    let outs = p.outputs().iter().map(|&s| node[s as usize]).collect();
    (g, outs)
}

/// The reverse sweep of a scalar program as a graph: outputs the value, then the
/// gradient with respect to every input.
fn gradient_graph(p: &Program, products: Products) -> (Graph, Vec<u32>) {
    let (g, outs) = graph_of(p);
    vjp_graph_with(&g, &outs, &[Seed::Const(1.0)], products)
}

/// The HVP graph of a scalar program: its inputs, then one tangent per input in `cols`
/// (in order); outputs `(H v)_i` for `i` in `cols`. Products as `products` says (see
/// [`crate::compile::derive`]).
///
/// ```
/// use wengert::compiled::Compiled;
/// use wengert::compile::derive::Products;
/// use wengert::hvp::hvp_graph;
/// use wengert::compile::program::Program;
/// use wengert::Real;
/// // f = x^2 y: H = [[2y, 2x], [2x, 0]].
/// let c = Compiled::trace(&[1, 1], |x| vec![x[0] * x[0] * x[1]]);
/// let (g, outs) = hvp_graph(c.program(), &[0, 1], Products::Strong);
/// let hv = Program::new(&g, &outs).eval(&[3.0, 5.0, 1.0, 2.0]);
/// assert_eq!(hv, vec![2.0 * 5.0 * 1.0 + 2.0 * 3.0 * 2.0, 2.0 * 3.0 * 1.0]);
/// ```
pub fn hvp_graph(p: &Program, cols: &[usize], products: Products) -> (Graph, Vec<u32>) {
    let (g1, o1) = gradient_graph(p, products);
    let n = p.n_inputs();
    let mut seeds = vec![Seed::Const(0.0); n];
    for &i in cols {
        seeds[i] = Seed::Input;
    }
    let grads: Vec<u32> = cols.iter().map(|&i| o1[1 + i]).collect();
    let (g2, o2) = jvp_graph_many_with(&g1, &grads, &[seeds], products);
    let k = cols.len();
    (g2, o2[k..2 * k].to_vec())
}

/// A Hessian block's graph: inputs as the program's; outputs the entries
/// `H[r][c]` for `r` in `rows`, `c` in `cols`, row-major. One forward sweep per column,
/// seeded with that column's unit vector. Products as for [`hvp_graph`].
pub fn hessian_graph(
    p: &Program,
    rows: &[usize],
    cols: &[usize],
    products: Products,
) -> (Graph, Vec<u32>) {
    let (g1, o1) = gradient_graph(p, products);
    let n = p.n_inputs();
    let seed_sets: Vec<Vec<Seed>> = cols
        .iter()
        .map(|&c| (0..n).map(|i| Seed::Const((i == c) as u8 as f64)).collect())
        .collect();
    let grads: Vec<u32> = rows.iter().map(|&i| o1[1 + i]).collect();
    let (g2, o2) = jvp_graph_many_with(&g1, &grads, &seed_sets, products);
    let k = rows.len();
    // o2: the gradients, then the k tangents of each column.
    let at = |r: usize, c: usize| o2[k + c * k + r];
    let outs = (0..k)
        .flat_map(|r| (0..cols.len()).map(move |c| (r, c)))
        .map(|(r, c)| at(r, c))
        .collect();
    (g2, outs)
}

/// The program of Hessian columns `chunk` of the block `cols`: only the entries that are
/// not constants are outputs. Most of a sparse Hessian's entries are structural zeros
/// (Rosenbrock-16: 210 of 256), and the batch engine writes a wide output one column at
/// a time (256 outputs of `x * c` cost 1.1 us/row, four times NumPy's fill): zeros come
/// from the zeroed result, other constants are written per row, the rest scattered.
fn chunk(
    p: &Program,
    cols: &[usize],
    chunk: &[usize],
    arg_sizes: &[usize],
    c0: usize,
    products: Products,
) -> Derived {
    let (g, outs) = hessian_graph(p, cols, chunk, products);
    let (k, w) = (cols.len(), chunk.len());
    let (mut live, mut places, mut fixed) = (Vec::new(), Vec::new(), Vec::new());
    for (j, &o) in outs.iter().enumerate() {
        let place = (j / w) * k + c0 + j % w;
        match g.nodes()[o as usize] {
            crate::compile::graph::Node::Const(c) => {
                if c.to_bits() != 0 {
                    fixed.push((place, c));
                }
            }
            _ => {
                live.push(o);
                places.push(place);
            }
        }
    }
    let mut d = Derived::new(&g, &live, arg_sizes);
    d.places = places;
    d.fixed = fixed;
    d
}

/// A derived program with its argument layout and its native code (built on first use).
pub struct Derived {
    program: Program,
    layout: Layout,
    native: OnceLock<Option<Arc<Kernel>>>,
    /// For a Hessian chunk: where each output goes within a row of the block, and the
    /// entries that are constants (the program leaves them out, see [`chunk`]).
    places: Vec<usize>,
    fixed: Vec<(usize, f64)>,
}

impl Derived {
    fn new(graph: &Graph, outputs: &[u32], arg_sizes: &[usize]) -> Self {
        Derived {
            program: Program::new(graph, outputs),
            layout: Layout::new(arg_sizes),
            native: OnceLock::new(),
            places: Vec::new(),
            fixed: Vec::new(),
        }
    }

    /// The derived program.
    pub fn program(&self) -> &Program {
        &self.program
    }

    fn native(&self) -> Option<&Kernel> {
        let p = &self.program;
        match jit_mode() {
            JitMode::Off => return None,
            JitMode::Auto if !crate::exec::jit::worthwhile(p) => return None,
            _ => {}
        }
        self.native
            .get_or_init(|| {
                Kernel::new(
                    p,
                    Pass::Values,
                    crate::exec::jit::block_groups(p, Pass::Values),
                )
                .map(Arc::new)
            })
            .as_deref()
    }

    /// The program's values over `n` rows of `args` into `out` (`n` rows of its outputs,
    /// or, reduced, returned instead).
    fn values_into(
        &self,
        args: &[Arg],
        n: usize,
        reduce: Reduce,
        out: &mut [f64],
    ) -> Result<Vec<f64>, BatchError> {
        let job = Job::Values;
        // Values only: every other buffer is empty.
        let bufs = batch::Buffers {
            values: out,
            tangents: &mut [][..],
            jacobian: &mut [][..],
            grads: args.iter().map(|_| &mut [][..]).collect(),
        };
        let isa = batch::detect_isa();
        let native = self.native();
        let r = batch::run_into(
            &self.program,
            &self.layout,
            args,
            n,
            &job,
            reduce,
            isa,
            native,
            bufs,
        )?;
        Ok(r.values)
    }
}

/// What a derived program computes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    /// HVP for the arguments flagged.
    Hvp(Vec<bool>, Products),
    /// Hessian columns `COLS * chunk..` of the block of the arguments flagged.
    Hessian(Vec<bool>, usize, Products),
}

/// Derived programs of one compiled function, built on first use. A cache, not part of
/// the function's identity.
#[derive(Default)]
pub struct Cache(Mutex<Vec<(Key, Arc<Derived>)>>);

impl Clone for Cache {
    fn clone(&self) -> Self {
        Cache(Mutex::new(self.lock().clone()))
    }
}

impl PartialEq for Cache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cache")
    }
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Key, Arc<Derived>)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, key: Key, build: impl FnOnce() -> Derived) -> Arc<Derived> {
        let mut c = self.lock();
        if let Some((_, d)) = c.iter().find(|(k, _)| *k == key) {
            return d.clone();
        }
        let d = Arc::new(build());
        if c.len() >= MAX_CACHED {
            c.remove(0);
        }
        c.push((key, d.clone()));
        d
    }
}

/// Allocates `len` zeros, or [`BatchError::Memory`] saying `what` when the allocator
/// refuses. Asked first with `try_reserve` (which reports failure), then allocated zeroed,
/// which for a large result maps fresh pages that the workers fault in as they write:
/// zeroing on the calling thread (or `par_extend` of zeros) was most of Rosenbrock-16's
/// batch Hessian.
fn alloc(len: usize, what: impl Fn() -> String) -> Result<Vec<f64>, BatchError> {
    let mut probe: Vec<f64> = Vec::new();
    probe.try_reserve_exact(len).map_err(|_| {
        BatchError::Memory(format!(
            "{}: cannot allocate {} bytes",
            what(),
            len as u128 * 8
        ))
    })?;
    drop(probe);
    Ok(vec![0.0; len])
}

thread_local! {
    /// A worker's slab (and tile) for [`with_scratch`], reused across tasks and calls.
    static SCRATCH: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `f` on `len` numbers of scratch (contents unspecified): the thread's own buffer, or a
/// fresh one when that is in use (a task started while another on this thread waits).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// Runs `task` on each piece of `len` items of `buf` (the last may be shorter), with its
/// index, and gathers the rows each returns, in order: in the pool, or on the calling
/// thread when there is one piece (the pool's hand-over was most of a one-row call).
fn by_tasks<T: Send>(
    buf: &mut [T],
    len: usize,
    task: impl Fn((usize, &mut [T])) -> Result<Vec<usize>, BatchError> + Sync,
) -> Result<Vec<usize>, BatchError> {
    let parts: Vec<Vec<usize>> = if buf.len() <= len {
        buf.chunks_mut(len)
            .enumerate()
            .map(&task)
            .collect::<Result<_, _>>()?
    } else {
        crate::exec::pool::pool().install(|| {
            buf.par_chunks_mut(len)
                .enumerate()
                .map(&task)
                .collect::<Result<_, _>>()
        })?
    };
    Ok(parts.concat())
}

/// Whether `x` holds a NaN: compares without an early exit within 64 numbers, which
/// compile to vector code (the row-by-row search below cost more than the HVP's stores).
fn any_nan(x: &[f64]) -> bool {
    x.chunks(64)
        .any(|c| c.iter().fold(false, |a, v| a | v.is_nan()))
}

/// The rows (of `w` numbers each) of `out` that hold a NaN: rare, so searched for on
/// this thread, and only after [`any_nan`] found one.
fn nan_rows(out: &[f64], w: usize) -> Vec<usize> {
    if w == 0 || !any_nan(out) {
        return Vec::new();
    }
    out.chunks(w)
        .enumerate()
        .filter(|(_, r)| r.iter().any(|x| x.is_nan()))
        .map(|(i, _)| i)
        .collect()
}

/// Rows `rows` of the per-row arguments of `args`, gathered one after another (nothing
/// for shared ones): the data for [`gathered`].
fn gather(args: &[Arg], rows: &[usize]) -> Vec<Vec<f64>> {
    args.iter()
        .map(|a| match a.per_row {
            true => rows
                .iter()
                .flat_map(|&r| &a.data[r * a.size..(r + 1) * a.size])
                .copied()
                .collect(),
            false => Vec::new(),
        })
        .collect()
}

/// `args` with per-row data from `data` (of [`gather`]), shared arguments as they are.
fn gathered<'a>(args: &[Arg<'a>], data: &'a [Vec<f64>]) -> Vec<Arg<'a>> {
    args.iter()
        .zip(data)
        .map(|(a, d)| match a.per_row {
            true => Arg::rows(d, a.size),
            false => *a,
        })
        .collect()
}

/// Rows `r0..r1` of `args` (shared arguments as they are).
fn rows_of<'a>(args: &[Arg<'a>], r0: usize, r1: usize) -> Vec<Arg<'a>> {
    args.iter()
        .map(|a| match a.per_row {
            true => Arg::rows(&a.data[r0 * a.size..r1 * a.size], a.size),
            false => *a,
        })
        .collect()
}

impl Compiled {
    fn scalar_gradients(&self, what: &str) -> Result<(), BatchError> {
        let m = self.program().n_outputs();
        if m != 1 {
            return Err(BatchError::Invalid(format!(
                "{what} needs a scalar output, this function has {m}; use jacobian"
            )));
        }
        Ok(())
    }

    /// The program inputs of the arguments flagged in `wrt`, in order.
    fn wrt_inputs(&self, wrt: &[bool]) -> Result<Vec<usize>, BatchError> {
        let sizes = self.arg_sizes();
        if wrt.len() != sizes.len() {
            return Err(BatchError::Invalid(format!(
                "wrt needs one flag per argument: {} arguments, {} flags",
                sizes.len(),
                wrt.len()
            )));
        }
        let mut cols = Vec::new();
        let mut first = 0;
        for (&size, &on) in sizes.iter().zip(wrt) {
            if on {
                cols.extend(first..first + size);
            }
            first += size;
        }
        Ok(cols)
    }

    /// Per row, the Hessian-vector product `H v` of a scalar output, for the elements of
    /// the arguments flagged in `wrt` (`K` numbers per row, in argument order; one row
    /// when reduced: the HVP of the summed or averaged value). `v` holds one [`Arg`] per
    /// flagged argument, of its size, per row or shared. Forward over reverse, the
    /// Hessian never formed; the program is built on first use and cached.
    ///
    /// ```
    /// use wengert::exec::{Arg, Reduce};
    /// use wengert::compiled::Compiled;
    /// use wengert::Real;
    /// // f = x0^2 x1: H = [[2 x1, 2 x0], [2 x0, 0]].
    /// let c = Compiled::trace(&[2], |x| vec![x[0] * x[0] * x[1]]);
    /// let x = [3.0, 5.0, 1.0, 1.0];
    /// let hv = c
    ///     .hvp(&[Arg::rows(&x, 2)], 2, &[true], &[Arg::shared(&[1.0, 2.0])], Reduce::None)
    ///     .unwrap();
    /// assert_eq!(hv, vec![10.0 + 12.0, 6.0, 2.0 + 4.0, 2.0]);
    /// ```
    pub fn hvp(
        &self,
        args: &[Arg],
        n: usize,
        wrt: &[bool],
        v: &[Arg],
        reduce: Reduce,
    ) -> Result<Vec<f64>, BatchError> {
        let (cols, v_sizes) = self.hvp_check(args, n, wrt, v)?;
        let k = cols.len();
        let rows = if reduce == Reduce::None { n } else { 1 };
        let len = rows
            .checked_mul(k)
            .filter(|&e| e <= MAX_ELEMENTS)
            .ok_or_else(|| {
                BatchError::Memory(format!(
                    "hvp: {rows} rows of {k} numbers is more than can be allocated"
                ))
            })?;
        if reduce == Reduce::None {
            let mut out = alloc(len, || format!("hvp: {n} rows of {k} numbers"))?;
            self.hvp_rows(args, n, wrt, v, &cols, &v_sizes, &mut out)?;
            return Ok(out);
        }
        let all_args: Vec<Arg> = args.iter().chain(v).copied().collect();
        let summed = crate::exec::pool::pool().install(|| {
            self.hvp_program(wrt, &cols, &v_sizes, Products::Plain)
                .values_into(&all_args, n, reduce, &mut [])
        })?;
        if !summed.iter().any(|x| x.is_nan()) {
            return Ok(summed);
        }
        // A NaN: per row, with the NaN rows redone, then summed in row order.
        let rows = self.hvp(args, n, wrt, v, Reduce::None)?;
        let scale = if reduce == Reduce::Mean && n > 0 {
            1.0 / n as f64
        } else {
            1.0
        };
        let mut sum = vec![0.0; k];
        for row in rows.chunks_exact(k.max(1)) {
            for (s, x) in sum.iter_mut().zip(row) {
                *s += x;
            }
        }
        Ok(sum.into_iter().map(|s| s * scale).collect())
    }

    /// [`Compiled::hvp`] per row (`Reduce::None`) into `out`, `n` rows of `K` numbers
    /// (its contents on entry do not matter: every entry is written), so a caller can
    /// hand over memory it owns, such as a fresh NumPy array, with no zeroing pass first
    /// (zeroing the result was about a fifth of Rosenbrock-16's HVP: `benches/README.md`,
    /// "hessian"). Errors as [`Compiled::hvp`]'s, and a wrong `out` length.
    ///
    /// ```
    /// use wengert::exec::Arg;
    /// use wengert::compiled::Compiled;
    /// use wengert::Real;
    /// // f = x0^2 x1: H v = [2 x1 v0 + 2 x0 v1, 2 x0 v0].
    /// let c = Compiled::trace(&[2], |x| vec![x[0] * x[0] * x[1]]);
    /// let mut out = [f64::NAN; 2];
    /// c.hvp_into(&[Arg::rows(&[3.0, 5.0], 2)], 1, &[true], &[Arg::shared(&[1.0, 2.0])], &mut out)
    ///     .unwrap();
    /// assert_eq!(out, [22.0, 6.0]);
    /// ```
    pub fn hvp_into(
        &self,
        args: &[Arg],
        n: usize,
        wrt: &[bool],
        v: &[Arg],
        out: &mut [f64],
    ) -> Result<(), BatchError> {
        let (cols, v_sizes) = self.hvp_check(args, n, wrt, v)?;
        if Some(out.len()) != n.checked_mul(cols.len()) {
            return Err(BatchError::Invalid(format!(
                "hvp: the result buffer holds {} numbers, {n} rows of {} need {}",
                out.len(),
                cols.len(),
                n.saturating_mul(cols.len())
            )));
        }
        self.hvp_rows(args, n, wrt, v, &cols, &v_sizes, out)
    }

    /// The checks of [`Compiled::hvp`]: the program inputs of the `wrt` arguments, and the
    /// size of each `v`.
    fn hvp_check(
        &self,
        args: &[Arg],
        n: usize,
        wrt: &[bool],
        v: &[Arg],
    ) -> Result<(Vec<usize>, Vec<usize>), BatchError> {
        self.scalar_gradients("hvp")?;
        let sizes = self.arg_sizes();
        crate::exec::check_args(sizes, args, n)?;
        let cols = self.wrt_inputs(wrt)?;
        let v_sizes: Vec<usize> = sizes
            .iter()
            .zip(wrt)
            .filter(|(_, &on)| on)
            .map(|(&s, _)| s)
            .collect();
        if v.len() != v_sizes.len() {
            return Err(BatchError::Invalid(format!(
                "hvp: v needs one tangent per wrt argument: {} arguments, {} tangents",
                v_sizes.len(),
                v.len()
            )));
        }
        for (i, (t, &size)) in v.iter().zip(&v_sizes).enumerate() {
            let expected = if t.per_row { n * size } else { size };
            if t.size != size || t.data.len() != expected {
                return Err(BatchError::Invalid(format!(
                    "hvp: v {i}: expected {expected} numbers, got {}",
                    t.data.len()
                )));
            }
        }
        Ok((cols, v_sizes))
    }

    /// The HVP program for `wrt` with `products`, built on first use and cached.
    fn hvp_program(
        &self,
        wrt: &[bool],
        cols: &[usize],
        v_sizes: &[usize],
        products: Products,
    ) -> Arc<Derived> {
        self.derived.get(Key::Hvp(wrt.to_vec(), products), || {
            let (g, outs) = hvp_graph(self.program(), cols, products);
            let all: Vec<usize> = self.arg_sizes().iter().chain(v_sizes).copied().collect();
            Derived::new(&g, &outs, &all)
        })
    }

    /// The HVP of every row into `out` (checked by the caller): [`TASK_ROWS`] rows a task,
    /// each computed and then searched for a NaN while in cache, then the NaN rows redone.
    #[allow(clippy::too_many_arguments)]
    fn hvp_rows(
        &self,
        args: &[Arg],
        n: usize,
        wrt: &[bool],
        v: &[Arg],
        cols: &[usize],
        v_sizes: &[usize],
        out: &mut [f64],
    ) -> Result<(), BatchError> {
        let k = cols.len();
        if k == 0 || n == 0 {
            return Ok(());
        }
        let all_args: Vec<Arg> = args.iter().chain(v).copied().collect();
        let plain = self.hvp_program(wrt, cols, v_sizes, Products::Plain);
        let task = |(t, piece): (usize, &mut [f64])| -> Result<Vec<usize>, BatchError> {
            let (r0, rows) = (t * TASK_ROWS, piece.len() / k);
            plain.values_into(
                &rows_of(&all_args, r0, r0 + rows),
                rows,
                Reduce::None,
                piece,
            )?;
            Ok(nan_rows(piece, k).into_iter().map(|r| r0 + r).collect())
        };
        let bad: Vec<usize> = by_tasks(out, TASK_ROWS * k, task)?;
        if bad.is_empty() {
            return Ok(());
        }
        // The rows with a NaN on the strong program: its numbers wherever the plain one
        // gave no NaN, so only the NaN entries change.
        let data = gather(&all_args, &bad);
        let mut strong = vec![0.0; bad.len() * k];
        crate::exec::pool::pool().install(|| {
            self.hvp_program(wrt, cols, v_sizes, Products::Strong)
                .values_into(
                    &gathered(&all_args, &data),
                    bad.len(),
                    Reduce::None,
                    &mut strong,
                )
        })?;
        for (&r, s) in bad.iter().zip(strong.chunks_exact(k)) {
            for (o, &x) in out[r * k..(r + 1) * k].iter_mut().zip(s) {
                if o.is_nan() {
                    *o = x;
                }
            }
        }
        // Entries still NaN from the dual-number Hessian, as for Hessian blocks (see
        // `redo_nan_rows`): `sum_j H_ij v_j` in column order, terms with `v_j == 0` left
        // out (strong zero in the tangent).
        for r in bad {
            if !out[r * k..(r + 1) * k].iter().any(|x| x.is_nan()) {
                continue;
            }
            let (_, _, hr) = self.hessian_wrt_rows(&rows_of(args, r, r + 1), 1, wrt)?;
            let vr: Vec<f64> = v
                .iter()
                .flat_map(|t| match t.per_row {
                    true => &t.data[r * t.size..(r + 1) * t.size],
                    false => t.data,
                })
                .copied()
                .collect();
            for (i, o) in out[r * k..(r + 1) * k].iter_mut().enumerate() {
                if !o.is_nan() {
                    continue;
                }
                *o = hr[i * k..(i + 1) * k]
                    .iter()
                    .zip(&vr)
                    .filter(|(_, &vj)| vj != 0.0)
                    .fold(0.0, |acc, (&h, &vj)| acc + h * vj);
            }
        }
        Ok(())
    }

    /// Per row, the Hessian block (`K x K`, row-major) of a scalar output with respect to
    /// the `K` elements of the arguments flagged in `wrt`, on lanes: `COLS` columns per
    /// derived program, each program built on first use and cached. Blocks wider than
    /// [`MAX_LANE_COLS`] run on dual numbers one row at a time. A result beyond 2^34
    /// numbers (128 GiB), or one the allocator refuses, is [`BatchError::Memory`],
    /// checked before the work.
    pub fn hessian_block(
        &self,
        args: &[Arg],
        n: usize,
        wrt: &[bool],
    ) -> Result<Vec<f64>, BatchError> {
        self.scalar_gradients("hessian")?;
        let sizes = self.arg_sizes();
        crate::exec::check_args(sizes, args, n)?;
        let cols = self.wrt_inputs(wrt)?;
        let k = cols.len();
        let elements = k
            .checked_mul(k)
            .and_then(|kk| kk.checked_mul(n))
            .filter(|&e| e <= MAX_ELEMENTS);
        let Some(elements) = elements else {
            return Err(BatchError::Memory(format!(
                "hessian: {n} rows of a {k} x {k} block is {} bytes, more than can be \
                 allocated; ask for fewer rows or a smaller wrt",
                (n as u128) * (k as u128) * (k as u128) * 8
            )));
        };
        if k > MAX_LANE_COLS {
            return Ok(self.hessian_wrt_rows(args, n, wrt)?.2);
        }
        if k == 0 || n == 0 {
            return alloc(elements, || {
                format!("hessian: {n} rows of a {k} x {k} block")
            });
        }
        let (mut h, bad) = self.lane_block(args, n, wrt, &cols, elements, Products::Plain)?;
        if !bad.is_empty() {
            self.redo_nan_rows(args, wrt, &cols, &bad, &mut h)?;
        }
        Ok(h)
    }

    /// [`Compiled::hessian_block`] on lanes (`elements` numbers, checked by the caller),
    /// with derived programs of `products`, and the rows that hold a NaN.
    fn lane_block(
        &self,
        args: &[Arg],
        n: usize,
        wrt: &[bool],
        cols: &[usize],
        elements: usize,
        products: Products,
    ) -> Result<(Vec<f64>, Vec<usize>), BatchError> {
        let sizes = self.arg_sizes();
        let k = cols.len();
        let what = || format!("hessian: {n} rows of a {k} x {k} block");
        let kk = k * k;
        let slab_rows = (4096 * crate::compiled::num_threads()).min(n);
        if k <= COLS {
            let d = self
                .derived
                .get(Key::Hessian(wrt.to_vec(), 0, products), || {
                    chunk(self.program(), cols, cols, sizes, 0, products)
                });
            let m = d.places.len();
            let mut h: Vec<f64> = Vec::new();
            h.try_reserve_exact(elements).map_err(|_| {
                BatchError::Memory(format!(
                    "{}: cannot allocate {} bytes",
                    what(),
                    elements as u128 * 8
                ))
            })?;
            // Zeros and constants: what every row starts as.
            let mut template = vec![0.0; kk];
            for &(at, v) in &d.fixed {
                template[at] = v;
            }
            // A NaN among the constant entries is in every row; otherwise the rows with
            // a NaN are those of the computed entries, found in each task's slab (a
            // fraction of the block: 46 of Rosenbrock-16's 256 entries).
            let all_bad = d.fixed.iter().any(|(_, c)| c.is_nan());
            let stream = elements * 8 >= STREAM_BYTES;
            // Each task computes its rows' entries into a slab of its own, then writes
            // each row once, whole, while the slab is in cache: the template, then the
            // computed entries. Through `MaybeUninit`, since zeroing the result first
            // was a quarter of Rosenbrock-16's batch Hessian (a memset on the calling
            // thread: `perf record` of 200 calls of 1e4 rows). A large result is built
            // `FILL_ROWS` rows at a time in a tile and streamed out (see `exec::stream`).
            let task = |(t, rows): (usize, &mut [MaybeUninit<f64>])| {
                let (r0, nr) = (t * TASK_ROWS, rows.len() / kk);
                let tile_len = if stream { FILL_ROWS * kk } else { 0 };
                with_scratch(nr * m + tile_len, |buf| -> Result<Vec<usize>, BatchError> {
                    let (out, tile) = buf.split_at_mut(nr * m);
                    let mut bad = Vec::new();
                    if m > 0 {
                        d.values_into(&rows_of(args, r0, r0 + nr), nr, Reduce::None, out)?;
                        if !all_bad {
                            bad.extend(nan_rows(out, m).into_iter().map(|r| r0 + r));
                        }
                    }
                    let entries = |r: usize| d.places.iter().zip(&out[r * m..(r + 1) * m]);
                    for (i, dst) in rows.chunks_mut(FILL_ROWS * kk).enumerate() {
                        let r = i * FILL_ROWS;
                        if stream {
                            let tile = &mut tile[..dst.len()];
                            for (j, row) in tile.chunks_mut(kk).enumerate() {
                                row.copy_from_slice(&template);
                                for (&at, &v) in entries(r + j) {
                                    row[at] = v;
                                }
                            }
                            crate::exec::stream::stream_copy(dst, tile);
                        } else {
                            for (j, row) in dst.chunks_mut(kk).enumerate() {
                                for (o, &x) in row.iter_mut().zip(&template) {
                                    o.write(x);
                                }
                                for (&at, &v) in entries(r + j) {
                                    row[at].write(v);
                                }
                            }
                        }
                    }
                    Ok(bad)
                })
            };
            let mut bad = by_tasks(
                &mut h.spare_capacity_mut()[..elements],
                TASK_ROWS * kk,
                task,
            )?;
            // SAFETY: the tasks above wrote all `kk` entries of every row `0..n` (each
            // piece whole: the template, or a tile copied over it), that is every one of
            // the first `elements = n * kk` entries of the reserved capacity; an error
            // returns before this, dropping `h` with length 0.
            unsafe { h.set_len(elements) };
            if all_bad {
                bad = (0..n).collect();
            }
            return Ok((h, bad));
        }
        let mut h = alloc(elements, what)?;
        for c in 0..k.div_ceil(COLS) {
            let d = self
                .derived
                .get(Key::Hessian(wrt.to_vec(), c, products), || {
                    let c0 = c * COLS;
                    chunk(
                        self.program(),
                        cols,
                        &cols[c0..(c0 + COLS).min(k)],
                        sizes,
                        c0,
                        products,
                    )
                });
            if !d.fixed.is_empty() {
                crate::exec::pool::pool().install(|| {
                    h.par_chunks_mut(kk).for_each(|row| {
                        for &(at, v) in &d.fixed {
                            row[at] = v;
                        }
                    })
                });
            }
            let m = d.places.len();
            if m == 0 {
                continue;
            }
            // Slabs of rows, each computed into `slab` and scattered into place: many
            // rows at once keep every thread busy, and the slab stays small.
            let mut slab = alloc(slab_rows * m, what)?;
            let mut r0 = 0;
            while r0 < n {
                let r1 = (r0 + slab_rows).min(n);
                let part = rows_of(args, r0, r1);
                let out = &mut slab[..(r1 - r0) * m];
                let rows = &mut h[r0 * kk..r1 * kk];
                crate::exec::pool::pool().install(|| -> Result<(), BatchError> {
                    d.values_into(&part, r1 - r0, Reduce::None, out)?;
                    rows.par_chunks_mut(kk)
                        .zip(out.par_chunks(m))
                        .for_each(|(row, src)| {
                            for (&at, &v) in d.places.iter().zip(src) {
                                row[at] = v;
                            }
                        });
                    Ok(())
                })?;
                r0 = r1;
            }
        }
        let bad = nan_rows(&h, kk);
        Ok((h, bad))
    }

    /// Recomputes the NaN entries of rows `bad` of a lane Hessian block `h` computed with
    /// plain products: on the strong programs (their numbers wherever the plain ones are
    /// not NaN), then what is still NaN on dual numbers (the reference), as batch
    /// gradients redo a block with a NaN with strong products. The strong programs'
    /// forward sweep differentiates a contribution `t * d` as a product: where the
    /// adjoint `t` is exactly zero and the tangent of `d` is NaN or infinite (the unchosen
    /// side of a `where` at an infinite input, `atan2(inf, 0)`), it multiplies the zero
    /// into it, where the dual sweep adds nothing (strong zero in the adjoint).
    fn redo_nan_rows(
        &self,
        args: &[Arg],
        wrt: &[bool],
        cols: &[usize],
        bad: &[usize],
        h: &mut [f64],
    ) -> Result<(), BatchError> {
        let kk = cols.len() * cols.len();
        let data = gather(args, bad);
        let (strong, still) = self.lane_block(
            &gathered(args, &data),
            bad.len(),
            wrt,
            cols,
            bad.len() * kk,
            Products::Strong,
        )?;
        for (&r, s) in bad.iter().zip(strong.chunks_exact(kk)) {
            for (o, &x) in h[r * kk..(r + 1) * kk].iter_mut().zip(s) {
                if o.is_nan() {
                    *o = x;
                }
            }
        }
        for r in still.into_iter().map(|i| bad[i]) {
            let (_, _, hr) = self.hessian_wrt_rows(&rows_of(args, r, r + 1), 1, wrt)?;
            // Only the NaN entries: elsewhere the lane result stands (a structurally zero
            // entry stays 0 where the dual sweep multiplies a zero tangent into a NaN).
            for (o, &d) in h[r * kk..(r + 1) * kk].iter_mut().zip(&hr) {
                if o.is_nan() {
                    *o = d;
                }
            }
        }
        Ok(())
    }

    /// Per row: the value, the gradient entries and the Hessian block (row-major) of the
    /// program inputs of the arguments marked in `wrt` (one flag per argument; inputs in
    /// argument order), for a scalar output. The block is [`Compiled::hessian_block`]'s
    /// (on lanes), value and gradient the batch gradient's. Errors as there.
    ///
    /// ```
    /// use wengert::exec::Arg;
    /// use wengert::compiled::Compiled;
    /// use wengert::Real;
    /// // f(v, t) = t^2 (v0 + v1): d2f/dt2 = 2 (v0 + v1).
    /// let c = Compiled::trace(&[2, 1], |x| vec![x[2] * x[2] * (x[0] + x[1])]);
    /// let (v, g, h) = c
    ///     .hessian_wrt(&[Arg::rows(&[1.0, 2.0], 2), Arg::rows(&[3.0], 1)], 1, &[false, true])
    ///     .unwrap();
    /// assert_eq!((v, g, h), (vec![27.0], vec![18.0], vec![6.0]));
    /// ```
    pub fn hessian_wrt(
        &self,
        args: &[Arg],
        n: usize,
        wrt: &[bool],
    ) -> Result<crate::exec::hessian::Hessians, BatchError> {
        let h = self.hessian_block(args, n, wrt)?;
        let job = Job::Vjp {
            cotangent: Arg::shared(&[1.0]),
            wrt: wrt.to_vec(),
        };
        let out = self.run(args, n, &job, Reduce::None)?;
        let sizes = self.arg_sizes();
        let k: usize = sizes
            .iter()
            .zip(wrt)
            .filter(|(_, &on)| on)
            .map(|(s, _)| s)
            .sum();
        let mut g = alloc(n * k, || format!("hessian: {n} rows of {k} gradients"))?;
        let mut at = 0;
        for (a, &size) in sizes.iter().enumerate() {
            if !wrt[a] || size == 0 {
                continue;
            }
            for (r, src) in out.grads[a].chunks_exact(size).take(n).enumerate() {
                g[r * k + at..r * k + at + size].copy_from_slice(&src[..size]);
            }
            at += size;
        }
        Ok((out.values, g, h))
    }
}
