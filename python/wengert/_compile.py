"""``wg.compile``: trace a scalar function once, evaluate it over batches of rows.

The function is called once with traced numbers (a vector argument gets a NumPy object
array of them); every operation is recorded into a graph that the Rust engine optimises
into an instruction list and then replays over blocks of rows as SIMD lanes on all cores.
This module only checks, broadcasts and reshapes arrays; the numbers are computed in Rust.
"""

from __future__ import annotations

import functools
import inspect
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from . import _core, _debug
from ._nested import arguments
from ._pickling import function_from_state, function_state, missing
from ._typing import Index, Indices, Reduce, ShapeLike, Values

Shape = tuple[int, ...]


def _as_shape(s: Any, i: int) -> Shape:
    if s is None or s == ():
        return ()
    if isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)):
        s = (int(s),)
    try:
        if isinstance(s, (str, bytes)) or any(isinstance(d, (bool, np.bool_)) for d in s):
            raise TypeError
        shape = tuple(operator.index(d) for d in s)
    except TypeError:
        raise TypeError(
            f"shapes[{i}]: expected () for a scalar, an int n or a tuple of ints for an array, got {s!r}"
        ) from None
    if any(d < 1 for d in shape):
        raise ValueError(f"shapes[{i}]: every dimension must be at least 1, got {shape}")
    return shape


def _check_sizes(shapes: Sequence[Shape]) -> list[int]:
    """The number of elements of each shape, refused (before anything is allocated) when
    they add up to more than a trace can hold."""
    sizes = [math.prod(s) for s in shapes]
    cap = _core._Trace.MAX_NODES
    if sum(sizes) > cap:
        raise ValueError(
            f"shapes {list(shapes)}: {sum(sizes)} elements in all, more than the {cap} a "
            "compiled function can hold"
        )
    return sizes


