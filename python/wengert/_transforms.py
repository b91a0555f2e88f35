"""Function transforms with JAX's conventions (``wrt`` is JAX's ``argnums``).

Arguments are floats or 1-D arrays; inside ``f`` a vector argument is a NumPy object array
of numbers (``Var`` or ``Dual``), so indexing, slicing and ``np.sum`` work. Reverse mode
uses ``Var``, forward mode ``Dual``; ``hessian`` compiles ``f`` and runs forward over
reverse on the compiled tape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _core
from ._core import Dual, Var


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


# -- arguments ---------------------------------------------------------------------------


def _point(args: Sequence[Any], what: str = "argument") -> list[np.ndarray]:
    """Each argument as a float64 array of shape () or (n,)."""
    out = []
    for i, a in enumerate(args):
        try:
            x = np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{what} {i}: expected a real number or a 1-D array of them, got {type(a).__name__}"
            ) from None
        if x.ndim > 1:
            raise ValueError(f"{what} {i}: expected a number or a 1-D array, got shape {x.shape}")
        out.append(x)
    return out


def _wrt(wrt: Any, n: int) -> tuple[list[int], bool]:
    single = not isinstance(wrt, (tuple, list))
    items = [wrt] if single else list(wrt)
    for w in items:
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or not -n <= w < n:
            raise ValueError(f"wrt must be an argument index in 0..{n - 1} or a tuple of them, got {wrt!r}")
    if not items:
        raise ValueError("wrt must name at least one argument")
    return [int(w) % n for w in items], single


def _lift(x: np.ndarray, make: Callable[[float, int], Any], start: int) -> Any:
    """A scalar or an object array of numbers made by ``make(value, flat index)``."""
    if x.ndim == 0:
        return make(float(x), start)
    arr = np.empty(x.shape, dtype=object)
    for k, v in enumerate(x.tolist()):
        arr[k] = make(v, start + k)
    return arr


def _flat_out(y: Any) -> tuple[list[Any], tuple[int, ...]]:
    if isinstance(y, (list, tuple, np.ndarray)):
        arr = np.asarray(y, dtype=object)
        return list(arr.reshape(-1)), arr.shape
    return [y], ()


def _scalar(y: Any, what: str) -> Any:
    if isinstance(y, (list, tuple, np.ndarray)):
        raise ValueError(
            f"{what} needs a function with a scalar output, but it returned shape "
            f"{np.shape(y)}: reduce it to a scalar (e.g. with sum), or use wg.jacobian or wg.vjp"
        )
    return y


def _value(y: Any) -> float:
    return y.value if isinstance(y, (Var, Dual)) else float(y)


def _split(flat: np.ndarray, points: list[np.ndarray], idx: list[int], lead: tuple[int, ...] = ()) -> list[Any]:
    """Cuts the last axis of ``flat`` into one block per argument in ``idx``."""
    out, at = [], 0
    for i in idx:
        size = points[i].size
        block = flat[..., at : at + size].reshape(lead + points[i].shape)
        out.append(float(block) if block.shape == () else block)
        at += size
    return out


# -- reverse mode ------------------------------------------------------------------------


def _reverse(f: Callable[..., Any], args: Sequence[Any], idx: list[int]) -> tuple[Any, list[Var], list[np.ndarray]]:
    points = _point(args)
    leaves: list[Var] = []

    def leaf(v: float, _: int) -> Var:
        x = Var(v)
        leaves.append(x)
        return x

    call = [(_lift(p, leaf, 0) if i in idx else (float(p) if p.ndim == 0 else p)) for i, p in enumerate(points)]
    return f(*call), leaves, points


def value_and_grad(f: Callable[..., Any], wrt: Any = 0) -> Callable[..., tuple[float, Any]]:
    """``f``'s value and its gradient with respect to argument(s) ``wrt`` (reverse mode).

    >>> import wengert as wg
    >>> wg.value_and_grad(lambda x, y: x * wg.sin(y), wrt=(0, 1))(2.0, 0.0)
    (0.0, (0.0, 2.0))
    """

    def run(*args: Any) -> tuple[float, Any]:
        idx, single = _wrt(wrt, len(args))
        y, leaves, points = _reverse(f, args, idx)
        y = _scalar(y, "wg.grad")
        g = np.array(_core.var_gradient(y, leaves) if isinstance(y, Var) else [0.0] * len(leaves))
        parts = _split(g, points, idx)
        return _value(y), parts[0] if single else tuple(parts)

    return run


def grad(f: Any, wrt: Any = 0) -> Any:
    """The gradient.

    ``grad(f, wrt=0)`` with ``f`` a function: a function giving the gradient of ``f`` with
    respect to argument(s) ``wrt`` (a float or array, or a tuple of them).
    ``grad(y, wrt)`` with ``y`` a Var: dy/dwrt for one Var (a float) or a sequence of Vars
    (a list of floats), without touching ``.grad``.

    >>> import wengert as wg
    >>> x = wg.Var(2.0)
    >>> wg.grad(x * x, x)
    4.0
    >>> wg.grad(lambda x: x ** 3)(2.0)
    12.0
    """
    if isinstance(f, Var):
        return _var_grad(f, wrt)
    if callable(f):
        vg = value_and_grad(f, wrt)
        return lambda *args: vg(*args)[1]
    raise TypeError(
        f"wg.grad(y, wrt): y must be a Var (an eager output), or wg.grad(f, wrt) a function; "
        f"got {type(f).__name__}"
    )


def vjp(f: Callable[..., Any], primals: Sequence[Any], cotangent: Any) -> tuple[Any, tuple[Any, ...]]:
    """``(value, grads)``: ``grads[i]`` is the gradient of ``<cotangent, f(*primals)>``
    with respect to primal ``i`` (reverse mode).

    >>> import wengert as wg
    >>> wg.vjp(lambda x: [x * x, 3 * x], (2.0,), [1.0, 1.0])
    ([4.0, 6.0], (7.0,))
    """
    primals = tuple(primals)
    idx = list(range(len(primals)))
    y, leaves, points = _reverse(f, primals, idx)
    flat, shape = _flat_out(y)
    ct = np.asarray(cotangent, dtype=np.float64)
    if ct.shape != shape:
        raise ValueError(f"wg.vjp: cotangent must have the output's shape {shape}, got {ct.shape}")
    total: Any = 0.0
    for c, out in zip(ct.reshape(-1).tolist(), flat):
        total = total + c * out
    g = np.array(_core.var_gradient(total, leaves) if isinstance(total, Var) else [0.0] * len(leaves))
    values = [_value(v) for v in flat]
    value: Any = values[0] if shape == () else np.array(values).reshape(shape).tolist()
    return value, tuple(_split(g, points, idx))


# -- forward mode ------------------------------------------------------------------------


def derivative(f: Callable[[Any], Any]) -> Callable[[float], float]:
    """``f'`` for ``f: R -> R``, by forward mode.

    >>> import wengert as wg
    >>> wg.derivative(lambda x: x * x * wg.exp(x) + 3 * x)(1.0)
    11.154845485377136
    """

    def run(x: Any) -> float:
        (p,) = _point([x])
        if p.ndim != 0:
            raise ValueError(f"wg.derivative: f must take a real number, got shape {p.shape}; use wg.jacobian")
        y = _scalar(f(Dual(float(p), 1.0)), "wg.derivative")
        return y.tangent if isinstance(y, Dual) else 0.0

    return run


def _forward(f: Callable[..., Any], points: list[np.ndarray], tangents: list[np.ndarray]) -> tuple[list[Any], tuple[int, ...]]:
    call = []
    for p, t in zip(points, tangents):
        tv = t.reshape(-1).tolist()
        call.append(_lift(p, lambda v, k, tv=tv: Dual(v, tv[k]), 0))
    return _flat_out(f(*call))


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """``(value, tangent)`` of ``f`` at ``primals`` along ``tangents`` (forward mode).

    >>> import wengert as wg
    >>> wg.jvp(lambda x, y: x * y, (2.0, 3.0), (1.0, 0.0))
    (6.0, 3.0)
    """
    points = _point(tuple(primals), "primal")
    tans = _point(tuple(tangents), "tangent")
    if len(tans) != len(points):
        raise TypeError(f"wg.jvp: expected {len(points)} tangents (one per primal), got {len(tans)}")
    for i, (p, t) in enumerate(zip(points, tans)):
        if p.shape != t.shape:
            raise ValueError(f"wg.jvp: tangent {i} has shape {t.shape}, its primal {p.shape}")
    flat, shape = _forward(f, points, tans)
    vals = [_value(v) for v in flat]
    ts = [v.tangent if isinstance(v, Dual) else 0.0 for v in flat]
    if shape == ():
        return vals[0], ts[0]
    return np.array(vals).reshape(shape), np.array(ts).reshape(shape)


def jacobian(f: Callable[..., Any], wrt: Any = 0) -> Callable[..., Any]:
    """The Jacobian, shape ``output shape + argument shape`` per ``wrt`` argument: forward
    sweeps when there are fewer inputs than outputs, reverse sweeps otherwise.

    >>> import wengert as wg
    >>> wg.jacobian(lambda x: [x[0] * x[1], x[0] + x[1]])([2.0, 3.0]).tolist()
    [[3.0, 2.0], [1.0, 1.0]]
    """

    def run(*args: Any) -> Any:
        idx, single = _wrt(wrt, len(args))
        points = _point(args)
        n_in = sum(points[i].size for i in idx)
        # One probe tells the number of outputs; forward mode needs no tape for it.
        zero = [np.zeros(p.shape) for p in points]
        flat, shape = _forward(f, points, zero)
        m = len(flat)
        jac = np.zeros((m, n_in))
        if n_in <= m:
            col = 0
            for i in idx:
                for k in range(points[i].size):
                    tans = [np.zeros(p.shape) for p in points]
                    tans[i].reshape(-1)[k] = 1.0
                    out, _ = _forward(f, points, tans)
                    jac[:, col] = [v.tangent if isinstance(v, Dual) else 0.0 for v in out]
                    col += 1
        else:
            y, leaves, _ = _reverse(f, args, idx)
            outs, _ = _flat_out(y)
            for j, out in enumerate(outs):
                if isinstance(out, Var):
                    jac[j] = _core.var_gradient(out, leaves)
        parts = []
        at = 0
        for i in idx:
            size = points[i].size
            block = jac[:, at : at + size].reshape(shape + points[i].shape)
            parts.append(float(block) if block.shape == () else block)
            at += size
        return parts[0] if single else tuple(parts)

    return run


# -- second order ------------------------------------------------------------------------


def hessian(f: Callable[..., Any], wrt: Any = 0) -> Callable[..., Any]:
    """The exact Hessian, forward over reverse: ``f`` is compiled once per argument
    shape (so it must not branch on its inputs: use ``wg.where``), then each column is one
    reverse sweep on dual numbers, about ``n`` gradient evaluations for ``n`` inputs.
    Shape ``(n, n)`` for a vector argument, a float for a scalar one; a tuple ``wrt``
    gives a tuple of tuples of blocks.

    >>> import wengert as wg
    >>> wg.hessian(lambda x: x[0] ** 2 * x[1])([3.0, 2.0]).tolist()
    [[4.0, 6.0], [6.0, 0.0]]
    """
    from ._compile import Compiled

    cache: dict[tuple[tuple[int, ...], ...], Compiled] = {}

    def run(*args: Any) -> Any:
        points = _point(args)
        shapes = tuple(p.shape for p in points)
        if shapes not in cache:
            cache[shapes] = Compiled(f, list(shapes))
        out = cache[shapes].hessian(*points, wrt=wrt)
        return _floats(out)

    return run


def _floats(x: Any) -> Any:
    if isinstance(x, tuple):
        return tuple(_floats(v) for v in x)
    return float(x) if np.ndim(x) == 0 else x


def check_grad(f: Callable[..., Any], *args: Any) -> float:
    """The largest relative error of ``f``'s gradient (reverse mode, every argument)
    against central finite differences.

    The step for each element is ``h = cbrt(eps) * max(1, |x|)``: central differences
    have truncation error O(h^2) and rounding error O(eps / h), balanced at h ~ eps^(1/3),
    so about 10 correct digits are expected and an error above ~1e-6 means a wrong
    derivative. Each error is ``|g - fd| / max(|g|, |fd|, 1)``: relative for large
    derivatives, absolute for small ones, where differences cannot resolve more.

    >>> import wengert as wg
    >>> wg.check_grad(lambda x, y: wg.sin(x) * y, 0.5, 2.0) < 1e-8
    True
    """
    points = _point(args)
    idx = list(range(len(points)))
    _, g = value_and_grad(f, tuple(idx))(*args)
    worst = 0.0
    eps = np.finfo(float).eps
    for i in idx:
        gi = np.asarray(g[i], dtype=float).reshape(-1)
        for k in range(points[i].size):
            x0 = float(points[i].reshape(-1)[k])
            h = math.cbrt(eps) * max(1.0, abs(x0))

            def at(v: float) -> float:
                moved = [p.copy() for p in points]
                moved[i].reshape(-1)[k] = v
                return _value(_scalar(f(*[float(p) if p.ndim == 0 else p for p in moved]), "wg.check_grad"))

            fd = (at(x0 + h) - at(x0 - h)) / (2 * h)
            err = abs(gi[k] - fd) / max(abs(gi[k]), abs(fd), 1.0)
            worst = max(worst, err)
    return float(worst)
