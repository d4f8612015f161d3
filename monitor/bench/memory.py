"""Resident memory of this process, with psutil when installed (the dev extra has it).

Without psutil, Linux's /proc/self/statm is read; elsewhere the figure is unavailable
and the report says so rather than guessing.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import os
from pathlib import Path


def rss_bytes() -> int | None:
    """Resident set size of this process now, after a full garbage collection."""
    gc.collect()
    try:
        psutil = importlib.import_module("psutil")
    except ImportError:
        return _statm_rss()
    rss: int = psutil.Process().memory_info().rss
    return rss


def _statm_rss() -> int | None:
    try:
        fields = Path("/proc/self/statm").read_text().split()
    except OSError:
        return None
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_source() -> str:
    """Where `rss_bytes` reads from, for the report."""
    if importlib.util.find_spec("psutil") is None:
        return "/proc/self/statm" if Path("/proc/self/statm").exists() else "unavailable"
    return "psutil"
