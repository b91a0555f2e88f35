"""wg.compile: batch values and derivatives against hand-written NumPy derivatives."""

from __future__ import annotations

import os
import pickle
import threading

import numpy as np
import pytest

import wengert as wg

RNG = np.random.default_rng(20261123)
N = 100_000


def close(got, want, tol=1e-13):
    """Error relative to the reference's scale (so values near 0 do not inflate it)."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, (got.shape, want.shape)
    err = np.abs(got - want) / (np.abs(want) + 1.0)
    assert np.all(err <= tol), float(np.max(err))


# -- the examples of the issue ------------------------------------------------------------


def griewank(x1, x2):
    a = x1 / x2
    b = wg.exp(x2)
    return (wg.sin(a) + a - b) * (a - b)


def griewank_by_hand(x1, x2):
    a, b = x1 / x2, np.exp(x2)
    left, right = np.sin(a) + a - b, a - b
    dy_da = (np.cos(a) + 1) * right + left
    dy_db = -right - left
    return left * right, dy_da / x2, dy_da * (-x1 / x2**2) + dy_db * b


def test_griewank_batch_matches_hand_written_gradient():
    F = wg.compile(griewank)
    x1, x2 = RNG.uniform(0.5, 3, N), RNG.uniform(0.2, 2, N)
    v, (g1, g2) = F.value_and_grad(x1, x2, wrt=(0, 1))
    rv, r1, r2 = griewank_by_hand(x1, x2)
    close(v, rv)
    close(g1, r1)
    close(g2, r2)
    close(F(x1, x2), rv)
    assert F.grad(x1, x2, wrt=1).shape == (N,)


def test_single_point_gives_plain_results_and_the_seed_digits():
    F = wg.compile(griewank)
    v, (g1, g2) = F.value_and_grad(1.5, 0.5, wrt=(0, 1))
    assert np.shape(v) == () and np.shape(g1) == ()
    assert abs(v - 2.016646669428201) < 1e-14
    assert abs(g1 - 3.011843327673907) <= 1e-13 * 3.02
    assert abs(g2 + 13.723961509314076) <= 1e-13 * 13.8


def rosen(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def rosen_grad_by_hand(x):
    g = np.zeros_like(x)
    d = x[:, 1:] - x[:, :-1] ** 2
    g[:, :-1] += -400 * x[:, :-1] * d - 2 * (1 - x[:, :-1])
    g[:, 1:] += 200 * d
    return g


def test_rosenbrock_vector_argument():
    R = wg.compile(rosen, shapes=[16])
    X = RNG.uniform(-2, 2, (N, 16))
    v, g = R.value_and_grad(X)
    want = np.sum(100 * (X[:, 1:] - X[:, :-1] ** 2) ** 2 + (1 - X[:, :-1]) ** 2, axis=1)
    close(v, want)
    # Sums of terms of magnitude ~1e4 that cancel: rounding of the terms, not of the result.
    close(g, rosen_grad_by_hand(X), 1e-12)
    assert g.shape == (N, 16)


def test_vector_argument_arrives_as_an_array():
    seen = []

    @wg.compile(shapes=[3])
    def f(x):
        seen.append((type(x), np.shape(x)))
        return np.sum(x[1:] * x[:-1])

    assert seen == [(np.ndarray, (3,))]
    x = np.array([[1.0, 2.0, 3.0]])
    close(f(x), [1 * 2 + 2 * 3])
    close(f.grad(x), [[2.0, 1 + 3, 2.0]])


def loss(theta, x, y):
    return (theta[0] + theta[1] * x + theta[2] * x**2 - y) ** 2


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_least_squares_with_shared_parameters_and_reduce(reduce):
    L = wg.compile(loss, shapes=[3, (), ()])
    theta = np.array([0.5, -1.0, 2.0])
    x, y = RNG.normal(size=N), RNG.normal(size=N)
    r = theta[0] + theta[1] * x + theta[2] * x**2 - y
    scale = 1.0 if reduce == "sum" else 1.0 / N
    v, (gt, gx) = L.value_and_grad(theta, x, y, wrt=(0, 1), reduce=reduce)
    assert np.shape(v) == () and gt.shape == (3,) and gx.shape == (N,)
    close(v, scale * np.sum(r**2), 1e-12)
    close(gt, scale * np.array([np.sum(2 * r), np.sum(2 * r * x), np.sum(2 * r * x**2)]), 1e-12)
    close(gx, scale * 2 * r * (theta[1] + 2 * theta[2] * x))
    # Unreduced: one gradient per row, even for the shared parameters.
    v, gt = L.value_and_grad(theta, x, y)
    assert v.shape == (N,) and gt.shape == (N, 3)
    close(gt[:, 2], 2 * r * x**2)


# -- vector outputs ------------------------------------------------------------------------


def vec(x):
    return [x[0] * x[1], wg.sin(x[2]), x[0] + x[2] ** 2, wg.exp(x[1]) * x[0]]


def vec_jacobian_by_hand(X):
    x0, x1, x2 = X[:, 0], X[:, 1], X[:, 2]
    z = np.zeros_like(x0)
    rows = [
        [x1, x0, z],
        [z, z, np.cos(x2)],
        [np.ones_like(x0), z, 2 * x2],
        [np.exp(x1), np.exp(x1) * x0, z],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)  # (N, 4, 3)


def test_jacobian_jvp_vjp_of_a_vector_function():
    F = wg.compile(vec, shapes=[3])
    X = RNG.normal(size=(1000, 3))
    J = vec_jacobian_by_hand(X)
    close(F.jacobian(X), J)  # 4 outputs, 3 inputs: forward sweeps
    T = RNG.normal(size=(1000, 3))
    v, t = F.jvp((X,), (T,))
    assert v.shape == (1000, 4)
    close(t, np.einsum("nij,nj->ni", J, T))
    C = RNG.normal(size=(1000, 4))
    v, (g,) = F.vjp((X,), C)
    close(g, np.einsum("ni,nij->nj", C, J))
    # A shared cotangent broadcasts over the rows.
    _, (g,) = F.vjp((X,), np.array([1.0, 0.0, 0.0, 0.0]))
    close(g, J[:, 0, :])


def test_jacobian_by_reverse_sweeps_when_outputs_are_fewer():
    F = wg.compile(lambda x: [x[0] * x[1] * x[2] * x[3], wg.log(x[4]) + x[0]], shapes=[5])
    X = RNG.uniform(0.5, 2, (100, 5))
    J = F.jacobian(X)
    assert J.shape == (100, 2, 5)
    p = np.prod(X[:, :4], axis=1)
    want0 = np.stack([p / X[:, i] for i in range(4)] + [np.zeros(100)], axis=-1)
    want1 = np.stack([np.ones(100), *[np.zeros(100)] * 3, 1 / X[:, 4]], axis=-1)
    close(J[:, 0], want0)
    close(J[:, 1], want1)


def test_jacobian_of_two_arguments_splits_columns():
    F = wg.compile(lambda t, x: [t * x[0], t * x[1]], shapes=[(), 2])
    jt, jx = F.jacobian(2.0, np.array([3.0, 4.0]), wrt=(0, 1))
    close(jt, [3.0, 4.0])
    close(jx, [[2.0, 0.0], [0.0, 2.0]])


def test_scalar_only_transforms_say_what_to_use_instead():
    F = wg.compile(vec, shapes=[3])
    with pytest.raises(ValueError, match="jacobian"):
        F.value_and_grad(np.ones(3))


# -- where and branches --------------------------------------------------------------------


def test_where_records_a_select_with_its_gradient():
    F = wg.compile(lambda x, y: wg.where(x > y, x * y, x - 2 * y))
    x, y = RNG.normal(size=N), RNG.normal(size=N)
    v, (gx, gy) = F.value_and_grad(x, y, wrt=(0, 1))
    up = x > y
    close(v, np.where(up, x * y, x - 2 * y))
    close(gx, np.where(up, y, 1.0))
    close(gy, np.where(up, x, -2.0))


@pytest.mark.parametrize(
    "body",
    [
        lambda x: x if x > 0 else -x,
        lambda x: max(x, 0.0),
        lambda x: x * 2 if bool(x != 1.0) else x,
    ],
)
def test_branching_on_a_traced_value_follows_each_row(body):
    # Once refused (TypeError pointing to wg.where); now each row takes its own branch.
    F = wg.compile(body)
    X = np.array([-2.0, 1.0, 3.0, 0.0])
    want = [float(body(wg.Var(x))) for x in X]
    assert F(X).tolist() == want


def test_float_of_a_traced_value_raises():
    import math

    with pytest.raises(TypeError, match="wg.sin"):
        wg.compile(lambda x: math.sin(x))


# -- broadcasting, dtypes, strides ---------------------------------------------------------


def test_two_dimensional_batches_broadcast():
    F = wg.compile(lambda a, b: a * wg.exp(b))
    a = RNG.normal(size=(50, 1))
    b = RNG.normal(size=(1, 40))
    v, (ga, gb) = F.value_and_grad(a, b, wrt=(0, 1))
    assert v.shape == (50, 40)
    close(v, a * np.exp(b))
    close(ga, np.broadcast_to(np.exp(b), (50, 40)))
    close(gb, a * np.exp(b))
    # Reduced: each gradient has its argument's own shape.
    v, (ga, gb) = F.value_and_grad(a, b, wrt=(0, 1), reduce="sum")
    close(v, np.sum(a * np.exp(b)), 1e-12)
    close(ga, np.sum(np.exp(b)) * np.ones((50, 1)), 1e-12)
    close(gb, np.sum(a) * np.exp(b), 1e-12)


@pytest.mark.parametrize(
    "convert",
    [
        lambda x: x.astype(np.float32),
        lambda x: np.round(x * 10).astype(np.int64),
        lambda x: x.tolist(),
        lambda x: np.repeat(x, 2)[::2],  # strided view
        lambda x: np.asfortranarray(np.stack([x, x], axis=1))[:, 0],
    ],
)
def test_any_real_dtype_and_stride_is_converted(convert):
    F = wg.compile(lambda x, y: x * x + y)
    x = RNG.normal(size=1001)
    cx = convert(x)
    ref = np.asarray(cx, dtype=np.float64)
    close(F(cx, 1.0), ref * ref + 1.0, 0.0)
    close(F.grad(cx, 1.0), 2 * ref, 0.0)


def test_vector_argument_in_fortran_order():
    R = wg.compile(rosen, shapes=[16])
    X = RNG.normal(size=(300, 16))
    close(R(np.asfortranarray(X)), R(X), 0.0)
    close(R.grad(X[:, ::-1].copy()[:, ::-1]), R.grad(X), 0.0)


def test_nan_in_one_row_stays_in_that_row():
    F = wg.compile(griewank)
    x1, x2 = RNG.uniform(0.5, 3, 1000), RNG.uniform(0.2, 2, 1000)
    x1[17] = np.nan
    x2[400] = np.inf
    v, (g1, g2) = F.value_and_grad(x1, x2, wrt=(0, 1))
    bad = np.zeros(1000, bool)
    bad[[17, 400]] = True
    assert np.isnan(v[17]) and np.isnan(g1[17])
    rv, r1, r2 = griewank_by_hand(x1[~bad], x2[~bad])
    close(v[~bad], rv)
    close(g2[~bad], r2)


def test_ieee_results_without_warnings_or_errors():
    F = wg.compile(lambda x: wg.log(x) + 1 / x)
    v = F(np.array([0.0, -1.0, 1.0]))
    assert v[0] != v[0] or np.isinf(v[0])
    assert np.isnan(v[1]) and v[2] == 1.0


# -- threads, kernels --------------------------------------------------------------------


def test_results_do_not_depend_on_the_thread_count():
    L = wg.compile(loss, shapes=[3, (), ()])
    theta = np.array([0.1, 0.2, 0.3])
    x, y = RNG.normal(size=300_001), RNG.normal(size=300_001)
    before = wg.get_num_threads()
    try:
        out = []
        for t in (1, 2, 3):
            wg.set_num_threads(t)
            assert wg.get_num_threads() == t
            out.append(L.value_and_grad(theta, x, y, wrt=(0, 1), reduce="sum"))
        for v, (gt, gx) in out[1:]:
            assert v == out[0][0]
            assert np.array_equal(gt, out[0][1][0]) and np.array_equal(gx, out[0][1][1])
    finally:
        wg.set_num_threads(before)
    with pytest.raises(ValueError, match="at least 1"):
        wg.set_num_threads(0)


def test_every_kernel_build_gives_the_same_bits(engine_env):
    """Portable, AVX2 + FMA and AVX-512 builds (those this CPU has), interpreter and
    native code: the same bits (any NaN counting as one)."""
    from wengert import _core

    def run():
        F = wg.compile(lambda x, y: wg.tanh(x) * wg.exp(y) + wg.log1p(x * x) / wg.cosh(y) + wg.sigmoid(x - y))
        x, y = np.linspace(-5, 5, 4099), np.linspace(3, -3, 4099)
        v, (gx, gy) = F.value_and_grad(x, y, wrt=(0, 1))
        return np.concatenate([v, gx, gy, F.jvp((x, y), (y, x))[1]])

    engine_env("WENGERT_ISA", None)
    best = _core._engine_settings()[1]
    isas = ["portable", "avx2", "avx512"]
    results = {}
    for isa in isas[: isas.index(best) + 1]:
        for jit in ("0", "1"):
            engine_env("WENGERT_ISA", isa)
            engine_env("WENGERT_JIT", jit)
            assert _core._engine_settings() == (("off", "on")[int(jit)], isa)
            results[isa, jit] = run()
    first = next(iter(results.values()))
    for key, got in results.items():
        assert np.array_equal(first, got, equal_nan=True), key


def test_calls_from_several_python_threads():
    F = wg.compile(griewank)
    x1, x2 = RNG.uniform(0.5, 3, 20_000), RNG.uniform(0.2, 2, 20_000)
    want = F.value_and_grad(x1, x2, wrt=(0, 1))
    got = [None] * 4

    def work(i):
        got[i] = F.value_and_grad(x1, x2, wrt=(0, 1))

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for v, (a, b) in got:
        assert np.array_equal(v, want[0]) and np.array_equal(a, want[1][0]) and np.array_equal(b, want[1][1])


# -- the compiled program ------------------------------------------------------------------


def test_optimisation_folds_constants_and_shares_subexpressions():
    def f(x, y):
        a = x * y
        b = y * x  # same as a
        unused = wg.exp(x)  # dead  # noqa: F841
        return a + b * (2.0 * 3.0 - 5.0) - 0.0  # x - 0.0 is x; x + 0.0 is not (at -0.0)

    F = wg.compile(f)
    assert F.n_instructions == 2  # x*y, then a + a
    close(F.grad(3.0, 4.0, wrt=(0, 1)), (8.0, 6.0))


def test_unused_argument_and_constant_output():
    F = wg.compile(lambda x, y: 2 * x)
    close(F.grad(np.ones(5), np.ones(5), wrt=1), np.zeros(5))
    C = wg.compile(lambda x: 3.0)
    close(C(np.ones(4)), np.full(4, 3.0))
    close(C.grad(np.ones(4)), np.zeros(4))
    I = wg.compile(lambda x: x)
    close(I.grad(np.arange(3.0)), np.ones(3))


def test_to_dot_lists_the_instructions():
    dot = wg.compile(griewank).to_dot()
    assert dot.startswith("digraph") and dot.count("label=\"sin\"") == 1 and "output 0" in dot


def module_level(x, y):
    return wg.hypot(x, y) * wg.atan2(y, x)


@pytest.mark.parametrize("fn", [module_level, lambda x, y: x * wg.cbrt(y)])
def test_pickle_round_trips(fn):
    F = wg.compile(fn)
    G = pickle.loads(pickle.dumps(F))
    x, y = RNG.uniform(0.5, 2, 100), RNG.uniform(0.5, 2, 100)
    assert np.array_equal(G(x, y), F(x, y))
    assert np.array_equal(G.grad(x, y, wrt=1), F.grad(x, y, wrt=1))
    if fn is module_level:
        assert G.__wrapped__ is module_level


# -- errors --------------------------------------------------------------------------------


def test_bad_arguments_name_the_argument_and_the_function_keeps_working():
    R = wg.compile(rosen, shapes=[16])
    L = wg.compile(loss, shapes=[3, (), ()])
    cases = [
        (lambda: R(np.ones((5, 15))), ValueError, r"'x'.*\(16,\)"),
        (lambda: R(np.ones(3)), ValueError, r"'x'.*\(16,\)"),
        (lambda: L(np.ones(3), np.ones(4), np.ones(5)), ValueError, "broadcast"),
        (lambda: L(np.ones(3), np.array(["a", "b"]), 1.0), TypeError, "'x'.*real"),
        (lambda: L(np.ones(3), np.ones(2) * 1j, 1.0), TypeError, "'x'.*complex"),
        (lambda: L(np.ones(3), [[1.0, 2.0], [3.0]], 1.0), ValueError, "'x'"),
        (lambda: L(np.ones(3), 1.0), TypeError, "takes 3 arguments"),
        (lambda: L.grad(np.ones(3), 1.0, 1.0, wrt=3), ValueError, "wrt"),
        (lambda: L.grad(np.ones(3), 1.0, 1.0, wrt="theta"), ValueError, "wrt"),
        (lambda: L(np.ones(3), 1.0, 1.0, reduce="max"), ValueError, "reduce"),
        (lambda: L.vjp((np.ones(3), 1.0, 1.0), np.ones(2)), ValueError, "cotangent"),
        (lambda: L.jvp((np.ones(3), 1.0, 1.0), (np.ones(3),)), TypeError, "tangents"),
        (lambda: L(None, 1.0, 1.0), TypeError, "'theta'"),
    ]
    for call, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            call()
    close(L(np.ones(3), 1.0, 1.0), 4.0)


def test_bad_compile_requests():
    with pytest.raises(TypeError, match="callable"):
        wg.compile(3)
    # (A variadic function is no longer refused: its first call gives the arity.)
    assert float(wg.compile(lambda *a: a[0], shapes=None)(2.0, 3.0)) == 2.0
    with pytest.raises(ValueError, match=r"shapes\[0\]"):
        wg.compile(lambda x: x, shapes=[0])
    with pytest.raises(TypeError, match="output 0"):
        wg.compile(lambda x: "text")
    leaked = []
    wg.compile(lambda x: leaked.append(x) or x)
    with pytest.raises(ValueError, match="another wg.compile trace"):
        wg.compile(lambda x: x + leaked[0])


def test_empty_batch():
    F = wg.compile(griewank)
    v, g = F.value_and_grad(np.ones(0), np.ones(0))
    assert v.shape == (0,) and g.shape == (0,)


def test_environment_sets_threads_in_a_fresh_process():
    import subprocess
    import sys

    code = "import wengert as wg; print(wg.get_num_threads())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "WENGERT_NUM_THREADS": "3"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "3"


# -- native code and the interpreter ------------------------------------------------------

ENGINE_SCRIPT = """
import sys, numpy as np, wengert as wg

