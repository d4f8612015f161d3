"""Debounce in event time: a crossing counts once the price has stayed beyond it for a while.

A lot with trigger T may fire at time t when the consolidated price has been at or
below T for the whole window [t - confirm_ms, t]. The price is a step function (each
accepted tick sets it until the next), so that holds for every lot whose trigger is at
least the window's maximum: the *confirmed price*. Detection runs the lot book at the
confirmed price, so lots fire once their crossing has lasted `confirm_ms`, on the first
tick that shows it, and a wick that comes back inside the window fires nothing.

Time is the asset's event time (the ticks' own timestamps), so a replay is
deterministic. Until the history covers a full window there is no confirmed price. A
gap longer than `max_gap_ms` between accepted prices (no fresh venue in between) clears
the history: nobody knows what the price did in the hole.
"""

from __future__ import annotations

from collections import deque

__all__ = ["ConfirmWindow"]


class _History:
    __slots__ = ("prices", "times")

    def __init__(self) -> None:
        self.times: deque[int] = deque()
        self.prices: deque[float] = deque()


class ConfirmWindow:
    """Per asset: the maximum consolidated price over the last `confirm_ms` of event time."""

    def __init__(self, confirm_ms: int, max_gap_ms: int) -> None:
        if confirm_ms < 0:
            raise ValueError("confirm_ms must be >= 0")
        self.confirm_ms = confirm_ms
        self.max_gap_ms = max_gap_ms
        self._history: dict[str, _History] = {}

    def update(self, asset: str, ts_ms: int, price: float) -> float | None:
        """Record `price` from `ts_ms` on; the confirmed price, or None while unconfirmed.

        `ts_ms` must not go backwards for an asset (the board passes its watermark).
        """
        if self.confirm_ms == 0:
            return price
        h = self._history.get(asset)
        if h is None:
            h = self._history[asset] = _History()
        elif h.times and ts_ms - h.times[-1] > self.max_gap_ms:
            h.times.clear()
            h.prices.clear()
        h.times.append(ts_ms)
        h.prices.append(price)
        start = ts_ms - self.confirm_ms
        times, prices = h.times, h.prices
        # Keep the price in effect at the window's start: drop entries superseded before it.
        while len(times) >= 2 and times[1] <= start:
            times.popleft()
            prices.popleft()
        if times[0] > start:
            return None
        return max(prices)

    def pending(self) -> int:
        """Assets whose history does not yet cover a full window (for health output)."""
        if self.confirm_ms == 0:
            return 0
        return sum(
            1
            for h in self._history.values()
            if not h.times or h.times[-1] - h.times[0] < self.confirm_ms
        )
