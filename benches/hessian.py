"""Batch Hessians and Hessian-vector products of Rosenbrock-16, against JAX.

    python benches/hessian.py [--quick] [--rows N] [--engines]

Rows of X (N x 16) drawn in [-2, 2], V (N x 16) normal. Measured side by side in one
run, rounds interleaved (each round times every contestant once) so that load from
other processes falls on all of them alike; the table gives medians and ratios:

- `F.hessian(X)`: the lane Hessian (rust/hvp.rs), and the dual-number Hessian it
  replaced (one row at a time, still there as `F._c._hessian_rows`);
- `F.hvp(X, v=V)`, forward over reverse without forming the Hessian;
- JAX `jit(vmap(hessian(f)))` and `jit(vmap(hvp))` (`jvp` of `grad`), float64.

With `--engines`, `F.hessian` and `F.hvp` also under each engine setting, switched
within the run (`WENGERT_JIT=0` interpreter or `1` native code, `WENGERT_ISA=avx2` or
`avx512`): the derived programs are all arithmetic, so by default they run as native
code, whose vectors are 128 bits wide on x86, where the interpreter has an AVX-512 build.

Every result is checked against the others before anything is timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import wengert as wg


def rosen(x):
    s = 0.0
    for i in range(15):
        s = s + 100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
    return s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="few rounds: checks, not timings")
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--engines", action="store_true", help="also each WENGERT_JIT x WENGERT_ISA setting")
    opts = ap.parse_args()
    n = opts.rows
    rounds = 3 if opts.quick else 21
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (n, 16))
    V = rng.normal(size=(n, 16))

    R = wg.compile(rosen, shapes=[16])
    flat = [np.ascontiguousarray(X).reshape(-1)]
    runs: dict[str, Callable[[], Any]] = {
        "wengert F.hessian (lanes)": lambda: R.hessian(X),
        "wengert dual Hessian, row by row (before)": lambda: R._c._hessian_rows(flat, [True], n, [True]),
        "wengert F.hvp": lambda: R.hvp(X, v=V),
    }
    if opts.engines:
        from wengert import _core

        start = {k: os.environ.get(k) for k in ("WENGERT_JIT", "WENGERT_ISA")}

        def under(jit: str | None, isa: str | None, f: Callable[[], Any]) -> Callable[[], Any]:
            def run() -> Any:
                for key, val in (("WENGERT_JIT", jit), ("WENGERT_ISA", isa)):
                    if val is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = val
                _core._reload_settings()
                return f()

            return run

        for name in list(runs):
            runs[name] = under(start["WENGERT_JIT"], start["WENGERT_ISA"], runs[name])
        H0, hv0 = R.hessian(X), R.hvp(X, v=V)
        for jit in ("0", "1"):
            for isa in ("avx2", "avx512"):
                for what, f in (("F.hessian", lambda: R.hessian(X)), ("F.hvp", lambda: R.hvp(X, v=V))):
                    g = under(jit, isa, f)
                    assert np.array_equal(g(), H0 if what == "F.hessian" else hv0), (what, jit, isa)
                    runs[f"wengert {what}, WENGERT_JIT={jit} WENGERT_ISA={isa}"] = g
        runs["wengert F.hessian (lanes)"]()
    H = R.hessian(X)
    assert np.array_equal(H.reshape(-1), R._c._hessian_rows(flat, [True], n, [True])), "lanes != dual Hessian"
    np.testing.assert_allclose(R.hvp(X, v=V), np.einsum("nij,nj->ni", H, V), rtol=1e-12, atol=1e-9)

    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        def jrosen(x):
            return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

        jhess = jax.jit(jax.vmap(jax.hessian(jrosen)))
        jhvp = jax.jit(jax.vmap(lambda x, v: jax.jvp(jax.grad(jrosen), (x,), (v,))[1]))
        JX, JV = jnp.asarray(X), jnp.asarray(V)
        np.testing.assert_allclose(np.asarray(jhess(JX)), H, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(np.asarray(jhvp(JX, JV)), R.hvp(X, v=V), rtol=1e-12, atol=1e-9)
        runs["JAX jit(vmap(hessian))"] = lambda: jhess(JX).block_until_ready()
        runs["JAX jit(vmap(hvp))"] = lambda: jhvp(JX, JV).block_until_ready()
    except ImportError:
        print("JAX not installed: pip install 'jax[cpu]' (the bench extra)")

    times: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for f in runs.values():  # warm-up: compile, first-call caches
        f()
    slow = "wengert dual Hessian, row by row (before)"
    for r in range(rounds):
        for name, f in runs.items():
            if name == slow and r % 5:  # 100x slower: every fifth round is enough
                continue
            t, c = time.perf_counter(), time.process_time()
            f()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Rosenbrock-16, {n} rows, {wg.get_num_threads()} threads, load average {load:.1f}, {rounds} rounds")
    print()
    # Wall time, and CPU time of all the process's threads (on a loaded machine the wall
    # clock also counts the time other processes held the cores).
    for label, data in (("wall", times), ("CPU (all threads)", cpu)):
        print(f"| {label} | median us/row | vs JAX jit(vmap(hessian)) | vs JAX jit(vmap(hvp)) |")
        print("|---|---|---|---|")
        med = {k: statistics.median(v) for k, v in data.items()}
        for name, m in med.items():
            cols = [f"{m / n * 1e6:.3f}"]
            for ref in ("JAX jit(vmap(hessian))", "JAX jit(vmap(hvp))"):
                cols.append(f"{m / med[ref]:.2f}x" if ref in med else "-")
            print(f"| {name} | " + " | ".join(cols) + " |")
        print()


if __name__ == "__main__":
    main()
