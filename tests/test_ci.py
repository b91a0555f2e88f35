""".ci/run runs the README's test command, then the linters the test extra installs; the
README's links inside the repository resolve."""

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readmes_test_command_then_the_linters():
    # The extraction .ci/run uses, run by the shell as it does.
    got = subprocess.run(
        ["bash", "-c", "sed -n '/^```sh$/,/^```$/p' README.md | sed -n '3p'"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert len(block) == 2 and got == block[1], (got, block)
    assert "pip install" in got and "pytest" in got
    run = (ROOT / ".ci" / "run").read_text()
    assert 'eval "$cmd"' in run
    after = run.split('eval "$cmd"', 1)[1]
    assert "ruff check python tests examples benches" in after and "mypy" in after
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert {d.split(">")[0].split("[")[0] for d in extra} >= {"ruff", "mypy", "pytest"}


def test_the_readmes_links_inside_the_repository_resolve():
    import re

    for doc in ["README.md", "docs/design.md", "examples/README.md"]:
        text = (ROOT / doc).read_text()
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if "://" not in target:
                assert (ROOT / doc).parent.joinpath(target).exists(), (doc, target)
    assert "](docs/design.md)" in (ROOT / "README.md").read_text()
    assert "shared/design" not in (ROOT / "README.md").read_text()  # not part of a clone
