//! Batch evaluation of a [`Program`] over many rows: blocks of rows as SIMD lanes, chunks
//! of blocks across threads.
//!
//! Rows are cut into chunks whose size depends only on the number of rows, each chunk is
//! one rayon task, and reductions add chunk results in chunk order, so results do not
//! depend on the number of threads. Within a chunk, blocks of `4k` rows run the kernels of
//! [`crate::kernel`] on [`F64x4`] lanes; `k` is chosen so one block's working set stays
//! within the L2 cache. On x86-64 with AVX2 and FMA the chunk loop is compiled a second
//! time for those features and chosen at run time.

use crate::jit::{Kernel, Pass};
use crate::kernel;
use crate::lanes::{F64x4, LANES};
use crate::program::Program;
use crate::transpose;
use rayon::prelude::*;

/// One argument's data: `size` numbers per row, either one row per batch row
/// (`per_row`, `data.len() == n * size`) or one row shared by all (`data.len() == size`).
#[derive(Clone, Copy, Debug)]
pub struct Arg<'a> {
    pub data: &'a [f64],
    pub size: usize,
    pub per_row: bool,
}

impl<'a> Arg<'a> {
    /// Per-row data, `size` numbers per row.
    pub fn rows(data: &'a [f64], size: usize) -> Self {
        Arg {
            data,
            size,
            per_row: true,
        }
    }
    /// One row shared by every batch row.
    pub fn shared(data: &'a [f64]) -> Self {
        Arg {
            data,
            size: data.len(),
            per_row: false,
        }
    }
}

/// How per-row results are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// Per-row results.
    None,
    /// Values summed over rows; gradients are those of the sum.
    Sum,
    /// Values averaged over rows; gradients are those of the mean.
    Mean,
}

/// What a batch call computes besides the values.
#[derive(Clone, Debug)]
pub enum Job<'a> {
    /// Values only.
    Values,
    /// Values and the vector-Jacobian product with `cotangent` (`n_outputs` per row),
    /// for the arguments marked in `wrt`.
    Vjp { cotangent: Arg<'a>, wrt: Vec<bool> },
    /// Values and the Jacobian-vector product with one tangent per argument.
    Jvp { tangents: Vec<Arg<'a>> },
    /// Values and the full Jacobian with respect to the arguments marked in `wrt`.
    Jacobian { wrt: Vec<bool> },
}

/// Results of a batch call. Per-row results are row-major; reduced ones hold one row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    /// `n_outputs` per row (or one row when reduced).
    pub values: Vec<f64>,
    /// Per argument: its VJP (`size` per row, or one row when the argument is shared and
    /// the call reduces); empty for arguments not differentiated.
    pub grads: Vec<Vec<f64>>,
    /// JVP: `n_outputs` per row (or one row when reduced).
    pub tangents: Vec<f64>,
    /// Jacobian: per row, `n_outputs` rows of as many columns as the `wrt` arguments have
    /// elements, in argument order.
    pub jacobian: Vec<f64>,
}

/// Errors a batch call reports instead of panicking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchError {
    /// Argument `arg` has the wrong number of elements.
    Shape {
        arg: usize,
        expected: usize,
        got: usize,
    },
    /// A request the job cannot serve.
    Invalid(String),
    /// A result too large to allocate (refused before any work).
    Memory(String),
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Shape { arg, expected, got } => {
                write!(f, "argument {arg}: expected {expected} numbers, got {got}")
            }
            BatchError::Invalid(s) | BatchError::Memory(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for BatchError {}

/// A program with its arguments' sizes: input `i` of the program is element `e` of
/// argument `a`, arguments in order, elements in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub sizes: Vec<usize>,
    /// `(arg, element)` of each program input.
    inputs: Vec<(usize, usize)>,
    /// First program input of each argument.
    offsets: Vec<usize>,
}

