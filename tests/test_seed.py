"""The worked examples from the literature, through the eager reverse tape: every value and
partial to 1e-13 relative against mpmath at 50 digits (mpmath.diff, high-precision
central differences), plus the digits the literature states."""

import math

import mpmath
import pytest

import wengert as wg

REL = 1e-13


def close(a, b):
    return a == pytest.approx(b, rel=REL, abs=0.0)


def mp_reference(f, *point):
    """Value and every partial of ``f`` (written against mpmath) at ``point``, 50 digits."""
    with mpmath.workdps(50):
        xs = [mpmath.mpf(p) for p in point]
        n = len(xs)
        value = f(*xs)
        grads = [mpmath.diff(f, xs, tuple(int(i == j) for j in range(n))) for i in range(n)]
        return float(value), [float(g) for g in grads]


def test_griewank_example():
    def f(x1, x2, m=mpmath):
        return (m.sin(x1 / x2) + x1 / x2 - m.exp(x2)) * (x1 / x2 - m.exp(x2))

    x1, x2 = wg.Var(1.5), wg.Var(0.5)
    y = f(x1, x2, wg)
    value, (g1, g2) = mp_reference(f, 1.5, 0.5)
    assert close(y.value, value)
    assert round(y.value, 6) == 2.016647  # Griewank & Walther's worked example
    y.backward()
    assert close(x1.grad, g1) and close(x2.grad, g2)
    assert round(x1.grad, 6) == 3.011843 and round(x2.grad, 6) == -13.723962
    assert wg.grad(y, [x1, x2]) == [x1.grad, x2.grad]


def test_composition_f1_of_f2_f3():
    # f1(u, v) = 3u^2 + 5uv + 4v^2 with u = sin x, v = sqrt(x) + e^x, at x = 1.
    def f(x, m=mpmath):
        u, v = m.sin(x), m.sqrt(x) + m.exp(x)
        return 3 * u**2 + 5 * u * v + 4 * v**2

    x = wg.Var(1.0)
    y = f(x, wg)
    value, (g,) = mp_reference(f, 1.0)
    assert close(y.value, value)
    assert close(wg.grad(y, x), g)
    assert round(g, 9) == 122.045158140  # the literature's digits


def test_nested_power():
    def f(x1, x2, m=mpmath):
        return m.sin(math.pi * x1 ** (x2**x1)) + m.cos(math.pi * m.log(x1))

    x1, x2 = wg.Var(2.0), wg.Var(3.0)
    y = f(x1, x2, wg)
    # math.pi (the double) in the reference too: the code multiplies by that double.
    value, (r1, r2) = mp_reference(f, 2.0, 3.0)
    g1, g2 = wg.grad(y, [x1, x2])
    assert close(y.value, value)
    assert close(g1, r1)
    assert close(g2, r2)
    assert round(g1, 6) == 18260.762731 and round(g2, 4) == 6689.5445  # literature digits
