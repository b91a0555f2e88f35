//! Bytes of heap per recorded op on `wengert::Tape` (goal: <= 32 bytes per binary op).
//!
//! `cargo bench --bench tape_memory` records a long chain of binary ops under a counting
//! global allocator and prints live bytes / ops (what the tape holds) and peak bytes / ops
//! (including the moment a growing vector holds both its old and new buffer). Vectors grow
//! by doubling, so both depend on where the op count falls between powers of two; several
//! sizes are printed so that effect is visible rather than hidden in one number.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use wengert::Tape;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Relaxed);
    }
    // The default realloc goes through alloc + dealloc, so a growing vector's old and new
    // buffers are both counted at the peak, as they are both resident at that moment.
}

#[global_allocator]
static A: Counting = Counting;

/// Records `binary_ops` binary ops (alternating * and + between two running variables)
/// and returns (live bytes, peak bytes, nodes) measured while the tape is still alive.
fn measure(binary_ops: usize) -> (usize, usize, usize) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let t = Tape::new();
    let x = t.var(1.0000001);
    let mut y = t.var(0.5);
    for i in 0..binary_ops {
        y = if i % 2 == 0 { y * x } else { y + x };
    }
    black_box(y.value());
    let live = LIVE.load(Relaxed) - base;
    let peak = PEAK.load(Relaxed) - base;
    (live, peak, t.len())
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    println!("wengert::Tape heap per recorded binary op (goal <= 32 B)");
    println!(
        "{:>10} {:>10} {:>12} {:>12}",
        "ops", "nodes", "live B/op", "peak B/op"
    );
    let mut worst_live: f64 = 0.0;
    for &n in &[
        1_000usize, 100_000, 1_000_000, 1_048_570, 1_048_580, 10_000_000,
    ] {
        let (live, peak, nodes) = measure(n);
        let (l, p) = (live as f64 / n as f64, peak as f64 / n as f64);
        worst_live = worst_live.max(l);
        println!("{n:>10} {nodes:>10} {l:>12.1} {p:>12.1}");
    }
    println!(
        "\npayload per node: args {} B + partials {} B + op code (read it off a row whose count just fills a power of two);\n\
         growth by doubling adds up to 2x that live, and the old buffer during a grow makes the peak up to 3x",
        std::mem::size_of::<[u32; 2]>(),
        std::mem::size_of::<[f64; 2]>(),
    );
    println!("worst live B/op over these sizes: {worst_live:.1}");
}
