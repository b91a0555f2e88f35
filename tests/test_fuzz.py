"""The differential fuzzer: random programs over every op, run through every mode.

Hypothesis draws a program (unary and binary ops, constants, ``where`` over
comparisons; mostly short, sometimes 30 ops) over two scalar inputs or over the elements
of a vector argument, and points that mix ordinary numbers with special
values (+-0, +-inf, nan, subnormals, 1e+-300). Invariants:

- no crash, and no exception but the documented ones;
- the engines agree bit for bit where the design says they do: the compiled interpreter
  and native code, any thread count, any row count and row position (lanes and blocks),
  shared (broadcast) arguments and sums over rows included, Hessians and Hessian-vector
  products included, and eager ``Var`` values and ``Dual`` values;
- the lane Hessian (a derived program) and the dual-number Hessian it replaced agree bit
  for bit on programs the lanes and libm compute alike, and a unit ``v`` gives a Hessian
  column exactly;
- strong zero: a node the output does not use never changes a gradient, in any mode;
- where the program is smooth at a point, every mode's first and second derivatives
  (eager reverse, forward, nested transforms, compiled gradients, Jacobians, JVPs,
  Hessians, Hessian-vector products) agree with mpmath at 40 digits (numerical differentiation of the program
  evaluated in mpmath, which shares no rule with wengert) within a tolerance scaled by the
  program's conditioning.

CI runs a bounded number of examples. The long run (an hour) is::

    WENGERT_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz.py -q

"""

from __future__ import annotations

import math
import os

import mpmath as mp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wengert as wg
from wengert import _core

