"""Transforms compose: every transform accepts Var, Dual and traced numbers, so they nest
to any order (checked against sympy); what cannot be followed raises, never a number."""

import datetime
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import wengert as wg

x_, y_ = sp.symbols("x y")


def rosen(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def rosen_sym(n):
    xs = sp.symbols(f"x0:{n}")
    return xs, sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(n - 1))


def test_the_reported_cases():
    # Each gave 0.0 or zeros on main: the inner transform turned its Var/Dual into a float.
    assert wg.grad(wg.grad(lambda x: x**3))(2.0) == 12.0
    assert wg.derivative(wg.derivative(lambda x: x**3))(2.0) == 12.0
    x0 = np.array([1.0, 2.0, 3.0])
    xs, r = rosen_sym(3)
    H = np.array(sp.hessian(r, xs).subs(dict(zip(xs, x0))).tolist(), dtype=float)
    np.testing.assert_array_equal(wg.jacobian(wg.grad(rosen))(x0), H)
    v = np.array([0.5, -1.0, 2.0])
    g, hv = wg.jvp(wg.grad(rosen), (x0,), (v,))
    np.testing.assert_allclose(hv, H @ v, rtol=1e-15)
    grad_sym = [float(sp.diff(r, s).subs(dict(zip(xs, x0)))) for s in xs]
    np.testing.assert_allclose(g, grad_sym, rtol=1e-15)


@pytest.mark.parametrize(
    "expr",
    [x_**3, sp.sin(x_) * sp.exp(x_), sp.tanh(x_) / (1 + x_**2), sp.sqrt(1 + x_**2) * sp.log(2 + x_)],
)
def test_third_derivatives_every_way_against_sympy(expr):
    f = sp.lambdify(x_, expr, modules=[{"sin": wg.sin, "exp": wg.exp, "tanh": wg.tanh, "sqrt": wg.sqrt, "log": wg.log}])
    x0 = 0.7
    want = [float(sp.diff(expr, x_, k).subs(x_, x0).evalf(30)) for k in (1, 2, 3)]
    D, G = wg.derivative, wg.grad
    ways = {
        2: [D(D(f)), G(G(f)), D(G(f)), G(D(f)), wg.hessian(f)],
        3: [D(D(D(f))), G(G(G(f))), G(D(G(f))), D(G(D(f))), G(wg.hessian(f)), D(wg.hessian(f))],
    }
    for order, fns in ways.items():
        for fn in fns:
            assert fn(x0) == pytest.approx(want[order - 1], rel=1e-12), (order, fn)
    # The results of nested transforms are numbers of the enclosing kind, not floats.
    v = wg.Var(x0)
    assert isinstance(G(f)(v), wg.Var)
    assert isinstance(G(f)(wg.Dual(x0, 1.0)), wg.Dual)


def test_compiled_gradients_of_gradients():
    f = lambda x, y: x * x * wg.sin(y) + wg.exp(x * y)  # noqa: E731
    e = x_**2 * sp.sin(y_) + sp.exp(x_ * y_)
    G = wg.compile(wg.grad(f, wrt=0))
    X, Y = np.linspace(-1, 1, 7), np.linspace(0.5, 2, 7)
    want = [float(sp.diff(e, x_).subs({x_: a, y_: b})) for a, b in zip(X, Y)]
    np.testing.assert_allclose(G(X, Y), want, rtol=1e-14)
    gx, gy = G.grad(X, Y, wrt=(0, 1))
    np.testing.assert_allclose(gx, [float(sp.diff(e, x_, 2).subs({x_: a, y_: b})) for a, b in zip(X, Y)], rtol=1e-13)
    np.testing.assert_allclose(gy, [float(sp.diff(e, x_, y_).subs({x_: a, y_: b})) for a, b in zip(X, Y)], rtol=1e-13)


def test_vjp_and_jvp_nest_with_number_cotangents_and_tangents():
    f = lambda x: [x * x, wg.sin(x)]  # noqa: E731
    # d/dc of the vjp with cotangent (c, 2c): d/dc [c * 2x + 2c * cos x] = 2x + 2 cos x
    g = wg.grad(lambda c: wg.vjp(f, (1.5,), [c, 2 * c])[1][0])(0.3)
    assert g == pytest.approx(3.0 + 2 * math.cos(1.5), rel=1e-15)
    # d/dt of the jvp along t: f'(x) for the first output
    assert wg.grad(lambda t: wg.jvp(lambda x: x**3, (2.0,), (t,))[1])(0.0) == 12.0


