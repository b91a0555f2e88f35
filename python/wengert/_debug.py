"""``wg.debug_nans``: where a NaN (or an infinity) was born.

With the check on, an eager op (``Var``, ``Dual``), a compiled call and a transform raise
:class:`NonFiniteError` (a ``FloatingPointError``) when a value, tangent or adjoint
becomes non-finite although what it was computed from is finite. The message names the
op, the Python ``file:line`` that recorded it, for batches the rows affected, and the
operands on the first such row; a non-finite *input* is reported as the input it is.

When the check is off nothing here runs: a compiled call tests one flag per call, never
per row, and an eager op one atomic load. When it is on, the fast path runs first; only
if a result is not finite is the first such row re-run here, instruction by instruction,
from the compiled program, and the non-finite result traced back to its origin. Strong
zero decides what is real: a NaN on the unchosen side of ``wg.where`` never reaches a
value, and never a derivative (its adjoint or tangent is zero), so it is never reported.

Eager code computes both sides of ``wg.where`` before it picks one, so there the check
raises where the NaN is born, as NumPy's ``errstate`` would; transforms (``wg.grad`` and
the rest) run their function with eager checks suspended and, when a result is not
finite, locate the culprit on the compiled program, where the select is visible.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from . import _core
from ._nested import _CMP, _binary, _unary

__all__ = ["NonFiniteError", "debug_nans", "set_debug_nans", "debug_nans_enabled"]


class NonFiniteError(FloatingPointError):
    """Raised under :func:`debug_nans` where a non-finite value, tangent or adjoint is born.

    Attributes (``None`` where they do not apply): ``kind`` (``"value"``, ``"tangent"``,
    ``"adjoint"`` or ``"input"``), ``op`` (the op's name, e.g. ``"log"``), ``site`` (the
    ``file:line`` that recorded it), ``rows`` (the first few affected row indices),
    ``n_rows`` (how many rows are affected), ``operands`` (the op's operands on the first
    such row), ``argument`` (for an input: its name).
    """

    def __init__(self, message: str, **info: Any) -> None:
        super().__init__(message)
        for k in ("kind", "op", "site", "rows", "n_rows", "operands", "argument"):
            setattr(self, k, info.get(k))


NonFiniteError.__module__ = "wengert"  # its public home: wg.NonFiniteError


def set_debug_nans(flag: bool) -> None:
    """Turns the non-finite check on or off for the whole process (see :func:`debug_nans`).

    >>> import wengert as wg
    >>> wg.set_debug_nans(True)
    >>> wg.debug_nans_enabled()
    True
    >>> wg.set_debug_nans(False)
    """
    _core._set_debug_nans(bool(flag))


def debug_nans_enabled() -> bool:
    """Whether the non-finite check is on."""
    return _core._debug_nans_enabled()


@contextlib.contextmanager
def debug_nans(enabled: bool = True) -> Iterator[None]:
    """Within the block, raise :class:`NonFiniteError` (a ``FloatingPointError``) where a
    value, tangent or adjoint becomes nan or infinite from finite operands; the previous
    setting is restored after it. Also a decorator. Process-wide, like
    :func:`set_debug_nans`.

    >>> import numpy as np, wengert as wg
    >>> F = wg.compile(lambda x: wg.log(x - 1.0) * 2.0)
    >>> with wg.debug_nans():
    ...     F(np.array([3.0, 0.5, 2.0]))
    Traceback (most recent call last):
    ...
    wengert.NonFiniteError: wg.debug_nans: <lambda>(...): the value nan was born in log at <doctest ...>:1, in 1 of 3 rows (row 1); on row 1: log(-0.5) = nan
    >>> with wg.debug_nans():   # the unchosen side of where is not a real NaN
    ...     wg.compile(lambda x: wg.where(x > 0, wg.sqrt(x), 0.0)).grad(np.array([-1.0, 4.0])).tolist()
    [0.0, 0.25]
    """
    before = _core._set_debug_nans(bool(enabled))
    try:
        yield
    finally:
        _core._set_debug_nans(before)


def on() -> bool:
    """Whether the check is on (one call into the core, never per row)."""
    return _core._debug_nans_enabled()


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """Eager checks off on this thread within the block (a transform's fast path, the
    re-run of a row here)."""
    _core._suspend_debug_nans(1)
    try:
        yield
    finally:
        _core._suspend_debug_nans(-1)


# -- source sites ------------------------------------------------------------------------

_PKG = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SITES: list[str] = []
_SITE_IDS: dict[tuple[str, int], int] = {}


def _site(_getframe: Any = sys._getframe, _ids: dict[tuple[str, int], int] = _SITE_IDS) -> int:
    """The id of the innermost source line outside this package running now (called from
    the core for every op it traces, and by eager ops while the check is on)."""
    f = _getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        f = f.f_back
    if f is None:
        return -1
    key = (f.f_code.co_filename, f.f_lineno)
    i = _ids.get(key)
    if i is None:
        i = _SITE_IDS[key] = len(_SITES)
        _SITES.append(f"{key[0]}:{key[1]}")
    return i


def site_name(i: int) -> str | None:
    return _SITES[i] if 0 <= i < len(_SITES) else None


def _here() -> str | None:
    return site_name(_site())


def _num(x: float) -> str:
    return repr(float(x))


def _call(op: str, operands: Sequence[float]) -> str:
    return f"{op}({', '.join(_num(v) for v in operands)})"


def _at(site: str | None) -> str:
    return f" at {site}" if site else " (source line unknown)"


# -- eager ops (called from the core) --------------------------------------------------


def _eager_error(op: str, operands: list[float], tangents: list[float], value: float, tangent: float) -> NonFiniteError:
    site = _here()
    if not math.isfinite(value):
        kind, bad = "value", value
        what = f"{_call(op, operands)} = {_num(value)}"
    else:
        kind, bad = "tangent", tangent
        what = f"{_call(op, operands)} has tangent {_num(tangent)} (operand tangents {', '.join(_num(t) for t in tangents)})"
    return NonFiniteError(
        f"wg.debug_nans: the {kind} {_num(bad)} was born in {op}{_at(site)}: {what}",
        kind=kind, op=op, site=site, operands=list(operands),
    )


def _adjoint_error(op: str, site_id: int, operands: list[float], adjoint: float, partial: float, arg: int) -> NonFiniteError:
    site = site_name(site_id)
    if arg < 0:
        msg = f"wg.debug_nans: backward(): the adjoint of {op}{_at(site)} overflowed to {_num(adjoint)}, a sum of finite contributions"
    else:
        ops = f" {_call(op, operands)}:" if operands else ""
        msg = (
            f"wg.debug_nans: backward(): an adjoint became {_num(adjoint * partial)} in {op}{_at(site)}:{ops} "
            f"its adjoint {_num(adjoint)} times its partial {_num(partial)} in operand {arg}"
        )
    return NonFiniteError(msg, kind="adjoint", op=op, site=site, operands=list(operands) or None)


# -- compiled programs, one row at a time --------------------------------------------------


def _finite(x: float) -> bool:
    return math.isfinite(x)


class Program:
    """A compiled function's value program in single-assignment form, evaluated on one
    row of floats with the core's own rules (through ``Dual``), with its partials and,
    on request, tangents and adjoints under strong zero."""

    def __init__(self, compiled: Any, sites: Sequence[str | None]) -> None:
        inputs, consts, instrs, outputs = compiled._instructions()
        self.n_inputs = len(inputs)
        cur: dict[int, int] = {}
        self.kind: list[tuple[Any, ...]] = []
        for k, s in enumerate(inputs):
            self.kind.append(("input", k))
            if s is not None:
                cur[s] = k
        for s, c in consts:
            cur[s] = len(self.kind)
            self.kind.append(("const", c))
        self.first_op = len(self.kind)
        self.ops: list[tuple[Any, ...]] = []  # (tag, name, args as ids)
        for ins in instrs:
            tag, name, dst = ins[0], ins[1], ins[2]
            args = tuple(cur[a] for a in ins[3:])
            self.ops.append((tag, name, args))
            cur[dst] = len(self.kind)
            self.kind.append(("op", len(self.ops) - 1))
        self.outputs = [cur[o] for o in outputs]
        self.sites = list(sites) if len(sites) == len(self.ops) else [None] * len(self.ops)

    # One op on floats: its value and partials, by Dual numbers, so the rules are the core's.
    @staticmethod
    def _apply(tag: int, name: str, vals: Sequence[float]) -> tuple[float, tuple[float, ...]]:
        D = _core.Dual
        if tag == 2:
            r = _unary(name)(D(vals[0], 1.0))
            return r.value, (r.tangent,)
        if tag == 3:
            fn = _binary(name)
            a = fn(D(vals[0], 1.0), D(vals[1], 0.0))
            b = fn(D(vals[0], 0.0), D(vals[1], 1.0))
            return a.value, (a.tangent, b.tangent)
        x, y, a, b = vals
        return (a if _CMP[name](x, y) else b), ()

    def forward(self, x: Sequence[float]) -> tuple[list[float], list[tuple[float, ...]]]:
        vals: list[float] = [0.0] * len(self.kind)
        for i in range(self.first_op):
            k = self.kind[i]
            vals[i] = float(x[k[1]]) if k[0] == "input" else float(k[1])
        parts: list[tuple[float, ...]] = []
        with suspended():
            for j, (tag, name, args) in enumerate(self.ops):
                v, p = self._apply(tag, name, [vals[a] for a in args])
                vals[self.first_op + j] = v
                parts.append(p)
        return vals, parts

    def chosen(self, j: int, vals: Sequence[float]) -> int:
        """The argument position (2 or 3) a select picks."""
        _, name, (x, y, _a, _b) = self.ops[j]
        return 2 if _CMP[name](vals[x], vals[y]) else 3

    def contributions(self, j: int, vals: Sequence[float], parts: Sequence[tuple[float, ...]], t: float) -> list[tuple[int, float, float | None]]:
        """Per differentiable argument of op ``j``: ``(id, t * partial, partial)`` with
        strong zero (a zero ``t`` contributes nothing); a select passes ``t`` on to the
        side it picks."""
        tag, _, args = self.ops[j]
        if tag == 4:
            c = self.chosen(j, vals)
            return [(args[c], t, None)]
        out: list[tuple[int, float, float | None]] = []
        for a, d in zip(args, parts[j]):
            out.append((a, 0.0 if t == 0.0 else t * d, d))
        return out

    def tangents(self, vals: Sequence[float], parts: Sequence[tuple[float, ...]], seed: Sequence[float]) -> list[float]:
        tan = [0.0] * len(self.kind)
        for i in range(self.first_op):
            if self.kind[i][0] == "input":
                tan[i] = float(seed[self.kind[i][1]])
        for j, (tag, _, args) in enumerate(self.ops):
            i = self.first_op + j
            if tag == 4:
                tan[i] = tan[args[self.chosen(j, vals)]]
            else:
                tan[i] = sum((0.0 if tan[a] == 0.0 else tan[a] * d) for a, d in zip(args, parts[j]))
        return tan

    def adjoints(self, vals: Sequence[float], parts: Sequence[tuple[float, ...]], cotangent: Sequence[float]) -> list[float]:
        adj = [0.0] * len(self.kind)
        for o, c in zip(self.outputs, cotangent):
            adj[o] += float(c)
        for j in range(len(self.ops) - 1, -1, -1):
            g = adj[self.first_op + j]
            for a, contrib, _ in self.contributions(j, vals, parts, g):
                if self.kind[a][0] != "const":
                    adj[a] += contrib
        return adj

    # -- tracing a non-finite result back to where it was born ---------------------------

    def value_origin(self, i: int, vals: Sequence[float]) -> tuple[str, int]:
        """Where the non-finite value of id ``i`` comes from: ``("input", k)``,
        ``("const", i)`` or ``("op", j)`` (an op with finite operands)."""
        while True:
            k = self.kind[i]
            if k[0] != "op":
                return (k[0], k[1] if k[0] == "input" else i)
            j = k[1]
            tag, _, args = self.ops[j]
            looked = [args[self.chosen(j, vals)]] if tag == 4 else list(args)
            bad = [a for a in looked if not _finite(vals[a])]
            if not bad:
                return ("op", j)
            i = bad[0]

    def tangent_origin(self, i: int, vals: Sequence[float], parts: Sequence[tuple[float, ...]], tan: Sequence[float]) -> tuple[str, int]:
        """Where the non-finite tangent of id ``i`` comes from: ``("tangent", k)`` (an
        input's tangent), ``("value", id)`` (a non-finite value: see
        :meth:`value_origin`), or ``("op", j)``."""
        while True:
            if not _finite(vals[i]):
                return ("value", i)
            k = self.kind[i]
            if k[0] == "input":
                return ("tangent", k[1])
            j = k[1]
            tag, _, args = self.ops[j]
            if tag == 4:
                i = args[self.chosen(j, vals)]
                continue
            bad = [a for a in args if not _finite(tan[a])]
            if bad:
                i = bad[0]
                continue
            worse = [a for a in args if not _finite(vals[a])]
            if worse:
                return ("value", worse[0])
            return ("op", j)

    def adjoint_origin(self, i: int, vals: Sequence[float], parts: Sequence[tuple[float, ...]], adj: Sequence[float]) -> tuple[str, int]:
        """Where the non-finite adjoint of id ``i`` comes from: ``("cotangent", output)``,
        ``("value", id)``, ``("op", j)`` (an op whose finite adjoint met a partial that
        made its contribution non-finite) or ``("sum", id)`` (finite contributions that
        overflowed)."""
        users: dict[int, list[int]] = {}
        for j, (_, _, args) in enumerate(self.ops):
            for a in set(args):
                users.setdefault(a, []).append(j)
        while True:
            nxt = None
            for j in reversed(users.get(i, [])):
                g = adj[self.first_op + j]
                for a, contrib, _ in self.contributions(j, vals, parts, g):
                    if a == i and not _finite(contrib):
                        nxt = j
                        break
                if nxt is not None:
                    break
            if nxt is None:
                if i in self.outputs and not _finite(adj[i]):
                    direct = [k for k, o in enumerate(self.outputs) if o == i]
                    return ("cotangent", direct[0])
                return ("sum", i)
            j = nxt
            g = adj[self.first_op + j]
            if not _finite(g):
                i = self.first_op + j
                continue
            _, _, args = self.ops[j]
            worse = [a for a in args if not _finite(vals[a])]
            if worse:
                return ("value", worse[0])
            return ("op", j)

    def describe(self, j: int, vals: Sequence[float]) -> tuple[str, list[float], float]:
        tag, name, args = self.ops[j]
        v = vals[self.first_op + j]
        if tag == 4:
            return f"where({_num(vals[args[0]])} {name} {_num(vals[args[1]])}, ...)", [vals[a] for a in args], v
        return _call(name, [vals[a] for a in args]), [vals[a] for a in args], v


# -- compiled calls ----------------------------------------------------------------------


def _row_inputs(data: Sequence[np.ndarray], per_row: Sequence[bool], sizes: Sequence[int], r: int) -> list[float]:
    x: list[float] = []
    for d, p, s in zip(data, per_row, sizes):
        x.extend((d[r * s : (r + 1) * s] if p else d[:s]).tolist())
    return x


def _where_input(names: Sequence[str], sizes: Sequence[int], k: int) -> tuple[str, int | None]:
    at = 0
    for name, s in zip(names, sizes):
        if k < at + s:
            return name, (k - at if s > 1 else None)
        at += s
    return "?", None


def _bad_rows(arrays: Sequence[np.ndarray], n: int) -> np.ndarray:
    bad = np.zeros(n, dtype=bool)
    for a in arrays:
        if a is None:
            continue
        a = np.asarray(a, dtype=float)
        if a.size == 0 or a.size % max(n, 1):
            continue
        bad |= ~np.isfinite(a.reshape(n, -1)).all(axis=1)
    return np.flatnonzero(bad)


def _finite_rows(data: Sequence[np.ndarray], per_row: Sequence[bool], sizes: Sequence[int], n: int) -> np.ndarray:
    """Per row, whether every input of it is finite."""
    ok = np.ones(n, dtype=bool)
    for d, p, s in zip(data, per_row, sizes):
        if p:
            ok &= np.isfinite(np.asarray(d).reshape(n, s)).all(axis=1)
        elif not np.isfinite(np.asarray(d)[:s]).all():
            ok[:] = False
    return ok


class Check:
    """One compiled call under the check: its arguments as the engine read them."""

    def __init__(self, F: Any, what: str, data: Sequence[np.ndarray], per_row: Sequence[bool], n: int, batch: tuple[int, ...], extra: Sequence[tuple[Sequence[np.ndarray], Sequence[bool], Sequence[int]]] = ()) -> None:
        self.F, self.what = F, getattr(F, "_debug_what", None) or what
        self.data, self.per_row, self.n, self.batch = data, per_row, n, batch
        # Tangents or cotangents: inputs too, for telling rows born bad from rows fed bad.
        self.extra = extra

    def split(self, rows: np.ndarray) -> np.ndarray:
        """The rows to explain: those whose inputs are all finite (a culprit op is
        certain there), else all of them (a non-finite input is)."""
        ok = _finite_rows(self.data, self.per_row, self.F._sizes, self.n)
        for d, p, s in self.extra:
            ok &= _finite_rows(d, p, s, self.n)
        born = rows[ok[rows]]
        return born if len(born) else rows

    def _row_label(self, r: int) -> str:
        if len(self.batch) <= 1:
            return str(r)
        return str(tuple(int(i) for i in np.unravel_index(r, self.batch)))

    def _rows_text(self, rows: np.ndarray) -> str:
        if self.batch == ():
            return ""
        shown = ", ".join(self._row_label(int(r)) for r in rows[:5])
        more = ", ..." if len(rows) > 5 else ""
        noun = "row" if len(rows) == 1 else "rows"
        return f", in {len(rows)} of {self.n} rows ({noun} {shown}{more})"

    def _on_row(self, r: int) -> str:
        return f"on row {self._row_label(r)}: " if self.batch != () else ""

    def raise_for(self, rows: np.ndarray, mode: str, seed: Callable[[int], Sequence[float]] | None = None, bad: Callable[[list[float]], int | None] | None = None) -> None:
        """Re-runs the first row in ``rows`` and raises for what it finds. ``mode`` is
        ``"value"``, ``"tangent"`` (``seed(r)``: the input tangents) or ``"adjoint"``
        (``seed(r)``: the output cotangent; ``bad(adjoints)`` the input to explain)."""
        F = self.F
        prog = F._debug_program()
        rows = self.split(rows)
        r = int(rows[0])
        x = _row_inputs(self.data, self.per_row, F._sizes, r)
        vals, parts = prog.forward(x)
        names, sizes = F._names, F._sizes
        head = f"wg.debug_nans: {self.what}: "
        rows_text = self._rows_text(rows)
        info: dict[str, Any] = {"rows": [int(i) for i in rows[:5]], "n_rows": len(rows)}
        origin: tuple[str, int] | None = None
        kind = "value"
        out_bad = [o for o in prog.outputs if not _finite(vals[o])]
        if out_bad:
            origin = prog.value_origin(out_bad[0], vals)
        elif mode == "tangent" and seed is not None:
            tan = prog.tangents(vals, parts, seed(r))
            tb = [o for o in prog.outputs if not _finite(tan[o])]
            if tb:
                kind = "tangent"
                origin = prog.tangent_origin(tb[0], vals, parts, tan)
                if origin[0] == "tangent":
                    name, el = _where_input(names, sizes, origin[1])
                    self._raise_input(head, rows_text, r, f"tangent {name!r}", el, seed(r)[origin[1]], info)
        elif mode == "adjoint" and seed is not None:
            ct = seed(r)
            adj = prog.adjoints(vals, parts, ct)
            k = bad(adj[: prog.n_inputs]) if bad is not None else None
            if k is not None:
                kind = "adjoint"
                origin = prog.adjoint_origin(k, vals, parts, adj)
                if origin[0] == "cotangent":
                    self._raise_input(head, rows_text, r, "the cotangent", origin[1] if len(ct) > 1 else None, ct[origin[1]], info)
                if origin[0] == "sum":
                    name, el = _where_input(names, sizes, origin[1]) if origin[1] < prog.n_inputs else ("an intermediate", None)
                    raise NonFiniteError(
                        f"{head}the adjoint of {name} overflowed as a sum of finite contributions{rows_text}",
                        kind="adjoint", **info,
                    )
        if origin is None:
            raise NonFiniteError(
                f"{head}a non-finite result{rows_text}, but re-running {self._on_row(r) or 'the point '}"
                "one instruction at a time gives finite numbers (it may differ in the last bits)",
                kind=mode, **info,
            )
        if origin[0] == "value":
            kind = "value"
            origin = prog.value_origin(origin[1], vals)
        if origin[0] == "input":
            name, el = _where_input(names, sizes, origin[1])
            self._raise_input(head, rows_text, r, f"argument {name!r}", el, x[origin[1]], info)
        if origin[0] == "const":
            c = vals[origin[1]]
            raise NonFiniteError(f"{head}the function uses the constant {_num(c)}{rows_text}", kind="value", **info)
        j = origin[1]
        op = prog.ops[j][1]
        site = prog.sites[j]
        call, operands, v = prog.describe(j, vals)
        if kind == "value":
            what = f"the value {_num(v)} was born in {op}"
            detail = f"{call} = {_num(v)}"
        elif kind == "tangent":
            what = f"a tangent became non-finite in {op}"
            detail = f"{call}, partials {', '.join(_num(p) for p in parts[j])}"
        else:
            what = f"an adjoint became non-finite in {op}"
            g = adj[prog.first_op + j]
            detail = f"{call}: its adjoint {_num(g)} times its partials {', '.join(_num(p) for p in parts[j])}"
        raise NonFiniteError(
            f"{head}{what}{_at(site)}{rows_text}; {self._on_row(r)}{detail}",
            kind=kind, op=op, site=site, operands=operands, **info,
        )

    def _raise_input(self, head: str, rows_text: str, r: int, name: str, el: int | None, v: float, info: dict[str, Any]) -> None:
        where = f"row {self._row_label(r)} of {name}" if self.batch != () else name
        if el is not None:
            where += f" (element {el})"
        raise NonFiniteError(
            f"{head}{where} is {_num(v)} (a non-finite input, not born in the function)"
            + (f"; non-finite results {rows_text.removeprefix(', ')}" if rows_text else ""),
            kind="input", argument=name, **info,
        )


def check_values(F: Any, what: str, data: Any, per_row: Any, n: int, batch: Any, values: np.ndarray, reduce: str) -> None:
    if reduce != "none":
        if np.isfinite(values).all():
            return
        values = F._c.values(data, per_row, n, "none")
        if np.isfinite(values).all():
            raise NonFiniteError(f"wg.debug_nans: {what}: the {reduce} over {n} rows overflowed to {values!r}", kind="value")
    rows = _bad_rows([values], n)
    if len(rows):
        Check(F, what, data, per_row, n, batch).raise_for(rows, "value")


def check_vjp(F: Any, what: str, data: Any, per_row: Any, n: int, batch: Any, values: Any, grads: Sequence[Any], cot: np.ndarray, cot_per_row: bool, wrt: Sequence[bool], reduce: str) -> None:
    arrays = [values] + [g for g in grads if g is not None]
    if all(np.isfinite(np.asarray(a, dtype=float)).all() for a in arrays):
        return
    if reduce != "none":
        values, grads = F._c.vjp(data, per_row, n, cot, cot_per_row, list(wrt), "none")
        arrays = [values] + [g for g in grads if g is not None]
    rows = _bad_rows(arrays, n)
    if not len(rows):
        raise NonFiniteError(f"wg.debug_nans: {what}: the {reduce} over {n} rows overflowed", kind="adjoint")
    m = F._c.n_outputs
    flags = [i for i, w in enumerate(wrt) for _ in range(F._sizes[i]) if w]
    want: set[int] = set()
    at = 0
    for i, s in enumerate(F._sizes):
        if wrt[i]:
            want.update(range(at, at + s))
        at += s

    def seed(r: int) -> list[float]:
        return [float(c) for c in (cot[r * m : (r + 1) * m] if cot_per_row else cot[:m])]

    def bad(adj: list[float]) -> int | None:
        return next((k for k in sorted(want) if not _finite(adj[k])), None)

    del flags
    m_sizes = [m]
    Check(F, what, data, per_row, n, batch, [([cot], [cot_per_row], m_sizes)]).raise_for(rows, "adjoint", seed, bad)


def check_jvp(F: Any, what: str, data: Any, per_row: Any, n: int, batch: Any, values: Any, tangents: Any, tdata: Any, tper: Any, reduce: str) -> None:
    if np.isfinite(values).all() and np.isfinite(tangents).all():
        return
    if reduce != "none":
        values, tangents = F._c.jvp(data, per_row, n, tdata, tper, "none")
    rows = _bad_rows([values, tangents], n)
    if not len(rows):
        raise NonFiniteError(f"wg.debug_nans: {what}: the {reduce} over {n} rows overflowed", kind="tangent")

    def seed(r: int) -> list[float]:
        return _row_inputs(tdata, tper, F._sizes, r)

    Check(F, what, data, per_row, n, batch, [(tdata, tper, F._sizes)]).raise_for(rows, "tangent", seed)


def check_jacobian(F: Any, what: str, data: Any, per_row: Any, n: int, batch: Any, values: Any, jac: np.ndarray, wrt: Sequence[bool]) -> None:
    if np.isfinite(values).all() and np.isfinite(jac).all():
        return
    rows = _bad_rows([values, jac], n)
    m = F._c.n_outputs
    J = jac.reshape(max(n, 1), m, -1)
    r0 = int(rows[0])
    bad_out = int(np.flatnonzero(~np.isfinite(J[r0]).all(axis=1))[0]) if not np.isfinite(J[r0]).all() else 0
    cot = np.zeros(m)
    cot[bad_out] = 1.0
    want: list[int] = []
    at = 0
    for i, s in enumerate(F._sizes):
        if wrt[i]:
            want.extend(range(at, at + s))
        at += s

    def bad(adj: list[float]) -> int | None:
        return next((k for k in want if not _finite(adj[k])), None)

    Check(F, what, data, per_row, n, batch).raise_for(rows, "adjoint", lambda r: cot.tolist(), bad)


def check_hessian(F: Any, what: str, data: Any, per_row: Any, n: int, batch: Any, v: Any, g: Any, h: Any, wrt: Sequence[bool]) -> None:
    if np.isfinite(v).all() and np.isfinite(g).all() and np.isfinite(h).all():
        return
    rows = _bad_rows([v, g], n)
    if len(rows):
        want: list[int] = []
        at = 0
        for i, s in enumerate(F._sizes):
            if wrt[i]:
                want.extend(range(at, at + s))
            at += s
        Check(F, what, data, per_row, n, batch).raise_for(
            rows, "adjoint", lambda r: [1.0], lambda adj: next((k for k in want if not _finite(adj[k])), None)
        )
    rows = _bad_rows([h], n)
    c = Check(F, what, data, per_row, n, batch)
    raise NonFiniteError(
        f"wg.debug_nans: {c.what}: the Hessian is not finite{c._rows_text(rows)} although values and "
        "gradients are (a second-order term; its op is not located)",
        kind="adjoint", rows=[int(i) for i in rows[:5]], n_rows=len(rows),
    )


def explain(F: Any, args: Sequence[Any], cotangent: Any = None) -> str:
    """The instruction list of ``F`` at one point: value, partials and adjoint of every
    instruction (see :meth:`wengert.Compiled.explain`)."""
    data, per_row, n, batch, _ = F._prepare(args)
    if n != 1:
        raise ValueError(f"{F.__name__}.explain takes one point (one row), got a batch of shape {batch}")
    prog = F._debug_program(data, per_row, n)  # the trace of the row's branch pattern
    x = _row_inputs(data, per_row, F._sizes, 0)
    vals, parts = prog.forward(x)
    m = len(prog.outputs)
    ct = [1.0] * m if cotangent is None else [float(c) for c in np.asarray(cotangent, dtype=float).reshape(-1)]
    if len(ct) != m:
        raise ValueError(f"{F.__name__}.explain: cotangent needs {m} numbers, got {len(ct)}")
    adj = prog.adjoints(vals, parts, ct)

    def ref(i: int) -> str:
        k = prog.kind[i]
        if k[0] == "input":
            name, el = _where_input(F._names, F._sizes, k[1])
            return name if el is None else f"{name}[{el}]"
        if k[0] == "const":
            return _num(k[1])
        return f"%{k[1]}"

    lines = [f"{'':5} {'instruction':<32} {'value':>12} {'adjoint':>12}  partials / line"]
    for k in range(prog.n_inputs):
        lines.append(f"{'':5} {ref(k) + ' (input)':<32} {vals[k]:>12.6g} {adj[k]:>12.6g}")
    for j, (tag, name, args) in enumerate(prog.ops):
        i = prog.first_op + j
        if tag == 4:
            text = f"where({ref(args[0])} {name} {ref(args[1])}, {ref(args[2])}, {ref(args[3])})"
        else:
            text = f"{name}({', '.join(ref(a) for a in args)})"
        p = ", ".join(f"{d:.6g}" for d in parts[j])
        site = prog.sites[j] or ""
        flag = "  <- not finite" if not (_finite(vals[i]) and _finite(adj[i])) else ""
        lines.append(f"%{j:<4} {text:<32} {vals[i]:>12.6g} {adj[i]:>12.6g}  [{p}] {site}{flag}")
    outs = ", ".join(ref(o) for o in prog.outputs)
    lines.append(f"{'':5} outputs: {outs}")
    return "\n".join(lines)