EXAMPLES = int(os.environ.get("WENGERT_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

UNARY = [
    "neg", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh",
    "acosh", "atanh", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt",
    "cbrt", "abs", "sigmoid", "relu", "softplus", "erf",
    "floor", "ceil", "round", "trunc", "sign", "square", "reciprocal", "erfc", "lgamma",
    "digamma", "sinc",
]
BINARY = [
    "add", "sub", "mul", "div", "pow", "atan2", "hypot", "maximum", "minimum",
    "fmod", "remainder", "copysign", "logaddexp",
]
CMPS = ["<", "<=", ">", ">=", "==", "!="]
# Ops with a kink (their derivative jumps): no mpmath comparison near one.
KINKED = {"abs", "relu", "maximum", "minimum"}

SPECIAL = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 2.2e-308, 1e300, -1e300, 1e-300]


# -- programs ----------------------------------------------------------------------------


@st.composite
def programs(draw, max_ops=6, ifs=False):
    """A list of instructions over inputs 0 and 1; the last value is the output. An
    instruction refers to earlier values by index. With ``ifs``, some are Python ``if``s
    on a comparison (``("i", ...)``, laid out as ``where``'s ``("w", ...)``)."""
    prog = []
    n_ops = draw(st.one_of(st.integers(1, max_ops), st.integers(1, 5 * max_ops)))
    for _ in range(n_ops):
        k = 2 + len(prog)
        arg = st.integers(0, k - 1)
        kind = draw(st.sampled_from(["u", "u", "b", "b", "b", "c", "w"] + ["i", "i"] * ifs))
        if kind == "u":
            prog.append(("u", draw(st.sampled_from(UNARY)), draw(arg)))
        elif kind == "b":
            prog.append(("b", draw(st.sampled_from(BINARY)), draw(arg), draw(arg)))
        elif kind == "c":
            c = draw(st.sampled_from([0.5, -1.5, 2.0, 3.0, 0.0, 1.0]))
            prog.append(("b", draw(st.sampled_from(["add", "mul", "sub", "div", "pow"])), draw(arg), ("const", c)))
        else:
            prog.append((kind, draw(st.sampled_from(CMPS)), draw(arg), draw(arg), draw(arg), draw(arg)))
    return prog


def as_where(prog):
    """The program with every ``if`` written as ``wg.where``: the same value per row."""
    return [("w",) + ins[1:] if ins[0] == "i" else ins for ins in prog]


_CMP = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def run_wg(prog, x, y, poison=False):
    """The program on wengert numbers (floats, Var, Dual or traced). With ``poison``, an
    unused node with a NaN partial is recorded first: it must change nothing."""
    vals = [x, y]
    if poison:
        _ = wg.sqrt(-wg.abs(x) - 1.0) + wg.log(-wg.abs(y) - 1.0) * x
    for ins in prog:
        if ins[0] == "u":
            a = vals[ins[2]]
            vals.append(-a if ins[1] == "neg" else getattr(wg, ins[1])(a))
        elif ins[0] == "b":
            a = vals[ins[2]]
            b = ins[3][1] if isinstance(ins[3], tuple) else vals[ins[3]]
            op = ins[1]
            if op == "add":
                vals.append(a + b)
            elif op == "sub":
                vals.append(a - b)
            elif op == "mul":
                vals.append(a * b)
            elif op == "div":
                vals.append(a / b)
            elif op == "pow":
                vals.append(a**b)
            else:
                vals.append(getattr(wg, op)(a, b))
        elif ins[0] == "i":  # a branch: traced, a guard on the row's outcome
            _, cmp, p, q, a, b = ins
            vals.append(vals[a] if _CMP[cmp](vals[p], vals[q]) else vals[b])
        else:
            _, cmp, p, q, a, b = ins
            vals.append(wg.where(_CMP[cmp](vals[p], vals[q]), vals[a], vals[b]))
    return vals[-1]


# mpmath, the independent reference: each op from mpmath's own functions (no rule
# shared with wengert); a complex or undefined result is nan.
def _mp_pow(a, b):
    # Reached for a > 0 only (run_mp calls x ** y unsmooth elsewhere).
    return mp.power(a, b)


MP_UNARY = {
    "neg": lambda a: -a, "sin": mp.sin, "cos": mp.cos, "tan": mp.tan,
    "asin": lambda a: mp.asin(a) if abs(a) <= 1 else mp.nan,
    "acos": lambda a: mp.acos(a) if abs(a) <= 1 else mp.nan,
    "atan": mp.atan, "sinh": mp.sinh, "cosh": mp.cosh, "tanh": mp.tanh, "asinh": mp.asinh,
    "acosh": lambda a: mp.acosh(a) if a >= 1 else mp.nan,
    "atanh": lambda a: mp.atanh(a) if abs(a) < 1 else mp.nan,
    "exp": mp.exp, "exp2": lambda a: mp.power(2, a), "expm1": mp.expm1,
    "log": lambda a: mp.log(a) if a > 0 else mp.nan,
    "log2": lambda a: mp.log(a, 2) if a > 0 else mp.nan,
    "log10": lambda a: mp.log10(a) if a > 0 else mp.nan,
    "log1p": lambda a: mp.log1p(a) if a > -1 else mp.nan,
    "sqrt": lambda a: mp.sqrt(a) if a >= 0 else mp.nan,
    "cbrt": lambda a: mp.cbrt(a) if a >= 0 else -mp.cbrt(-a),
    "abs": abs, "sigmoid": lambda a: 1 / (1 + mp.exp(-a)), "relu": lambda a: max(a, 0),
    "softplus": lambda a: mp.log1p(mp.exp(a)), "erf": mp.erf,
    "floor": mp.floor, "ceil": mp.ceil, "round": mp.nint,
    "trunc": lambda a: mp.floor(a) if a >= 0 else mp.ceil(a), "sign": mp.sign,
    "square": lambda a: a * a, "reciprocal": lambda a: 1 / a if a != 0 else mp.nan,
    "erfc": mp.erfc, "lgamma": lambda a: mp.log(abs(mp.gamma(a))), "digamma": mp.digamma,
    "sinc": mp.sincpi,
}
MP_BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b if b != 0 else mp.nan, "pow": _mp_pow, "atan2": mp.atan2,
    "hypot": mp.hypot, "maximum": max, "minimum": min,
    "fmod": lambda a, b: a - b * (mp.floor(a / b) if a / b >= 0 else mp.ceil(a / b)),
    "remainder": lambda a, b: a - b * mp.floor(a / b),
    "copysign": lambda a, b: abs(a) * mp.sign(b),
    "logaddexp": lambda a, b: mp.log(mp.exp(a) + mp.exp(b)),
}


class _Unsmooth(Exception):
    """The program is not smooth at this point: no reference derivative."""


