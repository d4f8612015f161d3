"""How a command's output looks: readable on a terminal, JSON lines otherwise.

A person at a terminal gets one readable line per alert on stdout and text logs on
stderr (colour unless `NO_COLOR`, monitor.terminal). A pipe, a file or `--json` gets
exactly the machine formats: `hm.alert/1` JSON lines on stdout, JSON logs on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from monitor.logs import setup_logging
from monitor.settings import Settings
from monitor.terminal import Palette, is_terminal, palette_for


def json_option() -> Callable[[Any], Any]:
    """`--json`: JSON lines on stdout and stderr even on a terminal (for scripts)."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        default=False,
        help="JSON lines (alerts on stdout, logs on stderr) even on a terminal; "
        "the default when the output is not a terminal.",
    )


def start_output(
    settings: Settings, as_json: bool, log_format: str | None = None
) -> Palette | None:
    """Set up logging and say how alerts go to stdout: a palette for readable lines when
    stdout is a terminal and `--json` is not given, else None (JSON lines)."""
    fmt = "json" if as_json else (log_format or settings.log.format)
    setup_logging(settings.log.level, fmt)
    if as_json or not is_terminal(sys.stdout):
        return None
    return palette_for(sys.stdout)
