"""Every benchmark workload in one command: wengert against every installed peer.

    python benches/run.py [--quick] [--check] [--threads N] [--only NAMES] [--json PATH]

Workloads (issue 18's table and the earlier ones): the eager seed example (Griewank's
f at one point), eager per-op cost on a 999-op chain, the compiled seed example over 1e6
rows, Rosenbrock-16 over 2e5 rows, RBF regression over 1e5 rows, batch Hessian and hvp of
Rosenbrock-16 over 1e4 rows, the piecewise `if` against `wg.where` over 1e6 rows, one
training step of a 2-16-16-1 MLP on 200 points, and a long function (2,728 instructions)
over 1e5 rows; and the one-row value_and_grad call of benches/latency.py (Rosenbrock-16
and its two-float function: compiled, eager, JAX jit).

Peers, each where installed (a missing one is reported, never fatal): JAX, Dr.Jit (LLVM
backend), PyTorch, numba, NumPy written by hand, HIPS autograd, micrograd, num-dual, and
the pure-Python tape of benches/pytape.py.

Before anything is timed, every peer's values and gradients are compared with wengert's
(`np.allclose` with the tolerances stated per workload). A disagreement is printed as an
ERROR, the peer's row is marked WRONG and not timed, and the exit code is 1.

Timing: rounds interleaved (each round times every implementation once, so load from
other processes falls on all alike), each sample long enough to time (calls repeated),
medians of the rounds. The table's ratio is wengert / peer: above 1 means wengert is
slower. `--quick` shrinks sizes (under two minutes on 2 cores); `--check` runs the
agreement checks only (what CI runs: `tests/test_benches.py`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

HERE = Path(__file__).resolve().parent


def _early_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few rounds (under two minutes)")
    ap.add_argument("--check", action="store_true", help="agreement checks only, no timing (CI)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for wengert, Dr.Jit, numba and (set before import) XLA; default: all cores")
    ap.add_argument("--only", default="", help="comma-separated workload keys to run (default: all)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    return ap.parse_args(argv)


if __name__ == "__main__":
    ARGS = _early_args(sys.argv[1:])
    if ARGS.threads == 1:
        # XLA's CPU client reads its threading flags once, at import.
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # idle OpenBLAS threads must not spin

sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "examples"))

import numpy as np  # noqa: E402

import wengert as wg  # noqa: E402

import batch  # noqa: E402  (Griewank, Rosenbrock-16, RBF and their numba versions)
import control_flow  # noqa: E402  (piecewise if / where, Dr.Jit's per-lane if)
import eager  # noqa: E402  (eager seed example and its peers)
import pytape  # noqa: E402
from hessian import rosen as rosen_h  # noqa: E402

# ------------------------------------------------------------------ peers


def _try_import(name: str) -> tuple[Any, str]:
    try:
        mod = __import__(name)
    except Exception as e:  # ImportError, or a broken install
        return None, f"missing ({type(e).__name__})"
    try:
        from importlib.metadata import version

        return mod, version(name.replace("_", "-"))
    except Exception:
        return mod, getattr(mod, "__version__", "?")

jax, JAX_V = batch.jax, (batch.jax.__version__ if batch.jax is not None else "missing (ImportError)")
if jax is not None:
    import jax.numpy as jnp
dr = control_flow.dr
DR_V = _try_import("drjit")[1]
if dr is not None:
    from drjit.llvm.ad import Float64 as DFloat
torch, TORCH_V = _try_import("torch")
if torch is not None:
    torch.set_default_dtype(torch.float64)
numba, NUMBA_V = batch.numba, (batch.numba.__version__ if batch.numba is not None else "missing (ImportError)")
autograd, AUTOGRAD_V = _try_import("autograd")
if autograd is not None:
    import autograd.numpy as anp
micrograd, MICROGRAD_V = _try_import("micrograd")
num_dual, NUM_DUAL_V = _try_import("num_dual")

PEERS = {"JAX": JAX_V, "Dr.Jit": DR_V, "PyTorch": TORCH_V, "numba": NUMBA_V, "autograd": AUTOGRAD_V,
         "micrograd": MICROGRAD_V, "num-dual": NUM_DUAL_V}


# ------------------------------------------------------------------ workload records


@dataclass
class Impl:
    label: str
    fn: Callable[[], Any]
    wengert: bool = False
    status: str = ""  # "", "WRONG", "failed: ..."
    median: float = math.nan
    check_fn: Callable[[], Any] | None = None  # NumPy outputs, when fn is timed on a peer's own arrays


@dataclass
class Workload:
    key: str
    title: str
    unit: str  # what one "item" is: row, eval, op, step, ...
    per: float  # items per call (rows); times are reported per item
    scale: float  # seconds -> unit (1e9 for ns)
    unit_name: str
    rtol: float
    atol: float
    impls: list[Impl] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    bytes_per_item: float | None = None  # NumPy bytes in + out per row, for the bandwidth limit
    notes: list[str] = field(default_factory=list)

    def add(self, label: str, fn: Callable[[], Any], wengert: bool = False,
            check_fn: Callable[[], Any] | None = None) -> None:
        self.impls.append(Impl(label, fn, wengert, check_fn=check_fn))

    def miss(self, peer: str, why: str) -> None:
        self.missing.append((peer, why))


def _flat(out: Any) -> list[np.ndarray]:
    """Nested tuples/lists of arrays or numbers -> list of float arrays."""
    if isinstance(out, (tuple, list)):
        res: list[np.ndarray] = []
        for o in out:
            res.extend(_flat(o))
        return res
    if torch is not None and isinstance(out, torch.Tensor):
        out = out.detach().numpy()
    return [np.asarray(out, dtype=float)]


def check(w: Workload) -> int:
    """Compare every implementation's outputs with the first (wengert) one. Returns the
    number of disagreements; each is printed loudly and its row marked WRONG."""
    ref = _flat(w.impls[0].fn())
    bad = 0
    for im in w.impls[1:]:
        try:
            got = _flat((im.check_fn or im.fn)())
        except Exception as e:
            im.status = f"failed: {type(e).__name__}: {e}"[:160]
            print(f"  ERROR {w.key}: {im.label} raised {im.status}", flush=True)
            bad += 1
            continue
        why = ""
        if len(got) != len(ref):
            why = f"{len(got)} outputs, wengert gives {len(ref)}"
        else:
            for i, (a, b) in enumerate(zip(got, ref)):
                if a.shape != b.shape:
                    why = f"output {i}: shape {a.shape}, wengert {b.shape}"
                    break
                if not np.allclose(a, b, rtol=w.rtol, atol=w.atol):
                    err = np.max(np.abs(a - b) - w.rtol * np.abs(b))
                    why = f"output {i}: off by {err:.3g} beyond rtol={w.rtol:g}, atol={w.atol:g}"
                    break
        if why:
            im.status = "WRONG"
            bad += 1
            print(f"\n  ****** ERROR {w.key}: {im.label} DISAGREES WITH WENGERT: {why}; marked WRONG, not timed\n",
                  flush=True)
    return bad


def _calibrate(fn: Callable[[], Any], min_sample: float) -> int:
    """Calls per sample so that one sample lasts about min_sample seconds."""
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    if dt >= min_sample:
        return 1
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t
        if dt >= min_sample / 4 or n >= 1 << 20:
            break
        n *= 4
    return max(1, int(n * min_sample / max(dt, 1e-9)))


def time_workload(w: Workload, rounds: int, min_sample: float) -> None:
    live = [im for im in w.impls if not im.status]
    reps = {}
    for im in live:
        im.fn()  # warm-up
        reps[im.label] = _calibrate(im.fn, min_sample)
    samples: dict[str, list[float]] = {im.label: [] for im in live}
    for _ in range(rounds):
        for im in live:
            n = reps[im.label]
            t = time.perf_counter()
            for _ in range(n):
                im.fn()
            samples[im.label].append((time.perf_counter() - t) / n)
    for im in live:
        im.median = statistics.median(samples[im.label])


# ------------------------------------------------------------------ helpers for peers


def _jax_block(out: Any) -> Any:
    return jax.block_until_ready(out)


def _drjit_cols(X: np.ndarray) -> list[Any]:
    return [DFloat(np.ascontiguousarray(X[:, j])) for j in range(X.shape[1])]


# ------------------------------------------------------------------ workloads


def wl_eager_seed(quick: bool) -> Workload:
    """Griewank's seed example at (1.5, 0.5): value and full gradient, one point, eagerly."""
    w = Workload("eager_seed", "eager seed example f(1.5, 0.5): value + gradient", "eval", 1, 1e6, "us/eval",
                 1e-12, 1e-12)
    for label, make in eager.IMPLS:
        run = make(True)
        if run is None:
            why = "Value has no sin" if make is eager.micrograd_impl and micrograd is not None else "not installed"
            w.miss(label, why)
            continue
        w.add(label, run, wengert=label.startswith("wengert"))
    return w


