"""Where ``wg.sin(x)`` and friends go when ``x`` is not a float, Var or Dual.

Arrays are mapped element-wise (NumPy's own ufunc where one exists, so float arrays stay
fast); any other object that has a method of the same name (a traced value, a user's
number type) is asked to do it itself.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _core

# wengert name -> NumPy ufunc, for float arrays.
_NUMPY: dict[str, Callable[..., Any]] = {  # np.sinc is a function, not a ufunc
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos,
    "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh, "exp": np.exp,
    "exp2": np.exp2, "expm1": np.expm1, "log": np.log, "log2": np.log2, "log10": np.log10,
    "log1p": np.log1p, "sqrt": np.sqrt, "cbrt": np.cbrt, "abs": np.abs,
    "atan2": np.arctan2, "hypot": np.hypot, "pow": np.power, "maximum": np.maximum,
    "minimum": np.minimum, "floor": np.floor, "ceil": np.ceil, "round": np.rint,
    "trunc": np.trunc, "sign": np.sign, "square": np.square, "reciprocal": np.reciprocal,
    "sinc": np.sinc, "fmod": np.fmod, "remainder": np.remainder, "copysign": np.copysign,
    "logaddexp": np.logaddexp,
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
    if isinstance(x, (_core.Var, _core.Dual)) and callable(method):
        return method(y)  # raises a TypeError naming what it accepts
    raise _type_error(name, x, y)


# NumPy ufunc -> the wengert rule it means on a Var, Dual or traced number. Any ufunc not
# here has no rule (np.fmax, np.heaviside, ...): it raises rather than convert the number
# with __float__ and drop its derivative.
_UFUNC_RULES: dict[np.ufunc, Callable[..., Any]] = {
    np.sin: _core.sin, np.cos: _core.cos, np.tan: _core.tan, np.arcsin: _core.asin,
    np.arccos: _core.acos, np.arctan: _core.atan, np.sinh: _core.sinh, np.cosh: _core.cosh,
    np.tanh: _core.tanh, np.arcsinh: _core.asinh, np.arccosh: _core.acosh,
    np.arctanh: _core.atanh, np.exp: _core.exp, np.exp2: _core.exp2, np.expm1: _core.expm1,
    np.log: _core.log, np.log2: _core.log2, np.log10: _core.log10, np.log1p: _core.log1p,
    np.sqrt: _core.sqrt, np.cbrt: _core.cbrt, np.absolute: _core.abs, np.fabs: _core.abs,
    np.negative: operator.neg, np.positive: operator.pos, np.conjugate: operator.pos,
    np.square: _core.square, np.reciprocal: _core.reciprocal,
    np.floor: _core.floor, np.ceil: _core.ceil, np.rint: _core.round, np.trunc: _core.trunc,
    np.sign: _core.sign, np.fmod: _core.fmod, np.remainder: _core.remainder,
    np.copysign: _core.copysign, np.logaddexp: _core.logaddexp,
    np.add: operator.add, np.subtract: operator.sub, np.multiply: operator.mul,
    np.true_divide: operator.truediv, np.power: operator.pow, np.float_power: operator.pow,
    np.maximum: _core.maximum, np.minimum: _core.minimum, np.arctan2: _core.atan2,
    np.hypot: _core.hypot,
    # Comparisons carry no derivative: they answer (eagerly) or record (traced) as the
    # operators do.
    np.less: operator.lt, np.less_equal: operator.le, np.greater: operator.gt,
    np.greater_equal: operator.ge, np.equal: operator.eq, np.not_equal: operator.ne,
}

_OURS = (_core.Var, _core.Dual, _core._Traced)


def _kind(x: Any) -> str:
    return "traced value" if isinstance(x, _core._Traced) else type(x).__name__


def _plain(x: Any) -> Any:
    """A 0-d array or NumPy scalar as a Python object, so the rule sees what the
    operators see (np.float64 * Var would come back here forever)."""
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x[()]
    if isinstance(x, np.generic):
        return x.item()
    return x


def array_ufunc(obj: Any, ufunc: np.ufunc, method: str, inputs: tuple[Any, ...], kwargs: dict[str, Any] | None) -> Any:
    """``__array_ufunc__`` of Var, Dual and traced numbers: NumPy calls it whenever one of
    them is an operand of a ufunc (``np.sin(x)``, ``np.add(x, arr)``)."""
    kind = _kind(obj)
    name = f"np.{ufunc.__name__}"
    rule = _UFUNC_RULES.get(ufunc)
    if rule is None:
        plain = "" if isinstance(obj, _core._Traced) else ", or .value for the plain number"
        raise TypeError(
            f"{name} has no wengert rule for {kind}: it would drop the derivative; use the "
            f"wengert functions (wg.sin, wg.maximum, ...){plain}"
        )
    kwargs = dict(kwargs or {})
    out = kwargs.pop("out", None)
    for k, v in kwargs.items():
        if not (k == "dtype" and v in (None, object, np.dtype(object))):
            raise TypeError(f"{name}(..., {k}=...) is not supported with {kind} operands")
    if out is not None:
        out = out if isinstance(out, tuple) else (out,)
        if len(out) != 1 or not (isinstance(out[0], np.ndarray) and out[0].dtype == object):
            raise TypeError(
                f"{name}(..., out=...): out must be one object array when an operand is a "
                f"{kind} (a float array would drop the derivative)"
            )
    if method == "__call__":
        args = [_plain(a) for a in inputs]
        if any(isinstance(a, (np.ndarray, list, tuple)) for a in args):
            result = _object_ufunc(rule, ufunc.nin)(*_wrapped(args))
        else:
            result = rule(*args)
    elif method in ("reduce", "accumulate", "reduceat", "outer", "at"):
        result = getattr(_object_ufunc(rule, ufunc.nin), method)(*_wrapped(list(inputs)), **kwargs)
        if method == "at":
            return None
    else:
        raise TypeError(f"{name}.{method} is not supported with {kind} operands")
    if out is not None:
        out[0][...] = result
        return out[0]
    return result


def _wrapped(args: list[Any]) -> list[Any]:
    """Our numbers as 0-d object arrays, so the elementwise ufunc below does not come
    back to ``array_ufunc``."""
    wrapped = []
    for a in args:
        if isinstance(a, _OURS):
            w = np.empty((), dtype=object)
            w[()] = a
            a = w
        wrapped.append(a)
    return wrapped


_OBJECT_UFUNCS: dict[tuple[Any, int], np.ufunc] = {}


def _object_ufunc(rule: Callable[..., Any], nin: int) -> np.ufunc:
    key = (rule, nin)
    u = _OBJECT_UFUNCS.get(key)
    if u is None:
        u = _OBJECT_UFUNCS[key] = np.frompyfunc(rule, nin, 1)
    return u
