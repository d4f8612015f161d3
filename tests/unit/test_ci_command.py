"""CI runs exactly the README's test command, and that command keeps lint and types clean;
every third-party package the product imports is a declared dependency."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_command() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"\*\*Run the tests\*\*.*?```sh\n(.+?)\n```", text, re.S)
    assert match, "README.md lost its 'Run the tests' block"
    return match.group(1).strip()


def test_ci_runs_the_readme_command() -> None:
    lines = [x.strip() for x in (ROOT / ".ci/run").read_text().splitlines()]
    assert _readme_command() in lines


def test_the_test_command_checks_lint_format_and_types_before_pytest() -> None:
    steps = [s.strip() for s in _readme_command().split("&&")]
    checks = [".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy"]
    for check in checks:
        assert check in steps, f"the test command does not run {check!r}"
    assert steps[-1] == ".venv/bin/pytest"


def _imports() -> tuple[set[str], set[str]]:
    """Top-level names imported at module level, and those imported lazily (in a function)."""
    eager: set[str] = set()
    lazy: set[str] = set()
    for package in ("monitor", "streams"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            module_level = set(map(id, tree.body))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = {node.module.split(".")[0]}
                else:
                    continue
                (eager if id(node) in module_level else lazy).update(names)
    return eager, lazy


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    return {_canonical(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in requirements}


def test_every_imported_third_party_package_is_declared() -> None:
    """Module-level imports need a runtime dependency; a lazy import (an optional tool such
    as the bench broker, behind a find_spec check) at least an optional one."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _names(project["dependencies"])
    optional = set().union(*(_names(v) for v in project["optional-dependencies"].values()))
    dists = packages_distributions()
    skip = {"monitor", "streams", *sys.stdlib_module_names}
    eager, lazy = _imports()
    missing = []
    for names, allowed in ((eager, runtime), (lazy - eager, runtime | optional)):
        for name in sorted(names - skip):
            owners = {_canonical(d) for d in dists.get(name, [name])}
            if not owners & allowed:
                missing.append(f"{name} (distribution {sorted(owners)})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