_EDGE = mp.mpf("1e-6")
# Where each unary op's derivative is infinite or undefined (a domain's edge): there the
# float result may be nan (inf * 0) where the function is constant, e.g. asin(y / y).
SINGULAR = {
    "asin": lambda a: abs(a) >= 1 - _EDGE, "acos": lambda a: abs(a) >= 1 - _EDGE,
    "acosh": lambda a: a <= 1 + _EDGE, "atanh": lambda a: abs(a) >= 1 - _EDGE,
    "log": lambda a: a <= _EDGE, "log2": lambda a: a <= _EDGE, "log10": lambda a: a <= _EDGE,
    "log1p": lambda a: a <= -1 + _EDGE, "sqrt": lambda a: a <= _EDGE,
    "cbrt": lambda a: abs(a) <= _EDGE,
    "reciprocal": lambda a: abs(a) <= _EDGE,
    # The poles of Gamma: 0 and the negative integers.
    "lgamma": lambda a: a <= _EDGE and abs(a - mp.nint(a)) <= _EDGE,
    "digamma": lambda a: a <= _EDGE and abs(a - mp.nint(a)) <= _EDGE,
}
# Where each step jumps (its derivative is 0 on either side, undefined there): the
# distance of the argument to the nearest jump.
JUMPS = {
    "floor": lambda a: abs(a - mp.nint(a)), "ceil": lambda a: abs(a - mp.nint(a)),
    "trunc": lambda a: abs(a - mp.nint(a)), "round": lambda a: abs(a - mp.floor(a) - mp.mpf(0.5)),
    "sign": abs,
}


def run_mp(prog, x, y, trace=None):
    vals = [x, y]
    for ins in prog:
        if ins[0] == "u":
            a = vals[ins[2]]
            if ins[1] in KINKED and abs(a) < _EDGE:
                raise _Unsmooth
            if ins[1] in SINGULAR and SINGULAR[ins[1]](a):
                raise _Unsmooth
            if ins[1] in JUMPS and JUMPS[ins[1]](a) < _EDGE:
                raise _Unsmooth
            v = MP_UNARY[ins[1]](a)
        elif ins[0] == "b":
            a = vals[ins[2]]
            b = mp.mpf(ins[3][1]) if isinstance(ins[3], tuple) else vals[ins[3]]
            if ins[1] in KINKED and abs(a - b) < _EDGE:
                raise _Unsmooth
            if ins[1] == "div" and abs(b) < _EDGE:
                raise _Unsmooth
            if ins[1] == "pow" and a <= 0:
                raise _Unsmooth  # x ** y is smooth in both arguments only for x > 0
            if ins[1] == "hypot" and abs(a) + abs(b) < mp.mpf("1e-6"):
                raise _Unsmooth
            if ins[1] == "atan2" and (abs(a) + abs(b) < _EDGE or (abs(a) < _EDGE and b < 0)):
                raise _Unsmooth  # its branch cut: atan2(-0.0, -1) is -pi, mpmath has no -0
            if ins[1] in ("fmod", "remainder") and (abs(b) < _EDGE or abs(a / b - mp.nint(a / b)) < _EDGE):
                raise _Unsmooth  # jumps where x / y is an integer
            if ins[1] == "copysign" and (abs(a) < _EDGE or abs(b) < _EDGE):
                raise _Unsmooth  # a kink at x = 0, a jump at y = 0
            v = MP_BINARY[ins[1]](a, b)
        else:
            _, cmp, p, q, a, b = ins
            if abs(vals[p] - vals[q]) < mp.mpf("1e-6"):
                raise _Unsmooth
            v = vals[a] if _CMP[cmp](vals[p], vals[q]) else vals[b]
        if isinstance(v, mp.mpc) or not mp.isfinite(v) or abs(v) > 1e12:
            raise _Unsmooth
        if trace is not None:
            trace.append(abs(v))
        vals.append(v)
    return vals[-1]


def reference(prog, x, y):
    """Value, gradient and Hessian by mpmath at 40 digits, and the program's scale (its
    largest intermediate magnitude), or None where it is not smooth."""
    with mp.workdps(40):
        try:
            mags: list = []
            v = run_mp(prog, mp.mpf(x), mp.mpf(y), mags)
            f = lambda a, b: run_mp(prog, a, b)  # noqa: E731
            h = mp.mpf("1e-12")
            g = [mp.diff(f, (x, y), (1, 0), h=h), mp.diff(f, (x, y), (0, 1), h=h)]
            H = [
                [mp.diff(f, (x, y), (2, 0), h=h), mp.diff(f, (x, y), (1, 1), h=h)],
                [mp.diff(f, (x, y), (1, 1), h=h), mp.diff(f, (x, y), (0, 2), h=h)],
            ]
        except (_Unsmooth, ZeroDivisionError, ValueError, OverflowError):
            return None
    scale = max([1.0] + [float(m) for m in mags] + [abs(float(t)) for t in g] + [abs(float(t)) for r in H for t in r])
    if scale > 1e8:
        return None
    return float(v), [float(t) for t in g], [[float(t) for t in r] for r in H], scale


