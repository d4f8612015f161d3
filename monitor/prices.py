"""One USD price per asset from the venues' ticks.

For now a tick quoted in a USD-like currency (`[prices] usd_quotes`: USD, USDT, USDC)
is taken at face value, and the asset's price is the latest such tick. Quote
conversion through live stablecoin prices, the cross-venue median, and the stale and
outlier guards come with the multi-venue work (issue 4).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from streams.ticks import Tick


@dataclass(frozen=True, slots=True)
class AssetPrice:
    """The price detection uses for an asset, and where it came from."""

    asset: str
    usd: float
    venue: str
    symbol: str
    ts_ms: int


class PriceBoard:
    """Turns ticks into USD prices per asset; rejects what it cannot price."""

    def __init__(self, usd_quotes: Iterable[str]) -> None:
        self._usd_quotes = frozenset(q.upper() for q in usd_quotes)
        self.latest: dict[str, AssetPrice] = {}

    def update(self, tick: Tick) -> AssetPrice | str:
        """The asset's new price, or the reason the tick cannot be used."""
        if tick.quote not in self._usd_quotes:
            return "unsupported_quote"
        if not math.isfinite(tick.price) or tick.price <= 0:
            return "bad_price"
        price = AssetPrice(tick.base, tick.price, tick.venue, tick.symbol, tick.ts_ms)
        self.latest[tick.base] = price
        return price