def f(x, y):
    s = wg.where(x[0] > y, x[1] * y, x[2] / y)
    for i in range(3):
        s = s * x[i] - wg.sqrt(x[(i + 1) % 3] * x[(i + 1) % 3] + 1.0) + wg.exp(-y)
    return s

F = wg.compile(f, shapes=[3, ()])
rng = np.random.default_rng(7)
x = rng.uniform(-2.0, 2.0, (1003, 3))
x[5, 1] = np.nan
x[9, 0] = np.inf
y = rng.uniform(0.5, 1.5, 1003)
v, (gx, gy) = F.value_and_grad(x, y, wrt=(0, 1))
np.save(sys.stdout.buffer, np.concatenate([F(x, y), v, gx.ravel(), gy]))
"""


def test_native_code_and_the_interpreter_give_the_same_numbers():
    """WENGERT_JIT=1 (native kernels) and 0 (interpreter): identical results, NaN included."""
    import io
    import subprocess
    import sys

    out = {}
    for mode in ("0", "1"):
        env = dict(os.environ, WENGERT_JIT=mode)
        run = subprocess.run(
            [sys.executable, "-c", ENGINE_SCRIPT], env=env, capture_output=True, check=True
        )
        out[mode] = np.load(io.BytesIO(run.stdout))
    assert np.isnan(out["0"]).any()
    np.testing.assert_array_equal(out["0"], out["1"])


def test_engine_variables_are_read_once_and_on_reload(engine_env):
    """WENGERT_JIT, WENGERT_ISA and WENGERT_PORTABLE are read at first use, not per call (a one-row call
    should not scan the environment); `_reload_settings` reads them again."""
    from wengert import _core

    engine_env("WENGERT_JIT", "0")
    engine_env("WENGERT_PORTABLE", "1")
    assert _core._engine_settings() == ("off", "portable")
    os.environ["WENGERT_JIT"] = "1"  # not seen until reloaded
    assert _core._engine_settings() == ("off", "portable")
    engine_env("WENGERT_JIT", "1")
    engine_env("WENGERT_PORTABLE", None)
    engine_env("WENGERT_ISA", "portable")
    assert _core._engine_settings() == ("on", "portable")
    engine_env("WENGERT_ISA", None)
    assert _core._engine_settings()[1] in ("portable", "avx2", "avx512")
    engine_env("WENGERT_JIT", "anything else")
    assert _core._engine_settings()[0] == "auto"
