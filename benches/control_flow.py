"""Python control flow in compiled functions: the cost of guards, and branches vs wg.where.

    python benches/control_flow.py [--quick]
    python benches/control_flow.py --pass plain|ext|plain-vjp|ext-vjp [ROWS]

`--pass` runs one engine pass of case (1) three times and nothing else, for an
instruction count of the guard's cost (the flagged pass of the extended program
against the unguarded one), e.g.
    WENGERT_NUM_THREADS=1 valgrind --tool=callgrind python3.11 benches/control_flow.py --pass ext
(the setup's first call runs `ext`: take differences between runs, not totals).

(1) Rows that all follow the traced branch: a function with an `if` (one guard) against
    the same function without it, values and value_and_grad; the guarded one should cost
    at most 10% more (the guard is one comparison and one select per row, checked in
    the same engine pass).
(2) A piecewise function whose rows split evenly between two branches,
    `sin(x) * x` for `x > 0`, `exp(x) - 1` otherwise, 1e6 rows, value and gradient: the
    `if` version (each row evaluated by the trace of its own branch) against `wg.where`
    (both sides for every row) and Dr.Jit's per-lane `if` under `@dr.syntax` (LLVM
    backend, `pip install drjit`; skipped if absent).

Every implementation is checked against the others before it is timed. Best of N after
warm-up; time ratios measured side by side in one run.
"""

from __future__ import annotations

import os
import sys

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]
import time

import numpy as np

import wengert as wg

try:
    import drjit as dr
    from drjit.llvm.ad import Float64 as Float
except ImportError:
    dr = None


def best(f, repeat=7):
    f()
    b = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        b = min(b, time.perf_counter() - t)
    return b


def faults(f, calls=5):
    """Minor page faults per call of ``f`` (fresh pages the kernel maps and zeroes), or
    nan where ``resource`` is missing."""
    if resource is None:
        return float("nan")
    f()
    a = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        f()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - a) / calls


def branchy(x):
    if x > 0:
        return wg.sin(x) * x
    return wg.exp(x) - 1


def selected(x):
    return wg.where(x > 0, wg.sin(x) * x, wg.exp(x) - 1)


def positive_side(x):
    return wg.sin(x) * x


def drjit_fn():
    if dr is None:
        return None

    @dr.syntax
    def f(x):
        if x > 0:
            y = dr.sin(x) * x
        else:
            y = dr.exp(x) - 1
        return y

    def value(X):
        y = f(Float(X))
        return y.numpy()

    def value_and_grad(X):
        x = Float(X)
        dr.enable_grad(x)
        y = f(x)
        dr.backward(y)
        return y.numpy(), x.grad.numpy()

    return value, value_and_grad


def main(quick: bool) -> None:
    n = 100_000 if quick else 1_000_000
    repeat = 3 if quick else 9
    rng = np.random.default_rng(0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{n} rows, {wg.get_num_threads()} threads, load average {load:.2f} (ratios from one run)")

    # (1) every row on the traced branch
    X = rng.uniform(0.1, 3.0, n)
    G, P = wg.compile(branchy), wg.compile(positive_side)
    assert np.array_equal(G(X), P(X)) and np.array_equal(G.grad(X), P.grad(X))
    print("\n(1) all rows on the traced branch: guarded / unguarded")
    for name, job in [("values", lambda F: F(X)), ("value_and_grad", lambda F: F.value_and_grad(X))]:
        tg = best(lambda: job(G), repeat)
        tp = best(lambda: job(P), repeat)
        print(f"  {name:15s} guarded {tg * 1e3:7.2f} ms   unguarded {tp * 1e3:7.2f} ms   ratio {tg / tp:.3f}")

    # (2) rows split evenly between the branches
    X = rng.uniform(-1.0, 1.0, n)
    W = wg.compile(selected)
    G = wg.compile(branchy)
    v, g = G.value_and_grad(X)
    vw, gw = W.value_and_grad(X)
    assert np.array_equal(v, vw) and np.array_equal(g, gw), "if and where disagree"
    impls = {
        "wengert if (per row)": (lambda: G(X), lambda: G.value_and_grad(X)),
        "wengert wg.where": (lambda: W(X), lambda: W.value_and_grad(X)),
    }
    dj = drjit_fn()
    if dj is None:
        print("  (drjit not installed: pip install drjit)")
    else:
        dv, dg = dj[1](X)
        assert np.allclose(dv, v, rtol=1e-12, atol=1e-15) and np.allclose(dg, g, rtol=1e-12, atol=1e-15), "drjit disagrees"
        impls["Dr.Jit @dr.syntax if"] = (lambda: dj[0](X), lambda: dj[1](X))
    print("\n(2) rows split evenly between two branches (ms; ratio to wengert if; minor page faults a call)")
    times = {name: (best(a, repeat), best(b, repeat)) for name, (a, b) in impls.items()}
    base = times["wengert if (per row)"]
    for name, (tv, tg) in times.items():
        fv, fg = faults(impls[name][0]), faults(impls[name][1])
        print(
            f"  {name:24s} values {tv * 1e3:7.2f} ({tv / base[0]:5.2f}x, {fv:5.0f} faults)   "
            f"value_and_grad {tg * 1e3:7.2f} ({tg / base[1]:5.2f}x, {fg:5.0f} faults)"
        )


def one_pass(which: str, n: int) -> None:
    X = np.random.default_rng(0).uniform(0.1, 3.0, n)
    G = wg.compile(branchy)
    G(X)
    v = G._first()
    one = np.ones(1)
    passes = {
        "plain": lambda: v.plain.values([X], [True], n, "none"),
        "ext": lambda: v.ext.values_flagged([X], [True], n, "none"),
        "plain-vjp": lambda: v.plain.vjp([X], [True], n, one, False, [True], "none"),
        "ext-vjp": lambda: v.ext.vjp_flagged([X], [True], n, one, False, [True], "none"),
    }
    if which not in passes:
        raise SystemExit(f"--pass takes one of {', '.join(passes)}, got {which!r}")
    for _ in range(3):
        passes[which]()


if __name__ == "__main__":
    if "--pass" in sys.argv:
        at = sys.argv.index("--pass")
        rest = sys.argv[at + 1 :]
        one_pass(rest[0] if rest else "", int(rest[1]) if len(rest) > 1 else 200_000)
    else:
        main("--quick" in sys.argv)
