"""``python -m wengert``: the seed examples, computed and timed."""

from __future__ import annotations

import timeit

import wengert as wg


def griewank(x1, x2):  # type: ignore[no-untyped-def]
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


if __name__ == "__main__":
    main()
