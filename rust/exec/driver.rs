//! Batch evaluation of a [`Program`] over many rows: blocks of rows as SIMD lanes, chunks
//! of blocks across threads.
//!
//! Rows are cut into chunks whose size depends only on the number of rows, each chunk is
//! one rayon task, and reductions add chunk results in chunk order, so results do not
//! depend on the number of threads. Within a chunk, blocks of `4k` rows run the kernels of
//! [`crate::exec::interp`] on [`F64x4`] lanes; `k` is chosen so one block's working set stays
//! within the L2 cache. On x86-64 with AVX2 and FMA the chunk loop is compiled a second
//! time for those features and chosen at run time.

use super::check::check;
use super::gather::{columns, load, prefetch, store, store_rows};
use super::interp;
use super::isa::{avx2_fma, avx512, Isa};
use super::jit::{Kernel, Pass};
use super::layout::Layout;
use super::request::{Arg, BatchError, Buffers, Job, Output, Reduce};
use super::sums::Sums;
use crate::compile::program::Program;
use crate::scalar::lanes::{F64x4, LANES};
use rayon::prelude::*;

/// The kernel pass that serves `job` on its own: values, or values and one reverse sweep;
/// the other jobs need the interpreter's stored partials.
pub fn native_pass(job: &Job) -> Option<Pass> {
    match job {
        Job::Values => Some(Pass::Values),
        Job::Vjp { .. } => Some(Pass::Gradient),
        Job::Jvp { .. } | Job::Jacobian { .. } => None,
    }
}

/// Rows per chunk: a function of `n` alone, so the work split, and every sum (see
/// [`Sums`]), is the same for any number of threads and either engine. A multiple of 4
/// rows, so only the last chunk can end in a partial lane group; of 128, so most blocks
/// fit a chunk whole.
fn chunk_rows(n: usize) -> usize {
    n.div_ceil(64).max(1024).next_multiple_of(128)
}

/// Whether `n` rows make a single chunk, which [`run_into`] runs on the calling thread:
/// callers need not hand such a batch to the thread pool.
pub fn single_chunk(n: usize) -> bool {
    n <= chunk_rows(n)
}

/// A block's state (slots, stored partials, adjoints) that stays in L2.
const L2_BLOCK_BYTES: usize = 256 << 10;

/// Lane groups a block gets even past [`L2_BLOCK_BYTES`], within [`MAX_BLOCK_BYTES`]. Each
/// instruction's dispatch is paid once per block, and a long program sized for L2 alone
/// got one or two groups per block, where the dispatch cost more than the work. Past L2
/// its state streams through L3 in program order (partials written forward, read back in
/// reverse), which costs less than the dispatch up to about this many groups; more
/// groups made a mid-sized program (the MLP) slower. `benches/README.md`, "Block size".
const MIN_GROUPS: usize = 8;

/// The most state a block of [`MIN_GROUPS`] may hold.
const MAX_BLOCK_BYTES: usize = 2 << 20;

/// Lane groups per block: as many as keep one block's state within [`L2_BLOCK_BYTES`],
/// but at least [`MIN_GROUPS`] where they fit in [`MAX_BLOCK_BYTES`]; from 1 to 32.
///
/// ```
/// use wengert::compiled::Compiled;
/// use wengert::exec::{block_groups, Arg, Job};
/// use wengert::Real;
/// let grad = Job::Vjp { cotangent: Arg::shared(&[1.0]), wrt: vec![true] };
/// // A short function: 32 lane groups per block, values or gradient.
/// let short = Compiled::trace(&[1], |x| vec![x[0].sin() * x[0]]);
/// assert_eq!(block_groups(short.program(), &Job::Values), 32);
/// assert_eq!(block_groups(short.gradient_program(), &grad), 32);
/// // 3,000 steps: 8 groups for the gradient, though fewer would fit in L2.
/// let long = Compiled::trace(&[1], |x| {
///     let mut s = x[0];
///     for _ in 0..1000 {
///         s = s.sin() * x[0] + s;
///     }
///     vec![s]
/// });
/// assert_eq!(block_groups(long.gradient_program(), &grad), 8);
/// assert_eq!(block_groups(long.program(), &Job::Values), 32);
/// ```
pub fn block_groups(p: &Program, job: &Job) -> usize {
    let per_slot = std::mem::size_of::<F64x4>();
    let slots = p.n_slots().max(1);
    // Partials are only stored for instructions whose partials are neither constants nor
    // recomputed; the rest of the partials buffer is never touched.
    let stored = (0..p.instrs().len())
        .filter(|&i| p.fixed_partials()[i].is_none() && !p.recomputed()[i])
        .count();
    let state = match job {
        Job::Values => slots,
        _ => 2 * slots + 2 * stored,
    };
    let bytes = state * per_slot;
    (L2_BLOCK_BYTES / bytes)
        .max((MAX_BLOCK_BYTES / bytes).min(MIN_GROUPS))
        .clamp(1, 32)
}