def _two(a: Any, b: Any, sin: Any = wg.sin, exp: Any = wg.exp) -> Any:
    """benches/latency.py's two-argument scalar function."""
    return a * sin(b) + exp(a / b) - b * b


def wl_latency(quick: bool, case: str = "rosen16") -> Workload:
    """One-row value_and_grad calls, as benches/latency.py times them (the SciPy-optimiser
    case): a compiled function called on one point, JAX's jitted call, eager Var."""
    if case == "rosen16":
        x = np.linspace(-1.2, 1.3, 16)
        R = wg.compile(batch.rosen, shapes=[16])
        w = Workload("latency_rosen16", "one-row call: Rosenbrock-16 value_and_grad (one 16-vector)", "call", 1,
                     1e6, "us/call", 1e-12, 1e-12)
        w.add("wengert F.value_and_grad (compiled)", lambda: R.value_and_grad(x), wengert=True)
        w.add("wengert eager wg.value_and_grad (Var)", lambda: wg.value_and_grad(batch.rosen)(x), wengert=True)
        if jax is not None:
            jf = jax.jit(jax.value_and_grad(lambda v: jnp.sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2
                                                              + (1.0 - v[:-1]) ** 2)))
            w.add("JAX jit(value_and_grad)", lambda: _jax_block(jf(x)))
    else:
        a, b = 1.3, 0.7
        T = wg.compile(lambda p, q: _two(p, q))  # compile traces defaults too
        w = Workload("latency_two", "one-row call: a*sin(b) + exp(a/b) - b*b value_and_grad (two floats)", "call",
                     1, 1e6, "us/call", 1e-12, 1e-12)
        w.add("wengert F.value_and_grad (compiled)", lambda: T.value_and_grad(a, b, wrt=(0, 1)), wengert=True)
        w.add("wengert eager wg.value_and_grad (Var)", lambda: wg.value_and_grad(_two, wrt=(0, 1))(a, b),
              wengert=True)
        if jax is not None:
            jf2 = jax.jit(jax.value_and_grad(lambda p, q: _two(p, q, jnp.sin, jnp.exp), argnums=(0, 1)))
            w.add("JAX jit(value_and_grad)", lambda: _jax_block(jf2(a, b)))
    if jax is None:
        w.miss("JAX", JAX_V)
    return w


def wl_eager_free(quick: bool) -> Workload:
    """The sin- and exp-free variant g = (2 x1/x2 - x2^2)(x1/x2 - x2^2), which micrograd can run."""
    w = Workload("eager_free", "eager sin/exp-free variant g(1.5, 0.5): value + gradient", "eval", 1, 1e6,
                 "us/eval", 1e-12, 1e-12)
    for label, make in eager.IMPLS:
        run = make(False)
        if run is None:
            w.miss(label, "not installed")
            continue
        w.add(label, run, wengert=label.startswith("wengert"))
    return w