def close(got, want, scale, tol=1e-9):
    return abs(got - want) <= tol * scale


# -- the modes ---------------------------------------------------------------------------


def eager_reverse(prog, x, y, poison=False):
    a, b = wg.Var(x), wg.Var(y)
    out = run_wg(prog, a, b, poison)
    if not isinstance(out, wg.Var):
        return float(out), [0.0, 0.0]
    return out.value, wg.grad(out, [a, b])


def eager_forward(prog, x, y, poison=False):
    g = []
    val = None
    for seed in ((1.0, 0.0), (0.0, 1.0)):
        out = run_wg(prog, wg.Dual(x, seed[0]), wg.Dual(y, seed[1]), poison)
        val = out.value if isinstance(out, wg.Dual) else float(out)
        g.append(out.tangent if isinstance(out, wg.Dual) else 0.0)
    return val, g


def same(a, b):
    """Bit-for-bit equality, any NaN equal to any NaN."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def equal(a, b):
    """Equality as numbers (+0 == -0), NaN equal to NaN."""
    return same(a, b)


# Away from tiny magnitudes, where a second derivative (x / x: 1 / x**2 terms) overflows
# in float64 however it is computed.
finite_points = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False).filter(lambda v: v == 0 or abs(v) > 1e-3)
any_points = st.one_of(finite_points, st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True))


def _compile(prog):
    F = wg.compile(lambda x, y: run_wg(prog, x, y))
    F._prog = prog
    return F


def _compile_two(prog):
    """Two outputs: the program's, and the program's first half (a Jacobian of 2 rows)."""
    half = prog[: max(1, len(prog) // 2)]
    return wg.compile(lambda x, y: [run_wg(prog, x, y), run_wg(half, x, y)])


def _compiled_all(F, X, Y):
    """Everything a compiled function computes, as a list of arrays."""
    v, (gx, gy) = F.value_and_grad(X, Y, wrt=(0, 1))
    jx, jy = F.jacobian(X, Y, wrt=(0, 1))
    _, tan = F.jvp((X, Y), (np.ones_like(X), np.full_like(Y, 0.5)))
    h = F.hessian(X, Y, wrt=(0, 1))
    # y shared by every row, and sums over the rows (lane-wise partial sums).
    shared = F.value_and_grad(X, Y[:1].reshape(()), wrt=(0, 1))
    summed = F.value_and_grad(X, Y, wrt=(0, 1), reduce="sum")
    two = _compile_two(F._prog)
    _, vj = two.vjp((X, Y), np.stack([np.ones_like(X), np.full_like(X, -2.0)], axis=-1))
    per_row = [v, gx, gy, jx, jy, tan] + [np.asarray(b) for row in h for b in row]
    per_row += [vj[0], vj[1], two.jacobian(X, Y, wrt=0), shared[0], shared[1][0]]
    # Hessian-vector products (a program of their own), v per row and shared.
    per_row += list(F.hvp(X, Y, v=(np.full_like(X, -0.5), np.ones_like(Y)), wrt=(0, 1)))
    per_row += [F.hvp(X, Y, v=2.0, wrt=1)]
    # The gradient of the shared argument is a sum over the rows.
    return per_row + [shared[1][1], summed[0], summed[1][0], summed[1][1], F.hvp(X, Y, v=1.0, reduce="sum")]


PER_ROW = 18  # how many of _compiled_all's results are one per row


# -- the invariants ----------------------------------------------------------------------


@FUZZ
@given(programs(), st.lists(st.tuples(any_points, any_points), min_size=1, max_size=5), st.data())
def test_engines_threads_and_rows_agree_bit_for_bit(monkeypatch_env, prog, points, data):
    F = _compile(prog)
    # Rows that straddle lane groups and blocks: the points repeated to a drawn length.
    n = data.draw(st.sampled_from([1, 3, 4, 5, 7, 8, 9, 17, 33, 67, 130, 1031]))
    X = np.array([points[i % len(points)][0] for i in range(n)])
    Y = np.array([points[i % len(points)][1] for i in range(n)])
    results = {}
    for jit in ("0", "1"):
        monkeypatch_env("WENGERT_JIT", jit)
        for threads in (1, 2, 3):
            wg.set_num_threads(threads)
            results[jit, threads] = _compiled_all(F, X, Y)
    base = results["0", 1]
    for key, got in results.items():
        for k, (a, b) in enumerate(zip(base, got)):
            assert same(a, b), f"engine/threads {key} differ from the interpreter at 1 thread in result {k}"
    # Each row is what that row alone gives.
    for i in range(min(n, len(points))):
        one = _compiled_all(F, X[i : i + 1], Y[i : i + 1])
        for k, (a, b) in enumerate(zip(base[:PER_ROW], one)):
            if k in (13, 14):  # y shared: row i alone shares points[i]'s y, not row 0's
                continue
            assert same(np.asarray(a)[i : i + 1], b), f"row {i} depends on its neighbours in result {k}"


@FUZZ
@given(programs(ifs=True), st.lists(st.tuples(any_points, any_points), min_size=1, max_size=8), st.data())
def test_python_branches_give_each_row_what_where_gives(prog, points, data):
    """An ``if`` compiles to one trace per branch pattern, each row evaluated by its own:
    its value is, to the bit, what the branch-free ``where`` program gives that row (the
    chosen side's operations, the same in both), and what the row gives alone; its
    derivatives agree with ``where``'s (which adds the unchosen side's strong zeros, and
    may sum adjoints in another order: equal to rounding), except where ``where``'s is NaN
    from a NaN adjoint passing its unchosen side."""
    F = wg.compile(lambda x, y: run_wg(prog, x, y))
    W = wg.compile(lambda x, y: run_wg(as_where(prog), x, y))
    n = data.draw(st.sampled_from([1, 3, 5, 9, 17]))
    X = np.array([points[i % len(points)][0] for i in range(n)])
    Y = np.array([points[i % len(points)][1] for i in range(n)])
    v, (gx, gy) = F.value_and_grad(X, Y, wrt=(0, 1))
    w, (wx, wy) = W.value_and_grad(X, Y, wrt=(0, 1))
    assert same(v, w), "if and where differ in value"
    assert same(F(X, Y), v)
    for a, b in ((gx, wx), (gy, wy)):
        # where's unchosen side gets 0 * (a NaN adjoint) = NaN: strong zero guards only
        # zero adjoints. The branch has no unchosen side (as the eager function).
        agree = np.isclose(a, b, rtol=1e-12, atol=1e-300, equal_nan=True) | np.isnan(b)
        assert agree.all(), "if and where differ in gradient"
    summed = F.value_and_grad(X, Y, wrt=(0, 1), reduce="sum")
    # Each pattern's rows are summed apart, so the order of the sum differs from NumPy's:
    # equal to rounding in the terms' magnitude (1e300 - 1e300 + 0.5 is 0.5 or 0).
    scale = np.sum(np.abs(v))
    assert abs(summed[0] - np.sum(v)) <= 1e-12 * scale or not np.isfinite(scale)
    for i in range(min(n, len(points))):
        one = F.value_and_grad(X[i : i + 1], Y[i : i + 1], wrt=(0, 1))
        assert same(one[0], v[i : i + 1]) and same(one[1][0], gx[i : i + 1]) and same(one[1][1], gy[i : i + 1])


@FUZZ
@given(programs(), any_points, any_points)
def test_strong_zero_an_unused_node_changes_nothing(prog, x, y):
    for mode in (eager_reverse, eager_forward):
        assert equal(mode(prog, x, y, poison=True)[1], mode(prog, x, y)[1]), mode.__name__
    # And a value never depends on the mode.
    assert same(eager_reverse(prog, x, y)[0], eager_forward(prog, x, y)[0])


@FUZZ
@given(programs(), finite_points, finite_points)
def test_every_mode_against_mpmath_where_smooth(prog, x, y):
    ref = reference(prog, x, y)
    if ref is None:
        return
    v, g, H, scale = ref
    modes = {
        "reverse": eager_reverse(prog, x, y),
        "forward": eager_forward(prog, x, y),
    }
    f = lambda a, b: run_wg(prog, a, b)  # noqa: E731
    modes["value_and_grad"] = wg.value_and_grad(f, wrt=(0, 1))(x, y)
    F = _compile(prog)
    cv, cg = F.value_and_grad(x, y, wrt=(0, 1))
    modes["compiled"] = (float(cv), [float(t) for t in cg])
    jx, jy = F.jacobian(x, y, wrt=(0, 1))
    modes["compiled jacobian"] = (float(cv), [float(jx), float(jy)])
    modes["compiled jvp"] = (
        float(F.jvp((x, y), (1.0, 0.0))[0]),
        [float(F.jvp((x, y), (1.0, 0.0))[1]), float(F.jvp((x, y), (0.0, 1.0))[1])],
    )
    modes["compiled vjp"] = (float(cv), [float(t) for t in F.vjp((x, y), 1.0)[1]])
    for name, (got_v, got_g) in modes.items():
        assert close(got_v, v, scale), (name, "value", got_v, v)
        for k in range(2):
            assert close(float(got_g[k]), g[k], scale), (name, "grad", k, got_g[k], g[k])
    if any(ins[0] == "u" and ins[1] == "digamma" for ins in prog):
        return  # digamma's second derivative is NaN by design (no tetragamma op; test_new_ops.py)
    hessians = {
        "compiled": F.hessian(x, y, wrt=(0, 1)),
        "hvp": [list(F.hvp(x, y, v=(1.0 * (j == 0), 1.0 * (j == 1)), wrt=(0, 1))) for j in (0, 1)],
        "nested": wg.hessian(f, wrt=(0, 1))(wg.Var(x), wg.Var(y)),
        "grad(grad)": [[wg.grad(wg.grad(f, wrt=i), wrt=j)(x, y) for j in (0, 1)] for i in (0, 1)],
        "jacobian(grad)": [list(wg.jacobian(wg.grad(f, wrt=(0, 1)), wrt=j)(x, y)) for j in (0, 1)],
        "jvp(grad)": [
            list(wg.jvp(wg.grad(f, wrt=(0, 1)), (x, y), (1.0 * (j == 0), 1.0 * (j == 1)))[1]) for j in (0, 1)
        ],
    }
    for name, got in hessians.items():
        for i in range(2):
            for j in range(2):
                h = got[i][j]
                h = h.value if isinstance(h, (wg.Var, wg.Dual)) else float(h)
                # The jacobian and jvp forms are transposed; the Hessian is symmetric.
                assert close(h, H[i][j], scale, tol=1e-6), (name, i, j, h, H[i][j])


@pytest.fixture
def monkeypatch_env():
    """Sets environment variables for one example, restored after the test."""
    saved = {k: os.environ.get(k) for k in ("WENGERT_JIT",)}
    threads = wg.get_num_threads()

    def set_env(k, v):
        os.environ[k] = v
        _core._reload_settings()  # wengert reads them once, at first use

    yield set_env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    _core._reload_settings()
    wg.set_num_threads(threads)


@FUZZ
@given(programs(), st.integers(1, 9), st.data())
def test_vector_arguments_agree_across_engines_and_rows(monkeypatch_env, prog, k, data):
    # Row-major vector rows go through the engines' gathers and tile transposes; the
    # program reads two drawn elements, and a product of all of them.
    a, b = data.draw(st.integers(0, k - 1)), data.draw(st.integers(0, k - 1))

    def f(v):
        p = v[0]
        for e in v[1:]:
            p = p * e
        return run_wg(prog, v[a], v[b]) + wg.tanh(p)

    F = wg.compile(f, shapes=[k])
    n = data.draw(st.sampled_from([1, 3, 4, 5, 8, 9, 33, 130]))
    X = np.array(data.draw(st.lists(st.lists(any_points, min_size=k, max_size=k), min_size=n, max_size=n)))
    results = {}
    for jit in ("0", "1"):
        monkeypatch_env("WENGERT_JIT", jit)
        for threads in (1, 2):
            wg.set_num_threads(threads)
            v, g = F.value_and_grad(X)
            results[jit, threads] = [v, g, F.hessian(X), F.value_and_grad(X, reduce="sum")[1]]
    base = results["0", 1]
    for key, got in results.items():
        for j, (x, y) in enumerate(zip(base, got)):
            assert same(x, y), f"engine/threads {key} differ in result {j}"
    one = F.value_and_grad(X[:1])
    assert same(base[0][:1], one[0]) and same(base[1][:1], one[1])


# Ops whose lane values (crate::vmath) or whose rules' partials (exp, log inside) differ
# from libm's by rounding: the dual-number Hessian runs on libm, one row at a time.
VMATH = {
    "sin", "cos", "exp", "expm1", "log", "log1p", "tanh", "sigmoid", "softplus", "erf", "pow",
    "erfc", "sinc", "logaddexp",
}


def _uses_vmath(prog):
    return any(ins[1] in VMATH for ins in prog if ins[0] in "ub")


def _dual_hessian(F, X, Y):
    """The dual-number Hessian (one row at a time), laid out as F.hessian's 2 x 2 blocks."""
    data, per_row, n, batch, _ = F._prepare((X, Y))
    h = F._c._hessian_rows(data, per_row, n, [True, True]).reshape(batch + (2, 2))
    return [[h[..., i, j] for j in (0, 1)] for i in (0, 1)]


