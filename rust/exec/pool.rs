//! The thread pool batch evaluation and Hessians run on: one per process, sized by
//! `WENGERT_NUM_THREADS` or the core count, replaced by [`set_num_threads`].

use std::sync::{Arc, Mutex};

/// The pool batch calls run on; replaced by [`set_num_threads`].
static POOL: Mutex<Option<Arc<rayon::ThreadPool>>> = Mutex::new(None);

/// The most threads [`set_num_threads`] starts. A CPU-bound engine gains nothing past a
/// few threads per core; the bound keeps a mistaken count from spawning OS threads until
/// the machine stalls.
pub const MAX_THREADS: usize = 1024;

/// Threads used when none were set: `WENGERT_NUM_THREADS` when it is a count in
/// `1..=MAX_THREADS`, else (unset, garbage or out of range) every core.
fn default_threads() -> usize {
    std::env::var("WENGERT_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| (1..=MAX_THREADS).contains(n))
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
        })
}

/// The pool, started on first use with [`default_threads`].
pub fn pool() -> Arc<rayon::ThreadPool> {
    let mut p = POOL.lock().unwrap_or_else(|e| e.into_inner());
    p.get_or_insert_with(|| Arc::new(build_pool(default_threads())))
        .clone()
}

fn build_pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("wengert-{i}"))
        .build()
        .expect("cannot start wengert's worker threads")
}

/// Sets the number of threads batch evaluation uses, clamped to `1..=MAX_THREADS`.
///
/// ```
/// wengert::exec::pool::set_num_threads(2);
/// assert_eq!(wengert::exec::pool::num_threads(), 2);
/// ```
pub fn set_num_threads(n: usize) {
    let n = n.clamp(1, MAX_THREADS);
    *POOL.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(build_pool(n)));
}

/// The number of threads batch evaluation uses.
pub fn num_threads() -> usize {
    pool().current_num_threads()
}