def wl_eager_chain(quick: bool, n_ops: int = 999) -> Workload:
    """Per-op cost of the chain y = y*0.999 + sin(y) (3 ops an iteration), value + derivative."""
    iters = n_ops // 3
    w = Workload("eager_chain", f"eager chain of {iters * 3} ops y = y*0.999 + sin(y): value + derivative", "op",
                 iters * 3, 1e9, "ns/op", 1e-12, 1e-15)

    def chain(y: Any, sin: Any) -> Any:
        for _ in range(iters):
            y = y * 0.999 + sin(y)
        return y

    def rev() -> Any:
        x = wg.Var(0.3)
        y = chain(x, wg.sin)
        y.backward()
        return y.value, x.grad

    def fwd() -> Any:
        y = chain(wg.Dual(0.3, 1.0), wg.sin)
        return y.value, y.tangent

    def tape() -> Any:
        x = pytape.Var(0.3)
        y = chain(x, pytape.sin)
        y.backward()
        return y.value, x.grad

    w.add("wengert Var + backward", rev, wengert=True)
    w.add("wengert Dual (one forward pass)", fwd, wengert=True)
    w.add("pure-Python tape", tape)
    if autograd is not None:
        vg = autograd.value_and_grad(lambda x: chain(x, anp.sin))
        w.add("autograd value_and_grad", lambda: tuple(map(float, vg(0.3))))
    else:
        w.miss("autograd", AUTOGRAD_V)
    if num_dual is not None:
        def nd_run() -> Any:
            y = chain(num_dual.Dual64(0.3, 1.0), lambda t: t.sin())
            return y.value, y.first_derivative
        w.add("num_dual Dual64", nd_run)
    else:
        w.miss("num-dual", NUM_DUAL_V)
    if micrograd is not None:
        w.miss("micrograd", "Value has no sin")
    else:
        w.miss("micrograd", MICROGRAD_V)
    w.notes.append("plain floats (no derivative) are timed separately as the floor")
    return w


def wl_seed(quick: bool, n: int | None = None) -> Workload:
    """Griewank's seed example, compiled, value + gradient over n rows."""
    n = n or (100_000 if quick else 1_000_000)
    rng = np.random.default_rng(0)
    x1, x2 = rng.uniform(1.0, 2.0, n), rng.uniform(0.5, 1.0, n)
    F = wg.compile(batch.griewank)
    w = Workload("seed", f"seed example f(x1, x2), {n:.0e} rows: value + gradient", "row", n, 1e9, "ns/row",
                 1e-12, 1e-12, bytes_per_item=8 * (2 + 3))
    w.add("wengert F.value_and_grad", lambda: F.value_and_grad(x1, x2, wrt=(0, 1)), wengert=True)

    def np_hand() -> Any:
        a = x1 / x2
        b = np.exp(x2)
        u = np.sin(a) + a - b
        v = a - b
        ca = np.cos(a) + 1.0
        da1, da2 = 1.0 / x2, -a / x2
        return u * v, ((ca * da1) * v + u * da1, (ca * da2 - b) * v + u * (da2 - b))

    w.add("NumPy hand-written", np_hand)
    if jax is not None:
        def fj(p: Any, q: Any) -> Any:
            a = p / q
            b = jnp.exp(q)
            return (jnp.sin(a) + a - b) * (a - b)

        jf = jax.jit(jax.vmap(jax.value_and_grad(fj, argnums=(0, 1))))
        j1, j2 = jnp.asarray(x1), jnp.asarray(x2)
        w.add("JAX jit(vmap(value_and_grad))", lambda: _jax_block(jf(j1, j2)))
    else:
        w.miss("JAX", JAX_V)
    if dr is not None:
        def dr_f(p: Any, q: Any) -> Any:
            a = p / q
            b = dr.exp(q)
            return (dr.sin(a) + a - b) * (a - b)

        def dr_np() -> Any:
            p, q = DFloat(x1), DFloat(x2)
            dr.enable_grad(p, q)
            y = dr_f(p, q)
            dr.backward(y)
            return y.numpy(), (p.grad.numpy(), q.grad.numpy())

        d1, d2 = DFloat(x1), DFloat(x2)

        def dr_own() -> Any:
            p, q = DFloat(d1), DFloat(d2)
            dr.enable_grad(p, q)
            y = dr_f(p, q)
            dr.backward(y)
            dr.eval(y, p.grad, q.grad)
            dr.sync_thread()  # the LLVM backend runs kernels asynchronously
            return y, (p.grad, q.grad)

        w.add("Dr.Jit (NumPy in and out)", dr_np)
        w.add("Dr.Jit (its own arrays)", dr_own, check_fn=lambda: _dr_numpy(dr_own()))
    else:
        w.miss("Dr.Jit", DR_V)
    if numba is not None:
        w.add("numba @njit(parallel) hand-written", lambda: batch.griewank_numba(x1, x2))
    else:
        w.miss("numba", NUMBA_V)
    if torch is not None:
        t1, t2 = torch.from_numpy(x1), torch.from_numpy(x2)

        def th() -> Any:
            p, q = t1.clone().requires_grad_(), t2.clone().requires_grad_()
            a = p / q
            b = torch.exp(q)
            y = (torch.sin(a) + a - b) * (a - b)
            y.sum().backward()
            return y, (p.grad, q.grad)

        w.add("PyTorch eager (grad of the row sum)", th)
    else:
        w.miss("PyTorch", TORCH_V)
    if autograd is not None:
        def ag_f(p: Any, q: Any) -> Any:
            a = p / q
            b = anp.exp(q)
            return (anp.sin(a) + a - b) * (a - b)

        agv = autograd.value_and_grad(lambda p, q: anp.sum(ag_f(p, q)), argnum=[0, 1])
        w.add("autograd (grad of the row sum)", lambda: (ag_f(x1, x2), agv(x1, x2)[1]))
    else:
        w.miss("autograd", AUTOGRAD_V)
    return w


def _dr_numpy(out: Any) -> Any:
    if isinstance(out, (tuple, list)):
        return tuple(_dr_numpy(o) for o in out)
    return out.numpy() if hasattr(out, "numpy") else out


