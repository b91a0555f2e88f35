"""One-row calls of compiled functions (the SciPy-optimiser case).

After a method's first call on one row, later one-row calls whose arguments the engine
reads in place skip the batch path's argument handling (``_compile.Compiled._remember``,
``rust/python/row.rs``); small batches run on the calling thread. Neither may change a
bit of any result, nor let bad input through.
"""

from __future__ import annotations

import numpy as np
import pytest

import wengert as wg


def rosen(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def two(a, b):
    return a * wg.sin(b) + wg.exp(a / b) - b * b


def vec_out(x, t):
    return [x[0] * x[1] * t, wg.sin(x[2]) + t, wg.log(x[0] * x[0] + 1.0)]


def bits(x):
    """The bits of a result (nested tuples of arrays or scalars), type and shape included."""
    if isinstance(x, tuple):
        return tuple(bits(v) for v in x)
    a = np.asarray(x)
    return (type(x), a.shape, a.dtype.str, a.astype(np.float64).view(np.int64).tolist())


def call(F, method, args, **kw):
    return getattr(F, method)(*args, **kw) if method != "__call__" else F(*args, **kw)


RNG = np.random.default_rng(7)
X16 = RNG.uniform(-1.5, 1.5, (40, 16))
AB = np.stack([RNG.uniform(0.5, 2.0, 40), RNG.uniform(0.5, 2.0, 40)], axis=1)
XT = np.concatenate([RNG.uniform(-1, 1, (40, 3)), RNG.uniform(-1, 1, (40, 1))], axis=1)

CASES = [
    # (name, make, method, kwargs)
    ("rosen", lambda: wg.compile(rosen, shapes=[16]), "__call__", {}),
    ("rosen", lambda: wg.compile(rosen, shapes=[16]), "value_and_grad", {}),
    ("rosen", lambda: wg.compile(rosen, shapes=[16]), "grad", {}),
    ("rosen", lambda: wg.compile(rosen, shapes=[16]), "jacobian", {}),
    ("rosen", lambda: wg.compile(rosen, shapes=[16]), "hessian", {}),
    ("two", lambda: wg.compile(two), "__call__", {}),
    ("two", lambda: wg.compile(two), "value_and_grad", {"wrt": (0, 1)}),
    ("two", lambda: wg.compile(two), "value_and_grad", {"wrt": 1}),
    ("two", lambda: wg.compile(two), "grad", {"wrt": (1, 0)}),
    ("two", lambda: wg.compile(two), "jacobian", {"wrt": (0, 1)}),
    ("two", lambda: wg.compile(two), "hessian", {"wrt": (0, 1)}),
    ("two", lambda: wg.compile(two), "hessian", {"wrt": -1}),
    ("vec", lambda: wg.compile(vec_out, shapes=[3, ()]), "__call__", {}),
    ("vec", lambda: wg.compile(vec_out, shapes=[3, ()]), "jacobian", {"wrt": (0, 1)}),
    ("vec", lambda: wg.compile(vec_out, shapes=[3, ()]), "jacobian", {"wrt": 0}),
]

DATA = {"rosen": X16, "two": AB, "vec": XT}


def row_args(name, r):
    """Row ``r``'s arguments in the plain form the one-row call serves."""
    d = DATA[name][r]
    if name == "rosen":
        return (np.array(d),)
    if name == "two":
        return (float(d[0]), float(d[1]))
    return (np.array(d[:3]), float(d[3]))


def batch_args(name):
    d = DATA[name]
    if name == "rosen":
        return (d,)
    if name == "two":
        return (d[:, 0].copy(), d[:, 1].copy())
    return (d[:, :3].copy(), d[:, 3].copy())


def row_of(result, r):
    if isinstance(result, tuple):
        return tuple(row_of(v, r) for v in result)
    v = result[r]
    return v if np.ndim(v) else np.float64(v)


@pytest.mark.parametrize("name,make,method,kw", CASES)
def test_one_row_calls_match_the_batch_path_bit_for_bit(name, make, method, kw):
    F = make()
    batch = call(F, method, batch_args(name), **kw)
    cold = make()
    for r in range(len(DATA[name])):
        args = row_args(name, r)
        first = call(cold, method, args, **kw)  # row 0: the batch path, then kept
        again = call(cold, method, args, **kw)  # the one-row call
        assert bits(again) == bits(first)
        assert bits(again) == bits(row_of(batch, r))
    assert cold._rows, "a one-row call was kept"


def variants(name, r):
    """Row ``r`` in forms the one-row call does not serve (so the batch path takes them)."""
    d = DATA[name][r]
    if name == "rosen":
        wide = np.zeros((16, 2))
        wide[:, 0] = d
        return [
            (wide[:, 0],),  # strided
            (d.astype(np.float32).astype(np.float64).astype(np.float32),),  # float32
            (np.round(d * 3).astype(np.int64),),  # int array
            (d.tolist(),),  # a list
            (d.reshape(1, 16),),  # a batch of one
            (d.astype(">f8"),),  # byte-swapped
            (np.frombuffer(b"\0" + d.tobytes(), dtype=np.float64, offset=1),),  # unaligned
        ]
    if name == "two":
        return [
            (np.float64(d[0]), np.float32(d[1])),
            (int(round(d[0] * 4)), float(d[1])),
            (np.array(d[0]), [d[1]]),
            (True, float(d[1])),
        ]
    return [(d[:3].tolist(), np.float32(d[3])), (np.array(d[:3], dtype=np.float32), int(d[3] * 5))]


@pytest.mark.parametrize("name,make,method,kw", CASES)
def test_inputs_of_every_form_give_the_same_bits_warm_or_cold(name, make, method, kw):
    warm = make()
    call(warm, method, row_args(name, 0), **kw)
    for r in (1, 2):
        for args in variants(name, r):
            cold = call(make(), method, args, **kw)
            assert bits(call(warm, method, args, **kw)) == bits(cold)


@pytest.mark.parametrize("reduce", [None, "sum", "mean"])
def test_reduced_one_row_calls_are_unchanged_by_a_kept_call(reduce):
    warm = wg.compile(rosen, shapes=[16])
    warm.value_and_grad(X16[0])
    for r in range(5):
        cold = wg.compile(rosen, shapes=[16])
        assert bits(warm.value_and_grad(X16[r], reduce=reduce)) == bits(cold.value_and_grad(X16[r], reduce=reduce))
        assert bits(warm(X16[r], reduce=reduce)) == bits(cold(X16[r], reduce=reduce))


def test_small_batches_match_rows_of_large_ones():
    # Up to 1024 rows run on the calling thread in blocks no wider than the rows; more
    # go to the pool in blocks of full width. Every row the same bits either way.
    F = wg.compile(two)
    big = RNG.uniform(0.5, 2.0, (5000, 2))
    whole = F.value_and_grad(big[:, 0], big[:, 1], wrt=(0, 1))
    for n in (1, 3, 5, 17, 1024):
        part = F.value_and_grad(big[:n, 0], big[:n, 1], wrt=(0, 1))
        assert bits(part) == bits((whole[0][:n], (whole[1][0][:n], whole[1][1][:n])))
    R = wg.compile(rosen, shapes=[16])
    X = RNG.uniform(-1, 1, (3000, 16))
    whole = R.value_and_grad(X)
    for n in (1, 2, 7, 1024):
        assert bits(R.value_and_grad(X[:n])) == bits((whole[0][:n], whole[1][:n]))


def test_bad_input_still_raises_after_a_kept_call():
    R = wg.compile(rosen, shapes=[16])
    R.value_and_grad(X16[0])
    R(X16[0])
    R.hessian(X16[0])
    with pytest.raises(ValueError, match="trailing shape"):
        R.value_and_grad(np.zeros(15))
    with pytest.raises(ValueError, match="trailing shape"):
        R(np.zeros(17))
    with pytest.raises(TypeError, match="takes 1 arguments"):
        R.value_and_grad(X16[0], X16[0])
    with pytest.raises(TypeError, match="expected real numbers"):
        R.value_and_grad(None)
    with pytest.raises(TypeError, match="complex"):
        R.value_and_grad(X16[0].astype(complex))
    with pytest.raises(ValueError, match="wrt"):
        R.value_and_grad(X16[0], wrt=1)
    with pytest.raises(ValueError, match="wrt"):
        R.hessian(X16[0], wrt=True)
    F = wg.compile(two)
    F.value_and_grad(1.0, 2.0, wrt=1)
    F.value_and_grad(1.0, 2.0, wrt=(1, 0))
    F.grad(1.0, 2.0, wrt=(0, 1))
    F.jacobian(1.0, 2.0, wrt=1)
    for method in ("value_and_grad", "grad", "jacobian", "hessian"):
        with pytest.raises(ValueError, match="wrt"):
            getattr(F, method)(1.0, 2.0, wrt=True)
        with pytest.raises(ValueError, match="wrt"):
            getattr(F, method)(1.0, 2.0, wrt=(True, 0))
        with pytest.raises(ValueError, match="wrt"):
            getattr(F, method)(1.0, 2.0, wrt=(1, 1))
    with pytest.raises(TypeError, match="expected real numbers"):
        F.value_and_grad(2**70, 2.0, wrt=1)
    with pytest.raises(TypeError, match="expected real numbers"):
        F.value_and_grad("1.0", 2.0, wrt=1)
    with pytest.raises(TypeError, match="takes 2 arguments"):
        F.value_and_grad(1.0, wrt=1)
    with pytest.raises(ValueError, match="reduce"):
        F.value_and_grad(1.0, 2.0, wrt=1, reduce="max")


def test_numbers_with_derivatives_still_follow_the_derivative():
    F = wg.compile(two)
    F(1.0, 2.0)
    F.value_and_grad(1.0, 2.0)
    a, b = wg.Var(1.0), wg.Var(2.0)
    y = F(a, b)
    assert isinstance(y, wg.Var)
    assert wg.grad(y, [a, b]) == pytest.approx(list(F.value_and_grad(1.0, 2.0, wrt=(0, 1))[1]))
    assert isinstance(F(wg.Dual(1.0, 1.0), 2.0), wg.Dual)


def test_the_non_finite_check_still_runs_after_a_kept_call():
    F = wg.compile(lambda x: wg.log(x))
    F(1.0)
    F.value_and_grad(1.0)
    assert np.isnan(F(-1.0))
    wg.set_debug_nans(True)
    try:
        with pytest.raises(wg.NonFiniteError):
            F(-1.0)
        with pytest.raises(wg.NonFiniteError):
            F.value_and_grad(-1.0)
    finally:
        wg.set_debug_nans(False)


def test_functions_that_branch_keep_no_one_row_call():
    def f(x):
        return x * 2.0 if x > 0 else -x * 3.0

    F = wg.compile(f)
    assert F.value_and_grad(1.0) == (2.0, 2.0)
    assert F.value_and_grad(-1.0) == (3.0, -3.0)
    assert not F._rows


def test_a_pickled_function_makes_its_own_one_row_calls():
    import pickle

    R = wg.compile(rosen, shapes=[16])
    R.value_and_grad(X16[0])
    S = pickle.loads(pickle.dumps(R))
    assert not S._rows
    assert bits(S.value_and_grad(X16[1])) == bits(R.value_and_grad(X16[1]))
    assert bits(S.value_and_grad(X16[1])) == bits(R.value_and_grad(X16[1]))
