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
from ._guards import Dispatcher, Variant, gather
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


def _param_names(f: Callable[..., Any], n: int | None) -> list[str] | None:
    """The argument names, or None when the signature does not tell how many there are
    (``lambda *xs``, a builtin): then the first call decides."""
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [
        p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if n is None:
        if any(p.kind == p.VAR_POSITIONAL for p in params) or not names:
            return None
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
        self._fn: Callable[..., Any] | None = f
        self._fn_note: str | None = None  # why _fn is None (set when unpickled without it)
        self._debug_what: str | None = None  # what wg.debug_nans calls this function (set by transforms)
        functools.update_wrapper(self, f)
        self._variants: list[Variant] = []
        self._mixed = False
        self._out_shape: Shape | None = None
        self._rows: dict[Any, Any] = {}  # one-row calls, by (method, wrt): see _remember
        names = _param_names(f, None if shapes is None else len(shapes))
        if names is None:  # arity from the first call
            self._names: list[str] | None = None
            return
        self._set_signature(names, [()] * len(names) if shapes is None else [_as_shape(s, i) for i, s in enumerate(shapes)])
        self._trace(None)

    def _set_signature(self, names: list[str], shapes: list[Shape]) -> None:
        self._names = names
        self._shapes: list[Shape] = shapes
        self._sizes = _check_sizes(self._shapes)

    def _trace(self, row: list[float] | None) -> Variant | None:
        """Traces the function, from the numbers of one row (flattened inputs) when given.
        Without a row a function that branches cannot be traced: returns None (it is
        traced from a row at its first call)."""
        # Each recorded op keeps the source line that recorded it (at trace time only),
        # so wg.debug_nans can name it later; the sites travel with pickles.
        trace = _core._Trace(self._sizes, row, row is None, sites=True)
        try:
            out = self._python_function("a new trace")(*arguments(trace.inputs(), self._shapes))
        except BaseException:
            if row is None and trace.needs_row:
                return None
            raise
        if row is None and trace.needs_row:  # the function caught the error itself
            return None
        if isinstance(out, (list, tuple, np.ndarray)):
            out_arr = np.asarray(out, dtype=object)
            out_shape: Shape = out_arr.shape
            outputs = list(out_arr.reshape(-1))
        else:
            out_shape = ()
            outputs = [out]
        if self._out_shape is None:
            self._out_shape = out_shape
        elif out_shape != self._out_shape:
            raise ValueError(
                f"{self.__name__}: its branches return different shapes ({self._out_shape} "
                f"and {out_shape}); every row must give an output of one shape"
            )
        sites = [_debug.site_name(i) for i in trace._instruction_sites(outputs)]
        v = Variant(trace, outputs, trace.n_guards, row is not None, sites)
        if row is None:
            self._variants.append(v)
        return v

    def _make(self, row: list[float]) -> Variant:
        if self._fn is None:
            raise ValueError(
                f"{self.__name__}: a row follows a branch pattern that was not traced before "
                "the compiled function was pickled, and the Python function did not travel "
                "with it (a lambda or closure pickles only its compiled traces). Define the "
                "function at module level so it pickles by reference, or evaluate rows of "
                "every branch pattern before pickling, or write the branches with wg.where"
            )
        v = self._trace(row)
        assert v is not None
        return v

    @property
    def _dispatch(self) -> Dispatcher:
        return Dispatcher(self._variants, self._make, self.__name__)

    @property
    def _c(self) -> Any:
        """The compiled program of the first trace (tests and tools read it)."""
        if not self._variants:
            raise ValueError(f"{self.__name__}: not traced yet (it is traced at its first call)")
        return self._variants[0].plain

    @property
    def _arg_names(self) -> list[str]:
        """The argument names, once known (from the signature or the first call)."""
        assert self._names is not None, "arity known before arguments are read"
        return self._names

    @property
    def _shape_out(self) -> Shape:
        """The output shape, once traced."""
        assert self._out_shape is not None, "traced before outputs are shaped"
        return self._out_shape

    @property
    def _sites(self) -> list[str | None]:
        """The source line of each instruction of the first trace (for ``wg.debug_nans``)."""
        return self._first().sites

    def _debug_program(
        self, data: list[np.ndarray] | None = None, per_row: list[bool] | None = None, n: int = 0
    ) -> _debug.Program:
        """The value program as ``wg.debug_nans`` re-runs it, built on first need: the
        first trace's, or with ``data`` the trace of the branch pattern its rows follow
        (a single pattern: ``explain`` passes one row)."""
        v = self._first()
        if data is not None and per_row is not None and v.guarded:
            parts = self._patterns(data, per_row, n)
            if len(parts) != 1:
                raise NotImplementedError(
                    f"{self.__name__}: wg.debug_nans re-runs rows of one branch pattern at a time"
                )
            v = parts[0][0]
        if v.program is None:
            v.program = _debug.Program(v.plain, v.sites)
        program: _debug.Program = v.program
        return program

    def _debug_check(
        self, check: Callable[..., None], what: str, data: list[np.ndarray], per_row: list[bool], n: int,
        batch: Shape, results: Sequence[Any], *rest: Any,
    ) -> None:
        """``check`` (a ``wengert._debug.check_*``) when every row follows the first trace,
        whose program it re-runs; otherwise a NonFiniteError naming the rows whose results
        are not finite (the culprit is not located across branch patterns)."""
        first = self._first()
        if not first.guarded or first.check.values(data, per_row, n, "sum")[0] == float(n):
            check(self, what, data, per_row, n, batch, *rest)
            return
        arrays = [np.asarray(a, dtype=float) for a in results if a is not None]
        if all(np.isfinite(a).all() for a in arrays):
            return
        rows = [int(i) for i in _debug._bad_rows(arrays, n)]
        where = f" on rows {rows[:5]}{' ...' if len(rows) > 5 else ''}" if rows else ""
        raise _debug.NonFiniteError(
            f"wg.debug_nans: {what}: a non-finite result{where}; its rows follow different "
            "branch patterns (traces), so the operation that made it is not located: call "
            "the function (or F.explain) on one such row",
            kind="value", rows=rows[:5] or None, n_rows=len(rows),
        )

    # -- argument handling -------------------------------------------------------------

    def _arg_array(self, i: int, x: Any, what: str = "argument") -> np.ndarray:
        name = self._arg_names[i]
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
        if self._names is None:
            if not args:
                raise TypeError(f"{self.__name__}() needs at least one argument")
            self._set_signature([f"arg{i}" for i in range(len(args))], [()] * len(args))
        if len(args) != len(self._shapes):
            raise TypeError(
                f"{self.__name__}() takes {len(self._shapes)} arguments "
                f"({', '.join(self._arg_names)}), got {len(args)}"
            )
        arrays = [self._arg_array(i, x) for i, x in enumerate(args)]
        batches = [a.shape[: a.ndim - len(s)] for a, s in zip(arrays, self._shapes)]
        try:
            batch = np.broadcast_shapes(*batches)
        except ValueError:
            desc = ", ".join(f"{n!r}: {b}" for n, b in zip(self._arg_names, batches))
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
        n = math.prod(batch)
        self._ensure_traced(data, per_row, n)
        return data, per_row, n, batch, arrays

    def _ensure_traced(self, data: list[np.ndarray], per_row: list[bool], n: int) -> None:
        if not self._variants:
            # The first trace that needs numbers comes from the first row (zeros when there
            # are no rows: the trace then serves the rows that branch as zeros do).
            rows = data if n else [np.zeros(k) for k in self._sizes]
            self._dispatch.new_variant(rows, per_row if n else [False] * len(data), self._sizes, 0)

    def _wrt(self, wrt: Any) -> tuple[list[int], bool]:
        return normalize_wrt(wrt, len(self._shapes))

    def _values_shape(self, batch: Shape, reduced: bool) -> Shape:
        return self._shape_out if reduced else batch + self._shape_out

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

    # -- the engine, each row by the trace of its own branch pattern ----------------------
    # A function without branches has one trace and goes straight to the engine. With
    # guards, values, vjp and jvp first run the first trace's extended program (outputs,
    # then the flag) over every row in one pass that stores the outputs and sums the flag
    # in registers (`*_flagged`): when the sum is n every row follows that trace, and the
    # outputs are the answer (the extended program computes them with the plain one's
    # instructions: the same bits, per row or reduced). Otherwise, and straight away after
    # a call whose rows were mixed, there are two strategies by the cost of checking the
    # guards (see _guards.Variant):
    # - cheap check (guards on values that cost little next to the function): the rows
    #   are partitioned by the check programs and each part runs its own trace's plain
    #   program;
    # - costly check (guards deep in the computation, a while loop): per-row jobs run the
    #   first trace's extended program over every row, the flag stored per row, and re-run
    #   only the rows it does not serve; reduced jobs sum the reductions of each pattern's
    #   rows.
    # Either way a row's numbers are those of its own trace, the same bits in any batch.

    def _first(self) -> Variant:
        return self._variants[0]

    def _patterns(self, data: list[np.ndarray], per_row: list[bool], n: int) -> list[tuple[Variant, Any]]:
        return self._dispatch.partition(data, per_row, self._sizes, n)

    def _one_trace(self, data: list[np.ndarray], per_row: list[bool], n: int) -> Variant | None:
        """The trace that serves every row when one does and that is cheap to tell (for
        jobs without a flagged pass: hvp)."""
        first = self._first()
        if not first.guarded:
            return first
        # After a call whose rows were mixed, straight to the per-row check (the summed one
        # would be a wasted pass); the numbers are the same either way.
        if first.cheap and not self._mixed and first.check.values(data, per_row, n, "sum")[0] == float(n):
            return first
        return None

    def _fused(self) -> Variant | None:
        """The first trace, when its extended program should first be tried over every
        row in one flagged pass (not after a call whose rows were mixed)."""
        first = self._first()
        return first if first.guarded and not self._mixed else None

    def _served(self, flag: float, n: int) -> bool:
        """Whether a flagged pass over ``n`` rows found every row on the first trace; if
        not, later calls go straight to the mixed-rows path until one finds them all on it."""
        if flag == float(n):
            return True
        self._mixed = True
        return False

    def _by_parts(
        self, data: list[np.ndarray], per_row: list[bool], n: int, call: Callable[..., Any], kinds: Sequence[str]
    ) -> list[Any]:
        """``call(variant, data, rows, idx)`` on each pattern's rows, results joined: per
        row (``"row"``: scattered back) or summed (``"sum"``). None results stay None."""
        parts = self._patterns(data, per_row, n)
        self._mixed = not (len(parts) == 1 and parts[0][1] is None)
        if len(parts) == 1 and parts[0][1] is None:
            return list(call(parts[0][0], data, n, None))
        out: list[Any] = [None] * len(kinds)
        count = len(kinds)
        for var, idx in parts:
            rows = n if idx is None else len(idx)
            got = call(var, gather(data, per_row, self._sizes, idx), rows, idx)
            count = len(got)
            for j, (g, kind) in enumerate(zip(got, kinds)):
                if g is None:
                    continue
                if kind == "sum":
                    out[j] = np.array(g, dtype=float) if out[j] is None else out[j] + g
                else:
                    w = len(g) // rows
                    if out[j] is None:
                        out[j] = np.empty(n * w)
                    if idx is None:
                        out[j][:] = g
                    elif w == 1:
                        out[j][idx] = g  # 1-D scatter: far faster than into an (n, 1) view
                    else:
                        out[j].reshape(n, w)[idx] = g.reshape(rows, w)
        return out[:count]

    def _per_row(
        self, data: list[np.ndarray], per_row: list[bool], n: int, run: Callable[..., Any], widths: Sequence[int]
    ) -> list[np.ndarray]:
        """:meth:`Dispatcher.per_row`, remembering whether the rows were mixed."""
        d = self._dispatch
        got = d.per_row(data, per_row, self._sizes, n, run, widths)
        self._mixed = d.mixed
        return got

    def _engine_values(self, data: list[np.ndarray], per_row: list[bool], n: int, r: str) -> np.ndarray:
        first = self._first()
        if not first.guarded:
            return np.asarray(first.plain.values(data, per_row, n, r))
        if self._fused() is not None:
            vals, flag = first.ext.values_flagged(data, per_row, n, r)
            if self._served(flag, n):
                return np.asarray(vals)
        m = first.n_outputs
        if not first.cheap and r == "none":
            run = lambda v, d, rows, idx: [v.ext.values(d, per_row, rows, "none")]  # noqa: E731
            return self._per_row(data, per_row, n, run, [m + 1])[0]
        if r == "none":
            return np.asarray(self._by_parts(data, per_row, n, lambda v, d, rows, idx: [v.plain.values(d, per_row, rows, "none")], ["row"])[0])
        total = self._by_parts(data, per_row, n, lambda v, d, rows, idx: [v.plain.values(d, per_row, rows, "sum")], ["sum"])[0]
        return np.asarray(total * (1.0 / n) if r == "mean" else total)

    def _engine_vjp(
        self, data: list[np.ndarray], per_row: list[bool], n: int, cd: np.ndarray, cp: bool, flags: list[bool], r: str
    ) -> tuple[np.ndarray, list[Any]]:
        first = self._first()
        if not first.guarded:
            vg: tuple[np.ndarray, list[Any]] = first.plain.vjp(data, per_row, n, cd, cp, flags, r)
            return vg
        if self._fused() is not None:
            vals, gs, flag = first.ext.vjp_flagged(data, per_row, n, cd, cp, flags, r)
            if self._served(flag, n):
                return vals, gs
        m = first.n_outputs
        sizes = self._sizes
        c = cd.reshape(-1, m)

        def rows_of(c: np.ndarray, idx: Any) -> np.ndarray:
            return (c if (idx is None or not cp) else c[idx]).reshape(-1)

        if not first.cheap and r == "none":
            cext = np.concatenate([c, np.zeros((c.shape[0], 1))], axis=1)  # the flag's cotangent: 0
            wrt = [i for i in range(len(sizes)) if flags[i]]

            def run(v: Variant, d: list[np.ndarray], rows: int, idx: Any) -> list[np.ndarray]:
                vals, gs = v.ext.vjp(d, per_row, rows, rows_of(cext, idx), cp, flags, "none")
                return [vals] + [gs[i] for i in wrt]

            got = self._per_row(data, per_row, n, run, [m + 1] + [sizes[i] for i in wrt])
            grads: list[Any] = [None] * len(sizes)
            for i, g in zip(wrt, got[1:]):
                grads[i] = g
            return got[0], grads
        if r == "none":
            got = self._by_parts(
                data, per_row, n,
                lambda v, d, rows, idx: [(vg := v.plain.vjp(d, per_row, rows, rows_of(c, idx), cp, flags, "none"))[0], *vg[1]],
                ["row"] * (1 + len(sizes)),
            )
            return got[0], got[1:]
        # Each pattern's rows summed; the mean's 1/n goes into every row's cotangent, as
        # the engine's own mean does. Shared arguments' gradients are sums over the rows,
        # per-row ones stay per row.
        scale = 1.0 / n if r == "mean" else 1.0
        cs = c * scale if r == "mean" else c
        kinds = ["sum"] + ["row" if p else "sum" for p in per_row]
        got = self._by_parts(
            data, per_row, n,
            lambda v, d, rows, idx: [(vg := v.plain.vjp(d, per_row, rows, rows_of(cs, idx), cp, flags, "sum"))[0], *vg[1]],
            kinds,
        )
        return got[0] * scale, got[1:]

    def _engine_jvp(
        self, data: list[np.ndarray], per_row: list[bool], n: int, tdata: list[np.ndarray], tper: list[bool], r: str
    ) -> tuple[np.ndarray, np.ndarray]:
        first = self._first()
        if not first.guarded:
            vt: tuple[np.ndarray, np.ndarray] = first.plain.jvp(data, per_row, n, tdata, tper, r)
            return vt
        if self._fused() is not None:
            vals, tans, flag = first.ext.jvp_flagged(data, per_row, n, tdata, tper, r)
            if self._served(flag, n):
                return vals, tans
        m = first.n_outputs
        sizes = self._sizes
        if not first.cheap and r == "none":

            def run(v: Variant, d: list[np.ndarray], rows: int, idx: Any) -> list[np.ndarray]:
                return list(v.ext.jvp(d, per_row, rows, gather(tdata, tper, sizes, idx), tper, "none"))

            vals, tans = self._per_row(data, per_row, n, run, [m + 1, m + 1])
            return vals, np.ascontiguousarray(tans.reshape(-1, m + 1)[:, :m]).reshape(-1)
        kind = "row" if r == "none" else "sum"
        rr = "none" if r == "none" else "sum"
        v, t = self._by_parts(
            data, per_row, n,
            lambda v, d, rows, idx: list(v.plain.jvp(d, per_row, rows, gather(tdata, tper, sizes, idx), tper, rr)),
            [kind, kind],
        )
        if r == "mean":
            return v * (1.0 / n), t * (1.0 / n)
        return v, t

    def _engine_scattered(self, data: list[np.ndarray], per_row: list[bool], n: int, call: Callable[..., Any]) -> list[np.ndarray]:
        """Per-row results of ``call(plain_program, data, rows)`` (Jacobians, Hessians),
        each row's from the trace of its own pattern."""
        if not self._first().guarded:
            return list(call(self._first().plain, data, n))
        return self._by_parts(data, per_row, n, lambda v, d, rows, idx: call(v.plain, d, rows), ["row"] * 3)

    def _engine_hvp(
        self, data: list[np.ndarray], per_row: list[bool], n: int, flags: list[bool],
        vdata: list[np.ndarray], vper: list[bool], vsizes: list[int], r: str,
    ) -> np.ndarray:
        """``H @ v`` per row (``r="none"``) or summed over the rows, each row by the
        trace of its own branch pattern (``vdata``: the wrt arguments' ``v``, in order)."""
        one = self._one_trace(data, per_row, n)
        if one is not None:
            return np.asarray(one.plain.hvp(data, per_row, n, flags, vdata, vper, r))
        rr = "none" if r == "none" else "sum"
        (hv,) = self._by_parts(
            data, per_row, n,
            lambda v, d, rows, idx: [v.plain.hvp(d, per_row, rows, flags, gather(vdata, vper, vsizes, idx), vper, rr)],
            ["row" if r == "none" else "sum"],
        )
        return np.asarray(hv) * (1.0 / n) if r == "mean" else np.asarray(hv)

    # -- one-row calls -------------------------------------------------------------------
    # A call on one row (the SciPy-optimiser case) spends more time here than in the
    # engine. After a method's first such call has gone through every check below, a
    # `_core._RowCall` for that method and `wrt` is kept: it serves later calls whose
    # arguments are exactly what the engine reads in place (Python floats and ints, or
    # aligned C-contiguous float64 arrays of the declared shapes), and hands back None
    # for anything else (lists, other dtypes or strides, batches, Var or Dual numbers, the
    # non-finite check on), which then takes the full path. Same core call, same bits.

    def _row_call(self, kind: str, wrt: Any) -> Any:
        """The one-row call kept for ``kind`` and ``wrt``, or None. Only ints and tuples of
        ints are keys: ``True == 1`` must not find the call ``wrt=1`` made."""
        if type(wrt) is not int and (type(wrt) is not tuple or not all(type(w) is int for w in wrt)):
            return None
        return self._rows.get((kind, wrt))

    def _remember(self, kind: str, wrt: Any, batch: Shape, idx: list[int], single: bool) -> None:
        """Keeps a one-row call for ``kind`` and ``wrt`` after a call on one row (``batch``
        ``()``) of a function with one trace and no branches."""
        if batch != () or len(self._variants) != 1 or self._first().guarded:
            return
        if type(wrt) is not int and (type(wrt) is not tuple or not all(type(w) is int for w in wrt)):
            return
        if (kind, wrt) not in self._rows:
            self._rows[kind, wrt] = _core._RowCall(
                self._first().plain, [list(s) for s in self._shapes], list(self._shape_out), kind, idx, single
            )

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
        if reduce is None:
            row = self._rows.get(("values", 0))
            if row is not None:
                got = row(args)
                if got is not None:
                    return got
        if _carries_derivatives(args):
            return self._call_on_numbers(args, reduce)
        r = _check_reduce(reduce)
        data, per_row, n, batch, _ = self._prepare(args)
        v = self._engine_values(data, per_row, n, r)
        if _debug.on():
            self._debug_check(_debug.check_values, f"{self.__name__}(...)", data, per_row, n, batch, [v], v, r)
        if reduce is None:
            self._remember("values", 0, batch, [], True)
        return self._out(v, self._values_shape(batch, r != "none"))

    def _call_on_numbers(self, args: tuple[Any, ...], reduce: str | None) -> Any:
        if reduce is not None:
            raise TypeError(f"{self.__name__}(..., reduce=...) takes arrays of real numbers, not Var, Dual or traced values")
        if self._names is None:
            self._set_signature([f"arg{i}" for i in range(len(args))], [()] * len(args))
        if len(args) != len(self._shapes):
            raise TypeError(f"{self.__name__} takes {len(self._shapes)} arguments, got {len(args)}")
        call = []
        for name, shape, a in zip(self._arg_names, self._shapes, args):
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
        if reduce is None:
            row = self._rows.get(("value_and_grad", wrt)) if type(wrt) is int else self._row_call("value_and_grad", wrt)
            if row is not None:
                got = row(args)
                if got is not None:
                    return got  # type: ignore[no-any-return]
        r = _check_reduce(reduce)
        data, per_row, n, batch, arrays = self._prepare(args)
        self._scalar_output("value_and_grad")
        idx, single = self._wrt(wrt)
        flags = [i in idx for i in range(len(self._shapes))]
        v, gs = self._engine_vjp(data, per_row, n, np.ones(1), False, flags, r)
        if _debug.on():
            self._debug_check(
                _debug.check_vjp, f"{self.__name__}.grad", data, per_row, n, batch, [v, *gs],
                v, gs, np.ones(1), False, flags, r,
            )
        reduced = r != "none"
        grads = tuple(self._grad_out(gs[i], i, arrays, batch, reduced, per_row[i]) for i in idx)
        if not reduced:
            self._remember("value_and_grad", wrt, batch, idx, single)
        return self._out(v, self._values_shape(batch, reduced)), (grads[0] if single else grads)

    @overload
    def grad(self, *args: npt.ArrayLike, wrt: Index = 0, reduce: Reduce = None) -> Values: ...
    @overload
    def grad(self, *args: npt.ArrayLike, wrt: Indices, reduce: Reduce = None) -> tuple[Values, ...]: ...

    def grad(self, *args: Any, wrt: Any = 0, reduce: Any = None) -> Any:
        """Gradients only; see :meth:`value_and_grad`."""
        if reduce is None:
            row = self._rows.get(("grad", wrt)) if type(wrt) is int else self._row_call("grad", wrt)
            if row is not None:
                got = row(args)
                if got is not None:
                    return got
            out = self.value_and_grad(*args, wrt=wrt)
            # The call above checked everything; one row of a function without branches
            # leaves its value_and_grad's one-row call, and a grad one goes with it.
            vg = self._row_call("value_and_grad", wrt)
            if vg is not None and ("grad", wrt) not in self._rows:
                self._remember("grad", wrt, (), *normalize_wrt(wrt, len(self._shapes)))
            return out[1]
        return self.value_and_grad(*args, wrt=wrt, reduce=reduce)[1]

    @overload
    def jacobian(self, *args: npt.ArrayLike, wrt: Index = 0) -> Values: ...
    @overload
    def jacobian(self, *args: npt.ArrayLike, wrt: Indices) -> tuple[Values, ...]: ...

    def jacobian(self, *args: Any, wrt: Any = 0) -> Any:
        """Per-row Jacobians: shape batch + output shape + argument shape, per ``wrt``
        argument. Forward or reverse sweeps, whichever needs fewer."""
        row = self._rows.get(("jacobian", wrt)) if type(wrt) is int else self._row_call("jacobian", wrt)
        if row is not None:
            got = row(args)
            if got is not None:
                return got
        idx, single = self._wrt(wrt)
        data, per_row, n, batch, _ = self._prepare(args)
        flags = [i in idx for i in range(len(self._shapes))]
        v, jac = self._engine_scattered(data, per_row, n, lambda c, d, rows: c.jacobian(d, per_row, rows, flags))
        if _debug.on():
            self._debug_check(_debug.check_jacobian, f"{self.__name__}.jacobian", data, per_row, n, batch, [v, jac], v, jac, flags)
        m = math.prod(self._shape_out)
        cols = sum(self._sizes[i] for i in idx)
        jac = jac.reshape(batch + (m, cols))
        out, at = [], 0
        for i in idx:
            k = self._sizes[i]
            out.append(self._out(jac[..., at : at + k].copy(), batch + self._shape_out + self._shapes[i]))
            at += k
        self._remember("jacobian", wrt, batch, idx, single)
        return out[0] if single else tuple(out)

    @overload
    def hessian(self, *args: npt.ArrayLike, wrt: Index = 0) -> Values: ...
    @overload
    def hessian(self, *args: npt.ArrayLike, wrt: Indices) -> tuple[tuple[Values, ...], ...]: ...

    def hessian(self, *args: Any, wrt: Any = 0) -> Any:
        """Per-row Hessians of a scalar output, exact (forward over reverse): shape batch +
        argument shape + argument shape, or for a tuple ``wrt`` a tuple of tuples of
        blocks (JAX's layout)."""
        row = self._rows.get(("hessian", wrt)) if type(wrt) is int else self._row_call("hessian", wrt)
        if row is not None:
            got = row(args)
            if got is not None:
                return got
        data, per_row, n, batch, _ = self._prepare(args)
        self._scalar_output("hessian")
        idx, single = self._wrt(wrt)
        # Only the block of the wrt arguments (in argument order) is computed.
        flags = [i in idx for i in range(len(self._shapes))]
        # On SIMD lanes, each row by the trace of its own branch pattern.
        (h,) = self._engine_scattered(data, per_row, n, lambda c, d, rows: [c.hessian_block(d, per_row, rows, flags)])
        if _debug.on():
            # The check names the value, gradient or Hessian entry born non-finite; the
            # dual-number path gives all three (it runs only with the check on).
            v, g, _ = self._engine_scattered(data, per_row, n, lambda c, d, rows: c.hessian(d, per_row, rows, flags))
            self._debug_check(_debug.check_hessian, f"{self.__name__}.hessian", data, per_row, n, batch, [v, g, h], v, g, h, flags)
        sizes = [s if f else 0 for s, f in zip(self._sizes, flags)]
        total = sum(sizes)
        h = h.reshape(batch + (total, total))
        offsets = np.cumsum([0] + sizes)

        def block(i: int, j: int) -> Any:
            part = h[..., offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]]
            # A single wrt's block is all of h: a view, not a copy (for Rosenbrock-16 over
            # 1e4 rows a copy was 20 MB of fresh pages, a third of the call).
            return self._out(
                part if part.shape == h.shape else part.copy(),
                batch + self._shapes[i] + self._shapes[j],
            )

        self._remember("hessian", wrt, batch, idx, single)
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
        r = _check_reduce(reduce)
        arrays, batch = self._arrays(args)  # first: a function of lazy arity learns it here
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
        v_arrays = [self._arg_array(i, t, "v for") for i, t in zip(idx, vs)]
        v_batches = [a.shape[: a.ndim - len(self._shapes[i])] for a, i in zip(v_arrays, idx)]
        try:
            batch = np.broadcast_shapes(batch, *v_batches)
        except ValueError:
            desc = ", ".join(f"{self._arg_names[i]!r}: {b}" for i, b in zip(idx, v_batches))
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
        self._ensure_traced(data, per_row, n)
        self._scalar_output("hvp")
        flags = [i in idx for i in range(len(self._shapes))]
        order = [i for i in range(len(self._shapes)) if flags[i]]  # the engine's order
        # Summed in the engine when every wrt argument is shared by the rows; otherwise
        # per row, then summed to each argument's own shape as value_and_grad does.
        in_engine = r != "none" and not any(per_row[i] for i in idx)
        v_in_order = [order.index(i) for i in idx]
        hv = self._engine_hvp(
            data, per_row, n, flags,
            [vdata[idx.index(i)] for i in order], [vper[idx.index(i)] for i in order],
            [self._sizes[i] for i in order], r if in_engine else "none",
        )
        offsets = np.cumsum([0] + [self._sizes[i] for i in order])
        out = []
        for i, at in zip(idx, v_in_order):
            whole = hv.reshape(-1, offsets[-1])
            part = whole[:, offsets[at] : offsets[at + 1]]
            if part.shape != whole.shape:  # a single wrt's part is all of it: no copy
                part = part.copy()
            if r == "none":
                out.append(self._out(part, batch + self._shapes[i]))
            elif in_engine:
                out.append(self._out(part, arrays[i].shape))
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
                    f"tangent {self._arg_names[i]!r}: shape {a.shape} does not broadcast to the "
                    f"batch shape {batch} of the primals"
                )
            d, p = self._flat(a, batch, self._shapes[i])
            tdata.append(d)
            tper.append(p)
        v, t = self._engine_jvp(data, per_row, n, tdata, tper, r)
        if _debug.on():
            self._debug_check(_debug.check_jvp, f"{self.__name__}.jvp", data, per_row, n, batch, [v, t], v, t, tdata, tper, r)
        shape = self._values_shape(batch, r != "none")
        return self._out(v, shape), self._out(t, shape)

    def vjp(
        self, primals: Sequence[npt.ArrayLike], cotangent: npt.ArrayLike, reduce: Reduce = None
    ) -> tuple[Values, tuple[Values, ...]]:
        """``(values, gradients of <cotangent, values>)`` with respect to every argument."""
        r = _check_reduce(reduce)
        data, per_row, n, batch, arrays = self._prepare(tuple(primals))
        c = _real_array(cotangent, f"vjp: cotangent (of shape {batch + self._shape_out})")
        k = len(self._shape_out)
        if c.ndim < k or c.shape[c.ndim - k :] != self._out_shape:
            raise ValueError(f"vjp: cotangent must have trailing shape {self._out_shape}, got {c.shape}")
        if not _broadcasts_to(c.shape[: c.ndim - k], batch):
            raise ValueError(
                f"vjp: cotangent of shape {c.shape} does not broadcast to the values' shape "
                f"{batch + self._out_shape}"
            )
        cd, cp = self._flat(c, batch, self._out_shape)
        flags = [True] * len(self._shapes)
        v, gs = self._engine_vjp(data, per_row, n, cd, cp, flags, r)
        if _debug.on():
            self._debug_check(_debug.check_vjp, f"{self.__name__}.vjp", data, per_row, n, batch, [v, *gs], v, gs, cd, cp, flags, r)
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
        """Graphviz DOT text of the optimised instruction list (of the first branch
        pattern traced, for a function that branches)."""
        return str(self._c.to_dot())

    @property
    def n_instructions(self) -> int:
        """Instructions left after optimisation (of the first branch pattern traced)."""
        return int(self._c.n_instructions)

    @property
    def n_traces(self) -> int:
        """How many traces (one per branch pattern met so far) are cached; at most
        ``wg.MAX_VARIANTS``."""
        return len(self._variants)

    def __repr__(self) -> str:
        if self._names is None or not self._variants:
            args = "..." if self._names is None else ", ".join(f"{n}: {s}" for n, s in zip(self._names, self._shapes))
            return f"<wg.compile {self.__name__}({args}), traced at its first call>"
        shapes = ", ".join(f"{n}: {s}" for n, s in zip(self._names, self._shapes))
        more = f", {len(self._variants)} branch patterns" if self._first().guarded else ""
        return f"<wg.compile {self.__name__}({shapes}) -> {self._out_shape}, {self.n_instructions} instructions{more}>"

    # -- pickle: the program itself, and the function when it loads elsewhere (_pickling) --

    def __getstate__(self) -> dict[str, Any]:
        fn, note = function_state(self._fn) if self._fn is not None else (None, self._fn_note)
        variants = [v.state() for v in self._variants]
        return {
            "program": variants[0][1] if variants else b"",
            "variants": variants,
            "fn": fn,
            "fn_note": note,
            "names": self._names,
            "shapes": None if self._names is None else self._shapes,
            "out_shape": self._out_shape,
            "name": self.__name__,
            "doc": self.__doc__,
            "sites": self._variants[0].sites if self._variants else None,
        }

    def __setstate__(self, s: dict[str, Any]) -> None:
        # A pickle crosses trust boundaries: check what it says before it sizes anything.
        if not isinstance(s, dict) or not {"program", "names", "shapes", "out_shape"} <= s.keys():
            raise TypeError("not a pickled wg.compile function: its state is malformed")
        shapes, names = s["shapes"], s["names"]
        self._fn, self._fn_note = function_from_state(s.get("fn"), s.get("fn_note"))
        self.__name__ = str(s.get("name", "compiled"))
        self.__doc__ = s.get("doc")
        if self._fn is not None:
            functools.update_wrapper(self, self._fn)
        self._variants = []
        self._mixed = False
        self._out_shape = None
        self._rows = {}
        if names is None and shapes is None:  # arity from the first call, nothing traced
            self._names = None
            return
        if not isinstance(shapes, (list, tuple)) or not isinstance(names, (list, tuple)) or len(names) != len(shapes):
            raise TypeError("not a pickled wg.compile function: shapes and names must be lists of one length")
        if not all(isinstance(n, str) for n in names) or not isinstance(s["program"], bytes):
            raise TypeError("not a pickled wg.compile function: malformed names or program")
        self._set_signature(list(names), [_as_shape(x, i) for i, x in enumerate(shapes)])
        variants = s.get("variants")
        if variants is None:  # a single trace, as pickled before branch patterns existed
            variants = [(None, s["program"], 0, None, s.get("sites"))]
        if not isinstance(variants, (list, tuple)):
            raise TypeError("not a pickled wg.compile function: malformed branch patterns")
        self._variants = [Variant.from_state(v, self._sizes) for v in variants]
        if self._variants:
            # The first trace's source lines are the state's "sites" (as a single trace
            # pickles them); a pickle without them reports lines as unknown.
            first = self._variants[0]
            first.sites = first._checked_sites(s.get("sites"))
        if self._variants:
            self._out_shape = _as_shape(s["out_shape"], 0) if s["out_shape"] != () else ()
            for v in self._variants:
                if math.prod(self._out_shape) != v.plain.n_outputs:
                    raise ValueError(
                        f"not a pickled wg.compile function: output shape {self._out_shape} for a "
                        f"program of {v.plain.n_outputs} outputs"
                    )
            if len(self._variants) > 1 and not all(v.guarded for v in self._variants):
                raise ValueError("not a pickled wg.compile function: an unguarded trace among branch patterns")


