"""Function transforms with JAX's conventions (``wrt`` is JAX's ``argnums``).

Arguments are floats or 1-D arrays; inside ``f`` a vector argument is a NumPy object array
of numbers (``Var`` or ``Dual``), so indexing, slicing and ``np.sum`` work. Reverse mode
uses ``Var``, forward mode ``Dual``; ``hessian`` compiles ``f`` and runs forward over
reverse on the compiled tape.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ParamSpec, TypeVar, overload

import numpy as np

from . import _core, _debug
from ._core import Dual, Var
from ._nested import NUMBERS, Traced, flat_out
from ._typing import Index, Indices

_R = TypeVar("_R")

# The transformed function takes f's arguments. Its results are Any: floats and float64
# arrays at the top level, but Var, Dual or traced numbers inside another transform.
_P = ParamSpec("_P")


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

_PLAIN = (int, float, np.integer, np.floating, np.bool_)


def _element(v: Any, where: str) -> Any:
    """``v`` if it is a real number or a derivative-carrying one, else a TypeError: no
    string is parsed, no date becomes a day count, no imaginary part is dropped."""
    if isinstance(v, NUMBERS) or isinstance(v, _PLAIN):
        return v
    raise TypeError(f"{where}: expected a real number or a 1-D array of them, got {type(v).__name__}")


def _point(args: Sequence[Any], what: str = "argument") -> list[np.ndarray]:
    """Each argument as an array of shape () or (n,): float64 when every element is a
    plain real number, else an object array holding the numbers as given (``Var``,
    ``Dual``, traced values: a transform nested in another one)."""
    out = []
    for i, a in enumerate(args):
        where = f"{what} {i}"
        if isinstance(a, np.ndarray):
            if a.dtype.kind in "biuf":
                x = np.asarray(a, dtype=np.float64)
            elif a.dtype == object:
                x = np.empty(a.shape, dtype=object)
                for k, v in enumerate(a.reshape(-1)):
                    x.reshape(-1)[k] = _element(v, f"{where}[{k}]")
            else:
                raise TypeError(f"{where}: expected a real number or a 1-D array of them, got an array of dtype {a.dtype}")
        elif isinstance(a, (list, tuple)):
            items = [_element(v, f"{where}[{k}]") if not isinstance(v, (list, tuple, np.ndarray)) else v for k, v in enumerate(a)]
            if any(isinstance(v, (list, tuple, np.ndarray)) for v in items):
                raise ValueError(f"{where}: expected a number or a 1-D array, got a nested sequence")
            x = np.empty(len(items), dtype=object)
            x[:] = items
        else:
            x = np.empty((), dtype=object)
            x[()] = _element(a, where)
        if x.ndim > 1:
            raise ValueError(f"{what} {i}: expected a number or a 1-D array, got shape {x.shape}")
        if x.dtype == object and not any(isinstance(v, NUMBERS) for v in x.reshape(-1)):
            x = x.astype(np.float64)
        out.append(x)
    return out


_state = threading.local()


@contextlib.contextmanager
def _calling() -> Iterator[None]:
    """Marks that this thread is inside a transform's call of its function."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


def _nested(*points: Sequence[np.ndarray]) -> bool:
    """Whether to take the nested path: an argument holds derivative-carrying numbers, or
    this transform runs inside another one's function. In the second case the function
    may close over the outer transform's numbers (``grad(lambda x: grad(lambda y: x * y)
    (1.0))``): the eager fast path would return a float that silently drops the outer
    derivative (or, for ``Dual``s, confuse the two perturbations), while tracing makes
    such a closure raise."""
    return getattr(_state, "depth", 0) > 0 or any(p.dtype == object for ps in points for p in ps)


def _elements(points: Sequence[np.ndarray]) -> list[Any]:
    return [v for p in points for v in p.reshape(-1).tolist()]