/// Evaluates `job` for `p` (with argument `layout`) over `n` rows of `args`, with the
/// native code `native` for `p` where it serves the job (see [`native_pass`]) and the
/// interpreter otherwise.
#[allow(clippy::too_many_arguments)]
pub fn run(
    p: &Program,
    layout: &Layout,
    args: &[Arg],
    n: usize,
    job: &Job,
    reduce: Reduce,
    isa: Isa,
    native: Option<&Kernel>,
) -> Result<Output, BatchError> {
    check(p, layout, args, n, job, p.n_outputs())?;
    let mut bufs = buffer_lens(p, layout, args, n, job, reduce).map(|l| vec![0.0; l]);
    let views = bufs.as_mut().map(|b| b.as_mut_slice());
    let mut out = run_into(p, layout, args, n, job, reduce, isa, native, views)?;
    if out.values.is_empty() {
        out.values = bufs.values;
    }
    if out.tangents.is_empty() {
        out.tangents = bufs.tangents;
    }
    out.jacobian = bufs.jacobian;
    for (g, b) in out.grads.iter_mut().zip(bufs.grads) {
        if g.is_empty() {
            *g = b;
        }
    }
    Ok(out)
}

/// Lengths of the per-row result buffers [`run_into`] writes (0 for results not per-row).
pub fn buffer_lens(
    p: &Program,
    layout: &Layout,
    args: &[Arg],
    n: usize,
    job: &Job,
    reduce: Reduce,
) -> Buffers<usize> {
    let ctx = Ctx::new(p, layout, args, job, reduce, n, false);
    ctx.widths().map(|w| w.unwrap_or(0) * n)
}

/// Like [`run`], writing per-row results into `bufs` (of the lengths [`buffer_lens`]
/// gives; their contents on entry do not matter), so a caller can hand over memory it
/// owns, such as fresh NumPy arrays. The returned [`Output`] holds the reduced results;
/// its per-row fields are empty.
#[allow(clippy::too_many_arguments)]
pub fn run_into(
    p: &Program,
    layout: &Layout,
    args: &[Arg],
    n: usize,
    job: &Job,
    reduce: Reduce,
    isa: Isa,
    native: Option<&Kernel>,
    bufs: Buffers<&mut [f64]>,
) -> Result<Output, BatchError> {
    let ctx = Ctx::new(p, layout, args, job, reduce, n, false);
    Ok(run_ctx(&ctx, isa, native, bufs)?.0)
}

/// Lengths of the per-row result buffers [`run_flagged_into`] writes: as
/// [`buffer_lens`], without the last output.
pub fn flagged_buffer_lens(
    p: &Program,
    layout: &Layout,
    args: &[Arg],
    n: usize,
    job: &Job,
    reduce: Reduce,
) -> Buffers<usize> {
    let ctx = Ctx::new(p, layout, args, job, reduce, n, true);
    ctx.widths().map(|w| w.unwrap_or(0) * n)
}