def wl_rosen(quick: bool, n: int | None = None) -> Workload:
    """Rosenbrock on a 16-vector, value + gradient over n rows."""
    n = n or (20_000 if quick else 200_000)
    D = batch.D
    rng = np.random.default_rng(1)
    X = rng.uniform(-2.0, 2.0, (n, D))
    R = wg.compile(batch.rosen, shapes=[D])
    w = Workload("rosen16", f"Rosenbrock-16, {n:.0e} rows: value + gradient", "row", n, 1e9, "ns/row",
                 1e-12, 1e-9, bytes_per_item=8 * (16 + 1 + 16))
    w.add("wengert R.value_and_grad", lambda: R.value_and_grad(X), wengert=True)

    def np_hand() -> Any:
        t = X[:, 1:] - X[:, :-1] ** 2
        u = 1.0 - X[:, :-1]
        g = np.zeros_like(X)
        g[:, :-1] += -400 * t * X[:, :-1] - 2 * u
        g[:, 1:] += 200 * t
        return np.sum(100 * t * t + u * u, axis=1), g

    w.add("NumPy hand-written", np_hand)
    if jax is not None:
        def rj(x: Any) -> Any:
            return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

        jf = jax.jit(jax.vmap(jax.value_and_grad(rj)))
        jX = jnp.asarray(X)
        w.add("JAX jit(vmap(value_and_grad))", lambda: _jax_block(jf(jX)))
    else:
        w.miss("JAX", JAX_V)
    if dr is not None:
        def dr_f(xs: list[Any]) -> Any:
            s = 0.0
            for i in range(D - 1):
                s = s + 100.0 * dr.square(xs[i + 1] - xs[i] * xs[i]) + dr.square(1.0 - xs[i])
            return s

        def dr_np() -> Any:
            xs = _drjit_cols(X)
            dr.enable_grad(*xs)
            y = dr_f(xs)
            dr.backward(y)
            return y.numpy(), np.stack([x.grad.numpy() for x in xs], axis=1)

        cols = _drjit_cols(X)

        def dr_own() -> Any:
            xs = [DFloat(c) for c in cols]
            dr.enable_grad(*xs)
            y = dr_f(xs)
            dr.backward(y)
            gs = [x.grad for x in xs]
            dr.eval(y, *gs)
            dr.sync_thread()  # the LLVM backend runs kernels asynchronously
            return y, gs

        w.add("Dr.Jit (NumPy in and out)", dr_np)
        def dr_own_np() -> Any:
            y, gs = dr_own()
            return y.numpy(), np.stack([g.numpy() for g in gs], axis=1)

        w.add("Dr.Jit (its own arrays)", dr_own, check_fn=dr_own_np)
    else:
        w.miss("Dr.Jit", DR_V)
    if numba is not None:
        w.add("numba @njit(parallel) hand-written", lambda: batch.rosen_numba(X))
    else:
        w.miss("numba", NUMBA_V)
    if torch is not None:
        tX = torch.from_numpy(X)

        def th() -> Any:
            x = tX.clone().requires_grad_()
            y = torch.sum(100.0 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1.0 - x[:, :-1]) ** 2, dim=1)
            y.sum().backward()
            return y, x.grad

        w.add("PyTorch eager (grad of the row sum)", th)
    else:
        w.miss("PyTorch", TORCH_V)
    if autograd is not None:
        def ar(x: Any) -> Any:
            return anp.sum(100.0 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1.0 - x[:, :-1]) ** 2, axis=1)

        ag = autograd.grad(lambda x: anp.sum(ar(x)))
        w.add("autograd (grad of the row sum)", lambda: (ar(X), ag(X)))
    else:
        w.miss("autograd", AUTOGRAD_V)
    return w


def wl_rbf(quick: bool) -> Workload:
    """RBF regression: summed loss over n rows and its gradient wrt theta (33 parameters)."""
    n = 10_000 if quick else 100_000
    K = batch.K
    rng = np.random.default_rng(2)
    x = rng.uniform(-3.0, 3.0, n)
    y = np.sin(2.0 * x) + 0.1 * rng.standard_normal(n)
    theta = np.concatenate([rng.normal(0, 0.5, K), np.linspace(-3, 3, K), [-0.5]])
    L = wg.compile(batch.rbf_loss, shapes=[2 * K + 1, (), ()])
    w = Workload("rbf", f"RBF regression, 16 bases, {n:.0e} rows: summed loss + gradient (33)", "row", n, 1e9,
                 "ns/row", 1e-9, 1e-9, bytes_per_item=8 * 2)
    w.add("wengert L.value_and_grad(reduce='sum')", lambda: L.value_and_grad(theta, x, y, wrt=0, reduce="sum"),
          wengert=True)

    def np_hand() -> Any:
        wk, c, s = theta[:K], theta[K:2 * K], theta[2 * K]
        q = np.exp(-2 * s) / 2
        d = x[:, None] - c[None, :]
        e = np.exp(-(d * d) * q)
        r = e @ wk - y
        tr = 2 * r
        gw = tr @ e
        we = e * wk[None, :]
        gc = tr @ (we * d) * (2 * q)
        gs = tr @ (we * d * d).sum(1) * (2 * q)
        return np.sum(r * r), np.concatenate([gw, gc, [gs]])

    w.add("NumPy hand-written", np_hand)
    if jax is not None:
        def lj(th: Any, xx: Any, yy: Any) -> Any:
            wk, c, s = th[:K], th[K:2 * K], th[2 * K]
            q = jnp.exp(-2 * s) / 2
            pred = (wk[None, :] * jnp.exp(-((xx[:, None] - c[None, :]) ** 2) * q)).sum(1)
            return jnp.sum((pred - yy) ** 2)

        jf = jax.jit(jax.value_and_grad(lj))
        jt, jx, jy = jnp.asarray(theta), jnp.asarray(x), jnp.asarray(y)
        w.add("JAX jit(value_and_grad(summed loss))", lambda: _jax_block(jf(jt, jx, jy)))
    else:
        w.miss("JAX", JAX_V)
    if dr is not None:
        dx, dy = DFloat(x), DFloat(y)

        def dr_run() -> Any:
            th = [DFloat(float(t)) for t in theta]
            dr.enable_grad(*th)
            q = dr.exp(-2.0 * th[2 * K]) * 0.5
            pred = 0.0
            for k in range(K):
                d = dx - th[K + k]
                pred = pred + th[k] * dr.exp(-(d * d) * q)
            r = pred - dy
            loss = dr.sum(r * r)
            dr.backward(loss)
            return loss.numpy()[0], np.array([t.grad.numpy()[0] for t in th])

        w.add("Dr.Jit (summed loss, backward)", dr_run)
    else:
        w.miss("Dr.Jit", DR_V)
    if numba is not None:
        w.add("numba @njit(parallel) hand-written", lambda: batch.rbf_numba(theta, x, y))
    else:
        w.miss("numba", NUMBA_V)
    return w