def _wrt(wrt: Any, n: int) -> tuple[list[int], bool]:
    single = not isinstance(wrt, (tuple, list))
    items = [wrt] if single else list(wrt)
    for w in items:
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or not -n <= w < n:
            raise ValueError(f"wrt must be an argument index in 0..{n - 1} or a tuple of them, got {wrt!r}")
    if not items:
        raise ValueError("wrt must name at least one argument")
    idx = [int(w) % n for w in items]
    if len(set(idx)) != len(idx):
        raise ValueError(f"wrt names an argument twice: {wrt!r}")
    return idx, single


def _lift(x: np.ndarray, make: Callable[[float, int], Any], start: int) -> Any:
    """A scalar or an object array of numbers made by ``make(value, flat index)``."""
    if x.ndim == 0:
        return make(float(x), start)
    arr = np.empty(x.shape, dtype=object)
    for k, v in enumerate(x.tolist()):
        arr[k] = make(v, start + k)
    return arr


def _plain(p: np.ndarray) -> Any:
    return float(p) if p.ndim == 0 else p


def _flat_out(y: Any, what: str = "the function") -> tuple[list[Any], tuple[int, ...]]:
    flat, shape = flat_out(y)
    for i, v in enumerate(flat):
        if isinstance(v, bool) or not (isinstance(v, NUMBERS) or isinstance(v, _PLAIN)) or isinstance(v, np.bool_):
            raise TypeError(
                f"{what}: output {i} of the function is a {type(v).__name__}, expected a number "
                "(or a sequence of numbers)"
            )
    return flat, shape


def _scalar(y: Any, what: str) -> Any:
    if isinstance(y, (list, tuple, np.ndarray)):
        raise ValueError(
            f"{what} needs a function with a scalar output, but it returned shape "
            f"{np.shape(y)}: reduce it to a scalar (e.g. with sum), or use wg.jacobian or wg.vjp"
        )
    _flat_out(y, what)
    return y


def _value(y: Any) -> float:
    return y.value if isinstance(y, (Var, Dual)) else float(y)


def _split(flat: np.ndarray, points: list[np.ndarray], idx: list[int], lead: tuple[int, ...] = ()) -> list[Any]:
    """Cuts the last axis of ``flat`` into one block per argument in ``idx``."""
    out, at = [], 0
    for i in idx:
        size = points[i].size
        block = flat[..., at : at + size].reshape(lead + points[i].shape)
        out.append((float(block) if block.dtype != object else block[()]) if block.shape == () else block)
        at += size
    return out


def _wraps(f: Callable[..., Any], run: Callable[..., Any]) -> Callable[..., Any]:
    """``run`` with ``f``'s name and signature, so ``wg.compile(wg.grad(f))`` can tell its
    arity, as ``functools.wraps`` gives JAX's transforms."""
    try:
        return functools.wraps(f)(run)
    except (AttributeError, TypeError):
        return run


def _offsets(points: Sequence[np.ndarray]) -> list[int]:
    at, out = 0, []
    for p in points:
        out.append(at)
        at += p.size
    return out


# -- wg.debug_nans -----------------------------------------------------------------------


def _all_finite(x: Any) -> bool:
    if isinstance(x, (tuple, list)):
        return all(_all_finite(v) for v in x)
    return bool(np.isfinite(np.asarray(x, dtype=float)).all())


def _checked(f: Callable[..., Any], points: list[np.ndarray], what: str, fast: Callable[[], _R], compiled: Callable[[Any], Any]) -> _R:
    """``fast()``, under ``wg.debug_nans`` with eager checks suspended: the eager run
    cannot tell a NaN on the unchosen side of ``wg.where`` from a real one. When a result
    is not finite, ``f`` is compiled and ``compiled(F)`` re-runs the point there, where the
    select is visible and every op knows its source line, and raises for the culprit."""
    if not _debug.on():
        return fast()
    with _debug.suspended():
        out = fast()
    if _all_finite(out):
        return out
    from ._compile import Compiled

    try:
        F = Compiled(f, [p.shape for p in points])
    except (TypeError, ValueError):
        # f cannot be traced (it branches on its values): re-run eagerly, checking each op.
        fast()
    else:
        F._debug_what = f"{what}({getattr(f, '__name__', 'f')})"
        compiled(F)
    raise _debug.NonFiniteError(
        f"wg.debug_nans: {what}: a result is not finite, but no op of the function made it so "
        "when re-run one op at a time",
        kind="value",
    )


