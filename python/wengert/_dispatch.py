"""Where ``wg.sin(x)`` and friends go when ``x`` is not a float, Var or Dual.

Arrays are mapped element-wise (NumPy's own ufunc where one exists, so float arrays stay
fast); any other object that has a method of the same name (a traced value, a user's
number type) is asked to do it itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core

# wengert name -> NumPy ufunc, for float arrays.
_NUMPY = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos,
    "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh, "exp": np.exp,
    "exp2": np.exp2, "expm1": np.expm1, "log": np.log, "log2": np.log2, "log10": np.log10,
    "log1p": np.log1p, "sqrt": np.sqrt, "cbrt": np.cbrt, "abs": np.abs,
    "atan2": np.arctan2, "hypot": np.hypot, "pow": np.power, "maximum": np.maximum,
    "minimum": np.minimum,
}


def _is_array(x: Any) -> bool:
    return isinstance(x, (np.ndarray, list, tuple))


def _elementwise(name: str, nin: int, *arrays: Any) -> Any:
    arrays_np = [np.asarray(a) for a in arrays]
    if all(a.dtype != object for a in arrays_np) and name in _NUMPY:
        with np.errstate(all="ignore"):  # IEEE results, as the scalar functions give
            return _NUMPY[name](*arrays_np)
    out = np.frompyfunc(getattr(_core, name), nin, 1)(*arrays_np)
    if all(a.dtype != object for a in arrays_np):
        return np.asarray(out, dtype=float)
    return out


def _type_error(name: str, *args: Any) -> TypeError:
    got = ", ".join(type(a).__name__ for a in args)
    names = "x" if len(args) == 1 else "x, y"
    return TypeError(
        f"wg.{name}({names}): expected floats, ints, Var, Dual or arrays, got {got}"
        + (" (Var and Dual cannot be mixed)" if len(args) == 2 else "")
    )


def unary_fallback(name: str, x: Any) -> Any:
    if _is_array(x):
        return _elementwise(name, 1, x)
    method = getattr(x, name, None)
    if callable(method):
        return method()
    raise _type_error(name, x)


def binary_fallback(name: str, x: Any, y: Any) -> Any:
    if _is_array(x) or _is_array(y):
        return _elementwise(name, 2, x, y)
    method = getattr(x, name, None)
    if callable(method) and not isinstance(x, (_core.Var, _core.Dual)):
        return method(y)
    reflected = getattr(y, "r" + name, None)
    if callable(reflected):
        return reflected(x)
    if isinstance(x, (_core.Var, _core.Dual)):
        return method(y)  # raises a TypeError naming what it accepts
    raise _type_error(name, x, y)
