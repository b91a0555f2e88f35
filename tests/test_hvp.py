"""Batch Hessian-vector products (F.hvp) and the lane Hessians (F.hessian on SIMD lanes).

hvp is forward over reverse, written out as a program (rust/hvp.rs); the Hessian is the
same program seeded with unit vectors. Both are checked against the dual-number Hessian
they replaced (one row at a time, ``F._c._hessian_rows``), against sympy and mpmath, and
for strong zero, row counts that straddle lane groups and blocks, wrt subsets, shared and
per-row v, and bad v.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

import wengert as wg


def rosen(x):
    s = 0.0
    for i in range(len(x) - 1):
        s = s + 100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
    return s


def mixed(x, t):
    return wg.sin(x[0] * t) + x[1] * x[1] * x[2] * t + wg.exp(x[2] - t) + wg.sqrt(x[0] * x[0] + 1.0)


@pytest.fixture(params=["0", "1"], ids=["interpreter", "native"])
def engine(request, engine_env):
    engine_env("WENGERT_JIT", request.param)
    return request.param


def rows_hessian(F, *args, wrt=0):
    """The dual-number Hessian, one row at a time: the reference."""
    data, per_row, n, batch, _ = F._prepare(args)
    idx, _ = F._wrt(wrt)
    flags = [i in idx for i in range(len(F._shapes))]
    k = sum(F._sizes[i] for i in idx)
    return F._c._hessian_rows(data, per_row, n, flags).reshape(batch + (k, k))


def bits(a):
    return np.asarray(a, dtype=np.float64).view(np.uint64)


def same(a, b):
    """Equal as numbers (+0 == -0), NaN equal to NaN."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


# -- hvp against the Hessian -----------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 4, 5, 7, 8, 9, 17, 33, 127, 128, 129, 1031, 4097])
def test_hvp_is_the_hessian_times_v_at_row_counts_straddling_lanes_and_blocks(engine, n):
    R = wg.compile(rosen, shapes=[16])
    rng = np.random.default_rng(n)
    X, V = rng.uniform(-2, 2, (n, 16)), rng.normal(size=(n, 16))
    H = R.hessian(X)
    np.testing.assert_allclose(R.hvp(X, v=V), np.einsum("nij,nj->ni", H, V), rtol=1e-13, atol=1e-10)
    # A unit v picks a column of the Hessian exactly: every other term is a strong zero.
    for j in (0, 7, 15):
        e = np.zeros(16)
        e[j] = 1.0
        assert same(R.hvp(X, v=e), H[..., :, j])


def test_lane_hessian_is_the_dual_hessian_bit_for_bit(engine):
    # Arithmetic and sqrt only: the lanes and libm agree, so the two engines must too.
    R = wg.compile(rosen, shapes=[16])
    X = np.random.default_rng(1).uniform(-2, 2, (1031, 16))
    assert bits(R.hessian(X)).tolist() == bits(rows_hessian(R, X)).tolist()
    F = wg.compile(lambda x, y: wg.sqrt(x * x + y) / (x - y * y * y) + wg.where(x > y, x * y, y / x))
    x, y = np.linspace(-2, 2, 77), np.linspace(3, -1, 77)
    for wrt in (0, 1, (0, 1)):
        got, want = F.hessian(x, y, wrt=wrt), rows_hessian(F, x, y, wrt=wrt)
        got = np.block([[np.asarray(b)[..., None, None] for b in r] for r in got]) if wrt == (0, 1) else got
        want = want.reshape(got.shape)
        assert same(got, want)


def test_streamed_hessians_and_fresh_hvp_arrays_are_written_whole(engine):
    # 4097 rows: five tasks of the pool, and a block past the 8 MiB from which its rows
    # are streamed out. The HVP writes into np.empty: memory freed full of NaN, handed
    # back, must come out holding the same numbers.
    R = wg.compile(rosen, shapes=[16])
    rng = np.random.default_rng(7)
    X, V = rng.uniform(-2, 2, (4097, 16)), rng.normal(size=(4097, 16))
    H = R.hessian(X)
    assert np.array_equal(bits(H), bits(rows_hessian(R, X)))
    want = R.hvp(X, v=V)
    np.testing.assert_allclose(want, np.einsum("nij,nj->ni", H, V), rtol=1e-13, atol=1e-10)
    for _ in range(3):
        junk = np.full(4097 * 16, np.nan)
        del junk
        assert np.array_equal(bits(R.hvp(X, v=V)), bits(want))


