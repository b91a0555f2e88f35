"""benches/run.py's agreement checks: every installed peer computes what wengert computes.

CI runs the checks only (no timing, nothing timed is asserted): the quick mode in a
subprocess, as a user runs it. With only the test extra installed the peers are absent,
which the script reports and does not fail on.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

RUN = Path(__file__).resolve().parent.parent / "benches" / "run.py"


def test_run_check_quick_agrees():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__import__("wengert").__file__).parent.parent),
                                                    env.get("PYTHONPATH")) if p)
    r = subprocess.run([sys.executable, str(RUN), "--check", "--quick"], capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "every installed peer agrees with wengert" in r.stdout
    for key in ("one-row call", "seed example", "Rosenbrock-16", "RBF regression", "batch Hessian", "batch hvp", "piecewise",
                "MLP", "long function", "eager chain"):
        assert key in r.stdout, key


def _load_run():
    spec = importlib.util.spec_from_file_location("wengert_bench_run", RUN)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_disagreeing_peer_is_marked_wrong(capsys):
    run = _load_run()
    x = np.linspace(0.0, 1.0, 5)
    w = run.Workload("t", "test", "row", 5, 1e9, "ns/row", 1e-12, 0.0)
    w.add("reference", lambda: (x * x, 2 * x), wengert=True)
    w.add("agrees", lambda: (x * x, 2 * x))
    w.add("off by one ulp too many", lambda: (x * x, 2 * x * (1 + 1e-9)))
    w.add("wrong shape", lambda: (x * x, (2 * x)[:4]))
    w.add("raises", lambda: 1 / 0)
    assert run.check(w) == 3
    assert [i.status[:6] for i in w.impls] == ["", "", "WRONG", "WRONG", "failed"]
    assert "DISAGREES WITH WENGERT" in capsys.readouterr().out
