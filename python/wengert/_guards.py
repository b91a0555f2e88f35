"""Python control flow in ``wg.compile``: one trace per branch pattern, rows dispatched.

While a function is traced from the numbers of one row (its *witness*), the truth value
of a traced comparison (``if x > 0``, ``while``, ``max``, ``and``...) is that row's
outcome, recorded by the Rust core as a *guard* (``rust/guard.rs``). The trace is then
exact for every row whose guards come out the same way: Python would run the same
operations on it. Such a trace is a :class:`Variant`; it is compiled with one extra,
value-only output, its *flag* (1 where every guard holds as recorded, 0 elsewhere), at
the cost of a comparison and a select per guard; and the flag alone is compiled as the
*check* program. A call first runs the first variant's extended program over every row
in one pass that sums the flag in registers instead of storing it: when the sum says
every row passed, its outputs are the answer (the extended program computes them with
the plain program's instructions, so the bits are the same). Otherwise rows are
dispatched: when the check costs at most a tenth of the function (guards on inputs or
cheap expressions of them) it runs as a pass of its own and each variant's plain
program runs on the rows it serves; otherwise the flag rides along in the extended
program (a while loop's guards are the function itself).

Evaluation (:meth:`Dispatcher.per_row`, :meth:`Dispatcher.partition`) runs the first
variant over every row; rows whose flag is 0 are gathered and tried against the next
cached variant, and rows no cached variant accepts are traced from the first of them,
which gives a new variant (cached, at most :data:`MAX_VARIANTS` per function). Each row
thus gets the trace of its own branch pattern: what calling the Python function on that
row gives, the same bits whatever else is in the batch.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable, Sequence

import numpy as np

from . import _core

#: The most branch patterns (traces) one compiled function caches. Past it, evaluation
#: raises: a function whose rows take that many different paths is better written with
#: ``wg.where``, which records one branch-free trace.
MAX_VARIANTS = 64


class VariantLimit(ValueError):
    """More branch patterns than :data:`MAX_VARIANTS`."""


class Variant:
    """One trace: its compiled programs, and (while it lives) the trace itself.

    ``plain`` computes the function's outputs; for a trace with guards, ``ext`` computes
    them followed by the flag. ``plain`` is compiled on first use (Jacobians and
    Hessians need it) when the trace is at hand."""

    def __init__(
        self, trace: Any, outputs: list[Any], n_guards: int, from_row: bool = False,
        sites: list[str | None] | None = None,
    ) -> None:
        self.trace: Any = trace
        self.outputs = outputs
        self.n_outputs = len(outputs)
        # A trace made from a row always takes part in dispatch, even with no guard (its
        # flag is then 1 everywhere): a function that decided differently without a row.
        self.guarded = n_guards > 0 or from_row
        self.n_guards = n_guards
        self._plain: Any = trace.compile(outputs)
        self.sites = self._checked_sites(sites)
        self.program: Any = None  # wg.debug_nans's re-run of plain, built on first need
        self.ext: Any = trace.compile(outputs, True) if self.guarded else None
        self.check: Any = trace.compile([], True) if self.guarded else None
        self._decide()
        self.trace = self.outputs = None  # type: ignore[assignment]

    def _decide(self) -> None:
        # For rows off the first variant, the check runs as a pass of its own when it
        # costs at most a tenth of the function (guards on inputs or on cheap expressions
        # of them); otherwise it rides along in the extended program (a while loop's
        # guards are the function itself).
        self.cheap = self.guarded and 10 * self.check.cost <= self._plain.cost

    def _checked_sites(self, sites: Any) -> list[str | None]:
        # The source line of each instruction of plain; a pickle without them (or with
        # malformed ones) just reports lines as unknown.
        n = self._plain.n_instructions
        if isinstance(sites, (list, tuple)) and len(sites) == n:
            return [x if isinstance(x, str) else None for x in sites]
        return [None] * n

    @property
    def plain(self) -> Any:
        return self._plain

    def state(self) -> tuple[bytes | None, bytes, int, bytes | None, list[str | None]]:
        return (
            None if self.ext is None else self.ext.to_bytes(),
            self.plain.to_bytes(),
            self.n_guards,
            None if self.check is None else self.check.to_bytes(),
            self.sites,
        )

    @classmethod
    def from_state(cls, s: Any, sizes: list[int]) -> Variant:
        if not isinstance(s, (tuple, list)) or len(s) not in (3, 4, 5):
            raise TypeError("not a pickled wg.compile function: malformed branch patterns")
        ext, plain, n_guards = s[:3]
        check = s[3] if len(s) >= 4 else None
        if (
            not isinstance(plain, bytes)
            or not (ext is None or isinstance(ext, bytes))
            or isinstance(check, bytes) != (ext is not None)
            or not isinstance(n_guards, int)
        ):
            raise TypeError("not a pickled wg.compile function: malformed branch patterns")
        v = cls.__new__(cls)
        v.trace = None
        v.outputs = None  # type: ignore[assignment]
        v.n_guards = n_guards
        v.guarded = ext is not None
        v._plain = _core._Compiled.from_bytes(plain, sizes)
        v.n_outputs = v._plain.n_outputs
        v.sites = v._checked_sites(s[4] if len(s) == 5 else None)
        v.program = None
        v.ext = None if ext is None else _core._Compiled.from_bytes(ext, sizes)
        v.check = None if check is None else _core._Compiled.from_bytes(check, sizes)
        if v.ext is not None and (v.ext.n_outputs != v.n_outputs + 1 or v.check.n_outputs != 1):
            raise ValueError("not a pickled wg.compile function: a pattern's check is malformed")
        v._decide()
        return v


def gather(data: Sequence[np.ndarray], per_row: Sequence[bool], sizes: Sequence[int], idx: np.ndarray | None) -> list[np.ndarray]:
    """The rows ``idx`` of each per-row argument (shared ones as they are)."""
    if idx is None:
        return list(data)
    # take along the first axis: several times faster than fancy indexing of a 2-D view.
    return [
        (d.take(idx) if s == 1 else d.reshape(-1, s).take(idx, axis=0).reshape(-1)) if p else d
        for d, p, s in zip(data, per_row, sizes)
    ]


def witness(data: Sequence[np.ndarray], per_row: Sequence[bool], sizes: Sequence[int], row: int) -> list[float]:
    """The flattened inputs of one row."""
    parts = [d.reshape(-1, s)[row] if p else d for d, p, s in zip(data, per_row, sizes)]
    return np.concatenate(parts).tolist() if parts else []


class Dispatcher:
    """The variants of one function and how new ones are made.

    ``make(row_inputs)`` traces the function from one row's flattened inputs and returns
    a :class:`Variant`, or raises (when the Python function is not at hand)."""

    def __init__(self, variants: list[Variant], make: Callable[[list[float]], Variant], name: str) -> None:
        self.variants = variants
        self.make = make
        self.name = name
        #: Whether the last :meth:`per_row` found rows off the first variant.
        self.mixed = False

    def new_variant(self, data: Sequence[np.ndarray], per_row: Sequence[bool], sizes: Sequence[int], row: int) -> Variant:
        if len(self.variants) >= MAX_VARIANTS:
            raise VariantLimit(
                f"{self.name}: the rows follow more than {MAX_VARIANTS} different branch "
                f"patterns (each is a trace of its own, and wg.compile caches at most "
                f"{MAX_VARIANTS} per function); write the branches as wg.where(cond, a, b) "
                "(and wg.maximum / wg.minimum for max / min), which records one branch-free trace"
            )
        v = self.make(witness(data, per_row, sizes, row))
        self.variants.append(v)
        return v

    def partition(
        self, data: Sequence[np.ndarray], per_row: Sequence[bool], sizes: Sequence[int], n: int
    ) -> list[tuple[Variant, np.ndarray | None]]:
        """Each variant with the rows it serves (None: all rows), every row once."""
        first = self.variants[0] if self.variants else self.new_variant(data, per_row, sizes, 0)
        if not first.guarded:
            return [(first, None)]
        out: list[tuple[Variant, np.ndarray | None]] = []
        remaining: np.ndarray | None = None
        k = 0
        while True:
            fresh = k == len(self.variants)
            if fresh:
                self.new_variant(data, per_row, sizes, 0 if remaining is None else int(remaining[0]))
            v = self.variants[k]
            sub = gather(data, per_row, sizes, remaining)
            rows = n if remaining is None else len(remaining)
            prog = v.check if v.cheap else v.ext
            flags = prog.values(sub, list(per_row), rows, "none").reshape(rows, -1)[:, -1] == 1.0
            k += 1
            if flags.all():
                out.append((v, remaining))
                return out
            if fresh and not flags[0]:
                raise RuntimeError(
                    f"internal error in wengert (please report it): {self.name}: a row fails "
                    "the guards of the trace made from it"
                )
            if flags.any():
                idx = np.flatnonzero(flags)
                out.append((v, idx if remaining is None else remaining[idx]))
            bad = np.flatnonzero(~flags)
            remaining = bad if remaining is None else remaining[bad]

    def per_row(
        self,
        data: Sequence[np.ndarray],
        per_row: Sequence[bool],
        sizes: Sequence[int],
        n: int,
        run: Callable[[Variant, list[np.ndarray], int, np.ndarray | None], list[np.ndarray]],
        widths: Sequence[int],
    ) -> list[np.ndarray]:
        """Per-row results of ``run`` with each row served by its own variant.

        ``run(variant, data, rows, idx)`` runs one variant's extended program (outputs and
        flag) on the gathered rows ``idx`` and returns per-row arrays, each ``rows *
        widths[j]`` long, the first of them the values with the flag as the last column.
        Returned: the same arrays with the flag column dropped from the values."""
        first = self.variants[0] if self.variants else self.new_variant(data, per_row, sizes, 0)
        assert first.guarded
        result: list[np.ndarray] | None = None
        remaining: np.ndarray | None = None
        k = 0
        while True:
            fresh = k == len(self.variants)
            if fresh:
                self.new_variant(data, per_row, sizes, 0 if remaining is None else int(remaining[0]))
            v = self.variants[k]
            k += 1
            rows = n if remaining is None else len(remaining)
            got = run(v, gather(data, per_row, sizes, remaining), rows, remaining)
            vals = got[0].reshape(rows, widths[0])
            flags = vals[:, -1] == 1.0
            got = [vals[:, :-1]] + [g.reshape(rows, w) for g, w in zip(got[1:], widths[1:])]
            if result is None:
                self.mixed = not flags.all()
                if not self.mixed:
                    return [np.ascontiguousarray(g).reshape(-1) for g in got]
                result = [np.empty((n, g.shape[1])) for g in got]
            if fresh and not flags[0]:
                raise RuntimeError(
                    f"internal error in wengert (please report it): {self.name}: a row fails "
                    "the guards of the trace made from it"
                )
            ok = np.flatnonzero(flags)
            at = ok if remaining is None else remaining[ok]
            for r, g in zip(result, got):
                if r.shape[1] == 1:  # 1-D take and scatter: far faster than on (n, 1) views
                    r.reshape(-1)[at] = g.reshape(-1).take(ok)
                else:
                    r[at] = g.take(ok, axis=0)
            if flags.all():
                return [r.reshape(-1) for r in result]
            bad = np.flatnonzero(~flags)
            remaining = bad if remaining is None else remaining[bad]
