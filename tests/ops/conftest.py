"""Fixtures for the ops tests: the Prometheus binaries (skip with the reason when missing)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

INSTALL = "install it with `apt-get install -y prometheus` (Debian/Ubuntu); .ci/run does"


def _binary(name: str) -> Path:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"needs `{name}` on PATH: {INSTALL}")
    return Path(found)


@pytest.fixture(scope="session")
def promtool() -> Path:
    return _binary("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> Path:
    return _binary("prometheus")