def _rosen_hessian_np(X: np.ndarray) -> np.ndarray:
    """Closed-form Hessian of Rosenbrock-16 per row (tridiagonal)."""
    n, d = X.shape
    H = np.zeros((n, d, d))
    i = np.arange(d - 1)
    H[:, i, i] += 1200 * X[:, :-1] ** 2 - 400 * X[:, 1:] + 2
    H[:, i + 1, i + 1] += 200
    H[:, i, i + 1] = -400 * X[:, :-1]
    H[:, i + 1, i] = -400 * X[:, :-1]
    return H


def _rosen_hvp_np(X: np.ndarray, V: np.ndarray) -> np.ndarray:
    a = X[:, :-1]
    out = np.zeros_like(X)
    out[:, :-1] += (1200 * a * a - 400 * X[:, 1:] + 2) * V[:, :-1] - 400 * a * V[:, 1:]
    out[:, 1:] += 200 * V[:, 1:] - 400 * a * V[:, :-1]
    return out


def wl_hessian(quick: bool, hvp: bool = False) -> Workload:
    n = 2_000 if quick else 10_000
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (n, 16))
    V = rng.normal(size=(n, 16))
    R = wg.compile(rosen_h, shapes=[16])
    what = "hvp" if hvp else "Hessian"
    w = Workload("hvp" if hvp else "hessian", f"batch {what} of Rosenbrock-16, {n:.0e} rows", "row", n, 1e6,
                 "us/row", 1e-12, 1e-9, bytes_per_item=8 * (32 + 16) if hvp else 8 * (16 + 256))
    if hvp:
        w.add("wengert F.hvp", lambda: R.hvp(X, v=V), wengert=True)
        w.add("NumPy hand-written (closed form)", lambda: _rosen_hvp_np(X, V))
    else:
        w.add("wengert F.hessian", lambda: R.hessian(X), wengert=True)
        w.add("NumPy hand-written (closed form)", lambda: _rosen_hessian_np(X))
    if jax is not None:
        def jrosen(x: Any) -> Any:
            return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

        JX, JV = jnp.asarray(X), jnp.asarray(V)
        if hvp:
            jh = jax.jit(jax.vmap(lambda x, v: jax.jvp(jax.grad(jrosen), (x,), (v,))[1]))
            w.add("JAX jit(vmap(jvp of grad))", lambda: _jax_block(jh(JX, JV)))
        else:
            jh2 = jax.jit(jax.vmap(jax.hessian(jrosen)))
            w.add("JAX jit(vmap(hessian))", lambda: _jax_block(jh2(JX)))
    else:
        w.miss("JAX", JAX_V)
    if torch is not None and hvp:
        tX, tV = torch.from_numpy(X), torch.from_numpy(V)

        def th() -> Any:
            x = tX.clone().requires_grad_()
            y = torch.sum(100.0 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1.0 - x[:, :-1]) ** 2)
            (g,) = torch.autograd.grad(y, x, create_graph=True)
            (hv,) = torch.autograd.grad(g, x, grad_outputs=tV)
            return hv

        w.add("PyTorch double backward", th)
    elif torch is None:
        w.miss("PyTorch", TORCH_V)
    w.miss("Dr.Jit", "not written (forward over reverse per row)")
    if numba is None:
        w.miss("numba", NUMBA_V + " (closed form: see NumPy hand-written)")
    return w


def wl_piecewise(quick: bool) -> Workload:
    n = 100_000 if quick else 1_000_000
    X = np.random.default_rng(0).uniform(-1.0, 1.0, n)
    G, W = wg.compile(control_flow.branchy), wg.compile(control_flow.selected)
    w = Workload("piecewise", f"piecewise sin(x)*x | exp(x)-1, {n:.0e} rows: value + gradient", "row", n, 1e9,
                 "ns/row", 1e-12, 1e-15, bytes_per_item=8 * 3)
    w.add("wengert if (per row)", lambda: G.value_and_grad(X), wengert=True)
    w.add("wengert wg.where", lambda: W.value_and_grad(X), wengert=True)

    def np_hand() -> Any:
        pos = X > 0
        s = np.sin(X)
        e = np.exp(X)
        return np.where(pos, s * X, e - 1), np.where(pos, np.cos(X) * X + s, e)

    w.add("NumPy hand-written (np.where)", np_hand)
    if jax is not None:
        def pj(x: Any) -> Any:
            return jnp.where(x > 0, jnp.sin(x) * x, jnp.exp(x) - 1)

        jf = jax.jit(jax.vmap(jax.value_and_grad(pj)))
        jX = jnp.asarray(X)
        w.add("JAX jit(vmap(value_and_grad)) jnp.where", lambda: _jax_block(jf(jX)))
    else:
        w.miss("JAX", JAX_V)
    dj = control_flow.drjit_fn()
    if dj is not None:
        w.add("Dr.Jit @dr.syntax if (NumPy in and out)", lambda: dj[1](X))
    else:
        w.miss("Dr.Jit", DR_V)
    return w


