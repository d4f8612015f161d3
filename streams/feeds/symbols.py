"""Configured symbols as each venue names them, and back to unified `BASE/QUOTE`.

A feed is configured with unified symbols (`BTC/USDT`); each venue has its own spelling
(Binance `BTCUSDT`, Coinbase `BTC-USD`, Kraken `BTC/USD`). `market_table` builds the
venue-id -> Market map a parser looks ids up in, refusing symbols that clash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from streams.errors import FeedError, TickFormatError
from streams.ticks import split_symbol

__all__ = ["Market", "market_table"]


class Market(NamedTuple):
    """A configured symbol as a Tick names it."""

    symbol: str  # BTC/USDT
    base: str
    quote: str


def market_table(
    venue: str, symbols: Sequence[str], venue_id: Callable[[str, str], str]
) -> dict[str, Market]:
    """Venue id -> Market for the unified `symbols`; FeedError on bad or clashing ones.

    `venue_id(base, quote)` spells a market the venue's way, e.g. `BTCUSDT` for Binance.
    """
    if not symbols:
        raise FeedError(f"{venue} feed: no symbols configured (e.g. symbols = ['BTC/USD'])")
    table: dict[str, Market] = {}
    for symbol in symbols:
        try:
            base, quote = split_symbol(symbol)
        except TickFormatError as exc:
            raise FeedError(f"{venue} feed: {exc}") from exc
        market = Market(f"{base}/{quote}", base, quote)
        ident = venue_id(base, quote)
        other = table.setdefault(ident, market)
        if other != market:
            raise FeedError(f"{venue} feed: {other.symbol} and {symbol} are both {ident}")
    return table