@FUZZ
@given(programs(), st.lists(st.tuples(any_points, any_points), min_size=1, max_size=5), st.data())
def test_lane_hessian_against_the_dual_hessian_and_hvp(prog, points, data):
    F = _compile(prog)
    n = data.draw(st.sampled_from([1, 3, 5, 9, 33]))
    X = np.array([points[i % len(points)][0] for i in range(n)])
    Y = np.array([points[i % len(points)][1] for i in range(n)])
    lanes = F.hessian(X, Y, wrt=(0, 1))
    dual = _dual_hessian(F, X, Y)
    if not _uses_vmath(prog):
        # Same operations on the same numbers wherever the dual Hessian is finite (a NaN
        # or infinite adjoint meets a structurally zero tangent in the lane program, a
        # zero tangent times it in the dual one: see rust/hvp.rs).
        finite = np.all([np.isfinite(dual[i][j]) for i in (0, 1) for j in (0, 1)], axis=0)
        for i in (0, 1):
            for j in (0, 1):
                a, b = np.asarray(lanes[i][j]), np.asarray(dual[i][j])
                assert equal(a[finite], b[finite]), (i, j, a, b)
    # A unit v picks a Hessian column exactly.
    for j in (0, 1):
        hx, hy = F.hvp(X, Y, v=(1.0 * (j == 0), 1.0 * (j == 1)), wrt=(0, 1))
        assert equal(hx, lanes[0][j]) and equal(hy, lanes[1][j]), j


