"""Compiled batch benchmarks: value + full gradient per row, wengert vs numba vs JAX.

    python benches/batch.py [--quick]

(a) Griewank f(x1, x2) over 1e6 rows, (b) Rosenbrock on a 16-vector over 2e5 rows,
(c) RBF regression loss (16 Gaussian bases, theta = (w[16], c[16], s)) over 1e5 rows,
gradient wrt theta summed over the rows. Each at wengert's default thread count and at 1
thread (numba's thread count follows; JAX's CPU backend is timed as it comes).
Also: wengert gradient time / value-only time, 2-thread vs 1-thread speedup, and the time
of wg.compile on a function of about 1e5 operations.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy: idle OpenBLAS threads must not spin

import math
import sys
import time

import numpy as np

import wengert as wg

QUICK = "--quick" in sys.argv
REPEAT = 3 if QUICK else 7
SCALE = 0.1 if QUICK else 1.0

try:
    import numba
    from numba import njit, prange
except ImportError:
    numba = None
    print("note: numba not installed; its columns are skipped")
try:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
except ImportError:
    jax = None
    print("note: jax not installed; its columns are skipped")


def best_time(fn, repeat=REPEAT, warm=2):
    for _ in range(warm):
        fn()
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def cpu_per_wall(fn, reps=3):
    """Process CPU time / wall time over a few calls: about the number of cores the call
    really got (low when other processes hold the cores)."""
    c, w = time.process_time(), time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.process_time() - c) / max(time.perf_counter() - w, 1e-12)


def check(name, got, ref, rtol=1e-9):
    """got/ref: tuples of arrays. Raises if they disagree."""
    for i, (a, b) in enumerate(zip(got, ref)):
        a = np.asarray(a, dtype=float)
        b = np.asarray(b, dtype=float)
        if a.shape != b.shape:
            raise AssertionError(f"{name}: output {i} shape {a.shape} vs {b.shape}")
        err = np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)))
        if not err <= rtol:
            raise AssertionError(f"{name}: output {i} max rel error {err:.3g} > {rtol}")


def set_threads(n):
    wg.set_num_threads(n)
    if numba is not None:
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def interleaved(impls, value_fn, threads):
    """Best-of-REPEAT seconds for every implementation at every thread count, plus the
    wengert value-only call. Thread counts alternate within each round, so a burst of load
    from other processes hits every column alike instead of one. Each timed call follows
    an untimed one of its own: after JAX, XLA's idle threads spin for a while, and took
    the second core from the next 2 ms call (Rosenbrock's value at 2 threads timed as at
    1). A pause instead lets every pool's threads fall asleep, which cost more."""
    jobs = [(label, fn) for label, fn in impls.items()] + [("__value__", value_fn)]
    res = {label: {} for label, _ in jobs}
    for _, fn in jobs:
        for nt in threads:
            set_threads(nt)
            fn()  # warm-up at this thread count
    for _ in range(REPEAT):
        for label, fn in jobs:
            for nt in threads:
                set_threads(nt)
                fn()
                t = time.perf_counter()
                fn()
                dt = time.perf_counter() - t
                res[label][nt] = min(res[label].get(nt, math.inf), dt)
    extra = res.pop("__value__")
    set_threads(threads[0])
    extra[("cpu", threads[0])] = cpu_per_wall(next(iter(impls.values())))
    return res, extra


def table(title, unit, scale, results, nthreads_list):
    """results: {label: {nthreads: seconds}}; first label is wengert."""
    print(f"\n== {title}")
    hdr = f"   {'implementation':<34}"
    for n in nthreads_list:
        hdr += f"{f'{unit} @{n}thr':>14}{'vs wengert':>12}"
    print(hdr)
    wlabel = next(iter(results))
    for label, per in results.items():
        line = f"   {label:<34}"
        for n in nthreads_list:
            t = per.get(n)
            if t is None:
                line += f"{'-':>14}{'-':>12}"
                continue
            w = results[wlabel].get(n)
            line += f"{t * scale:>14.2f}{(t / w if w else float('nan')):>11.2f}x"
        print(line)


# ============================================================ (a) Griewank, 1e6 rows


def griewank(x1, x2):
    a = x1 / x2
    b = wg.exp(x2)
    return (wg.sin(a) + a - b) * (a - b)


