"""wg.debug_nans: where a non-finite value, tangent or adjoint was born (issue 16).

The NaN below is born in `log` of a negative intermediate three ops deep; every mode
must name `log`, the line that recorded it (LOG_LINE), the rows and the operands."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest

import wengert as wg


def f(x):
    a = x * 2.0
    b = a - 3.0
    c = wg.log(b)  # LOG_LINE
    return c * x


LOG_LINE = f"{__file__}:{inspect.getsource(f).splitlines().index('    c = wg.log(b)  # LOG_LINE') + f.__code__.co_firstlineno}"
X = np.array([3.0, 1.0, 4.0, 0.5, 2.0])  # rows 1 and 3 give 2x - 3 < 0


@pytest.fixture(autouse=True)
def check_off_after():
    yield
    wg.set_debug_nans(False)


@pytest.fixture(params=["0", "1"], ids=["interpreter", "native"])
def engine(request, engine_env):
    """Runs the test with the compiled interpreter, then with native code."""
    engine_env("WENGERT_JIT", request.param)
    return request.param


def _born_in_log(e, rows=(1, 3)):
    err = e.value
    assert isinstance(err, FloatingPointError) and isinstance(err, wg.NonFiniteError)
    msg = str(err)
    assert err.op == "log" and " in log " in msg, msg
    assert err.site == LOG_LINE and LOG_LINE in msg, msg
    if rows is not None:
        assert err.rows == list(rows) and err.n_rows == len(rows), msg
        assert f"{len(rows)} of {len(X)} rows" in msg and f"rows {', '.join(map(str, rows))}" in msg, msg
        assert err.operands == [-1.0] and "log(-1.0) = nan" in msg, msg
    return err


# -- compiled ----------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["values", "grad", "jacobian", "jvp", "vjp", "hessian", "sum"])
def test_compiled_names_log_line_and_rows(engine, call):
    F = wg.compile(f)
    run = {
        "values": lambda: F(X),
        "grad": lambda: F.grad(X),
        "jacobian": lambda: F.jacobian(X),
        "jvp": lambda: F.jvp((X,), (np.ones_like(X),)),
        "vjp": lambda: F.vjp((X,), np.ones_like(X)),
        "hessian": lambda: F.hessian(X),
        "sum": lambda: F(X, reduce="sum"),
    }[call]
    run()  # off: no exception, IEEE results
    with wg.debug_nans():
        with pytest.raises(FloatingPointError) as e:
            run()
    _born_in_log(e)


def test_compiled_vector_argument_and_batch_shape(engine):
    @wg.compile(shapes=[2])
    def g(v):
        return wg.sqrt(v[0] - v[1]) + v[0]

    V = np.array([[[2.0, 1.0], [1.0, 2.0]], [[3.0, 5.0], [4.0, 0.0]]])  # batch (2, 2)
    with wg.debug_nans(), pytest.raises(FloatingPointError) as e:
        g(V)
    err = e.value
    assert err.op == "sqrt" and err.n_rows == 2 and err.rows == [1, 2], str(err)
    assert "(0, 1), (1, 0)" in str(err) and "sqrt(-1.0) = nan" in str(err)


def test_the_site_survives_pickling(engine):
    F = pickle.loads(pickle.dumps(wg.compile(lambda x: f(x))))
    with wg.debug_nans(), pytest.raises(FloatingPointError) as e:
        F(X)
    _born_in_log(e)


def test_a_pickle_without_sites_reports_the_line_as_unknown():
    F = wg.compile(f)
    state = F.__getstate__()
    del state["sites"]
    G = wg.Compiled.__new__(wg.Compiled)
    G.__setstate__(state)
    with wg.debug_nans(), pytest.raises(FloatingPointError) as e:
        G(X)
    assert e.value.op == "log" and e.value.site is None and "source line unknown" in str(e.value)


# -- eager -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [wg.Var, wg.Dual])
def test_eager_ops_raise_where_the_nan_is_born(kind):
    f(kind(1.0))  # off: nothing raised
    with wg.debug_nans():
        with pytest.raises(FloatingPointError) as e:
            f(kind(1.0))
        _born_in_log(e, rows=None)
        assert e.value.operands == [-1.0] and "log(-1.0) = nan" in str(e.value)
        assert f(kind(3.0)).value == pytest.approx(3 * np.log(3.0))


def test_eager_tangent_born_non_finite():
    with wg.debug_nans(), pytest.raises(FloatingPointError) as e:
        wg.sqrt(wg.Dual(0.0, 1.0))
    assert e.value.kind == "tangent" and e.value.op == "sqrt"
    with wg.debug_nans():  # a zero tangent through an infinite partial is zero (strong zero)
        assert wg.sqrt(wg.Dual(0.0, 0.0)).tangent == 0.0


def test_eager_backward_names_the_op_whose_partial_made_the_adjoint_infinite():
    x = wg.Var(0.0)
    with wg.debug_nans():
        y = wg.sqrt(x) * 3.0; line = f"{__file__}:{inspect.currentframe().f_lineno}"  # noqa: E702
        with pytest.raises(FloatingPointError) as e:
            y.backward()
        err = e.value
        assert err.kind == "adjoint" and err.op == "sqrt" and err.site == line, str(err)
        assert err.operands == [0.0] and "partial inf" in str(err)
        with pytest.raises(FloatingPointError, match="in sqrt"):
            wg.grad(y, x)
    y.backward()  # off: IEEE
    assert x.grad == np.inf


def test_overflow_to_infinity():
    with wg.debug_nans():
        with pytest.raises(FloatingPointError, match=r"inf was born in exp .*exp\(1000.0\) = inf"):
            wg.exp(wg.Var(1000.0))
        with pytest.raises(FloatingPointError, match=r"inf was born in exp .* row 1"):
            wg.compile(lambda x: wg.exp(x) * 2).grad(np.array([1.0, 1000.0]))
        with pytest.raises(FloatingPointError, match="inf was born in exp"):
            wg.grad(lambda x: wg.exp(x))(1000.0)


# -- transforms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "transform",
    [
        lambda: wg.grad(f)(1.0),
        lambda: wg.value_and_grad(f)(1.0),
        lambda: wg.jacobian(f)(1.0),
        lambda: wg.derivative(f)(1.0),
        lambda: wg.jvp(f, (1.0,), (1.0,)),
        lambda: wg.vjp(f, (1.0,), 1.0),
        lambda: wg.hessian(f)(1.0),
        lambda: wg.jacobian(lambda v: [f(v[0]), f(v[1])])(np.array([3.0, 1.0])),
    ],
    ids=["grad", "value_and_grad", "jacobian", "derivative", "jvp", "vjp", "hessian", "jacobian-vector"],
)
def test_transforms_name_log_and_its_line(transform):
    transform()  # off: nothing raised
    with wg.debug_nans(), pytest.raises(FloatingPointError) as e:
        transform()
    _born_in_log(e, rows=None)
    assert e.value.operands == [-1.0]


def test_a_transform_of_a_branching_function_falls_back_to_eager_checks():
    def h(x):
        if x > 0:  # cannot be traced: the culprit is found by eager checks
            return wg.log(x - 2.0)
        return x

    with wg.debug_nans(), pytest.raises(FloatingPointError, match="born in log"):
        wg.grad(h)(1.0)


# -- inputs and strong zero ----------------------------------------------------------------


def test_a_nan_input_is_reported_as_an_input(engine):
    F = wg.compile(lambda x, y: wg.sin(x) * y)
    x = np.linspace(0.0, 1.0, 20)
    x[17] = np.nan
    with wg.debug_nans():
        for call in (lambda: F(x, 2.0), lambda: F.grad(x, 2.0), lambda: F.jacobian(x, 2.0)):
            with pytest.raises(FloatingPointError) as e:
                call()
            assert e.value.kind == "input" and e.value.op is None, str(e.value)
            assert "row 17 of argument 'x' is nan" in str(e.value)
        with pytest.raises(FloatingPointError, match="argument 'y' is inf"):
            F(1.0, np.inf)
        with pytest.raises(FloatingPointError, match="argument 'x' is nan"):
            wg.grad(lambda x: wg.sin(x))(np.nan)
        with pytest.raises(FloatingPointError, match="row 2 of tangent 'x' is nan"):
            F.jvp((x[:5], 1.0), (np.array([0, 0, np.nan, 0, 0]), 0.0))


def test_rows_born_bad_are_told_from_rows_fed_bad():
    F = wg.compile(f)
    x = X.copy()
    x[4] = np.nan
    with wg.debug_nans(), pytest.raises(FloatingPointError) as e:
        F(x)
    assert e.value.op == "log" and e.value.rows == [1, 3]


def safe_sqrt(x):
    return wg.where(x > 0, wg.sqrt(x), 0.0)


def test_nothing_raised_for_a_nan_only_on_the_unchosen_side_of_where(engine):
    F = wg.compile(safe_sqrt)
    x = np.array([-1.0, 0.0, 4.0])
    with wg.debug_nans():
        assert F(x).tolist() == [0.0, 0.0, 2.0]
        assert F.grad(x).tolist() == [0.0, 0.0, 0.25]
        assert F.jacobian(x).tolist() == [0.0, 0.0, 0.25]
        assert F.jvp((x,), (np.ones(3),))[1].tolist() == [0.0, 0.0, 0.25]
        assert F.hessian(x).tolist()[2] == pytest.approx(-1 / 32)
        assert wg.grad(safe_sqrt)(-1.0) == 0.0
        assert wg.derivative(safe_sqrt)(-1.0) == 0.0
        assert wg.grad(safe_sqrt)(0.0) == 0.0  # sqrt'(0) = inf is on the unchosen side too
        # A NaN on the chosen side is real.
        with pytest.raises(FloatingPointError, match="born in sqrt"):
            wg.compile(lambda x: wg.where(x > 0, 0.0, wg.sqrt(x)))(np.array([1.0, -1.0]))


# -- the check off ---------------------------------------------------------------------


def test_check_off_leaves_results_bit_identical(engine):
    rng = np.random.default_rng(16)
    x = rng.normal(size=1000) * 3
    G = wg.compile(lambda x: wg.log(x * x + 1.0) * wg.where(x > 0, wg.sqrt(x), x) + wg.exp(x))
    off = [G(x), G.grad(x), G.jacobian(x), G.jvp((x,), (np.ones_like(x),))[1], G.hessian(x)]
    with wg.debug_nans():  # every result finite: the fast path's numbers, untouched
        on = [G(x), G.grad(x), G.jacobian(x), G.jvp((x,), (np.ones_like(x),))[1], G.hessian(x)]
    again = [G(x), G.grad(x), G.jacobian(x), G.jvp((x,), (np.ones_like(x),))[1], G.hessian(x)]
    for a, b, c in zip(off, on, again):
        assert a.tobytes() == b.tobytes() == c.tobytes()
    # Non-finite results are returned as before once the check is off again.
    with wg.debug_nans(), pytest.raises(FloatingPointError):
        wg.compile(f)(X)
    assert np.isnan(wg.compile(f)(X)[[1, 3]]).all()
    v = wg.Var(0.5)
    y = wg.log(v * 2.0 - 3.0)
    assert np.isnan(y.value)


def test_switch_and_context_manager():
    assert not wg.debug_nans_enabled()
    wg.set_debug_nans(True)
    assert wg.debug_nans_enabled()
    with wg.debug_nans(False):
        assert not wg.debug_nans_enabled()
        wg.log(wg.Var(-1.0))
    assert wg.debug_nans_enabled()
    wg.set_debug_nans(False)

    @wg.debug_nans()
    def checked():
        return wg.log(wg.Var(-1.0))

    with pytest.raises(FloatingPointError):
        checked()
    assert not wg.debug_nans_enabled()


def test_explain_lists_one_row():
    F = wg.compile(f)
    text = F.explain(1.0)
    assert "log(%1)" in text and LOG_LINE in text and "not finite" in text
    assert "nan" in text
    with pytest.raises(ValueError, match="one point"):
        F.explain(X)
