"""Function transforms: forward mode, grad/value_and_grad, jacobian, hessian, jvp, vjp,
check_grad, against sympy, mpmath and hand-written derivatives."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import wengert as wg


def myfunc(x1, x2):
    a = x1 / x2
    b = wg.exp(x2)
    return (wg.sin(a) + a - b) * (a - b)


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def mp_partial(f, point, i):
    mpmath.mp.dps = 50
    return float(mpmath.diff(lambda *v: f(*v), point, tuple(int(k == i) for k in range(len(point)))))


def mp_griewank(x1, x2):
    a = x1 / x2
    b = mpmath.exp(x2)
    return (mpmath.sin(a) + a - b) * (a - b)


def test_seed_examples_in_forward_mode():
    y = myfunc(wg.Dual(1.5, 1.0), wg.Dual(0.5))
    assert rel(y.value, float(mp_griewank(mpmath.mpf(1.5), mpmath.mpf(0.5)))) < 1e-13
    assert rel(y.tangent, mp_partial(mp_griewank, (1.5, 0.5), 0)) < 1e-13
    y2 = myfunc(wg.Dual(1.5), wg.Dual(0.5).deriv())
    assert rel(y2.tangent, mp_partial(mp_griewank, (1.5, 0.5), 1)) < 1e-13
    assert round(y.value, 6) == 2.016647 and round(y.tangent, 6) == 3.011843
    assert round(y2.tangent, 6) == -13.723962
    d = wg.Dual(1.0).deriv()
    z = d * d * wg.exp(d) + 3 * d
    assert (z.value, z.tangent) == pytest.approx((5.718281828459045, 11.154845485377136), rel=1e-15)
    assert wg.derivative(lambda x: x * x * wg.exp(x) + 3 * x)(1.0) == pytest.approx(11.154845485377136, rel=1e-15)


def test_nested_composition_derivative():
    f1 = lambda x, y: 3 * x**2 + 5 * x * y + 4 * y**2  # noqa: E731
    g = lambda x: f1(wg.sin(x), wg.sqrt(x) + wg.exp(x))  # noqa: E731
    assert rel(wg.derivative(g)(1.0), 122.045158140265) < 1e-13
    assert rel(wg.grad(g)(1.0), 122.045158140265) < 1e-13


def test_grad_conventions():
    f = lambda x, y: x * wg.sin(y) + y**2  # noqa: E731
    assert wg.grad(f)(2.0, 0.5) == pytest.approx(np.sin(0.5), rel=1e-15)
    g = wg.grad(f, wrt=(0, 1))(2.0, 0.5)
    assert isinstance(g, tuple) and g == pytest.approx((np.sin(0.5), 2 * np.cos(0.5) + 1.0), rel=1e-15)
    v, gv = wg.value_and_grad(lambda x: np.sum(x * x), wrt=0)(np.array([1.0, 2.0, 3.0]))
    assert v == 14.0 and gv.tolist() == [2.0, 4.0, 6.0]
    x = wg.Var(3.0)
    assert wg.grad(x * x, x) == 6.0  # the Var form keeps working


def test_jacobian_forward_and_reverse_against_hand_written():
    def f(x):
        return [x[0] * x[1], wg.sin(x[2]), x[0] + x[2] ** 2, wg.exp(x[1]) * x[0]]

    x = np.array([0.3, -1.2, 2.0])
    want = np.array(
        [
            [x[1], x[0], 0.0],
            [0.0, 0.0, np.cos(x[2])],
            [1.0, 0.0, 2 * x[2]],
            [np.exp(x[1]), np.exp(x[1]) * x[0], 0.0],
        ]
    )
    np.testing.assert_allclose(wg.jacobian(f)(x), want, rtol=1e-15)  # 3 inputs < 4 outputs: forward
    g = lambda x: [x[0] * x[1] * x[2] * x[3], wg.log(x[4])]  # noqa: E731
    y = np.array([1.5, 2.0, 0.5, 3.0, 2.5])
    J = wg.jacobian(g)(y)  # 5 inputs > 2 outputs: reverse
    p = np.prod(y[:4])
    np.testing.assert_allclose(J[0], [p / y[0], p / y[1], p / y[2], p / y[3], 0.0], rtol=1e-15)
    np.testing.assert_allclose(J[1], [0, 0, 0, 0, 1 / y[4]], rtol=1e-15)


def test_jvp_and_vjp_agree_with_the_jacobian():
    f = lambda x, t: [x[0] * t, wg.tanh(x[1]) + x[0], wg.hypot(x[0], x[1])]  # noqa: E731
    x, t = np.array([0.7, -0.4]), 1.3
    Jx, Jt = wg.jacobian(f, wrt=(0, 1))(x, t)
    tx, tt = np.array([0.5, 2.0]), -1.0
    v, tan = wg.jvp(f, (x, t), (tx, tt))
    np.testing.assert_allclose(tan, Jx @ tx + Jt * tt, rtol=1e-14)
    ct = np.array([1.0, -2.0, 0.5])
    v2, (gx, gt) = wg.vjp(f, (x, t), ct)
    np.testing.assert_allclose(gx, ct @ Jx, rtol=1e-14)
    assert gt == pytest.approx(ct @ Jt, rel=1e-14)
    np.testing.assert_allclose(v, v2, rtol=0)


def test_hessian_against_sympy():
    a, b, c = sp.symbols("a b c")
    expr = sp.sin(a * b) * sp.exp(c) + a**3 / b - sp.log(1 + c**2) * a
    H = sp.hessian(expr, (a, b, c))
    point = {a: 0.7, b: 1.9, c: -0.3}
    want = np.array(H.subs(point).evalf(30).tolist(), dtype=float)

    def f(x):
        return wg.sin(x[0] * x[1]) * wg.exp(x[2]) + x[0] ** 3 / x[1] - wg.log(1 + x[2] ** 2) * x[0]

    got = wg.hessian(f)(np.array([0.7, 1.9, -0.3]))
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(got, got.T, rtol=1e-14)
    # Griewank's example with two scalar arguments: blocks, as JAX lays them out.
    x1, x2 = sp.symbols("x1 x2")
    g = (sp.sin(x1 / x2) + x1 / x2 - sp.exp(x2)) * (x1 / x2 - sp.exp(x2))
    Hg = np.array(sp.hessian(g, (x1, x2)).subs({x1: 1.5, x2: 0.5}).evalf(30).tolist(), dtype=float)
    blocks = wg.hessian(myfunc, wrt=(0, 1))(1.5, 0.5)
    np.testing.assert_allclose(np.array(blocks), Hg, rtol=1e-13)
    assert wg.hessian(myfunc)(1.5, 0.5) == pytest.approx(Hg[0, 0], rel=1e-13)


def test_check_grad_accepts_right_and_flags_wrong_derivatives():
    assert wg.check_grad(myfunc, 1.5, 0.5) < 1e-7
    assert wg.check_grad(lambda x: np.sum(wg.sin(x) * x), np.array([0.1, 2.0, -3.0])) < 1e-7
    # float() drops the derivative of one factor: the gradient is then wrong.
    wrong = lambda x: x * float(x) if isinstance(x, wg.Var) else x * x  # noqa: E731
    assert wg.check_grad(wrong, 3.0) > 0.1


def _expr(draw, depth):
    if depth == 0 or draw(st.booleans()):
        return draw(st.sampled_from(["x", "y", "c"]))
    op = draw(st.sampled_from(["+", "-", "*", "sin", "exp", "tanh", "sq"]))
    if op in ("sin", "exp", "tanh", "sq"):
        return (op, _expr(draw, depth - 1))
    return (op, _expr(draw, depth - 1), _expr(draw, depth - 1))


@st.composite
def exprs(draw):
    return _expr(draw, 4)


def _eval(e, x, y):
    if e == "x":
        return x
    if e == "y":
        return y
    if e == "c":
        return 0.7
    op = e[0]
    if op == "sin":
        return wg.sin(_eval(e[1], x, y))
    if op == "exp":
        return wg.exp(wg.tanh(_eval(e[1], x, y)))
    if op == "tanh":
        return wg.tanh(_eval(e[1], x, y))
    if op == "sq":
        v = _eval(e[1], x, y)
        return v * v
    a, b = _eval(e[1], x, y), _eval(e[2], x, y)
    return a + b if op == "+" else a - b if op == "-" else a * b


@settings(max_examples=150, deadline=None)
@given(exprs(), st.floats(-2, 2), st.floats(-2, 2))
def test_forward_equals_reverse_on_random_graphs(e, x, y):
    f = lambda a, b: _eval(e, a, b)  # noqa: E731
    _, (gx, gy) = wg.value_and_grad(f, wrt=(0, 1))(x, y)
    _, tx = wg.jvp(f, (x, y), (1.0, 0.0))
    _, ty = wg.jvp(f, (x, y), (0.0, 1.0))
    assert gx == pytest.approx(tx, rel=1e-12, abs=1e-12)
    assert gy == pytest.approx(ty, rel=1e-12, abs=1e-12)


def test_errors_say_how_to_fix():
    with pytest.raises(ValueError, match="reduce it to a scalar.*jacobian"):
        wg.grad(lambda x: [x, 2 * x])(1.0)
    with pytest.raises(ValueError, match="wrt"):
        wg.grad(lambda x: x, wrt=2)(1.0)
    with pytest.raises(ValueError, match="1-D"):
        wg.grad(lambda x: x)(np.ones((2, 2)))
    with pytest.raises(TypeError, match="argument 0"):
        wg.grad(lambda x: x)("text")
    with pytest.raises(ValueError, match="jacobian"):
        wg.hessian(lambda x: [x, x])(1.0)
    # A branch is no longer an error (wg.hessian compiles f, which follows it per point).
    assert float(wg.hessian(lambda x: x**3 if x > 0 else -x)(2.0)) == 12.0
    assert float(wg.hessian(lambda x: x**3 if x > 0 else -x)(-2.0)) == 0.0
    with pytest.raises(ValueError, match="shape"):
        wg.jvp(lambda x: x, (np.ones(2),), (np.ones(3),))
    with pytest.raises(TypeError, match="must be a Var.*a function"):
        wg.grad(3.0)