def wl_mlp(quick: bool) -> Workload:
    import mlp_moons as mm

    rng = np.random.default_rng(1)
    x, y = mm.two_moons(200, 0.1, rng)
    p0 = mm.init_params(rng)
    n = len(y)
    L = wg.compile(lambda p, xi, yi: mm.bce(mm.logit(p, xi), yi), shapes=[mm.P, 2, ()])
    w = Workload("mlp", "2-16-16-1 MLP, 200 points: one training step (mean loss + gradient, 337 params)", "step",
                 1, 1e3, "ms/step", 1e-10, 1e-12)
    w.add("wengert compiled L.value_and_grad(reduce='mean')",
          lambda: L.value_and_grad(p0, x, y, wrt=0, reduce="mean"), wengert=True)

    def eager_step() -> Any:
        params = wg.vars(p0)
        z = mm.logit(params, x)
        loss = sum(mm.bce(zi, yi) for zi, yi in zip(z, y)) / n
        loss.backward()
        return loss.value, wg.grads(params)

    w.add("wengert eager Var (fresh graph per step)", eager_step, wengert=True)

    def np_hand() -> Any:
        layers = mm.split(p0)
        hs, h = [x], x
        for j, (Wm, b) in enumerate(layers):
            h = h @ Wm + b
            if j < len(layers) - 1:
                h = np.tanh(h)
            hs.append(h)
        z = h[:, 0]
        loss = np.mean(np.logaddexp(0.0, z) - y * z)
        dz = (1.0 / (1.0 + np.exp(-z)) - y) / n
        d = dz[:, None]
        grads = []
        for j in range(len(layers) - 1, -1, -1):
            Wm, _ = layers[j]
            grads.append(((hs[j].T @ d).ravel(), d.sum(0)))
            if j:
                d = (d @ Wm.T) * (1 - hs[j] ** 2)
        return loss, np.concatenate([np.concatenate(g) for g in grads[::-1]])

    w.add("NumPy hand-written backprop (matmul)", np_hand)

    def generic_logit(p: Any, xx: Any, tanh: Any) -> Any:
        h, i = xx, 0
        for j, (m, k) in enumerate(mm.SHAPES):
            h = h @ p[i:i + m * k].reshape(m, k) + p[i + m * k:i + m * k + k]
            i += m * k + k
            if j < len(mm.SHAPES) - 1:
                h = tanh(h)
        return h[:, 0]

    if jax is not None:
        def jl(p: Any, xx: Any, yy: Any) -> Any:
            z = generic_logit(p, xx, jnp.tanh)
            return jnp.mean(jnp.logaddexp(0.0, z) - yy * z)

        jf = jax.jit(jax.value_and_grad(jl))
        jp, jx, jy = jnp.asarray(p0), jnp.asarray(x), jnp.asarray(y)
        w.add("JAX jit(value_and_grad) (matmul)", lambda: _jax_block(jf(jp, jx, jy)))
    else:
        w.miss("JAX", JAX_V)
    if torch is not None:
        tx, ty, tp = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(p0)

        def th() -> Any:
            p = tp.clone().requires_grad_()
            z = generic_logit(p, tx, torch.tanh)
            loss = torch.mean(torch.nn.functional.softplus(z) - ty * z)
            loss.backward()
            return loss, p.grad

        w.add("PyTorch eager (matmul)", th)
    else:
        w.miss("PyTorch", TORCH_V)
    if autograd is not None:
        def al(p: Any) -> Any:
            z = generic_logit(p, x, anp.tanh)
            return anp.mean(anp.logaddexp(0.0, z) - y * z)

        avg = autograd.value_and_grad(al)
        w.add("autograd value_and_grad (matmul)", lambda: avg(p0))
    else:
        w.miss("autograd", AUTOGRAD_V)
    w.miss("micrograd", "Value has no tanh or exp" if micrograd is not None else MICROGRAD_V)
    w.miss("Dr.Jit", "not written")
    return w


def long_fn(iters: int) -> Callable[[Any], Any]:
    """The long function: `iters` steps of s = sin(s)*x + s*0.5 - x/(s*s+1) (8 ops a step,
    the function of benches/batch.py's compile-time test)."""

    def f(x: Any, sin: Any = wg.sin) -> Any:
        s = x
        for _ in range(iters):
            s = sin(s) * x + s * 0.5 - x / (s * s + 1)
        return s

    return f


LONG_ITERS = 341  # 2,728 instructions after tracing: the size of the long function (2,729)


