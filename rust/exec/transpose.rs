//! 4x4 tile transposes: four rows of four numbers to four lane groups, and back.
//!
//! Batch inputs and gradients are row-major (one row per batch row), lane groups hold one
//! number of four rows. LLVM turns the portable version into sixteen scalar loads and
//! stores; the AVX version is four vector loads, eight shuffles and four stores, which
//! made loading a 16-vector argument ~2x faster (`benches/batch.py`, Rosenbrock).

/// The transpose of `m`, row `i` of the result holding element `i` of each row of `m`.
///
/// ```
/// use wengert::exec::transpose::transpose;
/// let m = [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0, 10.0, 11.0], [12.0, 13.0, 14.0, 15.0]];
/// assert_eq!(transpose(m)[1], [1.0, 5.0, 9.0, 13.0]);
/// ```
#[inline(always)]
pub fn transpose(m: [[f64; 4]; 4]) -> [[f64; 4]; 4] {
    std::array::from_fn(|i| [m[0][i], m[1][i], m[2][i], m[3][i]])
}

/// [`transpose`] with AVX shuffles; the same numbers, bit for bit (only moves).
///
/// # Safety
/// The CPU has AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
pub unsafe fn transpose_avx(m: [[f64; 4]; 4]) -> [[f64; 4]; 4] {
    use std::arch::x86_64::*;
    // SAFETY: each pointer is to four f64s of `m` (loads) or `out` (stores), and the CPU
    // has AVX by this function's contract.
    unsafe {
        let [a, b, c, d] = m.map(|r| _mm256_loadu_pd(r.as_ptr()));
        let t0 = _mm256_unpacklo_pd(a, b); // a0 b0 a2 b2
        let t1 = _mm256_unpackhi_pd(a, b); // a1 b1 a3 b3
        let t2 = _mm256_unpacklo_pd(c, d); // c0 d0 c2 d2
        let t3 = _mm256_unpackhi_pd(c, d); // c1 d1 c3 d3
        let mut out = [[0.0; 4]; 4];
        _mm256_storeu_pd(out[0].as_mut_ptr(), _mm256_permute2f128_pd(t0, t2, 0x20));
        _mm256_storeu_pd(out[1].as_mut_ptr(), _mm256_permute2f128_pd(t1, t3, 0x20));
        _mm256_storeu_pd(out[2].as_mut_ptr(), _mm256_permute2f128_pd(t0, t2, 0x31));
        _mm256_storeu_pd(out[3].as_mut_ptr(), _mm256_permute2f128_pd(t1, t3, 0x31));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx_and_portable_transposes_agree() {
        if !std::arch::is_x86_feature_detected!("avx") {
            return;
        }
        let m: [[f64; 4]; 4] =
            std::array::from_fn(|i| std::array::from_fn(|j| (4 * i + j) as f64 - 0.5));
        let mut odd = m;
        odd[2][1] = f64::NAN;
        odd[3][3] = -0.0;
        for m in [m, odd] {
            // SAFETY: AVX checked above.
            let t = unsafe { transpose_avx(m) };
            let u = transpose(m);
            for i in 0..4 {
                for j in 0..4 {
                    assert_eq!(t[i][j].to_bits(), u[i][j].to_bits());
                    assert_eq!(t[i][j].to_bits(), m[j][i].to_bits());
                }
            }
        }
    }
}