/// Like [`run_into`] for a program whose last output is a guard flag (1 in a row that
/// follows the trace, 0 elsewhere; see [`crate::compile::guard::flag`]): the other outputs
/// are stored (or reduced) as by [`run_into`] for a program without the flag, and the
/// flag is summed over the rows in the same pass, in registers, never stored. Returns
/// the results and that sum (not scaled by a mean's 1/n): `n` when every row passes.
///
/// The cotangent of a [`Job::Vjp`] has one number per output but the flag (whose
/// adjoint seed is 0: it is value-only); tangents and values likewise leave it out.
/// [`Job::Jacobian`] is refused.
#[allow(clippy::too_many_arguments)]
pub fn run_flagged_into(
    p: &Program,
    layout: &Layout,
    args: &[Arg],
    n: usize,
    job: &Job,
    reduce: Reduce,
    isa: Isa,
    native: Option<&Kernel>,
    bufs: Buffers<&mut [f64]>,
) -> Result<(Output, f64), BatchError> {
    if p.n_outputs() == 0 {
        return Err(BatchError::Invalid(
            "a flagged program needs its flag as the last output".into(),
        ));
    }
    if matches!(job, Job::Jacobian { .. }) {
        return Err(BatchError::Invalid(
            "a flagged program serves values, vjp and jvp, not Jacobians".into(),
        ));
    }
    let ctx = Ctx::new(p, layout, args, job, reduce, n, true);
    run_ctx(&ctx, isa, native, bufs)
}

/// [`run_into`] and [`run_flagged_into`]: the results, and the flag's sum (0 without one).
fn run_ctx(
    ctx: &Ctx,
    isa: Isa,
    native: Option<&Kernel>,
    bufs: Buffers<&mut [f64]>,
) -> Result<(Output, f64), BatchError> {
    let Ctx {
        p,
        layout,
        args,
        n,
        job,
        ..
    } = *ctx;
    check(p, layout, args, n, job, ctx.m())?;
    let m = ctx.m();
    let native = native.filter(|kn| Some(kn.pass()) == native_pass(job));
    // Native code has blocks of its own size (see `jit::block_groups`).
    // The interpreter's blocks need not be wider than the rows: a one-row call would
    // otherwise run its passes over up to 32 lane groups of nothing.
    let k = native.map_or_else(
        || block_groups(p, job).min(n.div_ceil(LANES).max(1)),
        Kernel::block_groups,
    );
    let chunk = chunk_rows(n);
    let widths = ctx.widths();
    let wrong = || BatchError::Invalid("result buffers of the wrong number or length".into());
    let mut bufs = bufs.zip(widths).ok_or_else(wrong)?;
    if bufs.iter().any(|(b, w)| b.len() != w.unwrap_or(0) * n) {
        return Err(wrong());
    }
    // Entries the blocks never write must read 0: gradients of elements no output depends
    // on, and Jacobian columns likewise.
    bufs.jacobian.0.fill(0.0);
    if let Job::Vjp { wrt, .. } = job {
        for (a, (b, _)) in bufs.grads.iter_mut().enumerate() {
            let first = layout.offsets[a];
            if wrt[a] && (0..layout.sizes[a]).any(|e| !p.has_gradient(first + e)) {
                b.fill(0.0);
            }
        }
    }

    // Per-row result buffers, cut into disjoint chunk slices for the tasks.
    let n_chunks = n.div_ceil(chunk).max(1);
    let mut slices = bufs.map(|(buf, w)| {
        let w = w.unwrap_or(0);
        let mut s: Vec<&mut [f64]> = if w == 0 || n == 0 {
            Vec::new()
        } else {
            buf.chunks_mut(chunk * w).collect()
        };
        s.resize_with(n_chunks, || &mut []);
        s.into_iter()
    });
    let per_chunk: Vec<Buffers<&mut [f64]>> = (0..n_chunks)
        .map(|_| slices.as_mut().map(|s| s.next().unwrap_or_default()))
        .collect();
    let chunk_task = |(c, mut outs): (usize, Buffers<&mut [f64]>)| {
        let start = c * chunk;
        let end = ((c + 1) * chunk).min(n);
        let mut acc = Sums::new(ctx.acc_len());
        SCRATCH.with_borrow_mut(|scratch| {
            let mut st = State::new(scratch, ctx, k);
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 if avx512() => {
                    // SAFETY: this CPU has AVX-512 F, DQ and VL, AVX2 and FMA (checked
                    // here), the only requirement of a target_feature function.
                    unsafe {
                        blocks_avx512(ctx, native, start, end, k, &mut outs, &mut acc, &mut st)
                    }
                }
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2Fma | Isa::Avx512 if avx2_fma() => {
                    // SAFETY: this CPU has AVX2 and FMA (checked here), the only
                    // requirement of a target_feature function.
                    unsafe { blocks_avx2(ctx, native, start, end, k, &mut outs, &mut acc, &mut st) }
                }
                _ => blocks_portable(ctx, native, start, end, k, &mut outs, &mut acc, &mut st),
            }
        });
        acc.total()
    };
    // One chunk runs where it is called: through rayon it would be the same work on one
    // worker, plus a hand-over and a wake-up that cost more than a small batch itself.
    let sums: Vec<Vec<f64>> = if n_chunks == 1 {
        per_chunk.into_iter().enumerate().map(chunk_task).collect()
    } else {
        per_chunk
            .into_par_iter()
            .enumerate()
            .map(chunk_task)
            .collect()
    };
    let mut acc = vec![0.0; ctx.acc_len()];
    for s in &sums {
        for (a, v) in acc.iter_mut().zip(s) {
            *a += v;
        }
    }
    let flag = ctx.flag_acc().map_or(0.0, |i| acc[i]);
    Ok((ctx.finish(acc, m), flag))
}

