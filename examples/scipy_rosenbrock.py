"""SciPy's optimisers with exact derivatives: Rosenbrock's function in 100 dimensions.

``scipy.optimize.minimize`` takes the value and gradient together with ``jac=True``, so a
compiled function's ``value_and_grad`` (one row) plugs straight in. Newton-CG also takes
second derivatives: ``hessp=`` from ``F.hvp``, an exact Hessian-vector product by forward
over reverse that never forms the 100 x 100 Hessian (one sweep each way per product,
where ``F.hessian`` would take 100). Against them runs SciPy's default, which
estimates the gradient by finite differences (n + 1 function calls per gradient): it
takes longer and stops short of the minimum, because its gradient is only accurate to
about 1e-8.

    python examples/scipy_rosenbrock.py [--quick] [--out DIR]
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import minimize

import wengert as wg


def rosen(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 dimensions for the finite-difference run (CI)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    n = 100
    n_fd = 20 if args.quick else n  # the finite-difference default is the slow one
    R = {d: wg.compile(rosen, shapes=[d]) for d in {n, n_fd}}
    x0 = {d: np.resize([-1.2, 1.0], d) for d in {n, n_fd}}  # the classic start, repeated

    def value(d):
        return lambda x: float(R[d](x))

    def value_and_grad(d):
        def fun(x):
            v, g = R[d].value_and_grad(x)  # one row: a scalar and a (d,) gradient
            return float(v), g

        return fun

    hvp_calls = [0]

    def hessp(x, v):
        hvp_calls[0] += 1
        return R[n].hvp(x, v=v)  # H(x) @ v, exact

    result, curves = {}, {}
    print(f"{'method':34s} {'iterations':>10s} {'f calls':>8s} {'time':>8s}  max|x - 1|")

    def run(key, label, d, fun, **kw):
        path = [x0[d]]
        t0 = time.perf_counter()
        res = minimize(fun, x0[d], callback=lambda xk: path.append(xk.copy()), **kw)
        dt = time.perf_counter() - t0
        err = np.max(np.abs(res.x - 1))
        print(f"{label:34s} {res.nit:10d} {res.nfev:8d} {dt:7.3f}s  {err:.1e}")
        result[key] = dict(nit=res.nit, seconds=dt, max_error=err, dims=d)
        curves[label] = [float(R[d](p)) for p in path]

    run("bfgs_fd", f"BFGS, finite differences (n={n_fd})", n_fd, value(n_fd), method="BFGS")
    run("bfgs", f"BFGS, jac=True (n={n})", n, value_and_grad(n), jac=True, method="BFGS",
        options=dict(gtol=1e-10))
    run("newton_cg", f"Newton-CG, hessp=F.hvp (n={n})", n, value_and_grad(n), jac=True,
        method="Newton-CG", hessp=hessp, options=dict(xtol=1e-12))
    result["newton_cg"]["hvp_calls"] = hvp_calls[0]
    # The products are the exact Hessian's: check one against F.hessian.
    x, v = x0[n], np.linspace(-1, 1, n)
    result["newton_cg"]["hvp_error"] = float(np.max(np.abs(R[n].hvp(x, v=v) - R[n].hessian(x) @ v)))
    print(f"Newton-CG used {hvp_calls[0]} Hessian-vector products")

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for label, f in curves.items():
        ax.semilogy(np.maximum(f, 1e-30), label=label)
    ax.set(xlabel="iteration", ylabel="f(x)", title="Rosenbrock: exact derivatives vs finite differences")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "scipy_rosenbrock.png", dpi=80)
    print(f"wrote {args.out / 'scipy_rosenbrock.png'}")
    return result


if __name__ == "__main__":
    main()
