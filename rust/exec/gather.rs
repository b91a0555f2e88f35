//! Moving rows between row-major buffers and blocks of lane groups: loads (with the next
//! block's prefetch), stores, and the 4x4 transposes that make dense arguments cheap.

use super::layout::Layout;
use super::request::Arg;
use super::transpose;
use crate::compile::program::Program;
use crate::scalar::lanes::{F64x4, LANES};

/// Fills lane groups from rows `b0..b0 + rows` of `arg`: `cols` holds (element of the
/// argument, first lane group in `dst`). Lanes past the last row repeat it, so padding
/// computes something valid that is never written out.
#[inline(always)]
pub(super) fn load<const AVX2: bool>(
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
pub(super) fn prefetch(data: &[f64]) {
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

/// A 4x4 transpose (see [`crate::exec::transpose`]), with AVX shuffles when `AVX2`.
#[inline(always)]
pub(super) fn tile<const AVX2: bool>(m: [[f64; LANES]; LANES]) -> [[f64; LANES]; LANES] {
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
pub(super) fn contiguous(cols: &[(usize, usize)], size: usize, k: usize) -> Option<usize> {
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
pub(super) fn columns(
    p: &Program,
    layout: &Layout,
    a: usize,
    k: usize,
    only_grad: bool,
) -> Vec<(usize, usize)> {
    let first = layout.offsets[a];
    let inputs = &p.inputs()[first..first + layout.sizes[a]];
    // Sized up front: grown push by push, the vector's reallocations were most of the
    // cost of this (once per chunk, so most of it for a one-row call).
    let mut cols = Vec::with_capacity(inputs.len());
    for (e, s) in inputs.iter().enumerate() {
        if let Some(s) = s.filter(|_| !only_grad || p.has_gradient(first + e)) {
            cols.push((e, s as usize * k));
        }
    }
    cols
}

/// Writes lane values `src` (`k` groups) of the first `rows` rows to column `col` of a
/// row-major buffer of `width` columns.
#[inline(always)]
pub(super) fn store(buf: &mut [f64], width: usize, col: usize, src: &[F64x4], rows: usize) {
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
pub(super) fn store_rows<const AVX2: bool>(
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
