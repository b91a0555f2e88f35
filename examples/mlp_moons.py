"""A 2-16-16-1 neural network on two moons, trained eagerly with Var and compiled.

The same network and loss are written once, as ordinary NumPy code on arrays of numbers.
First it is trained micrograd-style: the parameters are leaf ``wg.Var``s, every step
builds a fresh graph, ``loss.backward()`` fills ``p.grad`` and ``p.data -= lr * p.grad``
updates them. Then the parameters are flattened into one vector, the loss is compiled
once (``shapes=[P, 2, ()]``: parameters, a 2-D point and its label per row) and each step
is one call with ``reduce="mean"``. The decision boundary is the compiled forward
function over a grid of points in one batch call.

    python examples/mlp_moons.py [--quick] [--out DIR]
"""

import argparse
import time
from pathlib import Path

import numpy as np

import wengert as wg

SIZES = [2, 16, 16, 1]
SHAPES = [(m, n) for m, n in zip(SIZES, SIZES[1:])]  # the weight matrices
P = sum(m * n + n for m, n in SHAPES)  # 337 parameters


def two_moons(n, noise, rng):
    """n points on two interleaved half circles, labels 0 and 1."""
    t = rng.uniform(0, np.pi, n)
    label = rng.integers(0, 2, n)
    x = np.where(label == 0, np.cos(t), 1 - np.cos(t))
    y = np.where(label == 0, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x, y], axis=1) + noise * rng.standard_normal((n, 2))
    return (pts - [0.5, 0.25]) / [0.9, 0.5], label.astype(float)


def init_params(rng):
    """Flat vector [W1, b1, W2, b2, W3, b3], weights scaled by 1/sqrt(fan-in)."""
    return np.concatenate(
        [np.concatenate([rng.standard_normal(m * n) / np.sqrt(m), np.zeros(n)]) for m, n in SHAPES]
    )


def split(p):
    """Flat parameter vector -> [(W1, b1), (W2, b2), (W3, b3)] (views)."""
    layers, i = [], 0
    for m, n in SHAPES:
        layers.append((p[i : i + m * n].reshape(m, n), p[i + m * n : i + m * n + n]))
        i += m * n + n
    return layers


def logit(p, x):
    """The network: points x (..., 2) -> log-odds of class 1 (...,), for floats, Vars or traced numbers."""
    h = x
    for j, (W, b) in enumerate(split(p)):
        h = h @ W + b
        if j < len(SHAPES) - 1:
            h = np.tanh(h)
    return h[..., 0]


def bce(z, y):
    """Binary cross-entropy from the log-odds z: log(1 + e^z) - y z."""
    return wg.softplus(z) - y * z


def train_eager(p0, x, y, steps, lr):
    from tqdm import tqdm

    params = wg.vars(p0)  # an object array of leaf Vars
    for _ in tqdm(range(steps), desc="eager Var", leave=False):
        z = logit(params, x)
        loss = sum(bce(zi, yi) for zi, yi in zip(z, y)) / len(y)
        loss.backward()
        for q in params:
            q.data -= lr * q.grad
    return wg.values(params), loss.value


def main(argv=None):
    # Plotting and progress bars are imported here so that benches/run.py can reuse the
    # network definitions with only NumPy installed.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tqdm import tqdm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps (CI)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(1)
    x, y = two_moons(200, 0.1, rng)
    x_test, y_test = two_moons(1000, 0.1, rng)
    p0 = init_params(rng)
    lr = 0.5
    eager_steps, compiled_steps = (30, 3000) if args.quick else (300, 10000)

    # Eager: a fresh graph per step.
    t0 = time.perf_counter()
    p_eager, loss_eager = train_eager(p0, x, y, eager_steps, lr)
    t_eager = (time.perf_counter() - t0) / eager_steps

    # Compiled: trace once, then one call per step.
    L = wg.compile(lambda p, xi, yi: bce(logit(p, xi), yi), shapes=[P, 2, ()])
    forward = wg.compile(logit, shapes=[P, 2])
    p = p0.copy()
    t0 = time.perf_counter()
    for step in tqdm(range(compiled_steps), desc="compiled", leave=False):
        loss, g = L.value_and_grad(p, x, y, wrt=0, reduce="mean")
        p -= lr * g
        if step == eager_steps - 1:  # same steps as the eager run so far: same parameters
            eager_agrees = np.max(np.abs(p - p_eager))
    t_compiled = (time.perf_counter() - t0) / compiled_steps

    def accuracy(q):
        return np.mean((forward(q, x_test) > 0) == (y_test == 1))

    acc_eager, acc = accuracy(p_eager), accuracy(p)
    for name, steps, t, lo, a in [("eager", eager_steps, t_eager, loss_eager, acc_eager),
                                  ("compiled", compiled_steps, t_compiled, loss, acc)]:
        print(f"{name:8s} {steps:6d} steps  {1e3 * t:8.3f} ms/step  loss {lo:.4f}  test accuracy {a:.3f}")
    print(f"compiled is {t_eager / t_compiled:.0f}x faster per step; after {eager_steps} steps the two "
          f"parameter vectors differ by at most {eager_agrees:.1e}")

    # Decision boundary: the forward function over a 300 x 300 grid in one call.
    g1, g2 = np.meshgrid(np.linspace(-2.5, 2.5, 300), np.linspace(-2.5, 2.5, 300))
    z = forward(p, np.stack([g1, g2], axis=-1))  # (300, 300): the grid is the batch
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.contourf(g1, g2, z, levels=[-100, 0, 100], colors=["#9ecae1", "#fdae6b"], alpha=0.6)
    ax.contour(g1, g2, z, levels=[0], colors="k")
    ax.scatter(*x.T, c=y, cmap="coolwarm", s=12, edgecolors="k", linewidths=0.3)
    ax.set(title=f"2-16-16-1 MLP, test accuracy {acc:.3f}", xlabel="$x_1$", ylabel="$x_2$")
    fig.tight_layout()
    fig.savefig(args.out / "mlp_moons.png", dpi=80)
    print(f"wrote {args.out / 'mlp_moons.png'}")
    return dict(accuracy=acc, accuracy_eager=acc_eager, eager_vs_compiled=eager_agrees,
                ms_per_step_eager=1e3 * t_eager, ms_per_step_compiled=1e3 * t_compiled)


if __name__ == "__main__":
    main()