def test_strong_zero_holds_at_higher_order():
    f = lambda x: wg.where(x > 0, wg.sqrt(x), 0.0)  # noqa: E731
    for fn in (wg.grad(wg.grad(f)), wg.derivative(wg.derivative(f)), wg.jacobian(wg.grad(f)), wg.hessian(f)):
        assert fn(-1.0) == 0.0
        assert fn(4.0) == pytest.approx(-1 / 32, rel=1e-15)
    # A tangent that passes through zero keeps its derivative (t' * d, not 0).
    assert wg.grad(lambda t: wg.jvp(wg.sqrt, (4.0,), (t,))[1])(0.0) == 0.25


def test_closures_over_an_outer_transforms_numbers_raise():
    # On main, the first gave 0.0 (the outer derivative was dropped), the second confused
    # the two perturbations.
    with pytest.raises(TypeError, match="pass it as an extra argument"):
        wg.grad(lambda x: wg.grad(lambda y: x * y)(1.0))(2.0)
    with pytest.raises(TypeError, match="pass it as an extra argument"):
        wg.derivative(lambda x: wg.derivative(lambda y: x * y)(1.0))(2.0)
    # Passed as an argument, it is followed.
    assert wg.grad(lambda x: wg.grad(lambda y, x: x * y)(1.0, x))(2.0) == 1.0


def _expr(draw, depth):
    if depth == 0 or draw(st.booleans()):
        return draw(st.sampled_from(["x", "y", "c"]))
    op = draw(st.sampled_from(["+", "-", "*", "/", "sin", "exp", "tanh", "sq", "sqrt1p"]))
    if op in ("sin", "exp", "tanh", "sq", "sqrt1p"):
        return (op, _expr(draw, depth - 1))
    return (op, _expr(draw, depth - 1), _expr(draw, depth - 1))


def _eval(e, x, y, lib):
    if e == "x":
        return x
    if e == "y":
        return y
    if e == "c":
        return 0.7
    op = e[0]
    if op in ("sin", "exp", "tanh"):
        return getattr(lib, op)(_eval(e[1], x, y, lib))
    if op == "sq":
        v = _eval(e[1], x, y, lib)
        return v * v
    if op == "sqrt1p":
        v = _eval(e[1], x, y, lib)
        return lib.sqrt(1 + v * v)
    a, b = _eval(e[1], x, y, lib), _eval(e[2], x, y, lib)
    if op == "/":
        return a / (1 + b * b)
    return a + b if op == "+" else a - b if op == "-" else a * b


