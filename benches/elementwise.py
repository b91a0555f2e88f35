"""Cost of one math function per row in a compiled tape, next to NumPy's ufunc.

    python benches/elementwise.py

Prints ns/row at one thread for `wg.compile(lambda v: f(v))(x)` over 1e6 rows, and the
same for NumPy's ufunc on the same array. The `x*3` row is the compiled engine's fixed
cost per row (load, one instruction, store); subtract it to get the function's own cost.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time

import numpy as np

import wengert as wg


def best(f, repeat=9):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def unary(f):
    # A one-argument function: compile traces every parameter, defaults included.
    return lambda v: f(v)


def main():
    wg.set_num_threads(1)
    n = 1_000_000
    x = np.random.default_rng(0).uniform(0.1, 3.0, n)
    cases = [
        ("x*3", lambda v: v * 3.0, lambda a: a * 3.0),
        ("sqrt", wg.sqrt, np.sqrt),
        ("exp", wg.exp, np.exp),
        ("expm1", wg.expm1, np.expm1),
        ("log", wg.log, np.log),
        ("log1p", wg.log1p, np.log1p),
        ("sin", wg.sin, np.sin),
        ("cos", wg.cos, np.cos),
        ("tanh", wg.tanh, np.tanh),
        ("sigmoid", wg.sigmoid, lambda a: 1.0 / (1.0 + np.exp(-a))),
        ("atan (libm)", wg.atan, np.arctan),
    ]
    print(f"{'function':12s} {'wengert ns/row':>15s} {'numpy ns/row':>13s}")
    for name, f, npf in cases:
        F = wg.compile(unary(f))
        assert np.allclose(F(x), npf(x), rtol=1e-14, atol=0)
        tw = best(lambda: F(x)) / n * 1e9
        tn = best(lambda: npf(x)) / n * 1e9
        print(f"{name:12s} {tw:15.2f} {tn:13.2f}")


if __name__ == "__main__":
    main()
