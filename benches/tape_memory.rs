//! Bytes of heap per recorded op on `wengert::Tape` (goal: <= 32 bytes per binary op).
//!
//! `cargo bench --bench tape_memory` records a long chain of binary ops under a counting
//! global allocator and prints live bytes / ops (what the tape holds) and peak bytes / ops
//! (including any moment a growing vector holds both its old and new buffer).
//!
//! The arena stores nodes in chunks of `Arena::CHUNK` nodes, each allocated at its final
//! size and never copied, so live = payload (`Arena::BYTES_PER_NODE` per node) + the unused
//! part of the top chunk (less than one chunk) + a small vector of chunk headers, and the
//! peak equals the live bytes. Only the first chunk grows by doubling, so rows below one
//! chunk show doubling's overhead (and its copy at the peak), and a row just past a chunk
//! boundary shows the worst case of a nearly empty top chunk; the sizes are chosen so those
//! effects are visible rather than hidden in one number.
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use wengert::tape::arena::Arena;
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
    let (chunk, payload) = (Arena::CHUNK, Arena::BYTES_PER_NODE);
    // From here on even a top chunk holding one node keeps live <= 32 B/op (3 nodes are
    // the sink and the two leaves; chunk headers add well under 1 B/op).
    let fits = (payload * (chunk + 2)).div_ceil(32 - payload);
    println!("wengert::Tape heap per recorded binary op (goal <= 32 B)");
    println!(
        "{:>10} {:>10} {:>12} {:>12}",
        "ops", "nodes", "live B/op", "peak B/op"
    );
    let mut worst = (0.0_f64, 0);
    let mut worst_large = (0.0_f64, 0);
    for &n in &[
        1_000usize,
        chunk - 3, // the first chunk exactly full
        chunk - 2, // one node into the second chunk
        fits,
        100_000,
        1_000_000,
        1_048_570,
        1_048_580,
        10_000_000,
    ] {
        let (live, peak, nodes) = measure(n);
        let (l, p) = (live as f64 / n as f64, peak as f64 / n as f64);
        if l > worst.0 {
            worst = (l, n);
        }
        if n >= fits && l > worst_large.0 {
            worst_large = (l, n);
        }
        println!("{n:>10} {nodes:>10} {l:>12.1} {p:>12.1}");
    }
    println!(
        "\npayload per node: {payload} B (op code {} B + args {} B + partials {} B), in chunks of {chunk} nodes;\n\
         live adds the unused part of the top chunk (< {} KiB) and the chunk headers; full chunks are never copied,\n\
         so peak = live past the first chunk, which alone grows by doubling",
        std::mem::size_of::<wengert::tape::arena::Op>(),
        std::mem::size_of::<[u32; 2]>(),
        std::mem::size_of::<[f64; 2]>(),
        chunk * payload / 1024,
    );
    println!(
        "worst live B/op over these sizes: {:.1} (at {} ops); from {fits} ops on: {:.1} (at {} ops)",
        worst.0, worst.1, worst_large.0, worst_large.1
    );
}
