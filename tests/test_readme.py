"""The README's Python examples run, in order, in one namespace (as a reader would)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    # The training loop converges to the line it was fitted to.
    assert abs(namespace["w"].data - 3.0) < 0.05 and abs(namespace["b"].data + 1.0) < 0.05
    assert namespace["g"].shape == (2,)
