//! Which build of the interpreter (and of native code's helpers) this CPU runs.

/// Which kernel build runs; `Portable` can be forced (WENGERT_PORTABLE=1) to compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Portable,
    Avx2Fma,
}

/// The best kernel build this CPU supports, unless `WENGERT_PORTABLE` is set to 1.
pub fn detect_isa() -> Isa {
    if crate::exec::settings::portable() {
        return Isa::Portable;
    }
    if avx2_fma() {
        return Isa::Avx2Fma;
    }
    Isa::Portable
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
