//! Which build of the interpreter (and of native code's helpers) this CPU runs.
//!
//! Every build computes the same bits: the same operations in the same order, only on
//! wider registers (LLVM fuses a block's lane groups into 512-bit instructions under
//! AVX-512, into 256-bit ones under AVX2). `WENGERT_ISA` (`portable`, `avx2` or
//! `avx512`) caps the choice, to compare builds or test each on one machine;
//! `WENGERT_PORTABLE=1` is `WENGERT_ISA=portable` (both read once: see
//! [`crate::exec::settings`]).

/// A kernel build, in increasing order of what the CPU must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    Portable,
    /// AVX2 and FMA.
    Avx2Fma,
    /// AVX-512 F, DQ and VL, with AVX2 and FMA.
    Avx512,
}

/// The best kernel build this CPU supports, capped by `WENGERT_ISA` / `WENGERT_PORTABLE`.
pub fn detect_isa() -> Isa {
    best_isa().min(crate::exec::settings::isa_cap())
}

/// The best kernel build this CPU supports.
pub fn best_isa() -> Isa {
    if avx512() {
        Isa::Avx512
    } else if avx2_fma() {
        Isa::Avx2Fma
    } else {
        Isa::Portable
    }
}

/// Whether this CPU has AVX2 and FMA, the requirement of every `target_feature` build.
#[inline]
pub fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        return true;
    }
    false
}

/// Whether this CPU has what the AVX-512 build is compiled for (see [`Isa::Avx512`]).
#[inline]
pub fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma()
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
    {
        return true;
    }
    false
}