impl Layout {
    pub fn new(sizes: &[usize]) -> Self {
        let mut inputs = Vec::new();
        let mut offsets = Vec::new();
        for (a, &s) in sizes.iter().enumerate() {
            offsets.push(inputs.len());
            inputs.extend((0..s).map(|e| (a, e)));
        }
        Layout {
            sizes: sizes.to_vec(),
            inputs,
            offsets,
        }
    }
    pub fn n_inputs(&self) -> usize {
        self.inputs.len()
    }
}

/// Which kernel build runs; `Portable` can be forced (WENGERT_PORTABLE=1) to compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Portable,
    Avx2Fma,
}

/// The best kernel build this CPU supports, unless `WENGERT_PORTABLE` is set to 1.
pub fn detect_isa() -> Isa {
    if std::env::var("WENGERT_PORTABLE").is_ok_and(|v| v == "1") {
        return Isa::Portable;
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        return Isa::Avx2Fma;
    }
    Isa::Portable
}

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

/// Lane groups per block: as many as keep one block's state near 256 KiB (L2), at most 32.
pub fn groups_per_block(p: &Program, job: &Job) -> usize {
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
    (256 * 1024 / (state * per_slot)).clamp(1, 32)
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
    check(p, layout, args, n, job)?;
    let mut bufs: Vec<Vec<f64>> = buffer_lens(p, layout, args, n, job, reduce)
        .iter()
        .map(|&l| vec![0.0; l])
        .collect();
    let mut views: Vec<&mut [f64]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
    let mut out = run_into(p, layout, args, n, job, reduce, isa, native, &mut views)?;
    let mut it = bufs.into_iter();
    let (values, tangents, jacobian) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    if out.values.is_empty() {
        out.values = values;
    }
    if out.tangents.is_empty() {
        out.tangents = tangents;
    }
    out.jacobian = jacobian;
    for (g, b) in out.grads.iter_mut().zip(it) {
        if g.is_empty() {
            *g = b;
        }
    }
    Ok(out)
}

/// Lengths of the per-row result buffers [`run_into`] writes, in its order: values,
/// tangents, Jacobian, then each argument's gradient (0 for results not per-row).
pub fn buffer_lens(
    p: &Program,
    layout: &Layout,
    args: &[Arg],
    n: usize,
    job: &Job,
    reduce: Reduce,
) -> Vec<usize> {
    let ctx = Ctx::new(p, layout, args, job, reduce, n);
    ctx.widths().iter().map(|w| w.unwrap_or(0) * n).collect()
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
    bufs: &mut [&mut [f64]],
) -> Result<Output, BatchError> {
    check(p, layout, args, n, job)?;
    let m = p.n_outputs();
    let ctx = Ctx::new(p, layout, args, job, reduce, n);
    let native = native.filter(|kn| Some(kn.pass()) == native_pass(job));
    // Native code has blocks of its own size (see `jit::block_groups`).
    let k = native.map_or_else(|| groups_per_block(p, job), Kernel::block_groups);
    let chunk = chunk_rows(n);
    let widths = ctx.widths();
    if bufs.len() != widths.len()
        || bufs
            .iter()
            .zip(&widths)
            .any(|(b, w)| b.len() != w.unwrap_or(0) * n)
    {
        return Err(BatchError::Invalid(
            "result buffers of the wrong number or length".into(),
        ));
    }
    // Entries the blocks never write must read 0: gradients of elements no output depends
    // on, and Jacobian columns likewise.
    bufs[JACOBIAN].fill(0.0);
    if let Job::Vjp { wrt, .. } = job {
        for (a, b) in bufs[GRADS..].iter_mut().enumerate() {
            let first = layout.offsets[a];
            if wrt[a] && (0..layout.sizes[a]).any(|e| !p.has_gradient(first + e)) {
                b.fill(0.0);
            }
        }
    }

    // Per-row result buffers, cut into disjoint chunk slices for the tasks.
    let n_chunks = n.div_ceil(chunk).max(1);
    let mut per_chunk: Vec<Vec<&mut [f64]>> = (0..n_chunks).map(|_| Vec::new()).collect();
    for (buf, w) in bufs.iter_mut().zip(&widths) {
        let w = w.unwrap_or(0);
        if w == 0 || n == 0 {
            per_chunk.iter_mut().for_each(|c| c.push(&mut []));
            continue;
        }
        for (c, s) in per_chunk.iter_mut().zip(buf.chunks_mut(chunk * w)) {
            c.push(s);
        }
    }
    let sums: Vec<Vec<f64>> = per_chunk
        .into_par_iter()
        .enumerate()
        .map(|(c, mut outs)| {
            let start = c * chunk;
            let end = ((c + 1) * chunk).min(n);
            let mut acc = Sums::new(ctx.acc_len());
            SCRATCH.with_borrow_mut(|scratch| {
                let mut st = State::new(scratch, &ctx, k);
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2Fma
                        if std::arch::is_x86_feature_detected!("avx2")
                            && std::arch::is_x86_feature_detected!("fma") =>
                    {
                        // SAFETY: this CPU has AVX2 and FMA (checked here and in
                        // detect_isa), the only requirement of a target_feature function.
                        unsafe {
                            blocks_avx2(&ctx, native, start, end, k, &mut outs, &mut acc, &mut st)
                        }
                    }
                    _ => blocks_portable(&ctx, native, start, end, k, &mut outs, &mut acc, &mut st),
                }
            });
            acc.total()
        })
        .collect();
    let mut acc = vec![0.0; ctx.acc_len()];
    for s in &sums {
        for (a, v) in acc.iter_mut().zip(s) {
            *a += v;
        }
    }
    Ok(ctx.finish(acc, m))
}

