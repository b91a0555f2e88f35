"""Branch patterns (wg.compile's variants) together with hvp, lane Hessians,
wg.debug_nans and pickles of the function by reference."""

import pickle

import numpy as np
import pytest

import wengert as wg


def piecewise(x):
    if x > 0:
        return x**3
    return wg.log(x + 2.0) * x


def _hvp_expected(x, v):
    # d2/dx2 of x**3 is 6x; of log(x + 2) * x it is 2/(x + 2) - x/(x + 2)**2.
    return np.where(x > 0, 6 * x, 2 / (x + 2) - x / (x + 2) ** 2) * v


X = np.array([1.5, -0.5, 2.0, -1.0, 0.25])


def test_hvp_follows_each_rows_branch():
    F = wg.compile(piecewise)
    v = np.array([1.0, 2.0, -1.0, 0.5, 3.0])
    np.testing.assert_allclose(F.hvp(X, v=v), _hvp_expected(X, v), rtol=1e-12)
    assert F.n_traces == 2
    np.testing.assert_allclose(F.hvp(X, v=2.0, reduce="sum"), _hvp_expected(X, 2.0), rtol=1e-12)


def test_hvp_reduced_over_shared_parameters_sums_each_patterns_rows():
    def loss(theta, x):
        if x > 0:
            return theta**2 * x
        return wg.sin(theta) * x

    F = wg.compile(loss)
    x = np.array([1.0, -2.0, 3.0, -0.5])
    theta = 0.7
    per_row = np.where(x > 0, 2 * x, -np.sin(theta) * x)
    assert F.hvp(theta, x, v=1.5, reduce="sum") == pytest.approx(1.5 * per_row.sum(), rel=1e-12)
    assert F.hvp(theta, x, v=1.5, reduce="mean") == pytest.approx(1.5 * per_row.mean(), rel=1e-12)


def test_lane_hessian_follows_each_rows_branch():
    F = wg.compile(piecewise)
    np.testing.assert_allclose(F.hessian(X), _hvp_expected(X, 1.0), rtol=1e-12)


def test_debug_nans_locates_the_op_when_every_row_follows_the_first_trace():
    F = wg.compile(piecewise)
    F(np.array([-0.5, 1.0]))  # two traces
    with wg.debug_nans(), pytest.raises(wg.NonFiniteError) as e:
        F(np.array([-3.0, -2.5]))  # both rows on the first (x <= 0) trace: log of a negative
    assert e.value.op == "log"


def test_debug_nans_raises_for_rows_of_several_branch_patterns():
    F = wg.compile(piecewise)
    with wg.debug_nans(), pytest.raises(wg.NonFiniteError) as e:
        F(np.array([1.0, -3.0, 2.0]))
    assert "rows [1]" in str(e.value)
    with wg.debug_nans(), pytest.raises(wg.NonFiniteError):
        F.grad(np.array([1.0, -3.0, 2.0]))
    with wg.debug_nans(), pytest.raises(wg.NonFiniteError):
        F.hessian(np.array([1.0, -3.0, 2.0]))
    with wg.debug_nans():  # finite: nothing raised
        assert F(np.array([1.0, -0.5])).shape == (2,)


def test_explain_uses_the_trace_of_the_rows_branch():
    F = wg.compile(piecewise)
    F(np.array([1.0, -0.5]))
    assert "log" in F.explain(-0.5)
    assert "log" not in F.explain(1.0)


def test_pickle_by_reference_keeps_every_branch_pattern_and_its_lines():
    F = wg.compile(piecewise)
    F(X)
    G = pickle.loads(pickle.dumps(F))
    assert G.n_traces == 2 and G._fn is piecewise
    np.testing.assert_array_equal(G(X), F(X))
    assert [v.sites for v in G._variants] == [v.sites for v in F._variants]
    assert any(s is not None for s in G._variants[1].sites)