def _param_names(f: Callable[..., Any], n: int | None) -> list[str]:
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [
        p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if n is None:
        if any(p.kind == p.VAR_POSITIONAL for p in params) or not names:
            raise TypeError(
                f"wg.compile({getattr(f, '__name__', f)!r}): cannot tell how many arguments it "
                "takes; pass shapes=[...] with one shape per argument"
            )
        return names
    return (names + [f"arg{i}" for i in range(len(names), n)])[:n]


def _check_reduce(reduce: str | None) -> str:
    if reduce is None:
        return "none"
    if reduce in ("sum", "mean"):
        return reduce
    raise ValueError(f"reduce must be None, 'sum' or 'mean', got {reduce!r}")


def _broadcasts_to(shape: Shape, batch: Shape) -> bool:
    try:
        return np.broadcast_shapes(shape, batch) == batch
    except ValueError:
        return False


def _sum_to(x: np.ndarray, shape: Shape) -> np.ndarray:
    """Sums ``x`` over the dimensions along which ``shape`` was broadcast to ``x.shape``:
    the gradient of a reduced value with respect to a broadcast argument."""
    lead = x.ndim - len(shape)
    if lead:
        x = x.sum(axis=tuple(range(lead)))
    axes = tuple(k for k, d in enumerate(shape) if d == 1 and x.shape[k] != 1)
    return x.sum(axis=axes, keepdims=True) if axes else x



def normalize_wrt(wrt: Any, n: int) -> tuple[list[int], bool]:
    """``wrt`` as JAX's argnums for a function of ``n`` arguments: an index or a tuple
    (or list) of distinct indices, negative ones counting from the end. Returns the
    indices in ``0..n-1`` and whether a single index was given. Shared by every
    compiled method that takes ``wrt`` (grad, value_and_grad, jacobian, hessian, hvp)."""
    single = not isinstance(wrt, (tuple, list))
    items = [wrt] if single else list(wrt)
    expected = f"wrt must be an argument index in {-n}..{n - 1} (JAX's argnums) or a tuple of distinct ones"
    for w in items:
        if isinstance(w, (bool, np.bool_)) or not isinstance(w, (int, np.integer)) or not -n <= w < n:
            raise ValueError(f"{expected}, got {wrt!r}")
    if not items:
        raise ValueError(f"wrt must name at least one argument, got {wrt!r}")
    idx = [int(w) % n for w in items]
    if len(set(idx)) != len(idx):
        raise ValueError(f"{expected}: {wrt!r} names an argument twice")
    return idx, single


# Buffers NumPy would read as numbers but that are not: raw bytes and text.
_NOT_NUMBERS = (str, bytes, bytearray)


def _real_array(x: Any, label: str) -> np.ndarray:
    """``x`` as an array of real numbers (bool, int or float dtype), or a TypeError
    naming ``label``: None, text, bytes, dates, complex and object arrays are not read
    as numbers (NumPy would give nan, parse the text, or count days)."""
    got = type(x).__name__
    if x is None or isinstance(x, _NOT_NUMBERS) or (
        isinstance(x, memoryview) and x.format in ("B", "b", "c")
    ):
        raise TypeError(f"{label}: expected real numbers (a float, an int or an array of them), got {got}")
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{label}: cannot be read as an array ({e})") from None
    if a.dtype.kind not in "biuf":
        what = {"c": "complex", "m": "timedelta", "M": "datetime", "O": "object", "U": "text",
                "S": "bytes", "V": "structured"}.get(a.dtype.kind, "non-numeric")
        hint = ""
        if a.dtype == object and any(isinstance(v, _NUMBERS) for v in a.reshape(-1)):
            hint = (
                "; to differentiate a compiled function inside another transform, "
                "use the transform on it (wg.grad(F), wg.jacobian(F))"
            )
        raise TypeError(
            f"{label}: expected real numbers, got {got} holding {what} values (dtype {a.dtype}){hint}"
        )
    return a


_NUMBERS = (_core.Var, _core.Dual, _core._Traced)


def _carries_derivatives(args: Sequence[Any]) -> bool:
    for a in args:
        if isinstance(a, _NUMBERS):
            return True
        if isinstance(a, (list, tuple)) or (isinstance(a, np.ndarray) and a.dtype == object):
            try:
                flat = np.asarray(a, dtype=object).reshape(-1)
            except ValueError:
                continue
            if any(isinstance(v, _NUMBERS) for v in flat):
                return True
    return False


def _engine_array(a: np.ndarray) -> np.ndarray:
    """``a`` as the engine reads it: float64, native byte order, aligned and C-contiguous.
    Read in place when it already is; otherwise copied once (unaligned buffers, as Dask
    and ``np.frombuffer(..., offset=1)`` give, byte-swapped and strided arrays)."""
    return np.require(a, dtype=np.float64, requirements=("C", "A"))


class Compiled:
    """A function compiled by :func:`compile`: call it, or ask for derivatives.

    >>> import numpy as np, wengert as wg
    >>> F = wg.compile(lambda x, y: x * wg.sin(y))
    >>> F(np.array([1.0, 2.0]), 0.0).tolist()
    [0.0, 0.0]
    >>> v, (gx, gy) = F.value_and_grad(2.0, 0.0, wrt=(0, 1))
    >>> float(gx), float(gy)
    (0.0, 2.0)

    A pickle carries the compiled program, and the Python function only when the loading
    process can import it (see :mod:`wengert._pickling`): without it, values and
    derivatives still evaluate, but a new trace or a call on Var, Dual or traced numbers
    raises a TypeError saying why the function is missing.
    """

    def __init__(self, f: Callable[..., Any], shapes: Sequence[Any] | None = None) -> None:
        if not callable(f):
            raise TypeError(f"wg.compile(f): f must be callable, got {type(f).__name__}")
        if shapes is not None and (isinstance(shapes, (str, bytes)) or not hasattr(shapes, "__len__")):
            raise TypeError("wg.compile(f, shapes): shapes must be a list with one shape per argument")
        self._names = _param_names(f, None if shapes is None else len(shapes))
        self._shapes: list[Shape] = (
            [()] * len(self._names) if shapes is None else [_as_shape(s, i) for i, s in enumerate(shapes)]
        )
        self._fn: Callable[..., Any] | None = f
        self._fn_note: str | None = None  # why _fn is None (set when unpickled without it)
        self._debug_what: str | None = None  # what wg.debug_nans calls this function (set by transforms)
        functools.update_wrapper(self, f)
        self._sizes = _check_sizes(self._shapes)
        self._trace()

    def _trace(self) -> None:
        # Each recorded op keeps the source line that recorded it (at trace time only),
        # so wg.debug_nans can name it later; the sites travel with pickles.
        trace = _core._Trace(self._sizes, sites=True)
        out = self._python_function("a new trace")(*arguments(trace.inputs(), self._shapes))
        if isinstance(out, (list, tuple, np.ndarray)):
            out_arr = np.asarray(out, dtype=object)
            self._out_shape: Shape = out_arr.shape
            outputs = list(out_arr.reshape(-1))
        else:
            self._out_shape = ()
            outputs = [out]
        self._c = trace.compile(outputs)
        self._sites: list[str | None] = [_debug.site_name(i) for i in trace._instruction_sites(outputs)]
        self._program: _debug.Program | None = None

    def _debug_program(self) -> _debug.Program:
        """The value program as ``wg.debug_nans`` re-runs it, built on first need."""
        if self._program is None:
            self._program = _debug.Program(self._c, self._sites)
        return self._program

    # -- argument handling -------------------------------------------------------------

    def _arg_array(self, i: int, x: Any, what: str = "argument") -> np.ndarray:
        name = self._names[i]
        a = _real_array(x, f"{what} {name!r}")
        shape = self._shapes[i]
        k = len(shape)
        if a.ndim < k or a.shape[a.ndim - k :] != shape:
            raise ValueError(
                f"{what} {name!r}: expected trailing shape {shape} (a batch of them, or one), "
                f"got an array of shape {a.shape}"
            )
        return a

    def _arrays(self, args: Sequence[Any]) -> tuple[list[np.ndarray], Shape]:
        if len(args) != len(self._shapes):
            raise TypeError(
                f"{self.__name__}() takes {len(self._shapes)} arguments "
                f"({', '.join(self._names)}), got {len(args)}"
            )
        arrays = [self._arg_array(i, x) for i, x in enumerate(args)]
        batches = [a.shape[: a.ndim - len(s)] for a, s in zip(arrays, self._shapes)]
        try:
            batch = np.broadcast_shapes(*batches)
        except ValueError:
            desc = ", ".join(f"{n!r}: {b}" for n, b in zip(self._names, batches))
            raise ValueError(f"the arguments' batch shapes do not broadcast together ({desc})") from None
        return arrays, batch

    @staticmethod
    def _flat(a: np.ndarray, batch: Shape, shape: Shape) -> tuple[np.ndarray, bool]:
        """The data as the engine reads it: one shared row, or one row per batch row."""
        own = a.shape[: a.ndim - len(shape)]
        if math.prod(own) == 1:
            return _engine_array(a).reshape(-1), False
        if own != batch:
            a = np.broadcast_to(a, batch + shape)
        return _engine_array(a).reshape(-1), True

    def _prepare(self, args: Sequence[Any]) -> tuple[list[np.ndarray], list[bool], int, Shape, list[np.ndarray]]:
        arrays, batch = self._arrays(args)
        data, per_row = [], []
        for a, s in zip(arrays, self._shapes):
            d, p = self._flat(a, batch, s)
            data.append(d)
            per_row.append(p)
        return data, per_row, math.prod(batch), batch, arrays

    def _wrt(self, wrt: Any) -> tuple[list[int], bool]:
        return normalize_wrt(wrt, len(self._shapes))

    def _values_shape(self, batch: Shape, reduced: bool) -> Shape:
        return self._out_shape if reduced else batch + self._out_shape

    @staticmethod
    def _out(a: np.ndarray, shape: Shape) -> Any:
        a = a.reshape(shape)
        return a[()] if shape == () else a

    def _grad_out(
        self, g: np.ndarray | None, i: int, arrays: list[np.ndarray], batch: Shape, reduced: bool, per_row: bool
    ) -> Any:
        # The engine returns None only for arguments its wrt flags left out.
        assert g is not None, "a gradient the wrt flags asked for"
        shape = self._shapes[i]
        if not reduced:
            return self._out(g, batch + shape)
        own = arrays[i].shape
        if not per_row:  # already summed over the rows by the engine
            return self._out(g, own)
        return self._out(_sum_to(g.reshape(batch + shape), own), own)

    # -- public API ----------------------------------------------------------------------

    @overload
    def __call__(self, *args: npt.ArrayLike, reduce: Reduce = None) -> Values: ...
    @overload
    def __call__(self, *args: Any, reduce: None = None) -> Any: ...  # Var, Dual, traced

    def __call__(self, *args: Any, reduce: str | None = None) -> Any:
        """Values over the broadcast batch of the arguments (reduced if asked).

        Called with numbers that carry derivatives (``Var``, ``Dual``, traced values: a
        compiled function inside ``wg.grad`` or another ``wg.compile``), it runs the Python
        function on them, one point, so the derivative is followed."""
        if _carries_derivatives(args):
            return self._call_on_numbers(args, reduce)
        r = _check_reduce(reduce)
        data, per_row, n, batch, _ = self._prepare(args)
        v = self._c.values(data, per_row, n, r)
        if _debug.on():
            _debug.check_values(self, f"{self.__name__}(...)", data, per_row, n, batch, v, r)
        return self._out(v, self._values_shape(batch, r != "none"))

    def _call_on_numbers(self, args: tuple[Any, ...], reduce: str | None) -> Any:
        if reduce is not None:
            raise TypeError(f"{self.__name__}(..., reduce=...) takes arrays of real numbers, not Var, Dual or traced values")
        if len(args) != len(self._shapes):
            raise TypeError(f"{self.__name__} takes {len(self._shapes)} arguments, got {len(args)}")
        call = []
        for name, shape, a in zip(self._names, self._shapes, args):
            x: Any = np.asarray(a, dtype=object) if not isinstance(a, _NUMBERS) else a
            if np.shape(x) != shape:
                raise ValueError(
                    f"argument {name!r}: with Var, Dual or traced numbers a compiled function "
                    f"takes one point, shape {shape}, got {np.shape(x)}"
                )
            call.append(x)
        fn = self._python_function("using it inside another transform (wg.grad(F), a call on Var, Dual or traced numbers)")
        out = fn(*call)
        if isinstance(out, (list, tuple)):
            return np.asarray(out, dtype=object)
        return out

    def _python_function(self, needs: str) -> Callable[..., Any]:
        """The Python function, for what ``needs`` it (a new trace, a call on numbers that
        carry derivatives); raises when the compiled function was unpickled without it."""
        if self._fn is None:
            raise TypeError(missing(self.__name__, self._fn_note, needs))
        return self._fn

    def _scalar_output(self, what: str) -> None:
        if self._out_shape != ():
            raise ValueError(
                f"{what} needs a scalar output, but {self.__name__} returns shape "
                f"{self._out_shape}: reduce it to a scalar (e.g. with sum) or use jacobian / vjp"
            )

    @overload
    def value_and_grad(self, *args: npt.ArrayLike, wrt: Index = 0, reduce: Reduce = None) -> tuple[Values, Values]: ...
    @overload
    def value_and_grad(
        self, *args: npt.ArrayLike, wrt: Indices, reduce: Reduce = None
    ) -> tuple[Values, tuple[Values, ...]]: ...

    def value_and_grad(self, *args: Any, wrt: Any = 0, reduce: str | None = None) -> tuple[Any, Any]:
        """Values and gradients with respect to the ``wrt`` arguments (JAX's argnums).

        Per-row results have the batch shape in front; with ``reduce="sum"`` or
        ``"mean"`` the value is reduced over rows and each gradient is that of the
        reduced value, with its argument's own shape.
        """
        self._scalar_output("value_and_grad")
        r = _check_reduce(reduce)
        idx, single = self._wrt(wrt)
        data, per_row, n, batch, arrays = self._prepare(args)
        flags = [i in idx for i in range(len(self._shapes))]
        v, gs = self._c.vjp(data, per_row, n, np.ones(1), False, flags, r)
        if _debug.on():
            _debug.check_vjp(self, f"{self.__name__}.grad", data, per_row, n, batch, v, gs, np.ones(1), False, flags, r)
        reduced = r != "none"
        grads = tuple(self._grad_out(gs[i], i, arrays, batch, reduced, per_row[i]) for i in idx)
        return self._out(v, self._values_shape(batch, reduced)), (grads[0] if single else grads)

    @overload
    def grad(self, *args: npt.ArrayLike, wrt: Index = 0, reduce: Reduce = None) -> Values: ...
    @overload
    def grad(self, *args: npt.ArrayLike, wrt: Indices, reduce: Reduce = None) -> tuple[Values, ...]: ...

    def grad(self, *args: Any, wrt: Any = 0, reduce: Any = None) -> Any:
        """Gradients only; see :meth:`value_and_grad`."""
        return self.value_and_grad(*args, wrt=wrt, reduce=reduce)[1]

    @overload
    def jacobian(self, *args: npt.ArrayLike, wrt: Index = 0) -> Values: ...
    @overload
    def jacobian(self, *args: npt.ArrayLike, wrt: Indices) -> tuple[Values, ...]: ...

    def jacobian(self, *args: Any, wrt: Any = 0) -> Any:
        """Per-row Jacobians: shape batch + output shape + argument shape, per ``wrt``
        argument. Forward or reverse sweeps, whichever needs fewer."""
        idx, single = self._wrt(wrt)
        data, per_row, n, batch, _ = self._prepare(args)
        flags = [i in idx for i in range(len(self._shapes))]
        v, jac = self._c.jacobian(data, per_row, n, flags)
        if _debug.on():
            _debug.check_jacobian(self, f"{self.__name__}.jacobian", data, per_row, n, batch, v, jac, flags)
        m = math.prod(self._out_shape)
        cols = sum(self._sizes[i] for i in idx)
        jac = jac.reshape(batch + (m, cols))
        out, at = [], 0
        for i in idx:
            k = self._sizes[i]
            out.append(self._out(jac[..., at : at + k].copy(), batch + self._out_shape + self._shapes[i]))
            at += k
        return out[0] if single else tuple(out)

    @overload
    def hessian(self, *args: npt.ArrayLike, wrt: Index = 0) -> Values: ...
    @overload
    def hessian(self, *args: npt.ArrayLike, wrt: Indices) -> tuple[tuple[Values, ...], ...]: ...

    def hessian(self, *args: Any, wrt: Any = 0) -> Any:
        """Per-row Hessians of a scalar output, exact (forward over reverse): shape batch +
        argument shape + argument shape, or for a tuple ``wrt`` a tuple of tuples of
        blocks (JAX's layout)."""
        self._scalar_output("hessian")
        idx, single = self._wrt(wrt)
        data, per_row, n, batch, _ = self._prepare(args)
        # Only the block of the wrt arguments (in argument order) is computed.
        flags = [i in idx for i in range(len(self._shapes))]
        h = self._c.hessian_block(data, per_row, n, flags)  # on SIMD lanes
        if _debug.on():
            # The check names the value, gradient or Hessian entry born non-finite; the
            # dual-number path gives all three (it runs only with the check on).
            v, g, _ = self._c.hessian(data, per_row, n, flags)
            _debug.check_hessian(self, f"{self.__name__}.hessian", data, per_row, n, batch, v, g, h, flags)
        sizes = [s if f else 0 for s, f in zip(self._sizes, flags)]
        total = sum(sizes)
        h = h.reshape(batch + (total, total))
        offsets = np.cumsum([0] + sizes)

        def block(i: int, j: int) -> Any:
            return self._out(
                h[..., offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]].copy(),
                batch + self._shapes[i] + self._shapes[j],
            )

        if single:
            return block(idx[0], idx[0])
        return tuple(tuple(block(i, j) for j in idx) for i in idx)

    def hvp(self, *args: Any, v: Any, wrt: Any = 0, reduce: str | None = None) -> Any:
        """Hessian-vector products of a scalar output, per row: ``H @ v`` with ``H`` the
        Hessian with respect to the ``wrt`` argument, by forward over reverse (one
        reverse sweep and one tangent sweep per row; the Hessian is never formed).

        ``v`` has the ``wrt`` argument's shape and broadcasts like an argument: one ``v``
        for every row, or a batch of them (one per row). For a tuple ``wrt``, ``v`` is a
        tuple with one array per ``wrt`` argument, and the result a tuple whose entry
        ``i`` is ``sum_j H_ij @ v_j`` (JAX's ``hvp`` with ``argnums``). The result of
        each ``wrt`` argument has the batch shape in front of its own shape.

        With ``reduce="sum"`` or ``"mean"``: the HVP of the summed (averaged) value, with
        each argument's own shape, as ``value_and_grad``'s gradient: for parameters shared
        by every row (``theta`` of a loss over data rows) the sum over rows of their
        ``H @ v``, what Newton-CG wants; for an argument with one row per batch row,
        its rows' own products (the Hessian of a sum over rows is block diagonal).
        """
        self._scalar_output("hvp")
        r = _check_reduce(reduce)
        idx, single = self._wrt(wrt)
        if single:
            vs: tuple[Any, ...] = (v,)
        elif isinstance(v, (tuple, list)) and len(v) == len(idx):
            vs = tuple(v)
        else:
            raise ValueError(
                f"v: with wrt={wrt!r}, expected a tuple of {len(idx)} arrays (one per wrt argument), "
                f"got {type(v).__name__}"
            )
        arrays, batch = self._arrays(args)
        v_arrays = [self._arg_array(i, t, "v for") for i, t in zip(idx, vs)]
        v_batches = [a.shape[: a.ndim - len(self._shapes[i])] for a, i in zip(v_arrays, idx)]
        try:
            batch = np.broadcast_shapes(batch, *v_batches)
        except ValueError:
            desc = ", ".join(f"{self._names[i]!r}: {b}" for i, b in zip(idx, v_batches))
            raise ValueError(
                f"v: batch shapes ({desc}) do not broadcast with the arguments' batch shape {batch}"
            ) from None
        data, per_row = [], []
        for a, s in zip(arrays, self._shapes):
            d, p = self._flat(a, batch, s)
            data.append(d)
            per_row.append(p)
        vdata, vper = [], []
        for a, i in zip(v_arrays, idx):
            d, p = self._flat(a, batch, self._shapes[i])
            vdata.append(d)
            vper.append(p)
        n = math.prod(batch)
        flags = [i in idx for i in range(len(self._shapes))]
        order = [i for i in range(len(self._shapes)) if flags[i]]  # the engine's order
        # Summed in the engine when every wrt argument is shared by the rows; otherwise
        # per row, then summed to each argument's own shape as value_and_grad does.
        in_engine = r != "none" and not any(per_row[i] for i in idx)
        v_in_order = [order.index(i) for i in idx]
        hv = self._c.hvp(
            data, per_row, n, flags,
            [vdata[idx.index(i)] for i in order], [vper[idx.index(i)] for i in order],
            r if in_engine else "none",
        )
        offsets = np.cumsum([0] + [self._sizes[i] for i in order])
        out = []
        for i, at in zip(idx, v_in_order):
            part = hv.reshape(-1, offsets[-1])[:, offsets[at] : offsets[at + 1]]
            if r == "none":
                out.append(self._out(part.copy(), batch + self._shapes[i]))
            elif in_engine:
                out.append(self._out(part.copy(), arrays[i].shape))
            else:
                g = self._grad_out(part, i, arrays, batch, True, True)
                out.append(g / n if r == "mean" and n else g)
        return out[0] if single else tuple(out)

    def jvp(
        self, primals: Sequence[npt.ArrayLike], tangents: Sequence[npt.ArrayLike], reduce: Reduce = None
    ) -> tuple[Values, Values]:
        """``(values, tangents of the values)`` for one tangent per argument."""
        r = _check_reduce(reduce)
        primals, tangents = tuple(primals), tuple(tangents)
        if len(tangents) != len(primals):
            raise TypeError(f"jvp: expected {len(primals)} tangents (one per primal), got {len(tangents)}")
        data, per_row, n, batch, _ = self._prepare(primals)
        tdata, tper = [], []
        for i, t in enumerate(tangents):
            a = self._arg_array(i, t, "tangent")
            if not _broadcasts_to(a.shape[: a.ndim - len(self._shapes[i])], batch):
                raise ValueError(
                    f"tangent {self._names[i]!r}: shape {a.shape} does not broadcast to the "
                    f"batch shape {batch} of the primals"
                )
            d, p = self._flat(a, batch, self._shapes[i])
            tdata.append(d)
            tper.append(p)
        v, t = self._c.jvp(data, per_row, n, tdata, tper, r)
        if _debug.on():
            _debug.check_jvp(self, f"{self.__name__}.jvp", data, per_row, n, batch, v, t, tdata, tper, r)
        shape = self._values_shape(batch, r != "none")
        return self._out(v, shape), self._out(t, shape)

    def vjp(
        self, primals: Sequence[npt.ArrayLike], cotangent: npt.ArrayLike, reduce: Reduce = None
    ) -> tuple[Values, tuple[Values, ...]]:
        """``(values, gradients of <cotangent, values>)`` with respect to every argument."""
        r = _check_reduce(reduce)
        data, per_row, n, batch, arrays = self._prepare(tuple(primals))
        c = _real_array(cotangent, f"vjp: cotangent (of shape {batch + self._out_shape})")
        k = len(self._out_shape)
        if c.ndim < k or c.shape[c.ndim - k :] != self._out_shape:
            raise ValueError(f"vjp: cotangent must have trailing shape {self._out_shape}, got {c.shape}")
        if not _broadcasts_to(c.shape[: c.ndim - k], batch):
            raise ValueError(
                f"vjp: cotangent of shape {c.shape} does not broadcast to the values' shape "
                f"{batch + self._out_shape}"
            )
        cd, cp = self._flat(c, batch, self._out_shape)
        flags = [True] * len(self._shapes)
        v, gs = self._c.vjp(data, per_row, n, cd, cp, flags, r)
        if _debug.on():
            _debug.check_vjp(self, f"{self.__name__}.vjp", data, per_row, n, batch, v, gs, cd, cp, flags, r)
        reduced = r != "none"
        grads = tuple(self._grad_out(gs[i], i, arrays, batch, reduced, per_row[i]) for i in range(len(gs)))
        return self._out(v, self._values_shape(batch, reduced)), grads

    def explain(self, *args: Any, cotangent: Any = None) -> str:
        """The instruction list at one point (one row of arguments), as the engine runs
        it: each instruction with its operands, value, adjoint (of the outputs weighted by
        ``cotangent``, default all ones), partials and the source line that recorded it;
        non-finite entries are marked. What ``wg.debug_nans`` re-runs to find a culprit.

        >>> import wengert as wg
        >>> F = wg.compile(lambda x, y: wg.log(x) * y)
        >>> print(F.explain(2.0, 3.0))  # doctest: +NORMALIZE_WHITESPACE
              instruction   value   adjoint  partials / line
              x (input)         2       1.5
              y (input)         3  0.693147
        %0    log(x)     0.693147         3  [0.5] <doctest ...>:1
        %1    mul(y, %0)  2.07944         1  [0.693147, 3] <doctest ...>:1
              outputs: %1
        """
        return _debug.explain(self, args, cotangent)

    def to_dot(self) -> str:
        """Graphviz DOT text of the optimised instruction list."""
        return self._c.to_dot()

    @property
    def n_instructions(self) -> int:
        """Instructions left after optimisation."""
        return self._c.n_instructions

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n}: {s}" for n, s in zip(self._names, self._shapes))
        return f"<wg.compile {self.__name__}({shapes}) -> {self._out_shape}, {self.n_instructions} instructions>"

    # -- pickle: the program itself, and the function when it loads elsewhere (_pickling) --

    def __getstate__(self) -> dict[str, Any]:
        fn, note = function_state(self._fn) if self._fn is not None else (None, self._fn_note)
        return {
            "program": self._c.to_bytes(),
            "fn": fn,
            "fn_note": note,
            "names": self._names,
            "shapes": self._shapes,
            "out_shape": self._out_shape,
            "name": self.__name__,
            "doc": self.__doc__,
            "sites": self._sites,
        }

    def __setstate__(self, s: dict[str, Any]) -> None:
        # A pickle crosses trust boundaries: check what it says before it sizes anything.
        if not isinstance(s, dict) or not {"program", "names", "shapes", "out_shape"} <= s.keys():
            raise TypeError("not a pickled wg.compile function: its state is malformed")
        shapes, names = s["shapes"], s["names"]
        if not isinstance(shapes, (list, tuple)) or not isinstance(names, (list, tuple)) or len(names) != len(shapes):
            raise TypeError("not a pickled wg.compile function: shapes and names must be lists of one length")
        if not all(isinstance(n, str) for n in names) or not isinstance(s["program"], bytes):
            raise TypeError("not a pickled wg.compile function: malformed names or program")
        self._shapes = [_as_shape(x, i) for i, x in enumerate(shapes)]
        self._names = list(names)
        self._sizes = _check_sizes(self._shapes)
        self._out_shape = _as_shape(s["out_shape"], 0) if s["out_shape"] != () else ()
        self._fn, self._fn_note = function_from_state(s.get("fn"), s.get("fn_note"))
        self.__name__ = str(s.get("name", "compiled"))
        self.__doc__ = s.get("doc")
        if self._fn is not None:
            functools.update_wrapper(self, self._fn)
        self._c = _core._Compiled.from_bytes(s["program"], self._sizes)
        # Source lines for wg.debug_nans; a pickle without them (or with malformed ones)
        # just reports lines as unknown.
        sites = s.get("sites")
        n_ins = self._c.n_instructions
        if isinstance(sites, list) and len(sites) == n_ins:
            self._sites = [x if isinstance(x, str) else None for x in sites]
        else:
            self._sites = [None] * n_ins
        self._program = None
        if math.prod(self._out_shape) != self._c.n_outputs:
            raise ValueError(
                f"not a pickled wg.compile function: output shape {self._out_shape} for a "
                f"program of {self._c.n_outputs} outputs"
            )


