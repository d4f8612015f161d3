"""Which consensus prices detection may act on: the bad-print guard, in event time.

One venue's print is not the market. A consensus price is acted on when:

- at least two venues agree on it (`venues`: confirmed by a second venue), or
- it rests on one venue only (the others stale, disagreeing, or not configured) and
  has *persisted*: the asset has been priced by one venue alone for `hold_s`, and
  every consolidated price of the last `hold_s` is within `jump_pct` of it
  (`persistence`). A single-venue deployment works this way all the time.

Otherwise it is held (`single_venue`: not yet `hold_s` of it; `jump`: it moved more
than `jump_pct` from the consolidated prices of the last `hold_s`) and detection does
nothing with it. A tick far outside any sane price is rejected before it reaches a
consensus (`PriceGuard.insane`): non-finite or not positive, subnormal, under
`min_usd`, or more than `absurd_factor` times above or below the last acted-on price
of the last `absurd_window_s`.

Time is the asset's event time (the board's watermark), so a replay is deterministic.
Prices are read as a step function (each holds until the next), so sparse ticks (one a
minute in a replay) persist just as dense ones do: two prints a minute apart within
`jump_pct` of each other have persisted for a minute.
"""

from __future__ import annotations

import math
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = ["ACTED_ON", "GuardRules", "PriceGuard", "Trust"]

Trust = Literal["venues", "persistence", "single_venue", "jump"]
ACTED_ON: Final = frozenset({"venues", "persistence"})  # the trusts detection acts on
TINY: Final = sys.float_info.min  # below it a positive float is subnormal


@dataclass(frozen=True, slots=True)
class GuardRules:
    """The guard's thresholds (from `[prices]`); fractions, seconds and USD."""

    hold_s: float = 30.0
    jump_pct: float = 0.10
    min_usd: float = 1e-12
    absurd_factor: float = 10.0
    absurd_window_s: float = 3600.0

    @property
    def hold_ms(self) -> int:
        return int(self.hold_s * 1000)


class _Window:
    """Consolidated prices of one asset over the last `hold_ms`, with O(1) max and min.

    The price is a step function (each price holds until the next), so the window keeps
    the price in effect at its start. The max and min come from monotonic deques of
    sequence numbers (the classic sliding-window extremum).
    """

    __slots__ = ("highs", "lows", "prices", "seq", "times")

    def __init__(self) -> None:
        self.times: deque[int] = deque()
        self.prices: deque[float] = deque()
        self.highs: deque[tuple[int, float]] = deque()  # (seq, price), prices decreasing
        self.lows: deque[tuple[int, float]] = deque()  # (seq, price), prices increasing
        self.seq = 0  # sequence number of the next entry

    def push(self, ts_ms: int, price: float) -> None:
        seq = self.seq
        self.seq += 1
        self.times.append(ts_ms)
        self.prices.append(price)
        highs, lows = self.highs, self.lows
        while highs and highs[-1][1] <= price:
            highs.pop()
        highs.append((seq, price))
        while lows and lows[-1][1] >= price:
            lows.pop()
        lows.append((seq, price))

    def trim(self, start_ms: int) -> None:
        """Drop the entries superseded before `start_ms`."""
        times, prices = self.times, self.prices
        while len(times) >= 2 and times[1] <= start_ms:
            times.popleft()
            prices.popleft()
        first = self.seq - len(times)  # sequence number of the oldest entry kept
        while self.highs[0][0] < first:
            self.highs.popleft()
        while self.lows[0][0] < first:
            self.lows.popleft()

    def covers(self, start_ms: int) -> bool:
        return bool(self.times) and self.times[0] <= start_ms


@dataclass(slots=True)
class _State:
    window: _Window = field(default_factory=_Window)
    single_since: int | None = None  # since when one venue alone prices the asset
    acted_usd: float = 0.0  # the last price detection acted on, and when
    acted_ms: int | None = None
    trust: Trust = "single_venue"  # of the latest price


class PriceGuard:
    """Per asset: is a consensus price acted on, and is a tick's price sane at all."""

    def __init__(self, rules: GuardRules) -> None:
        if rules.hold_s < 0 or not 0 < rules.jump_pct < 1 or rules.absurd_factor <= 1:
            raise ValueError("hold_s >= 0, 0 < jump_pct < 1 and absurd_factor > 1 required")
        self.rules = rules
        self.hold_ms = rules.hold_ms
        self._absurd_window_ms = int(rules.absurd_window_s * 1000)
        self._states: dict[str, _State] = {}

    def insane(self, asset: str, usd: float, ts_ms: int) -> str:
        """Why a tick's USD price is no price at all ('' when it is plausible)."""
        if not math.isfinite(usd) or usd <= 0:
            return "bad_price"
        if usd < TINY:
            return "subnormal"
        if usd < self.rules.min_usd:
            return "below_min"
        state = self._states.get(asset)
        if (
            state is None
            or state.acted_ms is None
            or ts_ms - state.acted_ms > self._absurd_window_ms
        ):
            return ""  # no recent acted-on price to jump from
        factor, ref = self.rules.absurd_factor, state.acted_usd
        return "absurd_jump" if usd > ref * factor or usd * factor < ref else ""

    def judge(self, asset: str, now_ms: int, usd: float, venues: int) -> Trust:
        """Record the asset's consensus `usd` (on `venues` venues) at `now_ms`; its trust.

        `now_ms` must not go backwards for an asset (the board passes its watermark).
        """
        state = self._states.get(asset)
        if state is None:
            state = self._states[asset] = _State()
        window = state.window
        window.push(now_ms, usd)
        start = now_ms - self.hold_ms
        window.trim(start)
        trust: Trust
        if venues >= 2:
            state.single_since = None
            trust = "venues"
        else:
            if state.single_since is None:
                state.single_since = now_ms
            if now_ms - state.single_since < self.hold_ms or not window.covers(start):
                trust = "single_venue"
            else:
                band = self.rules.jump_pct * usd
                high, low = window.highs[0][1], window.lows[0][1]
                trust = "jump" if high - usd > band or usd - low > band else "persistence"
        if trust in ACTED_ON:
            state.acted_usd, state.acted_ms = usd, now_ms
        state.trust = trust
        return trust

    def acted_usd(self, asset: str) -> float | None:
        """The last price of `asset` detection acted on (None: none yet)."""
        state = self._states.get(asset)
        return state.acted_usd if state is not None and state.acted_ms is not None else None

    def held(self) -> int:
        """Assets whose latest consensus price is not acted on (for health output)."""
        return sum(1 for s in self._states.values() if s.trust not in ACTED_ON)
