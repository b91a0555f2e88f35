"""micrograd's own engine tests (test/test_engine.py), with Var in place of Value.

The expressions are micrograd's, verbatim. micrograd checks them against PyTorch; here the
reference is sympy: the same code runs on a small symbolic stand-in for Value, and the
derivative is sympy.diff of the resulting expression, evaluated exactly.
"""

from __future__ import annotations

import sympy as sp

import wengert as wg


class SymValue:
    """Just enough of micrograd's Value for its tests, over sympy expressions."""

    def __init__(self, data):
        self.data = data if isinstance(data, sp.Basic) else sp.nsimplify(data)

    @staticmethod
    def _wrap(o):
        return o if isinstance(o, SymValue) else SymValue(o)

    def __add__(self, o):
        return SymValue(self.data + self._wrap(o).data)

    def __mul__(self, o):
        return SymValue(self.data * self._wrap(o).data)

    def __pow__(self, k):
        assert isinstance(k, (int, float))
        return SymValue(self.data ** sp.nsimplify(k))

    def relu(self):
        return SymValue(sp.Max(self.data, 0))

    def __neg__(self):
        return self * -1

    def __radd__(self, o):
        return self + o

    def __sub__(self, o):
        return self + (-self._wrap(o))

    def __rsub__(self, o):
        return self._wrap(o) + (-self)

    def __rmul__(self, o):
        return self * o

    def __truediv__(self, o):
        return self * self._wrap(o) ** -1

    def __rtruediv__(self, o):
        return self._wrap(o) * self**-1


def sanity_check(Value):
    # micrograd test_sanity_check, verbatim up to the backward pass.
    x = Value(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    return [x], y


def more_ops(Value):
    # micrograd test_more_ops, verbatim up to the backward pass.
    a = Value(-4.0)
    b = Value(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    return [a, b], g


def reference(build):
    """Value and gradient of ``build``'s output by sympy, leaves replaced by symbols."""
    leaves, out = build(SymValue)
    symbols = [sp.Symbol(f"s{i}", real=True) for i in range(len(leaves))]
    point = {s: leaf.data for s, leaf in zip(symbols, leaves, strict=True)}
    _, syms_out = build(_SymbolFactory(symbols))
    expr = syms_out.data
    value = expr.subs(point)
    grads = [sp.diff(expr, s).subs(point) for s in symbols]
    return value, grads


class _SymbolFactory:
    """Makes the i-th leaf a sympy symbol, so the output is a function of the leaves."""

    def __init__(self, symbols):
        self._symbols = iter(symbols)

    def __call__(self, data):
        return SymValue(next(self._symbols))


def test_sanity_check():
    (x,), y = sanity_check(wg.Var)
    y.backward()
    xmg, ymg = x, y
    value, (dx,) = reference(sanity_check)
    # The values are small integers: exact in floating point, so compare exactly as
    # micrograd does against PyTorch.
    assert ymg.data == float(value) == -20.0
    assert xmg.grad == float(dx) == 46.0


def test_more_ops():
    (a, b), g = more_ops(wg.Var)
    g.backward()
    amg, bmg, gmg = a, b, g
    value, (da, db) = reference(more_ops)
    tol = 1e-12  # micrograd allows 1e-6; exact references permit far less
    assert abs(gmg.data - float(value)) < tol * abs(float(value))
    assert abs(amg.grad - float(da)) < tol * abs(float(da))
    assert abs(bmg.grad - float(db)) < tol * abs(float(db))
    # The reference values micrograd's README states for this expression.
    assert f"{gmg.data:.4f}" == "24.7041"
    assert f"{amg.grad:.4f}" == "138.8338"
    assert f"{bmg.grad:.4f}" == "645.5773"
