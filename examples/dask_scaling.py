"""Scaling out with Dask: a compiled function over a chunked array on worker processes.

A compiled function pickles (its program travels with it), so Dask can ship it to worker
processes on this machine or on a cluster. The functions here are defined in this script,
so only their programs travel, which is all that evaluation needs (the README's section
on pickling says what stays behind). Two patterns cover most uses:

- per-row results: ``X.map_blocks(F.grad)`` evaluates every chunk of rows where it lives;
- a training gradient: each chunk's ``reduce="sum"`` gradient of the loss, summed across
  chunks, is the gradient of the loss over all rows.

The data are made here with NumPy and sent to the workers, as a user's data usually are.
Both results are checked against the same calls in this process.

    python examples/dask_scaling.py [--quick] [--out DIR] [--scheduler ADDRESS]

Without ``--scheduler`` it starts a ``distributed.LocalCluster`` of 2 worker processes
(1 thread each); with ``--scheduler tcp://host:8786`` it uses that cluster instead
(the workers need wengert installed).
"""

import argparse
import contextlib
import time
from pathlib import Path

import dask.array as da
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster

import wengert as wg

D = 8  # features per row


@wg.compile(shapes=[D])
def griewank(x):
    """A per-row function of D numbers (Griewank's test function)."""
    s = sum(xi * xi for xi in x) / 4000
    p = np.prod([wg.cos(x[i] / np.sqrt(i + 1)) for i in range(D)])
    return 1 + s - p


@wg.compile(shapes=[D + 1, D, ()])
def logistic_loss(theta, x, y):
    """Logistic regression: the loss of one row (x, y) with y in {0, 1}."""
    z = theta[D] + sum(theta[i] * x[i] for i in range(D))
    return wg.softplus(z) - y * z


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rows (CI)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    ap.add_argument("--scheduler", help="address of a running Dask scheduler (default: a LocalCluster)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    n, chunk = (200_000, 25_000) if args.quick else (4_000_000, 250_000)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, D))
    y = (x @ rng.standard_normal(D) + 0.5 * rng.standard_normal(n) > 0).astype(float)
    theta = 0.1 * rng.standard_normal(D + 1)

    # A real cluster's address, or 2 worker processes on this machine (closed on the way out).
    if args.scheduler:
        cluster = contextlib.nullcontext(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)

    def to_cluster(a):
        """Send a NumPy array to the workers in chunks of rows; a dask array over them."""
        starts = range(0, len(a), chunk)
        parts = client.scatter([a[i : i + chunk] for i in starts])
        return da.concatenate(
            [da.from_delayed(p, shape=a[i : i + chunk].shape, dtype=a.dtype) for i, p in zip(starts, parts)]
        )

    with cluster as c, Client(c) as client:
        print(f"dask: {len(client.scheduler_info()['workers'])} workers at {client.scheduler.address}")
        X = to_cluster(x)
        Y = to_cluster(y[:, None])  # 2-D so that its blocks line up with X's

        # Per-row gradients: one (chunk, D) block of gradients per block of rows.
        t0 = time.perf_counter()
        G = X.map_blocks(griewank.grad, dtype=float).compute()
        t_rows = time.perf_counter() - t0
        rows_diff = np.max(np.abs(G - griewank.grad(x)))

        # The training gradient: a (1, D + 1) gradient per chunk, summed across chunks.
        def chunk_grad(xb, yb):
            return logistic_loss.grad(theta, xb, yb[:, 0], wrt=0, reduce="sum")[None, :]

        t0 = time.perf_counter()
        g = X.map_blocks(chunk_grad, Y, chunks=(1, D + 1), dtype=float).sum(axis=0).compute()
        t_train = time.perf_counter() - t0
        g_local = logistic_loss.grad(theta, x, y, wrt=0, reduce="sum")
        train_diff = np.max(np.abs(g - g_local)) / np.max(np.abs(g_local))

    print(f"per-row gradients of {n} rows in {n // chunk} chunks: {t_rows:.2f}s, "
          f"max |cluster - local| = {rows_diff:.1e}")
    print(f"training gradient summed over chunks: {t_train:.2f}s, "
          f"max relative difference = {train_diff:.1e}")

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(np.linalg.norm(G, axis=1), bins=80, color="C0")
    ax.set(xlabel="|grad griewank(x)|", ylabel="rows", title=f"per-row gradient norms, {n} rows on Dask")
    fig.tight_layout()
    fig.savefig(args.out / "dask_scaling.png", dpi=80)
    print(f"wrote {args.out / 'dask_scaling.png'}")
    return dict(rows_diff=rows_diff, train_diff=train_diff)


if __name__ == "__main__":
    main()
