"""Function transforms (JAX conventions) and the gradient of an eager output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _core
from ._core import Var


def _var_grad(y: Var, wrt: Var | Sequence[Var]) -> float | list[float]:
    if isinstance(wrt, Var):
        return _core.var_gradient(y, [wrt])[0]
    try:
        items = list(wrt)
    except TypeError:
        raise TypeError(
            f"wg.grad(y, wrt): wrt must be a Var or a sequence of Vars, got {type(wrt).__name__}"
        ) from None
    for i, v in enumerate(items):
        if not isinstance(v, Var):
            raise TypeError(f"wg.grad(y, wrt): wrt[{i}] must be a Var, got {type(v).__name__}")
    return _core.var_gradient(y, items)


def grad(f: Any, wrt: Any = 0) -> Any:
    """The gradient.

    ``grad(y, wrt)`` with ``y`` a Var: dy/dwrt for one Var (a float) or a sequence of Vars
    (a list of floats), without touching ``.grad``.

    >>> import wengert as wg
    >>> x = wg.Var(2.0)
    >>> wg.grad(x * x, x)
    4.0
    """
    if isinstance(f, Var):
        return _var_grad(f, wrt)
    raise TypeError(
        f"wg.grad(y, wrt): y must be a Var (the output of an eager computation), got {type(f).__name__}"
    )
