"""NumPy interop, the Python number protocol (hash, ==, bool, float, repr) and module
functions on floats, Var and Dual."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import wengert as wg

NUMPY_SCALARS = [np.float64(2.5), np.float32(2.5), np.float16(2.5), np.int64(3), np.int8(-3),
                 np.uint16(3), np.bool_(True)]


@pytest.mark.parametrize("c", NUMPY_SCALARS, ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("kind", [wg.Var, wg.Dual])
def test_numpy_scalars_on_either_side(kind, c):
    a = 1.75
    fc = float(c)
    ops = [
        (lambda x: x + c, lambda x: c + x, a + fc, 1.0, 1.0),
        (lambda x: x - c, lambda x: c - x, a - fc, 1.0, -1.0),
        (lambda x: x * c, lambda x: c * x, a * fc, fc, fc),
        (lambda x: x / c, lambda x: c / x, a / fc, 1 / fc, -fc / a**2),
        (lambda x: x**c, lambda x: c**x, a**fc, fc * a ** (fc - 1), None),
    ]
    for right, left, v, d_right, d_left in ops:
        for f, d in ((right, d_right), (left, d_left)):
            x = kind(a, 1.0) if kind is wg.Dual else kind(a)
            y = f(x)
            # np.float64 is a float subclass and NumPy scalars try their own operator
            # first: the result must still be ours, never an ndarray or a NumPy scalar.
            assert type(y) is kind, (f, type(y))
            if d is None:  # c ** x
                if fc < 0:  # a negative base to a non-integer power: nan, as NumPy
                    assert math.isnan(y.value)
                    continue
                d = fc**a * math.log(fc)
                assert y.value == pytest.approx(fc**a, rel=1e-15)
            elif f is right:
                assert y.value == pytest.approx(v, rel=1e-15)
            if kind is wg.Var:
                y.backward()
                got = x.grad
            else:
                got = y.tangent
            assert got == pytest.approx(d, rel=1e-12), (f, got, d)


def test_numpy_ufuncs_on_object_arrays_call_the_methods():
    xs = wg.vars([0.25, 0.5, 0.75])
    assert xs.dtype == object and xs.shape == (3,)
    for ufunc, ref in [(np.sin, math.sin), (np.exp, math.exp), (np.arcsin, math.asin),
                       (np.arctanh, math.atanh), (np.sqrt, math.sqrt), (np.log1p, math.log1p),
                       (np.tanh, math.tanh), (np.cbrt, lambda t: t ** (1 / 3))]:
        ys = ufunc(xs)
        assert all(type(y) is wg.Var for y in ys), ufunc
        np.testing.assert_allclose(wg.values(ys), [ref(v) for v in (0.25, 0.5, 0.75)], rtol=1e-15)
    y = np.sum(np.sin(xs) * xs)  # d/dx_i = cos x_i * x_i + sin x_i
    y.backward()
    np.testing.assert_allclose(
        wg.grads(xs), [math.cos(v) * v + math.sin(v) for v in (0.25, 0.5, 0.75)], rtol=1e-15
    )
    z = np.arctan2(xs, 2.0)
    assert all(type(t) is wg.Var for t in z)
    # Matrix product of object arrays goes through our operators too.
    m = np.array([[1.0, 2.0], [3.0, 4.0]])
    v = wg.vars([1.0, -1.0])
    out = m @ v
    assert [t.value for t in out] == [-1.0, -1.0]
    (out[0] * out[1]).backward()  # d/dv of (v0 + 2 v1)(3 v0 + 4 v1)
    np.testing.assert_array_equal(wg.grads(v), [1 * -1 + 3 * -1, 2 * -1 + 4 * -1])


def test_vars_values_grads():
    a = np.arange(6.0).reshape(2, 3)
    xs = wg.vars(a)
    assert xs.shape == (2, 3) and all(x.is_leaf for x in xs.flat)
    np.testing.assert_array_equal(wg.values(xs), a)
    np.testing.assert_array_equal(wg.grads(xs), np.zeros((2, 3)))
    y = (xs * xs).sum()
    y.backward()
    np.testing.assert_array_equal(wg.grads(xs), 2 * a)
    assert wg.vars(np.array([1, 2], dtype=np.int32))[1].value == 2.0
    mixed = np.array([wg.Var(1.0), 2.0, wg.Dual(3.0, 1.0)], dtype=object)
    np.testing.assert_array_equal(wg.values(mixed), [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match=r"wg\.vars\(array\)"):
        wg.vars(["a", "b"])
    with pytest.raises(TypeError, match="complex"):
        wg.vars(np.array([1j]))
    with pytest.raises(TypeError, match=r"wg\.grads\(arr\)"):
        wg.grads(np.array(["a"], dtype=object))


def test_module_functions_on_arrays():
    a = np.array([0.1, 0.2])
    r = wg.sin(a)
    assert r.dtype == np.float64
    np.testing.assert_array_equal(r, np.sin(a))
    np.testing.assert_array_equal(wg.atan2(a, 2.0), np.arctan2(a, 2.0))
    np.testing.assert_array_equal(wg.sigmoid(np.array([0.0])), [0.5])  # no ufunc: elementwise
    xs = wg.vars(a)
    r = wg.maximum(xs, 0.15)
    assert all(type(t) is wg.Var for t in r)
    np.testing.assert_array_equal(wg.values(r), [0.15, 0.2])


@pytest.mark.parametrize("name", ["sin", "log", "sigmoid", "erf", "relu", "softplus", "cbrt"])
def test_module_functions_accept_float_var_dual(name):
    f = getattr(wg, name)
    a = 0.6
    r_float = f(a)
    r_int = f(1)
    r_np = f(np.float32(a))
    r_var = f(wg.Var(a))
    r_dual = f(wg.Dual(a, 1.0))
    assert type(r_float) is float and type(r_int) is float and type(r_np) is float
    assert type(r_var) is wg.Var and type(r_dual) is wg.Dual
    assert r_var.value == r_dual.value == r_float
    assert r_np == f(float(np.float32(a)))


def test_binary_module_functions_accept_float_var_dual():
    for f in (wg.atan2, wg.hypot, wg.pow, wg.maximum, wg.minimum):
        assert type(f(0.5, 2.0)) is float
        assert type(f(0.5, wg.Var(2.0))) is wg.Var
        assert type(f(wg.Var(0.5), 2)) is wg.Var
        assert type(f(wg.Dual(0.5), 2.0)) is wg.Dual
        assert type(f(0.5, wg.Dual(2.0, 1.0))) is wg.Dual
        assert f(wg.Var(0.5), wg.Var(2.0)).value == f(0.5, 2.0) == f(wg.Dual(0.5), wg.Dual(2.0)).value


def test_where():
    x = wg.Var(-2.0)
    y = wg.where(x > 0, x, -x)
    y.backward()
    assert (y.value, x.grad) == (2.0, -1.0)
    np.testing.assert_array_equal(wg.where(np.array([True, False]), 1.0, 2.0), [1.0, 2.0])
    with pytest.raises(TypeError, match=r"wg\.where\(cond, a, b\): cond"):
        wg.where("yes", 1.0, 2.0)


@pytest.mark.parametrize("kind", [wg.Var, wg.Dual])
def test_number_protocol(kind):
    a, b = kind(2.0), kind(3.0)
    # Comparisons compare values and return bool, with numbers on either side.
    assert (a < b) is True and (a <= b) is True and (a > b) is False and (a >= 2.0) is True
    assert (a == kind(2.0)) is True and (a != b) is True
    assert (2.0 == a) is True and (1 < a) is True and (np.float64(2.0) == a)
    nan = kind(math.nan)
    assert not (nan == nan) and (nan != nan) and not (nan < 1.0) and not (nan >= 1.0)
    # Hash by identity: two equal values are distinct dict keys.
    c = kind(2.0)
    assert hash(a) == hash(a) and len({a, c}) == 2
    assert {a: 1}[a] == 1
    assert bool(kind(0.0)) is False and bool(kind(-0.5)) is True and bool(nan) is True
    assert float(a) == 2.0 and type(float(a)) is float
    assert math.sqrt(kind(4.0)) == 2.0  # via __float__
    assert (a == "2.0") is False and (a != None) is True  # noqa: E711
    with pytest.raises(TypeError):
        a < "x"  # noqa: B015
    assert (+a) is a
    assert abs(kind(-2.5)).value == 2.5


def test_repr():
    x = wg.Var(2.0166466694282015)
    assert repr(x) == "Var(2.016647, grad=0.0)"
    y = x * 2.0
    y.backward()
    assert repr(x) == "Var(2.016647, grad=2.0)"
    assert repr(wg.Var(math.nan)) == "Var(nan, grad=0.0)"
    assert repr(wg.Var(-math.inf)) == "Var(-inf, grad=0.0)"
    assert repr(wg.Var(1e300)) == "Var(1e300, grad=0.0)"
    assert repr(wg.Dual(1.5, -0.25)) == "Dual(1.5, -0.25)"
    assert repr(wg.Dual(2.0)) == "Dual(2.0, 0.0)"


def test_var_attributes():
    x = wg.Var(3)
    assert x.value == x.data == 3.0 and type(x.value) is float
    assert x.is_leaf and not (x * 1.0).is_leaf
    assert x.grad == 0.0
    y = x * x
    y.backward()
    assert x.grad == 6.0 and y.grad == 1.0
    # A second backward replaces the grads of the first.
    z = x * 5.0
    z.backward()
    assert x.grad == 5.0 and y.grad == 0.0
    x.grad = 1.5
    assert x.grad == 1.5
    assert "digraph" in z.to_dot() and "mul" in z.to_dot()


def test_dual_attributes_and_pickle():
    d = wg.Dual(1.5, 2.0)
    assert (d.value, d.tangent) == (1.5, 2.0)
    assert wg.Dual(1.5).tangent == 0.0
    e = d.deriv()
    assert (e.value, e.tangent) == (1.5, 1.0) and (d.value, d.tangent) == (1.5, 2.0)
    p = pickle.loads(pickle.dumps(d))
    assert type(p) is wg.Dual and (p.value, p.tangent) == (1.5, 2.0)


def test_design_examples():
    def f(x1, x2):
        a = x1 / x2
        b = wg.exp(x2)
        return (wg.sin(a) + a - b) * (a - b)

    r1 = f(wg.Dual(1.5, 1.0), wg.Dual(0.5))
    r2 = f(wg.Dual(1.5).deriv(), wg.Dual(0.5))
    assert repr(r1) == repr(r2) == "Dual(2.016647, 3.011843)"
    x1, x2 = wg.Var(1.5), wg.Var(0.5)
    y = f(x1, x2)
    y.backward()
    assert wg.grad(y, [x1, x2]) == [x1.grad, x2.grad]
    assert wg.grad(y, x1) == x1.grad
    assert r1.tangent == pytest.approx(x1.grad, rel=1e-15)