# -- reverse mode ------------------------------------------------------------------------


def _reverse(f: Callable[..., Any], points: list[np.ndarray], idx: list[int]) -> tuple[Any, list[Var]]:
    leaves: list[Var] = []

    def leaf(v: float, _: int) -> Var:
        x = Var(v)
        leaves.append(x)
        return x

    call = [(_lift(p, leaf, 0) if i in idx else _plain(p)) for i, p in enumerate(points)]
    with _calling():
        return f(*call), leaves


def _gradient(y: Any, leaves: list[Var]) -> np.ndarray:
    return np.array(_core.var_gradient(y, leaves) if isinstance(y, Var) else [0.0] * len(leaves))


def _nested_value_and_grad(f: Callable[..., Any], points: list[np.ndarray], idx: list[int], what: str) -> tuple[Any, list[Any]]:
    t = Traced(f, [p.shape for p in points], what, points)
    if t.shape != ():
        _scalar(np.empty(t.shape), what)
    out = t.derive("vjp", [1.0], _elements(points))
    grads = np.empty(len(out) - 1, dtype=object)
    grads[:] = out[1:]
    at = _offsets(points)
    parts = []
    for i in idx:
        block = grads[at[i] : at[i] + points[i].size]
        parts.append(block[0] if points[i].ndim == 0 else block.reshape(points[i].shape))
    return out[0], parts


@overload
def value_and_grad(f: Callable[_P, Any], wrt: Index = 0) -> Callable[_P, tuple[Any, Any]]: ...
@overload
def value_and_grad(f: Callable[_P, Any], wrt: Indices) -> Callable[_P, tuple[Any, tuple[Any, ...]]]: ...


def value_and_grad(f: Callable[..., Any], wrt: Any = 0) -> Callable[..., tuple[Any, Any]]:
    """``f``'s value and its gradient with respect to argument(s) ``wrt`` (reverse mode).

    Arguments may themselves be ``Var``, ``Dual`` or traced numbers (a transform inside
    another): the results are then numbers of that kind, so transforms nest to any order.

    >>> import wengert as wg
    >>> wg.value_and_grad(lambda x, y: x * wg.sin(y), wrt=(0, 1))(2.0, 0.0)
    (0.0, (0.0, 2.0))
    """

    def run(*args: Any) -> tuple[Any, Any]:
        idx, single = _wrt(wrt, len(args))
        points = _point(args)
        if _nested(points):
            value, parts = _nested_value_and_grad(f, points, idx, "wg.grad")
            return value, parts[0] if single else tuple(parts)

        def fast() -> tuple[Any, Any]:
            y, leaves = _reverse(f, points, idx)
            y = _scalar(y, "wg.grad")
            parts = _split(_gradient(y, leaves), points, idx)
            return _value(y), parts[0] if single else tuple(parts)

        return _checked(f, points, "wg.grad", fast, lambda F: F.value_and_grad(*[_plain(p) for p in points], wrt=tuple(idx)))

    return _wraps(f, run)


@overload
def grad(f: Var, wrt: Var) -> float: ...
@overload
def grad(f: Var, wrt: Sequence[Var]) -> list[float]: ...
@overload
def grad(f: Callable[_P, Any], wrt: Index = 0) -> Callable[_P, Any]: ...
@overload
def grad(f: Callable[_P, Any], wrt: Indices) -> Callable[_P, tuple[Any, ...]]: ...


