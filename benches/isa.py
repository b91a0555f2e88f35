"""The interpreter's kernel builds side by side: AVX2 + FMA against AVX-512 (and portable).

    python benches/isa.py [--quick]

Each workload at one thread, interpreter only (WENGERT_JIT=0) and as left to itself
(WENGERT_JIT unset: native code where `jit::worthwhile` says it pays), under each build
this CPU has (WENGERT_ISA caps the choice; every build gives the same bits). Best of
rounds, ms; ratios are what count (one run, same machine). Build the extension with fat
LTO (`maturin develop --release`): the interpreter's math needs it.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

import wengert as wg
from wengert import _core

QUICK = "--quick" in sys.argv
N = 100_000 if QUICK else 1_000_000
ROUNDS = 3 if QUICK else 7


def best(f):
    f()
    times = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, N), rng.uniform(-1, 1, N)
    xr = rng.uniform(-2, 2, (N // 5, 16))
    where = wg.compile(lambda x: wg.where(x > 0, wg.sin(x) * x, wg.exp(x) - 1))
    seed = wg.compile(lambda x, y: wg.tanh(x * y) + wg.exp(-x * x) * wg.log1p(y * y))
    griewank = wg.compile(lambda x, y: 1 + (x * x + y * y) / 4000 - wg.cos(x) * wg.cos(y / wg.sqrt(2.0)))
    rosen = wg.compile(
        lambda v: sum(100 * (v[i + 1] - v[i] ** 2) ** 2 + (1 - v[i]) ** 2 for i in range(15)), shapes=[16]
    )
    cases = [
        ("piecewise where, value", lambda: where(x)),
        ("piecewise where, value+grad", lambda: where.value_and_grad(x)),
        ("tanh/exp/log1p, value+grad", lambda: seed.value_and_grad(x, y)),
        ("Griewank, value+grad", lambda: griewank.value_and_grad(x, y)),
        (f"Rosenbrock-16 ({N // 5} rows), value+grad", lambda: rosen.value_and_grad(xr)),
    ]
    os.environ.pop("WENGERT_ISA", None)
    _core._reload_settings()
    isas = ["portable", "avx2", "avx512"]
    have = isas[: isas.index(_core._engine_settings()[1]) + 1]
    wg.set_num_threads(1)
    load = os.getloadavg()[0]
    print(f"{N} rows, 1 thread, load average {load:.2f}; builds {', '.join(have)} (ms, best of {ROUNDS})")
    print("| workload | engine | " + " | ".join(have) + " | " + " | ".join(f"{b}/{have[-1]}" for b in have[:-1]) + " |")
    print("|---" * (2 + 2 * len(have) - 1) + "|")
    for name, f in cases:
        for jit in ("0", None):
            if jit is None:
                os.environ.pop("WENGERT_JIT", None)
            else:
                os.environ["WENGERT_JIT"] = jit
            row = []
            for isa in have:
                os.environ["WENGERT_ISA"] = isa
                _core._reload_settings()
                row.append(best(f))
            engine = "interpreter" if jit == "0" else "auto"
            ratios = " | ".join(f"{t / row[-1]:.2f}" for t in row[:-1])
            print(f"| {name} | {engine} | " + " | ".join(f"{t * 1e3:.2f}" for t in row) + f" | {ratios} |")
    os.environ.pop("WENGERT_JIT", None)
    os.environ.pop("WENGERT_ISA", None)
    _core._reload_settings()


if __name__ == "__main__":
    main()