if numba is not None:

    @njit(parallel=True, fastmath=False, cache=False)
    def _griewank_nb(x1, x2, v, g1, g2):
        for i in prange(x1.shape[0]):
            p, q = x1[i], x2[i]
            a = p / q
            b = math.exp(q)
            ca = math.cos(a) + 1.0
            u = math.sin(a) + a - b
            w = a - b
            da1 = 1.0 / q
            da2 = -a / q
            v[i] = u * w
            g1[i] = ca * da1 * w + u * da1
            g2[i] = (ca * da2 - b) * w + u * (da2 - b)

    def griewank_numba(x1, x2):
        n = x1.shape[0]
        v, g1, g2 = np.empty(n), np.empty(n), np.empty(n)
        _griewank_nb(x1, x2, v, g1, g2)
        return v, (g1, g2)


def bench_griewank(threads):
    n = int(1_000_000 * SCALE)
    rng = np.random.default_rng(0)
    x1 = rng.uniform(1.0, 2.0, n)
    x2 = rng.uniform(0.5, 1.0, n)
    F = wg.compile(griewank)
    ref_v, (ref1, ref2) = F.value_and_grad(x1, x2, wrt=(0, 1))
    # sanity vs the eager tape at one row
    a, b = wg.Var(x1[7]), wg.Var(x2[7])
    y = griewank(a, b)
    y.backward()
    check("wengert compiled vs eager", (ref_v[7], ref1[7], ref2[7]), (y.value, a.grad, b.grad), 1e-12)

    impls = {"wengert F.value_and_grad": lambda: F.value_and_grad(x1, x2, wrt=(0, 1))}
    if numba is not None:
        impls["numba @njit(parallel) hand grad"] = lambda: griewank_numba(x1, x2)
    if jax is not None:

        def fj(p, q):
            a = p / q
            b = jnp.exp(q)
            return (jnp.sin(a) + a - b) * (a - b)

        jf = jax.jit(jax.vmap(jax.value_and_grad(fj, argnums=(0, 1))))
        jx1, jx2 = jnp.asarray(x1), jnp.asarray(x2)

        def run_jax():
            v, (g1, g2) = jf(jx1, jx2)
            v.block_until_ready()
            g1.block_until_ready()
            g2.block_until_ready()
            return v, (g1, g2)

        impls["JAX jit(vmap(value_and_grad))"] = run_jax
    for label, fn in impls.items():
        v, (g1, g2) = fn()
        check(label, (v, g1, g2), (ref_v, ref1, ref2))

    res, extra = interleaved(impls, lambda: F(x1, x2), threads)
    table(f"(a) Griewank f(x1, x2), {n:.0e} rows: value + gradient", "ns/row", 1e9 / n, res, threads)
    return res, extra, n


# ============================================================ (b) Rosenbrock 16, 2e5 rows

D = 16


def rosen(x):
    s = 0.0
    for i in range(D - 1):
        s = s + 100.0 * (x[i + 1] - x[i] * x[i]) ** 2 + (1.0 - x[i]) ** 2
    return s


if numba is not None:

    @njit(parallel=True, fastmath=False)
    def _rosen_nb(X, v, G):
        n, d = X.shape
        for r in prange(n):
            s = 0.0
            for j in range(d):
                G[r, j] = 0.0
            for i in range(d - 1):
                xi = X[r, i]
                t = X[r, i + 1] - xi * xi
                u = 1.0 - xi
                s += 100.0 * t * t + u * u
                G[r, i] += -400.0 * t * xi - 2.0 * u
                G[r, i + 1] += 200.0 * t
            v[r] = s

    def rosen_numba(X):
        v = np.empty(X.shape[0])
        G = np.empty(X.shape)
        _rosen_nb(X, v, G)
        return v, G


def bench_rosen(threads):
    n = int(200_000 * SCALE)
    rng = np.random.default_rng(1)
    X = rng.uniform(-2.0, 2.0, (n, D))
    R = wg.compile(rosen, shapes=[D])
    ref_v, ref_g = R.value_and_grad(X)
    # sanity vs hand-written formula (NumPy)
    t = X[:, 1:] - X[:, :-1] ** 2
    u = 1.0 - X[:, :-1]
    hv = np.sum(100 * t * t + u * u, axis=1)
    hg = np.zeros_like(X)
    hg[:, :-1] += -400 * t * X[:, :-1] - 2 * u
    hg[:, 1:] += 200 * t
    check("wengert rosen vs NumPy formula", (ref_v, ref_g), (hv, hg))

    impls = {"wengert R.value_and_grad": lambda: R.value_and_grad(X)}
    if numba is not None:
        impls["numba @njit(parallel) hand grad"] = lambda: rosen_numba(X)
    if jax is not None:

        def rj(x):
            return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

        jf = jax.jit(jax.vmap(jax.value_and_grad(rj)))
        jX = jnp.asarray(X)

        def run_jax():
            v, g = jf(jX)
            v.block_until_ready()
            g.block_until_ready()
            return v, g

        impls["JAX jit(vmap(value_and_grad))"] = run_jax
    for label, fn in impls.items():
        check(label, fn(), (ref_v, ref_g))

    res, extra = interleaved(impls, lambda: R(X), threads)
    table(f"(b) Rosenbrock, 16-vector, {n:.0e} rows: value + gradient", "ns/row", 1e9 / n, res, threads)
    return res, extra, n


