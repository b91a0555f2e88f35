"""Forward vs reverse mode per op, and the cost of an exact Hessian in gradient evaluations.

    python benches/transforms.py

Prints (1) eager forward mode (Dual) vs eager reverse mode (Var + backward) per op on a
long chain, and (2) wg.hessian of an n = 20 input function against one gradient of the
same function, both on the compiled tape at one point (the Hessian is n forward-over-
reverse sweeps, so the ratio should be about n) and against the eager gradient.
"""

from __future__ import annotations

import time

import numpy as np

import wengert as wg


def best(f, repeat=7, number=1):
    b = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            f()
        b = min(b, (time.perf_counter() - t) / number)
    return b


def chain(y, steps=1000):
    for _ in range(steps):
        y = y * 0.999 + wg.sin(y)
    return y


def reverse_chain():
    x = wg.Var(0.3)
    chain(x).backward()
    return x.grad


def forward_chain():
    return chain(wg.Dual(0.3, 1.0)).tangent


def f20(x):
    s = 0.0
    for i in range(len(x) - 1):
        s = s + wg.sin(x[i] * x[i + 1]) + x[i] ** 2 * wg.exp(-x[i + 1] ** 2)
    return s


def main():
    assert abs(reverse_chain() - forward_chain()) <= 1e-12 * abs(forward_chain())
    ops = 3 * 1000  # mul, add, sin per step
    tr = best(reverse_chain, number=20) / ops
    tf = best(forward_chain, number=20) / ops
    print("eager, per op (chain of 3000 ops)")
    print(f"  reverse (Var + backward): {tr * 1e9:7.1f} ns/op")
    print(f"  forward (Dual):           {tf * 1e9:7.1f} ns/op   forward/reverse = {tf / tr:.2f}")

    n = 20
    x = np.linspace(-1.0, 1.0, n)
    H = wg.hessian(f20)
    H(x)  # compiles once per argument shape
    F = wg.compile(f20, shapes=[n])
    th = best(lambda: H(x), number=20)
    tg = best(lambda: F.grad(x), number=200)
    te = best(lambda: wg.grad(f20)(x), number=20)
    print(f"hessian of an n = {n} input function ({F.n_instructions} instructions)")
    print(f"  wg.hessian:                  {th * 1e6:8.1f} us")
    print(f"  compiled gradient (F.grad):  {tg * 1e6:8.1f} us   hessian/gradient = {th / tg:.1f} (n = {n})")
    print(f"  eager gradient (wg.grad):    {te * 1e6:8.1f} us   hessian/eager gradient = {th / te:.1f}")


if __name__ == "__main__":
    main()
