"""wengert: exact derivatives of scalar Python code.

Reverse mode with ``Var`` (an arena tape in Rust), forward mode with ``Dual``.

>>> import wengert as wg
>>> x1, x2 = wg.Var(1.5), wg.Var(0.5)
>>> y = (wg.sin(x1 / x2) + x1 / x2 - wg.exp(x2)) * (x1 / x2 - wg.exp(x2))
>>> y.backward()
>>> round(x1.grad, 6), round(x2.grad, 6)
(3.011843, -13.723962)
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from ._core import (
    Dual,
    get_num_threads,
    set_num_threads,
    Var,
    abs,
    acos,
    acosh,
    asin,
    asinh,
    atan,
    atan2,
    atanh,
    cbrt,
    cos,
    cosh,
    erf,
    exp,
    exp2,
    expm1,
    hypot,
    log,
    log1p,
    log2,
    log10,
    maximum,
    minimum,
    pow,
    relu,
    sigmoid,
    sin,
    sinh,
    softplus,
    sqrt,
    tan,
    tanh,
    floor,
    ceil,
    round as _round_op,
    trunc,
    sign,
    square,
    reciprocal,
    erfc,
    lgamma,
    digamma,
    trigamma,
    sinc,
    stop_gradient,
    fmod,
    remainder,
    copysign,
    logaddexp,
)
from ._compile import Compiled, compile
from ._guards import MAX_VARIANTS
from ._debug import NonFiniteError, debug_nans, debug_nans_enabled, set_debug_nans
from ._arrays import grads, values, vars
from ._transforms import check_grad, derivative, grad, hessian, jacobian, jvp, value_and_grad, vjp


def where(cond: Any, a: Any, b: Any) -> Any:
    """``a`` where ``cond`` holds, else ``b``.

    Eagerly ``cond`` is a bool (a comparison of Vars gives one), so this picks ``a`` or
    ``b`` and the gradient flows to the one picked; ``&`` and ``|`` combine bools as they
    combine traced conditions, but for negation use ``not c`` (``~`` on a Python bool is
    integer inversion, ``~True == -2``, refused here). Boolean arrays select element-wise.
    In ``wg.compile`` a traced condition records a branch-free select.

    >>> import wengert as wg
    >>> x = wg.Var(-2.0)
    >>> wg.where(x > 0, x, -x).value
    2.0
    """
    if isinstance(cond, (bool, np.bool_)):
        return a if cond else b
    if isinstance(cond, np.ndarray):
        return np.where(cond, a, b)
    select = getattr(cond, "_where", None)
    if callable(select):
        return select(a, b)
    hint = ""
    if isinstance(cond, (int, np.integer)) and cond in (-1, -2):
        hint = " (~ of a Python bool is integer inversion, ~True == -2: write `not c` for a bool)"
    raise TypeError(
        f"wg.where(cond, a, b): cond must be a bool, a boolean array or a traced comparison, "
        f"got {type(cond).__name__}{hint}"
    )


def round(x: Any, ndigits: Any = None) -> Any:
    """``x`` rounded to the nearest integer, halves to even (as ``np.round``/``np.rint``
    and Python's ``round``), as a float, Var or Dual: derivative 0 (also at the jumps).

    With ``ndigits``, plain numbers are rounded as Python's ``round`` (and arrays as
    ``np.round``); a Var, Dual or traced number has no rule for that and raises
    TypeError. (Not in ``__all__``: ``from wengert import *`` keeps the builtin.)

    >>> import wengert as wg
    >>> wg.round(2.5), wg.round(-0.5), round(1.2345, 2)
    (2.0, -0.0, 1.23)
    """
    if ndigits is None:
        return _round_op(x)
    if isinstance(x, (np.ndarray, list, tuple)) and np.asarray(x).dtype != object:
        return np.round(np.asarray(x, dtype=float), ndigits)
    if isinstance(x, (int, float, np.integer, np.floating)):
        return builtins.round(x, ndigits)
    return builtins.round(x, ndigits)  # Var, Dual, traced: __round__ raises naming the rule


def clip(x: Any, lo: Any, hi: Any) -> Any:
    """``x`` limited to ``[lo, hi]``, as ``np.clip``: ``lo`` below, ``hi`` above.

    The gradient is 1 to ``x`` inside the interval, ties at ``lo`` and ``hi`` included
    (as PyTorch's ``clamp``; JAX's ``clip`` splits a tie in half), and 0 outside, where it
    goes to the bound instead. NaN stays NaN. Works on floats, Var, Dual, arrays and
    traced numbers (a branch-free select).

    >>> import wengert as wg
    >>> x = wg.Var(2.0)
    >>> y = wg.clip(x, 0.0, 2.0); y.backward(); (y.value, x.grad)
    (2.0, 1.0)
    """
    # Strictly outside, maximum/minimum give the bound with gradient 0 to x (no tie there).
    return where(x < lo, maximum(x, lo), where(x > hi, minimum(x, hi), +x))


def logsumexp(seq: Any) -> Any:
    """``log(sum(exp(x) for x in seq))``, without overflow: the largest element ``m`` is
    subtracted first (``m + log(sum(exp(x - m)))``), with ``m`` held constant
    (``stop_gradient``), so the gradient is exactly the softmax of ``seq``. An infinite
    ``m`` is replaced by 0, so all ``-inf`` gives ``-inf`` and a ``+inf`` gives ``inf``,
    as ``scipy.special.logsumexp``. A float array is left to NumPy.

    >>> import wengert as wg
    >>> round(wg.logsumexp([1000.0, 1000.0]), 6)
    1000.693147
    """
    if isinstance(seq, np.ndarray) and seq.dtype != object:
        a = np.asarray(seq, dtype=float).ravel()
        if a.size == 0:
            return -np.inf
        m = np.max(a)
        m = m if np.isfinite(m) else 0.0
        with np.errstate(all="ignore"):
            return float(m + np.log(np.sum(np.exp(a - m))))
    xs = list(seq.ravel() if isinstance(seq, np.ndarray) else seq)
    if not xs:
        return -np.inf
    m = xs[0]
    for x in xs[1:]:
        m = maximum(m, x)
    m = stop_gradient(m)
    m = where(abs(m) < np.inf, m, 0.0)
    total = exp(xs[0] - m)
    for x in xs[1:]:
        total = total + exp(x - m)
    return m + log(total)


__all__ = [
    "Compiled", "Dual", "MAX_VARIANTS", "NonFiniteError", "Var", "check_grad", "compile", "debug_nans",
    "debug_nans_enabled", "derivative", "hessian", "jacobian", "set_debug_nans",
    "jvp", "value_and_grad", "vjp", "get_num_threads", "set_num_threads", "abs", "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt",
    "cos", "cosh", "erf", "exp", "exp2", "expm1", "grad", "grads", "hypot", "log", "log1p",
    "log2", "log10", "maximum", "minimum", "pow", "relu", "sigmoid", "sin", "sinh",
    "softplus", "sqrt", "tan", "tanh", "values", "vars", "where", "clip", "logsumexp",
    "floor", "ceil", "trunc", "sign", "square", "reciprocal", "erfc", "lgamma", "digamma", "trigamma", "sinc", "stop_gradient", "fmod", "remainder", "copysign", "logaddexp",
]