@overload
def compile(f: Callable[..., Any], shapes: Sequence[ShapeLike] | None = None) -> Compiled: ...
@overload
def compile(f: None = None, shapes: Sequence[ShapeLike] | None = None) -> Callable[[Callable[..., Any]], Compiled]: ...


def compile(f: Callable[..., Any] | None = None, shapes: Sequence[Any] | None = None) -> Any:
    """Compile ``f`` for batch evaluation; also a decorator (``@wg.compile(shapes=...)``).

    ``shapes`` gives each argument's shape: ``()`` for a scalar (the default for every
    argument), ``n`` or ``(n,)`` for a vector, which ``f`` receives as a NumPy object
    array of numbers. Arguments broadcast over their leading (batch) dimensions by NumPy
    rules. Branches on traced values cannot be recorded: use ``wg.where``.

    >>> import numpy as np, wengert as wg
    >>> @wg.compile(shapes=[2])
    ... def rosen(x):
    ...     return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    >>> float(rosen(np.array([1.0, 1.0])))
    0.0
    >>> rosen.grad(np.array([[0.0, 0.0], [1.0, 2.0]])).tolist()
    [[-2.0, 0.0], [-400.0, 200.0]]
    """
    if f is None:
        return lambda g: Compiled(g, shapes)
    return Compiled(f, shapes)