def test_lane_hessian_with_transcendentals_is_within_rounding_of_the_dual_one(engine):
    # exp, sin, log on lanes are crate::vmath's, libm's on the dual path: an ulp or so.
    F = wg.compile(mixed, shapes=[3, ()])
    rng = np.random.default_rng(2)
    X, T = rng.uniform(-1, 1, (33, 3)), rng.uniform(-1, 1, 33)
    np.testing.assert_allclose(F.hessian(X, T, wrt=0), rows_hessian(F, X, T, wrt=0), rtol=1e-14, atol=1e-14)


def test_hvp_against_sympy():
    xs = sp.symbols("x0:3")
    expr = sp.sin(xs[0] * xs[1]) * sp.exp(xs[2]) + xs[0] ** 3 * xs[2] - sp.log(xs[1] ** 2 + 1)
    F = wg.compile(lambda x: wg.sin(x[0] * x[1]) * wg.exp(x[2]) + x[0] ** 3 * x[2] - wg.log(x[1] ** 2 + 1), shapes=[3])
    H = sp.hessian(expr, xs)
    rng = np.random.default_rng(3)
    X, V = rng.uniform(-1.5, 1.5, (6, 3)), rng.normal(size=(6, 3))
    got = F.hvp(X, v=V)
    for r in range(6):
        Hr = np.array(H.subs(dict(zip(xs, X[r]))).evalf(30).tolist(), dtype=float)
        np.testing.assert_allclose(got[r], Hr @ V[r], rtol=1e-13, atol=1e-13)


def test_hvp_against_mpmath():
    def f(x, y):
        return wg.atan2(x, y) * wg.tanh(x * y) + wg.hypot(x, y) ** 1.5

    def f_mp(x, y):
        return mp.atan2(x, y) * mp.tanh(x * y) + mp.hypot(x, y) ** mp.mpf(1.5)

    F = wg.compile(f)
    pts = [(0.3, 1.2), (-0.7, 0.4), (1.5, -2.0)]
    for x, y in pts:
        with mp.workdps(40):
            H = [[mp.diff(f_mp, (x, y), (2, 0)), mp.diff(f_mp, (x, y), (1, 1))],
                 [mp.diff(f_mp, (x, y), (1, 1)), mp.diff(f_mp, (x, y), (0, 2))]]
        vx, vy = 0.25, -1.5
        hx, hy = F.hvp(x, y, v=(vx, vy), wrt=(0, 1))
        assert math.isclose(float(hx), float(H[0][0] * vx + H[0][1] * vy), rel_tol=1e-12, abs_tol=1e-13)
        assert math.isclose(float(hy), float(H[1][0] * vx + H[1][1] * vy), rel_tol=1e-12, abs_tol=1e-13)


# -- strong zero -------------------------------------------------------------------------------


def test_hvp_and_hessian_keep_strong_zero(engine):
    F = wg.compile(lambda x: wg.where(x > 0, wg.sqrt(x), 0.0))
    x = np.array([-1.0, -4.0, 4.0])
    h = F.hessian(x)
    assert same(h, [0.0, 0.0, -0.25 / 8.0])
    assert same(F.hvp(x, v=np.ones(3)), h)
    assert same(F.hvp(x, v=2.0), 2 * h)
    # An unused node with a NaN partial changes nothing.
    G = wg.compile(lambda x, y: (wg.sqrt(-wg.abs(x) - 1.0) * 0.0 + x * x * y))
    assert same(G.hvp(1.0, 2.0, v=(1.0, 0.0), wrt=(0, 1)), (4.0, 2.0))