/// Everything a chunk task reads.
struct Ctx<'a> {
    p: &'a Program,
    layout: &'a Layout,
    args: &'a [Arg<'a>],
    job: &'a Job<'a>,
    reduce: Reduce,
    n: usize,
    /// Program inputs (columns) of the Jacobian, in order.
    jac_cols: Vec<usize>,
    /// Whether the program's last output is a guard flag, summed and never stored (see
    /// [`run_flagged_into`]).
    flagged: bool,
}

impl<'a> Ctx<'a> {
    fn new(
        p: &'a Program,
        layout: &'a Layout,
        args: &'a [Arg<'a>],
        job: &'a Job<'a>,
        reduce: Reduce,
        n: usize,
        flagged: bool,
    ) -> Self {
        let jac_cols = match job {
            Job::Jacobian { wrt } => (0..layout.n_inputs())
                .filter(|&i| wrt[layout.inputs[i].0])
                .collect(),
            _ => Vec::new(),
        };
        Ctx {
            p,
            layout,
            args,
            job,
            reduce,
            n,
            jac_cols,
            flagged: flagged && p.n_outputs() > 0,
        }
    }

    /// The outputs stored or reduced: all of the program's but a flag.
    fn outputs(&self) -> &'a [u32] {
        let all = self.p.outputs();
        &all[..all.len() - usize::from(self.flagged)]
    }

    /// The number of [`Ctx::outputs`].
    fn m(&self) -> usize {
        self.outputs().len()
    }

    /// The flag's slot, when the program has one.
    fn flag_slot(&self) -> Option<u32> {
        self.flagged.then(|| self.p.outputs()[self.m()])
    }

    /// The flag's entry in the accumulator (its last), when the program has one.
    fn flag_acc(&self) -> Option<usize> {
        self.flagged.then(|| self.acc_len() - 1)
    }

    fn reduced(&self) -> bool {
        self.reduce != Reduce::None
    }

    /// Per-row width of each result buffer; `None` for results that are reduced (or absent).
    fn widths(&self) -> Buffers<Option<usize>> {
        let m = self.m();
        let per_row = |w: usize| if self.reduced() { None } else { Some(w) };
        let mut w = Buffers {
            values: per_row(m),
            ..Buffers::default()
        };
        match self.job {
            Job::Jvp { .. } => w.tangents = per_row(m),
            Job::Jacobian { .. } => w.jacobian = Some(m * self.jac_cols.len()),
            _ => {}
        }
        for (a, arg) in self.args.iter().enumerate() {
            w.grads.push(match self.job {
                Job::Vjp { wrt, .. } if wrt[a] => {
                    if self.reduced() && !arg.per_row {
                        None
                    } else {
                        Some(arg.size)
                    }
                }
                _ => None,
            });
        }
        w
    }

    /// Layout of the reduced accumulator: values (m), tangents (m), each reduced
    /// gradient, then the flag (summed whether or not the call reduces).
    fn acc_len(&self) -> usize {
        2 * self.m()
            + self.grad_acc_offsets().last().copied().unwrap_or(0)
            + usize::from(self.flagged)
    }

    /// Offsets of each argument's reduced gradient within the gradient part of the
    /// accumulator, plus the end.
    fn grad_acc_offsets(&self) -> Vec<usize> {
        let mut off = vec![0];
        for (a, arg) in self.args.iter().enumerate() {
            let w = match self.job {
                Job::Vjp { wrt, .. } if wrt[a] && self.reduced() && !arg.per_row => arg.size,
                _ => 0,
            };
            off.push(off[a] + w);
        }
        off
    }

    /// Turns buffers and sums into the output, applying the mean's 1/n.
    /// The reduced results, with the mean's 1/n applied; per-row fields stay empty.
    fn finish(&self, acc: Vec<f64>, m: usize) -> Output {
        let scale = if self.reduce == Reduce::Mean && self.n > 0 {
            1.0 / self.n as f64
        } else {
            1.0
        };
        let mut out = Output::default();
        if self.reduced() {
            out.values = acc[..m].iter().map(|v| v * scale).collect();
            if matches!(self.job, Job::Jvp { .. }) {
                out.tangents = acc[m..2 * m].iter().map(|v| v * scale).collect();
            }
        }
        let off = self.grad_acc_offsets();
        for a in 0..self.args.len() {
            // The mean's 1/n is already in the cotangent of every row.
            out.grads
                .push(acc[2 * m + off[a]..2 * m + off[a + 1]].to_vec());
        }
        out
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn blocks_avx2(
    ctx: &Ctx,
    native: Option<&Kernel>,
    start: usize,
    end: usize,
    k: usize,
    outs: &mut Buffers<&mut [f64]>,
    acc: &mut Sums,
    st: &mut State,
) {
    blocks::<true, false>(ctx, native, start, end, k, outs, acc, st)
}

/// [`blocks_avx2`]'s code compiled for AVX-512: LLVM fuses the lane groups of a block
/// into 512-bit instructions (the same operations lane by lane, so the same bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn blocks_avx512(
    ctx: &Ctx,
    native: Option<&Kernel>,
    start: usize,
    end: usize,
    k: usize,
    outs: &mut Buffers<&mut [f64]>,
    acc: &mut Sums,
    st: &mut State,
) {
    blocks::<true, true>(ctx, native, start, end, k, outs, acc, st)
}

