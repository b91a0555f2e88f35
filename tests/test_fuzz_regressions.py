"""What the differential fuzzer (tests/test_fuzz.py) found, kept as regression tests."""

import wengert as wg


def test_second_derivatives_at_the_fold_of_symmetric_rules():
    # tanh', sigmoid' and softplus' fold x to |x| so exp never overflows; abs's
    # derivative at 0 (the subgradient 0) then made every higher derivative at exactly 0
    # come out as if the function were flat there: softplus''(0) was 0, not 1/4.
    f = wg.softplus
    assert wg.compile(f).hessian(0.0) == 0.25
    assert wg.grad(wg.grad(f))(0.0) == 0.25
    assert wg.derivative(wg.derivative(wg.derivative(wg.sigmoid)))(0.0) == -0.125
    assert wg.derivative(wg.derivative(wg.derivative(wg.tanh)))(0.0) == -2.0


def test_the_mixed_second_derivative_of_pow_where_the_exponent_is_zero():
    # d2/dx dy y**x = y**(x-1) (1 + x log y), 1 at (0, 1): the partial d/dy was a constant
    # 0 where x == 0 (to keep 0 * inf out), which dropped its derivative in x.
    f = lambda x, y: y**x  # noqa: E731
    H = wg.compile(f).hessian(0.0, 1.0, wrt=(0, 1))
    assert [[float(h) for h in row] for row in H] == [[0.0, 1.0], [1.0, 0.0]]
    assert wg.grad(wg.grad(f, wrt=1), wrt=0)(0.0, 2.0) == 0.5
    assert wg.grad(wg.grad(f, wrt=0), wrt=1)(0.0, 2.0) == 0.5
    # The first derivatives keep their values there, +0 included.
    assert str(wg.grad(f, wrt=1)(0.0, 2.0)) == "0.0"
    assert str(wg.grad(f, wrt=1)(-0.0, 2.0)) == "0.0"


def test_dual_products_keep_strong_zero():
    # The product rule multiplied a zero tangent by an infinite factor: 0 * inf + 1 = nan.
    y = wg.Dual(1.0, 0.0) * wg.Dual(float("inf"), 1.0)
    assert y.tangent == 1.0
    assert wg.jvp(lambda a, b: a * b, (1.0, float("inf")), (0.0, 1.0))[1] == 1.0


def test_derivative_graphs_on_plain_floats_follow_ieee():
    # A nested transform evaluates the inner derivative graph on the arguments as given,
    # plain floats among them: Python's float `/` raised ZeroDivisionError at 0 (sqrt' and
    # sinc' at 0) and `**` of a negative base gave a complex number (found by the fuzzer
    # on sinc). IEEE results, as everywhere else: inf, nan.
    import math

    h = lambda x, y: wg.sqrt(x) * y  # noqa: E731
    assert wg.grad(lambda y: wg.grad(h, wrt=0)(0.0, y))(1.0) == math.inf
    f = lambda x, y: wg.sinc(x) * y  # noqa: E731
    assert wg.grad(lambda y: wg.grad(f, wrt=0)(0.0, y))(1.0) == 0.0
    g = lambda x, y: x**3.5 * y  # noqa: E731
    assert math.isnan(wg.grad(lambda y: wg.grad(g, wrt=0)(-8.0, y))(1.0))