def wl_long(quick: bool) -> Workload:
    iters = 40 if quick else LONG_ITERS
    n = 10_000 if quick else 100_000
    f = long_fn(iters)
    X = np.random.default_rng(3).uniform(0.1, 0.6, n)
    F = wg.compile(lambda x: f(x))
    w = Workload("long", f"long function ({F.n_instructions} instructions), {n:.0e} rows: value + gradient", "row",
                 n, 1e6, "us/row", 1e-9, 1e-12)
    w.add("wengert F.value_and_grad", lambda: F.value_and_grad(X), wengert=True)

    def np_hand() -> Any:
        out_v, out_g = np.empty(n), np.empty(n)
        for lo in range(0, n, 8192):  # chunks keep the stored steps in cache
            x = X[lo:lo + 8192]
            s, ss = x, []
            for _ in range(iters):
                ss.append(s)
                q = s * s + 1
                s = np.sin(s) * x + s * 0.5 - x / q
            # reverse sweep: ds/ds_prev and the direct d/dx of every step
            gs, gx = np.ones_like(x), np.zeros_like(x)
            for sp in reversed(ss):
                q = sp * sp + 1
                gx += gs * (np.sin(sp) - 1 / q)
                gs = gs * (np.cos(sp) * x + 0.5 + x * 2 * sp / (q * q))
            out_v[lo:lo + 8192], out_g[lo:lo + 8192] = s, gx + gs
        return out_v, out_g

    w.add("NumPy hand-written adjoint (8192-row chunks)", np_hand)
    if jax is not None:
        # The unrolled trace took XLA 6 minutes to compile here (2026-12-02, loaded machine),
        # so JAX gets the loop as lax.fori_loop, its own way of writing it.
        def fj(x: Any) -> Any:
            return jax.lax.fori_loop(0, iters, lambda _, s: jnp.sin(s) * x + s * 0.5 - x / (s * s + 1), x)

        jf = jax.jit(jax.vmap(jax.value_and_grad(fj)))
        jX = jnp.asarray(X)
        t = time.perf_counter()
        _jax_block(jf(jX))
        w.notes.append(f"JAX first call (compile) {time.perf_counter() - t:.1f} s")
        w.add("JAX jit(vmap(value_and_grad)), lax.fori_loop", lambda: _jax_block(jf(jX)))
    else:
        w.miss("JAX", JAX_V)
    if dr is not None:
        def dr_np() -> Any:
            x = DFloat(X)
            dr.enable_grad(x)
            y = f(x, dr.sin)
            dr.backward(y)
            return y.numpy(), x.grad.numpy()

        w.add("Dr.Jit (NumPy in and out)", dr_np)
    else:
        w.miss("Dr.Jit", DR_V)
    w.value_only = lambda: F(X)  # type: ignore[attr-defined]
    w.rows, w.steps = X, iters  # type: ignore[attr-defined]
    w.n_instr = F.n_instructions  # type: ignore[attr-defined]
    return w


WORKLOADS: list[tuple[str, Callable[[bool], Workload]]] = [
    ("latency_rosen16", lambda q: wl_latency(q, "rosen16")),
    ("latency_two", lambda q: wl_latency(q, "two")),
    ("eager_seed", wl_eager_seed),
    ("eager_free", wl_eager_free),
    ("eager_chain", wl_eager_chain),
    ("seed", wl_seed),
    ("rosen16", wl_rosen),
    ("rbf", wl_rbf),
    ("hessian", lambda q: wl_hessian(q, hvp=False)),
    ("hvp", lambda q: wl_hessian(q, hvp=True)),
    ("piecewise", wl_piecewise),
    ("mlp", wl_mlp),
    ("long", wl_long),
]


