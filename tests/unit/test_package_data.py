"""Files read at run time ship inside the package, so `pip install` gives a working demo.

A wheel holds the package's Python files plus `[tool.setuptools.package-data]`; anything
read from outside `monitor/` (the repository's config/) is missing after installation.
Also checked by hand: a wheel (`pip wheel --no-deps .`) installed with `pip install --target`
into an empty directory runs `demo` and `replay --example` from another directory.
"""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

import monitor
from monitor.examples import PORTFOLIO, TICKS, example_path
from monitor.tax.packs import PACKS_DIR, available_packs

REPO = Path(__file__).parents[2]
PACKAGE = Path(monitor.__file__).parent


def shipped(path: Path) -> bool:
    """Whether a wheel built from pyproject.toml holds `path`."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, globs in data.get("package-data", {}).items():
        root = REPO / package.replace(".", "/")
        if path.is_relative_to(root):
            rel = path.relative_to(root).as_posix()
            if any(fnmatch(rel, g) for g in globs):
                return True
    return False


def test_the_example_portfolio_and_ticks_are_package_data() -> None:
    for name in (PORTFOLIO, TICKS):
        path = example_path(name)
        assert path.is_file() and path.is_relative_to(PACKAGE), path
        assert shipped(path), f"{path} is not in [tool.setuptools.package-data]"


def test_the_rule_packs_are_package_data() -> None:
    assert PACKS_DIR.is_relative_to(PACKAGE)
    assert available_packs() == ["au", "ca", "de", "uk", "us"]
    assert all(shipped(p) for p in PACKS_DIR.glob("*.toml"))
