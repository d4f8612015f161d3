"""Progress of long work (an import of a large file, the bench) on stderr.

On a terminal: one line redrawn in place, a bar with the share done, the count and the
time spent (`import big.csv [#########-----------] 45% 135,000/300,000 lots 3.2s`). Not a
terminal (a pipe, a log file, CI): plain lines, one every `every_s` seconds and one at
the end, so a log shows the work moving without a line per row. Work over before the
first line is due shows nothing. No dependency: a bar is a few characters.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

from monitor.terminal import is_terminal

BAR_WIDTH = 24
REDRAW_S = 0.1  # a terminal redraw at most this often
PLAIN_EVERY_S = 5.0  # a plain line at most this often
QUIET_S = 0.5  # work done sooner shows no bar at all


class Progress:
    """`update(done)` as the work moves, `finish()` at the end (or use `with`)."""

    def __init__(
        self,
        label: str,
        total: int,
        unit: str = "",
        *,
        stream: IO[str] | None = None,
        bar: bool | None = None,
        every_s: float = PLAIN_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = max(0, total)
        self.unit = unit
        self.done = 0
        self._out = stream if stream is not None else sys.stderr
        self._bar = is_terminal(self._out) if bar is None else bar
        self._every_s = REDRAW_S if self._bar else every_s
        self._clock = clock
        self._started = clock()
        # Quick work shows nothing: the first line after QUIET_S (a bar) or every_s.
        self._next = self._started + (QUIET_S if self._bar else every_s)
        self._shown = False
        self._finished = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.finish()

    def update(self, done: int) -> None:
        """`done` of `total` are done; writes when it is time to."""
        self.done = min(max(done, 0), self.total) if self.total else max(done, 0)
        now = self._clock()
        if now >= self._next:
            self._write(now)

    def advance(self, count: int = 1) -> None:
        """`count` more are done."""
        self.update(self.done + count)

    def note(self, message: str) -> None:
        """A line of its own (a phase's result) above the bar, or between plain lines."""
        if self._bar:
            self._out.write(f"\r\x1b[2K{message}\n")
            if self._shown:
                self._write(self._clock())
        else:
            self._out.write(message + "\n")
        self._out.flush()

    def finish(self) -> None:
        """The last line, the whole count and the time it took (unless it was quick)."""
        if self._finished:
            return
        self._finished = True
        self.done = max(self.done, self.total)
        now = self._clock()
        if self._shown or now >= self._next:
            self._write(now, final=True)

    def line(self, now: float) -> str:
        """The progress as text (without the redraw control characters)."""
        spent = f"{now - self._started:.1f}s"
        count = f"{self.done:,}/{self.total:,}" if self.total else f"{self.done:,}"
        unit = f" {self.unit}" if self.unit else ""
        share = self.done / self.total if self.total else 1.0
        if self._bar:
            filled = round(share * BAR_WIDTH)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            return f"{self.label} [{bar}] {share:4.0%} {count}{unit} {spent}"
        return f"{self.label}: {count}{unit} ({share:.0%}) {spent}"

    def _write(self, now: float, final: bool = False) -> None:
        self._shown = True
        self._next = now + self._every_s
        text = self.line(now)
        if self._bar:
            self._out.write(f"\r\x1b[2K{text}" + ("\n" if final else ""))
        else:
            self._out.write(text + ("  done\n" if final else "\n"))
        self._out.flush()


Step = Callable[[str, int, int], None]  # (phase, done, total): work reports its progress


class Phases:
    """A `Step` callback that shows one `Progress` per phase of a job ("reading x.csv",
    "writing to ledger.sqlite"): a phase ends when the next begins or at `finish()`."""

    def __init__(
        self,
        unit: str = "",
        *,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.unit = unit
        self._stream = stream
        self._clock = clock
        self._current: Progress | None = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        """`done` of `total` in `phase`; a new phase name ends the one before."""
        if self._current is None or self._current.label != phase:
            self.finish()
            self._current = Progress(
                phase, total, self.unit, stream=self._stream, clock=self._clock
            )
        if total and done >= total:  # the phase is over: its last line now, with its time
            self.finish()
        else:
            self._current.update(done)

    def finish(self) -> None:
        if self._current is not None:
            self._current.finish()
            self._current = None

    def __enter__(self) -> Phases:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.finish()
