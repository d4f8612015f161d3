"""What a person's terminal can show: whether a stream is a terminal, and colour.

Output meant for a person (readable alert lines, text logs, progress bars) is chosen
only when the stream is a terminal; anything else (a pipe, a file, a log shipper) gets
the machine formats. Colour follows the informal standard of https://no-color.org:
`NO_COLOR` set to anything non-empty turns it off, and so does `TERM=dumb`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

_CODES = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}


def is_terminal(stream: IO[Any] | None) -> bool:
    """True when `stream` is an interactive terminal (False for pipes, files, None)."""
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a real file
        return False


def colour_wanted(stream: IO[Any] | None, env: Mapping[str, str] | None = None) -> bool:
    """Colour on `stream`: a terminal, `NO_COLOR` unset or empty, and `TERM` not `dumb`."""
    env = os.environ if env is None else env
    if env.get("NO_COLOR", ""):
        return False
    if env.get("TERM", "") == "dumb":
        return False
    return is_terminal(stream)


@dataclass(frozen=True, slots=True)
class Palette:
    """ANSI styles when `on`, the bare text otherwise."""

    on: bool = False

    def paint(self, text: str, *styles: str) -> str:
        """`text` in the given styles (names of `_CODES`: bold, red, green, ...)."""
        if not self.on or not styles or not text:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"


PLAIN = Palette()  # no colour


def palette_for(stream: IO[Any] | None, env: Mapping[str, str] | None = None) -> Palette:
    """The palette for `stream` (see `colour_wanted`)."""
    return Palette(on=colour_wanted(stream, env))
