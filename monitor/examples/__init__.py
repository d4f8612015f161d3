"""Example data shipped with the package: the demo's portfolio and a small tick file.

`portfolio.example.csv` is what `harvest-monitor demo` watches (only the demo: every other
command needs your own portfolio). `ticks.example.jsonl` is a short replay file for
`harvest-monitor replay` (docs/replay.md). Never real tax data.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PORTFOLIO = "portfolio.example.csv"
TICKS = "ticks.example.jsonl"


def example_path(name: str) -> Path:
    """The installed file `name` of this package (a real file: the package is not zipped)."""
    return Path(str(files(__name__) / name))
