"""A pickled compiled function carries its program always, and its Python function only
when the loading process can import it: functions compiled in a script (``__main__``),
lambdas, and functions of modules the loader lacks still load and evaluate elsewhere,
and say why when something needs the function they left behind."""

import multiprocessing
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import wengert as wg

# What the scripts below compile, also compiled here to compare with (same code, same
# program, so the same numbers bit for bit).
SOURCE = textwrap.dedent(
    """
    import wengert as wg

    def f(x, y):
        return x * wg.sin(y) + x ** 2 / y

    def rosen(x):
        return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(2))

    @wg.compile(shapes=[3])
    def decorated(x):
        return x[0] * wg.exp(x[1]) - x[2] ** 2
    """
)
ns: dict = {}
exec(SOURCE, ns)
X, Y = np.linspace(0.5, 2.0, 7), np.linspace(1.0, 3.0, 7)
P = np.random.default_rng(0).uniform(-2, 2, (5, 3))


def _run(script, *args, cwd, path=()):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, path), *sys.path])}
    r = subprocess.run(
        [sys.executable, str(script), *map(str, args)], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    return r.stdout


LOAD = textwrap.dedent(
    """
    import pickle, sys
    import numpy as np
    import wengert as wg

    with open(sys.argv[1], "rb") as fh:
        fs = pickle.load(fh)
    x, y = np.linspace(0.5, 2.0, 7), np.linspace(1.0, 3.0, 7)
    p = np.random.default_rng(0).uniform(-2, 2, (5, 3))
    F, R = fs["F"], fs["rosen"]
    np.savez(sys.argv[2], v=F(x, y), gx=F.grad(x, y, wrt=0), gy=F.grad(x, y, wrt=1),
             h=F.hessian(x, y, wrt=1), rv=R(p), rg=R.grad(p), lv=fs["L"](x, y),
             dg=fs["D"].grad(p))
    for name, args in [("F", (1.5, 2.0)), ("D", (p[0],))]:
        try:  # needs the Python function
            print(name, "grad:", np.asarray(wg.grad(fs[name])(*args)).tolist())
        except TypeError as e:
            print(name, "raised:", e)
    """
)


def _check_numbers(out):
    F, R = wg.compile(ns["f"]), wg.compile(ns["rosen"], shapes=[3])
    L = wg.compile(lambda a, b: a * b - wg.exp(a))
    got = np.load(out)
    assert np.array_equal(got["v"], F(X, Y)) and np.array_equal(got["lv"], L(X, Y))
    assert np.array_equal(got["gx"], F.grad(X, Y, wrt=0))
    assert np.array_equal(got["gy"], F.grad(X, Y, wrt=1))
    assert np.array_equal(got["h"], F.hessian(X, Y, wrt=1))
    assert np.array_equal(got["rv"], R(P)) and np.array_equal(got["rg"], R.grad(P))
    assert np.array_equal(got["dg"], ns["decorated"].grad(P))


def test_a_def_compiled_in_a_script_loads_and_evaluates_in_another_process(tmp_path):
    (tmp_path / "make.py").write_text(
        SOURCE
        + textwrap.dedent(
            """
            import pickle, sys
            fs = {"F": wg.compile(f), "rosen": wg.compile(rosen, shapes=[3]),
                  "L": wg.compile(lambda a, b: a * b - wg.exp(a)), "D": decorated}
            with open(sys.argv[1], "wb") as fh:
                pickle.dump(fs, fh)
            """
        )
    )
    (tmp_path / "load.py").write_text(LOAD)
    _run(tmp_path / "make.py", "fs.pkl", cwd=tmp_path)
    out = _run(tmp_path / "load.py", "fs.pkl", "out.npz", cwd=tmp_path)
    _check_numbers(tmp_path / "out.npz")
    # Only the program travelled: what needs the function says why it is missing.
    assert "F raised: f was unpickled without its Python function" in out, out
    assert "D raised: decorated was unpickled without its Python function" in out, out
    assert "defined in __main__" in out, out


def test_a_function_of_an_importable_module_travels_and_is_left_behind_where_it_is_not(tmp_path):
    mod = tmp_path / "mod"
    mod.mkdir()
    (mod / "wg_pickle_subject.py").write_text(SOURCE)
    (tmp_path / "make.py").write_text(
        textwrap.dedent(
            """
            import pickle, sys
            import wengert as wg
            from wg_pickle_subject import decorated, f, rosen
            fs = {"F": wg.compile(f), "rosen": wg.compile(rosen, shapes=[3]),
                  "L": wg.compile(lambda a, b: a * b - wg.exp(a)), "D": decorated}
            with open(sys.argv[1], "wb") as fh:
                pickle.dump(fs, fh)
            """
        )
    )
    (tmp_path / "load.py").write_text(LOAD)
    _run(tmp_path / "make.py", "fs.pkl", cwd=tmp_path, path=[mod])
    # Where the module is importable, the functions came along (also the one compiled by
    # the decorator, whose module-level name holds the compiled function): wg.grad runs them.
    out = _run(tmp_path / "load.py", "fs.pkl", "out.npz", cwd=tmp_path, path=[mod])
    _check_numbers(tmp_path / "out.npz")
    assert f"F grad: {wg.grad(ns['f'])(1.5, 2.0)!r}" in out, out
    assert f"D grad: {wg.grad(ns['decorated'])(P[0]).tolist()!r}" in out, out
    # Where it is not, the programs still load and evaluate.
    out = _run(tmp_path / "load.py", "fs.pkl", "out2.npz", cwd=tmp_path)
    _check_numbers(tmp_path / "out2.npz")
    assert out.count("could not be loaded in this process (ModuleNotFoundError") == 2, out


def module_level(x, y):
    return x * wg.sin(y) + x**2 / y


def test_only_a_function_that_loads_elsewhere_travels():
    cases = {
        "module": (module_level, None),
        "lambda": (lambda x, y: x * y, "pickle cannot refer to it by its module and name"),
        "exec": (ns["f"], "does not belong to a module"),
    }
    for name, (fn, note) in cases.items():
        G = pickle.loads(pickle.dumps(wg.compile(fn)))
        assert np.array_equal(G(X, Y), fn(X, Y)), name
        if note is None:
            assert G.__wrapped__ is fn and wg.grad(G)(1.5, 2.0) == wg.grad(fn)(1.5, 2.0)
        else:
            with pytest.raises(TypeError, match="unpickled without its Python function: .*" + note):
                wg.grad(G)(1.5, 2.0)
            # A second trip keeps the reason the function was left behind.
            H = pickle.loads(pickle.dumps(G))
            assert np.array_equal(H.grad(X, Y), G.grad(X, Y))
            with pytest.raises(TypeError, match=note):
                wg.grad(H)(1.5, 2.0)


@wg.compile
def decorated(x, y):
    return x * wg.exp(y)


def test_a_module_level_decorated_function_travels():
    G = pickle.loads(pickle.dumps(decorated))
    assert G.__wrapped__ is decorated.__wrapped__ and wg.grad(G, wrt=1)(1.5, 2.0) == 1.5 * np.exp(2.0)


def test_a_pickle_naming_a_missing_module_still_loads_the_program():
    F = wg.compile(module_level)
    state = F.__getstate__()
    G = wg.Compiled.__new__(wg.Compiled)
    G.__setstate__(dict(state, fn=pickle.dumps(module_level).replace(b"test_pickle", b"no_such_mod")))
    assert np.array_equal(G(X, Y), F(X, Y))
    with pytest.raises(TypeError, match="could not be loaded in this process"):
        wg.grad(G)(1.5, 2.0)


SPAWN = SOURCE + textwrap.dedent(
    """
    import multiprocessing as mp
    import numpy as np

    def work(job):
        F, x, y = job
        return F(x, y), F.grad(x, y, wrt=1)

    if __name__ == "__main__":
        F = wg.compile(f)
        x, y = np.linspace(0.5, 2.0, 7), np.linspace(1.0, 3.0, 7)
        with mp.get_context("spawn").Pool(2) as pool:
            parts = pool.map(work, [(F, x[:3], y[:3]), (F, x[3:], y[3:])])
        v = np.concatenate([p[0] for p in parts])
        g = np.concatenate([p[1] for p in parts])
        assert np.array_equal(v, F(x, y)) and np.array_equal(g, F.grad(x, y, wrt=1)), (v, g)
        print("OK")
    """
)


def test_a_def_compiled_in_a_script_through_a_spawn_pool(tmp_path):
    (tmp_path / "spawn.py").write_text(SPAWN)
    assert "OK" in _run(tmp_path / "spawn.py", cwd=tmp_path)


def _grad_elsewhere(job):
    F, x, y = job
    return F.grad(x, y, wrt=(0, 1)), wg.grad(F, wrt=1)(float(x[0]), float(y[0]))


def _values_elsewhere(job):
    F, x, y = job
    return F(x, y)


def test_through_a_spawn_pool_a_module_function_travels_and_a_lambda_does_not():
    F = wg.compile(module_level)
    L = wg.compile(lambda x, y: x * wg.sin(y) + x**2 / y)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        (gx, gy), d = pool.map(_grad_elsewhere, [(F, X, Y)])[0]
        assert np.array_equal(gx, F.grad(X, Y)) and np.array_equal(gy, F.grad(X, Y, wrt=1))
        assert d == wg.grad(module_level, wrt=1)(float(X[0]), float(Y[0]))
        with pytest.raises(TypeError, match="unpickled without its Python function"):
            pool.map(_grad_elsewhere, [(L, X, Y)])
        assert np.array_equal(pool.map(_values_elsewhere, [(L, X, Y)])[0], L(X, Y))
