"""The layout rules of ARCHITECTURE.md that code can check: `streams` never imports
`monitor`, and the top level is the fixed set."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_streams_never_imports_monitor() -> None:
    offenders = [
        f"{path.relative_to(REPO)}: {module}"
        for path in sorted((REPO / "streams").rglob("*.py"))
        for module in imported_modules(path)
        if module == "monitor" or module.startswith("monitor.")
    ]
    assert offenders == []


def test_top_level_is_the_fixed_set() -> None:
    done = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    top = {line.split("/", 1)[0] for line in done.stdout.splitlines() if line}
    allowed = {"pyproject.toml", "monitor", "streams", "config", "tests", "docker", "docs"}
    allowed |= {"README.md", ".ci", ".gitignore", "scripts"}  # scripts: developer aids
    assert top <= allowed, sorted(top - allowed)
