"""The hand-written stubs (python/wengert/_core.pyi) match the built module and type
ordinary user code precisely."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ALLOWLIST = Path(__file__).with_name("stubtest_allowlist.txt")


def _run(args, cwd):
    r = subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    return r.returncode, r.stdout + r.stderr


def test_stubtest(tmp_path):
    args = ["mypy.stubtest", "wengert._core", "--mypy-config-file", str(tmp_path / "none.ini")]
    (tmp_path / "none.ini").write_text("[mypy]\n")
    if ALLOWLIST.exists():
        args += ["--allowlist", str(ALLOWLIST)]
    code, out = _run(args, cwd=tmp_path)  # cwd away from the source tree: test the install
    assert code == 0, out


def test_stubs_type_user_code(tmp_path):
    (tmp_path / "use.py").write_text(
        textwrap.dedent(
            """
            from typing import Any, assert_type
            import numpy as np
            import numpy.typing as npt
            import wengert as wg
            from wengert import _core

            x = wg.Var(1.5)
            assert_type(wg.sin(x) * 2.0 + np.float64(1.0) * x, wg.Var)
            assert_type(2 ** x - x / 3, wg.Var)
            assert_type(wg.sin(1.0), float)
            assert_type(wg.exp(wg.Dual(1.0).deriv()), wg.Dual)
            assert_type(wg.atan2(1.0, x), wg.Var)
            assert_type(wg.maximum(wg.Dual(1.0), 2), wg.Dual)
            assert_type(wg.hypot(1.0, 2), float)
            assert_type(wg.sin(np.array([1.0])), npt.NDArray[Any])
            assert_type(x.grad, float)
            assert_type(x < 2.0, bool)
            assert_type(_core.var_gradient(x * x, [x]), list[float])
            x.data -= 0.1 * x.grad
            x.value = np.float32(2.0)
            """
        )
    )
    code, out = _run(["mypy", "--strict", "--no-incremental", "use.py"], cwd=tmp_path)
    assert code == 0, out


def test_transforms_and_compiled_functions_are_typed(tmp_path):
    # assert_type pins what a checker infers; a "type: ignore[code]" on a misuse must be
    # needed (--strict warns about unused ignores), so each one proves an error is caught.
    (tmp_path / "use.py").write_text(
        textwrap.dedent(
            """
            from collections.abc import Callable
            from typing import Any, assert_type
            import numpy as np
            import numpy.typing as npt
            import wengert as wg

            V = npt.NDArray[np.float64] | Any  # a batch of results, or one point's scalar

            def f(x: float, y: float, /) -> float:
                return x * y

            def named(x: float, y: float) -> Any:
                return x * wg.sin(y)

            def rosen(x: npt.NDArray[Any], /) -> Any:
                return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(2))

            X = np.ones((10, 3))
            F = wg.compile(f)
            R = wg.compile(rosen, shapes=[3])
            assert_type(F, wg.Compiled)
            assert_type(wg.compile(shapes=[3, ()]), Callable[[Callable[..., Any]], wg.Compiled])

            @wg.compile(shapes=[3])
            def decorated(x: npt.NDArray[Any]) -> Any:
                return x[0] * x[1]

            assert_type(decorated, wg.Compiled)
            assert_type(F(X[:, 0], 2.0), V)
            assert_type(F(X[:, 0], 2.0, reduce="mean"), V)
            assert_type(F(wg.Var(1.0), 2.0), Any)  # on Var, Dual or traced numbers: f's result
            assert_type(F.value_and_grad(X[:, 0], 1.0), tuple[V, V])
            assert_type(F.value_and_grad(X[:, 0], 1.0, wrt=(0, 1)), tuple[V, tuple[V, ...]])
            assert_type(F.grad(X[:, 0], 1.0, wrt=np.int64(1), reduce="sum"), V)
            assert_type(F.grad(X[:, 0], 1.0, wrt=[0, 1]), tuple[V, ...])
            assert_type(R.jacobian(X), V)
            assert_type(F.jacobian(X[:, 0], 1.0, wrt=(1, 0)), tuple[V, ...])
            assert_type(R.hessian(X), V)
            assert_type(F.hessian(1.0, 2.0, wrt=(0, 1)), tuple[tuple[V, ...], ...])
            assert_type(F.jvp((1.0, 2.0), (1.0, 0.0), reduce="sum"), tuple[V, V])
            assert_type(F.vjp((X[:, 0], 2.0), np.ones(10)), tuple[V, tuple[V, ...]])
            assert_type(R(X)[0], Any)
            assert_type(F.to_dot(), str)
            assert_type(F.n_instructions, int)

            # Transforms keep f's parameters; results are Any (floats and arrays at the top
            # level, Var, Dual or traced numbers inside another transform), with tuples
            # where wrt is a tuple.
            assert_type(wg.grad(f), Callable[[float, float], Any])
            assert_type(wg.grad(f, wrt=(0, 1)), Callable[[float, float], tuple[Any, ...]])
            assert_type(wg.value_and_grad(f), Callable[[float, float], tuple[Any, Any]])
            assert_type(wg.value_and_grad(f, wrt=(0, 1)), Callable[[float, float], tuple[Any, tuple[Any, ...]]])
            assert_type(wg.jacobian(rosen), Callable[[npt.NDArray[Any]], Any])
            assert_type(wg.jacobian(f, wrt=[0, 1]), Callable[[float, float], tuple[Any, ...]])
            assert_type(wg.hessian(rosen), Callable[[npt.NDArray[Any]], Any])
            assert_type(wg.hessian(f, wrt=(0, 1)), Callable[[float, float], tuple[tuple[Any, ...], ...]])
            assert_type(wg.derivative(wg.sin), Callable[[Any], Any])
            assert_type(wg.jvp(f, (1.0, 2.0), (1.0, 0.0)), tuple[Any, Any])
            assert_type(wg.vjp(f, (1.0, 2.0), 1.0), tuple[Any, tuple[Any, ...]])
            assert_type(wg.grad(wg.grad(lambda t: t ** 3))(2.0), Any)
            assert_type(wg.grad(F)(X[:, 0], 2.0), Any)
            x = wg.Var(1.0)
            assert_type(wg.grad(x * x, x), float)
            assert_type(wg.grad(x * x, [x]), list[float])
            assert_type(wg.check_grad(f, 1.0, 2.0), float)

            # Misuse the checker catches.
            F.grad(X[:, 0], 1.0, reduce="summ")  # type: ignore[call-overload]
            F.grad(X[:, 0], 1.0, wrt="x")  # type: ignore[call-overload]
            F(X[:, 0], 1.0, reduce="all")  # type: ignore[call-overload]
            wg.grad(f)(1.0)  # type: ignore[call-arg]
            wg.value_and_grad(named)(x=1.0, z=2.0)  # type: ignore[call-arg]
            wg.compile(f, shapes="x")  # type: ignore[arg-type]
            """
        )
    )
    code, out = _run(["mypy", "--strict", "--no-incremental", "use.py"], cwd=tmp_path)
    assert code == 0, out
