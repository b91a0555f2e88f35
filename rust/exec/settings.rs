//! The engine's settings from the environment (`WENGERT_JIT`, `WENGERT_ISA`,
//! `WENGERT_PORTABLE`), read
//! once, at the first call that needs them, then kept in atomics: reading the environment
//! takes a lock and a scan of every variable, which a one-row call should not pay.
//! [`reload`] reads them again (the test suites switch engines within one process; Python
//! reaches it as `wengert._core._reload_settings()`).
//!
//! ```
//! use wengert::exec::settings::{self, JitMode};
//! std::env::set_var("WENGERT_JIT", "0");
//! settings::reload();
//! assert_eq!(settings::jit_mode(), JitMode::Off);
//! std::env::remove_var("WENGERT_JIT");
//! settings::reload();
//! assert_eq!(settings::jit_mode(), JitMode::Auto);
//! ```

use crate::exec::isa::Isa;
use std::sync::atomic::{AtomicU8, Ordering};

/// When compiled functions run native code (see [`crate::exec::jit`]), from `WENGERT_JIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JitMode {
    /// `0`: always interpret (to compare, or on a host where code generation misbehaves).
    Off,
    /// `1`: native code whenever the host and the program allow it.
    On,
    /// Unset (or anything else): native code where [`crate::exec::jit::worthwhile`] says it pays.
    Auto,
}

/// Not read yet (or [`reload`]ed since).
const UNREAD: u8 = u8::MAX;

static JIT: AtomicU8 = AtomicU8::new(UNREAD);
static ISA_CAP: AtomicU8 = AtomicU8::new(UNREAD);

/// `cell`'s setting, read from the environment by `read` the first time.
fn cached(cell: &AtomicU8, read: fn() -> u8) -> u8 {
    match cell.load(Ordering::Relaxed) {
        UNREAD => {
            let v = read();
            cell.store(v, Ordering::Relaxed);
            v
        }
        v => v,
    }
}

/// The [`JitMode`] `WENGERT_JIT` asks for.
pub fn jit_mode() -> JitMode {
    match cached(&JIT, || match std::env::var("WENGERT_JIT").as_deref() {
        Ok("0") => 0,
        Ok("1") => 1,
        _ => 2,
    }) {
        0 => JitMode::Off,
        1 => JitMode::On,
        _ => JitMode::Auto,
    }
}

/// The widest kernel build batch calls may use: `WENGERT_ISA` (`portable`, `avx2`,
/// `avx512`; anything else leaves the choice to the CPU), or the portable build when
/// `WENGERT_PORTABLE=1` (see [`crate::exec::isa`]).
pub fn isa_cap() -> Isa {
    match cached(&ISA_CAP, || {
        let portable = std::env::var("WENGERT_PORTABLE").is_ok_and(|v| v == "1");
        match std::env::var("WENGERT_ISA").as_deref() {
            _ if portable => 0,
            Ok("portable") => 0,
            Ok("avx2") => 1,
            _ => 2,
        }
    }) {
        0 => Isa::Portable,
        1 => Isa::Avx2Fma,
        _ => Isa::Avx512,
    }
}

/// Forgets the settings read so far: the next call reads the environment again.
pub fn reload() {
    JIT.store(UNREAD, Ordering::Relaxed);
    ISA_CAP.store(UNREAD, Ordering::Relaxed);
}
