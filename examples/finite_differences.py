"""Finite differences against the exact derivative: truncation error meets rounding error.

For f(x) = sin(x) exp(x) at x = 1, the forward difference (f(x+h) - f(x)) / h and the
central difference (f(x+h) - f(x-h)) / (2h) are compared with the exact derivative from
``wg.grad`` for steps h from 1e-16 to 1. Large steps suffer truncation error (about h for
forward, h^2 for central); small steps suffer rounding error (about eps/h), because f is
only known to about eps. Their balance puts the best forward step near eps^(1/2) and the
best central step near eps^(1/3), and even there only about half or two thirds of the
digits are right. An exact derivative has no step to choose.

    python examples/finite_differences.py [--quick] [--out DIR]
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import wengert as wg

EPS = np.finfo(float).eps


def f(x):
    return wg.sin(x) * wg.exp(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="accepted for symmetry: this example is fast")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    x0 = 1.0
    exact = wg.grad(f)(x0)  # reverse mode: exact to rounding
    h = np.logspace(-16, 0, 321)
    F = wg.compile(f)  # evaluate f at all the shifted points in one batch call
    f0, fp, fm = F(x0), F(x0 + h), F(x0 - h)
    err_fwd = np.abs((fp - f0) / h - exact) / abs(exact)
    err_ctr = np.abs((fp - fm) / (2 * h) - exact) / abs(exact)

    h_fwd, h_ctr = h[np.argmin(err_fwd)], h[np.argmin(err_ctr)]
    by_hand = float(np.e * (np.cos(1) + np.sin(1)))  # (sin x e^x)' = (cos x + sin x) e^x
    print(f"exact f'(1) = {exact!r} (wg.grad);  by hand {by_hand!r}")
    print(f"forward: best step {h_fwd:.1e} (eps^1/2 = {EPS ** 0.5:.1e}), relative error {err_fwd.min():.1e}")
    print(f"central: best step {h_ctr:.1e} (eps^1/3 = {EPS ** (1 / 3):.1e}), relative error {err_ctr.min():.1e}")

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.loglog(h, np.maximum(err_fwd, 1e-17), label="forward difference")
    ax.loglog(h, np.maximum(err_ctr, 1e-17), label="central difference")
    ax.loglog(h, EPS / h, "k:", lw=1, label="rounding  eps / h")
    ax.loglog(h, h, "k--", lw=1, label="truncation  h,  $h^2$")
    ax.loglog(h, h**2, "k--", lw=1)
    for p, name in [(1 / 2, "$\\epsilon^{1/2}$"), (1 / 3, "$\\epsilon^{1/3}$")]:
        ax.axvline(EPS**p, color="0.6", lw=0.8)
        ax.text(EPS**p, 3e-16, name, ha="center", backgroundcolor="w")
    ax.set(xlabel="step h", ylabel="relative error of f'(1)", ylim=(1e-17, 1e2),
           title="finite differences vs the exact derivative")
    ax.legend(loc="upper center")
    fig.tight_layout()
    fig.savefig(args.out / "finite_differences.png", dpi=80)
    print(f"wrote {args.out / 'finite_differences.png'}")
    return dict(exact=exact, by_hand=by_hand, min_central=err_ctr.min(), h_central=h_ctr, min_forward=err_fwd.min(), h_forward=h_fwd)


if __name__ == "__main__":
    main()