#[allow(clippy::too_many_arguments)]
fn blocks_portable(
    ctx: &Ctx,
    native: Option<&Kernel>,
    start: usize,
    end: usize,
    k: usize,
    outs: &mut Buffers<&mut [f64]>,
    acc: &mut Sums,
    st: &mut State,
) {
    blocks::<false, false>(ctx, native, start, end, k, outs, acc, st)
}

thread_local! {
    /// Each worker thread's block state, reused across chunks and calls: no allocation,
    /// zeroing or page faults per chunk. Stale contents are harmless: every read follows
    /// a write (see [`crate::compile::program::Adjoint`]).
    static SCRATCH: std::cell::RefCell<Vec<F64x4>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One block's state: value slots, stored partials, adjoints (or tangents) and seeds.
struct State<'a> {
    slots: &'a mut [F64x4],
    parts: &'a mut [F64x4],
    adj: &'a mut [F64x4],
    seed: &'a mut [F64x4],
}

impl<'a> State<'a> {
    fn new(scratch: &'a mut Vec<F64x4>, ctx: &Ctx, k: usize) -> Self {
        let p = ctx.p;
        let differentiates = !matches!(ctx.job, Job::Values);
        let ns = p.n_slots() * k;
        let np = if differentiates {
            2 * p.instrs().len() * k
        } else {
            0
        };
        let na = if differentiates { ns } else { 0 };
        if scratch.len() < ns + np + na + k {
            scratch.resize(ns + np + na + k, F64x4::default());
        }
        let (slots, rest) = scratch.split_at_mut(ns);
        let (parts, rest) = rest.split_at_mut(np);
        let (adj, rest) = rest.split_at_mut(na);
        State {
            slots,
            parts,
            adj,
            seed: &mut rest[..k],
        }
    }
}