/// One argument against its declared size: `size` numbers, or `n * size` when per row.
fn check_arg(i: usize, a: &Arg, size: usize, n: usize) -> Result<(), BatchError> {
    let expected = if a.per_row { n * size } else { size };
    if a.size != size || a.data.len() != expected {
        return Err(BatchError::Shape {
            arg: i,
            expected,
            got: a.data.len(),
        });
    }
    Ok(())
}

/// The arguments against the declared sizes, one per argument, over `n` rows.
pub(crate) fn check_args(sizes: &[usize], args: &[Arg], n: usize) -> Result<(), BatchError> {
    if args.len() != sizes.len() {
        return Err(BatchError::Invalid(format!(
            "expected {} arguments, got {}",
            sizes.len(),
            args.len()
        )));
    }
    for (i, (a, &size)) in args.iter().zip(sizes).enumerate() {
        check_arg(i, a, size, n)?;
    }
    Ok(())
}

fn check(
    p: &Program,
    layout: &Layout,
    args: &[Arg],
    n: usize,
    job: &Job,
) -> Result<(), BatchError> {
    if layout.n_inputs() != p.n_inputs() {
        return Err(BatchError::Invalid(format!(
            "layout has {} inputs, program {}",
            layout.n_inputs(),
            p.n_inputs()
        )));
    }
    check_args(&layout.sizes, args, n)?;
    match job {
        Job::Values => {}
        Job::Vjp { cotangent, wrt } => {
            check_arg(args.len(), cotangent, p.n_outputs(), n)?;
            if wrt.len() != args.len() {
                return Err(BatchError::Invalid(
                    "wrt needs one flag per argument".into(),
                ));
            }
        }
        Job::Jvp { tangents } => {
            if tangents.len() != args.len() {
                return Err(BatchError::Invalid(
                    "jvp needs one tangent per argument".into(),
                ));
            }
            for (i, t) in tangents.iter().enumerate() {
                check_arg(i, t, layout.sizes[i], n)?;
            }
        }
        Job::Jacobian { wrt } => {
            if wrt.len() != args.len() {
                return Err(BatchError::Invalid(
                    "wrt needs one flag per argument".into(),
                ));
            }
        }
    }
    Ok(())
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
}

/// Result buffers in order: values, tangents, jacobian, then one per argument's gradient.
const VALUES: usize = 0;
const TANGENTS: usize = 1;
const JACOBIAN: usize = 2;
const GRADS: usize = 3;