def grad(f: Any, wrt: Any = 0) -> Any:
    """The gradient.

    ``grad(f, wrt=0)`` with ``f`` a function: a function giving the gradient of ``f`` with
    respect to argument(s) ``wrt`` (a float or array, or a tuple of them). It nests:
    ``grad(grad(f))`` is the second derivative.
    ``grad(y, wrt)`` with ``y`` a Var: dy/dwrt for one Var (a float) or a sequence of Vars
    (a list of floats), without touching ``.grad``.

    >>> import wengert as wg
    >>> x = wg.Var(2.0)
    >>> wg.grad(x * x, x)
    4.0
    >>> wg.grad(lambda x: x ** 3)(2.0)
    12.0
    >>> wg.grad(wg.grad(lambda x: x ** 3))(2.0)
    12.0
    """
    if isinstance(f, Var):
        return _var_grad(f, wrt)
    if callable(f):
        vg: Callable[..., tuple[Any, Any]] = value_and_grad(f, wrt)
        return _wraps(f, lambda *args: vg(*args)[1])
    raise TypeError(
        f"wg.grad(y, wrt): y must be a Var (an eager output), or wg.grad(f, wrt) a function; "
        f"got {type(f).__name__}"
    )


def _cotangent(cotangent: Any, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(cotangent, (list, tuple, np.ndarray)):
        ct = np.asarray(cotangent, dtype=object)
    else:
        ct = np.empty((), dtype=object)
        ct[()] = cotangent
    if ct.shape != shape:
        raise ValueError(f"wg.vjp: cotangent must have the output's shape {shape}, got {ct.shape}")
    flat = ct.reshape(-1)
    for k, v in enumerate(flat):
        _element(v, "wg.vjp: cotangent" + (f"[{k}]" if shape else ""))
    return flat


def vjp(f: Callable[..., Any], primals: Sequence[Any], cotangent: Any) -> tuple[Any, tuple[Any, ...]]:
    """``(value, grads)``: ``grads[i]`` is the gradient of ``<cotangent, f(*primals)>``
    with respect to primal ``i`` (reverse mode).

    >>> import wengert as wg
    >>> wg.vjp(lambda x: [x * x, 3 * x], (2.0,), [1.0, 1.0])
    ([4.0, 6.0], (7.0,))
    """
    primals = tuple(primals)
    points = _point(primals, "primal")
    idx = list(range(len(points)))
    if _nested(points) or isinstance(cotangent, NUMBERS) or (
        isinstance(cotangent, (list, tuple, np.ndarray)) and any(isinstance(v, NUMBERS) for v in np.asarray(cotangent, dtype=object).reshape(-1))
    ):
        t = Traced(f, [p.shape for p in points], "wg.vjp", points)
        ct = _cotangent(cotangent, t.shape)
        seeds = [None if isinstance(c, NUMBERS) else float(c) for c in ct]
        extra = [c for c in ct if isinstance(c, NUMBERS)]
        out = t.derive("vjp", seeds, _elements(points) + extra)
        m = len(t.outputs)
        vals = np.empty(m, dtype=object)
        vals[:] = out[:m]
        grads = np.empty(len(out) - m, dtype=object)
        grads[:] = out[m:]
        at = _offsets(points)
        parts = tuple(
            grads[at[i]] if p.ndim == 0 else grads[at[i] : at[i] + p.size].reshape(p.shape)
            for i, p in enumerate(points)
        )
        return (vals[0] if t.shape == () else vals.reshape(t.shape).tolist()), parts

    def fast() -> tuple[Any, tuple[Any, ...]]:
        y, leaves = _reverse(f, points, idx)
        flat, shape = _flat_out(y, "wg.vjp")
        ct = _cotangent(cotangent, shape)
        total: Any = 0.0
        for c, out in zip(ct.tolist(), flat):
            total = total + float(c) * out
        g = _gradient(total, leaves)
        values = [_value(v) for v in flat]
        value: Any = values[0] if shape == () else np.array(values).reshape(shape).tolist()
        return value, tuple(_split(g, points, idx))

    return _checked(f, points, "wg.vjp", fast, lambda F: F.vjp([_plain(p) for p in points], np.asarray(cotangent, dtype=float)))


# -- forward mode ------------------------------------------------------------------------


def _nested_jvp(f: Callable[..., Any], points: list[np.ndarray], tangents: list[np.ndarray], what: str) -> tuple[list[Any], list[Any], tuple[int, ...]]:
    t = Traced(f, [p.shape for p in points], what, points)
    flat_t = _elements(tangents)
    seeds = [None if isinstance(v, NUMBERS) else float(v) for v in flat_t]
    extra = [v for v in flat_t if isinstance(v, NUMBERS)]
    out = t.derive("jvp", seeds, _elements(points) + extra)
    m = len(t.outputs)
    return out[:m], out[m:], t.shape


def derivative(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``f'`` for ``f: R -> R``, by forward mode. It nests: ``derivative(derivative(f))``
    is the second derivative.

    >>> import wengert as wg
    >>> wg.derivative(lambda x: x * x * wg.exp(x) + 3 * x)(1.0)
    11.154845485377136
    >>> wg.derivative(wg.derivative(lambda x: x ** 3))(2.0)
    12.0
    """

    def run(x: Any) -> Any:
        (p,) = _point([x])
        if p.ndim != 0:
            raise ValueError(f"wg.derivative: f must take a real number, got shape {p.shape}; use wg.jacobian")
        if _nested([p]):
            _, tans, shape = _nested_jvp(f, [p], [np.array(1.0)], "wg.derivative")
            if shape != ():
                _scalar(np.empty(shape), "wg.derivative")
            return tans[0]

        def fast() -> Any:
            tag = next(_tags)
            with _calling():
                y = _scalar(f(Dual._seeded(float(p), 1.0, tag)), "wg.derivative")
            return _tangent(y, tag)

        return _checked(f, [p], "wg.derivative", fast, lambda F: F.jvp([float(p)], [1.0]))

    return _wraps(f, run)


#: Each forward-mode call seeds its Duals with a tag of its own, so a Dual from outside
#: (a closure) cannot silently mix its tangent into this call's (see Dual's `join`).
_tags = itertools.count(1)


def _forward(f: Callable[..., Any], points: list[np.ndarray], tangents: list[np.ndarray], what: str = "wg.jvp") -> tuple[list[float], list[float], tuple[int, ...]]:
    """Values and tangents of ``f``'s outputs, by one forward pass."""
    tag = next(_tags)
    call = []
    for p, t in zip(points, tangents):
        tv = t.reshape(-1).tolist()

        def seed(v: float, k: int, tv: list[float] = tv) -> Dual:
            return Dual._seeded(v, tv[k], tag)

        call.append(_lift(p, seed, 0))
    with _calling():
        flat, shape = _flat_out(f(*call), what)
    return [_value(v) for v in flat], [_tangent(v, tag) for v in flat], shape


def _tangent(v: Any, tag: int) -> float:
    if isinstance(v, Dual):
        if v._tag == tag:
            return v.tangent
        if v.tangent == 0.0:
            return 0.0
        raise TypeError(
            "the function returned a Dual made outside the transform, whose tangent is "
            "another perturbation's; pass that number to the function as an argument"
        )
    if isinstance(v, NUMBERS):
        raise TypeError(
            f"the function returned a {type(v).__name__} made outside it; pass that number "
            "to the function as an argument so its derivative is followed"
        )
    return 0.0


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
    if _nested(points, tans):
        vals_n, ts_n, shape = _nested_jvp(f, points, tans, "wg.jvp")
        if shape == ():
            return vals_n[0], ts_n[0]
        va, ta = np.empty(len(vals_n), dtype=object), np.empty(len(ts_n), dtype=object)
        va[:], ta[:] = vals_n, ts_n
        return va.reshape(shape), ta.reshape(shape)

    def fast() -> tuple[Any, Any]:
        vals, ts, shape = _forward(f, points, tans)
        if shape == ():
            return vals[0], ts[0]
        return np.array(vals).reshape(shape), np.array(ts).reshape(shape)

    return _checked(f, points, "wg.jvp", fast, lambda F: F.jvp([_plain(p) for p in points], [_plain(t) for t in tans]))


def _nested_jacobian(f: Callable[..., Any], points: list[np.ndarray], idx: list[int]) -> tuple[np.ndarray, tuple[int, ...]]:
    t = Traced(f, [p.shape for p in points], "wg.jacobian", points)
    m = len(t.outputs)
    at = _offsets(points)
    cols = [at[i] + k for i in idx for k in range(points[i].size)]
    n_all = sum(p.size for p in points)
    inputs = _elements(points)
    jac = np.empty((m, len(cols)), dtype=object)
    if len(cols) <= m:
        for c, col in enumerate(cols):
            seeds = [1.0 if k == col else 0.0 for k in range(n_all)]
            jac[:, c] = t.derive("jvp", seeds, inputs)[m:]
    else:
        for j in range(m):
            seeds = [1.0 if k == j else 0.0 for k in range(m)]
            row = t.derive("vjp", seeds, inputs)[m:]
            jac[j, :] = [row[col] for col in cols]
    return jac, t.shape


@overload
def jacobian(f: Callable[_P, Any], wrt: Index = 0) -> Callable[_P, Any]: ...
@overload
def jacobian(f: Callable[_P, Any], wrt: Indices) -> Callable[_P, tuple[Any, ...]]: ...


def jacobian(f: Callable[..., Any], wrt: Any = 0) -> Callable[..., Any]:
    """The Jacobian, shape ``output shape + argument shape`` per ``wrt`` argument: forward
    sweeps when there are fewer inputs than outputs, reverse sweeps otherwise. It nests:
    ``jacobian(grad(f))`` is the Hessian.

    >>> import wengert as wg
    >>> wg.jacobian(lambda x: [x[0] * x[1], x[0] + x[1]])([2.0, 3.0]).tolist()
    [[3.0, 2.0], [1.0, 1.0]]
    """

    def run(*args: Any) -> Any:
        idx, single = _wrt(wrt, len(args))
        points = _point(args)
        if _nested(points):
            jac, shape = _nested_jacobian(f, points, idx)
        else:
            jac, shape = _checked(f, points, "wg.jacobian", lambda: _eager_jacobian(f, points, idx), lambda F: F.jacobian(*[_plain(p) for p in points], wrt=tuple(idx)))
        parts = []
        at = 0
        for i in idx:
            size = points[i].size
            block = jac[:, at : at + size].reshape(shape + points[i].shape)
            parts.append((float(block) if block.dtype != object else block[()]) if block.shape == () else block)
            at += size
        return parts[0] if single else tuple(parts)

    return _wraps(f, run)


def _eager_jacobian(f: Callable[..., Any], points: list[np.ndarray], idx: list[int]) -> tuple[np.ndarray, tuple[int, ...]]:
    """The Jacobian on floats: forward sweeps when there are fewer inputs than outputs,
    reverse sweeps otherwise."""
    n_in = sum(points[i].size for i in idx)
    # One probe tells the number of outputs; forward mode needs no tape for it.
    zero = [np.zeros(p.shape) for p in points]
    flat, _, shape = _forward(f, points, zero, "wg.jacobian")
    m = len(flat)
    jac = np.zeros((m, n_in))
    if n_in <= m:
        col = 0
        for i in idx:
            for k in range(points[i].size):
                tans = [np.zeros(p.shape) for p in points]
                tans[i].reshape(-1)[k] = 1.0
                jac[:, col] = _forward(f, points, tans, "wg.jacobian")[1]
                col += 1
    else:
        y, leaves = _reverse(f, points, idx)
        outs, _ = _flat_out(y, "wg.jacobian")
        for j, out in enumerate(outs):
            jac[j] = _gradient(out, leaves)
    return jac, shape


# -- second order ------------------------------------------------------------------------


@overload
def hessian(f: Callable[_P, Any], wrt: Index = 0) -> Callable[_P, Any]: ...
@overload
def hessian(f: Callable[_P, Any], wrt: Indices) -> Callable[_P, tuple[tuple[Any, ...], ...]]: ...


def hessian(f: Callable[..., Any], wrt: Any = 0) -> Callable[..., Any]:
    """The exact Hessian, forward over reverse: ``f`` is compiled at each call (a branch
    on its inputs is followed at the point given), then each column is one reverse
    sweep on dual numbers, about ``n`` gradient evaluations for ``n`` inputs. Not cached:
    a compile kept across calls would freeze the globals and branches ``f`` saw first
    (for many points at once, compile once yourself: ``wg.compile(f).hessian(X)``).
    Shape ``(n, n)`` for a vector argument, a float for a scalar one; a tuple ``wrt``
    gives a tuple of tuples of blocks. Inside another transform (arguments that are
    ``Var``, ``Dual`` or traced numbers) it is ``jacobian(grad(f))``, so it nests too.

    >>> import wengert as wg
    >>> wg.hessian(lambda x: x[0] ** 2 * x[1])([3.0, 2.0]).tolist()
    [[4.0, 6.0], [6.0, 0.0]]
    """
    from ._compile import Compiled

    def run(*args: Any) -> Any:
        points = _point(args)
        if _nested(points):
            idx, single = _wrt(wrt, len(points))
            blocks = tuple(tuple(jacobian(grad(f, wrt=i), wrt=j)(*args) for j in idx) for i in idx)
            return blocks[0][0] if single else blocks
        out = Compiled(f, [p.shape for p in points]).hessian(*points, wrt=wrt)
        return _floats(out)

    return _wraps(f, run)


def _floats(x: Any) -> Any:
    if isinstance(x, tuple):
        return tuple(_floats(v) for v in x)
    return float(x) if np.ndim(x) == 0 else x


def check_grad(f: Callable[..., Any], *args: Any) -> float:
    """The largest relative error of ``f``'s gradient (reverse mode, every argument)
    against central finite differences; ``inf`` when the gradient, a difference or the
    function's value is not finite, so NaN never passes. ``f`` may be a compiled function.

    The step for each element is ``h = cbrt(eps) * max(1, |x|)``: central differences
    have truncation error O(h^2) and rounding error O(eps / h), balanced at h ~ eps^(1/3),
    so about 10 correct digits are expected and an error above ~1e-6 means a wrong
    derivative. Each error is ``|g - fd| / max(|g|, |fd|, 1)``: relative for large
    derivatives, absolute for small ones, where differences cannot resolve more.
    ``wg.check_grad.worst`` names the component with the largest error after each call.

    >>> import wengert as wg
    >>> wg.check_grad(lambda x, y: wg.sin(x) * y, 0.5, 2.0) < 1e-8
    True
    """
    from ._compile import Compiled

    points = _point(args)
    if _nested(points):
        raise TypeError("wg.check_grad: arguments must be real numbers or arrays of them, not Var, Dual or traced values")
    idx = list(range(len(points)))
    if isinstance(f, Compiled):
        g = f.grad(*[_plain(p) for p in points], wrt=tuple(idx))

        def value(*xs: Any) -> float:
            return float(f(*xs))
    else:
        _, g = value_and_grad(f, tuple(idx))(*args)

        def value(*xs: Any) -> float:
            return _value(_scalar(f(*xs), "wg.check_grad"))

    worst, where = 0.0, None
    eps = np.finfo(float).eps
    for i in idx:
        gi = np.asarray(g[i], dtype=float).reshape(-1)
        for k in range(points[i].size):
            x0 = float(points[i].reshape(-1)[k])
            h = math.cbrt(eps) * max(1.0, abs(x0))

            def at(v: float) -> float:
                moved = [p.copy() for p in points]
                moved[i].reshape(-1)[k] = v  # noqa: B023 (called in this iteration)
                return value(*[_plain(p) for p in moved])

            fd = (at(x0 + h) - at(x0 - h)) / (2 * h)
            if math.isfinite(gi[k]) and math.isfinite(fd):
                err = abs(gi[k] - fd) / max(abs(gi[k]), abs(fd), 1.0)
            else:
                err = math.inf
            if where is None or err > worst:
                worst, where = err, (i, k, float(gi[k]), fd)
    check_grad.worst = where  # type: ignore[attr-defined]
    return float(worst)
