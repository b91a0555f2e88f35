"""Reference values and derivatives of every elementary op, from sympy evaluated by mpmath.

This module is the independent reference for the op rules (rust/op.rs):

- ``UNARY`` / ``BINARY`` map each op's Python name to a sympy expression; the derivative
  is whatever ``sympy.diff`` makes of it, evaluated by sympy/mpmath at 480 digits (checked stable).
- ``UNARY_POINTS`` / ``BINARY_POINTS``: points across each op's domain (tails, tiny
  arguments, near singularities) where the derivative is finite.
- Run as a script, it writes ``tests/golden/ops.rs``, which ``tests/ops.rs`` includes:

      python tests/gen_golden.py

The pytest suites import the same tables, so the Python and Rust checks share one statement
of what each op means. Kinks (abs/relu at 0, max/min at ties) follow the conventions in
rust/op.rs (subgradient 0, ties split evenly); they are checked by hand in the tests,
not here, except ties of max/min, where sympy's Heaviside(0) = 1/2 is the same convention.
"""

from __future__ import annotations

from pathlib import Path

import mpmath
import sympy as sp

DPS = 60

x, y = sp.symbols("x y", real=True)

UNARY: dict[str, sp.Expr] = {
    "neg": -x,
    "sin": sp.sin(x),
    "cos": sp.cos(x),
    "tan": sp.tan(x),
    "asin": sp.asin(x),
    "acos": sp.acos(x),
    "atan": sp.atan(x),
    "sinh": sp.sinh(x),
    "cosh": sp.cosh(x),
    "tanh": sp.tanh(x),
    "asinh": sp.asinh(x),
    "acosh": sp.acosh(x),
    "atanh": sp.atanh(x),
    "exp": sp.exp(x),
    "exp2": 2**x,
    "expm1": sp.exp(x) - 1,
    "log": sp.log(x),
    "log2": sp.log(x) / sp.log(2),
    "log10": sp.log(x) / sp.log(10),
    "log1p": sp.log(1 + x),
    "sqrt": sp.sqrt(x),
    # The real cube root (sympy's cbrt is the principal complex root for x < 0).
    "cbrt": sp.sign(x) * sp.Abs(x) ** sp.Rational(1, 3),
    "abs": sp.Abs(x),
    "sigmoid": 1 / (1 + sp.exp(-x)),
    "relu": sp.Max(x, 0),
    "softplus": sp.log(1 + sp.exp(x)),
    "erf": sp.erf(x),
}

BINARY: dict[str, sp.Expr] = {
    "add": x + y,
    "sub": x - y,
    "mul": x * y,
    "div": x / y,
    "pow": x**y,
    # atan2(x, y) is the angle of the point (y, x), as C's atan2(y, x) with renamed args.
    "atan2": sp.atan2(x, y),
    "hypot": sp.sqrt(x**2 + y**2),
    "maximum": sp.Max(x, y),
    "minimum": sp.Min(x, y),
}

_WIDE = [-30.0, -7.25, -2.5, -1.0, -0.375, -1e-3, -1e-9, 1e-9, 1e-3, 0.375, 1.0, 2.5, 7.25, 30.0]
_POS = [1e-300, 1e-20, 1e-6, 0.1, 0.5, 0.875, 1.0, 1.125, 2.0, 10.0, 1e6, 1e20, 1e300]
_OPEN_UNIT = [-0.999, -0.75, -0.5, -0.1, -1e-8, 0.0, 1e-8, 0.1, 0.5, 0.75, 0.999]

UNARY_POINTS: dict[str, list[float]] = {
    "neg": _WIDE + [0.0, 1e300, -1e-300],
    "sin": _WIDE + [0.0, 100.5, -1000.25, 1e5],
    "cos": _WIDE + [0.0, 100.5, -1000.25, 1e5],
    "tan": [-1.5, -1.0, -0.5, -1e-9, 0.0, 1e-9, 0.5, 1.0, 1.5, 3.0, 100.5],
    "asin": _OPEN_UNIT,
    "acos": _OPEN_UNIT,
    "atan": _WIDE + [0.0, 1e10, -1e10],
    "sinh": _WIDE + [0.0, 300.0, -300.0],
    "cosh": _WIDE + [0.0, 300.0, -300.0],
    "tanh": _WIDE + [0.0, 15.0, -15.0],
    "asinh": _WIDE + [0.0, 1e10, -1e10],
    "acosh": [1.0001, 1.01, 1.5, 2.0, 10.0, 1e5, 1e10],
    "atanh": _OPEN_UNIT,
    "exp": _WIDE + [0.0, -700.0, 700.0],
    "exp2": _WIDE + [0.0, -1000.0, 1000.0],
    "expm1": _WIDE + [0.0, -700.0, 700.0, 1e-15],
    "log": _POS,
    "log2": _POS,
    "log10": _POS,
    "log1p": [-0.999, -0.5, -1e-10, 0.0, 1e-10, 1e-3, 0.5, 3.0, 1e10, 1e300],
    "sqrt": _POS,
    "cbrt": [p for q in _POS for p in (q, -q)],
    "abs": [w for w in _WIDE if w != 0.0],
    "sigmoid": _WIDE + [0.0, -700.0, 700.0, -40.0, 40.0],
    "relu": [w for w in _WIDE if w != 0.0],
    "softplus": _WIDE + [0.0, -40.0, 40.0, -700.0, 700.0],
    "erf": [-5.0, -2.0, -1.0, -0.5, -1e-6, 0.0, 1e-6, 0.5, 1.0, 2.0, 5.0],
}