/// Seeds the reverse sweep: each output slot's adjoint is the cotangent column of its
/// output among `seeded` (outputs sharing a slot add up), times `mean` (the mean's 1/n);
/// the program's other outputs (a flag) get 0. The rest of `adj` needs no clearing.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn seed_outputs<const AVX2: bool>(
    p: &Program,
    seeded: &[u32],
    cotangent: &Arg,
    mean: f64,
    b0: usize,
    rows: usize,
    k: usize,
    adj: &mut [F64x4],
    seed: &mut [F64x4],
) {
    for &o in p.outputs() {
        let lo = o as usize * k;
        adj[lo..lo + k].fill(F64x4::default());
    }
    for (j, &o) in seeded.iter().enumerate() {
        load::<AVX2>(seed, &[(j, 0)], cotangent, b0, rows, k);
        let lo = o as usize * k;
        for g in 0..k {
            adj[lo + g] = adj[lo + g] + seed[g] * F64x4::splat(mean);
        }
    }
}

/// The interpreter's passes compiled for one ISA, each a function of its own: inlined
/// into [`blocks`] with everything else, they made LLVM give up inlining the rules'
/// closures (3.4x slower gradients).
macro_rules! isa_passes {
    ($(#[$doc:meta])* $module:ident, $features:literal) => {
        $(#[$doc])*
        #[cfg(target_arch = "x86_64")]
        mod $module {
            use super::*;
            use crate::exec::interp;

            #[target_feature(enable = $features)]
            #[inline(never)]
            pub(super) fn values(p: &Program, slots: &mut [F64x4], k: usize) {
                interp::values(p, slots, k)
            }
            #[target_feature(enable = $features)]
            #[inline(never)]
            pub(super) fn partials(
                p: &Program,
                slots: &mut [F64x4],
                parts: &mut [F64x4],
                k: usize,
            ) {
                interp::partials(p, slots, parts, k)
            }
            #[target_feature(enable = $features)]
            #[inline(never)]
            pub(super) fn reverse(
                p: &Program,
                parts: &[F64x4],
                slots: &[F64x4],
                adj: &mut [F64x4],
                k: usize,
                strong: bool,
            ) {
                interp::reverse(p, parts, slots, adj, k, strong)
            }
            #[target_feature(enable = $features)]
            #[inline(never)]
            pub(super) fn any_nan(v: &[F64x4], ranges: &[(usize, usize)]) -> bool {
                interp::any_nan(v, ranges)
            }
            #[target_feature(enable = $features)]
            #[inline(never)]
            pub(super) fn tangents(
                p: &Program,
                parts: &[F64x4],
                slots: &[F64x4],
                tan: &mut [F64x4],
                k: usize,
            ) {
                interp::tangents(p, parts, slots, tan, k)
            }
        }
    };
}

isa_passes!(
    /// The passes for AVX2 and FMA.
    avx2,
    "avx2,fma"
);
isa_passes!(
    /// The passes for AVX-512 (lane groups fused into 512-bit instructions).
    avx512,
    "avx512f,avx512dq,avx512vl,avx2,fma"
);

/// `spans` sorted, and adjacent ones joined: the gradients of a block, for [`interp::any_nan`].
fn merged_ranges(spans: impl Iterator<Item = (usize, usize)>) -> Vec<(usize, usize)> {
    let mut v: Vec<(usize, usize)> = spans.collect();
    // Usually in order already (inputs take the first slots, in order): no sort then.
    if !v.is_sorted() {
        v.sort_unstable();
    }
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        match out.last_mut() {
            Some(last) if last.1 >= lo => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// `pass!(AVX2, AVX512, name(args))`: the interpreter pass `name`, from [`avx512`] when
/// `AVX512`, else from [`avx2`] when `AVX2`.
macro_rules! pass {
    ($avx2:expr, $avx512:expr, $name:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        if $avx512 {
            // SAFETY: `blocks::<true, true>` runs only inside `blocks_avx512`, whose caller
            // has checked that the CPU has AVX-512 F, DQ and VL, AVX2 and FMA.
            unsafe { avx512::$name($($arg),*) }
        } else if $avx2 {
            // SAFETY: `blocks::<true, _>` runs only inside `blocks_avx2` or `blocks_avx512`,
            // whose callers have checked that the CPU has AVX2 and FMA.
            unsafe { avx2::$name($($arg),*) }
        } else {
            interp::$name($($arg),*)
        }
        #[cfg(not(target_arch = "x86_64"))]
        interp::$name($($arg),*)
    }};
}

/// Rows `start..end` in blocks of `k` lane groups; `outs` are the chunk's slices of the
/// per-row buffers (row `start` first).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn blocks<const AVX2: bool, const AVX512: bool>(
    ctx: &Ctx,
    native: Option<&Kernel>,
    start: usize,
    end: usize,
    k: usize,
    outs: &mut Buffers<&mut [f64]>,
    acc: &mut Sums,
    st: &mut State,
) {
    let State {
        slots,
        parts,
        adj,
        seed,
    } = st;
    let (slots, parts, adj, seed) = (&mut **slots, &mut **parts, &mut **adj, &mut **seed);
    let p = ctx.p;
    let outputs = ctx.outputs();
    let m = outputs.len();
    let flag = ctx.flag_slot().zip(ctx.flag_acc());
    let differentiates = !matches!(ctx.job, Job::Values);
    let block = k * LANES;
    let grad_off = ctx.grad_acc_offsets();
    let mean = if ctx.reduce == Reduce::Mean && ctx.n > 0 {
        1.0 / ctx.n as f64
    } else {
        1.0
    };
    let group = |s: u32| (s as usize * k, s as usize * k + k);
    let input_cols: Vec<_> = (0..ctx.args.len())
        .map(|a| columns(p, ctx.layout, a, k, false))
        .collect();
    let grad_cols: Vec<_> = (0..ctx.args.len())
        .map(|a| columns(p, ctx.layout, a, k, true))
        .collect();
    let value_cols: Vec<(usize, usize)> = outputs
        .iter()
        .enumerate()
        .map(|(j, &o)| (j, o as usize * k))
        .collect();
    interp::load_consts(p, slots, k);
    let strong_terms = p.strong_terms();
    let grad_ranges = match ctx.job {
        Job::Vjp { wrt, .. } => merged_ranges(
            (0..ctx.args.len())
                .filter(|&a| wrt[a])
                .flat_map(|a| grad_cols[a].iter().map(|&(_, lo)| (lo, lo + k))),
        ),
        _ => Vec::new(),
    };

    let mut b0 = start;
    while b0 < end {
        let rows = block.min(end - b0);
        let local = b0 - start;
        for (a, arg) in ctx.args.iter().enumerate() {
            load::<AVX2>(slots, &input_cols[a], arg, b0, rows, k);
        }
        // The next block's rows, fetched while this one computes: after the loads above
        // the hardware prefetcher stops, and the next loads would wait on memory.
        for arg in ctx.args.iter().filter(|a| a.per_row) {
            let next = (b0 + rows).min(end) * arg.size;
            let stop = (b0 + rows + block).min(end) * arg.size;
            prefetch(&arg.data[next..stop]);
        }
        let seeds = |adj: &mut [F64x4], seed: &mut [F64x4]| {
            if let Job::Vjp { cotangent, .. } = ctx.job {
                seed_outputs::<AVX2>(p, outputs, cotangent, mean, b0, rows, k, adj, seed);
            }
        };
        match native {
            Some(kn) => {
                seeds(adj, seed);
                kn.run(slots, adj);
            }
            None if differentiates => pass!(AVX2, AVX512, partials(p, slots, parts, k)),
            None => pass!(AVX2, AVX512, values(p, slots, k)),
        }
        // The flag: summed in the lane registers, like a reduced output, in every call.
        if let Some((o, i)) = flag {
            let (lo, hi) = group(o);
            acc.add(i, &slots[lo..hi], rows);
        }
        if ctx.reduced() {
            for (j, &o) in outputs.iter().enumerate() {
                let (lo, hi) = group(o);
                acc.add(j, &slots[lo..hi], rows);
            }
        } else if m > 0 {
            // Row by row, four rows a lane group: a wide output stored column by column
            // took a strided pass per column (46 of them for Rosenbrock-16's Hessian
            // entries, 16 for its HVP: most of the driver's time there).
            store_rows::<AVX2>(
                &mut outs.values[local * m..],
                m,
                &value_cols,
                slots,
                rows,
                k,
            );
        }
        match ctx.job {
            Job::Values => {}
            Job::Vjp { wrt, .. } => {
                if native.is_none() {
                    seeds(adj, seed);
                    pass!(AVX2, AVX512, reverse(p, parts, slots, adj, k, false));
                }
                // The sweep above has plain products; where a gradient came out NaN, the
                // block again with strong ones (see `interp`'s module documentation). The
                // interpreter's strong sweep is bit for bit what native code's would be.
                if strong_terms && pass!(AVX2, AVX512, any_nan(adj, &grad_ranges)) {
                    interp::load_consts(p, slots, k);
                    for (a, arg) in ctx.args.iter().enumerate() {
                        load::<AVX2>(slots, &input_cols[a], arg, b0, rows, k);
                    }
                    seeds(adj, seed);
                    pass!(AVX2, AVX512, partials(p, slots, parts, k));
                    pass!(AVX2, AVX512, reverse(p, parts, slots, adj, k, true));
                }
                for (a, arg) in ctx.args.iter().enumerate() {
                    if !wrt[a] {
                        continue;
                    }
                    let reduced = ctx.reduced() && !arg.per_row;
                    let w = arg.size;
                    if reduced {
                        for &(e, lo) in &grad_cols[a] {
                            acc.add(2 * m + grad_off[a] + e, &adj[lo..lo + k], rows);
                        }
                    } else {
                        store_rows::<AVX2>(
                            &mut outs.grads[a][local * w..],
                            w,
                            &grad_cols[a],
                            adj,
                            rows,
                            k,
                        );
                    }
                }
            }
            Job::Jvp { tangents } => {
                for (a, t) in tangents.iter().enumerate() {
                    load::<AVX2>(adj, &input_cols[a], t, b0, rows, k);
                }
                pass!(AVX2, AVX512, tangents(p, parts, slots, adj, k));
                for (j, &o) in outputs.iter().enumerate() {
                    let (lo, hi) = group(o);
                    if ctx.reduced() {
                        acc.add(m + j, &adj[lo..hi], rows);
                    } else {
                        store(&mut outs.tangents[local * m..], m, j, &adj[lo..hi], rows);
                    }
                }
            }
            Job::Jacobian { .. } => {
                let cols = &ctx.jac_cols;
                let nc = cols.len();
                let w = m * nc;
                let buf = &mut outs.jacobian[local * w..];
                if nc <= m {
                    // Forward: one tangent sweep per input column.
                    for (c, &i) in cols.iter().enumerate() {
                        for s in p.inputs().iter().flatten() {
                            let (lo, hi) = group(*s);
                            adj[lo..hi].fill(F64x4::default());
                        }
                        let Some(s) = p.inputs()[i] else { continue };
                        let (lo, hi) = group(s);
                        adj[lo..hi].fill(F64x4::splat(1.0));
                        pass!(AVX2, AVX512, tangents(p, parts, slots, adj, k));
                        for (j, &o) in p.outputs().iter().enumerate() {
                            let (lo, hi) = group(o);
                            store(buf, w, j * nc + c, &adj[lo..hi], rows);
                        }
                    }
                } else {
                    // Reverse: one adjoint sweep per output.
                    for (j, &o) in p.outputs().iter().enumerate() {
                        for &o in p.outputs() {
                            let (lo, hi) = group(o);
                            adj[lo..hi].fill(F64x4::default());
                        }
                        let (lo, hi) = group(o);
                        adj[lo..hi].fill(F64x4::splat(1.0));
                        pass!(AVX2, AVX512, reverse(p, parts, slots, adj, k, true));
                        for (c, &i) in cols.iter().enumerate() {
                            let Some(s) = p.inputs()[i].filter(|_| p.has_gradient(i)) else {
                                continue;
                            };
                            let (lo, hi) = group(s);
                            store(buf, w, j * nc + c, &adj[lo..hi], rows);
                        }
                    }
                }
            }
        }
        b0 += rows;
    }
}
