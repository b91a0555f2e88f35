"""Transforms of transforms: derivatives as graphs, evaluated on any numbers.

When a transform is handed numbers that carry derivatives themselves (``Var``, ``Dual``
or the traced values of ``wg.compile``), as ``wg.grad(wg.grad(f))`` hands the inner
``grad`` a ``Var``, converting them to floats would silently drop the outer derivative.
Instead ``f`` is traced once into a graph, the Rust core writes out the graph of its
forward or reverse sweep (``rust/derive.rs``, from the same rules as every other mode),
and that graph is evaluated here, op by op, on the numbers given. Evaluating on ``Var``s
records onto the eager tape, on ``Dual``s carries tangents, on traced values records into
the enclosing trace, so the result differentiates again, to any order.

``f`` is traced at the numbers it is given: when they are ``Var``s and ``Dual``s (eager
nesting such as ``wg.grad(wg.grad(f))(x)``), their values are the trace's witness, so a
branch is taken as it would be at that point (the derivative graph is evaluated only
there). Traced numbers of an enclosing ``wg.compile`` have no single value: there a
branch on them raises a ``TypeError`` saying to compile ``f`` itself (``F.grad`` follows
branches row by row) or to use ``wg.where``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _core

#: Number types that carry derivative information.
NUMBERS = (_core.Var, _core.Dual, _core._Traced)

def _div(a: Any, b: Any) -> Any:
    # Python's float division raises at 0 where IEEE gives inf or nan (a derivative graph
    # evaluated on plain floats divides by 0 at sqrt' or sinc' of 0).
    try:
        return a / b
    except ZeroDivisionError:
        with np.errstate(all="ignore"):
            return float(np.float64(a) / np.float64(b))


_UNARY: dict[str, Callable[[Any], Any]] = {"neg": operator.neg}
_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": _div,
    # wengert's pow, not Python's: a negative float to a fractional power is nan, not a
    # complex number, and 0.0 ** -1 is inf, not ZeroDivisionError.
    "pow": _core.pow,
}
_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}


def _unary(name: str) -> Callable[[Any], Any]:
    fn = _UNARY.get(name)
    if fn is None:
        fn = _UNARY[name] = getattr(_core, name)
    return fn


def _binary(name: str) -> Callable[[Any, Any], Any]:
    fn = _BINARY.get(name)
    if fn is None:
        fn = _BINARY[name] = getattr(_core, name)
    return fn


def _select(cond: Any, a: Any, b: Any) -> Any:
    if isinstance(cond, (bool, np.bool_)):
        return a if cond else b
    return cond._where(a, b)


def evaluate(nodes: Sequence[tuple[Any, ...]], outputs: Sequence[int], inputs: Sequence[Any]) -> list[Any]:
    """The values of ``outputs`` of an exported graph, computed on ``inputs``."""
    vals: list[Any] = []
    push = vals.append
    for node in nodes:
        kind = node[0]
        if kind == 0:
            push(inputs[node[1]])
        elif kind == 1:
            push(node[1])
        elif kind == 2:
            push(_unary(node[1])(vals[node[2]]))
        elif kind == 3:
            push(_binary(node[1])(vals[node[2]], vals[node[3]]))
        else:
            _, sym, x, y, a, b = node
            push(_select(_CMP[sym](vals[x], vals[y]), vals[a], vals[b]))
    return [vals[o] for o in outputs]


def flat_out(y: Any) -> tuple[list[Any], tuple[int, ...]]:
    if isinstance(y, (list, tuple, np.ndarray)):
        arr = np.asarray(y, dtype=object)
        return list(arr.reshape(-1)), arr.shape
    return [y], ()


def arguments(flat: Sequence[Any], shapes: Sequence[tuple[int, ...]]) -> list[Any]:
    """A trace's flat inputs cut into one argument per shape: a scalar, or an object array
    of that shape."""
    args: list[Any] = []
    at = 0
    for shape in shapes:
        size = int(np.prod(shape))
        if shape == ():
            args.append(flat[at])
        else:
            arr = np.empty(size, dtype=object)
            arr[:] = flat[at : at + size]
            args.append(arr.reshape(shape))
        at += size
    return args


class Traced:
    """``f`` traced at arguments of the given shapes (each ``()`` or ``(n,)``)."""

    def __init__(
        self, f: Callable[..., Any], shapes: Sequence[tuple[int, ...]], what: str, points: Sequence[Any] | None = None
    ) -> None:
        witness = None
        if points is not None:
            flat = [v for p in points for v in np.asarray(p, dtype=object).reshape(-1)]
            if not any(isinstance(v, _core._Traced) for v in flat):
                witness = [float(v) for v in flat]
        self.trace = _core._Trace([int(np.prod(s)) for s in shapes], witness)
        args = arguments(self.trace.inputs(), shapes)
        from ._transforms import _calling

        with _calling():
            try:
                out = f(*args)
            except TypeError as e:
                if "unsupported operand" in str(e) or "another wg.compile trace" in str(e):
                    raise TypeError(
                        f"{what} inside another transform: {e}. A transform's function "
                        "must get every number it differentiates through as an argument; "
                        "a Var, Dual or traced value from an enclosing transform that it "
                        "closes over cannot be followed: pass it as an extra argument "
                        "(e.g. wg.grad(lambda y, x: x * y)(1.0, x))"
                    ) from e
                raise
        self.outputs, self.shape = flat_out(out)
        for i, o in enumerate(self.outputs):
            if not isinstance(o, (_core._Traced, int, float, np.integer, np.floating)) or isinstance(o, bool):
                raise TypeError(
                    f"{what}: output {i} of the function is a {type(o).__name__}, expected a "
                    "number (or a sequence of numbers)"
                    + (
                        "; a Var or Dual made outside the function cannot be differentiated "
                        "through here: pass it to the function as an argument"
                        if isinstance(o, (_core.Var, _core.Dual))
                        else ""
                    )
                )

    def derive(self, mode: str, seeds: Sequence[float | None], inputs: Sequence[Any]) -> list[Any]:
        """The derivative graph's outputs at ``inputs`` (flat arguments, then the seeds
        that are numbers)."""
        nodes, outs = self.trace._derive(self.outputs, mode, list(seeds))
        return evaluate(nodes, outs, inputs)
