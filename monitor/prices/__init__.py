"""One trustworthy USD price per asset from many venues' ticks.

- `quotes`: quote currency -> USD (face value, a stablecoin's live USD price, or its peg;
  de-peg alarm).
- `consensus`: which venues agree (outlier guard) and their median.
- `board`: `PriceBoard`, every venue's latest USD price per asset, stale venues ignored,
  one consensus `AssetPrice` per tick.
- `confirm`: the debounce (`confirm_ms`) in event time.
- `health`: `FeedWatch`, stale venues and assets without a fresh price on the wall clock.
"""

from __future__ import annotations

from monitor.prices.board import AssetPrice, PriceBoard, PriceRules, VenuePrice

__all__ = ["AssetPrice", "PriceBoard", "PriceRules", "VenuePrice"]
