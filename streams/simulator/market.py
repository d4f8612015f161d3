"""One simulated market shared by several simulated venues, advanced by the wall clock.

Each venue runs its own pacer and quote board (its own prints, noise and faults), but
they all read the same price paths: the paths step once per `interval_s` of wall time,
whichever venue asks first, so a stalled venue never falls behind the others and the
venues always print the same market (up to their noise).
"""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import NDArray

from streams.errors import SimulatorError
from streams.simulator.prices import PricePaths

__all__ = ["SharedMarket"]

_MAX_CATCH_UP = 256  # steps replayed at once after a pause; more are skipped


class SharedMarket:
    """`paths` stepped once per `interval_s` of wall time, on demand (`advance()`)."""

    def __init__(self, paths: PricePaths, interval_s: float) -> None:
        if interval_s <= 0:
            raise SimulatorError("a shared market needs interval_s > 0 (e.g. 0.05 for 20 steps/s)")
        self.paths = paths
        self.interval_s = interval_s
        self._t0: float | None = None
        self._skipped = 0

    def advance(self) -> NDArray[np.float64]:
        """The USD prices now (stepping the paths up to the current time first)."""
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        due = int((now - self._t0) / self.interval_s) + 1 - self._skipped - self.paths.steps
        for _ in range(min(due, _MAX_CATCH_UP)):
            self.paths.step()
        if due > _MAX_CATCH_UP:
            self._skipped += due - _MAX_CATCH_UP
        return self.paths.prices()

    def set_price(self, base: str, usd: float) -> None:
        """Move `base` to `usd` on every venue now."""
        self.paths.set_price(base, usd)
