"""What of a compiled function travels in a pickle besides its program.

A pickled :class:`~wengert.Compiled` always carries its compiled program, which is enough
to evaluate values and every derivative for the traced shapes in any process. The Python
function travels too, but only when another process can really load it: pickle stores a
function as a reference (module and name), which resolves elsewhere only for a function
defined at the top level of a module that process can import (also under
``@wg.compile``, where the module's name holds the compiled function). A ``def`` in
``__main__`` (a script, a notebook), a lambda or a nested function is left behind, and so
is a function whose module the loading process cannot import. Without the function the
program still runs, but nothing can be traced again: what needs the function (calling
the compiled function on ``Var``, ``Dual`` or traced numbers, any new trace) raises a
TypeError that says why the function is missing."""

from __future__ import annotations

import importlib
import pickle
import sys
from collections.abc import Callable
from typing import Any, cast

# Modules whose names mean "the program that was started", different in every process:
# a worker's ``__main__`` is not the script that pickled (a spawned child runs it as
# ``__mp_main__``, a Dask worker on another machine not at all), so a reference into it
# could resolve to nothing or to another function of the same name.
_MAIN_MODULES = ("__main__", "__mp_main__")


def function_state(fn: Callable[..., Any]) -> tuple[bytes | None, str | None]:
    """``(reference, None)`` when ``fn`` pickles by reference to a module another process
    can import, else ``(None, why not)``. The reference is pickled on its own, so that a
    process that cannot import the module still loads the program."""
    module = getattr(fn, "__module__", None)
    if module in _MAIN_MODULES:
        return None, (
            f"it was defined in {module}, the script or notebook that compiled it, which "
            "another process cannot import"
        )
    mod = sys.modules.get(module) if isinstance(module, str) else None
    if not isinstance(module, str) or mod is None or getattr(mod, "__spec__", None) is None:
        return None, "it does not belong to a module that another process can import"
    try:
        ref = pickle.dumps(fn)
        if pickle.loads(ref) is fn:
            return ref, None
    except Exception:  # lambdas, nested functions, unpicklable callables
        pass
    # @wg.compile at module level: the module's name now holds the compiled function,
    # whose Python function the loading process finds there.
    qualname = getattr(fn, "__qualname__", "")
    try:
        if _decorated(module, qualname) is fn:
            return pickle.dumps(_Decorated(module, qualname)), None
    except Exception:
        pass
    return None, (
        "pickle cannot refer to it by its module and name (a lambda, a nested function, or "
        "a callable object)"
    )


def _decorated(module: str, qualname: str) -> Callable[..., Any]:
    """The Python function of the compiled function ``module.qualname``."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    fn = getattr(obj, "_fn", None)
    if not callable(fn):
        raise AttributeError(f"{module}.{qualname} is not a compiled function holding its function")
    return cast("Callable[..., Any]", fn)


class _Decorated:
    """Pickles as a reference to the function of a module-level ``@wg.compile``."""

    def __init__(self, module: str, qualname: str) -> None:
        self.module, self.qualname = module, qualname

    def __reduce__(self) -> tuple[Callable[[str, str], Callable[..., Any]], tuple[str, str]]:
        return _decorated, (self.module, self.qualname)


def function_from_state(ref: Any, note: Any) -> tuple[Callable[..., Any] | None, str | None]:
    """The function (or None) and why it is missing, from what :func:`function_state`
    stored. Also reads pickles that stored the function object itself."""
    if ref is None:
        return None, note if isinstance(note, str) else "it did not travel with the pickle"
    if callable(ref):
        return ref, None
    if not isinstance(ref, bytes):
        raise TypeError("not a pickled wg.compile function: malformed function reference")
    try:
        fn = pickle.loads(ref)
    except Exception as e:  # its module is not importable here, or changed
        return None, f"it could not be loaded in this process ({type(e).__name__}: {e})"
    if not callable(fn):
        raise TypeError("not a pickled wg.compile function: its function is not callable")
    return fn, None


def missing(name: str, note: str | None, needs: str) -> str:
    """The message for a compiled function unpickled without its Python function."""
    return (
        f"{name} was unpickled without its Python function: {note}. Only its compiled "
        f"program is here, and {needs} needs the function. To have it travel, define the "
        "function at the top level of a module that this process can import (for Dask: "
        "installed on the workers or sent with client.upload_file); or do this in the "
        "process that compiled it"
    )
