"""The worked examples from the literature, through the eager reverse tape, to 1e-13."""

import math

import pytest

import wengert as wg

REL = 1e-13


def close(a, b):
    return a == pytest.approx(b, rel=REL, abs=0.0)


def test_griewank_example():
    x1, x2 = wg.Var(1.5), wg.Var(0.5)
    y = (wg.sin(x1 / x2) + x1 / x2 - wg.exp(x2)) * (x1 / x2 - wg.exp(x2))
    # Value by plain float arithmetic; gradient from Griewank & Walther's worked example.
    a, b = 1.5 / 0.5, math.exp(0.5)
    assert close(y.value, (math.sin(a) + a - b) * (a - b))
    assert round(y.value, 6) == 2.016647
    y.backward()
    assert close(x1.grad, 3.011843327673907)
    assert close(x2.grad, -13.723961509314076)
    assert wg.grad(y, [x1, x2]) == [x1.grad, x2.grad]


def test_composition_f1_of_f2_f3():
    # f1(u, v) = 3u^2 + 5uv + 4v^2 with u = sin x, v = sqrt(x) + e^x, at x = 1.
    x = wg.Var(1.0)
    u, v = wg.sin(x), wg.sqrt(x) + wg.exp(x)
    y = 3 * u**2 + 5 * u * v + 4 * v**2
    assert close(wg.grad(y, x), 122.045158140265)


def test_nested_power():
    x1, x2 = wg.Var(2.0), wg.Var(3.0)
    y = wg.sin(math.pi * x1 ** (x2**x1)) + wg.cos(math.pi * wg.log(x1))
    g1, g2 = wg.grad(y, [x1, x2])
    assert close(g1, 18260.7627311899)
    assert g2 == pytest.approx(6689.544469, rel=1e-9)  # the reference has 10 digits
