"""What wg.debug_nans costs when off (and when on, with finite results).

    python benches/debug_nans.py --baseline PATH [--quick]

PATH is the `python/` folder of a build without the check (e.g. a worktree of main with
its extension built by the same cargo flags as this one). Each measurement runs in a
fresh interpreter per tree, alternating baseline and this tree round by round, and the
best of the rounds is kept, so a loaded machine slows both alike; the table prints the
ratios this/baseline. Measured:

- eager Var: Griewank's example, build the graph + backward() (us/eval)
- eager Dual: the same, two forward passes (us/eval)
- compiled values and value_and_grad over 1e6 rows (ms/call)
- compiled call on one point (us/call): the per-call flag test
- tracing: wg.compile of a 400-op function (ms), where this tree records source lines
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
QUICK = "--quick" in sys.argv


def best(fn, target=0.05 if QUICK else 0.2, repeat=5 if QUICK else 7):
    fn()
    n, t = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        t = time.perf_counter() - t0
        if t > target / 4:
            break
        n *= 2
    n = max(1, int(n * target / max(t, 1e-9)))
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - t0) / n)
    return min(out)


def measure(state: str) -> dict[str, float]:
    import numpy as np
    import wengert as wg

    if state == "on":
        wg.set_debug_nans(True)

    def griewank(x1, x2):
        a = x1 / x2
        b = wg.exp(x2)
        return (wg.sin(a) + a - b) * (a - b)

    def var():
        x1, x2 = wg.Var(1.5), wg.Var(0.5)
        y = griewank(x1, x2)
        y.backward()
        return x1.grad, x2.grad

    def dual():
        return griewank(wg.Dual(1.5, 1.0), wg.Dual(0.5)).tangent, griewank(wg.Dual(1.5), wg.Dual(0.5, 1.0)).tangent

    F = wg.compile(griewank)
    rng = np.random.default_rng(0)
    n = 200_000 if QUICK else 1_000_000
    X1, X2 = rng.random(n) + 1.0, rng.random(n) + 0.5

    def chain(x):
        y = x
        for _ in range(400):
            y = y * 0.999 + wg.sin(y)
        return y

    return {
        "eager Var (us/eval)": best(var) * 1e6,
        "eager Dual (us/eval)": best(dual) * 1e6,
        "compiled values (ms/call)": best(lambda: F(X1, X2)) * 1e3,
        "compiled value_and_grad (ms/call)": best(lambda: F.value_and_grad(X1, X2, wrt=(0, 1))) * 1e3,
        "compiled one point (us/call)": best(lambda: F(1.5, 0.5)) * 1e6,
        "trace 400-op function (ms)": best(lambda: wg.compile(chain), repeat=3) * 1e3,
    }


def run(path: str, state: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=path, OPENBLAS_NUM_THREADS="1")
    args = [sys.executable, __file__, "--child", state] + (["--quick"] if QUICK else [])
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    if "--child" in sys.argv:
        print(json.dumps(measure(sys.argv[sys.argv.index("--child") + 1])))
        return
    if "--baseline" not in sys.argv:
        sys.exit(__doc__)
    base = os.path.abspath(sys.argv[sys.argv.index("--baseline") + 1])
    this = os.path.join(os.path.dirname(HERE), "python")
    rounds = 2 if QUICK else 3
    runs = {"baseline": [], "off": [], "on": []}
    for _ in range(rounds):
        runs["baseline"].append(run(base, "off"))
        runs["off"].append(run(this, "off"))
        runs["on"].append(run(this, "on"))
    bestof = {k: {m: min(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
    print(f"load average: {os.getloadavg()}")
    print(f"{'':36} {'baseline':>10} {'off':>10} {'on':>10} {'off/base':>9} {'on/base':>9}")
    for m in bestof["baseline"]:
        b, off, on = bestof["baseline"][m], bestof["off"][m], bestof["on"][m]
        print(f"{m:36} {b:10.3f} {off:10.3f} {on:10.3f} {off / b:9.3f} {on / b:9.3f}")


if __name__ == "__main__":
    main()
