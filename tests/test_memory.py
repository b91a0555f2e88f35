"""Memory: the tape reclaims what no live Var can reach, and deep graphs need no recursion."""

from __future__ import annotations

import gc
import sys
import tracemalloc

import pytest

import wengert as wg
from wengert import _core


def test_training_loop_runs_in_flat_memory():
    # micrograd-style: persistent leaves, a fresh graph every step, p.data -= lr * p.grad.
    # Fit y = 2x - 1 by least squares over three points with a tiny MLP-free model.
    w, b = wg.Var(0.0), wg.Var(0.0)
    params = [w, b]
    data = [(-1.0, -3.0), (0.5, 0.0), (2.0, 3.0)]
    lr = 0.05
    base = _core.tape_size()
    sizes = set()
    tracemalloc.start()
    try:
        for step in range(100_000):
            loss = sum(((w * xi + b - yi) ** 2 for xi, yi in data), start=wg.Var(0.0))
            loss.backward()
            for p in params:
                p.data -= lr * p.grad
            sizes.add(_core.tape_size())
            # Fail at once rather than grind through a growing (quadratic) loop.
            assert _core.tape_size() <= 2 * (base + 100) + 1024, (step, _core.tape_size())
            if step == 1000:
                gc.collect()
                py_after_warmup = tracemalloc.get_traced_memory()[0]
        py_end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # Bounded, not growing with the step count: last step's graph sits under this step's
    # loss until compaction drops it, which happens once the tape has roughly doubled.
    assert max(sizes) <= 2 * (base + 100) + 1024, (base, max(sizes))
    assert py_end - py_after_warmup < 64 * 1024, (py_after_warmup, py_end)
    # And it learned: the loop really ran.
    assert abs(w.value - 2.0) < 1e-9 and abs(b.value + 1.0) < 1e-9, (w, b)
    del loss
    assert _core.tape_size() <= base + 2


def test_dropped_graph_is_reclaimed():
    base = _core.tape_size()
    x = wg.Var(1.0)
    y = x
    for _ in range(1000):
        y = wg.sin(y) + x
    # Every node is still reachable from y (compaction may have dropped older garbage).
    assert _core.tape_size() >= 1 + 2000
    del y
    assert _core.tape_size() <= base + 1
    del x
    assert _core.tape_size() <= base


def test_million_node_chain_backward_without_recursion():
    limit = sys.getrecursionlimit()
    x = wg.Var(0.5)
    base = _core.tape_size()  # x's node is the top
    y = x
    for _ in range(500_000):
        y = (y + x) * 0.5
    assert _core.tape_size() - base >= 1_000_000
    # y_n = (y_{n-1} + x) / 2 with y_0 = x: y = x, and dy/dx = 1 exactly.
    y.backward()
    assert y.value == 0.5
    assert x.grad == 1.0
    assert wg.grad(y, x) == 1.0
    assert sys.getrecursionlimit() == limit
    del y
    assert _core.tape_size() <= base


def test_grad_of_var_made_after_output_is_zero_and_indices_are_not_confused():
    # A reclaimed node's index is reused by a new Var: it must not inherit the old grad.
    x = wg.Var(3.0)
    y = x * x
    t = x * 5.0
    y.backward()
    assert x.grad == 6.0
    del t
    u = x + 1.0  # may reuse t's node
    assert u.grad == 0.0
    del y
    v = x - 1.0
    assert v.grad == 0.0
    assert x.grad == 6.0


def test_compaction_keeps_live_graphs_and_their_grads():
    x, z = wg.Var(0.7), wg.Var(-1.3)
    y = wg.sin(x * z) + z  # dy/dx = z cos(xz), dy/dz = x cos(xz) + 1
    y.backward()
    keep = x * 3.0  # a live intermediate of its own
    loss = None
    for _ in range(5000):  # garbage under a live top, enough to force compactions
        loss = (x - z) ** 2 if loss is None else (x - z) ** 2 + 0.0 * x
    import math

    gx, gz = -1.3 * math.cos(0.7 * -1.3), 0.7 * math.cos(0.7 * -1.3) + 1.0
    # The grads of the earlier backward survive renumbering...
    assert x.grad == pytest.approx(gx, rel=1e-15) and z.grad == pytest.approx(gz, rel=1e-15)
    # ...and the old graph still differentiates correctly.
    assert wg.grad(y, [x, z]) == pytest.approx([gx, gz], rel=1e-15)
    assert wg.grad(keep, x) == 3.0
    assert wg.grad(loss, [x, z]) == pytest.approx([4.0, -4.0], rel=1e-15)