# Ops whose reference is mpmath's functions with their derivatives in closed form (sympy
# cannot differentiate the steps, nor hold NumPy's conventions): name -> (value,
# derivative) on mpf arguments. The steps' derivative is 0 away from their jumps; at the
# jumps it is 0 too by convention (rust/op/rules.rs). trigamma's derivative is NaN by
# design (tetragamma is not an op), so that is what the reference says.
MP_UNARY = {
    "floor": (mpmath.floor, lambda a: 0),
    "ceil": (mpmath.ceil, lambda a: 0),
    "round": (mpmath.nint, lambda a: 0),  # halves to even, as NumPy
    "trunc": (lambda a: mpmath.floor(a) if a >= 0 else mpmath.ceil(a), lambda a: 0),
    "sign": (mpmath.sign, lambda a: 0),
    "square": (lambda a: a * a, lambda a: 2 * a),
    "reciprocal": (lambda a: 1 / a, lambda a: -1 / (a * a)),
    "erfc": (mpmath.erfc, lambda a: -2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-a * a)),
    "lgamma": (lambda a: mpmath.log(abs(mpmath.gamma(a))), mpmath.digamma),
    "digamma": (mpmath.digamma, lambda a: mpmath.psi(1, a)),
    "trigamma": (lambda a: mpmath.psi(1, a), lambda a: mpmath.nan),
    "sinc": (mpmath.sincpi, lambda a: mpmath.diff(mpmath.sincpi, a)),
    "stop_gradient": (lambda a: a, lambda a: 0),
}


def _trunc(a):
    return mpmath.floor(a) if a >= 0 else mpmath.ceil(a)


# name -> (value, d/dx, d/dy), as MP_UNARY.
MP_BINARY = {
    "fmod": (lambda a, b: a - b * _trunc(a / b), lambda a, b: 1, lambda a, b: -_trunc(a / b)),
    "remainder": (lambda a, b: a - b * mpmath.floor(a / b), lambda a, b: 1, lambda a, b: -mpmath.floor(a / b)),
    "copysign": (lambda a, b: abs(a) * mpmath.sign(b), lambda a, b: mpmath.sign(a) * mpmath.sign(b), lambda a, b: 0),
    "logaddexp": (
        lambda a, b: mpmath.log(mpmath.exp(a) + mpmath.exp(b)),
        lambda a, b: 1 / (1 + mpmath.exp(b - a)),
        lambda a, b: 1 / (1 + mpmath.exp(a - b)),
    ),
}
UNARY.update({name: None for name in MP_UNARY})  # type: ignore[misc]
BINARY.update({name: None for name in MP_BINARY})  # type: ignore[misc]

_STEPS = [-7.25, -2.5, -1.5, -1.0, -0.5, -1e-9, 0.0, 1e-9, 0.5, 1.0, 1.5, 2.5, 3.75]
UNARY_POINTS.update({
    "floor": _STEPS, "ceil": _STEPS, "round": _STEPS, "trunc": _STEPS, "sign": _STEPS,
    "square": _WIDE + [0.0, 1e100],
    "reciprocal": _WIDE + [1e-300, 1e300],
    "erfc": [-5.0, -1.0, -1e-6, 0.0, 1e-6, 0.5, 1.0, 2.0, 5.0, 10.0, 26.0],
    "lgamma": [1e-8, 0.1, 0.5, 1.0, 2.0, 2.5, 7.25, 30.0, 1e5, -0.5, -1.5, -2.25, -7.75],
    "digamma": [1e-8, 0.1, 0.5, 1.0, 2.0, 2.5, 7.25, 30.0, 1e5, 1e12, -0.5, -2.25, -7.75],
    "trigamma": [1e-8, 0.1, 0.5, 1.0, 2.0, 7.25, 30.0, 1e5, -0.5, -2.25],
    "sinc": [-7.25, -2.5, -1.0, -0.3, -1e-5, 0.0, 1e-5, 0.1, 0.25, 0.5, 0.9, 1.0, 2.75, 100.5],
    "stop_gradient": _WIDE + [0.0],
})

