"""Strong zero in every sweep, and every output slot written on every call.

A contribution whose adjoint (or tangent) is exactly zero adds nothing, whatever the
partial: a node the output does not depend on, or the unchosen side of a `where`, never
turns a derivative into NaN. Each engine (eager tape, interpreter, native code, forward
tangents, batch Hessians) is checked on its own, and interpreter and native code against
each other bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import wengert as wg
from wengert import _core


@pytest.fixture(params=["0", "1"], ids=["interpreter", "native"])
def engine(request, engine_env):
    """WENGERT_JIT=0 (interpreter) or 1 (native code wherever the host allows)."""
    engine_env("WENGERT_JIT", request.param)
    return request.param


ISAS = ["portable", "avx2", "avx512"]


@pytest.fixture(params=ISAS)
def isa(request, engine_env):
    """Each kernel build this CPU has: portable, AVX2 + FMA, AVX-512 (WENGERT_ISA caps it)."""
    engine_env("WENGERT_ISA", None)
    best = _core._engine_settings()[1]
    if ISAS.index(request.param) > ISAS.index(best):
        pytest.skip(f"this CPU has no {request.param}")
    engine_env("WENGERT_ISA", request.param)
    assert _core._engine_settings()[1] == request.param
    return request.param


def bits(a):
    return np.asarray(a, dtype=np.float64).view(np.uint64)


# -- eager tape ----------------------------------------------------------------------------


def test_an_unrelated_nan_partial_does_not_poison_the_eager_gradient():
    x = wg.Var(-1.0)
    s = wg.sqrt(x)  # partial 0.5 / sqrt(-1) = nan, adjoint 0: adds nothing
    (2 * x).backward()
    assert x.grad == 2.0
    assert np.isnan(s.value)


def test_logging_sqrt_of_a_square_at_zero_keeps_the_gradient():
    b = wg.Var(0.0)
    s = wg.sqrt(b * b)  # partial 0.5 / 0 = inf
    y = 3 * b
    y.backward()
    assert b.grad == 3.0
    assert s.value == 0.0


def test_eager_nan_adjoint_still_propagates():
    # Strong zero is about zero adjoints only: a NaN derivative on the path stays NaN.
    x = wg.Var(-1.0)
    wg.sqrt(x).backward()
    assert np.isnan(x.grad)


# -- compiled: interpreter and native code -------------------------------------------------


def where_sqrt():
    return wg.compile(lambda x: wg.where(x > 0, wg.sqrt(x), 0.0))


def test_where_sqrt_gradient_is_zero_on_the_unchosen_side(engine, isa):
    F = where_sqrt()
    g = F.grad(np.array([-1.0, 4.0]))
    assert bits(g).tolist() == bits([0.0, 0.25]).tolist()
    # Long enough for whole blocks and a partial lane group.
    x = np.linspace(-3, 3, 1001)
    g = F.grad(x)
    want = np.where(x > 0, 0.5 / np.sqrt(np.maximum(x, 1e-300)), 0.0)
    assert not np.isnan(g).any()
    np.testing.assert_allclose(g, want, rtol=1e-15)


def test_where_sqrt_hessian_is_zero_on_the_unchosen_side(engine):
    F = where_sqrt()
    assert F.hessian(-1.0) == 0.0
    np.testing.assert_allclose(F.hessian(4.0), -0.25 / 8.0, rtol=1e-15)
    h = F.hessian(np.array([-1.0, 0.0, 4.0]))
    assert not np.isnan(h[[0, 2]]).any()


def test_where_sqrt_jacobian_and_vjp(engine):
    F = where_sqrt()
    x = np.array([-1.0, 4.0])
    np.testing.assert_array_equal(F.jacobian(x), [0.0, 0.25])
    np.testing.assert_array_equal(F.vjp((x,), np.ones(2))[1][0], [0.0, 0.25])
    np.testing.assert_array_equal(F.jvp((x,), (np.ones(2),))[1], [0.0, 0.25])


def test_pow_forward_sweeps_agree_with_the_gradient(engine):
    F = wg.compile(lambda x, y: x**y)
    assert F.grad(-2.0, 2.0, wrt=0) == -4.0
    _, t = F.jvp((-2.0, 2.0), (1.0, 0.0))
    assert t == -4.0
    assert F.jacobian(-2.0, 2.0, wrt=0) == -4.0
    # The row of the Hessian in x alone: d2/dx2 x**y = y (y - 1) x**(y - 2) = 2.
    assert F.hessian(-2.0, 2.0, wrt=0) == 2.0


def test_interpreter_and_native_code_agree_bit_for_bit(engine_env):
    def run():
        F = wg.compile(lambda x, y: wg.where(x > 0, wg.sqrt(x) * y, x * x - y) + 0 * wg.log(y))
        x = np.concatenate([[-1.0, 0.0, -0.0, 4.0, np.inf, -np.inf, np.nan], np.linspace(-2, 2, 1000)])
        y = np.concatenate([[0.0, -1.0, 2.0, 0.0, 1.0, 3.0, 1.0], np.linspace(3, -3, 1000)])
        v, (gx, gy) = F.value_and_grad(x, y, wrt=(0, 1))
        return np.concatenate([v, gx, gy])

    engine_env("WENGERT_JIT", "0")
    interp = run()
    engine_env("WENGERT_JIT", "1")
    native = run()
    assert bits(interp).tolist() == bits(native).tolist()


# -- no stale memory -----------------------------------------------------------------------


def dirty_scratch():
    """Runs other compiled functions so the per-thread scratch holds large numbers."""
    X = np.arange(1.0, 2001.0)
    G = wg.compile(lambda a, b: [a * b * 7.0, a + b * 3.0, wg.exp(a * 1e-3) * b])
    G.jacobian(X, X, wrt=(0, 1))
    G.jvp((X, X), (X, X))
    G.vjp((X, X), np.ones((2000, 3)))
    H = wg.compile(lambda a: a * a * 9.0)
    H.grad(X)
    H.jvp((X,), (X,))


def test_a_constant_output_has_zero_jacobian_and_tangent(engine):
    T = wg.compile(lambda x, y: [x * y, 2.0])
    X = np.arange(1.0, 6.0)
    for _ in range(2):
        dirty_scratch()
        jx, jy = T.jacobian(X, X, wrt=(0, 1))
        np.testing.assert_array_equal(jx[:, 1], 0.0)
        np.testing.assert_array_equal(jy[:, 1], 0.0)
        np.testing.assert_array_equal(jx[:, 0], X)
        dirty_scratch()
        _, t = T.jvp((X, X), (X, X))
        np.testing.assert_array_equal(t[:, 1], 0.0)
        np.testing.assert_array_equal(t[:, 0], 2 * X * X)
        dirty_scratch()
        _, (gx, gy) = T.vjp((X, X), np.ones((5, 2)))
        np.testing.assert_array_equal(gx, X)


def test_a_constant_function_has_zero_derivatives(engine):
    C = wg.compile(lambda x: 3.0)
    X = np.arange(1.0, 6.0)
    for _ in range(2):
        dirty_scratch()
        v, t = C.jvp((X,), (X,))
        np.testing.assert_array_equal(v, 3.0)
        np.testing.assert_array_equal(t, 0.0)
        dirty_scratch()
        np.testing.assert_array_equal(C.grad(X), 0.0)
        np.testing.assert_array_equal(C.jacobian(X), 0.0)
        np.testing.assert_array_equal(C.hessian(X), 0.0)


def test_outputs_that_are_inputs_or_repeated(engine):
    F = wg.compile(lambda x, y: [x, y, x, 1.0, x * y, x * y])
    X, Y = np.arange(1.0, 8.0), np.arange(10.0, 17.0)
    for _ in range(2):
        dirty_scratch()
        jx, jy = F.jacobian(X, Y, wrt=(0, 1))
        np.testing.assert_array_equal(jx, np.stack([np.ones(7), 0 * X, np.ones(7), 0 * X, Y, Y], 1))
        np.testing.assert_array_equal(jy, np.stack([0 * X, np.ones(7), 0 * X, 0 * X, X, X], 1))
        dirty_scratch()
        _, t = F.jvp((X, Y), (np.ones(7), 2 * np.ones(7)))
        np.testing.assert_array_equal(t, np.stack([np.ones(7), 2 * np.ones(7), np.ones(7), 0 * X, Y + 2 * X, Y + 2 * X], 1))
        dirty_scratch()
        _, (gx, gy) = F.vjp((X, Y), np.ones((7, 6)))
        np.testing.assert_array_equal(gx, 2 + 2 * Y)
        np.testing.assert_array_equal(gy, 1 + 2 * X)


# -- Hessian blocks ------------------------------------------------------------------------


def test_hessian_wrt_one_argument_computes_only_its_block():
    # The full Hessian would be 1001 x 1001 per row: 8 GB for 1000 rows.
    F = wg.compile(lambda v, t: t * t * sum(v), shapes=[1000, ()])
    V = np.ones((1000, 1000))
    T = np.arange(1000.0)
    h = F.hessian(V, T, wrt=1)
    assert h.shape == (1000,)
    np.testing.assert_array_equal(h, 2 * 1000.0)


def test_hessian_blocks_match_the_full_hessian():
    def f(x, t):
        return wg.sin(x[0] * t) + x[1] * x[1] * x[2] * t + wg.exp(x[2] - t)

    F = wg.compile(f, shapes=[3, ()])
    rng = np.random.default_rng(3)
    X, T = rng.uniform(-1, 1, (9, 3)), rng.uniform(-1, 1, 9)
    full = F.hessian(X, T, wrt=(0, 1))
    hxx, hxt = full[0]
    htx, htt = full[1]
    np.testing.assert_array_equal(F.hessian(X, T, wrt=0), hxx)
    np.testing.assert_array_equal(F.hessian(X, T, wrt=1), htt)
    (a, b), (c, d) = F.hessian(X, T, wrt=(1, 0))
    np.testing.assert_array_equal(a, htt)
    np.testing.assert_array_equal(b, htx)
    np.testing.assert_array_equal(c, hxt)
    np.testing.assert_array_equal(d, hxx)
    np.testing.assert_allclose(hxt, np.swapaxes(htx, -1, -2) if htx.ndim > 2 else htx, rtol=1e-14)


def test_an_absurd_hessian_is_a_memory_error():
    F = wg.compile(lambda v: v[0] * v[1], shapes=[200_000])
    # One point, but a 200000 x 200000 block: 320 GB.
    with pytest.raises(MemoryError, match="hessian: 1 rows of a 200000 x 200000 block is 320000000000 bytes"):
        F.hessian(np.zeros(200_000))
