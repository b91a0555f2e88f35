//! Copies into memory that will not be read again soon, with non-temporal (streaming)
//! stores: a result far larger than the caches (Rosenbrock-16's Hessian over 1e4 rows is
//! 20 MB) written with ordinary stores first reads every line it writes (the read for
//! ownership), twice the memory traffic of the write alone. Streaming stores write whole
//! lines without reading them, and leave the caches to the work.
//!
//! On an Intel Xeon with AVX-512 (2 cores, loaded), a 20 MB Hessian block written row by
//! row (zeros, then 46 entries scattered) took 0.24-0.97 us/row with ordinary stores,
//! 0.17-0.32 with 512-bit streaming stores and 0.43 with 128-bit ones (alone; two at once
//! 1.37 against 0.45): `benches/README.md`, "hessian".

use std::mem::MaybeUninit;

/// Copies `src` into `dst` (of the same length) with streaming stores where `dst` is
/// aligned for them, ordinary stores at its ends. Ends with a store fence, so the data is
/// visible to other threads as after ordinary stores once the caller hands it on (rayon's
/// synchronisation orders ordinary stores; a fence is what orders streaming ones).
///
/// # Panics
/// If the lengths differ.
pub fn stream_copy(dst: &mut [MaybeUninit<f64>], src: &[f64]) {
    assert_eq!(dst.len(), src.len(), "stream_copy: lengths differ");
    #[cfg(target_arch = "x86_64")]
    {
        if crate::exec::isa::detect_isa() == crate::exec::isa::Isa::Avx512 {
            // SAFETY: `detect_isa` returns `Avx512` only when the CPU has AVX-512 F (see
            // `isa::avx512`), the only requirement of this target_feature function.
            unsafe { stream_avx512(dst, src) };
        } else {
            stream_sse2(dst, src);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(s);
    }
}

/// The lengths of `dst`'s unaligned head, of its body in whole `bytes`-aligned blocks of
/// `bytes / 8` numbers, and of the tail.
fn split(dst: &[MaybeUninit<f64>], bytes: usize) -> (usize, usize) {
    let per = bytes / 8;
    let head = dst.as_ptr().align_offset(bytes).min(dst.len());
    let body = (dst.len() - head) / per * per;
    (head, body)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn stream_avx512(dst: &mut [MaybeUninit<f64>], src: &[f64]) {
    use std::arch::x86_64::{_mm512_loadu_pd, _mm512_stream_pd, _mm_sfence};
    let (head, body) = split(dst, 64);
    for (d, &s) in dst[..head].iter_mut().zip(&src[..head]) {
        d.write(s);
    }
    let (d, s) = (dst[head..].as_mut_ptr().cast::<f64>(), src[head..].as_ptr());
    for i in (0..body).step_by(8) {
        // SAFETY: `i + 8 <= body <= dst.len() - head` (and `src` is as long), so both
        // pointers cover 8 numbers in bounds; `d + i` is 64-byte aligned (`split`), as
        // the streaming store requires; the load is unaligned.
        unsafe { _mm512_stream_pd(d.add(i), _mm512_loadu_pd(s.add(i))) };
    }
    for (d, &s) in dst[head + body..].iter_mut().zip(&src[head + body..]) {
        d.write(s);
    }
    _mm_sfence();
}

#[cfg(target_arch = "x86_64")]
fn stream_sse2(dst: &mut [MaybeUninit<f64>], src: &[f64]) {
    use std::arch::x86_64::{_mm_loadu_pd, _mm_sfence, _mm_stream_pd};
    let (head, body) = split(dst, 16);
    for (d, &s) in dst[..head].iter_mut().zip(&src[..head]) {
        d.write(s);
    }
    let (d, s) = (dst[head..].as_mut_ptr().cast::<f64>(), src[head..].as_ptr());
    for i in (0..body).step_by(2) {
        // SAFETY: as in `stream_avx512`, with 2 numbers and 16-byte alignment; SSE2 is
        // part of x86-64.
        unsafe { _mm_stream_pd(d.add(i), _mm_loadu_pd(s.add(i))) };
    }
    for (d, &s) in dst[head + body..].iter_mut().zip(&src[head + body..]) {
        d.write(s);
    }
    // SAFETY: a fence has no preconditions; SSE is part of x86-64.
    unsafe { _mm_sfence() };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every offset and length around the alignments: the same numbers as a plain copy,
    /// every entry written, nothing outside `dst` touched.
    #[test]
    fn stream_copy_is_a_copy_at_every_offset_and_length() {
        let src: Vec<f64> = (0..300).map(|i| i as f64 * 1.5 - 7.0).collect();
        for off in 0..9 {
            for len in [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200, 280] {
                let mut buf = vec![MaybeUninit::new(f64::NAN); off + len + 9];
                stream_copy(&mut buf[off..off + len], &src[..len]);
                // SAFETY: every entry of `buf` was initialised (NaN, or written above).
                let got: Vec<f64> = buf.iter().map(|x| unsafe { x.assume_init() }).collect();
                assert!(got[..off].iter().all(|x| x.is_nan()), "off {off} len {len}");
                assert_eq!(&got[off..off + len], &src[..len], "off {off} len {len}");
                assert!(
                    got[off + len..].iter().all(|x| x.is_nan()),
                    "off {off} len {len}"
                );
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn both_builds_copy_alike() {
        let src: Vec<f64> = (0..131).map(|i| (i as f64).sin()).collect();
        let mut a = vec![MaybeUninit::new(0.0); 131];
        stream_sse2(&mut a[3..], &src[3..]);
        let mut b = vec![MaybeUninit::new(0.0); 131];
        if crate::exec::isa::avx512() {
            // SAFETY: this CPU has AVX-512 F (checked just above).
            unsafe { stream_avx512(&mut b[3..], &src[3..]) };
        } else {
            stream_sse2(&mut b[3..], &src[3..]);
        }
        // SAFETY: both buffers were initialised with zeros, then written.
        let (a, b): (Vec<f64>, Vec<f64>) = a
            .iter()
            .zip(&b)
            .map(|(x, y)| unsafe { (x.assume_init(), y.assume_init()) })
            .unzip();
        assert_eq!(&a[3..], &src[3..]);
        assert_eq!(a, b);
    }
}
