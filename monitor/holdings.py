"""Which lots are held at an event time: a lot is not part of the book before it is acquired.

A portfolio may hold lots acquired after the ticks being judged: a replay of last
January over today's lots, or a buy recorded ahead (`--allow-future`). Such a lot is
not yet owned, so it can be neither harvested nor sold as part of another lot's plan.
`Holdings` keeps the whole lot frame and the time it is cut at; the detector builds its
book over `held()` and moves the cut forward with the ticks (event time), never back.
"""

from __future__ import annotations

import numpy as np
import polars as pl

NEVER_MS = np.iinfo(np.int64).max  # no lot waits to be acquired


class Holdings:
    """A lot frame cut at `as_of_ms`: lots acquired at or before it are held."""

    def __init__(self, lots: pl.DataFrame, as_of_ms: int) -> None:
        self.lots = lots
        self.as_of_ms = as_of_ms
        self._acquired = (
            lots["acquired_at"].dt.epoch("ms").to_numpy().astype(np.int64)
            if lots.height
            else np.empty(0, np.int64)
        )
        self.next_ms = self._next()

    def _next(self) -> int:
        later = self._acquired[self._acquired > self.as_of_ms]
        return int(later.min()) if later.size else int(NEVER_MS)

    @property
    def pending(self) -> int:
        """Lots not acquired yet at `as_of_ms`."""
        return int((self._acquired > self.as_of_ms).sum())

    def held(self) -> pl.DataFrame:
        """The lots acquired at or before `as_of_ms`, in the frame's order."""
        if self.next_ms == NEVER_MS:
            return self.lots
        return self.lots.filter(pl.Series(self._acquired <= self.as_of_ms))

    def advance(self, ts_ms: int) -> list[str]:
        """Move the cut to `ts_ms` (never back); the lot ids it brings into the book."""
        if ts_ms < self.next_ms:
            return []
        newly = (self._acquired > self.as_of_ms) & (self._acquired <= ts_ms)
        self.as_of_ms = ts_ms
        self.next_ms = self._next()
        return self.lots.filter(pl.Series(newly))["lot_id"].to_list()