_PAIRS = [(-3.5, 2.25), (-1.0, -0.5), (0.75, 1.25), (2.0, -7.0), (1e-3, 30.0), (100.0, 0.01)]

BINARY_POINTS: dict[str, list[tuple[float, float]]] = {
    "add": _PAIRS + [(0.0, 0.0), (1e300, -1e300)],
    "sub": _PAIRS + [(0.0, 0.0), (1.5, 1.5)],
    "mul": _PAIRS + [(0.0, 5.0), (1e150, 1e-150)],
    "div": _PAIRS + [(0.0, 5.0), (1.0, 3.0), (1e-300, 1e10)],
    "pow": [(0.5, 2.0), (2.0, 0.5), (3.0, -1.5), (1.5, 10.0), (10.0, 0.3), (0.01, 3.0), (7.0, 0.0), (1.0, 2.5), (2.0, -30.0)],
    "atan2": _PAIRS + [(0.0, 1.0), (0.0, -1.0), (1.0, 0.0), (-1.0, 0.0), (1e-200, 1e-200)],
    "hypot": _PAIRS + [(0.0, 1.0), (3.0, 4.0), (1e200, 1e200), (1e-200, 3e-200)],
    "maximum": _PAIRS + [(1.5, 1.5), (-2.0, -2.0)],
    "minimum": _PAIRS + [(1.5, 1.5), (-2.0, -2.0)],
    "fmod": _PAIRS + [(-5.5, 2.0), (5.5, -2.0), (1e10, 3.0)],
    "remainder": _PAIRS + [(-5.5, 2.0), (5.5, -2.0), (1e10, 3.0)],
    "copysign": _PAIRS + [(2.0, 3.0), (-2.0, -3.0)],
    "logaddexp": _PAIRS + [(1.0, 1.0), (-700.0, 700.0), (1000.0, 999.0), (0.0, 40.0)],
}


def _exact(expr, subs) -> float:
    """``expr`` at the exact rationals of ``subs``, correctly rounded to double.

    Evaluated at two precisions that must agree: sympy's evalf does not always raise its
    working precision enough on its own (log(1 + exp(-700)) comes out 0 at 50 digits).
    """
    lo, hi = (_at(expr, subs, d) for d in (DPS, 8 * DPS))
    if lo != hi and not (lo != lo and hi != hi):
        lo2 = _at(expr, subs, 16 * DPS)
        if lo2 != hi:
            raise ArithmeticError(f"{expr} at {subs}: no stable value ({lo}, {hi}, {lo2})")
    return hi


def _at(expr, subs, digits: int) -> float:
    # sp.Float(double, n) holds the double exactly to n digits; exact Rationals would be
    # simpler but make sympy attempt root extraction for 2**(p/2**52).
    v = expr.subs({k: sp.Float(a, digits + 20) for k, a in subs.items()}).doit()
    return float(mpmath.mpf(str(sp.N(v, digits))))


def reference_unary(name: str, a: float) -> tuple[float, float]:
    """(value, derivative) of op ``name`` at ``a``, correctly rounded to double."""
    if name in MP_UNARY:
        with mpmath.workdps(DPS):
            f, d = MP_UNARY[name]
            return float(f(mpmath.mpf(a))), float(d(mpmath.mpf(a)))
    e = UNARY[name]
    return (
        _exact(e, {x: a}),
        _exact(sp.diff(e, x), {x: a}),
    )


def reference_binary(name: str, a: float, b: float) -> tuple[float, float, float]:
    """(value, d/dx, d/dy) of op ``name`` at ``(a, b)``, correctly rounded to double."""
    if name in MP_BINARY:
        with mpmath.workdps(DPS):
            a_, b_ = mpmath.mpf(a), mpmath.mpf(b)
            return tuple(float(f(a_, b_)) for f in MP_BINARY[name])  # type: ignore[return-value]
    e = BINARY[name]
    s = {x: a, y: b}
    return (
        _exact(e, s),
        _exact(sp.diff(e, x), s),
        _exact(sp.diff(e, y), s),
    )


