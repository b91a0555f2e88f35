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


__all__ = [
    "Compiled", "Dual", "MAX_VARIANTS", "NonFiniteError", "Var", "check_grad", "compile", "debug_nans",
    "debug_nans_enabled", "derivative", "hessian", "jacobian", "set_debug_nans",
    "jvp", "value_and_grad", "vjp", "get_num_threads", "set_num_threads", "abs", "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt",
    "cos", "cosh", "erf", "exp", "exp2", "expm1", "grad", "grads", "hypot", "log", "log1p",
    "log2", "log10", "maximum", "minimum", "pow", "relu", "sigmoid", "sin", "sinh",
    "softplus", "sqrt", "tan", "tanh", "values", "vars", "where",
]