@overload
def compile(f: Callable[..., Any], shapes: Sequence[ShapeLike] | None = None) -> Compiled: ...
@overload
def compile(f: None = None, shapes: Sequence[ShapeLike] | None = None) -> Callable[[Callable[..., Any]], Compiled]: ...


def compile(f: Callable[..., Any] | None = None, shapes: Sequence[Any] | None = None) -> Any:
    """Compile ``f`` for batch evaluation; also a decorator (``@wg.compile(shapes=...)``).

    ``shapes`` gives each argument's shape: ``()`` for a scalar (the default for every
    argument), ``n`` or ``(n,)`` for a vector, which ``f`` receives as a NumPy object
    array of numbers. Arguments broadcast over their leading (batch) dimensions by NumPy
    rules.

    Python control flow on the inputs (``if``/``elif``, ``while``, ``and``/``or``/``not``,
    ``max``/``min``/``sorted``, early ``return``) works row by row: a function that
    branches is traced at its first call from the numbers of a row, recording each
    branch decision as a guard; rows whose decisions differ are evaluated by a trace of
    their own branch pattern, made on demand from one such row and cached (at most
    ``wg.MAX_VARIANTS`` per function). So every row gets what calling ``f`` on that row
    gives, values and derivatives. ``wg.where(cond, a, b)`` instead records one
    branch-free select (conditions combine with ``&``, ``|``, ``~``).

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
