"""Native code vs the interpreter on the same compiled functions, and the first-call cost
of generating native code.

    OPENBLAS_NUM_THREADS=1 python benches/engines.py

Prints ns/row of value and value + gradient at 1 thread with WENGERT_JIT=0 (interpreter)
and WENGERT_JIT=1 (native code wherever possible). Left to itself wengert picks native
code for Rosenbrock and the two chains, and the interpreter for Griewank, exp, sqrt and
the chain of 64 divisions (see `wengert::jit::worthwhile`; the chain keeps 128 partials for
the reverse sweep, as many as `wengert::jit::MAX_KEPT` allows). Then the first calls with
native code,
which include generating it: values of chains of multiply-adds of growing length (the
figures behind `MAX_INSTRS`), and gradients of chains of divisions up to `MAX_KEPT`.
"""

from __future__ import annotations

import os
import time

import numpy as np

import wengert as wg
from wengert import _core

N = 200_000


def best(f, reps=7):
    f()
    t = 1e9
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - t0)
    return t


def rosen(x):
    s = 0.0
    for i in range(15):
        s = s + 100.0 * (x[i + 1] - x[i] * x[i]) ** 2 + (1.0 - x[i]) ** 2
    return s


def griewank(x):
    a = x[0] / x[1]
    return (wg.sin(a) + a - wg.exp(x[1])) * (a - wg.exp(x[1]))


def chain(m):
    def f(x):
        s = wg.exp(x[0])
        for i in range(m):
            s = s * x[(i + 1) % 4] + x[i % 4] * 0.5
        return s

    return f


def divisions(m):
    def f(x):
        v = x[0]
        for i in range(m):
            v = v / x[1 + i % 3]
        return v

    return f


def engines():
    rng = np.random.default_rng(0)
    cases = [
        ("Rosenbrock-16", rosen, 16, rng.uniform(-2, 2, (N, 16))),
        ("Griewank", griewank, 2, np.column_stack([rng.uniform(1, 2, N), rng.uniform(0.5, 1, N)])),
        ("exp + 8 multiply-adds", chain(8), 4, rng.uniform(0.5, 1.5, (N, 4))),
        ("exp + 32 multiply-adds", chain(32), 4, rng.uniform(0.5, 1.5, (N, 4))),
        ("exp alone", lambda x: wg.exp(x[0]), 1, rng.uniform(-3, 3, (N, 1))),
        ("sqrt alone", lambda x: wg.sqrt(x[0]), 1, rng.uniform(0, 3, (N, 1))),
        ("64 divisions", divisions(64), 4, rng.uniform(0.9, 1.1, (N, 4))),
    ]
    print(f"value and value + gradient, ns/row, 1 thread, {N} rows")
    print(f"   {'function':24s} {'interp v':>9s} {'native v':>9s} {'interp g':>9s} {'native g':>9s}")
    for name, f, d, X in cases:
        F = wg.compile(f, shapes=[d])
        row = []
        for mode in ("0", "1"):
            os.environ["WENGERT_JIT"] = mode
            _core._reload_settings()  # wengert reads it once, at first use
            row.append((best(lambda: F(X)), best(lambda: F.value_and_grad(X))))
        os.environ.pop("WENGERT_JIT")
        _core._reload_settings()
        (iv, ig), (nv, ng) = row
        ns = 1e9 / N
        print(f"   {name:24s} {iv * ns:9.1f} {nv * ns:9.1f} {ig * ns:9.1f} {ng * ns:9.1f}")


def first_call(f, d, grad):
    F = wg.compile(f, shapes=[d])
    X = np.random.default_rng(1).uniform(0.9, 1.1, (1000, d))
    t0 = time.perf_counter()
    F.value_and_grad(X) if grad else F(X)
    return time.perf_counter() - t0


def first_calls():
    print("first calls with native code generation (WENGERT_JIT=1), seconds")
    os.environ["WENGERT_JIT"] = "1"
    _core._reload_settings()
    for m in (250, 500, 1000):

        def f(x, m=m):
            s = x[0]
            for _ in range(m // 4):
                s = s * x[1] + x[2] * 0.5 - s * s
            return s

        print(f"   value, {m:4d} ops (multiply-adds):     {first_call(f, 3, False):.3f}")
    for m in (16, 32, 64, 65):
        t = first_call(divisions(m), 4, True)
        past = " (past MAX_KEPT: interpreted)" if m > 64 else ""
        print(f"   gradient, {m:3d} divisions ({2 * m:3d} kept): {t:.3f}{past}")
    os.environ.pop("WENGERT_JIT")


if __name__ == "__main__":
    wg.set_num_threads(1)
    engines()
    first_calls()
