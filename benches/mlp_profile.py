"""The MLP training step of `benches/run.py` on its own, for a profiler, and the size of
its eager graph.

    python benches/mlp_profile.py [STEPS]
    WENGERT_NUM_THREADS=1 valgrind --tool=callgrind --callgrind-out-file=mlp.cg \\
        python3.11 benches/mlp_profile.py 20     # then: callgrind_annotate mlp.cg

Prints the compiled program's instructions per row, the eager graph's nodes per step
(`Var` operator calls, what `run.py`'s eager row divides into), and ms per compiled step
(best of STEPS; a profile needs the real interpreter binary, not a pyenv shim).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import mlp_moons as mm  # noqa: E402

import wengert as wg  # noqa: E402
from wengert import _core  # noqa: E402


def main(steps: int) -> None:
    rng = np.random.default_rng(1)  # the data and parameters of run.py's `mlp` workload
    x, y = mm.two_moons(200, 0.1, rng)
    p0 = mm.init_params(rng)
    L = wg.compile(lambda p, xi, yi: mm.bce(mm.logit(p, xi), yi), shapes=[mm.P, 2, ()])
    L.value_and_grad(p0, x, y, wrt=0, reduce="mean")
    print(f"compiled program: {L.n_instructions} instructions per row")

    params = wg.vars(p0)
    before = _core.tape_size()
    z = mm.logit(params, x)
    loss = sum(mm.bce(zi, yi) for zi, yi in zip(z, y)) / len(y)
    print(f"eager step: {_core.tape_size() - before} graph nodes (value {loss.value:.6g})")

    best = float("inf")
    for _ in range(steps):
        t = time.perf_counter()
        L.value_and_grad(p0, x, y, wrt=0, reduce="mean")
        best = min(best, time.perf_counter() - t)
    print(f"compiled step: {best * 1e3:.3f} ms (best of {steps})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