def test_hessian_strong_zero_cases_agree_with_the_dual_hessian(engine):
    F = wg.compile(lambda x, y: wg.where(x > 0, wg.sqrt(x) * y, x * x - y) + 0 * wg.log(y))
    x = np.array([-1.0, 0.5, 4.0, -2.0, 3.0])
    y = np.array([0.0, -1.0, 2.0, 0.0, 1.0])
    got = np.block([[np.asarray(b)[..., None, None] for b in r] for r in F.hessian(x, y, wrt=(0, 1))])
    assert same(got, rows_hessian(F, x, y, wrt=(0, 1)))


@pytest.mark.parametrize("threads", [1, 2])
def test_rows_made_nan_by_plain_products_are_redone_in_place_across_slabs(engine, threads):
    # The derived programs run with plain products first; at x <= 0 the unchosen sqrt's
    # zero adjoint meets an infinite or NaN partial, which makes the plain row NaN. Those
    # rows, scattered over several slabs of rows (4096 a thread), must come back with the
    # strong result at their own place.
    F = wg.compile(lambda x, y: wg.where(x > 0, wg.sqrt(x) * y, x * y * y))
    n = 10_001
    rng = np.random.default_rng(7)
    x, y = rng.uniform(0.5, 2.0, n), rng.uniform(-2.0, 2.0, n)
    bad = [0, 1, 4095, 4096, 5000, 8191, 8192, 9999, 10_000]
    x[bad] = [-1.0, 0.0, -2.0, 0.0, -0.5, 0.0, -3.0, 0.0, -1.0]
    old = wg.get_num_threads()
    wg.set_num_threads(threads)
    try:
        h = F.hessian(x, y, wrt=(0, 1))
        got = np.block([[np.asarray(b)[..., None, None] for b in r] for r in h])
        assert not np.isnan(got).any()
        assert same(got, rows_hessian(F, x, y, wrt=(0, 1)))
        vx, vy = rng.normal(size=n), rng.normal(size=n)
        hx, hy = F.hvp(x, y, v=(vx, vy), wrt=(0, 1))
        np.testing.assert_allclose(hx, got[:, 0, 0] * vx + got[:, 0, 1] * vy, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(hy, got[:, 1, 0] * vx + got[:, 1, 1] * vy, rtol=1e-13, atol=1e-13)
        # At the NaN rows x * y * y is chosen: H = [[0, 2y], [2y, 2x]].
        assert same(hx[bad], 2 * y[bad] * vy[bad])
        assert same(hy[bad], 2 * y[bad] * vx[bad] + 2 * x[bad] * vy[bad])
    finally:
        wg.set_num_threads(old)


def test_a_single_wrt_result_is_the_callers_own_array():
    # The block of a single wrt is handed back without a copy: still a fresh array per
    # call, of the documented shape, that the caller may write.
    R = wg.compile(rosen, shapes=[4])
    X, V = np.random.default_rng(1).uniform(-1, 1, (5, 4)), np.ones(4)
    h1, h2 = R.hessian(X), R.hessian(X)
    hv1, hv2 = R.hvp(X, v=V), R.hvp(X, v=V)
    assert h1.shape == (5, 4, 4) and hv1.shape == (5, 4)
    for a, b in ((h1, h2), (hv1, hv2)):
        assert not np.shares_memory(a, b)
        a[...] = 0.0
        assert not (b == 0).all()


# -- wrt, v shapes, reduce ---------------------------------------------------------------------


def test_hvp_wrt_subsets_and_tuples():
    F = wg.compile(mixed, shapes=[3, ()])
    rng = np.random.default_rng(4)
    X, T = rng.uniform(-1, 1, (9, 3)), rng.uniform(-1, 1, 9)
    vx, vt = rng.normal(size=(9, 3)), rng.normal(size=9)
    (hxx, hxt), (htx, htt) = F.hessian(X, T, wrt=(0, 1))
    np.testing.assert_allclose(F.hvp(X, T, v=vx), np.einsum("nij,nj->ni", hxx, vx), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(F.hvp(X, T, v=vt, wrt=1), htt * vt, rtol=1e-13, atol=1e-14)
    ax, at = F.hvp(X, T, v=(vx, vt), wrt=(0, 1))
    np.testing.assert_allclose(ax, np.einsum("nij,nj->ni", hxx, vx) + hxt * vt[:, None], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(at, np.einsum("nj,nj->n", htx, vx) + htt * vt, rtol=1e-13, atol=1e-14)
    # The order of wrt orders the results, as in hessian.
    bt, bx = F.hvp(X, T, v=(vt, vx), wrt=(1, 0))
    assert same(bt, at) and same(bx, ax)


def test_shared_and_per_row_v():
    R = wg.compile(rosen, shapes=[4])
    rng = np.random.default_rng(5)
    X, v = rng.uniform(-2, 2, (10, 4)), rng.normal(size=4)
    H = R.hessian(X)
    shared = R.hvp(X, v=v)
    assert shared.shape == (10, 4)
    assert same(shared, R.hvp(X, v=np.tile(v, (10, 1))))
    np.testing.assert_allclose(shared, H @ v, rtol=1e-13, atol=1e-12)
    # Many directions at one point: v's batch joins the broadcast.
    V = rng.normal(size=(7, 4))
    np.testing.assert_allclose(R.hvp(X[0], v=V), V @ H[0].T, rtol=1e-13, atol=1e-12)
    assert R.hvp(X[0], v=v).shape == (4,)
    # Batch dimensions broadcast as NumPy's do.
    assert R.hvp(X.reshape(2, 5, 4), v=V[:5]).shape == (2, 5, 4)


def test_hvp_reduce_sums_over_the_rows_of_shared_parameters():
    L = wg.compile(lambda th, x, y: (th[0] * wg.exp(th[1] * x) - y) ** 2, shapes=[2, (), ()])
    rng = np.random.default_rng(6)
    th, x, y = np.array([0.5, -0.3]), rng.uniform(0, 2, 200), rng.normal(size=200)
    v = np.array([1.0, -2.0])
    H = L.hessian(th, x, y)
    np.testing.assert_allclose(L.hvp(th, x, y, v=v, reduce="sum"), H.sum(0) @ v, rtol=1e-12)
    np.testing.assert_allclose(L.hvp(th, x, y, v=v, reduce="mean"), H.mean(0) @ v, rtol=1e-12)
    assert L.hvp(th, x, y, v=v, reduce="sum").shape == (2,)
    # A per-row argument keeps its rows: the Hessian of a sum over rows is block diagonal.
    hx = L.hessian(th, x, y, wrt=1)
    np.testing.assert_allclose(L.hvp(th, x, y, v=np.ones(200), wrt=1, reduce="sum"), hx, rtol=1e-13)
    np.testing.assert_allclose(L.hvp(th, x, y, v=1.0, wrt=1, reduce="mean"), hx / 200, rtol=1e-13)


@pytest.mark.parametrize(
    "v, err, match",
    [
        (np.ones(3), ValueError, r"v for 'x': expected trailing shape \(4,\)"),
        (np.ones((5, 4)), ValueError, r"v: batch shapes .* do not broadcast"),
        ("abc", TypeError, r"v for 'x': expected real numbers"),
        (None, TypeError, r"v for 'x'"),
        (np.array([1 + 2j] * 4), TypeError, r"v for 'x'.*complex"),
    ],
)
def test_bad_v_raises_naming_v(v, err, match):
    R = wg.compile(rosen, shapes=[4])
    with pytest.raises(err, match=match):
        R.hvp(np.ones((10, 4)), v=v)


def test_bad_v_for_a_tuple_wrt_and_other_misuse():
    F = wg.compile(mixed, shapes=[3, ()])
    with pytest.raises(ValueError, match=r"v: with wrt=\(0, 1\), expected a tuple of 2 arrays"):
        F.hvp(np.ones(3), 1.0, v=np.ones(3), wrt=(0, 1))
    with pytest.raises(ValueError, match=r"v for 'x': expected trailing shape \(3,\)"):
        F.hvp(np.ones(3), 1.0, v=(np.ones(2), 1.0), wrt=(0, 1))
    with pytest.raises(ValueError, match="wrt must be"):
        F.hvp(np.ones(3), 1.0, v=np.ones(3), wrt=2)
    with pytest.raises(ValueError, match="reduce must be"):
        F.hvp(np.ones(3), 1.0, v=np.ones(3), reduce="max")
    with pytest.raises(TypeError):
        F.hvp(np.ones(3), 1.0)  # v is required
    two = wg.compile(lambda x: [x, x * x])
    with pytest.raises(ValueError, match="hvp needs a scalar output"):
        two.hvp(1.0, v=1.0)


def test_an_absurd_hessian_block_is_a_memory_error_before_any_work():
    F = wg.compile(lambda v: v[0] * v[1], shapes=[200_000])
    with pytest.raises(MemoryError, match="hessian: 1 rows of a 200000 x 200000 block"):
        F.hessian(np.zeros(200_000))


def test_wide_blocks_span_several_lane_programs_and_match_the_dual_hessian():
    # 40 inputs: two programs of 32 and 8 columns, scattered into one block.
    def f(x):
        s = 0.0
        for i in range(40):
            s = s + x[i] * x[(i * 7 + 3) % 40] * x[(i + 1) % 40] + wg.sqrt(x[i] * x[i] + 1.0)
        return s

    F = wg.compile(f, shapes=[40])
    X = np.random.default_rng(7).uniform(-1, 1, (13, 40))
    H = F.hessian(X)
    assert same(H, rows_hessian(F, X))
    np.testing.assert_allclose(H, np.swapaxes(H, -1, -2), rtol=1e-14, atol=1e-14)


def test_hessian_of_a_block_computes_only_that_block():
    # The full Hessian would be 1001 x 1001 per row: only the 1 x 1 block is built.
    F = wg.compile(lambda v, t: t * t * sum(v), shapes=[1000, ()])
    h = F.hessian(np.ones((1000, 1000)), np.arange(1000.0), wrt=1)
    assert h.shape == (1000,)
    np.testing.assert_array_equal(h, 2 * 1000.0)
    hv = F.hvp(np.ones((1000, 1000)), np.arange(1000.0), v=3.0, wrt=1)
    np.testing.assert_array_equal(hv, 6 * 1000.0)


def test_hvp_and_hessian_survive_pickle_and_threads():
    import pickle

    R = wg.compile(rosen, shapes=[16])
    X = np.random.default_rng(8).uniform(-2, 2, (300, 16))
    V = np.random.default_rng(9).normal(size=(300, 16))
    want_h, want_v = R.hessian(X), R.hvp(X, v=V)
    R2 = pickle.loads(pickle.dumps(R))
    threads = wg.get_num_threads()
    try:
        for t in (1, 2, 3):
            wg.set_num_threads(t)
            assert bits(R2.hessian(X)).tolist() == bits(want_h).tolist()
            assert bits(R2.hvp(X, v=V)).tolist() == bits(want_v).tolist()
    finally:
        wg.set_num_threads(threads)


def test_a_zero_adjoint_meeting_a_nan_tangent_adds_nothing(engine):
    # Found by the fuzzer: at (inf, 0) the unchosen atan2 has adjoint 0 and a partial
    # whose tangent is NaN (-inf / inf). The derived program multiplied the zero into it
    # (a NaN Hessian); such rows are redone on dual numbers, which add nothing there.
    F = wg.compile(lambda x, y: wg.where(y < x, x, wg.atan2(x, y)))
    x, y = np.array([np.inf, 1.0, np.inf]), np.array([0.0, 2.0, 0.0])
    h = F.hessian(x, y, wrt=(0, 1))
    assert same(np.asarray(h[0][0])[[0, 2]], [0.0, 0.0])
    got = np.block([[np.asarray(b)[..., None, None] for b in r] for r in h])
    assert same(got, rows_hessian(F, x, y, wrt=(0, 1)))
    hx, hy = F.hvp(x, y, v=(1.0, 0.0), wrt=(0, 1))
    assert same(hx, h[0][0]) and same(hy, h[1][0])
    # Summed over rows for a shared x: the NaN rows are redone before the sum.
    ys = np.array([0.0, 2.0, 0.0, -1.0])
    hxx = F.hessian(np.inf, ys)
    assert not np.isnan(hxx).any()
    assert same(F.hvp(np.inf, ys, v=2.0, reduce="sum"), 2.0 * hxx.sum())
