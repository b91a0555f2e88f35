"""Eager (operator-overloading) derivative benchmarks, value + full gradient per evaluation.

    python benches/eager.py [--quick]

Part 1: Griewank's example f(x1, x2) = (sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))
at (1.5, 0.5): wengert Var (reverse), wengert Dual (two forward passes), the pure-Python
tape in benches/pytape.py, micrograd, autograd, num_dual. micrograd's Value has no sin,
so a sin- and exp-free variant
g(x1, x2) = (x1/x2 + x1/x2 - x2*x2) * (x1/x2 - x2*x2) is timed for every tool as well.
Part 2: per-op cost of a 1000-op chain y = y*0.999 + sin(y), Var+backward vs Dual.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import math
import os.path
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wengert as wg  # noqa: E402

import pytape  # noqa: E402

QUICK = "--quick" in sys.argv
REPEAT = 5 if QUICK else 7
TARGET = 0.05 if QUICK else 0.2  # seconds per timing sample

X1, X2 = 1.5, 0.5


def best_time(fn, target=TARGET, repeat=REPEAT):
    """Best-of-`repeat` seconds per call, after warm-up; the loop count is chosen so one
    sample lasts about `target` seconds."""
    for _ in range(3):
        fn()
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t
        if dt > target / 4 or n > 1 << 24:
            break
        n *= 4
    n = max(1, int(n * target / max(dt, 1e-9)))
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n)
    return best


def close(a, b, tol=1e-12):
    return all(abs(x - y) <= tol * max(1.0, abs(y)) for x, y in zip(a, b))


# ---------------------------------------------------------------- implementations
# Each returns (value, d/dx1, d/dx2).


def f_generic(x1, x2, sin, exp):
    a = x1 / x2
    b = exp(x2)
    return (sin(a) + a - b) * (a - b)


def g_generic(x1, x2):  # sin/exp-free variant (micrograd can run it)
    a = x1 / x2
    b = x2 * x2
    return (a + a - b) * (a - b)


def wg_var(full=True):
    def run():
        x1, x2 = wg.Var(X1), wg.Var(X2)
        y = f_generic(x1, x2, wg.sin, wg.exp) if full else g_generic(x1, x2)
        y.backward()
        return y.value, x1.grad, x2.grad

    return run


def wg_dual(full=True):
    fn = (lambda a, b: f_generic(a, b, wg.sin, wg.exp)) if full else g_generic

    def run():
        y1 = fn(wg.Dual(X1, 1.0), wg.Dual(X2))
        y2 = fn(wg.Dual(X1), wg.Dual(X2, 1.0))
        return y1.value, y1.tangent, y2.tangent

    return run


def py_tape(full=True):
    def run():
        x1, x2 = pytape.Var(X1), pytape.Var(X2)
        y = f_generic(x1, x2, pytape.sin, pytape.exp) if full else g_generic(x1, x2)
        y.backward()
        return y.value, x1.grad, x2.grad

    return run


def micrograd_impl(full=True):
    try:
        from micrograd.engine import Value
    except ImportError:
        return None
    if full:
        return None  # micrograd's Value has no sin

    def run():
        x1, x2 = Value(X1), Value(X2)
        y = g_generic(x1, x2)
        y.backward()
        return y.data, x1.grad, x2.grad

    return run


def autograd_impl(full=True):
    try:
        import autograd
        import autograd.numpy as anp
    except ImportError:
        return None
    if full:
        fn = lambda a, b: f_generic(a, b, anp.sin, anp.exp)  # noqa: E731
    else:
        fn = g_generic
    vg = autograd.value_and_grad(lambda a, b: fn(a, b), argnum=[0, 1])

    def run():
        v, (d1, d2) = vg(X1, X2)
        return float(v), float(d1), float(d2)

    return run


def num_dual_impl(full=True):
    try:
        import num_dual as nd
    except ImportError:
        return None
    if full:
        fn = lambda a, b: f_generic(a, b, lambda t: t.sin(), lambda t: t.exp())  # noqa: E731
    else:
        fn = g_generic
    D = nd.Dual64

    def run():
        y1 = fn(D(X1, 1.0), D(X2, 0.0))
        y2 = fn(D(X1, 0.0), D(X2, 1.0))
        return y1.value, y1.first_derivative, y2.first_derivative

    return run


def num_dual_gradient_impl(full=True):
    """num_dual.gradient: one pass with a vector dual (DualSVec64 / DualDVec64)."""
    try:
        import num_dual as nd
    except ImportError:
        return None
    if not hasattr(nd, "gradient"):
        return None
    if full:
        fn = lambda x: f_generic(x[0], x[1], lambda t: t.sin(), lambda t: t.exp())  # noqa: E731
    else:
        fn = lambda x: g_generic(x[0], x[1])  # noqa: E731

    def run():
        v, g = nd.gradient(fn, [X1, X2])
        return float(v), float(g[0]), float(g[1])

    return run


IMPLS = [
    ("wengert Var (reverse)", wg_var),
    ("wengert Dual x2 (forward)", wg_dual),
    ("pure-Python tape", py_tape),
    ("micrograd", micrograd_impl),
    ("autograd", autograd_impl),
    ("num_dual Dual64 x2", num_dual_impl),
    ("num_dual.gradient", num_dual_gradient_impl),
]


def exact(full):
    # hand-written reference
    x1, x2 = X1, X2
    a = x1 / x2
    if full:
        b = math.exp(x2)
        u, w = math.sin(a) + a - b, a - b
        da1, da2 = 1 / x2, -x1 / x2**2
        db2 = b
        du1, du2 = (math.cos(a) + 1) * da1, (math.cos(a) + 1) * da2 - db2
        dw1, dw2 = da1, da2 - db2
    else:
        b = x2 * x2
        u, w = 2 * a - b, a - b
        da1, da2 = 1 / x2, -x1 / x2**2
        du1, du2 = 2 * da1, 2 * da2 - 2 * x2
        dw1, dw2 = da1, da2 - 2 * x2
    return u * w, du1 * w + u * dw1, du2 * w + u * dw2


def bench_function(full):
    name = "Griewank f (with sin, exp)" if full else "sin/exp-free variant g"
    ref = exact(full)
    print(f"\n== {name} at ({X1}, {X2}): value + full gradient per evaluation")
    print(f"   reference: value={ref[0]:.12g} grad=({ref[1]:.12g}, {ref[2]:.12g})")
    rows = []
    for label, make in IMPLS:
        try:
            run = make(full)
        except Exception as e:  # a peer API that differs from what we expect
            print(f"   note: {label} skipped ({type(e).__name__}: {e})")
            continue
        if run is None:
            why = "not installed"
            if make is micrograd_impl and full:
                why = "micrograd Value has no sin (see the sin-free table)"
            print(f"   note: {label} skipped ({why})")
            continue
        try:
            got = run()
        except Exception as e:
            print(f"   note: {label} skipped ({type(e).__name__}: {e})")
            continue
        if not close(got, ref, 1e-10):
            print(f"   MISMATCH {label}: {got} vs {ref}; not timed")
            continue
        rows.append((label, best_time(run)))
    base = rows[0][1] if rows and rows[0][0].startswith("wengert Var") else None
    print(f"   {'implementation':<28}{'us/eval':>10}{'vs wengert Var':>18}")
    for label, t in rows:
        ratio = f"{t / base:.2f}x slower" if base else "-"
        if label.startswith("wengert Var"):
            ratio = "1.00"
        elif base and t < base:
            ratio = f"{base / t:.2f}x faster"
        print(f"   {label:<28}{t * 1e6:>10.2f}{ratio:>18}")
    return dict(rows)


def bench_chain(n_ops=1000):
    """Per-op cost: y = y*0.999 + sin(y), repeated; 3 ops per iteration."""
    iters = n_ops // 3

    def chain(y, sin):
        for _ in range(iters):
            y = y * 0.999 + sin(y)
        return y

    def rev():
        x = wg.Var(0.3)
        y = chain(x, wg.sin)
        y.backward()
        return y.value, x.grad

    def fwd():
        y = chain(wg.Dual(0.3, 1.0), wg.sin)
        return y.value, y.tangent

    def tape():
        x = pytape.Var(0.3)
        y = chain(x, pytape.sin)
        y.backward()
        return y.value, x.grad

    def plain():
        return chain(0.3, math.sin), 0.0

    r, f, t = rev(), fwd(), tape()
    assert close(r, f, 1e-12) and close(r, t, 1e-12), (r, f, t)
    ops = iters * 3
    print(f"\n== per-op cost: chain of {ops} ops (y = y*0.999 + sin(y)), value + derivative")
    res = [
        ("wengert Var + backward", best_time(rev)),
        ("wengert Dual (1 fwd pass)", best_time(fwd)),
        ("pure-Python tape", best_time(tape)),
        ("plain floats (no AD)", best_time(plain)),
    ]
    base = res[0][1]
    print(f"   {'implementation':<28}{'ns/op':>10}{'vs wengert Var':>18}")
    for label, t in res:
        print(f"   {label:<28}{t / ops * 1e9:>10.1f}{t / base:>17.2f}x")
    print(f"   forward/reverse time ratio (Dual / Var+backward): {res[1][1] / res[0][1]:.2f}")
    return res


def main():
    print(f"wengert eager benchmarks (best of {REPEAT}, after warm-up)")
    full = bench_function(True)
    free = bench_function(False)
    chain = bench_chain()
    print("\n== goals")
    for tag, rows in (("f", full), ("g", free)):
        w = rows.get("wengert Var (reverse)")
        t = rows.get("pure-Python tape")
        nd = [v for k, v in rows.items() if k.startswith("num_dual")]
        if w and t:
            s = t / w
            print(f"   [{tag}] wengert Var vs pure-Python tape: {s:.2f}x faster "
                  f"(goal >= 4x: {'MET' if s >= 4 else 'NOT MET'})")
        if w and nd:
            s = min(nd) / w
            print(f"   [{tag}] wengert Var vs best num_dual: {s:.2f}x "
                  f"(goal > 1x: {'MET' if s > 1 else 'NOT MET'})")
    s = chain[2][1] / chain[0][1]
    print(f"   [chain] wengert Var vs pure-Python tape: {s:.2f}x faster "
          f"(goal >= 4x: {'MET' if s >= 4 else 'NOT MET'})")


if __name__ == "__main__":
    main()
