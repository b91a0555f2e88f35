"""Property tests on random expression graphs: reverse mode (Var) against mpmath's
high-precision central differences, forward mode (Dual) against reverse mode, and
wg.grad against backward.
"""

from __future__ import annotations

import math

import mpmath
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import wengert as wg


class _Mp:
    """The same functions as wengert's, on mpmath numbers: the reference backend."""

    sin, cos, atan, tanh, exp, sqrt, asinh, erf = (
        mpmath.sin, mpmath.cos, mpmath.atan, mpmath.tanh, mpmath.exp, mpmath.sqrt,
        mpmath.asinh, mpmath.erf,
    )
    log, log1p, atan2, hypot = mpmath.log, mpmath.log1p, mpmath.atan2, mpmath.hypot

    @staticmethod
    def sigmoid(x):
        return 1 / (1 + mpmath.exp(-x))

    @staticmethod
    def softplus(x):
        return mpmath.log1p(mpmath.exp(x))


# Smooth everywhere on the reals, so central differences are a valid reference anywhere.
UNARY = {
    "sin": lambda m, a: m.sin(a),
    "cos": lambda m, a: m.cos(a),
    "atan": lambda m, a: m.atan(a),
    "tanh": lambda m, a: m.tanh(a),
    "sigmoid": lambda m, a: m.sigmoid(a),
    "softplus": lambda m, a: m.softplus(a),
    "asinh": lambda m, a: m.asinh(a),
    "erf": lambda m, a: m.erf(a),
    "exp_sin": lambda m, a: m.exp(m.sin(a)),
    "log_1p_sq": lambda m, a: m.log(1 + a * a),
    "log1p_sq": lambda m, a: m.log1p(a * a),
    "sqrt_1p_sq": lambda m, a: m.sqrt(1 + a * a),
    "square": lambda m, a: a * a,
    "cube": lambda m, a: a**3,
    "neg": lambda m, a: -a,
    "recip": lambda m, a: 1 / (1 + a * a),
    "affine": lambda m, a: 0.5 - 2.25 * a,
}
BINARY = {
    "add": lambda m, a, b: a + b,
    "sub": lambda m, a, b: a - b,
    "mul": lambda m, a, b: a * b,
    "div": lambda m, a, b: a / (1.5 + b * b),
    "atan2": lambda m, a, b: m.atan2(a, 2 + b * b),
    "hypot": lambda m, a, b: m.hypot(a, 1 + b * b),
    "pow": lambda m, a, b: (1 + a * a) ** m.sin(b),
    "rpow": lambda m, a, b: 2.0 ** m.tanh(a + b),
}

N_INPUTS = 3

instruction = st.one_of(
    st.tuples(st.sampled_from(sorted(UNARY)), st.integers(0, 10**6)),
    st.tuples(st.sampled_from(sorted(BINARY)), st.integers(0, 10**6), st.integers(0, 10**6)),
)
program = st.lists(instruction, min_size=1, max_size=14)
point = st.lists(
    st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False), min_size=N_INPUTS,
    max_size=N_INPUTS,
)


def run(prog, inputs, m):
    """Evaluates ``prog`` on ``inputs`` with backend ``m``: each instruction picks its
    operands among every earlier value (by index modulo), so values fan out and rejoin."""
    vals = list(inputs)
    for ins in prog:
        name, *refs = ins
        args = [vals[r % len(vals)] for r in refs]
        f = UNARY.get(name) or BINARY[name]
        vals.append(f(m, *args))
    return vals[-1]


def reference(prog, xs):
    with mpmath.workdps(40):
        f = lambda *a: run(prog, a, _Mp)  # noqa: E731
        value = f(*map(mpmath.mpf, xs))
        grads = [
            mpmath.diff(f, list(map(mpmath.mpf, xs)), tuple(int(i == j) for j in range(len(xs))))
            for i in range(len(xs))
        ]
        return float(value), [float(g) for g in grads]


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(program, point)
# Ten ops of pow and hypot: float64 itself (Python's math gives wengert's value to the
# bit) is 1e-12 off the exact value here, so the value's tolerance is 1e-10, not 1e-12.
@example(
    prog=[("hypot", 0, 2), ("affine", 0), ("affine", 0), ("cube", 548691), ("affine", 0),
          ("affine", 0), ("pow", 1329, 0), ("affine", 0), ("affine", 0), ("pow", 0, 201)],
    xs=[1.0, 0.0, 2.0],
)
def test_reverse_mode_matches_central_differences(prog, xs):
    value, ref = reference(prog, xs)
    assume(math.isfinite(value) and abs(value) < 1e8 and all(abs(g) < 1e8 for g in ref))
    leaves = [wg.Var(x) for x in xs]
    y = run(prog, leaves, wg)
    assume(isinstance(y, wg.Var))  # a program that never touches an input is a constant
    y.backward()
    assert y.value == pytest.approx(value, rel=1e-10, abs=1e-12)
    for i, (leaf, g) in enumerate(zip(leaves, ref, strict=True)):
        assert leaf.grad == pytest.approx(g, rel=1e-9, abs=1e-9), (i, prog)


@SETTINGS
@given(program, point)
def test_forward_and_reverse_agree(prog, xs):
    leaves = [wg.Var(x) for x in xs]
    y = run(prog, leaves, wg)
    assume(isinstance(y, wg.Var) and math.isfinite(y.value) and abs(y.value) < 1e8)
    rev = wg.grad(y, leaves)
    for i in range(N_INPUTS):
        duals = [wg.Dual(x, 1.0 if j == i else 0.0) for j, x in enumerate(xs)]
        d = run(prog, duals, wg)
        assert d.value == y.value
        assume(math.isfinite(rev[i]) and abs(rev[i]) < 1e8)
        assert d.tangent == pytest.approx(rev[i], rel=1e-12, abs=1e-12), (i, prog)
    # wg.grad leaves .grad alone; backward then agrees with it exactly.
    assert all(v.grad == 0.0 for v in leaves)
    y.backward()
    assert [v.grad for v in leaves] == rev
    # A float run gives the same value: the Var path computes nothing different.
    assert run(prog, xs, wg) == y.value
