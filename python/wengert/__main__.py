"""``python -m wengert``: the seed examples, computed and timed."""

from __future__ import annotations

import time
import timeit
from typing import Any

import numpy as np

import wengert as wg


def griewank(x1: Any, x2: Any) -> Any:
    """Griewank's example: (sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))."""
    return (wg.sin(x1 / x2) + x1 / x2 - wg.exp(x2)) * (x1 / x2 - wg.exp(x2))


def eager_gradient(a: float, b: float) -> tuple[float, float, float]:
    x1, x2 = wg.Var(a), wg.Var(b)
    y = griewank(x1, x2)
    y.backward()
    return y.value, x1.grad, x2.grad


def main() -> None:
    value, g1, g2 = eager_gradient(1.5, 0.5)
    print("Griewank's example f(x1, x2) = (sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))")
    print(f"  reverse mode (Var) at (1.5, 0.5): value {value:.15g}, gradient ({g1:.15g}, {g2:.15g})")
    d = griewank(wg.Dual(1.5, 1.0), wg.Dual(0.5))
    print(f"  forward mode (Dual), d/dx1:       value {d.value:.15g}, tangent {d.tangent:.15g}")
    n = 20000
    t = min(timeit.repeat(lambda: eager_gradient(1.5, 0.5), number=n, repeat=5)) / n
    print(f"  eager value + full gradient: {t * 1e6:.2f} us per evaluation")

    # The same function compiled once and evaluated over a batch of rows.
    rows = 1_000_000
    F = wg.compile(griewank)
    rng = np.random.default_rng(0)
    x1, x2 = rng.uniform(1.0, 2.0, rows), rng.uniform(0.5, 1.0, rows)
    v, (d1, d2) = F.value_and_grad(x1, x2, wrt=(0, 1))
    print(f"compiled ({F.n_instructions} instructions), {rows:,} rows, {wg.get_num_threads()} threads:")
    best = min(_timed(lambda: F.value_and_grad(x1, x2, wrt=(0, 1))) for _ in range(5))
    print(f"  value + full gradient: {best / rows * 1e9:.1f} ns per row ({rows / best / 1e6:.0f} M rows/s)")
    best = min(_timed(lambda: F(x1, x2)) for _ in range(5))
    print(f"  value only:            {best / rows * 1e9:.1f} ns per row")
    one = F.value_and_grad(1.5, 0.5, wrt=(0, 1))
    print(f"  row (1.5, 0.5): value {one[0]:.15g}, gradient ({one[1][0]:.15g}, {one[1][1]:.15g})")


def _timed(f) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
