"""The graph of the seed example, with the value and the gradient of every node.

    f(x1, x2) = (sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))   at (1.5, 0.5)

The function is written as its Wengert list: one named step per operation, each a
``wg.Var`` computed from earlier steps. After ``y.backward()`` every step's ``.grad`` is
dy/d(step), so each node of the picture shows its value and its gradient, as micrograd's
``draw_dot`` does. (``Var.to_dot()`` and ``F.to_dot()`` draw the recorded graph itself,
with local partials on the edges but no values on the nodes.) The PNG is drawn by the
Graphviz ``dot`` program when it is installed; the .dot text is always written.

    python examples/graph.py [--quick] [--out DIR]
"""

import argparse
import shutil
import subprocess
from pathlib import Path

import wengert as wg

OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "sin": wg.sin,
    "exp": wg.exp,
}


def seed_wengert_list(x1, x2):
    """The seed example, step by step: name -> (op, argument names, Var)."""
    steps = {"x1": ("input", (), wg.Var(x1)), "x2": ("input", (), wg.Var(x2))}

    def step(name, op, *args):
        steps[name] = (op, args, OPS[op](*(steps[a][2] for a in args)))

    step("v1", "div", "x1", "x2")
    step("v2", "sin", "v1")
    step("v3", "exp", "x2")
    step("v4", "add", "v2", "v1")
    step("v5", "sub", "v4", "v3")
    step("v6", "sub", "v1", "v3")
    step("y", "mul", "v5", "v6")
    return steps


def to_dot(steps):
    """Graphviz DOT: a record per value (name | value | grad), an oval per operation."""
    lines = ["digraph wengert {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for name, (op, args, v) in steps.items():
        lines.append(f'  {name} [shape=record, label="{{ {name} | value {v.value:.6f} | grad {v.grad:.6f} }}"];')
        if op != "input":
            lines.append(f'  {name}_op [label="{op}"];')
            lines.append(f"  {name}_op -> {name};")
            lines += [f"  {a} -> {name}_op;" for a in args]
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="accepted for symmetry: this example is fast")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    steps = seed_wengert_list(1.5, 0.5)
    y, x1, x2 = steps["y"][2], steps["x1"][2], steps["x2"][2]
    y.backward()
    print(f"y = {y.value:.6f}, dy/dx1 = {x1.grad:.6f}, dy/dx2 = {x2.grad:.6f}")

    dot = to_dot(steps)
    (args.out / "graph.dot").write_text(dot)
    written = [args.out / "graph.dot"]
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tpng", "-Gdpi=80", "-o", str(args.out / "graph.png")], input=dot, text=True, check=True)
        written.append(args.out / "graph.png")
    else:
        print("Graphviz `dot` is not installed: wrote the .dot text only")
    print("wrote " + ", ".join(map(str, written)))
    return dict(dot=dot, value=y.value, grad=(x1.grad, x2.grad), files=written)


if __name__ == "__main__":
    main()