impl<'a> Ctx<'a> {
    fn new(
        p: &'a Program,
        layout: &'a Layout,
        args: &'a [Arg<'a>],
        job: &'a Job<'a>,
        reduce: Reduce,
        n: usize,
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
        }
    }

    fn reduced(&self) -> bool {
        self.reduce != Reduce::None
    }

    /// Per-row width of each result buffer; `None` for results that are reduced (or absent).
    fn widths(&self) -> Vec<Option<usize>> {
        let m = self.p.n_outputs();
        let per_row = |w: usize| if self.reduced() { None } else { Some(w) };
        let mut w = vec![per_row(m), None, None];
        match self.job {
            Job::Jvp { .. } => w[TANGENTS] = per_row(m),
            Job::Jacobian { .. } => w[JACOBIAN] = Some(m * self.jac_cols.len()),
            _ => {}
        }
        for (a, arg) in self.args.iter().enumerate() {
            w.push(match self.job {
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

    /// Layout of the reduced accumulator: values (m), tangents (m), then each reduced
    /// gradient.
    fn acc_len(&self) -> usize {
        2 * self.p.n_outputs() + self.grad_acc_offsets().last().copied().unwrap_or(0)
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
    outs: &mut [&mut [f64]],
    acc: &mut Sums,
    st: &mut State,
) {
    blocks::<true>(ctx, native, start, end, k, outs, acc, st)
}

#[allow(clippy::too_many_arguments)]
fn blocks_portable(
    ctx: &Ctx,
    native: Option<&Kernel>,
    start: usize,
    end: usize,
    k: usize,
    outs: &mut [&mut [f64]],
    acc: &mut Sums,
    st: &mut State,
) {
    blocks::<false>(ctx, native, start, end, k, outs, acc, st)
}

thread_local! {
    /// Each worker thread's block state, reused across chunks and calls: no allocation,
    /// zeroing or page faults per chunk. Stale contents are harmless: every read follows
    /// a write (see [`crate::program::Adjoint`]).
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

/// Fills lane groups from rows `b0..b0 + rows` of `arg`: `cols` holds (element of the
/// argument, first lane group in `dst`). Lanes past the last row repeat it, so padding
/// computes something valid that is never written out.
#[inline(always)]
fn load<const AVX2: bool>(
    dst: &mut [F64x4],
    cols: &[(usize, usize)],
    arg: &Arg,
    b0: usize,
    rows: usize,
    k: usize,
) {
    let size = arg.size;
    if !arg.per_row {
        for &(e, lo) in cols {
            dst[lo..lo + k].fill(F64x4::splat(arg.data[e]));
        }
        return;
    }
    let data = &arg.data[b0 * size..(b0 + rows) * size];
    if let [(0, lo)] = *cols {
        if size == 1 {
            // A scalar per row: each lane group is four consecutive numbers.
            let full = (rows / LANES).min(k);
            for (d, four) in dst[lo..lo + full].iter_mut().zip(data.chunks_exact(LANES)) {
                *d = F64x4(four.try_into().unwrap());
            }
            for g in full..k {
                dst[lo + g] = F64x4(std::array::from_fn(|l| data[(g * LANES + l).min(rows - 1)]));
            }
            return;
        }
    }
    let row = |g: usize, l: usize| {
        let r = (g * LANES + l).min(rows - 1) * size;
        &data[r..r + size]
    };
    let dense = contiguous(cols, size, k);
    for g in 0..k {
        let (r0, r1, r2, r3) = (row(g, 0), row(g, 1), row(g, 2), row(g, 3));
        if let Some(base) = dense {
            // Every element, slots in order (inputs are allocated first): no lookups, and
            // 4x4 tiles that compile to vector loads and shuffles.
            let mut e = 0;
            while e + LANES <= size {
                let four = |r: &[f64]| -> [f64; LANES] { r[e..e + LANES].try_into().unwrap() };
                let t = tile::<AVX2>([four(r0), four(r1), four(r2), four(r3)]);
                let at = base + e * k + g;
                for (i, t) in t.into_iter().enumerate() {
                    dst[at + i * k] = F64x4(t);
                }
                e += LANES;
            }
            for e in e..size {
                dst[base + e * k + g] = F64x4([r0[e], r1[e], r2[e], r3[e]]);
            }
        } else {
            for &(e, lo) in cols {
                dst[lo + g] = F64x4([r0[e], r1[e], r2[e], r3[e]]);
            }
        }
    }
}

/// Asks the CPU to bring `data` into cache without waiting for it.
#[inline(always)]
fn prefetch(data: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    for line in data.chunks(8) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch reads nothing architecturally and cannot fault; the address
        // is in `data` anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// A 4x4 transpose (see [`crate::transpose`]), with AVX shuffles when `AVX2`.
#[inline(always)]
fn tile<const AVX2: bool>(m: [[f64; LANES]; LANES]) -> [[f64; LANES]; LANES] {
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: `AVX2` is true only inside `blocks_avx2`, whose caller has checked that
        // the CPU has AVX2 (and so AVX).
        return unsafe { transpose::transpose_avx(m) };
    }
    transpose::transpose(m)
}

/// `Some(first lane group)` when `cols` lists every element of a `size`-element argument
/// with consecutive slots: the layout of an argument whose elements are all used.
#[inline(always)]
fn contiguous(cols: &[(usize, usize)], size: usize, k: usize) -> Option<usize> {
    let base = cols.first()?.1;
    let dense = cols.len() == size
        && cols
            .iter()
            .enumerate()
            .all(|(i, &(e, lo))| e == i && lo == base + i * k);
    dense.then_some(base)
}

/// (element, first lane group) of the elements of argument `a` that have a slot, and
/// with `only_grad`, only those with a gradient.
fn columns(
    p: &Program,
    layout: &Layout,
    a: usize,
    k: usize,
    only_grad: bool,
) -> Vec<(usize, usize)> {
    let first = layout.offsets[a];
    (0..layout.sizes[a])
        .filter_map(|e| {
            let i = first + e;
            let s = p.inputs()[i].filter(|_| !only_grad || p.has_gradient(i))?;
            Some((e, s as usize * k))
        })
        .collect()
}

/// Writes lane values `src` (`k` groups) of the first `rows` rows to column `col` of a
/// row-major buffer of `width` columns.
#[inline(always)]
fn store(buf: &mut [f64], width: usize, col: usize, src: &[F64x4], rows: usize) {
    if width == 1 {
        debug_assert_eq!(col, 0);
        // One column: the rows are consecutive, whole lane groups copy at once.
        let full = rows / LANES;
        for (four, s) in buf.chunks_exact_mut(LANES).take(full).zip(src) {
            four.copy_from_slice(&s.0);
        }
        for r in full * LANES..rows {
            buf[r] = src[r / LANES].0[r % LANES];
        }
        return;
    }
    for (r, out) in buf.chunks_exact_mut(width).take(rows).enumerate() {
        out[col] = src[r / LANES].0[r % LANES];
    }
}

/// Writes the first `rows` rows of several lane-group columns to a row-major buffer of
/// `width` columns: `cols` holds (buffer column, first lane group of the source in `src`).
/// Row by row, so each output row is written in one pass; `k` is the block's lane groups.
#[inline(always)]
fn store_rows<const AVX2: bool>(
    buf: &mut [f64],
    width: usize,
    cols: &[(usize, usize)],
    src: &[F64x4],
    rows: usize,
    k: usize,
) {
    if let (1, [(0, lo)]) = (width, cols) {
        return store(buf, 1, 0, &src[*lo..], rows);
    }
    let dense = contiguous(cols, width, k);
    let buf = &mut buf[..rows * width];
    let full = rows / LANES;
    // Whole lane groups: four output rows at a time, one load per element.
    for (g, four) in buf.chunks_exact_mut(LANES * width).take(full).enumerate() {
        let (r0, rest) = four.split_at_mut(width);
        let (r1, rest) = rest.split_at_mut(width);
        let (r2, r3) = rest.split_at_mut(width);
        if let Some(base) = dense {
            // Every column, in order: 4x4 tiles, four columns of four rows at a time, that
            // compile to vector loads, shuffles and stores.
            let mut e = 0;
            while e + LANES <= width {
                let at = base + e * k + g;
                let t = tile::<AVX2>([
                    src[at].0,
                    src[at + k].0,
                    src[at + 2 * k].0,
                    src[at + 3 * k].0,
                ]);
                r0[e..e + LANES].copy_from_slice(&t[0]);
                r1[e..e + LANES].copy_from_slice(&t[1]);
                r2[e..e + LANES].copy_from_slice(&t[2]);
                r3[e..e + LANES].copy_from_slice(&t[3]);
                e += LANES;
            }
            for e in e..width {
                let v = src[base + e * k + g].0;
                r0[e] = v[0];
                r1[e] = v[1];
                r2[e] = v[2];
                r3[e] = v[3];
            }
            continue;
        }
        for &(c, lo) in cols {
            let v = src[lo + g].0;
            r0[c] = v[0];
            r1[c] = v[1];
            r2[c] = v[2];
            r3[c] = v[3];
        }
    }
    for r in full * LANES..rows {
        let out = &mut buf[r * width..(r + 1) * width];
        for &(c, lo) in cols {
            out[c] = src[lo + r / LANES].0[r % LANES];
        }
    }
}

/// A chunk's running sums of per-row results (for `reduce`), one per accumulator entry:
/// whole lane groups added as vectors, four sums per entry, one per lane (so the adds do
/// not wait on each other row by row); rows of a partial group, only ever the chunk's
/// last, apart. The order depends on the chunk's rows only, not on where blocks cut them:
/// native code and the interpreter cut different blocks and agree to the bit.
struct Sums {
    lanes: Vec<F64x4>,
    tail: Vec<f64>,
}

impl Sums {
    fn new(len: usize) -> Self {
        Sums {
            lanes: vec![F64x4::default(); len],
            tail: vec![0.0; len],
        }
    }

    /// Adds the first `rows` lane values of `src` to entry `i`.
    #[inline(always)]
    fn add(&mut self, i: usize, src: &[F64x4], rows: usize) {
        let full = rows / LANES;
        let mut acc = self.lanes[i];
        for &v in &src[..full] {
            acc = acc + v;
        }
        self.lanes[i] = acc;
        for r in full * LANES..rows {
            self.tail[i] += src[full].0[r % LANES];
        }
    }

    /// Each entry's sum: its lanes, then its partial group.
    fn total(&self) -> Vec<f64> {
        let lanes = self.lanes.iter().map(|v| {
            let [a, b, c, d] = v.0;
            (a + b) + (c + d)
        });
        lanes.zip(&self.tail).map(|(s, t)| s + t).collect()
    }
}

/// Seeds the reverse sweep: each output slot's adjoint is the cotangent column of its
/// output (outputs sharing a slot add up), times `mean` (the mean's 1/n). The rest of
/// `adj` needs no clearing.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn seed_outputs<const AVX2: bool>(
    p: &Program,
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
    for (j, &o) in p.outputs().iter().enumerate() {
        load::<AVX2>(seed, &[(j, 0)], cotangent, b0, rows, k);
        let lo = o as usize * k;
        for g in 0..k {
            adj[lo + g] = adj[lo + g] + seed[g] * F64x4::splat(mean);
        }
    }
}

/// The interpreter's passes compiled for AVX2 and FMA, each a function of its own: inlined
/// into [`blocks`] with everything else, they made LLVM give up inlining the rules'
/// closures (3.4x slower gradients).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use crate::kernel;

    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    pub(super) fn values(p: &Program, slots: &mut [F64x4], k: usize) {
        kernel::values(p, slots, k)
    }
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    pub(super) fn partials(p: &Program, slots: &mut [F64x4], parts: &mut [F64x4], k: usize) {
        kernel::partials(p, slots, parts, k)
    }
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    pub(super) fn reverse(
        p: &Program,
        parts: &[F64x4],
        slots: &[F64x4],
        adj: &mut [F64x4],
        k: usize,
        strong: bool,
    ) {
        kernel::reverse(p, parts, slots, adj, k, strong)
    }
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    pub(super) fn tangents(
        p: &Program,
        parts: &[F64x4],
        slots: &[F64x4],
        tan: &mut [F64x4],
        k: usize,
    ) {
        kernel::tangents(p, parts, slots, tan, k)
    }
}

/// `pass!(AVX2, name(args))`: the interpreter pass `name`, from [`avx2`] when `AVX2`.
macro_rules! pass {
    ($avx2:expr, $name:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        if $avx2 {
            // SAFETY: `blocks::<true>` runs only inside `blocks_avx2`, whose caller has
            // checked that the CPU has AVX2 and FMA.
            unsafe { avx2::$name($($arg),*) }
        } else {
            kernel::$name($($arg),*)
        }
        #[cfg(not(target_arch = "x86_64"))]
        kernel::$name($($arg),*)
    }};
}

/// Rows `start..end` in blocks of `k` lane groups; `outs` are the chunk's slices of the
/// per-row buffers (row `start` first).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn blocks<const AVX2: bool>(
    ctx: &Ctx,
    native: Option<&Kernel>,
    start: usize,
    end: usize,
    k: usize,
    outs: &mut [&mut [f64]],
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
    let m = p.n_outputs();
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
    kernel::load_consts(p, slots, k);
    let strong_terms = p.strong_terms();

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
                seed_outputs::<AVX2>(p, cotangent, mean, b0, rows, k, adj, seed);
            }
        };
        match native {
            Some(kn) => {
                seeds(adj, seed);
                kn.run(slots, adj);
            }
            None if differentiates => pass!(AVX2, partials(p, slots, parts, k)),
            None => pass!(AVX2, values(p, slots, k)),
        }
        for (j, &o) in p.outputs().iter().enumerate() {
            let (lo, hi) = group(o);
            if ctx.reduced() {
                acc.add(j, &slots[lo..hi], rows);
            } else {
                store(&mut outs[VALUES][local * m..], m, j, &slots[lo..hi], rows);
            }
        }
        match ctx.job {
            Job::Values => {}
            Job::Vjp { wrt, .. } => {
                if native.is_none() {
                    seeds(adj, seed);
                    pass!(AVX2, reverse(p, parts, slots, adj, k, false));
                }
                // The sweep above has plain products; where a gradient came out NaN, the
                // block again with strong ones (see `kernel`'s module documentation). The
                // interpreter's strong sweep is bit for bit what native code's would be.
                let nan = |adj: &[F64x4]| {
                    (0..ctx.args.len()).filter(|&a| wrt[a]).any(|a| {
                        grad_cols[a]
                            .iter()
                            .any(|&(_, lo)| adj[lo..lo + k].iter().any(|v| v.0.iter().any(|x| x.is_nan())))
                    })
                };
                if strong_terms && nan(adj) {
                    kernel::load_consts(p, slots, k);
                    for (a, arg) in ctx.args.iter().enumerate() {
                        load::<AVX2>(slots, &input_cols[a], arg, b0, rows, k);
                    }
                    seeds(adj, seed);
                    pass!(AVX2, partials(p, slots, parts, k));
                    pass!(AVX2, reverse(p, parts, slots, adj, k, true));
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
                            &mut outs[GRADS + a][local * w..],
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
                pass!(AVX2, tangents(p, parts, slots, adj, k));
                for (j, &o) in p.outputs().iter().enumerate() {
                    let (lo, hi) = group(o);
                    if ctx.reduced() {
                        acc.add(m + j, &adj[lo..hi], rows);
                    } else {
                        store(&mut outs[TANGENTS][local * m..], m, j, &adj[lo..hi], rows);
                    }
                }
            }
            Job::Jacobian { .. } => {
                let cols = &ctx.jac_cols;
                let nc = cols.len();
                let w = m * nc;
                let buf = &mut outs[JACOBIAN][local * w..];
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
                        pass!(AVX2, tangents(p, parts, slots, adj, k));
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
                        pass!(AVX2, reverse(p, parts, slots, adj, k, true));
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