# ------------------------------------------------------------------ machine and limits


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {}
    try:
        import subprocess

        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU family", "Model", "CPU(s)", "Thread(s) per core"):
                info[k.strip()] = v.strip()
    except Exception as e:
        info["lscpu"] = f"unavailable ({e})"
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
        info["ISA"] = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512dq", "avx512vl") if f in flags) or "none"
    except (OSError, StopIteration):
        info["ISA"] = "unknown"
    info["load average at start"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    info["wengert threads"] = wg.get_num_threads()
    if dr is not None:
        info["Dr.Jit threads"] = dr.thread_count()
    info["python"] = sys.version.split()[0]
    info["numpy"] = np.__version__
    info["wengert"] = str(Path(wg.__file__).parent)
    return info


def copy_rate() -> float:
    """Measured NumPy copy rate in bytes moved (read + written) per second, 64 MB arrays."""
    src = np.ones(8_000_000)
    dst = np.empty_like(src)
    ts = []
    for _ in range(9):
        t = time.perf_counter()
        np.copyto(dst, src)
        ts.append(time.perf_counter() - t)
    return 2 * src.nbytes / statistics.median(ts)


CHAIN_OPS: dict[str, Callable[[Any], Any]] = {
    "sin": wg.sin,
    "mul": lambda v: v * 1.0000001,
    "add": lambda v: v + 1e-3,
    "div": lambda v: v / 1.0000001,
}


def op_rates(X: np.ndarray, length: int = 64) -> dict[str, tuple[float, float]]:
    """wengert's own throughput per instruction of each kind in the long function's mix:
    a compiled chain of `length` ops of one kind over the same rows, seconds per op per
    row, (value, value + gradient). Loads and stores are spread over the chain, so this is
    the per-instruction rate a long program of such ops could reach."""
    res = {}
    for k, op in CHAIN_OPS.items():
        def chain(x: Any, op: Any = op) -> Any:
            for _ in range(length):
                x = op(x)
            return x

        C = wg.compile(lambda x: chain(x))
        tv = statistics.median(_samples(lambda: C(X), 7))
        tg = statistics.median(_samples(lambda: C.value_and_grad(X), 7))
        res[k] = (tv / length / X.size, tg / length / X.size)
    return res


# ------------------------------------------------------------------ main


def fmt_time(t: float) -> str:
    if not math.isfinite(t):
        return "-"
    return f"{t:.3g}" if t < 100 else f"{t:.0f}"


def main(argv: list[str] | None = None) -> int:
    args = ARGS if argv is None and "ARGS" in globals() else _early_args(argv or [])
    if args.threads:
        wg.set_num_threads(args.threads)
        if dr is not None:
            dr.set_thread_count(args.threads)
        if numba is not None:
            numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    info = machine()
    print("# wengert benchmarks" + (" (--check: agreement only)" if args.check else "")
          + (" --quick" if args.quick else ""))
    print()
    for k, v in info.items():
        print(f"- {k}: {v}")
    print("- peers: " + ", ".join(f"{k} {v}" for k, v in PEERS.items()))
    print()
    only = [s for s in args.only.split(",") if s]
    rounds = 3 if args.quick else 9
    min_sample = 0.01 if args.quick else 0.05
    results, wrong = [], 0
    t_start = time.perf_counter()
    for key, make in WORKLOADS:
        if only and key not in only:
            continue
        t0 = time.perf_counter()
        try:
            w = make(args.quick)
        except Exception as e:
            print(f"  ERROR {key}: setting up failed: {type(e).__name__}: {e}", flush=True)
            wrong += 1
            continue
        wrong += check(w)
        if not args.check:
            time_workload(w, rounds, min_sample)
            if key == "eager_chain":
                # Timed here, not at the end: after JAX's calls XLA's idle threads spin for
                # a while and took the cores from it (57 against 12.5 ns/op).
                iters = int(w.per) // 3

                def plain() -> float:
                    y = 0.3
                    for _ in range(iters):
                        y = y * 0.999 + math.sin(y)
                    return y

                w.plain_ns = statistics.median(_samples(plain, 7, 20)) / w.per * 1e9  # type: ignore[attr-defined]
        print(f"  {key}: {len(w.impls)} implementations, "
              f"{sum(1 for i in w.impls if i.status)} wrong, {time.perf_counter() - t0:.1f} s", flush=True)
        results.append(w)
    print(f"\n({time.perf_counter() - t_start:.0f} s)\n")

    rows_json = []
    for w in results:
        ref = next((i for i in w.impls if i.wengert and not i.status), None)
        print(f"### {w.title}")
        print()
        print(f"tolerances: rtol={w.rtol:g}, atol={w.atol:g}" + "".join(f"; {n}" for n in w.notes))
        print()
        if args.check:
            print("| implementation | agrees with wengert |")
            print("|---|---|")
            for im in w.impls:
                print(f"| {im.label} | {'reference' if im is w.impls[0] else (im.status or 'yes')} |")
        else:
            print(f"| implementation | {w.unit_name} (median) | wengert / peer |")
            print("|---|---|---|")
            for im in w.impls:
                t = im.median / w.per * w.scale
                if im.status:
                    cell, ratio = im.status, "-"
                else:
                    cell = fmt_time(t)
                    ratio = f"{ref.median / im.median:.2f}" if ref is not None and im is not ref else "1"
                print(f"| {im.label} | {cell} | {ratio} |")
                rows_json.append({"workload": w.key, "impl": im.label, "unit": w.unit_name, "time": t,
                                  "status": im.status, "per": w.per})
        for peer, why in w.missing:
            print(f"| {peer} | {why} | - |" if not args.check else f"| {peer} | {why} |")
        print()
    limits: dict[str, Any] = {}
    if not args.check and results:
        rate = copy_rate()
        limits["copy_GBps"] = rate / 1e9
        print(f"### Limits (measured: NumPy copy of 64 MB moves {rate / 1e9:.1f} GB/s, read + write)")
        print()
        if any(w.bytes_per_item for w in results):
            print("| workload | bytes in + out per row | copy-rate limit ns/row | wengert ns/row | wengert / limit |")
            print("|---|---|---|---|---|")
        for w in results:
            # One line per wengert implementation (piecewise has two: `if` and `where`);
            # the JSON keeps the first, as before.
            refs = [i for i in w.impls if i.wengert and not i.status]
            if not (w.bytes_per_item and refs and w.unit == "row"):
                continue
            lim = w.bytes_per_item / rate * 1e9
            for ref in refs:
                t = ref.median / w.per * 1e9
                limits.setdefault(w.key, {"bytes": w.bytes_per_item, "limit_ns": lim, "wengert_ns": t})
                label = w.key if len(refs) == 1 else f"{w.key}: {ref.label}"
                print(f"| {label} | {w.bytes_per_item:.0f} | {lim:.2f} | {t:.3g} | {t / lim:.1f} |")
        lw = next((w for w in results if w.key == "long"), None)
        if lw is not None and hasattr(lw, "value_only"):
            r = op_rates(lw.rows)  # type: ignore[attr-defined]
            steps = lw.steps  # type: ignore[attr-defined]
            mix = {"sin": 1, "mul": 3, "add": 3, "div": 1}  # a step: sin, 3 mul, 2 add + 1 sub, div
            lim_v = steps * sum(c * r[k][0] for k, c in mix.items())
            lim_g = steps * sum(c * r[k][1] for k, c in mix.items())
            tv = statistics.median(_samples(lw.value_only, 5)) / lw.per  # type: ignore[attr-defined]
            tg = lw.impls[0].median / lw.per
            print()
            print(f"Long function: {lw.n_instr} instructions ({steps} steps of 8 ops). "  # type: ignore[attr-defined]
                  "wengert's own rate per instruction, compiled chains of 64 ops of one kind over the same "
                  "rows (ns, value / value + gradient): "
                  + ", ".join(f"{k} {v[0] * 1e9:.2f} / {v[1] * 1e9:.2f}" for k, v in r.items()))
            print(f"value only: op-mix limit {lim_v * 1e6:.3f} us/row, wengert {tv * 1e6:.3f} ({tv / lim_v:.1f}x); "
                  f"value + gradient: limit {lim_g * 1e6:.3f}, wengert {tg * 1e6:.3f} ({tg / lim_g:.1f}x)")
            limits["long"] = {"ops_ns": {k: [v[0] * 1e9, v[1] * 1e9] for k, v in r.items()},
                              "limit_value_us": lim_v * 1e6, "wengert_value_us": tv * 1e6,
                              "limit_grad_us": lim_g * 1e6, "wengert_grad_us": tg * 1e6}
        eg = next((w for w in results if w.key == "eager_chain"), None)
        if eg is not None and hasattr(eg, "plain_ns"):
            print(f"\nEager chain floor: plain Python floats {eg.plain_ns:.1f} ns/op (no derivative), "  # type: ignore[attr-defined]
                  "timed right after the chain")
            limits["plain_float_ns_op"] = eg.plain_ns  # type: ignore[attr-defined]
        print()
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "rows": rows_json, "limits": limits,
                                               "quick": args.quick, "threads": wg.get_num_threads()}, indent=1))
    if wrong:
        print(f"****** {wrong} DISAGREEMENT(S) OR FAILURE(S): see the ERROR lines above ******")
        return 1
    print("every installed peer agrees with wengert" + ("" if args.check else " (checked before timing)"))
    return 0


def _samples(fn: Callable[[], Any], k: int, reps: int = 1) -> list[float]:
    fn()
    out = []
    for _ in range(k):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        out.append((time.perf_counter() - t) / reps)
    return out


if __name__ == "__main__":
    sys.exit(main())
