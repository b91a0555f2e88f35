"""The loss landscape of a small model over two of its weights, from one batch call.

The model is f(x) = w1 tanh(w2 x) + b with b fixed; its mean squared error on 50 noisy
points is compiled as a function of w = (w1, w2). Each of the 200 x 200 grid points is a
row of one ``value_and_grad`` call, which gives the loss surface and the gradient field
together: the contour plot and its arrows come from the same 40 000-row evaluation. The
gradients are checked against central differences of the grid values.

    python examples/loss_landscape.py [--quick] [--out DIR]
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import wengert as wg

N_GRID = 200


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="accepted for symmetry: this example is fast")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(2)
    xs = np.linspace(-2, 2, 50)
    ys = 1.5 * np.tanh(2.0 * xs) + 0.2 + 0.1 * rng.standard_normal(xs.size)
    b = 0.2  # the weight we hold fixed

    @wg.compile(shapes=[2])
    def loss(w):
        # The data are constants of the compiled function: one row is one weight pair.
        return sum((w[0] * wg.tanh(w[1] * x) + b - y) ** 2 for x, y in zip(xs, ys)) / len(xs)

    w1, w2 = np.meshgrid(np.linspace(-3, 3, N_GRID), np.linspace(-4, 4, N_GRID), indexing="ij")
    W = np.stack([w1, w2], axis=-1)  # (200, 200, 2): the grid is the batch
    L, G = loss.value_and_grad(W)  # (200, 200) and (200, 200, 2), one call

    # Central differences of the grid values against the gradients, interior points.
    h1, h2 = w1[1, 0] - w1[0, 0], w2[0, 1] - w2[0, 0]
    fd1 = (L[2:, 1:-1] - L[:-2, 1:-1]) / (2 * h1)
    fd2 = (L[1:-1, 2:] - L[1:-1, :-2]) / (2 * h2)
    inner = G[1:-1, 1:-1]
    fd_error = max(np.max(np.abs(fd1 - inner[..., 0])), np.max(np.abs(fd2 - inner[..., 1])))
    fd_error /= np.max(np.abs(inner))
    print(f"{L.size} rows in one call; gradient vs central differences: "
          f"max error {fd_error:.1e} of the largest gradient (the grid step is {h1:.3f})")
    i, j = np.unravel_index(np.argmin(L), L.shape)
    print(f"lowest grid point: w1 = {w1[i, j]:.3f}, w2 = {w2[i, j]:.3f}, loss {L[i, j]:.4f}")

    fig, ax = plt.subplots(figsize=(6.5, 5))
    cs = ax.contourf(w1, w2, np.log10(L), levels=30, cmap="viridis")
    fig.colorbar(cs, label="log10 loss")
    s = slice(None, None, 10)  # every 10th point: arrows of the descent direction -grad
    norm = np.hypot(G[s, s, 0], G[s, s, 1]) + 1e-12
    ax.quiver(w1[s, s], w2[s, s], -G[s, s, 0] / norm, -G[s, s, 1] / norm, color="w", scale=30, width=0.003)
    ax.plot(w1[i, j], w2[i, j], "r*", ms=12)
    ax.set(xlabel="$w_1$", ylabel="$w_2$", title="loss of $w_1 \\tanh(w_2 x) + b$ and $-\\nabla$loss")
    fig.tight_layout()
    fig.savefig(args.out / "loss_landscape.png", dpi=80)
    print(f"wrote {args.out / 'loss_landscape.png'}")
    return dict(fd_error=fd_error, grid_step=h1, min_loss=float(L[i, j]), argmin=(w1[i, j], w2[i, j]))


if __name__ == "__main__":
    main()
