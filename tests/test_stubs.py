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
