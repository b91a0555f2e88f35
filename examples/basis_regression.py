"""Adaptive basis-function regression: learn the bases, not just their weights.

The model is f(x) = sum_k w_k phi(x; theta_k) + b. Gradient descent fits the weights w,
the bias b and the basis parameters theta together, for three families of bases:

    tanh        phi = tanh(a x + c)           theta_k = (a_k, c_k)
    rbf         phi = exp(-((x - c) / s)^2)   theta_k = (c_k, s_k)
    power       phi = x^p                     theta_k = p_k

The loss sum_n (f(x_n) - y_n)^2 is compiled once per family; each step is one call,
``L.value_and_grad(params, x, y, wrt=0, reduce="sum")``. Before training, the compiled
gradient is checked against the chain rule written out by hand.

    python examples/basis_regression.py [--quick] [--out DIR]
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from tqdm import tqdm

import wengert as wg

K = 4  # bases per model

# Each family: the basis phi(x, theta) for one basis, its parameters per basis, a step
# size, starting values, and d phi / d theta by hand (for the check).
FAMILIES = {
    "tanh": dict(
        phi=lambda x, t: wg.tanh(t[0] * x + t[1]),
        m=2,
        lr=0.2,
        theta0=np.array([[2.0, -1.0], [2.0, -3.0], [2.0, -5.0], [-2.0, 3.0]]),
        dphi=lambda x, t: [
            (1 - np.tanh(t[0] * x + t[1]) ** 2) * x,
            1 - np.tanh(t[0] * x + t[1]) ** 2,
        ],
    ),
    "rbf": dict(
        phi=lambda x, t: wg.exp(-(((x - t[0]) / t[1]) ** 2)),
        m=2,
        lr=0.2,
        theta0=np.array([[0.5, 0.5], [1.2, 0.5], [1.9, 0.5], [2.6, 0.5]]),
        dphi=lambda x, t: [
            np.exp(-(((x - t[0]) / t[1]) ** 2)) * 2 * (x - t[0]) / t[1] ** 2,
            np.exp(-(((x - t[0]) / t[1]) ** 2)) * 2 * (x - t[0]) ** 2 / t[1] ** 3,
        ],
    ),
    "power": dict(
        phi=lambda x, t: x ** t[0],
        m=1,
        lr=0.002,  # x^p grows fast in p: a smaller step
        theta0=np.array([[0.5], [1.0], [2.0], [3.0]]),
        dphi=lambda x, t: [x ** t[0] * np.log(x)],
    ),
}


def unpack(p, m):
    """params = [w (K), b, theta (K*m)] -> (w, b, theta (K, m))."""
    return p[:K], p[K], p[K + 1 :].reshape(K, m)


def make_loss(fam):
    """The compiled per-row squared error of one family's model."""
    phi, m = fam["phi"], fam["m"]

    def model(p, x):
        w, b, theta = unpack(p, m)
        return sum(w[k] * phi(x, theta[k]) for k in range(K)) + b

    def loss(p, x, y):
        return (model(p, x) - y) ** 2

    return wg.compile(loss, shapes=[K + 1 + K * m, (), ()]), wg.compile(model, shapes=[K + 1 + K * m, ()])


def closed_form_grad(fam, p, x, y, f):
    """dL/dp by the chain rule: dL/df_n = 2 r_n, df/dw_k = phi_k, df/db = 1, df/dtheta_k = w_k dphi_k."""
    w, b, theta = unpack(p, fam["m"])
    r2 = 2 * (f - y)
    g_w = [np.sum(r2 * fam["phi"](x, theta[k])) for k in range(K)]
    g_theta = [[np.sum(r2 * w[k] * d) for d in fam["dphi"](x, theta[k])] for k in range(K)]
    return np.concatenate([g_w, [np.sum(r2)], np.ravel(g_theta)])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps (CI)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(0)
    n, noise = 200, 0.1
    x = np.sort(rng.uniform(0.1, 3.0, n))
    y = np.sin(2 * x) * np.exp(-x / 2) + 0.5 * x + noise * rng.standard_normal(n)
    steps = 3000 if args.quick else 30000

    fig, (ax_fit, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    ax_fit.plot(x, y, ".", color="0.6", label="data")
    xs = np.linspace(0.1, 3.0, 400)
    result = {}
    for name, fam in FAMILIES.items():
        L, model = make_loss(fam)
        p = np.concatenate([np.full(K, 0.1), [np.mean(y)], fam["theta0"].ravel()])
        lr = fam["lr"] / n  # the loss is a sum over rows

        # The compiled gradient against the chain rule at the starting point.
        _, g = L.value_and_grad(p, x, y, wrt=0, reduce="sum")
        g_hand = closed_form_grad(fam, p, x, y, model(p, x))
        rel = np.linalg.norm(g - g_hand) / np.linalg.norm(g_hand)

        losses = []
        for _ in tqdm(range(steps), desc=name, leave=False):
            loss, g = L.value_and_grad(p, x, y, wrt=0, reduce="sum")
            losses.append(loss)
            p -= lr * g
        mse = L(p, x, y, reduce="mean")
        result[name] = dict(grad_rel_error=rel, mse=float(mse))
        print(f"{name:6s} gradient vs chain rule: rel. error {rel:.1e}   final MSE {mse:.4f}")
        ax_fit.plot(xs, model(p, xs), label=f"{name} (MSE {mse:.4f})")
        ax_loss.semilogy(np.array(losses) / n, label=name)

    ax_fit.set(xlabel="x", ylabel="y", title=f"{K} adaptive bases per model")
    ax_fit.legend()
    ax_loss.axhline(noise**2, color="k", ls=":", label="noise variance")
    ax_loss.set(xlabel="step", ylabel="mean squared error", title="full-batch gradient descent")
    ax_loss.legend()
    fig.tight_layout()
    fig.savefig(args.out / "basis_regression.png", dpi=80)
    print(f"wrote {args.out / 'basis_regression.png'}")
    return result


if __name__ == "__main__":
    main()