# Expressions for the Tape API test (tests/ops.rs writes each again with Rust operators and
# methods): name -> (sympy expression in x, y; the point).
TAPE: dict[str, tuple[sp.Expr, tuple[float, float]]] = {
    # Griewank & Walther's worked example.
    "GRIEWANK": (
        (sp.sin(x / y) + x / y - sp.exp(y)) * (x / y - sp.exp(y)),
        (1.5, 0.5),
    ),
    # Every operator with a Var and an f64 on either side.
    "OPERATORS": (
        x * y + x / y - (x - y) + (1 + x) + (y + 1) + 2 * x + x * 3 - (2 - y) + (y - 2)
        + 3 / x + y / 4 - x + sp.sqrt(y) ** 2,
        (0.75, 2.5),
    ),
    # Every unary method once.
    "UNARY_METHODS": (
        sp.sin(x) + sp.cos(y) + sp.tan(x) + sp.asin(x) + sp.acos(y / 3) + sp.atan(x * y)
        + sp.sinh(x) + sp.cosh(y) + sp.tanh(x) + sp.asinh(y) + sp.acosh(y + 1)
        + sp.atanh(x) + sp.exp(x) + 2 ** y + (sp.exp(x) - 1) + sp.log(y) + sp.log(y) / sp.log(2)
        + sp.log(x) / sp.log(10) + sp.log(1 + y) + sp.sqrt(x) + sp.Abs(y) ** sp.Rational(1, 3)
        + sp.Abs(x - y) + 1 / (1 + sp.exp(-x)) + sp.Max(y - x, 0) + sp.log(1 + sp.exp(y))
        + sp.erf(x),
        (0.625, 1.75),
    ),
    # Every binary method once.
    "BINARY_METHODS": (
        x**y + sp.atan2(x, y) + sp.sqrt(x**2 + y**2) + sp.Max(x, y) + sp.Min(x, y) + x**2.5,
        (1.25, 0.5),
    ),
}


def reference_tape(name: str) -> tuple[float, float, float]:
    """(value, d/dx, d/dy) of ``TAPE[name]`` at its point."""
    e, (a, b) = TAPE[name]
    e = sp.nsimplify(e, rational=True)  # x**2.5 -> x**(5/2), exactly
    s = {x: a, y: b}
    return (
        _exact(e, s),
        _exact(sp.diff(e, x), s),
        _exact(sp.diff(e, y), s),
    )


def _lit(v: float) -> str:
    # repr round-trips a double exactly; Rust accepts the same literal (with a .0 if integral).
    r = repr(float(v))
    if r in ("inf", "-inf", "nan"):
        return {"inf": "f64::INFINITY", "-inf": "f64::NEG_INFINITY", "nan": "f64::NAN"}[r]
    if "e" not in r and "." not in r:
        r += ".0"
    return r


def generate() -> str:
    lines = [
        "// @generated by tests/gen_golden.py from sympy + mpmath at 480 digits. Do not edit;",
        "// rerun `python tests/gen_golden.py` instead.",
        "",
        "/// (op name, x, value, d/dx)",
        "pub const UNARY: &[(&str, f64, f64, f64)] = &[",
    ]
    for name, pts in UNARY_POINTS.items():
        for a in pts:
            v, d = reference_unary(name, a)
            lines.append(f'    ("{name}", {_lit(a)}, {_lit(v)}, {_lit(d)}),')
    lines += ["];", "", "/// (op name, x, y, value, d/dx, d/dy)", "pub const BINARY: &[(&str, f64, f64, f64, f64, f64)] = &["]
    for name, pts in BINARY_POINTS.items():
        for a, b in pts:
            v, dx, dy = reference_binary(name, a, b)
            lines.append(f'    ("{name}", {_lit(a)}, {_lit(b)}, {_lit(v)}, {_lit(dx)}, {_lit(dy)}),')
    lines += ["];", "", "// (value, d/dx, d/dy) of the expressions in gen_golden.TAPE."]
    for name, (_, pt) in TAPE.items():
        v, dx, dy = reference_tape(name)
        lines.append(f"pub const {name}: [f64; 5] = [{_lit(pt[0])}, {_lit(pt[1])}, {_lit(v)}, {_lit(dx)}, {_lit(dy)}];")
    lines += [""]
    return "\n".join(lines)


if __name__ == "__main__":
    out = Path(__file__).parent / "golden" / "ops.rs"
    out.parent.mkdir(exist_ok=True)
    out.write_text(generate())
    print(f"wrote {out}")
