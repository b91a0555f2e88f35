"""The examples in examples/ run in --quick mode and reach the quality they claim.

Each example's ``main(argv)`` returns the numbers it prints; the tests assert on those
(a loss reached, an accuracy, an error bound), not only that the script ran. The Dask
example runs as a subprocess, as a user runs it: its compiled functions live in
``__main__`` and its worker processes are real processes.
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import wengert as wg

for mod in ("matplotlib", "scipy", "tqdm"):  # the `examples` extra
    pytest.importorskip(mod, reason=f'examples need {mod}: pip install ".[examples]"')

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EPS = np.finfo(float).eps


def run(name, out):
    """Import examples/<name>.py (not as __main__) and run its main in quick mode."""
    spec = importlib.util.spec_from_file_location(f"wengert_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--out", str(out)])
    return module, result


def test_every_example_says_how_to_run_it():
    scripts = sorted(p for p in EXAMPLES.glob("*.py"))
    assert len(scripts) == 7
    for p in scripts:
        assert f"python examples/{p.name} [--quick]" in p.read_text(), p.name


def test_basis_regression(tmp_path):
    _, r = run("basis_regression", tmp_path)
    for family, threshold in [("tanh", 0.013), ("rbf", 0.013), ("power", 0.05)]:
        assert r[family]["grad_rel_error"] < 1e-12, family  # against the chain rule by hand
        assert r[family]["mse"] < threshold, family  # the noise variance is 0.01
    assert (tmp_path / "basis_regression.png").stat().st_size > 0


def test_mlp_moons(tmp_path):
    _, r = run("mlp_moons", tmp_path)
    assert r["accuracy"] > 0.95
    # The eager Var run and the compiled run take the same steps from the same start.
    assert r["eager_vs_compiled"] < 1e-12
    assert (tmp_path / "mlp_moons.png").stat().st_size > 0


def test_loss_landscape(tmp_path):
    _, r = run("loss_landscape", tmp_path)
    # Central differences on a grid of step 0.03 agree to O(h^2) with the gradients.
    assert r["fd_error"] < 1e-2
    # The data were made with (w1, w2) = (1.5, 2.0); (-1.5, -2.0) fits as well.
    assert np.allclose(np.abs(r["argmin"]), (1.5, 2.0), atol=0.1)
    assert (tmp_path / "loss_landscape.png").stat().st_size > 0


def test_finite_differences(tmp_path):
    _, r = run("finite_differences", tmp_path)
    assert abs(r["exact"] - r["by_hand"]) <= 2 * EPS * abs(r["by_hand"])
    assert r["min_central"] < 1e-9
    assert r["min_forward"] > r["min_central"]
    assert abs(np.log10(r["h_central"] / EPS ** (1 / 3))) < 1  # within a decade
    assert abs(np.log10(r["h_forward"] / EPS ** (1 / 2))) < 1
    assert (tmp_path / "finite_differences.png").stat().st_size > 0


def test_scipy_rosenbrock(tmp_path):
    _, r = run("scipy_rosenbrock", tmp_path)
    for method in ("bfgs", "newton_cg"):
        assert r[method]["dims"] == 100
        assert r[method]["max_error"] < 1e-5, method  # converged to all ones
    # Newton-CG ran on F.hvp (hessp=), whose products are the exact Hessian's.
    assert r["newton_cg"]["hvp_calls"] > 0
    assert r["newton_cg"]["hvp_error"] < 1e-9
    assert (tmp_path / "scipy_rosenbrock.png").stat().st_size > 0


def test_graph(tmp_path):
    _, r = run("graph", tmp_path)
    dot = r["dot"]
    for op in ("div", "sin", "exp", "add", "sub", "mul"):
        assert f'label="{op}"' in dot, op
    for number in ("2.016647", "3.011843", "-13.723962"):
        assert number in dot, number
    assert (tmp_path / "graph.dot").read_text() == dot
    if shutil.which("dot"):
        assert (tmp_path / "graph.png").stat().st_size > 0


def _misaligned_input_fails():
    """Whether the installed wengert rejects a float64 array that is not 8-byte aligned
    (as arrays arriving over a socket are), instead of copying it."""
    x = np.frombuffer(bytearray(8 * 4 + 1), dtype=np.float64, offset=1, count=4)
    assert not x.flags.aligned
    try:
        wg.compile(lambda t: t * t).grad(x)
    except ValueError as e:
        return "misaligned" in str(e)
    return False


@pytest.mark.xfail(
    _misaligned_input_fails(),
    strict=False,
    reason="wengert rejects the unaligned arrays Dask delivers to workers "
    "('The given array is not contiguous or is misaligned'); being fixed in the library",
)
def test_dask_scaling(tmp_path):
    pytest.importorskip("distributed")
    env = dict(os.environ)
    # Workers inherit the environment: make a PYTHONPATH=python (a worktree's sources) absolute.
    if env.get("PYTHONPATH"):
        paths = env["PYTHONPATH"].split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in paths)
    p = subprocess.run(
        [sys.executable, str(EXAMPLES / "dask_scaling.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    rows = float(re.search(r"max \|cluster - local\| = (\S+)", p.stdout).group(1))
    train = float(re.search(r"max relative difference = (\S+)", p.stdout).group(1))
    assert rows == 0.0  # per-row results do not depend on where the rows ran
    assert train < 1e-12  # the sum over chunks only reorders the additions
    assert (tmp_path / "dask_scaling.png").stat().st_size > 0
