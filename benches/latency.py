"""Call latency: one-row calls of a compiled function against JAX's jitted call.

    python benches/latency.py [--quick] [--baseline PATH]

The SciPy-optimiser case: one point per call, again and again. For Rosenbrock-16 (one
float64 array of 16) and a two-argument scalar function (two Python floats), the values,
value_and_grad, grad, jacobian and hessian of one row, in microseconds per call (median
over rounds of many calls, `timeit`):

- wengert: `F = wg.compile(f)`, then `F.value_and_grad(x)` and so on;
- JAX: `jax.jit(jax.value_and_grad(f))` (and `jax.jit(f)`, `jax.grad`, `jax.jacrev`,
  `jax.hessian`) on the same NumPy inputs, float64, with `jax.block_until_ready` on the
  result (JAX's device arrays are not converted to NumPy: its fastest honest figure);
- eager: `wg.value_and_grad(f)(x)` and the other transforms on `Var` (no compile).

Each implementation's results are checked against wengert's before timing. Ratios are
wengert / JAX, from the same process (the goal: at most 0.3). With `--baseline PATH`
(the `python/` folder of another build, e.g. a worktree of main built with the same
cargo flags), each round runs one fresh interpreter per tree, alternating, and the table
gives both trees' times and ratios against the JAX of their own process: a loaded
machine slows both alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
QUICK = "--quick" in sys.argv
CALLS = ["values", "value_and_grad", "grad", "jacobian", "hessian"]


def cpu() -> str:
    fields = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            fields[k.strip()] = v.strip()
    except OSError:
        pass
    name = fields.get("Model name", "unknown CPU")
    return (
        f"{name} (family {fields.get('CPU family', '?')}, model {fields.get('Model', '?')}), "
        f"{os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.2f}"
    )


def measure() -> dict[str, dict[str, float]]:
    """Times every call in this interpreter: {case: {impl: seconds per call}}."""
    import timeit

    import numpy as np

    import wengert as wg

    def rosen(x):
        return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))

    def two(a, b):
        return a * wg.sin(b) + wg.exp(a / b) - b * b

    x = np.linspace(-1.2, 1.3, 16)
    a, b = 1.3, 0.7
    R = wg.compile(rosen, shapes=[16])
    T = wg.compile(two)
    both = (0, 1)
    ours = {
        ("rosen16", "values"): lambda: R(x),
        ("rosen16", "value_and_grad"): lambda: R.value_and_grad(x),
        ("rosen16", "grad"): lambda: R.grad(x),
        ("rosen16", "jacobian"): lambda: R.jacobian(x),
        ("rosen16", "hessian"): lambda: R.hessian(x),
        ("two", "values"): lambda: T(a, b),
        ("two", "value_and_grad"): lambda: T.value_and_grad(a, b, wrt=both),
        ("two", "grad"): lambda: T.grad(a, b, wrt=both),
        ("two", "jacobian"): lambda: T.jacobian(a, b, wrt=both),
        ("two", "hessian"): lambda: T.hessian(a, b, wrt=both),
    }
    eager = {
        ("rosen16", "value_and_grad"): lambda: wg.value_and_grad(rosen)(x),
        ("rosen16", "grad"): lambda: wg.grad(rosen)(x),
        ("rosen16", "jacobian"): lambda: wg.jacobian(rosen)(x),
        ("rosen16", "hessian"): lambda: wg.hessian(rosen)(x),
        ("two", "value_and_grad"): lambda: wg.value_and_grad(two, wrt=both)(a, b),
        ("two", "grad"): lambda: wg.grad(two, wrt=both)(a, b),
        ("two", "jacobian"): lambda: wg.jacobian(two, wrt=both)(a, b),
        ("two", "hessian"): lambda: wg.hessian(two, wrt=both)(a, b),
    }
    impls = {"wengert": ours, "eager": eager}
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)

        def jrosen(x):
            return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

        def jtwo(a, b):
            return a * jnp.sin(b) + jnp.exp(a / b) - b * b

        def jitted(f, args):
            f = jax.jit(f)
            return lambda: jax.block_until_ready(f(*args))

        impls["jax"] = {
            ("rosen16", "values"): jitted(jrosen, (x,)),
            ("rosen16", "value_and_grad"): jitted(jax.value_and_grad(jrosen), (x,)),
            ("rosen16", "grad"): jitted(jax.grad(jrosen), (x,)),
            ("rosen16", "jacobian"): jitted(jax.jacrev(jrosen), (x,)),
            ("rosen16", "hessian"): jitted(jax.hessian(jrosen), (x,)),
            ("two", "values"): jitted(jtwo, (a, b)),
            ("two", "value_and_grad"): jitted(jax.value_and_grad(jtwo, argnums=both), (a, b)),
            ("two", "grad"): jitted(jax.grad(jtwo, argnums=both), (a, b)),
            ("two", "jacobian"): jitted(jax.jacrev(jtwo, argnums=both), (a, b)),
            ("two", "hessian"): jitted(jax.hessian(jtwo, argnums=both), (a, b)),
        }
    except ImportError:
        print("jax is not installed: no JAX column", file=sys.stderr)

    # Every peer agrees with wengert before anything is timed.
    def flat(r):
        if isinstance(r, (tuple, list)):
            return np.concatenate([flat(v) for v in r]) if r else np.zeros(0)
        return np.asarray(r, dtype=np.float64).reshape(-1)

    for name, table in impls.items():
        if name == "wengert":
            continue
        for key, fn in table.items():
            want, got = flat(ours[key]()), flat(fn())
            if want.shape != got.shape or not np.allclose(want, got, rtol=1e-12, atol=1e-12):
                raise SystemExit(f"{name} disagrees with wengert on {key}: {got} vs {want}")

    number = 300 if QUICK else 2000
    rounds = 3 if QUICK else 7
    out: dict[str, dict[str, float]] = {}
    for key in ours:
        case = f"{key[0]} {key[1]}"
        fns = {n: t[key] for n, t in impls.items() if key in t}
        times: dict[str, list[float]] = {n: [] for n in fns}
        for fn in fns.values():
            fn()
        for _ in range(rounds):  # implementations interleaved: load hits them alike
            for n, fn in fns.items():
                k = number if n != "eager" else max(number // 20, 20)
                times[n].append(timeit.timeit(fn, number=k) / k)
        out[case] = {n: float(np.median(t)) for n, t in times.items()}
    return out


def child(path: str) -> dict[str, dict[str, float]]:
    env = dict(os.environ, PYTHONPATH=path)
    args = [sys.executable, os.path.abspath(__file__), "--child"] + (["--quick"] if QUICK else [])
    r = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"measuring {path} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def us(t: float | None) -> str:
    return "-" if t is None else f"{t * 1e6:.1f}"


def ratio(t: float | None, ref: float | None) -> str:
    return "-" if t is None or not ref else f"{t / ref:.2f}"


def main() -> None:
    if "--child" in sys.argv:
        print(json.dumps(measure()))
        return
    baseline = None
    if "--baseline" in sys.argv:
        baseline = os.path.abspath(sys.argv[sys.argv.index("--baseline") + 1])
    print(f"CPU: {cpu()}")
    this = os.path.join(ROOT, "python")
    if baseline is None:
        sys.path.insert(0, this)
        res = measure()
        print("\n| call | wengert (us) | JAX jit (us) | eager Var (us) | wengert / JAX |")
        print("|---|---|---|---|---|")
        for case, r in res.items():
            w, j, e = r.get("wengert"), r.get("jax"), r.get("eager")
            print(f"| {case} | {us(w)} | {us(j)} | {us(e)} | {ratio(w, j)} |")
        return
    runs: dict[str, list[dict[str, dict[str, float]]]] = {"before": [], "after": []}
    for _ in range(2 if QUICK else 3):
        runs["before"].append(child(baseline))
        runs["after"].append(child(this))

    def best(tree: str, case: str, impl: str) -> float | None:
        got = [r[case][impl] for r in runs[tree] if impl in r[case]]
        return min(got) if got else None

    print(f"baseline: {baseline}\nthis tree: {this}")
    print("\n| call | JAX jit (us) | eager Var (us) | before (us) | before / JAX | after (us) | after / JAX |")
    print("|---|---|---|---|---|---|---|")
    for case in runs["after"][0]:
        jb, ja = best("before", case, "jax"), best("after", case, "jax")
        wb, wa = best("before", case, "wengert"), best("after", case, "wengert")
        jax_t = None if ja is None else min(jb or ja, ja)
        print(
            f"| {case} | {us(jax_t)} | {us(best('after', case, 'eager'))} | {us(wb)} | {ratio(wb, jb)} "
            f"| {us(wa)} | {ratio(wa, ja)} |"
        )


if __name__ == "__main__":
    main()