# ============================================================ (c) RBF regression, 1e5 rows

K = 16


def rbf_loss(theta, x, y):
    w = theta[:K]
    c = theta[K : 2 * K]
    s = theta[2 * K]
    q = wg.exp(-2.0 * s) * 0.5
    pred = 0.0
    for k in range(K):
        d = x - c[k]
        pred = pred + w[k] * wg.exp(-(d * d) * q)
    r = pred - y
    return r * r


if numba is not None:

    @njit(parallel=True, fastmath=False)
    def _rbf_nb(theta, x, y, out):
        # out: (nthreads-chunks, 2K+2): per-chunk partial sums [loss, grad...]
        n = x.shape[0]
        nch = out.shape[0]
        q = math.exp(-2.0 * theta[2 * K]) * 0.5
        for ch in prange(nch):
            lo = ch * n // nch
            hi = (ch + 1) * n // nch
            acc = np.zeros(2 * K + 2)
            e = np.empty(K)
            for i in range(lo, hi):
                xi = x[i]
                pred = 0.0
                for k in range(K):
                    d = xi - theta[K + k]
                    e[k] = math.exp(-d * d * q)
                    pred += theta[k] * e[k]
                r = pred - y[i]
                acc[0] += r * r
                tr = 2.0 * r
                ds = 0.0
                for k in range(K):
                    d = xi - theta[K + k]
                    we = theta[k] * e[k]
                    acc[1 + k] += tr * e[k]
                    acc[1 + K + k] += tr * we * (2.0 * d * q)
                    ds += we * d * d
                # d/ds of exp(-d^2 q), q = exp(-2s)/2: exp(..) * d^2 * 2q
                acc[1 + 2 * K] += tr * ds * 2.0 * q
            for j in range(2 * K + 2):
                out[ch, j] = acc[j]

    def rbf_numba(theta, x, y):
        out = np.empty((64, 2 * K + 2))
        _rbf_nb(theta, x, y, out)
        s = out.sum(axis=0)
        return s[0], s[1:]


def bench_rbf(threads):
    n = int(100_000 * SCALE)
    rng = np.random.default_rng(2)
    x = rng.uniform(-3.0, 3.0, n)
    y = np.sin(2.0 * x) + 0.1 * rng.standard_normal(n)
    theta = np.concatenate([rng.normal(0, 0.5, K), np.linspace(-3, 3, K), [-0.5]])
    L = wg.compile(rbf_loss, shapes=[2 * K + 1, (), ()])
    ref_v, ref_g = L.value_and_grad(theta, x, y, wrt=0, reduce="sum")
    # sanity: a central finite difference on s and w0 with NumPy
    def np_loss(th):
        w, c, s = th[:K], th[K : 2 * K], th[2 * K]
        q = np.exp(-2 * s) / 2
        pred = (w[None, :] * np.exp(-((x[:, None] - c[None, :]) ** 2) * q)).sum(1)
        return np.sum((pred - y) ** 2)

    assert abs(np_loss(theta) - ref_v) <= 1e-9 * abs(ref_v), (np_loss(theta), ref_v)
    for j in (0, K + 3, 2 * K):
        h = 1e-6
        e = np.zeros_like(theta)
        e[j] = h
        fd = (np_loss(theta + e) - np_loss(theta - e)) / (2 * h)
        assert abs(fd - ref_g[j]) <= 1e-5 * max(1.0, abs(fd)), (j, fd, ref_g[j])

    impls = {"wengert L.value_and_grad(sum)": lambda: L.value_and_grad(theta, x, y, wrt=0, reduce="sum")}
    if numba is not None:
        impls["numba @njit(parallel) hand grad"] = lambda: rbf_numba(theta, x, y)
    if jax is not None:

        def lj(th, xx, yy):
            w, c, s = th[:K], th[K : 2 * K], th[2 * K]
            q = jnp.exp(-2 * s) / 2
            pred = (w[None, :] * jnp.exp(-((xx[:, None] - c[None, :]) ** 2) * q)).sum(1)
            return jnp.sum((pred - yy) ** 2)

        jf = jax.jit(jax.value_and_grad(lj))
        jt, jx, jy = jnp.asarray(theta), jnp.asarray(x), jnp.asarray(y)

        def run_jax():
            v, g = jf(jt, jx, jy)
            g.block_until_ready()
            return v, g

        impls["JAX jit(value_and_grad(sum loss))"] = run_jax
    for label, fn in impls.items():
        v, g = fn()
        check(label, (v, g), (ref_v, ref_g), 1e-8)

    if _accepts_reduce(L):
        value_only = lambda: L(theta, x, y, reduce="sum")  # noqa: E731
    else:
        value_only = lambda: L(theta, x, y)  # noqa: E731
    res, extra = interleaved(impls, value_only, threads)
    table(f"(c) RBF regression, 16 bases, {n:.0e} rows: summed loss + gradient wrt theta (33)",
          "ms", 1e3, res, threads)
    return res, extra, n