def _finite(results):
    return all(bool(np.isfinite(np.asarray(r, dtype=float)).all()) for r in results)


@FUZZ
@given(programs(), st.lists(st.tuples(any_points, any_points), min_size=1, max_size=9))
def test_debug_nans_raises_exactly_when_a_result_is_not_finite(prog, points):
    # wg.debug_nans: a compiled call either gives the bits it gives with the check off
    # or raises NonFiniteError, and raises exactly when one of those results, or the
    # function's value it computes on the way, is not finite; eager ops raise nothing
    # else either.
    F = _compile(prog)
    X = np.array([p[0] for p in points])
    Y = np.array([p[1] for p in points])
    calls = [
        lambda: [F(X, Y)],
        lambda: [F.value_and_grad(X, Y, wrt=(0, 1))[0], *F.value_and_grad(X, Y, wrt=(0, 1))[1]],
        lambda: [F(X, Y), *F.jacobian(X, Y, wrt=(0, 1))],
        lambda: list(F.jvp((X, Y), (np.ones_like(X), np.full_like(Y, 0.5)))),
        # The Hessian's check covers the gradient it computes on the way (a finite Hessian
        # reached through an infinite adjoint, as sqrt(-|x|) at 0, raises).
        lambda: [F(X, Y), *F.value_and_grad(X, Y, wrt=(0, 1))[1]]
        + [np.asarray(b) for row in F.hessian(X, Y, wrt=(0, 1)) for b in row],
        lambda: [F(X, Y, reduce="sum")],
    ]
    for call in calls:
        off = call()
        try:
            with wg.debug_nans():
                on = call()
        except wg.NonFiniteError:
            assert not _finite(off)
        else:
            assert _finite(off) and all(same(a, b) for a, b in zip(off, on))
    x, y = points[0]
    for kind in (wg.Var, wg.Dual):
        try:
            with wg.debug_nans():
                run_wg(prog, kind(x), kind(y))
        except wg.NonFiniteError:
            pass
