"""The plots of BENCHMARKS.md: time per row against batch size, tape length and threads.

    python benches/plots.py [--quick] [--out DIR] [--max-rows N]

- `batch_seed.png`, `batch_rosen16.png`: ns/row of value + gradient against rows
  (1e2 .. --max-rows, 1e7 by default for the seed example; Rosenbrock-16 stops at 1e6, its
  arrays at 1e7 rows would be 2.6 GB per copy), wengert vs JAX vs Dr.Jit (NumPy in and
  out, and on its own arrays).
- `tape_length.png`: eager ns/op against the length of the chain y = y*0.999 + sin(y)
  (wengert Var + backward, wengert Dual, the pure-Python tape, plain floats).
- `threads.png`: ns/row at 1 and 2 threads, from two runs of
  `benches/run.py --threads N --only seed,rosen16,piecewise,rbf --json` (XLA's thread flags
  must be set before JAX is imported, hence separate processes).

Every point is checked against wengert first (benches/run.py's check), then timed:
interleaved rounds, medians. Needs matplotlib (the `examples` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import run  # noqa: E402

KEEP = ("wengert", "JAX", "Dr.Jit")


def batch_sizes(make, sizes, rounds, min_sample):
    series: dict[str, list[tuple[int, float]]] = {}
    for n in sizes:
        w = make(False, n)
        w.impls = [i for i in w.impls if i.label.startswith(KEEP)]
        if run.check(w):
            raise SystemExit(f"{w.key} at {n} rows: a peer disagrees with wengert")
        run.time_workload(w, rounds, min_sample)
        for im in w.impls:
            series.setdefault(im.label, []).append((n, im.median / n * 1e9))
        print(f"  {w.key} {n:.0e} rows: " + ", ".join(f"{i.label} {i.median / n * 1e9:.3g}" for i in w.impls),
              flush=True)
    return series


def plot_series(series, title, xlabel, ylabel, path, note=""):
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, pts in series.items():
        xs, ys = zip(*pts)
        ax.loglog(xs, ys, marker="o", label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, alpha=0.7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"wrote {path}")


def tape_lengths(lengths, rounds, min_sample):
    series: dict[str, list[tuple[int, float]]] = {}
    for n_ops in lengths:
        w = run.wl_eager_chain(False, n_ops)
        w.impls = [i for i in w.impls if not i.label.startswith("autograd")]
        iters = int(w.per) // 3

        def plain(iters=iters):
            y = 0.3
            for _ in range(iters):
                y = y * 0.999 + run.math.sin(y)
            return y, 0.0

        if run.check(w):
            raise SystemExit("eager chain: a peer disagrees with wengert")
        w.add("plain floats (no derivative)", plain)
        run.time_workload(w, rounds, min_sample)
        for im in w.impls:
            series.setdefault(im.label, []).append((int(w.per), im.median / w.per * 1e9))
        print(f"  chain of {int(w.per)} ops: " + ", ".join(f"{i.label} {i.median / w.per * 1e9:.3g}" for i in w.impls),
              flush=True)
    return series


def threads_plot(out, quick):
    res = {}
    for nt in (1, 2):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            path = f.name
        cmd = [sys.executable, str(HERE / "run.py"), "--threads", str(nt), "--only", "seed,rosen16,piecewise,rbf",
               "--json", path] + (["--quick"] if quick else [])
        print("  " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ))
        res[nt] = json.loads(Path(path).read_text())
        os.unlink(path)
    rows = [r for r in res[1]["rows"] if not r["status"] and r["impl"].startswith(KEEP)]
    keys = sorted({r["workload"] for r in rows}, key=["seed", "rosen16", "piecewise", "rbf"].index)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.3 * len(keys), 4.2))
    summary = {}
    for ax, key in zip(axes, keys):
        labels = [r["impl"] for r in rows if r["workload"] == key]
        t1 = {r["impl"]: r["time"] for r in res[1]["rows"] if r["workload"] == key}
        t2 = {r["impl"]: r["time"] for r in res[2]["rows"] if r["workload"] == key}
        xs = range(len(labels))
        ax.bar([x - 0.2 for x in xs], [t1[k] for k in labels], 0.4, label="1 thread")
        ax.bar([x + 0.2 for x in xs], [t2.get(k, 0) for k in labels], 0.4, label="2 threads")
        ax.set_xticks(list(xs), [k.replace(" (", "\n(") for k in labels], fontsize=6, rotation=30, ha="right")
        ax.set_yscale("log")
        ax.set_title(key, fontsize=9)
        ax.set_ylabel(rows[0]["unit"] if key != "rbf" else "ns/row")
        summary[key] = {k: (t1[k], t2.get(k)) for k in labels}
    axes[0].legend(fontsize=7)
    load = res[1]["machine"].get("load average at start", "?")
    fig.text(0.01, 0.01, f"load average at start {load} (other processes on the 2 cores)", fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "threads.png", dpi=90)
    plt.close(fig)
    print(f"wrote {out / 'threads.png'}")
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "plots")
    ap.add_argument("--max-rows", type=int, default=10_000_000)
    ap.add_argument("--only", default="batch,tape,threads")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rounds, min_sample = (3, 0.01) if args.quick else (5, 0.05)
    top = 4 if args.quick else 7
    sizes = [10**k for k in range(2, top + 1) if 10**k <= args.max_rows]
    info = run.machine()
    note = f"{info.get('Model name', '?')}, {info['wengert threads']} threads, load average at start " \
           f"{info['load average at start']}"
    summary = {}
    if "batch" in args.only:
        s = batch_sizes(run.wl_seed, sizes, rounds, min_sample)
        summary["seed"] = s
        plot_series(s, "seed example f(x1, x2): value + gradient", "rows", "ns/row", args.out / "batch_seed.png", note)
        s = batch_sizes(run.wl_rosen, [n for n in sizes if n <= 1_000_000], rounds, min_sample)
        summary["rosen16"] = s
        plot_series(s, "Rosenbrock-16: value + gradient", "rows", "ns/row", args.out / "batch_rosen16.png", note)
    if "tape" in args.only:
        lengths = [30, 99, 300, 999, 3000, 9999] + ([] if args.quick else [30000])
        s = tape_lengths(lengths, rounds, min_sample)
        summary["tape"] = s
        plot_series(s, "eager chain y = y*0.999 + sin(y): value + derivative", "ops in the chain", "ns/op",
                    args.out / "tape_length.png", note)
    if "threads" in args.only:
        summary["threads"] = threads_plot(args.out, args.quick)
    (args.out / "plots.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
