"""Scaling out: compiled functions over chunked Dask arrays on a LocalCluster with worker
processes, so the function and its arrays travel between processes (pickled, and arriving
unaligned over the wire)."""

import numpy as np
import pytest

import wengert as wg

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


def rosen(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_per_row_gradients_with_map_blocks(client):
    R = wg.compile(rosen, shapes=[4])
    X = np.random.default_rng(0).uniform(-2, 2, (10_000, 4))
    dX = da.from_array(X, chunks=(1_500, 4))
    G = dX.map_blocks(lambda b: R.grad(b), dtype=float).compute()
    np.testing.assert_array_equal(G, R.grad(X))


def test_a_training_gradient_reduced_across_chunks(client):
    L = wg.compile(lambda th, x, y: (th[0] + th[1] * x - y) ** 2, shapes=[2, (), ()])
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 20_000)
    y = 3 * x - 1 + rng.normal(0, 0.1, x.size)
    theta = np.array([0.5, 0.5])
    dx, dy = da.from_array(x, chunks=3_000), da.from_array(y, chunks=3_000)
    parts = da.map_blocks(
        lambda a, b: L.grad(theta, a, b, wrt=0, reduce="sum")[None, :], dx, dy, new_axis=1, dtype=float,
        chunks=((1,) * dx.numblocks[0], (2,)),
    )
    g = parts.sum(axis=0).compute()
    np.testing.assert_allclose(g, L.grad(theta, x, y, wrt=0, reduce="sum"), rtol=1e-12)


MAKE = '''
import pickle, sys
import wengert as wg

def rosen(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))

with open(sys.argv[1], "wb") as fh:
    pickle.dump(wg.compile(rosen, shapes=[4]), fh)
'''


def _load_and_grad(blob, x):
    import pickle

    return pickle.loads(blob).grad(x)


def test_a_def_pickled_by_a_script_evaluates_on_the_workers(client, tmp_path):
    # A script (run as __main__) pickles a compiled def; this process and the workers lack
    # the script's definitions, so only the program travels, and it is enough.
    import os
    import pickle
    import subprocess
    import sys

    (tmp_path / "make.py").write_text(MAKE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "make.py", "r.pkl"], cwd=tmp_path, env=env, check=True, timeout=300)
    blob = (tmp_path / "r.pkl").read_bytes()
    R = wg.compile(rosen, shapes=[4])
    X = np.random.default_rng(2).uniform(-2, 2, (4_000, 4))
    np.testing.assert_array_equal(client.submit(_load_and_grad, blob, X).result(), R.grad(X))
    G = pickle.loads(blob)
    dX = da.from_array(X, chunks=(1_500, 4))
    np.testing.assert_array_equal(dX.map_blocks(lambda b: G.grad(b), dtype=float).compute(), R.grad(X))
