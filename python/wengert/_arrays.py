"""Conversions between float arrays and NumPy object arrays of Vars."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._core import Var


def vars(array: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """An object array of new leaf Vars with the values and shape of ``array``.

    >>> import numpy as np, wengert as wg
    >>> x = wg.vars([1.0, 2.0])
    >>> y = np.sum(x * x)
    >>> y.backward()
    >>> wg.grads(x)
    array([2., 4.])
    """
    a = np.asarray(array)
    if a.dtype == object or not np.issubdtype(a.dtype, np.number):
        raise TypeError(f"wg.vars(array): array must hold real numbers, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise TypeError("wg.vars(array): array must hold real numbers, got complex")
    out = np.empty(a.shape, dtype=object)
    flat = out.reshape(-1)
    for i, v in enumerate(a.reshape(-1).tolist()):
        flat[i] = Var(v)
    return out


def _read(arr: Any, attr: str, fname: str) -> npt.NDArray[np.float64]:
    a = np.asarray(arr, dtype=object)
    out = np.empty(a.shape, dtype=float)
    flat = out.reshape(-1)
    for i, e in enumerate(a.reshape(-1)):
        if hasattr(e, attr):
            flat[i] = getattr(e, attr)
        elif attr == "value" and isinstance(e, (int, float, np.number)):
            flat[i] = float(e)
        elif attr == "grad" and isinstance(e, (int, float, np.number)):
            flat[i] = 0.0  # a constant has no gradient
        else:
            raise TypeError(f"wg.{fname}(arr): elements must be Var (or numbers), got {type(e).__name__}")
    return out


def values(arr: Any) -> npt.NDArray[np.float64]:
    """The float array of ``.value`` of every element (Var, Dual or number)."""
    return _read(arr, "value", "values")


def grads(arr: Any) -> npt.NDArray[np.float64]:
    """The float array of ``.grad`` of every Var in ``arr`` (0.0 for plain numbers)."""
    return _read(arr, "grad", "grads")
