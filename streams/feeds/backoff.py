"""Reconnect delays: exponential backoff with full jitter, capped, reset after a healthy spell.

Full jitter (a uniform draw in [0, cap]) spreads the reconnects of many clients after a
venue outage instead of having them retry in lock step. The cap doubles from
`initial_s` per consecutive failure up to `max_s`; a connection that stayed healthy for
`reset_after_s` starts the sequence over.
"""

from __future__ import annotations

import random

from streams.feeds.interface import FeedConfig

__all__ = ["Backoff"]


class Backoff:
    """Delay before each reconnect attempt; deterministic when given a seeded `rng`."""

    def __init__(
        self,
        initial_s: float = 0.5,
        max_s: float = 30.0,
        reset_after_s: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s (e.g. 0.5 and 30 seconds)")
        self.initial_s = initial_s
        self.max_s = max_s
        self.reset_after_s = reset_after_s
        self._rng = rng or random.Random()
        self._failures = 0

    @classmethod
    def from_config(cls, config: FeedConfig, rng: random.Random | None = None) -> Backoff:
        """The backoff a feed's configuration asks for."""
        c = config
        return cls(c.backoff_initial_s, c.backoff_max_s, c.backoff_reset_after_s, rng)

    @property
    def failures(self) -> int:
        """Consecutive failures since the last reset."""
        return self._failures

    def cap(self) -> float:
        """The upper bound of the next delay: initial_s * 2**failures, at most max_s."""
        # min() on the exponent first: 2**failures would overflow a float after ~1000 failures.
        return min(self.max_s, self.initial_s * 2.0 ** min(self._failures, 64))

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (and count this failure)."""
        delay = self._rng.uniform(0.0, self.cap())
        self._failures += 1
        return delay

    def connection_ended(self, healthy_for_s: float) -> None:
        """Record how long the last connection was healthy; long enough resets the backoff."""
        if healthy_for_s >= self.reset_after_s:
            self.reset()

    def reset(self) -> None:
        """Start over from `initial_s`."""
        self._failures = 0
