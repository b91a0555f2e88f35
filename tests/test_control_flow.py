"""Python control flow in compiled functions: each row gets what calling f on it gives.

Every compiled result is compared with the Python function called row by row on ``Var``
(eager reverse mode) or ``Dual``: to the bit where only arithmetic is involved (the same
IEEE operations in every engine), within a few ulps where the engine's vectorised
``exp``/``sin`` differ from libm's. Rows in a mixed batch must also give, to the bit,
what each row alone gives (the dispatch to branch patterns never changes a number).
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import wengert as wg

RTOL = 1e-14


def eager(f, *xs, wrt=None):
    """Value and gradient of ``f`` at one point, eagerly (Var)."""
    vs = [wg.Var(float(x)) for x in xs]
    y = f(*vs)
    if not isinstance(y, wg.Var):
        return float(y), [0.0] * len(vs)
    return y.value, wg.grad(y, vs)


def eager_rows(f, *cols):
    vals, grads = [], []
    for row in zip(*cols):
        v, g = eager(f, *row)
        vals.append(v)
        grads.append(g)
    return np.array(vals), np.array(grads)


def close(a, b, rtol=RTOL):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=1e-300, equal_nan=True)


def same(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


# -- piecewise functions --------------------------------------------------------------


def piecewise(x):
    if x > 0:
        return wg.sin(x) * x
    return wg.exp(x) - 1


def piecewise_arith(x, y):
    if x * y > 1:
        return x * x - y
    elif x < y:
        return x / y + 3 * x
    else:
        return y * y * x


@pytest.mark.parametrize("first", [np.array([1.5]), np.array([-1.5])], ids=["traced on x>0", "traced on x<=0"])
def test_piecewise_traced_on_either_side_then_rows_of_both(first):
    F = wg.compile(piecewise)
    F(first)
    X = np.linspace(-3, 3, 61)
    v, g = F.value_and_grad(X)
    ev, eg = eager_rows(piecewise, X)
    assert close(v, ev) and close(g, eg[:, 0])
    assert F.n_traces == 2
    # Each row of the mixed batch is what it gives alone, to the bit.
    for i in range(0, 61, 7):
        vi, gi = F.value_and_grad(X[i : i + 1])
        assert same(vi, v[i : i + 1]) and same(gi, g[i : i + 1])


def test_piecewise_of_pure_arithmetic_is_bit_for_bit_the_eager_function():
    F = wg.compile(piecewise_arith)
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=200) * 2, rng.normal(size=200) * 2
    v, (gx, gy) = F.value_and_grad(X, Y, wrt=(0, 1))
    ev, eg = eager_rows(piecewise_arith, X, Y)
    assert same(v, ev) and same(gx, eg[:, 0]) and same(gy, eg[:, 1])
    assert F.n_traces == 3


def test_every_job_follows_the_rows_branches():
    F = wg.compile(piecewise_arith)
    X = np.array([2.0, -1.0, 0.5, 3.0, -2.0, 0.1])
    Y = np.array([1.0, 2.0, 0.3, 0.1, -3.0, 0.2])
    ev, eg = eager_rows(piecewise_arith, X, Y)
    jx, jy = F.jacobian(X, Y, wrt=(0, 1))
    assert same(jx, eg[:, 0]) and same(jy, eg[:, 1])
    _, t = F.jvp((X, Y), (np.ones_like(X), np.full_like(Y, 0.5)))
    assert close(t, eg[:, 0] + 0.5 * eg[:, 1])
    _, (vx, vy) = F.vjp((X, Y), np.full_like(X, 2.0))
    assert same(vx, 2 * eg[:, 0]) and same(vy, 2 * eg[:, 1])
    H = F.hessian(X, Y, wrt=(0, 1))
    for i, (x, y) in enumerate(zip(X, Y)):
        h = wg.hessian(piecewise_arith, wrt=(0, 1))(x, y)
        for a in range(2):
            for b in range(2):
                assert close(H[a][b][i], h[a][b]), (i, a, b)
    # Forward mode eagerly, row by row.
    for i, (x, y) in enumerate(zip(X, Y)):
        d = piecewise_arith(wg.Dual(x, 1.0), wg.Dual(y, 0.5))
        assert close(t[i], d.tangent)


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_reductions_over_rows_of_mixed_patterns(reduce):
    L = wg.compile(lambda th, x: (th[0] * x - th[1]) ** 2 if th[0] * x > th[1] else th[1] * x, shapes=[2, ()])
    th = np.array([1.5, 0.5])
    X = np.linspace(-2, 2, 41)
    v, g = L.value_and_grad(th, X, wrt=(0, 1), reduce=reduce)
    per = [eager(lambda a, b, x: (a * x - b) ** 2 if a * x > b else b * x, th[0], th[1], x) for x in X]
    k = len(X) if reduce == "mean" else 1
    assert close(v, sum(p[0] for p in per) / k, 1e-13)
    assert close(g[0], np.array([sum(p[1][0] for p in per), sum(p[1][1] for p in per)]) / k, 1e-13)
    assert close(g[1], np.array([p[1][2] for p in per]) / k)
    assert close(L(th, X, reduce=reduce), v)
    # Rows of one pattern only: the one-pass reduction, the same numbers as without guards.
    pos = X[X > 1]
    W = wg.compile(lambda th, x: (th[0] * x - th[1]) ** 2, shapes=[2, ()])
    assert same(L.value_and_grad(th, pos, reduce=reduce)[1], W.value_and_grad(th, pos, reduce=reduce)[1])
    _, tan = L.jvp((th, X), (np.array([1.0, 0.0]), np.zeros_like(X)), reduce=reduce)
    assert close(tan, g[0][0], 1e-13)


# -- loops ----------------------------------------------------------------------------


def halve(x):
    while x >= 1:
        x = x / 2
    return x * x


def test_while_with_1_to_50_trips_and_its_gradient_in_closed_form():
    trips = np.arange(1, 51)
    X = 0.75 * 2.0**trips  # halved `trips` times down to 0.75
    F = wg.compile(halve)
    v, g = F.value_and_grad(X)
    assert np.all(v == 0.75**2)
    # d/dx (x / 2**k)**2 = 2 x / 4**k
    assert same(g, 2 * X / 4.0**trips)
    assert F.n_traces == 50
    ev, eg = eager_rows(halve, X)
    assert same(v, ev) and same(g, eg[:, 0])
    assert same(F.hessian(X), 2 / 4.0**trips)


def newton_sqrt(a):
    y = a
    while abs(y * y - a) > 1e-12 * a:
        y = (y + a / y) / 2
    return y


def test_newton_to_a_tolerance_differentiates_in_reverse_mode_without_a_bound():
    A = np.array([0.25, 2.0, 10.0, 1e4, 1e8])
    F = wg.compile(newton_sqrt)
    v, g = F.value_and_grad(A)
    assert close(v, np.sqrt(A), 1e-12)
    assert close(g, 0.5 / np.sqrt(A), 1e-6)
    ev, eg = eager_rows(newton_sqrt, A)
    assert same(v, ev) and same(g, eg[:, 0])


# -- nested ifs, builtins, boolean logic, helpers ---------------------------------------


def quadrant(x, y):
    if x > 0:
        if y > 0:
            return x * y
        return x - y
    elif y > 0:
        if x < -1:
            return y / x
        return y * y
    return -x * y * y


def test_nested_ifs_with_five_patterns():
    rng = np.random.default_rng(7)
    X, Y = rng.normal(size=300) * 2, rng.normal(size=300) * 2
    F = wg.compile(quadrant)
    v, (gx, gy) = F.value_and_grad(X, Y, wrt=(0, 1))
    ev, eg = eager_rows(quadrant, X, Y)
    assert same(v, ev) and same(gx, eg[:, 0]) and same(gy, eg[:, 1])
    assert F.n_traces == 5


def mixes(x, y, z):
    a = max(x, y, 0.5)
    b = min(abs(x), y * z)
    s = sorted([x, y, z])
    return a * b + s[0] - 2 * s[1] + s[2] * abs(z)


def test_max_min_abs_sorted_mixes():
    rng = np.random.default_rng(3)
    X, Y, Z = (rng.normal(size=200) for _ in range(3))
    F = wg.compile(mixes)
    v, gs = F.value_and_grad(X, Y, Z, wrt=(0, 1, 2))
    ev, eg = eager_rows(mixes, X, Y, Z)
    assert same(v, ev)
    for k in range(3):
        assert same(gs[k], eg[:, k])


def _sign(x):
    """A helper that compares: guards are recorded wherever the comparison happens."""
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return 0.0


def logic(x, y):
    if (x > 0 and y > 0) or not (x > -1):
        return x * y * _sign(y)
    if x == 0.5:
        return x
    if x:  # truth of a number: x != 0
        return y / x
    return y


def test_and_or_not_helpers_truth_values_and_early_return():
    X = np.array([1.0, 1.0, -2.0, -0.5, 0.5, 0.0, -0.5, 3.0])
    Y = np.array([2.0, -1.0, -3.0, 2.0, 1.0, 4.0, -1.0, 0.0])
    F = wg.compile(logic)
    v, (gx, gy) = F.value_and_grad(X, Y, wrt=(0, 1))
    ev, eg = eager_rows(logic, X, Y)
    assert same(v, ev) and same(gx, eg[:, 0]) and same(gy, eg[:, 1])


def test_combined_conditions_for_where():
    def f(x, y):
        c = ((x > 0) & (y > 0)) | ~(x > -1)
        return wg.where(c, x * y, x + y) + wg.where(True & (x < y), x, 0.0)

    def f_eager(x, y):  # eagerly & and | combine bools; ~ of a bool is integer inversion
        c = ((x > 0) & (y > 0)) | (not (x > -1))
        return wg.where(c, x * y, x + y) + wg.where(True & (x < y), x, 0.0)

    F = wg.compile(f)
    assert F.n_traces == 1 and "branch patterns" not in repr(F)  # branch-free: no guard
    X = np.array([1.0, 1.0, -2.0, -0.5])
    Y = np.array([2.0, -1.0, -3.0, 2.0])
    v, (gx, gy) = F.value_and_grad(X, Y, wrt=(0, 1))
    ev, eg = eager_rows(f_eager, X, Y)
    assert same(v, ev) and same(gx, eg[:, 0]) and same(gy, eg[:, 1])
    # Their truth value is a branch decision like any other.
    G = wg.compile(lambda x, y: x if (x > 0) & (y > 0) else y)
    assert G(X, Y).tolist() == [1.0, -1.0, -3.0, 2.0]


def test_eager_comparisons_are_plain_bools_and_negation_needs_not():
    x, d = wg.Var(2.0), wg.Dual(2.0, 1.0)
    for c in (x > 1, d > 1, x == 2.0, 1 < d):
        assert type(c) is bool
    assert wg.where((x > 1) & (x < 3), x, -x).value == 2.0
    with pytest.raises(TypeError, match="not c"):
        wg.where(~(x > 1), x, -x)


# -- arity, nesting, pickling ----------------------------------------------------------


def test_variadic_functions_take_their_arity_from_the_first_call():
    F = wg.compile(lambda *xs: sum(x * x for x in xs) if xs[0] > 0 else xs[-1])
    assert "first call" in repr(F)
    X = np.array([1.0, -1.0])
    v, gs = F.value_and_grad(X, 2.0, np.array([3.0, 4.0]), wrt=(0, 1, 2))
    assert v.tolist() == [14.0, 4.0]
    assert [g.tolist() for g in gs] == [[2.0, 0.0], [4.0, 0.0], [6.0, 1.0]]
    with pytest.raises(TypeError, match="takes 3 arguments"):
        F(1.0, 2.0)
    # shapes= still rules.
    G = wg.compile(lambda *xs: xs[0][0] * xs[1], shapes=[2, ()])
    assert float(G(np.array([3.0, 1.0]), 2.0)) == 6.0


def test_a_compiled_function_that_branches_inside_another():
    inner = wg.compile(piecewise)
    outer = wg.compile(lambda x: 2 * inner(x))
    X = np.array([-1.0, 2.0])
    assert close(outer(X), 2 * np.array([piecewise(-1.0), piecewise(2.0)]).astype(float))


def test_nested_transforms_with_branches():
    f = lambda x: wg.sin(x) * x if x > 0 else x**3  # noqa: E731
    # Eager nesting: traced at the point, so the branch is the point's.
    assert close(wg.grad(wg.grad(f))(-1.0), -6.0)
    assert close(wg.grad(wg.grad(f))(1.0), 2 * math.cos(1.0) - math.sin(1.0))
    # Inside wg.compile the inner transform has no single point: a clear TypeError.
    with pytest.raises(TypeError, match="F.grad"):
        wg.compile(wg.grad(f))(np.array([1.0, -1.0]))


def test_pickle_with_the_function_retraces_new_patterns():
    F = wg.compile(quadrant)
    F(np.array([1.0]), np.array([1.0]))
    G = pickle.loads(pickle.dumps(F))
    X, Y = np.array([1.0, -2.0, 0.5, -0.5]), np.array([1.0, 1.0, -1.0, -1.0])
    assert same(G(X, Y), eager_rows(quadrant, X, Y)[0])
    assert G.n_traces == 4


def test_pickle_of_a_lambda_carries_its_traces_and_refuses_new_patterns():
    F = wg.compile(lambda x: x * x if x > 0 else -x)
    F(np.array([1.0, -1.0]))
    G = pickle.loads(pickle.dumps(F))
    assert G(np.array([2.0, -3.0])).tolist() == [4.0, 3.0]
    H = wg.compile(lambda x: x * x if x > 0 else -x)
    H(np.array([1.0]))
    H = pickle.loads(pickle.dumps(H))
    assert H.grad(np.array([2.0])).tolist() == [4.0]
    with pytest.raises(ValueError, match="not traced before the compiled function was pickled"):
        H(np.array([2.0, -3.0]))
    # Nothing traced yet and only the program travelled: the first call says so too.
    K = pickle.loads(pickle.dumps(wg.compile(lambda x: x if x > 0 else -x)))
    with pytest.raises(ValueError, match="pickled"):
        K(1.0)


# -- limits ------------------------------------------------------------------------------


def test_the_bound_on_branch_patterns_points_to_where():
    def steps(x):
        n = 0
        while x > 1:
            x = x - 1
            n += 1
        return x * n

    F = wg.compile(steps)
    with pytest.raises(ValueError, match=rf"more than {wg.MAX_VARIANTS} different branch patterns.*wg.where"):
        F(np.arange(100.0) + 0.5)
    assert F.n_traces == wg.MAX_VARIANTS
    # The patterns already cached still serve their rows.
    assert F(np.array([3.5])).tolist() == [1.5]


def test_a_loop_that_never_ends_raises_instead_of_hanging():
    def spin(x):
        while x > 0:
            x = x + 1
        return x

    F = wg.compile(spin)
    with pytest.raises(RuntimeError, match="does not end"):
        F(np.array([-1.0, 1.0]))
    assert F(np.array([-1.0])).tolist() == [-1.0]


def test_no_rows_and_branches_of_different_shapes():
    F = wg.compile(lambda x: x * x if x > 0 else -x)
    assert F(np.zeros(0)).shape == (0,) and F.grad(np.zeros(0)).shape == (0,)
    G = wg.compile(lambda x: [x, x] if x > 0 else x)
    G(1.0)
    with pytest.raises(ValueError, match="different shapes"):
        G(np.array([1.0, -1.0]))


def test_special_values_take_the_branch_python_takes():
    F = wg.compile(lambda x: x * 2 if x > 0 else x - 1)
    X = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324])
    assert same(F(X), [(x * 2 if x > 0 else x - 1) for x in X])


# -- both ways of checking guards ------------------------------------------------------


def cheap_guard(th, x):
    # The guard is on an input: checked in a pass of its own (it costs little).
    if x > 0:
        return wg.sin(x * th[0]) * wg.exp(th[1])
    return wg.log1p(x * x) * th[1]


def costly_guard(th, x):
    # The guard is on the result of the computation: checked within it.
    y = wg.sin(x * th[0]) * wg.exp(th[1])
    if y > 0.1:
        return y * y
    return y - th[0]


@pytest.mark.parametrize("fn, cheap", [(cheap_guard, True), (costly_guard, False)])
@pytest.mark.parametrize("reduce", [None, "sum", "mean"])
def test_both_checking_strategies_give_every_job_per_row(fn, cheap, reduce):
    F = wg.compile(fn, shapes=[2, ()])
    th = np.array([1.3, 0.4])
    X = np.linspace(-2, 2, 37)
    F(th, X[:1])
    assert F._variants[0].cheap is cheap
    v, (gt, gx) = F.value_and_grad(th, X, wrt=(0, 1), reduce=reduce)
    per = [eager(lambda a, b, x: fn(np.array([a, b], dtype=object), x), th[0], th[1], x) for x in X]
    ev = np.array([p[0] for p in per])
    eg = np.array([p[1] for p in per])
    k = {None: None, "sum": 1.0, "mean": len(X)}[reduce]
    if reduce is None:
        assert close(v, ev, 1e-13) and close(gt, eg[:, :2], 1e-13) and close(gx, eg[:, 2], 1e-13)
    else:
        assert close(v, ev.sum() / k, 1e-13)
        assert close(gt, eg[:, :2].sum(axis=0) / k, 1e-13) and close(gx, eg[:, 2] / k, 1e-13)
    _, t = F.jvp((th, X), (np.array([1.0, 0.0]), np.ones_like(X)), reduce=reduce)
    want = eg[:, 0] + eg[:, 2]
    assert close(t, want if reduce is None else want.sum() / k, 1e-12)
    if reduce is None:
        _, (ct, cx) = F.vjp((th, X), np.full_like(X, 0.5))
        assert close(ct, 0.5 * eg[:, :2], 1e-13) and close(cx, 0.5 * eg[:, 2], 1e-13)
        jt = F.jacobian(th, X, wrt=0)
        assert close(jt, eg[:, :2], 1e-13)
        # Pickled, the strategy and every pattern travel.
        G = pickle.loads(pickle.dumps(F))
        assert G._variants[0].cheap is cheap and same(G(th, X), F(th, X))


# -- rows that all follow the first trace: one flagged pass -----------------------------


def _builds(engine_env):
    """Every (ISA, native code) build this CPU has, each set in turn."""
    from wengert import _core

    engine_env("WENGERT_ISA", None)
    best = _core._engine_settings()[1]
    isas = ["portable", "avx2", "avx512"]
    for isa in isas[: isas.index(best) + 1]:
        for jit in ("0", "1"):
            engine_env("WENGERT_ISA", isa)
            engine_env("WENGERT_JIT", jit)
            yield isa, jit


class _Spy:
    """A program that counts the calls of each of its methods."""

    def __init__(self, prog):
        self.prog = prog
        self.calls: dict[str, int] = {}

    def __getattr__(self, name):
        attr = getattr(self.prog, name)
        if not callable(attr):
            return attr

        def call(*a, **k):
            self.calls[name] = self.calls.get(name, 0) + 1
            return attr(*a, **k)

        return call


def guarded_on_input(th, x):
    if x > 0:
        return wg.sin(x * th[0]) * wg.exp(th[1])
    return x


def unguarded_on_input(th, x):
    return wg.sin(x * th[0]) * wg.exp(th[1])


def guarded_on_result(th, x):
    y = wg.sin(x * th[0]) * wg.exp(th[1])
    if y > -10:
        return y * y
    return y


def unguarded_on_result(th, x):
    y = wg.sin(x * th[0]) * wg.exp(th[1])
    return y * y


def two_outputs_guarded(th, x):
    if x > 0:
        return [wg.sin(x * th[0]) * wg.exp(th[1]), x * th[1]]
    return [x, x]


def two_outputs_unguarded(th, x):
    return [wg.sin(x * th[0]) * wg.exp(th[1]), x * th[1]]


def _every_job(F, th, X, reduce):
    """Values, value_and_grad (scalar outputs), vjp (per row) and jvp, as arrays."""
    out = [np.asarray(F(th, X, reduce=reduce))]
    m = int(np.prod(F._shape_out))
    if m == 1:
        v, (gt, gx) = F.value_and_grad(th, X, wrt=(0, 1), reduce=reduce)
        out += [v, gt, gx]
    if reduce is None:
        ct = np.linspace(-1, 1, len(X) * m).reshape((len(X),) + F._shape_out)
        v, (ct_th, ct_x) = F.vjp((th, X), ct)
        out += [v, ct_th, ct_x]
    v, t = F.jvp((th, X), (np.array([1.0, -0.5]), np.cos(X)), reduce=reduce)
    return out + [v, t]


@pytest.mark.parametrize(
    "guarded, unguarded, cheap",
    [
        (guarded_on_input, unguarded_on_input, True),
        (guarded_on_result, unguarded_on_result, False),
        (two_outputs_guarded, two_outputs_unguarded, True),
    ],
)
def test_rows_on_the_first_trace_give_the_unguarded_bits_in_one_pass(engine_env, guarded, unguarded, cheap):
    th = np.array([1.3, 0.4])
    X = np.linspace(0.01, 3, 4099)  # several chunks, and a partial lane group
    for build in _builds(engine_env):
        G = wg.compile(guarded, shapes=[2, ()])
        P = wg.compile(unguarded, shapes=[2, ()])
        G(th, X[:1])
        v = G._variants[0]
        assert v.cheap is cheap
        spies = [_Spy(v.ext), _Spy(v.check), _Spy(v._plain)]
        v.ext, v.check, v._plain = spies
        for reduce in (None, "sum", "mean"):
            got, want = _every_job(G, th, X, reduce), _every_job(P, th, X, reduce)
            assert len(got) == len(want)
            for a, b in zip(got, want):
                assert np.array_equal(a, b), (build, reduce)
        # One flagged pass of the extended program per call: no check pass, no plain one.
        ext, check, plain = (s.calls for s in spies)
        assert set(ext) <= {"values_flagged", "vjp_flagged", "jvp_flagged"} and len(ext) >= 2, ext
        assert not check and not plain, (check, plain)
        assert G.n_traces == 1


def test_a_batch_where_some_rows_fail_gives_each_row_its_own_bits(engine_env):
    th = np.array([1.3, 0.4])
    pos = np.linspace(0.01, 3, 2051)
    mixed = np.linspace(-2, 2, 2051)
    every = range(0, 2051, 97)
    for fn in (guarded_on_input, costly_guard):
        for build in _builds(engine_env):
            F = wg.compile(fn, shapes=[2, ()])
            F(th, pos)  # traced on the positive side, every row served in one pass
            # Mixed, then all on the first trace again (straight to the mixed path, which
            # finds them all served), then the one flagged pass again; twice over.
            for X in (mixed, pos, pos, mixed, mixed, pos):
                v = F(th, X)
                vg, (gt, gx) = F.value_and_grad(th, X, wrt=(0, 1))
                _, t = F.jvp((th, X), (np.array([1.0, -0.5]), np.cos(X)))
                for i in every:
                    one = X[i : i + 1]
                    w, (wt, wx) = F.value_and_grad(th, one, wrt=(0, 1))
                    _, ti = F.jvp((th, one), (np.array([1.0, -0.5]), np.cos(one)))
                    assert v[i] == F(th, one)[0] == w[0] == vg[i], (build, i)
                    assert np.array_equal(gt[i], wt[0]) and gx[i] == wx[0], (build, i)
                    assert t[i] == ti[0], (build, i)
                assert close(F(th, X, reduce="sum"), np.sum(v), 1e-12)
                assert close(F.grad(th, X, reduce="mean"), np.mean(gt, axis=0), 1e-12)
            assert F.n_traces == 2