def _accepts_reduce(fn):
    try:
        fn(np.zeros(2 * K + 1), np.zeros(2), np.zeros(2), reduce="sum")
        return True
    except TypeError:
        return False


# ============================================================ compile time


def bench_compile():
    iters = int(20000 * SCALE)

    def big(x):
        s = x
        for _ in range(iters):
            s = wg.sin(s) * x + s * 0.5 - x / (s * s + 1)
        return s

    t, tg = [], []
    for _ in range(3 if not QUICK else 1):
        t0 = time.perf_counter()
        G = wg.compile(big)
        G(np.array([0.3]))  # force any lazy tracing / optimisation
        t1 = time.perf_counter()
        G.value_and_grad(np.array([0.3]))  # first gradient call (builds the adjoint program)
        t.append(t1 - t0)
        tg.append(time.perf_counter() - t1)
    ops = iters * 8
    # check a point against the eager path (first compile is timed above; this is the check)
    xv = 0.3
    s = xv
    for _ in range(iters):
        s = math.sin(s) * xv + s * 0.5 - xv / (s * s + 1)
    got = float(np.asarray(G(np.array([xv])))[0])
    assert abs(got - s) <= 1e-9 * max(1, abs(s)), (got, s)
    return min(t), min(tg), ops


def main():
    ncores = os.cpu_count() or 1
    default = wg.get_num_threads()
    threads = [default, 1] if default != 1 else [1]
    print(f"wengert batch benchmarks: {ncores} cores, best of {REPEAT} after warm-up, "
          f"threads {threads} (wengert default = {default})")
    try:
        load = open("/proc/loadavg").read().split()[0]
        print(f"note: 1-minute load average at start {load}; other processes on the cores "
              "distort the thread-scaling columns")
    except OSError:
        pass
    if jax is not None:
        print(f"note: JAX {jax.__version__} on {jax.default_backend()}, x64 enabled; "
              "its thread count is not set per column (XLA CPU uses its own pool)")
    if numba is not None:
        print(f"note: numba {numba.__version__}, threading layer set per column via numba.set_num_threads")
    summary = []
    for name, fn in (("Griewank", bench_griewank), ("Rosenbrock-16", bench_rosen), ("RBF", bench_rbf)):
        res, extra, n = fn(threads)
        w = res[next(iter(res))]
        summary.append((name, w, extra))
    print("\n== wengert: gradient / value-only time, and thread scaling")
    nt = threads[0]
    print(f"   {'function':<16}{'grad/value @' + str(nt):>16}{'grad/value @1':>15}"
          f"{'grad speedup ' + str(nt) + 'v1':>18}{'value speedup':>15}{'cpu/wall @' + str(nt):>14}")
    for name, w, extra in summary:
        line = f"   {name:<16}{w[nt] / extra[nt]:>16.2f}"
        if len(threads) > 1:
            line += f"{w[1] / extra[1]:>15.2f}{w[1] / w[nt]:>17.2f}x{extra[1] / extra[nt]:>14.2f}x"
        line += f"{extra[('cpu', nt)]:>14.2f}"
        print(line)
    print(f"   (cpu/wall: process CPU seconds per wall second during the gradient at {nt} threads;"
          f" near {nt} means the threads really ran in parallel, near 1 means the cores were busy)")
    set_threads(default)
    tc, tg, ops = bench_compile()
    print(f"\n== wg.compile on a {ops}-op function (loop of {ops // 8} x "
          f"'s = sin(s)*x + s*0.5 - x/(s*s+1)'), best of {1 if QUICK else 3}")
    print(f"   wg.compile + first call:     {tc:.3f} s  ({tc / ops * 1e9:.0f} ns/op)")
    print(f"   first value_and_grad call:   {tg:.3f} s  ({tg / ops * 1e9:.0f} ns/op)")


if __name__ == "__main__":
    main()