@settings(max_examples=60, deadline=None)
@given(st.builds(lambda d: d, st.data()), st.floats(-1.5, 1.5), st.floats(-1.5, 1.5))
def test_random_second_derivatives_against_sympy(data, x, y):
    e = _expr(data.draw, 3)
    f = lambda a, b: _eval(e, a, b, wg)  # noqa: E731
    s = _eval(e, x_, y_, sp)
    at = {x_: x, y_: y}
    want = np.array(
        [[float(sp.diff(s, u, v).subs(at).evalf(30)) for v in (x_, y_)] for u in (x_, y_)]
    )
    (hxx, hxy), (hyx, hyy) = wg.hessian(f, wrt=(0, 1))(wg.Var(x), wg.Var(y))
    val = lambda h: h.value if isinstance(h, wg.Var) else float(h)  # noqa: E731
    got = np.array([[val(h) for h in (hxx, hxy)], [val(h) for h in (hyx, hyy)]])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    gg = wg.grad(wg.grad(f, wrt=0), wrt=1)(x, y)
    assert gg == pytest.approx(want[0, 1], rel=1e-10, abs=1e-10)
    dd = wg.jacobian(wg.grad(f, wrt=(0, 1)), wrt=0)(x, y)
    np.testing.assert_allclose([dd[0], dd[1]], want[:, 0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "bad",
    [None, "1.5", datetime.date(2020, 1, 1), 1 + 2j, memoryview(b"ab"), b"ab", [None, 1.0], {"a": 1}],
)
def test_non_numbers_are_type_errors_naming_the_argument(bad):
    for call in (
        lambda: wg.grad(lambda x: x)(bad),
        lambda: wg.value_and_grad(lambda x: x)(bad),
        lambda: wg.derivative(lambda x: x)(bad),
        lambda: wg.jacobian(lambda x: x)(bad),
        lambda: wg.hessian(lambda x: x)(bad),
        lambda: wg.jvp(lambda x: x, (bad,), (1.0,)),
        lambda: wg.vjp(lambda x: x, (bad,), 1.0),
        lambda: wg.check_grad(lambda x: x, bad),
    ):
        with pytest.raises(TypeError, match="argument 0|primal 0"):
            call()
    with pytest.raises(TypeError, match="tangent 0"):
        wg.jvp(lambda x: x, (1.0,), (bad,))
    if not isinstance(bad, list):
        with pytest.raises(TypeError, match="cotangent"):
            wg.vjp(lambda x: x, (1.0,), bad)


@pytest.mark.parametrize("out", ["s", None, [1.0, "s"], True])
def test_a_function_returning_a_non_number_is_a_type_error(out):
    for call in (
        lambda: wg.grad(lambda x: out)(1.0),
        lambda: wg.derivative(lambda x: out)(1.0),
        lambda: wg.jacobian(lambda x: out)(1.0),
        lambda: wg.jvp(lambda x: out, (1.0,), (1.0,)),
    ):
        with pytest.raises((TypeError, ValueError)):
            call()


def test_negative_and_repeated_wrt():
    f = lambda x, y: x * y * y  # noqa: E731
    assert wg.grad(f, wrt=-1)(2.0, 3.0) == 12.0
    assert wg.grad(f, wrt=(-2, -1))(2.0, 3.0) == (9.0, 12.0)
    with pytest.raises(ValueError, match="twice"):
        wg.grad(f, wrt=(1, -1))(2.0, 3.0)


def test_check_grad_never_passes_nan_and_names_the_worst_component():
    # On main: 0.0, a pass, for a NaN gradient.
    assert wg.check_grad(lambda x: wg.sqrt(x), -1.0) == math.inf
    assert wg.check_grad(lambda x: x * float("nan"), 1.0) == math.inf
    err = wg.check_grad(lambda x, y: x * wg.sin(y[0]) * y[1], 2.0, np.array([1.0, 3.0]))
    assert err < 1e-8
    wrong = lambda x: x[0] * float(x[1]) if isinstance(x[1], wg.Var) else x[0] * x[1]  # noqa: E731
    assert wg.check_grad(wrong, np.array([1.0, 2.0, 5.0])) > 0.1
    assert wg.check_grad.worst[:2] == (0, 1)


def test_check_grad_takes_compiled_functions():
    F = wg.compile(lambda x, y: wg.sin(x) * y)
    assert wg.check_grad(F, 0.5, 2.0) < 1e-8


def test_a_dual_from_outside_a_forward_transform_raises():
    # On main: 3.0, the closure's tangent mixed into d/dy (x * y) = 2 (perturbation
    # confusion); a constant Dual (tangent 0) is fine.
    x = wg.Dual(2.0, 1.0)
    with pytest.raises(TypeError, match="outside this transform"):
        wg.derivative(lambda y: x * y)(1.0)
    with pytest.raises(TypeError, match="outside the transform"):
        wg.jvp(lambda y: x, (1.0,), (1.0,))
    assert wg.jvp(lambda y: wg.Dual(3.0) * y, (1.0,), (1.0,)) == (3.0, 3.0)
    # Two user Duals still combine as before.
    assert (wg.Dual(2.0, 1.0) * wg.Dual(3.0, 1.0)).tangent == 5.0


def test_compiled_functions_nest_in_transforms():
    F = wg.compile(lambda x: x**3)
    assert wg.grad(F)(2.0) == 12.0
    assert wg.derivative(F)(2.0) == 12.0
    assert wg.grad(wg.grad(F))(2.0) == 12.0
    np.testing.assert_array_equal(wg.compile(lambda x: F(x) * 2).grad(np.array([1.0, 2.0])), [6.0, 24.0])
    R = wg.compile(lambda x: x[0] * x[1] ** 2, shapes=[2])
    np.testing.assert_array_equal(wg.hessian(R)(np.array([1.0, 2.0])), [[0.0, 4.0], [4.0, 2.0]])
    # Its own batch methods take real arrays, and say what to use instead.
    with pytest.raises(TypeError, match=r"wg.grad\(F\)"):
        F.grad(wg.Var(1.0))


def test_hessian_follows_a_changed_global():
    # The compile was cached per shape, so a later call reused the globals (and branches)
    # the first one saw: 12 where 60 is right (found in review).
    c = [1.0]
    H = wg.hessian(lambda x: c[0] * x[0] ** 3)
    assert H(np.array([2.0])).tolist() == [[12.0]]
    c[0] = 5.0
    assert H(np.array([2.0])).tolist() == [[60.0]]
