"""A minimal, honest pure-Python reverse-mode tape: the baseline wengert's eager mode is
compared with in benches/eager.py.

Each Var keeps its value, its parents and the local partial derivative with respect to
each parent. backward() orders the graph topologically (iteratively, so long chains do
not hit the recursion limit) and sweeps it in reverse, accumulating adjoints.
Supports + - * / (with floats on either side), unary -, sin, exp.
"""

from __future__ import annotations

import math

__all__ = ["Var", "sin", "exp"]


class Var:
    __slots__ = ("value", "grad", "parents", "partials")

    def __init__(self, value, parents=(), partials=()):
        self.value = float(value)
        self.grad = 0.0
        self.parents = parents
        self.partials = partials

    def __add__(self, o):
        if isinstance(o, Var):
            return Var(self.value + o.value, (self, o), (1.0, 1.0))
        return Var(self.value + o, (self,), (1.0,))

    __radd__ = __add__

    def __sub__(self, o):
        if isinstance(o, Var):
            return Var(self.value - o.value, (self, o), (1.0, -1.0))
        return Var(self.value - o, (self,), (1.0,))

    def __rsub__(self, o):
        return Var(o - self.value, (self,), (-1.0,))

    def __mul__(self, o):
        if isinstance(o, Var):
            return Var(self.value * o.value, (self, o), (o.value, self.value))
        return Var(self.value * o, (self,), (float(o),))

    __rmul__ = __mul__

    def __truediv__(self, o):
        if isinstance(o, Var):
            q = self.value / o.value
            return Var(q, (self, o), (1.0 / o.value, -q / o.value))
        return Var(self.value / o, (self,), (1.0 / o,))

    def __rtruediv__(self, o):
        q = o / self.value
        return Var(q, (self,), (-q / self.value,))

    def __neg__(self):
        return Var(-self.value, (self,), (-1.0,))

    def sin(self):
        return Var(math.sin(self.value), (self,), (math.cos(self.value),))

    def exp(self):
        e = math.exp(self.value)
        return Var(e, (self,), (e,))

    def backward(self):
        # Iterative post-order DFS gives a topological order (parents before children).
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            v, done = stack.pop()
            if done:
                order.append(v)
                continue
            if id(v) in seen:
                continue
            seen.add(id(v))
            stack.append((v, True))
            for p in v.parents:
                if id(p) not in seen:
                    stack.append((p, False))
        for v in order:
            v.grad = 0.0
        self.grad = 1.0
        for v in reversed(order):
            g = v.grad
            for p, d in zip(v.parents, v.partials):
                p.grad += g * d

    def __repr__(self):
        return f"Var({self.value!r}, grad={self.grad!r})"


def sin(x):
    return x.sin() if isinstance(x, Var) else math.sin(x)


def exp(x):
    return x.exp() if isinstance(x, Var) else math.exp(x)
